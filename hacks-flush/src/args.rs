//! Command-line flags. Each `--buffer` starts a new mapping; the `--table`, `--column` /
//! `--columns`, `--id-column` and `--missing` flags after it apply to that mapping.

use std::path::PathBuf;

pub const USAGE: &str = "\
usage: hacks-flush --redis URL --db DB \\
                   --buffer KEY --table TABLE (--column COLUMN | --columns C1,C2,...) \\
                   [--id-column ID] [--missing insert|skip] \\
                   [--buffer KEY --table ... ...] \\
                   [--batch N] [--lease-ms MS] [--interval-ms MS] [--once]

Drains redis-hacks write buffers (HACK.DRAIN / HACK.ACK) into SQL tables, exactly once:
each batch is applied as COLUMN = COLUMN + value (rows inserted when missing) in one
transaction that also records the batch id in hacks_flushed_batches.

  --redis URL         redis://[user:password@]host:port[/db]
  --db DB             sqlite:PATH, a plain SQLite file path, or postgres://user@host:port/db
  --buffer KEY        a buffer key; starts a new mapping
  --table TABLE       target table of the current mapping
  --column COLUMN     integer column that receives the increments (plain buffers)
  --columns C1,C2     rows (HACK.BUFUPDATE): the buffered columns that may be written, each
                      a column of the table: INCR c = c + v, MAX c = greatest(c, v), MIN
                      likewise (NULL-safe), SET c = v; a row with any other column goes to
                      hacks_flush_rejects. Batches of such a buffer apply in id order (a
                      batch left in flight by a crash is waited for), so SET keeps the last
                      value written; run one worker per such buffer
  --missing MODE      rows mode: insert (default) a missing row, or skip it (counted)
  --id-column ID      column the members are matched against (default id); it must be
                      PRIMARY KEY or UNIQUE, integer (members are decimal integers) or text
  --batch N           entries per HACK.DRAIN (default 1000)
  --lease-ms MS       lease of a drained batch (default 30000); an unacknowledged batch is
                      handed out again after it
  --interval-ms MS    pause when every buffer was empty (default 1000)
  --once              drain every buffer until it is empty, then exit
  --help              this text

