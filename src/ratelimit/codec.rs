//! How each algorithm's state is stored in its string key.
//!
//! - FIXED: the count as a plain decimal (`GET` shows it, as with INCR); with a non-zero
//!   `OFFSET`, `f:<offset_ms>:<count>` (the key remembers its offset; keys without one keep
//!   the plain format, so existing keys and clients are unaffected).
//! - SLIDING: `s:<period_ms>:<window_start_ms>:<prev>:<cur>` (the offset is
//!   `window_start_ms mod period_ms`: the window start already carries it).
//! - GCRA: `g:<den>:<tat>` (TAT in units of 1/den µs; see `gcra.rs`).
//!
//! Text keeps the keys readable with `GET` and costs well under a microsecond to parse.

use crate::module::num::{parse_i128, parse_i64, Buf};

use super::{gcra, sliding};

/// What a limiter key holds, as far as its format tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Count and offset.
    Fixed(i64, i64),
    Sliding(sliding::State),
    Gcra(gcra::State),
    /// A string no algorithm wrote.
    Foreign,
}

pub fn decode(v: &[u8]) -> Stored {
    let rest = v.get(2..).unwrap_or(&[]);
    let decoded = match v.get(..2) {
        Some(b"s:") => decode_sliding(rest),
        Some(b"f:") => decode_fixed(rest),
        Some(b"g:") => decode_gcra(rest),
        _ => parse_i64(v).map(|c| Stored::Fixed(c, 0)),
    };
    decoded.unwrap_or(Stored::Foreign)
}

/// Exactly `N` `:`-separated fields.
fn fields<const N: usize>(rest: &[u8]) -> Option<[&[u8]; N]> {
    let mut it = rest.split(|&b| b == b':');
    let mut out: [&[u8]; N] = [&[]; N];
    for slot in &mut out {
        *slot = it.next()?;
    }
    it.next().is_none().then_some(out)
}

/// `period_ms:window_start_ms:prev:cur`.
fn decode_sliding(rest: &[u8]) -> Option<Stored> {
    let [period_ms, window_start_ms, prev, cur] = fields(rest)?.map(parse_i64);
    let state = sliding::State {
        period_ms: period_ms.filter(|&p| p >= 1)?,
        window_start_ms: window_start_ms?,
        prev: prev?,
        cur: cur?,
    };
    Some(Stored::Sliding(state))
}

/// `offset:count`.
fn decode_fixed(rest: &[u8]) -> Option<Stored> {
    let [offset, count] = fields(rest)?;
    let (offset, count) = (parse_i64(offset)?, parse_i64(count)?);
    // Only `encode_fixed` writes this form, always with an offset in 1..MAX_HORIZON_MS.
    (1..super::math::MAX_HORIZON_MS)
        .contains(&offset)
        .then_some(Stored::Fixed(count, offset))
}

/// `den:tat`.
fn decode_gcra(rest: &[u8]) -> Option<Stored> {
    let [den, tat] = fields(rest)?;
    let (den, tat) = (parse_i64(den)?, parse_i128(tat)?);
    // An out-of-range TAT (only a hand-written key can hold one) would overflow the
    // unit conversion in `gcra::decide`: treat it as not ours.
    let plausible = den >= 1
        && (-gcra::MAX_TAT_US..=gcra::MAX_TAT_US).contains(&tat.div_euclid(i128::from(den)));
    plausible.then_some(Stored::Gcra(gcra::State { den, tat }))
}

pub fn encode_fixed(count: i64, offset_ms: i64) -> Buf {
    let mut b = Buf::new();
    if offset_ms != 0 {
        b.push(b"f:");
        b.push_int(i128::from(offset_ms));
        b.push(b":");
    }
    b.push_int(i128::from(count));
    b
}

pub fn encode_sliding(s: &sliding::State) -> Buf {
    let mut b = Buf::new();
    b.push(b"s:");
    for (i, v) in [s.period_ms, s.window_start_ms, s.prev, s.cur]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            b.push(b":");
        }
        b.push_int(i128::from(v));
    }
    b
}

pub fn encode_gcra(s: &gcra::State) -> Buf {
    let mut b = Buf::new();
    b.push(b"g:");
    b.push_int(i128::from(s.den));
    b.push(b":");
    b.push_int(s.tat);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(decode(encode_fixed(17, 0).as_slice()), Stored::Fixed(17, 0));
        assert_eq!(
            encode_fixed(17, 0).as_slice(),
            b"17",
            "offset 0: today's format"
        );
        assert_eq!(encode_fixed(17, 250).as_slice(), b"f:250:17");
        assert_eq!(decode(b"f:250:17"), Stored::Fixed(17, 250));
        let s = sliding::State {
            period_ms: 1000,
            window_start_ms: 1_700_000_000_000,
            prev: 3,
            cur: 9,
        };
        assert_eq!(encode_sliding(&s).as_slice(), b"s:1000:1700000000000:3:9");
        assert_eq!(decode(encode_sliding(&s).as_slice()), Stored::Sliding(s));
        let g = gcra::State {
            den: 5000,
            tat: 1_700_000_000_000_000 * 5000,
        };
        assert_eq!(decode(encode_gcra(&g).as_slice()), Stored::Gcra(g));
    }

    #[test]
    fn anything_else_is_foreign() {
        let malformed = [
            "hello", "", "s:1:2:3", "g:0:5", "g:1", "g:1:x", "+5", "f:0:5", "f:5", "f:5:6:7",
            "f:-1:5",
        ];
        let sliding = ["s:1:2:3:4:5", "s:0:0:0:0"];
        // TAT beyond gcra::MAX_TAT_US (would overflow the unit conversion).
        let tat = [
            "g:1:100000000000000000001",
            "g:2:-99999999999999999999999999999999999999",
        ];
        for v in malformed.iter().chain(&sliding).chain(&tat) {
            let v = v.as_bytes();
            assert_eq!(
                decode(v),
                Stored::Foreign,
                "{:?}",
                String::from_utf8_lossy(v)
            );
        }
    }
}
