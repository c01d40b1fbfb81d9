//! The one error type every command handler returns; the guard turns it into an error reply.

use std::fmt;

/// An error reply. The text must start with an error code (`ERR`, `WRONGTYPE`, ...), as
/// Redis clients expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdError {
    /// A fixed message (no allocation on the error path of hot commands).
    Static(&'static str),
    /// A message built from the request (names the offending argument).
    Owned(String),
}

pub const WRONGTYPE: CmdError =
    CmdError::Static("WRONGTYPE Operation against a key holding the wrong kind of value");
pub const SYNTAX: CmdError = CmdError::Static("ERR syntax error");
pub const NOT_INTEGER: CmdError = CmdError::Static("ERR value is not an integer or out of range");

impl CmdError {
    pub fn msg(text: impl Into<String>) -> Self {
        CmdError::Owned(text.into())
    }

    /// `ERR wrong number of arguments for 'hack.x' command`, worded as Redis words it.
    pub fn arity(command: &str) -> Self {
        CmdError::Owned(format!(
            "ERR wrong number of arguments for '{}' command",
            command.to_ascii_lowercase()
        ))
    }

    pub fn missing_api(name: &str) -> Self {
        CmdError::Owned(format!(
            "ERR this server lacks the module API {name}; the command cannot run here"
        ))
    }

    pub fn text(&self) -> &str {
        match self {
            CmdError::Static(s) => s,
            CmdError::Owned(s) => s,
        }
    }
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// Show a client-supplied argument inside an error message: printable ASCII kept, anything
/// else escaped, and long arguments cut, so a 1 MB or binary argument cannot bloat a reply.
pub fn printable(arg: &[u8]) -> String {
    const MAX: usize = 40;
    let mut out = String::new();
    for &b in arg.iter().take(MAX) {
        if b.is_ascii_graphic() || b == b' ' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if arg.len() > MAX {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_and_truncates() {
        assert_eq!(printable(b"COST"), "COST");
        assert_eq!(printable(b"a\0b\n"), "a\\x00b\\x0a");
        let long = vec![b'x'; 100];
        assert_eq!(printable(&long).len(), 43);
    }

    #[test]
    fn arity_message_matches_redis_wording() {
        assert_eq!(
            CmdError::arity("HACK.RATEHIT").text(),
            "ERR wrong number of arguments for 'hack.ratehit' command"
        );
    }
}
