//! The worker end to end against real redis-server processes (with the module) and SQLite.

use hacks_test_support as common;
mod flush;

use std::collections::BTreeMap;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{Opts, Server};
use flush::*;

const SCHEMA: &str = "CREATE TABLE groups (id INTEGER PRIMARY KEY,
                                           times_seen INTEGER NOT NULL DEFAULT 0, name TEXT);";

fn flags(port: u16, db: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut a = args(&[
        "--redis",
        &redis_url(port),
        "--db",
        &format!("sqlite:{}", db.display()),
        "--buffer",
        "pending:groups",
        "--table",
        "groups",
        "--column",
        "times_seen",
    ]);
    a.extend(args(extra));
    a
}

#[test]
fn happy_path_applies_totals_and_creates_rows() {
    let server = Server::start();
    let mut con = server.conn();
    let dir = TempDir::new("sqlite-happy");
    let db = dir.path("counts.db");
    sqlite_exec(&db, SCHEMA);
    sqlite_exec(
        &db,
        "INSERT INTO groups (id, times_seen, name) VALUES (1, 100, 'a'), (2, 0, 'b');",
    );

    bufincr(&mut con, "pending:groups", &[("1", 5), ("3", 7), ("1", 2)]);
    bufincr(&mut con, "pending:groups", &[("2", -4), ("4", 1)]);
    for i in 0..250 {
        bufincr(
            &mut con,
            "pending:groups",
            &[(&(10 + i % 50).to_string(), 1)],
        );
    }
    let done = run(
        &flags(server.port, &db, &["--once", "--batch", "20"]),
        &dir.0,
    );
    assert_eq!(done.code, Some(0), "stderr:\n{}", done.stderr);

    let mut want: BTreeMap<i64, i64> = [(1, 107), (2, -4), (3, 7), (4, 1)].into();
    for i in 0..50 {
        want.insert(10 + i, 5);
    }
    assert_eq!(sqlite_totals(&db, "groups", "times_seen"), want);
    assert!(buffer_gone(&mut con, "pending:groups"));
    // One line per batch: 54 members in batches of 20.
    assert_eq!(
        done.stderr.matches("entries applied").count(),
        3,
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("pending:groups batch "),
        "{}",
        done.stderr
    );

    // A second run finds nothing and changes nothing.
    let again = run(&flags(server.port, &db, &["--once"]), &dir.0);
    assert_eq!(again.code, Some(0), "stderr:\n{}", again.stderr);
    assert!(
        !again.stderr.contains("entries applied"),
        "{}",
        again.stderr
    );
    assert_eq!(sqlite_totals(&db, "groups", "times_seen"), want);
}

