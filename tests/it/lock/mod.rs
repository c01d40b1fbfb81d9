//! Locks against real redis-servers: HACK.LOCK / UNLOCK / EXTEND / LOCKINFO semantics,
//! mutual exclusion and FIFO service under concurrency, hand-off on unlock, expiry and DEL,
//! waiters that time out, disconnect or lose the master role, MULTI and Lua, every error
//! leaving the key unchanged, replication (including hand-offs made by a timer), persistence
//! and fencing tokens that only go up.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use crate::common::resp::command as resp;
use crate::common::*;

mod semaphore;

/// The command `HACK.LOCK key owner ttl [WAIT t]`.
fn lock_cmd(key: &str, owner: &str, ttl: u64, wait: Option<u64>) -> redis::Cmd {
    let mut r = redis::cmd("HACK.LOCK");
    r.arg(key).arg(owner).arg(ttl);
    if let Some(w) = wait {
        r.arg("WAIT").arg(w);
    }
    r
}

/// `HACK.LOCK key owner ttl [WAIT t]` -> Some(token) or None (nil).
fn lock(c: &mut Connection, key: &str, owner: &str, ttl: u64, wait: Option<u64>) -> Option<i64> {
    lock_cmd(key, owner, ttl, wait)
        .query(c)
        .unwrap_or_else(|e| panic!("HACK.LOCK {key} {owner}: {e}"))
}

fn unlock(c: &mut Connection, key: &str, owner: &str) -> i64 {
    int(&cmd(c, &["HACK.UNLOCK", key, owner]))
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Info {
    owner: String,
    ttl_ms: i64,
    token: i64,
    waiters: i64,
}

fn info(c: &mut Connection, key: &str) -> Option<Info> {
    let v = cmd(c, &["HACK.LOCKINFO", key]);
    let pairs: Vec<(String, Value)> = match v {
        Value::Nil => return None,
        Value::Array(items) => items
            .chunks(2)
            .map(|p| (text(&p[0]), p[1].clone()))
            .collect(),
        Value::Map(pairs) => pairs.into_iter().map(|(k, v)| (text(&k), v)).collect(),
        other => panic!("bad LOCKINFO reply {other:?}"),
    };
    let m: BTreeMap<String, Value> = pairs.into_iter().collect();
    Some(Info {
        owner: text(&m["owner"]),
        ttl_ms: int(&m["ttl_ms"]),
        token: int(&m["token"]),
        waiters: int(&m["waiters"]),
    })
}

fn waiters(c: &mut Connection, key: &str) -> i64 {
    info(c, key).map_or(0, |i| i.waiters)
}

fn wait_until(what: &str, timeout_ms: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(1));
    }
}

fn info_line(c: &mut Connection, section: &str, field: &str) -> i64 {
    let s: String = redis::cmd("INFO").arg(section).query(c).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO {section}"))
}

/// A client blocked in a `... WAIT` call (a lock or a semaphore) on its own connection, in
/// a thread: its reply (token, nil or error text) and when the reply came.
struct Waiter {
    handle: thread::JoinHandle<(Result<Option<i64>, String>, Instant)>,
}

impl Waiter {
    /// Run `call` (one that blocks) on a new connection to `s`, in a thread of its own.
    fn spawn(s: &Server, call: redis::Cmd) -> Waiter {
        let mut c = s.conn();
        let handle = thread::spawn(move || {
            let r = call.query::<Option<i64>>(&mut c).map_err(|e| err_text(&e));
            (r, Instant::now())
        });
        Waiter { handle }
    }

    /// `HACK.LOCK key owner ttl WAIT wait`, blocked in a thread.
    fn lock(s: &Server, key: &str, owner: &str, ttl: u64, wait: u64) -> Waiter {
        Waiter::spawn(s, lock_cmd(key, owner, ttl, Some(wait)))
    }

    fn join(self) -> (Result<Option<i64>, String>, Instant) {
        self.handle.join().expect("waiter thread")
    }
}

/// Start a waiter and make sure the server has queued it before going on: `waiters` reads
/// the length of its key's queue.
fn queued(mut waiters: impl FnMut() -> i64, start: impl FnOnce() -> Waiter) -> Waiter {
    let before = waiters();
    let w = start();
    wait_until("the waiter to be queued", 5000, || waiters() == before + 1);
    w
}

/// Queue a lock waiter (no timeout) behind the key's holder.
fn queue_waiter(s: &Server, c: &mut Connection, key: &str, owner: &str, ttl: u64) -> Waiter {
    queued(|| waiters(c, key), || Waiter::lock(s, key, owner, ttl, 0))
}

