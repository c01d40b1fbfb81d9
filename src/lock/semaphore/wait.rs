//! The server glue of semaphores: every change goes through [`change`], which prunes what
//! is no longer held (ended leases, holders bound to a connection this process never saw),
//! admits waiters FIFO (`admit.rs`), applies the command's own change, admits again, writes
//! and replicates the result (`effect.rs`), answers the admitted waiters and makes sure a
//! timer looks at the key again at the next lease end while anyone waits.
//!
//! Waiters are blocked clients queued in `lock/queue.rs` (as `SemWaiter`s, in a queue of
//! their own) and blocked with the lock's callbacks (`lock/waiters.rs`: the same reply,
//! timeout, disconnect and `CLIENT UNBLOCK` handling). A waiter leaving from the front may
//! unblock the ones behind it (it was the one that did not fit), so leaving looks at the key
//! again from an immediate timer. Deletion, `FLUSHALL` and role changes reach here through
//! the lock family's event callbacks.
//!
//! Everything here runs on the server's main thread, so the queues live in a thread-local.

use std::cell::RefCell;
use std::ffi::c_void;
use std::os::raw::c_int;

use redis_module::raw::{self, RedisModuleCtx};

use crate::lock::lease;
use crate::lock::queue::{KeyId, Queues, Timer};
use crate::lock::waiters::{self, LockName, Outcome};
use crate::lock::{stats, token};
use crate::module::args::RStr;
use crate::module::command::log;
use crate::module::ctx::Ctx;
use crate::module::error::{CmdError, WRONGTYPE};
use crate::module::ffi::rm;
use crate::module::highwater::MAX_ID;
use crate::module::io::StrVec;
use crate::module::typedkey::TypedKey;

use super::admit::{Admission, Ask, SemWaiter};
use super::datatype::{SEM_TYPE, STALE};
use super::holders::{Semaphore, MAX_HOLDERS};
use super::{bound, effect};

type SemQueues = Queues<usize, SemWaiter<usize>>;

thread_local! {
    static QUEUES: RefCell<SemQueues> = RefCell::new(Queues::new());
}

/// Run `f` on the queues (never held across a server call, so the borrow cannot fail).
fn with_q<R>(f: impl FnOnce(&mut SemQueues) -> R) -> Option<R> {
    QUEUES.with(|q| q.try_borrow_mut().ok().map(|mut q| f(&mut q)))
}

/// Nobody waits for any semaphore.
pub fn idle() -> bool {
    with_q(|q| q.is_empty()).unwrap_or(true)
}

/// Waiters queued for `id`.
pub fn queued(id: &KeyId) -> usize {
    with_q(|q| q.len(id)).unwrap_or(0)
}

/// Waiters queued for `sem` (allocates nothing when nobody waits anywhere).
pub fn queued_for(sem: &LockName<'_>) -> usize {
    if idle() {
        0
    } else {
        queued(&sem.id())
    }
}

/// Clients waiting for a semaphore on this server right now (`INFO hacks`).
pub fn waiting_now() -> usize {
    with_q(|q| q.total()).unwrap_or(0)
}

/// Every semaphore somebody waits for.
pub fn keys() -> Vec<KeyId> {
    with_q(|q| q.keys()).unwrap_or_default()
}

/// A waiter taken from the front of its queue, with what it is told.
struct Served {
    handle: usize,
    wake: Option<u64>,
    bound: Option<u64>,
    outcome: Outcome,
}

/// Admit waiters of `id` into `sem` (FIFO, as `Semaphore::admit` decides) and take them out
/// of the queue; they are answered by [`deliver`] once the state is written.
fn admit(sem: &mut Semaphore, id: &KeyId, now_ms: i64) -> (Vec<Served>, Option<Timer>) {
    // Each admission mints at most one token and a key takes at most MAX_HOLDERS holders:
    // with this much room the mint below cannot fail (and never repeats a token).
    let room = MAX_ID.saturating_sub(MAX_HOLDERS as u64);
    if token::last() >= room {
        return (Vec::new(), None);
    }
    with_q(|q| {
        if q.len(id) == 0 {
            return (Vec::new(), None);
        }
        let outcomes = sem.admit(q.iter(id).map(SemWaiter::ask), now_ms, || {
            token::allocate_at(now_ms.saturating_mul(1000)).unwrap_or(MAX_ID)
        });
        let mut served = Vec::with_capacity(outcomes.len());
        let mut orphan = None;
        for o in outcomes {
            let Some(left) = q.pop_front(id) else {
                break;
            };
            orphan = left.orphaned_timer.or(orphan);
            let w = left.waiter;
            let outcome = match o {
                Admission::New { token } | Admission::Renewed { token } => Outcome::Granted(token),
                Admission::Rejected(e) => Outcome::Failed(e.to_cmd_error()),
            };
            served.push(Served {
                handle: w.handle,
                wake: w.wake,
                bound: w.bound,
                outcome,
            });
        }
        (served, orphan)
    })
    .unwrap_or_default()
}