#[test]
fn rejects_members_that_are_no_id_and_applies_the_rest() {
    let server = Server::start();
    let mut con = server.conn();
    let dir = TempDir::new("sqlite-rejects");
    let db = dir.path("counts.db");
    sqlite_exec(
        &db,
        &format!("{SCHEMA} CREATE TABLE users (name TEXT PRIMARY KEY, logins INTEGER);"),
    );
    bufincr(
        &mut con,
        "pending:groups",
        &[("1", 5), ("abc", 3), ("2", 4), ("007", 9)],
    );
    // A non-UTF-8 member for a text id column (a second buffer in the same process).
    redis::cmd("HACK.BUFINCR")
        .arg("pending:users")
        .arg(&b"\xff\xfe"[..])
        .arg(1)
        .arg("ann")
        .arg(2)
        .query::<redis::Value>(&mut con)
        .unwrap();
    let mut a = flags(server.port, &db, &["--once"]);
    a.extend(args(&[
        "--buffer",
        "pending:users",
        "--table",
        "users",
        "--column",
        "logins",
        "--id-column",
        "name",
    ]));
    let done = run(&a, &dir.0);
    assert_eq!(done.code, Some(0), "stderr:\n{}", done.stderr);
    assert_eq!(
        sqlite_totals(&db, "groups", "times_seen"),
        [(1, 5), (2, 4)].into()
    );
    let c = rusqlite::Connection::open(&db).unwrap();
    let users: Vec<(String, i64)> = c
        .prepare("SELECT name, logins FROM users")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(users, [("ann".to_string(), 2)]);
    let rejects: Vec<(String, Vec<u8>, i64, String)> = c
        .prepare(
            "SELECT buffer, member, value, reason FROM hacks_flush_rejects ORDER BY buffer, value",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let short: Vec<(&str, &[u8], i64)> = rejects
        .iter()
        .map(|(b, m, v, _)| (b.as_str(), m.as_slice(), *v))
        .collect();
    assert_eq!(
        short,
        [
            ("pending:groups", &b"abc"[..], 3),
            ("pending:groups", &b"007"[..], 9),
            ("pending:users", &b"\xff\xfe"[..], 1)
        ]
    );
    assert!(rejects[0].3.contains("not a decimal integer"));
    assert!(rejects[2].3.contains("UTF-8"));
    // The batch id of the reject is the batch that was applied.
    let (rb, ab): (i64, i64) = c
        .query_row(
            "SELECT (SELECT batch_id FROM hacks_flush_rejects WHERE member = x'616263'),
                    (SELECT batch_id FROM hacks_flushed_batches WHERE buffer = 'pending:groups')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(rb, ab);
    assert!(
        done.stderr.contains("member \"abc\" (value 3) rejected"),
        "{}",
        done.stderr
    );
    assert!(done.stderr.contains("2 rejected"), "{}", done.stderr);
    assert!(buffer_gone(&mut con, "pending:groups"));
    assert!(buffer_gone(&mut con, "pending:users"));
}

/// A batch applied and committed whose ACK never arrived comes back and is skipped; a batch
/// leased by a worker that died before applying comes back and is applied once.
#[test]
fn redelivered_batches_apply_exactly_once() {
    let server = Server::start();
    let mut con = server.conn();
    let dir = TempDir::new("sqlite-redeliver");
    let db = dir.path("counts.db");
    sqlite_exec(&db, SCHEMA);

    // A user that may drain but not acknowledge: the worker commits, then its ACK fails,
    // exactly like a crash between commit and ACK.
    redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "noack",
            "on",
            ">pw",
            "~*",
            "&*",
            "+@all",
            "-hack.ack",
        ])
        .query::<()>(&mut con)
        .unwrap();
    bufincr(&mut con, "pending:groups", &[("1", 5), ("2", 3)]);
    let mut a = flags(server.port, &db, &["--once", "--lease-ms", "300"]);
    a[1] = format!("redis://noack:pw@127.0.0.1:{}", server.port);
    let first = run(&a, &dir.0);
    assert_eq!(first.code, Some(0), "stderr:\n{}", first.stderr);
    assert!(first.stderr.contains("HACK.ACK failed"), "{}", first.stderr);
    assert_eq!(
        sqlite_totals(&db, "groups", "times_seen"),
        [(1, 5), (2, 3)].into()
    );
    assert!(!buffer_gone(&mut con, "pending:groups"));

    sleep(Duration::from_millis(350));
    let second = run(&flags(server.port, &db, &["--once"]), &dir.0);
    assert_eq!(second.code, Some(0), "stderr:\n{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("2 entries, delivery 2: already applied"),
        "{}",
        second.stderr
    );
    assert_eq!(
        sqlite_totals(&db, "groups", "times_seen"),
        [(1, 5), (2, 3)].into()
    );
    assert!(buffer_gone(&mut con, "pending:groups"));

    // Leased by "a worker" (this test) that then vanished without applying.
    bufincr(&mut con, "pending:groups", &[("1", 1), ("3", 4)]);
    let v: redis::Value = redis::cmd("HACK.DRAIN")
        .arg("pending:groups")
        .arg("LEASE")
        .arg(200)
        .query(&mut con)
        .unwrap();
    assert!(matches!(v, redis::Value::Array(_)), "{v:?}");
    sleep(Duration::from_millis(250));
    let third = run(&flags(server.port, &db, &["--once"]), &dir.0);
    assert_eq!(third.code, Some(0), "stderr:\n{}", third.stderr);
    assert!(
        third
            .stderr
            .contains("2 entries applied (0 rejected), delivery 2"),
        "{}",
        third.stderr
    );
    assert_eq!(
        sqlite_totals(&db, "groups", "times_seen"),
        [(1, 6), (2, 3), (3, 4)].into()
    );
}

