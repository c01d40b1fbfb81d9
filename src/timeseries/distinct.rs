//! A distinct-count series: rollups exactly like a counting series (same specs, aligned
//! buckets, segments, retention, expiry: all from [`super::layout`]), each bucket a
//! HyperLogLog [`Sketch`] bit-compatible with Redis's. Pure: the clock (`now`, Unix ms) is
//! passed in.
//!
//! A rollup's buckets are a `Vec<(index, Sketch)>` sorted by index, holding only buckets
//! that received a member (a sketch is never empty). Buckets are mostly appended at the end
//! (writes go to the current bucket); a back-fill inserts. 40 bytes a bucket plus the
//! sketch's own heap (3 bytes a register while sparse, 12,288 once dense).

use super::hll::{Registers, Sketch};
use super::layout::{self, bucket_of, AtError, RangeError};
use super::spec::RollupSpec;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinctRollup {
    pub spec: RollupSpec,
    /// Non-empty sketches by bucket index, strictly increasing.
    pub buckets: Vec<(i64, Sketch)>,
    /// Newest bucket index ever written: drives the key's expiry.
    pub newest: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinctSeries {
    pub rollups: Vec<DistinctRollup>,
    /// Absolute Unix ms after which no rollup retains anything written so far.
    pub expire_at_ms: Option<i64>,
}

impl DistinctRollup {
    fn position(&self, idx: i64) -> Result<usize, usize> {
        self.buckets.binary_search_by_key(&idx, |b| b.0)
    }

    /// The sketch of bucket `idx`, if it holds any member.
    pub fn get(&self, idx: i64) -> Option<&Sketch> {
        self.position(idx)
            .ok()
            .and_then(|i| self.buckets.get(i))
            .map(|b| &b.1)
    }

    /// Drop every bucket before `min_idx`.
    pub fn trim_before(&mut self, min_idx: i64) {
        let cut = self.buckets.partition_point(|b| b.0 < min_idx);
        self.buckets.drain(..cut);
    }

    /// The sketch of bucket `idx`, created empty if missing (the caller adds to it at once).
    fn slot(&mut self, idx: i64, sparse_max_bytes: usize) -> Option<&mut Sketch> {
        let at = match self.position(idx) {
            Ok(at) => at,
            Err(at) => {
                // Grow by half (at least one), not by doubling: a bucket is 40 bytes, and
                // a series with one bucket a rollup should not pay for four.
                if self.buckets.len() == self.buckets.capacity() {
                    self.buckets.reserve_exact((self.buckets.len() / 2).max(1));
                }
                self.buckets
                    .insert(at, (idx, Sketch::new(sparse_max_bytes)));
                at
            }
        };
        self.buckets.get_mut(at).map(|b| &mut b.1)
    }

    /// Buckets with index in `lo..=hi`, in order.
    pub fn range(&self, lo: i64, hi: i64) -> &[(i64, Sketch)] {
        if hi < lo {
            return &[];
        }
        let a = self.buckets.partition_point(|b| b.0 < lo);
        let b = self.buckets.partition_point(|b| b.0 <= hi);
        self.buckets.get(a..b.max(a)).unwrap_or(&[])
    }

    pub fn heap_bytes(&self) -> usize {
        self.buckets.iter().map(|b| b.1.heap_bytes()).fold(
            self.buckets
                .capacity()
                .saturating_mul(std::mem::size_of::<(i64, Sketch)>()),
            usize::saturating_add,
        )
    }

    /// How many buckets are dense.
    pub fn dense_buckets(&self) -> usize {
        self.buckets.iter().filter(|b| !b.1.is_sparse()).count()
    }
}

impl DistinctSeries {
    pub fn new(specs: &[RollupSpec]) -> Self {
        DistinctSeries {
            rollups: specs
                .iter()
                .map(|s| DistinctRollup {
                    spec: *s,
                    buckets: Vec::new(),
                    newest: None,
                })
                .collect(),
            expire_at_ms: None,
        }
    }

    pub fn specs(&self) -> Vec<RollupSpec> {
        self.rollups.iter().map(|r| r.spec).collect()
    }

    /// Add `members` at time `at` to every rollup that retains it at `now`. With `check`
    /// (the master), out-of-range `at` is an error and nothing changes; replaying an effect
    /// (`check == false`) applies what still fits. `Ok(Some(changed))`: whether the finest
    /// retaining rollup's sketch changed (`PFADD`'s reply); `Ok(None)`: nothing retains `at`
    /// (replay only). New sketches start sparse under `sparse_max_bytes`.
    pub fn add<'m>(
        &mut self,
        now: i64,
        at: i64,
        members: impl Iterator<Item = &'m [u8]> + Clone,
        check: bool,
        sparse_max_bytes: usize,
    ) -> Result<Option<bool>, AtError> {
        match layout::check_at(&self.specs(), now, at) {
            Ok(()) => {}
            Err(AtError::TooOld) if !check => return Ok(None),
            Err(AtError::TooNew) if !check => {}
            Err(e) => return Err(e),
        }
        let mut reply = None;
        for r in &mut self.rollups {
            let oldest = layout::oldest_idx(&r.spec, now);
            r.trim_before(oldest);
            let idx = bucket_of(at, r.spec.resolution_ms);
            if idx < oldest {
                continue;
            }
            let mut changed = false;
            if let Some(sketch) = r.slot(idx, sparse_max_bytes) {
                for m in members.clone() {
                    changed |= sketch.add(m);
                }
            }
            // No member: the bucket stays empty, and an empty bucket is no bucket.
            if let Ok(i) = r.position(idx) {
                if r.buckets.get(i).is_some_and(|b| b.1.is_empty()) {
                    r.buckets.remove(i);
                    continue;
                }
            }
            reply.get_or_insert(changed);
            r.newest = Some(r.newest.unwrap_or(idx).max(idx));
        }
        self.refresh_expiry();
        Ok(reply.or(Some(false)))
    }

    /// Merge `sketch` into bucket `idx` of rollup `which` (AOF rewrite replay). No checks
    /// beyond the sketch being non-empty.
    pub fn merge_bucket(&mut self, which: usize, idx: i64, sketch: &Sketch, sparse_max: usize) {
        if sketch.is_empty() {
            return;
        }
        if let Some(r) = self.rollups.get_mut(which) {
            if let Some(s) = r.slot(idx, sparse_max) {
                s.merge_from(sketch);
            }
            r.newest = Some(r.newest.unwrap_or(idx).max(idx));
        }
        self.refresh_expiry();
    }

    /// Recompute the expiry from the newest buckets; it never moves earlier.
    pub fn refresh_expiry(&mut self) {
        let derived = layout::derived_expiry(self.rollups.iter().map(|r| (r.spec, r.newest)));
        self.expire_at_ms = layout::next_expiry(self.expire_at_ms, derived);
    }

    /// Every sketch answering `[from, to]` at `now`, each part of time from the finest
    /// rollup retaining it (the same buckets `HACK.TSSUM` sums on a counting series).
    pub fn for_each_answering<'s>(
        &'s self,
        now: i64,
        from: i64,
        to: i64,
        mut f: impl FnMut(&'s Sketch),
    ) {
        if to < from {
            return;
        }
        for (i, seg_from, seg_until) in layout::segments(&self.specs(), now) {
            let Some(r) = self.rollups.get(i) else {
                continue;
            };
            let (lo, hi) = layout::segment_buckets(&r.spec, from, to, seg_from, seg_until);
            for (_, s) in r.range(lo, hi) {
                f(s);
            }
        }
    }

    /// Merge the sketches answering `[from, to]` into `acc` (a union across keys).
    pub fn merge_range(&self, now: i64, from: i64, to: i64, acc: &mut Registers) {
        self.for_each_answering(now, from, to, |s| s.merge_into(acc));
    }

    /// The distinct count over `[from, to]`: `PFCOUNT` of the union of the answering
    /// buckets. One bucket is counted as it is; more are merged into `acc` (cleared first).
    pub fn count(&self, now: i64, from: i64, to: i64, acc: &mut Registers) -> u64 {
        let mut first: Option<&Sketch> = None;
        let mut merged = false;
        self.for_each_answering(now, from, to, |s| match first {
            None => first = Some(s),
            Some(f) => {
                if !merged {
                    acc.clear();
                    f.merge_into(acc);
                    merged = true;
                }
                s.merge_into(acc);
            }
        });
        match (first, merged) {
            (None, _) => 0,
            (Some(s), false) => s.count(),
            (Some(_), true) => acc.count(),
        }
    }

    /// Zero-filled `(step_start, distinct count)` points for `[from, to]` from one rollup,
    /// chosen exactly as for a counting series ([`layout::pick_range`]).
    pub fn range(
        &self,
        now: i64,
        from: i64,
        to: i64,
        step: Option<i64>,
        max_points: i64,
    ) -> Result<Vec<(i64, u64)>, RangeError> {
        let Some(plan) = layout::pick_range(&self.specs(), now, from, to, step, max_points)? else {
            return Ok(vec![]);
        };
        let Some(pick) = self.rollups.get(plan.rollup) else {
            return Ok(vec![]);
        };
        let mut points: Vec<(i64, u64)> = (0..plan.count as i64)
            .map(|k| (plan.first.saturating_add(k.saturating_mul(plan.step)), 0))
            .collect();
        let res = pick.spec.resolution_ms;
        let buckets = pick.range(plan.lo, plan.hi);
        let mut acc: Option<Registers> = None;
        let mut i = 0usize;
        // Buckets are in index order, so each point's buckets are one run.
        while let Some((idx, first)) = buckets.get(i) {
            let point = layout::point_of(&plan, *idx, res);
            let run = buckets
                .get(i..)
                .unwrap_or(&[])
                .iter()
                .take_while(|(j, _)| layout::point_of(&plan, *j, res) == point)
                .count()
                .max(1);
            let n = if run == 1 {
                first.count()
            } else {
                let acc = acc.get_or_insert_with(Registers::new);
                acc.clear();
                for (_, s) in buckets.get(i..i.saturating_add(run)).unwrap_or(&[]) {
                    s.merge_into(acc);
                }
                acc.count()
            };
            if let Some(p) = point.and_then(|k| points.get_mut(k)) {
                p.1 = n;
            }
            i = i.saturating_add(run);
        }
        Ok(points)
    }

    pub fn heap_bytes(&self) -> usize {
        self.rollups.iter().map(|r| r.heap_bytes()).fold(
            self.rollups
                .capacity()
                .saturating_mul(std::mem::size_of::<DistinctRollup>()),
            usize::saturating_add,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeseries::spec::parse_list;

    fn series(spec: &str) -> DistinctSeries {
        DistinctSeries::new(&parse_list(spec.as_bytes()).unwrap())
    }

    fn add(
        s: &mut DistinctSeries,
        now: i64,
        at: i64,
        members: &[&str],
    ) -> Result<Option<bool>, AtError> {
        s.add(now, at, members.iter().map(|m| m.as_bytes()), true, 3000)
    }

    /// The model: every (time, member); a count is the HLL of the members whose bucket (in
    /// the rollup answering their time, per `segments`) overlaps [from, to].
    #[test]
    fn counts_match_a_model_across_rollups() {
        let mut s = series("100ms:2s,1s:10s,5s:1m");
        let mut log: Vec<(i64, String)> = vec![];
        let mut x: u64 = 777;
        let mut now = 100_000;
        for _ in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            now += (x % 40) as i64;
            let back = (x >> 8) % 70_000;
            let at = now - back as i64;
            let m = format!("u{}", (x >> 30) % 500);
            match add(&mut s, now, at, &[&m]) {
                Ok(_) => log.push((at, m)),
                Err(AtError::TooOld) => assert!(back >= 55_000, "{back}"),
                Err(e) => panic!("{e:?}"),
            }
        }
        let segs = s.segments_for_test(now);
        let mut acc = Registers::new();
        for (from, to) in [
            (now - 60_000, now),
            (now - 1_999, now),
            (now - 2_000, now - 1_000),
            (now - 30_000, now - 9_000),
            (0, i64::MAX),
            (now - 7_777, now - 7_777),
        ] {
            let mut want = Sketch::new(3000);
            for (at, m) in &log {
                for (i, a, b) in &segs {
                    let res = s.rollups[*i].spec.resolution_ms;
                    let bs = at.div_euclid(res) * res;
                    if *at >= *a
                        && *at < *b
                        && bs <= to
                        && bs + res > from
                        && bs
                            >= s.rollups[*i].spec.resolution_ms
                                * layout::oldest_idx(&s.rollups[*i].spec, now)
                    {
                        want.add(m.as_bytes());
                    }
                }
            }
            assert_eq!(
                s.count(now, from, to, &mut acc),
                want.count(),
                "[{from}, {to}]"
            );
        }
    }

    impl DistinctSeries {
        fn segments_for_test(&self, now: i64) -> Vec<(usize, i64, i64)> {
            layout::segments(&self.specs(), now)
        }
    }

    #[test]
    fn adds_check_age_and_future_and_reply_like_pfadd() {
        let mut s = series("1s:10s,10s:1m");
        let now = 1_000_000;
        assert_eq!(add(&mut s, now, now, &["a", "b"]), Ok(Some(true)));
        assert_eq!(
            add(&mut s, now, now, &["a"]),
            Ok(Some(false)),
            "no register changed"
        );
        assert_eq!(add(&mut s, now, now + 1_999, &["c"]), Ok(Some(true)));
        assert_eq!(add(&mut s, now, now + 2_000, &["c"]), Err(AtError::TooNew));
        // Older than the finest retention, inside the coarser: only the coarser takes it.
        assert_eq!(add(&mut s, now, now - 30_000, &["z"]), Ok(Some(true)));
        assert_eq!(s.rollups[0].buckets.len(), 2);
        assert_eq!(add(&mut s, now, now - 70_000, &["q"]), Err(AtError::TooOld));
        assert_eq!(
            s.add(
                now,
                now - 70_000,
                [b"q".as_slice()].into_iter(),
                false,
                3000
            ),
            Ok(None),
            "replay: no-op"
        );
        let mut acc = Registers::new();
        assert_eq!(s.count(now, i64::MIN, i64::MAX, &mut acc), 4);
    }

    #[test]
    fn expiry_follows_the_newest_bucket_and_retention_drops() {
        let mut s = series("1s:3s");
        add(&mut s, 10_000, 10_000, &["a"]).unwrap();
        assert_eq!(s.expire_at_ms, Some(13_000));
        add(&mut s, 20_000, 20_000, &["b"]).unwrap();
        assert_eq!(s.rollups[0].buckets.len(), 1, "the old bucket was trimmed");
        let mut acc = Registers::new();
        assert_eq!(s.count(20_000, i64::MIN, i64::MAX, &mut acc), 1);
        assert_eq!(s.count(30_000, i64::MIN, i64::MAX, &mut acc), 0);
    }

    #[test]
    fn ranges_count_each_step() {
        let mut s = series("1s:10s,10s:1m");
        let now = 100_000;
        add(&mut s, now, 95_500, &["a", "b"]).unwrap();
        add(&mut s, now, 97_100, &["a", "c", "d"]).unwrap();
        let r = s.range(now, 95_000, 98_999, None, 100).unwrap();
        assert_eq!(r, vec![(95_000, 2), (96_000, 0), (97_000, 3), (98_000, 0)]);
        let r = s.range(now, 95_000, 98_999, Some(2_000), 100).unwrap();
        assert_eq!(r, vec![(94_000, 2), (96_000, 3), (98_000, 0)]);
        let r = s.range(now, 90_000, 99_999, Some(10_000), 100).unwrap();
        assert_eq!(r, vec![(90_000, 4)]);
        assert_eq!(
            s.range(now, 95_000, 98_999, Some(1_500), 100),
            Err(RangeError::BadStep)
        );
    }

    #[test]
    fn a_few_members_cost_tens_of_bytes() {
        let mut s = series("10s:1h");
        add(&mut s, 100_000, 100_000, &["a", "b", "c"]).unwrap();
        let bucket = s.rollups[0].heap_bytes();
        assert!(bucket <= 64, "{bucket}");
    }
}