#[test]
fn acquire_renew_extend_unlock() {
    let (_s, mut c) = Server::start_with_conn();
    let t1 = lock(&mut c, "k", "alice", 10_000, None).expect("free lock");
    assert_eq!(text(&cmd(&mut c, &["TYPE", "k"])), "hacks-lck");
    let i = info(&mut c, "k").unwrap();
    assert_eq!((i.owner.as_str(), i.token, i.waiters), ("alice", t1, 0));
    assert!((9_900..=10_000).contains(&i.ttl_ms), "{i:?}");
    // Held by someone else: nil at once, nothing changes.
    let before = snapshot(&mut c, "k");
    assert_eq!(lock(&mut c, "k", "bob", 5_000, None), None);
    assert_eq!(snapshot(&mut c, "k"), before);
    // The holder again (a retry after a lost reply): same token, fresh TTL.
    sleep(Duration::from_millis(20));
    assert_eq!(lock(&mut c, "k", "alice", 60_000, None), Some(t1));
    assert!(info(&mut c, "k").unwrap().ttl_ms > 59_000);
    // EXTEND / UNLOCK by a non-owner: 0, key exactly as it was.
    let before = (snapshot(&mut c, "k"), digest(&mut c, "k"));
    assert_eq!(int(&cmd(&mut c, &["HACK.EXTEND", "k", "bob", "100"])), 0);
    assert_eq!(unlock(&mut c, "k", "bob"), 0);
    assert_eq!(unlock(&mut c, "k", "ALICE"), 0, "owners are exact bytes");
    assert_eq!((snapshot(&mut c, "k"), digest(&mut c, "k")), before);
    // EXTEND by the holder sets the remaining TTL, token unchanged.
    assert_eq!(int(&cmd(&mut c, &["HACK.EXTEND", "k", "alice", "3000"])), 1);
    let i = info(&mut c, "k").unwrap();
    assert!(
        (2_900..=3_000).contains(&i.ttl_ms) && i.token == t1,
        "{i:?}"
    );
    assert_eq!(unlock(&mut c, "k", "alice"), 1);
    assert_eq!(info(&mut c, "k"), None, "a free lock leaves no key");
    assert_eq!(int(&cmd(&mut c, &["EXISTS", "k"])), 0);
    assert_eq!(unlock(&mut c, "k", "alice"), 0, "already free");
    assert_eq!(int(&cmd(&mut c, &["HACK.EXTEND", "k", "alice", "10"])), 0);
    let t2 = lock(&mut c, "k", "bob", 10_000, None).unwrap();
    assert!(t2 > t1, "a new acquisition gets a larger token");
    // Expiry frees it.
    cmd(&mut c, &["HACK.EXTEND", "k", "bob", "30"]);
    sleep(Duration::from_millis(60));
    assert_eq!(info(&mut c, "k"), None);
    let t3 = lock(&mut c, "k", "carol", 1_000, Some(100)).unwrap();
    assert!(t3 > t2);
    assert_eq!(info_field(&mut c, "hacks_lock_acquired"), 3);
    assert_eq!(info_field(&mut c, "hacks_lock_renewed"), 1);
    assert_eq!(info_field(&mut c, "hacks_lock_busy"), 1);
    assert_eq!(info_field(&mut c, "hacks_lock_released"), 1);
    assert_eq!(info_field(&mut c, "hacks_lock_extended"), 2);
    assert_eq!(info_field(&mut c, "hacks_lock_not_holder"), 5);
}

