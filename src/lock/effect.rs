//! Writing a held lock and replicating it: the one effect every acquisition, renewal,
//! extension and hand-off has, `HACK.LOCKSET key owner token PXAT <abs ms>`, with the
//! master's absolute expiry (replicas and AOF replay never read their own clock).

use std::os::raw::c_int;
use std::sync::atomic::{AtomicPtr, Ordering};

use redis_module::raw::{self, RedisModuleString};

use crate::module::args::RStr;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::ffi::rm;
use crate::module::num::IntText;
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

/// The shared `PXAT` string (null before `init`): semaphores replicate with it too.
pub(crate) fn pxat() -> *mut RedisModuleString {
    PXAT.load(Ordering::Relaxed)
}

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
            if l.owner.as_slice() != owner {
                l.owner.set(owner);
            }
            l.token = token;
        }
        None => {
            key.create(Lock {
                owner: super::lease::OwnerBytes::new(owner),
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
    // Numbers go as text (`b`): an `l` argument costs the server an sds and an object
    // (`sdsfromlonglong`), a `b` one a single embedded string.
    let (tok, at) = (
        IntText::new(i64::try_from(token).unwrap_or(i64::MAX)),
        IntText::new(at_ms),
    );
    let (tok, at) = (tok.as_slice(), at.as_slice());
    let pxat = PXAT.load(Ordering::Relaxed);
    let cmd = c"HACK.LOCKSET".as_ptr();
    let status = match owner {
        // Fewest allocations: the key, the owner and PXAT go by reference.
        // SAFETY: live context (`Ctx::from_raw`); format `ssbsb` matches the varargs: `name`
        // and `arg` server strings valid for this callback, the token as pointer + `size_t`
        // length (a stack buffer alive during the call), `pxat` (non-null, created once at
        // load and never freed), `at` as pointer + length.
        Owner::Arg(arg, _) if !pxat.is_null() => unsafe {
            f(
                ctx.raw(),
                cmd,
                c"ssbsb".as_ptr(),
                name.as_ptr(),
                arg.as_ptr(),
                tok.as_ptr(),
                tok.len(),
                pxat,
                at.as_ptr(),
                at.len(),
            )
        },
        _ => {
            let b = owner.bytes();
            // SAFETY: live context; format `sbbcb` matches the varargs: the server string
            // `name`, `b`, the token and `at` as pointer + `size_t` length (alive during the
            // call), a static C string.
            unsafe {
                f(
                    ctx.raw(),
                    cmd,
                    c"sbbcb".as_ptr(),
                    name.as_ptr(),
                    b.as_ptr(),
                    b.len(),
                    tok.as_ptr(),
                    tok.len(),
                    c"PXAT".as_ptr(),
                    at.as_ptr(),
                    at.len(),
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
