//! Row buffers against a real server: HACK.BUFUPDATE semantics and replies (RESP2 and
//! RESP3), a model-based test of BUFUPDATE/BUFINCR/DRAIN/LEASE/ACK sequences, every bad
//! input leaving keys unchanged, replication with smaller caps on the replica, persistence,
//! and loading an RDB written by encoding version 1 (tests/fixtures/buffer-v1.rdb).

use std::collections::BTreeMap;

use crate::common::*;

/// A drained value in canonical form: (column, op, value as text), plain members as
/// `[("value", "INCR", n)]`, plus whether the server replied it as a plain integer.
type Cells = Vec<(String, String, String)>;

fn cells(v: &Value) -> (Cells, bool) {
    let pair = |k: &Value, v: &Value| {
        let Value::Array(ov) = v else {
            panic!("cell not [op, value]: {v:?}")
        };
        let val = match &ov[1] {
            Value::Int(n) => n.to_string(),
            other => format!("b:{}", text(other)),
        };
        (text(k), text(&ov[0]), val)
    };
    match v {
        Value::Int(n) => (vec![("value".into(), "INCR".into(), n.to_string())], true),
        Value::Array(items) => (items.chunks(2).map(|p| pair(&p[0], &p[1])).collect(), false),
        Value::Map(items) => (items.iter().map(|(k, v)| pair(k, v)).collect(), false),
        other => panic!("not a value: {other:?}"),
    }
}

fn drained(v: &Value) -> Vec<(String, Cells, bool)> {
    let one = |m: &Value, v: &Value| {
        let (c, plain) = cells(v);
        (text(m), c, plain)
    };
    match v {
        Value::Array(items) => items.chunks(2).map(|p| one(&p[0], &p[1])).collect(),
        Value::Map(items) => items.iter().map(|(k, v)| one(k, v)).collect(),
        other => panic!("not entries: {other:?}"),
    }
}

/// `HACK.BUFINFO key` (RESP2): its flat `[name, value, ...]` field list.
fn bufinfo(c: &mut Connection, key: &str) -> Vec<Value> {
    match cmd(c, &["HACK.BUFINFO", key]) {
        Value::Array(f) => f,
        other => panic!("BUFINFO {key}: {other:?}"),
    }
}

/// The value of `name` in a flat field list (a BUFINFO reply or one of its batches).
fn field(f: &[Value], name: &str) -> Value {
    let i = f
        .iter()
        .position(|v| matches!(v, Value::BulkString(b) if b == name.as_bytes()))
        .unwrap_or_else(|| panic!("no {name} in {f:?}"));
    f[i + 1].clone()
}

fn c3(col: &str, op: &str, v: &str) -> (String, String, String) {
    (col.into(), op.into(), v.into())
}

#[test]
fn bufupdate_merges_and_drains_rows() {
    let (s, mut c) = Server::start_with_conn();
    let first = "HACK.BUFUPDATE g 42 INCR times_seen 1 MAX last_seen 100 SET message hello \
                 min first_seen 100";
    let n = int(&cmd(&mut c, &argv(first)));
    assert_eq!(n, 4);
    let second = "HACK.BUFUPDATE g 42 INCR times_seen 2 MAX last_seen 90 SET message bye \
                  MIN first_seen 80 INCR times_seen 3";
    cmd(&mut c, &argv(second));
    // BUFINCR: the default column, plain member drains as an integer.
    cmd(&mut c, &["HACK.BUFINCR", "g", "7", "5"]);
    assert_eq!(
        int(&cmd(&mut c, &argv("HACK.BUFUPDATE g 8 INCR value 2"))),
        1
    );
    let f = bufinfo(&mut c, "g");
    assert_eq!(field(&f, "pending_members"), Value::Int(3));
    assert_eq!(field(&f, "pending_columns"), Value::Int(6));
    assert!(int(&field(&f, "memory_bytes")) > 100);
    let d = drained(&cmd(&mut c, &["HACK.DRAIN", "g"]));
    assert_eq!(
        d,
        vec![
            (
                "42".into(),
                vec![
                    c3("times_seen", "INCR", "6"),
                    c3("last_seen", "MAX", "100"),
                    c3("message", "SET", "b:bye"),
                    c3("first_seen", "MIN", "80"),
                ],
                false
            ),
            ("7".into(), vec![c3("value", "INCR", "5")], true),
            ("8".into(), vec![c3("value", "INCR", "2")], true),
        ]
    );
    // RESP3: a map of maps, column -> [op, value].
    let mut c3c = s.conn_resp3();
    cmd(
        &mut c3c,
        &["HACK.BUFUPDATE", "g", "1", "SET", "data", "\x00\x01"],
    );
    cmd(&mut c3c, &["HACK.BUFINCR", "g", "2", "1"]);
    let v = cmd(&mut c3c, &["HACK.DRAIN", "g", "LEASE", "60000"]);
    let Value::Array(parts) = v else {
        panic!("{v:?}")
    };
    let Value::Map(entries) = &parts[2] else {
        panic!("{parts:?}")
    };
    assert!(matches!(entries[0].1, Value::Map(_)), "{entries:?}");
    assert!(matches!(entries[1].1, Value::Int(1)), "{entries:?}");
    let (cs, _) = cells(&entries[0].1);
    assert_eq!(cs, vec![c3("data", "SET", "b:\u{0}\u{1}")]);
}

