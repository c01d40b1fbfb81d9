//! The rollups of series that HACK.TSINCR creates implicitly (`hacks.ts-default-rollups`).
//!
//! Default `10s:1d,1h:90d,1d:2y`: ten-second detail for the last day (dashboards), hourly
//! for a quarter (trends), daily for two years (year-over-year); a full day costs 8,640
//! buckets (69 KB) plus 2,160 hourly and 730 daily ones at most.

use std::sync::Mutex;

use super::spec::{parse_list, RollupSpec};

static CURRENT: Mutex<Vec<RollupSpec>> = Mutex::new(Vec::new());

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
