//! Waiting for a lock server-side: blocked clients in FIFO queues, hand-off to the first
//! waiter, and the timers and events that trigger a hand-off when nobody sends a command.
//!
//! - `HACK.LOCK ... WAIT` on a held lock blocks the client (`RedisModule_BlockClient` with
//!   the WAIT timeout) and queues it (`queue.rs`). Nothing is replicated: a wait is no
//!   write.
//! - A hand-off happens where the lock becomes free: inside UNLOCK, inside a LOCK that
//!   finds a free lock with waiters, or in a timer callback. It writes the lock for the
//!   first waiter with a new token, replicates `HACK.LOCKSET ... PXAT` from that context
//!   (a command's or a timer's: both reach replicas and the AOF), then unblocks the waiter
//!   with its token; the reply callback only sends it. The lock therefore changes hands in
//!   one step of the event loop, and nobody can take it in between.
//! - Expiry: while a lock has waiters, one timer per lock fires just after the holder's
//!   expiry (`lease::recheck_at`). An early timer (the holder extended) re-arms itself; a
//!   later one is replaced by an earlier one. Key expiry alone wakes nobody.
//! - Deletion (`DEL`, `UNLINK`, `RENAME`, `MOVE`, expiry, eviction) and `FLUSHALL` are seen
//!   through keyspace and server events, which schedule an immediate timer: writes do not
//!   belong inside a keyspace-event callback.
//! - Timers also fire on replicas: a timer writes only on a master that is not loading,
//!   and hands waiters an error when the server is no longer a master (Redis itself also
//!   unblocks them when it turns into a replica) or, in Cluster, no longer serves the
//!   key's slot.
//! - Every blocked client ends in exactly one `RedisModule_UnblockClient`: on hand-off,
//!   on error, in the timeout callback or in the disconnect callback, whichever takes it
//!   out of the queue first.
//!
//! - Semaphore waiters (`semaphore/wait.rs`) are blocked with the same callbacks and
//!   replies; this file's event subscriptions serve them too (one callback per event id),
//!   plus client disconnects (BOUND permits) and loading/promotion (stale bindings).
//!
//! Everything here runs on the server's main thread (commands, timers, event callbacks,
//! blocked-client callbacks), so the queues live in a thread-local.

use std::cell::RefCell;
use std::ffi::c_void;
use std::os::raw::{c_char, c_int};

use redis_module::raw::{
    self, RedisModuleBlockedClient, RedisModuleCtx, RedisModuleEvent, RedisModuleString,
};

use crate::module::args::RStr;
use crate::module::command::log;
use crate::module::ctx::Ctx;
use crate::module::error::{CmdError, WRONGTYPE};
use crate::module::ffi::rm;
use crate::module::io::StrVec;
use crate::module::slot::key_is_local;
use crate::module::typedkey::TypedKey;

use super::datatype::LOCK_TYPE;
use super::lease::{self, Lock};
use super::queue::{KeyId, Queues, Timer, Waiter};
use super::semaphore::wait as sem_wait;
use super::{effect, stats, token};

thread_local! {
    static QUEUES: RefCell<Queues<usize>> = RefCell::new(Queues::new());
}

/// Run `f` on the queues. Never held across a server call (a server call may re-enter us
/// through a keyspace event), so the borrow cannot fail; if it ever did, nothing happens.
fn with_queues<R>(f: impl FnOnce(&mut Queues<usize>) -> R) -> Option<R> {
    QUEUES.with(|q| q.try_borrow_mut().ok().map(|mut q| f(&mut q)))
}

/// A lock as the commands name it: database and key name (borrowed: the owned [`KeyId`]
/// is only built when somebody waits, so the uncontended path allocates nothing here).
#[derive(Clone, Copy)]
pub struct LockName<'a> {
    pub db: i32,
    pub name: &'a [u8],
}

impl LockName<'_> {
    pub fn id(&self) -> KeyId {
        (self.db, self.name.to_vec())
    }
}

/// Waiters queued on this server right now, over all locks (`INFO hacks`).
pub fn waiting_now() -> usize {
    with_queues(|q| q.total()).unwrap_or(0)
}

/// Waiters queued for `lock`.
pub fn queued(lock: &LockName<'_>) -> usize {
    with_queues(|q| if q.is_empty() { 0 } else { q.len(&lock.id()) }).unwrap_or(0)
}

