//! Write buffers against a real redis-server: HACK.BUFINCR / DRAIN / ACK / BUFINFO semantics,
//! every error leaving keys unchanged, RESP3 maps, MULTI/Lua, replication, persistence (AOF,
//! AOF rewrite, RDB reload, DUMP/RESTORE, COPY) and batch ids that are never reused.

use std::thread::sleep;
use std::time::Duration;

use crate::common::*;

mod rows;

/// Entries of a RESP2 flat array or a RESP3 map, in reply order.
fn entries(v: &Value) -> Vec<(String, i64)> {
    match v {
        Value::Array(items) => items.chunks(2).map(|p| (text(&p[0]), int(&p[1]))).collect(),
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (text(k), int(v))).collect(),
        other => panic!("not entries: {other:?}"),
    }
}

/// (batch_id, delivery_count, entries)
type Leased = (i64, i64, Vec<(String, i64)>);

/// `HACK.DRAIN key COUNT n LEASE ms` -> (batch_id, delivery, entries).
fn lease(c: &mut Connection, key: &str, count: usize, ms: u64) -> Option<Leased> {
    match cmd(
        c,
        &[
            "HACK.DRAIN",
            key,
            "COUNT",
            &count.to_string(),
            "LEASE",
            &ms.to_string(),
        ],
    ) {
        Value::Nil => None,
        Value::Array(v) if v.len() == 3 => Some((int(&v[0]), int(&v[1]), entries(&v[2]))),
        other => panic!("bad lease reply {other:?}"),
    }
}

fn e(m: &str, v: i64) -> (String, i64) {
    (m.to_string(), v)
}

fn exists(c: &mut Connection, key: &str) -> bool {
    int(&cmd(c, &["EXISTS", key])) == 1
}

#[test]
fn bufincr_replies_and_creates_the_type() {
    let (_s, mut c) = Server::start_with_conn();
    assert_eq!(int(&cmd(&mut c, &["HACK.BUFINCR", "b", "x", "5"])), 5);
    let v = cmd(&mut c, &argv("HACK.BUFINCR b x -2 y 7 x 10"));
    assert_eq!(
        v,
        Value::Array(vec![Value::Int(3), Value::Int(7), Value::Int(13)])
    );
    assert_eq!(text(&cmd(&mut c, &["TYPE", "b"])), "hacks-buf");
    assert_eq!(
        int(&cmd(&mut c, &["HACK.BUFINCR", "b", "", "0"])),
        0,
        "empty member, zero increment"
    );
    assert_eq!(
        entries(&cmd(&mut c, &["HACK.DRAIN", "b"])),
        vec![e("x", 13), e("y", 7), e("", 0)]
    );
    assert!(!exists(&mut c, "b"), "an emptied buffer leaves no key");
    assert_eq!(info_field(&mut c, "hacks_buffer_increments"), 5);
    assert_eq!(info_field(&mut c, "hacks_buffer_drained_entries"), 3);
}

#[test]
fn plain_drain_is_oldest_first_and_bounded() {
    let (_s, mut c) = Server::start_with_conn();
    assert_eq!(
        cmd(&mut c, &["HACK.DRAIN", "missing"]),
        Value::Array(vec![])
    );
    for i in 0..250 {
        cmd(&mut c, &["HACK.BUFINCR", "b", &format!("m{i}"), "1"]);
    }
    cmd(&mut c, &["HACK.BUFINCR", "b", "m0", "1"]);
    let first = entries(&cmd(&mut c, &["HACK.DRAIN", "b"]));
    assert_eq!(first.len(), 100, "default COUNT is 100");
    assert_eq!(first[0], e("m0", 2));
    assert_eq!(first[99], e("m99", 1));
    let rest = entries(&cmd(&mut c, &["HACK.DRAIN", "b", "COUNT", "1000"]));
    assert_eq!(rest.len(), 150);
    assert_eq!(rest[0], e("m100", 1));
    assert!(!exists(&mut c, "b"));
}

