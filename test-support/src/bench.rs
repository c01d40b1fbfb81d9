//! The lock and semaphore benchmarks (`examples/lockbench.rs`, `examples/sembench.rs`), run
//! the same way over the load generator (`pairs.rs`): each example describes a [`Bench`]
//! (the module's commands and the usual way without it), [`run`] measures and prints
//! 1. pairs per second of acquire + release on random keys, best of interleaved rounds;
//! 2. the hand-off latency of the module's server-side wait queue against a client retrying
//!    every 10 ms.

use std::thread;
use std::time::{Duration, Instant};

use crate::pairs::{pairs_per_sec, print_handoff, print_pairs, Load};
use crate::resp::{Conn, Reply};
use crate::Rng;

/// Appends one acquire + release pair on `key` for `owner` to `out`.
pub type Pair = fn(out: &mut Vec<u8>, key: &[u8], owner: &[u8]);

/// A [`Pair`] of a way that runs a script (`sha`: the script's).
pub type ScriptPair = fn(out: &mut Vec<u8>, sha: &str, key: &[u8], owner: &[u8]);

/// A lock-like primitive against the usual way without the module, as [`run`] measures it.
pub struct Bench {
    /// The module's pair, and its label.
    pub module: (&'static str, Pair),
    /// The other way's pair, and its label.
    pub other: (&'static str, ScriptPair),
    /// The other way's Lua script, loaded first.
    pub script: &'static str,
    /// What the throughput table shows (the load's shape follows).
    pub what: &'static str,
    /// The ratio column's heading.
    pub versus: &'static str,
    /// Keys of the throughput rounds: `{prefix}:N`.
    pub prefix: &'static str,
    /// The module's wait queue, and its label.
    pub queue: (&'static str, Queue),
    /// The other way's polling waiter, and its label.
    pub polling: (&'static str, Polling),
}

/// Measures `b` against the server the command line names, with the load it gives (see
/// [`Load::from_args`]), and prints the throughput table, then the hand-off latency table.
pub fn run(b: &Bench) {
    let l = Load::from_args();
    let mut c = Conn::open(l.port);
    let sha = load_script(&mut c, b.script);
    let ((module_label, module), (other_label, other)) = (b.module, b.other);
    let key = |k: u64| format!("{}:{k}", b.prefix);
    let (best_module, best_other) = best_of_rounds(
        &l,
        &mut c,
        |out, k, o| module(out, key(k).as_bytes(), o),
        |out, k, o| other(out, &sha, key(k).as_bytes(), o),
    );
    print_pairs(
        &format!(
            "{}: -c {} -P {} (commands in flight per connection), {} pairs, best of {}",
            b.what, l.clients, l.pipeline, l.pairs, l.rounds
        ),
        b.versus,
        (other_label, best_other),
        (module_label, best_module),
    );
    c.call(&["FLUSHALL"]);
    let (queue_label, queue) = &b.queue;
    let (polling_label, polling) = &b.polling;
    print_handoff(
        (queue_label, &mut queued_handoff(l.port, 2000, queue)),
        (
            polling_label,
            &mut polling_handoff(l.port, 200, polling, &sha),
        ),
    );
}

/// `SCRIPT LOAD script`: the script's sha.
fn load_script(c: &mut Conn, script: &str) -> String {
    let Reply::Bulk(sha) = c.call(&["SCRIPT", "LOAD", script]) else {
        panic!("SCRIPT LOAD failed");
    };
    String::from_utf8(sha).expect("sha")
}

/// Pairs per second of the module's pair and of the other way's, the best of `l.rounds`
/// interleaved rounds, each on an empty dataset (`pair` as [`pairs_per_sec`] takes it).
fn best_of_rounds(
    l: &Load,
    c: &mut Conn,
    mut module: impl FnMut(&mut Vec<u8>, u64, &[u8]),
    mut other: impl FnMut(&mut Vec<u8>, u64, &[u8]),
) -> (f64, f64) {
    let (mut best_module, mut best_other) = (0f64, 0f64);
    for _ in 0..l.rounds {
        c.call(&["FLUSHALL"]);
        best_module = best_module.max(pairs_per_sec(l, &mut module));
        c.call(&["FLUSHALL"]);
        best_other = best_other.max(pairs_per_sec(l, &mut other));
    }
    (best_module, best_other)
}

/// A primitive with a server-side wait queue, as [`run`] hands it off: the commands of a
/// holder (owner `h`) and of a waiter (owner `w`) on one key.
pub struct Queue {
    /// The holder's acquire, replying an integer.
    pub hold: &'static [&'static str],
    /// The waiter's acquire with `WAIT 0`: it blocks until the holder releases.
    pub wait: &'static [&'static str],
    /// The command whose reply fields `queued` reads.
    pub info: &'static [&'static str],
    /// Whether those fields show the waiter queued.
    pub queued: fn(&[Reply]) -> bool,
    /// The holder's release, then the waiter's, each replying 1.
    pub release: [&'static [&'static str]; 2],
}

