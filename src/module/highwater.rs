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

/// Largest id ever handed out: ids are replied as signed 64-bit integers.
pub const MAX_ID: u64 = i64::MAX as u64;
/// How far ahead of this server's clock a seen id may be (a year): beyond that no clock
/// produced it (a crafted RESTORE payload, a damaged RDB), and accepting it would pin every
/// later id at the end of the id space.
pub const MAX_AHEAD_US: i64 = 366 * 86_400 * 1_000_000;

/// The next id given the mark and the clock in microseconds (pure); `None` once the id
/// space is exhausted (never a repeated id).
pub fn next_after(last: u64, clock_us: i64) -> Option<u64> {
    let clock = u64::try_from(clock_us).unwrap_or(0);
    let id = last.checked_add(1)?.max(clock);
    (id <= MAX_ID).then_some(id)
}

/// Whether some clock within [`MAX_AHEAD_US`] of `clock_us` could have produced `id` (pure).
pub fn plausible(id: u64, clock_us: i64) -> bool {
    let horizon = u64::try_from(clock_us.saturating_add(MAX_AHEAD_US)).unwrap_or(0);
    id <= MAX_ID && id <= horizon
}

/// Commands run on the server's main thread only: plain loads and stores suffice; the
/// atomic only keeps the static `Sync`.
pub struct HighWater(AtomicU64);

impl HighWater {
    pub const fn new() -> Self {
        HighWater(AtomicU64::new(0))
    }

    /// The id [`HighWater::take`] would hand out now (`None`: the id space is exhausted).
    pub fn peek(&self) -> Option<u64> {
        next_after(self.last(), super::clock::wall_us())
    }

    /// Hand out a new id (master only; the caller replicates it).
    pub fn take(&self) -> Option<u64> {
        self.take_at(super::clock::wall_us())
    }

    /// [`HighWater::take`] with the clock already read by the caller (a command's one
    /// clock read, `ctx.now_us()`): saves a second read on a hot path.
    pub fn take_at(&self, clock_us: i64) -> Option<u64> {
        let id = next_after(self.last(), clock_us)?;
        self.0.store(id, Ordering::Relaxed);
        Some(id)
    }

    /// Raise the mark to at least `id`. An id no clock could have produced is refused
    /// (false) and changes nothing: the caller refuses the value carrying it.
    pub fn observe(&self, id: u64) -> bool {
        if !plausible(id, super::clock::wall_us()) {
            return false;
        }
        if id > self.last() {
            self.0.store(id, Ordering::Relaxed);
        }
        true
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
        assert_eq!(next_after(0, 5000), Some(5000));
        assert_eq!(next_after(5000, 5000), Some(5001), "same microsecond");
        assert_eq!(next_after(5999, 6000), Some(6000), "clock catches up");
        assert_eq!(
            next_after(7000, 5000),
            Some(7001),
            "a clock behind the mark never lowers ids"
        );
        assert_eq!(
            next_after(5, -1),
            Some(6),
            "a clock before 1970 counts as 0"
        );
        assert_eq!(next_after(MAX_ID - 1, 5), Some(MAX_ID));
        assert_eq!(
            next_after(MAX_ID, 5),
            None,
            "exhausted: no id, never a repeat"
        );
        assert_eq!(next_after(u64::MAX, 5), None);
    }

    #[test]
    fn a_lost_mark_is_recovered_by_the_clock() {
        // Ids run ahead of the clock only by their own count: after losing the mark, a
        // restart later than that count of microseconds still goes up.
        let mut last = 0;
        for _ in 0..1000 {
            last = next_after(last, 42_000).unwrap();
        }
        assert_eq!(last, 42_999);
        assert!(next_after(0, 43_000).unwrap() > last);
    }

    /// A restored token of 2^64-1 pinned every later token at i64::MAX before.
    #[test]
    fn ids_no_clock_made_are_refused() {
        let now = 1_800_000_000_000_000;
        assert!(plausible(now + MAX_AHEAD_US as u64, now as i64));
        assert!(!plausible(now + MAX_AHEAD_US as u64 + 1, now as i64));
        assert!(!plausible(u64::MAX, now as i64));
        assert!(!plausible(MAX_ID, now as i64));
        let m = HighWater::new();
        let a = m.take().unwrap();
        assert!(!m.observe(u64::MAX));
        assert!(!m.observe(MAX_ID));
        let b = m.take().unwrap();
        assert!(
            b > a && b < a + MAX_AHEAD_US as u64,
            "the mark was not poisoned"
        );
        assert!(m.observe(b + 10));
        assert_eq!(m.take(), Some(b + 11));
    }
}
