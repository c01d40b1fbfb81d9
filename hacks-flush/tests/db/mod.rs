//! The SQL side of the end-to-end tests, written once for both sinks: `TestDb` is what a
//! scenario needs from a database, `Sqlite` (a file) and `Postgres` (a private server, see
//! tests/pg) implement it, and `on_both_sinks!` runs each scenario against both. Needs the
//! `flush` and `pg` modules beside it.

#![allow(dead_code, unused_macros)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;

use postgres::types::Type;

use hacks_test_support::Server;

use crate::flush::*;
use crate::pg::Pg;

/// The usual target table: an id, the count, a column the worker leaves alone and one that
/// fills itself (in the SQL both databases accept).
pub const SCHEMA: &str = "CREATE TABLE groups (id INTEGER PRIMARY KEY,
                                               times_seen INTEGER NOT NULL DEFAULT 0, name TEXT,
                                               created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);";

/// `on_both_sinks!(a, b)` makes the tests `sqlite::a`, `postgres::a`, `sqlite::b`, ... each
/// calling the scenario `a(&dyn TestDb)` of the enclosing module with a fresh database.
macro_rules! on_both_sinks {
    (@sink $module:ident, $db:ident, $($scenario:ident),*) => {
        mod $module {
            $(
                #[test]
                fn $scenario() {
                    super::$scenario(&$crate::db::$db::new())
                }
            )*
        }
    };
    ($($scenario:ident),* $(,)?) => {
        on_both_sinks!(@sink sqlite, Sqlite, $($scenario),*);
        on_both_sinks!(@sink postgres, Postgres, $($scenario),*);
    };
}

/// What most scenarios start from: a redis-server and a database holding `schema` (the
/// usual one: [`SCHEMA`]).
pub struct Setup<'a> {
    pub db: &'a dyn TestDb,
    pub server: Server,
    pub con: redis::Connection,
}

impl<'a> Setup<'a> {
    pub fn new(db: &'a dyn TestDb) -> Setup<'a> {
        Setup::with(db, Server::start(), SCHEMA)
    }

    pub fn with(db: &'a dyn TestDb, server: Server, schema: &str) -> Setup<'a> {
        db.exec(schema);
        let con = server.conn();
        Setup { db, server, con }
    }

    /// The usual mapping against this server and database, then `extra` (words).
    pub fn flags(&self, extra: &str) -> Vec<String> {
        flags(&redis_url(self.server.port), &self.db.url(), extra)
    }

    /// `--once` with `extra`, which must exit with `code`.
    pub fn once(&self, extra: &str, code: i32) -> Done {
        once(self.db, self.flags(extra), code)
    }

    pub fn spawn(&self, extra: &str, log: &str) -> Worker {
        Worker::spawn(&self.flags(extra), self.db.dir().path(log))
    }

    /// HACK.BUFINCR on `pending:groups`.
    pub fn incr(&mut self, pairs: &[(&str, i64)]) {
        bufincr(&mut self.con, "pending:groups", pairs);
    }

    pub fn gone(&mut self, key: &str) -> bool {
        buffer_gone(&mut self.con, key)
    }

    pub fn in_flight(&mut self) -> i64 {
        batches_in_flight(&mut self.con, "pending:groups")
    }

    /// HACK.DRAIN of `pending:groups` by "a worker" (this test) that never applies it;
    /// returns the batch id.
    pub fn lease(&mut self, ms: u64) -> i64 {
        let v: Vec<redis::Value> = redis::cmd("HACK.DRAIN")
            .arg("pending:groups")
            .arg("LEASE")
            .arg(ms)
            .query(&mut self.con)
            .unwrap();
        match v.first() {
            Some(redis::Value::Int(id)) => *id,
            _ => panic!("HACK.DRAIN: {v:?}"),
        }
    }
}

/// Runs `a` plus `--once` to the end; it must exit with `code`.
pub fn once(db: &dyn TestDb, mut a: Vec<String>, code: i32) -> Done {
    a.push("--once".into());
    let done = run(&a, &db.dir().0);
    assert_eq!(done.code, Some(code), "{a:?}: stderr:\n{}", done.stderr);
    done
}

/// A value read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Val {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Val {
    pub fn int(&self) -> i64 {
        match self {
            Val::Int(n) => *n,
            other => panic!("not an integer: {other:?}"),
        }
    }

    pub fn text(&self) -> &str {
        match self {
            Val::Text(s) => s,
            other => panic!("not text: {other:?}"),
        }
    }
}

impl From<i64> for Val {
    fn from(n: i64) -> Val {
        Val::Int(n)
    }
}

impl From<&str> for Val {
    fn from(s: &str) -> Val {
        Val::Text(s.to_string())
    }
}

impl<const N: usize> From<&[u8; N]> for Val {
    fn from(b: &[u8; N]) -> Val {
        Val::Bytes(b.to_vec())
    }
}

/// `row![1, "a", b"x"]`: a row of `Val`s, to compare with `TestDb::rows`.
macro_rules! row {
    ($($v:expr),* $(,)?) => {
        vec![$($crate::db::Val::from($v)),*]
    };
}

pub trait TestDb {
    /// The `--db` flag.
    fn url(&self) -> String;
    /// How the worker names the database in its log lines.
    fn shown(&self) -> String;
    /// How the worker's schema errors show a column declared as `declared`.
    fn type_shown(&self, declared: &str) -> String;
    /// A directory for worker logs, removed with the database.
    fn dir(&self) -> &TempDir;
    /// Runs statements (no result).
    fn exec(&self, sql: &str);
    /// Every row of a query.
    fn rows(&self, sql: &str) -> Vec<Vec<Val>>;

