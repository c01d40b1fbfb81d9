//! Batch ids: never reused for the same key name, not after ACK, not after the key is
//! deleted and created again, not after a restart or a failover.
//!
//! One module-wide high-water mark `last`; a new id is `max(last + 1, now_ms * 1000)`. The
//! mark is raised by every id this server sees: ids it hands out, ids arriving through
//! replication or AOF replay, ids inside loaded RDB values, and the mark itself (saved in the
//! RDB as module aux data). The clock term keeps ids increasing across a restart that lost
//! the mark (e.g. an AOF without RDB preamble after the key was deleted) as long as the clock
//! does not run backwards past the last id, and up to 1,000 leases per millisecond keep the
//! ids ahead of nothing but themselves.

use std::sync::atomic::{AtomicU64, Ordering};

static LAST: AtomicU64 = AtomicU64::new(0);

/// The next id given the current mark and clock (pure).
pub fn next_after(last: u64, now_ms: i64) -> u64 {
    let clock = u64::try_from(now_ms).unwrap_or(0).saturating_mul(1000);
    last.saturating_add(1).max(clock)
}

/// Allocate a new id (master only; the command then replicates it).
pub fn allocate(now_ms: i64) -> u64 {
    let id = next_after(LAST.load(Ordering::Relaxed), now_ms);
    LAST.store(id, Ordering::Relaxed);
    id
}

/// What `allocate` would return now, without taking it (for BUFINFO).
pub fn peek(now_ms: i64) -> u64 {
    next_after(LAST.load(Ordering::Relaxed), now_ms)
}

/// Raise the mark to at least `id`.
pub fn observe(id: u64) {
    if id > LAST.load(Ordering::Relaxed) {
        LAST.store(id, Ordering::Relaxed);
    }
}

pub fn last() -> u64 {
    LAST.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictly_increasing_within_a_millisecond_and_across_clock_jumps() {
        assert_eq!(next_after(0, 5), 5000);
        assert_eq!(next_after(5000, 5), 5001);
        assert_eq!(next_after(5999, 5), 6000);
        assert_eq!(
            next_after(7000, 5),
            7001,
            "a clock behind the mark never lowers ids"
        );
        assert_eq!(next_after(5, -1), 6);
        assert_eq!(next_after(u64::MAX, 5), u64::MAX);
    }
}
