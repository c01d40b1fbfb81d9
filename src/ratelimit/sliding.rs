//! ALGO SLIDING: the two-window weighted estimate, in one key.
//!
//! Windows are aligned as in FIXED. With `e` ms elapsed in the current window of length `p`:
//! `used = prev * (p - e) / p + cur`, computed exactly (all comparisons are scaled by `p`, so
//! the weighted term is never rounded down). A call costing `c` is admitted when
//! `used + c <= limit`. `retry_after_ms` is the first whole millisecond at which the estimate
//! would admit the same call if nothing else happened.
//!
//! With `OFFSET ms` windows start at multiples of `period_ms` plus the offset. The stored
//! window start then carries the offset (`window_start_ms mod period_ms`), so the format
//! stays the same and an old key is a key with offset 0.
//!
//! State: `period`, the current window's start, and the two counts. A state written with a
//! different period is ignored (changing the period starts the limiter afresh).
//! Refunds take from the current window first, then the previous one, never below zero.

use super::math::{narrow, window_start_at};
use super::verdict::{Next, Outcome, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub period_ms: i64,
    pub window_start_ms: i64,
    pub prev: i64,
    pub cur: i64,
}

pub fn decide(
    now: i64,
    limit: i64,
    period: i64,
    offset: i64,
    cost: i64,
    stored: Option<State>,
) -> Outcome<State> {
    let ws = window_start_at(now, period, offset);
    let (prev0, cur0) = match stored {
        Some(s) if s.period_ms == period => {
            if s.window_start_ms == ws {
                (s.prev, s.cur)
            } else if s.window_start_ms == ws.saturating_sub(period) {
                (s.cur, 0)
            } else if s.window_start_ms > ws {
                // The clock stepped back: keep counting what we have (conservative).
                (s.prev, s.cur)
            } else {
                (0, 0)
            }
        }
        _ => (0, 0),
    };
    // Overflow: every value here is an i64 widened to i128, or a product of two (the request
    // caps keep period, limit and |cost| far smaller), so nothing below can overflow i128;
    // saturating arithmetic only makes that explicit.
    let (p, e, l, c) = (
        i128::from(period),
        i128::from(now.saturating_sub(ws)),
        i128::from(limit),
        i128::from(cost),
    );
    let (mut prev, mut cur) = (i128::from(prev0.max(0)), i128::from(cur0.max(0)));
    // used * p, exactly.
    let used_scaled = |prev: i128, cur: i128| {
        prev.saturating_mul(p.saturating_sub(e))
            .saturating_add(cur.saturating_mul(p))
    };

    let mut allowed = true;
    let mut retry: i128 = -1;
    if c > 0 {
        if c > l {
            allowed = false;
        } else if used_scaled(prev, cur).saturating_add(c.saturating_mul(p)) <= l.saturating_mul(p)
        {
            cur = cur.saturating_add(c);
        } else {
            allowed = false;
            retry = retry_after(i128::from(ws), p, l, c, prev, cur).saturating_sub(i128::from(now));
        }
    } else if c < 0 {
        let refund = c.saturating_neg();
        let from_cur = refund.min(cur);
        cur = cur.saturating_sub(from_cur);
        prev = prev.saturating_sub(refund.saturating_sub(from_cur)).max(0);
    }

    let remaining = l
        .saturating_mul(p)
        .saturating_sub(prev.saturating_mul(p.saturating_sub(e)))
        .div_euclid(p.max(1))
        .saturating_sub(cur)
        .max(0);
    let reset = if cur > 0 {
        i128::from(ws)
            .saturating_add(p.saturating_mul(2))
            .saturating_sub(i128::from(now))
    } else if prev > 0 {
        i128::from(ws)
            .saturating_add(p)
            .saturating_sub(i128::from(now))
    } else {
        0
    };
    let (prev, cur) = (narrow(prev), narrow(cur));
    let next = if (prev, cur) == (prev0.max(0), cur0.max(0)) {
        Next::Keep
    } else if prev == 0 && cur == 0 {
        Next::Clear
    } else {
        Next::Store {
            state: State {
                period_ms: period,
                window_start_ms: ws,
                prev,
                cur,
            },
            expire_at_ms: now.saturating_add(narrow(reset)),
        }
    };
    Outcome {
        verdict: Verdict {
            allowed,
            limit,
            remaining: narrow(remaining),
            retry_after_ms: narrow(retry),
            reset_after_ms: narrow(reset),
        },
        next,
    }
}

