//! Thousands of malformed calls at every HACK.* command the module registers (found with
//! `COMMAND LIST FILTERBY MODULE hacks`, so new families are covered without edits): every
//! arity from 0 to 12, empty, binary and 1 MB arguments, huge, negative and malformed
//! numbers, unknown and repeated options, keys of every Redis type. The server must stay up,
//! every reply must parse, and a call answered with an error must leave every key exactly as
//! it was.

use std::collections::BTreeMap;

use crate::common::*;

const KEYS: &[&str] = &[
    "str", "list", "hash", "set", "zset", "stream", "buf", "series", "distinct", "rl", "lim:s",
    "lim:g", "missing",
];

fn words(now: i64) -> Vec<Vec<u8>> {
    let mut w: Vec<Vec<u8>> = [
        "0",
        "1",
        "-1",
        "2",
        "10",
        "100",
        "1000",
        "60000",
        "-0",
        "+1",
        " 1",
        "1 ",
        "01",
        "1.5",
        "1e3",
        "NaN",
        "nan",
        "inf",
        "-inf",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "99999999999999999999999",
        "1000000000000000",
        "10000000000000",
        "",
        "x",
        "COST",
        "ALGO",
        "FIXED",
        "SLIDING",
        "GCRA",
        "BURST",
        "PEEK",
        "COUNT",
        "LEASE",
        "AT",
        "STEP",
        "ROLLUPS",
        "WAIT",
        "-",
        "+",
        "10s:1d",
        "1s:10s",
        "100ms:2s",
        "1h:90d",
        "7s:1m",
        "1x:1d",
        "1m:1s",
        "10s",
        ":",
        "peek",
        "gcra",
        "member",
        "m",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    w.push(now.to_string().into_bytes());
    w.push((now - 3_600_000).to_string().into_bytes());
    w.push((now + 3_600_000).to_string().into_bytes());
    w.push(b"a\0b\r\n\xff".to_vec());
    w.push(vec![0xfe; 40]);
    for k in KEYS {
        w.push(k.as_bytes().to_vec());
    }
    w
}

/// A valid call per known command (after its name, `K` standing for a key, `NOW` for the
/// server's time): mutating one argument of it reaches deeper than random words alone.
fn template(name: &str) -> Option<&'static [&'static str]> {
    Some(match name.to_ascii_uppercase().as_str() {
        "HACK.RATEHIT" => &[
            "K", "10", "1000", "COST", "2", "ALGO", "GCRA", "BURST", "20",
        ],
        "HACK.BUFINCR" => &["K", "m", "1", "n", "-2"],
        "HACK.DRAIN" => &["K", "COUNT", "5", "LEASE", "1000"],
        "HACK.ACK" => &["K", "123"],
        "HACK.BUFINFO" | "HACK.TSINFO" => &["K"],
        "HACK.BUFBATCH" => &["K", "5", "NOW", "1", "m", "3"],
        "HACK.TSCREATE" => &["K", "ROLLUPS", "1s:10s", "10s:1m"],
        "HACK.TSINCR" => &["K", "3", "AT", "NOW"],
        "HACK.TSSUM" => &["K", "K", "-", "+"],
        "HACK.TSRANGE" => &["K", "-", "+", "STEP", "1000"],
        "HACK.TSAPPLY" => &["K", "1", "NOW", "NOW"],
        "HACK.TSSET" => &["K", "0", "5", "5", "1"],
        "HACK.TSADD" => &["K", "a", "b", "AT", "NOW"],
        "HACK.TSCOUNT" => &["K", "K", "-", "+", "UNION"],
        "HACK.TSADDAT" => &["K", "NOW", "NOW", "1", "1s:1m", "a"],
        "HACK.TSDSET" => &["K", "0", "5", "5", "\x01\x05\x40\x00"],
        "HACK.LOCK" => &["K", "owner", "1000"],
        "HACK.UNLOCK" => &["K", "owner"],
        "HACK.EXTEND" => &["K", "owner", "2000"],
        "HACK.LOCKINFO" => &["K"],
        "HACK.LOCKSET" => &["K", "owner", "5", "PXAT", "NOW"],
        _ => return None,
    })
}

/// Per key: (digest, absolute expiry).
fn state(c: &mut Connection) -> BTreeMap<Vec<u8>, (Option<String>, i64)> {
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(c).unwrap();
    keys.into_iter()
        .map(|k| {
            let d: Vec<Option<String>> = redis::cmd("DEBUG")
                .arg("DIGEST-VALUE")
                .arg(k.as_slice())
                .query(c)
                .unwrap();
            let at: i64 = redis::cmd("PEXPIRETIME")
                .arg(k.as_slice())
                .query(c)
                .unwrap();
            (k, (d.into_iter().next().flatten(), at))
        })
        .collect()
}

