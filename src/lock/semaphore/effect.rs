//! Writing a semaphore back to its key and replicating the result: after every change
//! (acquire, renewal, admission of waiters, release, extension, expiry, disconnect) the
//! whole state goes to replicas and the AOF as one effect,
//! `HACK.SEMSET key limit [owner permits token deadline bound]... PXAT last_deadline`,
//! with the master's absolute deadlines (nobody downstream reads a clock), or as `DEL key`
//! when the last holder left. The key expires at its last deadline, so it vanishes with its
//! last lease even where no timer runs (a replica, a server whose timers are late).

use std::os::raw::c_int;

use redis_module::raw;

use crate::module::args::RStr;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::ffi::rm;
use crate::module::io::StrVec;
use crate::module::num::IntText;
use crate::module::replicate;
use crate::module::typedkey::TypedKey;

use super::datatype::bound_flag;
use super::holders::Semaphore;

/// The fields of `HACK.SEMSET` after the key (no PXAT).
pub fn semset_args(sem: &Semaphore, args: &mut StrVec) {
    let (limit, holders) = sem.to_parts();
    args.push_int(i128::from(limit));
    for h in holders {
        args.push(&h.owner);
        args.push_int(i128::from(h.permits));
        args.push_int(i128::from(h.token));
        args.push_int(i128::from(h.expires_at_ms));
        args.push_int(i128::from(bound_flag(h)));
    }
}

/// The common case, one holder, replicated without building an argument vector (the
/// owner by pointer, numbers as integers: small ones are the server's shared objects).
/// False when the state has another number of holders (the caller builds the vector).
fn replicate_one(
    ctx: &Ctx,
    name: RStr,
    sem: Option<&Semaphore>,
    at: i64,
) -> Result<bool, CmdError> {
    let Some((limit, holders)) = sem.map(Semaphore::to_parts) else {
        return Ok(false);
    };
    let pxat = crate::lock::effect::pxat();
    let (Some(h), 1, false) = (holders.first(), holders.len(), pxat.is_null()) else {
        return Ok(false);
    };
    let f = rm!(RedisModule_Replicate);
    // Numbers as text (`b`): one embedded string each, where `l` costs an sds and an object.
    let num = |v: u64| IntText::new(i64::try_from(v).unwrap_or(i64::MAX));
    let (limit, permits, token) = (num(limit), num(h.permits), num(h.token));
    let (deadline, flag, at) = (
        IntText::new(h.expires_at_ms),
        num(bound_flag(h)),
        IntText::new(at),
    );
    let [l, p, t, d, b, a] =
        [&limit, &permits, &token, &deadline, &flag, &at].map(IntText::as_slice);
    // SAFETY: live context; format `sbbbbbbsb` matches the varargs: the key (a server string
    // valid for this call), then limit, owner, permits, token, deadline and BOUND flag each as
    // pointer + `size_t` length (stack buffers and the stored value's owner, alive during the
    // call), the shared `PXAT` string (created once at load, never freed), `at` likewise.
    let status = unsafe {
        f(
            ctx.raw(),
            c"HACK.SEMSET".as_ptr(),
            c"sbbbbbbsb".as_ptr(),
            name.as_ptr(),
            l.as_ptr(),
            l.len(),
            h.owner.as_ptr(),
            h.owner.len(),
            p.as_ptr(),
            p.len(),
            t.as_ptr(),
            t.len(),
            d.as_ptr(),
            d.len(),
            b.as_ptr(),
            b.len(),
            pxat,
            a.as_ptr(),
            a.len(),
        )
    };
    if status != raw::REDISMODULE_OK as c_int {
        return Err(CmdError::Static(
            "ERR internal error: could not replicate HACK.SEMSET",
        ));
    }
    Ok(true)
}

/// Put the state back into `key` after a change and replicate it: `fresh` is the value the
/// change worked on when the key did not exist (stored only if somebody holds a permit).
/// A key left without holders is deleted. `dirty` false: nothing changed, nothing is written.
pub fn persist(
    ctx: &Ctx,
    key: &mut TypedKey<'_, Semaphore>,
    name: RStr,
    fresh: Semaphore,
    dirty: bool,
) -> Result<(), CmdError> {
    if !dirty {
        return Ok(());
    }
    let stored = key.get()?.is_some();
    if !stored {
        if fresh.is_empty() {
            return Ok(());
        }
        key.create(fresh)?;
    }
    let (empty, last) = match key.get()? {
        Some(s) => (s.is_empty(), s.last_expiry()),
        None => (true, None),
    };
    if empty {
        key.delete()?;
        replicate::del(ctx, name)?;
        ctx.signal_modified(name)?;
        return ctx.notify(raw::REDISMODULE_NOTIFY_MODULE as c_int, c"hack.sem", name);
    }
    let at = last.unwrap_or(0);
    key.set_abs_expire(Some(at))?;
    if replicate_one(ctx, name, key.get()?, at)? {
        ctx.signal_modified(name)?;
        return ctx.notify(raw::REDISMODULE_NOTIFY_MODULE as c_int, c"hack.sem", name);
    }
    let mut args = StrVec::with_capacity(8);
    let sem = key
        .get()?
        .ok_or(CmdError::Static("ERR internal error: semaphore vanished"))?;
    semset_args(sem, &mut args);
    args.push(b"PXAT");
    args.push_int(i128::from(at));
    replicate::command(ctx, c"HACK.SEMSET", name, &mut args)?;
    ctx.signal_modified(name)?;
    ctx.notify(raw::REDISMODULE_NOTIFY_MODULE as c_int, c"hack.sem", name)
}
