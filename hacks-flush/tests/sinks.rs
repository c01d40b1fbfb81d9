//! The worker end to end against real redis-server processes (with the module) and each SQL
//! sink: every scenario is written once over `TestDb` and runs as `sqlite::NAME` and
//! `postgres::NAME`; the few that only one sink can have are `sqlite_*` and `postgres_*`.

use hacks_test_support as common;
#[macro_use]
mod db;
mod flush;
mod pg;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{Opts, Server};
use db::{once, Postgres, Setup, Sqlite, TestDb, Val, SCHEMA};
use flush::*;

on_both_sinks!(
    happy_path_applies_totals_and_creates_rows,
    rejects_members_that_are_no_id_and_applies_the_rest,
    redelivered_batches_apply_exactly_once,
    sigterm_and_sigint_exit_cleanly,
    schema_problems_exit_2_with_a_clear_message,
    unreachable_redis_is_retried_with_backoff,
    redis_without_the_module_exits_2,
    reconnects_after_a_redis_restart,
    a_reused_batch_id_is_refused,
    an_error_reply_on_one_buffer_does_not_block_the_others,
);

fn happy_path_applies_totals_and_creates_rows(db: &dyn TestDb) {
    let mut s = Setup::new(db);
    db.exec("INSERT INTO groups (id, times_seen, name) VALUES (1, 100, 'a'), (2, 0, 'b');");
    s.incr(&[("1", 5), ("3", 7), ("1", 2)]);
    s.incr(&[("2", -4), ("4", 1)]);
    for i in 0..250 {
        s.incr(&[(&(10 + i % 50).to_string(), 1)]);
    }
    let done = s.once("--batch 20", 0);

    let mut want: BTreeMap<i64, i64> = [(1, 107), (2, -4), (3, 7), (4, 1)].into();
    for i in 0..50 {
        want.insert(10 + i, 5);
    }
    assert_eq!(db.totals(), want);
    assert!(s.gone("pending:groups"));
    // One line per batch, and one record: 54 members in batches of 20.
    let applied = done.stderr.matches("entries applied").count();
    assert_eq!(applied, 3, "{}", done.stderr);
    assert_eq!(db.int("SELECT count(*) FROM hacks_flushed_batches"), 3);
    says(&done.stderr, "pending:groups batch ");

    // A second run finds nothing and changes nothing.
    let again = s.once("", 0);
    assert!(
        !again.stderr.contains("entries applied"),
        "{}",
        again.stderr
    );
    assert_eq!(db.totals(), want);
}

fn rejects_members_that_are_no_id_and_applies_the_rest(db: &dyn TestDb) {
    let users = "CREATE TABLE users (name TEXT PRIMARY KEY, logins INTEGER);";
    let mut s = Setup::with(db, Server::start(), &format!("{SCHEMA} {users}"));
    s.incr(&[("1", 5), ("abc", 3), ("2", 4), ("007", 9)]);
    // A non-UTF-8 member for a text id column (a second buffer in the same process).
    redis::cmd("HACK.BUFINCR")
        .arg("pending:users")
        .arg(&b"\xff\xfe"[..])
        .arg(1)
        .arg("ann")
        .arg(2)
        .query::<redis::Value>(&mut s.con)
        .unwrap();
    let done = s.once(
        "--buffer pending:users --table users --column logins --id-column name",
        0,
    );
    assert_eq!(db.totals(), [(1, 5), (2, 4)].into());
    assert_eq!(db.rows("SELECT name, logins FROM users"), [row!["ann", 2]]);
    let rejects = db.rows(
        "SELECT buffer, member, value, reason FROM hacks_flush_rejects ORDER BY buffer, value",
    );
    let short: Vec<Vec<Val>> = rejects.iter().map(|r| r[..3].to_vec()).collect();
    assert_eq!(
        short,
        [
            row!["pending:groups", b"abc", 3],
            row!["pending:groups", b"007", 9],
            row!["pending:users", b"\xff\xfe", 1],
        ]
    );
    assert!(rejects[0][3].text().contains("not a decimal integer"));
    assert!(rejects[2][3].text().contains("UTF-8"));
    // The batch id of the reject is the batch that was applied.
    assert_eq!(
        db.int("SELECT batch_id FROM hacks_flush_rejects WHERE value = 3"),
        db.int("SELECT batch_id FROM hacks_flushed_batches WHERE buffer = 'pending:groups'")
    );
    says(&done.stderr, "member \"abc\" (value 3) rejected");
    says(&done.stderr, "2 rejected");
    assert!(s.gone("pending:groups"));
    assert!(s.gone("pending:users"));
}

