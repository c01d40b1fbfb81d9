//! Fencing tokens: strictly increasing for every successive acquisition of the same key
//! name, across unlock, expiry, deletion (UNLOCK with nobody waiting, `DEL`), a restart from
//! RDB or AOF, and a replica promoted after failover (as far as replication reached it).
//!
//! A free lock leaves no key behind, so a per-key counter cannot carry the sequence. Instead
//! one module-wide [`HighWater`] mark; a new token is `max(last + 1, now_us)` with the
//! system clock in microseconds (so tokens also grow across nodes when a slot moves: see
//! `module/clock.rs` and `module/highwater.rs`).
//! The mark is raised by every token this server sees: tokens it hands out, tokens arriving
//! through replication or AOF replay (`HACK.LOCKSET`), tokens inside loaded RDB values, and
//! the mark itself (saved in every RDB as module aux data, so also in the RDB preamble of an
//! AOF and in the snapshot a replica loads on full sync).
//!
//! The assumption the scheme rests on: where the mark was lost (a restart from an AOF
//! without RDB preamble after the last lock on a key name was deleted), the server clock
//! must not have run backwards past the last token handed out. Tokens stay ahead of the
//! clock term only by their own count: at up to one acquisition per microsecond
//! (sustained; beyond what one server executes) `now_us` alone is larger than every earlier
//! token, and within one microsecond `last + 1` keeps them strictly increasing. Tokens are shared by all key names (they are increasing for each name, and
//! unique across names), fit in a signed 64-bit integer until the year 294,000, and look
//! like a microsecond timestamp of the acquisition.

use crate::module::highwater::HighWater;

static TOKENS: HighWater = HighWater::new();

/// Allocate a new token (master only; the caller replicates it). An error once the token
/// space is exhausted: never a token handed out twice.
fn allocate() -> Result<u64, crate::module::error::CmdError> {
    TOKENS.take().ok_or(ID_SPACE_EXHAUSTED)
}

/// [`allocate`] with the command's own clock read (`ctx.now_us()`), so acquiring a lock
/// reads the clock once, where that is a microsecond clock (`CachedMicroseconds`, Redis
/// 7.2+). Redis 7.0 only has the command time in milliseconds: a token from it could equal
/// one another node handed out in the same millisecond before a slot move (seen under
/// load), so there the wall clock is read (`module/clock.rs`).
pub fn allocate_at(now_us: i64) -> Result<u64, crate::module::error::CmdError> {
    if crate::module::ffi::has_api!(RedisModule_CachedMicroseconds) {
        TOKENS.take_at(now_us).ok_or(ID_SPACE_EXHAUSTED)
    } else {
        allocate()
    }
}

/// One wall-clock read for a hand-off (waiters served by a timer, a release or an
/// expiry): the µs its tokens are minted from and the ms its new leases count from (never
/// before `not_before_ms`, the caller's own now), so the tokens and the leases tell the same
/// time. Reading the two clocks apart could leave them a millisecond apart.
#[derive(Debug, Clone, Copy)]
pub struct HandOffClock {
    us: i64,
    pub ms: i64,
}

pub fn hand_off_clock(not_before_ms: i64) -> HandOffClock {
    let us = crate::module::clock::wall_us();
    HandOffClock {
        us,
        ms: not_before_ms.max(us.div_euclid(1000)),
    }
}

impl HandOffClock {
    /// A new token at this clock reading (`last + 1` for every one after the first).
    pub fn allocate(&self) -> Result<u64, crate::module::error::CmdError> {
        TOKENS.take_at(self.us).ok_or(ID_SPACE_EXHAUSTED)
    }
}

pub const ID_SPACE_EXHAUSTED: crate::module::error::CmdError =
    crate::module::error::CmdError::Static(
        "ERR fencing tokens are exhausted on this server (the id mark reached 2^63-1)",
    );

/// Raise the mark to at least `token`; false (nothing changed) for a token no clock could
/// have produced, which the caller refuses.
#[must_use]
pub fn observe(token: u64) -> bool {
    TOKENS.observe(token)
}

/// The mark itself (saved as the lock type's RDB aux data).
pub fn mark() -> &'static HighWater {
    &TOKENS
}

/// The mark: the largest token handed out or seen.
pub fn last() -> u64 {
    TOKENS.last()
}
