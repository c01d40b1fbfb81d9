//! Distinct-count series against a real server, differential against the server's own
//! `PFADD`/`PFCOUNT`: for random member sets (1 to 1,000,000 members with duplicates, empty
//! and binary members) `HACK.TSCOUNT` over a range equals `PFCOUNT` of a plain HLL key fed
//! exactly the members of the buckets answering it, `UNION` equals `PFCOUNT k1 k2`, and
//! `HACK.TSRANGE`'s per-step counts equal `PFCOUNT` per step; exact on every server. Then
//! sparse-to-dense promotion, retention, idle expiry, back-fill, mixed rollups, errors
//! leaving keys unchanged, the other family's commands, replication and persistence,
//! crafted payloads, key positions for Cluster, and memory.

use std::collections::BTreeMap;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::common::*;

/// `n` members drawn from a pool of about `n * 3 / 4` (so duplicates), with the empty
/// string, binary bytes (NUL, 0xff, invalid UTF-8) and text of every length up to 24.
fn members(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng(seed | 1);
    let pool = (n * 3 / 4).max(1);
    (0..n)
        .map(|_| {
            let id = rng.below(pool) as u64;
            match id % 10 {
                0 if id.is_multiple_of(100) => Vec::new(),
                1 | 2 => {
                    // Binary, length from the id so equal ids give equal members.
                    let mut r = Rng(id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
                    (0..(id % 24)).map(|_| r.next() as u8).collect()
                }
                _ => format!("user:{id}").into_bytes(),
            }
        })
        .collect()
}

fn q<T: redis::FromRedisValue>(c: &mut Connection, r: &redis::Cmd) -> T {
    r.query(c)
        .unwrap_or_else(|e| panic!("{:?}: {e}", r.args_iter().next()))
}

/// PFCOUNT of a fresh HLL key fed `set` (in chunks), then deleted.
fn pfcount_of<'a>(c: &mut Connection, key: &str, set: impl Iterator<Item = &'a [u8]>) -> i64 {
    let _: i64 = q(c, redis::cmd("DEL").arg(key));
    let mut p = redis::pipe();
    let mut cmd = redis::cmd("PFADD");
    cmd.arg(key);
    let mut n = 0;
    for m in set {
        cmd.arg(m);
        n += 1;
        if n % 1000 == 0 {
            p.add_command(cmd);
            cmd = redis::cmd("PFADD");
            cmd.arg(key);
        }
    }
    p.add_command(cmd);
    p.cmd("PFCOUNT").arg(key);
    p.cmd("DEL").arg(key).ignore();
    let v: Vec<Value> = p.query(c).unwrap();
    int(v.last().unwrap())
}

/// Members by the time they are added at.
type ByTime<'a> = BTreeMap<i64, Vec<&'a [u8]>>;

/// `HACK.TSADD key members... AT at` for each bucket's members (in chunks of 1000).
fn tsadd_all(c: &mut Connection, key: &str, by_time: &BTreeMap<i64, Vec<&[u8]>>) {
    let mut p = redis::pipe();
    let mut pending = 0;
    for (at, ms) in by_time {
        for chunk in ms.chunks(1000) {
            let mut cmd = redis::cmd("HACK.TSADD");
            cmd.arg(key);
            for m in chunk {
                cmd.arg(*m);
            }
            cmd.arg("AT").arg(*at);
            p.add_command(cmd).ignore();
            pending += chunk.len();
            if pending > 20_000 {
                let _: () = p.query(c).unwrap();
                pending = 0;
                p = redis::pipe();
            }
        }
    }
    if pending > 0 {
        let _: () = p.query(c).unwrap();
    }
}

