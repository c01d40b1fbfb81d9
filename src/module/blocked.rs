//! Blocked clients, for every family that makes a client wait on the server (lock and
//! semaphore `WAIT`, rate-limit `WAIT`). A family describes its waiters once ([`Waits`]) and
//! gets the server callbacks from here, monomorphized per family:
//!
//! - [`block`] blocks the calling client **without a server-side timeout**: the WAIT
//!   deadline is a module timer ([`deadline_timer`], firing [`Waits::deadline`]). Redis 7.0
//!   checks blocked clients' timeouts just before it runs the replies of the clients a module
//!   unblocked, so a waiter served in the same event-loop iteration its timeout passed was
//!   timed out by the server and its reply dropped: a lock, permit or charge it never heard
//!   of. With one timer owning the deadline a waiter is served or times out, never both.
//! - The server's timeout callback is then reached only by `CLIENT UNBLOCK`
//!   ([`Waits::unblocked`]); a closed connection reaches [`Waits::disconnected`].
//! - [`unblock`] hands the server the family's outcome; the reply callback sends it through
//!   [`Waits::reply`] and the server frees it. Every blocked client ends in exactly one
//!   `RedisModule_UnblockClient` or in the unblock/disconnect callback, whichever takes it
//!   out of the family's queue first (the queue hands each handle out once).
//!
//! Everything here runs on the server's main thread.

use std::ffi::c_void;
use std::os::raw::c_int;

use redis_module::raw::{self, RedisModuleBlockedClient, RedisModuleCtx, RedisModuleString};

use super::ctx::Ctx;
use super::error::CmdError;
use super::ffi::rm;
use super::guard::guarded;
use super::keytimer::{start_boxed, stop_boxed, KeyId, TimerSlots};

/// What a family's waiters are, as far as the server callbacks need to know.
pub trait Waits: 'static {
    /// What a client the module unblocks is told (`None`: the family's plain answer).
    type Outcome: 'static;
    /// Names the family in log lines, e.g. "lock".
    const NAME: &'static str;
    /// The outcome that answers a waiter with error `e`.
    fn failed(e: CmdError) -> Self::Outcome;
    /// Send the answer to an unblocked client.
    fn reply(ctx: &Ctx, outcome: Option<&Self::Outcome>) -> Result<(), CmdError>;
    /// `CLIENT UNBLOCK`: take the waiter out of its queue, uncharged; what it is told.
    fn unblocked(ctx: &Ctx, handle: usize) -> Option<Self::Outcome>;
    /// The client went away while waiting: take it out of its queue.
    fn disconnected(ctx: &Ctx, handle: usize);
    /// Its WAIT deadline passed: if still queued, take it out and [`unblock`] it. The
    /// deadline timer is the one firing: it must not be stopped here (the server still
    /// holds it until this returns, so [`stop_deadline`] would free its data twice).
    fn deadline(ctx: &Ctx, handle: usize);
    /// The queue timer of `id` fired (its record already cleared): look at the queue.
    fn timer(ctx: &Ctx, id: &KeyId);
    /// The family's waiter queues (one per server: they live in a thread-local).
    type Queues: TimerSlots;
    /// Run `f` on the queues; `None` if they are borrowed (never held across a server
    /// call, so it does not happen).
    fn with_queues<R>(f: impl FnOnce(&mut Self::Queues) -> R) -> Option<R>;
}

/// Whether a command run with context `flags` ([`Ctx::flags`]) may block its client. Not
/// inside MULTI or a script, nor where the server denies blocking, nor while replaying the
/// master's stream or the AOF: there a WAIT acts as timeout 0.
pub fn can_block(flags: u32) -> bool {
    flags
        & (raw::REDISMODULE_CTX_FLAGS_DENY_BLOCKING
            | raw::REDISMODULE_CTX_FLAGS_MULTI
            | raw::REDISMODULE_CTX_FLAGS_LUA
            | raw::REDISMODULE_CTX_FLAGS_REPLICATED
            | raw::REDISMODULE_CTX_FLAGS_LOADING)
        == 0
}

/// Block the calling client with `W`'s callbacks and no server-side timeout; returns its
/// handle, which the caller queues. The caller has checked that blocking is allowed (not in
/// MULTI or a script).
pub fn block<W: Waits>(ctx: &Ctx) -> Result<usize, CmdError> {
    let block_client = rm!(RedisModule_BlockClient);
    let on_disconnect = rm!(RedisModule_SetDisconnectCallback);
    // SAFETY: the live context of the calling command; the callbacks have the signatures the
    // server calls them with.
    let bc = unsafe {
        block_client(
            ctx.raw(),
            Some(reply_callback::<W>),
            Some(timeout_callback::<W>),
            Some(free_privdata::<W>),
            0,
        )
    };
    if bc.is_null() {
        return Err(CmdError::Static(
            "ERR internal error: could not block the client",
        ));
    }
    // SAFETY: `bc` is the non-null blocked client just created.
    unsafe { on_disconnect(bc, Some(disconnect_callback::<W>)) };
    Ok(bc as usize)
}

/// Release the blocked client `handle` (from [`block`] with the same `W`, taken out of its
/// queue by the caller: each handle reaches here exactly once).
pub fn unblock<W: Waits>(handle: usize, outcome: Option<W::Outcome>) {
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let Some(f) = (unsafe { raw::RedisModule_UnblockClient }) else {
        return;
    };
    let privdata = outcome.map_or(std::ptr::null_mut(), |o| Box::into_raw(Box::new(o)));
    // SAFETY: `handle` is a blocked client from `BlockClient` not yet unblocked (its queue
    // hands each one out once); `privdata` is null or a `Box<W::Outcome>`, which the server
    // passes to `reply_callback::<W>` and then to `free_privdata::<W>`.
    let status = unsafe { f(handle as *mut RedisModuleBlockedClient, privdata.cast()) };
    if status != raw::REDISMODULE_OK as c_int && !privdata.is_null() {
        // SAFETY: `privdata` came from `Box::into_raw` above and the server refused it.
        drop(unsafe { Box::from_raw(privdata) });
    }
}