#[test]
fn mutual_exclusion_with_eight_clients() {
    const CLIENTS: usize = 8;
    const ROUNDS: usize = 200;
    let s = Server::start();
    let in_section = Arc::new(AtomicBool::new(false));
    // Tokens in the order the critical sections ran (pushed inside the section).
    let order = Arc::new(Mutex::new(Vec::<(usize, i64)>::with_capacity(
        CLIENTS * ROUNDS,
    )));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let mut c = s.conn();
            let (in_section, order) = (in_section.clone(), order.clone());
            thread::spawn(move || {
                let owner = format!("client-{n}");
                for _ in 0..ROUNDS {
                    let token = lock(&mut c, "mutex", &owner, 10_000, Some(0))
                        .expect("WAIT 0 never gives up");
                    assert!(
                        !in_section.swap(true, Ordering::SeqCst),
                        "two critical sections overlap"
                    );
                    order.lock().unwrap().push((n, token));
                    // A read-modify-write that would lose updates without the lock.
                    let v: i64 = redis::cmd("GET")
                        .arg("counter")
                        .query::<Option<i64>>(&mut c)
                        .unwrap()
                        .unwrap_or(0);
                    let _: () = redis::cmd("SET")
                        .arg("counter")
                        .arg(v + 1)
                        .query(&mut c)
                        .unwrap();
                    in_section.store(false, Ordering::SeqCst);
                    assert_eq!(unlock(&mut c, "mutex", &owner), 1, "the holder unlocks");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let mut c = s.conn();
    let order = order.lock().unwrap();
    assert_eq!(order.len(), CLIENTS * ROUNDS);
    assert!(
        order.windows(2).all(|w| w[0].1 < w[1].1),
        "tokens strictly increase in acquisition order"
    );
    let counter: i64 = redis::cmd("GET").arg("counter").query(&mut c).unwrap();
    assert_eq!(counter, (CLIENTS * ROUNDS) as i64, "no lost update");
    assert_eq!(info(&mut c, "mutex"), None);
    // Nearly every acquisition was a hand-off to a waiter, not a retry.
    assert!(info_field(&mut c, "hacks_lock_handoffs") > (CLIENTS * ROUNDS / 2) as i64);
    assert_eq!(info_field(&mut c, "hacks_lock_busy"), 0);
    assert_eq!(info_line(&mut c, "clients", "blocked_clients"), 0);
    // FIFO in the steady state: everyone queues again right after unlocking, so between
    // two sections of one client no other client runs twice, except when that client had
    // not even re-sent its LOCK yet (it was not waiting: the scheduler of a shared 2-core
    // machine decides that). Typically 0; a random or LIFO wake-up order gives hundreds.
    // Strict arrival order is shown by `waiters_are_served_in_arrival_order_...`.
    let mut last_seen: Vec<Option<usize>> = vec![None; CLIENTS];
    let mut overtakes = 0;
    for (i, (n, _)) in order.iter().enumerate() {
        if let Some(prev) = last_seen[*n] {
            let mut counts = [0usize; CLIENTS];
            for (m, _) in &order[prev + 1..i] {
                counts[*m] += 1;
            }
            overtakes += counts.iter().filter(|&&k| k > 1).count();
        }
        last_seen[*n] = Some(i);
    }
    assert!(
        overtakes * 4 < CLIENTS * ROUNDS,
        "mostly round-robin service expected: {overtakes} overtakes"
    );
}

#[test]
fn waiters_are_served_in_arrival_order_and_nobody_barges() {
    let (s, mut c) = Server::start_with_conn();
    let t0 = lock(&mut c, "q", "holder", 60_000, None).unwrap();
    let ws: Vec<Waiter> = (0..5)
        .map(|i| queue_waiter(&s, &mut c, "q", &format!("w{i}"), 60_000))
        .collect();
    assert_eq!(waiters(&mut c, "q"), 5);
    // A newcomer without WAIT does not get in ahead of the queue.
    assert_eq!(lock(&mut c, "q", "newcomer", 1000, None), None);
    let mut last = t0;
    let mut joined = ws.into_iter();
    let mut holder = "holder".to_string();
    for i in 0..5 {
        let sent = Instant::now();
        assert_eq!(unlock(&mut c, "q", &holder), 1);
        let (got, at) = joined.next().unwrap().join();
        let token = got.unwrap().expect("granted");
        assert!(token > last, "tokens increase");
        assert!(at.duration_since(sent) < Duration::from_millis(500));
        let i_now = info(&mut c, "q").unwrap();
        assert_eq!(i_now.owner, format!("w{i}"), "FIFO");
        assert_eq!((i_now.token, i_now.waiters), (token, 4 - i as i64));
        last = token;
        holder = format!("w{i}");
    }
    assert_eq!(unlock(&mut c, "q", &holder), 1);
    assert_eq!(
        info(&mut c, "q"),
        None,
        "last unlock with nobody waiting frees it"
    );
    assert_eq!(info_field(&mut c, "hacks_lock_handoffs"), 5);
    assert_eq!(info_field(&mut c, "hacks_lock_waits"), 5);
}

#[test]
fn expiry_hands_off_within_a_few_ms_and_replicates() {
    let (master, replica) = master_and_replica();
    let mut m = master.conn();
    let mut r = replica.conn();
    lock(&mut m, "exp", "holder", 250, None).unwrap();
    let expires_at = pexpiretime(&mut m, "exp");
    let w = queue_waiter(&master, &mut m, "exp", "next", 30_000);
    let (got, _) = w.join();
    let token = got.unwrap().expect("granted at expiry");
    // A token is max(last + 1, now_ms * 1000): it tells when the hand-off happened.
    let handed_at = token / 1000;
    let late = handed_at - expires_at;
    // Measured, not a timing threshold: a loaded machine delays timers. Never early; "late"
    // bounded only generously (a missed timer would mean the 30 s WAIT ran out).
    println!("hand-off {late} ms after the holder's expiry");
    assert!(
        (0..=2_000).contains(&late),
        "hand-off {late} ms after the holder's expiry"
    );
    let new_expiry = pexpiretime(&mut m, "exp");
    assert_eq!(new_expiry, handed_at + 30_000);
    // The timer's hand-off reached the replica as an effect with the absolute expiry.
    wait_replicas(&mut m, 1);
    let ri = info(&mut r, "exp").expect("replica holds the lock");
    assert_eq!((ri.owner.as_str(), ri.token), ("next", token));
    assert_eq!(pexpiretime(&mut r, "exp"), new_expiry);
    assert_eq!(digest(&mut r, "exp"), digest(&mut m, "exp"));
}

#[test]
fn disconnect_while_waiting_leaves_the_queue() {
    let (s, mut c) = Server::start_with_conn();
    lock(&mut c, "d", "holder", 60_000, None).unwrap();
    let mut raw = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    raw.write_all(&resp(&["HACK.LOCK", "d", "gone", "1000", "WAIT", "0"]))
        .unwrap();
    wait_until("the raw waiter to queue", 5000, || {
        waiters(&mut c, "d") == 1
    });
    let w = queue_waiter(&s, &mut c, "d", "stays", 60_000);
    assert_eq!(waiters(&mut c, "d"), 2);
    drop(raw);
    wait_until("the disconnected waiter to leave", 5000, || {
        waiters(&mut c, "d") == 1
    });
    assert_eq!(unlock(&mut c, "d", "holder"), 1);
    let (got, _) = w.join();
    assert!(got.unwrap().is_some());
    assert_eq!(info(&mut c, "d").unwrap().owner, "stays");
    assert_eq!(info_field(&mut c, "hacks_lock_wait_disconnects"), 1);
    // CLIENT KILL of a waiter works the same way.
    let mut k = s.conn();
    let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut k).unwrap();
    let t = thread::spawn(move || {
        redis::cmd("HACK.LOCK")
            .arg("d")
            .arg("killed")
            .arg(100)
            .arg("WAIT")
            .arg(0)
            .query::<Option<i64>>(&mut k)
            .is_err()
    });
    wait_until("the waiter to queue", 5000, || waiters(&mut c, "d") == 1);
    cmd(&mut c, &["CLIENT", "KILL", "ID", &id.to_string()]);
    assert!(t.join().unwrap(), "a killed waiter gets no lock");
    assert_eq!(waiters(&mut c, "d"), 0);
    assert_eq!(info_field(&mut c, "hacks_lock_wait_disconnects"), 2);
    assert_eq!(info_line(&mut c, "clients", "blocked_clients"), 0);
}

#[test]
fn wait_timeout_answers_nil() {
    let (s, mut c) = Server::start_with_conn();
    lock(&mut c, "t", "holder", 60_000, None).unwrap();
    let before = (snapshot(&mut c, "t"), digest(&mut c, "t"));
    let mut w = s.conn();
    // An idle 7.0 server looks at blocked clients' timeouts only when its event loop
    // wakes, at `hz`; the module wakes it at the deadline. With hz 1 a timeout left to the
    // server's cron would take up to a second.
    cmd(&mut c, &["CONFIG", "SET", "hz", "1"]);
    for _ in 0..3 {
        let start = Instant::now();
        assert_eq!(lock(&mut w, "t", "late", 1000, Some(50)), None);
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(49) && took < Duration::from_millis(400),
            "{took:?}"
        );
    }
    assert_eq!(waiters(&mut c, "t"), 0);
    assert_eq!((snapshot(&mut c, "t"), digest(&mut c, "t")), before);
    assert_eq!(info_field(&mut c, "hacks_lock_wait_timeouts"), 3);
    assert_eq!(info_line(&mut c, "clients", "blocked_clients"), 0);
    // The connection is usable afterwards, and a timed-out waiter is never granted later.
    assert_eq!(unlock(&mut c, "t", "holder"), 1);
    assert_eq!(info(&mut c, "t"), None);
    assert!(lock(&mut w, "t", "late", 1000, Some(120)).is_some());
}

#[test]
fn multi_and_lua_make_a_single_try() {
    let (s, mut c) = Server::start_with_conn();
    lock(&mut c, "m", "holder", 60_000, None).unwrap();
    let start = Instant::now();
    let (a, b): (Option<i64>, Option<i64>) = redis::pipe()
        .atomic()
        .cmd("HACK.LOCK")
        .arg("m")
        .arg("x")
        .arg(1000)
        .arg("WAIT")
        .arg(0)
        .cmd("HACK.LOCK")
        .arg("free")
        .arg("x")
        .arg(1000)
        .arg("WAIT")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(a, None, "held: nil at once inside MULTI");
    assert!(b.is_some(), "free: acquired inside MULTI");
    let script = "return redis.call('HACK.LOCK', KEYS[1], ARGV[1], 1000, 'WAIT', 0)";
    assert_eq!(cmd(&mut c, &["EVAL", script, "1", "m", "y"]), Value::Nil);
    let v = cmd(&mut c, &["EVAL", script, "1", "free2", "y"]);
    assert!(matches!(v, Value::Int(_)), "{v:?}");
    assert!(start.elapsed() < Duration::from_secs(2), "nothing blocked");
    assert_eq!(waiters(&mut c, "m"), 0);
    assert_eq!(info_field(&mut c, "hacks_lock_waits"), 0);
    // UNLOCK inside a script hands off to a waiter like a plain call.
    let w = queue_waiter(&s, &mut c, "m", "waiting", 5_000);
    let v = cmd(
        &mut c,
        &[
            "EVAL",
            "return redis.call('HACK.UNLOCK', KEYS[1], 'holder')",
            "1",
            "m",
        ],
    );
    assert_eq!(int(&v), 1);
    assert!(w.join().0.unwrap().is_some());
    assert_eq!(info(&mut c, "m").unwrap().owner, "waiting");
}

#[test]
fn del_of_a_held_lock_frees_it_for_the_queue() {
    let (s, mut c) = Server::start_with_conn();
    let t1 = lock(&mut c, "del", "holder", 60_000, None).unwrap();
    // No waiters: DEL frees the lock; the next acquisition still gets a larger token.
    cmd(&mut c, &["DEL", "del"]);
    assert_eq!(info(&mut c, "del"), None);
    let t2 = lock(&mut c, "del", "other", 60_000, None).unwrap();
    assert!(t2 > t1);
    // With waiters: the first one gets it right away, not when the old TTL runs out.
    let w1 = queue_waiter(&s, &mut c, "del", "w1", 60_000);
    let w2 = queue_waiter(&s, &mut c, "del", "w2", 60_000);
    let start = Instant::now();
    cmd(&mut c, &["DEL", "del"]);
    let t3 = w1.join().0.unwrap().expect("granted after DEL");
    assert!(start.elapsed() < Duration::from_millis(500));
    assert!(t3 > t2);
    assert_eq!(info(&mut c, "del").unwrap().waiters, 1);
    // DEL and a newcomer in one transaction: the queue still comes first.
    let (_, newcomer): (i64, Option<i64>) = redis::pipe()
        .atomic()
        .cmd("DEL")
        .arg("del")
        .cmd("HACK.LOCK")
        .arg("del")
        .arg("newcomer")
        .arg(1000)
        .query(&mut c)
        .unwrap();
    assert_eq!(newcomer, None, "no barging past the queue");
    let t4 = w2.join().0.unwrap().expect("w2 granted");
    assert!(t4 > t3);
    assert_eq!(info(&mut c, "del").unwrap().owner, "w2");
    // FLUSHALL with a waiter: it gets the lock too.
    let w3 = queue_waiter(&s, &mut c, "del", "w3", 60_000);
    cmd(&mut c, &["FLUSHALL"]);
    assert!(w3.join().0.unwrap().expect("granted after FLUSHALL") > t4);
    // A key overwritten with another type under the waiters (no event for that): they
    // get WRONGTYPE when the old holder's TTL would have run out.
    assert_eq!(int(&cmd(&mut c, &["HACK.EXTEND", "del", "w3", "200"])), 1);
    let w4 = queue_waiter(&s, &mut c, "del", "w4", 60_000);
    cmd(&mut c, &["SET", "del", "plain"]);
    let e = w4.join().0.unwrap_err();
    assert!(e.starts_with("WRONGTYPE"), "{e}");
    assert_eq!(info_line(&mut c, "clients", "blocked_clients"), 0);
}

#[test]
fn tokens_only_go_up_across_delete_and_restart() {
    let mut s = Server::with(Opts::aof_without_preamble());
    let mut c = s.conn();
    let mut seen = vec![];
    fn take(c: &mut Connection, seen: &mut Vec<i64>) {
        let t = lock(c, "tok", "o", 60_000, None).unwrap();
        seen.push(t);
    }
    take(&mut c, &mut seen);
    unlock(&mut c, "tok", "o");
    take(&mut c, &mut seen);
    cmd(&mut c, &["DEL", "tok"]);
    take(&mut c, &mut seen);
    cmd(&mut c, &["HACK.EXTEND", "tok", "o", "1"]);
    sleep(Duration::from_millis(10));
    take(&mut c, &mut seen);
    unlock(&mut c, "tok", "o");
    // A token far ahead of the clock (as if many were handed out, or the clock stepped
    // back), seen only through the AOF, on a key that was deleted again.
    drop(c);
    s.kill();
    let aof_dir = s.dir.join("appendonlydir");
    let incr = fs::read_dir(&aof_dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with(".incr.aof"))
        .expect("incremental AOF file");
    // Far above every token so far, yet one a clock could make (30 days ahead): tokens no
    // clock could make are refused (see ids_no_clock_made_are_refused).
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let high: i64 = now_us + 30 * 86_400_000_000;
    let mut f = fs::OpenOptions::new().append(true).open(&incr).unwrap();
    f.write_all(&resp(&["SELECT", "0"])).unwrap();
    f.write_all(&resp(&["HACK.LOCKSET", "other", "x", &high.to_string()]))
        .unwrap();
    f.write_all(&resp(&["DEL", "other"])).unwrap();
    drop(f);
    s.restart();
    let mut c = s.conn();
    take(&mut c, &mut seen);
    assert!(*seen.last().unwrap() > high, "AOF replay raised the mark");
    unlock(&mut c, "tok", "o");
    // RDB round trip with no lock left: the mark travels as module aux data.
    cmd(&mut c, &["DEBUG", "RELOAD"]);
    take(&mut c, &mut seen);
    unlock(&mut c, "tok", "o");
    // A rewritten AOF with an RDB preamble, then a restart.
    cmd(&mut c, &["CONFIG", "SET", "aof-use-rdb-preamble", "yes"]);
    cmd(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite(&mut c);
    drop(c);
    s.restart();
    let mut c = s.conn();
    take(&mut c, &mut seen);
    // A held lock survives a restart from RDB with owner, token and absolute expiry.
    let held = (
        info(&mut c, "tok").unwrap().token,
        pexpiretime(&mut c, "tok"),
    );
    cmd(&mut c, &["SAVE"]);
    drop(c);
    s.opts.aof = false;
    s.restart();
    let mut c = s.conn();
    let i = info(&mut c, "tok").expect("held lock survives");
    assert_eq!((i.owner.as_str(), i.token), ("o", held.0));
    assert_eq!(pexpiretime(&mut c, "tok"), held.1);
    unlock(&mut c, "tok", "o");
    take(&mut c, &mut seen);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "tokens strictly increase: {seen:?}");
}

/// Token, absolute expiry and digest of the locks `p` and `q`.
fn lock_states(c: &mut Connection) -> Vec<(i64, i64, Option<String>)> {
    ["p", "q"]
        .iter()
        .map(|k| (info(c, k).unwrap().token, pexpiretime(c, k), digest(c, k)))
        .collect()
}

#[test]
fn persistence_copies_and_memory() {
    let mut s = Server::with(Opts::aof());
    let mut c = s.conn();
    lock(&mut c, "p", "owner\r\nwith\0bytes", 60_000, None).unwrap();
    lock(&mut c, "q", "short", 3_600_000, None).unwrap();
    let before = lock_states(&mut c);
    drop(c);
    s.restart();
    let mut c = s.conn();
    let after = lock_states(&mut c);
    assert_eq!(before, after, "AOF replay");
    assert_eq!(info(&mut c, "p").unwrap().owner, "owner\r\nwith\0bytes");
    cmd(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite(&mut c);
    drop(c);
    s.restart();
    let mut c = s.conn();
    let rewritten = lock_states(&mut c);
    assert_eq!(before, rewritten, "rewritten AOF");
    let dump: Vec<u8> = redis::cmd("DUMP").arg("q").query(&mut c).unwrap();
    let _: () = redis::cmd("RESTORE")
        .arg("q2")
        .arg(before[1].1)
        .arg(dump)
        .arg("ABSTTL")
        .query(&mut c)
        .unwrap();
    assert_eq!(digest(&mut c, "q2"), before[1].2);
    assert_eq!(pexpiretime(&mut c, "q2"), before[1].1);
    assert_eq!(int(&cmd(&mut c, &["COPY", "q", "q3"])), 1);
    assert_eq!(digest(&mut c, "q3"), before[1].2);
    assert_eq!(pexpiretime(&mut c, "q3"), before[1].1);
    assert_eq!(unlock(&mut c, "q3", "short"), 1);
    assert!(info(&mut c, "q").is_some(), "the copy is a lock of its own");
    let used = int(&cmd(&mut c, &["MEMORY", "USAGE", "p"]));
    assert!(used > 20, "MEMORY USAGE: {used}");
}

/// Locks, renewals, extensions, unlocks and hand-offs of every kind on several keys.
fn workload(s: &Server, c: &mut Connection) {
    for i in 0..40 {
        let k = format!("lk:{}", i % 7);
        lock(c, &k, &format!("o{}", i % 3), 60_000 + i, None);
        if i % 4 == 0 {
            cmd(c, &["HACK.EXTEND", &k, &format!("o{}", i % 3), "90000"]);
        }
        if i % 5 == 0 {
            unlock(c, &k, &format!("o{}", i % 3));
        }
    }
    // Hand-off on UNLOCK, on expiry (timer) and on DEL.
    lock(c, "h:unlock", "a", 60_000, None).unwrap();
    let w = queue_waiter(s, c, "h:unlock", "b", 60_000);
    unlock(c, "h:unlock", "a");
    w.join().0.unwrap().unwrap();
    lock(c, "h:expiry", "a", 100, None).unwrap();
    let w = queue_waiter(s, c, "h:expiry", "b", 60_000);
    w.join().0.unwrap().unwrap();
    lock(c, "h:del", "a", 60_000, None).unwrap();
    let w = queue_waiter(s, c, "h:del", "b", 60_000);
    cmd(c, &["DEL", "h:del"]);
    w.join().0.unwrap().unwrap();
    // Lua: effects only.
    cmd(
        c,
        &[
            "EVAL",
            "redis.call('HACK.LOCK', KEYS[1], 'lua', 70000) return redis.call('HACK.EXTEND', KEYS[1], 'lua', 80000)",
            "1",
            "h:lua",
        ],
    );
}

fn all_locks(c: &mut Connection) -> BTreeMap<String, (String, i64, i64, Option<String>)> {
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(c).unwrap();
    keys.into_iter()
        .map(|k| {
            let i = info(c, &k).unwrap();
            let v = (i.owner, i.token, pexpiretime(c, &k), digest(c, &k));
            (k, v)
        })
        .collect()
}

#[test]
fn replica_holds_exactly_the_masters_locks() {
    let (master, replica) = master_and_replica();
    let mut m = master.conn();
    let mut r = replica.conn();
    workload(&master, &mut m);
    wait_replicas(&mut m, 1);
    let on_master = all_locks(&mut m);
    assert!(on_master.len() >= 8, "{on_master:?}");
    assert_eq!(on_master, all_locks(&mut r));
    let dm: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut m).unwrap();
    let dr: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut r).unwrap();
    assert_eq!(dm, dr, "same keys, values and expiry times");
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut r)
        .unwrap();
    let stats = stats.to_ascii_lowercase();
    // LOCK and EXTEND read the clock: only their effect travels. A plain UNLOCK is
    // deterministic and travels as itself.
    for never in ["hack.lock:", "hack.extend"] {
        assert!(
            !stats.contains(&format!("cmdstat_{never}")),
            "{never} must arrive as an effect:\n{stats}"
        );
    }
    assert!(stats.contains("cmdstat_hack.lockset:"), "{stats}");
    // Writes are refused on the replica; LOCKINFO works there.
    let e = expect_err(&mut r, &["HACK.LOCK", "x", "o", "100"]);
    assert!(e.starts_with("READONLY"), "{e}");
    // A promoted replica continues the tokens where the master left them.
    let last = on_master.values().map(|v| v.1).max().unwrap();
    cmd(&mut r, &["REPLICAOF", "NO", "ONE"]);
    let next = lock(&mut r, "after-failover", "o", 1000, None).unwrap();
    assert!(next > last);
}

