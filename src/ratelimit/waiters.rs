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
//! - Timeout (a module timer owns the deadline, `module/blocked.rs`: a waiter is admitted or
//!   times out, never both) and `CLIENT UNBLOCK`: the waiter leaves, is answered with the
//!   denied verdict (and `retry_after_ms`) of that moment, and is never charged.
//!   Disconnect: it leaves.
//! - Timers also fire on replicas: admission only on a master that is not loading; when
//!   the server is no longer a master, or in Cluster no longer serves a key's slot, the
//!   waiters get an error.
//! - Keyspace and server events: `events.rs`.
//!
//! Everything here runs on the server's main thread, so the queues live in a thread-local.

use std::cell::RefCell;

use crate::module::blocked::{self, Waits};
use crate::module::command::log;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::keytimer::{
    self, ensure_timer, now_us, select_db, stop_timer, Here, KeyId, KeyNames,
};

use super::call::{self, Answer, Call};
use super::queue::Queues;
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
pub(crate) struct Waiting {
    reply: Reply,
    limits: Vec<Limit>,
    cost: i64,
    partial: bool,
    peek: bool,
    /// The module timer that ends the wait at its deadline.
    wake: Option<u64>,
}

impl Waiting {
    /// This waiter's call decided now on `keys` (as PEEK when `peek`), as if sent again.
    fn decide(
        &self,
        ctx: &Ctx,
        keys: &[KeyId],
        peek: bool,
        now_us: i64,
    ) -> Result<Answer, CmdError> {
        let names = KeyNames::new(keys.iter().map(|(_, k)| k.as_slice()))?;
        let rs = names.all();
        let c = Call {
            names: &rs,
            limits: &self.limits,
            cost: self.cost,
            partial: self.partial,
            peek,
        };
        call::run(ctx, c, now_us, 0)
    }
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
pub(crate) enum Outcome {
    Answer(Box<Answer>, Reply),
    Failed(CmdError),
}

pub(crate) const NOT_MASTER: CmdError = CmdError::Static(
    "ERR this server is no longer a master: the call cannot be admitted here; retry on the master",
);
const SLOT_MOVED: CmdError = CmdError::Static(
    "ERR the key's slot is no longer served by this node; retry on the node that serves it",
);

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
    let may_block = wait_ms > 0 && c.cost > 0 && blocked::can_block(flags);
    if answer.allowed || !may_block || answer.retry_after_ms < 0 {
        return Ok(Some(answer));
    }
    block(ctx, c, ids(db, names), wait_ms, reply)?;
    Ok(None)
}

