//! `INFO hacks` counters for the locks.

use crate::module::stats::{Counter, Field};

/// A free lock taken by `HACK.LOCK` at once.
pub static ACQUIRED: Counter = Counter::new();
/// A lock passed to the first waiter (on UNLOCK, expiry, or deletion of the key).
pub static HANDOFFS: Counter = Counter::new();
/// `HACK.LOCK` by the holder: same token, TTL reset.
pub static RENEWED: Counter = Counter::new();
/// `HACK.LOCK` answered nil at once (held by another, no WAIT or inside MULTI/Lua).
pub static BUSY: Counter = Counter::new();
/// `HACK.LOCK ... WAIT` calls that blocked.
pub static WAITS: Counter = Counter::new();
/// Waiters answered nil when their WAIT timeout ran out.
pub static WAIT_TIMEOUTS: Counter = Counter::new();
/// Waiters that left the queue by disconnecting.
pub static WAIT_DISCONNECTS: Counter = Counter::new();
/// Waiters answered with an error (the key changed type, the server stopped being a
/// master, the key's slot moved).
pub static WAIT_ERRORS: Counter = Counter::new();
/// `HACK.UNLOCK` by the holder.
pub static RELEASED: Counter = Counter::new();
/// `HACK.EXTEND` by the holder.
pub static EXTENDED: Counter = Counter::new();
/// `HACK.UNLOCK` / `HACK.EXTEND` by someone who does not hold the lock (answered 0).
pub static NOT_HOLDER: Counter = Counter::new();

/// `HACK.SEMACQUIRE` that took new permits at once.
pub static SEM_ACQUIRED: Counter = Counter::new();
/// `HACK.SEMACQUIRE` by a holder: same token, lease renewed.
pub static SEM_RENEWED: Counter = Counter::new();
/// `HACK.SEMACQUIRE` answered nil at once (no room, no WAIT or inside MULTI/Lua).
pub static SEM_BUSY: Counter = Counter::new();
/// `HACK.SEMACQUIRE ... WAIT` calls that blocked.
pub static SEM_WAITS: Counter = Counter::new();
/// Semaphore waiters admitted (after a release, an expiry, a disconnect, a deletion).
pub static SEM_HANDOFFS: Counter = Counter::new();
/// `HACK.SEMRELEASE` by a holder.
pub static SEM_RELEASED: Counter = Counter::new();
/// `HACK.SEMEXTEND` by a holder.
pub static SEM_EXTENDED: Counter = Counter::new();
/// `HACK.SEMRELEASE` / `HACK.SEMEXTEND` by an owner holding nothing (answered 0).
pub static SEM_NOT_HOLDER: Counter = Counter::new();
/// Holdings whose lease ended, pruned by the master.
pub static SEM_EXPIRED: Counter = Counter::new();
/// BOUND holdings released because their connection closed.
pub static SEM_BOUND_RELEASED: Counter = Counter::new();

pub const FIELDS: &[Field] = &[
    (c"lock_acquired", &ACQUIRED),
    (c"lock_handoffs", &HANDOFFS),
    (c"lock_renewed", &RENEWED),
    (c"lock_busy", &BUSY),
    (c"lock_waits", &WAITS),
    (c"lock_wait_timeouts", &WAIT_TIMEOUTS),
    (c"lock_wait_disconnects", &WAIT_DISCONNECTS),
    (c"lock_wait_errors", &WAIT_ERRORS),
    (c"lock_released", &RELEASED),
    (c"lock_extended", &EXTENDED),
    (c"lock_not_holder", &NOT_HOLDER),
    (c"sem_acquired", &SEM_ACQUIRED),
    (c"sem_renewed", &SEM_RENEWED),
    (c"sem_busy", &SEM_BUSY),
    (c"sem_waits", &SEM_WAITS),
    (c"sem_handoffs", &SEM_HANDOFFS),
    (c"sem_released", &SEM_RELEASED),
    (c"sem_extended", &SEM_EXTENDED),
    (c"sem_not_holder", &SEM_NOT_HOLDER),
    (c"sem_expired", &SEM_EXPIRED),
    (c"sem_bound_released", &SEM_BOUND_RELEASED),
];
