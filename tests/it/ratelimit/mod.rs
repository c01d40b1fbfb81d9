//! HACK.RATEHIT against a real redis-server: each algorithm's admit/deny sequence, refunds,
//! COST 0, PEEK, every error case (key unchanged), MULTI/EXEC and Lua, replication to a
//! replica and persistence across AOF restart and RDB reload.

use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::common::*;

mod quota;
mod wait;

/// A server and a connection, at least 5 s before the next edge of a window of `period_ms`
/// on the server's clock, so no window turns while the test runs.
fn start_away_from_window_edge(period_ms: i64) -> (Server, Connection) {
    let (s, mut c) = Server::start_with_conn();
    avoid_window_edge(&mut c, period_ms);
    (s, c)
}

/// Assert `key` is exactly as its snapshot `before`: `what` did not change it.
fn assert_unchanged(c: &mut Connection, key: &str, before: &Snapshot, what: &str) {
    assert_eq!(&snapshot(c, key), before, "{what} changed the key");
}

/// A server and a connection, just after the start of a window of `period_ms` on the
/// server's clock, so a short sequence of hits runs inside one window.
fn start_at_window_start(period_ms: i64) -> (Server, Connection) {
    let (s, mut c) = Server::start_with_conn();
    sync_to_window(&mut c, period_ms);
    (s, c)
}

fn hit(con: &mut Connection, key: &str, rest: &[&str]) -> [i64; 5] {
    let mut c = redis::cmd("HACK.RATEHIT");
    c.arg(key);
    for a in rest {
        c.arg(*a);
    }
    let v: Vec<i64> = c
        .query(con)
        .unwrap_or_else(|e| panic!("RATEHIT {key} {rest:?}: {e}"));
    v.try_into().expect("five integers")
}

fn exists(con: &mut Connection, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query::<i64>(con)
        .expect("EXISTS")
        == 1
}

fn get(con: &mut Connection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(con).expect("GET")
}

#[test]
fn fixed_admits_denies_and_rolls_over() {
    let period = 200;
    let (_s, mut c) = start_at_window_start(period);
    let r = hit(&mut c, "f", &["3", "200"]);
    assert_eq!(&r[..4], &[1, 3, 2, -1]);
    assert!(
        r[4] > 0 && r[4] <= 200,
        "reset_after within the window: {r:?}"
    );
    assert_eq!(&hit(&mut c, "f", &["3", "200"])[..4], &[1, 3, 1, -1]);
    assert_eq!(&hit(&mut c, "f", &["3", "200"])[..4], &[1, 3, 0, -1]);
    let denied = hit(&mut c, "f", &["3", "200"]);
    assert_eq!(&denied[..3], &[0, 3, 0]);
    assert!(
        denied[3] > 0 && denied[3] <= 200 && denied[3] == denied[4],
        "{denied:?}"
    );
    // The key is the window's count and expires exactly at the window's end.
    assert_eq!(
        get(&mut c, "f").as_deref(),
        Some("3"),
        "a denied hit charges nothing"
    );
    let end = pexpiretime(&mut c, "f");
    assert_eq!(end % period, 0, "expiry aligned to the window end: {end}");
    // Roll over into the next window: full capacity again.
    sleep(Duration::from_millis(denied[3] as u64 + 5));
    assert_eq!(&hit(&mut c, "f", &["3", "200"])[..4], &[1, 3, 2, -1]);
    assert_eq!(pexpiretime(&mut c, "f"), end + period);
}

#[test]
fn sliding_weighs_previous_window_and_retry_is_truthful() {
    let (_s, mut c) = start_at_window_start(200);
    let a = ["4", "200", "ALGO", "SLIDING"];
    for i in 0..4 {
        let r = hit(&mut c, "s", &a);
        assert_eq!(&r[..4], &[1, 4, 3 - i, -1]);
    }
    let denied = hit(&mut c, "s", &a);
    assert_eq!(&denied[..3], &[0, 4, 0]);
    assert!(denied[3] > 0, "{denied:?}");
    let v = get(&mut c, "s").expect("state stored");
    assert!(v.starts_with("s:200:") && v.ends_with(":0:4"), "{v}");
    // Both windows must pass before the key goes.
    let ttl: i64 = redis::cmd("PTTL").arg("s").query(&mut c).unwrap();
    assert!(ttl > 200 && ttl <= 400, "{ttl}");
    // Right after the window turns, the previous count still weighs: 4 * (200-e)/200 + 1 > 4
    // for e < 50, so a call early in the next window is denied; at retry_after it passes.
    sleep(Duration::from_millis(denied[3] as u64 + 2));
    let r = hit(&mut c, "s", &a);
    assert_eq!(
        r[0], 1,
        "admitted at retry_after: {r:?} (denied said {denied:?})"
    );
}