/// A batch applied and committed whose ACK never arrived comes back and is skipped; a batch
/// leased by a worker that died before applying comes back and is applied once.
fn redelivered_batches_apply_exactly_once(db: &dyn TestDb) {
    let mut s = Setup::new(db);
    // A user that may drain but not acknowledge: the worker commits, then its ACK fails,
    // exactly like a crash between commit and ACK.
    redis::cmd("ACL")
        .arg(words("SETUSER noack on >pw ~* &* +@all -hack.ack"))
        .query::<()>(&mut s.con)
        .unwrap();
    s.incr(&[("1", 5), ("2", 3)]);
    let noack = format!("redis://noack:pw@127.0.0.1:{}", s.server.port);
    let first = once(db, flags(&noack, &db.url(), "--lease-ms 300"), 0);
    says(&first.stderr, "HACK.ACK failed");
    assert_eq!(db.totals(), [(1, 5), (2, 3)].into());
    assert!(!s.gone("pending:groups"));

    sleep(Duration::from_millis(350));
    let second = s.once("", 0);
    says(&second.stderr, "2 entries, delivery 2: already applied");
    assert_eq!(db.totals(), [(1, 5), (2, 3)].into());
    assert!(s.gone("pending:groups"));

    // Leased by "a worker" (this test) that then vanished without applying.
    s.incr(&[("1", 1), ("3", 4)]);
    s.lease(200);
    sleep(Duration::from_millis(250));
    let third = s.once("", 0);
    says(&third.stderr, "2 entries applied (0 rejected), delivery 2");
    assert_eq!(db.totals(), [(1, 6), (2, 3), (3, 4)].into());
}

fn sigterm_and_sigint_exit_cleanly(db: &dyn TestDb) {
    let mut s = Setup::new(db);
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut w = s.spawn("--interval-ms 10000", &format!("w{sig}.log"));
        w.expect_log("started", 1, 10);
        s.incr(&[("1", 1)]);
        // Idle in a 10 s pause: the signal must cut it short.
        sleep(Duration::from_millis(100));
        assert!(w.stop(sig) < Duration::from_millis(1500));
        says(&w.stderr(), "stopped by signal");
    }

    // While producers keep it busy, too: it finishes its batch and exits 0, leaving no batch
    // in flight (a clean stop must not strand one until its lease ends).
    let producers = produce(
        s.server.port,
        "pending:groups",
        2,
        400,
        20,
        42,
        Arc::default(),
    );
    for round in 0..5 {
        let log = format!("busy{round}.log");
        let mut w = s.spawn("--batch 3 --interval-ms 1", &log);
        w.expect_log("entries applied", 3 + round, 10);
        w.stop(libc::SIGTERM);
        assert_eq!(s.in_flight(), 0, "{}", w.stderr());
    }
    let sent = producers.join().unwrap();
    // Everything, including the first idle test's increment, lands after a final run.
    sleep(Duration::from_millis(50));
    s.once("", 0);
    let mut want = sent;
    *want.entry(1).or_insert(0) += 2;
    assert_eq!(nonzero(&db.totals()), nonzero(&want));
}