#[test]
fn leases_redeliver_until_acked() {
    let (_s, mut c) = Server::start_with_conn();
    assert_eq!(lease(&mut c, "b", 10, 200), None, "missing key: nil");
    cmd(&mut c, &["HACK.BUFINCR", "b", "a", "1", "b", "2", "c", "3"]);
    let (id, delivery, got) = lease(&mut c, "b", 2, 200).unwrap();
    assert_eq!((delivery, got.clone()), (1, vec![e("a", 1), e("b", 2)]));
    // Increments for leased members accumulate as new pending values.
    cmd(&mut c, &["HACK.BUFINCR", "b", "a", "10"]);
    // Plain DRAIN never touches the leased batch.
    assert_eq!(
        entries(&cmd(&mut c, &["HACK.DRAIN", "b"])),
        vec![e("c", 3), e("a", 10)]
    );
    assert_eq!(
        lease(&mut c, "b", 10, 200),
        None,
        "nothing pending, lease still running"
    );
    sleep(Duration::from_millis(250));
    let (id2, delivery2, got2) = lease(&mut c, "b", 10, 200).unwrap();
    assert_eq!(
        (id2, delivery2, got2),
        (id, 2, got.clone()),
        "same batch, same entries, delivery+1"
    );
    let info = cmd(&mut c, &["HACK.BUFINFO", "b"]);
    let text_info = format!("{info:?}");
    assert!(
        text_info.contains("delivery_count") && text_info.contains(&id.to_string()),
        "{text_info}"
    );
    assert_eq!(int(&cmd(&mut c, &["HACK.ACK", "b", &id.to_string()])), 1);
    assert_eq!(
        int(&cmd(&mut c, &["HACK.ACK", "b", &id.to_string()])),
        0,
        "already acked"
    );
    assert_eq!(
        int(&cmd(&mut c, &["HACK.ACK", "b", "12345"])),
        0,
        "never existed"
    );
    assert!(
        !exists(&mut c, "b"),
        "last batch acked, nothing pending: key gone"
    );
    assert_eq!(cmd(&mut c, &["HACK.BUFINFO", "b"]), Value::Nil);
    assert_eq!(info_field(&mut c, "hacks_buffer_leases_expired"), 1);
    assert_eq!(info_field(&mut c, "hacks_buffer_batches_acked"), 1);
}

#[test]
fn expired_batches_come_back_oldest_deadline_first() {
    let (_s, mut c) = Server::start_with_conn();
    cmd(&mut c, &["HACK.BUFINCR", "b", "a", "1"]);
    let (first, _, _) = lease(&mut c, "b", 10, 100).unwrap();
    cmd(&mut c, &["HACK.BUFINCR", "b", "z", "1"]);
    let (second, _, _) = lease(&mut c, "b", 10, 150).unwrap();
    assert!(second > first, "ids increase");
    sleep(Duration::from_millis(200));
    assert_eq!(lease(&mut c, "b", 10, 10_000).unwrap().0, first);
    assert_eq!(lease(&mut c, "b", 10, 10_000).unwrap().0, second);
    assert_eq!(lease(&mut c, "b", 10, 10_000), None);
}

#[test]
fn batch_ids_are_never_reused() {
    let mut s = Server::with(Opts::aof());
    let mut c = s.conn();
    let mut seen = vec![];
    for _ in 0..3 {
        cmd(&mut c, &["HACK.BUFINCR", "b", "a", "1"]);
        let (id, _, _) = lease(&mut c, "b", 10, 60_000).unwrap();
        assert_eq!(int(&cmd(&mut c, &["HACK.ACK", "b", &id.to_string()])), 1);
        assert!(!exists(&mut c, "b"));
        seen.push(id);
    }
    // Deleted by DEL while a batch is in flight, then created again.
    cmd(&mut c, &["HACK.BUFINCR", "b", "a", "1"]);
    seen.push(lease(&mut c, "b", 10, 60_000).unwrap().0);
    cmd(&mut c, &["DEL", "b"]);
    cmd(&mut c, &["HACK.BUFINCR", "b", "a", "1"]);
    seen.push(lease(&mut c, "b", 10, 60_000).unwrap().0);
    // Restart from the AOF (the key was deleted and acked batches left no trace in data).
    cmd(&mut c, &["DEL", "b"]);
    drop(c);
    s.restart();
    let mut c = s.conn();
    cmd(&mut c, &["HACK.BUFINCR", "b", "a", "1"]);
    seen.push(lease(&mut c, "b", 10, 60_000).unwrap().0);
    // And after an RDB round trip.
    let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    cmd(&mut c, &["HACK.BUFINCR", "b", "q", "1"]);
    seen.push(lease(&mut c, "b", 10, 60_000).unwrap().0);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "ids strictly increase: {seen:?}");
}

