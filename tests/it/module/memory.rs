//! Memory: creating and deleting a million keys of each module data type gives the memory
//! back, and `MEMORY USAGE` is close to what a key really costs (`INFO memory` deltas).

use crate::common::*;

const N: usize = 1_000_000;
const CHUNK: usize = 20_000;

/// Creates the keys `k:0` to `k:<N-1>` with `command k:<i> args...`, samples `MEMORY USAGE`
/// and deletes them again: (bytes per key measured, reported per key, bytes left after).
fn churn(c: &mut Connection, command: &str, args: &[&str]) -> (i64, i64, i64) {
    let start = used_memory(c);
    for base in (0..N).step_by(CHUNK) {
        let mut p = redis::pipe();
        for i in base..base + CHUNK {
            p.cmd(command).arg(format!("k:{i}")).arg(args).ignore();
        }
        p.query::<Value>(c).unwrap();
    }
    let full = used_memory(c);
    let mut sample = 0i64;
    for i in (0..N).step_by(N / 200) {
        let v: i64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(format!("k:{i}"))
            .query(c)
            .unwrap();
        sample += v;
    }
    let reported = sample / 200;
    for base in (0..N).step_by(CHUNK) {
        let mut p = redis::pipe();
        for i in base..base + CHUNK {
            p.cmd("DEL").arg(format!("k:{i}")).ignore();
        }
        p.query::<()>(c).unwrap();
    }
    let end = used_memory(c);
    ((full - start) / N as i64, reported, end - start)
}

#[test]
fn a_million_keys_of_each_type_come_and_go() {
    let (_s, mut c) = Server::start_with_conn();
    // (kind, command creating key k:<i> with these arguments after the key)
    let kinds: [(&str, &str, &[&str]); 3] = [
        ("buffer", "HACK.BUFINCR", &["member", "1"]),
        ("lock", "HACK.LOCK", &["owner", "600000"]),
        ("series", "HACK.TSINCR", &[]),
    ];
    // What a key costs that MEMORY USAGE never counts for any type (the keyspace entry's
    // share of the dictionaries, the expires entry of a key with a TTL, the object header),
    // measured on plain strings with and without a TTL, the same way.
    let (plain, plain_reported, _) = churn(&mut c, "SET", &["v"]);
    let (ttl, ttl_reported, _) = churn(&mut c, "SET", &["v", "PX", "600000"]);
    let keyspace_gap = |has_ttl: bool| {
        if has_ttl {
            ttl - ttl_reported
        } else {
            plain - plain_reported
        }
    };
    for (kind, command, args) in kinds {
        let (per_key, reported, left) = churn(&mut c, command, args);
        let has_ttl = kind != "buffer";
        let value_cost = per_key - keyspace_gap(has_ttl);
        eprintln!(
            "{kind}: {per_key} bytes per key measured ({value_cost} beyond what strings pay \
             uncounted), MEMORY USAGE says {reported}, {left} bytes left after deleting all"
        );
        // Close means within a third either way.
        assert!(
            (reported as f64) > value_cost as f64 * 0.66
                && (reported as f64) < value_cost as f64 * 1.5,
            "{kind}: MEMORY USAGE {reported} vs measured {value_cost}"
        );
        // Everything comes back but the keyspace tables' grown capacity (under 40 MB for a
        // million slots) — nothing per key.
        assert!(left < 40_000_000, "{kind}: {left} bytes not given back");
    }
}
