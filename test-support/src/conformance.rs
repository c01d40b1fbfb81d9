//! The conformance kit: the checks every command family must pass, written once and called
//! by each family's tests with its own commands and workload.
//!
//! - [`errors_leave_keys_unchanged`]: every bad call answers the expected error and leaves
//!   every key exactly as it was (value or digest, and absolute expiry);
//! - [`replica_equals_master`]: after a workload on a master with a replica attached, both
//!   hold the same keys, values, expiry times and `DEBUG DIGEST`, and the replica never ran
//!   the commands that read the clock (their effects travel instead);
//! - [`survives_persistence`]: the same dataset after an AOF restart, an AOF rewrite
//!   (without RDB preamble) and restart, `DEBUG RELOAD`, and for every key `DUMP`/`RESTORE`
//!   with the same expiry and `COPY`.

use std::collections::BTreeMap;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{
    digest, expect_err, master_and_replica, pexpiretime, snapshot, wait_replicas, Connection, Opts,
    Server, Snapshot,
};

/// Every key's exact state, by name.
pub type Dataset = BTreeMap<String, Snapshot>;

pub fn dataset(c: &mut Connection) -> Dataset {
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(c).expect("KEYS");
    keys.into_iter()
        .map(|k| {
            let s = snapshot(c, &k);
            (k, s)
        })
        .collect()
}

/// Wait until a BGREWRITEAOF has finished.
pub fn wait_rewrite(c: &mut Connection) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info: String = redis::cmd("INFO")
            .arg("persistence")
            .query(c)
            .expect("INFO");
        if info.contains("aof_rewrite_in_progress:0") && !info.contains("aof_rewrite_scheduled:1") {
            return;
        }
        assert!(Instant::now() < deadline, "AOF rewrite did not finish");
        sleep(Duration::from_millis(20));
    }
}

/// Error cases written as a table, one per line: `COMMAND args... => expected error prefix`.
/// The arguments are split on whitespace, so an empty argument or one holding a space is
/// written as a slice case instead; blank lines are skipped.
pub fn error_cases(table: &str) -> Vec<(Vec<&str>, &str)> {
    table
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (args, want) = l
                .split_once(" => ")
                .unwrap_or_else(|| panic!("error case without ' => ': {l:?}"));
            (args.split_whitespace().collect(), want.trim())
        })
        .collect()
}

/// Run each `(command, expected error prefix)` case, asserting the error.
pub fn expect_errors<'a, A: AsRef<[&'a str]>>(c: &mut Connection, cases: &[(A, &str)]) {
    for (args, want) in cases {
        let args = args.as_ref();
        let got = expect_err(c, args);
        assert!(
            got.starts_with(want),
            "{args:?}: got '{got}', want '{want}'"
        );
    }
}

/// [`expect_errors`], then every key must be unchanged (the dataset is compared whole, so a
/// key a failing call created is caught too).
pub fn errors_leave_keys_unchanged<'a, A: AsRef<[&'a str]>>(
    c: &mut Connection,
    cases: &[(A, &str)],
) {
    let before = dataset(c);
    assert!(!before.is_empty(), "set up some keys first");
    expect_errors(c, cases);
    assert_eq!(dataset(c), before, "a failing call changed a key");
}

/// A master and an attached replica; `prepare` runs on the replica first (e.g. settings
/// that differ from the master's, which the replica must not apply to replicated effects),
/// then `workload` on the master. Returns both servers and the master's dataset.
pub fn replica_equals_master(
    prepare: impl FnOnce(&mut Connection),
    workload: impl FnOnce(&Server, &mut Connection),
    never_run_on_replica: &[&str],
) -> (Server, Server, Dataset) {
    let (master, replica) = master_and_replica();
    let mut m = master.conn();
    let mut r = replica.conn();
    prepare(&mut r);
    workload(&master, &mut m);
    wait_replicas(&mut m, 1);
    let on_master = dataset(&mut m);
    assert!(!on_master.is_empty(), "the workload made no keys");
    assert_eq!(on_master, dataset(&mut r), "replica differs from master");
    let dm: String = redis::cmd("DEBUG")
        .arg("DIGEST")
        .query(&mut m)
        .expect("DIGEST");
    let dr: String = redis::cmd("DEBUG")
        .arg("DIGEST")
        .query(&mut r)
        .expect("DIGEST");
    assert_eq!(dm, dr, "same keys, values and expiry times");
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut r)
        .expect("INFO");
    let stats = stats.to_ascii_lowercase();
    for never in never_run_on_replica {
        let line = format!("cmdstat_{}:", never.to_ascii_lowercase());
        assert!(
            !stats.contains(&line),
            "{never} must arrive as its effect, not as itself:\n{stats}"
        );
    }
    (master, replica, on_master)
}

/// An AOF server (`appendfsync always`, no RDB preamble): `workload`, then the dataset must
/// survive an AOF restart, a rewrite and restart, `DEBUG RELOAD`, and per key
/// `DUMP`/`RESTORE` (same expiry) and `COPY`. Returns the server and the dataset.
pub fn survives_persistence(workload: impl FnOnce(&Server, &mut Connection)) -> (Server, Dataset) {
    let mut s = Server::with(Opts::aof_without_preamble());
    let mut c = s.conn();
    workload(&s, &mut c);
    let before = dataset(&mut c);
    assert!(!before.is_empty(), "the workload made no keys");
    drop(c);
    s.restart();
    let mut c = s.conn();
    assert_eq!(dataset(&mut c), before, "AOF replay");
    redis::cmd("BGREWRITEAOF")
        .query::<String>(&mut c)
        .expect("BGREWRITEAOF");
    wait_rewrite(&mut c);
    drop(c);
    s.restart();
    let mut c = s.conn();
    assert_eq!(dataset(&mut c), before, "rewritten AOF");
    redis::cmd("DEBUG")
        .arg("RELOAD")
        .query::<()>(&mut c)
        .expect("DEBUG RELOAD");
    assert_eq!(dataset(&mut c), before, "DEBUG RELOAD");
    for k in before.keys() {
        let at = pexpiretime(&mut c, k);
        let dump: Vec<u8> = redis::cmd("DUMP").arg(k).query(&mut c).expect("DUMP");
        let mut restore = redis::cmd("RESTORE");
        restore
            .arg(format!("{k}:restored"))
            .arg(at.max(0))
            .arg(dump);
        if at > 0 {
            restore.arg("ABSTTL");
        }
        restore.query::<()>(&mut c).expect("RESTORE");
        let copied: i64 = redis::cmd("COPY")
            .arg(k)
            .arg(format!("{k}:copied"))
            .query(&mut c)
            .expect("COPY");
        assert_eq!(copied, 1);
        for other in [format!("{k}:restored"), format!("{k}:copied")] {
            assert_eq!(snapshot(&mut c, &other), before[k], "{other}");
            assert_eq!(digest(&mut c, &other), digest(&mut c, k), "{other}");
        }
    }
    (s, before)
}
