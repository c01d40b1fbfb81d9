//! Helpers for running the `hacks-flush` binary, producing increments and reading tables.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use hacks_test_support::Rng;

pub const BIN: &str = env!("CARGO_BIN_EXE_hacks-flush");

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// `{tag}-{pid}-{n}`: a name no other test of this or of another running test binary uses.
fn unique(tag: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{tag}-{}-{n}", std::process::id())
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique(&format!("hacks-flush-{tag}")));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A running worker with its stderr going to a file; killed (by pid) on drop.
pub struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    pub fn spawn(args: &[String], log: PathBuf) -> Worker {
        let file = fs::File::create(&log).expect("create worker log");
        let child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn hacks-flush");
        Worker { child, log }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped yet.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits for the exit for at most `d`.
    pub fn wait_for(&mut self, d: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + d;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            sleep(Duration::from_millis(10));
        }
    }

    /// Waits until stderr contains `text` (at least `times` times), at most `d`.
    pub fn wait_log(&mut self, text: &str, times: usize, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline {
            if self.stderr().matches(text).count() >= times {
                return true;
            }
            sleep(Duration::from_millis(10));
        }
        false
    }

    /// Like `wait_log`, panicking with the log when the text does not come.
    pub fn expect_log(&mut self, text: &str, times: usize, secs: u64) {
        let ok = self.wait_log(text, times, Duration::from_secs(secs));
        assert!(
            ok,
            "no {text:?} (x{times}) within {secs} s:\n{}",
            self.stderr()
        );
    }

    /// Sends `sig` and checks that the worker exits 0 within 2 s; returns how long it took.
    pub fn stop(&mut self, sig: i32) -> Duration {
        let t = Instant::now();
        self.signal(sig);
        let code = self.wait_for(Duration::from_secs(2)).and_then(|s| s.code());
        assert_eq!(code, Some(0), "{}", self.stderr());
        t.elapsed()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub struct Done {
    pub code: Option<i32>,
    pub stderr: String,
}

/// Runs the worker to completion (at most 60 s) and returns its exit code and stderr.
pub fn run(args: &[String], dir: &Path) -> Done {
    let log = dir.join(unique("worker") + ".log");
    let mut w = Worker::spawn(args, log);
    let status = w.wait_for(Duration::from_secs(60));
    let stderr = w.stderr();
    let status = status.unwrap_or_else(|| panic!("hacks-flush did not finish; stderr:\n{stderr}"));
    Done {
        code: status.code(),
        stderr,
    }
}

/// Asserts that a log holds `text`, showing the log when it does not.
pub fn says(log: &str, text: &str) {
    assert!(log.contains(text), "no {text:?} in:\n{log}");
}

/// Flags as owned strings.
pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

pub fn redis_url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}")
}

/// Flags from a line of words (for names and numbers: no value holds a space).
pub fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

/// The usual mapping (buffer `pending:groups` into `groups.times_seen`), then `extra` (words).
pub fn flags(redis: &str, db: &str, extra: &str) -> Vec<String> {
    let mut a = args(&["--redis", redis, "--db", db]);
    a.extend(words(
        "--buffer pending:groups --table groups --column times_seen",
    ));
    a.extend(words(extra));
    a
}

/// `HACK.BUFINCR key m1 v1 m2 v2 ...`
pub fn bufincr(con: &mut redis::Connection, key: &str, pairs: &[(&str, i64)]) {
    let mut c = redis::cmd("HACK.BUFINCR");
    c.arg(key);
    for (m, v) in pairs {
        c.arg(*m).arg(*v);
    }
    c.query::<redis::Value>(con).expect("HACK.BUFINCR");
}

/// Whether the buffer key is gone (nothing pending, nothing in flight).
pub fn buffer_gone(con: &mut redis::Connection, key: &str) -> bool {
    let exists: i64 = redis::cmd("EXISTS").arg(key).query(con).expect("EXISTS");
    exists == 0
}

/// A seed from the clock for a run's generators ([`Rng`]; seed them with `.max(1)`: a
/// xorshift seeded with 0 stays 0).
pub fn seed_from_time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

