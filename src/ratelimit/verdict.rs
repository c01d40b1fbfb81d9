//! What every algorithm returns: the reply, and what (if anything) to store.

/// The five integers of the reply, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// The capacity: `limit`, or the burst capacity for GCRA.
    pub limit: i64,
    /// How many more cost-1 hits would be admitted right after this call.
    pub remaining: i64,
    /// -1 when allowed; when denied, ms until the same call would be admitted; -1 with
    /// `allowed == false` when the cost exceeds the capacity and can never be admitted.
    pub retry_after_ms: i64,
    /// ms until the limiter is back to full capacity (0 when it already is).
    pub reset_after_ms: i64,
}

impl Verdict {
    pub fn to_array(self) -> [i64; 5] {
        [
            i64::from(self.allowed),
            self.limit,
            self.remaining,
            self.retry_after_ms,
            self.reset_after_ms,
        ]
    }
}

/// The write a decision asks for (ignored under PEEK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next<S> {
    /// Nothing changed: leave the key exactly as it is.
    Keep,
    /// Store `state`, expiring at `expire_at_ms` (absolute Unix ms): the moment the limiter
    /// is back at full capacity, so no limiter key lives forever.
    Store { state: S, expire_at_ms: i64 },
    /// The limiter is back at full capacity: delete the key.
    Clear,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome<S> {
    pub verdict: Verdict,
    pub next: Next<S>,
}

/// Largest accepted `limit`, `BURST` and |`COST`|. Together with [`MAX_HORIZON_MS`] it keeps
/// every intermediate product far inside `i128`.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;
/// Longest time a limiter may need to return to full capacity (about 317 years): `period_ms`
/// for FIXED/SLIDING, `BURST * period_ms / limit` for GCRA.
pub const MAX_HORIZON_MS: i64 = 10_000_000_000_000;

/// Saturating narrowing for values that the input caps already keep in range.
pub fn narrow(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Ceiling division for a positive divisor (a non-positive one is taken as 1, never a panic).
pub fn div_ceil(a: i128, b: i128) -> i128 {
    let b = b.max(1);
    let q = a.div_euclid(b);
    if a.rem_euclid(b) == 0 {
        q
    } else {
        q.saturating_add(1)
    }
}

/// Start of the window of length `period` (aligned to multiples of it) containing `now`.
pub fn window_start(now: i64, period: i64) -> i64 {
    // `period` is validated >= 1; `.max(1)` only keeps this total. The subtraction cannot
    // overflow for any clock reading (it is at most `period - 1` below a non-negative `now`).
    now.saturating_sub(now.rem_euclid(period.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_and_windows() {
        assert_eq!(div_ceil(7, 2), 4);
        assert_eq!(div_ceil(8, 2), 4);
        assert_eq!(div_ceil(-7, 2), -3);
        assert_eq!(window_start(1234, 200), 1200);
        assert_eq!(window_start(1200, 200), 1200);
        assert_eq!(narrow(i128::MAX), i64::MAX);
    }
}
