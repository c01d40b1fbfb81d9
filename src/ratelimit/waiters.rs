//! `WAIT timeout_ms` on HACK.RATEHIT and HACK.QUOTA: a denied call blocks its client on the
//! server until its limits admit it, in FIFO order per key (the queues: `queue.rs`).
//!
//! - Admission happens where capacity appears: in a timer set for the moment the queue's
//!   head can be admitted (the algorithm's `retry_after_ms`), after a refund, or after a
//!   `DEL`/expiry/overwrite of a key (keyspace events schedule an immediate timer: no writes
//!   inside an event callback). Admission charges the keys through `call::run`, which
//!   replicates the effects (`SET ... PXAT` / `DEL`) from that context, then unblocks the
//!   client with the answer; the reply callback only sends it. Nothing polls. (A plain
//!   `SET` over a key is not an event we subscribe to: it is seen at the queue's next timer.)
//! - FIFO: a waiter is admitted only at the head of every one of its keys' queues, and a
//!   head that does not fit yet holds back those behind it (even smaller ones). Callers
//!   without WAIT are never queued or slowed: on a key with waiters, a positive charge
//!   first lets the queue admit whoever fits now, then is denied if waiters remain (it does
//!   not barge ahead of them); refunds and COST 0 pass.
//! - A refund that frees room for several waiters admits them all, in one go.
//! - Timeout and `CLIENT UNBLOCK`: the waiter leaves, is answered with the denied verdict
//!   (and `retry_after_ms`) of that moment, and is never charged. Disconnect: it leaves.
//! - Timers also fire on replicas: admission only on a master that is not loading; when
//!   the server is no longer a master, or in Cluster no longer serves a key's slot, the
//!   waiters get an error.
//! - Every blocked client ends in exactly one `RedisModule_UnblockClient` (admission,
//!   error) or in the timeout/disconnect callback, whichever takes it out of the queue first.
//!
//! Everything here runs on the server's main thread, so the queues live in a thread-local.

use std::cell::RefCell;
use std::ffi::c_void;
use std::os::raw::{c_char, c_int};

use redis_module::raw::{
    self, RedisModuleBlockedClient, RedisModuleCtx, RedisModuleEvent, RedisModuleString,
};

use crate::module::args::RStr;
use crate::module::command::log;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::ffi::rm;
use crate::module::io::StrVec;
use crate::module::slot::key_is_local;

use super::call::{self, Answer, Call};
use super::queue::{KeyId, Queues, Timer};
use super::request::{Limit, MAX_KEYS};
use super::stats;

/// How the waiter's answer is shaped: RATEHIT's five integers or QUOTA's map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    RateHit,
    Quota,
}

/// What a waiter asked for (its keys are in the queue entry).
#[derive(Debug, Clone)]
struct Waiting {
    reply: Reply,
    limits: Vec<Limit>,
    cost: i64,
    partial: bool,
    peek: bool,
    /// The timer that wakes the event loop at the WAIT deadline.
    wake: Option<u64>,
}

thread_local! {
    static QUEUES: RefCell<Queues<Waiting>> = RefCell::new(Queues::new());
}

/// Run `f` on the queues. Never held across a server call (a server call may re-enter us
/// through a keyspace event), so the borrow cannot fail; if it ever did, nothing happens.
fn with_queues<R>(f: impl FnOnce(&mut Queues<Waiting>) -> R) -> Option<R> {
    QUEUES.with(|q| q.try_borrow_mut().ok().map(|mut q| f(&mut q)))
}

/// Whether anybody waits anywhere (the one check on the hot path).
pub fn any_waiting() -> bool {
    QUEUES.with(|q| q.try_borrow().map_or(true, |q| !q.is_empty()))
}

/// Waiters queued right now (`INFO hacks` gauge).
pub fn waiting_now() -> u64 {
    with_queues(|q| q.total() as u64).unwrap_or(0)
}

/// What a blocked client is told when the module unblocks it.
enum Outcome {
    Answer(Box<Answer>, Reply),
    Failed(CmdError),
}

const NOT_MASTER: CmdError = CmdError::Static(
    "ERR this server is no longer a master: the call cannot be admitted here; retry on the master",
);
const SLOT_MOVED: CmdError = CmdError::Static(
    "ERR the key's slot is no longer served by this node; retry on the node that serves it",
);

