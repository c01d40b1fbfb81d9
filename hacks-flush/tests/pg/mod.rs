//! PostgreSQL harness: a throwaway server per test, initdb'd into a fresh temporary directory
//! and listening on a free 127.0.0.1 port (socket in the same directory). The server is
//! stopped by the postmaster's pid (immediate shutdown) and the directory removed on drop.
//! Needs the `flush` module beside it (for `TempDir`).
//!
//! PostgreSQL refuses to run as root: as root, the directory is given to the `postgres` user
//! and initdb/postgres run through `runuser -u postgres --`.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use hacks_test_support::free_port;

use crate::flush::TempDir;

pub struct Pg {
    pub port: u16,
    pub dir: TempDir,
    child: Option<Child>,
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has the server binaries.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("postgres").exists() && bin.join("initdb").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: these tests \
             need a real server. scripts/test installs it (Debian package `postgresql`), or run \
             `apt-get install postgresql`."
        ),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `bin` run as the postgres user when we are root.
fn command(bin: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

impl Pg {
    pub fn start() -> Pg {
        let bin = bin_dir();
        let mut pg = Pg {
            port: 0,
            dir: TempDir::new("postgres-server"),
            child: None,
        };
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&pg.dir.0)
                .status()
                .expect("run chown");
            assert!(
                ok.success(),
                "chown of {} to postgres failed",
                pg.dir.0.display()
            );
        }
        let out = command(&bin.join("initdb"))
            .arg("-D")
            .arg(pg.data())
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .current_dir(&pg.dir.0)
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Another process may take the port between our probe and the server's bind: retry.
        for _ in 0..5 {
            pg.port = free_port();
            if pg.spawn(&bin) {
                return pg;
            }
        }
        panic!("PostgreSQL did not start; log:\n{}", pg.log());
    }

    fn data(&self) -> PathBuf {
        self.dir.path("data")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path("server.log")).unwrap_or_default()
    }

    fn spawn(&mut self, bin: &Path) -> bool {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path("server.log"))
            .expect("open the server log");
        let child = command(&bin.join("postgres"))
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(&self.dir.0)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                // No fsync: the machine never crashes under a test. Commits still reach the
                // OS before they are acknowledged (synchronous_commit stays on), so a killed
                // and restarted server keeps every committed transaction.
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
            ])
            .current_dir(&self.dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn postgres");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            // Exited: the port was taken.
            if matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(Some(_)))) {
                self.child = None;
                return false;
            }
            if postgres::Client::connect(&self.url("postgres"), postgres::NoTls).is_ok() {
                return true;
            }
            sleep(Duration::from_millis(50));
        }
        panic!("PostgreSQL did not come up; log:\n{}", self.log());
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(db), postgres::NoTls).expect("connect to PostgreSQL")
    }

    /// A fresh database, so tests sharing a server do not see each other's tables.
    pub fn create_db(&self, name: &str) -> String {
        self.client("postgres")
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .expect("CREATE DATABASE");
        self.url(name)
    }

    /// The postmaster's pid (first line of postmaster.pid): under runuser, our child is
    /// runuser itself, which does not pass SIGKILL on.
    fn postmaster_pid(&self) -> Option<i32> {
        let text = fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }
}

impl Pg {
    /// Immediate shutdown (SIGQUIT to the postmaster), waiting for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = self.postmaster_pid().filter(|p| *p > 0) {
            // SAFETY: kill(2) on the pid of the server this harness started.
            unsafe { libc::kill(pid, libc::SIGQUIT) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                sleep(Duration::from_millis(20));
            }
            if !matches!(child.try_wait(), Ok(Some(_))) {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Stops and starts again on the same port and data directory.
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.spawn(&bin_dir()),
            "restart failed; log:\n{}",
            self.log()
        );
    }
}

impl Drop for Pg {
    /// Stops the server; the directory goes with `dir`, dropped after this.
    fn drop(&mut self) {
        self.stop();
    }
}
