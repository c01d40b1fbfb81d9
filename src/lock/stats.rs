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
];
