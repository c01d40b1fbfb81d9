//! Test harness: real `redis-server` processes on free 127.0.0.1 ports with the freshly built
//! module, each in its own temporary directory, killed (by pid) and cleaned up on drop.
//!
//! The module is never linked into a test binary: the harness runs `cargo build --release
//! --lib` once per test binary (a no-op when the `.so` is fresh) and loads the `.so`.

// As in the module: every `unsafe` block says why it is sound.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

pub use redis::{Connection, Value};

pub mod bench;
pub mod cluster;
pub mod conformance;
pub mod pairs;
pub mod resp;
pub mod rng;
pub use conformance::*;
pub use rng::Rng;

/// Path of the module, built (or confirmed fresh) once per test binary.
pub fn module_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let root = workspace_root();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--release",
                "-p",
                "redis-hacks",
                "--lib",
                "--quiet",
            ])
            .current_dir(&root)
            .status()
            .expect("run cargo build for the module");
        assert!(status.success(), "building the module failed");
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join("target"));
        let so = target.join("release").join("libredis_hacks.so");
        assert!(so.exists(), "{} missing after build", so.display());
        so
    })
}

/// The workspace root (this crate's parent folder).
pub fn workspace_root() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent().map(Path::to_path_buf).unwrap_or(dir)
}

/// The server binary the suite runs against: `HACKS_REDIS_SERVER` (set by `scripts/test`
/// for each server in turn), else `redis-server` on PATH.
pub fn server_bin() -> String {
    std::env::var("HACKS_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

/// The CLI of the same server build (`HACKS_REDIS_CLI`), else `redis-cli` on PATH.
pub fn cli_bin() -> String {
    std::env::var("HACKS_REDIS_CLI").unwrap_or_else(|_| "redis-cli".into())
}

/// How to start a server.
#[derive(Clone, Debug)]
pub struct Opts {
    /// Attach as a replica of this port.
    pub replica_of: Option<u16>,
    /// `appendonly yes` with `appendfsync always` (every write on disk before the reply).
    pub aof: bool,
    /// Load the module at startup (`--loadmodule`).
    pub load_module: bool,
    /// Arguments after the module path.
    pub module_args: Vec<String>,
    /// Extra `--name value` settings.
    pub extra: Vec<String>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            replica_of: None,
            aof: false,
            load_module: true,
            module_args: vec![],
            extra: vec![],
        }
    }
}

impl Opts {
    pub fn replica_of(port: u16) -> Self {
        Opts {
            replica_of: Some(port),
            ..Opts::default()
        }
    }
    pub fn aof() -> Self {
        Opts {
            aof: true,
            ..Opts::default()
        }
    }
    /// AOF without the RDB preamble: a rewrite writes each key as the commands the module's
    /// AOF rewrite emits, and a restart replays them.
    pub fn aof_without_preamble() -> Self {
        Opts {
            extra: vec!["--aof-use-rdb-preamble".into(), "no".into()],
            ..Opts::aof()
        }
    }
    /// A server that does not load the module (for tests that `MODULE LOAD` it themselves).
    pub fn without_module() -> Self {
        Opts {
            load_module: false,
            ..Opts::default()
        }
    }
}

pub struct Server {
    pub port: u16,
    pub dir: PathBuf,
    pub opts: Opts,
    child: Option<Child>,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

impl Server {
    pub fn start() -> Server {
        Server::with(Opts::default())
    }

    /// A server with the module and a connection to it: the set-up most tests begin with.
    pub fn start_with_conn() -> (Server, Connection) {
        let s = Server::start();
        let c = s.conn();
        (s, c)
    }

    pub fn with(opts: Opts) -> Server {
        let module = module_path();
        let dir = std::env::temp_dir().join(format!(
            "redis-hacks-test-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create server dir");
        // Another process may grab the port between our probe and the server's bind: retry.
        for _ in 0..10 {
            let mut s = Server {
                port: free_port(),
                dir: dir.clone(),
                opts: opts.clone(),
                child: None,
            };
            if s.spawn(module) {
                return s;
            }
        }
        panic!("could not start redis-server; log:\n{}", read_log(&dir));
    }

    fn args(&self, module: &Path) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "--port".into(),
            self.port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            self.dir.display().to_string(),
            "--logfile".into(),
            "redis.log".into(),
            "--save".into(),
            "".into(),
            "--daemonize".into(),
            "no".into(),
            "--enable-debug-command".into(),
            "yes".into(),
            "--enable-module-command".into(),
            "yes".into(),
            "--appendonly".into(),
            if self.opts.aof { "yes" } else { "no" }.into(),
            "--appendfsync".into(),
            "always".into(),
        ];
        if let Some(p) = self.opts.replica_of {
            a.extend(["--replicaof".into(), "127.0.0.1".into(), p.to_string()]);
        }
        if self.opts.load_module {
            a.push("--loadmodule".into());
            a.push(module.display().to_string());
            a.extend(self.opts.module_args.iter().cloned());
        }
        a.extend(self.opts.extra.iter().cloned());
        a
    }