fn guarded<R>(what: &str, f: impl FnOnce() -> R) -> Option<R> {
    crate::module::guard::guarded(format_args!("ratelimit {what}"), f)
}

fn ids(db: i32, names: &[&[u8]]) -> Vec<KeyId> {
    names.iter().map(|n| (db, n.to_vec())).collect()
}

/// Bit `i` set: key `i` has waiters.
fn queued_mask(db: i32, names: &[&[u8]]) -> u32 {
    with_queues(|q| {
        let mut m = 0u32;
        for (i, n) in names.iter().enumerate().take(MAX_KEYS) {
            if q.len(&(db, n.to_vec())) > 0 {
                m |= 1u32
                    .checked_shl(u32::try_from(i).unwrap_or(31))
                    .unwrap_or(0);
            }
        }
        m
    })
    .unwrap_or(0)
}

/// A fresh clock reading (timers and callbacks run outside any command, where the cached
/// command time may be stale).
fn fresh_now_us() -> i64 {
    // SAFETY: copies of API-table entries, written once at load (see `ffi::rm!`).
    if let Some(us) = unsafe { raw::RedisModule_Microseconds } {
        // SAFETY: an API function present (checked above); it takes no arguments.
        return unsafe { us() };
    }
    // SAFETY: as above.
    match unsafe { raw::RedisModule_Milliseconds } {
        // SAFETY: an API function present (checked above); it takes no arguments.
        Some(ms) => unsafe { ms() }.saturating_mul(1000),
        None => 0,
    }
}

/// The command path for a call that may wait, or that touches keys while somebody waits:
/// serve the queues of its keys first, then decide the call (denied on a key that still has
/// waiters), and block when it is denied, may wait, and can ever be admitted. `Some`: the
/// answer to send now; `None`: the client is blocked (or was answered with an error).
pub fn call_or_block(
    ctx: &Ctx,
    c: Call<'_>,
    names: &[&[u8]],
    wait_ms: i64,
    now_us: i64,
    reply: Reply,
) -> Result<Option<Answer>, CmdError> {
    let db = ctx.selected_db()?;
    let flags = ctx.flags()?;
    if any_waiting() {
        service_keys(ctx, ids(db, names));
    }
    let queued = queued_mask(db, names);
    let answer = call::run(ctx, c, now_us, queued)?;
    if call::frees_capacity(&c) && queued != 0 {
        service_keys(ctx, ids(db, names));
    }
    // Inside MULTI or a script a WAIT cannot block: it behaves as timeout 0.
    let may_block = wait_ms > 0
        && c.cost > 0
        && flags
            & (raw::REDISMODULE_CTX_FLAGS_DENY_BLOCKING
                | raw::REDISMODULE_CTX_FLAGS_MULTI
                | raw::REDISMODULE_CTX_FLAGS_LUA
                | raw::REDISMODULE_CTX_FLAGS_REPLICATED
                | raw::REDISMODULE_CTX_FLAGS_LOADING)
            == 0;
    if answer.allowed || !may_block || answer.retry_after_ms < 0 {
        return Ok(Some(answer));
    }
    block(ctx, c, names, db, wait_ms, reply)?;
    Ok(None)
}

fn block(
    ctx: &Ctx,
    c: Call<'_>,
    names: &[&[u8]],
    db: i32,
    wait_ms: i64,
    reply: Reply,
) -> Result<(), CmdError> {
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
            wait_ms,
        )
    };
    if bc.is_null() {
        return Err(CmdError::Static(
            "ERR internal error: could not block the client",
        ));
    }
    // SAFETY: `bc` is the non-null blocked client just created.
    unsafe { on_disconnect(bc, Some(disconnect_callback)) };
    let handle = bc as usize;
    let keys = ids(db, names);
    let waiting = Waiting {
        reply,
        limits: c.limits.to_vec(),
        cost: c.cost,
        partial: c.partial,
        peek: c.peek,
        wake: wake_at_deadline(ctx, wait_ms),
    };
    if with_queues(|q| q.push(handle, keys.clone(), waiting))
        .flatten()
        .is_none()
    {
        let e = CmdError::Static("ERR internal error: could not queue the client");
        unblock(handle, Some(Outcome::Failed(e)));
        return Ok(());
    }
    stats::WAITS.incr();
    service_keys(ctx, keys);
    Ok(())
}

