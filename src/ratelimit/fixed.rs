//! ALGO FIXED: the classic INCR + EXPIRE counter, done in one atomic step.
//!
//! Windows are aligned to multiples of `period_ms` on the Unix-ms clock. The key holds the
//! window's count as a plain decimal (so `GET` shows it) and expires exactly at the window's
//! end. A stored count belongs to the current window when the key expires inside it: at its
//! end, or earlier if it was written with a shorter period that nests inside this one (then it
//! is conservatively counted). A count without expiry, or expiring after this window, is from
//! another configuration and is ignored; the next charge overwrites it.
//!
//! A key moved with a relative TTL (MIGRATE in a slot move, RESTORE of a DUMP) expires a few
//! ms after the end it was written with: an expiry up to [`drift_ms`] after this window's end
//! still dates the count to this window, and one within that much after this window's start
//! belongs to the previous window (so the ranges never overlap).
//!
//! With `OFFSET ms` windows start at multiples of `period_ms` plus the offset (the key then
//! remembers its offset: see `codec.rs`).
//!
//! Refunds (negative COST) lower the count, never below zero; at zero the key is deleted.

use super::verdict::{Next, Outcome, Verdict};

/// What the key holds: the count and the key's absolute expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub count: i64,
    pub expires_at_ms: Option<i64>,
}

/// Most a moved key's expiry may trail its window's end: a quarter of the period (so the
/// two ranges of the module doc stay apart), at most a second.
pub fn drift_ms(period: i64) -> i64 {
    (period / 4).clamp(0, 1000)
}

