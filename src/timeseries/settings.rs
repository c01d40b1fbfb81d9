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

/// `hacks.ts-default-distinct-rollups`: rollups of distinct series created implicitly by
/// HACK.TSADD.
pub static TS_DEFAULT_DISTINCT_ROLLUPS: StrSetting = StrSetting::new(
    c"ts-default-distinct-rollups",
    c"10s:1h,1h:7d,1d:90d",
    super::defaults::set_distinct,
);

/// `hacks.ts-distinct-sparse-max-bytes`: a distinct bucket's sketch stays sparse (4 bytes a
/// set register) up to this many bytes, then turns dense (12,288 bytes), like Redis's
/// `hll-sparse-max-bytes`. Applies to sketches as they grow; the value is not part of the
/// data (a sketch's registers are the same either way). Default 12,288: sparse for as long
/// as it is smaller than dense. Redis stops at 3000 because its sparse update is a linear
/// scan of run-length opcodes; ours is a binary search plus a memmove of at most 12 KB, and
/// the hourly buckets of a busy series (a few thousand members) stay well under 12 KB.
pub static TS_DISTINCT_SPARSE_MAX_BYTES: IntSetting =
    IntSetting::new(c"ts-distinct-sparse-max-bytes", 12_288, 0, 12_288);

/// The sparse bound in force, as a byte count.
pub fn distinct_sparse_max_bytes() -> usize {
    usize::try_from(TS_DISTINCT_SPARSE_MAX_BYTES.get()).unwrap_or(12_288)
}