#[test]
fn bad_row_updates_leave_keys_unchanged() {
    let (_s, mut c) = Server::start_with_conn();
    cmd(&mut c, &["CONFIG", "SET", "hacks.buffer-max-columns", "3"]);
    cmd(&mut c, &argv("CONFIG SET hacks.buffer-max-value-bytes 4"));
    cmd(
        &mut c,
        &argv("HACK.BUFUPDATE b m INCR n 9223372036854775806 SET s x"),
    );
    cmd(&mut c, &["HACK.BUFINCR", "b", "p", "1"]);
    cmd(&mut c, &["SET", "str", "x"]);
    let long = "c".repeat(65);
    let mut cases = error_cases(
        "
        HACK.BUFUPDATE b m INCR n             => ERR wrong number of arguments
        HACK.BUFUPDATE b m                    => ERR wrong number of arguments
        HACK.BUFUPDATE b m ADD n 1            => ERR unknown op 'ADD'
        HACK.BUFUPDATE b m INCR n x           => ERR value is not an integer
        HACK.BUFUPDATE b m MAX t 1.5          => ERR value is not an integer
        HACK.BUFUPDATE b m INCR n 2           => ERR increment or decrement would overflow
        HACK.BUFUPDATE b m SET s y INCR n 1 INCR n 1 => ERR increment or decrement would overflow
        HACK.BUFUPDATE b m SET n 1            => ERR column 'n' of this pending member is INCR, not SET
        HACK.BUFUPDATE b m SET t 1 MAX t 1    => ERR column 't' of this pending member is SET, not MAX
        HACK.BUFUPDATE new m MIN t 1 MAX t 1  => ERR column 't' of this pending member is MIN, not MAX
        HACK.BUFUPDATE b m SET t 1 SET u 1    => ERR too many columns
        HACK.BUFUPDATE b m SET s 12345        => ERR value of column 's' is longer
        HACK.BUFUPDATE str m SET a 1          => WRONGTYPE
        HACK.BUFINCR b m 1 p 9223372036854775807 => ERR increment or decrement would overflow
        HACK.BUFBATCH b 5 2 1 m ROW 1 SET x 1 => ERR HACK.BUFBATCH is internal
        HACK.BUFBATCH b 5 2 1 m ROW 2 SET x 1 => ERR malformed batch entry
        HACK.BUFBATCH b 5 2 1 m ROW 1 PUT x 1 => ERR malformed batch entry
        HACK.BUFBATCH b 5 2 1 m ROW 1 MAX x y => ERR malformed batch entry
        ",
    );
    // Empty or computed arguments.
    cases.extend([
        (
            vec!["HACK.BUFUPDATE", "b", "m", "SET", "", "1"],
            "ERR column names are 1 to 64 bytes",
        ),
        (
            vec!["HACK.BUFUPDATE", "b", "m", "SET", &long, "1"],
            "ERR column names are 1 to 64 bytes",
        ),
        (
            vec!["HACK.BUFUPDATE", "new", "m", "SET", &long, "1"],
            "ERR column names are 1 to 64 bytes",
        ),
    ]);
    errors_leave_keys_unchanged(&mut c, &cases);
    // The member bound applies to BUFUPDATE as to BUFINCR.
    cmd(&mut c, &["CONFIG", "SET", "hacks.buffer-max-members", "2"]);
    errors_leave_keys_unchanged(
        &mut c,
        &[(
            &["HACK.BUFUPDATE", "b", "q", "SET", "a", "1"][..],
            "ERR buffer is full",
        )],
    );
    assert_eq!(int(&cmd(&mut c, &["EXISTS", "new"])), 0);
}