/// One differential round: `n` members at random times of the last 10 minutes into two
/// series (`1s:1h,1m:1d`: the 1 s rollup answers everything) and two plain HLL keys.
fn differential(c: &mut Connection, n: usize, seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(31) | 1);
    let ms = members(n, seed);
    let t0 = server_ms(c);
    let span = 600_000i64;
    let times: Vec<i64> = (0..n).map(|_| t0 - 1 - rng.range(0, span)).collect();
    // Members split between two series (and two HLL keys) with some overlap.
    let mut a: ByTime = BTreeMap::new();
    let mut b: ByTime = BTreeMap::new();
    for (i, m) in ms.iter().enumerate() {
        let side = rng.below(3);
        if side != 1 {
            a.entry(times[i]).or_default().push(m.as_slice());
        }
        if side != 0 {
            b.entry(times[i]).or_default().push(m.as_slice());
        }
    }
    for k in ["da", "db"] {
        let _: i64 = q(c, redis::cmd("DEL").arg(k));
        let _: () = q(
            c,
            redis::cmd("HACK.TSCREATE")
                .arg(k)
                .arg("ROLLUPS")
                .arg("1s:1h")
                .arg("1m:1d")
                .arg("DISTINCT"),
        );
    }
    tsadd_all(c, "da", &a);
    tsadd_all(c, "db", &b);
    let in_range = |map: &BTreeMap<i64, Vec<&[u8]>>, from: i64, to: i64| -> Vec<Vec<u8>> {
        // Buckets of 1 s overlapping [from, to]: whole seconds from from's to to's.
        let lo = from.div_euclid(1000) * 1000;
        let hi = to.div_euclid(1000) * 1000 + 999;
        map.range(lo..=hi)
            .flat_map(|(_, v)| v.iter().map(|m| m.to_vec()))
            .collect()
    };
    let mut ranges = vec![
        (t0 - span - 1000, t0),
        (t0 - span / 2 + 123, t0 - span / 4 - 77),
    ];
    if n <= 100_000 {
        for _ in 0..4 {
            let from = t0 - span + rng.range(0, span);
            let to = from + rng.range(0, t0 - from + 1);
            ranges.push((from, to));
        }
    }
    for (from, to) in ranges {
        let ra = in_range(&a, from, to);
        let rb = in_range(&b, from, to);
        let want_a = pfcount_of(c, "pf:a", ra.iter().map(|m| m.as_slice()));
        let got: i64 = q(c, redis::cmd("HACK.TSCOUNT").arg("da").arg(from).arg(to));
        assert_eq!(got, want_a, "n={n} [{from}, {to}]");
        let want_b = pfcount_of(c, "pf:b", rb.iter().map(|m| m.as_slice()));
        let got: Vec<i64> = q(
            c,
            redis::cmd("HACK.TSCOUNT")
                .arg("da")
                .arg("db")
                .arg("missing")
                .arg(from)
                .arg(to),
        );
        assert_eq!(got, vec![want_a, want_b, 0], "n={n} [{from}, {to}] per key");
        // UNION against PFCOUNT k1 k2 of two plain keys fed the same members.
        let _: i64 = q(c, redis::cmd("DEL").arg("pf:a").arg("pf:b"));
        for (k, set) in [("pf:a", &ra), ("pf:b", &rb)] {
            for chunk in set.chunks(1000) {
                let mut cmd = redis::cmd("PFADD");
                cmd.arg(k);
                for m in chunk {
                    cmd.arg(m.as_slice());
                }
                let _: i64 = q(c, &cmd);
            }
        }
        let want_u: i64 = q(c, redis::cmd("PFCOUNT").arg("pf:a").arg("pf:b"));
        let got_u: i64 = q(
            c,
            redis::cmd("HACK.TSCOUNT")
                .arg("da")
                .arg("db")
                .arg("missing")
                .arg(from)
                .arg(to)
                .arg("UNION"),
        );
        assert_eq!(got_u, want_u, "n={n} [{from}, {to}] UNION");
        let _: i64 = q(c, redis::cmd("DEL").arg("pf:a").arg("pf:b"));
    }
    // TSRANGE: each minute's count is PFCOUNT of that minute's members.
    let (from, to) = (t0 - span, t0);
    let pts: Vec<(i64, i64)> = q(
        c,
        redis::cmd("HACK.TSRANGE")
            .arg("da")
            .arg(from)
            .arg(to)
            .arg("STEP")
            .arg(60_000),
    );
    let first = from.div_euclid(60_000) * 60_000;
    assert_eq!(pts.first().map(|p| p.0), Some(first));
    for (start, count) in pts {
        let set: Vec<&[u8]> = a
            .range(start..start + 60_000)
            .flat_map(|(_, v)| v.iter().copied())
            .collect();
        let want = pfcount_of(c, "pf:step", set.into_iter());
        assert_eq!(count, want, "n={n} step at {start}");
    }
}

#[test]
fn counts_equal_pfcount_for_random_sets() {
    let (_s, mut c) = Server::start_with_conn();
    for (i, n) in [1usize, 2, 7, 100, 1_000, 3_000, 10_000]
        .into_iter()
        .enumerate()
    {
        differential(&mut c, n, 1000 + i as u64);
    }
}

