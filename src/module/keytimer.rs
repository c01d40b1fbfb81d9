//! Per-key timers of waiter queues, and what a timer may do where it fires. A queue of
//! waiters (one per database and key name) records at most one timer, the next moment
//! somebody should look at it again (a holder's lease end, the moment the head's limits
//! admit it, or "now" after a deletion); [`ensure_timer`] keeps the earliest, and the timer
//! calls [`Waits::timer`] of the family that set it.
//!
//! Timers fire outside any command: on replicas, while loading, on a node that no longer
//! serves the key's slot, with database 0 selected. [`writable_here`] says which.

use std::ffi::c_void;
use std::os::raw::c_int;

use redis_module::raw::{self, RedisModuleCtx};

use super::args::RStr;
use super::blocked::Waits;
use super::ctx::Ctx;
use super::error::CmdError;
use super::ffi::rm;
use super::guard::guarded;
use super::io::StrVec;
use super::slot::key_is_local;

/// A waited-on key: database number and key name.
pub type KeyId = (i32, Vec<u8>);

/// A scheduled look at a queue: the server's timer id and when it fires (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    pub id: u64,
    pub due_ms: i64,
}

/// A module timer calling `cb` after `delay_ms` with `data` boxed as its data (given back
/// once: to `cb` when it fires, or freed by [`stop_boxed`] when stopping it succeeds).
pub(super) fn start_boxed<T>(
    ctx: &Ctx,
    delay_ms: i64,
    cb: unsafe extern "C" fn(*mut RedisModuleCtx, *mut c_void),
    data: T,
) -> Option<u64> {
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let create = unsafe { raw::RedisModule_CreateTimer }?;
    let data = Box::into_raw(Box::new(data));
    // SAFETY: a live context; `data` is a `Box<T>`, reclaimed exactly once (see above).
    Some(unsafe { create(ctx.raw(), delay_ms.max(0), Some(cb), data.cast()) })
}

/// Stop timer `id`; when it had not fired yet, free its data.
///
/// # Safety
/// The timer's data is a `Box<T>` (from [`start_boxed::<T>`]), and the timer is not the
/// one firing right now (the server still holds a firing timer: its data would be freed
/// twice).
pub(super) unsafe fn stop_boxed<T>(ctx: &Ctx, id: u64) {
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let Some(stop) = (unsafe { raw::RedisModule_StopTimer }) else {
        return;
    };
    let mut data: *mut c_void = std::ptr::null_mut();
    // SAFETY: a live context; `data` is a valid out-pointer, set only on success.
    if unsafe { stop(ctx.raw(), id, &mut data) } == raw::REDISMODULE_OK as c_int && !data.is_null()
    {
        // SAFETY: stopped before firing, so its `Box<T>` (the caller's promise) is ours again
        // and its callback never runs.
        drop(unsafe { Box::from_raw(data.cast::<T>()) });
    }
}

/// Waiter queues that record one timer per waited-on key (each family's `Queues`). A
/// queue only says where a key's timer slot is; the bookkeeping is written once here.
pub trait TimerSlots {
    /// How many wait on `id` and its timer slot, where somebody waits on `id`.
    fn slot(&self, id: &KeyId) -> Option<(usize, &Option<Timer>)>;
    fn slot_mut(&mut self, id: &KeyId) -> Option<&mut Option<Timer>>;

    /// Waiters queued on `id`.
    fn waiting(&self, id: &KeyId) -> usize {
        self.slot(id).map_or(0, |(n, _)| n)
    }
    fn timer(&self, id: &KeyId) -> Option<Timer> {
        self.slot(id).and_then(|(_, t)| *t)
    }
    /// Record `t` as `id`'s timer: the one it replaces, or `t` itself when nobody waits on
    /// `id` (either is for the caller to stop).
    fn set_timer(&mut self, id: &KeyId, t: Timer) -> Option<Timer> {
        match self.slot_mut(id) {
            Some(slot) => slot.replace(t),
            None => Some(t),
        }
    }
    /// Forget `id`'s timer (it fired).
    fn clear_timer(&mut self, id: &KeyId) -> Option<Timer> {
        self.slot_mut(id).and_then(Option::take)
    }
}

/// Have a timer look at `id` at `due_ms` (or earlier): a timer due no later is kept (it
/// looks again when it fires), a later one is replaced. Nothing when nobody waits on `id`.
pub fn ensure_timer<W: Waits>(ctx: &Ctx, id: &KeyId, due_ms: i64, now_ms: i64) {
    match W::with_queues(|q| (q.waiting(id), q.timer(id))) {
        None | Some((0, _)) => return,
        Some((_, Some(t))) if t.due_ms <= due_ms => return,
        Some(_) => {}
    }
    let delay = due_ms.saturating_sub(now_ms).max(0);
    let Some(timer_id) = start_boxed(ctx, delay, on_timer::<W>, id.clone()) else {
        return;
    };
    let timer = Timer {
        id: timer_id,
        due_ms,
    };
    // Not recorded (the queues were busy, which never happens): stop it rather than leak.
    if let Some(old) = W::with_queues(|q| q.set_timer(id, timer)).unwrap_or(Some(timer)) {
        stop_timer(ctx, old);
    }
}

