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

use hacks_test_support::handoff::{
    best_of_rounds, load_script, polling_handoff, queued_handoff, Queue,
};
use hacks_test_support::pairs::{print_handoff, print_pairs, Load};
use hacks_test_support::resp::{encode, Conn, Reply};

/// npm `redis-semaphore`'s acquire script (acquireSemaphore.lua), its release is a ZREM.
const ACQ: &str = "local key = KEYS[1] local limit = tonumber(ARGV[1]) local identifier = ARGV[2] local lockTimeout = tonumber(ARGV[3]) local now = tonumber(ARGV[4]) local expiredTimestamp = now - lockTimeout redis.call('zremrangebyscore', key, '-inf', expiredTimestamp) if redis.call('zcard', key) < limit then redis.call('zadd', key, now, identifier) redis.call('pexpire', key, lockTimeout) return 1 else return 0 end";

fn now_ms() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
        .to_string()
}

/// HACK.SEMACQUIRE's wait queue on key `lat`, limit 1: the waiter needs the holder's permit
/// (`waiters` is the last field of HACK.SEMINFO).
const QUEUE: Queue = Queue {
    hold: &["HACK.SEMACQUIRE", "lat", "h", "1", "10000"],
    wait: &["HACK.SEMACQUIRE", "lat", "w", "1", "10000", "WAIT", "0"],
    info: &["HACK.SEMINFO", "lat"],
    queued: |f| f.last() == Some(&Reply::Int(1)),
    release: [
        &["HACK.SEMRELEASE", "lat", "h"],
        &["HACK.SEMRELEASE", "lat", "w"],
    ],
};

fn main() {
    let l = Load::from_args();
    let mut c = Conn::open(l.port);
    let sha = load_script(&mut c, ACQ);
    let key = |k: u64| format!("sem:{k}");
    let (best_mod, best_lua) = best_of_rounds(
        &l,
        &mut c,
        |out, k, o| {
            let k = key(k);
            encode(out, &[b"HACK.SEMACQUIRE", k.as_bytes(), o, b"5", b"10000"]);
            encode(out, &[b"HACK.SEMRELEASE", k.as_bytes(), o]);
        },
        |out, k, o| {
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
        },
    );
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
    // The polling waiter: the acquire script with limit 1 (retried every 10 ms, as
    // redis-semaphore's default retryInterval), released by ZREM.
    let acquire = |c: &mut Conn, owner: &str| {
        c.call(&["EVALSHA", &sha, "1", "poll", "1", owner, "10000", &now_ms()])
    };
    let zrem = |c: &mut Conn, owner: &str| c.call(&["ZREM", "poll", owner]);
    print_handoff(
        (
            "HACK.SEMACQUIRE ... WAIT (server-side)",
            &mut queued_handoff(l.port, 2000, &QUEUE),
        ),
        (
            "redis-semaphore acquire every 10 ms",
            &mut polling_handoff(l.port, 200, acquire, Reply::Int(1), zrem),
        ),
    );
}