#[test]
fn counts_equal_pfcount_for_large_sets() {
    let (_s, mut c) = Server::start_with_conn();
    let started = Instant::now();
    differential(&mut c, 100_000, 77);
    differential(&mut c, 1_000_000, 78);
    println!("100k + 1M member differential: {:?}", started.elapsed());
}

fn info_map(c: &mut Connection, key: &str) -> String {
    format!("{:?}", cmd(c, &["HACK.TSINFO", key]))
}

fn layouts(c: &mut Connection, key: &str) -> Vec<String> {
    let v = cmd(c, &["HACK.TSINFO", key]);
    let mut out = vec![];
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Array(items) => {
                for w in items.windows(2) {
                    if let (Value::BulkString(k), Value::BulkString(val)) = (&w[0], &w[1]) {
                        if k == b"layout" {
                            out.push(String::from_utf8_lossy(val).into_owned());
                        }
                    }
                }
                for i in items {
                    walk(i, out);
                }
            }
            Value::Map(pairs) => {
                for (k, val) in pairs {
                    if let (Value::BulkString(k), Value::BulkString(val)) = (k, val) {
                        if k == b"layout" {
                            out.push(String::from_utf8_lossy(val).into_owned());
                        }
                    }
                    walk(val, out);
                }
            }
            _ => {}
        }
    }
    walk(&v, &mut out);
    out
}

#[test]
fn sparse_buckets_turn_dense_past_the_bound() {
    let (_s, mut c) = Server::start_with_conn();
    cmd(&mut c, &argv("HACK.TSCREATE p ROLLUPS 1h:1d DISTINCT"));
    let now = server_ms(&mut c).to_string();
    let ms = members(20_000, 5);
    let mut fed: Vec<&[u8]> = vec![];
    let mut saw_sparse_mem = 0;
    for chunk in ms.chunks(200) {
        let mut r = redis::cmd("HACK.TSADD");
        r.arg("p");
        for m in chunk {
            r.arg(m.as_slice());
        }
        r.arg("AT").arg(&now);
        let _: i64 = q(&mut c, &r);
        fed.extend(chunk.iter().map(|m| m.as_slice()));
        let l = layouts(&mut c, "p");
        let mem: i64 = int(&cmd(&mut c, &["MEMORY", "USAGE", "p"]));
        if l == ["sparse"] {
            saw_sparse_mem = mem;
            assert!(
                mem < 12_288 + 600,
                "a sparse bucket stays under the bound: {mem}"
            );
        } else {
            assert_eq!(l, ["dense"]);
            assert!(mem > 12_288, "{mem}");
        }
        let got: i64 = int(&cmd(&mut c, &["HACK.TSCOUNT", "p", "-", "+"]));
        assert_eq!(got, pfcount_of(&mut c, "pf", fed.iter().copied()));
    }
    assert!(saw_sparse_mem > 0);
    assert_eq!(layouts(&mut c, "p"), ["dense"]);
    // A lower bound promotes sooner; a bucket never turns back.
    cmd(
        &mut c,
        &argv("CONFIG SET hacks.ts-distinct-sparse-max-bytes 30"),
    );
    cmd(&mut c, &argv("HACK.TSADD q a b c d e f g h i j k l"));
    let l = layouts(&mut c, "q");
    assert!(l.iter().all(|x| x == "dense"), "{l:?}");
    assert_eq!(int(&cmd(&mut c, &["HACK.TSCOUNT", "q", "-", "+"])), 12);
    assert!(info_map(&mut c, "q").contains("sparse_max_bytes"));
}

