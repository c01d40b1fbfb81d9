//! HACK.QUOTA (and OFFSET on HACK.RATEHIT) against a real server: reply shape, all or
//! nothing (denied calls change no key, value and TTL), PARTIAL charging exactly what it
//! reports, refunds, PEEK, keys shared with HACK.RATEHIT, every error before any write, key
//! specs (COMMAND GETKEYS), a model-based random sequence, replication and persistence.

use std::collections::BTreeMap;

use super::start_away_from_window_edge;
use crate::common::conformance::{
    errors_leave_keys_unchanged, replica_equals_master, survives_persistence,
};
use crate::common::*;

/// HACK.QUOTA's RESP2 reply, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Q {
    pub allowed: i64,
    pub granted: i64,
    pub denied: Vec<i64>,
    pub retry_after_ms: i64,
    /// (limit, remaining, reset_after_ms) per limit.
    pub limits: Vec<(i64, i64, i64)>,
}

fn pairs(v: &Value) -> BTreeMap<String, Value> {
    let Value::Array(items) = v else {
        panic!("not a flat map: {v:?}")
    };
    items
        .chunks(2)
        .map(|c| (text(&c[0]), c[1].clone()))
        .collect()
}

pub fn decode(v: &Value) -> Q {
    let m = pairs(v);
    let keys: Vec<&str> = m.keys().map(|s| s.as_str()).collect();
    assert_eq!(
        keys,
        ["allowed", "denied", "granted", "limits", "retry_after_ms"],
        "{v:?}"
    );
    let Value::Array(denied) = &m["denied"] else {
        panic!("denied: {v:?}")
    };
    let Value::Array(limits) = &m["limits"] else {
        panic!("limits: {v:?}")
    };
    Q {
        allowed: int(&m["allowed"]),
        granted: int(&m["granted"]),
        denied: denied.iter().map(int).collect(),
        retry_after_ms: int(&m["retry_after_ms"]),
        limits: limits
            .iter()
            .map(|l| {
                let f = pairs(l);
                (
                    int(&f["limit"]),
                    int(&f["remaining"]),
                    int(&f["reset_after_ms"]),
                )
            })
            .collect(),
    }
}

pub fn quota(c: &mut Connection, args: &[&str]) -> Q {
    let mut a = vec!["HACK.QUOTA"];
    a.extend_from_slice(args);
    decode(&cmd(c, &a))
}

const H: &str = "3600000"; // an hour: no window turns during a test (avoid_window_edge)