Exit status: 0 done or stopped by SIGTERM/SIGINT; 1 a batch could not be applied (--once);
2 bad flags or a table/column that cannot receive the increments.
";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub buffer: String,
    pub table: String,
    /// `--column` (plain mode); empty in rows mode.
    pub column: String,
    pub id_column: String,
    /// `--columns` (rows mode): the allow-list.
    pub columns: Option<Vec<String>>,
    pub missing: Missing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    Insert,
    Skip,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite(PathBuf),
    Postgres(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub redis: String,
    pub db: Db,
    pub mappings: Vec<Mapping>,
    pub batch: u64,
    pub lease_ms: u64,
    pub interval_ms: u64,
    pub once: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ArgsError {
    Help,
    Bad(String),
}

/// A mapping being built: table and column are required once the flags are all read.
struct Partial {
    buffer: String,
    table: Option<String>,
    column: Option<String>,
    id_column: Option<String>,
    columns: Option<String>,
    missing: Option<String>,
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Config, ArgsError> {
    let bad = |s: String| ArgsError::Bad(s);
    let mut redis = None;
    let mut db = None;
    let mut partials: Vec<Partial> = Vec::new();
    let (mut batch, mut lease_ms, mut interval_ms, mut once) = (1000, 30_000, 1000, false);

    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        // Both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if flag == "--help" || flag == "-h" {
            return Err(ArgsError::Help);
        }
        if flag == "--once" {
            if inline.is_some() {
                return Err(bad("--once takes no value".into()));
            }
            once = true;
            continue;
        }
        let known = [
            "--redis",
            "--db",
            "--buffer",
            "--table",
            "--column",
            "--id-column",
            "--columns",
            "--missing",
            "--batch",
            "--lease-ms",
            "--interval-ms",
        ];
        if !known.contains(&flag.as_str()) {
            return Err(bad(format!("unknown flag {arg}")));
        }
        let value = match inline.or_else(|| it.next()) {
            Some(v) => v,
            None => return Err(bad(format!("{flag} needs a value"))),
        };
        match flag.as_str() {
            "--redis" => redis = Some(value),
            "--db" => db = Some(parse_db(&value)?),
            "--batch" => batch = positive(&flag, &value, 1)?,
            "--lease-ms" => lease_ms = positive(&flag, &value, 1)?,
            "--interval-ms" => interval_ms = positive(&flag, &value, 0)?,
            "--buffer" => {
                if value.is_empty() {
                    return Err(bad("--buffer needs a non-empty key".into()));
                }
                if partials.iter().any(|p| p.buffer == value) {
                    return Err(bad(format!("buffer {value} given twice")));
                }
                partials.push(Partial {
                    buffer: value,
                    table: None,
                    column: None,
                    id_column: None,
                    columns: None,
                    missing: None,
                });
            }
            _ => {
                let Some(current) = partials.last_mut() else {
                    return Err(bad(format!("{flag} must follow a --buffer")));
                };
                if value.is_empty() || value.contains('\0') {
                    return Err(bad(format!("{flag} needs a name without NUL bytes")));
                }
                let slot = match flag.as_str() {
                    "--table" => &mut current.table,
                    "--column" => &mut current.column,
                    "--columns" => &mut current.columns,
                    "--missing" => &mut current.missing,
                    _ => &mut current.id_column,
                };
                if slot.is_some() {
                    return Err(bad(format!(
                        "{flag} given twice for buffer {}",
                        current.buffer
                    )));
                }
                *slot = Some(value);
            }
        }
    }

    let redis = redis.ok_or_else(|| bad("--redis is required".into()))?;
    let db = db.ok_or_else(|| bad("--db is required".into()))?;
    if partials.is_empty() {
        return Err(bad("at least one --buffer is required".into()));
    }
    let mut mappings = Vec::new();
    for p in partials {
        let table = p
            .table
            .ok_or_else(|| bad(format!("--table is required for buffer {}", p.buffer)))?;
        let id_column = p.id_column.unwrap_or_else(|| "id".into());
        let (column, columns) = match (p.column, p.columns) {
            (Some(_), Some(_)) => {
                return Err(bad(format!(
                    "--column and --columns both given for buffer {}",
                    p.buffer
                )))
            }
            (None, None) => {
                return Err(bad(format!(
                    "--column (or --columns) is required for buffer {}",
                    p.buffer
                )))
            }
            (Some(c), None) => (c, None),
            (None, Some(list)) => {
                let cols: Vec<String> = list.split(',').map(str::to_string).collect();
                if cols.iter().any(String::is_empty) {
                    return Err(bad(format!("--columns {list}: an empty name")));
                }
                for (i, c) in cols.iter().enumerate() {
                    if cols[..i].contains(c) {
                        return Err(bad(format!("--columns {list}: {c} given twice")));
                    }
                }
                (String::new(), Some(cols))
            }
        };
        if id_column == column || columns.as_ref().is_some_and(|c| c.contains(&id_column)) {
            return Err(bad(format!(
                "--column and --id-column are the same for buffer {}",
                p.buffer
            )));
        }
        let missing = match p.missing.as_deref() {
            None | Some("insert") => Missing::Insert,
            Some("skip") => Missing::Skip,
            Some(other) => return Err(bad(format!("--missing {other}: use insert or skip"))),
        };
        if columns.is_none() && missing == Missing::Skip {
            return Err(bad(format!(
                "--missing applies to --columns mappings (buffer {})",
                p.buffer
            )));
        }
        mappings.push(Mapping {
            buffer: p.buffer,
            table,
            column,
            id_column,
            columns,
            missing,
        });
    }
    Ok(Config {
        redis,
        db,
        mappings,
        batch,
        lease_ms,
        interval_ms,
        once,
    })
}

fn parse_db(s: &str) -> Result<Db, ArgsError> {
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        return Ok(Db::Postgres(s.to_string()));
    }
    let path = match s.strip_prefix("sqlite:") {
        // sqlite://counts.db and sqlite:///abs/path.db as well as sqlite:counts.db
        Some(rest) => rest.strip_prefix("//").unwrap_or(rest),
        None if s.contains("://") => {
            return Err(ArgsError::Bad(format!(
                "--db {s}: only sqlite: and postgres:// databases are supported"
            )))
        }
        None => s,
    };
    if path.is_empty() {
        return Err(ArgsError::Bad("--db sqlite: needs a file path".into()));
    }
    Ok(Db::Sqlite(PathBuf::from(path)))
}