#[test]
fn retention_backfill_mixed_rollups_and_idle_expiry() {
    let (_s, mut c) = Server::start_with_conn();
    cmd(
        &mut c,
        &argv("HACK.TSCREATE r ROLLUPS 100ms:1s 500ms:2s DISTINCT"),
    );
    let now = server_ms(&mut c);
    // Back-fill into a bucket only the coarse rollup keeps: the reply is about that one.
    let old = (now - 1_200).to_string();
    assert_eq!(
        int(&cmd(&mut c, &["HACK.TSADD", "r", "a", "b", "AT", &old])),
        1
    );
    assert_eq!(int(&cmd(&mut c, &["HACK.TSADD", "r", "a", "AT", &old])), 0);
    assert_eq!(int(&cmd(&mut c, &["HACK.TSADD", "r", "c"])), 1);
    assert_eq!(int(&cmd(&mut c, &["HACK.TSCOUNT", "r", "-", "+"])), 3);
    let e = expect_err(
        &mut c,
        &["HACK.TSADD", "r", "z", "AT", &(now - 5_000).to_string()],
    );
    assert!(e.starts_with("ERR AT is older"), "{e}");
    let e = expect_err(
        &mut c,
        &["HACK.TSADD", "r", "z", "AT", &(now + 60_000).to_string()],
    );
    assert!(
        e.starts_with("ERR AT is more than one finest bucket"),
        "{e}"
    );
    let ttl = int(&cmd(&mut c, &["PTTL", "r"]));
    assert!(ttl > 0 && ttl <= 2_500, "{ttl}");
    sleep(Duration::from_millis(1_000));
    // The back-filled bucket fell out of every retention; the recent one is only coarse now.
    assert_eq!(int(&cmd(&mut c, &["HACK.TSCOUNT", "r", "-", "+"])), 1);
    // Untouched, the series disappears by itself once nothing is retained.
    let deadline = Instant::now() + Duration::from_secs(10);
    while int(&cmd(&mut c, &["EXISTS", "r"])) == 1 {
        assert!(Instant::now() < deadline, "the idle series did not expire");
        sleep(Duration::from_millis(50));
    }

    // Mixed rollups: old members only the hourly rollup keeps, recent ones the minute
    // rollup answers; `-` to `+` counts each member once: PFCOUNT of all of them.
    cmd(
        &mut c,
        &argv("HACK.TSCREATE m ROLLUPS 1m:1h 1h:1d DISTINCT"),
    );
    let now = server_ms(&mut c);
    let ms = members(2_000, 9);
    let mut all: Vec<&[u8]> = vec![];
    for (i, m) in ms.iter().enumerate() {
        let at = if i % 2 == 0 {
            now - 3 * 3_600_000 - (i as i64 % 7) * 60_000
        } else {
            now - 10 * 60_000 - (i as i64 % 5) * 60_000
        };
        let _: i64 = q(
            &mut c,
            redis::cmd("HACK.TSADD")
                .arg("m")
                .arg(m.as_slice())
                .arg("AT")
                .arg(at),
        );
        all.push(m.as_slice());
    }
    let want = pfcount_of(&mut c, "pf", all.iter().copied());
    assert_eq!(int(&cmd(&mut c, &["HACK.TSCOUNT", "m", "-", "+"])), want);
    let recent = pfcount_of(&mut c, "pf", all.iter().copied().skip(1).step_by(2));
    let from = (now - 30 * 60_000).to_string();
    assert_eq!(
        int(&cmd(&mut c, &["HACK.TSCOUNT", "m", &from, "+"])),
        recent
    );
    let old = pfcount_of(&mut c, "pf", all.iter().copied().step_by(2));
    let (a, b) = (
        (now - 5 * 3_600_000).to_string(),
        (now - 2 * 3_600_000).to_string(),
    );
    assert_eq!(int(&cmd(&mut c, &["HACK.TSCOUNT", "m", &a, &b])), old);
}