fn queued_id(id: &KeyId) -> usize {
    with_queues(|q| q.len(id)).unwrap_or(0)
}

/// What a blocked client is told when it is unblocked by the module (locks and semaphores).
pub(crate) enum Outcome {
    Granted(u64),
    Failed(CmdError),
}

pub(crate) const NOT_MASTER: CmdError = CmdError::Static(
    "ERR this server is no longer a master: the lock cannot be granted here; retry on the master",
);
pub(crate) const SLOT_MOVED: CmdError = CmdError::Static(
    "ERR the lock's slot is no longer served by this node; retry on the node that serves it",
);

/// Every callback below runs inside the module's one guard.
pub(crate) fn guarded<R>(what: &str, f: impl FnOnce() -> R) -> Option<R> {
    crate::module::guard::guarded(format_args!("lock {what}"), f)
}

/// Release the blocked client `handle` (a `RedisModuleBlockedClient` from `block`, taken out
/// of the queues by the caller: each handle reaches here exactly once).
pub(crate) fn unblock(handle: usize, outcome: Option<Outcome>) {
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let Some(f) = (unsafe { raw::RedisModule_UnblockClient }) else {
        return;
    };
    let privdata = outcome.map_or(std::ptr::null_mut(), |o| Box::into_raw(Box::new(o)));
    // SAFETY: `handle` is a blocked client from `BlockClient` not yet unblocked (the queues
    // hand each one out once); `privdata` is null or a `Box<Outcome>`, which the server
    // passes to `reply_callback` and then to `free_privdata`.
    let status = unsafe { f(handle as *mut RedisModuleBlockedClient, privdata.cast()) };
    if status != raw::REDISMODULE_OK as c_int && !privdata.is_null() {
        // The server did not take it: free it here.
        // SAFETY: `privdata` came from `Box::into_raw` above and the server refused it.
        drop(unsafe { Box::from_raw(privdata) });
    }
}

// ---- blocking ---------------------------------------------------------------------------

/// Block the calling client until it gets the lock (FIFO), its timeout runs out
/// (`timeout_ms`, 0 = none) or it disconnects. The caller has checked that blocking is
/// allowed (not in MULTI/Lua).
pub fn block(
    ctx: &Ctx,
    lock: &LockName<'_>,
    owner: &[u8],
    ttl_ms: i64,
    timeout_ms: i64,
    holder_expiry_ms: Option<i64>,
    now_ms: i64,
) -> Result<(), CmdError> {
    // No server-side timeout: a module timer owns the deadline (`on_deadline`). Redis 7.0
    // checks blocked clients' timeouts just before it runs the replies of clients a module
    // unblocked, so a waiter handed the lock in the iteration its timeout passed was timed
    // out by the server and its token reply dropped: it held a lock it never heard of.
    // With one timer owning the timeout, a waiter is handed the lock or times out, never
    // both (as semaphore waiters, `semaphore/wait.rs`).
    let handle = block_client(ctx, 0)?;
    let key = &lock.id();
    let waiter = Waiter {
        handle,
        owner: owner.to_vec(),
        ttl_ms,
        wake: deadline_timer(ctx, handle, timeout_ms),
    };
    if with_queues(|q| q.push(key.clone(), waiter))
        .flatten()
        .is_none()
    {
        let e = CmdError::Static("ERR internal error: could not queue the client");
        unblock(handle, Some(Outcome::Failed(e.clone())));
        return Ok(());
    }
    stats::WAITS.incr();
    if let Some(at) = holder_expiry_ms {
        ensure_timer(ctx, key, lease::recheck_at(at), now_ms);
    }
    Ok(())
}

/// Block the calling client with this file's callbacks (reply, timeout, disconnect: a
/// semaphore waiter is blocked the same way); returns its handle, which the caller queues.
pub(crate) fn block_client(ctx: &Ctx, timeout_ms: i64) -> Result<usize, CmdError> {
    let block_client = rm!(RedisModule_BlockClient);
    let on_disconnect = rm!(RedisModule_SetDisconnectCallback);
    // SAFETY: the live context of the calling command; the callbacks have the signatures the
    // server calls them with.
    let bc = unsafe {
        block_client(
            ctx.raw(),
            Some(reply_callback),
            Some(timeout_callback),
            Some(free_privdata),
            timeout_ms,
        )
    };
    if bc.is_null() {
        return Err(CmdError::Static(
            "ERR internal error: could not block the client",
        ));
    }
    // SAFETY: `bc` is the non-null blocked client just created.
    unsafe { on_disconnect(bc, Some(disconnect_callback)) };
    Ok(bc as usize)
}

