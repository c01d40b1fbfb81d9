//! The `hacks-tss` data type: RDB save/load, AOF rewrite, digest, copy, memory, free.
//!
//! RDB encoding version 1: `has_expiry, expire_at_ms, rollup_count, then per rollup:
//! resolution_ms, retention_ms, has_newest, newest_idx, bucket_count, (idx, value)*` with
//! only non-zero buckets, so the layout a server happens to use never shows in the data.

use std::os::raw::c_int;

use crate::module::args::RStr;
use crate::module::datatype::ModuleType;
use crate::module::io::{Aof, Digest, Loader, Saver, StrVec};
use crate::module::typedkey::DataType;

use super::series::Series;
use super::spec::{valid_spec, validate, RollupSpec, MAX_ROLLUPS};

pub static SERIES_TYPE: DataType<Series> = DataType::new(c"hacks-tss", "series", 1..=1);

/// Buckets per `HACK.TSSET` line in a rewritten AOF.
const AOF_CHUNK: usize = 512;

impl ModuleType for Series {
    const TYPE: &'static DataType<Self> = &SERIES_TYPE;

    fn load(io: &Loader, _encver: c_int) -> Option<Self> {
        load(io)
    }

    fn save(&self, io: &Saver) {
        io.unsigned(u64::from(self.expire_at_ms.is_some()));
        io.signed(self.expire_at_ms.unwrap_or(0));
        io.unsigned(self.rollups.len() as u64);
        for r in &self.rollups {
            io.signed(r.spec.resolution_ms);
            io.signed(r.spec.retention_ms);
            io.unsigned(u64::from(r.newest.is_some()));
            io.signed(r.newest.unwrap_or(0));
            io.unsigned(r.store.used() as u64);
            r.store.each(i64::MIN, i64::MAX, |idx, v| {
                io.signed(idx);
                io.signed(v);
            });
        }
    }

    /// `HACK.TSCREATE key ROLLUPS ...`, then `HACK.TSSET key rollup_index newest [idx value
    /// ...]` per rollup in chunks (bucket values as they are, rollup by rollup: coarser
    /// rollups hold data finer ones already dropped, so replaying increments would not do).
    fn rewrite(&self, aof: &Aof, key: RStr) {
        let mut args = StrVec::with_capacity(self.rollups.len().saturating_add(1));
        args.push(b"ROLLUPS");
        for r in &self.rollups {
            args.push(r.spec.to_string().as_bytes());
        }
        aof.emit(c"HACK.TSCREATE", key, &mut args);
        for (i, r) in self.rollups.iter().enumerate() {
            let Some(newest) = r.newest else { continue };
            let mut args = StrVec::with_capacity(2 + 2 * AOF_CHUNK);
            let start = |a: &mut StrVec| {
                a.push_int(i as i128);
                a.push_int(i128::from(newest));
            };
            start(&mut args);
            r.store.each(i64::MIN, i64::MAX, |idx, v| {
                args.push_int(i128::from(idx));
                args.push_int(i128::from(v));
                if args.len() >= 2 + 2 * AOF_CHUNK {
                    aof.emit(c"HACK.TSSET", key, &mut args);
                    args.clear();
                    start(&mut args);
                }
            });
            aof.emit(c"HACK.TSSET", key, &mut args);
        }
    }

    fn digest(&self, d: &Digest) {
        d.int(self.expire_at_ms.unwrap_or(i64::MIN));
        for r in &self.rollups {
            d.int(r.spec.resolution_ms);
            d.int(r.spec.retention_ms);
            d.int(r.newest.unwrap_or(i64::MIN));
            r.store.each(i64::MIN, i64::MAX, |idx, v| {
                d.int(idx);
                d.int(v);
            });
            d.end_sequence();
        }
    }

    fn heap_bytes(&self) -> usize {
        Series::heap_bytes(self)
    }

    /// One allocation per rollup, whatever its size: freeing is cheap, never worth a thread.
    fn free_effort(&self) -> usize {
        self.rollups.len().saturating_add(1)
    }

    fn deep_copy(&self) -> Self {
        self.clone()
    }
}

fn load(io: &Loader) -> Option<Series> {
    let has_expiry = io.unsigned()? != 0;
    let expire = io.signed()?;
    let n = io.count()?;
    let mut specs = Vec::with_capacity(n.min(16));
    // Per rollup: newest bucket index and (index, value) buckets.
    type Loaded = (Option<i64>, Vec<(i64, i64)>);
    let mut data: Vec<Loaded> = Vec::with_capacity(n.min(16));
    // Every field is a claim to check before anything is built: a rollup TSCREATE would
    // accept, buckets strictly increasing, non-zero, and within what the rollup can retain
    // behind its newest bucket (so no count or index can make the load allocate beyond the
    // data really in the stream).
    if n == 0 || n > MAX_ROLLUPS {
        return None;
    }
    for _ in 0..n {
        let spec = RollupSpec {
            resolution_ms: io.signed()?,
            retention_ms: io.signed()?,
        };
        if !valid_spec(spec) {
            return None;
        }
        let has_newest = io.unsigned()? != 0;
        let newest = io.signed()?;
        let count = io.count()?;
        // A rollup never holds more than its retention's buckets (plus the one bucket a
        // write may reach ahead of the clock, and one of slack at the trimmed end).
        if count > usize::try_from(spec.buckets().saturating_add(2)).ok()?
            || (count > 0 && !has_newest)
        {
            return None;
        }
        let oldest_ok = newest.saturating_sub(spec.buckets().saturating_mul(2));
        let mut buckets = Vec::with_capacity(count.min(1 << 16));
        let mut prev: Option<i64> = None;
        for _ in 0..count {
            let (idx, v) = (io.signed()?, io.signed()?);
            if v == 0 || idx > newest || idx < oldest_ok || prev.is_some_and(|p| idx <= p) {
                return None;
            }
            prev = Some(idx);
            buckets.push((idx, v));
        }
        specs.push(spec);
        data.push((has_newest.then_some(newest), buckets));
    }
    validate(&specs).ok()?;
    let mut s = Series::new(&specs);
    for (r, (newest, buckets)) in s.rollups.iter_mut().zip(data) {
        let cap = r.spec.buckets();
        for (idx, v) in buckets {
            r.store.add(idx, v, cap);
        }
        r.newest = newest;
    }
    // The expiry is a function of the newest buckets (it never moves otherwise): a saved
    // value that differs is one no command made, and an AOF rewrite could not rebuild it.
    s.refresh_expiry();
    (s.expire_at_ms == has_expiry.then_some(expire)).then_some(s)
}