fn schema_problems_exit_2_with_a_clear_message(db: &dyn TestDb) {
    db.exec(
        "CREATE TABLE groups (id INTEGER PRIMARY KEY, times_seen INTEGER, label TEXT, score REAL,
                              plain INTEGER, created TIMESTAMP);
         CREATE TABLE strict (id INTEGER PRIMARY KEY, n INTEGER, must TEXT NOT NULL);",
    );
    let not_int = |c: &str, t: &str| {
        let shown = db.type_shown(t);
        format!("column groups.{c} is {shown}, not an integer column")
    };
    let cases = [
        (
            "--table nope --column times_seen",
            "table nope does not exist".into(),
        ),
        (
            "--table groups --column missing",
            "table groups has no column missing".into(),
        ),
        ("--table groups --column label", not_int("label", "TEXT")),
        ("--table groups --column score", not_int("score", "REAL")),
        (
            "--table groups --column times_seen --id-column plain",
            "id column groups.plain is neither the PRIMARY KEY nor UNIQUE".into(),
        ),
        (
            "--table groups --column times_seen --id-column created",
            format!(
                "id column groups.created is {}: it must be an integer or text column",
                db.type_shown("TIMESTAMP")
            ),
        ),
        (
            "--table strict --column n",
            "column strict.must is NOT NULL without a default".into(),
        ),
    ];
    // Checked before Redis is contacted: no server needed (port 1 is never listened on).
    for (mapping, msg) in cases {
        let mut a = args(&["--redis", "redis://127.0.0.1:1", "--db", &db.url()]);
        a.extend(words(&format!("--buffer b {mapping}")));
        let done = run(&a, &db.dir().0);
        assert_eq!(done.code, Some(2), "{mapping}: {}", done.stderr);
        let line = format!("error: {}: {msg}", db.shown());
        says(&done.stderr, &line);
    }
}

fn unreachable_redis_is_retried_with_backoff(db: &dyn TestDb) {
    db.exec(SCHEMA);
    let port = common::free_port(); // nothing listens there
    let a = flags(&redis_url(port), &db.url(), "");
    let mut w = Worker::spawn(&a, db.dir().path("w.log"));
    w.expect_log("unreachable", 3, 5);
    let log = w.stderr();
    says(&log, &format!("redis redis://127.0.0.1:{port} unreachable"));
    says(&log, "retrying in 100 ms");
    says(&log, "retrying in 200 ms");
    assert!(
        w.wait_for(Duration::from_millis(100)).is_none(),
        "it must keep trying"
    );
    // Stoppable in the middle of a backoff pause.
    w.stop(libc::SIGTERM);
}

fn redis_without_the_module_exits_2(db: &dyn TestDb) {
    let bare = Server::with(Opts {
        load_module: false,
        ..Opts::default()
    });
    let done = Setup::with(db, bare, SCHEMA).once("", 2);
    says(&done.stderr, "does not have the redis-hacks module");
}

/// Redis going away mid-run: the worker logs, backs off, reconnects and carries on.
fn reconnects_after_a_redis_restart(db: &dyn TestDb) {
    let mut s = Setup::new(db);
    let mut w = s.spawn("--interval-ms 10", "w.log");
    s.incr(&[("1", 1)]);
    w.expect_log("entries applied", 1, 10);
    s.server.kill();
    w.expect_log("unreachable", 2, 5);
    s.server.restart();
    s.con = s.server.conn();
    s.incr(&[("1", 2), ("2", 3)]);
    w.expect_log("entries applied", 2, 10);
    assert_eq!(db.totals(), [(1, 3), (2, 3)].into());
    w.stop(libc::SIGTERM);
}

/// A batch id already recorded with other contents (ids reused after Redis lost its data) is
/// neither applied nor acknowledged: --once exits 1 and says why.
fn a_reused_batch_id_is_refused(db: &dyn TestDb) {
    let mut s = Setup::new(db);
    // Creates the bookkeeping tables.
    s.once("", 0);
    s.incr(&[("1", 5)]);
    let id = s.lease(100);
    db.exec(&format!(
        "INSERT INTO hacks_flushed_batches (buffer, batch_id, entries, checksum) \
         VALUES ('pending:groups', {id}, 4, 0)"
    ));
    sleep(Duration::from_millis(150));
    let done = s.once("", 1);
    says(&done.stderr, "with other contents");
    assert_eq!(db.totals(), BTreeMap::new());
    assert_eq!(s.in_flight(), 1);
}