/// Answer the admitted waiters (after their holdings were written and replicated; with the
/// write's error if that failed).
fn deliver(ctx: &Ctx, id: &KeyId, served: Vec<Served>, failed: Option<&CmdError>) {
    for s in served {
        stop_deadline(ctx, s.wake);
        let outcome = match (failed, s.outcome) {
            (Some(e), _) => Outcome::Failed(e.clone()),
            (None, Outcome::Granted(token)) => {
                if let Some(client) = s.bound {
                    bound::note(client, id);
                }
                stats::SEM_HANDOFFS.incr();
                Outcome::Granted(token)
            }
            (None, other) => other,
        };
        if matches!(outcome, Outcome::Failed(_)) {
            stats::WAIT_ERRORS.incr();
        }
        waiters::unblock(s.handle, Some(outcome));
    }
}

/// Apply one change to the semaphore in `key` (`f` gets the value, or an empty one when the
/// key does not exist, and the number of waiters still queued ahead of a new caller; it
/// returns whether it changed anything and its result), with everything around it: prune,
/// admit, write, replicate, answer admitted waiters, re-arm the expiry timer.
pub fn change<R>(
    ctx: &Ctx,
    key: &mut TypedKey<'_, Semaphore>,
    name: RStr,
    sem_name: &LockName<'_>,
    now_ms: i64,
    f: impl FnOnce(&mut Semaphore, usize) -> (bool, R),
) -> Result<R, CmdError> {
    let waited = !idle();
    let id = waited.then(|| sem_name.id());
    let mut fresh = Semaphore::new();
    let mut served = Vec::new();
    let mut orphans = Vec::new();
    let (dirty, out) = {
        let sem = match key.get_mut()? {
            Some(s) => s,
            None => &mut fresh,
        };
        // Bindings to connections this process never had (loaded, replicated, restored)
        // are released first: those connections are gone.
        let stale = sem.release_client(STALE);
        let expired = sem.expire(now_ms);
        if !expired.is_empty() {
            stats::SEM_EXPIRED.add(expired.len() as u64);
        }
        let mut dirty = !stale.is_empty() || !expired.is_empty();
        if let Some(id) = &id {
            let (s, o) = admit(sem, id, now_ms);
            served.extend(s);
            orphans.extend(o);
        }
        let ahead = id.as_ref().map_or(0, queued);
        let (changed, out) = f(sem, ahead);
        if changed {
            if let Some(id) = &id {
                let (s, o) = admit(sem, id, now_ms);
                served.extend(s);
                orphans.extend(o);
            }
        }
        dirty = dirty || changed || !served.is_empty();
        (dirty, out)
    };
    let written = effect::persist(ctx, key, name, fresh, dirty);
    for t in orphans {
        waiters::stop_timer(ctx, t);
    }
    if let Some(id) = &id {
        deliver(ctx, id, served, written.as_ref().err());
        watch(ctx, key.get()?, id, now_ms);
    }
    written.map(|()| out)
}

/// While `id` has waiters, have a timer look at it right after its next lease ends.
pub fn watch(ctx: &Ctx, sem: Option<&Semaphore>, id: &KeyId, now_ms: i64) {
    if queued(id) == 0 {
        return;
    }
    match sem.and_then(Semaphore::next_expiry) {
        Some(at) => ensure_timer(ctx, id, lease::recheck_at(at), now_ms),
        // Waiters but no holder: look again at once (nothing should keep them waiting).
        None => ensure_timer(ctx, id, now_ms, now_ms),
    }
}