#[test]
fn sigterm_and_sigint_exit_cleanly() {
    let server = Server::start();
    let mut con = server.conn();
    let dir = TempDir::new("sqlite-sigterm");
    let db = dir.path("counts.db");
    sqlite_exec(&db, SCHEMA);
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut w = Worker::spawn(
            &flags(server.port, &db, &["--interval-ms", "10000"]),
            dir.path(&format!("w{sig}.log")),
        );
        assert!(
            w.wait_log("started", 1, Duration::from_secs(10)),
            "{}",
            w.stderr()
        );
        bufincr(&mut con, "pending:groups", &[("1", 1)]);
        // Idle in a 10 s pause: the signal must cut it short.
        sleep(Duration::from_millis(100));
        let t = Instant::now();
        w.signal(sig);
        let status = w.wait_for(Duration::from_secs(2));
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", w.stderr());
        assert!(t.elapsed() < Duration::from_millis(1500));
        assert!(w.stderr().contains("stopped by signal"), "{}", w.stderr());
    }

    // While producers keep it busy, too: it finishes its batch and exits 0, leaving no batch
    // in flight (a clean stop must not strand one until its lease ends).
    let producers = produce(server.port, "pending:groups", 2, 400, 20, 42);
    for round in 0..5 {
        let mut w = Worker::spawn(
            &flags(server.port, &db, &["--batch", "3", "--interval-ms", "1"]),
            dir.path(&format!("busy{round}.log")),
        );
        assert!(
            w.wait_log("entries applied", 3 + round, Duration::from_secs(10)),
            "{}",
            w.stderr()
        );
        w.signal(libc::SIGTERM);
        let status = w.wait_for(Duration::from_secs(2));
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", w.stderr());
        assert_eq!(
            batches_in_flight(&mut con, "pending:groups"),
            0,
            "{}",
            w.stderr()
        );
    }
    let sent = producers.join().unwrap();
    // Everything, including the first idle test's increment, lands after a final run.
    sleep(Duration::from_millis(50));
    let done = run(&flags(server.port, &db, &["--once"]), &dir.0);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let mut want = sent;
    *want.entry(1).or_insert(0) += 2;
    assert_eq!(
        nonzero(&sqlite_totals(&db, "groups", "times_seen")),
        nonzero(&want)
    );
}

#[test]
fn schema_problems_exit_2_with_a_clear_message() {
    let dir = TempDir::new("sqlite-schema");
    let db = dir.path("counts.db");
    sqlite_exec(
        &db,
        "CREATE TABLE groups (id INTEGER PRIMARY KEY, times_seen INTEGER, label TEXT, score REAL,
                              plain INTEGER);
         CREATE TABLE strict (id INTEGER PRIMARY KEY, n INTEGER, must TEXT NOT NULL);",
    );
    // Checked before Redis is contacted: no server needed (port 1 is never listened on).
    let cases: &[(&[&str], &str)] = &[
        (
            &["--table", "nope", "--column", "times_seen"],
            "table nope does not exist",
        ),
        (
            &["--table", "groups", "--column", "missing"],
            "table groups has no column missing",
        ),
        (
            &["--table", "groups", "--column", "label"],
            "not an integer column",
        ),
        (
            &["--table", "groups", "--column", "score"],
            "not an integer column",
        ),
        (
            &[
                "--table",
                "groups",
                "--column",
                "times_seen",
                "--id-column",
                "plain",
            ],
            "neither the PRIMARY KEY nor UNIQUE",
        ),
        (
            &["--table", "strict", "--column", "n"],
            "must is NOT NULL without a default",
        ),
    ];
    for (mapping, msg) in cases {
        let mut a = args(&[
            "--redis",
            "redis://127.0.0.1:1",
            "--db",
            db.to_str().unwrap(),
            "--buffer",
            "b",
        ]);
        a.extend(args(mapping));
        let done = run(&a, &dir.0);
        assert_eq!(done.code, Some(2), "{mapping:?}: {}", done.stderr);
        assert!(done.stderr.contains(msg), "{mapping:?}: {}", done.stderr);
        assert!(
            done.stderr.contains("error: SQLite database"),
            "{}",
            done.stderr
        );
    }
    let missing = dir.path("missing.db");
    let done = run(
        &args(&[
            "--redis",
            "redis://127.0.0.1:1",
            "--db",
            &format!("sqlite:{}", missing.display()),
            "--buffer",
            "b",
            "--table",
            "t",
            "--column",
            "c",
        ]),
        &dir.0,
    );
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(done.stderr.contains("does not exist"), "{}", done.stderr);
    assert!(!missing.exists(), "a missing database must not be created");
}