/// Stop a queue timer (replaced, or its queue is gone) and free its data.
pub fn stop_timer(ctx: &Ctx, t: Timer) {
    // SAFETY: every queue timer's data is a `Box<KeyId>` (`ensure_timer`), and a firing one
    // is never stopped: its record is cleared before anything runs (`on_timer`), and
    // `stop_timer` only gets timers from that record (or one `ensure_timer` just created).
    unsafe { stop_boxed::<KeyId>(ctx, t.id) };
}

/// # Safety
/// Called by the server when a timer from `ensure_timer::<W>` fires, with its data.
unsafe extern "C" fn on_timer<W: Waits>(ctx: *mut RedisModuleCtx, data: *mut c_void) {
    if data.is_null() {
        return;
    }
    // SAFETY: every queue timer's data is a `Box<KeyId>` (`ensure_timer`), and the server
    // calls this once per timer. `stop_timer` cannot free it too: the record of this timer
    // is cleared first thing below, and `stop_timer` only gets ids from that record (or one
    // `ensure_timer` just created); a fired timer's id is gone afterwards.
    let id = *unsafe { Box::from_raw(data.cast::<KeyId>()) };
    guarded(format_args!("{} timer", W::NAME), || {
        // SAFETY: `ctx` is the live timer context of this callback; `c` stays in the closure.
        let c = unsafe { Ctx::from_raw(ctx) };
        W::with_queues(|q| q.clear_timer(&id));
        W::timer(&c, &id);
    });
}

/// A fresh clock reading in ms (timers and callbacks run outside any command, where the
/// cached command time may be stale).
pub fn now_ms() -> Option<i64> {
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let ms = unsafe { raw::RedisModule_Milliseconds }?;
    // SAFETY: an API function present (checked above); it takes no arguments.
    Some(unsafe { ms() })
}

/// A fresh clock reading in µs (milliseconds where the server has no `Microseconds`).
pub fn now_us() -> i64 {
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    if let Some(us) = unsafe { raw::RedisModule_Microseconds } {
        // SAFETY: an API function present (checked above); it takes no arguments.
        return unsafe { us() };
    }
    now_ms().unwrap_or(0).saturating_mul(1000)
}

/// Where a timer (or event) stands with respect to writing the keys of one queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Here {
    /// A master that is not loading, `db` selected, every key's slot served here.
    Writable { now_ms: i64 },
    /// Not a master: the waiters cannot be served here.
    NotMaster,
    /// Loading: look again shortly.
    Loading { now_ms: i64 },
    /// Cluster: a key's slot is served elsewhere now.
    SlotMoved,
}

/// How the server stands for writing `keys` of database `db`; selects `db` when it may.
pub fn writable_here<'a>(
    ctx: &Ctx,
    db: i32,
    keys: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Here, CmdError> {
    let flags = ctx.flags()?;
    if flags & raw::REDISMODULE_CTX_FLAGS_MASTER == 0 {
        return Ok(Here::NotMaster);
    }
    let now_ms = now_ms().ok_or(CmdError::missing_api("RedisModule_Milliseconds"))?;
    if flags & raw::REDISMODULE_CTX_FLAGS_LOADING != 0 {
        return Ok(Here::Loading { now_ms });
    }
    select_db(ctx, db)?;
    if flags & raw::REDISMODULE_CTX_FLAGS_CLUSTER != 0
        && !keys.into_iter().all(|k| key_is_local(ctx, k))
    {
        return Ok(Here::SlotMoved);
    }
    Ok(Here::Writable { now_ms })
}

/// Select database `db` in a timer's (or event's, or blocked client's) context, which
/// starts in database 0 or the client's.
pub fn select_db(ctx: &Ctx, db: i32) -> Result<(), CmdError> {
    if ctx.selected_db()? == db {
        return Ok(());
    }
    let select = rm!(RedisModule_SelectDb);
    // SAFETY: a live context outside a command, which may select a db.
    if unsafe { select(ctx.raw(), db) } != raw::REDISMODULE_OK as c_int {
        return Err(CmdError::Static(
            "ERR internal error: could not select the db",
        ));
    }
    Ok(())
}

/// Server strings for key names (owned: a timer has no argv to borrow them from).
pub struct KeyNames(StrVec);

impl KeyNames {
    pub fn new<'a>(names: impl ExactSizeIterator<Item = &'a [u8]>) -> Result<Self, CmdError> {
        let mut v = StrVec::with_capacity(names.len());
        for n in names {
            v.push(n);
        }
        if v.incomplete() {
            return Err(CmdError::Static("ERR internal error: out of memory"));
        }
        Ok(KeyNames(v))
    }

    /// The names, borrowed for as long as `self` lives.
    pub fn all(&self) -> Vec<RStr> {
        (0..self.0.len()).filter_map(|i| self.0.get(i)).collect()
    }

    pub fn first(&self) -> Result<RStr, CmdError> {
        self.0
            .first()
            .ok_or(CmdError::Static("ERR internal error: out of memory"))
    }
}