#[test]
fn all_or_nothing_partial_refund_and_peek() {
    let (_s, mut c) = start_away_from_window_edge(3_600_000);
    // Per second 5, per hour 8 (sliding), per user GCRA 10.
    let spec = [
        "3", "q:s", "q:h", "q:g", "5", H, "8", H, "ALGO", "SLIDING", "10", H, "ALGO", "GCRA",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = spec.to_vec();
        v.extend_from_slice(extra);
        v
    };
    let r = quota(&mut c, &with(&["COST", "4"]));
    assert_eq!((r.allowed, r.granted, r.retry_after_ms), (1, 4, -1));
    assert!(r.denied.is_empty());
    assert_eq!(
        r.limits.iter().map(|l| (l.0, l.1)).collect::<Vec<_>>(),
        vec![(5, 1), (8, 4), (10, 6)]
    );
    // Limit 0 denies 2: nothing is charged anywhere, value and TTL unchanged.
    let before: Vec<Snapshot> = ["q:s", "q:h", "q:g"]
        .iter()
        .map(|k| snapshot(&mut c, k))
        .collect();
    let r = quota(&mut c, &with(&["COST", "2"]));
    assert_eq!((r.allowed, r.granted), (0, 0));
    assert_eq!(r.denied, vec![0]);
    assert!(r.retry_after_ms > 0, "{r:?}");
    assert_eq!(
        r.limits.iter().map(|l| l.1).collect::<Vec<_>>(),
        vec![1, 4, 6],
        "the fields show the keys as they are"
    );
    let after: Vec<Snapshot> = ["q:s", "q:h", "q:g"]
        .iter()
        .map(|k| snapshot(&mut c, k))
        .collect();
    assert_eq!(before, after, "a denied QUOTA changed a key");
    // PARTIAL grants the largest amount every limit admits (1, from limit 0).
    let r = quota(&mut c, &with(&["COST", "3", "PARTIAL"]));
    assert_eq!((r.allowed, r.granted), (1, 1));
    assert_eq!(get_i(&mut c, "q:s"), 5, "charged exactly what it reported");
    assert_eq!(
        r.limits.iter().map(|l| l.1).collect::<Vec<_>>(),
        vec![0, 3, 5]
    );
    // PARTIAL with nothing left: a denial with the indexes of the limits at zero.
    let r = quota(&mut c, &with(&["COST", "3", "PARTIAL"]));
    assert_eq!((r.allowed, r.granted, r.denied.clone()), (0, 0, vec![0]));
    // PEEK answers as if charged and writes nothing.
    let before = snapshot(&mut c, "q:h");
    let r = quota(&mut c, &with(&["COST", "-2", "PEEK"]));
    assert_eq!((r.allowed, r.granted), (1, -2));
    assert_eq!(snapshot(&mut c, "q:h"), before);
    // Refunds give back everywhere, never beyond full.
    let r = quota(&mut c, &with(&["COST", "-100"]));
    assert_eq!(r.allowed, 1);
    assert_eq!(
        r.limits.iter().map(|l| l.1).collect::<Vec<_>>(),
        vec![5, 8, 10]
    );
    assert_eq!(
        cmd_i(&mut c, &["EXISTS", "q:s", "q:h", "q:g"]),
        0,
        "full: keys go"
    );
    // A cost no limit can ever admit: retry -1.
    let r = quota(&mut c, &with(&["COST", "9"]));
    assert_eq!((r.allowed, r.retry_after_ms), (0, -1));
    assert_eq!(r.denied, vec![0, 1]);
}

fn get_i(c: &mut Connection, k: &str) -> i64 {
    let v: String = redis::cmd("GET").arg(k).query(c).unwrap();
    v.parse().unwrap()
}

fn cmd_i(c: &mut Connection, args: &[&str]) -> i64 {
    int(&cmd(c, args))
}

#[test]
fn keys_are_ordinary_ratehit_keys() {
    let (_s, mut c) = start_away_from_window_edge(3_600_000);
    let r: Vec<i64> = redis::cmd("HACK.RATEHIT")
        .arg("k1")
        .arg(3)
        .arg(H)
        .query(&mut c)
        .unwrap();
    assert_eq!(r[..3], [1, 3, 2]);
    let q = quota(&mut c, &["2", "k1", "k2", "3", H, "2", H, "ALGO", "GCRA"]);
    assert_eq!(q.limits.iter().map(|l| l.1).collect::<Vec<_>>(), vec![1, 1]);
    assert_eq!(get_i(&mut c, "k1"), 2, "the same plain FIXED count");
    let r: Vec<i64> = redis::cmd("HACK.RATEHIT")
        .arg("k2")
        .arg(2)
        .arg(H)
        .arg("ALGO")
        .arg("GCRA")
        .query(&mut c)
        .unwrap();
    assert_eq!(r[..3], [1, 2, 0], "RATEHIT charges the key QUOTA wrote");
}

