//! [`Sketch`]: one HyperLogLog, sparse while small, dense past a byte bound.
//!
//! # Layouts
//!
//! - **Sparse**: [`Entries`], the non-zero registers sorted by index, each `index << 8 |
//!   value` packed in 3 bytes (see `entries.rs`). 3 bytes a set register. `add` is a binary
//!   search (O(log n)) and, for a new register, an insert (a memmove of at most the bound).
//!   Redis's run-length opcodes (`ZERO`/`XZERO`/`VAL`) are denser for medium sets (about 1.9
//!   bytes a member at 1000 members against 3 here) but every update is a linear scan that
//!   may split one opcode into up to five, with values capped at 32; the pairs are simpler to
//!   get right, to validate (sorted, no duplicate, value 1..=51) and faster to update, and
//!   for the small buckets a time series mostly holds (a handful of members) both cost the
//!   same tens of bytes. The vector grows by an eighth (never past the bound), not by
//!   doubling, so its slack stays within about 12 %.
//! - **Dense**: the 16384 registers 6-bit packed, 12288 bytes, in exactly Redis's dense
//!   layout. A plain `[u8; 16384]` would make `add` a byte store instead of a 3-byte
//!   read-modify-write and `count` a little faster, but costs 4 KB (33 %) more for every
//!   dense bucket, and a series holds many buckets; the packed form keeps both O(1)/O(m)
//!   and lets [`Sketch::to_redis_dense`] hand out a string Redis's `PFCOUNT` reads as is.
//!   Unions, which are transient, use the plain [`Registers`] accumulator instead.
//!
//! A sketch starts sparse and turns dense when one more sparse entry would take it past
//! `sparse_max_bytes` (the caller's bound, like Redis's `hll-sparse-max-bytes`, default
//! 3000; a bound above 12288 is taken as 12288, where dense becomes the smaller). It never
//! turns back: registers only grow.
//!
//! # The value is the registers
//!
//! The layout is not part of the value: two sketches with the same registers are equal
//! whatever their layouts, [`Sketch::count`] depends only on the registers, and
//! [`Sketch::to_bytes`] is a function of the registers only (it chooses its encoding from
//! the number of non-zero registers, not from the layout in memory), so saving a sparse
//! sketch and a dense one with the same registers gives the same bytes. The bound is a
//! setting of the holder, not part of the value: it is not saved, and
//! [`Sketch::from_bytes`] takes it again.
//!
//! # Serialization (RDB)
//!
//! One tag byte, then:
//! - `1` (sparse): 3 bytes a non-zero register, in increasing index order, each the
//!   little-endian 24-bit `index | value << 14` (bits 20..23 zero); used for fewer than 4096
//!   non-zero registers (the empty sketch is the single byte `1`);
//! - `2` (dense): the 12288 packed bytes; used for 4096 non-zero registers or more.
//!
//! `from_bytes` accepts exactly what `to_bytes` produces and nothing else (so
//! `from_bytes(b)?.to_bytes() == b`): a wrong tag or length, a value above 51 (or 0 in a
//! sparse entry), unsorted or duplicate indexes, stray bits, or the encoding not chosen for
//! that number of registers all give `None`. It never panics and allocates at most 4/3 of
//! the input's length, plus 12288 bytes when the result is dense (a valid sparse payload
//! with more entries than the holder's bound, or a dense payload).

use super::entries::Entries;
use super::estimate::{estimate, Histogram};
use super::registers::{
    packed_get, packed_histogram, packed_iter, packed_set_max, pattern, Registers, DENSE_BYTES,
    MAX_VALUE, REGISTERS,
};

/// Redis's default `hll-sparse-max-bytes`.
pub const DEFAULT_SPARSE_MAX_BYTES: usize = 3000;

/// Past this a sparse form would be bigger than the dense one.
const SPARSE_MAX_BYTES_CAP: usize = DENSE_BYTES;
/// Bytes a sparse entry takes in memory.
const SPARSE_ENTRY_BYTES: usize = super::entries::ENTRY_BYTES;

