//! `INFO hacks` counters for time series.

use crate::module::stats::{Counter, Field};

pub static INCREMENTS: Counter = Counter::new();
pub static SUMS: Counter = Counter::new();

pub const FIELDS: &[Field] = &[
    (c"ts_increments", &INCREMENTS),
    (c"ts_sums", &SUMS),
    (c"ts_distinct_adds", &DISTINCT_ADDS),
    (c"ts_distinct_counts", &DISTINCT_COUNTS),
];

pub static DISTINCT_ADDS: Counter = Counter::new();
pub static DISTINCT_COUNTS: Counter = Counter::new();