#[test]
fn sliding_previous_window_still_counts_after_rollover() {
    let (_s, mut c) = start_at_window_start(1000);
    let a = ["4", "1000", "ALGO", "SLIDING"];
    for _ in 0..4 {
        assert_eq!(hit(&mut c, "s", &a)[0], 1);
    }
    sync_to_window(&mut c, 1000);
    // Early in the next window: 4 * ~0.99 + 1 > 4 -> denied, retry ≈ 250 ms into the window.
    let r = hit(&mut c, "s", &a);
    assert_eq!(r[0], 0, "{r:?}");
    assert!(r[3] > 200 && r[3] <= 250, "{r:?}");
}

#[test]
fn gcra_at_5000_per_second() {
    let (_s, mut c) = Server::start_with_conn();
    let a = ["5000", "1000", "ALGO", "GCRA"];
    // The whole burst capacity is available at once.
    let start = Instant::now();
    let mut p = redis::pipe();
    for _ in 0..5000 {
        p.cmd("HACK.RATEHIT").arg("g").arg(&a);
    }
    let burst: Vec<Vec<i64>> = p.query(&mut c).unwrap();
    let burst_ms = start.elapsed().as_millis() as i64;
    assert!(
        burst.iter().all(|r| r[0] == 1 && r[1] == 5000),
        "the first 5,000 fit the burst"
    );
    // From then on, about 5 hits per millisecond get through: run 300 ms flat out.
    let mut allowed = 0i64;
    let mut denied_retry = vec![];
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(300) {
        let mut p = redis::pipe();
        for _ in 0..50 {
            p.cmd("HACK.RATEHIT").arg("g").arg(&a);
        }
        let rs: Vec<Vec<i64>> = p.query(&mut c).unwrap();
        for r in rs {
            if r[0] == 1 {
                allowed += 1;
            } else {
                denied_retry.push(r[3]);
            }
        }
    }
    let elapsed = (start.elapsed().as_millis() as i64).max(1);
    // Refilled at 5/ms during the whole run (burst included), give or take the clock edges.
    let expected = 5 * (elapsed - burst_ms.min(elapsed));
    assert!(
        allowed <= 5 * elapsed + 10,
        "allowed {allowed} in {elapsed} ms: too many"
    );
    assert!(
        allowed >= expected * 8 / 10,
        "allowed {allowed} in {elapsed} ms: too few"
    );
    assert!(!denied_retry.is_empty());
    // T = 200 µs: a denied hit waits at most one emission interval, rounded up to 1 ms.
    assert!(
        denied_retry.iter().all(|&r| r == 1),
        "retry_after rounds 200 µs up to 1 ms"
    );
}

#[test]
fn gcra_burst_and_state() {
    let (_s, mut c) = Server::start_with_conn();
    // 1 per minute with a burst of 3.
    let a = ["1", "60000", "ALGO", "GCRA", "BURST", "3"];
    for i in 0..3 {
        let r = hit(&mut c, "g", &a);
        assert_eq!(&r[..4], &[1, 3, 2 - i, -1]);
    }
    let r = hit(&mut c, "g", &a);
    assert_eq!(r[0], 0);
    assert!(r[3] > 59_000 && r[3] <= 60_000, "{r:?}");
    assert!(r[4] > 179_000 && r[4] <= 180_000, "{r:?}");
    let v = get(&mut c, "g").unwrap();
    assert!(v.starts_with("g:1:"), "{v}");
    // The key expires at the theoretical arrival time.
    let ttl: i64 = redis::cmd("PTTL").arg("g").query(&mut c).unwrap();
    // The key expires at the TAT rounded up to the next millisecond; on 7.2+ the module
    // clock has microseconds, so within the first millisecond PTTL can read 180001.
    assert!(ttl > 179_000 && ttl <= 180_001, "{ttl}");
    // Refund two: two hits fit again.
    let r = hit(
        &mut c,
        "g",
        &["1", "60000", "ALGO", "GCRA", "BURST", "3", "COST", "-2"],
    );
    assert_eq!(&r[..3], &[1, 3, 2]);
}