const TAG_SPARSE: u8 = 1;
const TAG_DENSE: u8 = 2;
/// Bytes a non-zero register takes in the sparse serialization.
const SERIAL_ENTRY_BYTES: usize = 3;
/// From this many non-zero registers on, the dense serialization is not bigger.
const SERIAL_DENSE_FROM: usize = DENSE_BYTES / SERIAL_ENTRY_BYTES;

fn entry(index: u16, value: u8) -> u32 {
    (u32::from(index) << 8) | u32::from(value)
}

fn entry_index(e: u32) -> u16 {
    // Exact: entries hold a 14-bit index above 8 bits of value.
    (e >> 8) as u16
}

fn entry_value(e: u32) -> u8 {
    (e & 0xff) as u8
}

#[derive(Clone)]
enum Repr {
    Sparse(Entries),
    Dense(Box<[u8; DENSE_BYTES]>),
}

/// A HyperLogLog sketch with Redis's registers, hash and estimator.
#[derive(Clone)]
pub struct Sketch {
    repr: Repr,
    /// The caller's bound on the sparse entries, in bytes, capped at 12288.
    sparse_max_bytes: usize,
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch::new(DEFAULT_SPARSE_MAX_BYTES)
    }
}

impl std::fmt::Debug for Sketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sketch")
            .field("sparse", &self.is_sparse())
            .field("nonzero", &self.nonzero())
            .field("sparse_max_bytes", &self.sparse_max_bytes)
            .finish()
    }
}

impl PartialEq for Sketch {
    /// Same registers, whatever the layouts.
    fn eq(&self, other: &Self) -> bool {
        match (&self.repr, &other.repr) {
            (Repr::Sparse(a), Repr::Sparse(b)) => a == b,
            (Repr::Dense(a), Repr::Dense(b)) => a == b,
            (Repr::Sparse(s), Repr::Dense(d)) | (Repr::Dense(d), Repr::Sparse(s)) => {
                sparse_eq_dense(s, d)
            }
        }
    }
}

impl Eq for Sketch {}

fn sparse_eq_dense(sparse: &Entries, dense: &[u8; DENSE_BYTES]) -> bool {
    let mut entries = sparse.iter().peekable();
    for (i, r) in packed_iter(dense).enumerate() {
        let expected = match entries.peek() {
            Some(&e) if usize::from(entry_index(e)) == i => {
                entries.next();
                entry_value(e)
            }
            _ => 0,
        };
        if r != expected {
            return false;
        }
    }
    entries.next().is_none()
}

/// Merge two sorted entry lists, keeping the larger value of a shared index.
fn merge_sorted(a: &Entries, b: &Entries) -> Entries {
    let mut out = Entries::with_capacity(a.len().saturating_add(b.len()));
    let mut ia = a.iter().peekable();
    let mut ib = b.iter().peekable();
    loop {
        match (ia.peek().copied(), ib.peek().copied()) {
            (Some(x), Some(y)) => {
                let (kx, ky) = (entry_index(x), entry_index(y));
                if kx <= ky {
                    ia.next();
                }
                if ky <= kx {
                    ib.next();
                }
                // Same index: the larger entry has the larger value.
                out.push(if kx == ky { x.max(y) } else { x.min(y) });
            }
            (Some(x), None) => {
                out.push(x);
                ia.next();
            }
            (None, Some(y)) => {
                out.push(y);
                ib.next();
            }
            (None, None) => break,
        }
    }
    out
}

impl Sketch {
    /// An empty sketch, sparse until its entries would exceed `sparse_max_bytes`.
    pub fn new(sparse_max_bytes: usize) -> Self {
        Sketch {
            repr: Repr::Sparse(Entries::default()),
            sparse_max_bytes: sparse_max_bytes.min(SPARSE_MAX_BYTES_CAP),
        }
    }