// ---- the model ---------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum MV {
    Int(i64),
    Bytes(String),
}

type MRow = Vec<(String, &'static str, MV)>;

#[derive(Default, Clone)]
struct Model {
    pending: Vec<(String, MRow)>,
    batches: BTreeMap<i64, Vec<(String, MRow)>>,
    max_members: usize,
    max_columns: usize,
    max_value: usize,
}

impl Model {
    /// The row after `updates` (op, column, value), or None if the call must be refused.
    fn update(&self, member: &str, updates: &[(&'static str, String, String)]) -> Option<MRow> {
        let existing = self.pending.iter().find(|(m, _)| m == member);
        if existing.is_none() && self.pending.len() >= self.max_members {
            return None;
        }
        let mut row: MRow = existing.map(|(_, r)| r.clone()).unwrap_or_default();
        for (op, col, val) in updates {
            if col.is_empty() || col.len() > 64 {
                return None;
            }
            let v = if *op == "SET" {
                if val.len() > self.max_value {
                    return None;
                }
                MV::Bytes(val.clone())
            } else {
                MV::Int(val.parse().ok()?)
            };
            match row.iter_mut().find(|(c, _, _)| c == col) {
                Some((_, held, cur)) => {
                    if held != op {
                        return None;
                    }
                    *cur = match (*op, cur.clone(), v) {
                        ("INCR", MV::Int(a), MV::Int(b)) => MV::Int(a.checked_add(b)?),
                        ("MAX", MV::Int(a), MV::Int(b)) => MV::Int(a.max(b)),
                        ("MIN", MV::Int(a), MV::Int(b)) => MV::Int(a.min(b)),
                        (_, _, v) => v,
                    };
                }
                None => row.push((col.clone(), op, v)),
            }
        }
        let had = existing.map_or(0, |(_, r)| r.len());
        if row.len() > had && row.len() > self.max_columns {
            return None;
        }
        Some(row)
    }

    fn commit(&mut self, member: &str, row: MRow) {
        match self.pending.iter_mut().find(|(m, _)| m == member) {
            Some((_, r)) => *r = row,
            None => self.pending.push((member.into(), row)),
        }
    }
}

fn canon(row: &MRow) -> Cells {
    row.iter()
        .map(|(c, op, v)| {
            let v = match v {
                MV::Int(n) => n.to_string(),
                MV::Bytes(b) => format!("b:{b}"),
            };
            (c.clone(), op.to_string(), v)
        })
        .collect()
}

fn is_plain(row: &MRow) -> bool {
    matches!(row.as_slice(), [(c, "INCR", _)] if c == "value")
}

fn check_entries(got: &[(String, Cells, bool)], want: &[(String, MRow)]) {
    let want: Vec<(String, Cells, bool)> = want
        .iter()
        .map(|(m, r)| (m.clone(), canon(r), is_plain(r)))
        .collect();
    assert_eq!(got, want);
}

/// Random row traffic, checked against the model step by step; returns the model.
fn model_run(c: &mut Connection, key: &str, seed: u64, rounds: usize) -> Model {
    let mut m = Model {
        max_members: 12,
        max_columns: 5,
        max_value: 6,
        ..Model::default()
    };
    cmd(c, &["CONFIG", "SET", "hacks.buffer-max-members", "12"]);
    cmd(c, &["CONFIG", "SET", "hacks.buffer-max-columns", "5"]);
    cmd(c, &["CONFIG", "SET", "hacks.buffer-max-value-bytes", "6"]);
    let mut rng = Rng(seed);
    const COLS: &[&str] = &["value", "n", "hi", "lo", "s", "t", "u"];
    const OPS: &[&str] = &["INCR", "SET", "MAX", "MIN"];
    for _ in 0..rounds {
        let member = format!("m{}", rng.below(16));
        match rng.below(10) {
            0..=5 => {
                let k = 1 + rng.below(4);
                let mut updates = vec![];
                for _ in 0..k {
                    let col = *rng.pick(COLS);
                    // Columns mostly keep a fixed op, so rows grow; sometimes any op (a conflict).
                    let op = if rng.below(8) == 0 {
                        *rng.pick(OPS)
                    } else {
                        match col {
                            "value" | "n" => "INCR",
                            "hi" => "MAX",
                            "lo" => "MIN",
                            _ => "SET",
                        }
                    };
                    let val = match (op, rng.below(20)) {
                        ("SET", x) => "v".repeat(x % 8),
                        (_, 0) => i64::MAX.to_string(),
                        (_, 1) => i64::MIN.to_string(),
                        _ => (rng.below(200) as i64 - 100).to_string(),
                    };
                    updates.push((op, col.to_string(), val));
                }
                let mut args = vec!["HACK.BUFUPDATE".to_string(), key.into(), member.clone()];
                for (op, col, val) in &updates {
                    args.extend([op.to_string(), col.clone(), val.clone()]);
                }
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                let got: redis::RedisResult<Value> = redis::cmd(refs[0]).arg(&refs[1..]).query(c);
                match (m.update(&member, &updates), got) {
                    (Some(row), Ok(v)) => {
                        assert_eq!(int(&v), row.len() as i64, "{args:?}");
                        m.commit(&member, row);
                    }
                    (None, Err(_)) => {}
                    (want, got) => panic!("{args:?}: model {want:?}, server {got:?}"),
                }
            }
            6 => {
                let delta = (rng.below(50) as i64 - 10).to_string();
                let u = vec![("INCR", "value".to_string(), delta.clone())];
                let got: redis::RedisResult<Value> = redis::cmd("HACK.BUFINCR")
                    .arg(key)
                    .arg(&member)
                    .arg(&delta)
                    .query(c);
                match (m.update(&member, &u), got) {
                    (Some(row), Ok(_)) => m.commit(&member, row),
                    (None, Err(_)) => {}
                    (want, got) => panic!("BUFINCR {member}: model {want:?}, server {got:?}"),
                }
            }
            7 => {
                let n = 1 + rng.below(4);
                let got = drained(&cmd(c, &["HACK.DRAIN", key, "COUNT", &n.to_string()]));
                let take = n.min(m.pending.len());
                let want: Vec<_> = m.pending.drain(..take).collect();
                check_entries(&got, &want);
            }
            8 => {
                let n = 1 + rng.below(4);
                let v = cmd(
                    c,
                    &[
                        "HACK.DRAIN",
                        key,
                        "COUNT",
                        &n.to_string(),
                        "LEASE",
                        "600000",
                    ],
                );
                if m.pending.is_empty() {
                    assert_eq!(v, Value::Nil);
                } else {
                    let Value::Array(p) = v else { panic!("{v:?}") };
                    let take = n.min(m.pending.len());
                    let want: Vec<_> = m.pending.drain(..take).collect();
                    check_entries(&drained(&p[2]), &want);
                    m.batches.insert(int(&p[0]), want);
                }
            }
            _ => {
                if let Some((&id, _)) = m.batches.iter().next() {
                    if rng.below(2) == 0 {
                        m.batches.remove(&id);
                        assert_eq!(int(&cmd(c, &["HACK.ACK", key, &id.to_string()])), 1);
                    }
                }
            }
        }
        if m.pending.is_empty() && m.batches.is_empty() {
            assert_eq!(int(&cmd(c, &["EXISTS", key])), 0);
        } else {
            let f = bufinfo(c, key);
            let count = |name: &str| int(&field(&f, name));
            assert_eq!(count("pending_members"), m.pending.len() as i64);
            let cols: usize = m.pending.iter().map(|(_, r)| r.len()).sum();
            assert_eq!(count("pending_columns"), cols as i64);
            assert_eq!(count("batches_in_flight"), m.batches.len() as i64);
        }
    }
    m
}

#[test]
fn rows_follow_the_model() {
    let (_s, mut c) = Server::start_with_conn();
    for seed in [1u64, 0xDEADBEEF, 77] {
        let key = format!("rows:{seed}");
        let m = model_run(&mut c, &key, seed, 1500);
        // Everything left drains exactly as the model holds it.
        let got = drained(&cmd(&mut c, &["HACK.DRAIN", &key, "COUNT", "1000"]));
        check_entries(&got, &m.pending);
    }
}

/// Rows plus plain members, leased batches (with row entries) in flight.
fn rows_workload(c: &mut Connection) {
    let _ = model_run(c, "rows:a", 5, 600);
    let _ = model_run(c, "rows:b", 9, 600);
    cmd(c, &["CONFIG", "SET", "hacks.buffer-max-columns", "64"]);
    cmd(
        c,
        &["CONFIG", "SET", "hacks.buffer-max-value-bytes", "1048576"],
    );
    cmd(c, &["CONFIG", "SET", "hacks.buffer-max-members", "1000000"]);
    cmd(
        c,
        &[
            "HACK.BUFUPDATE",
            "rows:c",
            "x",
            "SET",
            "data",
            &"d".repeat(300),
            "MAX",
            "ts",
            "5",
        ],
    );
    cmd(c, &["HACK.BUFINCR", "rows:c", "y", "3"]);
    cmd(
        c,
        &["HACK.DRAIN", "rows:c", "COUNT", "1", "LEASE", "600000"],
    );
    cmd(c, &["HACK.BUFUPDATE", "rows:c", "x", "MIN", "ts", "-5"]);
}

#[test]
fn replica_applies_rows_the_master_admitted() {
    // The replica's caps are tighter than anything the workload writes.
    replica_equals_master(
        |r| {
            cmd(r, &["CONFIG", "SET", "hacks.buffer-max-members", "1"]);
            cmd(r, &["CONFIG", "SET", "hacks.buffer-max-columns", "1"]);
            cmd(r, &["CONFIG", "SET", "hacks.buffer-max-value-bytes", "1"]);
        },
        |_, m| rows_workload(m),
        &[],
    );
}

#[test]
fn rows_survive_persistence() {
    let (s, before) = survives_persistence(|_, c| rows_workload(c));
    assert!(before.contains_key("rows:c"));
    let mut c = s.conn();
    let used: i64 = int(&cmd(&mut c, &["MEMORY", "USAGE", "rows:c"]));
    assert!(used > 300, "MEMORY USAGE counts the 300-byte value: {used}");
}

#[test]
fn loads_an_rdb_written_by_encoding_version_1() {
    let mut s = Server::start();
    s.kill();
    let fixture = workspace_root().join("tests/fixtures/buffer-v1.rdb");
    std::fs::copy(&fixture, s.dir.join("dump.rdb")).expect("copy the fixture");
    s.restart();
    let mut c = s.conn();
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
    keys.sort();
    assert_eq!(keys, vec!["buf", "other"]);
    let f = bufinfo(&mut c, "buf");
    assert_eq!(field(&f, "pending_members"), Value::Int(4));
    assert_eq!(field(&f, "pending_columns"), Value::Int(4));
    assert_eq!(field(&f, "newest_batch_id"), Value::Int(1796174733858289));
    let Value::Array(batches) = field(&f, "batches") else {
        panic!()
    };
    let Value::Array(b) = &batches[0] else {
        panic!()
    };
    assert_eq!(field(b, "batch_id"), Value::Int(1796174733858289));
    assert_eq!(field(b, "entries"), Value::Int(2));
    assert_eq!(field(b, "delivery_count"), Value::Int(1));
    assert_eq!(field(b, "lease_deadline_ms"), Value::Int(1798174733858));
    // The leased batch, as written (its lease is far in the future: not handed out again).
    assert_eq!(
        cmd(&mut c, &["HACK.DRAIN", "other", "LEASE", "1000"]),
        Value::Array(vec![
            Value::Int(1796174733869723),
            Value::Int(2),
            Value::Array(vec![Value::BulkString(b"x".to_vec()), Value::Int(1)])
        ]),
        "other's lease ran out long ago: handed out again, delivery 2"
    );
    let d = drained(&cmd(&mut c, &["HACK.DRAIN", "buf", "COUNT", "100"]));
    let plain = |m: &str, v: i64| {
        (
            m.to_string(),
            vec![c3("value", "INCR", &v.to_string())],
            true,
        )
    };
    assert_eq!(
        d,
        vec![
            plain("c", 100),
            plain("a", 7),
            plain("d", i64::MAX),
            plain("", 0)
        ]
    );
    assert_eq!(
        int(&cmd(&mut c, &["HACK.ACK", "buf", "1796174733858289"])),
        1
    );
    assert_eq!(int(&cmd(&mut c, &["EXISTS", "buf"])), 0);
    // Saved again, it is version 2 and loads back.
    cmd(&mut c, &["HACK.BUFUPDATE", "buf", "r", "SET", "s", "x"]);
    let before = dataset(&mut c);
    redis::cmd("DEBUG")
        .arg("RELOAD")
        .query::<()>(&mut c)
        .unwrap();
    assert_eq!(dataset(&mut c), before);
}