#[test]
fn denied_hits_charge_nothing_and_leave_ttl() {
    let (_s, mut c) = start_away_from_window_edge(60_000);
    for algo in ["FIXED", "SLIDING", "GCRA"] {
        let key = format!("d-{algo}");
        let a = ["2", "60000", "ALGO", algo];
        assert_eq!(hit(&mut c, &key, &a)[0], 1);
        assert_eq!(hit(&mut c, &key, &a)[0], 1);
        let before = snapshot(&mut c, &key);
        for _ in 0..5 {
            assert_eq!(hit(&mut c, &key, &a)[0], 0, "{algo}");
        }
        assert_unchanged(&mut c, &key, &before, &format!("{algo}: denied hits"));
    }
}

#[test]
fn cost_zero_and_refunds() {
    let (_s, mut c) = start_away_from_window_edge(60_000);
    for algo in ["FIXED", "SLIDING", "GCRA"] {
        let key = format!("c-{algo}");
        let base = ["5", "60000", "ALGO", algo];
        let with = |cost: &'static str| -> Vec<&str> {
            let mut v = base.to_vec();
            v.extend(["COST", cost]);
            v
        };
        // COST 0 on an empty limiter: allowed, full, and no key created.
        assert_eq!(hit(&mut c, &key, &with("0")), [1, 5, 5, -1, 0]);
        assert!(!exists(&mut c, &key), "{algo}: COST 0 created a key");
        assert_eq!(&hit(&mut c, &key, &with("4"))[..3], &[1, 5, 1]);
        // COST above capacity: denied forever (-1), nothing charged.
        assert_eq!(&hit(&mut c, &key, &with("6"))[..4], &[0, 5, 1, -1]);
        let before = snapshot(&mut c, &key);
        assert_eq!(&hit(&mut c, &key, &with("0"))[..3], &[1, 5, 1]);
        assert_unchanged(&mut c, &key, &before, &format!("{algo}: COST 0"));
        // Refund 3: capacity comes back.
        assert_eq!(&hit(&mut c, &key, &with("-3"))[..3], &[1, 5, 4], "{algo}");
        // Refund beyond full: full, and the key is gone (nothing lives forever).
        assert_eq!(hit(&mut c, &key, &with("-100")), [1, 5, 5, -1, 0], "{algo}");
        assert!(!exists(&mut c, &key), "{algo}: a full limiter keeps no key");
    }
}

#[test]
fn peek_changes_nothing() {
    let (_s, mut c) = start_away_from_window_edge(60_000);
    for algo in ["FIXED", "SLIDING", "GCRA"] {
        let key = format!("p-{algo}");
        let peek = ["3", "60000", "ALGO", algo, "PEEK"];
        let r = hit(&mut c, &key, &peek);
        assert_eq!(&r[..3], &[1, 3, 2], "{algo}: PEEK answers as if charged");
        assert!(!exists(&mut c, &key), "{algo}: PEEK created a key");
        hit(&mut c, &key, &["3", "60000", "ALGO", algo, "COST", "3"]);
        let before = snapshot(&mut c, &key);
        let r = hit(&mut c, &key, &peek);
        assert_eq!(&r[..3], &[0, 3, 0], "{algo}");
        let r = hit(
            &mut c,
            &key,
            &["3", "60000", "ALGO", algo, "PEEK", "COST", "-1"],
        );
        assert_eq!(
            &r[..3],
            &[1, 3, 1],
            "{algo}: a peeked refund answers as if refunded"
        );
        assert_unchanged(&mut c, &key, &before, &format!("{algo}: PEEK"));
    }
}

