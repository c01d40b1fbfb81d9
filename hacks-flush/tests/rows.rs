//! Rows mode (`--columns`) end to end on both sinks: INCR/MAX/MIN/SET applied per row in
//! the batch's transaction (NULL-safe), columns outside the allow-list and rows in plain mode
//! sent to the rejects, `--missing skip` counting the rows it skips, and the schema checked
//! at start.

use hacks_test_support as common;
#[macro_use]
mod db;
mod flush;
mod pg;

use common::Server;
use db::{once, Setup, TestDb, Val};
use flush::*;

pub const ROWS_SCHEMA: &str = "CREATE TABLE groups (id INTEGER PRIMARY KEY,
    times_seen INTEGER NOT NULL DEFAULT 0, last_seen BIGINT, first_seen BIGINT,
    message TEXT, secret TEXT);";

on_both_sinks!(
    rows_apply_each_op_and_reject_what_is_not_allowed,
    missing_rows_are_skipped_and_counted,
    rows_schema_is_checked_at_start,
    a_row_in_plain_mode_is_rejected,
);

/// Rows-mode scenarios: the same start (with `ROWS_SCHEMA`), rows written and flushed.
impl Setup<'_> {
    /// `HACK.BUFUPDATE pending:groups member` with `updates` as words (`INCR times_seen 1 ...`).
    fn update(&mut self, member: &str, updates: &str) {
        redis::cmd("HACK.BUFUPDATE")
            .arg("pending:groups")
            .arg(member)
            .arg(words(updates))
            .query::<redis::Value>(&mut self.con)
            .expect("HACK.BUFUPDATE");
    }

    /// `--once` in rows mode plus `extra`: it must exit 0 and log `applied`.
    fn flush(&self, extra: &str, applied: &str) {
        let done = once(self.db, rows_flags(self.server.port, self.db, extra), 0);
        says(&done.stderr, applied);
    }
}

fn rows_flags(port: u16, db: &dyn TestDb, extra: &str) -> Vec<String> {
    let mut a = args(&["--redis", &redis_url(port), "--db", &db.url()]);
    a.extend(words(
        "--buffer pending:groups --table groups \
         --columns times_seen,last_seen,first_seen,message",
    ));
    a.extend(words(extra));
    a
}

fn table(db: &dyn TestDb) -> Vec<Vec<Val>> {
    db.rows("SELECT id, times_seen, last_seen, first_seen, message, secret FROM groups ORDER BY id")
}

fn rows_apply_each_op_and_reject_what_is_not_allowed(db: &dyn TestDb) {
    let mut s = Setup::with(db, Server::start(), ROWS_SCHEMA);
    db.exec(
        "INSERT INTO groups (id, times_seen, last_seen, first_seen, message) \
         VALUES (1, 10, 500, 100, 'old'), (2, 0, NULL, NULL, NULL);",
    );
    // An older event after a newer one: MAX keeps 600, MIN 50.
    s.update("1", "INCR times_seen 1 MAX last_seen 600 SET message new");
    s.update("1", "INCR times_seen 2 MAX last_seen 550 MIN first_seen 50");
    // MAX below the table's value, and NULLs in the table.
    s.update("2", "MAX last_seen 7 MIN first_seen 7 INCR times_seen 3");
    s.update("3", "INCR times_seen 4 SET message fresh");
    // Not allowed: a column outside --columns, and a plain member ("value").
    s.update("4", "INCR times_seen 1 SET secret pw");
    bufincr(&mut s.con, "pending:groups", &[("5", 9)]);
    // A member that is no id.
    s.update("x", "INCR times_seen 1");
    s.flush("", "6 entries applied (3 rejected, 0 missing rows skipped)");
    assert_eq!(
        table(db),
        vec![
            row![1, 13, 600, 50, "new", Val::Null],
            row![2, 3, 7, 7, Val::Null, Val::Null],
            row![3, 4, Val::Null, Val::Null, "fresh", Val::Null],
        ]
    );
    let rejects = db.rows("SELECT member, value, reason FROM hacks_flush_rejects ORDER BY member");
    // (member, value, what the reason says); a rejected row's value is 0.
    let expected: [(&[u8; 1], i64, &[&str]); 3] = [
        // The reason keeps the row.
        (
            b"4",
            0,
            &["\"secret\" is not in --columns", "\"secret\" SET \"pw\""],
        ),
        (b"5", 9, &["\"value\" is not in --columns"]),
        (b"x", 0, &["not a decimal integer"]),
    ];
    assert_eq!(rejects.len(), expected.len(), "{rejects:?}");
    for (row, (member, value, says)) in rejects.iter().zip(expected) {
        assert_eq!(row[..2], [Val::from(member), Val::Int(value)], "{row:?}");
        for text in says {
            assert!(row[2].text().contains(text), "no {text:?} in {row:?}");
        }
    }
    // The same batch again (as after a crash before ACK) changes nothing: exactly once.
    assert_eq!(db.int("SELECT count(*) FROM hacks_flushed_batches"), 1);
}

