//! Operator-facing guarantees for every registered HACK.* command: ACL key patterns and
//! read-only key specs, OOM refusal that changes nothing, COMMAND DOCS, RESP3 maps, and
//! module settings at load time (`MODULE LOADEX ... CONFIG`).

use crate::common::*;

/// (name, flags, first key position) of every command the module registered.
fn commands_with_info(c: &mut Connection) -> Vec<(String, Vec<String>, i64, i64)> {
    let names: Vec<String> = crate::common::module_commands(c);
    names
        .into_iter()
        .map(|n| {
            let info: Vec<Vec<Value>> = redis::cmd("COMMAND").arg("INFO").arg(&n).query(c).unwrap();
            let entry = &info[0];
            let arity = match &entry[1] {
                Value::Int(a) => *a,
                other => panic!("{other:?}"),
            };
            let flags = match &entry[2] {
                Value::Array(f) | Value::Set(f) => f
                    .iter()
                    .map(|v| match v {
                        Value::SimpleString(s) => s.clone(),
                        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                        other => format!("{other:?}"),
                    })
                    .collect(),
                other => panic!("{other:?}"),
            };
            let first_key = match &entry[3] {
                Value::Int(k) => *k,
                other => panic!("{other:?}"),
            };
            (n, flags, first_key, arity)
        })
        .collect()
}

