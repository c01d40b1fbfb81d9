//! Semaphores against real servers: HACK.SEMACQUIRE / SEMRELEASE / SEMEXTEND / SEMINFO
//! semantics and replies (RESP2 and RESP3), a model-based random walk on a master and its
//! replica (never more than `limit` permits), FIFO with mixed permit counts, 1,000 waiters
//! under random releases, timeouts / disconnects / CLIENT UNBLOCK / MULTI / Lua, BOUND
//! permits of a SIGKILLed process, lease-end precision, fencing tokens through restart, AOF
//! replay, failover and MIGRATE, and the conformance kit.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command as Proc, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use super::{queued, wait_until, Waiter};
use crate::common::conformance;
use crate::common::resp::command as resp;
use crate::common::*;

/// The command `HACK.SEMACQUIRE key owner limit ttl [PERMITS n] [WAIT t] [BOUND]`.
fn semacquire(key: &str, owner: &str, limit: u64, ttl: u64, extra: &[&str]) -> redis::Cmd {
    let mut r = redis::cmd("HACK.SEMACQUIRE");
    r.arg(key).arg(owner).arg(limit).arg(ttl);
    for e in extra {
        r.arg(*e);
    }
    r
}

/// `HACK.SEMACQUIRE key owner limit ttl [PERMITS n] [WAIT t] [BOUND]` -> token or nil.
fn acq(
    c: &mut Connection,
    key: &str,
    owner: &str,
    limit: u64,
    ttl: u64,
    extra: &[&str],
) -> Option<i64> {
    semacquire(key, owner, limit, ttl, extra)
        .query(c)
        .unwrap_or_else(|e| panic!("SEMACQUIRE {key} {owner}: {e}"))
}

fn rel(c: &mut Connection, key: &str, owner: &str) -> i64 {
    int(&cmd(c, &["HACK.SEMRELEASE", key, owner]))
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    owner: String,
    permits: i64,
    ttl_ms: i64,
    token: i64,
    bound: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Info {
    limit: i64,
    in_use: i64,
    holders: Vec<Holder>,
    waiters: i64,
}

fn pairs(v: &Value) -> BTreeMap<String, Value> {
    match v {
        Value::Array(items) => items
            .chunks(2)
            .map(|p| (text(&p[0]), p[1].clone()))
            .collect(),
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (text(k), v.clone())).collect(),
        other => panic!("not a map: {other:?}"),
    }
}

fn info(c: &mut Connection, key: &str) -> Option<Info> {
    let v = cmd(c, &["HACK.SEMINFO", key]);
    if v == Value::Nil {
        return None;
    }
    let m = pairs(&v);
    let keys: Vec<&str> = m.keys().map(String::as_str).collect();
    assert_eq!(keys, ["holders", "limit", "permits_in_use", "waiters"]);
    let holders = match &m["holders"] {
        Value::Array(hs) => hs
            .iter()
            .map(|h| {
                let h = pairs(h);
                assert_eq!(h.len(), 5, "{h:?}");
                Holder {
                    owner: text(&h["owner"]),
                    permits: int(&h["permits"]),
                    ttl_ms: int(&h["ttl_ms"]),
                    token: int(&h["token"]),
                    bound: int(&h["bound"]),
                }
            })
            .collect(),
        other => panic!("holders: {other:?}"),
    };
    Some(Info {
        limit: int(&m["limit"]),
        in_use: int(&m["permits_in_use"]),
        holders,
        waiters: int(&m["waiters"]),
    })
}

fn waiters(c: &mut Connection, key: &str) -> i64 {
    info(c, key).map_or(0, |i| i.waiters)
}

impl Waiter {
    /// `HACK.SEMACQUIRE ... WAIT`, blocked in a thread of its own.
    fn semacquire(
        s: &Server,
        key: &str,
        owner: &str,
        limit: u64,
        ttl: u64,
        extra: &[&str],
    ) -> Waiter {
        Waiter::spawn(s, semacquire(key, owner, limit, ttl, extra))
    }
}

