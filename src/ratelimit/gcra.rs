//! ALGO GCRA: the generic cell rate algorithm (as in redis-cell's CL.THROTTLE).
//!
//! Emission interval `T = period / limit`, burst capacity `B` (default `limit`); the only
//! state is the theoretical arrival time (TAT). A call costing `c` is admitted when
//! `max(TAT, now) + c*T - now <= B*T`, and then moves TAT there.
//!
//! Exact arithmetic: time is counted in units of `1/limit` microsecond, in which `T` is
//! exactly `period_ms * 1000` units, so no rounding ever accumulates, whatever the rate
//! (5,000/s gives T = 200 µs; 3 per second is exact too). The stored TAT carries its unit
//! (`den`, the limit it was written with) so a changed limit converts it (rounding up).
//! `retry_after_ms` and `reset_after_ms` round up, never down.
//!
//! Refunds move TAT back by `|c|*T`, never before now (never beyond full capacity).

use super::math::{div_ceil, narrow};
use super::verdict::{Next, Outcome, Verdict};

/// Largest |TAT| accepted from a stored key, in µs (about 3 million years; a real TAT is at
/// most `MAX_HORIZON_MS` past now). Converting a TAT to another unit multiplies it by a limit
/// (up to `MAX_AMOUNT`), so this bound keeps every product far inside `i128`; a key holding a
/// larger one is not something `encode_gcra` wrote and is rejected by `codec::decode`.
pub const MAX_TAT_US: i128 = 100_000_000_000_000_000_000;

/// TAT in units of `1/den` µs since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub den: i64,
    pub tat: i128,
}