/// A timer that ends the wait of `handle` after `timeout_ms` (none for 0: no limit).
fn deadline_timer(ctx: &Ctx, handle: usize, timeout_ms: i64) -> Option<u64> {
    if timeout_ms <= 0 {
        return None;
    }
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let create = unsafe { raw::RedisModule_CreateTimer }?;
    let data = Box::into_raw(Box::new(handle));
    // SAFETY: a live context; `data` is a `Box<usize>`, reclaimed exactly once: by
    // `on_deadline` when the timer fires or by `stop_wake` when stopping it succeeds.
    Some(unsafe { create(ctx.raw(), timeout_ms, Some(on_deadline), data.cast()) })
}

/// # Safety
/// Called by the server when a timer from `deadline_timer` fires, with its data.
unsafe extern "C" fn on_deadline(ctx: *mut RedisModuleCtx, data: *mut c_void) {
    if data.is_null() {
        return;
    }
    // SAFETY: the data of every `on_deadline` timer is a `Box<usize>` (`deadline_timer`),
    // reclaimed here once (a stopped timer never fires).
    let handle = *unsafe { Box::from_raw(data.cast::<usize>()) };
    guarded("wait timeout", || {
        // SAFETY: `ctx` is the live timer context of this callback; `c` stays in the closure.
        let c = unsafe { Ctx::from_raw(ctx) };
        // Still queued: nobody handed it the lock, so its wait ends here (reply nil). Every
        // other way out of the queue stops this timer first.
        let Some(left) = with_queues(|q| q.remove(handle)).flatten() else {
            return;
        };
        if let Some(t) = left.orphaned_timer {
            stop_timer(&c, t);
        }
        stats::WAIT_TIMEOUTS.incr();
        unblock(handle, None);
    });
}

/// Stop a waiter's deadline timer (it left another way) and free its data.
fn stop_wake(ctx: &Ctx, w: &Waiter<usize>) {
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let (Some(id), Some(stop)) = (w.wake, unsafe { raw::RedisModule_StopTimer }) else {
        return;
    };
    let mut data: *mut c_void = std::ptr::null_mut();
    // SAFETY: a live context; `data` is a valid out-pointer, set only on success.
    if unsafe { stop(ctx.raw(), id, &mut data) } == raw::REDISMODULE_OK as c_int && !data.is_null()
    {
        // SAFETY: stopped before firing, so its `Box<usize>` (from `deadline_timer`) is ours
        // again and `on_deadline` never runs for it.
        drop(unsafe { Box::from_raw(data.cast::<usize>()) });
    }
}

/// # Safety
/// Called by the server with the reply context of a client `block` blocked and `unblock`
/// released (likewise the timeout and disconnect callbacks, with theirs).
unsafe extern "C" fn reply_callback(
    ctx: *mut RedisModuleCtx,
    _argv: *mut *mut RedisModuleString,
    _argc: c_int,
) -> c_int {
    guarded("reply", || {
        // SAFETY: `ctx` is the live reply context of this callback; `c` stays in the closure.
        let c = unsafe { Ctx::from_raw(ctx) };
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        let Some(get) = (unsafe { raw::RedisModule_GetBlockedClientPrivateData }) else {
            return;
        };
        // SAFETY: the privdata `unblock` gave `UnblockClient`: null or a `Box<Outcome>` the
        // server keeps until `free_privdata`, after this callback.
        let outcome = unsafe { get(ctx).cast::<Outcome>().as_ref() };
        let _ = match outcome {
            Some(Outcome::Granted(token)) => c.reply_i64(i64::try_from(*token).unwrap_or(i64::MAX)),
            Some(Outcome::Failed(e)) => {
                c.reply_error(e);
                Ok(())
            }
            None => c.reply_null(),
        };
    });
    raw::REDISMODULE_OK as c_int
}

