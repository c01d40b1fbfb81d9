//! Lock benchmarks for `scripts/bench` (std + libc only, raw RESP over loopback), against a
//! running server with the module loaded:
//!
//! 1. Throughput of uncontended lock + unlock pairs on random keys, `-c 50 -P 16` style:
//!    50 connections, each keeping 16 commands (8 pairs) in flight, driven by one thread
//!    with poll(2) like redis-benchmark. `HACK.LOCK` + `HACK.UNLOCK` against
//!    `SET key token NX PX` + a Lua compare-and-delete (`EVALSHA`), interleaved rounds, best
//!    of each.
//! 2. Hand-off latency: from the moment UNLOCK is sent to the moment the waiter's reply
//!    arrives, against the classic loop that retries `SET NX PX` every 10 ms.
//!
//! `cargo run --release --example lockbench -- PORT [pairs] [rounds] [clients] [pipeline] [keyspace]`

use hacks_test_support::pairs::{pairs_per_sec, print_handoff, print_pairs, Load};
use hacks_test_support::resp::{encode, Conn, Reply};
use hacks_test_support::Rng;
use std::thread;
use std::time::{Duration, Instant};

const CAD: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// UNLOCK sent -> waiter's reply, in ms.
fn handoff_latency(port: u16, n: usize) -> Vec<f64> {
    let mut holder = Conn::open(port);
    let mut waiter = Conn::open(port);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        assert!(matches!(
            holder.call(&["HACK.LOCK", "lat", "h", "10000"]),
            Reply::Int(_)
        ));
        waiter.send(&["HACK.LOCK", "lat", "w", "10000", "WAIT", "0"]);
        // Only measure once the server has queued the waiter.
        loop {
            if let Reply::Array(f) = holder.call(&["HACK.LOCKINFO", "lat"]) {
                if f.get(7) == Some(&Reply::Int(1)) {
                    break;
                }
            }
        }
        let t0 = Instant::now();
        holder.send(&["HACK.UNLOCK", "lat", "h"]);
        let r = waiter.read();
        let dt = t0.elapsed();
        assert!(matches!(r, Reply::Int(_)), "{r:?}");
        assert_eq!(holder.read(), Reply::Int(1));
        assert_eq!(waiter.call(&["HACK.UNLOCK", "lat", "w"]), Reply::Int(1));
        out.push(dt.as_secs_f64() * 1000.0);
    }
    out
}

/// Release (compare-and-delete sent) -> the polling waiter's successful SET NX, in ms.
fn polling_latency(port: u16, sha: &str, n: usize) -> Vec<f64> {
    let mut holder = Conn::open(port);
    let mut out = Vec::with_capacity(n);
    let mut rng = Rng(42);
    for _ in 0..n {
        assert_eq!(
            holder.call(&["SET", "poll", "h", "NX", "PX", "10000"]),
            Reply::Ok("OK".into())
        );
        let waiter = thread::spawn(move || {
            let mut c = Conn::open(port);
            loop {
                if c.call(&["SET", "poll", "w", "NX", "PX", "10000"]) == Reply::Ok("OK".into()) {
                    let at = Instant::now();
                    c.call(&["DEL", "poll"]);
                    return at;
                }
                thread::sleep(Duration::from_millis(10));
            }
        });
        // Release at a random point of the waiter's 10 ms cycle.
        thread::sleep(Duration::from_micros(2_000 + rng.next() % 10_000));
        let t0 = Instant::now();
        assert_eq!(
            holder.call(&["EVALSHA", sha, "1", "poll", "h"]),
            Reply::Int(1)
        );
        let got = waiter.join().expect("waiter");
        out.push(got.duration_since(t0).as_secs_f64() * 1000.0);
    }
    out
}

fn main() {
    let l = Load::from_args();
    let mut c = Conn::open(l.port);
    let Reply::Bulk(sha) = c.call(&["SCRIPT", "LOAD", CAD]) else {
        panic!("SCRIPT LOAD failed");
    };
    let sha = String::from_utf8(sha).expect("sha");
    let key = |k: u64| format!("lk:{k}");
    let (mut best_mod, mut best_lua) = (0f64, 0f64);
    for _ in 0..l.rounds {
        c.call(&["FLUSHALL"]);
        best_mod = best_mod.max(pairs_per_sec(&l, |out, k, o| {
            let k = key(k);
            encode(out, &[b"HACK.LOCK", k.as_bytes(), o, b"10000"]);
            encode(out, &[b"HACK.UNLOCK", k.as_bytes(), o]);
        }));
        c.call(&["FLUSHALL"]);
        best_lua = best_lua.max(pairs_per_sec(&l, |out, k, o| {
            let k = key(k);
            encode(out, &[b"SET", k.as_bytes(), o, b"NX", b"PX", b"10000"]);
            encode(out, &[b"EVALSHA", sha.as_bytes(), b"1", k.as_bytes(), o]);
        }));
    }
    print_pairs(
        &format!(
            "lock + unlock pairs on random keys: -c {} -P {} (commands in flight per connection), {} pairs, best of {}",
            l.clients, l.pipeline, l.pairs, l.rounds
        ),
        "vs SET NX+Lua",
        ("SET NX PX + EVALSHA compare-and-delete", best_lua),
        ("HACK.LOCK + HACK.UNLOCK", best_mod),
    );
    c.call(&["FLUSHALL"]);
    print_handoff(
        (
            "HACK.LOCK ... WAIT (server-side queue)",
            &mut handoff_latency(l.port, 2000),
        ),
        (
            "SET NX PX retried every 10 ms",
            &mut polling_latency(l.port, &sha, 200),
        ),
    );
}