#[test]
fn offset_windows_on_ratehit_and_quota() {
    let (_s, mut c) = Server::start_with_conn();
    let r: Vec<i64> = redis::cmd("HACK.RATEHIT")
        .arg("o")
        .arg(3)
        .arg(1000)
        .arg("OFFSET")
        .arg(250)
        .query(&mut c)
        .unwrap();
    assert_eq!(r[0], 1);
    let v: String = redis::cmd("GET").arg("o").query(&mut c).unwrap();
    assert_eq!(v, "f:250:1", "a FIXED key with an offset remembers it");
    assert_eq!(
        pexpiretime(&mut c, "o") % 1000,
        250,
        "window ends at k*1000 + 250"
    );
    let e = expect_err(&mut c, &["HACK.RATEHIT", "o", "3", "1000"]);
    assert!(
        e.contains("OFFSET 250; it cannot be used with OFFSET 0"),
        "{e}"
    );
    let e = expect_err(&mut c, &argv("HACK.QUOTA 1 o 3 1000 OFFSET 10"));
    assert!(e.contains("OFFSET 250"), "{e}");
    let q = quota(&mut c, &["1", "o", "3", "1000", "OFFSET", "250"]);
    assert_eq!(q.allowed, 1);
    // SLIDING: the window start carries the offset.
    quota(
        &mut c,
        &["1", "os", "3", "1000", "ALGO", "SLIDING", "OFFSET", "700"],
    );
    let v: String = redis::cmd("GET").arg("os").query(&mut c).unwrap();
    let ws: i64 = v.split(':').nth(2).unwrap().parse().unwrap();
    assert_eq!(ws % 1000, 700, "{v}");
    let e = expect_err(&mut c, &argv("HACK.RATEHIT os 3 1000 ALGO SLIDING"));
    assert!(e.contains("OFFSET 700"), "{e}");
    // Offset 0 keeps today's format.
    redis::cmd("HACK.RATEHIT")
        .arg("z")
        .arg(3)
        .arg(1000)
        .arg("OFFSET")
        .arg(0)
        .query::<Vec<i64>>(&mut c)
        .unwrap();
    let v: String = redis::cmd("GET").arg("z").query(&mut c).unwrap();
    assert_eq!(v, "1");
}

#[test]
fn errors_come_before_any_write() {
    let (_s, mut c) = start_away_from_window_edge(3_600_000);
    quota(
        &mut c,
        &["2", "e1", "e2", "5", H, "5", H, "ALGO", "SLIDING"],
    );
    cmd(&mut c, &["SET", "str", "hello"]);
    cmd(&mut c, &["LPUSH", "list", "x"]);
    // In the two-key cases at the end the first key would be charged and the second is
    // wrong: nothing is written.
    let cases = error_cases(
        "
        HACK.QUOTA 1 e1 5                        => ERR wrong number of arguments
        HACK.QUOTA 0 e1 5 3600000                => ERR numkeys must be a positive
        HACK.QUOTA x e1 5 3600000                => ERR numkeys must be a positive
        HACK.QUOTA 2 e1 5 3600000                => ERR numkeys is larger
        HACK.QUOTA 2 e1 e1 5 3600000 5 3600000   => ERR keys must be distinct
        HACK.QUOTA 2 e1 e2 5 3600000 COST 1      => ERR expected 2
        HACK.QUOTA 1 e1 5 3600000 5 3600000      => ERR more limit groups
        HACK.QUOTA 1 e1 5 3600000 FOO            => ERR unknown option 'FOO'
        HACK.QUOTA 1 e1 5 3600000 COST 1 COST 1  => ERR option COST given more
        HACK.QUOTA 1 e1 5 3600000 BURST 3        => ERR BURST applies only
        HACK.QUOTA 1 e1 5 3600000 ALGO GCRA OFFSET 1 => ERR OFFSET applies only
        HACK.QUOTA 1 e1 5 100 OFFSET 100         => ERR OFFSET must be
        HACK.QUOTA 1 e1 0 3600000                => ERR limit must be
        HACK.QUOTA 1 e1 5 3600000 WAIT -1        => ERR WAIT timeout_ms must be
        HACK.QUOTA 2 e1 str 5 3600000 5 3600000  => ERR key holds a string that is not
        HACK.QUOTA 2 e1 list 5 3600000 5 3600000 => WRONGTYPE
        HACK.QUOTA 2 e1 e2 5 3600000 5 3600000   => ERR key holds an ALGO SLIDING limiter
        HACK.QUOTA 2 e2 e1 5 3600000 ALGO SLIDING 5 3600000 OFFSET 3 => ERR key holds a limiter with OFFSET 0
        ",
    );
    errors_leave_keys_unchanged(&mut c, &cases);
}