/// Release the blocked client `handle` (taken out of the queues by the caller: each handle
/// reaches here exactly once).
fn unblock(handle: usize, outcome: Option<Outcome>) {
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
        // SAFETY: `privdata` came from `Box::into_raw` above and the server refused it.
        drop(unsafe { Box::from_raw(privdata) });
    }
}

/// Redis checks blocked clients' timeouts when its event loop wakes, which an idle server
/// does only at `hz`: a timer just past the deadline wakes it (it does nothing itself).
fn wake_at_deadline(ctx: &Ctx, timeout_ms: i64) -> Option<u64> {
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let create = unsafe { raw::RedisModule_CreateTimer }?;
    // SAFETY: the live context of the calling command; `on_wake` ignores its data.
    Some(unsafe {
        create(
            ctx.raw(),
            timeout_ms.saturating_add(1),
            Some(on_wake),
            std::ptr::null_mut(),
        )
    })
}

/// # Safety
/// Called by the server when a wake timer fires; touches nothing.
unsafe extern "C" fn on_wake(_ctx: *mut RedisModuleCtx, _data: *mut c_void) {}

fn stop_wake(ctx: &Ctx, w: &Waiting) {
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    if let (Some(id), Some(stop)) = (w.wake, unsafe { raw::RedisModule_StopTimer }) {
        let mut data: *mut c_void = std::ptr::null_mut();
        // SAFETY: a live context; `data` is a valid out-pointer (a wake timer's data is null,
        // so nothing is leaked). Fails harmlessly when the timer already fired.
        unsafe { stop(ctx.raw(), id, &mut data) };
    }
}

// ---- replies ----------------------------------------------------------------------------

/// HACK.QUOTA's reply: a map (RESP3) or flat name/value array (RESP2).
pub fn reply_quota(ctx: &Ctx, a: &Answer) -> Result<(), CmdError> {
    ctx.reply_map(5)?;
    ctx.reply_bulk(b"allowed")?;
    ctx.reply_i64(i64::from(a.allowed))?;
    ctx.reply_bulk(b"granted")?;
    ctx.reply_i64(a.granted)?;
    ctx.reply_bulk(b"denied")?;
    let denied = a.denied.count_ones() as usize;
    ctx.reply_array(denied)?;
    for i in 0..a.n {
        if a.denied
            & 1u32
                .checked_shl(u32::try_from(i).unwrap_or(31))
                .unwrap_or(0)
            != 0
        {
            ctx.reply_i64(i64::try_from(i).unwrap_or(0))?;
        }
    }
    ctx.reply_bulk(b"retry_after_ms")?;
    ctx.reply_i64(a.retry_after_ms)?;
    ctx.reply_bulk(b"limits")?;
    ctx.reply_array(a.n)?;
    for v in a.verdicts() {
        ctx.reply_map(3)?;
        ctx.reply_bulk(b"limit")?;
        ctx.reply_i64(v.limit)?;
        ctx.reply_bulk(b"remaining")?;
        ctx.reply_i64(v.remaining)?;
        ctx.reply_bulk(b"reset_after_ms")?;
        ctx.reply_i64(v.reset_after_ms)?;
    }
    Ok(())
}

pub fn reply_ratehit(ctx: &Ctx, a: &Answer) -> Result<(), CmdError> {
    ctx.reply_array(5)?;
    for v in a.ratehit_array() {
        ctx.reply_i64(v)?;
    }
    Ok(())
}

fn send(ctx: &Ctx, a: &Answer, reply: Reply) -> Result<(), CmdError> {
    match reply {
        Reply::RateHit => reply_ratehit(ctx, a),
        Reply::Quota => reply_quota(ctx, a),
    }
}

// ---- blocked-client callbacks -----------------------------------------------------------

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
            Some(Outcome::Answer(a, reply)) => send(&c, a, *reply),
            Some(Outcome::Failed(e)) => {
                c.reply_error(e);
                Ok(())
            }
            None => c.reply_null(),
        };
    });
    raw::REDISMODULE_OK as c_int
}

/// WAIT ran out (or `CLIENT UNBLOCK`): leave the queues, answer the denied verdict of now,
/// charge nothing.
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
        let Some(get) = (unsafe { raw::RedisModule_GetBlockedClientHandle }) else {
            let _ = c.reply_null();
            return;
        };
        // SAFETY: `ctx` is a blocked client's callback context, as the API requires.
        let bc = unsafe { get(ctx) };
        let Some((keys, w)) = leave(&c, bc as usize) else {
            let _ = c.reply_null();
            return;
        };
        stats::WAIT_TIMEOUTS.incr();
        let answered = verdict_now(&c, &keys, &w).and_then(|a| send(&c, &a, w.reply));
        if let Err(e) = answered {
            c.reply_error(&e);
        }
    });
    raw::REDISMODULE_OK as c_int
}