    /// The single integer a query returns.
    fn int(&self, sql: &str) -> i64 {
        match self.rows(sql).as_slice() {
            [row] if row.len() == 1 => row[0].int(),
            rows => panic!("{sql}: {rows:?}"),
        }
    }

    /// `id -> times_seen` of every row of `groups`.
    fn totals(&self) -> BTreeMap<i64, i64> {
        let rows = self.rows("SELECT id, times_seen FROM groups");
        rows.iter().map(|r| (r[0].int(), r[1].int())).collect()
    }
}

pub struct Sqlite {
    pub dir: TempDir,
    pub path: PathBuf,
}

impl Sqlite {
    pub fn new() -> Sqlite {
        let dir = TempDir::new("sqlite");
        let path = dir.path("counts.db");
        Sqlite { dir, path }
    }

    pub fn open(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.path).expect("open sqlite")
    }
}

impl TestDb for Sqlite {
    fn url(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn shown(&self) -> String {
        format!("SQLite database {}", self.path.display())
    }

    fn type_shown(&self, declared: &str) -> String {
        format!("{declared:?}")
    }

    fn dir(&self) -> &TempDir {
        &self.dir
    }

    fn exec(&self, sql: &str) {
        self.open().execute_batch(sql).expect(sql);
    }

    fn rows(&self, sql: &str) -> Vec<Vec<Val>> {
        use rusqlite::types::ValueRef;
        let con = self.open();
        let mut st = con.prepare(sql).expect(sql);
        let n = st.column_count();
        let rows = st.query_map([], |r| {
            (0..n)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        ValueRef::Null => Val::Null,
                        ValueRef::Integer(n) => Val::Int(n),
                        ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into()),
                        ValueRef::Blob(b) => Val::Bytes(b.to_vec()),
                        ValueRef::Real(x) => panic!("{sql}: a REAL {x}"),
                    })
                })
                .collect()
        });
        rows.and_then(|rows| rows.collect()).expect(sql)
    }
}

/// A private server (stopped on drop) with a database `counts`.
pub struct Postgres {
    pub server: RefCell<Pg>,
    dir: TempDir,
}

impl Postgres {
    pub fn new() -> Postgres {
        let pg = Pg::start();
        pg.create_db("counts");
        Postgres {
            server: RefCell::new(pg),
            dir: TempDir::new("pg"),
        }
    }

    fn client(&self) -> postgres::Client {
        self.server.borrow().client("counts")
    }
}

impl TestDb for Postgres {
    fn url(&self) -> String {
        self.server.borrow().url("counts")
    }

    fn shown(&self) -> String {
        format!("PostgreSQL 127.0.0.1:{}/counts", self.server.borrow().port)
    }

    fn type_shown(&self, declared: &str) -> String {
        match declared {
            "TEXT" => "text",
            "REAL" => "real",
            "TIMESTAMP" => "timestamp without time zone",
            _ => panic!("type_shown({declared:?}): add it"),
        }
        .into()
    }

    fn dir(&self) -> &TempDir {
        &self.dir
    }

    fn exec(&self, sql: &str) {
        self.client().batch_execute(sql).expect(sql);
    }

    fn rows(&self, sql: &str) -> Vec<Vec<Val>> {
        let rows = self.client().query(sql, &[]).expect(sql);
        let val = |r: &postgres::Row, i: usize| -> Val {
            let t = r.columns()[i].type_();
            let v = match *t {
                Type::INT2 => r.get::<_, Option<i16>>(i).map(|n| Val::Int(n.into())),
                Type::INT4 => r.get::<_, Option<i32>>(i).map(|n| Val::Int(n.into())),
                Type::INT8 => r.get::<_, Option<i64>>(i).map(Val::Int),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                    r.get::<_, Option<String>>(i).map(Val::Text)
                }
                Type::BYTEA => r.get::<_, Option<Vec<u8>>>(i).map(Val::Bytes),
                _ => panic!("{sql}: column {i} is {t}: cast it"),
            };
            v.unwrap_or(Val::Null)
        };
        rows.iter()
            .map(|r| (0..r.len()).map(|i| val(r, i)).collect())
            .collect()
    }
}
