//! Parsing and validating the semaphore commands' arguments, in plain Rust over the
//! argument bytes (`argv[0]` is the command name, as in `module::args::Args`), with the
//! error replies worded as the rest of the module words them:
//!
//! ```text
//! HACK.SEMACQUIRE key owner limit ttl_ms [PERMITS n] [WAIT timeout_ms] [BOUND]
//! HACK.SEMRELEASE key owner
//! HACK.SEMEXTEND  key owner ttl_ms
//! HACK.SEMINFO    key
//! ```
//!
//! Options come in any order, each at most once, keywords in any case.

use crate::lock::commands::lock::EMPTY_OWNER;
use crate::lock::lease::MAX_MS;
use crate::module::args::{is_keyword, missing_value, repeated_option, unknown_option};
use crate::module::error::{printable, CmdError};
use crate::module::num::parse_i64;

use super::admit::Ask;
use super::holders::{MAX_LIMIT, MAX_OWNER_LEN};

pub const OWNER_TOO_LONG: CmdError = CmdError::Static("ERR owner must be at most 512 bytes");

/// `HACK.SEMACQUIRE`, parsed and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcquireArgs<'a> {
    pub key: &'a [u8],
    pub owner: &'a [u8],
    pub limit: u64,
    pub ttl_ms: i64,
    /// PERMITS (default 1), within 1..=limit.
    pub permits: u64,
    /// WAIT timeout_ms (0 = no timeout).
    pub wait: Option<i64>,
    pub bound: bool,
}

impl<'a> AcquireArgs<'a> {
    /// The request, for the calling client `client_id` (kept only with BOUND).
    pub fn ask(&self, client_id: u64) -> Ask<'a> {
        Ask {
            owner: self.owner,
            permits: self.permits,
            limit: self.limit,
            ttl_ms: self.ttl_ms,
            bound: self.bound.then_some(client_id),
        }
    }
}

/// `HACK.SEMEXTEND`, parsed and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtendArgs<'a> {
    pub key: &'a [u8],
    pub owner: &'a [u8],
    pub ttl_ms: i64,
}

/// An owner: 1 to [`MAX_OWNER_LEN`] bytes, anything else allowed (binary-safe).
pub fn check_owner(owner: &[u8]) -> Result<(), CmdError> {
    if owner.is_empty() {
        return Err(EMPTY_OWNER);
    }
    if owner.len() > MAX_OWNER_LEN {
        return Err(OWNER_TOO_LONG);
    }
    Ok(())
}

/// An integer within `min..=max`, with the wording of `Args::int_in` (`what` names it).
pub fn int_in(arg: &[u8], what: &str, min: i64, max: i64) -> Result<i64, CmdError> {
    match parse_i64(arg) {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        Some(_) => Err(CmdError::msg(format!(
            "ERR {what} must be an integer from {min} to {max}"
        ))),
        None => Err(CmdError::msg(format!(
            "ERR {what} must be an integer from {min} to {max}, got '{}'",
            printable(arg)
        ))),
    }
}

fn arg<'a>(argv: &[&'a [u8]], i: usize) -> Result<&'a [u8], CmdError> {
    argv.get(i).copied().ok_or(crate::module::error::SYNTAX)
}

/// `limit` as given: 1..=[`MAX_LIMIT`].
fn limit_arg(a: &[u8]) -> Result<u64, CmdError> {
    // MAX_LIMIT (10^15) fits an i64.
    let max = i64::try_from(MAX_LIMIT).unwrap_or(i64::MAX);
    let v = int_in(a, "limit", 1, max)?;
    u64::try_from(v).map_err(|_| crate::module::error::NOT_INTEGER)
}