/// The denied verdict a timed-out waiter gets: its call decided now, as PEEK.
fn verdict_now(ctx: &Ctx, keys: &[KeyId], w: &Waiting) -> Result<Answer, CmdError> {
    let mut names = StrVec::with_capacity(keys.len());
    for (_, k) in keys {
        if !names.push(k) {
            return Err(CmdError::Static("ERR internal error: out of memory"));
        }
    }
    let rs: Vec<RStr> = (0..names.len()).filter_map(|i| names.get(i)).collect();
    let c = Call {
        names: &rs,
        limits: &w.limits,
        cost: w.cost,
        partial: w.partial,
        peek: true,
    };
    let mut a = call::run(ctx, c, fresh_now_us(), 0)?;
    if a.allowed {
        // It fits now, but the queue (or the deadline) came first: still a denial, and
        // the earliest retry is at once.
        a.allowed = false;
        a.granted = 0;
        a.retry_after_ms = 0;
    }
    Ok(a)
}

/// The client went away while waiting: leave the queues, uncharged.
///
/// # Safety
/// As [`reply_callback`].
unsafe extern "C" fn disconnect_callback(
    ctx: *mut RedisModuleCtx,
    bc: *mut RedisModuleBlockedClient,
) {
    guarded("disconnect", || {
        // SAFETY: `ctx` is the live context of this callback; the `Ctx` is a temporary.
        let c = unsafe { Ctx::from_raw(ctx) };
        if !bc.is_null() && leave(&c, bc as usize).is_some() {
            stats::WAIT_DISCONNECTS.incr();
        }
    });
}