/// Queue a waiter for `permits` (its key must have a holder) and make sure the server
/// queued it.
fn queue(
    s: &Server,
    c: &mut Connection,
    key: &str,
    owner: &str,
    limit: u64,
    permits: u64,
) -> Waiter {
    let p = permits.to_string();
    let extra = ["PERMITS", p.as_str(), "WAIT", "0"];
    queued(
        || waiters(c, key),
        || Waiter::semacquire(s, key, owner, limit, 60_000, &extra),
    )
}

#[test]
fn acquire_renew_limit_release_extend_info() {
    let (s, mut c) = Server::start_with_conn();
    assert_eq!(info(&mut c, "s"), None);
    let a = acq(&mut c, "s", "a", 3, 60_000, &["PERMITS", "2"]).unwrap();
    let b = acq(&mut c, "s", "b", 3, 60_000, &[]).unwrap();
    assert!(b > a, "tokens increase");
    assert_eq!(acq(&mut c, "s", "c", 3, 60_000, &[]), None, "full");
    assert_eq!(
        acq(&mut c, "s", "a", 3, 90_000, &["PERMITS", "2"]),
        Some(a),
        "renewal: same token"
    );
    let e = expect_err(&mut c, &["HACK.SEMACQUIRE", "s", "a", "3", "1000"]);
    assert!(e.contains("already holds 2 permits"), "{e}");
    let i = info(&mut c, "s").unwrap();
    assert_eq!((i.limit, i.in_use, i.waiters), (3, 3, 0));
    assert_eq!(i.holders.len(), 2);
    assert_eq!(i.holders[0].owner, "a");
    assert_eq!(
        (i.holders[0].permits, i.holders[0].token, i.holders[0].bound),
        (2, a, 0)
    );
    assert!(i.holders[0].ttl_ms > 80_000 && i.holders[0].ttl_ms <= 90_000);
    // Lowering the limit: nobody loses permits; nobody new gets in until below it.
    assert_eq!(
        acq(&mut c, "s", "b", 2, 60_000, &[]),
        Some(b),
        "renewal with limit 2"
    );
    assert_eq!(info(&mut c, "s").unwrap().limit, 2);
    assert_eq!(info(&mut c, "s").unwrap().in_use, 3);
    assert_eq!(rel(&mut c, "s", "b"), 1);
    assert_eq!(
        acq(&mut c, "s", "c", 2, 60_000, &[]),
        None,
        "2 held, limit 2"
    );
    assert_eq!(rel(&mut c, "s", "b"), 0, "released already");
    assert_eq!(int(&cmd(&mut c, &["HACK.SEMEXTEND", "s", "a", "5000"])), 1);
    assert_eq!(int(&cmd(&mut c, &["HACK.SEMEXTEND", "s", "zz", "5000"])), 0);
    assert!(info(&mut c, "s").unwrap().holders[0].ttl_ms <= 5000);
    let pt = int(&cmd(&mut c, &["PTTL", "s"]));
    assert!(
        pt > 0 && pt <= 5000,
        "the key expires with its last lease: {pt}"
    );
    assert_eq!(rel(&mut c, "s", "a"), 1);
    assert_eq!(int(&cmd(&mut c, &["EXISTS", "s"])), 0, "no holder, no key");
    assert_eq!(rel(&mut c, "s", "a"), 0);
    assert_eq!(int(&cmd(&mut c, &["HACK.SEMEXTEND", "s", "a", "5000"])), 0);
    // RESP3: maps.
    let mut c3 = s.conn();
    let _: Value = redis::cmd("HELLO").arg(3).query(&mut c3).unwrap();
    acq(&mut c3, "r3", "x", 1, 60_000, &[]).unwrap();
    match cmd(&mut c3, &["HACK.SEMINFO", "r3"]) {
        Value::Map(m) => match &m[2].1 {
            Value::Array(hs) => assert!(matches!(hs[0], Value::Map(_))),
            other => panic!("{other:?}"),
        },
        other => panic!("RESP3 SEMINFO: {other:?}"),
    }
    assert_eq!(info(&mut c3, "r3").unwrap().holders[0].owner, "x");
    // Short lease: gone at its end even without a command (SEMINFO, key expiry).
    acq(&mut c, "short", "x", 1, 50, &[]).unwrap();
    sleep(Duration::from_millis(80));
    assert_eq!(info(&mut c, "short"), None);
}

