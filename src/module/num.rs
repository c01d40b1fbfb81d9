//! Pure number parsing and formatting without allocation.

/// Parse a signed 64-bit integer with Redis's own rules (`string2ll`): an optional `-`, then
/// digits with no leading zero (except `0` itself); no `+`, no spaces, no `-0`, no overflow.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] if !neg => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    if digits.len() > 19 {
        return None;
    }
    // At most 19 digits, so `v` stays far inside i128 and `checked_*` never fails here.
    let mut v: i128 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(digit(d)?)?;
    }
    i64::try_from(if neg { v.checked_neg()? } else { v }).ok()
}

/// The value of an ASCII decimal digit.
fn digit(d: u8) -> Option<i128> {
    d.is_ascii_digit().then(|| i128::from(d.wrapping_sub(b'0')))
}

/// Parse an `i128` in the same strict form (used for stored state only).
pub fn parse_i128(s: &[u8]) -> Option<i128> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 38 || (digits.len() > 1 && digits.first() == Some(&b'0'))
    {
        return None;
    }
    let mut v: i128 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(digit(d)?)?;
    }
    // `v >= 0`, so its negation always exists.
    Some(if neg { v.checked_neg()? } else { v })
}

/// An unsigned integer that can be written in decimal ([`write_digits`]).
trait Decimal: Copy {
    /// `(self / 10, self % 10)`.
    fn div10(self) -> (Self, u8);
    fn is_zero(self) -> bool;
}

/// The same impl for each width (u64 for the hot paths, u128 for `Buf::push_int`).
macro_rules! decimal {
    ($($t:ty),*) => {$(
        impl Decimal for $t {
            #[inline]
            fn div10(self) -> (Self, u8) {
                // `self % 10 < 10`: the digit fits a byte.
                (self / 10, (self % 10) as u8)
            }
            #[inline]
            fn is_zero(self) -> bool {
                self == 0
            }
        }
    )*};
}
decimal!(u64, u128);

/// Writes `n`'s decimal digits at the end of `out` and returns where they start (as many
/// as fit: callers size `out` for the type's largest value).
#[inline]
fn write_digits<T: Decimal>(mut n: T, out: &mut [u8]) -> usize {
    let mut i = out.len();
    while i > 0 {
        i = i.saturating_sub(1);
        let (rest, digit) = n.div10();
        if let Some(slot) = out.get_mut(i) {
            // A digit is below 10: its byte cannot wrap.
            *slot = b'0'.wrapping_add(digit);
        }
        n = rest;
        if n.is_zero() {
            break;
        }
    }
    i
}

/// An `i64` as decimal text in a stack buffer (u64 arithmetic: `Buf::push_int`'s i128
/// division costs several times more on a hot path such as replicating a lock).
pub struct IntText {
    bytes: [u8; 20],
    start: usize,
}

impl IntText {
    pub fn new(v: i64) -> Self {
        let mut bytes = [0u8; 20];
        let mut i = write_digits(v.unsigned_abs(), &mut bytes);
        // 19 digits at most for |i64| (20 for i64::MIN, whose sign then does not fit: never
        // used with one, the callers format non-negative times and counts).
        if v < 0 && i > 0 {
            i = i.saturating_sub(1);
            if let Some(slot) = bytes.get_mut(i) {
                *slot = b'-';
            }
        }
        IntText { bytes, start: i }
    }

    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(self.start..).unwrap_or(&[])
    }
}

/// A small stack buffer for building stored values (no heap allocation on the hot path).
pub struct Buf {
    bytes: [u8; 128],
    len: usize,
}

impl Buf {
    pub fn new() -> Self {
        Buf {
            bytes: [0; 128],
            len: 0,
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    /// Append bytes; input beyond the capacity is dropped (callers stay far below it).
    pub fn push(&mut self, s: &[u8]) {
        for &b in s {
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = b;
                // `self.len` indexed a slot, so it is below the capacity (128).
                self.len = self.len.saturating_add(1);
            }
        }
    }

    pub fn push_int(&mut self, v: i128) {
        let mut digits = [0u8; 40];
        let i = write_digits(v.unsigned_abs(), &mut digits);
        if v < 0 {
            self.push(b"-");
        }
        self.push(digits.get(i..).unwrap_or(&[]));
    }
}

impl Default for Buf {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_redis() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"42"), Some(42));
        assert_eq!(parse_i64(b"-42"), Some(-42));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        let malformed = [
            "", "-", "+1", " 1", "1 ", "01", "-0", "1.0", "1e3", "NaN", "inf",
        ];
        let out_of_range = [
            "9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999",
        ];
        for bad in malformed.iter().chain(&out_of_range) {
            let bad = bad.as_bytes();
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn int_text() {
        for v in [
            0,
            1,
            9,
            10,
            -1,
            -10,
            1796175198977213,
            i64::MAX,
            i64::MIN + 1,
        ] {
            assert_eq!(IntText::new(v).as_slice(), v.to_string().as_bytes());
        }
    }

    #[test]
    fn i128_round_trip() {
        for v in [
            0i128,
            1,
            -1,
            i128::from(i64::MAX) * 1000,
            -123456789012345678901234567,
        ] {
            let mut b = Buf::new();
            b.push_int(v);
            assert_eq!(parse_i128(b.as_slice()), Some(v));
        }
        assert_eq!(parse_i128(b"007"), None);
        assert_eq!(parse_i128(b""), None);
    }
}