#[test]
fn every_error_leaves_keys_unchanged() {
    let (_s, mut c) = Server::start_with_conn();
    cmd(
        &mut c,
        &argv("HACK.BUFINCR b big 9223372036854775807 small 1"),
    );
    lease(&mut c, "b", 1, 60_000).unwrap();
    cmd(&mut c, &["SET", "str", "x"]);
    let before = dataset(&mut c);
    let cases = error_cases(
        "
        HACK.BUFINCR b            => ERR wrong number of arguments
        HACK.BUFINCR b m          => ERR wrong number of arguments
        HACK.BUFINCR b m 1 n      => ERR wrong number of arguments
        HACK.BUFINCR b m x        => ERR value is not an integer
        HACK.BUFINCR b m 1.5      => ERR value is not an integer
        HACK.BUFINCR b m +1       => ERR value is not an integer
        HACK.BUFINCR b m 9223372036854775808 => ERR value is not an integer
        HACK.BUFINCR b new 1 small 9223372036854775807 => ERR increment or decrement would overflow
        HACK.BUFINCR nokey m 9223372036854775807 m 1 => ERR increment or decrement would overflow
        HACK.BUFINCR str m 1      => WRONGTYPE
        HACK.DRAIN b COUNT        => ERR option COUNT needs a value
        HACK.DRAIN b COUNT 0      => ERR COUNT must be
        HACK.DRAIN b COUNT -1     => ERR COUNT must be
        HACK.DRAIN b COUNT x      => ERR COUNT must be
        HACK.DRAIN b LEASE 0      => ERR LEASE must be
        HACK.DRAIN b COUNT 1 COUNT 2 => ERR option COUNT given more than once
        HACK.DRAIN b NOPE 1       => ERR unknown option 'NOPE'
        HACK.DRAIN str            => WRONGTYPE
        HACK.DRAIN str LEASE 100  => WRONGTYPE
        HACK.ACK b                => ERR wrong number of arguments
        HACK.ACK b x              => ERR batch_id must be
        HACK.ACK b -1             => ERR batch_id must be
        HACK.ACK str 1            => WRONGTYPE
        HACK.BUFINFO str          => WRONGTYPE
        HACK.BUFBATCH b 1 2       => ERR wrong number of arguments
        HACK.BUFBATCH b 0 2 1     => ERR batch_id must be
        HACK.BUFBATCH b 5 2 1 m   => ERR malformed batch entry
        HACK.BUFBATCH b 5 2 1 m x => ERR malformed batch entry
        HACK.BUFBATCH b 5 2 1 m 1 => ERR HACK.BUFBATCH is internal
        ",
    );
    expect_errors(&mut c, &cases);
    assert_eq!(dataset(&mut c), before, "a failing call changed a key");
}