/// A buffer whose key is not a buffer (an error reply) does not hold up the others.
fn an_error_reply_on_one_buffer_does_not_block_the_others(db: &dyn TestDb) {
    let mut s = Setup::new(db);
    redis::cmd("SET")
        .arg("not:a:buffer")
        .arg("x")
        .query::<()>(&mut s.con)
        .unwrap();
    // The wrong buffer first, then the usual one.
    let with_wrong = |extra: &str| {
        let mut a = s.flags(extra);
        a.splice(
            4..4,
            words("--buffer not:a:buffer --table groups --column times_seen"),
        );
        a
    };
    let (one_run, daemon) = (with_wrong(""), with_wrong("--interval-ms 10"));
    s.incr(&[("1", 1)]);
    let done = once(db, one_run, 1);
    says(&done.stderr, "error: not:a:buffer: HACK.DRAIN failed");
    says(&done.stderr, "WRONGTYPE");
    assert_eq!(db.totals(), [(1, 1)].into());

    let mut w = Worker::spawn(&daemon, db.dir().path("w.log"));
    w.expect_log("not:a:buffer: HACK.DRAIN failed", 1, 10);
    s.incr(&[("1", 1)]);
    w.expect_log("entries applied", 1, 5);
    assert_eq!(db.totals(), [(1, 2)].into());
}

/// Flags are checked before anything else: no database, no Redis.
#[test]
fn bad_flags_print_usage_and_exit_2() {
    let dir = TempDir::new("flags");
    for bad in [
        "--redis redis://x --db a.db --buffer b --table t",
        "--bogus",
        "--redis redis://x --db a.db --table t --buffer b --column c",
        "--redis redis://x --db a.db --buffer b --table t --column c --batch zero",
        "",
    ] {
        let done = run(&words(bad), &dir.0);
        assert_eq!(done.code, Some(2), "{bad:?}: {}", done.stderr);
        assert!(
            done.stderr.contains("usage: hacks-flush"),
            "{bad:?}: {}",
            done.stderr
        );
    }
    let out = std::process::Command::new(BIN)
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--lease-ms"));
}

/// A missing file is refused, not created (a mistyped path must not become an empty
/// database), whether given as `sqlite:PATH` or as a plain path.
#[test]
fn sqlite_a_missing_database_is_not_created() {
    let dir = TempDir::new("sqlite-missing");
    let missing = dir.path("missing.db");
    let path = missing.display().to_string();
    for db in [format!("sqlite:{path}"), path.clone()] {
        let mut a = args(&["--redis", "redis://127.0.0.1:1", "--db", &db]);
        a.extend(words("--buffer b --table t --column c"));
        let done = run(&a, &dir.0);
        assert_eq!(done.code, Some(2), "{}", done.stderr);
        // Named once: "error: SQLite database PATH: does not exist ...".
        let line = format!("error: SQLite database {path}: does not exist");
        says(&done.stderr, &line);
        assert!(!missing.exists(), "a missing database must not be created");
    }
}

