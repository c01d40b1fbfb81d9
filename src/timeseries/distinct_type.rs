//! The `hacks-tsd` data type (distinct-count series): RDB save/load, AOF rewrite, digest,
//! copy, memory, free.
//!
//! A type of its own rather than a variant of `hacks-tss`: counting series keep their
//! encoding (version 1) byte for byte, each loader validates one shape only, and a key's
//! family is its type, so `TYPE` tells them apart and the other family's commands answer
//! `WRONGTYPE` before reading anything.
//!
//! RDB encoding version 1: `has_expiry, expire_at_ms, rollup_count`, then per rollup:
//! `resolution_ms, retention_ms, has_newest, newest_idx, bucket_count, (idx, sketch)*` where
//! `sketch` is a string: [`Sketch::to_bytes`], a function of the registers only (not of the
//! layout in memory or the sparse bound), validated by [`Sketch::from_bytes`] on load.

use std::os::raw::c_int;

use crate::module::args::RStr;
use crate::module::datatype::ModuleType;
use crate::module::io::{Aof, Digest, Loader, Saver, StrVec};
use crate::module::typedkey::DataType;

use super::distinct::DistinctSeries;
use super::hll::Sketch;
use super::settings::distinct_sparse_max_bytes;
use super::spec::{valid_spec, validate, RollupSpec, MAX_ROLLUPS};

pub static DISTINCT_TYPE: DataType<DistinctSeries> =
    DataType::new(c"hacks-tsd", "distinct series", 1..=1);

/// Sketch bytes per `HACK.TSDSET` line in a rewritten AOF (a line may pass it by one sketch).
const AOF_CHUNK_BYTES: usize = 256 * 1024;

impl ModuleType for DistinctSeries {
    const TYPE: &'static DataType<Self> = &DISTINCT_TYPE;

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
            io.unsigned(r.buckets.len() as u64);
            for (idx, s) in &r.buckets {
                io.signed(*idx);
                io.bytes(&s.to_bytes());
            }
        }
    }

    /// `HACK.TSCREATE key ROLLUPS ... DISTINCT`, then per rollup `HACK.TSDSET key
    /// rollup_index newest [idx sketch ...]` in chunks: the registers themselves (members
    /// are not kept, and coarser rollups hold data finer ones already dropped).
    fn rewrite(&self, aof: &Aof, key: RStr) {
        let mut args = StrVec::with_capacity(self.rollups.len().saturating_add(2));
        args.push(b"ROLLUPS");
        for r in &self.rollups {
            args.push(r.spec.to_string().as_bytes());
        }
        args.push(b"DISTINCT");
        aof.emit(c"HACK.TSCREATE", key, &mut args);
        for (i, r) in self.rollups.iter().enumerate() {
            let Some(newest) = r.newest else { continue };
            let start = |a: &mut StrVec| {
                a.push_int(i as i128);
                a.push_int(i128::from(newest));
            };
            let mut args = StrVec::with_capacity(64);
            start(&mut args);
            let mut bytes = 0usize;
            for (idx, s) in &r.buckets {
                let b = s.to_bytes();
                bytes = bytes.saturating_add(b.len());
                args.push_int(i128::from(*idx));
                args.push(&b);
                if bytes >= AOF_CHUNK_BYTES {
                    aof.emit(c"HACK.TSDSET", key, &mut args);
                    args.clear();
                    start(&mut args);
                    bytes = 0;
                }
            }
            aof.emit(c"HACK.TSDSET", key, &mut args);
        }
    }

    fn digest(&self, d: &Digest) {
        d.int(self.expire_at_ms.unwrap_or(i64::MIN));
        for r in &self.rollups {
            d.int(r.spec.resolution_ms);
            d.int(r.spec.retention_ms);
            d.int(r.newest.unwrap_or(i64::MIN));
            for (idx, s) in &r.buckets {
                d.int(*idx);
                d.bytes(&s.to_bytes());
            }
            d.end_sequence();
        }
    }

    fn heap_bytes(&self) -> usize {
        DistinctSeries::heap_bytes(self)
    }

    /// One allocation per bucket.
    fn free_effort(&self) -> usize {
        self.rollups
            .iter()
            .map(|r| r.buckets.len().saturating_add(1))
            .fold(1, usize::saturating_add)
    }

    fn deep_copy(&self) -> Self {
        self.clone()
    }
}

fn load(io: &Loader) -> Option<DistinctSeries> {
    let has_expiry = io.unsigned()? != 0;
    let expire = io.signed()?;
    let n = io.count()?;
    if n == 0 || n > MAX_ROLLUPS {
        return None;
    }
    let sparse_max = distinct_sparse_max_bytes();
    let mut specs = Vec::with_capacity(n);
    type Loaded = (Option<i64>, Vec<(i64, Sketch)>);
    let mut data: Vec<Loaded> = Vec::with_capacity(n);
    // Every field is a claim: a rollup TSCREATE would accept, buckets strictly increasing
    // within what the rollup retains behind its newest bucket, each sketch exactly what
    // `to_bytes` writes and not empty. Memory grows with the buckets really in the stream
    // (a sketch's memory is at most about five times its serialized length).
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
        if count > usize::try_from(spec.buckets().saturating_add(2)).ok()?
            || (count > 0 && !has_newest)
        {
            return None;
        }
        let oldest_ok = newest.saturating_sub(spec.buckets().saturating_mul(2));
        let mut buckets = Vec::with_capacity(count.min(1 << 10));
        let mut prev: Option<i64> = None;
        for _ in 0..count {
            let idx = io.signed()?;
            if idx > newest || idx < oldest_ok || prev.is_some_and(|p| idx <= p) {
                return None;
            }
            let sketch = Sketch::from_bytes(&io.bytes()?, sparse_max)?;
            if sketch.is_empty() {
                return None;
            }
            prev = Some(idx);
            buckets.push((idx, sketch));
        }
        specs.push(spec);
        data.push((has_newest.then_some(newest), buckets));
    }
    validate(&specs).ok()?;
    let mut s = DistinctSeries::new(&specs);
    for (r, (newest, buckets)) in s.rollups.iter_mut().zip(data) {
        r.buckets = buckets;
        r.newest = newest;
    }
    s.expire_at_ms = has_expiry.then_some(expire);
    s.refresh_expiry();
    Some(s)
}