fn missing_rows_are_skipped_and_counted(db: &dyn TestDb) {
    let mut s = Setup::with(db, Server::start(), ROWS_SCHEMA);
    db.exec("INSERT INTO groups (id, times_seen) VALUES (1, 1);");
    s.update("1", "INCR times_seen 2 MAX last_seen 9");
    s.update("8", "INCR times_seen 5");
    s.update("9", "SET message gone");
    let skipped = "3 entries applied (0 rejected, 2 missing rows skipped)";
    s.flush("--missing skip", skipped);
    assert_eq!(
        table(db),
        vec![row![1, 3, 9, Val::Null, Val::Null, Val::Null]]
    );
}

fn rows_schema_is_checked_at_start(db: &dyn TestDb) {
    db.exec(ROWS_SCHEMA);
    db.exec("CREATE TABLE strict (id INTEGER PRIMARY KEY, n INTEGER, must TEXT NOT NULL);");
    let server = Server::start();
    let base = args(&["--redis", &redis_url(server.port), "--db", &db.url()]);
    let with = |m: &str| {
        let mut a = base.clone();
        a.extend(words(m));
        a
    };
    let d = once(
        db,
        with("--buffer b --table groups --columns times_seen,nope"),
        2,
    );
    says(&d.stderr, "table groups has no column nope");
    // A row may leave `must` out: inserting missing rows cannot work...
    let d = once(db, with("--buffer b --table strict --columns n"), 2);
    says(
        &d.stderr,
        "column strict.must is NOT NULL without a default",
    );
    // ...skipping them can.
    once(
        db,
        with("--buffer b --table strict --columns n --missing skip"),
        0,
    );
}

fn a_row_in_plain_mode_is_rejected(db: &dyn TestDb) {
    let mut s = Setup::with(db, Server::start(), ROWS_SCHEMA);
    s.update("1", "INCR times_seen 2 SET message m");
    bufincr(&mut s.con, "pending:groups", &[("2", 5)]);
    let done = once(db, flags(&redis_url(s.server.port), &db.url(), ""), 0);
    says(&done.stderr, "2 entries applied (1 rejected)");
    assert_eq!(db.totals(), [(2, 5)].into());
    let reason = db.rows("SELECT reason FROM hacks_flush_rejects");
    assert!(
        format!("{reason:?}").contains("map this buffer with --columns"),
        "{reason:?}"
    );
}

/// End to end (run by scripts/bench: `--ignored --nocapture`): 20,000 Sentry-shaped rows
/// (INCR times_seen, MAX last_seen, SET message 60 bytes, SET data 300 bytes) flushed by one
/// worker with 1,000-row batches into each database; prints rows/s over the whole run and
/// over the batches' own time (DRAIN + transaction + ACK, from the worker's log lines).
#[test]
#[ignore]
fn bench_end_to_end() {
    const N: usize = 20_000;
    for db in [
        Box::new(db::Sqlite::new()) as Box<dyn TestDb>,
        Box::new(db::Postgres::new()),
    ] {
        let db = db.as_ref();
        db.exec(
            "CREATE TABLE groups (id BIGINT PRIMARY KEY, times_seen INTEGER NOT NULL DEFAULT 0,
                                  last_seen BIGINT, message TEXT, data TEXT);",
        );
        let server = Server::start();
        let mut con = server.conn();
        let (msg, data) = ("m".repeat(60), "d".repeat(300));
        let mut pipe = redis::pipe();
        for i in 0..N {
            pipe.cmd("HACK.BUFUPDATE")
                .arg("pending:groups")
                .arg(i * 7919 % 1_000_003)
                .arg("INCR")
                .arg("times_seen")
                .arg(1)
                .arg("MAX")
                .arg("last_seen")
                .arg(1_700_000_000 + i)
                .arg("SET")
                .arg("message")
                .arg(&msg)
                .arg("SET")
                .arg("data")
                .arg(&data)
                .ignore();
        }
        pipe.query::<()>(&mut con).expect("load rows");
        let mut a = args(&["--redis", &redis_url(server.port), "--db", &db.url()]);
        a.extend(words(
            "--buffer pending:groups --table groups --columns times_seen,last_seen,message,data \
             --batch 1000",
        ));
        let t = std::time::Instant::now();
        let done = once(db, a, 0);
        let wall = t.elapsed().as_secs_f64();
        let batch_ms: f64 = done
            .stderr
            .lines()
            .filter(|l| l.contains("entries applied"))
            .filter_map(|l| {
                l.rsplit(", ")
                    .next()?
                    .strip_suffix(" ms")?
                    .parse::<f64>()
                    .ok()
            })
            .sum();
        assert_eq!(db.int("SELECT count(*) FROM groups"), N as i64);
        eprintln!(
            "e2e {}: {N} rows in {wall:.2} s = {:.0} rows/s (whole run, start-up included); \
             batches alone {:.0} ms = {:.0} rows/s",
            if db.url().starts_with("sqlite") {
                "SQLite"
            } else {
                "PostgreSQL"
            },
            N as f64 / wall,
            batch_ms,
            N as f64 / (batch_ms / 1000.0)
        );
    }
}