#[test]
fn waiters_get_an_error_when_the_server_stops_being_a_master() {
    let s = Server::start();
    let other = Server::start();
    let mut c = s.conn();
    lock(&mut c, "role", "holder", 60_000, None).unwrap();
    let w = queue_waiter(&s, &mut c, "role", "w", 60_000);
    cmd(&mut c, &["REPLICAOF", "127.0.0.1", &other.port.to_string()]);
    let (got, _) = w.join();
    let e = got.expect_err("an error reply");
    assert!(
        e.contains("UNBLOCKED") || e.contains("no longer a master"),
        "{e}"
    );
    let mut c = s.conn();
    assert_eq!(info_line(&mut c, "clients", "blocked_clients"), 0);
}

#[test]
fn every_error_leaves_keys_unchanged() {
    let (_s, mut c) = Server::start_with_conn();
    lock(&mut c, "held", "alice", 60_000, None).unwrap();
    cmd(&mut c, &["SET", "str", "x"]);
    let before = dataset(&mut c);
    let mut cases = error_cases(
        "
        HACK.LOCK held bob           => ERR wrong number of arguments
        HACK.LOCK nokey o 0          => ERR ttl_ms must be
        HACK.LOCK nokey o -5         => ERR ttl_ms must be
        HACK.LOCK nokey o 1.5        => ERR ttl_ms must be
        HACK.LOCK nokey o +100       => ERR ttl_ms must be
        HACK.LOCK nokey o 10000000000001 => ERR ttl_ms must be
        HACK.LOCK nokey o 100 WAIT   => ERR option WAIT needs a value
        HACK.LOCK nokey o 100 WAIT -1 => ERR WAIT timeout_ms must be
        HACK.LOCK nokey o 100 WAIT x => ERR WAIT timeout_ms must be
        HACK.LOCK nokey o 100 WAIT 1 WAIT 2 => ERR option WAIT given more than once
        HACK.LOCK nokey o 100 NX     => ERR unknown option 'NX'
        HACK.LOCK str o 100          => WRONGTYPE
        HACK.LOCK str o 100 WAIT 10  => WRONGTYPE
        HACK.UNLOCK held             => ERR wrong number of arguments
        HACK.UNLOCK held alice x     => ERR wrong number of arguments
        HACK.UNLOCK str alice        => WRONGTYPE
        HACK.EXTEND held alice       => ERR wrong number of arguments
        HACK.EXTEND held alice 0     => ERR ttl_ms must be
        HACK.EXTEND held alice abc   => ERR ttl_ms must be
        HACK.EXTEND str alice 10     => WRONGTYPE
        HACK.LOCKINFO                => ERR wrong number of arguments
        HACK.LOCKINFO held x         => ERR wrong number of arguments
        HACK.LOCKINFO str            => WRONGTYPE
        HACK.LOCKSET held x 5        => ERR HACK.LOCKSET is internal
        HACK.LOCKSET nokey x 5 PXAT 99 => ERR HACK.LOCKSET is internal
        HACK.LOCKSET held x 0        => ERR token must be
        HACK.LOCKSET held x 5 EX 1   => ERR unknown option 'EX'
        ",
    );
    // Empty or computed arguments.
    cases.extend([
        (
            vec!["HACK.LOCK", "nokey", "", "100"],
            "ERR owner must not be empty",
        ),
        (
            vec!["HACK.UNLOCK", "held", ""],
            "ERR owner must not be empty",
        ),
        (
            vec!["HACK.EXTEND", "held", "", "10"],
            "ERR owner must not be empty",
        ),
        (
            vec!["HACK.LOCKSET", "held", "", "5"],
            "ERR owner must not be empty",
        ),
    ]);
    expect_errors(&mut c, &cases);
    assert_eq!(dataset(&mut c), before, "a failing call changed a key");
    assert_eq!(info_field(&mut c, "hacks_panics_caught"), 0);
}