    /// The bound in force (the caller's, capped at 12288).
    pub fn sparse_max_bytes(&self) -> usize {
        self.sparse_max_bytes
    }

    fn max_entries(&self) -> usize {
        self.sparse_max_bytes / SPARSE_ENTRY_BYTES
    }

    /// Whether the sketch is in its sparse layout.
    pub fn is_sparse(&self) -> bool {
        matches!(self.repr, Repr::Sparse(_))
    }

    /// Whether every register is 0 (no member was added).
    pub fn is_empty(&self) -> bool {
        match &self.repr {
            Repr::Sparse(v) => v.is_empty(),
            Repr::Dense(d) => d.iter().all(|&b| b == 0),
        }
    }

    /// Add a member, as `PFADD` does; true if a register changed.
    pub fn add(&mut self, member: &[u8]) -> bool {
        let (index, value) = pattern(member);
        self.set_max(index, value)
    }

    /// Raise register `index` to `value` (at most 51) if it is below; true if it was.
    pub fn set_max(&mut self, index: u16, value: u8) -> bool {
        if usize::from(index) >= REGISTERS || value == 0 || value > MAX_VALUE {
            return false;
        }
        let max_entries = self.max_entries();
        match &mut self.repr {
            Repr::Dense(d) => return packed_set_max(d, usize::from(index), value),
            Repr::Sparse(v) => match v.search(index, entry_index) {
                Ok(at) => {
                    return match v.get(at) {
                        Some(e) if value > entry_value(e) => {
                            v.set(at, entry(index, value));
                            true
                        }
                        _ => false,
                    };
                }
                Err(at) if v.len() < max_entries => {
                    v.reserve_one(max_entries);
                    v.insert(at, entry(index, value));
                    return true;
                }
                Err(_) => {}
            },
        }
        // One more entry would pass the bound.
        self.promote();
        match &mut self.repr {
            Repr::Dense(d) => packed_set_max(d, usize::from(index), value),
            Repr::Sparse(_) => false,
        }
    }

    /// Turn dense (no-op if it is already).
    pub fn promote(&mut self) {
        if let Repr::Sparse(v) = &self.repr {
            let mut dense = Box::new([0u8; DENSE_BYTES]);
            for e in v.iter() {
                packed_set_max(&mut dense, usize::from(entry_index(e)), entry_value(e));
            }
            self.repr = Repr::Dense(dense);
        }
    }

    /// Register `index` (0 past the end).
    pub fn get(&self, index: usize) -> u8 {
        match &self.repr {
            Repr::Dense(d) => packed_get(d, index),
            Repr::Sparse(v) => {
                let Ok(index) = u16::try_from(index) else {
                    return 0;
                };
                v.search(index, entry_index)
                    .ok()
                    .and_then(|at| v.get(at))
                    .map_or(0, entry_value)
            }
        }
    }

    /// Call `f(index, value)` for every non-zero register, in index order.
    pub fn for_each_nonzero(&self, mut f: impl FnMut(u16, u8)) {
        match &self.repr {
            Repr::Sparse(v) => v.iter().for_each(|e| f(entry_index(e), entry_value(e))),
            Repr::Dense(d) => {
                for (i, r) in (0u16..).zip(packed_iter(d)) {
                    if r != 0 {
                        f(i, r);
                    }
                }
            }
        }
    }

    /// How many registers are not 0.
    pub fn nonzero(&self) -> usize {
        match &self.repr {
            Repr::Sparse(v) => v.len(),
            Repr::Dense(d) => packed_iter(d).filter(|&r| r != 0).count(),
        }
    }

    /// The register histogram: `h[v]` registers hold value `v`.
    pub fn histogram(&self) -> Histogram {
        match &self.repr {
            Repr::Dense(d) => packed_histogram(d),
            Repr::Sparse(v) => {
                let mut h: Histogram = [0; 64];
                for e in v.iter() {
                    if let Some(slot) = h.get_mut(usize::from(entry_value(e))) {
                        *slot = slot.wrapping_add(1);
                    }
                }
                // At most 3072 entries, all non-zero: the rest of the 16384 are 0.
                let zeros = REGISTERS.saturating_sub(v.len());
                if let Some(slot) = h.first_mut() {
                    *slot = u32::try_from(zeros).unwrap_or(0);
                }
                h
            }
        }
    }