/// WAIT ran out: leave the queue, answer nil.
///
/// # Safety
/// As [`reply_callback`].
unsafe extern "C" fn timeout_callback(
    ctx: *mut RedisModuleCtx,
    _argv: *mut *mut RedisModuleString,
    _argc: c_int,
) -> c_int {
    guarded("timeout", || {
        // SAFETY: `ctx` is the live context of this timeout callback; `c` stays in the closure.
        let c = unsafe { Ctx::from_raw(ctx) };
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        if let Some(get) = unsafe { raw::RedisModule_GetBlockedClientHandle } {
            // SAFETY: `ctx` is a blocked client's callback context, as the API requires.
            let bc = unsafe { get(ctx) };
            if !bc.is_null() && leave(&c, bc as usize) {
                stats::WAIT_TIMEOUTS.incr();
            }
        }
        let _ = c.reply_null();
    });
    raw::REDISMODULE_OK as c_int
}

/// The client went away while waiting (or the server unblocked it): leave the queue.
///
/// # Safety
/// As [`reply_callback`].
unsafe extern "C" fn disconnect_callback(
    ctx: *mut RedisModuleCtx,
    bc: *mut RedisModuleBlockedClient,
) {
    guarded("disconnect", || {
        // SAFETY: `ctx` is the live context of this callback; the `Ctx` is a temporary.
        if !bc.is_null() && leave(&unsafe { Ctx::from_raw(ctx) }, bc as usize) {
            stats::WAIT_DISCONNECTS.incr();
        }
    });
}

/// Take a waiter out of its queue and release its blocked-client handle. False when it
/// was no longer queued (it was already served: that path unblocked it).
fn leave(ctx: &Ctx, handle: usize) -> bool {
    let Some(left) = with_queues(|q| q.remove(handle)).flatten() else {
        // Not a lock waiter: perhaps a semaphore's.
        return super::semaphore::wait::leave(ctx, handle);
    };
    if let Some(t) = left.orphaned_timer {
        stop_timer(ctx, t);
    }
    stop_wake(ctx, &left.waiter);
    unblock(handle, None);
    true
}

/// # Safety
/// Called by the server, once, with the privdata given to `UnblockClient`.
unsafe extern "C" fn free_privdata(_ctx: *mut RedisModuleCtx, privdata: *mut c_void) {
    if !privdata.is_null() {
        // SAFETY: every privdata we hand to UnblockClient is a `Box<Outcome>` (`unblock`),
        // and the server frees it through here exactly once, after the reply callback.
        drop(unsafe { Box::from_raw(privdata.cast::<Outcome>()) });
    }
}

// ---- hand-off ---------------------------------------------------------------------------

/// The lock in `key` is free: give it to the first waiter of `id` (new token, the
/// waiter's TTL), replicate it, and unblock the waiter with its token. Returns whether
/// there was a waiter. The waiter is unblocked on every path, with an error if the write
/// failed.
pub fn hand_off(
    ctx: &Ctx,
    key: &mut TypedKey<'_, Lock>,
    name: RStr,
    lock: &LockName<'_>,
    now_ms: i64,
) -> Result<bool, CmdError> {
    if queued(lock) == 0 {
        return Ok(false);
    }
    let id = &lock.id();
    let Some(left) = with_queues(|q| q.pop_front(id)).flatten() else {
        return Ok(false);
    };
    if let Some(t) = left.orphaned_timer {
        stop_timer(ctx, t);
    }
    let w = left.waiter;
    stop_wake(ctx, &w);
    let at = lease::expiry(now_ms, w.ttl_ms);
    // The token's clock term is the hand-off's own clock read (`now_ms`), as its expiry.
    let installed = token::allocate_at(now_ms.saturating_mul(1000)).and_then(|token| {
        effect::install(ctx, key, name, effect::Owner::Bytes(&w.owner), token, at)?;
        Ok(token)
    });
    match installed {
        Ok(token) => {
            stats::HANDOFFS.incr();
            unblock(w.handle, Some(Outcome::Granted(token)));
            Ok(true)
        }
        Err(e) => {
            stats::WAIT_ERRORS.incr();
            unblock(w.handle, Some(Outcome::Failed(e.clone())));
            Err(e)
        }
    }
}

/// While `lock` has waiters, make sure a timer looks at it again right after its
/// holder's expiry.
pub fn watch(
    ctx: &Ctx,
    key: &TypedKey<'_, Lock>,
    lock: &LockName<'_>,
    now_ms: i64,
) -> Result<(), CmdError> {
    if queued(lock) == 0 {
        return Ok(());
    }
    if let Some(at) = key.abs_expire_ms()? {
        ensure_timer(ctx, &lock.id(), lease::recheck_at(at), now_ms);
    }
    Ok(())
}

