//! Semaphores: `HACK.SEMACQUIRE`, `HACK.SEMRELEASE`, `HACK.SEMEXTEND`, `HACK.SEMINFO` (the
//! commands are in `lock/commands/`, with the internal effect `HACK.SEMSET`).
//!
//! The pure core:
//! - `holders.rs`: the value of a semaphore key (its holders, their permits, tokens, leases
//!   and connection bindings), the size bounds, and what `SEMINFO` shows;
//! - `admit.rs`: what acquire, release, extend, expiry and a disconnect do, and the FIFO
//!   admission of waiters (the waiters themselves queue in `lock/queue.rs`);
//! - `parts.rs`: the value as plain fields for RDB, AOF and replication, and its validated
//!   rebuilding;
//! - `args.rs`: argument parsing and validation, with the error replies.
//!
//! The server glue:
//! - `datatype.rs`: the `hacks-sem` data type (RDB, AOF rewrite, digest, copy, memory);
//! - `effect.rs`: writing the value back and replicating it as `HACK.SEMSET ... PXAT`/`DEL`;
//! - `wait.rs`: every change with its admission of waiters, blocking, expiry timers;
//! - `bound.rs`: BOUND (the client index, disconnects, stale bindings after a restart or
//!   a promotion).
//!
//! The rules (every one is decided here, the glue only applies them):
//! - A semaphore admits holders while the permits they hold total at most the limit.
//!   Each holder is an owner string holding `n` permits (default 1) with a lease ending at
//!   an absolute deadline (Unix ms) and a fencing token from `lock/token.rs` (shared with
//!   `HACK.LOCK`: strictly increasing per key name). The core never reads a clock and
//!   never mints a token: both are passed in.
//! - Re-acquire by a holder with the same `n` is a renewal: same token, fresh lease, and
//!   the BOUND setting and limit of this call. With a different `n` it is an error and
//!   nothing changes (resizing a holding is not an acquire: release first). Renewals never
//!   wait and are not held back by waiters or by a lowered limit.
//! - The limit is part of every acquire, and checked when that acquire is served (at once,
//!   or later from the wait queue): a new holder gets in when `in_use + n <= its limit`.
//!   The key remembers the limit of the latest acquire that took or renewed a permit
//!   (`SEMINFO` shows it). Lowering the limit takes nothing from existing holders; callers
//!   passing the lower limit get nothing until enough permits are released.
//! - Expiry: a lease is live up to and including its deadline (as a Redis key with
//!   `PEXPIREAT`) and its permits are free from deadline + 1 ms on.
//! - BOUND ties a holding to the acquiring connection: its disconnect releases it.
//! - Waiters are served strictly FIFO: a waiter that does not fit blocks everyone behind it,
//!   so a large request is never starved by small ones. A new acquire never overtakes a
//!   queued waiter (it gets nil, or queues behind with WAIT).
//! - The key exists only while somebody holds a permit.

pub mod admit;
pub mod args;
pub mod bound;
pub mod datatype;
pub mod effect;
pub mod holders;
pub mod parts;
pub mod wait;

#[cfg(test)]
mod model_tests;
