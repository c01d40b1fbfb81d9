//! Time-series settings (`CONFIG SET hacks.*`).

use crate::module::config::{IntSetting, StrSetting};

/// `hacks.ts-max-range-points`: most points one HACK.TSRANGE reply may hold.
pub static TS_MAX_RANGE_POINTS: IntSetting =
    IntSetting::new(c"ts-max-range-points", 100_000, 1, 100_000_000);

/// `hacks.ts-default-rollups`: rollups of series created implicitly by HACK.TSINCR.
pub static TS_DEFAULT_ROLLUPS: StrSetting = StrSetting::new(
    c"ts-default-rollups",
    c"10s:1d,1h:90d,1d:2y",
    super::defaults::set,
);