/// Holder with all permits, then waiters of mixed sizes: strict FIFO, nobody overtakes.
#[test]
fn fifo_with_mixed_permit_counts() {
    let (s, mut c) = Server::start_with_conn();
    acq(&mut c, "f", "h", 3, 60_000, &["PERMITS", "3"]).unwrap();
    let w1 = queue(&s, &mut c, "f", "w1", 3, 2);
    let w2 = queue(&s, &mut c, "f", "w2", 3, 3);
    let w3 = queue(&s, &mut c, "f", "w3", 3, 1);
    assert_eq!(acq(&mut c, "f", "late", 3, 60_000, &[]), None, "no barging");
    assert_eq!(rel(&mut c, "f", "h"), 1);
    let t1 = w1.join().0.unwrap().unwrap();
    sleep(Duration::from_millis(50));
    let i = info(&mut c, "f").unwrap();
    assert_eq!(
        (i.in_use, i.waiters),
        (2, 2),
        "w3 (1 permit) does not overtake w2 (3)"
    );
    assert_eq!(rel(&mut c, "f", "w1"), 1);
    let t2 = w2.join().0.unwrap().unwrap();
    assert_eq!(info(&mut c, "f").unwrap().waiters, 1);
    assert_eq!(rel(&mut c, "f", "w2"), 1);
    let t3 = w3.join().0.unwrap().unwrap();
    assert!(t1 < t2 && t2 < t3, "served in order");
    // A large waiter at the front that times out lets the small ones behind it in.
    acq(&mut c, "g", "h", 3, 60_000, &["PERMITS", "2"]).unwrap();
    let big = Waiter::semacquire(&s, "g", "big", 3, 60_000, &["PERMITS", "3", "WAIT", "150"]);
    wait_until("big queued", 5000, || waiters(&mut c, "g") == 1);
    let small = queue(&s, &mut c, "g", "small", 3, 1);
    assert_eq!(big.join().0.unwrap(), None, "timed out");
    assert!(
        small.join().0.unwrap().is_some(),
        "admitted once the front left"
    );
}

#[test]
fn timeouts_disconnects_unblock_multi_lua_del() {
    let (s, mut c) = Server::start_with_conn();
    acq(&mut c, "t", "h", 1, 60_000, &[]).unwrap();
    let t0 = Instant::now();
    let w = Waiter::semacquire(&s, "t", "w", 1, 1000, &["WAIT", "100"]);
    let (r, at) = w.join();
    assert_eq!(r.unwrap(), None, "timeout answers nil");
    let took = at - t0;
    println!("WAIT 100 answered nil after {took:?}");
    assert!(took >= Duration::from_millis(95) && took < Duration::from_secs(3));
    assert_eq!(waiters(&mut c, "t"), 0);
    // A raw connection that closes while waiting leaves the queue.
    let mut raw = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    raw.write_all(&resp(&[
        "HACK.SEMACQUIRE",
        "t",
        "gone",
        "1",
        "1000",
        "WAIT",
        "0",
    ]))
    .unwrap();
    wait_until("raw queued", 5000, || waiters(&mut c, "t") == 1);
    drop(raw);
    wait_until("raw gone", 5000, || waiters(&mut c, "t") == 0);
    // CLIENT UNBLOCK: nil (as a timeout) or, with ERROR, an error.
    for (how, want_err) in [("TIMEOUT", false), ("ERROR", true)] {
        let mut wc = s.conn();
        let id = int(&cmd(&mut wc, &["CLIENT", "ID"]));
        let h = thread::spawn(move || {
            redis::cmd("HACK.SEMACQUIRE")
                .arg("t")
                .arg("u")
                .arg(1)
                .arg(1000)
                .arg("WAIT")
                .arg(0)
                .query::<Option<i64>>(&mut wc)
                .map_err(|e| err_text(&e))
        });
        wait_until("unblock target queued", 5000, || waiters(&mut c, "t") == 1);
        assert_eq!(
            int(&cmd(&mut c, &["CLIENT", "UNBLOCK", &id.to_string(), how])),
            1
        );
        let r = h.join().unwrap();
        if want_err {
            assert!(r.as_ref().is_err_and(|e| e.contains("UNBLOCKED")), "{r:?}");
        } else {
            assert_eq!(r, Ok(None));
        }
        assert_eq!(waiters(&mut c, "t"), 0);
    }
    // MULTI and Lua make a single try; BOUND has no connection inside a script.
    let mut m = s.conn();
    let (a, b): (Option<i64>, Option<i64>) = redis::pipe()
        .atomic()
        .cmd("HACK.SEMACQUIRE")
        .arg("t")
        .arg("m")
        .arg(1)
        .arg(1000)
        .arg("WAIT")
        .arg(0)
        .cmd("HACK.SEMACQUIRE")
        .arg("t2")
        .arg("m")
        .arg(1)
        .arg(1000)
        .arg("WAIT")
        .arg(0)
        .arg("BOUND")
        .query(&mut m)
        .unwrap();
    assert_eq!(a, None, "full: nil at once inside MULTI");
    assert!(b.is_some(), "free: acquired (and bound) inside MULTI");
    let v = cmd(
        &mut m,
        &[
            "EVAL",
            "return redis.call('HACK.SEMACQUIRE', KEYS[1], 'lua', 1, 1000, 'WAIT', 0)",
            "1",
            "t",
        ],
    );
    assert_eq!(v, Value::Nil);
    let e = expect_err(
        &mut m,
        &[
            "EVAL",
            "return redis.call('HACK.SEMACQUIRE', KEYS[1], 'lua', 1, 1000, 'BOUND')",
            "1",
            "t3",
        ],
    );
    assert!(e.contains("BOUND needs the calling connection"), "{e}");
    // DEL / FLUSHALL admit waiters.
    let w = queue(&s, &mut c, "t", "afterdel", 1, 1);
    cmd(&mut c, &["DEL", "t"]);
    assert!(w.join().0.unwrap().is_some(), "DEL admits the waiter");
    let w = queue(&s, &mut c, "t", "afterflush", 1, 1);
    cmd(&mut c, &["FLUSHALL"]);
    assert!(w.join().0.unwrap().is_some(), "FLUSHALL admits the waiter");
    acq(&mut c, "ren", "h", 1, 60_000, &[]).unwrap();
    let w = queue(&s, &mut c, "ren", "afterrename", 1, 1);
    cmd(&mut c, &["RENAME", "ren", "ren2"]);
    assert!(
        w.join().0.unwrap().is_some(),
        "RENAME away admits the waiter"
    );
}