#[test]
fn metadata_and_resp3() {
    let (s, mut c) = Server::start_with_conn();
    // LOCKINFO is read-only (key spec RO): an ACL user with read-only key access may call
    // it, but not LOCK.
    cmd(&mut c, &argv("ACL SETUSER reader on nopass +@all %R~*"));
    lock(&mut c, "meta", "o", 60_000, None).unwrap();
    cmd(&mut c, &["AUTH", "reader", "x"]);
    assert!(info(&mut c, "meta").is_some());
    let e = expect_err(&mut c, &["HACK.LOCK", "meta", "o", "100"]);
    assert!(e.starts_with("NOPERM"), "{e}");
    let e = expect_err(&mut c, &["HACK.UNLOCK", "meta", "o"]);
    assert!(e.starts_with("NOPERM"), "{e}");
    let mut c3 = s.conn_resp3();
    let v = cmd(&mut c3, &["HACK.LOCKINFO", "meta"]);
    assert!(matches!(v, Value::Map(_)), "{v:?}");
    let docs = format!("{:?}", cmd(&mut c3, &["COMMAND", "DOCS", "HACK.LOCK"]));
    assert!(docs.contains("fencing token"), "{docs}");
}

fn cluster_node() -> Server {
    Server::with(crate::common::cluster::cluster_opts())
}

