//! Every command family on a real Redis Cluster (3 masters, 3 replicas): MOVED redirection
//! from any node, CROSSSLOT for keys in different slots, hash tags, slot migration under load
//! with exact totals afterwards, waiters answered with an error when their slot moves away,
//! and a failover that keeps every write acknowledged by `WAIT 1`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::cluster::Cluster;
use crate::common::*;

fn q<T: redis::FromRedisValue>(
    c: &mut impl redis::ConnectionLike,
    args: &[&str],
) -> redis::RedisResult<T> {
    let mut r = redis::cmd(args[0]);
    for a in &args[1..] {
        r.arg(*a);
    }
    r.query(c)
}

/// Drain a buffer completely, summing values per member.
fn drain_all(
    c: &mut impl redis::ConnectionLike,
    key: &str,
) -> std::collections::BTreeMap<String, i64> {
    let mut totals = std::collections::BTreeMap::new();
    loop {
        let v: Vec<(String, i64)> = q(c, &["HACK.DRAIN", key, "COUNT", "1000"]).unwrap();
        if v.is_empty() {
            return totals;
        }
        for (m, n) in v {
            *totals.entry(m).or_insert(0) += n;
        }
    }
}

#[test]
fn families_work_through_redirects_and_reject_crossslot() {
    let mut cl = Cluster::start(3, 1);
    let mut c = cl.client();
    // Keys spread over all masters, each family through the cluster client.
    for i in 0..30 {
        let k = format!("user:{i}");
        let r: Vec<i64> = q(&mut c, &["HACK.RATEHIT", &format!("{k}:rl"), "5", "60000"]).unwrap();
        assert_eq!(r[0], 1);
        let v: i64 = q(&mut c, &["HACK.BUFINCR", &format!("{k}:buf"), "m", "2"]).unwrap();
        assert_eq!(v, 2);
        let v: i64 = q(&mut c, &["HACK.TSINCR", &format!("{k}:ts"), "3"]).unwrap();
        assert_eq!(v, 3);
        let v: i64 = q(&mut c, &["HACK.TSSUM", &format!("{k}:ts"), "-", "+"]).unwrap();
        assert_eq!(v, 3);
        let v: i64 = q(&mut c, &["HACK.TSADD", &format!("{k}:d"), "a", "b"]).unwrap();
        assert_eq!(v, 1);
        let v: i64 = q(&mut c, &["HACK.TSCOUNT", &format!("{k}:d"), "-", "+"]).unwrap();
        assert_eq!(v, 2);
        assert_eq!(drain_all(&mut c, &format!("{k}:buf")).get("m"), Some(&2));
        let token: i64 = q(&mut c, &["HACK.LOCK", &format!("{k}:lock"), "me", "60000"]).unwrap();
        assert!(token > 0);
        let info: Value = q(&mut c, &["HACK.LOCKINFO", &format!("{k}:lock")]).unwrap();
        assert!(format!("{info:?}").contains(&token.to_string()), "{info:?}");
        let released: i64 = q(&mut c, &["HACK.UNLOCK", &format!("{k}:lock"), "me"]).unwrap();
        assert_eq!(released, 1);
    }
    // From any single node: a key it does not serve gets MOVED.
    let slot = cl.slot_of("user:7:ts");
    let owner = cl.owner_of(slot, 0);
    let other = (0..cl.nodes.len())
        .find(|i| *i != owner && cl.masters().contains(i))
        .unwrap();
    let mut direct = cl.nodes[other].conn();
    let e = q::<Value>(&mut direct, &["HACK.TSSUM", "user:7:ts", "-", "+"]).unwrap_err();
    assert!(format!("{e:?}").to_uppercase().contains("MOVED"), "{e:?}");
    // Multi-key TSSUM: different slots -> CROSSSLOT; one hash tag -> works.
    let mut any = cl.nodes[0].conn();
    let e = q::<Value>(&mut any, &["HACK.TSSUM", "a:ts", "b:ts", "-", "+"]).unwrap_err();
    assert!(
        format!("{e:?}").to_uppercase().contains("CROSSSLOT"),
        "{e:?}"
    );
    q::<i64>(&mut c, &["HACK.TSINCR", "{proj}:a", "1"]).unwrap();
    q::<i64>(&mut c, &["HACK.TSINCR", "{proj}:b", "2"]).unwrap();
    let v: Vec<i64> = q(&mut c, &["HACK.TSSUM", "{proj}:a", "{proj}:b", "-", "+"]).unwrap();
    assert_eq!(v, vec![1, 2]);
    // TSCOUNT's keys (reported through getkeys-api): UNION is not a key, and keys must share
    // a slot.
    let e = q::<Value>(&mut any, &["HACK.TSCOUNT", "a:d", "b:d", "-", "+", "UNION"]).unwrap_err();
    assert!(
        format!("{e:?}").to_uppercase().contains("CROSSSLOT"),
        "{e:?}"
    );
    q::<i64>(&mut c, &["HACK.TSADD", "{proj}:da", "x", "y"]).unwrap();
    q::<i64>(&mut c, &["HACK.TSADD", "{proj}:db", "y", "z"]).unwrap();
    let v: i64 = q(
        &mut c,
        &["HACK.TSCOUNT", "{proj}:da", "{proj}:db", "-", "+", "UNION"],
    )
    .unwrap();
    assert_eq!(v, 3);
    let slot = cl.slot_of("{proj}");
    let owner = cl.owner_of(slot, 0);
    let mut direct = cl.nodes[owner].conn();
    let v: i64 = q(
        &mut direct,
        &["HACK.TSCOUNT", "{proj}:da", "{proj}:db", "-", "+", "UNION"],
    )
    .unwrap();
    assert_eq!(
        v, 3,
        "served by the slot's owner directly (UNION is not a key)"
    );
    // HACK.QUOTA: hash-tagged keys work through the cluster client from any node (it routes
    // by the first argument, numkeys, and follows the MOVED the server answers from the key
    // specs); keys in different slots are CROSSSLOT.
    for i in 0..10 {
        let (a, b) = (format!("{{org{i}}}:proj"), format!("{{org{i}}}:org"));
        let v: Value = q(
            &mut c,
            &[
                "HACK.QUOTA",
                "2",
                &a,
                &b,
                "5",
                "60000",
                "9",
                "60000",
                "ALGO",
                "GCRA",
            ],
        )
        .unwrap();
        assert!(format!("{v:?}").contains("allowed"), "{v:?}");
        let r: Vec<i64> = q(&mut c, &["HACK.RATEHIT", &a, "5", "60000"]).unwrap();
        assert_eq!(r[2], 3, "QUOTA charged the same key RATEHIT reads");
    }
    for node in 0..cl.nodes.len() {
        if !cl.masters().contains(&node) {
            continue;
        }
        let mut direct = cl.nodes[node].conn();
        let e = q::<Value>(
            &mut direct,
            &[
                "HACK.QUOTA",
                "2",
                "a:rl",
                "b:rl",
                "5",
                "60000",
                "5",
                "60000",
            ],
        )
        .unwrap_err();
        assert!(
            format!("{e:?}").to_uppercase().contains("CROSSSLOT"),
            "{e:?}"
        );
    }
    // Fan-out of many sums across shards in one cluster pipeline (the README's example).
    let mut pipe = redis::cluster::cluster_pipe();
    for i in 0..30 {
        pipe.cmd("HACK.TSSUM")
            .arg(format!("user:{i}:ts"))
            .arg("-")
            .arg("+");
    }
    let sums: Vec<i64> = pipe.query(&mut c).unwrap();
    assert_eq!(sums, vec![3; 30]);
}

