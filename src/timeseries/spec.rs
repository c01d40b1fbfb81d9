//! Rollup specs: `<resolution>:<retention>`, e.g. `10s:1d`, with units ms, s, m, h, d and
//! y (365 d). A list is ordered finest first; each coarser rollup's resolution is a strict
//! multiple of the previous one's (so its bucket edges are edges of every finer rollup) and
//! its retention is at least as long.

use std::fmt;

use crate::module::num::parse_i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupSpec {
    pub resolution_ms: i64,
    pub retention_ms: i64,
}

impl RollupSpec {
    /// Buckets a rollup retains.
    pub fn buckets(&self) -> i64 {
        // The resolution is validated >= 1 wherever a spec is made (parse, RDB load).
        self.retention_ms
            .checked_div(self.resolution_ms)
            .unwrap_or(0)
    }
}

/// Longest accepted retention: 100 years.
pub const MAX_RETENTION_MS: i64 = 100 * 365 * 86_400_000;
/// Most rollups one series may hold.
pub const MAX_ROLLUPS: usize = 8;

fn parse_duration(s: &[u8]) -> Result<i64, String> {
    let split = s
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n = parse_i64(num).filter(|n| *n > 0).ok_or_else(|| {
        format!(
            "'{}' needs a positive whole number before its unit",
            String::from_utf8_lossy(s)
        )
    })?;
    let scale: i64 = match unit {
        b"ms" => 1,
        b"s" => 1_000,
        b"m" => 60_000,
        b"h" => 3_600_000,
        b"d" => 86_400_000,
        b"y" => 365 * 86_400_000,
        _ => {
            return Err(format!(
                "'{}' has no valid unit (ms, s, m, h, d, y)",
                String::from_utf8_lossy(s)
            ))
        }
    };
    n.checked_mul(scale)
        .filter(|v| *v <= MAX_RETENTION_MS)
        .ok_or_else(|| format!("'{}' is longer than 100y", String::from_utf8_lossy(s)))
}

/// Parse one `res:ret` spec.
pub fn parse_one(s: &[u8]) -> Result<RollupSpec, String> {
    let colon = s.iter().position(|b| *b == b':').ok_or_else(|| {
        format!(
            "rollup '{}' must be resolution:retention",
            String::from_utf8_lossy(s)
        )
    })?;
    let (res, ret) = s.split_at(colon);
    let ret = ret.get(1..).unwrap_or(&[]);
    let resolution_ms = parse_duration(res)?;
    let retention_ms = parse_duration(ret)?;
    // Both are positive (parse_duration): `checked_rem` never fails.
    if retention_ms.checked_rem(resolution_ms) != Some(0) {
        return Err(format!(
            "rollup '{}': the resolution must divide the retention",
            String::from_utf8_lossy(s)
        ));
    }
    Ok(RollupSpec {
        resolution_ms,
        retention_ms,
    })
}

/// A spec `parse_one` could have produced (for specs read from RDB/RESTORE).
pub fn valid_spec(s: RollupSpec) -> bool {
    s.resolution_ms >= 1
        && s.retention_ms >= s.resolution_ms
        && s.retention_ms <= MAX_RETENTION_MS
        && s.retention_ms.checked_rem(s.resolution_ms) == Some(0)
}

/// Check the order rules of a list.
pub fn validate(list: &[RollupSpec]) -> Result<(), String> {
    if list.is_empty() {
        return Err("at least one rollup is needed".into());
    }
    if list.len() > MAX_ROLLUPS {
        return Err(format!("at most {MAX_ROLLUPS} rollups per series"));
    }
    for (fine, coarse) in list.iter().zip(list.iter().skip(1)) {
        let (fine, coarse) = (*fine, *coarse);
        if coarse.resolution_ms <= fine.resolution_ms
            || coarse.resolution_ms.checked_rem(fine.resolution_ms) != Some(0)
        {
            return Err(format!(
                "rollups must go from finest to coarsest, each resolution a multiple of the previous \
                 one: {} then {}",
                fine, coarse
            ));
        }
        if coarse.retention_ms < fine.retention_ms {
            return Err(format!(
                "a coarser rollup must keep at least as long: {} then {}",
                fine, coarse
            ));
        }
    }
    Ok(())
}

/// Parse a comma-separated list (the `hacks.ts-default-rollups` setting).
pub fn parse_list(s: &[u8]) -> Result<Vec<RollupSpec>, String> {
    let list = s
        .split(|b| *b == b',')
        .map(|p| parse_one(p.trim_ascii()))
        .collect::<Result<Vec<_>, _>>()?;
    validate(&list)?;
    Ok(list)
}

fn fmt_duration(ms: i64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for (unit, scale) in [
        ("y", 365 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if let (Some(0), Some(n)) = (ms.checked_rem(scale), ms.checked_div(scale)) {
            return write!(f, "{n}{unit}");
        }
    }
    write!(f, "{ms}ms")
}

impl fmt::Display for RollupSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_duration(self.resolution_ms, f)?;
        f.write_str(":")?;
        fmt_duration(self.retention_ms, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_lists() {
        assert_eq!(
            parse_one(b"10s:1d"),
            Ok(RollupSpec {
                resolution_ms: 10_000,
                retention_ms: 86_400_000
            })
        );
        assert_eq!(parse_one(b"100ms:2s").map(|r| r.buckets()), Ok(20));
        assert_eq!(
            parse_one(b"1d:2y").map(|r| r.retention_ms),
            Ok(2 * 365 * 86_400_000)
        );
        let l = parse_list(b"10s:1d, 1h:90d,1d:2y").unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(
            l.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            ["10s:1d", "1h:90d", "1d:2y"]
        );
        assert_eq!(parse_one(b"1500ms:3s").unwrap().to_string(), "1500ms:3s");
    }

    #[test]
    fn rejects_bad_specs() {
        let bad_specs = [
            "10s", "10x:1d", "0s:1d", "10s:0d", "s:1d", "7s:1m", "-1s:1d", "1s:101y",
        ];
        for bad in bad_specs.iter().chain(&["10s:1d:1", ""]) {
            let bad = bad.as_bytes();
            assert!(parse_one(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        for bad in [
            &b"1h:1d,10s:1d"[..],
            b"10s:1d,10s:2d",
            b"10s:1d,15s:1d",
            b"10s:1d,1m:1h",
            b"10s:1d,,1h:2d",
        ] {
            assert!(parse_list(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