fn nodes_known(c: &mut Connection) -> usize {
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(c).unwrap();
    nodes
        .lines()
        .filter(|l| !l.contains("handshake") && !l.contains("noaddr") && l.contains("connected"))
        .count()
}

#[test]
fn cluster_waiters_get_an_error_when_the_slot_moves_away() {
    let a = cluster_node();
    let b = cluster_node();
    let mut ca = a.conn();
    let mut cb = b.conn();
    cmd(&mut ca, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    cmd(
        &mut ca,
        &["CLUSTER", "MEET", "127.0.0.1", &b.port.to_string()],
    );
    wait_until("the nodes to meet", 20_000, || {
        nodes_known(&mut ca) == 2 && nodes_known(&mut cb) == 2
    });
    // Both nodes: MIGRATE's RESTORE on b answers CLUSTERDOWN until b sees every slot served.
    wait_until("cluster_state:ok", 20_000, || {
        [&mut ca, &mut cb].into_iter().all(|c| {
            let i: String = redis::cmd("CLUSTER").arg("INFO").query(c).unwrap();
            i.contains("cluster_state:ok")
        })
    });
    let id_a = text(&cmd(&mut ca, &["CLUSTER", "MYID"]));
    let id_b = text(&cmd(&mut cb, &["CLUSTER", "MYID"]));
    let slot = int(&cmd(&mut ca, &["CLUSTER", "KEYSLOT", "mig"])).to_string();
    let token = lock(&mut ca, "mig", "holder", 60_000, None).unwrap();
    let expiry = pexpiretime(&mut ca, "mig");
    let w = queue_waiter(&a, &mut ca, "mig", "w", 60_000);
    cmd(&mut cb, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &id_a]);
    cmd(&mut ca, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &id_b]);
    cmd(
        &mut ca,
        &[
            "MIGRATE",
            "127.0.0.1",
            &b.port.to_string(),
            "mig",
            "0",
            "5000",
        ],
    );
    let e = w.join().0.unwrap_err();
    assert!(e.contains("no longer served by this node"), "{e}");
    cmd(&mut cb, &["CLUSTER", "SETSLOT", &slot, "NODE", &id_b]);
    cmd(&mut ca, &["CLUSTER", "SETSLOT", &slot, "NODE", &id_b]);
    // The lock moved whole: same owner and token; the expiry within the few ms MIGRATE's
    // relative TTL can shift it.
    let i = info(&mut cb, "mig").unwrap();
    assert_eq!((i.owner.as_str(), i.token), ("holder", token));
    let moved = pexpiretime(&mut cb, "mig");
    assert!((moved - expiry).abs() <= 10, "{moved} vs {expiry}");
    let e = expect_err(&mut ca, &["HACK.LOCK", "mig", "x", "100", "WAIT", "0"]);
    assert!(e.starts_with("MOVED"), "{e}");
    assert_eq!(info_field(&mut ca, "hacks_lock_wait_errors"), 1);
    assert_eq!(info_line(&mut ca, "clients", "blocked_clients"), 0);
}

