//! Bounds on every amount and time, and the integer helpers the algorithms share
//! (saturating narrowing, ceiling division, window alignment).

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

/// Start of the window containing `now` when windows begin at multiples of `period` plus
/// `offset` (`0 <= offset < period`, validated by the request).
pub fn window_start_at(now: i64, period: i64, offset: i64) -> i64 {
    if offset == 0 {
        return window_start(now, period);
    }
    window_start(now.saturating_sub(offset), period).saturating_add(offset)
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
        assert_eq!(window_start_at(1234, 200, 50), 1050);
        assert_eq!(window_start_at(1250, 200, 50), 1250);
        assert_eq!(window_start_at(1249, 200, 50), 1050);
        assert_eq!(window_start_at(10, 200, 50), -150);
    }
}
