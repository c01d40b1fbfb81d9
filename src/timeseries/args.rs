//! Pieces the time-series commands share: time arguments and replies to series errors.

use crate::module::args::Args;
use crate::module::error::{printable, CmdError};
use crate::module::num::parse_i64;

use super::series::IncrError;

/// A `from`/`to` argument: Unix ms, `-` (oldest retained) or `+` (now).
pub fn time_arg(args: &Args, i: usize, now_ms: i64) -> Result<i64, CmdError> {
    let b = args.bytes(i)?;
    match b {
        b"-" => Ok(i64::MIN),
        b"+" => Ok(now_ms),
        _ => parse_i64(b).ok_or_else(|| {
            CmdError::msg(format!(
                "ERR from/to must be Unix ms, '-' or '+', got '{}'",
                printable(b)
            ))
        }),
    }
}

pub fn incr_error(e: IncrError) -> CmdError {
    match e {
        IncrError::TooOld => CmdError::Static("ERR AT is older than every rollup's retention"),
        IncrError::TooNew => {
            CmdError::Static("ERR AT is more than one finest bucket in the future")
        }
        IncrError::Overflow => CmdError::Static("ERR increment or decrement would overflow"),
    }
}

/// `ROLLUPS spec [spec ...]` starting at argument `i` (the keyword itself).
pub fn rollups_arg(args: &Args, i: usize) -> Result<Vec<super::spec::RollupSpec>, CmdError> {
    if !crate::module::args::is_keyword(args.bytes(i)?, "ROLLUPS") {
        return Err(crate::module::args::unknown_option(args.bytes(i)?));
    }
    // `args.bytes(i)` succeeded, so `i < args.len()`: no overflow below.
    let first = i.saturating_add(1);
    if first >= args.len() {
        return Err(crate::module::args::missing_value("ROLLUPS"));
    }
    let mut list = Vec::with_capacity(args.len().saturating_sub(first));
    for j in first..args.len() {
        list.push(
            super::spec::parse_one(args.bytes(j)?)
                .map_err(|e| CmdError::msg(format!("ERR {e}")))?,
        );
    }
    super::spec::validate(&list).map_err(|e| CmdError::msg(format!("ERR {e}")))?;
    Ok(list)
}

/// The error of a write time a rollup list refuses (distinct series).
pub fn at_error(e: super::layout::AtError) -> CmdError {
    match e {
        super::layout::AtError::TooOld => incr_error(IncrError::TooOld),
        super::layout::AtError::TooNew => incr_error(IncrError::TooNew),
    }
}

/// An `AT` value: Unix ms, not negative.
pub fn at_arg(args: &Args, i: usize) -> Result<i64, CmdError> {
    match args.i64_at(i) {
        Ok(v) if v >= 0 => Ok(v),
        _ => Err(CmdError::Static(
            "ERR AT must be a Unix time in milliseconds",
        )),
    }
}

/// `ROLLUPS spec [spec ...]` from argument `i` (the keyword) up to `end` (exclusive).
pub fn rollups_until(
    args: &Args,
    i: usize,
    end: usize,
) -> Result<Vec<super::spec::RollupSpec>, CmdError> {
    if !crate::module::args::is_keyword(args.bytes(i)?, "ROLLUPS") {
        return Err(crate::module::args::unknown_option(args.bytes(i)?));
    }
    let first = i.saturating_add(1);
    if first >= end {
        return Err(crate::module::args::missing_value("ROLLUPS"));
    }
    let mut list = Vec::with_capacity(end.saturating_sub(first));
    for j in first..end {
        list.push(
            super::spec::parse_one(args.bytes(j)?)
                .map_err(|e| CmdError::msg(format!("ERR {e}")))?,
        );
    }
    super::spec::validate(&list).map_err(|e| CmdError::msg(format!("ERR {e}")))?;
    Ok(list)
}