#[test]
fn bad_flags_print_usage_and_exit_2() {
    let dir = TempDir::new("flags");
    for bad in [
        &[
            "--redis",
            "redis://x",
            "--db",
            "a.db",
            "--buffer",
            "b",
            "--table",
            "t",
        ][..],
        &["--bogus"],
        &[
            "--redis",
            "redis://x",
            "--db",
            "a.db",
            "--table",
            "t",
            "--buffer",
            "b",
            "--column",
            "c",
        ],
        &[
            "--redis",
            "redis://x",
            "--db",
            "a.db",
            "--buffer",
            "b",
            "--table",
            "t",
            "--column",
            "c",
            "--batch",
            "zero",
        ],
        &[],
    ] {
        let done = run(&args(bad), &dir.0);
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

#[test]
fn unreachable_redis_is_retried_with_backoff() {
    let dir = TempDir::new("sqlite-noredis");
    let db = dir.path("counts.db");
    sqlite_exec(&db, SCHEMA);
    let port = common::free_port(); // nothing listens there
    let mut w = Worker::spawn(&flags(port, &db, &[]), dir.path("w.log"));
    assert!(
        w.wait_log("unreachable", 3, Duration::from_secs(5)),
        "{}",
        w.stderr()
    );
    let log = w.stderr();
    assert!(
        log.contains(&format!("redis redis://127.0.0.1:{port} unreachable")),
        "{log}"
    );
    assert!(log.contains("retrying in 100 ms"), "{log}");
    assert!(log.contains("retrying in 200 ms"), "{log}");
    assert!(
        w.wait_for(Duration::from_millis(100)).is_none(),
        "it must keep trying"
    );
    // Stoppable in the middle of a backoff pause.
    w.signal(libc::SIGTERM);
    assert_eq!(
        w.wait_for(Duration::from_secs(2)).and_then(|s| s.code()),
        Some(0)
    );
}

#[test]
fn redis_without_the_module_exits_2() {
    let server = Server::with(Opts {
        load_module: false,
        ..Opts::default()
    });
    let dir = TempDir::new("sqlite-nomodule");
    let db = dir.path("counts.db");
    sqlite_exec(&db, SCHEMA);
    let done = run(&flags(server.port, &db, &["--once"]), &dir.0);
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(done.stderr.contains("module"), "{}", done.stderr);
}

/// A database that stays locked: the worker retries, and a SIGTERM meanwhile abandons the
/// batch (exit 0); the batch comes back after its lease and is applied once.
#[test]
fn locked_database_is_retried_and_a_stop_abandons_the_batch() {
    let server = Server::start();
    let mut con = server.conn();
    let dir = TempDir::new("sqlite-locked");
    let db = dir.path("counts.db");
    sqlite_exec(&db, SCHEMA);
    let mut w = Worker::spawn(
        &flags(
            server.port,
            &db,
            &["--interval-ms", "10", "--lease-ms", "500"],
        ),
        dir.path("w.log"),
    );
    assert!(
        w.wait_log("started", 1, Duration::from_secs(10)),
        "{}",
        w.stderr()
    );

    let lock = rusqlite::Connection::open(&db).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    bufincr(&mut con, "pending:groups", &[("1", 5), ("2", 6)]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while batches_in_flight(&mut con, "pending:groups") == 0 {
        assert!(Instant::now() < deadline, "the worker never drained");
        sleep(Duration::from_millis(10));
    }
    sleep(Duration::from_millis(100));
    // Blocked on the lock, inside SQLite's busy wait: the stop must still be quick.
    let t = Instant::now();
    w.signal(libc::SIGTERM);
    assert_eq!(
        w.wait_for(Duration::from_secs(2)).and_then(|s| s.code()),
        Some(0),
        "{}",
        w.stderr()
    );
    assert!(t.elapsed() < Duration::from_millis(1500));
    let log = w.stderr();
    assert!(log.contains("database is locked"), "{log}");
    assert!(log.contains("abandoned on stop"), "{log}");
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    assert_eq!(sqlite_totals(&db, "groups", "times_seen"), BTreeMap::new());

    sleep(Duration::from_millis(550));
    let done = run(&flags(server.port, &db, &["--once"]), &dir.0);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(done.stderr.contains("delivery 2"), "{}", done.stderr);
    assert_eq!(
        sqlite_totals(&db, "groups", "times_seen"),
        [(1, 5), (2, 6)].into()
    );
    assert!(buffer_gone(&mut con, "pending:groups"));
}

/// Redis going away mid-run: the worker logs, backs off, reconnects and carries on.
#[test]
fn reconnects_after_a_redis_restart() {
    let mut server = Server::start();
    let dir = TempDir::new("sqlite-restart");
    let db = dir.path("counts.db");
    sqlite_exec(&db, SCHEMA);
    let mut w = Worker::spawn(
        &flags(server.port, &db, &["--interval-ms", "10"]),
        dir.path("w.log"),
    );
    bufincr(&mut server.conn(), "pending:groups", &[("1", 1)]);
    assert!(
        w.wait_log("entries applied", 1, Duration::from_secs(10)),
        "{}",
        w.stderr()
    );
    server.kill();
    assert!(
        w.wait_log("unreachable", 2, Duration::from_secs(5)),
        "{}",
        w.stderr()
    );
    server.restart();
    bufincr(&mut server.conn(), "pending:groups", &[("1", 2), ("2", 3)]);
    assert!(
        w.wait_log("entries applied", 2, Duration::from_secs(10)),
        "{}",
        w.stderr()
    );
    assert_eq!(
        sqlite_totals(&db, "groups", "times_seen"),
        [(1, 3), (2, 3)].into()
    );
    w.signal(libc::SIGTERM);
    assert_eq!(
        w.wait_for(Duration::from_secs(2)).and_then(|s| s.code()),
        Some(0)
    );
}

/// A batch id already recorded with other contents (ids reused after Redis lost its data) is
/// neither applied nor acknowledged: --once exits 1 and says why.
#[test]
fn a_reused_batch_id_is_refused() {
    let server = Server::start();
    let mut con = server.conn();
    let dir = TempDir::new("sqlite-reused");
    let db = dir.path("counts.db");
    sqlite_exec(&db, SCHEMA);
    // Creates the bookkeeping tables.
    assert_eq!(
        run(&flags(server.port, &db, &["--once"]), &dir.0).code,
        Some(0)
    );
    bufincr(&mut con, "pending:groups", &[("1", 5)]);
    let v: redis::Value = redis::cmd("HACK.DRAIN")
        .arg("pending:groups")
        .arg("LEASE")
        .arg(100)
        .query(&mut con)
        .unwrap();
    let redis::Value::Array(parts) = v else {
        panic!("{v:?}")
    };
    let redis::Value::Int(id) = parts[0] else {
        panic!("{parts:?}")
    };
    sqlite_exec(
        &db,
        &format!(
            "INSERT INTO hacks_flushed_batches (buffer, batch_id, entries, checksum) \
             VALUES ('pending:groups', {id}, 4, 0)"
        ),
    );
    sleep(Duration::from_millis(150));
    let done = run(&flags(server.port, &db, &["--once"]), &dir.0);
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert!(
        done.stderr.contains("with other contents"),
        "{}",
        done.stderr
    );
    assert_eq!(sqlite_totals(&db, "groups", "times_seen"), BTreeMap::new());
    assert_eq!(batches_in_flight(&mut con, "pending:groups"), 1);
}

/// A buffer whose key is not a buffer (an error reply) does not hold up the others.
#[test]
fn an_error_reply_on_one_buffer_does_not_block_the_others() {
    let server = Server::start();
    let mut con = server.conn();
    let dir = TempDir::new("sqlite-wrongtype");
    let db = dir.path("counts.db");
    sqlite_exec(&db, SCHEMA);
    redis::cmd("SET")
        .arg("not:a:buffer")
        .arg("x")
        .query::<()>(&mut con)
        .unwrap();
    let with_wrong = |extra: &[&str]| {
        let mut a = args(&[
            "--redis",
            &redis_url(server.port),
            "--db",
            db.to_str().unwrap(),
            "--buffer",
            "not:a:buffer",
            "--table",
            "groups",
            "--column",
            "times_seen",
        ]);
        a.extend(flags(server.port, &db, extra).into_iter().skip(4));
        a
    };
    bufincr(&mut con, "pending:groups", &[("1", 1)]);
    let done = run(&with_wrong(&["--once"]), &dir.0);
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert!(
        done.stderr
            .contains("error: not:a:buffer: HACK.DRAIN failed"),
        "{}",
        done.stderr
    );
    assert!(done.stderr.contains("WRONGTYPE"), "{}", done.stderr);
    assert_eq!(sqlite_totals(&db, "groups", "times_seen"), [(1, 1)].into());

    let mut w = Worker::spawn(&with_wrong(&["--interval-ms", "10"]), dir.path("w.log"));
    assert!(w.wait_log(
        "not:a:buffer: HACK.DRAIN failed",
        1,
        Duration::from_secs(10)
    ));
    bufincr(&mut con, "pending:groups", &[("1", 1)]);
    assert!(
        w.wait_log("entries applied", 1, Duration::from_secs(5)),
        "{}",
        w.stderr()
    );
    assert_eq!(sqlite_totals(&db, "groups", "times_seen"), [(1, 2)].into());
}
