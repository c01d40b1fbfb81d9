//! The database side. A sink checks the target tables at start, creates its bookkeeping
//! tables, and applies one batch per transaction:
//!
//! 1. insert (buffer, batch_id) into `hacks_flushed_batches`; if it is already there the batch
//!    was applied before (a crash between commit and ACK): change nothing;
//! 2. otherwise upsert `column = column + value` for each row and record rejected members in
//!    `hacks_flush_rejects`;
//! 3. commit.
//!
//! Recording the batch first (rather than checking, then inserting) also makes two workers that
//! got the same redelivered batch serialize on the primary key: the second one sees the first
//! one's record once it commits.

mod postgres;
mod schema;
mod sqlite;

use crate::args::{Db, Mapping, Missing};
use crate::batch::Op;
use crate::member::{Id, IdKind};

pub const BATCHES_TABLE: &str = "hacks_flushed_batches";
pub const REJECTS_TABLE: &str = "hacks_flush_rejects";

#[derive(Debug)]
pub enum SinkError {
    /// The schema cannot receive the increments: fix it and start again (exit status 2).
    Config(String),
    /// Connection or transaction failure: retry with backoff.
    Retry(String),
}

/// A mapping with what its id column accepts.
#[derive(Clone, Debug)]
pub struct Target {
    pub mapping: Mapping,
    pub kind: IdKind,
    /// Rows mode: the allowed columns (as given in `--columns`) and what each accepts.
    pub columns: Vec<(String, ColKind)>,
}

/// What a column of a rows-mode mapping accepts, read from the schema at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColKind {
    Int { min: i64, max: i64 },
    Text { max_chars: Option<usize> },
    Bytes,
}

/// A value bound to a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

/// One row of a rows-mode batch: (index into `Target::columns`, op, value), in the row's
/// column order.
pub type RowUpdate = Vec<(usize, Op, Param)>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// The statement applying one row with these columns and ops: an upsert (`--missing
/// insert`) or an UPDATE that touches nothing when the row is missing (`--missing skip`).
/// Parameters: 1 the id, then one per cell in order. Identifiers come from the flags and
/// were checked against the schema at start; they are quoted.
pub fn row_sql(target: &Target, cells: &[(usize, Op, Param)], d: Dialect) -> String {
    let m = &target.mapping;
    let (t, id) = (quote(&m.table), quote(&m.id_column));
    let param = |i: usize, kind: Option<&ColKind>| match (d, kind) {
        (Dialect::Sqlite, _) => format!("?{i}"),
        (Dialect::Postgres, Some(ColKind::Text { .. })) => format!("${i}::text"),
        (Dialect::Postgres, Some(ColKind::Bytes)) => format!("${i}::bytea"),
        (Dialect::Postgres, _) => format!("${i}::bigint"),
    };
    let id_param = match (d, &target.kind) {
        (Dialect::Sqlite, _) => "?1".to_string(),
        (Dialect::Postgres, IdKind::Int { .. }) => "$1::bigint".to_string(),
        (Dialect::Postgres, IdKind::Text { .. }) => "$1::text".to_string(),
    };
    let (greatest, least) = match d {
        Dialect::Sqlite => ("MAX", "MIN"),
        Dialect::Postgres => ("GREATEST", "LEAST"),
    };
    // NULL-safe: a NULL in the table takes the buffered value.
    let expr = |op: Op, old: &str, new: &str| match op {
        Op::Incr => format!("COALESCE({old}, 0) + {new}"),
        Op::Max => format!("{greatest}(COALESCE({old}, {new}), {new})"),
        Op::Min => format!("{least}(COALESCE({old}, {new}), {new})"),
        Op::Set => new.to_string(),
    };
    let col = |i: usize| {
        target
            .columns
            .get(i)
            .map(|(name, kind)| (quote(name), kind))
    };
    let mut names = Vec::with_capacity(cells.len());
    let mut params = Vec::with_capacity(cells.len());
    let mut sets = Vec::with_capacity(cells.len());
    for (k, (i, op, _)) in cells.iter().enumerate() {
        let Some((name, kind)) = col(*i) else {
            continue;
        };
        let p = param(k + 2, Some(kind));
        match m.missing {
            Missing::Insert => sets.push(format!(
                "{name} = {}",
                expr(*op, &format!("{t}.{name}"), &format!("excluded.{name}"))
            )),
            Missing::Skip => sets.push(format!("{name} = {}", expr(*op, &name, &p))),
        }
        names.push(name);
        params.push(p);
    }
    match m.missing {
        Missing::Insert => format!(
            "INSERT INTO {t} ({id}, {}) VALUES ({id_param}, {}) ON CONFLICT ({id}) DO UPDATE SET {}",
            names.join(", "),
            params.join(", "),
            sets.join(", ")
        ),
        Missing::Skip => format!(
            "UPDATE {t} SET {} WHERE {id} = {id_param}",
            sets.join(", ")
        ),
    }
}

/// The batch as recorded in `hacks_flushed_batches`.
pub struct Record<'a> {
    pub buffer: &'a str,
    pub batch_id: i64,
    pub entries: i64,
    pub checksum: i64,
}