/// A primitive a client takes by retrying, as [`run`] hands it off: each command gets the
/// connection, the script's sha and the owner (`h` the holder, `w` the waiter).
pub struct Polling {
    /// One attempt to take it.
    pub acquire: fn(&mut Conn, &str, &str) -> Reply,
    /// Whether an attempt's reply says it was taken.
    pub granted: fn(&Reply) -> bool,
    /// Gives it back (replying 1 for the holder).
    pub release: fn(&mut Conn, &str, &str) -> Reply,
}

/// Release sent -> the queued waiter's reply, in ms, `n` times.
fn queued_handoff(port: u16, n: usize, q: &Queue) -> Vec<f64> {
    let mut holder = Conn::open(port);
    let mut waiter = Conn::open(port);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        assert!(matches!(holder.call(q.hold), Reply::Int(_)));
        waiter.send(q.wait);
        // Only measure once the server has queued the waiter.
        loop {
            if let Reply::Array(f) = holder.call(q.info) {
                if (q.queued)(&f) {
                    break;
                }
            }
        }
        let t0 = Instant::now();
        holder.send(q.release[0]);
        let r = waiter.read();
        let dt = t0.elapsed();
        assert!(matches!(r, Reply::Int(_)), "{r:?}");
        assert_eq!(holder.read(), Reply::Int(1));
        assert_eq!(waiter.call(q.release[1]), Reply::Int(1));
        out.push(dt.as_secs_f64() * 1000.0);
    }
    out
}

/// Release sent -> the polling waiter's successful acquire, in ms, `n` times: a waiter
/// thread retries every 10 ms while the holder has it, and the holder releases at a random
/// point of that cycle.
fn polling_handoff(port: u16, n: usize, p: &Polling, sha: &str) -> Vec<f64> {
    let mut holder = Conn::open(port);
    let mut out = Vec::with_capacity(n);
    let mut rng = Rng(42);
    for _ in 0..n {
        let r = (p.acquire)(&mut holder, sha, "h");
        assert!((p.granted)(&r), "{r:?}");
        let dt = thread::scope(|s| {
            let waiter = s.spawn(|| {
                let mut c = Conn::open(port);
                loop {
                    if (p.granted)(&(p.acquire)(&mut c, sha, "w")) {
                        let at = Instant::now();
                        (p.release)(&mut c, sha, "w");
                        return at;
                    }
                    thread::sleep(Duration::from_millis(10));
                }
            });
            thread::sleep(Duration::from_micros(2_000 + rng.next() % 10_000));
            let t0 = Instant::now();
            assert_eq!((p.release)(&mut holder, sha, "h"), Reply::Int(1));
            waiter.join().expect("waiter").duration_since(t0)
        });
        out.push(dt.as_secs_f64() * 1000.0);
    }
    out
}