#[test]
fn slot_migration_under_load_keeps_exact_totals() {
    let mut cl = Cluster::start(3, 0);
    let slot = cl.slot_of("{mig}");
    let source = cl.owner_of(slot, 0);
    let target = cl.masters().into_iter().find(|i| *i != source).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let produced = Arc::new(Mutex::new((
        std::collections::BTreeMap::<String, i64>::new(),
        0i64,
        0i64,
        // Rows (HACK.BUFUPDATE): member -> (INCR sum, MAX).
        std::collections::BTreeMap::<String, (i64, i64)>::new(),
    )));
    let distinct = Arc::new(Mutex::new(Vec::<String>::new()));
    let sem_tokens = Arc::new(Mutex::new(Vec::<i64>::new()));
    let mut writers = vec![];
    for w in 0..3 {
        let mut c = cl.client();
        let (stop, produced) = (stop.clone(), produced.clone());
        let distinct = distinct.clone();
        let sem_tokens = sem_tokens.clone();
        writers.push(thread::spawn(move || {
            let mut n = 0u64;
            let mut last_sem = 0i64;
            while !stop.load(Ordering::Relaxed) || n < 50 {
                n += 1;
                let member = format!("m{}", (n * 7 + w) % 13);
                let inc = (n % 5) as i64 + 1;
                // Only acknowledged writes count.
                if q::<i64>(
                    &mut c,
                    &["HACK.BUFINCR", "{mig}:buf", &member, &inc.to_string()],
                )
                .is_ok()
                {
                    let mut p = produced.lock().unwrap();
                    *p.0.entry(member.clone()).or_insert(0) += inc;
                }
                let hi = (n * 31 % 1000) as i64;
                if q::<i64>(
                    &mut c,
                    &[
                        "HACK.BUFUPDATE",
                        "{mig}:rows",
                        &member,
                        "INCR",
                        "n",
                        &inc.to_string(),
                        "MAX",
                        "hi",
                        &hi.to_string(),
                    ],
                )
                .is_ok()
                {
                    let mut p = produced.lock().unwrap();
                    let e = p.3.entry(member.clone()).or_insert((0, i64::MIN));
                    e.0 += inc;
                    e.1 = e.1.max(hi);
                }
                if q::<i64>(&mut c, &["HACK.TSINCR", "{mig}:ts", &inc.to_string()]).is_ok() {
                    produced.lock().unwrap().1 += inc;
                }
                let who = format!("u{n}-{w}");
                if q::<i64>(&mut c, &["HACK.TSADD", "{mig}:d", &who]).is_ok() {
                    distinct.lock().unwrap().push(who);
                }
                // Lock and unlock: tokens handed out across the move must keep increasing.
                let owner = format!("w{w}");
                if let Ok(Some(t)) =
                    q::<Option<i64>>(&mut c, &["HACK.LOCK", "{mig}:lock", &owner, "5000"])
                {
                    let mut p = produced.lock().unwrap();
                    assert!(t > p.2, "fencing token went backwards: {t} after {}", p.2);
                    p.2 = t;
                    drop(p);
                    let _ = q::<i64>(&mut c, &["HACK.UNLOCK", "{mig}:lock", &owner]);
                }
                // Semaphore permits (limit 2): each writer's tokens keep increasing, and no
                // token is handed out twice, across the move.
                if let Ok(Some(t)) = q::<Option<i64>>(
                    &mut c,
                    &["HACK.SEMACQUIRE", "{mig}:sem", &owner, "2", "5000"],
                ) {
                    assert!(
                        t > last_sem,
                        "semaphore token went backwards: {t} after {last_sem}"
                    );
                    last_sem = t;
                    sem_tokens.lock().unwrap().push(t);
                    let _ = q::<i64>(&mut c, &["HACK.SEMRELEASE", "{mig}:sem", &owner]);
                }
                let _ = q::<Vec<i64>>(
                    &mut c,
                    &[
                        "HACK.RATEHIT",
                        "{mig}:rl",
                        "1000000",
                        "600000",
                        "ALGO",
                        "GCRA",
                    ],
                );
            }
        }));
    }
    thread::sleep(Duration::from_millis(300));
    // Move the slot: IMPORTING / MIGRATING, MIGRATE every key (module values travel as
    // DUMP payloads), then assign the slot to the target everywhere.
    cl.begin_slot_move(slot, source, target);
    let mut src = cl.nodes[source].conn();
    let slot_s = slot.to_string();
    let dst_port = cl.nodes[target].port.to_string();
    let mut moved = 0;
    loop {
        let keys: Vec<String> = q(&mut src, &["CLUSTER", "GETKEYSINSLOT", &slot_s, "100"]).unwrap();
        if keys.is_empty() {
            break;
        }
        for k in keys {
            q::<Value>(
                &mut src,
                &["MIGRATE", "127.0.0.1", &dst_port, &k, "0", "5000"],
            )
            .unwrap();
            moved += 1;
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert!(moved >= 2, "buffer and series keys moved: {moved}");
    cl.finish_slot_move(slot, target);
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(cl.owner_of(slot, 0), target);
    let mut c = cl.client();
    let (want_buf, want_ts, last_token, want_rows) = produced.lock().unwrap().clone();
    assert!(last_token > 0, "locks were taken during the move");
    let mut sems = sem_tokens.lock().unwrap().clone();
    let taken = sems.len();
    sems.sort_unstable();
    sems.dedup();
    assert!(taken > 0, "permits were taken during the move");
    assert_eq!(sems.len(), taken, "no semaphore token handed out twice");
    assert_eq!(
        drain_all(&mut c, "{mig}:buf"),
        want_buf,
        "buffer totals after migration"
    );
    let sum: i64 = q(&mut c, &["HACK.TSSUM", "{mig}:ts", "-", "+"]).unwrap();
    assert_eq!(sum, want_ts, "series sum after migration");
    // The distinct series moved with its sketches: PFCOUNT of the acknowledged members.
    let members = distinct.lock().unwrap().clone();
    for chunk in members.chunks(500) {
        let mut args = vec!["PFADD", "{mig}:check"];
        args.extend(chunk.iter().map(|m| m.as_str()));
        q::<i64>(&mut c, &args).unwrap();
    }
    let want: i64 = q(&mut c, &["PFCOUNT", "{mig}:check"]).unwrap();
    let got: i64 = q(&mut c, &["HACK.TSCOUNT", "{mig}:d", "-", "+"]).unwrap();
    assert_eq!(got, want, "distinct count after migration");
    // Rows travel with their op kinds: one drain holds every member (13 < COUNT).
    // member -> [(column, (op, value))]
    type Drained = Vec<(String, Vec<(String, (String, i64))>)>;
    let v: Drained = q(&mut c, &["HACK.DRAIN", "{mig}:rows", "COUNT", "1000"]).unwrap();
    let got: std::collections::BTreeMap<String, (i64, i64)> = v
        .into_iter()
        .map(|(m, cols)| {
            let col = |name: &str, op: &str| {
                let (_, (o, n)) = cols.iter().find(|(c, _)| c == name).unwrap();
                assert_eq!(o, op);
                *n
            };
            (m, (col("n", "INCR"), col("hi", "MAX")))
        })
        .collect();
    assert_eq!(got, want_rows, "rows after migration");
}

/// Start `args` (a call with WAIT) on its own connection to node `node`; its reply (or
/// error text) comes through the channel.
fn waiter(cl: &Cluster, node: usize, args: &[&str]) -> std::sync::mpsc::Receiver<String> {
    let mut c = cl.nodes[node].conn();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let words: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
        let r = match q::<Value>(&mut c, &words) {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("ERR {e}"),
        };
        let _ = tx.send(r);
    });
    rx
}