#[test]
fn shortening_the_ttl_brings_the_hand_off_forward() {
    let (s, mut c) = Server::start_with_conn();
    lock(&mut c, "short", "holder", 60_000, None).unwrap();
    let w = queue_waiter(&s, &mut c, "short", "w", 60_000);
    assert_eq!(
        int(&cmd(&mut c, &["HACK.EXTEND", "short", "holder", "100"])),
        1
    );
    let expires_at = pexpiretime(&mut c, "short");
    let token = w.join().0.unwrap().expect("granted");
    let late = token / 1000 - expires_at;
    // Never early; "late" only bounded generously (the old TTL was a minute away), not a
    // timing threshold a loaded machine could miss.
    assert!((0..=2_000).contains(&late), "{late} ms late");
}

/// Many waiters at once: some time out, some disconnect, the rest get the lock one after
/// the other as each one's short TTL runs out (a chain of timer-driven hand-offs).
#[test]
fn churn_of_timeouts_disconnects_and_expiry_chains() {
    let (s, mut c) = Server::start_with_conn();
    lock(&mut c, "churn", "holder", 60_000, None).unwrap();
    let mut stayers = vec![];
    for i in 0..40 {
        let mut raw = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let owner = format!("w{i}");
        let wait = if i % 4 == 0 { "5" } else { "0" };
        let before = waiters(&mut c, "churn");
        raw.write_all(&resp(&["HACK.LOCK", "churn", &owner, "30", "WAIT", wait]))
            .unwrap();
        if i % 4 == 0 {
            // Times out after 5 ms: nil.
            let mut buf = [0u8; 16];
            let n = std::io::Read::read(&mut raw, &mut buf).unwrap();
            assert_eq!(&buf[..n], b"$-1\r\n");
            continue;
        }
        wait_until("queued", 5000, || waiters(&mut c, "churn") == before + 1);
        if i % 4 == 1 {
            drop(raw); // disconnects while waiting
            wait_until("the disconnect", 5000, || {
                waiters(&mut c, "churn") == before
            });
        } else {
            stayers.push((i, raw));
        }
    }
    assert_eq!(waiters(&mut c, "churn"), 20);
    assert_eq!(unlock(&mut c, "churn", "holder"), 1);
    // Each stayer holds it for 30 ms, then the timer passes it on: ~0.6 s in all.
    let mut last = 0;
    for (i, mut raw) in stayers {
        let mut buf = [0u8; 64];
        let n = std::io::Read::read(&mut raw, &mut buf).unwrap();
        let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
        let token: i64 = reply
            .strip_prefix(':')
            .and_then(|r| r.trim().parse().ok())
            .unwrap_or_else(|| panic!("w{i}: {reply:?}"));
        assert!(token > last, "in queue order");
        last = token;
    }
    wait_until("the last lock to expire", 5000, || {
        info(&mut c, "churn").is_none()
    });
    assert_eq!(info_field(&mut c, "hacks_lock_waits"), 40);
    assert_eq!(info_field(&mut c, "hacks_lock_wait_timeouts"), 10);
    assert_eq!(info_field(&mut c, "hacks_lock_wait_disconnects"), 10);
    assert_eq!(info_field(&mut c, "hacks_lock_handoffs"), 20);
    assert_eq!(info_field(&mut c, "hacks_panics_caught"), 0);
    assert_eq!(info_line(&mut c, "clients", "blocked_clients"), 0);
}

