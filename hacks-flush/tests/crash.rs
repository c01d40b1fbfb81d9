//! The crash test: producers send known totals while the worker is SIGKILLed at random
//! moments and restarted; at the end the table holds exactly the totals sent (nothing lost,
//! nothing counted twice). On both sinks: `sqlite::survives_random_sigkills` and
//! `postgres::survives_random_sigkills`.

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
fn crash_run(server: &Server, db: &dyn TestDb, seed: u64) -> BTreeMap<i64, i64> {
    let extra = format!("--batch 7 --lease-ms {LEASE_MS} --interval-ms 5");
    let flags = flags(&redis_url(server.port), &db.url(), &extra);
    // The producers keep the buffer busy while the worker is killed (bounded: 5000 calls each).
    let stop = Arc::new(AtomicBool::new(false));
    let producers = produce(
        server.port,
        "pending:groups",
        3,
        5000,
        40,
        seed,
        stop.clone(),
    );
    let mut rng = Rng::new(seed ^ 0x5eed);
    let mut logs = String::new();
    let mut con = server.conn();
    let (mut kills, mut stranded) = (0, 0);
    let mut seen = std::collections::BTreeSet::new();
    // At least KILLS kills, and more (up to MAX_KILLS) until at least MIN_STRANDED of them
    // hit a worker between DRAIN and ACK, leaving its batch in flight.
    while kills < KILLS || (stranded < MIN_STRANDED && kills < MAX_KILLS) {
        let mut w = Worker::spawn(&flags, db.dir().path(&format!("w{kills}.log")));
        sleep(Duration::from_millis(rng.range(40, 400) as u64));
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

on_both_sinks!(survives_random_sigkills);

fn survives_random_sigkills(db: &dyn TestDb) {
    let seed = Rng::seed_from_time();
    db.exec(SCHEMA);
    let server = Server::start();
    let sent = crash_run(&server, db, seed);
    assert_eq!(nonzero(&db.totals()), nonzero(&sent), "seed {seed}");
}
