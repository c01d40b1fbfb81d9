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

use hacks_test_support::bench::{run, Bench, Polling, Queue};
use hacks_test_support::resp::{encode, Reply};

/// npm `redis-semaphore`'s acquire script (acquireSemaphore.lua), its release is a ZREM.
const ACQ: &str = "local key = KEYS[1] local limit = tonumber(ARGV[1]) local identifier = ARGV[2] local lockTimeout = tonumber(ARGV[3]) local now = tonumber(ARGV[4]) local expiredTimestamp = now - lockTimeout redis.call('zremrangebyscore', key, '-inf', expiredTimestamp) if redis.call('zcard', key) < limit then redis.call('zadd', key, now, identifier) redis.call('pexpire', key, lockTimeout) return 1 else return 0 end";

fn now_ms() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
        .to_string()
}

/// HACK.SEMACQUIRE + HACK.SEMRELEASE against redis-semaphore, both with limit 5.
const SEMAPHORES: Bench = Bench {
    module: ("HACK.SEMACQUIRE + HACK.SEMRELEASE", |out, k, o| {
        encode(out, &[b"HACK.SEMACQUIRE", k, o, b"5", b"10000"]);
        encode(out, &[b"HACK.SEMRELEASE", k, o]);
    }),
    other: (
        "redis-semaphore: EVALSHA acquire + ZREM",
        |out, sha, k, o| {
            let now = now_ms();
            let acquire: [&[u8]; 8] = [
                b"EVALSHA",
                sha.as_bytes(),
                b"1",
                k,
                b"5",
                o,
                b"10000",
                now.as_bytes(),
            ];
            encode(out, &acquire);
            encode(out, &[b"ZREM", k, o]);
        },
    ),
    script: ACQ,
    what: "semaphore acquire + release pairs on random keys, limit 5",
    versus: "vs redis-semaphore",
    prefix: "sem",
    // Limit 1: the waiter needs the holder's permit (`waiters` is the last field of
    // HACK.SEMINFO).
    queue: (
        "HACK.SEMACQUIRE ... WAIT (server-side)",
        Queue {
            hold: &["HACK.SEMACQUIRE", "lat", "h", "1", "10000"],
            wait: &["HACK.SEMACQUIRE", "lat", "w", "1", "10000", "WAIT", "0"],
            info: &["HACK.SEMINFO", "lat"],
            queued: |f| f.last() == Some(&Reply::Int(1)),
            release: [
                &["HACK.SEMRELEASE", "lat", "h"],
                &["HACK.SEMRELEASE", "lat", "w"],
            ],
        },
    ),
    // The acquire script with limit 1, retried every 10 ms (redis-semaphore's default
    // retryInterval), released by ZREM.
    polling: (
        "redis-semaphore acquire every 10 ms",
        Polling {
            acquire: |c, sha, owner| {
                c.call(&["EVALSHA", sha, "1", "poll", "1", owner, "10000", &now_ms()])
            },
            granted: |r| *r == Reply::Int(1),
            release: |c, _, owner| c.call(&["ZREM", "poll", owner]),
        },
    ),
};

fn main() {
    run(&SEMAPHORES);
}
