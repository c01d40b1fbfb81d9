//! Writing a held lock and replicating it: the one effect every acquisition, renewal,
//! extension and hand-off has, `HACK.LOCKSET key owner token PXAT <abs ms>`, with the
//! master's absolute expiry (replicas and AOF replay never read their own clock).

use std::os::raw::{c_int, c_longlong};
use std::sync::atomic::{AtomicPtr, Ordering};

use redis_module::raw::{self, RedisModuleString};

use crate::module::args::RStr;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::ffi::rm;
use crate::module::typedkey::TypedKey;

use super::lease::Lock;

/// The owner as the caller has it: a command argument (replicated without a copy) or
/// bytes (a waiter's, kept since it blocked).
#[derive(Clone, Copy)]
pub enum Owner<'a> {
    Arg(RStr, &'a [u8]),
    Bytes(&'a [u8]),
}

impl Owner<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Owner::Arg(_, b) | Owner::Bytes(b) => b,
        }
    }
}

/// `PXAT`, created once: replicated by reference instead of a new string per call.
static PXAT: AtomicPtr<RedisModuleString> = AtomicPtr::new(std::ptr::null_mut());

/// Create the shared strings (module load only).
pub fn init() -> Result<(), String> {
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let create = unsafe { raw::RedisModule_CreateString }.ok_or("no RedisModule_CreateString")?;
    // SAFETY: a NULL context is allowed (no automatic memory: the string lives as long as the
    // module); the 4 bytes are those of a static C string.
    let s = unsafe { create(std::ptr::null_mut(), c"PXAT".as_ptr(), 4) };
    if s.is_null() {
        return Err("could not create a string".into());
    }
    PXAT.store(s, Ordering::Relaxed);
    Ok(())
}

/// Store `owner` + `token` in the key (in place when it already holds a lock), expiring at
/// `at_ms` (`None`: no expiry). Does not replicate.
pub fn store(
    key: &mut TypedKey<'_, Lock>,
    owner: &[u8],
    token: u64,
    at_ms: Option<i64>,
) -> Result<(), CmdError> {
    match key.get_mut()? {
        Some(l) => {
            if l.owner != owner {
                l.owner.clear();
                l.owner.extend_from_slice(owner);
            }
            l.token = token;
        }
        None => {
            key.create(Lock {
                owner: owner.to_vec(),
                token,
            })?;
        }
    }
    key.set_abs_expire(at_ms)
}

/// Store, replicate `HACK.LOCKSET`, and signal the change.
pub fn install(
    ctx: &Ctx,
    key: &mut TypedKey<'_, Lock>,
    name: RStr,
    owner: Owner<'_>,
    token: u64,
    at_ms: i64,
) -> Result<(), CmdError> {
    store(key, owner.bytes(), token, Some(at_ms))?;
    replicate_lockset(ctx, name, owner, token, at_ms)?;
    ctx.signal_modified(name)?;
    ctx.notify(raw::REDISMODULE_NOTIFY_MODULE as c_int, c"hack.lock", name)
}

/// `HACK.LOCKSET key owner token PXAT at_ms` into the replication stream and the AOF.
/// Works from a command, a timer callback or a keyspace-event callback alike.
pub fn replicate_lockset(
    ctx: &Ctx,
    name: RStr,
    owner: Owner<'_>,
    token: u64,
    at_ms: i64,
) -> Result<(), CmdError> {
    let f = rm!(RedisModule_Replicate);
    let token = c_longlong::try_from(token).unwrap_or(c_longlong::MAX);
    let at = at_ms as c_longlong;
    let pxat = PXAT.load(Ordering::Relaxed);
    let cmd = c"HACK.LOCKSET".as_ptr();
    let status = match owner {
        // Fewest allocations: the key, the owner and PXAT go by reference.
        // SAFETY: live context (`Ctx::from_raw`); format `sslsl` matches the varargs: `name`
        // and `arg` server strings valid for this callback, the token as a long long, `pxat`
        // (non-null, created once at load and never freed), `at` as a long long.
        Owner::Arg(arg, _) if !pxat.is_null() => unsafe {
            f(
                ctx.raw(),
                cmd,
                c"sslsl".as_ptr(),
                name.as_ptr(),
                arg.as_ptr(),
                token,
                pxat,
                at,
            )
        },
        _ => {
            let b = owner.bytes();
            // SAFETY: live context; format `sblcl` matches the varargs: the server string
            // `name`, `b` as pointer + `size_t` length, the token, a static C string, `at`.
            unsafe {
                f(
                    ctx.raw(),
                    cmd,
                    c"sblcl".as_ptr(),
                    name.as_ptr(),
                    b.as_ptr(),
                    b.len(),
                    token,
                    c"PXAT".as_ptr(),
                    at,
                )
            }
        }
    };
    if status != raw::REDISMODULE_OK as c_int {
        return Err(CmdError::Static(
            "ERR internal error: could not replicate HACK.LOCKSET",
        ));
    }
    Ok(())
}