/// Producers: `threads` connections each send `calls` HACK.BUFINCR calls (1-3 pairs, members
/// 0..members, increments -5..=20) with a short pause between calls, stopping early once
/// `stop` is set; returns the totals sent.
pub fn produce(
    port: u16,
    key: &str,
    threads: usize,
    calls: usize,
    members: i64,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<BTreeMap<i64, i64>> {
    let key = key.to_string();
    std::thread::spawn(move || {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let key = key.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let client = redis::Client::open(redis_url(port)).expect("client");
                    let mut con = client.get_connection().expect("connect");
                    let mut rng = Rng(seed.wrapping_add(t as u64 * 7919).max(1));
                    let mut totals = BTreeMap::new();
                    for _ in 0..calls {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let n = rng.range(1, 4);
                        let mut c = redis::cmd("HACK.BUFINCR");
                        c.arg(&key);
                        for _ in 0..n {
                            let (m, v) = (rng.range(0, members), rng.range(-5, 21));
                            c.arg(m.to_string()).arg(v);
                            *totals.entry(m).or_insert(0) += v;
                        }
                        c.query::<redis::Value>(&mut con).expect("HACK.BUFINCR");
                        sleep(Duration::from_millis(2));
                    }
                    totals
                })
            })
            .collect();
        let mut all = BTreeMap::new();
        for h in handles {
            for (m, v) in h.join().expect("producer thread") {
                *all.entry(m).or_insert(0) += v;
            }
        }
        all
    })
}

/// Sums per id, dropping zero totals (a member whose increments cancel out may or may not
/// have a row with 0).
pub fn nonzero(m: &BTreeMap<i64, i64>) -> BTreeMap<i64, i64> {
    m.iter()
        .filter(|(_, v)| **v != 0)
        .map(|(k, v)| (*k, *v))
        .collect()
}

/// Counts log lines of batches handed out again (delivery 2 or more).
pub fn redeliveries(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| {
            l.split("delivery ")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n >= 2)
        })
        .count()
}

/// `batches_in_flight` from `HACK.BUFINFO` (0 for a missing key).
pub fn batches_in_flight(con: &mut redis::Connection, key: &str) -> i64 {
    let v: redis::Value = redis::cmd("HACK.BUFINFO")
        .arg(key)
        .query(con)
        .expect("HACK.BUFINFO");
    let redis::Value::Array(items) = v else {
        return 0;
    };
    let mut it = items.into_iter();
    while let Some(field) = it.next() {
        let value = it.next();
        if field == redis::Value::BulkString(b"batches_in_flight".to_vec()) {
            if let Some(redis::Value::Int(n)) = value {
                return n;
            }
        }
    }
    panic!("no batches_in_flight in HACK.BUFINFO {key}");
}

/// The ids of the batches in flight (`batches` of `HACK.BUFINFO`; empty for a missing key).
pub fn in_flight_ids(con: &mut redis::Connection, key: &str) -> std::collections::BTreeSet<i64> {
    use redis::Value;
    let v: Value = redis::cmd("HACK.BUFINFO")
        .arg(key)
        .query(con)
        .expect("HACK.BUFINFO");
    let mut ids = std::collections::BTreeSet::new();
    let Value::Array(items) = v else {
        return ids;
    };
    let mut it = items.into_iter();
    while let (Some(field), Some(value)) = (it.next(), it.next()) {
        if field != Value::BulkString(b"batches".to_vec()) {
            continue;
        }
        let Value::Array(batches) = value else {
            panic!("batches is {value:?}");
        };
        for b in batches {
            let Value::Array(fields) = b else {
                panic!("batch is {b:?}");
            };
            let mut f = fields.into_iter();
            while let (Some(k), Some(v)) = (f.next(), f.next()) {
                if let (Value::BulkString(k), Value::Int(id)) = (k, v) {
                    if k == b"batch_id" {
                        ids.insert(id);
                    }
                }
            }
        }
    }
    ids
}
