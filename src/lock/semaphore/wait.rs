//! The server glue of semaphores: every change goes through [`change`], which prunes what
//! is no longer held (ended leases, holders bound to a connection this process never saw),
//! admits waiters FIFO (`admit.rs`), applies the command's own change, admits again, writes
//! and replicates the result (`effect.rs`), answers the admitted waiters and makes sure a
//! timer looks at the key again at the next lease end while anyone waits.
//!
//! Waiters are blocked clients (`module/blocked.rs`) queued in `lock/queue.rs` (as
//! `SemWaiter`s, in a queue of their own), answered as lock waiters are (`waiters::send`).
//! A waiter leaving from the front may unblock the ones behind it (it was the one that did
//! not fit), so leaving looks at the key again from an immediate timer. Deletion,
//! `FLUSHALL` and role changes reach here through the lock family's event hooks
//! (`lock/events.rs`).
//!
//! Everything here runs on the server's main thread, so the queues live in a thread-local.

use std::cell::RefCell;

use crate::lock::lease;
use crate::lock::queue::Queues;
use crate::lock::waiters::{self, LockFamilyWaits, LockName, Outcome};
use crate::lock::{stats, token};
use crate::module::args::RStr;
use crate::module::blocked;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::highwater::MAX_ID;
use crate::module::keytimer::{
    self, ensure_timer, now_ms, stop_timer, Here, KeyId, KeyNames, Timer,
};
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
        // Tokens and the admitted leases from one clock read (`token::HandOffClock`).
        let clock = token::hand_off_clock(now_ms);
        let outcomes = sem.admit(q.iter(id).map(SemWaiter::ask), clock.ms, || {
            clock.allocate().unwrap_or(MAX_ID)
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
        blocked::stop_deadline(ctx, s.wake);
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
            stats::LOCK_WAIT_ERRORS.incr();
        }
        blocked::unblock::<SemWaits>(s.handle, Some(outcome));
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
        stop_timer(ctx, t);
    }
    if let Some(id) = &id {
        deliver(ctx, id, served, written.as_ref().err());
        watch(ctx, key.get()?, id, now_ms);
    }
    written.map(|()| out)
}

/// The frame of the commands that change a holder's permits (SEMRELEASE, SEMEXTEND):
/// refuse replay, open the semaphore named at `args[1]`, and apply `f` through [`change`];
/// `None` when the key does not exist (nobody holds anything: nothing to change). Their
/// reply: 1 when `f` changed something, else 0; `counted` is the stat of a change.
pub fn change_holder(
    ctx: &Ctx,
    args: &crate::module::args::Args,
    counted: &crate::module::stats::Counter,
    f: impl FnOnce(&mut Semaphore, i64) -> Result<bool, CmdError>,
) -> Result<(), CmdError> {
    if ctx.is_replaying()? {
        return Err(crate::lock::commands::lock::NOT_REPLICATED);
    }
    let name = args.raw(1)?;
    let sem_name = LockName::of_command(ctx, args)?;
    let now_ms = ctx.now_us()?.div_euclid(1000);
    let mut key = TypedKey::open(ctx, name, &SEM_TYPE, true)?;
    let changed = if key.get()?.is_none() {
        false
    } else {
        change(ctx, &mut key, name, &sem_name, now_ms, |sem, _| {
            match f(sem, now_ms) {
                Ok(done) => (done, Ok(done)),
                Err(e) => (false, Err(e)),
            }
        })??
    };
    if changed {
        counted.incr();
        ctx.reply_i64(1)
    } else {
        stats::SEM_NOT_HOLDER.incr();
        ctx.reply_i64(0)
    }
}

