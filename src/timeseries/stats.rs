//! `INFO hacks` counters for time series.

crate::counters! {
    TS_INCREMENTS,
    TS_SUMS,
    TS_DISTINCT_ADDS,
    TS_DISTINCT_COUNTS,
}