#[test]
fn every_error_leaves_the_key_unchanged() {
    let (_s, mut c) = start_away_from_window_edge(60_000);
    hit(&mut c, "k", &["10", "60000", "COST", "4"]);
    redis::cmd("RPUSH")
        .arg("list")
        .arg("x")
        .query::<i64>(&mut c)
        .unwrap();
    redis::cmd("SET")
        .arg("foreign")
        .arg("hello")
        .query::<()>(&mut c)
        .unwrap();
    hit(&mut c, "sl", &["10", "60000", "ALGO", "SLIDING"]);
    let cases = error_cases(
        "
        HACK.RATEHIT                          => ERR wrong number of arguments
        HACK.RATEHIT k                        => ERR wrong number of arguments
        HACK.RATEHIT k 10                     => ERR wrong number of arguments
        HACK.RATEHIT k ten 60000              => ERR limit must be
        HACK.RATEHIT k 0 60000                => ERR limit must be
        HACK.RATEHIT k -5 60000               => ERR limit must be
        HACK.RATEHIT k +10 60000              => ERR limit must be
        HACK.RATEHIT k 10 0                   => ERR period_ms must be
        HACK.RATEHIT k 10 1e3                 => ERR period_ms must be
        HACK.RATEHIT k 10 99999999999999999999 => ERR period_ms must be
        HACK.RATEHIT k 10 60000 COST          => ERR option COST needs a value
        HACK.RATEHIT k 10 60000 COST x        => ERR COST must be
        HACK.RATEHIT k 10 60000 COST 9223372036854775808 => ERR COST must be
        HACK.RATEHIT k 10 60000 COST 1 COST 1 => ERR option COST given more than once
        HACK.RATEHIT k 10 60000 PEEK PEEK     => ERR option PEEK given more than once
        HACK.RATEHIT k 10 60000 ALGO LEAKY    => ERR ALGO must be
        HACK.RATEHIT k 10 60000 BURST 5       => ERR BURST applies only to ALGO GCRA
        HACK.RATEHIT k 10 60000 ALGO GCRA BURST 0 => ERR BURST must be
        HACK.RATEHIT k 10 60000 NOPE          => ERR unknown option 'NOPE'
        HACK.RATEHIT list 10 60000            => WRONGTYPE
        HACK.RATEHIT foreign 10 60000         => ERR key holds a string that is not a HACK.RATEHIT limiter
        HACK.RATEHIT k 10 60000 ALGO SLIDING  => ERR key holds an ALGO FIXED limiter; it cannot be used with ALGO SLIDING
        HACK.RATEHIT sl 10 60000 ALGO GCRA    => ERR key holds an ALGO SLIDING limiter
        HACK.RATEHIT sl 10 60000              => ERR key holds an ALGO SLIDING limiter
        ",
    );
    errors_leave_keys_unchanged(&mut c, &cases);
    // No error reply counted as a hit.
    assert_eq!(info_field(&mut c, "hacks_ratehit_allowed"), 2);
    assert_eq!(info_field(&mut c, "hacks_ratehit_denied"), 0);
}

#[test]
fn multi_exec_and_lua() {
    let (_s, mut c) = start_away_from_window_edge(60_000);
    let (r1, r2, r3): (Vec<i64>, Vec<i64>, Vec<i64>) = redis::pipe()
        .atomic()
        .cmd("HACK.RATEHIT")
        .arg("m")
        .arg(2)
        .arg(60000)
        .cmd("HACK.RATEHIT")
        .arg("m")
        .arg(2)
        .arg(60000)
        .cmd("HACK.RATEHIT")
        .arg("m")
        .arg(2)
        .arg(60000)
        .query(&mut c)
        .unwrap();
    assert_eq!((r1[0], r2[0], r3[0]), (1, 1, 0));
    // An error inside EXEC is that command's reply only; the others still apply.
    let exec: redis::RedisResult<Value> = redis::pipe()
        .atomic()
        .cmd("HACK.RATEHIT")
        .arg("m2")
        .arg(2)
        .arg(60000)
        .cmd("HACK.RATEHIT")
        .arg("m2")
        .arg(0)
        .arg(60000)
        .query(&mut c);
    assert!(exec.is_err(), "the bad call inside EXEC reports its error");
    assert_eq!(get(&mut c, "m2").as_deref(), Some("1"));

    let script = "return redis.call('HACK.RATEHIT', KEYS[1], ARGV[1], ARGV[2], 'ALGO', ARGV[3])";
    for algo in ["FIXED", "SLIDING", "GCRA"] {
        let key = format!("lua-{algo}");
        for want in [1, 1, 0] {
            let r: Vec<i64> = redis::cmd("EVAL")
                .arg(script)
                .arg(1)
                .arg(&key)
                .arg(2)
                .arg(60000)
                .arg(algo)
                .query(&mut c)
                .unwrap();
            assert_eq!(r[0], want, "{algo}");
        }
    }
    // Errors surface to the script as errors.
    let e = expect_err(
        &mut c,
        &[
            "EVAL",
            "return redis.call('HACK.RATEHIT', KEYS[1], 0, 1)",
            "1",
            "x",
        ],
    );
    assert!(e.contains("limit must be"), "{e}");
    // A read-only script may not call a writing command.
    let e = expect_err(
        &mut c,
        &[
            "EVAL_RO",
            "return redis.call('HACK.RATEHIT', KEYS[1], 1, 1000)",
            "1",
            "x",
        ],
    );
    assert!(e.to_lowercase().contains("write"), "{e}");
}

