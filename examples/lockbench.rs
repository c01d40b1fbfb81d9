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

use hacks_test_support::handoff::{
    best_of_rounds, load_script, polling_handoff, queued_handoff, Queue,
};
use hacks_test_support::pairs::{print_handoff, print_pairs, Load};
use hacks_test_support::resp::{encode, Conn, Reply};

const CAD: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// HACK.LOCK's wait queue on key `lat` (`waiters` is field 7 of HACK.LOCKINFO).
const QUEUE: Queue = Queue {
    hold: &["HACK.LOCK", "lat", "h", "10000"],
    wait: &["HACK.LOCK", "lat", "w", "10000", "WAIT", "0"],
    info: &["HACK.LOCKINFO", "lat"],
    queued: |f| f.get(7) == Some(&Reply::Int(1)),
    release: [&["HACK.UNLOCK", "lat", "h"], &["HACK.UNLOCK", "lat", "w"]],
};

fn main() {
    let l = Load::from_args();
    let mut c = Conn::open(l.port);
    let sha = load_script(&mut c, CAD);
    let key = |k: u64| format!("lk:{k}");
    let (best_mod, best_lua) = best_of_rounds(
        &l,
        &mut c,
        |out, k, o| {
            let k = key(k);
            encode(out, &[b"HACK.LOCK", k.as_bytes(), o, b"10000"]);
            encode(out, &[b"HACK.UNLOCK", k.as_bytes(), o]);
        },
        |out, k, o| {
            let k = key(k);
            encode(out, &[b"SET", k.as_bytes(), o, b"NX", b"PX", b"10000"]);
            encode(out, &[b"EVALSHA", sha.as_bytes(), b"1", k.as_bytes(), o]);
        },
    );
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
    // The polling waiter: SET NX PX, released by the compare-and-delete.
    let set_nx = |c: &mut Conn, owner: &str| c.call(&["SET", "poll", owner, "NX", "PX", "10000"]);
    let cad = |c: &mut Conn, owner: &str| c.call(&["EVALSHA", &sha, "1", "poll", owner]);
    print_handoff(
        (
            "HACK.LOCK ... WAIT (server-side queue)",
            &mut queued_handoff(l.port, 2000, &QUEUE),
        ),
        (
            "SET NX PX retried every 10 ms",
            &mut polling_handoff(l.port, 200, set_nx, Reply::Ok("OK".into()), cad),
        ),
    );
}
