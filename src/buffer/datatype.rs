//! The `hacks-buf` data type: how the server saves, loads, rewrites, digests, copies,
//! measures and frees a buffer. Every callback is guarded: a panic here would abort the
//! server, so it becomes a logged failure instead.
//!
//! RDB encoding version 2 (written now):
//! `pending_count, (member, value)* in drain order, batch_count, (id, deadline_ms, delivery,
//! entry_count, (member, value)*)*` where a value is `0, i64` (plain) or
//! `1, column_count, (column, op, i64 | bytes)*` (a row; op 0 INCR, 1 SET, 2 MAX, 3 MIN).
//! Version 1 (still loaded): the same with every value a bare `i64`.
//! Module aux data (before the keyspace): the batch-id high-water mark.

use std::os::raw::c_int;

use crate::module::args::RStr;
use crate::module::datatype::ModuleType;
use crate::module::highwater::HighWater;
use crate::module::io::{Aof, Digest, Loader, Saver, StrVec};
use crate::module::typedkey::DataType;

use super::ids;
use super::row::{Cell, CellRef, Op, Row, Value};
use super::settings;
use super::store::{Batch, Buffer, Member};
use super::wire;

pub static BUFFER_TYPE: DataType<Buffer> = DataType::new(c"hacks-buf", "buffer", 1..=2);

/// Pairs per `HACK.BUFINCR` line in a rewritten AOF.
const AOF_CHUNK: usize = 512;

impl ModuleType for Buffer {
    const TYPE: &'static DataType<Self> = &BUFFER_TYPE;

    fn load(io: &Loader, encver: c_int) -> Option<Self> {
        load(io, encver)
    }

    fn save(&self, io: &Saver) {
        io.unsigned(self.pending_len() as u64);
        for (m, v) in self.pending_in_order() {
            io.bytes(m);
            save_value(io, v);
        }
        io.unsigned(self.batch_count() as u64);
        for (id, batch) in self.batches() {
            io.unsigned(id);
            io.signed(batch.deadline_ms);
            io.unsigned(batch.delivery);
            io.unsigned(batch.entries.len() as u64);
            for (m, v) in &batch.entries {
                io.bytes(m);
                save_value(io, v);
            }
        }
    }

    /// Batches first (`HACK.BUFBATCH` with explicit entries and absolute deadlines), then
    /// pending entries in drain order (`HACK.BUFINCR`, in chunks).
    fn rewrite(&self, aof: &Aof, key: RStr) {
        for (id, batch) in self.batches() {
            let mut args =
                StrVec::with_capacity(batch.entries.len().saturating_mul(2).saturating_add(3));
            args.push_int(i128::from(id));
            args.push_int(i128::from(batch.deadline_ms));
            args.push_int(i128::from(batch.delivery));
            for (m, v) in &batch.entries {
                wire::push_entry(&mut args, m, v);
            }
            aof.emit(c"HACK.BUFBATCH", key, &mut args);
        }
        // Plain members in runs of BUFINCR; a row as one BUFUPDATE that rebuilds it with its
        // op kinds. Emitted in drain order, so the order survives.
        let mut args = StrVec::with_capacity(2 * AOF_CHUNK);
        for (m, v) in self.pending_in_order() {
            match v {
                Value::Plain(n) => {
                    args.push(m);
                    args.push_int(i128::from(*n));
                    if args.len() >= 2 * AOF_CHUNK {
                        aof.emit(c"HACK.BUFINCR", key, &mut args);
                        args.clear();
                    }
                }
                Value::Row(_) => {
                    if !args.is_empty() {
                        aof.emit(c"HACK.BUFINCR", key, &mut args);
                        args.clear();
                    }
                    let mut row =
                        StrVec::with_capacity(v.columns().saturating_mul(3).saturating_add(1));
                    row.push(m);
                    wire::push_cells(&mut row, v);
                    aof.emit(c"HACK.BUFUPDATE", key, &mut row);
                }
            }
        }
        if !args.is_empty() {
            aof.emit(c"HACK.BUFINCR", key, &mut args);
        }
    }