/// A database that stays locked: the worker retries, and a SIGTERM meanwhile abandons the
/// batch (exit 0); the batch comes back after its lease and is applied once. SQLite only: on
/// PostgreSQL the worker waits for a lock inside the server, with no timeout and no retry.
#[test]
fn sqlite_locked_database_is_retried_and_a_stop_abandons_the_batch() {
    let db = Sqlite::new();
    let mut s = Setup::new(&db);
    let mut w = s.spawn("--interval-ms 10 --lease-ms 500", "w.log");
    w.expect_log("started", 1, 10);

    let lock = db.open();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    s.incr(&[("1", 5), ("2", 6)]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.in_flight() == 0 {
        assert!(Instant::now() < deadline, "the worker never drained");
        sleep(Duration::from_millis(10));
    }
    sleep(Duration::from_millis(100));
    // Blocked on the lock, inside SQLite's busy wait: the stop must still be quick.
    assert!(w.stop(libc::SIGTERM) < Duration::from_millis(1500));
    let log = w.stderr();
    says(&log, "database is locked");
    says(&log, "abandoned on stop");
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    assert_eq!(db.totals(), BTreeMap::new());

    sleep(Duration::from_millis(550));
    let done = s.once("", 0);
    says(&done.stderr, "delivery 2");
    assert_eq!(db.totals(), [(1, 5), (2, 6)].into());
    assert!(s.gone("pending:groups"));
}

/// What only PostgreSQL's column types have: an `integer` id holds 32 bits, a `varchar(n)`
/// id n characters; an identity column fills itself and a UNIQUE (not primary key) column
/// serves as the id.
#[test]
fn postgres_column_types_bound_the_ids() {
    let db = Postgres::new();
    let tags = "CREATE TABLE tags (id bigint GENERATED ALWAYS AS IDENTITY,
                                   name varchar(5) UNIQUE, uses integer);";
    let mut s = Setup::with(&db, Server::start(), &format!("{SCHEMA} {tags}"));
    s.incr(&[("1", 5), ("x1", 3), ("2147483648", 4), ("2147483647", 1)]);
    let tag = [("rust", 2), ("toolong", 1), ("sql", 1), ("rust", 1)];
    bufincr(&mut s.con, "pending:tags", &tag);
    let done = s.once(
        "--buffer pending:tags --table tags --column uses --id-column name",
        0,
    );
    assert_eq!(db.totals(), [(1, 5), (2147483647, 1)].into());
    assert_eq!(
        db.rows("SELECT name, uses FROM tags ORDER BY name"),
        [row!["rust", 3], row!["sql", 1]]
    );
    assert_eq!(
        db.rows("SELECT buffer, member, value FROM hacks_flush_rejects ORDER BY value"),
        [
            row!["pending:tags", b"toolong", 1],
            row!["pending:groups", b"x1", 3],
            row!["pending:groups", b"2147483648", 4],
        ]
    );
    says(&done.stderr, "rejected: out of range");
    says(&done.stderr, "rejected: longer than");
    assert!(s.gone("pending:groups"));
    assert!(s.gone("pending:tags"));
}

#[test]
fn postgres_unreachable_is_retried_with_backoff() {
    let dir = TempDir::new("pg-down");
    let port = common::free_port(); // nothing listens there
    let url = format!("postgres://postgres@127.0.0.1:{port}/counts");
    let mut w = Worker::spawn(&flags("redis://127.0.0.1:1", &url, ""), dir.path("w.log"));
    w.expect_log("retrying in", 3, 5);
    let log = w.stderr();
    says(
        &log,
        &format!("PostgreSQL 127.0.0.1:{port}/counts unreachable"),
    );
    assert!(
        w.wait_for(Duration::from_millis(100)).is_none(),
        "it must keep trying"
    );
    w.stop(libc::SIGTERM);
}

/// PostgreSQL going away mid-run: the batch is retried with backoff until the server is back,
/// then applied once.
#[test]
fn postgres_restart_mid_run() {
    let db = Postgres::new();
    let mut s = Setup::new(&db);
    let mut w = s.spawn("--interval-ms 10", "w.log");
    s.incr(&[("1", 1)]);
    w.expect_log("entries applied", 1, 10);

    db.server.borrow_mut().stop();
    s.incr(&[("1", 2), ("2", 5)]);
    w.expect_log("retrying in", 3, 10);
    db.server.borrow_mut().restart();
    w.expect_log("entries applied", 2, 15);
    assert_eq!(db.totals(), [(1, 3), (2, 5)].into());
    w.stop(libc::SIGTERM);
    let log = w.stderr();
    says(&log, "PostgreSQL 127.0.0.1:");
}