/// Block the caller on `keys` until its call fits, its WAIT runs out or it leaves.
fn block(
    ctx: &Ctx,
    c: Call<'_>,
    keys: Vec<KeyId>,
    wait_ms: i64,
    reply: Reply,
) -> Result<(), CmdError> {
    let handle = blocked::block::<RateWaits>(ctx)?;
    let wake = blocked::deadline_timer::<RateWaits>(ctx, handle, wait_ms);
    let waiting = Waiting {
        reply,
        limits: c.limits.to_vec(),
        cost: c.cost,
        partial: c.partial,
        peek: c.peek,
        wake,
    };
    if with_queues(|q| q.push(handle, keys.clone(), waiting))
        .flatten()
        .is_none()
    {
        blocked::not_queued::<RateWaits>(ctx, handle, wake);
        return Ok(());
    }
    stats::RATELIMIT_WAITS.incr();
    service_keys(ctx, keys);
    Ok(())
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

// ---- the blocked-client layer ----------------------------------------------------------

/// Rate-limit waiters, as the shared blocked-client layer sees them.
pub(crate) struct RateWaits;

impl Waits for RateWaits {
    type Outcome = Outcome;
    const NAME: &'static str = "ratelimit";

    fn failed(e: CmdError) -> Outcome {
        Outcome::Failed(e)
    }

    fn reply(ctx: &Ctx, outcome: Option<&Outcome>) -> Result<(), CmdError> {
        match outcome {
            Some(Outcome::Answer(a, reply)) => send(ctx, a, *reply),
            Some(Outcome::Failed(e)) => {
                ctx.reply_error(e);
                Ok(())
            }
            None => ctx.reply_null(),
        }
    }

    /// `CLIENT UNBLOCK`: leave the queues, answer the denied verdict of now, uncharged.
    fn unblocked(ctx: &Ctx, handle: usize) -> Option<Outcome> {
        let (keys, w) = leave(ctx, handle, true)?;
        stats::RATELIMIT_WAITS_TIMED_OUT.incr();
        Some(denied_now(ctx, &keys, &w))
    }

    fn disconnected(ctx: &Ctx, handle: usize) {
        if leave(ctx, handle, true).is_some() {
            stats::RATELIMIT_WAITS_DISCONNECTED.incr();
        }
    }

    /// Still queued at its deadline: nobody admitted it, so it gets the denied verdict of
    /// now. Every other way out of the queues stops this timer first.
    fn deadline(ctx: &Ctx, handle: usize) {
        // Its deadline timer is the one firing: not stopped (that would free it twice).
        let Some((keys, w)) = leave(ctx, handle, false) else {
            return;
        };
        stats::RATELIMIT_WAITS_TIMED_OUT.incr();
        let outcome = denied_now(ctx, &keys, &w);
        blocked::unblock::<Self>(handle, Some(outcome));
    }

    fn timer(ctx: &Ctx, id: &KeyId) {
        service_keys(ctx, vec![id.clone()]);
    }

    type Queues = Queues<Waiting>;

    fn with_queues<R>(f: impl FnOnce(&mut Queues<Waiting>) -> R) -> Option<R> {
        with_queues(f)
    }
}

/// What a waiter that leaves unadmitted is told: its denied verdict of now (or the error).
fn denied_now(ctx: &Ctx, keys: &[KeyId], w: &Waiting) -> Outcome {
    match verdict_now(ctx, keys, w) {
        Ok(a) => Outcome::Answer(Box::new(a), w.reply),
        Err(e) => Outcome::Failed(e),
    }
}

/// The denied verdict a timed-out waiter gets: its call decided now, as PEEK (in its own
/// database: a timer's context starts in 0).
fn verdict_now(ctx: &Ctx, keys: &[KeyId], w: &Waiting) -> Result<Answer, CmdError> {
    if let Some((db, _)) = keys.first() {
        select_db(ctx, *db)?;
    }
    let mut a = w.decide(ctx, keys, true, now_us())?;
    if a.allowed {
        // It fits now, but the queue (or the deadline) came first: still a denial, and
        // the earliest retry is at once.
        a.allowed = false;
        a.granted = 0;
        a.retry_after_ms = 0;
    }
    Ok(a)
}

/// Take a waiter out of its queues (its keys' queues then get a look right away: the next
/// in line may fit now). `None` when it was no longer queued (already served). Its deadline
/// timer is stopped unless it is the one firing (`stop_deadline` false).
fn leave(ctx: &Ctx, handle: usize, stop_deadline: bool) -> Option<(Vec<KeyId>, Waiting)> {
    let seq = with_queues(|q| q.seq_of(handle)).flatten()?;
    let (entry, orphaned) = with_queues(|q| q.remove(seq)).flatten()?;
    for t in orphaned {
        stop_timer(ctx, t);
    }
    if stop_deadline {
        blocked::stop_deadline(ctx, entry.data.wake);
    }
    let now_ms = now_us().div_euclid(1000);
    for k in &entry.keys {
        ensure_timer::<RateWaits>(ctx, k, now_ms, now_ms);
    }
    Some((entry.keys, entry.data))
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
                    ensure_timer::<RateWaits>(ctx, &id, due_ms, now_ms);
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
    let db = keys.first().map_or(0, |k| k.0);
    match keytimer::writable_here(ctx, db, keys.iter().map(|k| k.1.as_slice()))? {
        Here::Writable { .. } => {}
        Here::NotMaster => {
            fail_all(ctx, &NOT_MASTER);
            return Ok(Step::Stop);
        }
        Here::Loading { now_ms } => {
            if let Some(k) = keys.first() {
                ensure_timer::<RateWaits>(ctx, k, now_ms.saturating_add(10), now_ms);
            }
            return Ok(Step::Stop);
        }
        Here::SlotMoved => {
            finish(ctx, seq, Outcome::Failed(SLOT_MOVED));
            return Ok(Step::Admitted(keys));
        }
    }
    let now_us = now_us();
    let now_ms = now_us.div_euclid(1000);
    match w.decide(ctx, &keys, w.peek, now_us) {
        Ok(a) if a.allowed => {
            stats::RATELIMIT_WAITS_ADMITTED.incr();
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
    blocked::stop_deadline(ctx, entry.data.wake);
    if matches!(outcome, Outcome::Failed(_)) {
        stats::RATELIMIT_WAITS_FAILED.incr();
    }
    blocked::unblock::<RateWaits>(entry.handle, Some(outcome));
}

/// Every waiter gets `err` (and leaves).
pub(crate) fn fail_all(ctx: &Ctx, err: &CmdError) {
    let keys = with_queues(|q| q.keys()).unwrap_or_default();
    for k in keys {
        for seq in with_queues(|q| q.waiters_of(&k)).unwrap_or_default() {
            finish(ctx, seq, Outcome::Failed(err.clone()));
        }
    }
}

/// Look at the queue of `id` from a timer right away (after a deletion or a flush).
pub(crate) fn poke(ctx: &Ctx, id: &KeyId, now_ms: i64) {
    ensure_timer::<RateWaits>(ctx, id, now_ms, now_ms);
}

/// Every key somebody waits on.
pub(crate) fn keys() -> Vec<KeyId> {
    with_queues(|q| q.keys()).unwrap_or_default()
}
