//! Buffer members (bytes) to id-column values.

/// What the id column accepts, read from the schema at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdKind {
    /// An integer column holding `min..=max` (e.g. a PostgreSQL `integer` is 32-bit).
    Int { min: i64, max: i64 },
    /// A text column, with a length limit in characters (`varchar(n)`) when it has one.
    Text { max_chars: Option<usize> },
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Id {
    Int(i64),
    Text(String),
}

/// The id a member stands for, or why it has none.
///
/// Integer members must be in canonical decimal form (what Redis writes for an integer: no
/// `+`, no leading zeros, no `-0`), so two distinct members never map to one row by accident.
pub fn to_id(kind: &IdKind, member: &[u8]) -> Result<Id, String> {
    match kind {
        IdKind::Int { min, max } => {
            let n = canonical_i64(member).ok_or("not a decimal integer")?;
            if n < *min || n > *max {
                return Err(format!("out of range for the id column ({min}..={max})"));
            }
            Ok(Id::Int(n))
        }
        IdKind::Text { max_chars } => {
            let s = std::str::from_utf8(member).map_err(|_| "not valid UTF-8")?;
            // PostgreSQL text cannot hold NUL; refuse it for SQLite too so both behave alike.
            if s.contains('\0') {
                return Err("contains a NUL byte".into());
            }
            if let Some(max) = max_chars {
                if s.chars().count() > *max {
                    return Err(format!("longer than the id column's {max} characters"));
                }
            }
            Ok(Id::Text(s.to_string()))
        }
    }
}

/// `bytes` as an integer in canonical decimal form (no `+`, no leading zeros, no `-0`: what
/// Redis writes for one), else None.
pub fn canonical_i64(bytes: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(bytes).ok()?;
    s.parse::<i64>().ok().filter(|n| n.to_string() == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const I64: IdKind = IdKind::Int {
        min: i64::MIN,
        max: i64::MAX,
    };

    #[test]
    fn integers() {
        assert_eq!(to_id(&I64, b"42"), Ok(Id::Int(42)));
        assert_eq!(to_id(&I64, b"-7"), Ok(Id::Int(-7)));
        assert_eq!(to_id(&I64, b"0"), Ok(Id::Int(0)));
        assert_eq!(to_id(&I64, b"-9223372036854775808"), Ok(Id::Int(i64::MIN)));
        // Not what Redis writes for an integer, out of i64, not UTF-8.
        for bad in ["abc", "", "+1", "007", "-0", " 1", "1.0"] {
            assert!(to_id(&I64, bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(to_id(&I64, b"9223372036854775808").is_err());
        assert!(to_id(&I64, b"\xff").is_err());
        let int4 = IdKind::Int {
            min: i32::MIN.into(),
            max: i32::MAX.into(),
        };
        assert_eq!(to_id(&int4, b"2147483647"), Ok(Id::Int(2147483647)));
        assert!(to_id(&int4, b"2147483648").unwrap_err().contains("range"));
    }

    #[test]
    fn text() {
        let any = IdKind::Text { max_chars: None };
        assert_eq!(
            to_id(&any, "héllo".as_bytes()),
            Ok(Id::Text("héllo".into()))
        );
        assert_eq!(to_id(&any, b""), Ok(Id::Text(String::new())));
        assert!(to_id(&any, b"\xff\xfe").unwrap_err().contains("UTF-8"));
        assert!(to_id(&any, b"a\0b").unwrap_err().contains("NUL"));
        let short = IdKind::Text { max_chars: Some(3) };
        assert!(to_id(&short, "äöü".as_bytes()).is_ok());
        assert!(to_id(&short, b"abcd").is_err());
    }
}