pub fn parse_acquire<'a>(argv: &[&'a [u8]]) -> Result<AcquireArgs<'a>, CmdError> {
    if argv.len() < 5 {
        return Err(CmdError::arity("HACK.SEMACQUIRE"));
    }
    let key = arg(argv, 1)?;
    let owner = arg(argv, 2)?;
    check_owner(owner)?;
    let limit = limit_arg(arg(argv, 3)?)?;
    let ttl_ms = int_in(arg(argv, 4)?, "ttl_ms", 1, MAX_MS)?;
    let (mut permits, mut wait, mut bound) = (None, None, false);
    let mut i = 5;
    while let Some(&opt) = argv.get(i) {
        // `i < argv.len()`, so `i + 1` and `i + 2` cannot overflow.
        let value = argv.get(i.saturating_add(1)).copied();
        if is_keyword(opt, "BOUND") {
            if bound {
                return Err(repeated_option("BOUND"));
            }
            bound = true;
            i = i.saturating_add(1);
            continue;
        }
        if is_keyword(opt, "PERMITS") {
            if permits.is_some() {
                return Err(repeated_option("PERMITS"));
            }
            let v = value.ok_or_else(|| missing_value("PERMITS"))?;
            // Checked against the limit below: the option may come before or after.
            permits = Some(limit_arg(v).map_err(|_| permits_error(v, limit))?);
        } else if is_keyword(opt, "WAIT") {
            if wait.is_some() {
                return Err(repeated_option("WAIT"));
            }
            let v = value.ok_or_else(|| missing_value("WAIT"))?;
            wait = Some(int_in(v, "WAIT timeout_ms", 0, MAX_MS)?);
        } else {
            return Err(unknown_option(opt));
        }
        i = i.saturating_add(2);
    }
    let permits = permits.unwrap_or(1);
    if permits > limit {
        return Err(CmdError::msg(format!(
            "ERR PERMITS n must be an integer from 1 to {limit} (the limit)"
        )));
    }
    Ok(AcquireArgs {
        key,
        owner,
        limit,
        ttl_ms,
        permits,
        wait,
        bound,
    })
}

fn permits_error(v: &[u8], limit: u64) -> CmdError {
    match parse_i64(v) {
        Some(_) => CmdError::msg(format!(
            "ERR PERMITS n must be an integer from 1 to {limit} (the limit)"
        )),
        None => CmdError::msg(format!(
            "ERR PERMITS n must be an integer from 1 to {limit} (the limit), got '{}'",
            printable(v)
        )),
    }
}

/// `HACK.SEMRELEASE key owner`: (key, owner).
pub fn parse_release<'a>(argv: &[&'a [u8]]) -> Result<(&'a [u8], &'a [u8]), CmdError> {
    if argv.len() != 3 {
        return Err(CmdError::arity("HACK.SEMRELEASE"));
    }
    let owner = arg(argv, 2)?;
    check_owner(owner)?;
    Ok((arg(argv, 1)?, owner))
}

pub fn parse_extend<'a>(argv: &[&'a [u8]]) -> Result<ExtendArgs<'a>, CmdError> {
    if argv.len() != 4 {
        return Err(CmdError::arity("HACK.SEMEXTEND"));
    }
    let owner = arg(argv, 2)?;
    check_owner(owner)?;
    Ok(ExtendArgs {
        key: arg(argv, 1)?,
        owner,
        ttl_ms: int_in(arg(argv, 3)?, "ttl_ms", 1, MAX_MS)?,
    })
}

