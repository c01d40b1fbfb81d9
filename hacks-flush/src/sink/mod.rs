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
mod sqlite;

use crate::args::{Db, Mapping};
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
}

/// The batch as recorded in `hacks_flushed_batches`.
pub struct Record<'a> {
    pub buffer: &'a str,
    pub batch_id: i64,
    pub entries: i64,
    pub checksum: i64,
}

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
    /// Applies one batch in one transaction; `rows` are sorted by id (a stable lock order
    /// between concurrent workers).
    fn apply(
        &mut self,
        target: &Target,
        record: &Record,
        rows: &[(Id, i64)],
        rejects: &[Reject],
    ) -> Result<Outcome, SinkError>;
}

pub fn open(db: &Db) -> Box<dyn Sink> {
    match db {
        Db::Sqlite(path) => Box::new(sqlite::SqliteSink::new(path.clone())),
        Db::Postgres(url) => Box::new(postgres::PgSink::new(url.clone())),
    }
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
        };
        assert_eq!(
            upsert_sql(&m, "?1", "?2"),
            "INSERT INTO \"t\" (\"id\", \"n\") VALUES (?1, ?2) ON CONFLICT (\"id\") \
             DO UPDATE SET \"n\" = COALESCE(\"t\".\"n\", 0) + excluded.\"n\""
        );
    }
}