/// The earliest absolute ms at which a call costing `c` (`0 < c <= l`) is admitted, given
/// it is denied now. Within this window the previous count's weight decays; failing that, in
/// the next window the current count becomes the decaying one; failing that, the window
/// after has no history at all.
fn retry_after(ws: i128, p: i128, l: i128, c: i128, prev: i128, cur: i128) -> i128 {
    // This window: need prev * (p - e') <= (l - cur - c) * p.
    // Same bounds as in `decide`: saturating never changes a result. The divisions are by a
    // positive count and of a non-negative dividend, so `checked_div` never falls back.
    let room = l.saturating_sub(cur).saturating_sub(c);
    if room >= 0 && prev > 0 {
        let e1 = p.saturating_sub(room.saturating_mul(p).checked_div(prev).unwrap_or(0));
        if e1 < p {
            return ws.saturating_add(e1);
        }
    }
    // Next window: need cur * (p - e'') <= (l - c) * p.
    let room = l.saturating_sub(c);
    let e2 = if cur == 0 {
        0
    } else {
        p.saturating_sub(room.saturating_mul(p).checked_div(cur).unwrap_or(0))
            .max(0)
    };
    if e2 < p {
        return ws.saturating_add(p).saturating_add(e2);
    }
    ws.saturating_add(p.saturating_mul(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_inputs_never_overflow() {
        // Unit tests run with overflow checks: stored counts are any i64 a key may hold.
        use super::super::math::{MAX_AMOUNT, MAX_HORIZON_MS};
        for now in [i64::MIN, 0, i64::MAX] {
            for period in [1, MAX_HORIZON_MS] {
                for (prev, cur) in [(i64::MAX, i64::MAX), (i64::MIN, i64::MIN), (0, i64::MAX)] {
                    for cost in [MAX_AMOUNT, -MAX_AMOUNT, 1] {
                        let ws = super::super::math::window_start(now, period);
                        for window_start_ms in [ws, ws.saturating_sub(period), i64::MIN] {
                            let s = State {
                                period_ms: period,
                                window_start_ms,
                                prev,
                                cur,
                            };
                            decide(now, MAX_AMOUNT, period, 0, cost, Some(s));
                            decide(now, 1, period, 0, cost, Some(s));
                        }
                    }
                }
            }
        }
    }

    const P: i64 = 1000;

    fn st(ws: i64, prev: i64, cur: i64) -> Option<State> {
        Some(State {
            period_ms: P,
            window_start_ms: ws,
            prev,
            cur,
        })
    }

    #[test]
    fn fills_a_window_then_denies() {
        let mut s = None;
        for i in 0..4 {
            let o = decide(10_100, 4, P, 0, 1, s);
            assert!(o.verdict.allowed, "hit {i}");
            assert_eq!(o.verdict.remaining, 3 - i);
            if let Next::Store {
                state,
                expire_at_ms,
            } = o.next
            {
                assert_eq!(expire_at_ms, 12_000, "both windows must pass");
                s = Some(state);
            }
        }
        let o = decide(10_100, 4, P, 0, 1, s);
        assert!(!o.verdict.allowed);
        assert_eq!(o.next, Next::Keep);
        // Next window at e'' with 4*(1000-e'') <= 3*1000 -> e'' >= 250 -> 11_250.
        assert_eq!(o.verdict.retry_after_ms, 11_250 - 10_100);
        assert_eq!(o.verdict.reset_after_ms, 1900);
    }

    #[test]
    fn previous_window_decays_without_rounding_down() {
        // prev = 4 in the previous window, now 100 ms into the current one:
        // used = 4 * 900/1000 = 3.6 -> one hit (4.6) is over the limit of 4.
        let o = decide(11_100, 4, P, 0, 1, st(10_000, 0, 4));
        assert!(
            !o.verdict.allowed,
            "3.6 + 1 > 4 must deny (no rounding down)"
        );
        // Admitted once 4 * (1000 - e) <= 3000 -> e >= 250.
        assert_eq!(o.verdict.retry_after_ms, 150);
        assert_eq!(o.verdict.remaining, 0);
        let o = decide(11_250, 4, P, 0, 1, st(10_000, 0, 4));
        assert!(o.verdict.allowed);
        assert_eq!(
            o.next,
            Next::Store {
                state: State {
                    period_ms: P,
                    window_start_ms: 11_000,
                    prev: 4,
                    cur: 1
                },
                expire_at_ms: 13_000
            }
        );
    }

    #[test]
    fn old_state_is_forgotten_and_other_periods_ignored() {
        let o = decide(15_000, 4, P, 0, 1, st(10_000, 4, 4));
        assert_eq!(o.verdict.to_array(), [1, 4, 3, -1, 2000]);
        let other = Some(State {
            period_ms: 500,
            window_start_ms: 15_000,
            prev: 9,
            cur: 9,
        });
        let o = decide(15_000, 4, P, 0, 1, other);
        assert_eq!(o.verdict.remaining, 3);
    }

    #[test]
    fn never_admissible_and_cost_zero() {
        let o = decide(10_000, 4, P, 0, 5, None);
        assert_eq!(o.verdict.to_array(), [0, 4, 4, -1, 0]);
        let o = decide(10_500, 4, P, 0, 0, st(10_000, 2, 2));
        assert_eq!(o.verdict.to_array(), [1, 4, 1, -1, 1500]);
        assert_eq!(o.next, Next::Keep);
    }

    #[test]
    fn refunds_take_current_then_previous() {
        let o = decide(10_500, 4, P, 0, -3, st(10_000, 2, 2));
        assert_eq!(
            o.next,
            Next::Store {
                state: State {
                    period_ms: P,
                    window_start_ms: 10_000,
                    prev: 1,
                    cur: 0
                },
                expire_at_ms: 11_000
            }
        );
        let o = decide(10_500, 4, P, 0, -9, st(10_000, 2, 2));
        assert_eq!(o.next, Next::Clear);
        assert_eq!(o.verdict.to_array(), [1, 4, 4, -1, 0]);
    }

    #[test]
    fn denied_when_current_full_retries_in_next_window() {
        // cur = 4 (full), prev = 0: next window needs 4*(1000-e) <= 3000 -> e >= 250.
        let o = decide(10_900, 4, P, 0, 1, st(10_000, 0, 4));
        assert_eq!(o.verdict.retry_after_ms, 11_250 - 10_900);
        // Cost equal to the limit: the current count must fully decay -> window after next.
        let o = decide(10_900, 4, P, 0, 4, st(10_000, 0, 1));
        assert_eq!(o.verdict.retry_after_ms, 12_000 - 10_900);
    }

    #[test]
    fn retry_is_exact_moment_of_admission() {
        // Brute force: for random-ish states, retry_after is the first ms that admits.
        for prev in 0..6 {
            for cur in 0..6 {
                for cost in 1..5 {
                    for e in [0, 1, 137, 500, 999] {
                        let now = 20_000 + e;
                        let s = st(20_000, prev, cur);
                        let o = decide(now, 5, P, 0, cost, s);
                        if o.verdict.allowed || o.verdict.retry_after_ms < 0 {
                            continue;
                        }
                        let t = now + o.verdict.retry_after_ms;
                        assert!(
                            decide(t, 5, P, 0, cost, s).verdict.allowed,
                            "at retry {prev} {cur} {cost} {e}"
                        );
                        assert!(
                            !decide(t - 1, 5, P, 0, cost, s).verdict.allowed,
                            "before retry {prev} {cur} {cost} {e}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn offset_windows() {
        // Windows start at ...300, 1300, ...: at 10_350 the window is [10_300, 11_300).
        let o = decide(10_350, 4, P, 300, 1, None);
        assert_eq!(
            o.next,
            Next::Store {
                state: State {
                    period_ms: P,
                    window_start_ms: 10_300,
                    prev: 0,
                    cur: 1
                },
                expire_at_ms: 12_300
            }
        );
        // One window later the count is the previous one.
        let s = Some(State {
            period_ms: P,
            window_start_ms: 10_300,
            prev: 0,
            cur: 4,
        });
        let o = decide(11_300, 4, P, 300, 1, s);
        assert!(!o.verdict.allowed);
        assert_eq!(o.verdict.retry_after_ms, 250);
    }
}
