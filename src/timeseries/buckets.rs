//! One rollup's buckets, addressed by bucket index (`bucket_start / resolution`).
//!
//! Two layouts, whichever is smaller for the buckets in use:
//! - dense: a ring (`VecDeque<i64>`) covering every index from `first` on: 8 bytes a bucket,
//!   O(1) to add anywhere in the window, sums over contiguous memory;
//! - sparse: `(index, value)` pairs sorted by index: 16 bytes a used bucket, for series whose
//!   few buckets are spread out (e.g. a back-fill far from the rest).
//!
//! A bucket whose value is 0 is the same as no bucket (sparse drops it), so both layouts hold
//! the same data whichever one a server happens to use.
//!
//! Overflow: bucket indexes are `i64`, and offsets between them are computed with saturating
//! arithmetic. A saturated offset is beyond any window this store can hold, so it selects
//! exactly the same (no) buckets as the exact value would; within a window every offset is
//! exact. Bucket values are only ever added after the caller's `checked_add`, hence
//! `wrapping_add` there.

use std::collections::VecDeque;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    Sparse(Vec<(i64, i64)>),
    /// `nonzero` counts the non-zero values, kept up to date so choosing a layout is O(1).
    Dense {
        first: i64,
        values: VecDeque<i64>,
        nonzero: usize,
    },
}

impl Default for Store {
    fn default() -> Self {
        Store::Sparse(Vec::new())
    }
}

impl Store {
    pub fn get(&self, idx: i64) -> i64 {
        match self {
            Store::Sparse(v) => v
                .binary_search_by_key(&idx, |e| e.0)
                .map_or(0, |i| v.get(i).map_or(0, |e| e.1)),
            Store::Dense { first, values, .. } => usize::try_from(idx.saturating_sub(*first))
                .ok()
                .and_then(|o| values.get(o).copied())
                .unwrap_or(0),
        }
    }

    /// Add `inc` to bucket `idx`; the caller checked for overflow with [`Store::get`].
    /// `capacity` is the most buckets the rollup retains (caps the dense window).
    pub fn add(&mut self, idx: i64, inc: i64, capacity: i64) {
        // The dense window may only grow to what its buckets justify: a far bucket (a
        // back-fill a year away at 1 ms resolution, a crafted RESTORE) turns the store sparse
        // first, so memory follows the buckets in use, never the distance between them.
        if inc != 0
            && self
                .dense_span_with(idx)
                .is_some_and(|span| span > dense_limit(self.used().saturating_add(1)))
        {
            self.make_sparse();
        }
        match self {
            Store::Sparse(v) => match v.binary_search_by_key(&idx, |e| e.0) {
                Ok(i) => {
                    if let Some(e) = v.get_mut(i) {
                        e.1 = e.1.wrapping_add(inc);
                        if e.1 == 0 {
                            v.remove(i);
                        }
                    }
                }
                Err(i) if inc != 0 => v.insert(i, (idx, inc)),
                Err(_) => {}
            },
            Store::Dense {
                first,
                values,
                nonzero,
            } => {
                if values.is_empty() {
                    *first = idx;
                }
                if idx < *first {
                    let grow = usize::try_from(first.saturating_sub(idx)).unwrap_or(0);
                    reserve_capped(values, grow, capacity);
                    for _ in 0..grow {
                        values.push_front(0);
                    }
                    *first = idx;
                }
                let off = usize::try_from(idx.saturating_sub(*first)).unwrap_or(0);
                if off >= values.len() {
                    let new_len = off.saturating_add(1);
                    reserve_capped(values, new_len.saturating_sub(values.len()), capacity);
                    values.resize(new_len, 0);
                }
                if let Some(slot) = values.get_mut(off) {
                    let old = *slot;
                    *slot = old.wrapping_add(inc);
                    match (old == 0, *slot == 0) {
                        (true, false) => *nonzero = nonzero.saturating_add(1),
                        // `old` was non-zero, so it was counted.
                        (false, true) => *nonzero = nonzero.saturating_sub(1),
                        _ => {}
                    }
                }
            }
        }
        self.relayout(capacity);
    }