/// 1,000 waiters on raw connections, short leases and random releases: every waiter is
/// admitted or times out, none hangs, and no token is handed out twice.
#[test]
fn a_thousand_waiters_and_random_releases() {
    let s = Server::with(Opts {
        extra: vec!["--maxclients".into(), "4000".into()],
        ..Opts::default()
    });
    let mut c = s.conn();
    let n = 1000;
    let mut socks = Vec::new();
    for i in 0..n {
        let mut t = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        let permits = (1 + i % 3).to_string();
        let ttl = (2 + i % 7).to_string();
        let wait = (200 + (i * 37) % 4000).to_string();
        t.write_all(&resp(&[
            "HACK.SEMACQUIRE",
            "k",
            &format!("w{i}"),
            "4",
            &ttl,
            "PERMITS",
            &permits,
            "WAIT",
            &wait,
        ]))
        .unwrap();
        socks.push(t);
    }
    // Every call reached the server (connections beyond the listen backlog may be accepted
    // seconds late on a loaded machine): from here on, a missing reply is a lost wake-up.
    wait_until("all 1000 calls processed", 60_000, || {
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut c)
            .unwrap();
        stats
            .to_ascii_lowercase()
            .lines()
            .find_map(|l| l.strip_prefix("cmdstat_hack.semacquire:calls="))
            .and_then(|v| v.split(',').next().and_then(|v| v.parse::<usize>().ok()))
            .is_some_and(|calls| calls >= n)
    });
    let stop = Arc::new(AtomicBool::new(false));
    let releaser = {
        let stop = stop.clone();
        let mut rc = s.conn();
        thread::spawn(move || {
            let mut i: u64 = 7;
            let mut released = 0;
            while !stop.load(Ordering::Relaxed) {
                i = i
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let o = format!("w{}", (i >> 33) % 1000);
                released += int(&cmd(&mut rc, &["HACK.SEMRELEASE", "k", &o]));
            }
            released
        })
    };
    let t0 = Instant::now();
    let (mut admitted, mut timed_out) = (0, 0);
    let mut tokens = std::collections::HashSet::new();
    for mut t in socks {
        t.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n") {
            if let Err(e) = t.read_exact(&mut byte) {
                let me = t.local_addr().map(|a| a.to_string()).unwrap_or_default();
                let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
                let line = list
                    .lines()
                    .find(|l| l.contains(&me))
                    .unwrap_or("not connected")
                    .to_string();
                panic!(
                    "a waiter hung ({e}); got {buf:?}; its client: {line}; semaphore: {:?}",
                    info(&mut c, "k")
                );
            }
            buf.push(byte[0]);
        }
        let line = String::from_utf8_lossy(&buf).trim().to_string();
        if let Some(tok) = line.strip_prefix(':') {
            assert!(tokens.insert(tok.to_string()), "token {tok} twice");
            admitted += 1;
        } else {
            assert!(line == "$-1" || line == "_", "unexpected reply {line}");
            timed_out += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let released = releaser.join().unwrap();
    println!(
        "1000 waiters: {admitted} admitted, {timed_out} timed out, {released} released early, in {:?}",
        t0.elapsed()
    );
    assert_eq!(admitted + timed_out, n);
    assert!(admitted > 0);
    wait_until("queue empty", 5000, || waiters(&mut c, "k") == 0);
    assert_eq!(info_field(&mut c, "hacks_sem_waiters_now"), 0);
}