#[test]
fn locks_in_other_databases_are_separate() {
    let (s, mut c0) = Server::start_with_conn();
    let mut c2 = s.conn();
    cmd(&mut c2, &["SELECT", "2"]);
    lock(&mut c0, "same", "db0-holder", 60_000, None).unwrap();
    lock(&mut c2, "same", "db2-holder", 150, None).unwrap();
    let expires_at = pexpiretime(&mut c2, "same");
    let mut w = s.conn();
    cmd(&mut w, &["SELECT", "2"]);
    let t = thread::spawn(move || lock(&mut w, "same", "db2-waiter", 60_000, Some(0)));
    wait_until("the db 2 waiter", 5000, || waiters(&mut c2, "same") == 1);
    assert_eq!(waiters(&mut c0, "same"), 0);
    // The timer fires in db 2, where the waiter is.
    let token = t.join().unwrap().expect("granted in db 2");
    assert!((0..=2_000).contains(&(token / 1000 - expires_at)));
    assert_eq!(info(&mut c2, "same").unwrap().owner, "db2-waiter");
    assert_eq!(info(&mut c0, "same").unwrap().owner, "db0-holder");
}

#[test]
fn rename_away_frees_the_name_for_its_waiters() {
    let (s, mut c) = Server::start_with_conn();
    let t1 = lock(&mut c, "r1", "holder", 60_000, None).unwrap();
    let w = queue_waiter(&s, &mut c, "r1", "w", 60_000);
    let start = Instant::now();
    cmd(&mut c, &["RENAME", "r1", "r2"]);
    let t2 = w.join().0.unwrap().expect("granted after RENAME");
    assert!(start.elapsed() < Duration::from_millis(500) && t2 > t1);
    assert_eq!(info(&mut c, "r1").unwrap().owner, "w");
    assert_eq!(info(&mut c, "r2").unwrap().owner, "holder");
}

#[test]
fn info_shows_waiters_now() {
    let (s, mut c) = Server::start_with_conn();
    lock(&mut c, "g", "holder", 60_000, None).unwrap();
    assert_eq!(info_field(&mut c, "hacks_lock_waiters_now"), 0);
    let w = queue_waiter(&s, &mut c, "g", "next", 60_000);
    assert_eq!(info_field(&mut c, "hacks_lock_waiters_now"), 1);
    assert_eq!(unlock(&mut c, "g", "holder"), 1);
    assert!(w.join().0.unwrap().is_some());
    assert_eq!(info_field(&mut c, "hacks_lock_waiters_now"), 0);
}