#[test]
fn defaults_and_tsinfo() {
    let (_s, mut c) = Server::start_with_conn();
    assert_eq!(int(&cmd(&mut c, &["HACK.TSADD", "d", "a", "b", "c"])), 1);
    let info = info_map(&mut c, "d");
    for r in [
        "10s:1h",
        "1h:7d",
        "1d:90d",
        "distinct",
        "sparse",
        "memory_bytes",
    ] {
        assert!(info.contains(r), "{r}: {info}");
    }
    cmd(
        &mut c,
        &argv("CONFIG SET hacks.ts-default-distinct-rollups 1s:1m,1m:1h"),
    );
    cmd(&mut c, &["HACK.TSADD", "e", "a"]);
    assert!(info_map(&mut c, "e").contains("1s:1m"));
    let e = expect_err(
        &mut c,
        &argv("CONFIG SET hacks.ts-default-distinct-rollups 1h:1m"),
    );
    assert!(!e.is_empty());
    // A member named AT is fine anywhere but the option's place.
    assert_eq!(int(&cmd(&mut c, &["HACK.TSADD", "f", "AT", "x", "y"])), 1);
    assert_eq!(int(&cmd(&mut c, &["HACK.TSCOUNT", "f", "-", "+"])), 3);
    assert_eq!(info_field(&mut c, "hacks_ts_distinct_adds"), 3);
    // Missing keys: 0, an empty array, nil.
    assert_eq!(int(&cmd(&mut c, &["HACK.TSCOUNT", "nope", "-", "+"])), 0);
    assert_eq!(
        int(&cmd(&mut c, &argv("HACK.TSCOUNT nope nope2 - + UNION"))),
        0
    );
    assert_eq!(cmd(&mut c, &["HACK.TSINFO", "nope"]), Value::Nil);
    // An empty distinct series (TSCREATE) counts 0 and has no TTL.
    cmd(&mut c, &argv("HACK.TSCREATE empty ROLLUPS 1s:1m DISTINCT"));
    assert_eq!(int(&cmd(&mut c, &["HACK.TSCOUNT", "empty", "-", "+"])), 0);
    assert_eq!(int(&cmd(&mut c, &["PTTL", "empty"])), -1);
    assert_eq!(text(&cmd(&mut c, &["TYPE", "empty"])), "hacks-tsd");
}

#[test]
fn key_positions_for_cluster_and_acl() {
    let (s, mut c) = Server::start_with_conn();
    assert_eq!(
        command_keys(&mut c, &["HACK.TSCOUNT", "a", "0", "1"]),
        ["a"]
    );
    assert_eq!(
        command_keys(&mut c, &["HACK.TSCOUNT", "a", "b", "0", "1"]),
        ["a", "b"]
    );
    assert_eq!(
        command_keys(&mut c, &["HACK.TSCOUNT", "a", "b", "0", "1", "UNION"]),
        ["a", "b"]
    );
    assert_eq!(
        command_keys(&mut c, &["HACK.TSCOUNT", "a", "-", "+", "union"]),
        ["a"]
    );
    assert_eq!(
        command_keys(&mut c, &["HACK.TSADD", "a", "m", "AT", "5"]),
        ["a"]
    );
    // A reader limited to %R~stats:* may count stats keys (UNION included), nothing else.
    let mut r = s.user(&mut c, "reader", &["on", ">pw", "%R~stats:*", "+@all"]);
    cmd(&mut c, &["HACK.TSADD", "stats:a", "x"]);
    cmd(&mut c, &["HACK.TSADD", "other", "x"]);
    assert_eq!(
        int(&cmd(
            &mut r,
            &argv("HACK.TSCOUNT stats:a stats:b - + UNION")
        )),
        1
    );
    let e = expect_err(&mut r, &argv("HACK.TSCOUNT stats:a other - + UNION"));
    assert!(e.starts_with("NOPERM"), "{e}");
    let e = expect_err(&mut r, &["HACK.TSADD", "stats:a", "y"]);
    assert!(e.starts_with("NOPERM"), "{e}");
}

fn setup_keys(c: &mut Connection) {
    cmd(c, &["HACK.TSADD", "d", "a", "b"]);
    cmd(
        c,
        &[
            "HACK.TSCREATE",
            "dc",
            "ROLLUPS",
            "1s:1m",
            "1m:1h",
            "DISTINCT",
        ],
    );
    cmd(c, &["HACK.TSADD", "dc", "x"]);
    cmd(c, &["HACK.TSINCR", "cnt", "5"]);
    cmd(c, &["SET", "str", "v"]);
}

