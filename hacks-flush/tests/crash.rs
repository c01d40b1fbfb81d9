//! The crash test: producers send known totals while the worker is SIGKILLed at random
//! moments and restarted; at the end the table holds exactly the totals sent (nothing lost,
//! nothing counted twice). On both sinks: `sqlite::survives_random_sigkills` and
//! `postgres::survives_random_sigkills`; and the same for rows (`rows_survive_random_sigkills`:
//! INCR, MAX, MIN and SET columns from concurrent producers end exact: counters, true
//! extremes, and the last SET in the master's order).

use hacks_test_support as common;
#[macro_use]
mod db;
mod flush;
mod pg;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::sleep;
use std::time::Duration;

use common::Server;
use db::{TestDb, SCHEMA};
use flush::*;

const LEASE_MS: u64 = 300;
const KILLS: usize = 8;
const MAX_KILLS: usize = 40;
const MIN_STRANDED: usize = 3;

/// Runs producers and a worker that is SIGKILLed after a random 40-400 ms and restarted,
/// KILLS times or more (see MIN_STRANDED), then stops the producers and makes a final
/// `--once` run once every lease ran out. Returns the totals sent; the caller compares them
/// with its table.
fn crash_run<T>(
    server: &Server,
    db: &dyn TestDb,
    seed: u64,
    flags: Vec<String>,
    start: impl FnOnce(Arc<AtomicBool>) -> std::thread::JoinHandle<T>,
) -> T {
    // The producers keep the buffer busy while the worker is killed (bounded).
    let stop = Arc::new(AtomicBool::new(false));
    let producers = start(stop.clone());
    let mut rng = Rng((seed ^ 0x5eed).max(1));
    let mut logs = String::new();
    let mut con = server.conn();
    let (mut kills, mut stranded) = (0, 0);
    let mut seen = std::collections::BTreeSet::new();
    // At least KILLS kills, and more (up to MAX_KILLS) until at least MIN_STRANDED of them
    // hit a worker between DRAIN and ACK, leaving its batch in flight.
    while kills < KILLS || (stranded < MIN_STRANDED && kills < MAX_KILLS) {
        let mut w = Worker::spawn(&flags, db.dir().path(&format!("w{kills}.log")));
        sleep(Duration::from_millis(rng.range(40, 401) as u64));
        // Every other kill waits (up to 200 ms) for a batch to be in flight, so kills between
        // DRAIN and ACK do not depend on luck: a batch spends a small part of a cycle there,
        // and the faster the buffer side gets, the smaller that part.
        if kills % 2 == 1 {
            let until = std::time::Instant::now() + Duration::from_millis(200);
            while std::time::Instant::now() < until
                && in_flight_ids(&mut con, "pending:groups")
                    .iter()
                    .all(|id| seen.contains(id))
            {
                sleep(Duration::from_micros(200));
            }
        }
        w.kill9();
        kills += 1;
        let now = in_flight_ids(&mut con, "pending:groups");
        if now.iter().any(|id| !seen.contains(id)) {
            stranded += 1;
        }
        seen.extend(now);
        logs.push_str(&w.stderr());
    }
    stop.store(true, Ordering::Relaxed);
    let sent = producers.join().expect("producers");
    // Every batch leased by a killed worker has expired by now and is handed out again.
    sleep(Duration::from_millis(LEASE_MS + 100));
    let mut last = flags.clone();
    last.push("--once".into());
    let done = run(&last, &db.dir().0);
    assert_eq!(done.code, Some(0), "final run:\n{}", done.stderr);
    logs.push_str(&done.stderr);
    assert!(
        buffer_gone(&mut con, "pending:groups"),
        "buffer not empty after the final run:\n{}",
        done.stderr
    );
    let batches = logs.matches("entries applied").count();
    let redelivered = redeliveries(&logs);
    let skipped = logs.matches("already applied").count();
    eprintln!(
        "seed {seed}: {kills} kills ({stranded} left a batch in flight), {batches} batches \
         applied, {redelivered} redelivered, {skipped} skipped as already applied"
    );
    assert!(
        stranded >= MIN_STRANDED,
        "kills never hit a batch in flight:\n{logs}"
    );
    assert!(batches > 20, "too little work was done:\n{logs}");
    // Every batch left in flight was handed out again (and logged with its delivery count).
    assert!(
        redelivered > 0,
        "no batch was ever handed out again:\n{logs}"
    );
    sent
}

on_both_sinks!(survives_random_sigkills, rows_survive_random_sigkills);

