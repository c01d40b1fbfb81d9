//! A series: one or more rollups updated together. Pure: the clock (`now`, Unix ms) is
//! passed in, so a replica applying the master's effect with the master's `now` computes
//! exactly what the master did.

use super::buckets::Store;
use super::spec::RollupSpec;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollup {
    pub spec: RollupSpec,
    pub store: Store,
    /// Newest bucket index ever written (whatever its value now): drives the key's expiry.
    pub newest: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub rollups: Vec<Rollup>,
    /// Absolute Unix ms after which no rollup retains anything written so far.
    pub expire_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncrError {
    /// `AT` is older than every rollup's retention.
    TooOld,
    /// `AT` is more than one finest bucket in the future.
    TooNew,
    Overflow,
}

use super::layout;
pub use super::layout::{bucket_of, RangeError};

impl Rollup {
    /// Index of the oldest bucket retained at `now` (see [`layout::oldest_idx`]).
    pub fn oldest_idx(&self, now: i64) -> i64 {
        layout::oldest_idx(&self.spec, now)
    }

    pub fn oldest_start(&self, now: i64) -> i64 {
        layout::oldest_start(&self.spec, now)
    }
}

impl Series {
    pub fn new(specs: &[RollupSpec]) -> Self {
        Series {
            rollups: specs
                .iter()
                .map(|s| Rollup {
                    spec: *s,
                    store: Store::default(),
                    newest: None,
                })
                .collect(),
            expire_at_ms: None,
        }
    }

    pub fn specs(&self) -> Vec<RollupSpec> {
        self.rollups.iter().map(|r| r.spec).collect()
    }

    /// Add `inc` at time `at` to every rollup that retains it at `now`. With `check` (the
    /// master), out-of-range `at` is an error; replaying an effect (`check == false`) applies
    /// what still fits. Returns the new value of the finest retaining rollup's bucket, or
    /// `None` when nothing retains `at` (replay only). Nothing changes on error.
    pub fn incr(
        &mut self,
        now: i64,
        at: i64,
        inc: i64,
        check: bool,
    ) -> Result<Option<i64>, IncrError> {
        let finest = self.rollups.first().map_or(1, |r| r.spec.resolution_ms);
        // Saturating at i64::MAX gives the same answer: no bucket index exceeds it.
        if check && bucket_of(at, finest) > bucket_of(now, finest).saturating_add(1) {
            return Err(IncrError::TooNew);
        }
        let mut reply = None;
        let mut any = false;
        for r in &self.rollups {
            let idx = bucket_of(at, r.spec.resolution_ms);
            if idx >= r.oldest_idx(now) {
                let v = r
                    .store
                    .get(idx)
                    .checked_add(inc)
                    .ok_or(IncrError::Overflow)?;
                reply.get_or_insert(v);
                any = true;
            }
        }
        if !any {
            return if check {
                Err(IncrError::TooOld)
            } else {
                Ok(None)
            };
        }
        for r in &mut self.rollups {
            let oldest = r.oldest_idx(now);
            r.store.trim_before(oldest);
            let idx = bucket_of(at, r.spec.resolution_ms);
            if idx >= oldest {
                r.store.add(idx, inc, r.spec.buckets());
                // unwrap_or, then max: never compares the payload of a `None` (valgrind-clean).
                r.newest = Some(r.newest.unwrap_or(idx).max(idx));
            }
        }
        self.refresh_expiry();
        Ok(reply)
    }

    /// Set bucket `idx` of rollup `which` to `value` (AOF rewrite replay). No checks.
    pub fn set_bucket(&mut self, which: usize, idx: i64, value: i64) {
        if let Some(r) = self.rollups.get_mut(which) {
            let cur = r.store.get(idx);
            r.store.add(idx, value.wrapping_sub(cur), r.spec.buckets());
            r.newest = Some(r.newest.unwrap_or(idx).max(idx));
        }
        self.refresh_expiry();
    }

    /// Recompute the expiry from the newest buckets; it never moves earlier.
    pub fn refresh_expiry(&mut self) {
        let derived = layout::derived_expiry(self.rollups.iter().map(|r| (r.spec, r.newest)));
        self.expire_at_ms = layout::next_expiry(self.expire_at_ms, derived);
    }

    /// Which rollup answers which part of time at `now` (see [`layout::segments`]).
    pub fn segments(&self, now: i64) -> Vec<(usize, i64, i64)> {
        layout::segments(&self.specs(), now)
    }

    /// Sum of every bucket overlapping `[from, to]`, each part of time answered by the finest
    /// rollup retaining it.
    pub fn sum(&self, now: i64, from: i64, to: i64) -> i128 {
        if to < from {
            return 0;
        }
        let mut total = 0i128;
        for (i, seg_from, seg_until) in self.segments(now) {
            let Some(r) = self.rollups.get(i) else {
                continue;
            };
            let (lo, hi) = layout::segment_buckets(&r.spec, from, to, seg_from, seg_until);
            // At most MAX_ROLLUPS sums of in-memory i64s: far inside i128.
            total = total.saturating_add(r.store.sum(lo, hi));
        }
        total
    }

    /// Zero-filled `(step_start, value)` points for `[from, to]` from one rollup: the finest
    /// one retaining `from` whose resolution divides `step` (default: its resolution).
    /// `from` earlier than every retention starts at the coarsest rollup's oldest bucket.
    pub fn range(
        &self,
        now: i64,
        from: i64,
        to: i64,
        step: Option<i64>,
        max_points: i64,
    ) -> Result<Vec<(i64, i64)>, RangeError> {
        let Some(plan) = layout::pick_range(&self.specs(), now, from, to, step, max_points)? else {
            return Ok(vec![]);
        };
        let Some(pick) = self.rollups.get(plan.rollup) else {
            return Ok(vec![]);
        };
        let mut points: Vec<(i64, i64)> = (0..plan.count as i64)
            .map(|k| (plan.first.saturating_add(k.saturating_mul(plan.step)), 0))
            .collect();
        let res = pick.spec.resolution_ms;
        pick.store.each(plan.lo, plan.hi, |idx, v| {
            if let Some(p) = layout::point_of(&plan, idx, res).and_then(|k| points.get_mut(k)) {
                p.1 = p.1.saturating_add(v);
            }
        });
        Ok(points)
    }

    pub fn heap_bytes(&self) -> usize {
        self.rollups.iter().map(|r| r.store.heap_bytes()).fold(
            self.rollups
                .capacity()
                .saturating_mul(std::mem::size_of::<Rollup>()),
            usize::saturating_add,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeseries::spec::parse_list;

    fn series(spec: &str) -> Series {
        Series::new(&parse_list(spec.as_bytes()).unwrap())
    }

    /// The model: every increment with its time; a sum counts an increment when the rollup
    /// answering its time, per `segments`, has a bucket overlapping [from, to].
    #[test]
    fn sums_match_a_model_across_rollups() {
        let mut s = series("100ms:2s,1s:10s,5s:1m");
        let mut log: Vec<(i64, i64)> = vec![];
        let mut x: u64 = 12345;
        let mut now = 100_000;
        for _ in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            now += (x % 40) as i64;
            let back = (x >> 8) % 70_000;
            let at = now - back as i64;
            let inc = (x >> 20) as i64 % 9 - 2;
            match s.incr(now, at, inc, true) {
                Ok(_) => log.push((at, inc)),
                Err(IncrError::TooOld) => assert!(back >= 60_000 - 5_000, "{back}"),
                Err(e) => panic!("{e:?}"),
            }
        }
        let segs = s.segments(now);
        for (from, to) in [
            (now - 60_000, now),
            (now - 1_999, now),
            (now - 2_000, now - 1_000),
            (now - 30_000, now - 9_000),
            (0, i64::MAX),
            (now - 7_777, now - 7_777),
        ] {
            let mut want = 0i128;
            for (at, inc) in &log {
                for (i, a, b) in &segs {
                    let res = s.rollups[*i].spec.resolution_ms;
                    let bs = at.div_euclid(res) * res;
                    if *at >= *a && *at < *b && bs <= to && bs + res > from {
                        want += i128::from(*inc);
                    }
                }
            }
            assert_eq!(s.sum(now, from, to), want, "[{from}, {to}]");
        }
    }

    #[test]
    fn segments_split_on_coarse_edges() {
        let s = series("10s:1d,1h:90d");
        let now = 1_700_000_123_456;
        let segs = s.segments(now);
        assert_eq!(segs.len(), 2);
        let (_, fine_from, _) = segs[0];
        assert_eq!(fine_from % 3_600_000, 0, "the split is an hour edge");
        assert!(fine_from >= s.rollups[0].oldest_start(now));
        assert_eq!(segs[1].2, fine_from);
    }

    #[test]
    fn increments_check_age_and_future() {
        let mut s = series("1s:10s,10s:1m");
        let now = 1_000_000;
        assert_eq!(s.incr(now, now, 5, true), Ok(Some(5)));
        assert_eq!(
            s.incr(now, now + 1_999, 1, true),
            Ok(Some(1)),
            "next finest bucket is fine"
        );
        assert_eq!(s.incr(now, now + 2_000, 1, true), Err(IncrError::TooNew));
        // Older than the finest retention, inside the coarser: only the coarser counts it.
        assert_eq!(s.incr(now, now - 30_000, 2, true), Ok(Some(2)));
        assert_eq!(s.rollups[0].store.sum(i64::MIN, i64::MAX), 6);
        assert_eq!(s.incr(now, now - 70_000, 1, true), Err(IncrError::TooOld));
        assert_eq!(
            s.incr(now, now - 70_000, 1, false),
            Ok(None),
            "replay: no-op"
        );
        assert_eq!(s.incr(now, now, i64::MAX, true), Err(IncrError::Overflow));
        assert_eq!(s.sum(now, i64::MIN, i64::MAX), 8);
    }

    #[test]
    fn expiry_follows_the_newest_bucket() {
        let mut s = series("1s:10s,10s:1m");
        s.incr(1_000_500, 1_000_500, 1, true).unwrap();
        // Coarse bucket 100 (1,000,000..1,010,000) is retained while it is among the last 6.
        assert_eq!(s.expire_at_ms, Some((100 + 6) * 10_000));
        // Back-fill never moves the expiry earlier.
        s.incr(1_000_500, 999_000, 1, true).unwrap();
        assert_eq!(s.expire_at_ms, Some(1_060_000));
    }

    #[test]
    fn retention_drops_old_buckets() {
        let mut s = series("1s:3s");
        s.incr(10_000, 10_000, 1, true).unwrap();
        s.incr(20_000, 20_000, 1, true).unwrap();
        assert_eq!(s.rollups[0].store.used(), 1, "the old bucket was trimmed");
        assert_eq!(s.sum(20_000, i64::MIN, i64::MAX), 1);
        // Reads ignore what the wall clock no longer retains even before a write trims it.
        assert_eq!(s.sum(30_000, i64::MIN, i64::MAX), 0);
    }

    #[test]
    fn ranges_are_zero_filled_and_step_checked() {
        let mut s = series("1s:10s,10s:1m");
        let now = 100_000;
        s.incr(now, 95_500, 2, true).unwrap();
        s.incr(now, 97_100, 3, true).unwrap();
        let r = s.range(now, 95_000, 98_999, None, 100).unwrap();
        assert_eq!(r, vec![(95_000, 2), (96_000, 0), (97_000, 3), (98_000, 0)]);
        let r = s.range(now, 95_000, 98_999, Some(2_000), 100).unwrap();
        assert_eq!(r, vec![(94_000, 2), (96_000, 3), (98_000, 0)]);
        assert_eq!(
            s.range(now, 95_000, 98_999, Some(1_500), 100),
            Err(RangeError::BadStep)
        );
        assert_eq!(
            s.range(now, 0, 99_999, None, 4).err(),
            Some(RangeError::TooManyPoints(5))
        );
        // From beyond the finest retention: the coarser rollup answers.
        let r = s.range(now, 50_000, 99_999, None, 100).unwrap();
        assert_eq!(r.first(), Some(&(50_000, 0)));
        assert_eq!(r.iter().map(|p| p.1).sum::<i64>(), 5);
    }
}