/// Block the calling client until it is admitted (FIFO), its timeout runs out or it
/// disconnects; the caller checked that blocking is allowed and that `ask` does not fit.
pub fn block(
    ctx: &Ctx,
    id: KeyId,
    ask: &Ask<'_>,
    timeout_ms: i64,
    sem: Option<&Semaphore>,
    now_ms: i64,
) -> Result<(), CmdError> {
    // No server-side timeout: the module times the wait out itself (`on_deadline`). Redis
    // 7.0 checks blocked clients' timeouts just before it runs the replies of clients a
    // module unblocked, so a waiter admitted in the same event-loop iteration its timeout
    // passed was unblocked with no reply at all (seen under 1,000 waiters); with one timer
    // owning the timeout, a waiter is either admitted or timed out, never both.
    let handle = waiters::block_client(ctx, 0)?;
    let wake = deadline_timer(ctx, handle, timeout_ms);
    let waiter = SemWaiter::new(handle, ask, wake);
    if with_q(|q| q.push(id.clone(), waiter)).flatten().is_none() {
        stop_deadline(ctx, wake);
        let e = CmdError::Static("ERR internal error: could not queue the client");
        waiters::unblock(handle, Some(Outcome::Failed(e)));
        return Ok(());
    }
    stats::SEM_WAITS.incr();
    watch(ctx, sem, &id, now_ms);
    Ok(())
}

/// A waiter timed out, disconnected or was unblocked: take it out and release its handle.
/// False if it is not a semaphore waiter (or was already served). The ones behind it may
/// fit now, so the key is looked at again at once.
pub fn leave(ctx: &Ctx, handle: usize) -> bool {
    let Some(left) = with_q(|q| q.remove(handle)).flatten() else {
        return false;
    };
    if let Some(t) = left.orphaned_timer {
        waiters::stop_timer(ctx, t);
    }
    stop_deadline(ctx, left.waiter.wake);
    waiters::unblock(handle, None);
    if queued(&left.key) > 0 {
        if let Some(now) = now_ms() {
            poke(ctx, &left.key, now);
        }
    }
    true
}

/// Every waiter of `id` gets `err` (and leaves).
pub fn fail_all(ctx: &Ctx, id: &KeyId, err: &CmdError) {
    let Some((all, timer)) = with_q(|q| q.take_all(id)) else {
        return;
    };
    if let Some(t) = timer {
        waiters::stop_timer(ctx, t);
    }
    for w in all {
        stop_deadline(ctx, w.wake);
        stats::WAIT_ERRORS.incr();
        waiters::unblock(w.handle, Some(Outcome::Failed(err.clone())));
    }
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
    // `on_deadline` when the timer fires or by `stop_deadline` when stopping it succeeds.
    Some(unsafe { create(ctx.raw(), timeout_ms, Some(on_deadline), data.cast()) })
}