/// A call of `name` on `key` with enough arguments for its arity.
pub(super) fn call_on(name: &str, key: &str, arity: i64) -> Vec<String> {
    let mut v = vec![name.to_string(), key.to_string()];
    let need = arity.unsigned_abs() as usize;
    while v.len() < need {
        v.push("1".into());
    }
    if name.eq_ignore_ascii_case("HACK.TSSUM") {
        v = vec![name.into(), key.into(), "-".into(), "+".into()];
    }
    if name.eq_ignore_ascii_case("HACK.QUOTA") {
        v = ["HACK.QUOTA", "1", key, "5", "1000"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    }
    v
}

pub(super) fn run(c: &mut Connection, args: &[String]) -> Result<Value, String> {
    let mut r = redis::cmd(&args[0]);
    for a in &args[1..] {
        r.arg(a);
    }
    r.query::<Value>(c).map_err(|e| err_text(&e))
}

#[test]
fn acl_key_patterns_and_read_only_specs_hold_for_every_command() {
    let (s, mut admin) = Server::start_with_conn();
    let cmds = commands_with_info(&mut admin);
    assert!(cmds.len() >= 12, "{cmds:?}");
    for (name, flags, first_key, _) in &cmds {
        if name.eq_ignore_ascii_case("HACK.TESTPANIC") {
            continue;
        }
        if name.eq_ignore_ascii_case("HACK.QUOTA") {
            // `numkeys key [key ...]` like EVAL: keys found from the keynum key spec.
            assert_eq!(*first_key, 0, "{name}: legacy range unused");
            assert!(
                flags.iter().any(|f| f == "movablekeys"),
                "{name}: {flags:?}"
            );
            continue;
        }
        assert_eq!(*first_key, 1, "{name}: the key comes first");
    }
    for user in [
        &["SETUSER", "tenant1", "on", ">pw", "~tenant1:*", "+@all"][..],
        &["SETUSER", "reader", "on", ">pw", "%R~stats:*", "+@all"][..],
    ] {
        let mut r = redis::cmd("ACL");
        for a in user {
            r.arg(*a);
        }
        let _: () = r.query(&mut admin).unwrap();
    }
    let mut t1 = s.conn_as("tenant1", "pw");
    let mut reader = s.conn_as("reader", "pw");
    for (name, flags, _, arity) in &cmds {
        let read_only = flags.iter().any(|f| f == "readonly");
        let write = flags.iter().any(|f| f == "write");
        assert!(
            read_only ^ write,
            "{name} declares exactly one of readonly/write: {flags:?}"
        );
        // Another tenant's keys: refused before the command runs.
        let e = run(&mut t1, &call_on(name, "tenant2:x", *arity)).unwrap_err();
        assert!(e.starts_with("NOPERM"), "{name} on tenant2: {e}");
        // Own keys: whatever the command says, not NOPERM.
        if let Err(e) = run(&mut t1, &call_on(name, "tenant1:x", *arity)) {
            assert!(!e.starts_with("NOPERM"), "{name} on tenant1: {e}");
        }
        // Read-only key access: read commands run, writing commands are refused.
        match run(&mut reader, &call_on(name, "stats:x", *arity)) {
            Err(e) if e.starts_with("NOPERM") => {
                assert!(write, "{name} is read-only but refused: {e}")
            }
            _ => assert!(read_only, "{name} writes but ran with %R~ access"),
        }
    }
}

#[test]
fn out_of_memory_refuses_growing_writes_and_changes_nothing() {
    let (_s, mut c) = Server::start_with_conn();
    for args in [
        &["HACK.BUFINCR", "buf", "a", "1"][..],
        &["HACK.TSINCR", "ts", "1"],
        &["HACK.RATEHIT", "rl", "10", "600000"],
        &["HACK.DRAIN", "buf2", "LEASE", "600000"],
    ] {
        let _ = run(
            &mut c,
            &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        );
    }
    let _: Value = redis::cmd("HACK.BUFINCR")
        .arg("buf2")
        .arg("x")
        .arg(1)
        .query(&mut c)
        .unwrap();
    let used: String = redis::cmd("INFO").arg("memory").query(&mut c).unwrap();
    let used: i64 = used
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(used + 200_000)
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("noeviction")
        .query(&mut c)
        .unwrap();
    // Fill up to the limit with a plain value.
    let mut i = 0;
    while redis::cmd("SET")
        .arg(format!("fill:{i}"))
        .arg(vec![b'x'; 50_000])
        .query::<()>(&mut c)
        .is_ok()
    {
        i += 1;
        assert!(i < 1000, "never reached maxmemory");
    }
    let keys = ["buf", "buf2", "ts", "rl", "new"];
    let before: Vec<_> = keys.iter().map(|k| snapshot(&mut c, k)).collect();
    let growing: &[&[&str]] = &[
        &["HACK.BUFINCR", "buf", "b", "1"],
        &["HACK.BUFINCR", "new", "b", "1"],
        &["HACK.TSINCR", "ts", "1"],
        &["HACK.TSCREATE", "new", "ROLLUPS", "1s:1m"],
        &["HACK.RATEHIT", "rl", "10", "600000"],
    ];
    for args in growing {
        let e = run(
            &mut c,
            &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap_err();
        assert!(e.starts_with("OOM"), "{args:?}: {e}");
    }
    let after: Vec<_> = keys.iter().map(|k| snapshot(&mut c, k)).collect();
    assert_eq!(before, after);
    // Draining, acknowledging and reading still work: they are how memory comes back.
    let drained: Vec<(String, i64)> = redis::cmd("HACK.DRAIN").arg("buf").query(&mut c).unwrap();
    assert_eq!(drained, vec![("a".to_string(), 1)]);
    let _: i64 = redis::cmd("HACK.TSSUM")
        .arg("ts")
        .arg("-")
        .arg("+")
        .query(&mut c)
        .unwrap();
    let _: Value = redis::cmd("HACK.BUFINFO")
        .arg("buf2")
        .query(&mut c)
        .unwrap();
}

#[test]
fn command_docs_describe_every_command() {
    let (_s, mut c) = Server::start_with_conn();
    for (name, _, _, _) in commands_with_info(&mut c) {
        let docs: Value = redis::cmd("COMMAND")
            .arg("DOCS")
            .arg(&name)
            .query(&mut c)
            .unwrap();
        let text = format!("{docs:?}");
        for field in ["summary", "since", "complexity", "arguments"] {
            if field == "arguments" && name.eq_ignore_ascii_case("HACK.TESTPANIC") {
                continue;
            }
            assert!(
                text.contains(field),
                "COMMAND DOCS {name} lacks {field}: {text}"
            );
        }
    }
}

#[test]
fn resp3_maps_and_resp2_arrays() {
    let (s, mut c2) = Server::start_with_conn();
    let _: i64 = redis::cmd("HACK.TSINCR").arg("ts").query(&mut c2).unwrap();
    let _: i64 = redis::cmd("HACK.BUFINCR")
        .arg("b")
        .arg("m")
        .arg(1)
        .query(&mut c2)
        .unwrap();
    for (cmd, key) in [("HACK.TSINFO", "ts"), ("HACK.BUFINFO", "b")] {
        let v: Value = redis::cmd(cmd).arg(key).query(&mut c2).unwrap();
        assert!(matches!(v, Value::Array(_)), "RESP2 {cmd}: {v:?}");
    }
    let mut c3 = s.conn_resp3();
    for (cmd, key) in [("HACK.TSINFO", "ts"), ("HACK.BUFINFO", "b")] {
        let v: Value = redis::cmd(cmd).arg(key).query(&mut c3).unwrap();
        assert!(matches!(v, Value::Map(_)), "RESP3 {cmd}: {v:?}");
    }
    let v: Value = redis::cmd("HACK.DRAIN").arg("b").query(&mut c3).unwrap();
    assert!(matches!(v, Value::Map(_)), "{v:?}");
}

#[test]
fn settings_apply_at_load_and_bad_values_refuse_the_load() {
    let s = Server::with(Opts::without_module());
    let mut c = s.conn();
    let path = module_path().display().to_string();
    let e = expect_err(
        &mut c,
        &[
            "MODULE",
            "LOADEX",
            &path,
            "CONFIG",
            "hacks.ts-default-rollups",
            "1h:1m",
        ],
    );
    assert!(e.starts_with("ERR"), "{e}");
    let _: () = redis::cmd("PING").query(&mut c).unwrap();
    let _: () = redis::cmd("MODULE")
        .arg("LOADEX")
        .arg(&path)
        .arg("CONFIG")
        .arg("hacks.buffer-max-members")
        .arg("5")
        .arg("CONFIG")
        .arg("hacks.ts-default-rollups")
        .arg("1s:1m,1m:1h")
        .arg("CONFIG")
        .arg("hacks.ts-max-range-points")
        .arg("50")
        .query(&mut c)
        .unwrap();
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("hacks.*")
        .query(&mut c)
        .unwrap();
    let got = got.join(" ");
    for want in [
        "hacks.buffer-max-members 5",
        "hacks.ts-default-rollups 1s:1m,1m:1h",
        "hacks.ts-max-range-points 50",
    ] {
        assert!(got.contains(want), "{got}");
    }
    let _: i64 = redis::cmd("HACK.TSINCR").arg("t").query(&mut c).unwrap();
    let info: Value = redis::cmd("HACK.TSINFO").arg("t").query(&mut c).unwrap();
    assert!(format!("{info:?}").contains("1m:1h"), "{info:?}");
}
