//! The worker end to end against a real PostgreSQL server (tests/pg) and redis-server.

use hacks_test_support as common;
mod flush;
mod pg;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Server;
use flush::*;

fn flags(redis_port: u16, db: &str, extra: &[&str]) -> Vec<String> {
    let mut a = args(&[
        "--redis",
        &redis_url(redis_port),
        "--db",
        db,
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
fn postgres_end_to_end() {
    let pg = pg::Pg::start();
    let url = pg.create_db("counts");
    let mut client = pg.client("counts");
    client
        .batch_execute(
            "CREATE TABLE groups (id integer PRIMARY KEY, times_seen bigint NOT NULL DEFAULT 0,
                                  created timestamptz NOT NULL DEFAULT now());
             INSERT INTO groups (id, times_seen) VALUES (1, 100), (2, 0);
             CREATE TABLE tags (id bigint GENERATED ALWAYS AS IDENTITY, name varchar(5) UNIQUE,
                                uses integer);
             CREATE TABLE texty (id integer PRIMARY KEY, times_seen text);
             CREATE TABLE loose (id integer, times_seen bigint);
             CREATE TABLE needy (id integer PRIMARY KEY, times_seen bigint, must text NOT NULL);",
        )
        .unwrap();
    let dir = TempDir::new("pg");
    let server = Server::start();
    let mut con = server.conn();

    // Happy path: totals land, missing rows are created, a second run changes nothing.
    bufincr(
        &mut con,
        "pending:groups",
        &[("1", 5), ("3", 7), ("1", 2), ("2", -4)],
    );
    for i in 0..120 {
        bufincr(
            &mut con,
            "pending:groups",
            &[(&(10 + i % 40).to_string(), 1)],
        );
    }
    // Rejected: not an integer, and out of range for an `integer` id column.
    bufincr(&mut con, "pending:groups", &[("x1", 3), ("2147483648", 4)]);
    bufincr(
        &mut con,
        "pending:tags",
        &[("rust", 2), ("toolong", 1), ("sql", 1), ("rust", 1)],
    );
    let mut a = flags(server.port, &url, &["--once", "--batch", "16"]);
    a.extend(args(&[
        "--buffer",
        "pending:tags",
        "--table",
        "tags",
        "--column",
        "uses",
        "--id-column",
        "name",
    ]));
    let done = run(&a, &dir.0);
    assert_eq!(done.code, Some(0), "stderr:\n{}", done.stderr);
    let mut want: BTreeMap<i64, i64> = [(1, 107), (2, -4), (3, 7)].into();
    for i in 0..40 {
        want.insert(10 + i, 3);
    }
    assert_eq!(pg_totals(&mut client, "groups", "times_seen"), want);
    let tags: Vec<(String, i32)> = client
        .query("SELECT name::text, uses FROM tags ORDER BY name", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(tags, [("rust".to_string(), 3), ("sql".to_string(), 1)]);
    let rejects: Vec<(String, Vec<u8>, i64)> = client
        .query(
            "SELECT buffer, member, value FROM hacks_flush_rejects ORDER BY value",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rejects,
        [
            ("pending:tags".to_string(), b"toolong".to_vec(), 1),
            ("pending:groups".to_string(), b"x1".to_vec(), 3),
            ("pending:groups".to_string(), b"2147483648".to_vec(), 4),
        ]
    );
    assert!(
        done.stderr.contains("rejected: out of range"),
        "{}",
        done.stderr
    );
    assert!(buffer_gone(&mut con, "pending:groups"));
    let recorded: i64 = client
        .query_one("SELECT count(*) FROM hacks_flushed_batches", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        recorded as usize,
        done.stderr.matches("entries applied").count()
    );

    let again = run(&flags(server.port, &url, &["--once"]), &dir.0);
    assert_eq!(again.code, Some(0), "stderr:\n{}", again.stderr);
    assert_eq!(pg_totals(&mut client, "groups", "times_seen"), want);

    // Schema problems: exit status 2 and a clear message.
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
            &["--table", "texty", "--column", "times_seen"],
            "is text, not an integer column",
        ),
        (
            &["--table", "loose", "--column", "times_seen"],
            "neither the PRIMARY KEY nor UNIQUE",
        ),
        (
            &["--table", "needy", "--column", "times_seen"],
            "must is NOT NULL without a default",
        ),
        (
            &[
                "--table",
                "groups",
                "--column",
                "times_seen",
                "--id-column",
                "created",
            ],
            "integer or text",
        ),
    ];
    for (mapping, msg) in cases {
        let mut a = args(&[
            "--redis",
            "redis://127.0.0.1:1",
            "--db",
            &url,
            "--buffer",
            "b",
        ]);
        a.extend(args(mapping));
        let done = run(&a, &dir.0);
        assert_eq!(done.code, Some(2), "{mapping:?}: {}", done.stderr);
        assert!(done.stderr.contains(msg), "{mapping:?}: {}", done.stderr);
    }
}

#[test]
fn unreachable_postgres_is_retried_with_backoff() {
    let dir = TempDir::new("pg-down");
    let port = common::free_port(); // nothing listens there
    let url = format!("postgres://postgres@127.0.0.1:{port}/counts");
    let mut w = Worker::spawn(&flags(1, &url, &[]), dir.path("w.log"));
    assert!(
        w.wait_log("retrying in", 3, Duration::from_secs(5)),
        "{}",
        w.stderr()
    );
    let log = w.stderr();
    assert!(
        log.contains(&format!("PostgreSQL 127.0.0.1:{port}/counts unreachable")),
        "{log}"
    );
    assert!(
        w.wait_for(Duration::from_millis(100)).is_none(),
        "it must keep trying"
    );
    w.signal(libc::SIGTERM);
    assert_eq!(
        w.wait_for(Duration::from_secs(2)).and_then(|s| s.code()),
        Some(0)
    );
}

/// PostgreSQL going away mid-run: the batch is retried with backoff until the server is back,
/// then applied once.
#[test]
fn postgres_restart_mid_run() {
    let mut pg = pg::Pg::start();
    let url = pg.create_db("counts");
    pg.client("counts")
        .batch_execute("CREATE TABLE groups (id bigint PRIMARY KEY, times_seen bigint)")
        .unwrap();
    let dir = TempDir::new("pg-restart");
    let server = Server::start();
    let mut con = server.conn();
    let mut w = Worker::spawn(
        &flags(server.port, &url, &["--interval-ms", "10"]),
        dir.path("w.log"),
    );
    bufincr(&mut con, "pending:groups", &[("1", 1)]);
    assert!(
        w.wait_log("entries applied", 1, Duration::from_secs(10)),
        "{}",
        w.stderr()
    );

    pg.stop();
    bufincr(&mut con, "pending:groups", &[("1", 2), ("2", 5)]);
    assert!(
        w.wait_log("retrying in", 3, Duration::from_secs(10)),
        "{}",
        w.stderr()
    );
    pg.restart();
    assert!(
        w.wait_log("entries applied", 2, Duration::from_secs(15)),
        "{}",
        w.stderr()
    );
    let mut client = pg.client("counts");
    assert_eq!(
        pg_totals(&mut client, "groups", "times_seen"),
        [(1, 3), (2, 5)].into()
    );
    w.signal(libc::SIGTERM);
    assert_eq!(
        w.wait_for(Duration::from_secs(2)).and_then(|s| s.code()),
        Some(0)
    );
    let log = w.stderr();
    assert!(log.contains("PostgreSQL 127.0.0.1:"), "{log}");
}