fn positive(flag: &str, value: &str, min: u64) -> Result<u64, ArgsError> {
    match value.parse::<u64>() {
        // Bounded so durations and the COUNT argument never overflow.
        Ok(n) if n >= min && n <= i64::MAX as u64 / 1_000_000 => Ok(n),
        _ => Err(ArgsError::Bad(format!(
            "{flag} needs an integer >= {min}, got {value:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Config, ArgsError> {
        parse(s.split_whitespace().map(String::from))
    }

    fn bad(s: &str) -> String {
        match p(s) {
            Err(ArgsError::Bad(m)) => m,
            other => panic!("{s}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn full_command_line() {
        let c = p(
            "--redis redis://127.0.0.1:6379 --db sqlite:counts.db --buffer pending:groups \
                   --table groups --column times_seen --batch 50 --lease-ms 300 \
                   --interval-ms 0 --once \
                   --buffer pending:users --table users --column=logins --id-column name",
        )
        .unwrap();
        assert_eq!(c.redis, "redis://127.0.0.1:6379");
        assert_eq!(c.db, Db::Sqlite("counts.db".into()));
        assert_eq!(
            (c.batch, c.lease_ms, c.interval_ms, c.once),
            (50, 300, 0, true)
        );
        assert_eq!(
            c.mappings,
            vec![
                Mapping {
                    buffer: "pending:groups".into(),
                    table: "groups".into(),
                    column: "times_seen".into(),
                    id_column: "id".into(),
                    columns: None,
                    missing: Missing::Insert,
                },
                Mapping {
                    buffer: "pending:users".into(),
                    table: "users".into(),
                    column: "logins".into(),
                    id_column: "name".into(),
                    columns: None,
                    missing: Missing::Insert,
                }
            ]
        );
    }

    #[test]
    fn defaults_and_databases() {
        let c = p("--redis r --db counts.db --buffer b --table t --column c").unwrap();
        assert_eq!(
            (c.batch, c.lease_ms, c.interval_ms, c.once),
            (1000, 30_000, 1000, false)
        );
        assert_eq!(c.db, Db::Sqlite("counts.db".into()));
        let db = |s: &str| {
            p(&format!(
                "--redis r --db {s} --buffer b --table t --column c"
            ))
        };
        assert_eq!(
            db("sqlite:///tmp/x.db").unwrap().db,
            Db::Sqlite("/tmp/x.db".into())
        );
        assert_eq!(
            db("postgres://u@h/d").unwrap().db,
            Db::Postgres("postgres://u@h/d".into())
        );
        assert!(matches!(db("mysql://h/d"), Err(ArgsError::Bad(_))));
    }

    #[test]
    fn errors() {
        assert!(
            bad("--redis r --db d --buffer b --table t --column c --bogus").contains("--bogus")
        );
        assert!(bad("--redis r --db d --table t --buffer b --column c").contains("follow"));
        assert!(bad("--redis r --db d --buffer b --column c").contains("--table"));
        assert!(bad("--redis r --db d --buffer b --table t").contains("--column"));
        assert!(bad("--db d --buffer b --table t --column c").contains("--redis"));
        assert!(bad("--redis r --buffer b --table t --column c").contains("--db"));
        assert!(bad("--redis r --db d").contains("--buffer"));
        assert!(
            bad("--redis r --db d --buffer b --table t --column c --batch 0").contains("--batch")
        );
        assert!(
            bad("--redis r --db d --buffer b --table t --column c --lease-ms x").contains("lease")
        );
        assert!(bad("--redis r --db d --buffer b --table t --column c --batch").contains("value"));
        assert!(
            bad("--redis r --db d --buffer b --table t --column c --buffer b").contains("twice")
        );
        assert!(
            bad("--redis r --db d --buffer b --table t --table u --column c").contains("twice")
        );
        assert!(bad("--redis r --db d --buffer b --table t --column id").contains("same"));
        assert_eq!(p("--redis r --help"), Err(ArgsError::Help));
        assert!(
            bad("--redis r --db d --buffer b --table t --column c --columns x").contains("both")
        );
        assert!(bad("--redis r --db d --buffer b --table t --columns a,,b").contains("empty"));
        assert!(bad("--redis r --db d --buffer b --table t --columns a,a").contains("twice"));
        assert!(bad("--redis r --db d --buffer b --table t --columns a,id").contains("same"));
        assert!(
            bad("--redis r --db d --buffer b --table t --columns a --missing x")
                .contains("insert or skip")
        );
        assert!(
            bad("--redis r --db d --buffer b --table t --column a --missing skip")
                .contains("--columns")
        );
        let c = p("--redis r --db d --buffer b --table t --columns a,b --missing skip").unwrap();
        assert_eq!(c.mappings[0].columns, Some(vec!["a".into(), "b".into()]));
        assert_eq!(c.mappings[0].missing, Missing::Skip);
    }
}
