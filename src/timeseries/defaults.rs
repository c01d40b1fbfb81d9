//! The rollups of series that HACK.TSINCR creates implicitly (`hacks.ts-default-rollups`),
//! and of distinct series that HACK.TSADD creates (`hacks.ts-default-distinct-rollups`).
//!
//! Default `10s:1d,1h:90d,1d:2y`: ten-second detail for the last day (dashboards), hourly
//! for a quarter (trends), daily for two years (year-over-year); a full day costs 8,640
//! buckets (69 KB) plus 2,160 hourly and 730 daily ones at most.

use std::sync::Mutex;

use super::spec::{parse_list, RollupSpec};

static CURRENT: Mutex<Vec<RollupSpec>> = Mutex::new(Vec::new());
static DISTINCT: Mutex<Vec<RollupSpec>> = Mutex::new(Vec::new());

/// Validate and install a new default (the config setter).
pub fn set(value: &[u8]) -> Result<(), String> {
    let list = parse_list(value)?;
    match CURRENT.lock() {
        Ok(mut g) => *g = list,
        Err(p) => *p.into_inner() = list,
    }
    Ok(())
}

/// The current default rollups.
pub fn get() -> Vec<RollupSpec> {
    match CURRENT.lock() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

/// Distinct default `10s:1h,1h:7d,1d:90d` (Sentry's TSDB rollups): ten-second detail for the
/// last hour ("is it still happening"), hourly for a week ("users affected in the last 24
/// hours" reads 23 hourly sketches and at most 360 ten-second ones), daily for a quarter.
/// A busy bucket costs up to 12 KB (a dense sketch), so the fine rollup keeps an hour, not
/// a day: 360 + 168 + 90 buckets at most.
pub fn set_distinct(value: &[u8]) -> Result<(), String> {
    let list = parse_list(value)?;
    match DISTINCT.lock() {
        Ok(mut g) => *g = list,
        Err(p) => *p.into_inner() = list,
    }
    Ok(())
}

/// The current default rollups of distinct series.
pub fn get_distinct() -> Vec<RollupSpec> {
    match DISTINCT.lock() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}
