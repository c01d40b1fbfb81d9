//! SQLite sink (rusqlite, bundled SQLite).

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::types::ToSqlOutput;
use rusqlite::{
    params, params_from_iter, Connection, OpenFlags, OptionalExtension, ToSql, TransactionBehavior,
};

use super::schema::{self, Column};
use super::{
    bookkeeping_sql, record_and_write, row_sql, upsert_sql, Bookkeeping, Changes, ColKind, Dialect,
    Outcome, Param, Record, Reject, Rows, Sink, SinkError, Target, BATCHES_TABLE, REJECTS_TABLE,
};
use crate::args::Mapping;
use crate::member::{Id, IdKind};
use crate::signals;

const BUSY_SLICE: Duration = Duration::from_millis(10);
const BUSY_ATTEMPTS: i32 = 500;

pub struct SqliteSink {
    path: PathBuf,
    con: Option<Connection>,
}

/// A column as `pragma_table_info` describes it, with its position in the primary key (0:
/// not part of it) as the key.
type SqliteColumn = Column<i64>;

/// What a column of this declared type takes: SQLite's column affinity rules (section 3.1
/// of its datatype documentation), reduced to what matters here.
fn col_kind(decl_type: &str) -> Option<ColKind> {
    let t = decl_type.to_ascii_uppercase();
    if t.contains("INT") {
        Some(ColKind::Int {
            min: i64::MIN,
            max: i64::MAX,
        })
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        Some(ColKind::Text { max_chars: None })
    } else if t.is_empty() || t.contains("BLOB") {
        Some(ColKind::Bytes)
    } else {
        None
    }
}

fn retry(e: rusqlite::Error) -> SinkError {
    SinkError::Retry(e.to_string())
}

impl SqliteSink {
    pub fn new(path: PathBuf) -> SqliteSink {
        SqliteSink { path, con: None }
    }

    fn con(&mut self) -> Result<&mut Connection, SinkError> {
        if self.con.is_none() {
            // No CREATE flag: a mistyped path must not silently become an empty database.
            if !self.path.exists() {
                // The caller's line already names the database (`describe`).
                return Err(SinkError::Config(
                    "does not exist (the worker never creates a database: create it first)".into(),
                ));
            }
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let mut con = Connection::open_with_flags(&self.path, flags).map_err(retry)?;
            // Other writers (the application) hold the lock briefly: wait up to 5 s rather
            // than fail, but give up at once on a stop request (SQLite's own busy_timeout
            // would keep a SIGTERM waiting).
            con.busy_handler(Some(|attempt: i32| {
                if signals::stop_requested() || attempt >= BUSY_ATTEMPTS {
                    return false;
                }
                std::thread::sleep(BUSY_SLICE);
                true
            }))
            .map_err(retry)?;
            self.con = Some(con);
        }
        self.con
            .as_mut()
            .ok_or_else(|| SinkError::Retry("not connected".into()))
    }

