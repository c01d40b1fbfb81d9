//! Waiting for a lock server-side: blocked clients in FIFO queues, hand-off to the first
//! waiter, and the timers and events that trigger a hand-off when nobody sends a command.
//!
//! - `HACK.LOCK ... WAIT` on a held lock blocks the client (`module/blocked.rs`: no
//!   server-side timeout, a module timer owns the WAIT deadline) and queues it
//!   (`queue.rs`). Nothing is replicated: a wait is no write.
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
//!   through keyspace and server events (`events.rs`), which schedule an immediate timer:
//!   writes do not belong inside a keyspace-event callback.
//! - Timers also fire on replicas: a timer writes only on a master that is not loading,
//!   and hands waiters an error when the server is no longer a master (Redis itself also
//!   unblocks them when it turns into a replica) or, in Cluster, no longer serves the
//!   key's slot.
//! - Every blocked client ends in exactly one `RedisModule_UnblockClient`: on hand-off,
//!   on error, in the timeout callback or in the disconnect callback, whichever takes it
//!   out of the queue first.
//!
//! - Semaphore waiters (`semaphore/wait.rs`) get the same replies ([`Outcome`]) from their
//!   own queue.
//!
//! Everything here runs on the server's main thread (commands, timers, event callbacks,
//! blocked-client callbacks), so the queues live in a thread-local.

use std::cell::RefCell;

use crate::module::args::RStr;
use crate::module::blocked::{self, Waits};
use crate::module::command::log;
use crate::module::ctx::Ctx;
use crate::module::error::{CmdError, WRONGTYPE};
use crate::module::keytimer::{self, ensure_timer, stop_timer, Here, KeyId, KeyNames};
use crate::module::typedkey::{DataType, TypedKey};

use super::datatype::LOCK_TYPE;
use super::lease::{self, Lock};
use super::queue::{Queued, Queues, Waiter};
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

impl<'a> LockName<'a> {
    /// The key a command names at `args[1]`, in the command's database.
    pub fn of_command(
        ctx: &Ctx,
        args: &crate::module::args::Args<'a>,
    ) -> Result<LockName<'a>, CmdError> {
        Ok(LockName {
            db: ctx.selected_db()?,
            name: args.bytes(1)?,
        })
    }

    /// A queued key's name.
    pub fn of_id(id: &'a KeyId) -> LockName<'a> {
        LockName {
            db: id.0,
            name: &id.1,
        }
    }

    pub fn id(&self) -> KeyId {
        (self.db, self.name.to_vec())
    }
}

/// Nobody waits for any lock.
pub fn idle() -> bool {
    with_queues(|q| q.is_empty()).unwrap_or(true)
}

/// Waiters queued on this server right now, over all locks (`INFO hacks`).
pub fn waiting_now() -> usize {
    with_queues(|q| q.total()).unwrap_or(0)
}

/// Waiters queued for `lock`.
pub fn queued(lock: &LockName<'_>) -> usize {
    with_queues(|q| if q.is_empty() { 0 } else { q.len(&lock.id()) }).unwrap_or(0)
}

pub fn queued_id(id: &KeyId) -> usize {
    with_queues(|q| q.len(id)).unwrap_or(0)
}

/// Every lock somebody waits for.
pub fn keys() -> Vec<KeyId> {
    with_queues(|q| q.keys()).unwrap_or_default()
}

/// What a blocked client is told when it is unblocked by the module (locks and semaphores).
pub enum Outcome {
    Granted(u64),
    Failed(CmdError),
}

pub(crate) const NOT_MASTER: CmdError = CmdError::Static(
    "ERR this server is no longer a master: the lock cannot be granted here; retry on the master",
);
pub(crate) const SLOT_MOVED: CmdError = CmdError::Static(
    "ERR the lock's slot is no longer served by this node; retry on the node that serves it",
);

/// The reply of a lock or semaphore waiter: its token, the error, or nil (timed out).
pub(crate) fn send(ctx: &Ctx, outcome: Option<&Outcome>) -> Result<(), CmdError> {
    match outcome {
        Some(Outcome::Granted(token)) => ctx.reply_i64(i64::try_from(*token).unwrap_or(i64::MAX)),
        Some(Outcome::Failed(e)) => {
            ctx.reply_error(e);
            Ok(())
        }
        None => ctx.reply_null(),
    }
}