#[test]
fn errors_leave_keys_unchanged_and_families_stay_apart() {
    let (_s, mut c) = Server::start_with_conn();
    setup_keys(&mut c);
    let now = server_ms(&mut c);
    let old = (now - 100 * 86_400_000).to_string();
    let new = (now + 60_000).to_string();
    let mut cases = error_cases(
        "
        HACK.TSADD d                     => ERR wrong number
        HACK.TSADD d AT 5                => ERR HACK.TSADD needs at least one member
        HACK.TSADD d m AT x              => ERR AT must be
        HACK.TSADD d m AT -5             => ERR AT must be
        HACK.TSADD cnt m                 => WRONGTYPE the key holds a counting series
        HACK.TSADD str m                 => WRONGTYPE
        HACK.TSCOUNT cnt - +             => WRONGTYPE the key holds a counting
        HACK.TSCOUNT d str - + UNION     => WRONGTYPE
        HACK.TSCOUNT d x +               => ERR from/to
        HACK.TSCOUNT d - y UNION         => ERR from/to
        HACK.TSINCR d                    => WRONGTYPE the key holds a distinct series
        HACK.TSSUM d - +                 => WRONGTYPE the key holds a distinct
        HACK.TSSUM cnt d - +             => WRONGTYPE the key holds a distinct
        HACK.TSRANGE d - + STEP 1500     => ERR STEP must be
        HACK.TSRANGE str - +             => WRONGTYPE
        HACK.TSINFO str                  => WRONGTYPE
        HACK.TSCREATE d ROLLUPS 1s:1m DISTINCT => ERR key already exists
        HACK.TSCREATE n ROLLUPS DISTINCT => ERR
        HACK.TSCREATE n ROLLUPS 1h:1m DISTINCT => ERR
        HACK.TSCREATE n DISTINCT ROLLUPS 1s:1m => ERR
        HACK.TSADDAT d 1 1 0 m           => ERR HACK.TSADDAT is internal
        HACK.TSADDAT d 1 1 9 m           => ERR
        HACK.TSDSET d 0 5                => ERR HACK.TSDSET is internal
        ",
    );
    // Empty or computed arguments.
    cases.extend([
        (vec!["HACK.TSADD", "d", "m", "AT", &old], "ERR AT is older"),
        (
            vec!["HACK.TSADD", "d", "m", "AT", &new],
            "ERR AT is more than",
        ),
        (
            vec!["HACK.TSADD", "dnew", "m", "AT", &old],
            "ERR AT is older",
        ),
        (
            vec!["HACK.TSDSET", "d", "0", "5", "5", "\x01\x00\x00"],
            "ERR invalid sketch",
        ),
    ]);
    errors_leave_keys_unchanged(&mut c, &cases);
}

fn workload(c: &mut Connection, n: usize) {
    let now = server_ms(c);
    let ms = members(n, 4242);
    let mut p = redis::pipe();
    for (i, m) in ms.iter().enumerate() {
        let key = format!("w{}", i % 4);
        p.cmd("HACK.TSADD")
            .arg(&key)
            .arg(m.as_slice())
            .arg("AT")
            .arg(now - (i as i64 % 97) * 37_000)
            .ignore();
    }
    // One busy bucket turns dense; one explicit series; one without TTL.
    let mut busy = redis::cmd("HACK.TSADD");
    busy.arg("busy");
    for m in members(12_000, 7) {
        busy.arg(m);
    }
    p.add_command(busy).ignore();
    p.cmd("HACK.TSCREATE")
        .arg("x")
        .arg("ROLLUPS")
        .arg("1s:1h")
        .arg("1m:1d")
        .arg("DISTINCT")
        .ignore();
    p.cmd("HACK.TSADD").arg("x").arg("a").arg("b").ignore();
    p.cmd("HACK.TSADD").arg("nottl").arg("a").ignore();
    p.cmd("PERSIST").arg("nottl").ignore();
    let _: () = p.query(c).unwrap();
    assert_eq!(layouts(c, "busy")[0], "dense");
}

#[test]
fn replica_equals_master_for_distinct_series() {
    let (master, replica, _) = replica_equals_master(
        |r| {
            // The replica's own defaults must not matter: the effect carries the rollups.
            cmd(
                r,
                &[
                    "CONFIG",
                    "SET",
                    "hacks.ts-default-distinct-rollups",
                    "1m:1d",
                ],
            );
            cmd(
                r,
                &["CONFIG", "SET", "hacks.ts-distinct-sparse-max-bytes", "0"],
            );
        },
        |_, c| workload(c, 3_000),
        &["HACK.TSADD"],
    );
    let mut m = master.conn();
    let mut r = replica.conn();
    for k in ["w0", "busy", "x"] {
        let a = cmd(&mut m, &["HACK.TSCOUNT", k, "-", "+"]);
        assert_eq!(a, cmd(&mut r, &["HACK.TSCOUNT", k, "-", "+"]), "{k}");
    }
}

#[test]
fn persistence_keeps_sketches_exactly() {
    let (s, _) = survives_persistence(|_, c| workload(c, 3_000));
    let mut c = s.conn();
    for k in ["w0", "busy", "x"] {
        let a = cmd(&mut c, &["HACK.TSCOUNT", k, "-", "+"]);
        let b = cmd(
            &mut c,
            &["HACK.TSCOUNT", &format!("{k}:restored"), "-", "+"],
        );
        assert_eq!(a, b, "{k}");
    }
}

