//! Fencing tokens: strictly increasing for every successive acquisition of the same key
//! name, across unlock, expiry, deletion (UNLOCK with nobody waiting, `DEL`), a restart from
//! RDB or AOF, and a replica promoted after failover (as far as replication reached it).
//!
//! A free lock leaves no key behind, so a per-key counter cannot carry the sequence. Instead
//! one module-wide high-water mark `last`; a new token is `max(last + 1, now_us)` with the
//! system clock in microseconds (so tokens also grow across nodes when a slot moves: see
//! `module/clock.rs`).
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

use std::sync::atomic::{AtomicU64, Ordering};

static LAST: AtomicU64 = AtomicU64::new(0);

/// The next token given the current mark and the wall clock in microseconds (pure).
pub fn next_after(last: u64, clock_us: i64) -> u64 {
    let clock = u64::try_from(clock_us).unwrap_or(0);
    last.saturating_add(1).max(clock)
}

/// Allocate a new token (master only; the caller replicates it). The clock term is the
/// system clock in microseconds (see `module/clock.rs`).
pub fn allocate() -> u64 {
    let t = next_after(
        LAST.load(Ordering::Relaxed),
        crate::module::clock::wall_us(),
    );
    LAST.store(t, Ordering::Relaxed);
    t
}

/// Raise the mark to at least `token`.
pub fn observe(token: u64) {
    if token > LAST.load(Ordering::Relaxed) {
        LAST.store(token, Ordering::Relaxed);
    }
}

/// The mark: the largest token handed out or seen.
pub fn last() -> u64 {
    LAST.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictly_increasing_within_a_microsecond_and_across_clock_jumps() {
        assert_eq!(next_after(0, 5000), 5000);
        assert_eq!(next_after(5000, 5000), 5001, "same microsecond");
        assert_eq!(next_after(5999, 6000), 6000, "clock catches up");
        assert_eq!(
            next_after(7000, 5000),
            7001,
            "a clock behind the mark never lowers tokens"
        );
        assert_eq!(next_after(5, -1), 6, "a clock before 1970 counts as 0");
        assert_eq!(next_after(u64::MAX, 5), u64::MAX);
    }

    #[test]
    fn a_lost_mark_is_recovered_by_the_clock() {
        // Tokens run ahead of the clock only by their own count: after losing the mark, a
        // restart later than that count of microseconds still goes up.
        let mut last = 0;
        for _ in 0..1000 {
            last = next_after(last, 42_000);
        }
        assert_eq!(last, 42_999);
        assert!(next_after(0, 43_000) > last);
    }
}