    /// The estimated number of distinct members, exactly as `PFCOUNT` replies for a key
    /// that received the same members (see [`estimate`] for the one crafted-input caveat).
    pub fn count(&self) -> u64 {
        estimate(&self.histogram())
    }

    /// Raise `acc`'s registers to the max of theirs and this sketch's: a union, counted by
    /// [`Registers::count`] exactly as `PFCOUNT k1 k2 ...` counts it.
    pub fn merge_into(&self, acc: &mut Registers) {
        match &self.repr {
            Repr::Dense(d) => acc.merge_packed(d),
            Repr::Sparse(v) => {
                for e in v.iter() {
                    acc.set_max(usize::from(entry_index(e)), entry_value(e));
                }
            }
        }
    }

    /// Make this sketch the union of itself and `other`; true if a register changed.
    pub fn merge_from(&mut self, other: &Sketch) -> bool {
        if let (Repr::Sparse(a), Repr::Sparse(b)) = (&self.repr, &other.repr) {
            let merged = merge_sorted(a, b);
            if merged == *a {
                return false;
            }
            if merged.len() <= self.max_entries() {
                let mut merged = merged;
                merged.shrink_to_fit();
                self.repr = Repr::Sparse(merged);
                return true;
            }
            self.promote();
        }
        let mut changed = false;
        other.for_each_nonzero(|i, v| changed |= self.set_max(i, v));
        changed
    }

    /// Bytes this sketch holds on the heap (add `size_of::<Sketch>()` for the whole).
    pub fn heap_bytes(&self) -> usize {
        match &self.repr {
            Repr::Sparse(v) => v.capacity_bytes(),
            Repr::Dense(_) => DENSE_BYTES,
        }
    }

    /// The packed registers (Redis's dense payload), whatever the layout.
    pub fn to_packed(&self) -> Box<[u8; DENSE_BYTES]> {
        match &self.repr {
            Repr::Dense(d) => d.clone(),
            Repr::Sparse(v) => {
                let mut dense = Box::new([0u8; DENSE_BYTES]);
                for e in v.iter() {
                    packed_set_max(&mut dense, usize::from(entry_index(e)), entry_value(e));
                }
                dense
            }
        }
    }

