//! Time-series counters: `HACK.TSCREATE`, `HACK.TSINCR`, `HACK.TSSUM`, `HACK.TSRANGE`,
//! `HACK.TSINFO` (and the internal `HACK.TSAPPLY` / `HACK.TSSET` effects).
//!
//! - `spec.rs`: rollup specs (`10s:1d`) and their rules;
//! - `buckets.rs`: one rollup's buckets, dense or sparse, whichever is smaller;
//! - `series.rs`: a series (all rollups), increments, sums and ranges with the clock passed in;
//! - `datatype.rs`: the `hacks-tss` data type; one file per command.

pub mod apply;
pub mod buckets;
pub mod common;
pub mod datatype;
pub mod defaults;
pub mod hll;
pub mod series;
pub mod spec;
pub mod stats;
pub mod tsapply;
pub mod tscreate;
pub mod tsincr;
pub mod tsinfo;
pub mod tsrange;
pub mod tsset;
pub mod tssum;