#[test]
fn key_specs_declare_exactly_the_keys() {
    let (s, mut c) = Server::start_with_conn();
    let keys = command_keys(
        &mut c,
        &argv("HACK.QUOTA 3 a b c 5 1000 5 1000 ALGO GCRA 1 10 COST 2"),
    );
    assert_eq!(keys, vec!["a", "b", "c"]);
    let info = format!("{:?}", cmd(&mut c, &["COMMAND", "INFO", "HACK.QUOTA"]));
    assert!(info.contains("movablekeys"), "{info}");
    assert!(info.contains("keynum"), "{info}");
    // ACL: a user allowed only keys "a*" may not touch "b".
    let mut u = s.user(&mut c, "u", &["on", "nopass", "~a*", "+@all"]);
    quota(&mut u, &["1", "a1", "5", "1000"]);
    let e = expect_err(&mut u, &argv("HACK.QUOTA 2 a1 b1 5 1000 5 1000"));
    assert!(e.to_uppercase().contains("NOPERM"), "{e}");
}

// ---- model-based, against the real server -------------------------------------------------

/// A straightforward model of one key for FIXED and SLIDING with hour-long windows (no
/// window turns during the run: `avoid_window_edge`), so the model needs no clock: FIXED is
/// a count, SLIDING's current-window count (the previous window is empty).
#[derive(Clone, Copy, Debug)]
struct ModelKey {
    limit: i64,
    sliding: bool,
    count: i64,
}

#[test]
fn random_sequences_match_a_model() {
    let (_s, mut c) = start_away_from_window_edge(3_600_000);
    let mut keys: Vec<ModelKey> = (0..6)
        .map(|i| ModelKey {
            limit: 3 + (i as i64 % 4) * 2,
            sliding: i % 2 == 1,
            count: 0,
        })
        .collect();
    let mut rng = Rng(0x5851_f42d_4c95_7f2d);
    for step in 0..1500 {
        let n = 1 + rng.below(4);
        let mut ks: Vec<usize> = Vec::new();
        while ks.len() < n {
            let k = rng.below(6);
            if !ks.contains(&k) {
                ks.push(k);
            }
        }
        let cost = rng.below(8) as i64 - 2;
        let partial = rng.below(3) == 0;
        let peek = rng.below(7) == 0;
        let ratehit = n == 1 && rng.below(3) == 0 && !partial;
        let mut args: Vec<String> = vec![n.to_string()];
        args.extend(ks.iter().map(|k| format!("m:{k}")));
        for &k in &ks {
            args.push(keys[k].limit.to_string());
            args.push(H.into());
            if keys[k].sliding {
                args.extend(["ALGO".into(), "SLIDING".into()]);
            }
        }
        args.extend(["COST".into(), cost.to_string()]);
        if partial {
            args.push("PARTIAL".into());
        }
        if peek {
            args.push("PEEK".into());
        }
        // The model.
        let rooms: Vec<i64> = keys.iter().map(|m| (m.limit - m.count).max(0)).collect();
        let limits: Vec<i64> = keys.iter().map(|m| m.limit).collect();
        let room = |k: usize| rooms[k];
        let grant = if cost <= 0 {
            Some(cost)
        } else if partial {
            let g = ks.iter().map(|&k| room(k)).min().unwrap().min(cost);
            (g > 0).then_some(g)
        } else if ks.iter().all(|&k| room(k) >= cost) {
            Some(cost)
        } else {
            None
        };
        let mut want_remaining: Vec<i64> = Vec::new();
        for &k in &ks {
            let after = match grant {
                Some(g) => (keys[k].count + g).max(0),
                None => keys[k].count,
            };
            want_remaining.push((keys[k].limit - after).max(0));
            if !peek {
                keys[k].count = after;
            }
        }
        if ratehit {
            let k = ks[0];
            let mut r = redis::cmd("HACK.RATEHIT");
            r.arg(format!("m:{k}"))
                .arg(keys[k].limit)
                .arg(H)
                .arg("COST")
                .arg(cost);
            if keys[k].sliding {
                r.arg("ALGO").arg("SLIDING");
            }
            if peek {
                r.arg("PEEK");
            }
            let v: Vec<i64> = r.query(&mut c).unwrap();
            assert_eq!(v[0], i64::from(grant.is_some()), "step {step}");
            assert_eq!(v[2], want_remaining[0], "step {step}");
        } else {
            let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
            let q = quota(&mut c, &a);
            assert_eq!(
                q.allowed,
                i64::from(grant.is_some()),
                "step {step}: {args:?} {q:?}"
            );
            assert_eq!(q.granted, grant.unwrap_or(0), "step {step}: {args:?}");
            assert_eq!(
                q.limits.iter().map(|l| l.1).collect::<Vec<_>>(),
                want_remaining,
                "step {step}: {args:?}"
            );
            if grant.is_none() {
                let need = if partial { 1 } else { cost };
                let want_denied: Vec<i64> = ks
                    .iter()
                    .enumerate()
                    .filter(|(_, &k)| room(k) < need)
                    .map(|(i, _)| i as i64)
                    .collect();
                assert_eq!(q.denied, want_denied, "step {step}");
                let never = ks.iter().any(|&k| need > limits[k]);
                assert_eq!(q.retry_after_ms < 0, never, "step {step}: {q:?}");
            }
        }
        // Every key's state.
        if step % 50 == 0 || step == 1499 {
            for (k, m) in keys.iter().enumerate() {
                let v: Option<String> = redis::cmd("GET")
                    .arg(format!("m:{k}"))
                    .query(&mut c)
                    .unwrap();
                let got = match v {
                    None => 0,
                    Some(v) if m.sliding => v.rsplit(':').next().unwrap().parse().unwrap(),
                    Some(v) => v.parse().unwrap(),
                };
                assert_eq!(got, m.count, "step {step}: key m:{k}");
            }
        }
    }
}