#[test]
fn waiters_get_an_error_when_their_slot_moves_away() {
    // Rate-limit, lock and semaphore waiters queue on the node that served their key. When
    // the slot moves (MIGRATE deletes the keys here, which looks at the queues), they cannot
    // be admitted here any more: each is answered with an error naming the move, not left
    // waiting for a key this node no longer has.
    let cl = Cluster::start(3, 0);
    let slot = cl.slot_of("{w}");
    let source = cl.owner_of(slot, 0);
    let target = (0..3).find(|i| *i != source).unwrap();
    let mut c = cl.nodes[source].conn();
    q::<Vec<i64>>(&mut c, &["HACK.RATEHIT", "{w}:rl", "1", "3600000"]).unwrap();
    q::<i64>(&mut c, &["HACK.LOCK", "{w}:lk", "a", "60000"]).unwrap();
    q::<i64>(&mut c, &["HACK.SEMACQUIRE", "{w}:sem", "a", "1", "60000"]).unwrap();
    let rl = waiter(
        &cl,
        source,
        &["HACK.RATEHIT", "{w}:rl", "1", "3600000", "WAIT", "20000"],
    );
    let lk = waiter(
        &cl,
        source,
        &["HACK.LOCK", "{w}:lk", "b", "60000", "WAIT", "20000"],
    );
    let sem = waiter(
        &cl,
        source,
        &[
            "HACK.SEMACQUIRE",
            "{w}:sem",
            "b",
            "1",
            "60000",
            "WAIT",
            "20000",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut c, "hacks_ratelimit_waiters_now") < 1
        || info_field(&mut c, "hacks_lock_waiters_now") < 1
        || info_field(&mut c, "hacks_sem_waiters_now") < 1
    {
        assert!(Instant::now() < deadline, "waiters never queued");
        thread::sleep(Duration::from_millis(5));
    }
    cl.begin_slot_move(slot, source, target);
    let dst_port = cl.nodes[target].port.to_string();
    for k in ["{w}:rl", "{w}:lk", "{w}:sem"] {
        q::<Value>(&mut c, &["MIGRATE", "127.0.0.1", &dst_port, k, "0", "5000"]).unwrap();
    }
    let start = Instant::now();
    for (what, rx) in [("rate limit", rl), ("lock", lk), ("semaphore", sem)] {
        let r = rx.recv_timeout(Duration::from_secs(15)).unwrap();
        assert!(
            r.starts_with("ERR") && r.contains("slot"),
            "{what} waiter told of the move: {r}"
        );
    }
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "not by their timeouts"
    );
    for k in [
        "hacks_ratelimit_waiters_now",
        "hacks_lock_waiters_now",
        "hacks_sem_waiters_now",
    ] {
        assert_eq!(info_field(&mut c, k), 0, "{k}");
    }
    cl.finish_slot_move(slot, target);
    // The keys arrived whole: the holder still holds, the limit is still spent.
    let mut d = cl.nodes[target].conn();
    let v: Vec<i64> = q(&mut d, &["HACK.RATEHIT", "{w}:rl", "1", "3600000", "PEEK"]).unwrap();
    assert_eq!(v[0], 0, "the charge moved with the key: {v:?}");
    let info: Value = q(&mut d, &["HACK.LOCKINFO", "{w}:lk"]).unwrap();
    assert!(format!("{info:?}").contains('a'), "{info:?}");
}