    /// Order-independent for pending entries (members sorted), so a master and a replica
    /// that hold the same entries digest alike whatever their internal queue order.
    fn digest(&self, d: &Digest) {
        let mut pending: Vec<(&Member, &Value)> = self.pending_in_order().collect();
        pending.sort_unstable_by(|x, y| x.0.cmp(y.0));
        for (m, v) in pending {
            d.bytes(m);
            digest_value(d, v);
            d.end_sequence();
        }
        for (id, batch) in self.batches() {
            d.int(id as i64);
            d.int(batch.deadline_ms);
            d.int(batch.delivery as i64);
            for (m, v) in &batch.entries {
                d.bytes(m);
                digest_value(d, v);
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

fn save_value(io: &Saver, v: &Value) {
    match v {
        Value::Plain(n) => {
            io.unsigned(0);
            io.signed(*n);
        }
        Value::Row(r) => {
            io.unsigned(1);
            io.unsigned(r.len() as u64);
            for (c, op, val) in r.iter() {
                io.bytes(c);
                io.unsigned(op.code());
                match val {
                    CellRef::Bytes(b) => io.bytes(b),
                    CellRef::Int(n) => io.signed(n),
                }
            }
        }
    }
}

fn digest_value(d: &Digest, v: &Value) {
    match v {
        Value::Plain(n) => d.int(*n),
        Value::Row(_) => {
            for (c, op, val) in v.cells() {
                d.bytes(c);
                d.bytes(op.word().as_bytes());
                match val {
                    super::row::CellRef::Int(n) => d.int(n),
                    super::row::CellRef::Bytes(b) => d.bytes(b),
                }
            }
        }
    }
}

/// One value as saved by encoding `encver`, validated: a count is a claim (capped by what
/// any server could have admitted, never reserved up front), ops and names must be valid.
fn load_value(io: &Loader, encver: c_int) -> Option<Value> {
    if encver < 2 {
        return Some(Value::Plain(io.signed()?));
    }
    match io.unsigned()? {
        0 => Some(Value::Plain(io.signed()?)),
        1 => {
            let (max_columns, max_value) = settings::hard_limits();
            let n = io.count()?;
            if n == 0 || n > max_columns {
                return None;
            }
            let mut row: Row = Vec::with_capacity(n.min(16));
            for _ in 0..n {
                let c = io.bytes()?;
                let cell = match Op::from_code(io.unsigned()?)? {
                    Op::Incr => Cell::Incr(io.signed()?),
                    Op::Max => Cell::Max(io.signed()?),
                    Op::Min => Cell::Min(io.signed()?),
                    Op::Set => Cell::Set(io.bytes()?.into()),
                };
                row.push((c.into(), cell));
            }
            Value::from_row(row, max_columns, max_value)
        }
        _ => None,
    }
}

fn load_entry(io: &Loader, encver: c_int) -> Option<(Member, Value)> {
    let m = io.bytes()?;
    Some((Member::from(m), load_value(io, encver)?))
}

fn load(io: &Loader, encver: c_int) -> Option<Buffer> {
    let mut b = Buffer::new();
    let pending_count = io.count()?;
    let mut pending: Vec<(Member, Value)> = Vec::with_capacity(pending_count.min(1 << 16));
    for _ in 0..pending_count {
        pending.push(load_entry(io, encver)?);
    }
    // Batches go in first: installing a batch takes its members out of pending, and a member
    // may be both in flight and pending again (increments that arrived during the lease).
    let batches = io.count()?;
    for _ in 0..batches {
        let id = io.unsigned()?;
        let deadline_ms = io.signed()?;
        let delivery = io.unsigned()?;
        let n = io.count()?;
        let mut entries: Vec<(Member, Value)> = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            entries.push(load_entry(io, encver)?);
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
    for (m, v) in pending {
        // A member twice in pending: no real value holds that.
        if !b.insert_loaded(&m, v) {
            return None;
        }
    }
    Some(b)
}

/// A copy rebuilt entry by entry (its tables sized for what it holds; the copy may be freed
/// on another thread by lazy free, so it shares nothing with the original).
fn deep_copy(b: &Buffer) -> Buffer {
    let mut c = Buffer::new();
    // Batches first, as in `load`.
    for (id, batch) in b.batches() {
        let entries = batch
            .entries
            .iter()
            .map(|(m, v)| (m.clone(), v.clone()))
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
    for (m, v) in b.pending_in_order() {
        let _ = c.insert_loaded(m, v.clone());
    }
    c
}