/// Every waiter of `id` gets `err` (and leaves).
fn fail_all(ctx: &Ctx, id: &KeyId, err: &CmdError) {
    let Some((waiters, timer)) = with_queues(|q| q.take_all(id)) else {
        return;
    };
    if let Some(t) = timer {
        stop_timer(ctx, t);
    }
    for w in waiters {
        stop_wake(ctx, &w);
        stats::WAIT_ERRORS.incr();
        unblock(w.handle, Some(Outcome::Failed(err.clone())));
    }
}

// ---- timers -----------------------------------------------------------------------------

/// Have a timer look at `id` at `due_ms` (or earlier). A timer due no later is kept: it
/// re-arms itself if the lock is still held when it fires.
fn ensure_timer(ctx: &Ctx, id: &KeyId, due_ms: i64, now_ms: i64) {
    if with_queues(|q| q.timer(id))
        .flatten()
        .is_some_and(|t| t.due_ms <= due_ms)
    {
        return;
    }
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let Some(create) = (unsafe { raw::RedisModule_CreateTimer }) else {
        return;
    };
    let delay = due_ms.saturating_sub(now_ms).max(0);
    let data = Box::into_raw(Box::new(id.clone()));
    // SAFETY: a live context; `data` is a `Box<KeyId>`, reclaimed exactly once: by
    // `on_timer` when it fires, or by `stop_timer` when stopping it succeeds.
    let timer_id = unsafe { create(ctx.raw(), delay, Some(on_timer), data.cast()) };
    let timer = Timer {
        id: timer_id,
        due_ms,
    };
    match with_queues(|q| q.set_timer(id, timer)) {
        Some(Some(old)) => stop_timer(ctx, old),
        Some(None) => {}
        // Unreachable (the queues are never borrowed here); stop rather than leak.
        None => stop_timer(ctx, timer),
    }
}

pub(crate) fn stop_timer(ctx: &Ctx, t: Timer) {
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let Some(stop) = (unsafe { raw::RedisModule_StopTimer }) else {
        return;
    };
    let mut data: *mut c_void = std::ptr::null_mut();
    // SAFETY: a live context; `data` is a valid out-pointer, set only on success.
    if unsafe { stop(ctx.raw(), t.id, &mut data) } == raw::REDISMODULE_OK as c_int
        && !data.is_null()
    {
        // SAFETY: the timer was stopped before firing, so its data (null for a wake timer, else
        // the `Box<KeyId>` from `ensure_timer`) is ours again, and `on_timer` never runs.
        drop(unsafe { Box::from_raw(data.cast::<KeyId>()) });
    }
}

/// # Safety
/// Called by the server when a timer from `ensure_timer` fires, with its context and data.
unsafe extern "C" fn on_timer(ctx: *mut RedisModuleCtx, data: *mut c_void) {
    if data.is_null() {
        return;
    }
    // SAFETY: every `on_timer` timer's data is a `Box<KeyId>` (`ensure_timer`), and the
    // server calls this once per timer. `stop_timer` cannot free it too: the server drops a
    // fired timer only after this callback returns, but the closure below first clears the
    // record of this timer, so nothing in it stops this id (`stop_timer` only gets ids from
    // that record, or one `ensure_timer` just created), and afterwards the id is gone.
    let id = *unsafe { Box::from_raw(data.cast::<KeyId>()) };
    guarded("timer", || {
        // SAFETY: `ctx` is the live timer context of this callback; `c` stays in the closure.
        let c = unsafe { Ctx::from_raw(ctx) };
        // This is the timer recorded for `id` (there is at most one, and a replaced or
        // orphaned one is stopped): forget it before anything can record a new one.
        with_queues(|q| q.clear_timer(&id));
        if let Err(e) = service(&c, &id) {
            log(
                Some(&c),
                c"warning",
                &format!("hacks: lock hand-off failed: {}", e.text()),
            );
        }
    });
}

