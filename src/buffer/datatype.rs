//! The `hacks-buf` data type: how the server saves, loads, rewrites, digests, copies,
//! measures and frees a buffer. Every callback is guarded: a panic here would abort the
//! server, so it becomes a logged failure instead.
//!
//! RDB encoding version 1:
//! `pending_count, (member, value)* in drain order, batch_count, (id, deadline_ms, delivery,
//! entry_count, (member, value)*)*`.
//! Module aux data (before the keyspace): the batch-id high-water mark.

use std::os::raw::c_int;
use std::rc::Rc;

use crate::module::args::RStr;
use crate::module::datatype::ModuleType;
use crate::module::highwater::HighWater;
use crate::module::io::{Aof, Digest, Loader, Saver, StrVec};
use crate::module::typedkey::DataType;

use super::ids;
use super::store::{Batch, Buffer, Member};

pub static BUFFER_TYPE: DataType<Buffer> = DataType::new();

/// Pairs per `HACK.BUFINCR` line in a rewritten AOF.
const AOF_CHUNK: usize = 512;

impl ModuleType for Buffer {
    const NAME: &'static std::ffi::CStr = c"hacks-buf";
    const ENCODING_VERSION: c_int = 1;
    const WHAT: &'static str = "buffer";

    fn handle() -> &'static DataType<Self> {
        &BUFFER_TYPE
    }

    fn load(io: &Loader, _encver: c_int) -> Option<Self> {
        load(io)
    }

    fn save(&self, io: &Saver) {
        io.unsigned(self.pending_len() as u64);
        for (m, v) in self.pending_in_order() {
            io.bytes(m);
            io.signed(v);
        }
        io.unsigned(self.batch_count() as u64);
        for (id, batch) in self.batches() {
            io.unsigned(id);
            io.signed(batch.deadline_ms);
            io.unsigned(batch.delivery);
            io.unsigned(batch.entries.len() as u64);
            for (m, v) in &batch.entries {
                io.bytes(m);
                io.signed(*v);
            }
        }
    }

    /// Batches first (`HACK.BUFBATCH` with explicit entries and absolute deadlines), then
    /// pending entries in drain order (`HACK.BUFINCR`, in chunks).
    fn rewrite(&self, aof: &Aof, key: RStr) {
        for (id, batch) in self.batches() {
            let mut args =
                StrVec::with_capacity(batch.entries.len().saturating_mul(2).saturating_add(3));
            let mut ok = args.push_int(i128::from(id))
                && args.push_int(i128::from(batch.deadline_ms))
                && args.push_int(i128::from(batch.delivery));
            for (m, v) in &batch.entries {
                ok = ok && args.push(m) && args.push_int(i128::from(*v));
            }
            if ok {
                aof.emit(c"HACK.BUFBATCH", key, &mut args);
            }
        }
        let mut args = StrVec::with_capacity(2 * AOF_CHUNK);
        for (m, v) in self.pending_in_order() {
            args.push(m);
            args.push_int(i128::from(v));
            if args.len() >= 2 * AOF_CHUNK {
                aof.emit(c"HACK.BUFINCR", key, &mut args);
                args.clear();
            }
        }
        if !args.is_empty() {
            aof.emit(c"HACK.BUFINCR", key, &mut args);
        }
    }

    /// Order-independent for pending entries (members sorted), so a master and a replica
    /// that hold the same entries digest alike whatever their internal queue order.
    fn digest(&self, d: &Digest) {
        let mut pending: Vec<(&Member, i64)> = self.pending_in_order().collect();
        pending.sort_unstable_by(|x, y| x.0.cmp(y.0));
        for (m, v) in pending {
            d.bytes(m);
            d.int(v);
            d.end_sequence();
        }
        for (id, batch) in self.batches() {
            d.int(id as i64);
            d.int(batch.deadline_ms);
            d.int(batch.delivery as i64);
            for (m, v) in &batch.entries {
                d.bytes(m);
                d.int(*v);
            }
            d.end_sequence();
        }
    }

    fn heap_bytes(&self) -> usize {
        Buffer::heap_bytes(self)
    }

    fn free_effort(&self) -> usize {
        Buffer::free_effort(self)
    }

    fn deep_copy(&self) -> Self {
        deep_copy(self)
    }

    /// The batch-id mark travels in the RDB as this type's aux data.
    fn aux_mark() -> Option<&'static HighWater> {
        Some(&ids::BATCH_IDS)
    }
}

fn load_entry(io: &Loader) -> Option<(Vec<u8>, i64)> {
    Some((io.bytes()?, io.signed()?))
}

fn load(io: &Loader) -> Option<Buffer> {
    let mut b = Buffer::new();
    let pending_count = io.count()?;
    let mut pending: Vec<(Vec<u8>, i64)> = Vec::with_capacity(pending_count.min(1 << 16));
    for _ in 0..pending_count {
        pending.push(load_entry(io)?);
    }
    // Batches go in first: installing a batch takes its members out of pending, and a member
    // may be both in flight and pending again (increments that arrived during the lease).
    let batches = io.count()?;
    for _ in 0..batches {
        let id = io.unsigned()?;
        let deadline_ms = io.signed()?;
        let delivery = io.unsigned()?;
        let n = io.count()?;
        let mut entries: Vec<(Member, i64)> = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let (m, v) = load_entry(io)?;
            entries.push((Rc::from(m), v));
        }
        // What no drain could have made (and HACK.BUFBATCH, the AOF rewrite's replay, would
        // refuse) is refused here too: id 0, delivery 0 or beyond i64, an empty batch, a
        // duplicate id; an id no clock made would pin every later batch id.
        if id == 0
            || delivery == 0
            || i64::try_from(delivery).is_err()
            || entries.is_empty()
            || b.batch(id).is_some()
            || !ids::observe(id)
        {
            return None;
        }
        b.put_batch(
            id,
            Batch {
                entries,
                deadline_ms,
                delivery,
            },
        );
    }
    // A buffer with nothing pending and nothing in flight is deleted by the command that
    // empties it: no such value exists (and a rewrite would emit nothing for it).
    if pending.is_empty() && batches == 0 {
        return None;
    }
    for chunk in pending.chunks(AOF_CHUNK) {
        apply_pending(&mut b, chunk)?;
    }
    Some(b)
}

fn apply_pending(b: &mut Buffer, chunk: &[(Vec<u8>, i64)]) -> Option<()> {
    let pairs: Vec<(&[u8], i64)> = chunk.iter().map(|(m, v)| (m.as_slice(), *v)).collect();
    b.incr(&pairs, None).ok().map(|_| ())
}

/// A copy that shares no member names with the original (the copy may be freed on another
/// thread by lazy free, and `Rc` counts are not atomic).
fn deep_copy(b: &Buffer) -> Buffer {
    let mut c = Buffer::new();
    // Batches first, as in `load`.
    for (id, batch) in b.batches() {
        let entries = batch
            .entries
            .iter()
            .map(|(m, v)| (Rc::from(&m[..]), *v))
            .collect();
        c.put_batch(
            id,
            Batch {
                entries,
                deadline_ms: batch.deadline_ms,
                delivery: batch.delivery,
            },
        );
    }
    let pending: Vec<(Vec<u8>, i64)> = b.pending_in_order().map(|(m, v)| (m.to_vec(), v)).collect();
    let pairs: Vec<(&[u8], i64)> = pending.iter().map(|(m, v)| (m.as_slice(), *v)).collect();
    let _ = c.incr(&pairs, None);
    c
}