/// A member that maps to no row, for `hacks_flush_rejects`.
pub struct Reject {
    pub member: Vec<u8>,
    pub value: i64,
    pub reason: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    AlreadyApplied,
    /// The batch id was recorded with other contents (entries, checksum): nothing applied.
    Mismatch {
        entries: i64,
        checksum: i64,
    },
}

pub trait Sink {
    /// Where it writes, for log lines.
    fn describe(&self) -> String;
    /// Connects if needed, checks the mapping's table and columns, says what ids it takes.
    fn check(&mut self, m: &Mapping) -> Result<IdKind, SinkError>;
    /// Creates the bookkeeping tables when missing.
    fn create_bookkeeping(&mut self) -> Result<(), SinkError>;
    /// Rows mode: what each allowed column accepts (config error for a missing column or a
    /// type that cannot take buffered values).
    fn check_columns(&mut self, m: &Mapping) -> Result<Vec<ColKind>, SinkError>;
    /// Applies one batch in one transaction (steps 1 to 3 above); returns the outcome and the
    /// rows skipped as missing (rows mode with `--missing skip`).
    fn apply(&mut self, target: &Target, changes: &Changes) -> Result<(Outcome, u64), SinkError>;
}

/// The rows of one batch, sorted by id (a stable lock order between concurrent workers).
pub enum Rows {
    /// Plain mode: `column = column + value` for each id (see [`upsert_sql`]).
    Counts(Vec<(Id, i64)>),
    /// Rows mode: the cells of each id (see [`row_sql`]).
    Cells(Vec<(Id, RowUpdate)>),
}

/// One drained batch as the database receives it.
pub struct Changes<'a> {
    pub record: Record<'a>,
    pub rows: Rows,
    pub rejects: Vec<Reject>,
}

/// The bookkeeping statements of a batch's transaction, as one database runs them.
trait Bookkeeping {
    type Error;
    /// Inserts the batch's record; false when its buffer and id are recorded already.
    fn record(&mut self, record: &Record) -> Result<bool, Self::Error>;
    /// The entries and checksum recorded earlier under the batch's buffer and id.
    fn recorded(&mut self, record: &Record) -> Result<Option<(i64, i64)>, Self::Error>;
    /// Records one rejected member of the batch.
    fn reject(&mut self, record: &Record, reject: &Reject) -> Result<(), Self::Error>;
}

/// Steps 1 and 2 in an open transaction: records the batch, then `write`s its rows and
/// records its rejects, unless the batch was recorded before. The caller commits on
/// [`Outcome::Applied`] and rolls back otherwise (nothing was written).
fn record_and_write<T: Bookkeeping>(
    tx: &mut T,
    changes: &Changes,
    write: impl FnOnce(&mut T) -> Result<(), T::Error>,
) -> Result<Outcome, T::Error> {
    let record = &changes.record;
    if !tx.record(record)? {
        return Ok(match tx.recorded(record)? {
            Some((entries, checksum))
                if (entries, checksum) != (record.entries, record.checksum) =>
            {
                Outcome::Mismatch { entries, checksum }
            }
            _ => Outcome::AlreadyApplied,
        });
    }
    write(tx)?;
    for r in &changes.rejects {
        tx.reject(record, r)?;
    }
    Ok(Outcome::Applied)
}

pub fn open(db: &Db) -> Box<dyn Sink> {
    match db {
        Db::Sqlite(path) => Box::new(sqlite::SqliteSink::new(path.clone())),
        Db::Postgres(url) => Box::new(postgres::PgSink::new(url.clone())),
    }
}

/// The bookkeeping tables (created when missing), the same columns in each database's types.
pub fn bookkeeping_sql(d: Dialect) -> String {
    let (text, int, bytes, time, now) = match d {
        Dialect::Sqlite => ("TEXT", "INTEGER", "BLOB", "TEXT", "CURRENT_TIMESTAMP"),
        Dialect::Postgres => ("text", "bigint", "bytea", "timestamptz", "now()"),
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {BATCHES_TABLE} (
             buffer {text} NOT NULL,
             batch_id {int} NOT NULL,
             entries {int} NOT NULL,
             checksum {int} NOT NULL,
             applied_at {time} NOT NULL DEFAULT {now},
             PRIMARY KEY (buffer, batch_id));
         CREATE TABLE IF NOT EXISTS {REJECTS_TABLE} (
             buffer {text} NOT NULL,
             batch_id {int} NOT NULL,
             member {bytes} NOT NULL,
             value {int} NOT NULL,
             reason {text} NOT NULL,
             rejected_at {time} NOT NULL DEFAULT {now});"
    )
}

