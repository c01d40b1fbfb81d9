//! Semaphore benchmarks for `scripts/bench` (std + libc only, raw RESP over loopback), driven
//! as `lockbench.rs` drives locks, against a running server with the module loaded:
//!
//! 1. Throughput of acquire + release pairs on random keys with limit 5, `-c 50 -P 16` style:
//!    `HACK.SEMACQUIRE` + `HACK.SEMRELEASE` against npm `redis-semaphore`'s way (its acquire
//!    Lua script, ZREMRANGEBYSCORE + ZCARD + ZADD + PEXPIRE, via EVALSHA, then ZREM),
//!    interleaved rounds, best of each.
//! 2. Hand-off latency: release sent -> the waiter's reply, against redis-semaphore's loop
//!    that retries its acquire script every 10 ms.
//!
//! `cargo run --release --example sembench -- PORT [pairs] [rounds] [clients] [pipeline] [keyspace]`

use hacks_test_support::pairs::{pairs_per_sec, print_handoff, print_pairs, Load};
use hacks_test_support::resp::{encode, Conn, Reply};
use hacks_test_support::Rng;
use std::thread;
use std::time::{Duration, Instant};

/// npm `redis-semaphore`'s acquire script (acquireSemaphore.lua), its release is a ZREM.
const ACQ: &str = "local key = KEYS[1] local limit = tonumber(ARGV[1]) local identifier = ARGV[2] local lockTimeout = tonumber(ARGV[3]) local now = tonumber(ARGV[4]) local expiredTimestamp = now - lockTimeout redis.call('zremrangebyscore', key, '-inf', expiredTimestamp) if redis.call('zcard', key) < limit then redis.call('zadd', key, now, identifier) redis.call('pexpire', key, lockTimeout) return 1 else return 0 end";

fn now_ms() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
        .to_string()
}

/// SEMRELEASE sent -> the waiter's reply, in ms (limit 1: the waiter needs the permit).
fn handoff_latency(port: u16, n: usize) -> Vec<f64> {
    let mut holder = Conn::open(port);
    let mut waiter = Conn::open(port);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        assert!(matches!(
            holder.call(&["HACK.SEMACQUIRE", "lat", "h", "1", "10000"]),
            Reply::Int(_)
        ));
        waiter.send(&["HACK.SEMACQUIRE", "lat", "w", "1", "10000", "WAIT", "0"]);
        // Only measure once the server has queued the waiter (`waiters` is the last field).
        loop {
            if let Reply::Array(f) = holder.call(&["HACK.SEMINFO", "lat"]) {
                if f.last() == Some(&Reply::Int(1)) {
                    break;
                }
            }
        }
        let t0 = Instant::now();
        holder.send(&["HACK.SEMRELEASE", "lat", "h"]);
        let r = waiter.read();
        let dt = t0.elapsed();
        assert!(matches!(r, Reply::Int(_)), "{r:?}");
        assert_eq!(holder.read(), Reply::Int(1));
        assert_eq!(waiter.call(&["HACK.SEMRELEASE", "lat", "w"]), Reply::Int(1));
        out.push(dt.as_secs_f64() * 1000.0);
    }
    out
}

/// ZREM sent -> the polling waiter's successful acquire script (retried every 10 ms, as
/// redis-semaphore's default retryInterval), in ms.
fn polling_latency(port: u16, sha: &str, n: usize) -> Vec<f64> {
    let mut holder = Conn::open(port);
    let mut out = Vec::with_capacity(n);
    let mut rng = Rng(42);
    for _ in 0..n {
        let now = now_ms();
        assert_eq!(
            holder.call(&["EVALSHA", sha, "1", "poll", "1", "h", "10000", &now]),
            Reply::Int(1)
        );
        let sha2 = sha.to_string();
        let waiter = thread::spawn(move || {
            let mut c = Conn::open(port);
            loop {
                let now = now_ms();
                if c.call(&["EVALSHA", &sha2, "1", "poll", "1", "w", "10000", &now])
                    == Reply::Int(1)
                {
                    let at = Instant::now();
                    c.call(&["ZREM", "poll", "w"]);
                    return at;
                }
                thread::sleep(Duration::from_millis(10));
            }
        });
        thread::sleep(Duration::from_micros(2_000 + rng.next() % 10_000));
        let t0 = Instant::now();
        assert_eq!(holder.call(&["ZREM", "poll", "h"]), Reply::Int(1));
        let got = waiter.join().expect("waiter");
        out.push(got.duration_since(t0).as_secs_f64() * 1000.0);
    }
    out
}

fn main() {
    let l = Load::from_args();
    let mut c = Conn::open(l.port);
    let Reply::Bulk(sha) = c.call(&["SCRIPT", "LOAD", ACQ]) else {
        panic!("SCRIPT LOAD failed");
    };
    let sha = String::from_utf8(sha).expect("sha");
    let key = |k: u64| format!("sem:{k}");
    let (mut best_mod, mut best_lua) = (0f64, 0f64);
    for _ in 0..l.rounds {
        c.call(&["FLUSHALL"]);
        best_mod = best_mod.max(pairs_per_sec(&l, |out, k, o| {
            let k = key(k);
            encode(out, &[b"HACK.SEMACQUIRE", k.as_bytes(), o, b"5", b"10000"]);
            encode(out, &[b"HACK.SEMRELEASE", k.as_bytes(), o]);
        }));
        c.call(&["FLUSHALL"]);
        best_lua = best_lua.max(pairs_per_sec(&l, |out, k, o| {
            let (k, now) = (key(k), now_ms());
            let acquire: [&[u8]; 8] = [
                b"EVALSHA",
                sha.as_bytes(),
                b"1",
                k.as_bytes(),
                b"5",
                o,
                b"10000",
                now.as_bytes(),
            ];
            encode(out, &acquire);
            encode(out, &[b"ZREM", k.as_bytes(), o]);
        }));
    }
    print_pairs(
        &format!(
            "semaphore acquire + release pairs on random keys, limit 5: -c {} -P {} (commands in flight per connection), {} pairs, best of {}",
            l.clients, l.pipeline, l.pairs, l.rounds
        ),
        "vs redis-semaphore",
        ("redis-semaphore: EVALSHA acquire + ZREM", best_lua),
        ("HACK.SEMACQUIRE + HACK.SEMRELEASE", best_mod),
    );
    c.call(&["FLUSHALL"]);
    print_handoff(
        (
            "HACK.SEMACQUIRE ... WAIT (server-side)",
            &mut handoff_latency(l.port, 2000),
        ),
        (
            "redis-semaphore acquire every 10 ms",
            &mut polling_latency(l.port, &sha, 200),
        ),
    );
}