/// While `id` has waiters, have a timer look at it right after its next lease ends.
pub fn watch(ctx: &Ctx, sem: Option<&Semaphore>, id: &KeyId, now_ms: i64) {
    if queued(id) == 0 {
        return;
    }
    match sem.and_then(Semaphore::next_expiry) {
        Some(at) => ensure_timer::<SemWaits>(ctx, id, lease::recheck_at(at), now_ms),
        // Waiters but no holder: look again at once (nothing should keep them waiting).
        None => poke(ctx, id, now_ms),
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
    // The deadline is a module timer (`SemWaits::deadline`), not the server's timeout: see
    // `module/blocked.rs` (seen under 1,000 waiters on Redis 7.0 before it was so).
    let handle = blocked::block::<SemWaits>(ctx)?;
    let wake = blocked::deadline_timer::<SemWaits>(ctx, handle, timeout_ms);
    let waiter = SemWaiter::new(handle, ask, wake);
    if with_q(|q| q.push(id.clone(), waiter)).flatten().is_none() {
        blocked::not_queued::<SemWaits>(ctx, handle, wake);
        return Ok(());
    }
    stats::SEM_WAITS.incr();
    watch(ctx, sem, &id, now_ms);
    Ok(())
}

/// Semaphore waiters (their callbacks are the lock family's: `waiters::LockFamilyWaits`).
pub struct SemWaits;

impl LockFamilyWaits for SemWaits {
    const NAME: &'static str = "semaphore";
    type Waiter = SemWaiter<usize>;

    fn with_queues<R>(f: impl FnOnce(&mut SemQueues) -> R) -> Option<R> {
        with_q(f)
    }

    /// The ones behind a waiter that left may fit now, so the key is looked at again at
    /// once.
    fn left(ctx: &Ctx, key: &KeyId) {
        look_again(ctx, key);
    }

    fn service(ctx: &Ctx, id: &KeyId) -> Result<(), CmdError> {
        service(ctx, id)
    }
}

fn look_again(ctx: &Ctx, id: &KeyId) {
    if queued(id) > 0 {
        if let Some(now) = now_ms() {
            poke(ctx, id, now);
        }
    }
}

/// Every waiter of `id` gets `err` (and leaves).
pub fn fail_all(ctx: &Ctx, id: &KeyId, err: &CmdError) {
    waiters::fail_all::<SemWaits>(ctx, id, err);
}

// ---- timers -----------------------------------------------------------------------------

/// Look at `id` from a timer right away (after a deletion, a flush, a waiter leaving).
pub fn poke(ctx: &Ctx, id: &KeyId, now_ms: i64) {
    ensure_timer::<SemWaits>(ctx, id, now_ms, now_ms);
}

/// Where a timer may write `id`: on a master that is not loading, with the key's db
/// selected and (in Cluster) its slot served here. `Ok(None)`: not now (with `retry`, the
/// waiters get an error or a look again shortly).
pub fn writable_here(ctx: &Ctx, id: &KeyId, retry: bool) -> Result<Option<i64>, CmdError> {
    let here = keytimer::writable_here(ctx, id.0, [id.1.as_slice()])?;
    match here {
        Here::Writable { now_ms } => return Ok(Some(now_ms)),
        _ if !retry => {}
        Here::NotMaster => fail_all(ctx, id, &waiters::NOT_MASTER),
        Here::SlotMoved => fail_all(ctx, id, &waiters::SLOT_MOVED),
        Here::Loading { now_ms } => {
            ensure_timer::<SemWaits>(ctx, id, now_ms.saturating_add(10), now_ms);
        }
    }
    Ok(None)
}

/// Open `id` (db selected) and apply `f` through [`change`]; a key of another type fails
/// its waiters with WRONGTYPE.
pub fn change_key(
    ctx: &Ctx,
    id: &KeyId,
    now_ms: i64,
    f: impl FnOnce(&mut Semaphore, usize) -> (bool, ()),
) -> Result<(), CmdError> {
    let names = KeyNames::new([id.1.as_slice()].into_iter())?;
    // `names` outlives every use of this `RStr` below.
    let name = names.first()?;
    let Some(mut key) = waiters::open_for_timer::<SemWaits, _>(ctx, id, name, &SEM_TYPE)? else {
        return Ok(());
    };
    let sem_name = LockName::of_id(id);
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
