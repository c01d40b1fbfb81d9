//! `WAIT timeout_ms` on HACK.RATEHIT and HACK.QUOTA against a real server: FIFO order of
//! 50 waiters at 100 admissions/s (admission latency measured and printed), timeouts,
//! disconnects, CLIENT UNBLOCK, wake-ups by refunds and DEL, several waiters admitted by
//! one refund, the head-of-all-queues rule for multi-key waiters, no barging by calls
//! without WAIT, the MULTI/Lua fallback, and replica / AOF replay after a run with waiters.

use std::sync::mpsc;
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use super::quota::{decode, quota};
use super::start_away_from_window_edge;
use crate::common::*;

const H: &str = "3600000";

fn wait_for(c: &mut Connection, field: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(c, field) != want {
        assert!(Instant::now() < deadline, "{field} never reached {want}");
        sleep(Duration::from_millis(2));
    }
}

fn ratehit(c: &mut Connection, args: &[&str]) -> Vec<i64> {
    let mut r = redis::cmd("HACK.RATEHIT");
    for a in args {
        r.arg(*a);
    }
    r.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Start a client blocked on `args` (a RATEHIT or QUOTA call with WAIT); its reply comes
/// through the channel. Returns once the server counts it as waiting (`waits` blocked calls
/// in total).
fn blocked(
    s: &Server,
    probe: &mut Connection,
    args: Vec<String>,
    waits: i64,
) -> (i64, mpsc::Receiver<(Value, Instant)>) {
    let mut c = s.conn();
    let id = int(&cmd(&mut c, &["CLIENT", "ID"]));
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut r = redis::cmd(&args[0]);
        for a in &args[1..] {
            r.arg(a);
        }
        let v: Value = r
            .query(&mut c)
            .unwrap_or_else(|e| Value::SimpleString(format!("ERR {e}")));
        let _ = tx.send((v, Instant::now()));
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(probe, "hacks_ratelimit_waits") != waits {
        if let Ok(early) = rx.try_recv() {
            panic!("answered without waiting: {early:?}");
        }
        assert!(Instant::now() < deadline, "never blocked");
        sleep(Duration::from_millis(2));
    }
    (id, rx)
}

fn words(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn ints(v: &Value) -> Vec<i64> {
    match v {
        Value::Array(a) => a.iter().map(int).collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn fifo_of_50_waiters_at_100_per_second() {
    let (s, mut c) = Server::start_with_conn();
    // 100 per second, burst 1: one admission every 10 ms.
    let a = ["fifo", "100", "1000", "ALGO", "GCRA", "BURST", "1"];
    assert_eq!(ratehit(&mut c, &a)[0], 1);
    let mut rxs = Vec::new();
    for i in 0..50 {
        let mut args = vec!["HACK.RATEHIT".to_string()];
        args.extend(words(&a));
        args.extend(words(&["WAIT", "20000"]));
        let (_, rx) = blocked(&s, &mut c, args, i + 1);
        rxs.push(rx);
    }
    let mut arrivals: Vec<(Instant, usize)> = rxs
        .into_iter()
        .enumerate()
        .map(|(i, rx)| {
            let (v, at) = rx.recv_timeout(Duration::from_secs(20)).expect("admitted");
            assert_eq!(ints(&v)[0], 1, "waiter {i}: {v:?}");
            (at, i)
        })
        .collect();
    arrivals.sort();
    let order: Vec<usize> = arrivals.iter().map(|a| a.1).collect();
    assert_eq!(order, (0..50).collect::<Vec<_>>(), "FIFO");
    // Each admission is due 10 ms after the previous one: lateness = interval - 10 ms
    // (measured at the clients, so it includes their wake-up; the last 30 were all queued).
    let mut late: Vec<f64> = arrivals
        .windows(2)
        .skip(19)
        .map(|w| (w[1].0 - w[0].0).as_secs_f64() * 1000.0 - 10.0)
        .collect();
    late.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let med = late[late.len() / 2];
    let p90 = late[late.len() * 9 / 10];
    println!(
        "WAIT admission lateness vs computed moment (ms): median {med:.2}, p90 {p90:.2}, max {:.2}",
        late[late.len() - 1]
    );
    assert!(
        med < 20.0,
        "admissions are scheduled, not polled: median {med}"
    );
    assert_eq!(info_field(&mut c, "hacks_ratelimit_waits_admitted"), 50);
    assert_eq!(info_field(&mut c, "hacks_ratelimit_waiters_now"), 0);
}

#[test]
fn timeout_answers_denied_and_charges_nothing() {
    let (_s, mut c) = start_away_from_window_edge(3_600_000);
    ratehit(&mut c, &["t", "1", H]);
    let before = snapshot(&mut c, "t");
    let start = Instant::now();
    let v = ratehit(&mut c, &["t", "1", H, "WAIT", "150"]);
    let took = start.elapsed();
    assert_eq!(v[..3], [0, 1, 0]);
    assert!(v[3] > 0, "retry_after_ms of the timeout moment: {v:?}");
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(snapshot(&mut c, "t"), before);
    let q = quota(&mut c, &["2", "t", "t2", "1", H, "5", H, "WAIT", "50"]);
    assert_eq!((q.allowed, q.denied.clone()), (0, vec![0]));
    assert_eq!(cmd(&mut c, &["EXISTS", "t2"]), Value::Int(0));
    assert_eq!(info_field(&mut c, "hacks_ratelimit_waits_timed_out"), 2);
    assert_eq!(info_field(&mut c, "hacks_ratelimit_waiters_now"), 0);
    // A cost that can never be admitted does not wait.
    let start = Instant::now();
    let v = ratehit(&mut c, &["t", "1", H, "COST", "2", "WAIT", "5000"]);
    assert_eq!((v[0], v[3]), (0, -1));
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn disconnect_and_client_unblock_leave_uncharged() {
    let (s, mut c) = start_away_from_window_edge(3_600_000);
    ratehit(&mut c, &["d", "1", H]);
    let w = |n| {
        let mut v = vec!["HACK.RATEHIT".to_string()];
        v.extend(words(&["d", "1", H, "WAIT", "30000"]));
        let _ = n;
        v
    };
    let (id1, _rx1) = blocked(&s, &mut c, w(1), 1);
    let (id2, rx2) = blocked(&s, &mut c, w(2), 2);
    assert_eq!(info_field(&mut c, "hacks_ratelimit_waiters_now"), 2);
    cmd(&mut c, &["CLIENT", "KILL", "ID", &id1.to_string()]);
    wait_for(&mut c, "hacks_ratelimit_waits_disconnected", 1);
    assert_eq!(info_field(&mut c, "hacks_ratelimit_waiters_now"), 1);
    cmd(&mut c, &["CLIENT", "UNBLOCK", &id2.to_string()]);
    let (v, _) = rx2.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        ints(&v)[0],
        0,
        "CLIENT UNBLOCK answers the denied verdict: {v:?}"
    );
    assert_eq!(info_field(&mut c, "hacks_ratelimit_waiters_now"), 0);
    // Neither was charged: a refund of one frees exactly the one hit there was.
    let r = ratehit(&mut c, &["d", "1", H, "COST", "-1"]);
    assert_eq!(r[2], 1);
    assert_eq!(cmd(&mut c, &["EXISTS", "d"]), Value::Int(0));
}

#[test]
fn one_refund_admits_three_at_once_and_del_wakes() {
    let (s, mut c) = start_away_from_window_edge(3_600_000);
    ratehit(&mut c, &["r", "3", H, "COST", "3"]);
    let mut rxs = Vec::new();
    for i in 0..3 {
        let mut v = vec!["HACK.RATEHIT".to_string()];
        v.extend(words(&["r", "3", H, "WAIT", "30000"]));
        rxs.push(blocked(&s, &mut c, v, i + 1).1);
    }
    // A call without WAIT does not barge ahead of the queue.
    assert_eq!(ratehit(&mut c, &["r", "3", H])[0], 0);
    let start = Instant::now();
    ratehit(&mut c, &["r", "3", H, "COST", "-3"]);
    for rx in rxs {
        let (v, at) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(ints(&v)[0], 1, "{v:?}");
        assert!(at - start < Duration::from_secs(1));
    }
    assert_eq!(cmd(&mut c, &["GET", "r"]), Value::BulkString(b"3".to_vec()));
    // DEL frees everything: the waiter is admitted.
    let mut v = vec!["HACK.RATEHIT".to_string()];
    v.extend(words(&["r", "3", H, "COST", "2", "WAIT", "30000"]));
    let (_, rx) = blocked(&s, &mut c, v, 4);
    cmd(&mut c, &["DEL", "r"]);
    let (v, _) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(ints(&v)[..3], [1, 3, 1]);
}

#[test]
fn flushall_wakes_waiters_and_lock_waiters_alike() {
    // FLUSHALL sends no per-key events: the waiters hear of it through the server event,
    // which the module subscribes once for every family (a second subscription by one
    // family would replace the first family's).
    let (s, mut c) = start_away_from_window_edge(3_600_000);
    ratehit(&mut c, &["f", "1", H]);
    let mut v = vec!["HACK.RATEHIT".to_string()];
    v.extend(words(&["f", "1", H, "WAIT", "20000"]));
    let (_, rx) = blocked(&s, &mut c, v, 1);
    cmd(&mut c, &["HACK.LOCK", "l", "a", "60000"]);
    let mut lc = s.conn();
    let (ltx, lrx) = mpsc::channel();
    thread::spawn(move || {
        let v = cmd(&mut lc, &["HACK.LOCK", "l", "b", "60000", "WAIT", "20000"]);
        let _ = ltx.send(v);
    });
    wait_for(&mut c, "hacks_lock_waiters_now", 1);
    cmd(&mut c, &["FLUSHALL"]);
    let (v, _) = rx.recv_timeout(Duration::from_secs(15)).unwrap();
    assert_eq!(
        ints(&v)[..3],
        [1, 1, 0],
        "admitted by the flush, not timed out"
    );
    let lv = lrx.recv_timeout(Duration::from_secs(15)).unwrap();
    assert!(
        matches!(lv, Value::Int(t) if t > 0),
        "lock handed over: {lv:?}"
    );
}

#[test]
fn timeouts_racing_admissions_never_lose_a_charge() {
    // A full key (200 per hour) and 200 waiters with deadlines spread over one second, while
    // a refund every 5 ms admits the head of the queue: many waiters time out in the very
    // event-loop iteration they would be admitted in. A waiter is charged exactly when it is
    // told "allowed": the key's final count is 200 - refunds + the allowed replies.
    let (s, mut c) = start_away_from_window_edge(3_600_000);
    ratehit(&mut c, &["race", "200", H, "COST", "200"]);
    let (tx, rx) = mpsc::channel();
    let mut rng = Rng(7);
    for _ in 0..200 {
        let mut w = s.conn();
        let wait = (20 + rng.below(1000)).to_string();
        let tx = tx.clone();
        thread::spawn(move || {
            let _ = tx.send(ratehit(&mut w, &["race", "200", H, "WAIT", &wait])[0]);
        });
    }
    drop(tx);
    let mut refunds = 0;
    for _ in 0..200 {
        ratehit(&mut c, &["race", "200", H, "COST", "-1"]);
        refunds += 1;
        sleep(Duration::from_millis(5));
    }
    let replies: Vec<i64> = rx.iter().collect();
    assert_eq!(replies.len(), 200, "every waiter answered");
    let allowed = replies.iter().filter(|&&v| v == 1).count() as i64;
    let count: i64 = match cmd(&mut c, &["GET", "race"]) {
        Value::BulkString(b) => String::from_utf8(b).unwrap().parse().unwrap(),
        other => panic!("{other:?}"),
    };
    let timed_out = info_field(&mut c, "hacks_ratelimit_waits_timed_out");
    println!("race: {allowed} allowed, {timed_out} timed out, count {count}");
    assert_eq!(
        count,
        200 - refunds + allowed,
        "charged exactly the callers told allowed"
    );
    assert_eq!(
        timed_out,
        200 - allowed,
        "every other waiter timed out (none admitted unheard)"
    );
    assert_eq!(info_field(&mut c, "hacks_ratelimit_waiters_now"), 0);
}

#[test]
fn multi_key_waiter_is_not_overtaken_on_any_key() {
    let (s, mut c) = start_away_from_window_edge(3_600_000);
    ratehit(&mut c, &["x", "1", H]);
    // A waits on x (full) and y (room).
    let (_, rx_a) = blocked(
        &s,
        &mut c,
        words(&["HACK.QUOTA", "2", "x", "y", "1", H, "5", H, "WAIT", "30000"]),
        1,
    );
    // B waits on y only: behind A, though y has room.
    let (_, rx_b) = blocked(
        &s,
        &mut c,
        words(&["HACK.RATEHIT", "y", "5", H, "WAIT", "30000"]),
        2,
    );
    sleep(Duration::from_millis(50));
    assert!(rx_b.try_recv().is_err(), "B overtook A on y");
    // Without WAIT: denied while waiters are ahead (no barging), retry soon.
    let q = quota(&mut c, &["1", "y", "5", H]);
    assert_eq!((q.allowed, q.denied.clone()), (0, vec![0]));
    assert!(q.retry_after_ms >= 1);
    cmd(&mut c, &["DEL", "x"]);
    // Both are admitted in the same step (A first; the clients' threads may see their
    // replies in either order).
    let (va, _) = rx_a.recv_timeout(Duration::from_secs(5)).unwrap();
    let (vb, _) = rx_b.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(decode(&va).allowed, 1);
    assert_eq!(ints(&vb)[0], 1);
    assert_eq!(cmd(&mut c, &["GET", "y"]), Value::BulkString(b"2".to_vec()));
}

#[test]
fn multi_and_lua_do_not_block() {
    let (_s, mut c) = start_away_from_window_edge(3_600_000);
    ratehit(&mut c, &["m", "1", H]);
    let start = Instant::now();
    let (r,): (Vec<i64>,) = redis::pipe()
        .atomic()
        .cmd("HACK.RATEHIT")
        .arg("m")
        .arg(1)
        .arg(H)
        .arg("WAIT")
        .arg(5000)
        .query(&mut c)
        .unwrap();
    assert_eq!(r[0], 0);
    let v: Value = redis::cmd("EVAL")
        .arg("return redis.call('HACK.QUOTA', 1, KEYS[1], 1, ARGV[1], 'WAIT', 5000)")
        .arg(1)
        .arg("m")
        .arg(H)
        .query(&mut c)
        .unwrap();
    assert_eq!(decode(&v).allowed, 0);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "WAIT blocked inside MULTI/Lua"
    );
    assert_eq!(info_field(&mut c, "hacks_ratelimit_waits"), 0);
}

/// Waiters admitted by timers and refunds, on a master.
fn waiter_run(s: &Server, c: &mut Connection) {
    // Start of a 2 s window: the four waiters are all queued long before it turns.
    sync_to_window(c, 2000);
    ratehit(c, &["wr:a", "2", "2000", "COST", "2"]);
    ratehit(c, &["wr:b", "1", H]);
    let mut rxs = Vec::new();
    for i in 0..4 {
        let args = if i % 2 == 0 {
            words(&["HACK.RATEHIT", "wr:a", "2", "2000", "WAIT", "10000"])
        } else {
            words(&[
                "HACK.QUOTA",
                "2",
                "wr:a",
                "wr:b",
                "2",
                "2000",
                "3",
                H,
                "WAIT",
                "10000",
            ])
        };
        rxs.push(blocked(s, c, args, i + 1).1);
    }
    for rx in rxs {
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
    }
}

#[test]
fn replica_and_aof_replay_match_after_waiters() {
    let (m, r) = master_and_replica();
    let mut mc = m.conn();
    waiter_run(&m, &mut mc);
    wait_replicas(&mut mc, 1);
    let mut rc = r.conn();
    assert_eq!(dataset(&mut mc), dataset(&mut rc));
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut rc)
        .unwrap();
    assert!(
        !stats.to_lowercase().contains("cmdstat_hack.ratehit"),
        "{stats}"
    );

    let mut s = Server::with(Opts {
        aof: true,
        ..Opts::default()
    });
    let mut c = s.conn();
    waiter_run(&s, &mut c);
    let before = dataset(&mut c);
    drop(c);
    s.restart();
    let mut c = s.conn();
    assert_eq!(dataset(&mut c), before, "AOF replay");
}

#[test]
fn waiters_get_an_error_when_the_master_becomes_a_replica() {
    let s = Server::start();
    let other = Server::start();
    let mut c = s.conn();
    avoid_window_edge(&mut c, 3_600_000);
    ratehit(&mut c, &["rc", "1", H]);
    let (_, rx) = blocked(
        &s,
        &mut c,
        words(&["HACK.RATEHIT", "rc", "1", H, "WAIT", "30000"]),
        1,
    );
    cmd(&mut c, &["REPLICAOF", "127.0.0.1", &other.port.to_string()]);
    let (v, _) = rx.recv_timeout(Duration::from_secs(10)).expect("answered");
    let t = format!("{v:?}").to_uppercase();
    assert!(t.contains("ERR") || t.contains("UNBLOCKED"), "{v:?}");
    assert_eq!(info_field(&mut c, "hacks_ratelimit_waiters_now"), 0);
    cmd(&mut c, &["REPLICAOF", "NO", "ONE"]);
}
