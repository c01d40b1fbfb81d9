//! One limit checked against one key's stored value: the algorithm dispatch shared by
//! HACK.RATEHIT, HACK.QUOTA and the waiters. Pure: the caller reads the key (value and
//! absolute expiry) and the clock, and carries out the returned write.
//!
//! The type checks live here too, so every command refuses the same keys with the same
//! errors: a string no algorithm wrote, another algorithm's state, or (FIXED/SLIDING) a key
//! created with another `OFFSET`.

use crate::module::error::CmdError;
use crate::module::num::Buf;

use super::codec::{self, Stored};
use super::request::{Algo, Limit};
use super::verdict::{Next, Verdict};
use super::{fixed, gcra, sliding};

/// A new state to store (encoded only when written: decisions stay small to copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Count and offset.
    Fixed(i64, i64),
    Sliding(sliding::State),
    Gcra(gcra::State),
}

impl State {
    pub fn encode(&self) -> Buf {
        match self {
            State::Fixed(count, offset) => codec::encode_fixed(*count, *offset),
            State::Sliding(s) => codec::encode_sliding(s),
            State::Gcra(s) => codec::encode_gcra(s),
        }
    }
}

/// The write a decision asks for.
pub enum Write {
    Keep,
    /// Store `state` expiring at `at_ms`; `same_expiry`: the key already expires then (FIXED
    /// within one window), so the expiry need not be set again.
    Store {
        state: State,
        at_ms: i64,
        same_expiry: bool,
    },
    Clear,
}

pub struct Decision {
    pub verdict: Verdict,
    pub write: Write,
}

/// What a key holds, decoded and checked against `lim` (mismatches are errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prior {
    None,
    Fixed(fixed::Stored),
    Sliding(sliding::State),
    Gcra(gcra::State),
}

/// Decode a key's value (`None`: missing key) and check it fits `lim`.
pub fn prior(
    lim: &Limit,
    value: Option<&[u8]>,
    expires_at_ms: Option<i64>,
) -> Result<Prior, CmdError> {
    let Some(v) = value else {
        return Ok(Prior::None);
    };
    match (codec::decode(v), lim.algo) {
        (Stored::Fixed(count, offset), Algo::Fixed) => {
            if offset != lim.offset_ms {
                return Err(offset_mismatch(offset, lim.offset_ms));
            }
            Ok(Prior::Fixed(fixed::Stored {
                count,
                expires_at_ms,
            }))
        }
        (Stored::Sliding(s), Algo::Sliding) => {
            // The offset only means something for the same period (another period starts
            // the limiter afresh, as it always has).
            if s.period_ms == lim.period_ms {
                let held = s.window_start_ms.rem_euclid(s.period_ms.max(1));
                if held != lim.offset_ms {
                    return Err(offset_mismatch(held, lim.offset_ms));
                }
            }
            Ok(Prior::Sliding(s))
        }
        (Stored::Gcra(s), Algo::Gcra) => Ok(Prior::Gcra(s)),
        (other, wanted) => Err(mismatch(other, wanted)),
    }
}

/// Decide a call costing `cost` at `now_us` against `prior`.
pub fn decide(lim: &Limit, now_us: i64, cost: i64, prior: Prior) -> Decision {
    let now_ms = now_us.div_euclid(1000);
    match prior {
        Prior::None | Prior::Fixed(_) if lim.algo == Algo::Fixed => {
            let p = match prior {
                Prior::Fixed(f) => Some(f),
                _ => None,
            };
            let o = fixed::decide(now_ms, lim.limit, lim.period_ms, lim.offset_ms, cost, p);
            let expiry = p.and_then(|p| p.expires_at_ms);
            convert(o.verdict, o.next, expiry, |c| {
                State::Fixed(c, lim.offset_ms)
            })
        }
        Prior::None | Prior::Sliding(_) if lim.algo == Algo::Sliding => {
            let p = match prior {
                Prior::Sliding(s) => Some(s),
                _ => None,
            };
            let o = sliding::decide(now_ms, lim.limit, lim.period_ms, lim.offset_ms, cost, p);
            convert(o.verdict, o.next, None, State::Sliding)
        }
        _ => {
            let p = match prior {
                Prior::Gcra(s) => Some(s),
                _ => None,
            };
            let o = gcra::decide(now_us, lim.limit, lim.period_ms, lim.burst, cost, p);
            convert(o.verdict, o.next, None, State::Gcra)
        }
    }
}

/// The largest cost in `0..=cost` this limit admits at `now_us` (PARTIAL). Every algorithm's
/// `remaining` after a cost-0 call is exactly that bound (FIXED: `limit - count`; SLIDING:
/// `floor((limit*p - prev*(p-e))/p) - cur`; GCRA: `floor((B*T - backlog)/T)`), which the
/// unit tests check against `decide` itself.
pub fn admissible(lim: &Limit, now_us: i64, cost: i64, prior: Prior) -> i64 {
    decide(lim, now_us, 0, prior)
        .verdict
        .remaining
        .clamp(0, cost.max(0))
}

