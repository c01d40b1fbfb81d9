//! ACL categories of the module's commands, on every supported server.
//!
//! The module derives each command's categories from its flags: `@write` for `write`,
//! `@read` for `readonly`, `@fast` for `fast`, plus the module's own `@hacks` where the
//! server can add categories. What the server offers decides what holds:
//!
//! - Redis 7.0 has no `RedisModule_SetCommandACLCategories`: module commands are in no
//!   category (a `-@write` user still runs them, `+@fast` grants none of them) and `@hacks`
//!   does not exist; the key specs still make `%R~`/`%W~` key patterns tell read-only
//!   commands from writing ones.
//! - Redis 7.2+ (Redis 8, Valkey 8): the categories apply (`COMMAND INFO`, `COMMAND LIST
//!   FILTERBY ACLCAT`, user permissions).
//! - `RedisModule_AddACLCategory` (Redis 7.4+, Valkey 8): `@hacks` holds exactly our commands.
//! - Valkey 8.0 still leaves module commands out of `ACL CAT <category>` (Redis 7.0's
//!   `aclCatWithFlags` skipped `CMD_MODULE` commands; Redis 8 lists them), although the
//!   categories are in force there; `COMMAND LIST FILTERBY ACLCAT` lists them on both.
//!
//! Capabilities are read from the server's behaviour, then checked against `INFO server` so a
//! module that silently stopped setting categories cannot pass as a 7.0 server.

use std::collections::BTreeSet;

use super::hardening::{call_on, run};
use crate::common::*;

/// One of our commands as `COMMAND INFO` describes it.
#[derive(Debug)]
struct Cmd {
    name: String,
    arity: i64,
    flags: Vec<String>,
    /// ACL categories without the `@`.
    categories: BTreeSet<String>,
    /// Flags of the (single) key spec, lower case: `rw`, `access`, `update`, ...
    key_flags: Vec<String>,
}

impl Cmd {
    fn flagged(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
    fn writes(&self) -> bool {
        self.flagged("write")
    }
    fn read_only(&self) -> bool {
        self.flagged("readonly")
    }
    fn fast(&self) -> bool {
        self.flagged("fast")
    }
    /// The categories the module must have set from the flags.
    fn expected_categories(&self, hacks: bool) -> BTreeSet<String> {
        let mut want = BTreeSet::new();
        for (flag, cat) in [("write", "write"), ("readonly", "read"), ("fast", "fast")] {
            if self.flagged(flag) {
                want.insert(cat.to_string());
            }
        }
        if hacks {
            want.insert("hacks".to_string());
        }
        want
    }
    /// Whether the category `cat` should hold this command.
    fn in_category(&self, cat: &str, hacks: bool) -> bool {
        self.expected_categories(hacks).contains(cat)
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) | Value::Set(a) => a.iter().map(text).collect(),
        Value::Nil => vec![],
        other => panic!("not a list: {other:?}"),
    }
}

/// Every command `COMMAND LIST FILTERBY MODULE hacks` names, with its `COMMAND INFO`.
fn commands_with_info(c: &mut Connection) -> Vec<Cmd> {
    let mut names: Vec<String> = crate::common::module_commands(c);
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let info: Vec<Vec<Value>> = redis::cmd("COMMAND")
                .arg("INFO")
                .arg(&name)
                .query(c)
                .unwrap();
            let e = &info[0];
            // [name, arity, flags, first, last, step, acl categories, tips, key specs, subs]
            let categories = strings(&e[6])
                .into_iter()
                .map(|s| {
                    s.strip_prefix('@')
                        .unwrap_or_else(|| panic!("{name}: category {s}"))
                        .to_string()
                })
                .collect();
            let specs = match &e[8] {
                Value::Array(a) => a.clone(),
                other => panic!("{name}: key specs {other:?}"),
            };
            assert_eq!(specs.len(), 1, "{name}: one key spec: {specs:?}");
            let spec = match &specs[0] {
                Value::Array(a) => a.clone(),
                Value::Map(m) => m.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect(),
                other => panic!("{name}: key spec {other:?}"),
            };
            let key_flags = spec
                .chunks(2)
                .find(|kv| text(&kv[0]) == "flags")
                .map(|kv| strings(&kv[1]))
                .unwrap_or_else(|| panic!("{name}: key spec without flags: {spec:?}"))
                .into_iter()
                .map(|f| f.to_ascii_lowercase())
                .collect();
            Cmd {
                name,
                arity: int(&e[1]),
                flags: strings(&e[2]),
                categories,
                key_flags,
            }
        })
        .collect()
}