fn survives_random_sigkills(db: &dyn TestDb) {
    let seed = seed_from_time();
    db.exec(SCHEMA);
    let server = Server::start();
    let extra = format!("--batch 7 --lease-ms {LEASE_MS} --interval-ms 5");
    let flags = flags(&redis_url(server.port), &db.url(), &extra);
    let port = server.port;
    let sent = crash_run(&server, db, seed, flags, |stop| {
        produce(port, "pending:groups", 3, 5000, 40, seed, stop)
    });
    assert_eq!(nonzero(&db.totals()), nonzero(&sent), "seed {seed}");
}

/// What the producers wrote for one member: INCR sum, MAX, MIN, and the sequence number of
/// the last SET in the master's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sent {
    times_seen: i64,
    last_seen: i64,
    first_seen: i64,
    last_seq: i64,
}

/// One update per call, through a script that takes its sequence number from the master in
/// the same atomic step: the message it SETs is `m<seq>`, so the last write in the master's
/// order is the one with the largest seq.
const ROW_SCRIPT: &str = "local n = redis.call('INCR', KEYS[2]) \
    redis.call('HACK.BUFUPDATE', KEYS[1], ARGV[1], 'INCR', 'times_seen', ARGV[2], \
    'MAX', 'last_seen', ARGV[3], 'MIN', 'first_seen', ARGV[3], 'SET', 'message', 'm' .. n) \
    return n";

fn produce_rows(
    port: u16,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<BTreeMap<i64, Sent>> {
    std::thread::spawn(move || {
        let handles: Vec<_> = (0..3u64)
            .map(|t| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let client = redis::Client::open(redis_url(port)).expect("client");
                    let mut con = client.get_connection().expect("connect");
                    let mut rng = Rng(seed.wrapping_add(t * 7919).max(1));
                    let mut sent: BTreeMap<i64, Sent> = BTreeMap::new();
                    for _ in 0..4000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let (m, d, ts) =
                            (rng.range(0, 40), rng.range(-5, 21), rng.range(1, 1_000_001));
                        let seq: i64 = redis::cmd("EVAL")
                            .arg(ROW_SCRIPT)
                            .arg(2)
                            .arg("pending:groups")
                            .arg("rows:seq")
                            .arg(m)
                            .arg(d)
                            .arg(ts)
                            .query(&mut con)
                            .expect("EVAL HACK.BUFUPDATE");
                        let e = sent.entry(m).or_insert(Sent {
                            times_seen: 0,
                            last_seen: i64::MIN,
                            first_seen: i64::MAX,
                            last_seq: 0,
                        });
                        e.times_seen += d;
                        e.last_seen = e.last_seen.max(ts);
                        e.first_seen = e.first_seen.min(ts);
                        e.last_seq = e.last_seq.max(seq);
                        sleep(Duration::from_millis(2));
                    }
                    sent
                })
            })
            .collect();
        let mut all: BTreeMap<i64, Sent> = BTreeMap::new();
        for h in handles {
            for (m, s) in h.join().expect("producer thread") {
                all.entry(m)
                    .and_modify(|a| {
                        a.times_seen += s.times_seen;
                        a.last_seen = a.last_seen.max(s.last_seen);
                        a.first_seen = a.first_seen.min(s.first_seen);
                        a.last_seq = a.last_seq.max(s.last_seq);
                    })
                    .or_insert(s);
            }
        }
        all
    })
}

fn rows_survive_random_sigkills(db: &dyn TestDb) {
    let seed = seed_from_time();
    db.exec(
        "CREATE TABLE groups (id INTEGER PRIMARY KEY, times_seen INTEGER NOT NULL DEFAULT 0,
                              last_seen BIGINT, first_seen BIGINT, message TEXT);",
    );
    let server = Server::start();
    let mut flags = args(&["--redis", &redis_url(server.port), "--db", &db.url()]);
    flags.extend(words(&format!(
        "--buffer pending:groups --table groups \
         --columns times_seen,last_seen,first_seen,message \
         --batch 7 --lease-ms {LEASE_MS} --interval-ms 5"
    )));
    let port = server.port;
    let sent = crash_run(&server, db, seed, flags, |stop| {
        produce_rows(port, seed, stop)
    });
    let got: BTreeMap<i64, Sent> = db
        .rows("SELECT id, times_seen, last_seen, first_seen, message FROM groups")
        .iter()
        .map(|r| {
            let seq = r[4].text().trim_start_matches('m').parse().expect("m<seq>");
            (
                r[0].int(),
                Sent {
                    times_seen: r[1].int(),
                    last_seen: r[2].int(),
                    first_seen: r[3].int(),
                    last_seq: seq,
                },
            )
        })
        .collect();
    assert_eq!(got, sent, "seed {seed}");
}