    /// The dense window's length once it also covers `idx` (`None` when sparse or empty).
    fn dense_span_with(&self, idx: i64) -> Option<i64> {
        match self {
            Store::Dense { first, values, .. } if !values.is_empty() => {
                let last = first.saturating_add(values.len() as i64).saturating_sub(1);
                Some(
                    last.max(idx)
                        .saturating_sub((*first).min(idx))
                        .saturating_add(1),
                )
            }
            _ => None,
        }
    }

    fn make_sparse(&mut self) {
        if let Store::Dense {
            first,
            values,
            nonzero,
        } = self
        {
            let mut v = Vec::with_capacity(*nonzero);
            for (k, val) in values.iter().enumerate() {
                if *val != 0 {
                    v.push((first.saturating_add(k as i64), *val));
                }
            }
            *self = Store::Sparse(v);
        }
    }

    /// Drop every bucket before `min_idx`.
    pub fn trim_before(&mut self, min_idx: i64) {
        match self {
            Store::Sparse(v) => {
                let cut = v.partition_point(|e| e.0 < min_idx);
                v.drain(..cut);
            }
            Store::Dense {
                first,
                values,
                nonzero,
            } => {
                // Two i64 widened: the difference is exact.
                let cut = usize::try_from(i128::from(min_idx).saturating_sub(i128::from(*first)))
                    .unwrap_or(0)
                    .min(values.len());
                let dropped = values.drain(..cut).filter(|v| *v != 0).count();
                *nonzero = nonzero.saturating_sub(dropped);
                // `first + cut <= min_idx` and each popped front is a held index: no overflow.
                *first = first.saturating_add(cut as i64);
                while values.front() == Some(&0) {
                    values.pop_front();
                    *first = first.saturating_add(1);
                }
                while values.back() == Some(&0) {
                    values.pop_back();
                }
                if values.is_empty() {
                    *first = 0;
                }
            }
        }
    }

    /// Sum of buckets `lo..=hi`, in O(buckets in range).
    pub fn sum(&self, lo: i64, hi: i64) -> i128 {
        if hi < lo {
            return 0;
        }
        match self {
            Store::Sparse(v) => {
                let a = v.partition_point(|e| e.0 < lo);
                let b = v.partition_point(|e| e.0 <= hi);
                v.get(a..b)
                    .map_or(0, |s| s.iter().map(|e| i128::from(e.1)).sum())
            }
            Store::Dense { first, values, .. } => {
                let (a, b) = window(*first, values.len(), lo, hi);
                let (head, tail) = values.as_slices();
                let split = head.len();
                let part = |s: &[i64], from: usize, to: usize| s.get(from..to).map_or(0, wide_sum);
                // Two sums of in-memory i64s cannot approach the i128 range.
                part(head, a.min(split), b.min(split)).saturating_add(part(
                    tail,
                    a.max(split).saturating_sub(split),
                    b.max(split).saturating_sub(split),
                ))
            }
        }
    }

    /// Non-zero buckets with index in `lo..=hi`, in order.
    pub fn each(&self, lo: i64, hi: i64, mut f: impl FnMut(i64, i64)) {
        match self {
            Store::Sparse(v) => {
                let a = v.partition_point(|e| e.0 < lo);
                for (i, val) in v.iter().skip(a).take_while(|e| e.0 <= hi) {
                    f(*i, *val);
                }
            }
            Store::Dense { first, values, .. } => {
                let (a, b) = window(*first, values.len(), lo, hi);
                for (k, v) in values.range(a..b).enumerate() {
                    if *v != 0 {
                        // A held bucket's index: it fits i64.
                        f(first.saturating_add(a as i64).saturating_add(k as i64), *v);
                    }
                }
            }
        }
    }

    /// Non-zero buckets in use.
    pub fn used(&self) -> usize {
        match self {
            Store::Sparse(v) => v.len(),
            Store::Dense { nonzero, .. } => *nonzero,
        }
    }

