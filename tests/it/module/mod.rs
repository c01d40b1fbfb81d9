//! Module-wide behaviour against a real redis-server: loading (startup and MODULE LOAD),
//! refusing unknown arguments without crashing, the panic guard, command metadata (flags,
//! key specs, docs) and the INFO section. ACL categories per server version: `acl.rs`.

mod acl;
mod cluster;
mod fuzz;
mod hardening;
mod memory;
mod restore;
mod ttl;
mod valgrind;

use std::process::{Command, Stdio};

use crate::common::*;

/// The module version `redis_module!` declares in src/lib.rs (both allocator variants).
fn declared_module_version() -> i64 {
    let lib = std::fs::read_to_string(workspace_root().join("src").join("lib.rs")).unwrap();
    let versions: Vec<i64> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("version:"))
        .map(|v| v.trim().trim_end_matches(',').parse().unwrap())
        .collect();
    assert!(!versions.is_empty(), "no `version:` in src/lib.rs");
    assert!(versions.iter().all(|v| *v == versions[0]), "{versions:?}");
    versions[0]
}

/// Ours is listed once, with its name, version and path. Other modules may be listed too:
/// Redis 8 lists its built-in `vectorset` beside ours.
#[test]
fn module_list_shows_hacks() {
    let (_s, mut c) = Server::start_with_conn();
    let v: Vec<Vec<Value>> = redis::cmd("MODULE").arg("LIST").query(&mut c).unwrap();
    // Each entry is a flat (field, value) list in RESP2.
    let entries: Vec<Vec<(String, Value)>> = v
        .iter()
        .map(|m| {
            m.chunks(2)
                .filter_map(|kv| match kv {
                    [k, v] => Some((text(k), v.clone())),
                    _ => None,
                })
                .collect()
        })
        .collect();
    let field = |e: &[(String, Value)], f: &str| {
        e.iter()
            .find(|(k, _)| k == f)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("MODULE LIST entry without {f}: {e:?}"))
    };
    let ours: Vec<&Vec<(String, Value)>> = entries
        .iter()
        .filter(|e| text(&field(e, "name")) == "hacks")
        .collect();
    assert_eq!(ours.len(), 1, "MODULE LIST: {entries:?}");
    assert_eq!(int(&field(ours[0], "ver")), declared_module_version());
    assert_eq!(
        text(&field(ours[0], "path")),
        module_path().display().to_string()
    );
}

#[test]
fn module_load_at_runtime_and_unknown_args_refused() {
    let s = Server::with(Opts::without_module());
    let mut c = s.conn();
    let path = module_path().display().to_string();
    let e = expect_err(&mut c, &["MODULE", "LOAD", &path, "BOGUS-ARG"]);
    assert!(e.starts_with("ERR"), "{e}");
    assert!(
        s.log().contains("unknown module argument 'BOGUS-ARG'"),
        "log:\n{}",
        s.log()
    );
    let _: () = redis::cmd("PING").query(&mut c).unwrap();
    let _: () = redis::cmd("MODULE")
        .arg("LOAD")
        .arg(&path)
        .query(&mut c)
        .unwrap();
    let r: Vec<i64> = redis::cmd("HACK.RATEHIT")
        .arg("k")
        .arg(1)
        .arg(1000)
        .query(&mut c)
        .unwrap();
    assert_eq!(r[0], 1);
}

#[test]
fn loadmodule_with_unknown_argument_exits_cleanly() {
    let dir = std::env::temp_dir().join(format!("redis-hacks-badarg-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let out = Command::new(server_bin())
        .args([
            "--port",
            &free_port().to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
        ])
        .arg(&dir)
        .arg("--loadmodule")
        .arg(module_path())
        .arg("NOT-AN-OPTION")
        .stdin(Stdio::null())
        .output()
        .expect("run redis-server");
    let _ = std::fs::remove_dir_all(&dir);
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "must exit with an error, not a signal:\n{log}"
    );
    assert!(
        log.contains("hacks: refusing to load: unknown module argument 'NOT-AN-OPTION'"),
        "{log}"
    );
}

#[test]
fn panic_in_a_handler_becomes_an_error_reply() {
    let mut s = Server::with(Opts {
        module_args: vec!["TEST-HOOKS".into()],
        ..Opts::default()
    });
    let mut c = s.conn();
    for _ in 0..3 {
        let e = expect_err(&mut c, &["HACK.TESTPANIC"]);
        assert!(e.starts_with("ERR internal error in HACK.TESTPANIC"), "{e}");
    }
    let _: () = redis::cmd("PING").query(&mut c).unwrap();
    assert!(s.alive(), "server died");
    assert_eq!(info_field(&mut c, "hacks_panics_caught"), 3);
    assert!(
        s.log().contains("deliberate panic from HACK.TESTPANIC"),
        "panic logged"
    );
    // Without TEST-HOOKS the hook does not exist.
    let plain = Server::start();
    let e = expect_err(&mut plain.conn(), &["HACK.TESTPANIC"]);
    assert!(e.contains("unknown command"), "{e}");
}

#[test]
fn command_info_declares_flags_and_key_specs() {
    let (_s, mut c) = Server::start_with_conn();
    let info: Vec<Value> = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("HACK.RATEHIT")
        .query(&mut c)
        .unwrap();
    let text = format!("{info:?}");
    for want in ["write", "denyoom", "fast", "RW", "access", "update"] {
        assert!(text.contains(want), "COMMAND INFO lacks {want}: {text}");
    }
    let keys = command_keys(&mut c, &argv("HACK.RATEHIT user:1 10 1000 ALGO GCRA"));
    assert_eq!(keys, vec!["user:1"]);
    let docs: Value = redis::cmd("COMMAND")
        .arg("DOCS")
        .arg("HACK.RATEHIT")
        .query(&mut c)
        .unwrap();
    let text = format!("{docs:?}");
    for want in [
        "summary",
        "complexity",
        "O(1)",
        "since",
        "period_ms",
        "COST",
        "ALGO",
        "GCRA",
        "PEEK",
    ] {
        assert!(text.contains(want), "COMMAND DOCS lacks {want}: {text}");
    }
    // Arity is enforced by the server before the handler runs.
    let e = expect_err(&mut c, &["HACK.RATEHIT", "k", "1"]);
    assert!(e.contains("wrong number of arguments"), "{e}");
}

#[test]
fn acl_key_patterns_apply() {
    let (s, mut admin) = Server::start_with_conn();
    let mut c = s.user(&mut admin, "tenant1", &["on", ">pw", "~tenant1:*", "+@all"]);
    let r: Vec<i64> = redis::cmd("HACK.RATEHIT")
        .arg("tenant1:api")
        .arg(5)
        .arg(1000)
        .query(&mut c)
        .unwrap();
    assert_eq!(r[0], 1);
    let e = expect_err(&mut c, &["HACK.RATEHIT", "tenant2:api", "5", "1000"]);
    assert!(e.starts_with("NOPERM"), "{e}");
    // Read-only key access is not enough for a writing command.
    let mut reader = s.user(&mut admin, "reader", &["on", ">pw", "%R~stats:*", "+@all"]);
    let e = expect_err(&mut reader, &["HACK.RATEHIT", "stats:x", "5", "1000"]);
    assert!(e.starts_with("NOPERM"), "{e}");
}
