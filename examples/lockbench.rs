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

use hacks_test_support::bench::{run, Bench, Polling, Queue};
use hacks_test_support::resp::{encode, Reply};

const CAD: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// HACK.LOCK + HACK.UNLOCK against SET NX PX + the compare-and-delete script.
const LOCKS: Bench = Bench {
    module: ("HACK.LOCK + HACK.UNLOCK", |out, k, o| {
        encode(out, &[b"HACK.LOCK", k, o, b"10000"]);
        encode(out, &[b"HACK.UNLOCK", k, o]);
    }),
    other: (
        "SET NX PX + EVALSHA compare-and-delete",
        |out, sha, k, o| {
            encode(out, &[b"SET", k, o, b"NX", b"PX", b"10000"]);
            encode(out, &[b"EVALSHA", sha.as_bytes(), b"1", k, o]);
        },
    ),
    script: CAD,
    what: "lock + unlock pairs on random keys",
    versus: "vs SET NX+Lua",
    prefix: "lk",
    // `waiters` is field 7 of HACK.LOCKINFO.
    queue: (
        "HACK.LOCK ... WAIT (server-side queue)",
        Queue {
            hold: &["HACK.LOCK", "lat", "h", "10000"],
            wait: &["HACK.LOCK", "lat", "w", "10000", "WAIT", "0"],
            info: &["HACK.LOCKINFO", "lat"],
            queued: |f| f.get(7) == Some(&Reply::Int(1)),
            release: [&["HACK.UNLOCK", "lat", "h"], &["HACK.UNLOCK", "lat", "w"]],
        },
    ),
    // SET NX PX, released by the compare-and-delete.
    polling: (
        "SET NX PX retried every 10 ms",
        Polling {
            acquire: |c, _, owner| c.call(&["SET", "poll", owner, "NX", "PX", "10000"]),
            granted: |r| matches!(r, Reply::Ok(ok) if ok == "OK"),
            release: |c, sha, owner| c.call(&["EVALSHA", sha, "1", "poll", owner]),
        },
    ),
};

fn main() {
    run(&LOCKS);
}
