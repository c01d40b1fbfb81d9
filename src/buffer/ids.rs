//! Batch ids: never reused for the same key name, not after ACK, not after the key is
//! deleted and created again, not after a restart or a failover.
//!
//! One module-wide high-water mark `last`; a new id is `max(last + 1, now_us)` with the
//! system clock in microseconds (see `module/clock.rs`). The
//! mark is raised by every id this server sees: ids it hands out, ids arriving through
//! replication or AOF replay, ids inside loaded RDB values, and the mark itself (saved in the
//! RDB as module aux data). The clock term keeps ids increasing across a restart that lost
//! the mark (e.g. an AOF without RDB preamble after the key was deleted) as long as the clock
//! does not run backwards past the last id, and up to one lease per microsecond keeps the
//! ids ahead of nothing but themselves.

use std::sync::atomic::{AtomicU64, Ordering};

static LAST: AtomicU64 = AtomicU64::new(0);

/// The next id given the current mark and the wall clock in microseconds (pure).
pub fn next_after(last: u64, clock_us: i64) -> u64 {
    let clock = u64::try_from(clock_us).unwrap_or(0);
    last.saturating_add(1).max(clock)
}

/// The id a new batch gets now (taken by [`observe`] once the batch exists).
pub fn peek() -> u64 {
    next_after(
        LAST.load(Ordering::Relaxed),
        crate::module::clock::wall_us(),
    )
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
    fn strictly_increasing_within_a_microsecond_and_across_clock_jumps() {
        assert_eq!(next_after(0, 5000), 5000);
        assert_eq!(next_after(5000, 5000), 5001);
        assert_eq!(next_after(5999, 6000), 6000);
        assert_eq!(
            next_after(7000, 5000),
            7001,
            "a clock behind the mark never lowers ids"
        );
        assert_eq!(next_after(5, -1), 6);
        assert_eq!(next_after(u64::MAX, 5), u64::MAX);
    }
}
