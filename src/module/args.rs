//! Command arguments: byte access, strict integer parsing, and a cursor for `OPTION value` lists.

use redis_module::raw::RedisModuleString;

use super::error::{printable, CmdError, NOT_INTEGER};
use super::ffi::rm;
use super::num::parse_i64;

/// A server string owned by the current call (an argument), passed to key and replication
/// APIs without copying. It carries no lifetime: like [`super::ctx::Ctx`], it must not be
/// kept past the callback it was obtained in (or past the [`super::io::StrVec`] holding it).
#[derive(Clone, Copy)]
pub struct RStr(*mut RedisModuleString);

impl RStr {
    /// Wrap a string the server passed to a callback (valid for that callback).
    ///
    /// # Safety
    /// `p` must be a valid server string for as long as the `RStr` (or a copy) is used: an
    /// argument of the current callback, or a string the caller keeps alive meanwhile.
    pub unsafe fn from_raw(p: *mut RedisModuleString) -> Self {
        RStr(p)
    }

    pub fn as_ptr(self) -> *mut RedisModuleString {
        self.0
    }
}

/// The argv of one command call (argv[0] is the command name).
pub struct Args<'a> {
    argv: &'a [*mut RedisModuleString],
}

impl<'a> Args<'a> {
    /// # Safety
    /// `argv` must point to `argc` valid strings that outlive the returned value (true for
    /// the duration of a command callback).
    pub unsafe fn from_raw(argv: *mut *mut RedisModuleString, argc: i32) -> Self {
        let argv = match usize::try_from(argc) {
            // SAFETY: the caller guarantees `argv` points to `argc` valid pointers that live
            // for `'a`; null and negative counts are excluded here.
            Ok(n) if !argv.is_null() => unsafe { std::slice::from_raw_parts(argv.cast_const(), n) },
            _ => &[],
        };
        Args { argv }
    }

    pub fn len(&self) -> usize {
        self.argv.len()
    }

    pub fn is_empty(&self) -> bool {
        self.argv.is_empty()
    }

    /// The server string at `i` (for keys and replication without copying).
    pub fn raw(&self, i: usize) -> Result<RStr, CmdError> {
        self.argv
            .get(i)
            .copied()
            .map(RStr)
            .ok_or(super::error::SYNTAX)
    }

    /// The bytes of argument `i`.
    pub fn bytes(&self, i: usize) -> Result<&'a [u8], CmdError> {
        let s = self.raw(i)?;
        let ptr_len = rm!(RedisModule_StringPtrLen);
        let mut len = 0usize;
        // SAFETY: `s` is a live argument string; the server keeps it for the whole call.
        let ptr = unsafe { ptr_len(s.as_ptr(), &mut len) };
        if ptr.is_null() {
            return Ok(&[]);
        }
        // SAFETY: `StringPtrLen` returned a non-null pointer to `len` bytes owned by the
        // argument string, which lives for `'a` (the call) and is never modified meanwhile.
        Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
    }

    /// Argument `i` as a signed 64-bit integer, with exactly Redis's rules (see
    /// [`parse_i64`]).
    pub fn i64_at(&self, i: usize) -> Result<i64, CmdError> {
        parse_i64(self.bytes(i)?).ok_or(NOT_INTEGER)
    }

    /// Argument `i` as an integer within `min..=max`; `what` names it in the error.
    pub fn int_in(&self, i: usize, what: &str, min: i64, max: i64) -> Result<i64, CmdError> {
        match self.i64_at(i) {
            Ok(v) if (min..=max).contains(&v) => Ok(v),
            Ok(_) => Err(CmdError::msg(format!(
                "ERR {what} must be an integer from {min} to {max}"
            ))),
            Err(_) => Err(CmdError::msg(format!(
                "ERR {what} must be an integer from {min} to {max}, got '{}'",
                printable(self.bytes(i).unwrap_or(b""))
            ))),
        }
    }
}

/// Case-insensitive keyword comparison (`keyword` given in upper case).
pub fn is_keyword(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

/// `ERR unknown option 'X'` for an argument the command does not understand.
pub fn unknown_option(arg: &[u8]) -> CmdError {
    CmdError::msg(format!("ERR unknown option '{}'", printable(arg)))
}

/// `ERR option X given more than once`.
pub fn repeated_option(name: &str) -> CmdError {
    CmdError::msg(format!("ERR option {name} given more than once"))
}

/// `ERR option X needs a value`.
pub fn missing_value(name: &str) -> CmdError {
    CmdError::msg(format!("ERR option {name} needs a value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_ignore_case() {
        assert!(is_keyword(b"peek", "PEEK"));
        assert!(is_keyword(b"PeEk", "PEEK"));
        assert!(!is_keyword(b"PEEKS", "PEEK"));
    }
}
