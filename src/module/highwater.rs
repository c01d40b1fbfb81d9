//! A module-wide high-water mark for ids that must never repeat for a key name, even after
//! the key is deleted (nothing is left to carry a per-key counter): fencing tokens and
//! buffer batch ids.
//!
//! A new id is `max(last + 1, now_us)` with the system clock in microseconds
//! (`module/clock.rs`). The mark is raised by every id the server sees: ids it hands out,
//! ids arriving through replication or AOF replay, ids inside loaded values, and the mark
//! itself (each family saves it as RDB aux data). Where the mark is lost (a restart from an
//! AOF without RDB preamble after the last key holding an id was deleted), ids keep growing
//! as long as the clock has not run back past the last id; ids run ahead of the clock only
//! by their own count (one per microsecond, sustained, would be needed to outrun it).

use std::sync::atomic::{AtomicU64, Ordering};

/// The next id given the mark and the clock in microseconds (pure).
pub fn next_after(last: u64, clock_us: i64) -> u64 {
    let clock = u64::try_from(clock_us).unwrap_or(0);
    last.saturating_add(1).max(clock)
}

/// Commands run on the server's main thread only: plain loads and stores suffice; the
/// atomic only keeps the static `Sync`.
pub struct HighWater(AtomicU64);

impl HighWater {
    pub const fn new() -> Self {
        HighWater(AtomicU64::new(0))
    }

    /// The id [`HighWater::take`] would hand out now.
    pub fn peek(&self) -> u64 {
        next_after(self.last(), super::clock::wall_us())
    }

    /// Hand out a new id (master only; the caller replicates it).
    pub fn take(&self) -> u64 {
        let id = self.peek();
        self.0.store(id, Ordering::Relaxed);
        id
    }

    /// Raise the mark to at least `id`.
    pub fn observe(&self, id: u64) {
        if id > self.last() {
            self.0.store(id, Ordering::Relaxed);
        }
    }

    /// The largest id handed out or seen.
    pub fn last(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Default for HighWater {
    fn default() -> Self {
        Self::new()
    }
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
            "a clock behind the mark never lowers ids"
        );
        assert_eq!(next_after(5, -1), 6, "a clock before 1970 counts as 0");
        assert_eq!(next_after(u64::MAX, 5), u64::MAX);
    }

    #[test]
    fn a_lost_mark_is_recovered_by_the_clock() {
        // Ids run ahead of the clock only by their own count: after losing the mark, a
        // restart later than that count of microseconds still goes up.
        let mut last = 0;
        for _ in 0..1000 {
            last = next_after(last, 42_000);
        }
        assert_eq!(last, 42_999);
        assert!(next_after(0, 43_000) > last);
    }

    #[test]
    fn marks_take_and_observe() {
        let m = HighWater::new();
        let a = m.take();
        assert!(m.take() > a);
        m.observe(u64::MAX - 1);
        assert_eq!(m.take(), u64::MAX);
        assert_eq!(m.last(), u64::MAX);
    }
}