/// What differs between lock and semaphore waiters; their blocked-client callbacks are
/// otherwise the same ([`Waits`] below, for both).
pub trait LockFamilyWaits: 'static {
    const NAME: &'static str;
    type Waiter: Queued<usize> + 'static;
    fn with_queues<R>(f: impl FnOnce(&mut Queues<usize, Self::Waiter>) -> R) -> Option<R>;
    /// A waiter of `key` left its queue (timeout, disconnect, `CLIENT UNBLOCK`).
    fn left(_ctx: &Ctx, _key: &KeyId) {}
    /// A timer's look at a queue (`Waits::timer`).
    fn service(ctx: &Ctx, id: &KeyId) -> Result<(), CmdError>;
}

/// Take waiter `handle` out of its queue, stopping the queue's timer if the queue is gone,
/// and the waiter's deadline timer unless that is the one firing (`stop_deadline` false);
/// false when it was no longer queued (served).
fn leave<T: LockFamilyWaits>(ctx: &Ctx, handle: usize, stop_deadline: bool) -> bool {
    let Some(left) = T::with_queues(|q| q.remove(handle)).flatten() else {
        return false;
    };
    if let Some(t) = left.orphaned_timer {
        stop_timer(ctx, t);
    }
    if stop_deadline {
        blocked::stop_deadline(ctx, left.waiter.wake());
    }
    T::left(ctx, &left.key);
    true
}

impl<T: LockFamilyWaits> Waits for T {
    type Outcome = Outcome;
    const NAME: &'static str = T::NAME;

    fn failed(e: CmdError) -> Outcome {
        Outcome::Failed(e)
    }

    fn reply(ctx: &Ctx, outcome: Option<&Outcome>) -> Result<(), CmdError> {
        send(ctx, outcome)
    }

    /// `CLIENT UNBLOCK`: leave, answer nil (the server sends its error instead for
    /// `CLIENT UNBLOCK ... ERROR`).
    fn unblocked(ctx: &Ctx, handle: usize) -> Option<Outcome> {
        if leave::<T>(ctx, handle, true) {
            stats::LOCK_WAIT_TIMEOUTS.incr();
        }
        None
    }

    fn disconnected(ctx: &Ctx, handle: usize) {
        if leave::<T>(ctx, handle, true) {
            stats::LOCK_WAIT_DISCONNECTS.incr();
        }
    }

    /// Still queued at its deadline: nobody served it, so its wait ends (nil). Every other
    /// way out of the queue stops this timer first.
    fn deadline(ctx: &Ctx, handle: usize) {
        if leave::<T>(ctx, handle, false) {
            stats::LOCK_WAIT_TIMEOUTS.incr();
            blocked::unblock::<Self>(handle, None);
        }
    }

    fn timer(ctx: &Ctx, id: &KeyId) {
        if let Err(e) = T::service(ctx, id) {
            log(
                Some(ctx),
                c"warning",
                &format!("hacks: {} wait service failed: {}", T::NAME, e.text()),
            );
        }
    }

    type Queues = Queues<usize, T::Waiter>;

    fn with_queues<R>(f: impl FnOnce(&mut Self::Queues) -> R) -> Option<R> {
        T::with_queues(f)
    }
}

/// Lock waiters.
pub struct LockWaits;

impl LockFamilyWaits for LockWaits {
    const NAME: &'static str = "lock";
    type Waiter = Waiter<usize>;

    fn with_queues<R>(f: impl FnOnce(&mut Queues<usize>) -> R) -> Option<R> {
        with_queues(f)
    }