    /// First and last non-zero bucket index.
    pub fn bounds(&self) -> Option<(i64, i64)> {
        let mut first = None;
        let mut last = None;
        self.each(i64::MIN, i64::MAX, |i, _| {
            first.get_or_insert(i);
            last = Some(i);
        });
        first.zip(last)
    }

    pub fn is_dense(&self) -> bool {
        matches!(self, Store::Dense { .. })
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            Store::Sparse(v) => v.capacity().saturating_mul(16),
            Store::Dense { values, .. } => values.capacity().saturating_mul(8),
        }
    }

    /// Go dense once dense is no bigger (the window at most twice the used buckets); go
    /// sparse only once sparse takes under half of dense (window over four times the used
    /// buckets). The gap keeps a series from flipping back and forth.
    fn relayout(&mut self, capacity: i64) {
        match self {
            Store::Sparse(v) => {
                let (Some(a), Some(b)) = (v.first(), v.last()) else {
                    return;
                };
                // Saturates only for spans far beyond any capacity (which stay sparse).
                let span = b.0.saturating_sub(a.0).saturating_add(1);
                if span <= capacity
                    && span.saturating_mul(8) <= (v.len() as i64).saturating_mul(16)
                    && v.len() >= 4
                {
                    let first = a.0;
                    let mut values = VecDeque::with_capacity(span as usize);
                    values.resize(span as usize, 0);
                    for (i, val) in v.iter() {
                        if let Some(slot) = values.get_mut(i.saturating_sub(first) as usize) {
                            *slot = *val;
                        }
                    }
                    *self = Store::Dense {
                        first,
                        values,
                        nonzero: v.len(),
                    };
                }
            }
            Store::Dense {
                values, nonzero, ..
            } => {
                if values.len() as i64 > dense_limit(*nonzero) {
                    self.make_sparse();
                }
            }
        }
    }

    /// Start from scratch in dense layout (for loading known-dense data).
    pub fn dense() -> Self {
        Store::Dense {
            first: 0,
            values: VecDeque::new(),
            nonzero: 0,
        }
    }
}

/// Longest dense window `used` buckets may keep: four times their count (sparse then takes
/// under half of dense), and at least 8, so small series do not flip layouts.
fn dense_limit(used: usize) -> i64 {
    (used as i64).saturating_mul(4).max(8)
}

/// Exact sum of `i64`s as `i128`, fast: the high and low 32-bit halves are summed separately
/// in `i64` (vectorizable) over chunks small enough that neither can overflow.
fn wide_sum(values: &[i64]) -> i128 {
    values
        .chunks(1 << 20)
        .map(|c| {
            let hi: i64 = c.iter().map(|v| v >> 32).sum();
            let lo: i64 = c.iter().map(|v| v & 0xffff_ffff).sum();
            (i128::from(hi) << 32).saturating_add(i128::from(lo))
        })
        .sum()
}

/// Offsets `a..b` of a dense window starting at index `first` that fall in `lo..=hi`
/// (computed wide, so `lo = i64::MIN` or `hi = i64::MAX` cannot overflow).
fn window(first: i64, len: usize, lo: i64, hi: i64) -> (usize, usize) {
    let len = len as i128;
    let a = i128::from(lo)
        .saturating_sub(i128::from(first))
        .clamp(0, len);
    let b = i128::from(hi)
        .saturating_sub(i128::from(first))
        .saturating_add(1)
        .clamp(0, len);
    (a as usize, b.max(a) as usize)
}