pub fn decide(
    now_us: i64,
    limit: i64,
    period_ms: i64,
    burst: i64,
    cost: i64,
    stored: Option<State>,
) -> Outcome<State> {
    // Overflow: the request caps (MAX_AMOUNT, MAX_HORIZON_MS) keep every product below about
    // 1e31, and `codec::decode` rejects a stored TAT beyond `MAX_TAT_US`, so no operation
    // below can overflow; saturating arithmetic keeps that true for any input at all.
    let l = i128::from(limit);
    let t = i128::from(period_ms).saturating_mul(1000); // emission interval, in units
    let b = i128::from(burst);
    let c = i128::from(cost);
    let unit_per_ms = l.saturating_mul(1000);
    let now = i128::from(now_us).saturating_mul(l);
    let stored_tat = stored.map(|s| {
        if i128::from(s.den) == l {
            s.tat
        } else {
            div_ceil(s.tat, i128::from(s.den.max(1))).saturating_mul(l)
        }
    });
    // unwrap_or, then max: never compares the payload of a `None` (valgrind-clean).
    let tat = stored_tat.unwrap_or(now).max(now);

    let mut allowed = true;
    let mut retry: i128 = -1;
    let mut new_tat = tat;
    if c > 0 {
        if c > b {
            allowed = false;
        } else {
            let candidate = tat.saturating_add(c.saturating_mul(t));
            if candidate.saturating_sub(now) <= b.saturating_mul(t) {
                new_tat = candidate;
            } else {
                allowed = false;
                let wait = candidate
                    .saturating_sub(b.saturating_mul(t))
                    .saturating_sub(now);
                retry = div_ceil(wait, unit_per_ms);
            }
        }
    } else if c < 0 {
        new_tat = tat.saturating_add(c.saturating_mul(t)).max(now);
    }

    let backlog = new_tat.saturating_sub(now);
    let remaining = b
        .saturating_mul(t)
        .saturating_sub(backlog)
        .div_euclid(t.max(1))
        .max(0);
    let reset = div_ceil(backlog, unit_per_ms);
    let next = if new_tat == tat {
        Next::Keep
    } else if new_tat <= now {
        if stored.is_some() {
            Next::Clear
        } else {
            Next::Keep
        }
    } else {
        Next::Store {
            state: State {
                den: limit,
                tat: new_tat,
            },
            expire_at_ms: narrow(div_ceil(new_tat, unit_per_ms)),
        }
    };
    Outcome {
        verdict: Verdict {
            allowed,
            limit: burst,
            remaining: narrow(remaining),
            retry_after_ms: narrow(retry),
            reset_after_ms: narrow(reset),
        },
        next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apply a decision's write to a simulated key.
    fn apply(state: &mut Option<State>, o: &Outcome<State>) {
        match o.next {
            Next::Keep => {}
            Next::Store { state: s, .. } => *state = Some(s),
            Next::Clear => *state = None,
        }
    }

    #[test]
    fn extreme_inputs_never_overflow() {
        // Unit tests run with overflow checks: each of these used to be able to panic.
        use super::super::math::{MAX_AMOUNT, MAX_HORIZON_MS};
        for tat in [
            i128::MAX,
            i128::MIN,
            99_999_999_999_999_999_999_999_999_999_999_999_999,
        ] {
            for den in [1, MAX_AMOUNT, i64::MAX] {
                for cost in [MAX_AMOUNT, -MAX_AMOUNT, 0] {
                    let s = Some(State { den, tat });
                    decide(i64::MAX, MAX_AMOUNT, MAX_HORIZON_MS, MAX_AMOUNT, cost, s);
                    decide(i64::MIN, 1, 1, 1, cost, s);
                }
            }
        }
    }

    #[test]
    fn burst_then_steady_rate() {
        // 10 per second, burst 10: T = 100 ms.
        let mut s = None;
        let now = 1_000_000_000; // µs
        for i in 0..10 {
            let o = decide(now, 10, 1000, 10, 1, s);
            assert!(o.verdict.allowed, "burst hit {i}");
            assert_eq!(o.verdict.remaining, 9 - i);
            apply(&mut s, &o);
        }
        let o = decide(now, 10, 1000, 10, 1, s);
        assert_eq!(o.verdict.to_array(), [0, 10, 0, 100, 1000]);
        assert_eq!(o.next, Next::Keep, "denied hits charge nothing");
        // 100 ms later exactly one more fits.
        let o = decide(now + 100_000, 10, 1000, 10, 1, s);
        assert_eq!(o.verdict.to_array(), [1, 10, 0, -1, 1000]);
    }

    #[test]
    fn expiry_is_the_theoretical_arrival_time() {
        let o = decide(5_000_000, 10, 1000, 10, 3, None);
        assert_eq!(
            o.next,
            Next::Store {
                state: State {
                    den: 10,
                    tat: (5_000_000 + 300_000) * 10
                },
                expire_at_ms: 5_300
            }
        );
        assert_eq!(o.verdict.reset_after_ms, 300);
    }

    #[test]
    fn five_thousand_per_second_is_exact() {
        // T = 200 µs: 5,000 hits fit at once, the 5,001st waits 1 ms (200 µs rounded up).
        let mut s = None;
        let now = 7_000_000;
        for _ in 0..5000 {
            let o = decide(now, 5000, 1000, 5000, 1, s);
            assert!(o.verdict.allowed);
            apply(&mut s, &o);
        }
        let o = decide(now, 5000, 1000, 5000, 1, s);
        assert_eq!(o.verdict.to_array(), [0, 5000, 0, 1, 1000]);
        // 200 µs later (a µs clock), one fits again.
        let o = decide(now + 200, 5000, 1000, 5000, 1, s);
        assert!(o.verdict.allowed);
        // Sustained: every 1 ms, exactly 5 more.
        let mut now = now;
        for _ in 0..100 {
            now += 1000;
            for k in 0..5 {
                let o = decide(now, 5000, 1000, 5000, 1, s);
                assert!(o.verdict.allowed, "k={k}");
                apply(&mut s, &o);
            }
            assert!(!decide(now, 5000, 1000, 5000, 1, s).verdict.allowed);
        }
    }

    #[test]
    fn thirds_do_not_drift() {
        // 3 per second: T = 333.33 ms, exact in units; 3 hits fit, the 4th does not.
        let mut s = None;
        for _ in 0..3 {
            let o = decide(0, 3, 1000, 3, 1, s);
            assert!(o.verdict.allowed);
            apply(&mut s, &o);
        }
        let o = decide(0, 3, 1000, 3, 1, s);
        assert_eq!(o.verdict.retry_after_ms, 334, "333.33 ms rounds up");
        assert_eq!(o.verdict.reset_after_ms, 1000);
    }

    #[test]
    fn burst_differs_from_limit() {
        // 1 per second with burst 3.
        let mut s = None;
        for _ in 0..3 {
            let o = decide(0, 1, 1000, 3, 1, s);
            assert!(o.verdict.allowed);
            apply(&mut s, &o);
        }
        let o = decide(0, 1, 1000, 3, 1, s);
        assert_eq!(o.verdict.to_array(), [0, 3, 0, 1000, 3000]);
    }

    #[test]
    fn too_costly_refund_and_zero() {
        let o = decide(0, 10, 1000, 10, 11, None);
        assert_eq!(o.verdict.to_array(), [0, 10, 10, -1, 0]);
        let mut s = None;
        let o = decide(0, 10, 1000, 10, 4, s);
        apply(&mut s, &o);
        let o = decide(0, 10, 1000, 10, 0, s);
        assert_eq!(o.verdict.to_array(), [1, 10, 6, -1, 400]);
        assert_eq!(o.next, Next::Keep);
        let o = decide(0, 10, 1000, 10, -1, s);
        assert_eq!(o.verdict.to_array(), [1, 10, 7, -1, 300]);
        let o = decide(0, 10, 1000, 10, -100, s);
        assert_eq!(o.verdict.to_array(), [1, 10, 10, -1, 0]);
        assert_eq!(o.next, Next::Clear);
    }

    #[test]
    fn changed_limit_converts_the_stored_unit() {
        let s = Some(State {
            den: 10,
            tat: 1_000_000 * 10,
        }); // TAT = 1 s
        let o = decide(0, 20, 1000, 20, 0, s);
        assert_eq!(o.verdict.reset_after_ms, 1000);
        assert_eq!(o.verdict.remaining, 0);
    }
}