/// DUMP payloads with each byte of the module value changed (and the CRC fixed up) must
/// load as a valid series or be refused: never crash, never a giant allocation.
#[test]
fn crafted_restore_payloads_never_crash() {
    let mut s = Server::start();
    let mut c = s.conn();
    let _: i64 = q(
        &mut c,
        redis::cmd("HACK.TSADD").arg("d").arg("a").arg("b").arg("c"),
    );
    let dump: Vec<u8> = q(&mut c, redis::cmd("DUMP").arg("d"));
    // Payload: type byte, module id, encoding, value..., 2-byte RDB version, 8-byte CRC64.
    let body_len = dump.len() - 10;
    let mut refused = 0;
    for i in 9..body_len {
        for delta in [1u8, 0x80, 0xff] {
            let mut d = dump.clone();
            d[i] = d[i].wrapping_add(delta);
            let crc = crc64(&d[..d.len() - 8]);
            let n = d.len();
            d[n - 8..].copy_from_slice(&crc.to_le_bytes());
            let r: redis::RedisResult<()> = redis::cmd("RESTORE")
                .arg("x")
                .arg(0)
                .arg(d)
                .arg("REPLACE")
                .query(&mut c);
            if r.is_err() {
                refused += 1;
            } else {
                // Whatever loaded is a working series.
                let _: Value = q(
                    &mut c,
                    redis::cmd("HACK.TSCOUNT").arg("x").arg("-").arg("+"),
                );
                let _: Value = q(&mut c, redis::cmd("HACK.TSINFO").arg("x"));
            }
        }
        assert!(s.alive(), "byte {i}");
    }
    assert!(refused > 0);
}

/// Redis's CRC-64/Jones (reflected, poly 0xad93d23594c935a9), as DUMP uses.
fn crc64(data: &[u8]) -> u64 {
    let poly: u64 = 0x95ac9329ac4bc9b5; // reflected 0xad93d23594c935a9
    let mut crc: u64 = 0;
    for &b in data {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ poly
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// The cost the issue names: a bucket with a handful of members costs tens of bytes;
/// printed next to per-bucket HLL keys (Sentry's layout) for the same data.
#[test]
fn memory_of_small_buckets() {
    let (_s, mut c) = Server::start_with_conn();
    cmd(&mut c, &argv("HACK.TSCREATE one ROLLUPS 10s:1h DISTINCT"));
    cmd(&mut c, &["HACK.TSADD", "one", "a", "b", "c"]);
    let one = int(&cmd(&mut c, &["MEMORY", "USAGE", "one"]));
    cmd(&mut c, &["PFADD", "hll:one", "a", "b", "c"]);
    let hll = int(&cmd(&mut c, &["MEMORY", "USAGE", "hll:one"]));
    // 360 buckets of 5 members each in one series, against 360 HLL keys.
    cmd(&mut c, &argv("HACK.TSCREATE hour ROLLUPS 10s:1h DISTINCT"));
    let now = server_ms(&mut c);
    let mut keys_total = 0;
    for b in 0..359i64 {
        let at = (now - b * 10_000).to_string();
        let ms: Vec<String> = (0..5).map(|j| format!("u{}", b * 3 + j)).collect();
        let mut a = vec!["HACK.TSADD", "hour"];
        a.extend(ms.iter().map(|s| s.as_str()));
        a.extend(["AT", &at]);
        cmd(&mut c, &a);
        let k = format!("hll:{b}");
        let mut p = vec!["PFADD", &k];
        p.extend(ms.iter().map(|s| s.as_str()));
        cmd(&mut c, &p);
        keys_total += int(&cmd(&mut c, &["MEMORY", "USAGE", &k]));
    }
    let hour = int(&cmd(&mut c, &["MEMORY", "USAGE", "hour"]));
    println!(
        "MEMORY USAGE: series with one 3-member bucket {one} B (one HLL key: {hll} B); \
         359 buckets x 5 members: series {hour} B ({} B a bucket), 359 HLL keys {keys_total} B",
        hour / 359
    );
    assert!(
        hour / 359 < 100,
        "a 5-member bucket costs {} bytes",
        hour / 359
    );
    assert!(hour < keys_total, "{hour} vs {keys_total}");
}