/// Grow by at least `extra`, doubling as usual but never past the rollup's capacity, so a
/// full rollup costs 8 bytes a bucket and not up to twice that.
fn reserve_capped(values: &mut VecDeque<i64>, extra: usize, capacity: i64) {
    let need = values.len().saturating_add(extra);
    if need <= values.capacity() {
        return;
    }
    let cap = usize::try_from(capacity).unwrap_or(usize::MAX).max(need);
    let target = values.capacity().saturating_mul(2).max(need).min(cap);
    values.reserve_exact(target.saturating_sub(values.len()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(layout: Store, entries: &[(i64, i64)], cap: i64) -> Store {
        let mut s = layout;
        for (i, v) in entries {
            s.add(*i, *v, cap);
        }
        s
    }

    #[test]
    fn both_layouts_agree() {
        let entries = [
            (10, 1),
            (12, 5),
            (10, 2),
            (11, -1),
            (30, 7),
            (12, -5),
            (9, 4),
        ];
        for layout in [Store::default(), Store::dense()] {
            let s = filled(layout, &entries, 1000);
            assert_eq!(s.get(10), 3);
            assert_eq!(s.get(12), 0);
            assert_eq!(s.sum(9, 11), 6);
            assert_eq!(s.sum(0, 100), 13);
            assert_eq!(s.sum(31, 100), 0);
            assert_eq!(s.sum(12, 11), 0);
            let mut seen = vec![];
            s.each(0, 100, |i, v| seen.push((i, v)));
            assert_eq!(seen, vec![(9, 4), (10, 3), (11, -1), (30, 7)]);
            assert_eq!(s.bounds(), Some((9, 30)));
        }
    }

    #[test]
    fn dense_when_full_sparse_when_spread() {
        let mut s = Store::default();
        for i in 0..8640 {
            s.add(i, 1, 8640);
        }
        assert!(s.is_dense());
        assert_eq!(
            s.heap_bytes(),
            8640 * 8,
            "a full rollup costs 8 bytes a bucket"
        );
        assert_eq!(s.sum(0, 8639), 8640);
        let mut t = Store::default();
        t.add(0, 1, 8640);
        t.add(8000, 1, 8640);
        assert!(!t.is_dense(), "two spread buckets stay sparse");
        assert!(t.heap_bytes() <= 64);
    }

    #[test]
    fn wide_sums_are_exact() {
        let v = [i64::MAX, i64::MAX, i64::MIN, -1, 5, -(1 << 40)];
        let want: i128 = v.iter().map(|x| i128::from(*x)).sum();
        assert_eq!(wide_sum(&v), want);
        let mut s = Store::dense();
        for (i, x) in v.iter().enumerate() {
            s.add(i as i64, *x, 100);
        }
        assert_eq!(s.sum(0, 5), want);
        assert_eq!(s.sum(1, 3), want - i128::from(i64::MAX) - 5 + (1 << 40));
    }

    #[test]
    fn trim_drops_old_buckets() {
        for layout in [Store::default(), Store::dense()] {
            let mut s = filled(layout, &[(1, 1), (2, 2), (5, 5)], 100);
            s.trim_before(2);
            assert_eq!(s.sum(0, 10), 7);
            s.trim_before(6);
            assert_eq!(s.sum(0, 10), 0);
            assert_eq!(s.bounds(), None);
        }
    }

    /// The dense window never grows with the distance to a far bucket: four near buckets
    /// then one a year away at 1 ms resolution (an OOM abort of the server before).
    #[test]
    fn far_buckets_never_grow_the_window() {
        let cap = 100 * 365 * 86_400_000;
        let year = 365 * 86_400_000;
        for layout in [Store::default(), Store::dense()] {
            let mut s = layout;
            let now = 1_700_000_000_000i64;
            for k in 7..=10 {
                s.add(now - k, 1, cap);
            }
            s.add(now - year, 1, cap);
            s.add(now + 1, 1, cap);
            s.add(now - 2 * year, 1, cap);
            for k in 0..50 {
                // Alternate far and near.
                s.add(if k % 2 == 0 { now - year - k } else { now - k }, 1, cap);
            }
            assert!(
                s.heap_bytes() <= 64 * s.used() + 256,
                "{} bytes for {} buckets",
                s.heap_bytes(),
                s.used()
            );
            assert_eq!(s.sum(i64::MIN, i64::MAX), 57);
            assert_eq!(s.get(now - year), 2);
        }
    }
}