    fn service(ctx: &Ctx, id: &KeyId) -> Result<(), CmdError> {
        service(ctx, id)
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
    let handle = blocked::block::<LockWaits>(ctx)?;
    let key = &lock.id();
    let wake = blocked::deadline_timer::<LockWaits>(ctx, handle, timeout_ms);
    let waiter = Waiter {
        handle,
        owner: owner.to_vec(),
        ttl_ms,
        wake,
    };
    if with_queues(|q| q.push(key.clone(), waiter))
        .flatten()
        .is_none()
    {
        blocked::not_queued::<LockWaits>(ctx, handle, wake);
        return Ok(());
    }
    stats::LOCK_WAITS.incr();
    if let Some(at) = holder_expiry_ms {
        ensure_timer::<LockWaits>(ctx, key, lease::recheck_at(at), now_ms);
    }
    Ok(())
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
    blocked::stop_deadline(ctx, w.wake);
    // The token's clock term is the wall clock in µs: `now_ms` has millisecond precision,
    // not enough to order tokens across nodes. The expiry is counted from that same read,
    // so the token and the lease agree on when the hand-off happened.
    let clock = token::hand_off_clock(now_ms);
    let installed = clock.allocate().and_then(|token| {
        let at = lease::expiry(clock.ms, w.ttl_ms);
        effect::install(ctx, key, name, effect::Owner::Bytes(&w.owner), token, at)?;
        Ok(token)
    });
    match installed {
        Ok(token) => {
            stats::LOCK_HANDOFFS.incr();
            blocked::unblock::<LockWaits>(w.handle, Some(Outcome::Granted(token)));
            Ok(true)
        }
        Err(e) => {
            stats::LOCK_WAIT_ERRORS.incr();
            blocked::unblock::<LockWaits>(w.handle, Some(Outcome::Failed(e.clone())));
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
        ensure_timer::<LockWaits>(ctx, &lock.id(), lease::recheck_at(at), now_ms);
    }
    Ok(())
}

/// Look at `id` from a timer right away (after a deletion or a flush).
pub fn poke(ctx: &Ctx, id: &KeyId, now_ms: i64) {
    ensure_timer::<LockWaits>(ctx, id, now_ms, now_ms);
}

/// Every waiter of `id` in `T`'s queues gets `err` (and leaves).
pub fn fail_all<T: LockFamilyWaits>(ctx: &Ctx, id: &KeyId, err: &CmdError) {
    let Some((waiters, timer)) = T::with_queues(|q| q.take_all(id)) else {
        return;
    };
    if let Some(t) = timer {
        stop_timer(ctx, t);
    }
    for w in waiters {
        blocked::stop_deadline(ctx, w.wake());
        stats::LOCK_WAIT_ERRORS.incr();
        blocked::unblock::<T>(w.handle(), Some(Outcome::Failed(err.clone())));
    }
}

/// Open `id`'s key `name` (its db selected) as `ty`, for a timer to change it; a key of
/// another type fails every waiter of `id` with WRONGTYPE (`Ok(None)`).
pub fn open_for_timer<'t, T: LockFamilyWaits, V>(
    ctx: &Ctx,
    id: &KeyId,
    name: RStr,
    ty: &'t DataType<V>,
) -> Result<Option<TypedKey<'t, V>>, CmdError> {
    match TypedKey::open(ctx, name, ty, true) {
        Ok(k) => Ok(Some(k)),
        Err(e) if e == WRONGTYPE => {
            fail_all::<T>(ctx, id, &WRONGTYPE);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// A timer's look at a lock with waiters: hand it off if it is free, else watch the
/// holder's expiry again.
fn service(ctx: &Ctx, id: &KeyId) -> Result<(), CmdError> {
    if queued_id(id) == 0 {
        return Ok(());
    }
    let now_ms = match keytimer::writable_here(ctx, id.0, [id.1.as_slice()])? {
        Here::Writable { now_ms } => now_ms,
        Here::NotMaster => {
            fail_all::<LockWaits>(ctx, id, &NOT_MASTER);
            return Ok(());
        }
        Here::SlotMoved => {
            fail_all::<LockWaits>(ctx, id, &SLOT_MOVED);
            return Ok(());
        }
        Here::Loading { now_ms } => {
            ensure_timer::<LockWaits>(ctx, id, now_ms.saturating_add(10), now_ms);
            return Ok(());
        }
    };
    let names = KeyNames::new([id.1.as_slice()].into_iter())?;
    // `names` outlives every use of this `RStr` below.
    let name = names.first()?;
    let Some(mut key) = open_for_timer::<LockWaits, _>(ctx, id, name, &LOCK_TYPE)? else {
        return Ok(());
    };
    let lock = LockName::of_id(id);
    if key.get()?.is_none() {
        hand_off(ctx, &mut key, name, &lock, now_ms)?;
    }
    watch(ctx, &key, &lock, now_ms)
}