#[test]
fn member_bound_refuses_new_members_only() {
    let (_s, mut c) = Server::start_with_conn();
    cmd(&mut c, &["CONFIG", "SET", "hacks.buffer-max-members", "3"]);
    assert_eq!(
        text(
            &cmd(&mut c, &["CONFIG", "GET", "hacks.buffer-max-members"])
                .as_sequence()
                .unwrap()[1]
        ),
        "3"
    );
    cmd(&mut c, &["HACK.BUFINCR", "b", "a", "1", "b", "1", "c", "1"]);
    let before = digest(&mut c, "b");
    let err = expect_err(&mut c, &["HACK.BUFINCR", "b", "a", "1", "d", "1"]);
    assert!(err.starts_with("ERR buffer is full"), "{err}");
    assert_eq!(digest(&mut c, "b"), before, "refused call changed nothing");
    assert_eq!(
        int(&cmd(&mut c, &["HACK.BUFINCR", "b", "a", "5"])),
        6,
        "existing members still grow"
    );
    // Leased members do not count.
    lease(&mut c, "b", 2, 60_000).unwrap();
    cmd(&mut c, &["HACK.BUFINCR", "b", "d", "1", "e", "1"]);
    assert_eq!(info_field(&mut c, "hacks_buffer_refused_full"), 1);
    let e = expect_err(&mut c, &["CONFIG", "SET", "hacks.buffer-max-members", "0"]);
    assert!(e.starts_with("ERR"), "{e}");
}

#[test]
fn resp3_replies_are_maps() {
    let s = Server::start();
    let mut c = s.conn_resp3();
    cmd(&mut c, &["HACK.BUFINCR", "b", "a", "1", "b", "2"]);
    let v = cmd(&mut c, &["HACK.DRAIN", "b", "COUNT", "1"]);
    assert!(matches!(v, Value::Map(_)), "{v:?}");
    assert_eq!(entries(&v), vec![e("a", 1)]);
    match cmd(&mut c, &["HACK.DRAIN", "b", "LEASE", "1000"]) {
        Value::Array(parts) => assert!(matches!(parts[2], Value::Map(_)), "{parts:?}"),
        other => panic!("{other:?}"),
    }
    let info = cmd(&mut c, &["HACK.BUFINFO", "b"]);
    assert!(matches!(info, Value::Map(_)), "{info:?}");
}

#[test]
fn multi_and_lua() {
    let (_s, mut c) = Server::start_with_conn();
    let (a, b, d): (i64, Vec<i64>, Vec<(String, i64)>) = redis::pipe()
        .atomic()
        .cmd("HACK.BUFINCR")
        .arg("b")
        .arg("m")
        .arg(1)
        .cmd("HACK.BUFINCR")
        .arg("b")
        .arg("m")
        .arg(2)
        .arg("n")
        .arg(3)
        .cmd("HACK.DRAIN")
        .arg("b")
        .arg("COUNT")
        .arg(1)
        .query(&mut c)
        .unwrap();
    assert_eq!((a, b, d), (1, vec![3, 3], vec![e("m", 3)]));
    let script = "redis.call('HACK.BUFINCR', KEYS[1], 'x', 4) return redis.call('HACK.DRAIN', KEYS[1], 'COUNT', 10, 'LEASE', 60000)";
    let v = cmd(&mut c, &["EVAL", script, "1", "b"]);
    let Value::Array(parts) = v else { panic!() };
    assert_eq!(entries(&parts[2]), vec![e("n", 3), e("x", 4)]);
    let e2 = expect_err(
        &mut c,
        &[
            "EVAL",
            "return redis.call('HACK.BUFINCR', KEYS[1], 'x', 'y')",
            "1",
            "b",
        ],
    );
    assert!(e2.contains("not an integer"), "{e2}");
}

/// A randomized workload: increments, plain drains, leases, re-leases, acks, on 6 keys.
fn workload(c: &mut Connection, rounds: usize) {
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let mut in_flight: Vec<(String, i64)> = vec![];
    for i in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = format!("buf:{}", x % 6);
        match (x >> 8) % 10 {
            0..=5 => {
                let mut r = redis::cmd("HACK.BUFINCR");
                r.arg(&key);
                for j in 0..(1 + (x >> 16) % 4) {
                    r.arg(format!("m{}", (x >> (20 + j)) % 40))
                        .arg(((x >> 24) % 100) as i64 - 30);
                }
                r.query::<Value>(c).unwrap();
            }
            6 => {
                cmd(c, &["HACK.DRAIN", &key, "COUNT", "3"]);
            }
            7 | 8 => {
                let ms = if i % 3 == 0 { "1" } else { "60000" };
                if let Some((id, _, _)) = lease(c, &key, 4, ms.parse().unwrap()) {
                    in_flight.push((key, id));
                }
            }
            _ => {
                if let Some((k, id)) = in_flight.pop() {
                    cmd(c, &["HACK.ACK", &k, &id.to_string()]);
                }
            }
        }
    }
}

