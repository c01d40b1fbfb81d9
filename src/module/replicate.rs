//! Deterministic replication: every writing command replicates the *effect* it had, with
//! absolute times read once on the master, never the command itself (a replica or an AOF
//! replay would otherwise re-read its own clock). `RedisModule_Replicate` also bumps the
//! dirty counter that `save` rules watch. Several calls in one command reach replicas and
//! the AOF wrapped in MULTI/EXEC.

use std::os::raw::c_longlong;

use super::args::RStr;
use super::ctx::Ctx;
use super::error::CmdError;
use super::ffi::rm;

fn check(status: i32, what: &str) -> Result<(), CmdError> {
    if status == redis_module::raw::REDISMODULE_OK as i32 {
        Ok(())
    } else {
        Err(CmdError::msg(format!(
            "ERR internal error: could not replicate {what}"
        )))
    }
}

/// `SET key value PXAT at_ms`: a string value with an absolute expiry.
pub fn set_pxat(ctx: &Ctx, key: RStr, value: &[u8], at_ms: i64) -> Result<(), CmdError> {
    let f = rm!(RedisModule_Replicate);
    // SAFETY: live context (`Ctx::from_raw`); the varargs match the format exactly: `s` a
    // server string (`key`, valid for this callback), `b` pointer + `size_t` length,
    // `c` a C string, `l` a long long. The server copies everything before returning.
    let status = unsafe {
        f(
            ctx.raw(),
            c"SET".as_ptr(),
            c"sbcl".as_ptr(),
            key.as_ptr(),
            value.as_ptr(),
            value.len(),
            c"PXAT".as_ptr(),
            at_ms as c_longlong,
        )
    };
    check(status, "SET")
}

/// `DEL key`.
pub fn del(ctx: &Ctx, key: RStr) -> Result<(), CmdError> {
    let f = rm!(RedisModule_Replicate);
    // SAFETY: live context; format `s` with one server string (`key`, valid for this call).
    let status = unsafe { f(ctx.raw(), c"DEL".as_ptr(), c"s".as_ptr(), key.as_ptr()) };
    check(status, "DEL")
}

/// Replicate the command exactly as called. Only for commands whose effect is fully
/// determined by their arguments and the key's state (no clock, no server setting): the
/// replica then computes the same result. Costs no allocation.
pub fn verbatim(ctx: &Ctx) -> Result<(), CmdError> {
    let f = rm!(RedisModule_ReplicateVerbatim);
    // SAFETY: `ctx` is the live context of the command being replicated.
    check(unsafe { f(ctx.raw()) }, "the command")
}

/// Replicate `cmd key args...`, e.g. an internal command carrying absolute times and
/// explicit entries.
pub fn command(
    ctx: &Ctx,
    cmd: &std::ffi::CStr,
    key: RStr,
    args: &mut super::io::StrVec,
) -> Result<(), CmdError> {
    if args.incomplete() {
        return Err(CmdError::Static(
            "ERR internal error: could not build the replication effect",
        ));
    }
    let f = rm!(RedisModule_Replicate);
    // SAFETY: live context; `cmd` is NUL-terminated; format `sv`: the server string `key`,
    // then an array of `args.len()` server strings (all owned by `args`, alive until after
    // the call; the server takes its own references).
    let status = unsafe {
        f(
            ctx.raw(),
            cmd.as_ptr(),
            c"sv".as_ptr(),
            key.as_ptr(),
            args.0.as_mut_ptr(),
            args.0.len(),
        )
    };
    check(status, "the effect")
}

/// Replicate `cmd key a b c` with three integers (no intermediate strings: the server
/// formats them, sharing small ones).
pub fn key_and_ints(
    ctx: &Ctx,
    cmd: &std::ffi::CStr,
    key: RStr,
    ints: [i64; 3],
) -> Result<(), CmdError> {
    let f = rm!(RedisModule_Replicate);
    let [a, b, c] = ints;
    // SAFETY: live context; `cmd` is NUL-terminated; format `slll`: the server string `key`
    // and three long longs, exactly the varargs given.
    let status = unsafe {
        f(
            ctx.raw(),
            cmd.as_ptr(),
            c"slll".as_ptr(),
            key.as_ptr(),
            a as c_longlong,
            b as c_longlong,
            c as c_longlong,
        )
    };
    check(status, "the effect")
}