    /// Start the process and wait until it answers PING. False if it died (port taken).
    fn spawn(&mut self, module: &Path) -> bool {
        let child = Command::new(server_bin())
            .args(self.args(module))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server (is it installed? scripts/test installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    self.child = None;
                    return false;
                }
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                if let Ok(mut con) = self.try_conn() {
                    // LOADING replies an error until the dataset is in memory.
                    if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                        return true;
                    }
                }
            }
            sleep(Duration::from_millis(10));
        }
        panic!(
            "redis-server did not come up; log:\n{}",
            read_log(&self.dir)
        );
    }

    pub fn try_conn(&self) -> redis::RedisResult<Connection> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?;
        client.get_connection_with_timeout(Duration::from_secs(5))
    }

    pub fn conn(&self) -> Connection {
        let con = self.try_conn().expect("connect to test server");
        con.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        con
    }

    /// A connection that speaks RESP3 (maps, sets and doubles in replies).
    pub fn conn_resp3(&self) -> Connection {
        let url = format!("redis://127.0.0.1:{}/?protocol=resp3", self.port);
        let client = redis::Client::open(url).expect("RESP3 client");
        client.get_connection().expect("connect with RESP3")
    }

    /// A connection authenticated as `user`.
    pub fn conn_as(&self, user: &str, password: &str) -> Connection {
        let mut c = self.conn();
        redis::cmd("AUTH")
            .arg(user)
            .arg(password)
            .query::<()>(&mut c)
            .unwrap_or_else(|e| panic!("AUTH {user}: {e}"));
        c
    }

    /// `ACL SETUSER name rules...` (run on `admin`), then a connection authenticated as that
    /// user: with the password a `>password` rule sets, else any (a `nopass` user).
    pub fn user(&self, admin: &mut Connection, name: &str, rules: &[&str]) -> Connection {
        let mut r = redis::cmd("ACL");
        r.arg("SETUSER").arg(name).arg(rules);
        r.query::<()>(admin)
            .unwrap_or_else(|e| panic!("ACL SETUSER {name} {rules:?}: {}", err_text(&e)));
        let password = rules.iter().find_map(|r| r.strip_prefix('>'));
        self.conn_as(name, password.unwrap_or("any"))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL the server (no shutdown save) and wait for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kill and start again on the same port and directory (AOF/RDB files are kept).
    pub fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn(module_path()),
            "restart failed; log:\n{}",
            read_log(&self.dir)
        );
    }

    pub fn log(&self) -> String {
        read_log(&self.dir)
    }

    /// Whether the process is still running (it did not crash).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn read_log(dir: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = fs::File::open(dir.join("redis.log")) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// A master with one replica attached and in sync.
pub fn master_and_replica() -> (Server, Server) {
    let master = Server::start();
    let replica = Server::with(Opts::replica_of(master.port));
    let mut r = replica.conn();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut r)
            .expect("INFO");
        if info.contains("master_link_status:up") {
            break;
        }
        assert!(Instant::now() < deadline, "replica never synced:\n{info}");
        sleep(Duration::from_millis(20));
    }
    (master, replica)
}

/// Wait until every write so far reached `n` replicas.
pub fn wait_replicas(con: &mut Connection, n: i64) {
    let got: i64 = redis::cmd("WAIT")
        .arg(n)
        .arg(10_000)
        .query(con)
        .expect("WAIT");
    assert!(got >= n, "only {got} replicas acknowledged");
}

/// The server's Unix time in ms (`TIME`), the clock the module reads.
pub fn server_ms(con: &mut Connection) -> i64 {
    let (s, us): (i64, i64) = redis::cmd("TIME").query(con).expect("TIME");
    s * 1000 + us / 1000
}