/// Quota calls over mixed algorithms, offsets, PARTIAL and refunds.
pub fn workload(c: &mut Connection, rounds: usize) {
    let mut p = redis::pipe();
    for i in 0..rounds {
        let t = i % 5;
        p.cmd("HACK.QUOTA")
            .arg(3)
            .arg(format!("wq:{{t{t}}}:s"))
            .arg(format!("wq:{{t{t}}}:h"))
            .arg(format!("wq:{{t{t}}}:g"))
            .arg(10)
            .arg(60_000)
            .arg("OFFSET")
            .arg(1234)
            .arg(40)
            .arg(60_000)
            .arg("ALGO")
            .arg("SLIDING")
            .arg(20)
            .arg(60_000)
            .arg("ALGO")
            .arg("GCRA")
            .arg("COST")
            .arg((i % 7) as i64 - 2);
        if i % 3 == 0 {
            p.arg("PARTIAL");
        }
    }
    p.query::<Vec<Value>>(c).unwrap();
}

#[test]
fn replica_and_persistence_hold_quota_effects() {
    let (_m, _r, data) = replica_equals_master(
        |_| {},
        |_, m| {
            avoid_window_edge(m, 60_000);
            workload(m, 300);
        },
        &["HACK.QUOTA"],
    );
    assert!(data.len() >= 10, "{}", data.len());
    survives_persistence(|_, c| {
        avoid_window_edge(c, 60_000);
        workload(c, 200);
    });
}

#[test]
fn resp3_reply_is_a_map_with_nested_maps() {
    let s = Server::start();
    let mut c3 = s.conn_resp3();
    let v = cmd(
        &mut c3,
        &argv("HACK.QUOTA 2 r3a r3b 5 1000 5 1000 ALGO GCRA"),
    );
    let Value::Map(fields) = &v else {
        panic!("RESP3: {v:?}")
    };
    let names: Vec<String> = fields.iter().map(|(k, _)| text(k)).collect();
    assert_eq!(
        names,
        ["allowed", "granted", "denied", "retry_after_ms", "limits"]
    );
    let Value::Array(limits) = &fields[4].1 else {
        panic!("{v:?}")
    };
    assert!(
        limits
            .iter()
            .all(|l| matches!(l, Value::Map(m) if m.len() == 3)),
        "{v:?}"
    );
}