#[test]
fn failover_keeps_writes_acknowledged_by_wait() {
    let mut cl = Cluster::start(3, 1);
    let slot = cl.slot_of("{fo}");
    let owner = cl.owner_of(slot, 0);
    let mut m = cl.nodes[owner].conn();
    let mut total = 0;
    for i in 0..50 {
        q::<i64>(
            &mut m,
            &["HACK.BUFINCR", "{fo}:buf", &format!("m{}", i % 5), "2"],
        )
        .unwrap();
        q::<i64>(&mut m, &["HACK.TSINCR", "{fo}:ts", "3"]).unwrap();
        total += 3;
    }
    q::<Vec<i64>>(
        &mut m,
        &["HACK.RATEHIT", "{fo}:rl", "100", "600000", "COST", "40"],
    )
    .unwrap();
    q::<Value>(
        &mut m,
        &["HACK.DRAIN", "{fo}:buf", "COUNT", "2", "LEASE", "600000"],
    )
    .unwrap();
    let token: i64 = q(&mut m, &["HACK.LOCK", "{fo}:lock", "holder", "600000"]).unwrap();
    let acked: i64 = q(&mut m, &["WAIT", "1", "20000"]).unwrap();
    assert!(acked >= 1, "no replica acknowledged");
    let info_before: Value = q(&mut m, &["HACK.BUFINFO", "{fo}:buf"]).unwrap();
    drop(m);
    cl.nodes[owner].kill();
    // The replica takes over.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let live: Vec<usize> = (0..cl.nodes.len()).filter(|i| *i != owner).collect();
        let new_owner = {
            let via = live[0];
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cl.owner_of(slot, via))).ok()
        };
        if let Some(o) = new_owner {
            if o != owner {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no failover");
        thread::sleep(Duration::from_millis(100));
    }
    let live: Vec<&Server> = cl
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != owner)
        .map(|(_, n)| n)
        .collect();
    cl.wait_ok(&live);
    let mut c = cl.client();
    let sum: i64 = q(&mut c, &["HACK.TSSUM", "{fo}:ts", "-", "+"]).unwrap();
    assert_eq!(sum, total);
    let rl: String = q(&mut c, &["GET", "{fo}:rl"]).unwrap();
    assert_eq!(rl, "40");
    let info_after: Value = q(&mut c, &["HACK.BUFINFO", "{fo}:buf"]).unwrap();
    let strip = |v: &Value| format!("{v:?}").replace(|ch: char| ch.is_ascii_digit(), "");
    assert_eq!(
        strip(&info_before),
        strip(&info_after),
        "pending members and the leased batch survived"
    );
    // The lock survived with its owner and token; a new acquisition gets a higher token.
    let info: Value = q(&mut c, &["HACK.LOCKINFO", "{fo}:lock"]).unwrap();
    let text = format!("{info:?}");
    assert!(
        text.contains("holder") && text.contains(&token.to_string()),
        "{text}"
    );
    let _: i64 = q(&mut c, &["HACK.UNLOCK", "{fo}:lock", "holder"]).unwrap();
    let next: i64 = q(&mut c, &["HACK.LOCK", "{fo}:lock", "other", "1000"]).unwrap();
    assert!(next > token, "token after failover {next} <= {token}");
    // Clients continue on the new master.
    let v: i64 = q(&mut c, &["HACK.TSINCR", "{fo}:ts", "1"]).unwrap();
    assert!(v >= 1);
}