// ---- the WAIT deadline ------------------------------------------------------------------

/// A timer that ends the wait of `handle` after `timeout_ms` (none for 0: no limit).
pub fn deadline_timer<W: Waits>(ctx: &Ctx, handle: usize, timeout_ms: i64) -> Option<u64> {
    if timeout_ms <= 0 {
        return None;
    }
    start_boxed(ctx, timeout_ms, on_deadline::<W>, handle)
}

/// A client [`block`]ed that its family then could not queue (never expected): its deadline
/// timer is stopped and it is answered with an internal error at once, rather than left
/// waiting for a wake-up that cannot come.
pub fn not_queued<W: Waits>(ctx: &Ctx, handle: usize, wake: Option<u64>) {
    stop_deadline(ctx, wake);
    let e = CmdError::Static("ERR internal error: could not queue the client");
    unblock::<W>(handle, Some(W::failed(e)));
}

/// Stop a waiter's deadline timer (it left another way) and free its data.
pub fn stop_deadline(ctx: &Ctx, timer: Option<u64>) {
    if let Some(id) = timer {
        // SAFETY: a deadline timer's data is a `Box<usize>` (`deadline_timer`), and callers
        // never stop the one firing (`Waits::deadline` says so).
        unsafe { stop_boxed::<usize>(ctx, id) };
    }
}

/// # Safety
/// Called by the server when a timer from `deadline_timer::<W>` fires, with its data.
unsafe extern "C" fn on_deadline<W: Waits>(ctx: *mut RedisModuleCtx, data: *mut c_void) {
    if data.is_null() {
        return;
    }
    // SAFETY: the data of every `on_deadline` timer is a `Box<usize>` (`deadline_timer`),
    // reclaimed here once (a stopped timer never fires).
    let handle = *unsafe { Box::from_raw(data.cast::<usize>()) };
    guarded(format_args!("{} wait timeout", W::NAME), || {
        // SAFETY: `ctx` is the live timer context of this callback; `c` stays in the closure.
        let c = unsafe { Ctx::from_raw(ctx) };
        W::deadline(&c, handle);
    });
}

// ---- blocked-client callbacks -----------------------------------------------------------

/// # Safety
/// Called by the server with the reply context of a client `block::<W>` blocked and
/// `unblock::<W>` released (likewise the timeout and disconnect callbacks, with theirs).
unsafe extern "C" fn reply_callback<W: Waits>(
    ctx: *mut RedisModuleCtx,
    _argv: *mut *mut RedisModuleString,
    _argc: c_int,
) -> c_int {
    guarded(format_args!("{} reply", W::NAME), || {
        // SAFETY: `ctx` is the live reply context of this callback; `c` stays in the closure.
        let c = unsafe { Ctx::from_raw(ctx) };
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        let Some(get) = (unsafe { raw::RedisModule_GetBlockedClientPrivateData }) else {
            return;
        };
        // SAFETY: the privdata `unblock::<W>` gave `UnblockClient`: null or a
        // `Box<W::Outcome>` the server keeps until `free_privdata`, after this callback.
        let outcome = unsafe { get(ctx).cast::<W::Outcome>().as_ref() };
        if let Err(e) = W::reply(&c, outcome) {
            c.reply_error(&e);
        }
    });
    raw::REDISMODULE_OK as c_int
}

/// With no server-side timeout, only `CLIENT UNBLOCK` reaches here.
///
/// # Safety
/// As [`reply_callback`].
unsafe extern "C" fn timeout_callback<W: Waits>(
    ctx: *mut RedisModuleCtx,
    _argv: *mut *mut RedisModuleString,
    _argc: c_int,
) -> c_int {
    guarded(format_args!("{} unblock", W::NAME), || {
        // SAFETY: `ctx` is the live context of this timeout callback; `c` stays in the closure.
        let c = unsafe { Ctx::from_raw(ctx) };
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        let outcome = match unsafe { raw::RedisModule_GetBlockedClientHandle } {
            // SAFETY: `ctx` is a blocked client's callback context, as the API requires.
            Some(get) => match unsafe { get(ctx) } {
                bc if bc.is_null() => None,
                bc => W::unblocked(&c, bc as usize),
            },
            None => None,
        };
        if let Err(e) = W::reply(&c, outcome.as_ref()) {
            c.reply_error(&e);
        }
    });
    raw::REDISMODULE_OK as c_int
}

/// # Safety
/// As [`reply_callback`].
unsafe extern "C" fn disconnect_callback<W: Waits>(
    ctx: *mut RedisModuleCtx,
    bc: *mut RedisModuleBlockedClient,
) {
    guarded(format_args!("{} disconnect", W::NAME), || {
        if !bc.is_null() {
            // SAFETY: `ctx` is the live context of this callback; the `Ctx` is a temporary.
            W::disconnected(&unsafe { Ctx::from_raw(ctx) }, bc as usize);
        }
    });
}

/// # Safety
/// Called by the server, once, with the privdata given to `UnblockClient`.
unsafe extern "C" fn free_privdata<W: Waits>(_ctx: *mut RedisModuleCtx, privdata: *mut c_void) {
    if !privdata.is_null() {
        // SAFETY: every privdata `unblock::<W>` hands to UnblockClient is a
        // `Box<W::Outcome>`, and the server frees it through here exactly once, after the
        // reply callback.
        drop(unsafe { Box::from_raw(privdata.cast::<W::Outcome>()) });
    }
}