/// Take a waiter out of its queues (its keys' queues then get a look right away: the next
/// in line may fit now). `None` when it was no longer queued (already served).
fn leave(ctx: &Ctx, handle: usize) -> Option<(Vec<KeyId>, Waiting)> {
    let seq = with_queues(|q| q.seq_of(handle)).flatten()?;
    let (entry, orphaned) = with_queues(|q| q.remove(seq)).flatten()?;
    for t in orphaned {
        stop_timer(ctx, t);
    }
    stop_wake(ctx, &entry.data);
    let now_ms = fresh_now_us().div_euclid(1000);
    for k in &entry.keys {
        ensure_timer(ctx, k, now_ms, now_ms);
    }
    Some((entry.keys, entry.data))
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

// ---- admission --------------------------------------------------------------------------

/// Admit, in order, every waiter of these keys that fits now; set each queue's timer for
/// the moment its head will fit. Admitting a waiter moves on to its other keys.
fn service_keys(ctx: &Ctx, mut work: Vec<KeyId>) {
    // Each round admits a waiter or stops a queue; the bound only guards against a bug.
    let mut rounds: usize = 0;
    while let Some(id) = work.pop() {
        loop {
            rounds = rounds.saturating_add(1);
            if rounds > 1_000_000 {
                return;
            }
            let Some(seq) = with_queues(|q| q.head(&id)).flatten() else {
                break;
            };
            // Not first everywhere: it is looked at again when it becomes so.
            if !with_queues(|q| q.is_head_everywhere(seq)).unwrap_or(false) {
                break;
            }
            match admit(ctx, seq) {
                Ok(Step::Admitted(keys)) => {
                    work.extend(keys.into_iter().filter(|k| *k != id));
                }
                Ok(Step::Later(due_ms, now_ms)) => {
                    ensure_timer(ctx, &id, due_ms, now_ms);
                    break;
                }
                Ok(Step::Stop) => break,
                Err(e) => {
                    log(
                        Some(ctx),
                        c"warning",
                        &format!("hacks: rate-limit admission failed: {}", e.text()),
                    );
                    break;
                }
            }
        }
    }
}

enum Step {
    /// Served (admitted or answered with an error): its keys.
    Admitted(Vec<KeyId>),
    /// Fits at `due_ms` (now is the second field).
    Later(i64, i64),
    /// Not a master, loading, ...: a timer or event will come back.
    Stop,
}

fn admit(ctx: &Ctx, seq: u64) -> Result<Step, CmdError> {
    let Some((keys, w)) =
        with_queues(|q| q.entry(seq).map(|e| (e.keys.clone(), e.data.clone()))).flatten()
    else {
        return Ok(Step::Stop);
    };
    let flags = ctx.flags()?;
    let now_us = fresh_now_us();
    let now_ms = now_us.div_euclid(1000);
    if flags & raw::REDISMODULE_CTX_FLAGS_MASTER == 0 {
        fail_all(ctx, &NOT_MASTER);
        return Ok(Step::Stop);
    }
    if flags & raw::REDISMODULE_CTX_FLAGS_LOADING != 0 {
        if let Some(k) = keys.first() {
            ensure_timer(ctx, k, now_ms.saturating_add(10), now_ms);
        }
        return Ok(Step::Stop);
    }
    let db = keys.first().map_or(0, |k| k.0);
    if ctx.selected_db()? != db {
        let select = rm!(RedisModule_SelectDb);
        // SAFETY: a timer's (or event's) live context, which may select a db; a command's
        // context is already in the waiter's db (its keys came from that command's db).
        if unsafe { select(ctx.raw(), db) } != raw::REDISMODULE_OK as c_int {
            return Err(CmdError::Static(
                "ERR internal error: could not select the db",
            ));
        }
    }
    if flags & raw::REDISMODULE_CTX_FLAGS_CLUSTER != 0
        && !keys.iter().all(|k| key_is_local(ctx, &k.1))
    {
        finish(ctx, seq, Outcome::Failed(SLOT_MOVED));
        return Ok(Step::Admitted(keys));
    }
    let mut names = StrVec::with_capacity(keys.len());
    for (_, k) in &keys {
        if !names.push(k) {
            return Err(CmdError::Static("ERR internal error: out of memory"));
        }
    }
    let rs: Vec<RStr> = (0..names.len()).filter_map(|i| names.get(i)).collect();
    let c = Call {
        names: &rs,
        limits: &w.limits,
        cost: w.cost,
        partial: w.partial,
        peek: w.peek,
    };
    match call::run(ctx, c, now_us, 0) {
        Ok(a) if a.allowed => {
            stats::WAITS_ADMITTED.incr();
            finish(ctx, seq, Outcome::Answer(Box::new(a), w.reply));
            Ok(Step::Admitted(keys))
        }
        Ok(a) if a.retry_after_ms > 0 => {
            Ok(Step::Later(now_ms.saturating_add(a.retry_after_ms), now_ms))
        }
        Ok(a) => {
            // Can never be admitted (not expected: checked before blocking): answer it.
            finish(ctx, seq, Outcome::Answer(Box::new(a), w.reply));
            Ok(Step::Admitted(keys))
        }
        Err(e) => {
            // The key changed type or algorithm meanwhile: the waiter gets the error.
            finish(ctx, seq, Outcome::Failed(e));
            Ok(Step::Admitted(keys))
        }
    }
}

/// Take `seq` out of the queues and unblock it with `outcome`.
fn finish(ctx: &Ctx, seq: u64, outcome: Outcome) {
    let Some((entry, orphaned)) = with_queues(|q| q.remove(seq)).flatten() else {
        return;
    };
    for t in orphaned {
        stop_timer(ctx, t);
    }
    stop_wake(ctx, &entry.data);
    if matches!(outcome, Outcome::Failed(_)) {
        stats::WAIT_ERRORS.incr();
    }
    unblock(entry.handle, Some(outcome));
}

/// Every waiter gets `err` (and leaves).
fn fail_all(ctx: &Ctx, err: &CmdError) {
    let keys = with_queues(|q| q.keys()).unwrap_or_default();
    for k in keys {
        for seq in with_queues(|q| q.waiters_of(&k)).unwrap_or_default() {
            finish(ctx, seq, Outcome::Failed(err.clone()));
        }
    }
}

// ---- timers -----------------------------------------------------------------------------

/// Have a timer look at `id` at `due_ms` (or earlier). A timer due no later is kept.
fn ensure_timer(ctx: &Ctx, id: &KeyId, due_ms: i64, now_ms: i64) {
    match with_queues(|q| (q.len(id), q.timer(id))) {
        Some((0, _)) | None => return,
        Some((_, Some(t))) if t.due_ms <= due_ms => return,
        _ => {}
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
        None => stop_timer(ctx, timer),
    }
}

fn stop_timer(ctx: &Ctx, t: Timer) {
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let Some(stop) = (unsafe { raw::RedisModule_StopTimer }) else {
        return;
    };
    let mut data: *mut c_void = std::ptr::null_mut();
    // SAFETY: a live context; `data` is a valid out-pointer, set only on success.
    if unsafe { stop(ctx.raw(), t.id, &mut data) } == raw::REDISMODULE_OK as c_int
        && !data.is_null()
    {
        // SAFETY: the timer was stopped before firing, so its data (the `Box<KeyId>` from
        // `ensure_timer`) is ours again, and `on_timer` never runs.
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
    // server calls this once per timer; the record of this timer is cleared first thing
    // below, so `stop_timer` never gets its id afterwards.
    let id = *unsafe { Box::from_raw(data.cast::<KeyId>()) };
    guarded("timer", || {
        // SAFETY: `ctx` is the live timer context of this callback; `c` stays in the closure.
        let c = unsafe { Ctx::from_raw(ctx) };
        with_queues(|q| q.clear_timer(&id));
        service_keys(&c, vec![id]);
    });
}

// ---- events -----------------------------------------------------------------------------

/// A key was deleted, renamed, expired or evicted: if somebody waits on it, look at its
/// queue right away (from a timer: no writes inside an event callback). The module's own
/// charges (`hack.ratehit`) are skipped: their callers already serve the queues.
///
/// # Safety
/// Called by the server with the event's live context, event name and key name.
unsafe extern "C" fn on_keyspace_event(
    ctx: *mut RedisModuleCtx,
    _type: c_int,
    event: *const c_char,
    key: *mut RedisModuleString,
) -> c_int {
    if !any_waiting() {
        return raw::REDISMODULE_OK as c_int;
    }
    guarded("keyspace event", || {
        if !event.is_null() {
            // SAFETY: the server passes the event name as a NUL-terminated C string.
            let name = unsafe { std::ffi::CStr::from_ptr(event) };
            if name == c"hack.ratehit" {
                return;
            }
        }
        // SAFETY: `ctx` is the live context of this event; `c` stays in the closure.
        let c = unsafe { Ctx::from_raw(ctx) };
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        let (Ok(db), Some(ptr_len)) = (c.selected_db(), unsafe { raw::RedisModule_StringPtrLen })
        else {
            return;
        };
        let mut len = 0usize;
        // SAFETY: `key` is the event's key name, valid for this callback; `len` is a valid
        // out-pointer.
        let p = unsafe { ptr_len(key, &mut len) };
        if p.is_null() {
            return;
        }
        // SAFETY: non-null pointer to the `len` bytes of `key`, copied at once.
        let id: KeyId = (
            db,
            unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }.to_vec(),
        );
        let now = fresh_now_us().div_euclid(1000);
        ensure_timer(&c, &id, now, now);
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
    _data: *mut c_void,
) {
    if !any_waiting() {
        return;
    }
    guarded("server event", || {
        // SAFETY: `ctx` is the live context of this event; `c` stays in the closure.
        let c = unsafe { Ctx::from_raw(ctx) };
        if eid.id == raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED
            && subevent == raw::REDISMODULE_EVENT_REPLROLECHANGED_NOW_REPLICA
        {
            fail_all(&c, &NOT_MASTER);
        } else if eid.id == raw::REDISMODULE_EVENT_FLUSHDB
            && subevent == raw::REDISMODULE_SUBEVENT_FLUSHDB_END
        {
            let now = fresh_now_us().div_euclid(1000);
            for id in with_queues(|q| q.keys()).unwrap_or_default() {
                ensure_timer(&c, &id, now, now);
            }
        }
    });
}

/// Subscribe to the events above (module load only).
pub fn register(ctx: &Ctx) -> Result<(), String> {
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let subscribe = unsafe { raw::RedisModule_SubscribeToKeyspaceEvents }
        .ok_or("no RedisModule_SubscribeToKeyspaceEvents")?;
    // Not STRING: a subscription makes the server call us on every string write anywhere
    // (INCR, SET, our own charges), a cost on the hot path of every client; an overwrite
    // by a plain SET is seen at the queue's next timer instead.
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
    for id in [
        raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED,
        raw::REDISMODULE_EVENT_FLUSHDB,
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
