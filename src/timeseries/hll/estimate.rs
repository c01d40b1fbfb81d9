//! The cardinality estimator Redis uses since 5.0: Otmar Ertl's improved estimator
//! ("New cardinality estimation algorithms for HyperLogLog sketches", arXiv:1702.01284),
//! computed from the register histogram only, in the same floating-point operations and
//! order as Redis's `hllCount`, so the result is identical to the last bit:
//!
//! ```text
//! z = m·τ((m − h[51]) / m)
//! for j in 50 down to 1: z = (z + h[j]) · 0.5
//! z = z + m·σ(h[0] / m)
//! E = round(α∞·m·m / z)        α∞ = 0.5 / ln 2, round = half away from zero (llroundl)
//! ```
//!
//! with `σ(x) = x + Σ_{k≥1} x^(2^k)·2^(k−1)` and
//! `τ(x) = (1 − x − Σ_{k≥1} (1 − x^(2^−k))²·2^−k) / 3`, each summed until it stops changing.
//! Both only use `+ − × /` and `sqrt`, which IEEE 754 rounds exactly on every platform Redis
//! and Rust run on (Redis's `pow(1 - x, 2)` is a square, folded to a product by the
//! compiler; here written as one). Registers above 51 are counted in the histogram but, as in
//! Redis, take no part in the estimate (they cannot come from a member).

use super::registers::{MAX_VALUE, REGISTERS};

/// `h[v]` = how many registers hold value `v` (values are 6 bits, hence 64 slots).
pub type Histogram = [u32; 64];

/// 0.5 / ln(2), Redis's `HLL_ALPHA_INF`.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// Far more than either series needs for any argument `k / 16384` (they converge in at most
/// 60 or so rounds; a test checks every possible argument): a guard, never reached.
const MAX_ROUNDS: u32 = 200;

/// Ertl's σ (Redis's `hllSigma`).
fn sigma(x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut x = x;
    let mut y = 1.0;
    let mut z = x;
    for _ in 0..MAX_ROUNDS {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if before == z {
            break;
        }
    }
    z
}

/// Ertl's τ (Redis's `hllTau`).
fn tau(x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut x = x;
    let mut y = 1.0;
    let mut z = 1.0 - x;
    for _ in 0..MAX_ROUNDS {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        let d = 1.0 - x;
        z -= d * d * y;
        if before == z {
            break;
        }
    }
    z / 3.0
}

/// Above this the C code's `llroundl` overflows `long long`.
const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0;

/// The estimated cardinality of registers with histogram `h`, exactly as `PFCOUNT` replies.
///
/// Only registers crafted near the maximum (every register about 50, i.e. ~2^64 members)
/// give an estimate of 2^63 or more. There Redis's `llroundl` overflows and the server
/// replies `-9223372036854775808`; this returns the same bits, 2^63, so a caller replying
/// `count as i64` answers what the server answers.
pub fn estimate(h: &Histogram) -> u64 {
    let m = REGISTERS as f64;
    let at = |v: u8| f64::from(h.get(usize::from(v)).copied().unwrap_or(0));

    let mut z = m * tau((m - at(MAX_VALUE)) / m);
    for j in (1..MAX_VALUE).rev() {
        z += at(j);
        z *= 0.5;
    }
    z += m * sigma(at(0) / m);

    let e = (ALPHA_INF * m * m / z).round();
    if e < I64_LIMIT {
        // Exact: `e` is a non-negative integer below 2^63.
        e as u64
    } else {
        1 << 63
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rounds_sigma(mut x: f64) -> u32 {
        let (mut y, mut z, mut n) = (1.0, x, 0);
        loop {
            n += 1;
            x *= x;
            let before = z;
            z += x * y;
            y += y;
            if before == z {
                return n;
            }
        }
    }

    fn rounds_tau(mut x: f64) -> u32 {
        let (mut y, mut z, mut n) = (1.0, 1.0 - x, 0);
        loop {
            n += 1;
            x = x.sqrt();
            let before = z;
            y *= 0.5;
            z -= (1.0 - x) * (1.0 - x) * y;
            if before == z {
                return n;
            }
        }
    }

    #[test]
    fn the_round_guard_is_never_reached() {
        let m = REGISTERS as f64;
        let mut worst = (0, 0);
        for k in 0..REGISTERS {
            let x = k as f64 / m;
            worst.0 = worst.0.max(rounds_sigma(x));
            if k > 0 {
                worst.1 = worst.1.max(rounds_tau(x));
            }
        }
        assert!(
            worst.0 < MAX_ROUNDS / 2 && worst.1 < MAX_ROUNDS / 2,
            "{worst:?}"
        );
    }

    #[test]
    fn empty_is_zero() {
        let mut h: Histogram = [0; 64];
        h[0] = REGISTERS as u32;
        assert_eq!(estimate(&h), 0);
    }

    // Crafted registers, stored as a dense HLL string and counted by redis-server 7.0.15:
    // the tails of the estimator that no member set reaches. E.g. every register 1 (each
    // 3 packed bytes are 0x41 0x10 0x04):
    //   { printf 'HYLL\0\0\0\0\0\0\0\0\0\0\0\200'; for i in $(seq 4096); do
    //     printf '\101\020\004'; done; } | redis-cli -x SET x ; redis-cli PFCOUNT x  -> 23637
    // and likewise for the others (server_check.rs compares thousands of these live).
    #[test]
    fn crafted_histograms_match_the_server() {
        let m = REGISTERS as u32;
        let mut h: Histogram = [0; 64];
        h[51] = m;
        assert_eq!(estimate(&h) as i64, i64::MIN);
        let mut h: Histogram = [0; 64];
        h[50] = m;
        assert_eq!(estimate(&h) as i64, i64::MIN);
        let mut h: Histogram = [0; 64];
        h[51] = m / 2;
        h[0] = m / 2;
        assert_eq!(estimate(&h), 13268);
        let mut h: Histogram = [0; 64];
        h[51] = 3;
        h[1] = m - 3;
        assert_eq!(estimate(&h), 23641);
        let mut h: Histogram = [0; 64];
        h[1] = m;
        assert_eq!(estimate(&h), 23637);
    }
}