/// Sleep until just after the start of the next window of length `period_ms` on the server's
/// clock, so a short test sequence runs inside one window.
pub fn sync_to_window(con: &mut Connection, period_ms: i64) {
    let now = server_ms(con);
    let wait = period_ms - now.rem_euclid(period_ms) + 3;
    sleep(Duration::from_millis(wait as u64));
}

/// Tests that use windows of `period_ms` and need a few seconds inside one window (so no key
/// expires at a window edge mid-test) wait out the last 5 s of a window.
pub fn avoid_window_edge(con: &mut Connection, period_ms: i64) {
    let now = server_ms(con);
    let left = period_ms - now.rem_euclid(period_ms);
    if left < 5_000 {
        sleep(Duration::from_millis(left as u64 + 3));
    }
}

/// The text of an error reply: "CODE detail".
pub fn err_text(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(c), Some(d)) => format!("{c} {d}"),
        (Some(c), None) => c.to_string(),
        _ => e.to_string(),
    }
}

/// Run a command expected to fail; returns the error text.
pub fn expect_err(con: &mut Connection, args: &[&str]) -> String {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    match c.query::<Value>(con) {
        Ok(v) => panic!("{args:?} should fail, got {v:?}"),
        Err(e) => err_text(&e),
    }
}

/// Type, value (or digest) and absolute expiry of one key.
pub type Snapshot = (String, Option<Vec<u8>>, i64);

/// A key's exact state: type, value (strings) and absolute expiry. Equal snapshots mean the
/// key is exactly as it was.
pub fn snapshot(con: &mut Connection, key: &str) -> Snapshot {
    let t: String = redis::cmd("TYPE").arg(key).query(con).expect("TYPE");
    let v: Option<Vec<u8>> = if t == "string" {
        redis::cmd("GET").arg(key).query(con).expect("GET")
    } else {
        let d: Option<Vec<u8>> = redis::cmd("DEBUG")
            .arg("DIGEST-VALUE")
            .arg(key)
            .query::<Vec<Vec<u8>>>(con)
            .ok()
            .and_then(|mut v| v.pop());
        d
    };
    let at: i64 = redis::cmd("PEXPIRETIME")
        .arg(key)
        .query(con)
        .expect("PEXPIRETIME");
    (t, v, at)
}

/// `INFO hacks` as (field, value) lines.
pub fn info_field(con: &mut Connection, field: &str) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("hacks")
        .query(con)
        .expect("INFO hacks");
    info.lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().parse().unwrap_or(-1))
        })
        .unwrap_or_else(|| panic!("no {field} in INFO hacks:\n{info}"))
}

/// A command line split on whitespace, `argv("HACK.QUOTA 2 a b 5 1000 5 1000")`, for commands
/// too long to read as a slice; arguments that are empty or hold a space need a slice.
pub fn argv(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// The keys the server finds in a command: `COMMAND GETKEYS args...`.
pub fn command_keys(c: &mut Connection, args: &[&str]) -> Vec<String> {
    redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg(args)
        .query(c)
        .unwrap_or_else(|e| panic!("COMMAND GETKEYS {args:?}: {e}"))
}

/// Run a command expected to succeed and return its reply.
pub fn cmd(c: &mut Connection, args: &[&str]) -> Value {
    let mut r = redis::cmd(args[0]);
    for a in &args[1..] {
        r.arg(*a);
    }
    r.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// An integer reply.
pub fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => panic!("not an integer: {other:?}"),
    }
}

/// A string reply.
pub fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

/// `DEBUG DIGEST-VALUE key` (None for a missing key).
pub fn digest(c: &mut Connection, key: &str) -> Option<String> {
    let v: Vec<Option<String>> = redis::cmd("DEBUG")
        .arg("DIGEST-VALUE")
        .arg(key)
        .query(c)
        .unwrap();
    v.into_iter().next().flatten()
}

/// `PEXPIRETIME key`: absolute expiry in ms, -1 none, -2 missing.
pub fn pexpiretime(c: &mut Connection, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME")
        .arg(key)
        .query(c)
        .expect("PEXPIRETIME")
}

/// Every command the module registers (`COMMAND LIST FILTERBY MODULE hacks`).
pub fn module_commands(c: &mut Connection) -> Vec<String> {
    redis::cmd("COMMAND")
        .arg("LIST")
        .arg("FILTERBY")
        .arg("MODULE")
        .arg("hacks")
        .query(c)
        .expect("COMMAND LIST")
}

/// `used_memory` from `INFO memory`.
pub fn used_memory(c: &mut Connection) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(c)
        .expect("INFO memory");
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO memory")
}
