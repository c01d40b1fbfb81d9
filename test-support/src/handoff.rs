//! What the lock and semaphore benchmarks (`examples/lockbench.rs`, `examples/sembench.rs`)
//! share besides the load generator (`pairs.rs`): loading the other way's Lua script, the
//! interleaved best-of rounds of the two pairs, and the two hand-off latency loops (the
//! module's server-side wait queue against a client retrying every 10 ms).

use std::thread;
use std::time::{Duration, Instant};

use crate::pairs::{pairs_per_sec, Load};
use crate::resp::{Conn, Reply};
use crate::Rng;

/// `SCRIPT LOAD script`: the script's sha.
pub fn load_script(c: &mut Conn, script: &str) -> String {
    let Reply::Bulk(sha) = c.call(&["SCRIPT", "LOAD", script]) else {
        panic!("SCRIPT LOAD failed");
    };
    String::from_utf8(sha).expect("sha")
}

/// Pairs per second of the module's pair and of the other way's, the best of `l.rounds`
/// interleaved rounds, each on an empty dataset (`pair` as [`pairs_per_sec`] takes it).
pub fn best_of_rounds(
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

/// A primitive with a server-side wait queue, as [`queued_handoff`] drives it: the commands
/// of a holder (owner `h`) and of a waiter (owner `w`) on one key.
pub struct Queue<'a> {
    /// The holder's acquire, replying an integer.
    pub hold: &'a [&'a str],
    /// The waiter's acquire with `WAIT 0`: it blocks until the holder releases.
    pub wait: &'a [&'a str],
    /// The command whose reply fields `queued` reads.
    pub info: &'a [&'a str],
    /// Whether those fields show the waiter queued.
    pub queued: fn(&[Reply]) -> bool,
    /// The holder's release, then the waiter's, each replying 1.
    pub release: [&'a [&'a str]; 2],
}

/// Release sent -> the queued waiter's reply, in ms, `n` times.
pub fn queued_handoff(port: u16, n: usize, q: &Queue) -> Vec<f64> {
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

/// Release sent -> the polling waiter's successful acquire, in ms, `n` times. The holder
/// takes the primitive with `acquire(conn, "h")` (replying `granted`); a waiter thread tries
/// `acquire(conn, "w")` every 10 ms; the holder gives it up at a random point of that cycle
/// with `release(conn, "h")` (replying 1), and the waiter with `release(conn, "w")` once it
/// has it.
pub fn polling_handoff(
    port: u16,
    n: usize,
    acquire: impl Fn(&mut Conn, &str) -> Reply + Sync,
    granted: Reply,
    release: impl Fn(&mut Conn, &str) -> Reply + Sync,
) -> Vec<f64> {
    let mut holder = Conn::open(port);
    let mut out = Vec::with_capacity(n);
    let mut rng = Rng(42);
    for _ in 0..n {
        assert_eq!(acquire(&mut holder, "h"), granted);
        let dt = thread::scope(|s| {
            let waiter = s.spawn(|| {
                let mut c = Conn::open(port);
                loop {
                    if acquire(&mut c, "w") == granted {
                        let at = Instant::now();
                        release(&mut c, "w");
                        return at;
                    }
                    thread::sleep(Duration::from_millis(10));
                }
            });
            thread::sleep(Duration::from_micros(2_000 + rng.next() % 10_000));
            let t0 = Instant::now();
            assert_eq!(release(&mut holder, "h"), Reply::Int(1));
            waiter.join().expect("waiter").duration_since(t0)
        });
        out.push(dt.as_secs_f64() * 1000.0);
    }
    out
}