    /// A Redis HLL string in the dense encoding (`"HYLL"`, encoding 0, 3 unused bytes, the
    /// cached cardinality marked stale, the packed registers): `SET k <it>` then
    /// `PFCOUNT k` counts this sketch, and `PFMERGE` merges it.
    pub fn to_redis_dense(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16usize.saturating_add(DENSE_BYTES));
        out.extend_from_slice(b"HYLL");
        out.extend_from_slice(&[0, 0, 0, 0]);
        // Cache invalid: the most significant bit of the last byte of the cardinality.
        out.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x80]);
        out.extend_from_slice(&self.to_packed()[..]);
        out
    }

    /// The serialized sketch (see the module documentation); a function of the registers.
    pub fn to_bytes(&self) -> Vec<u8> {
        let nonzero = self.nonzero();
        if nonzero < SERIAL_DENSE_FROM {
            let mut out =
                Vec::with_capacity(nonzero.saturating_mul(SERIAL_ENTRY_BYTES).saturating_add(1));
            out.push(TAG_SPARSE);
            self.for_each_nonzero(|index, value| {
                let word = u32::from(index) | (u32::from(value) << 14);
                let [b0, b1, b2, _] = word.to_le_bytes();
                out.extend_from_slice(&[b0, b1, b2]);
            });
            out
        } else {
            let mut out = Vec::with_capacity(DENSE_BYTES.saturating_add(1));
            out.push(TAG_DENSE);
            out.extend_from_slice(&self.to_packed()[..]);
            out
        }
    }

    /// Read back what [`Sketch::to_bytes`] wrote; `None` for anything else. The sketch is
    /// sparse if its entries fit `sparse_max_bytes`, dense otherwise.
    pub fn from_bytes(bytes: &[u8], sparse_max_bytes: usize) -> Option<Sketch> {
        let (&tag, body) = bytes.split_first()?;
        let mut sketch = Sketch::new(sparse_max_bytes);
        match tag {
            TAG_SPARSE => {
                if body.len() % SERIAL_ENTRY_BYTES != 0 {
                    return None;
                }
                let n = body.len() / SERIAL_ENTRY_BYTES;
                if n >= SERIAL_DENSE_FROM {
                    return None;
                }
                let mut entries = Entries::with_capacity(n);
                let mut next_index = 0u32;
                for chunk in body.chunks_exact(SERIAL_ENTRY_BYTES) {
                    let &[b0, b1, b2] = chunk else {
                        return None;
                    };
                    let word = u32::from_le_bytes([b0, b1, b2, 0]);
                    let index = word & 0x3fff;
                    let value = word >> 14;
                    if index < next_index || value == 0 || value > u32::from(MAX_VALUE) {
                        return None;
                    }
                    // Below 2^14 and 52: the casts are exact and the increment cannot wrap.
                    next_index = index.wrapping_add(1);
                    entries.push(entry(index as u16, value as u8));
                }
                sketch.repr = Repr::Sparse(entries);
                if n > sketch.max_entries() {
                    sketch.promote();
                }
                Some(sketch)
            }
            TAG_DENSE => {
                let packed: &[u8; DENSE_BYTES] = body.try_into().ok()?;
                let mut nonzero = 0usize;
                for r in packed_iter(packed) {
                    if r > MAX_VALUE {
                        return None;
                    }
                    if r != 0 {
                        nonzero = nonzero.wrapping_add(1);
                    }
                }
                if nonzero < SERIAL_DENSE_FROM {
                    return None;
                }
                let mut dense = Box::new([0u8; DENSE_BYTES]);
                dense.copy_from_slice(packed);
                // 4096 entries or more never fit the capped bound: always dense.
                sketch.repr = Repr::Dense(dense);
                Some(sketch)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> impl Iterator<Item = Vec<u8>> {
        (0..n).map(|i| format!("m{i}").into_bytes())
    }

    fn filled(n: usize, bound: usize) -> Sketch {
        let mut s = Sketch::new(bound);
        for m in members(n) {
            s.add(&m);
        }
        s
    }

    #[test]
    fn add_reports_changes_like_pfadd() {
        let mut s = Sketch::default();
        assert!(s.add(b"a"));
        assert!(!s.add(b"a"));
        let mut d = Sketch::new(0);
        assert!(d.add(b"a"));
        assert!(!d.is_sparse());
        assert!(!d.add(b"a"));
        assert_eq!(s, d);
    }

    #[test]
    fn sparse_and_dense_hold_the_same_registers() {
        for n in [0, 1, 2, 3, 10, 100, 700, 1000, 5000] {
            let sparse = filled(n, SPARSE_MAX_BYTES_CAP);
            let dense = filled(n, 0);
            assert!(!dense.is_sparse() || n == 0);
            assert_eq!(sparse, dense, "n={n}");
            assert_eq!(dense, sparse, "n={n}");
            assert_eq!(sparse.count(), dense.count(), "n={n}");
            assert_eq!(sparse.histogram(), dense.histogram(), "n={n}");
            assert_eq!(sparse.to_bytes(), dense.to_bytes(), "n={n}");
            assert_eq!(sparse.to_packed(), dense.to_packed(), "n={n}");
            for i in 0..REGISTERS {
                assert_eq!(sparse.get(i), dense.get(i));
            }
            let (mut a, mut b) = (Registers::new(), Registers::new());
            sparse.merge_into(&mut a);
            dense.merge_into(&mut b);
            assert_eq!(a, b);
            assert_eq!(a.count(), sparse.count());
        }
        assert_ne!(filled(10, 3000), filled(11, 0));
        assert_ne!(filled(11, 0), filled(10, 3000));
    }

    #[test]
    fn promotes_when_one_more_entry_would_pass_the_bound() {
        let bound = 30; // 10 entries of 3 bytes
        let mut s = Sketch::new(bound);
        let mut i = 0;
        while s.nonzero() < 10 {
            s.add(format!("m{i}").as_bytes());
            i += 1;
            assert!(s.is_sparse());
            assert!(s.heap_bytes() <= bound);
        }
        // Members that only raise an existing register keep it sparse...
        let before = s.clone();
        loop {
            let m = format!("m{i}");
            let (index, _) = pattern(m.as_bytes());
            if before.get(usize::from(index)) == 0 {
                break;
            }
            s.add(m.as_bytes());
            assert!(s.is_sparse());
            i += 1;
        }
        // ... and the 11th register turns it dense with everything kept.
        let mut expected = Registers::new();
        s.merge_into(&mut expected);
        let m = format!("m{i}");
        assert!(s.add(m.as_bytes()));
        expected.add(m.as_bytes());
        assert!(!s.is_sparse());
        assert_eq!(s.heap_bytes(), DENSE_BYTES);
        assert_eq!(s.nonzero(), 11);
        let mut got = Registers::new();
        s.merge_into(&mut got);
        assert_eq!(got, expected);
    }

    #[test]
    fn the_bound_is_capped_at_the_dense_size() {
        let s = Sketch::new(usize::MAX);
        assert_eq!(s.sparse_max_bytes(), DENSE_BYTES);
        let s = filled(20_000, usize::MAX);
        assert!(!s.is_sparse());
    }

    #[test]
    fn sparse_memory_is_tens_of_bytes_for_a_handful() {
        assert_eq!(filled(0, 3000).heap_bytes(), 0);
        assert_eq!(
            filled(1, 3000).heap_bytes(),
            12,
            "room for 4 entries of 3 bytes"
        );
        assert!(filled(10, 3000).heap_bytes() <= 48);
        let s = filled(100, 3000);
        assert!(s.heap_bytes() <= 100 * 3 * 9 / 8 + 12, "{}", s.heap_bytes());
        let s = filled(700, 3000);
        assert!(s.is_sparse());
        assert!(s.heap_bytes() <= 3000);
        assert_eq!(filled(5000, 3000).heap_bytes(), DENSE_BYTES);
        assert!(std::mem::size_of::<Sketch>() <= 32);
    }

    #[test]
    fn merge_from_is_the_union() {
        for (a, b, bound) in [
            (0, 0, 3000),
            (10, 20, 3000),
            (500, 600, 3000),
            (100, 5000, 3000),
        ] {
            for bound in [bound, 0] {
                let mut x = Sketch::new(bound);
                let mut y = Sketch::new(bound);
                let mut union = Registers::new();
                for m in members(a) {
                    x.add(&m);
                    union.add(&m);
                }
                for m in (0..b).map(|i| format!("m{}", i + a / 2).into_bytes()) {
                    y.add(&m);
                    union.add(&m);
                }
                let changed = x.merge_from(&y);
                assert_eq!(changed, b > 0, "{a} {b}");
                assert!(!x.merge_from(&y));
                let mut got = Registers::new();
                x.merge_into(&mut got);
                assert_eq!(got, union);
                assert_eq!(x.count(), union.count());
                assert_eq!(
                    x.nonzero(),
                    union.as_array().iter().filter(|&&r| r > 0).count()
                );
                assert!(x.heap_bytes() <= bound.max(DENSE_BYTES));
            }
        }
    }

    #[test]
    fn serialization_round_trips_and_is_canonical() {
        for n in [0, 1, 2, 10, 100, 1000, 2500, 3000, 4000, 10_000] {
            for bound in [0, 40, 3000, SPARSE_MAX_BYTES_CAP] {
                let s = filled(n, bound);
                let bytes = s.to_bytes();
                if s.nonzero() < SERIAL_DENSE_FROM {
                    assert_eq!(bytes.len(), 1 + 3 * s.nonzero());
                } else {
                    assert_eq!(bytes.len(), 1 + DENSE_BYTES);
                }
                for load_bound in [0, 40, 3000, SPARSE_MAX_BYTES_CAP] {
                    let back = Sketch::from_bytes(&bytes, load_bound).expect("valid");
                    assert_eq!(back, s);
                    assert_eq!(back.count(), s.count());
                    assert_eq!(back.to_bytes(), bytes);
                    assert_eq!(
                        back.is_sparse(),
                        s.nonzero() * SPARSE_ENTRY_BYTES <= load_bound
                    );
                }
            }
        }
        assert_eq!(Sketch::default().to_bytes(), vec![TAG_SPARSE]);
    }

    #[test]
    fn serialization_switches_to_dense_at_4096_registers() {
        let mut s = Sketch::new(0);
        let mut i = 0;
        while s.nonzero() < SERIAL_DENSE_FROM - 1 {
            s.add(format!("m{i}").as_bytes());
            i += 1;
        }
        assert_eq!(s.to_bytes().len(), 1 + 3 * 4095);
        while s.nonzero() < SERIAL_DENSE_FROM {
            s.add(format!("m{i}").as_bytes());
            i += 1;
        }
        let bytes = s.to_bytes();
        assert_eq!(bytes.len(), 1 + DENSE_BYTES);
        assert_eq!(Sketch::from_bytes(&bytes, 3000), Some(s));
    }

    #[test]
    fn from_bytes_rejects_inconsistencies() {
        let sparse = |entries: &[(u32, u32)]| {
            let mut out = vec![TAG_SPARSE];
            for &(i, v) in entries {
                out.extend_from_slice(&(i | v << 14).to_le_bytes()[..3]);
            }
            out
        };
        assert!(Sketch::from_bytes(&sparse(&[(1, 1), (5, 51)]), 3000).is_some());
        assert!(Sketch::from_bytes(&[], 3000).is_none());
        assert!(Sketch::from_bytes(&[0], 3000).is_none());
        assert!(Sketch::from_bytes(&[3], 3000).is_none());
        assert!(Sketch::from_bytes(&sparse(&[(1, 52)]), 3000).is_none()); // value > 51
        assert!(Sketch::from_bytes(&sparse(&[(1, 0)]), 3000).is_none()); // zero entry
        assert!(Sketch::from_bytes(&sparse(&[(5, 1), (1, 1)]), 3000).is_none()); // unsorted
        assert!(Sketch::from_bytes(&sparse(&[(5, 1), (5, 2)]), 3000).is_none()); // duplicate
        let mut stray = sparse(&[(1, 1)]);
        stray[3] |= 0x10;
        assert!(Sketch::from_bytes(&stray, 3000).is_none()); // bits 20..23
        let mut short = sparse(&[(1, 1), (2, 2)]);
        short.pop();
        assert!(Sketch::from_bytes(&short, 3000).is_none()); // length
        let many: Vec<(u32, u32)> = (0..4096).map(|i| (i, 1)).collect();
        assert!(Sketch::from_bytes(&sparse(&many), 3000).is_none()); // should be dense
        assert!(Sketch::from_bytes(&sparse(&many[..4095]), 3000).is_some());

        let mut dense = vec![TAG_DENSE];
        dense.extend_from_slice(&filled(10_000, 0).to_packed()[..]);
        assert!(Sketch::from_bytes(&dense, 3000).is_some());
        assert!(Sketch::from_bytes(&dense[..dense.len() - 1], 3000).is_none());
        let mut long = dense.clone();
        long.push(0);
        assert!(Sketch::from_bytes(&long, 3000).is_none());
        let mut big = dense.clone();
        big[1] = 52; // register 0 = 52
        assert!(Sketch::from_bytes(&big, 3000).is_none());
        let mut few = vec![TAG_DENSE];
        few.extend_from_slice(&filled(100, 0).to_packed()[..]);
        assert!(Sketch::from_bytes(&few, 3000).is_none()); // should be sparse
    }

    use super::super::rng::Rng;

    fn check_any(bytes: &[u8]) {
        for bound in [0, 3000, SPARSE_MAX_BYTES_CAP] {
            if let Some(s) = Sketch::from_bytes(bytes, bound) {
                // Whatever is accepted is canonical and usable.
                assert_eq!(s.to_bytes(), bytes);
                assert!(s.heap_bytes() <= bytes.len() * 4 / 3 + 4 || s.heap_bytes() == DENSE_BYTES);
                let _ = s.count();
            }
        }
    }

    #[test]
    fn from_bytes_never_panics_on_damaged_payloads() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let valid: Vec<Vec<u8>> = [0, 1, 5, 300, 2000, 10_000]
            .iter()
            .map(|&n| filled(n, 3000).to_bytes())
            .collect();
        for v in &valid {
            // Every truncation.
            let step = (v.len() / 200).max(1);
            for len in (0..v.len()).step_by(step) {
                check_any(&v[..len]);
            }
            // Single bit flips.
            for _ in 0..300 {
                let mut w = v.clone();
                let at = rng.index(w.len());
                w[at] ^= 1 << rng.index(8);
                check_any(&w);
            }
            // Random bytes spliced in.
            for _ in 0..50 {
                let mut w = v.clone();
                let at = rng.index(w.len() + 1);
                let n = rng.index(8);
                for _ in 0..n {
                    w.insert(at.min(w.len()), rng.next() as u8);
                }
                check_any(&w);
            }
        }
        // Random payloads of every small length and both tags.
        for len in 0..200 {
            for tag in [TAG_SPARSE, TAG_DENSE, rng.next() as u8] {
                let mut w = vec![tag];
                w.extend((0..len).map(|_| rng.next() as u8));
                check_any(&w);
            }
        }
        for _ in 0..20 {
            let mut w = vec![TAG_DENSE];
            w.extend((0..DENSE_BYTES).map(|_| rng.next() as u8 & 0x7f));
            check_any(&w);
        }
        // Random sorted entries: accepted exactly when the values are in range.
        for _ in 0..200 {
            let mut idx: Vec<u32> = (0..rng.index(50))
                .map(|_| rng.index(REGISTERS) as u32)
                .collect();
            idx.sort_unstable();
            idx.dedup();
            let mut w = vec![TAG_SPARSE];
            let mut ok = true;
            for &i in &idx {
                let v = rng.index(64) as u32;
                ok &= (1..=51).contains(&v);
                w.extend_from_slice(&(i | v << 14).to_le_bytes()[..3]);
            }
            assert_eq!(Sketch::from_bytes(&w, 3000).is_some(), ok);
            check_any(&w);
        }
    }

    #[test]
    fn redis_dense_string_has_the_redis_header() {
        let s = filled(3, 3000);
        let r = s.to_redis_dense();
        assert_eq!(r.len(), 16 + DENSE_BYTES);
        assert_eq!(&r[..5], b"HYLL\0");
        assert_eq!(r[15], 0x80);
        assert_eq!(&r[16..], &s.to_packed()[..]);
    }

    #[test]
    fn set_max_ignores_impossible_values() {
        let mut s = Sketch::default();
        assert!(!s.set_max(0, 0));
        assert!(!s.set_max(0, 52));
        assert!(!s.set_max(16384, 1));
        assert!(s.is_empty());
        assert!(s.set_max(16383, 51));
        assert_eq!(s.get(16383), 51);
        assert_eq!(s.get(usize::MAX), 0);
    }
}