fn populate(c: &mut Connection) {
    let setup: &[&[&str]] = &[
        &["SET", "str", "hello"],
        &["RPUSH", "list", "a", "b"],
        &["HSET", "hash", "f", "v"],
        &["SADD", "set", "a"],
        &["ZADD", "zset", "1", "a"],
        &["XADD", "stream", "*", "f", "v"],
        &["HACK.BUFINCR", "buf", "a", "1", "b", "2"],
        &["HACK.TSINCR", "series", "5"],
        &["HACK.TSADD", "distinct", "a", "b"],
        &["HACK.RATEHIT", "rl", "10", "600000", "COST", "3"],
        &["HACK.RATEHIT", "lim:s", "10", "600000", "ALGO", "SLIDING"],
        &["HACK.RATEHIT", "lim:g", "10", "600000", "ALGO", "GCRA"],
    ];
    for args in setup {
        let mut r = redis::cmd(args[0]);
        for a in &args[1..] {
            r.arg(*a);
        }
        r.query::<Value>(c).unwrap();
    }
}

#[test]
fn malformed_calls_never_hurt() {
    let mut s = Server::start();
    let mut c = s.conn();
    // Keys vanish only when a command touches them, not by sampling between two snapshots.
    let _: () = redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg(0)
        .query(&mut c)
        .unwrap();
    let commands: Vec<String> = module_commands(&mut c);
    assert!(commands.len() >= 10, "{commands:?}");
    let mut rng = Rng(0x5EED_1234_ABCD);
    let (mut errors, mut oks) = (0, 0);
    for round in 0..4000u32 {
        if round.is_multiple_of(500) {
            let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
            populate(&mut c);
        }
        let now = server_ms(&mut c);
        let pool = words(now);
        let name = rng.pick(&commands).clone();
        let mut args: Vec<Vec<u8>> = match template(&name) {
            // Half the calls: a valid call with one argument replaced, dropped or repeated.
            Some(t) if rng.next().is_multiple_of(2) => {
                let mut v: Vec<Vec<u8>> = t
                    .iter()
                    .map(|w| match *w {
                        // Mostly a key of this command's own (created by earlier calls).
                        "K" if rng.next().is_multiple_of(3) => rng.pick(KEYS).as_bytes().to_vec(),
                        "K" => format!("{}:{}", name.to_lowercase(), rng.next() % 4).into_bytes(),
                        "NOW" => now.to_string().into_bytes(),
                        other => other.as_bytes().to_vec(),
                    })
                    .collect();
                let i = (rng.next() % v.len() as u64) as usize;
                match rng.next() % 5 {
                    0 => v[i] = rng.pick(&pool).clone(),
                    1 => {
                        v.remove(i);
                    }
                    2 => {
                        let w = v[i].clone();
                        v.push(w);
                    }
                    _ => {}
                }
                v
            }
            _ => {
                let arity = (rng.next() % 13) as usize;
                (0..arity)
                    .map(|i| {
                        if i == 0 && !rng.next().is_multiple_of(4) {
                            rng.pick(KEYS).as_bytes().to_vec()
                        } else if rng.next().is_multiple_of(300) {
                            vec![b'7'; 1 << 20]
                        } else {
                            rng.pick(&pool).clone()
                        }
                    })
                    .collect()
            }
        };
        if rng.next().is_multiple_of(400) {
            args.push(vec![b'x'; 1 << 20]);
        }
        // A lock waiter with no time limit would block this connection for good: WAIT is
        // exercised (with its own timeouts) by tests/lock.rs.
        if name.eq_ignore_ascii_case("HACK.LOCK") {
            args.retain(|a| !a.eq_ignore_ascii_case(b"WAIT"));
        }
        let before = state(&mut c);
        let mut call = redis::cmd(&name);
        for a in &args {
            call.arg(a.as_slice());
        }
        let shown: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(&a[..a.len().min(24)]).into_owned())
            .collect();
        match call.query::<Value>(&mut c) {
            Ok(_) => oks += 1,
            Err(e) if e.is_io_error() || e.is_connection_dropped() => {
                panic!(
                    "{name} {shown:?} broke the connection: {e}\nlog:\n{}",
                    s.log()
                )
            }
            Err(e) => {
                errors += 1;
                let text = err_text(&e);
                assert!(
                    text.starts_with("ERR") || text.starts_with("WRONGTYPE"),
                    "{name} {shown:?}: malformed error '{text}'"
                );
                let after = state(&mut c);
                let now = server_ms(&mut c);
                for (k, was) in &before {
                    // Expired meanwhile (-2: already gone when `before` was read): gone or
                    // going by lazy expiry, whatever the command did.
                    if was.1 == -2 || (was.1 > 0 && was.1 <= now) {
                        continue;
                    }
                    match after.get(k) {
                        Some(is) => {
                            assert_eq!(was, is, "{name} {shown:?} -> {text}: changed {k:?}")
                        }
                        // Only a key whose expiry had passed may be gone (lazy expiry on access).
                        None => panic!(
                            "{name} {shown:?} -> {text}: deleted {k:?} (was {was:?}, now {now})"
                        ),
                    }
                }
                for k in after.keys() {
                    assert!(
                        before.contains_key(k),
                        "{name} {shown:?} -> {text}: created {k:?}"
                    );
                }
            }
        }
    }
    assert!(s.alive(), "server died");
    let _: () = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(info_field(&mut c, "hacks_panics_caught"), 0);
    assert!(errors > 1000 && oks > 300, "errors {errors}, oks {oks}");
}
