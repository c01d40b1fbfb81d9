//! Rollup arithmetic shared by counting and distinct series: which bucket holds a time,
//! which buckets a rollup retains at `now`, which rollup answers which part of time
//! (`segments`), which rollup a range reads (`pick_range`), whether a write time is
//! accepted, and the key's expiry. Pure functions of the specs (and newest buckets), so both
//! families follow exactly the same rules, and a change here changes both.

use super::spec::RollupSpec;

pub fn bucket_of(t: i64, resolution: i64) -> i64 {
    t.div_euclid(resolution)
}

/// Index of the oldest bucket retained at `now`: the last `retention / resolution` buckets
/// up to and including the current one.
pub fn oldest_idx(spec: &RollupSpec, now: i64) -> i64 {
    // `buckets()` is positive, so this is at most the current bucket (no overflow with any
    // sane clock; saturating keeps it total).
    bucket_of(now, spec.resolution_ms)
        .saturating_sub(spec.buckets())
        .saturating_add(1)
}

pub fn oldest_start(spec: &RollupSpec, now: i64) -> i64 {
    oldest_idx(spec, now).saturating_mul(spec.resolution_ms)
}

/// Why a write time is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtError {
    /// Older than every rollup's retention.
    TooOld,
    /// More than one finest bucket in the future.
    TooNew,
}

/// Check a write time `at` against the rollups at `now`: more than one finest bucket ahead
/// is too new; retained by no rollup is too old.
pub fn check_at(specs: &[RollupSpec], now: i64, at: i64) -> Result<(), AtError> {
    let finest = specs.first().map_or(1, |r| r.resolution_ms);
    // Saturating at i64::MAX gives the same answer: no bucket index exceeds it.
    if bucket_of(at, finest) > bucket_of(now, finest).saturating_add(1) {
        return Err(AtError::TooNew);
    }
    if specs
        .iter()
        .any(|s| bucket_of(at, s.resolution_ms) >= oldest_idx(s, now))
    {
        Ok(())
    } else {
        Err(AtError::TooOld)
    }
}

/// The key's expiry from each rollup's newest bucket: once no rollup retains the newest
/// bucket written. `None` while nothing was written.
pub fn derived_expiry(rollups: impl Iterator<Item = (RollupSpec, Option<i64>)>) -> Option<i64> {
    rollups
        .filter_map(|(spec, newest)| {
            newest.map(|n| (n.saturating_add(spec.buckets())).saturating_mul(spec.resolution_ms))
        })
        .max()
}

/// The expiry after a write: the derived one, never earlier than the current one.
pub fn next_expiry(current: Option<i64>, derived: Option<i64>) -> Option<i64> {
    match (current, derived) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Which rollup answers which part of time at `now`: `(rollup, from_ms, until_ms)`, finest
/// first, `until` exclusive. A finer rollup answers from the first edge of the next coarser
/// rollup at or after its own oldest retained bucket, so every coarse bucket counts whole or
/// not at all.
pub fn segments(specs: &[RollupSpec], now: i64) -> Vec<(usize, i64, i64)> {
    let mut out = Vec::with_capacity(specs.len());
    let mut until = i64::MAX;
    for (i, r) in specs.iter().enumerate() {
        let oldest = oldest_start(r, now);
        let from = match specs.get(i.saturating_add(1)) {
            Some(coarser) => {
                let res = coarser.resolution_ms;
                oldest
                    .div_euclid(res)
                    .saturating_add(i64::from(oldest.rem_euclid(res) != 0))
                    .saturating_mul(res)
            }
            None => oldest,
        };
        let from = from.max(oldest);
        if from < until {
            out.push((i, from, until));
            until = from;
        }
    }
    out
}

/// The bucket indexes `lo..=hi` of rollup `spec` that answer `[from, to]` within the segment
/// `[seg_from, seg_until)`.
pub fn segment_buckets(
    spec: &RollupSpec,
    from: i64,
    to: i64,
    seg_from: i64,
    seg_until: i64,
) -> (i64, i64) {
    let res = spec.resolution_ms;
    let lo = bucket_of(from, res).max(bucket_of(seg_from, res));
    let hi = if seg_until == i64::MAX {
        bucket_of(to, res)
    } else {
        bucket_of(to, res).min(bucket_of(seg_until, res).saturating_sub(1))
    };
    (lo, hi)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeError {
    /// No rollup covering the range has a resolution dividing STEP.
    BadStep,
    TooManyPoints(i64),
}

/// The plan of a `TSRANGE`: rollup `rollup` answers; `count` points of `step` ms starting at
/// `first`; buckets `lo..=hi` of that rollup are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangePlan {
    pub rollup: usize,
    pub step: i64,
    pub first: i64,
    pub count: usize,
    pub lo: i64,
    pub hi: i64,
}

/// Plan zero-filled points for `[from, to]` from one rollup: the finest one retaining
/// `from` whose resolution divides `step` (default: its resolution). `from` earlier than
/// every retention starts at the coarsest rollup's oldest bucket. `Ok(None)`: no points.
pub fn pick_range(
    specs: &[RollupSpec],
    now: i64,
    from: i64,
    to: i64,
    step: Option<i64>,
    max_points: i64,
) -> Result<Option<RangePlan>, RangeError> {
    // Clamping `from` to the coarsest rollup's oldest bucket means that rollup always
    // covers it, so the search below can only fail on STEP.
    let coarsest_oldest = specs.last().map_or(from, |r| oldest_start(r, now));
    let from = from.max(coarsest_oldest);
    if to < from {
        return Ok(None);
    }
    let (rollup, pick) = specs
        .iter()
        .enumerate()
        .filter(|(_, r)| oldest_start(r, now) <= from)
        .find(|(_, r)| step.is_none_or(|s| s.checked_rem(r.resolution_ms) == Some(0)))
        .ok_or(RangeError::BadStep)?;
    // STEP and resolutions are validated >= 1. `first` and `last` are multiples of `step`
    // at most `from` and `to`: they only saturate for `from` within `step` of i64::MIN,
    // which no retention reaches.
    let step = step.unwrap_or(pick.resolution_ms);
    let first = from.div_euclid(step).saturating_mul(step);
    let last = to.div_euclid(step).saturating_mul(step);
    let count = i128::from(last)
        .saturating_sub(i128::from(first))
        .checked_div(i128::from(step))
        .unwrap_or(0)
        .saturating_add(1);
    if count > i128::from(max_points) {
        return Err(RangeError::TooManyPoints(
            i64::try_from(count).unwrap_or(i64::MAX),
        ));
    }
    let res = pick.resolution_ms;
    Ok(Some(RangePlan {
        rollup,
        step,
        first,
        // At most `max_points`, an i64 setting: fits usize on 64-bit targets.
        count: usize::try_from(count).unwrap_or(0),
        lo: bucket_of(first, res).max(oldest_idx(pick, now)),
        // The last step's end: clamped at i64::MAX, past which no bucket starts anyway.
        hi: bucket_of(last.saturating_add(step.saturating_sub(1)), res),
    }))
}

/// The point a bucket of `plan`'s rollup (resolution `res`) falls in.
pub fn point_of(plan: &RangePlan, idx: i64, res: i64) -> Option<usize> {
    // `idx <= hi`, so `idx * res` is a time at most `last + step - 1`.
    let t = idx.saturating_mul(res);
    usize::try_from(t.saturating_sub(plan.first).div_euclid(plan.step))
        .ok()
        .filter(|k| *k < plan.count)
}
