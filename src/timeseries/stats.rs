//! `INFO hacks` counters for time series.

use crate::module::stats::{Counter, Field};

pub static INCREMENTS: Counter = Counter::new();
pub static SUMS: Counter = Counter::new();

pub const FIELDS: &[Field] = &[(c"ts_increments", &INCREMENTS), (c"ts_sums", &SUMS)];
