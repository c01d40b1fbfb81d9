//! The README's command table, `docs/commands.md` and `COMMAND DOCS` agree: every command
//! the module registers has a README row with its exact summary and a link to its file,
//! a heading in the command reference linking the same file, and the definition beside
//! the file (`<name>.json`) names it.

use std::fs;

use crate::common::*;

#[test]
fn readme_docs_and_command_docs_agree() {
    let (_s, mut c) = Server::start_with_conn();
    let root = workspace_root();
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let reference = fs::read_to_string(root.join("docs/commands.md")).unwrap();
    let names: Vec<String> = module_commands(&mut c);
    assert!(names.len() >= 18, "{names:?}");
    for name in names {
        let upper = name.to_ascii_uppercase();
        let short = upper.trim_start_matches("HACK.").to_ascii_lowercase();
        let docs = cmd(&mut c, &["COMMAND", "DOCS", &upper]);
        let summary = field_after(&docs, "summary")
            .unwrap_or_else(|| panic!("no summary for {upper}: {docs:?}"));
        let family = ["ratelimit", "buffer", "timeseries", "lock"]
            .into_iter()
            .find(|f| root.join(format!("src/{f}/commands/{short}.rs")).exists())
            .unwrap_or_else(|| panic!("{upper}: no src/<family>/commands/{short}.rs"));
        let path = format!("src/{family}/commands/{short}.rs");
        // The definition beside the handler names the command; the file holds the handler.
        let json = format!("src/{family}/commands/{short}.json");
        let def = fs::read_to_string(root.join(&json)).unwrap();
        assert!(
            def.contains(&format!("\"name\": \"{upper}\"")),
            "{json} defines {upper}"
        );
        let code = fs::read_to_string(root.join(&path)).unwrap();
        assert!(
            code.contains("\npub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {"),
            "{path} has the handler of {upper}"
        );
        assert!(
            reference.lines().any(|l| l.starts_with('#')
                && l.contains(&upper)
                && l.contains(&format!("../{path}"))),
            "docs/commands.md: a heading for {upper} linking {path}"
        );
        if summary.contains("Internal:") {
            assert!(
                readme.contains(&format!("`{upper}` ([{path}]({path}))")),
                "README: {upper}"
            );
        } else {
            let row = readme
                .lines()
                .find(|l| {
                    l.starts_with(&format!("| `{upper} ")) || l.starts_with(&format!("| `{upper}`"))
                })
                .unwrap_or_else(|| panic!("README: no row for {upper}"));
            assert!(
                row.contains(&summary.replace('|', "\\|")),
                "README row of {upper} repeats its summary:\n{row}\n{summary}"
            );
            assert!(
                row.contains(&format!("[{path}]({path})")),
                "README row of {upper} links {path}"
            );
        }
    }
}

/// The value after the bulk string `name` anywhere in a (nested) reply.
fn field_after(v: &Value, name: &str) -> Option<String> {
    match v {
        Value::Array(items) | Value::Set(items) => {
            for (i, item) in items.iter().enumerate() {
                if matches!(item, Value::BulkString(b) if b.as_slice() == name.as_bytes()) {
                    if let Some(Value::BulkString(b)) = items.get(i + 1) {
                        return Some(String::from_utf8_lossy(b).into_owned());
                    }
                }
                if let Some(f) = field_after(item, name) {
                    return Some(f);
                }
            }
            None
        }
        Value::Map(pairs) => pairs.iter().find_map(|(k, val)| {
            if matches!(k, Value::BulkString(b) if b.as_slice() == name.as_bytes()) {
                if let Value::BulkString(b) = val {
                    return Some(String::from_utf8_lossy(b).into_owned());
                }
            }
            field_after(val, name)
        }),
        _ => None,
    }
}