/// What the server does with module commands in ACLs.
#[derive(Debug)]
struct Caps {
    /// `redis_version` (Valkey reports the Redis version it is compatible with, 7.2.4).
    redis: (u32, u32),
    /// `valkey_version`, on Valkey.
    valkey: Option<(u32, u32)>,
    /// Module commands carry ACL categories (RedisModule_SetCommandACLCategories).
    categories: bool,
    /// The `@hacks` category exists (RedisModule_AddACLCategory).
    hacks: bool,
    /// `ACL CAT <category>` lists module commands.
    acl_cat_lists_modules: bool,
}

fn version(info: &str, field: &str) -> Option<(u32, u32)> {
    let v = info
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))?;
    let mut parts = v.trim().split('.').map(|p| p.parse::<u32>().unwrap());
    Some((parts.next()?, parts.next()?))
}

/// `ACL CAT <cat>`, restricted to our commands; the error if the category does not exist.
fn acl_cat(c: &mut Connection, cat: &str, ours: &[Cmd]) -> Result<BTreeSet<String>, String> {
    let listed: Vec<String> = redis::cmd("ACL")
        .arg("CAT")
        .arg(cat)
        .query(c)
        .map_err(|e| err_text(&e))?;
    Ok(only_ours(listed, ours))
}

/// `COMMAND LIST FILTERBY ACLCAT <cat>`, restricted to our commands.
fn filterby_aclcat(c: &mut Connection, cat: &str, ours: &[Cmd]) -> BTreeSet<String> {
    let listed: Vec<String> = redis::cmd("COMMAND")
        .arg("LIST")
        .arg("FILTERBY")
        .arg("ACLCAT")
        .arg(cat)
        .query(c)
        .unwrap_or_else(|e| panic!("COMMAND LIST FILTERBY ACLCAT {cat}: {}", err_text(&e)));
    only_ours(listed, ours)
}

fn only_ours(listed: Vec<String>, ours: &[Cmd]) -> BTreeSet<String> {
    listed
        .into_iter()
        .filter(|n| ours.iter().any(|c| c.name.eq_ignore_ascii_case(n)))
        .map(|n| n.to_ascii_uppercase())
        .collect()
}

fn detect(c: &mut Connection, ours: &[Cmd]) -> Caps {
    let info: String = redis::cmd("INFO").arg("server").query(c).unwrap();
    let redis = version(&info, "redis_version").expect("redis_version in INFO server");
    let valkey = version(&info, "valkey_version");
    let categories = ours.iter().any(|c| !c.categories.is_empty());
    let hacks = acl_cat(c, "hacks", ours).is_ok();
    let acl_cat_lists_modules = !acl_cat(c, "write", ours).unwrap().is_empty();
    let caps = Caps {
        redis,
        valkey,
        categories,
        hacks,
        acl_cat_lists_modules,
    };
    // Behaviour must match the version: SetCommandACLCategories is 7.2+ (Valkey 8 reports
    // redis_version 7.2.4); AddACLCategory is Redis 7.4+ and Valkey 8+.
    assert_eq!(caps.categories, redis >= (7, 2), "{caps:?}");
    let hacks_expected = match valkey {
        Some(v) => v >= (8, 0),
        None => redis >= (7, 4),
    };
    if hacks_expected {
        assert!(caps.hacks, "@hacks missing: {caps:?}");
    }
    if caps.hacks {
        assert!(caps.categories, "@hacks without categories: {caps:?}");
    }
    caps
}

/// Run `cmd` (arguments of the right arity, on a fresh key) as the connection's user:
/// Ok(reply or non-ACL error) when the ACL let it through, Err(NOPERM text) when not. An
/// internal command's "is internal" refusal comes from its handler, after the ACL check.
fn attempt(c: &mut Connection, cmd: &Cmd, key: &str) -> Result<String, String> {
    match run(c, &call_on(&cmd.name, key, cmd.arity)) {
        Ok(v) => Ok(format!("{v:?}")),
        Err(e) if e.starts_with("NOPERM") => Err(e),
        Err(e) => Ok(e),
    }
}

/// Which of our commands the user may run (by actually running each).
fn allowed(c: &mut Connection, user: &str, ours: &[Cmd]) -> BTreeSet<String> {
    ours.iter()
        .filter(|cmd| attempt(c, cmd, &format!("{user}:{}", cmd.name)).is_ok())
        .map(|cmd| cmd.name.to_ascii_uppercase())
        .collect()
}

fn names<'a>(it: impl IntoIterator<Item = &'a Cmd>) -> BTreeSet<String> {
    it.into_iter()
        .map(|c| c.name.to_ascii_uppercase())
        .collect()
}

