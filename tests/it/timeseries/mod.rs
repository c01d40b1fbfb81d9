//! Time series against a real redis-server: sums and ranges checked against a model over
//! randomized increments across two rollups, back-fill, `-`/`+`, multi-key sums, retention
//! drop, idle-series expiry, every error leaving keys unchanged, replication and persistence.

use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::common::*;

mod distinct;

fn cmd(c: &mut Connection, args: &[String]) -> Value {
    let mut r = redis::cmd(&args[0]);
    for a in &args[1..] {
        r.arg(a);
    }
    r.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

macro_rules! c {
    ($con:expr, $($a:expr),+) => { cmd($con, &[$($a.to_string()),+]) };
}

fn points(v: &Value) -> Vec<(i64, i64)> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|p| match p {
                Value::Array(pair) => (int(&pair[0]), int(&pair[1])),
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn sums_and_ranges_match_a_model() {
    let (_s, mut c) = Server::start_with_conn();
    c!(
        &mut c,
        "HACK.TSCREATE",
        "ts",
        "ROLLUPS",
        "100ms:2s",
        "1s:10s"
    );
    let t0 = server_ms(&mut c);
    let mut rng = Rng(0xDEADBEEF);
    let mut model: Vec<(i64, i64)> = vec![];
    let mut p = redis::pipe();
    for i in 0..400 {
        // Old zone: only the 1 s rollup retains it. Recent zone: the 100 ms rollup answers.
        let mut at = if i % 2 == 0 {
            rng.range(t0 - 8_000, t0 - 3_000)
        } else {
            rng.range(t0 - 800, t0)
        };
        if i % 7 == 0 {
            at -= at.rem_euclid(100); // exactly on a bucket edge
        }
        let inc = rng.range(-5, 20);
        p.cmd("HACK.TSINCR").arg("ts").arg(inc).arg("AT").arg(at);
        model.push((at, inc));
    }
    p.query::<Vec<i64>>(&mut c).unwrap();
    let sum_where = |f: &dyn Fn(i64) -> bool| {
        model
            .iter()
            .filter(|(t, _)| f(*t))
            .map(|(_, v)| v)
            .sum::<i64>()
    };

    // Whole seconds: every rollup's buckets align, whichever answers.
    let base = t0.div_euclid(1000) * 1000;
    for (a, b) in [(-8, -3), (-8, -7), (-5, -4), (-3, 0), (-8, 1), (-1, 1)] {
        let (from, to) = (base + a * 1000, base + b * 1000 - 1);
        let got = int(&c!(&mut c, "HACK.TSSUM", "ts", from, to));
        assert_eq!(got, sum_where(&|t| t >= from && t <= to), "[{from}, {to}]");
    }
    assert_eq!(
        int(&c!(&mut c, "HACK.TSSUM", "ts", "-", "+")),
        sum_where(&|_| true)
    );
    // Recent, unaligned: 100 ms buckets overlapping [from, to] count whole.
    for _ in 0..30 {
        let from = rng.range(t0 - 700, t0);
        let to = rng.range(from, t0 + 50);
        let got = int(&c!(&mut c, "HACK.TSSUM", "ts", from, to));
        let want = sum_where(&|t| {
            let b = t.div_euclid(100) * 100;
            b <= to && b + 100 > from
        });
        assert_eq!(got, want, "[{from}, {to}]");
    }
    // Multi-key: per-key sums in order, 0 for a missing key.
    let v = c!(&mut c, "HACK.TSSUM", "ts", "nope", "-", "+");
    assert_eq!(
        v,
        Value::Array(vec![Value::Int(sum_where(&|_| true)), Value::Int(0)])
    );
    assert_eq!(int(&c!(&mut c, "HACK.TSSUM", "nope", "-", "+")), 0);
    // A range in the recent zone comes from the 100 ms rollup, zero-filled.
    let (from, to) = (base - 500, base + 99);
    let got = points(&c!(&mut c, "HACK.TSRANGE", "ts", from, to));
    let want: Vec<(i64, i64)> = (0..6)
        .map(|k| {
            let start = from + k * 100;
            (start, sum_where(&|t| t >= start && t < start + 100))
        })
        .collect();
    assert_eq!(got, want);
    // In the old zone only the 1 s rollup covers: STEP 2000 sums two of its buckets.
    let (from, to) = (base - 8_000, base - 4_001);
    let got = points(&c!(&mut c, "HACK.TSRANGE", "ts", from, to, "STEP", 2000));
    let (first, last) = (from.div_euclid(2000) * 2000, to.div_euclid(2000) * 2000);
    let want: Vec<(i64, i64)> = (0..=(last - first) / 2000)
        .map(|k| {
            let start = first + k * 2000;
            (start, sum_where(&|t| t >= start && t < start + 2000))
        })
        .collect();
    assert_eq!(got, want);
    let e = expect_err(
        &mut c,
        &[
            "HACK.TSRANGE",
            "ts",
            &from.to_string(),
            &base.to_string(),
            "STEP",
            "150",
        ],
    );
    assert!(e.starts_with("ERR STEP must be a multiple"), "{e}");
    assert_eq!(
        c!(&mut c, "HACK.TSRANGE", "nope", "-", "+"),
        Value::Array(vec![])
    );
}

#[test]
fn tsincr_defaults_backfill_and_limits() {
    let (_s, mut c) = Server::start_with_conn();
    c!(
        &mut c,
        "CONFIG",
        "SET",
        "hacks.ts-default-rollups",
        "1s:10s,10s:1m"
    );
    assert_eq!(int(&c!(&mut c, "HACK.TSINCR", "t")), 1);
    assert_eq!(int(&c!(&mut c, "HACK.TSINCR", "t", 4)), 5);
    let now = server_ms(&mut c);
    // Back-fill into a bucket only the coarse rollup keeps: it answers with that bucket.
    let v = int(&c!(&mut c, "HACK.TSINCR", "t", 7, "AT", now - 30_000));
    assert_eq!(v, 7);
    let info = format!("{:?}", c!(&mut c, "HACK.TSINFO", "t"));
    assert!(info.contains("1s:10s") && info.contains("10s:1m"), "{info}");
    assert_eq!(int(&c!(&mut c, "HACK.TSSUM", "t", "-", "+")), 12);
    // The key expires once no rollup retains its newest bucket.
    let ttl = int(&c!(&mut c, "PTTL", "t"));
    assert!(ttl > 45_000 && ttl <= 60_000, "{ttl}");
    assert_eq!(info_field(&mut c, "hacks_ts_increments"), 3);
}

#[test]
fn retention_drops_and_idle_series_expire() {
    let (_s, mut c) = Server::start_with_conn();
    c!(
        &mut c,
        "HACK.TSCREATE",
        "r",
        "ROLLUPS",
        "100ms:1s",
        "500ms:2s"
    );
    let now = server_ms(&mut c);
    c!(&mut c, "HACK.TSINCR", "r", 3, "AT", now - 1_200);
    c!(&mut c, "HACK.TSINCR", "r", 1);
    assert_eq!(int(&c!(&mut c, "HACK.TSSUM", "r", "-", "+")), 4);
    sleep(Duration::from_millis(1_000));
    // The back-filled bucket fell out of every retention; the recent one is only coarse now.
    assert_eq!(int(&c!(&mut c, "HACK.TSSUM", "r", "-", "+")), 1);
    // Untouched, the series disappears by itself once nothing is retained.
    let deadline = Instant::now() + Duration::from_secs(5);
    while int(&c!(&mut c, "EXISTS", "r")) == 1 {
        assert!(Instant::now() < deadline, "idle series never expired");
        sleep(Duration::from_millis(50));
    }
}

#[test]
fn every_error_leaves_keys_unchanged() {
    let (_s, mut c) = Server::start_with_conn();
    c!(&mut c, "HACK.TSCREATE", "ts", "ROLLUPS", "1s:1m", "1m:1h");
    c!(&mut c, "HACK.TSINCR", "ts", "9223372036854775800");
    c!(&mut c, "SET", "str", "x");
    let now = server_ms(&mut c);
    let before = dataset(&mut c);
    let old = (now - 3 * 3_600_000).to_string();
    let ancient = (now - 3 * 365 * 86_400_000).to_string();
    let future = (now + 5_000).to_string();
    let mut cases = error_cases(
        "
        HACK.TSCREATE n                   => ERR wrong number of arguments
        HACK.TSCREATE n ROLLUPS           => ERR wrong number of arguments
        HACK.TSCREATE nokey ROLLUP 1s:1m  => ERR unknown option
        HACK.TSCREATE nokey ROLLUPS 1x:1m => ERR '1x' has no valid unit
        HACK.TSCREATE nokey ROLLUPS 7s:1m => ERR rollup '7s:1m': the resolution must divide
        HACK.TSCREATE nokey ROLLUPS 1m:1h 1s:1m => ERR rollups must go from finest to coarsest
        HACK.TSCREATE nokey ROLLUPS 1s:1h 1m:1m => ERR a coarser rollup must keep at least as long
        HACK.TSCREATE nokey ROLLUPS 0s:1m => ERR '0s' needs a positive
        HACK.TSCREATE ts ROLLUPS 1s:1m    => ERR key already exists
        HACK.TSCREATE str ROLLUPS 1s:1m   => ERR key already exists
        HACK.TSINCR                       => ERR wrong number of arguments
        HACK.TSINCR ts x                  => ERR value is not an integer
        HACK.TSINCR ts 1.5                => ERR value is not an integer
        HACK.TSINCR ts 1 AT               => ERR syntax error
        HACK.TSINCR ts 1 AT x             => ERR AT must be
        HACK.TSINCR ts 1 WHEN 5           => ERR syntax error
        HACK.TSINCR ts 100                => ERR increment or decrement would overflow
        HACK.TSINCR str                   => WRONGTYPE
        HACK.TSSUM ts -                   => ERR wrong number of arguments
        HACK.TSSUM ts x +                 => ERR from/to must be
        HACK.TSSUM ts str - +             => WRONGTYPE
        HACK.TSRANGE ts -                 => ERR wrong number of arguments
        HACK.TSRANGE ts - + STEP          => ERR wrong number of arguments
        HACK.TSRANGE ts - + STEP 0        => ERR STEP must be
        HACK.TSRANGE ts - + EVERY 1       => ERR unknown option
        HACK.TSRANGE str - +              => WRONGTYPE
        HACK.TSINFO str                   => WRONGTYPE
        HACK.TSAPPLY ts 1 2               => ERR wrong number of arguments
        HACK.TSSET ts 0 1 1 1             => ERR HACK.TSSET is internal
        HACK.TSAPPLY ts 1 2 3             => ERR HACK.TSAPPLY is internal
        ",
    );
    // Empty or computed arguments.
    cases.extend([
        (
            vec!["HACK.TSINCR", "ts", "1", "AT", &old],
            "ERR AT is older than every rollup's retention",
        ),
        (
            vec!["HACK.TSINCR", "ts", "1", "AT", &future],
            "ERR AT is more than one finest bucket in the future",
        ),
        (
            vec!["HACK.TSINCR", "nokey", "1", "AT", &ancient],
            "ERR AT is older",
        ),
    ]);
    expect_errors(&mut c, &cases);
    c!(&mut c, "CONFIG", "SET", "hacks.ts-max-range-points", "10");
    let e = expect_err(&mut c, &["HACK.TSRANGE", "ts", "-", "+"]);
    assert!(
        e.contains("more than hacks.ts-max-range-points (10)"),
        "{e}"
    );
    assert_eq!(dataset(&mut c), before, "a failing call changed a key");
}

fn workload(c: &mut Connection, n: usize) {
    let now = server_ms(c);
    let mut rng = Rng(42);
    let mut p = redis::pipe();
    for i in 0..n {
        let key = format!("tsw:{}", i % 5);
        if i % 3 == 0 {
            p.cmd("HACK.TSINCR")
                .arg(&key)
                .arg(rng.range(-3, 10))
                .arg("AT")
                .arg(rng.range(now - 3_000_000, now));
        } else {
            p.cmd("HACK.TSINCR").arg(&key).arg(rng.range(1, 4));
        }
        if i % 50 == 0 {
            p.cmd("EVAL")
                .arg("return redis.call('HACK.TSINCR', KEYS[1], 2)")
                .arg(1)
                .arg(&key);
        }
    }
    p.cmd("HACK.TSCREATE")
        .arg("tsw:empty")
        .arg("ROLLUPS")
        .arg("1s:1h");
    p.query::<Value>(c).unwrap();
}

#[test]
fn replica_holds_exactly_the_masters_series() {
    // A replica with other default rollups must still create what the master created;
    // TSINCR arrives as its effect.
    let (_m, _r, data) = replica_equals_master(
        |r| {
            c!(r, "CONFIG", "SET", "hacks.ts-default-rollups", "1m:1d");
        },
        |_, m| workload(m, 2000),
        &["HACK.TSINCR"],
    );
    assert_eq!(data.len(), 6);
}

#[test]
fn persistence_keeps_series_exactly() {
    survives_persistence(|_, c| workload(c, 1500));
}

#[test]
fn memory_is_small_for_one_increment_and_dense_days() {
    let (_s, mut c) = Server::start_with_conn();
    c!(&mut c, "HACK.TSINCR", "one");
    let one = int(&c!(&mut c, "MEMORY", "USAGE", "one"));
    assert!(one < 600, "a series with one increment costs {one} bytes");
    c!(&mut c, "HACK.TSCREATE", "day", "ROLLUPS", "10s:1d");
    let now = server_ms(&mut c);
    let mut p = redis::pipe();
    for k in 0..8640 {
        p.cmd("HACK.TSINCR")
            .arg("day")
            .arg(1)
            .arg("AT")
            .arg(now - k * 10_000);
    }
    p.query::<Vec<i64>>(&mut c).unwrap();
    let day = int(&c!(&mut c, "MEMORY", "USAGE", "day"));
    assert!(
        day <= 8640 * 8 + 512,
        "a full day of 10 s buckets costs {day} bytes"
    );
    assert_eq!(int(&c!(&mut c, "HACK.TSSUM", "day", "-", "+")), 8640);
}

#[test]
fn multi_and_lua() {
    let (_s, mut c) = Server::start_with_conn();
    let (a, b, sum): (i64, i64, i64) = redis::pipe()
        .atomic()
        .cmd("HACK.TSINCR")
        .arg("m")
        .arg(2)
        .cmd("HACK.TSINCR")
        .arg("m")
        .arg(3)
        .cmd("HACK.TSSUM")
        .arg("m")
        .arg("-")
        .arg("+")
        .query(&mut c)
        .unwrap();
    assert_eq!((a, b, sum), (2, 5, 5));
    let v = int(&c!(
        &mut c,
        "EVAL",
        "redis.call('HACK.TSINCR', KEYS[1], 10) return redis.call('HACK.TSSUM', KEYS[1], '-', '+')",
        1,
        "m"
    ));
    assert_eq!(v, 15);
    let v = int(&c!(
        &mut c,
        "EVAL_RO",
        "return redis.call('HACK.TSSUM', KEYS[1], '-', '+')",
        1,
        "m"
    ));
    assert_eq!(v, 15, "TSSUM is read-only");
}

/// Far back-fills once grew the dense window to reach the far bucket: `1ms:100y`, four near
/// increments, then one a year back asked the allocator for 252 GB and aborted the server.
/// Every rollup shape, both ends of retention, alternating far and near: the server stays
/// up and MEMORY USAGE stays proportional to the buckets in use.
#[test]
fn far_backfill_never_grows_memory_with_distance() {
    let mut s = Server::start();
    let mut c = s.conn();
    let year = 365 * 86_400_000i64;
    for (i, rollups) in [
        vec!["1ms:100y"],
        vec!["1ms:100y", "1s:100y"],
        vec!["1ms:1y", "1h:100y"],
        vec!["10s:1d", "1h:90d", "1d:2y"],
        vec!["1ms:10y", "10ms:20y", "100ms:50y", "1s:100y"],
    ]
    .iter()
    .enumerate()
    {
        let k = format!("far{i}");
        let mut create = vec!["HACK.TSCREATE".to_string(), k.clone(), "ROLLUPS".into()];
        create.extend(rollups.iter().map(|r| r.to_string()));
        cmd(&mut c, &create);
        let now = server_ms(&mut c);
        let longest = rollups
            .iter()
            .map(|r| match r.split(':').nth(1).unwrap() {
                "100y" => 100 * year,
                "50y" => 50 * year,
                "20y" => 20 * year,
                "10y" => 10 * year,
                "2y" => 2 * year,
                "1y" => year,
                "90d" => 90 * 86_400_000,
                _ => 86_400_000,
            })
            .max()
            .unwrap();
        let mut writes = 0i64;
        for back in [10, 9, 8, 7] {
            c!(&mut c, "HACK.TSINCR", &k, 1, "AT", now - back);
            writes += 1;
        }
        // Far back-fills: one year, the far end of retention, alternating with near ones.
        let far_end = now - longest + 86_400_000;
        for (n, at) in [now - year.min(longest / 2), far_end, now - 1, far_end + 1]
            .into_iter()
            .chain((0..40).map(|j| {
                if j % 2 == 0 {
                    far_end + 2 + j
                } else {
                    now - 20 - j
                }
            }))
            .enumerate()
        {
            let r = redis::cmd("HACK.TSINCR")
                .arg(&k)
                .arg(1)
                .arg("AT")
                .arg(at)
                .query::<i64>(&mut c);
            if r.is_ok() {
                writes += 1;
            }
            assert!(s.alive(), "server died on write {n} of {rollups:?}");
        }
        let used = writes * rollups.len() as i64;
        let mem: i64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&k)
            .query(&mut c)
            .unwrap();
        assert!(
            mem < 2_000 + 80 * used,
            "{rollups:?}: MEMORY USAGE {mem} for at most {used} buckets"
        );
        let total: i64 = redis::cmd("HACK.TSSUM")
            .arg(&k)
            .arg("-")
            .arg("+")
            .query(&mut c)
            .unwrap();
        assert!(total > 0);
        // The same data through a save and load, and a DUMP/RESTORE.
        let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
        assert!(s.alive());
    }
}

/// The rewritten AOF set a TTL of its own on series that had none (PERSIST, RESTORE with
/// TTL 0): after BGREWRITEAOF and a restart PTTL was ~2 years instead of -1.
#[test]
fn aof_rewrite_keeps_no_ttl_as_no_ttl() {
    let mut s = Server::with(Opts::aof_without_preamble());
    let mut c = s.conn();
    c!(&mut c, "HACK.TSINCR", "s1");
    c!(&mut c, "PERSIST", "s1");
    c!(&mut c, "HACK.TSINCR", "s2");
    let dump: Vec<u8> = redis::cmd("DUMP").arg("s2").query(&mut c).unwrap();
    let _: () = redis::cmd("RESTORE")
        .arg("s3")
        .arg(0)
        .arg(dump)
        .query(&mut c)
        .unwrap();
    let before = ["s1", "s2", "s3"].map(|k| snapshot(&mut c, k));
    assert_eq!(before[0].2, -1);
    assert_eq!(before[2].2, -1);
    c!(&mut c, "BGREWRITEAOF");
    wait_rewrite(&mut c);
    drop(c);
    s.restart();
    let mut c = s.conn();
    let after = ["s1", "s2", "s3"].map(|k| snapshot(&mut c, k));
    assert_eq!(after, before);
}