fn convert<S>(
    verdict: Verdict,
    next: Next<S>,
    expiry: Option<i64>,
    wrap: impl Fn(S) -> State,
) -> Decision {
    let write = match next {
        Next::Keep => Write::Keep,
        Next::Clear => Write::Clear,
        Next::Store {
            state,
            expire_at_ms,
        } => Write::Store {
            state: wrap(state),
            at_ms: expire_at_ms,
            same_expiry: expiry == Some(expire_at_ms),
        },
    };
    Decision { verdict, write }
}

fn offset_mismatch(held: i64, wanted: i64) -> CmdError {
    CmdError::msg(format!(
        "ERR key holds a limiter with OFFSET {held}; it cannot be used with OFFSET {wanted}"
    ))
}

fn mismatch(stored: Stored, wanted: Algo) -> CmdError {
    let held = match stored {
        Stored::Fixed(..) => Algo::Fixed.name(),
        Stored::Sliding(_) => Algo::Sliding.name(),
        Stored::Gcra(_) => Algo::Gcra.name(),
        Stored::Foreign => {
            return CmdError::Static("ERR key holds a string that is not a HACK.RATEHIT limiter")
        }
    };
    CmdError::msg(format!(
        "ERR key holds an ALGO {held} limiter; it cannot be used with ALGO {}",
        wanted.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim(algo: Algo, offset_ms: i64) -> Limit {
        Limit {
            limit: 5,
            period_ms: 100,
            algo,
            burst: 5,
            offset_ms,
        }
    }

    /// Apply a write to a simulated key (value, expiry).
    fn apply(key: &mut Option<(Vec<u8>, i64)>, d: &Decision) {
        match &d.write {
            Write::Keep => {}
            Write::Clear => *key = None,
            Write::Store { state, at_ms, .. } => {
                *key = Some((state.encode().as_slice().to_vec(), *at_ms))
            }
        }
    }

    #[test]
    fn admissible_is_the_largest_admitted_cost() {
        // Random walks through every algorithm: at each step, the bound from `admissible` is
        // admitted and one more is not.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for algo in [Algo::Fixed, Algo::Sliding, Algo::Gcra] {
            let l = lim(algo, if algo == Algo::Gcra { 0 } else { 30 });
            let mut key: Option<(Vec<u8>, i64)> = None;
            let mut now_us: i64 = 1_000_000_000;
            for _ in 0..3000 {
                now_us += (rnd(40) as i64) * 997;
                if key.as_ref().is_some_and(|(_, at)| *at <= now_us / 1000) {
                    key = None;
                }
                let p = prior(
                    &l,
                    key.as_ref().map(|(v, _)| v.as_slice()),
                    key.as_ref().map(|k| k.1),
                )
                .unwrap();
                let want = 1 + rnd(7) as i64;
                let n = admissible(&l, now_us, want, p);
                assert!((0..=want).contains(&n));
                if n > 0 {
                    assert!(decide(&l, now_us, n, p).verdict.allowed, "{algo:?} {n}");
                }
                if n < want {
                    assert!(
                        !decide(&l, now_us, n + 1, p).verdict.allowed,
                        "{algo:?} {n}+1"
                    );
                }
                let cost = if rnd(5) == 0 { -(rnd(3) as i64) } else { n };
                let d = decide(&l, now_us, cost, p);
                apply(&mut key, &d);
            }
        }
    }

    #[test]
    fn mismatches_are_errors() {
        let f = lim(Algo::Fixed, 0);
        assert!(prior(&f, Some(b"3"), Some(5)).is_ok());
        let e = prior(&lim(Algo::Fixed, 10), Some(b"3"), Some(5)).unwrap_err();
        assert!(
            e.text()
                .contains("OFFSET 0; it cannot be used with OFFSET 10"),
            "{e}"
        );
        let e = prior(&f, Some(b"f:10:3"), Some(5)).unwrap_err();
        assert!(e.text().contains("OFFSET 10"), "{e}");
        let s = lim(Algo::Sliding, 30);
        assert!(prior(&s, Some(b"s:100:1030:1:1"), None).is_ok());
        assert!(prior(&s, Some(b"s:100:1000:1:1"), None).is_err());
        assert!(
            prior(&s, Some(b"s:70:1000:1:1"), None).is_ok(),
            "other period: afresh"
        );
        let e = prior(&f, Some(b"g:5:100"), None).unwrap_err();
        assert!(e.text().contains("ALGO GCRA limiter"), "{e}");
        let e = prior(&f, Some(b"hello"), None).unwrap_err();
        assert!(e.text().contains("not a HACK.RATEHIT limiter"), "{e}");
    }
}