    fn columns(con: &Connection, table: &str) -> Result<Vec<SqliteColumn>, SinkError> {
        let is_table: bool = con
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_schema \
                 WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
                [table],
                |r| r.get(0),
            )
            .map_err(retry)?;
        if !is_table {
            return Err(SinkError::Config(format!("table {table} does not exist")));
        }
        let mut st = con
            .prepare(
                "SELECT name, type, \"notnull\" AND dflt_value IS NULL, pk \
                 FROM pragma_table_info(?1)",
            )
            .map_err(retry)?;
        let rows = st
            .query_map([table], |r| {
                let row: (String, String, bool, i64) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                Ok(row)
            })
            .map_err(retry)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(retry)?;
        // An INTEGER PRIMARY KEY is the rowid: an INSERT without it gets one.
        let single_pk = rows.iter().filter(|r| r.3 > 0).count() == 1;
        let column = |(name, decl_type, needs_value, pk): (String, String, bool, i64)| {
            let rowid = single_pk && pk == 1 && decl_type.eq_ignore_ascii_case("INTEGER");
            Column {
                name,
                shown_type: format!("{decl_type:?}"),
                kind: col_kind(&decl_type),
                needs_value: needs_value && !rowid,
                key: pk,
            }
        };
        Ok(rows.into_iter().map(column).collect())
    }

    /// Whether `column` alone is the primary key or has a non-partial unique index, so that
    /// `ON CONFLICT (column)` works.
    fn is_unique(
        con: &Connection,
        table: &str,
        cols: &[SqliteColumn],
        column: &str,
    ) -> Result<bool, SinkError> {
        let pk: Vec<&SqliteColumn> = cols.iter().filter(|c| c.key > 0).collect();
        if let [only] = pk.as_slice() {
            if only.name.eq_ignore_ascii_case(column) {
                return Ok(true);
            }
        }
        let mut st = con
            .prepare("SELECT name FROM pragma_index_list(?1) WHERE \"unique\" AND NOT partial")
            .map_err(retry)?;
        let indexes = st
            .query_map([table], |r| r.get::<_, String>(0))
            .map_err(retry)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(retry)?;
        for index in indexes {
            let mut st = con
                .prepare("SELECT name FROM pragma_index_info(?1)")
                .map_err(retry)?;
            // Expression indexes list a NULL name.
            let names = st
                .query_map([&index], |r| r.get::<_, Option<String>>(0))
                .map_err(retry)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(retry)?;
            if let [Some(name)] = names.as_slice() {
                if name.eq_ignore_ascii_case(column) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

impl Sink for SqliteSink {
    fn describe(&self) -> String {
        format!("SQLite database {}", self.path.display())
    }

    fn check(&mut self, m: &Mapping) -> Result<IdKind, SinkError> {
        let con = self.con()?;
        let cols = Self::columns(con, &m.table)?;
        schema::check(Dialect::Sqlite, m, &cols, |id| {
            Self::is_unique(con, &m.table, &cols, &id.name)
        })
    }

    fn create_bookkeeping(&mut self) -> Result<(), SinkError> {
        let con = self.con()?;
        con.execute_batch(&bookkeeping_sql(Dialect::Sqlite))
            .map_err(retry)
    }

    fn check_columns(&mut self, m: &Mapping) -> Result<Vec<ColKind>, SinkError> {
        let cols = Self::columns(self.con()?, &m.table)?;
        schema::column_kinds(Dialect::Sqlite, m, &cols)
    }

    fn apply(&mut self, target: &Target, changes: &Changes) -> Result<(Outcome, u64), SinkError> {
        let mut skipped = 0u64;
        let outcome = self.transact(changes, |tx| {
            match &changes.rows {
                Rows::Counts(rows) => {
                    let mut st = tx.prepare_cached(&upsert_sql(&target.mapping, "?1", "?2"))?;
                    for (id, value) in rows {
                        st.execute(params![id, value])?;
                    }
                }
                Rows::Cells(rows) => {
                    for (id, cells) in rows {
                        let mut st = tx.prepare_cached(&row_sql(target, cells, Dialect::Sqlite))?;
                        let values = cells.iter().map(|(_, _, p)| p as &dyn ToSql);
                        let params = std::iter::once(id as &dyn ToSql).chain(values);
                        if st.execute(params_from_iter(params))? == 0 {
                            skipped += 1;
                        }
                    }
                }
            }
            Ok(())
        })?;
        Ok((outcome, skipped))
    }
}

impl SqliteSink {
    /// One IMMEDIATE transaction (the write lock up front instead of failing to upgrade
    /// later): record the batch (or find it recorded), `write` its rows, record the rejects,
    /// commit.
    fn transact(
        &mut self,
        changes: &Changes,
        write: impl FnOnce(&rusqlite::Transaction) -> Result<(), rusqlite::Error>,
    ) -> Result<Outcome, SinkError> {
        let result = (|| {
            let con = self.con()?;
            let mut tx = con
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(retry)?;
            let outcome = record_and_write(&mut tx, changes, |tx| write(tx)).map_err(retry)?;
            // Not applied: dropping `tx` rolls back (nothing was written).
            if outcome == Outcome::Applied {
                tx.commit().map_err(retry)?;
            }
            Ok(outcome)
        })();
        if result.is_err() {
            // Reopen next time: cheap, and clears any odd connection state.
            self.con = None;
        }
        result
    }
}

impl Bookkeeping for rusqlite::Transaction<'_> {
    type Error = rusqlite::Error;

    fn record(&mut self, r: &Record) -> Result<bool, rusqlite::Error> {
        let inserted = self.execute(
            &format!(
                "INSERT INTO {BATCHES_TABLE} (buffer, batch_id, entries, checksum) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING"
            ),
            params![r.buffer, r.batch_id, r.entries, r.checksum],
        )?;
        Ok(inserted > 0)
    }

    fn recorded(&mut self, r: &Record) -> Result<Option<(i64, i64)>, rusqlite::Error> {
        self.query_row(
            &format!(
                "SELECT entries, checksum FROM {BATCHES_TABLE} WHERE buffer = ?1 AND batch_id = ?2"
            ),
            params![r.buffer, r.batch_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
    }

    fn reject(&mut self, r: &Record, reject: &Reject) -> Result<(), rusqlite::Error> {
        let mut st = self.prepare_cached(&format!(
            "INSERT INTO {REJECTS_TABLE} (buffer, batch_id, member, value, reason) \
             VALUES (?1, ?2, ?3, ?4, ?5)"
        ))?;
        st.execute(params![
            r.buffer,
            r.batch_id,
            reject.member,
            reject.value,
            reject.reason
        ])?;
        Ok(())
    }
}

/// An id binds as the integer or text it holds.
impl ToSql for Id {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Id::Int(n) => n.to_sql(),
            Id::Text(s) => s.to_sql(),
        }
    }
}

/// A cell's value binds as the integer, text or blob it holds.
impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Param::Int(n) => n.to_sql(),
            Param::Text(s) => s.to_sql(),
            Param::Bytes(b) => b.to_sql(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Missing;
    use rusqlite::types::FromSql;

    struct TempDb(PathBuf);
    impl Drop for TempDb {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn db(schema: &str) -> (TempDb, SqliteSink) {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "hacks-flush-unit-{}-{}.db",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let con = Connection::open(&path).unwrap();
        con.execute_batch(schema).unwrap();
        drop(con);
        (TempDb(path.clone()), SqliteSink::new(path))
    }

    fn mapping(table: &str, column: &str, id: &str) -> Mapping {
        Mapping {
            buffer: "buf".into(),
            table: table.into(),
            column: column.into(),
            id_column: id.into(),
            columns: None,
            missing: Missing::Insert,
        }
    }

    /// Every (key, count) row a query returns.
    fn pairs<K: FromSql>(con: &Connection, sql: &str) -> Vec<(K, i64)> {
        let mut st = con.prepare(sql).unwrap();
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    fn config_err(r: Result<IdKind, SinkError>) -> String {
        match r {
            Err(SinkError::Config(m)) => m,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn checks_the_schema() {
        let (_t, mut s) = db(
            "CREATE TABLE g (id INTEGER PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0,
                                  r REAL, name TEXT UNIQUE, note TEXT, label VARCHAR(10));
                              CREATE TABLE h (a INTEGER, b INTEGER, n BIGINT, PRIMARY KEY (a, b));
                              CREATE TABLE k (id INTEGER PRIMARY KEY, n INTEGER,
                                              must TEXT NOT NULL);
                              CREATE TABLE u (code TEXT, n INTEGER);
                              CREATE UNIQUE INDEX u_code ON u (code);
                              CREATE TABLE p (code TEXT, n INTEGER);
                              CREATE UNIQUE INDEX p_code ON p (code) WHERE code > 'a';",
        );
        let int = IdKind::Int {
            min: i64::MIN,
            max: i64::MAX,
        };
        assert_eq!(s.check(&mapping("g", "n", "id")).unwrap(), int);
        assert_eq!(s.check(&mapping("G", "N", "ID")).unwrap(), int);
        assert_eq!(
            s.check(&mapping("g", "n", "name")).unwrap(),
            IdKind::Text { max_chars: None }
        );
        assert_eq!(
            s.check(&mapping("u", "n", "code")).unwrap(),
            IdKind::Text { max_chars: None }
        );
        assert!(config_err(s.check(&mapping("nope", "n", "id"))).contains("does not exist"));
        assert!(config_err(s.check(&mapping("g", "missing", "id"))).contains("no column missing"));
        assert!(config_err(s.check(&mapping("g", "r", "id"))).contains("not an integer"));
        assert!(config_err(s.check(&mapping("g", "name", "id"))).contains("not an integer"));
        assert!(config_err(s.check(&mapping("g", "n", "note"))).contains("UNIQUE"));
        assert!(config_err(s.check(&mapping("g", "n", "r"))).contains("integer or text"));
        assert!(config_err(s.check(&mapping("h", "n", "a"))).contains("UNIQUE"));
        assert!(config_err(s.check(&mapping("p", "n", "code"))).contains("UNIQUE"));
        assert!(config_err(s.check(&mapping("k", "n", "id"))).contains("must"));
    }

    #[test]
    fn missing_file_is_a_config_error() {
        let mut s = SqliteSink::new(std::env::temp_dir().join("hacks-flush-no-such-dir/x.db"));
        assert!(config_err(s.check(&mapping("g", "n", "id"))).contains("does not exist"));
    }

    #[test]
    fn applies_once_and_records_rejects() {
        let (t, mut s) = db(
            "CREATE TABLE g (id INTEGER PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0);
                             INSERT INTO g VALUES (1, 10);
                             CREATE TABLE w (name TEXT PRIMARY KEY, n INTEGER);
                             INSERT INTO w VALUES ('a', NULL);",
        );
        s.create_bookkeeping().unwrap();
        s.create_bookkeeping().unwrap(); // idempotent
        let target = Target {
            mapping: mapping("g", "n", "id"),
            kind: s.check(&mapping("g", "n", "id")).unwrap(),
            columns: vec![],
        };
        let rows = || Rows::Counts(vec![(Id::Int(1), 5), (Id::Int(2), -3)]);
        let changes = Changes {
            record: Record {
                buffer: "buf",
                batch_id: 1,
                entries: 3,
                checksum: 99,
            },
            rows: rows(),
            rejects: vec![Reject {
                member: b"x".to_vec(),
                value: 4,
                reason: "not a decimal integer".into(),
            }],
        };
        let mut apply = |target: &Target, changes: &Changes| s.apply(target, changes).unwrap().0;
        assert_eq!(apply(&target, &changes), Outcome::Applied);
        assert_eq!(apply(&target, &changes), Outcome::AlreadyApplied);
        let other = Changes {
            record: Record {
                checksum: 98,
                ..changes.record
            },
            rows: rows(),
            rejects: vec![],
        };
        assert_eq!(
            apply(&target, &other),
            Outcome::Mismatch {
                entries: 3,
                checksum: 99
            }
        );
        // Same batch id on another buffer is another batch.
        let b2 = Changes {
            record: Record {
                buffer: "buf2",
                ..changes.record
            },
            rows: rows(),
            rejects: vec![],
        };
        assert_eq!(apply(&target, &b2), Outcome::Applied);

        let wt = Target {
            mapping: mapping("w", "n", "name"),
            kind: IdKind::Text { max_chars: None },
            columns: vec![],
        };
        let w = Changes {
            record: Record {
                buffer: "w",
                ..changes.record
            },
            rows: Rows::Counts(vec![(Id::Text("a".into()), 2), (Id::Text("b".into()), 1)]),
            rejects: vec![],
        };
        apply(&wt, &w);

        let con = Connection::open(&t.0).unwrap();
        assert_eq!(
            pairs::<i64>(&con, "SELECT id, n FROM g ORDER BY id"),
            [(1, 20), (2, -6)]
        );
        assert_eq!(
            pairs::<String>(&con, "SELECT name, n FROM w ORDER BY name"),
            [("a".to_string(), 2), ("b".to_string(), 1)]
        );
        let rejects: i64 = con
            .query_row(
                "SELECT count(*) FROM hacks_flush_rejects WHERE member = x'78'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rejects, 1);
    }
}