#[test]
fn watch_is_aborted_only_by_real_changes() {
    let (s, mut a) = Server::start_with_conn();
    let mut b = s.conn();
    avoid_window_edge(&mut a, 60_000);
    hit(&mut a, "w", &["1", "60000"]);
    // A denied hit changes nothing, so a transaction watching the key still commits.
    redis::cmd("WATCH").arg("w").query::<()>(&mut a).unwrap();
    assert_eq!(hit(&mut b, "w", &["1", "60000"])[0], 0);
    let r: Value = redis::pipe().atomic().cmd("PING").query(&mut a).unwrap();
    assert_ne!(r, Value::Nil, "denied hit aborted a WATCH transaction");
    // An admitted hit does change the key.
    redis::cmd("WATCH").arg("w2").query::<()>(&mut a).unwrap();
    assert_eq!(hit(&mut b, "w2", &["1", "60000"])[0], 1);
    let r: Option<Vec<String>> = redis::pipe().atomic().cmd("PING").query(&mut a).unwrap();
    assert_eq!(r, None, "admitted hit must abort a WATCH transaction");
}

/// A mixed workload over all algorithms, costs, refunds and PEEKs.
fn workload(c: &mut Connection, rounds: usize) {
    let algos = ["FIXED", "SLIDING", "GCRA"];
    let mut p = redis::pipe();
    let mut x: u64 = 0x2545F4914F6CDD1D;
    for i in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let algo = algos[(x % 3) as usize];
        let key = format!("wl:{algo}:{}", (x >> 8) % 20);
        let cost = ((x >> 16) % 7) as i64 - 2; // -2..=4
        p.cmd("HACK.RATEHIT")
            .arg(&key)
            .arg(10)
            .arg(60_000)
            .arg("ALGO")
            .arg(algo)
            .arg("COST")
            .arg(cost);
        if i % 11 == 0 {
            p.arg("PEEK");
        }
        if i % 5 == 0 {
            // A script, to check its effects replicate like a direct call's.
            p.cmd("EVAL")
                .arg("return redis.call('HACK.RATEHIT', KEYS[1], 10, 60000, 'ALGO', ARGV[1])")
                .arg(1)
                .arg(&key)
                .arg(algo);
        }
    }
    p.query::<Vec<Value>>(c).unwrap();
}

#[test]
fn replica_holds_exactly_the_masters_data() {
    // The replica never runs HACK.RATEHIT itself: it gets SET ... PXAT / DEL.
    let (_m, _r, data) = replica_equals_master(
        |_| {},
        |_, m| {
            avoid_window_edge(m, 60_000);
            workload(m, 600);
        },
        &["HACK.RATEHIT"],
    );
    assert!(data.len() > 20, "workload made keys: {}", data.len());
}

#[test]
fn aof_restart_and_rdb_reload_keep_state() {
    // A rewrite without RDB preamble replays the keys as commands (SET ... PXAT).
    let (s, before) = survives_persistence(|_, c| {
        avoid_window_edge(c, 60_000);
        workload(c, 400);
    });
    let mut c = s.conn();
    // The restored limiter keeps limiting where it left off.
    let (k, _) = before
        .iter()
        .find(|(k, _)| k.starts_with("wl:FIXED"))
        .unwrap();
    let r = hit(&mut c, k, &["10", "60000", "PEEK"]);
    let count: i64 = get(&mut c, k).unwrap().parse().unwrap();
    assert_eq!(r[2], (10 - count - 1).max(0));
}

#[test]
fn info_counts_allowed_denied_and_peeks() {
    let (_s, mut c) = start_away_from_window_edge(60_000);
    for _ in 0..3 {
        hit(&mut c, "i", &["2", "60000"]);
    }
    hit(&mut c, "i", &["2", "60000", "PEEK"]);
    assert_eq!(info_field(&mut c, "hacks_ratehit_allowed"), 2);
    assert_eq!(info_field(&mut c, "hacks_ratehit_denied"), 1);
    assert_eq!(info_field(&mut c, "hacks_ratehit_peeks"), 1);
}