#[test]
fn replica_holds_exactly_the_masters_buffers() {
    // A replica with a smaller member bound must still apply what the master admitted;
    // leased drains arrive as effects.
    let (master, replica, data) = replica_equals_master(
        |r| {
            cmd(r, &["CONFIG", "SET", "hacks.buffer-max-members", "1"]);
        },
        |_, m| {
            workload(m, 1500);
            let script = "return redis.call('HACK.DRAIN', KEYS[1], 'COUNT', 2, 'LEASE', 60000)";
            cmd(
                m,
                &["HACK.BUFINCR", "buf:lua", "a", "1", "b", "2", "c", "3"],
            );
            cmd(m, &["EVAL", script, "1", "buf:lua"]);
        },
        // A plain drain reads no clock and travels as itself; a leased one must not.
        &[],
    );
    assert!(data.len() >= 5, "{data:?}");
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut replica.conn())
        .unwrap();
    assert!(
        stats
            .to_ascii_lowercase()
            .contains("cmdstat_hack.bufbatch:"),
        "leased drains arrive as HACK.BUFBATCH effects:\n{stats}"
    );
    // The lease deadlines on the replica are the master's.
    let (mut m, mut r) = (master.conn(), replica.conn());
    // (Between the newest id and the remaining time: ids and absolute deadlines.)
    let ids_and_deadlines = |c: &mut Connection| {
        let t = format!("{:?}", cmd(c, &["HACK.BUFINFO", "buf:lua"]));
        let a = t.find("newest_batch_id").unwrap();
        let b = t.find("lease_remaining_ms").unwrap();
        t[a..b].to_string()
    };
    assert_eq!(ids_and_deadlines(&mut m), ids_and_deadlines(&mut r));
}

#[test]
fn persistence_keeps_buffers_exactly() {
    let (s, before) = survives_persistence(|_, c| workload(c, 1200));
    let mut c = s.conn();
    for k in before.keys() {
        // A copy is independent of the original.
        let d = digest(&mut c, k);
        cmd(
            &mut c,
            &["HACK.BUFINCR", &format!("{k}:copied"), "fresh", "1"],
        );
        assert_eq!(digest(&mut c, k), d);
    }
    let used: i64 = int(&cmd(&mut c, &["MEMORY", "USAGE", "buf:0"]));
    assert!(used > 100, "MEMORY USAGE reports the buffer: {used}");
}

/// BUFINFO once replied `next_batch_id`, a preview of the clock that changed on every call:
/// two reads of an unchanged buffer must now be identical, in flight or not.
#[test]
fn bufinfo_of_an_unchanged_buffer_reads_the_same() {
    let (_s, mut c) = Server::start_with_conn();
    cmd(&mut c, &["HACK.BUFINCR", "b", "m1", "1", "m2", "2"]);
    let first = cmd(&mut c, &["HACK.BUFINFO", "b"]);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(cmd(&mut c, &["HACK.BUFINFO", "b"]), first);
    let leased = lease(&mut c, "b", 1, 60_000).unwrap();
    let without_remaining = |c: &mut Connection| {
        let t = format!("{:?}", cmd(c, &["HACK.BUFINFO", "b"]));
        t[..t.find("lease_remaining_ms").unwrap()].to_string()
    };
    let a = without_remaining(&mut c);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(without_remaining(&mut c), a);
    assert!(
        a.contains(&leased.0.to_string()),
        "newest_batch_id is the batch in flight: {a}"
    );
}