#[test]
fn acl_categories_follow_command_flags() {
    let (s, mut admin) = Server::start_with_conn();
    let ours = commands_with_info(&mut admin);
    assert!(ours.len() >= 12, "{ours:?}");
    let caps = detect(&mut admin, &ours);
    eprintln!("server capabilities: {caps:?}");
    let all = names(&ours);
    let writers = names(ours.iter().filter(|c| c.writes()));
    let readers = names(ours.iter().filter(|c| c.read_only()));
    let fast = names(ours.iter().filter(|c| c.fast()));
    assert!(!readers.is_empty() && !writers.is_empty() && !fast.is_empty());
    for c in &ours {
        assert!(c.writes() ^ c.read_only(), "{c:?}: one of write/readonly");
    }

    // Key specs separate readers from writers on every server, categories or not: `%R~`
    // grants exactly the read-only commands; `%W~` grants no read-only command, and exactly
    // the writing ones whose key spec does not read the value (no `access`: ACK, the
    // internal effect commands, the creating ones).
    let mut r = s.user(&mut admin, "keyreader", &["on", "nopass", "%R~*", "+@all"]);
    assert_eq!(allowed(&mut r, "keyreader", &ours), readers);
    let mut w = s.user(&mut admin, "keywriter", &["on", "nopass", "%W~*", "+@all"]);
    let blind_writers = names(
        ours.iter()
            .filter(|c| c.writes() && !c.key_flags.iter().any(|f| f == "access")),
    );
    assert!(!blind_writers.is_empty());
    assert_eq!(allowed(&mut w, "keywriter", &ours), blind_writers);

    let mut nowrite = s.user(
        &mut admin,
        "nowrite",
        &["on", "nopass", "~*", "+@all", "-@write"],
    );
    let mut fastonly = s.user(
        &mut admin,
        "fastonly",
        &["on", "nopass", "~*", "resetchannels", "-@all", "+@fast"],
    );

    if !caps.categories {
        // Redis 7.0: no categories on module commands, and none of them in any category.
        for c in &ours {
            assert!(c.categories.is_empty(), "{c:?}");
        }
        for cat in ["write", "read", "fast"] {
            assert_eq!(acl_cat(&mut admin, cat, &ours).unwrap(), BTreeSet::new());
            assert_eq!(filterby_aclcat(&mut admin, cat, &ours), BTreeSet::new());
        }
        // `-@write` does not touch them, `+@fast` does not grant them.
        assert_eq!(allowed(&mut nowrite, "nowrite", &ours), all);
        assert_eq!(allowed(&mut fastonly, "fastonly", &ours), BTreeSet::new());
        let e = expect_err(&mut admin, &["ACL", "CAT", "hacks"]);
        assert!(e.contains("Unknown category"), "{e}");
        let e = expect_err(&mut admin, &argv("ACL SETUSER hacksonly on nopass +@hacks"));
        assert!(e.starts_with("ERR"), "{e}");
        return;
    }

    // 7.2+: each command carries exactly the categories its flags call for.
    for c in &ours {
        assert_eq!(c.categories, c.expected_categories(caps.hacks), "{c:?}");
    }
    let mut cats = vec!["write", "read", "fast"];
    if caps.hacks {
        cats.push("hacks");
    }
    // `@fast` holds exactly the commands flagged fast, `@hacks` every one of ours.
    for cat in cats {
        let want = names(ours.iter().filter(|c| c.in_category(cat, caps.hacks)));
        assert_eq!(filterby_aclcat(&mut admin, cat, &ours), want, "@{cat}");
        let listed = acl_cat(&mut admin, cat, &ours).unwrap();
        if caps.acl_cat_lists_modules {
            assert_eq!(listed, want, "ACL CAT {cat}");
        } else {
            // Redis 8 lists them; Valkey 8.0 (and maybe older Redis) leaves them all out.
            assert!(caps.valkey.is_some() || caps.redis < (8, 0), "{caps:?}");
            assert_eq!(
                listed,
                BTreeSet::new(),
                "ACL CAT {cat} (module commands left out)"
            );
        }
    }

    // `-@write` refuses every writing command and runs every read-only one.
    let ran = allowed(&mut nowrite, "nowrite", &ours);
    assert_eq!(ran, readers, "-@write ran {ran:?}");
    let e = expect_err(&mut nowrite, &["SET", "nowrite:k", "v"]);
    assert!(e.starts_with("NOPERM"), "{e}");
    // `+@fast` alone grants exactly the commands flagged fast.
    assert_eq!(allowed(&mut fastonly, "fastonly", &ours), fast);

    if caps.hacks {
        // `+@hacks` alone: every command of ours, nothing else.
        let mut h = s.user(
            &mut admin,
            "hacksonly",
            &["on", "nopass", "~*", "resetchannels", "-@all", "+@hacks"],
        );
        assert_eq!(allowed(&mut h, "hacksonly", &ours), all);
        for args in [&["GET", "hacksonly:k"][..], &["SET", "hacksonly:k", "v"]] {
            let e = expect_err(&mut h, args);
            assert!(e.starts_with("NOPERM"), "{args:?}: {e}");
        }
    }
}