/// `name` as a double-quoted SQL identifier (the same syntax in SQLite and PostgreSQL).
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The upsert for one target, with `$1`/`?1` style placeholders produced by `param`.
pub fn upsert_sql(m: &Mapping, id_param: &str, value_param: &str) -> String {
    let (t, id, col) = (quote(&m.table), quote(&m.id_column), quote(&m.column));
    // COALESCE: an existing row with a NULL count must not swallow the increment.
    format!(
        "INSERT INTO {t} ({id}, {col}) VALUES ({id_param}, {value_param}) \
         ON CONFLICT ({id}) DO UPDATE SET {col} = COALESCE({t}.{col}, 0) + excluded.{col}"
    )
}

/// The batched form of [`row_sql`] (`--missing insert`, PostgreSQL): one upsert for `n` rows
/// with the same columns and ops, `VALUES (...), (...)`; parameters row by row (id first).
/// The ids of one batch are distinct, so no row is affected twice by one statement.
pub fn rows_sql_pg(target: &Target, cells: &[(usize, Op, Param)], n: usize) -> String {
    let m = &target.mapping;
    let (t, id) = (quote(&m.table), quote(&m.id_column));
    let id_cast = match &target.kind {
        IdKind::Int { .. } => "bigint",
        IdKind::Text { .. } => "text",
    };
    let cols: Vec<(String, &'static str, Op)> = cells
        .iter()
        .filter_map(|(i, op, _)| {
            let (name, kind) = target.columns.get(*i)?;
            let cast = match kind {
                ColKind::Text { .. } => "text",
                ColKind::Bytes => "bytea",
                ColKind::Int { .. } => "bigint",
            };
            Some((quote(name), cast, *op))
        })
        .collect();
    let width = cols.len() + 1;
    let values: Vec<String> = (0..n)
        .map(|r| {
            let mut v = vec![format!("${}::{id_cast}", r * width + 1)];
            for (j, (_, cast, _)) in cols.iter().enumerate() {
                v.push(format!("${}::{cast}", r * width + j + 2));
            }
            format!("({})", v.join(", "))
        })
        .collect();
    let sets: Vec<String> = cols
        .iter()
        .map(|(name, _, op)| {
            let (old, new) = (format!("{t}.{name}"), format!("excluded.{name}"));
            let e = match op {
                Op::Incr => format!("COALESCE({old}, 0) + {new}"),
                Op::Max => format!("GREATEST(COALESCE({old}, {new}), {new})"),
                Op::Min => format!("LEAST(COALESCE({old}, {new}), {new})"),
                Op::Set => new,
            };
            format!("{name} = {e}")
        })
        .collect();
    let names: Vec<&str> = cols.iter().map(|(n, _, _)| n.as_str()).collect();
    format!(
        "INSERT INTO {t} ({id}, {}) VALUES {} ON CONFLICT ({id}) DO UPDATE SET {}",
        names.join(", "),
        values.join(", "),
        sets.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("groups"), "\"groups\"");
        assert_eq!(quote("we\"ird"), "\"we\"\"ird\"");
        let m = Mapping {
            buffer: "b".into(),
            table: "t".into(),
            column: "n".into(),
            id_column: "id".into(),
            columns: None,
            missing: Missing::Insert,
        };
        assert_eq!(
            upsert_sql(&m, "?1", "?2"),
            "INSERT INTO \"t\" (\"id\", \"n\") VALUES (?1, ?2) ON CONFLICT (\"id\") \
             DO UPDATE SET \"n\" = COALESCE(\"t\".\"n\", 0) + excluded.\"n\""
        );
    }

    #[test]
    fn row_statements() {
        let mut target = Target {
            mapping: Mapping {
                buffer: "b".into(),
                table: "g".into(),
                column: String::new(),
                id_column: "id".into(),
                columns: Some(vec!["n".into(), "hi".into(), "s".into()]),
                missing: Missing::Insert,
            },
            kind: IdKind::Int {
                min: i64::MIN,
                max: i64::MAX,
            },
            columns: vec![
                ("n".into(), ColKind::Int { min: 0, max: 9 }),
                ("hi".into(), ColKind::Int { min: 0, max: 9 }),
                ("s".into(), ColKind::Text { max_chars: None }),
            ],
        };
        let cells: RowUpdate = vec![
            (0, Op::Incr, Param::Int(1)),
            (1, Op::Max, Param::Int(2)),
            (2, Op::Set, Param::Text("x".into())),
        ];
        assert_eq!(
            row_sql(&target, &cells, Dialect::Sqlite),
            "INSERT INTO \"g\" (\"id\", \"n\", \"hi\", \"s\") VALUES (?1, ?2, ?3, ?4) ON CONFLICT (\"id\") \
             DO UPDATE SET \"n\" = COALESCE(\"g\".\"n\", 0) + excluded.\"n\", \
             \"hi\" = MAX(COALESCE(\"g\".\"hi\", excluded.\"hi\"), excluded.\"hi\"), \"s\" = excluded.\"s\""
        );
        target.mapping.missing = Missing::Skip;
        assert_eq!(
            row_sql(&target, &cells[1..], Dialect::Postgres),
            "UPDATE \"g\" SET \"hi\" = GREATEST(COALESCE(\"hi\", $2::bigint), $2::bigint), \
             \"s\" = $3::text WHERE \"id\" = $1::bigint"
        );
    }
}