/// Stop a waiter's deadline timer (it left another way) and free its data.
fn stop_deadline(ctx: &Ctx, wake: Option<u64>) {
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let (Some(id), Some(stop)) = (wake, unsafe { raw::RedisModule_StopTimer }) else {
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
/// Called by the server when a timer from `deadline_timer` fires, with its data.
unsafe extern "C" fn on_deadline(ctx: *mut RedisModuleCtx, data: *mut c_void) {
    if data.is_null() {
        return;
    }
    // SAFETY: the data of every `on_deadline` timer is a `Box<usize>` (`deadline_timer`),
    // reclaimed here once (a stopped timer never fires).
    let handle = *unsafe { Box::from_raw(data.cast::<usize>()) };
    waiters::guarded("semaphore wait timeout", || {
        // SAFETY: `ctx` is the live timer context of this callback; `c` stays in the closure.
        let c = unsafe { Ctx::from_raw(ctx) };
        // Still queued: nobody admitted it, so its wait ends here (reply nil). Every other
        // way out of the queue stops this timer first, so the handle is still this waiter.
        let Some(left) = with_q(|q| q.remove(handle)).flatten() else {
            return;
        };
        if let Some(t) = left.orphaned_timer {
            waiters::stop_timer(&c, t);
        }
        stats::WAIT_TIMEOUTS.incr();
        waiters::unblock(handle, None);
        if queued(&left.key) > 0 {
            if let Some(now) = now_ms() {
                poke(&c, &left.key, now);
            }
        }
    });
}

fn now_ms() -> Option<i64> {
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let ms = unsafe { raw::RedisModule_Milliseconds }?;
    // SAFETY: an API function present (checked above); it takes no arguments.
    Some(unsafe { ms() })
}

// ---- timers -----------------------------------------------------------------------------

/// Look at `id` from a timer right away (after a deletion, a flush, a waiter leaving).
pub fn poke(ctx: &Ctx, id: &KeyId, now_ms: i64) {
    ensure_timer(ctx, id, now_ms, now_ms);
}

/// Have a timer look at `id` at `due_ms` or earlier (one timer per key, as for locks).
fn ensure_timer(ctx: &Ctx, id: &KeyId, due_ms: i64, now_ms: i64) {
    if with_q(|q| q.timer(id))
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
    // `on_timer` when it fires, or by `waiters::stop_timer` when stopping it succeeds (it
    // reclaims a `Box<KeyId>`, the data of lock timers too).
    let timer_id = unsafe { create(ctx.raw(), delay, Some(on_timer), data.cast()) };
    let timer = Timer {
        id: timer_id,
        due_ms,
    };
    match with_q(|q| q.set_timer(id, timer)) {
        Some(Some(old)) => waiters::stop_timer(ctx, old),
        Some(None) => {}
        None => waiters::stop_timer(ctx, timer),
    }
}

/// # Safety
/// Called by the server when a timer from `ensure_timer` fires, with its context and data.
unsafe extern "C" fn on_timer(ctx: *mut RedisModuleCtx, data: *mut c_void) {
    if data.is_null() {
        return;
    }
    // SAFETY: every `on_timer` timer's data is a `Box<KeyId>` (`ensure_timer`), given back
    // once: the record of this timer is cleared first thing below, so nothing stops it later.
    let id = *unsafe { Box::from_raw(data.cast::<KeyId>()) };
    waiters::guarded("semaphore timer", || {
        // SAFETY: `ctx` is the live timer context of this callback; `c` stays in the closure.
        let c = unsafe { Ctx::from_raw(ctx) };
        with_q(|q| q.clear_timer(&id));
        if let Err(e) = service(&c, &id) {
            log(
                Some(&c),
                c"warning",
                &format!("hacks: semaphore admission failed: {}", e.text()),
            );
        }
    });
}

/// Where a timer may write `id`: on a master that is not loading, with the key's db
/// selected and (in Cluster) its slot served here. `Ok(None)`: not now (handled).
pub fn writable_here(ctx: &Ctx, id: &KeyId, retry: bool) -> Result<Option<i64>, CmdError> {
    let flags = ctx.flags()?;
    if flags & raw::REDISMODULE_CTX_FLAGS_MASTER == 0 {
        if retry {
            fail_all(ctx, id, &waiters::NOT_MASTER);
        }
        return Ok(None);
    }
    let now = now_ms().ok_or(CmdError::missing_api("RedisModule_Milliseconds"))?;
    if flags & raw::REDISMODULE_CTX_FLAGS_LOADING != 0 {
        if retry {
            ensure_timer(ctx, id, now.saturating_add(10), now);
        }
        return Ok(None);
    }
    let select = rm!(RedisModule_SelectDb);
    // SAFETY: the live timer context (a timer's context may select a db).
    if unsafe { select(ctx.raw(), id.0) } != raw::REDISMODULE_OK as c_int {
        return Err(CmdError::Static(
            "ERR internal error: could not select the db",
        ));
    }
    if flags & raw::REDISMODULE_CTX_FLAGS_CLUSTER != 0
        && !crate::module::slot::key_is_local(ctx, &id.1)
    {
        if retry {
            fail_all(ctx, id, &waiters::SLOT_MOVED);
        }
        return Ok(None);
    }
    Ok(Some(now))
}

/// Open `id` (db selected) and apply `f` through [`change`]; a key of another type fails
/// its waiters with WRONGTYPE.
pub fn change_key(
    ctx: &Ctx,
    id: &KeyId,
    now_ms: i64,
    f: impl FnOnce(&mut Semaphore, usize) -> (bool, ()),
) -> Result<(), CmdError> {
    let mut name = StrVec::with_capacity(1);
    if !name.push(&id.1) {
        return Err(CmdError::Static("ERR internal error: out of memory"));
    }
    // `name` (the StrVec) outlives every use of this `RStr` below.
    let name = name
        .first()
        .ok_or(CmdError::Static("ERR internal error: out of memory"))?;
    let mut key = match TypedKey::open(ctx, name, &SEM_TYPE, true) {
        Ok(k) => k,
        Err(e) if e == WRONGTYPE => {
            fail_all(ctx, id, &WRONGTYPE);
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let sem_name = LockName {
        db: id.0,
        name: &id.1,
    };
    change(ctx, &mut key, name, &sem_name, now_ms, f)
}

/// A timer's look at a semaphore with waiters: prune, admit, re-arm.
fn service(ctx: &Ctx, id: &KeyId) -> Result<(), CmdError> {
    if queued(id) == 0 {
        return Ok(());
    }
    let Some(now) = writable_here(ctx, id, true)? else {
        return Ok(());
    };
    change_key(ctx, id, now, |_, _| (false, ()))
}