/// A process holding a BOUND permit is SIGKILLed: the waiter gets it as soon as the server
/// sees the connection close. Without BOUND the waiter gets it at the lease end.
#[test]
fn bound_permit_of_a_killed_process_and_lease_end_precision() {
    let (s, mut c) = Server::start_with_conn();
    let mut child = Proc::new(cli_bin())
        .args(["-p", &s.port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "HACK.SEMACQUIRE b holder 1 600000 BOUND").unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.trim().parse::<i64>().is_ok(), "child acquired: {line}");
    let i = info(&mut c, "b").unwrap();
    assert_eq!(
        (i.holders[0].owner.as_str(), i.holders[0].bound),
        ("holder", 1)
    );
    let w = queue(&s, &mut c, "b", "next", 1, 1);
    let killed = Instant::now();
    child.kill().unwrap(); // SIGKILL
    let (r, at) = w.join();
    let _ = child.wait();
    assert!(r.unwrap().is_some(), "admitted");
    let took = at - killed;
    println!(
        "BOUND holder SIGKILLed: waiter admitted after {took:?} (kill, close, event, timer, reply)"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(info_field(&mut c, "hacks_sem_bound_released") >= 1);
    // Without BOUND: at the lease end, by a timer.
    let mut lateness = Vec::new();
    for round in 0..5 {
        let key = format!("lease{round}");
        acq(&mut c, &key, "h", 1, 300, &[]).unwrap();
        let ttl = info(&mut c, &key).unwrap().holders[0].ttl_ms;
        let due = Instant::now() + Duration::from_millis(ttl as u64 + 1);
        let w = Waiter::semacquire(&s, &key, "next", 1, 60_000, &["WAIT", "0"]);
        let (r, at) = w.join();
        assert!(r.unwrap().is_some());
        lateness.push(at.saturating_duration_since(due).as_secs_f64() * 1000.0);
    }
    lateness.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("lease end -> waiter admitted, ms after the deadline (5 rounds): {lateness:?}");
    assert!(lateness[2] < 500.0, "{lateness:?}");
}

/// Tokens only go up per key: restart (AOF), DEBUG RELOAD, failover to a replica, MIGRATE.
#[test]
fn tokens_increase_through_restart_failover_and_migrate() {
    let mut s = Server::with(Opts::aof());
    let mut c = s.conn();
    let mut last = 0;
    let take = |c: &mut Connection, owner: &str, last: &mut i64| {
        let t = acq(c, "tk", owner, 2, 60_000, &[]).unwrap();
        assert!(t > *last, "{t} after {last}");
        *last = t;
        rel(c, "tk", owner);
    };
    for i in 0..5 {
        take(&mut c, &format!("o{i}"), &mut last);
    }
    acq(&mut c, "tk", "keep", 2, 600_000, &["BOUND"]).unwrap();
    drop(c);
    s.restart();
    let mut c = s.conn();
    // The BOUND holder's connection is gone after a restart: released by the sweep.
    wait_until("stale BOUND holder released", 5000, || {
        info(&mut c, "tk").is_none()
    });
    for i in 0..3 {
        take(&mut c, &format!("r{i}"), &mut last);
    }
    cmd(&mut c, &["DEBUG", "RELOAD"]);
    take(&mut c, "reload", &mut last);
    // Failover: a replica promoted keeps the holders and continues above their tokens.
    let replica = Server::with(Opts::replica_of(s.port));
    let mut r = replica.conn();
    acq(&mut c, "tk", "held", 2, 600_000, &[]).unwrap();
    let bound_t = acq(&mut c, "tk", "boundheld", 2, 600_000, &["BOUND"]).unwrap();
    last = last.max(bound_t);
    wait_replicas(&mut c, 1);
    wait_until("replica has it", 5000, || {
        info(&mut r, "tk").is_some_and(|i| i.holders.len() == 2)
    });
    cmd(&mut r, &["REPLICAOF", "NO", "ONE"]);
    // On the promoted master the old master's client ids mean nothing: BOUND released.
    wait_until("promoted master released the BOUND holder", 5000, || {
        info(&mut r, "tk").is_some_and(|i| i.holders.len() == 1)
    });
    let t = acq(&mut r, "tk", "afterfailover", 2, 60_000, &[]).unwrap();
    assert!(t > last, "failover: {t} after {last}");
    last = t;
    // MIGRATE (what a slot move does) to a fresh server, then acquire there.
    let other = Server::start();
    let mut o = other.conn();
    cmd(
        &mut r,
        &[
            "MIGRATE",
            "127.0.0.1",
            &other.port.to_string(),
            "tk",
            "0",
            "5000",
        ],
    );
    let i = info(&mut o, "tk").unwrap();
    assert_eq!(i.holders.len(), 2);
    rel(&mut o, "tk", "held");
    let t = acq(&mut o, "tk", "aftermigrate", 2, 60_000, &[]).unwrap();
    assert!(t > last, "migrate: {t} after {last}");
}

/// Random walk with many owners (own connections, some BOUND), short leases, releases,
/// extensions and disconnects, against a naive model; never more than the limit, on the
/// master and on its replica.
#[test]
fn model_walk_on_master_and_replica() {
    let (master, replica) = master_and_replica();
    let mut m = master.conn();
    let mut r = replica.conn();
    const LIMIT: i64 = 5;
    const OWNERS: usize = 12;
    let mut conns: Vec<Connection> = (0..OWNERS).map(|_| master.conn()).collect();
    // owner -> (permits, token, local deadline, bound)
    let mut model: HashMap<usize, (i64, i64, Instant, bool)> = HashMap::new();
    let mut max_token = 0;
    let mut rng = Rng(0x9e3779b97f4a7c15);
    // Leases whose end is this close are uncertain either way (clocks, scheduling).
    let margin = Duration::from_millis(40);
    for step in 0..1500 {
        let o = rng.below(OWNERS);
        let owner = format!("o{o}");
        let now = Instant::now();
        // Forget holders whose lease surely ended.
        model.retain(|_, h| h.2 + margin > now);
        match rng.below(10) {
            0..=4 => {
                let permits = 1 + rng.below(3) as i64;
                let ttl = *rng.pick(&[30, 80, 400, 5000]);
                let bound = rng.below(3) == 0;
                let p = permits.to_string();
                let mut extra = vec!["PERMITS", p.as_str()];
                if bound {
                    extra.push("BOUND");
                }
                let got: Result<Option<i64>, _> = {
                    let mut q = redis::cmd("HACK.SEMACQUIRE");
                    q.arg("m").arg(&owner).arg(LIMIT).arg(ttl);
                    for e in &extra {
                        q.arg(*e);
                    }
                    q.query(&mut conns[o])
                };
                let at = Instant::now();
                match got {
                    Ok(Some(t)) => {
                        if let Some(h) = model.get(&o).filter(|h| h.2 > at + margin) {
                            assert_eq!(h.1, t, "step {step}: renewal keeps the token");
                        } else if !model.contains_key(&o) {
                            assert!(t > max_token, "step {step}: new token {t} <= {max_token}");
                        }
                        max_token = max_token.max(t);
                        model.insert(o, (permits, t, at + Duration::from_millis(ttl), bound));
                    }
                    Ok(None) => {
                        assert!(
                            model.get(&o).is_none_or(|h| h.2 < at + margin),
                            "step {step}: a live holder's renewal got nil"
                        );
                    }
                    Err(e) => {
                        let e = err_text(&e);
                        assert!(e.contains("already holds"), "step {step}: {e}");
                    }
                }
            }
            5..=6 => {
                let got = rel(&mut conns[o], "m", &owner);
                if model.get(&o).is_some_and(|h| h.2 > Instant::now() + margin) {
                    assert_eq!(got, 1, "step {step}: release of a live holding");
                }
                model.remove(&o);
            }
            7 => {
                let got = int(&cmd(&mut conns[o], &["HACK.SEMEXTEND", "m", &owner, "300"]));
                let at = Instant::now();
                if let Some(h) = model.get_mut(&o) {
                    if got == 1 {
                        h.2 = at + Duration::from_millis(300);
                    } else {
                        assert!(h.2 < at + margin, "step {step}: extend of a live holding");
                        model.remove(&o);
                    }
                }
            }
            _ => {
                // Disconnect: a BOUND holding goes with the connection.
                conns[o] = master.conn();
                if model.get(&o).is_some_and(|h| h.3) {
                    model.remove(&o);
                    wait_until("BOUND holding released on disconnect", 5000, || {
                        info(&mut m, "m")
                            .is_none_or(|i| !i.holders.iter().any(|h| h.owner == owner))
                    });
                }
            }
        }
        if let Some(i) = info(&mut m, "m") {
            assert!(i.in_use <= LIMIT, "step {step}: {i:?}");
            assert_eq!(i.in_use, i.holders.iter().map(|h| h.permits).sum::<i64>());
            let now = Instant::now();
            for (o, h) in &model {
                if h.2 > now + margin {
                    let owner = format!("o{o}");
                    let seen = i.holders.iter().find(|x| x.owner == owner);
                    assert!(
                        seen.is_some_and(|x| x.token == h.1 && x.permits == h.0),
                        "step {step}: {owner} {h:?} vs {i:?}"
                    );
                }
            }
        }
        if step % 50 == 0 {
            wait_replicas(&mut m, 1);
            if let Some(i) = info(&mut r, "m") {
                assert!(i.in_use <= LIMIT, "replica, step {step}: {i:?}");
            }
        }
    }
    println!(
        "model walk: highest token {max_token}, sem_expired {}",
        info_field(&mut m, "hacks_sem_expired")
    );
    drop(conns);
    wait_replicas(&mut m, 1);
    sleep(Duration::from_millis(100));
    wait_replicas(&mut m, 1);
    assert_eq!(
        info(&mut r, "m").map(|i| i
            .holders
            .into_iter()
            .map(|h| (h.owner, h.token))
            .collect::<Vec<_>>()),
        info(&mut m, "m").map(|i| i
            .holders
            .into_iter()
            .map(|h| (h.owner, h.token))
            .collect::<Vec<_>>()),
        "replica shows the master's holders"
    );
}

/// Acquires, renewals, extensions, releases and admissions of every kind.
fn workload(s: &Server, c: &mut Connection) {
    for i in 0..40 {
        let k = format!("sm:{}", i % 5);
        let o = format!("o{}", i % 4);
        acq(c, &k, &o, 3, 60_000 + i, &[]);
        if i % 4 == 0 {
            cmd(c, &["HACK.SEMEXTEND", &k, &o, "90000"]);
        }
        if i % 7 == 0 {
            rel(c, &k, &o);
        }
    }
    acq(c, "big", "a", 10, 60_000, &["PERMITS", "7"]).unwrap();
    acq(c, "big", "b\r\nbin\0", 10, 70_000, &["PERMITS", "3"]).unwrap();
    // Admission on release, on lease end (timer) and on DEL.
    acq(c, "h:rel", "a", 1, 60_000, &[]).unwrap();
    let w = queue(s, c, "h:rel", "b", 1, 1);
    rel(c, "h:rel", "a");
    w.join().0.unwrap().unwrap();
    acq(c, "h:exp", "a", 2, 100, &["PERMITS", "2"]).unwrap();
    let w = queue(s, c, "h:exp", "b", 2, 2);
    w.join().0.unwrap().unwrap();
    acq(c, "h:del", "a", 1, 60_000, &[]).unwrap();
    let w = queue(s, c, "h:del", "b", 1, 1);
    cmd(c, &["DEL", "h:del"]);
    w.join().0.unwrap().unwrap();
    cmd(
        c,
        &[
            "EVAL",
            "redis.call('HACK.SEMACQUIRE', KEYS[1], 'lua', 2, 70000) return redis.call('HACK.SEMEXTEND', KEYS[1], 'lua', 80000)",
            "1",
            "h:lua",
        ],
    );
}

#[test]
fn conformance_replica_equals_master() {
    conformance::replica_equals_master(
        |_| {},
        workload,
        &["HACK.SEMACQUIRE", "HACK.SEMRELEASE", "HACK.SEMEXTEND"],
    );
}

#[test]
fn conformance_survives_persistence() {
    let (s, _) = conformance::survives_persistence(workload);
    let mut c = s.conn();
    let used = int(&cmd(&mut c, &["MEMORY", "USAGE", "big"]));
    assert!(used > 50, "MEMORY USAGE: {used}");
}

#[test]
fn conformance_errors_leave_keys_unchanged() {
    let (_s, mut c) = Server::start_with_conn();
    acq(&mut c, "e", "a", 3, 60_000, &["PERMITS", "2"]).unwrap();
    cmd(&mut c, &["SET", "str", "x"]);
    let long = "x".repeat(513);
    let mut cases = error_cases(
        "
        HACK.SEMACQUIRE e a 3              => ERR wrong number of arguments
        HACK.SEMACQUIRE e b 0 1000         => ERR limit must be an integer from 1
        HACK.SEMACQUIRE e b x 1000         => ERR limit must be an integer from 1
        HACK.SEMACQUIRE e b 3 0            => ERR ttl_ms must be an integer from 1
        HACK.SEMACQUIRE e b 3 1000 PERMITS 4 => ERR PERMITS n must be an integer from 1 to 3
        HACK.SEMACQUIRE e b 3 1000 PERMITS 0 => ERR PERMITS n must be an integer from 1 to 3
        HACK.SEMACQUIRE e b 3 1000 PERMITS => ERR option PERMITS needs a value
        HACK.SEMACQUIRE e b 3 1000 WAIT -1 => ERR WAIT timeout_ms must be an integer from 0
        HACK.SEMACQUIRE e b 3 1000 BOUND BOUND => ERR option BOUND given more than once
        HACK.SEMACQUIRE e b 3 1000 NOPE    => ERR unknown option 'NOPE'
        HACK.SEMACQUIRE e a 3 1000         => ERR owner already holds 2 permits
        HACK.SEMACQUIRE str a 3 1000       => WRONGTYPE
        HACK.SEMRELEASE e                  => ERR wrong number of arguments
        HACK.SEMRELEASE str a              => WRONGTYPE
        HACK.SEMEXTEND e a 0               => ERR ttl_ms must be an integer from 1
        HACK.SEMEXTEND e a                 => ERR wrong number of arguments
        HACK.SEMEXTEND str a 10            => WRONGTYPE
        HACK.SEMINFO str                   => WRONGTYPE
        HACK.SEMINFO                       => ERR wrong number of arguments
        HACK.SEMSET e 3 a 1 5 100 0        => ERR HACK.SEMSET is internal
        HACK.SEMSET e 3 a 1 5 100          => ERR wrong number of arguments
        ",
    );
    // Empty or computed arguments.
    cases.extend([
        (
            vec!["HACK.SEMACQUIRE", "e", "", "3", "1000"],
            "ERR owner must not be empty",
        ),
        (
            vec!["HACK.SEMACQUIRE", "e", &long, "3", "1000"],
            "ERR owner must be at most 512 bytes",
        ),
        (
            vec!["HACK.SEMRELEASE", "e", ""],
            "ERR owner must not be empty",
        ),
    ]);
    conformance::errors_leave_keys_unchanged(&mut c, &cases);
}