/// A timer's look at a lock with waiters: hand it off if it is free, else watch the
/// holder's expiry again.
fn service(ctx: &Ctx, id: &KeyId) -> Result<(), CmdError> {
    if queued_id(id) == 0 {
        return Ok(());
    }
    let flags = ctx.flags()?;
    if flags & raw::REDISMODULE_CTX_FLAGS_MASTER == 0 {
        fail_all(ctx, id, &NOT_MASTER);
        return Ok(());
    }
    let ms = rm!(RedisModule_Milliseconds);
    // SAFETY: an API function checked present by `rm!`; it takes no arguments.
    let now_ms = unsafe { ms() };
    if flags & raw::REDISMODULE_CTX_FLAGS_LOADING != 0 {
        ensure_timer(ctx, id, now_ms.saturating_add(10), now_ms);
        return Ok(());
    }
    let select = rm!(RedisModule_SelectDb);
    // SAFETY: the live timer context (a timer's context may select a db).
    if unsafe { select(ctx.raw(), id.0) } != raw::REDISMODULE_OK as c_int {
        return Err(CmdError::Static(
            "ERR internal error: could not select the db",
        ));
    }
    if flags & raw::REDISMODULE_CTX_FLAGS_CLUSTER != 0 && !key_is_local(ctx, &id.1) {
        fail_all(ctx, id, &SLOT_MOVED);
        return Ok(());
    }
    let mut name = StrVec::with_capacity(1);
    if !name.push(&id.1) {
        return Err(CmdError::Static("ERR internal error: out of memory"));
    }
    // `name` (the StrVec) outlives every use of this `RStr` below.
    let name = name
        .first()
        .ok_or(CmdError::Static("ERR internal error: out of memory"))?;
    let mut key = match TypedKey::open(ctx, name, &LOCK_TYPE, true) {
        Ok(k) => k,
        Err(e) if e == WRONGTYPE => {
            fail_all(ctx, id, &WRONGTYPE);
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let lock = LockName {
        db: id.0,
        name: &id.1,
    };
    if key.get()?.is_none() {
        hand_off(ctx, &mut key, name, &lock, now_ms)?;
    }
    watch(ctx, &key, &lock, now_ms)
}

// ---- events -----------------------------------------------------------------------------

/// A key was deleted, renamed away, moved, expired or evicted: if it is a lock with
/// waiters, look at it right away (from a timer: no writes inside an event callback).
///
/// # Safety
/// Called by the server with the event's live context and key name.
unsafe extern "C" fn on_keyspace_event(
    ctx: *mut RedisModuleCtx,
    _type: c_int,
    event: *const c_char,
    key: *mut RedisModuleString,
) -> c_int {
    if with_queues(|q| q.is_empty()).unwrap_or(true)
        && sem_wait::idle()
        && !super::semaphore::bound::any()
    {
        return raw::REDISMODULE_OK as c_int;
    }
    guarded("keyspace event", || {
        // SAFETY: `ctx` is the live context of this event; `c` stays in the closure.
        let c = unsafe { Ctx::from_raw(ctx) };
        // SAFETY: copies of API-table entries, written once at load (see `ffi::rm!`).
        let (Ok(db), Some(ptr_len), Some(ms)) = (
            c.selected_db(),
            unsafe { raw::RedisModule_StringPtrLen },
            unsafe { raw::RedisModule_Milliseconds },
        ) else {
            return;
        };
        let mut len = 0usize;
        // SAFETY: `key` is the event's key name, valid for this callback; `len` is a valid
        // out-pointer.
        let p = unsafe { ptr_len(key, &mut len) };
        if p.is_null() {
            return;
        }
        let id: KeyId = (
            db,
            // SAFETY: non-null pointer to the `len` bytes of `key`, copied at once.
            unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }.to_vec(),
        );
        // SAFETY: an API function present (checked above); it takes no arguments.
        let now = unsafe { ms() };
        if queued_id(&id) > 0 {
            ensure_timer(&c, &id, now, now);
        }
        if sem_wait::queued(&id) > 0 {
            sem_wait::poke(&c, &id, now);
        }
        // A semaphore that arrived under a new name keeps its BOUND holders' connections.
        if !event.is_null() {
            // SAFETY: the event name the server passed: a NUL-terminated static string.
            let name = unsafe { std::ffi::CStr::from_ptr(event) }.to_bytes();
            if matches!(name, b"rename_to" | b"move_to" | b"copy_to") {
                // SAFETY: `key` is the event's key name, valid for this callback, which the
                // `RStr` does not outlive.
                let name = unsafe { RStr::from_raw(key) };
                super::semaphore::bound::reindex(&c, name, id);
            }
        }
    });
    raw::REDISMODULE_OK as c_int
}

/// `FLUSHALL`/`FLUSHDB` (no per-key events) and role changes.
///
/// # Safety
/// Called by the server with the event's live context.
unsafe extern "C" fn on_server_event(
    ctx: *mut RedisModuleCtx,
    eid: RedisModuleEvent,
    subevent: u64,
    data: *mut c_void,
) {
    guarded("server event", || {
        // SAFETY: `ctx` is the live context of this event; `c` stays in the closure.
        let c = unsafe { Ctx::from_raw(ctx) };
        if eid.id == raw::REDISMODULE_EVENT_CLIENT_CHANGE {
            // Every connection's close passes here: nothing is allocated unless it had
            // BOUND semaphore permits.
            if subevent == raw::REDISMODULE_SUBEVENT_CLIENT_CHANGE_DISCONNECTED && !data.is_null() {
                // SAFETY: for this event the server passes a `RedisModuleClientInfo`
                // (version 1, the only one) valid for the callback; only `id` is read.
                let client = unsafe { (*data.cast::<raw::RedisModuleClientInfo>()).id };
                super::semaphore::bound::disconnected(&c, client);
            }
            return;
        }
        let keys = with_queues(|q| q.keys()).unwrap_or_default();
        let sem_keys = sem_wait::keys();
        if eid.id == raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED
            && subevent == raw::REDISMODULE_EVENT_REPLROLECHANGED_NOW_REPLICA
        {
            for id in &keys {
                fail_all(&c, id, &NOT_MASTER);
            }
            for id in &sem_keys {
                sem_wait::fail_all(&c, id, &NOT_MASTER);
            }
        } else if eid.id == raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED
            && subevent == raw::REDISMODULE_EVENT_REPLROLECHANGED_NOW_MASTER
        {
            // Client ids of the old master mean nothing here: release its BOUND holders.
            super::semaphore::bound::schedule_sweep(&c);
        } else if eid.id == raw::REDISMODULE_EVENT_LOADING
            && subevent == raw::REDISMODULE_SUBEVENT_LOADING_ENDED
        {
            // Nor do the client ids of the process that wrote the RDB/AOF.
            super::semaphore::bound::schedule_sweep(&c);
        } else if eid.id == raw::REDISMODULE_EVENT_FLUSHDB
            && subevent == raw::REDISMODULE_SUBEVENT_FLUSHDB_END
        {
            // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
            let Some(ms) = (unsafe { raw::RedisModule_Milliseconds }) else {
                return;
            };
            // SAFETY: an API function present (checked above); it takes no arguments.
            let now = unsafe { ms() };
            for id in &keys {
                ensure_timer(&c, id, now, now);
            }
            for id in &sem_keys {
                sem_wait::poke(&c, id, now);
            }
        }
    });
}

/// Subscribe to the events above (module load only).
pub fn register(ctx: &Ctx) -> Result<(), String> {
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let subscribe = unsafe { raw::RedisModule_SubscribeToKeyspaceEvents }
        .ok_or("no RedisModule_SubscribeToKeyspaceEvents")?;
    let types = raw::REDISMODULE_NOTIFY_GENERIC
        | raw::REDISMODULE_NOTIFY_EXPIRED
        | raw::REDISMODULE_NOTIFY_EVICTED;
    // SAFETY: the live load context; `on_keyspace_event` has the signature the server calls.
    if unsafe { subscribe(ctx.raw(), types, Some(on_keyspace_event)) }
        != raw::REDISMODULE_OK as c_int
    {
        return Err("could not subscribe to keyspace events".into());
    }
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let server = unsafe { raw::RedisModule_SubscribeToServerEvent }
        .ok_or("no RedisModule_SubscribeToServerEvent")?;
    // One callback per event id for the whole module: semaphores are served from here too
    // (client disconnects for BOUND; loading and promotion for stale bindings).
    for id in [
        raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED,
        raw::REDISMODULE_EVENT_FLUSHDB,
        raw::REDISMODULE_EVENT_CLIENT_CHANGE,
        raw::REDISMODULE_EVENT_LOADING,
    ] {
        let event = RedisModuleEvent { id, dataver: 1 };
        // SAFETY: the live load context; a known event id; `on_server_event` has the
        // signature the server calls.
        if unsafe { server(ctx.raw(), event, Some(on_server_event)) }
            != raw::REDISMODULE_OK as c_int
        {
            return Err(format!("could not subscribe to server event {id}"));
        }
    }
    Ok(())
}