pub fn decide(
    now: i64,
    limit: i64,
    period: i64,
    offset: i64,
    cost: i64,
    stored: Option<Stored>,
) -> Outcome<i64> {
    let start = super::math::window_start_at(now, period, offset);
    let end = start.saturating_add(period);
    let drift = drift_ms(period);
    let (count, expires) = match stored {
        Some(Stored {
            count,
            expires_at_ms: Some(e),
        }) if e > now && e <= end.saturating_add(drift) && e > start.saturating_add(drift) => {
            (count.max(0), e.min(end))
        }
        _ => (0, end),
    };
    // i64 values widened to i128: sums of two cannot overflow (saturating only for the lint).
    let (l, c, n) = (i128::from(limit), i128::from(cost), i128::from(count));
    let (allowed, new, retry) = if c > 0 {
        if n.saturating_add(c) <= l {
            (true, n.saturating_add(c), -1)
        } else if c > l {
            (false, n, -1)
        } else {
            (false, n, expires.saturating_sub(now))
        }
    } else if c == 0 {
        (true, n, -1)
    } else {
        (true, n.saturating_add(c).max(0), -1)
    };
    let new = super::math::narrow(new);
    let next = if new == count {
        Next::Keep
    } else if new == 0 {
        Next::Clear
    } else {
        Next::Store {
            state: new,
            expire_at_ms: end,
        }
    };
    let final_expiry = if matches!(next, Next::Store { .. }) {
        end
    } else {
        expires
    };
    Outcome {
        verdict: Verdict {
            allowed,
            limit,
            remaining: limit.saturating_sub(new).max(0),
            retry_after_ms: retry,
            reset_after_ms: if new > 0 {
                final_expiry.saturating_sub(now)
            } else {
                0
            },
        },
        next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key is written with `count`, expiring at `at_ms`.
    fn store(count: i64, at_ms: i64) -> Next<i64> {
        Next::Store {
            state: count,
            expire_at_ms: at_ms,
        }
    }

    #[test]
    fn a_moved_key_keeps_its_count_and_an_old_one_does_not() {
        let (period, start) = (3_600_000, 7_200_000);
        let end = start + period;
        let now = start + 1_000_000;
        let st = |e| {
            Some(Stored {
                count: 1,
                expires_at_ms: Some(e),
            })
        };
        // Restored 3 ms late (MIGRATE's relative TTL): still this window's count.
        let o = decide(now, 1, period, 0, 1, st(end + 3));
        assert!(!o.verdict.allowed);
        assert_eq!(o.verdict.retry_after_ms, end - now);
        // A count of the previous window, restored 3 ms late, read just after this start.
        let o = decide(start + 1, 1, period, 0, 1, st(start + 3));
        assert!(o.verdict.allowed);
        // Beyond the drift: another configuration, ignored as before.
        assert!(
            decide(now, 1, period, 0, 1, st(end + 5_000))
                .verdict
                .allowed
        );
        assert_eq!(drift_ms(1), 0, "a 1 ms window keeps the exact rule");
    }

    fn run(now: i64, cost: i64, stored: Option<Stored>) -> Outcome<i64> {
        decide(now, 3, 1000, 0, cost, stored)
    }

    fn at(count: i64, e: i64) -> Option<Stored> {
        Some(Stored {
            count,
            expires_at_ms: Some(e),
        })
    }

    #[test]
    fn admits_up_to_limit_then_denies_until_window_end() {
        let o = run(10_250, 1, None);
        assert_eq!(o.verdict.to_array(), [1, 3, 2, -1, 750]);
        assert_eq!(o.next, store(1, 11_000));
        let o = run(10_300, 2, at(1, 11_000));
        assert_eq!(o.verdict.to_array(), [1, 3, 0, -1, 700]);
        let o = run(10_400, 1, at(3, 11_000));
        assert_eq!(o.verdict.to_array(), [0, 3, 0, 600, 600]);
        assert_eq!(o.next, Next::Keep, "a denied hit charges nothing");
    }

    #[test]
    fn new_window_starts_fresh() {
        // The key expired at 11_000; at 11_001 a stale read (e.g. inside a script) is ignored.
        let o = run(11_001, 1, at(3, 11_000));
        assert_eq!(o.verdict.to_array(), [1, 3, 2, -1, 999]);
    }

    #[test]
    fn cost_above_limit_can_never_pass() {
        let o = run(10_000, 4, None);
        assert_eq!(o.verdict.to_array(), [0, 3, 3, -1, 0]);
        assert_eq!(o.next, Next::Keep);
    }

    #[test]
    fn partial_fit_is_denied_whole() {
        let o = run(10_000, 2, at(2, 11_000));
        assert_eq!(o.verdict.to_array(), [0, 3, 1, 1000, 1000]);
        assert_eq!(o.next, Next::Keep);
    }

    #[test]
    fn cost_zero_and_refunds() {
        let o = run(10_500, 0, at(2, 11_000));
        assert_eq!(o.verdict.to_array(), [1, 3, 1, -1, 500]);
        assert_eq!(o.next, Next::Keep);
        let o = run(10_500, -1, at(2, 11_000));
        assert_eq!(o.verdict.to_array(), [1, 3, 2, -1, 500]);
        assert_eq!(o.next, store(1, 11_000));
        let o = run(10_500, -5, at(2, 11_000));
        assert_eq!(o.verdict.to_array(), [1, 3, 3, -1, 0]);
        assert_eq!(o.next, Next::Clear, "back at full capacity: the key goes");
        let o = run(10_500, -1, None);
        assert_eq!(
            o.next,
            Next::Keep,
            "refund on an empty limiter changes nothing"
        );
    }

    #[test]
    fn foreign_expiry_is_ignored_and_overwritten() {
        let o = run(
            10_500,
            1,
            Some(Stored {
                count: 99,
                expires_at_ms: None,
            }),
        );
        assert_eq!(o.verdict.to_array(), [1, 3, 2, -1, 500]);
        assert_eq!(o.next, store(1, 11_000));
        let o = run(10_500, 1, at(99, 50_000));
        assert_eq!(o.next, store(1, 11_000));
    }

    #[test]
    fn nested_shorter_window_counts_conservatively() {
        // A count written with a 100 ms period that ends inside this 1000 ms window.
        let o = run(10_550, 1, at(3, 10_600));
        assert_eq!(o.verdict.to_array(), [0, 3, 0, 50, 50]);
    }

    #[test]
    fn lowered_limit_reports_zero_remaining() {
        let o = decide(10_000, 2, 1000, 0, 1, at(5, 11_000));
        assert_eq!(o.verdict.to_array(), [0, 2, 0, 1000, 1000]);
    }

    #[test]
    fn negative_clock_aligns_windows() {
        let o = decide(-250, 3, 1000, 0, 1, None);
        assert_eq!(o.next, store(1, 0));
    }

    #[test]
    fn offset_shifts_the_window() {
        let o = decide(10_250, 3, 1000, 300, 1, None);
        assert_eq!(o.next, store(1, 10_300));
        let o = decide(10_300, 3, 1000, 300, 1, at(3, 10_300));
        assert_eq!(
            o.verdict.to_array(),
            [1, 3, 2, -1, 1000],
            "new window at 10_300"
        );
        let o = decide(10_299, 3, 1000, 300, 1, at(3, 10_300));
        assert_eq!(o.verdict.to_array(), [0, 3, 0, 1, 1]);
    }
}
