//! Time series: counting series (`HACK.TSINCR`, `HACK.TSSUM`) and distinct-count series
//! (`HACK.TSADD`, `HACK.TSCOUNT`), both created by `HACK.TSCREATE` and read by
//! `HACK.TSRANGE` / `HACK.TSINFO` (and the internal `HACK.TSAPPLY` / `HACK.TSSET` /
//! `HACK.TSADDAT` / `HACK.TSDSET` effects).
//!
//! - `layout.rs`: the rollup rules both families share (buckets, retention, segments,
//!   range plans, expiry);
//! - `distinct.rs`, `distinct_add.rs`, `distinct_type.rs`: distinct series (one HLL sketch
//!   per bucket, from `hll/`), adding members to a key, the `hacks-tsd` data type;
//! - `kind.rs`: which family a key holds, and the error the other family's commands answer;
//! - `commands/`: one file per command;
//! - `spec.rs`: rollup specs (`10s:1d`) and their rules;
//! - `buckets.rs`: one rollup's buckets, dense or sparse, whichever is smaller;
//! - `series.rs`: a series (all rollups), increments, sums and ranges with the clock passed in;
//! - `increment.rs`: applying one increment to a key (shared by TSINCR and its effect);
//! - `args.rs`: the time and rollup arguments the commands share, and their errors;
//! - `datatype.rs`: the `hacks-tss` data type;
//! - `settings.rs`, `defaults.rs`: `hacks.ts-*` and the implicit rollups; `stats.rs`.

use crate::module::config::Setting;
use crate::module::ctx::Ctx;
use crate::module::family::Family;

pub mod args;
pub mod buckets;
pub mod commands;
pub mod datatype;
pub mod defaults;
pub mod distinct;
pub mod distinct_add;
pub mod distinct_type;
pub mod hll;
pub mod increment;
pub mod kind;
pub mod layout;
pub mod series;
pub mod settings;
pub mod spec;
pub mod stats;
pub mod write;

pub static FAMILY: Family = Family {
    name: "timeseries",
    register,
    settings: &[
        Setting::Int(&settings::TS_MAX_RANGE_POINTS),
        Setting::Str(&settings::TS_DEFAULT_ROLLUPS),
        Setting::Str(&settings::TS_DEFAULT_DISTINCT_ROLLUPS),
        Setting::Int(&settings::TS_DISTINCT_SPARSE_MAX_BYTES),
    ],
    info: stats::FIELDS,
    gauges: &[],
    events: crate::module::events::Events::NONE,
};

fn register(ctx: &Ctx) -> Result<(), String> {
    crate::module::datatype::register::<series::Series>(ctx)?;
    crate::module::datatype::register::<distinct::DistinctSeries>(ctx)?;
    commands::register_all(ctx)
}