/// `HACK.SEMINFO key`: the key.
pub fn parse_info<'a>(argv: &[&'a [u8]]) -> Result<&'a [u8], CmdError> {
    if argv.len() != 2 {
        return Err(CmdError::arity("HACK.SEMINFO"));
    }
    arg(argv, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<&[u8]> {
        s.split(' ').map(str::as_bytes).collect()
    }

    fn acquire(s: &str) -> Result<AcquireArgs<'_>, String> {
        parse_acquire(&argv(s)).map_err(|e| e.text().to_string())
    }

    #[test]
    fn acquire_with_and_without_options() {
        let a = acquire("HACK.SEMACQUIRE k me 5 1000").unwrap();
        assert_eq!(
            (a.key, a.owner, a.limit, a.ttl_ms, a.permits, a.wait, a.bound),
            (&b"k"[..], &b"me"[..], 5, 1000, 1, None, false)
        );
        assert_eq!(a.ask(9).bound, None);
        let a = acquire("HACK.SEMACQUIRE k me 5 1000 bound wait 0 permits 5").unwrap();
        assert_eq!((a.permits, a.wait, a.bound), (5, Some(0), true));
        assert_eq!(a.ask(9).bound, Some(9));
        assert!(a.ask(9).check().is_ok());
    }

    #[test]
    fn acquire_errors() {
        let cases = [
            (
                "HACK.SEMACQUIRE k me 5",
                "ERR wrong number of arguments for 'hack.semacquire' command",
            ),
            ("HACK.SEMACQUIRE k  5 10", "ERR owner must not be empty"),
            (
                "HACK.SEMACQUIRE k me 0 10",
                "ERR limit must be an integer from 1 to 1000000000000000",
            ),
            (
                "HACK.SEMACQUIRE k me 1000000000000001 10",
                "ERR limit must be an integer from 1 to 1000000000000000",
            ),
            (
                "HACK.SEMACQUIRE k me x 10",
                "ERR limit must be an integer from 1 to 1000000000000000, got 'x'",
            ),
            (
                "HACK.SEMACQUIRE k me 5 0",
                "ERR ttl_ms must be an integer from 1 to 10000000000000",
            ),
            (
                "HACK.SEMACQUIRE k me 5 10000000000001",
                "ERR ttl_ms must be an integer from 1 to 10000000000000",
            ),
            (
                "HACK.SEMACQUIRE k me 5 10 PERMITS 6",
                "ERR PERMITS n must be an integer from 1 to 5 (the limit)",
            ),
            (
                "HACK.SEMACQUIRE k me 5 10 PERMITS 0",
                "ERR PERMITS n must be an integer from 1 to 5 (the limit)",
            ),
            (
                "HACK.SEMACQUIRE k me 5 10 PERMITS -1",
                "ERR PERMITS n must be an integer from 1 to 5 (the limit)",
            ),
            (
                "HACK.SEMACQUIRE k me 5 10 PERMITS two",
                "ERR PERMITS n must be an integer from 1 to 5 (the limit), got 'two'",
            ),
            (
                "HACK.SEMACQUIRE k me 5 10 PERMITS",
                "ERR option PERMITS needs a value",
            ),
            (
                "HACK.SEMACQUIRE k me 5 10 PERMITS 1 PERMITS 1",
                "ERR option PERMITS given more than once",
            ),
            (
                "HACK.SEMACQUIRE k me 5 10 WAIT",
                "ERR option WAIT needs a value",
            ),
            (
                "HACK.SEMACQUIRE k me 5 10 WAIT -1",
                "ERR WAIT timeout_ms must be an integer from 0 to 10000000000000",
            ),
            (
                "HACK.SEMACQUIRE k me 5 10 WAIT 1 WAIT 1",
                "ERR option WAIT given more than once",
            ),
            (
                "HACK.SEMACQUIRE k me 5 10 BOUND BOUND",
                "ERR option BOUND given more than once",
            ),
            ("HACK.SEMACQUIRE k me 5 10 NX", "ERR unknown option 'NX'"),
            (
                "HACK.SEMACQUIRE k me 5 10 BOUND 3",
                "ERR unknown option '3'",
            ),
        ];
        for (cmd, err) in cases {
            assert_eq!(acquire(cmd).unwrap_err(), err, "{cmd}");
        }
        let long = "x".repeat(MAX_OWNER_LEN + 1);
        let ok = "x".repeat(MAX_OWNER_LEN);
        assert_eq!(
            acquire(&format!("HACK.SEMACQUIRE k {long} 5 10")).unwrap_err(),
            "ERR owner must be at most 512 bytes"
        );
        assert!(acquire(&format!("HACK.SEMACQUIRE k {ok} 5 10")).is_ok());
    }

    #[test]
    fn the_other_commands() {
        assert_eq!(
            parse_release(&argv("HACK.SEMRELEASE k me")),
            Ok((&b"k"[..], &b"me"[..]))
        );
        assert_eq!(
            parse_release(&argv("HACK.SEMRELEASE k"))
                .unwrap_err()
                .text(),
            "ERR wrong number of arguments for 'hack.semrelease' command"
        );
        assert_eq!(parse_release(&argv("HACK.SEMRELEASE k ")), Err(EMPTY_OWNER));
        assert_eq!(
            parse_extend(&argv("HACK.SEMEXTEND k me 50")),
            Ok(ExtendArgs {
                key: b"k",
                owner: b"me",
                ttl_ms: 50
            })
        );
        assert_eq!(
            parse_extend(&argv("HACK.SEMEXTEND k me 0"))
                .unwrap_err()
                .text(),
            "ERR ttl_ms must be an integer from 1 to 10000000000000"
        );
        assert_eq!(
            parse_extend(&argv("HACK.SEMEXTEND k me"))
                .unwrap_err()
                .text(),
            "ERR wrong number of arguments for 'hack.semextend' command"
        );
        assert_eq!(parse_info(&argv("HACK.SEMINFO k")), Ok(&b"k"[..]));
        assert_eq!(
            parse_info(&argv("HACK.SEMINFO k x")).unwrap_err().text(),
            "ERR wrong number of arguments for 'hack.seminfo' command"
        );
    }
}
