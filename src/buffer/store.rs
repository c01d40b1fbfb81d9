//! The write buffer itself, in plain Rust: pending increments per member, and leased
//! batches in flight. The server glue (`command.rs`) only parses, calls these methods and
//! replicates; every rule lives here and is unit-tested without Redis.
//!
//! - Pending members keep first-arrival order, so DRAIN hands out the oldest first
//!   (`pending.rs`: one slot per member, found by name in O(1)).
//! - A leased batch owns its entries: increments that arrive meanwhile accumulate as new
//!   pending values and never join it. An expired batch is handed out again whole, under
//!   the same id.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::row::{self, round16, Op, DEFAULT_COLUMN};
pub use super::row::{Limits, Update, UpdateError, Value};

pub use super::pending::Member;
use super::pending::Pending;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub entries: Vec<(Member, Value)>,
    /// Absolute Unix ms at which the lease runs out.
    pub deadline_ms: i64,
    /// 1 on first hand-out, +1 on each hand-out after the lease expired.
    pub delivery: u64,
}

#[derive(Debug, Default, Clone)]
pub struct Buffer {
    pending: Pending,
    /// Columns over all pending members (a plain member counts one).
    columns: usize,
    batches: BTreeMap<u64, Batch>,
    /// (deadline, batch id): finds an expired batch in O(log n).
    deadlines: BTreeSet<(i64, u64)>,
}

/// Kept for callers of the BUFINCR-era name.
pub type IncrError = UpdateError;

/// What a leased drain hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub batch_id: u64,
    pub delivery: u64,
    pub deadline_ms: i64,
    /// Whether this is a new batch (entries moved out of pending) or an expired one again.
    pub fresh: bool,
}

impl Buffer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Columns held by pending members (a plain member counts one).
    pub fn pending_columns(&self) -> usize {
        self.columns
    }

    pub fn batch_count(&self) -> usize {
        self.batches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.batches.is_empty()
    }

    /// The pending integer of a plain member.
    pub fn pending_value(&self, member: &[u8]) -> Option<i64> {
        match self.pending.get(member) {
            Some(Value::Plain(v)) => Some(*v),
            _ => None,
        }
    }

    pub fn pending(&self, member: &[u8]) -> Option<&Value> {
        self.pending.get(member)
    }

    pub fn batches(&self) -> impl Iterator<Item = (u64, &Batch)> {
        self.batches.iter().map(|(id, b)| (*id, b))
    }

    pub fn batch(&self, id: u64) -> Option<&Batch> {
        self.batches.get(&id)
    }

    pub fn max_batch_id(&self) -> Option<u64> {
        self.batches.keys().next_back().copied()
    }

    /// Pending entries, oldest first.
    pub fn pending_in_order(&self) -> impl Iterator<Item = (&Member, &Value)> {
        self.pending.iter()
    }

    fn insert_new(&mut self, m: &[u8], v: Value) {
        self.columns = self.columns.saturating_add(v.columns());
        self.pending.push(m, v);
    }

    fn remove_pending(&mut self, m: &[u8]) -> Option<Value> {
        let out = self.pending.remove(m);
        if let Some(v) = &out {
            self.columns = self.columns.saturating_sub(v.columns());
        }
        out
    }

    /// Install a pending member as loaded (RDB, copy): false if it is already pending
    /// (a real value never holds a member twice).
    pub fn insert_loaded(&mut self, m: &[u8], v: Value) -> bool {
        if self.pending.contains(m) {
            return false;
        }
        self.insert_new(m, v);
        true
    }

    /// Add `pairs` to the default column atomically: either every increment applies or
    /// none does. Returns the new pending values in order. `limits` bounds pending members
    /// and columns (`None`: no bound, for replicated and replayed writes, which must apply
    /// whatever this server's settings).
    pub fn incr(
        &mut self,
        pairs: &[(&[u8], i64)],
        limits: Option<&Limits>,
    ) -> Result<Vec<i64>, UpdateError> {
        // Validate first: final values (members may repeat within one call) and new members.
        let mut staged: Vec<i64> = Vec::with_capacity(pairs.len());
        let mut new_members = 0i64;
        // Where a member last appeared earlier in this call: a scan for short calls, a map
        // for long ones (so a call with thousands of pairs stays linear).
        let mut seen: Option<HashMap<&[u8], usize>> =
            (pairs.len() > 16).then(|| HashMap::with_capacity(pairs.len()));
        for (i, (m, inc)) in pairs.iter().enumerate() {
            let earlier = match seen.as_mut() {
                Some(map) => map.insert(*m, i),
                None => pairs
                    .get(..i)
                    .and_then(|p| p.iter().rposition(|(p, _)| p == m)),
            };
            let base = match earlier.and_then(|j| staged.get(j)) {
                Some(v) => *v,
                None => match self.pending.get(m) {
                    Some(Value::Plain(v)) => *v,
                    Some(v @ Value::Row(_)) => match v.column(DEFAULT_COLUMN) {
                        Some((Op::Incr, n)) => n,
                        Some((held, _)) => {
                            return Err(UpdateError::OpConflict {
                                at: i,
                                held,
                                wanted: Op::Incr,
                            })
                        }
                        None => {
                            if let Some(l) = limits {
                                if v.columns() >= l.max_columns {
                                    return Err(UpdateError::TooManyColumns { max: l.max_columns });
                                }
                            }
                            0
                        }
                    },
                    None => {
                        new_members = new_members.saturating_add(1);
                        0
                    }
                },
            };
            staged.push(base.checked_add(*inc).ok_or(UpdateError::Overflow)?);
        }
        if let Some(l) = limits {
            if new_members > 0
                && (self.pending.len() as i64).saturating_add(new_members) > l.max_members
            {
                return Err(UpdateError::TooManyMembers { max: l.max_members });
            }
        }
        for ((m, _), v) in pairs.iter().zip(&staged) {
            match self.pending.get_mut(m) {
                Some(Value::Plain(p)) => *p = *v,
                Some(slot @ Value::Row(_)) => {
                    let before = slot.columns();
                    let old = std::mem::replace(slot, Value::Plain(0));
                    *slot = row::apply(Some(old), &[Update::incr(DEFAULT_COLUMN, 0)], &[*v]);
                    let gained = slot.columns().saturating_sub(before);
                    self.columns = self.columns.saturating_add(gained);
                }
                None => self.insert_new(m, Value::Plain(*v)),
            }
        }
        Ok(staged)
    }

    /// Apply column updates to one member atomically, in order (`HACK.BUFUPDATE`). Returns
    /// the number of columns the pending member now holds.
    pub fn update(
        &mut self,
        member: &[u8],
        updates: &[Update<'_>],
        limits: Option<&Limits>,
    ) -> Result<usize, UpdateError> {
        let current = self.pending.get(member);
        let (staged, new_columns) = row::stage(current, updates, limits)?;
        if current.is_none() {
            if let Some(l) = limits {
                if (self.pending.len() as i64).saturating_add(1) > l.max_members {
                    return Err(UpdateError::TooManyMembers { max: l.max_members });
                }
            }
        }
        self.columns = self.columns.saturating_add(new_columns);
        match self.pending.get_mut(member) {
            Some(slot) => {
                let old = std::mem::replace(slot, Value::Plain(0));
                *slot = row::apply(Some(old), updates, &staged);
                Ok(slot.columns())
            }
            None => {
                let v = row::apply(None, updates, &staged);
                let n = v.columns();
                // insert_new counts the columns itself.
                self.columns = self.columns.saturating_sub(new_columns);
                self.insert_new(member, v);
                Ok(n)
            }
        }
    }

    /// Remove and return the oldest pending entry.
    fn pop_oldest(&mut self) -> Option<(Member, Value)> {
        let (m, v) = self.pending.pop_oldest()?;
        self.columns = self.columns.saturating_sub(v.columns());
        Some((m, v))
    }

    /// Plain drain: remove up to `n` pending entries, oldest first. Leased batches are never
    /// touched.
    pub fn drain(&mut self, n: usize) -> Vec<(Member, Value)> {
        let mut out = Vec::with_capacity(n.min(self.pending.len()));
        while out.len() < n {
            match self.pop_oldest() {
                Some(e) => out.push(e),
                None => break,
            }
        }
        out
    }

    /// Remove the named members from pending (replication of a drain decided elsewhere).
    pub fn take_members(&mut self, members: &[&[u8]]) {
        for m in members {
            self.remove_pending(m);
        }
    }

    /// The batch whose lease ran out first, if any ran out by `now_ms`.
    pub fn expired_batch(&self, now_ms: i64) -> Option<u64> {
        self.deadlines
            .iter()
            .next()
            .filter(|(d, _)| *d <= now_ms)
            .map(|(_, id)| *id)
    }

    /// At-least-once drain. An expired batch is handed out again first (same id, same
    /// entries, delivery + 1, new lease); otherwise up to `n` pending entries become batch
    /// `new_id`. `None` when there is nothing to hand out. `new_id` must exceed every id
    /// this key name ever used (see `ids.rs`).
    pub fn lease(&mut self, now_ms: i64, lease_ms: i64, n: usize, new_id: u64) -> Option<Lease> {
        let deadline_ms = now_ms.saturating_add(lease_ms);
        if let Some(id) = self.expired_batch(now_ms) {
            let delivery = self
                .batches
                .get(&id)
                .map_or(1, |b| b.delivery.saturating_add(1));
            self.set_lease(id, deadline_ms, delivery);
            return Some(Lease {
                batch_id: id,
                delivery,
                deadline_ms,
                fresh: false,
            });
        }
        let entries = self.drain(n);
        if entries.is_empty() {
            return None;
        }
        self.put_batch(
            new_id,
            Batch {
                entries,
                deadline_ms,
                delivery: 1,
            },
        );
        Some(Lease {
            batch_id: new_id,
            delivery: 1,
            deadline_ms,
            fresh: true,
        })
    }

    /// Re-lease an existing batch (replication of a re-hand-out). False if it is gone.
    pub fn set_lease(&mut self, id: u64, deadline_ms: i64, delivery: u64) -> bool {
        let Some(b) = self.batches.get_mut(&id) else {
            return false;
        };
        self.deadlines.remove(&(b.deadline_ms, id));
        b.deadline_ms = deadline_ms;
        b.delivery = delivery;
        self.deadlines.insert((deadline_ms, id));
        true
    }

    /// Install a batch as given (replication of a fresh lease, AOF rewrite, RDB load). Its
    /// members leave pending.
    pub fn put_batch(&mut self, id: u64, batch: Batch) {
        for (m, _) in &batch.entries {
            self.remove_pending(m);
        }
        if let Some(old) = self.batches.remove(&id) {
            self.deadlines.remove(&(old.deadline_ms, id));
        }
        self.deadlines.insert((batch.deadline_ms, id));
        self.batches.insert(id, batch);
    }

    /// Acknowledge a batch: true if it was in flight (leased or expired) and is now gone.
    pub fn ack(&mut self, id: u64) -> bool {
        match self.batches.remove(&id) {
            Some(b) => {
                self.deadlines.remove(&(b.deadline_ms, id));
                true
            }
            None => false,
        }
    }

    /// Rough heap bytes held (for `MEMORY USAGE`): allocations of names, map slots, queue
    /// slots and batch entries.
    pub fn heap_bytes(&self) -> usize {
        // An estimate of sizes of live allocations: saturating arithmetic can only matter
        // past the address space, where any answer will do.
        let batches: usize = self
            .batches
            .values()
            .map(|b| {
                let owned = b
                    .entries
                    .iter()
                    .map(|(m, v)| round16(m.len()).saturating_add(v.heap_bytes()))
                    .fold(0, usize::saturating_add);
                b.entries
                    .capacity()
                    .saturating_mul(std::mem::size_of::<(Member, Value)>())
                    .saturating_add(64)
                    .saturating_add(owned)
            })
            .fold(0, usize::saturating_add);
        [
            self.pending.heap_bytes(),
            batches,
            self.deadlines.len().saturating_mul(32),
        ]
        .into_iter()
        .fold(0, usize::saturating_add)
    }

    /// Allocations to free (for the lazy-free decision).
    /// A row's columns are allocations of their own, so pending columns count, not members.
    pub fn free_effort(&self) -> usize {
        self.batches
            .values()
            .map(|b| {
                b.entries
                    .iter()
                    .map(|(_, v)| v.columns())
                    .fold(1, usize::saturating_add)
            })
            .fold(self.columns.max(self.pending.len()), usize::saturating_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs<'a>(v: &'a [(&'a str, i64)]) -> Vec<(&'a [u8], i64)> {
        v.iter().map(|(m, i)| (m.as_bytes(), *i)).collect()
    }

    fn names(entries: &[(Member, Value)]) -> Vec<(String, i64)> {
        entries
            .iter()
            .map(|(m, v)| {
                let Value::Plain(v) = v else { panic!("row") };
                (String::from_utf8_lossy(m).into_owned(), *v)
            })
            .collect()
    }

    fn cap(max_members: i64) -> Limits {
        Limits {
            max_members,
            max_columns: 4,
            max_value_bytes: 16,
        }
    }

    #[test]
    fn incr_is_atomic() {
        let mut b = Buffer::new();
        assert_eq!(
            b.incr(&pairs(&[("a", 1), ("b", 2), ("a", 3)]), None),
            Ok(vec![1, 2, 4])
        );
        assert_eq!(b.pending_value(b"a"), Some(4));
        // Overflow anywhere: nothing changes.
        assert_eq!(
            b.incr(&pairs(&[("b", 1), ("a", i64::MAX)]), None),
            Err(IncrError::Overflow)
        );
        assert_eq!(
            (b.pending_value(b"a"), b.pending_value(b"b")),
            (Some(4), Some(2))
        );
        // Overflow through a repeated member within one call.
        assert_eq!(
            b.incr(&pairs(&[("c", i64::MAX), ("c", 1)]), None),
            Err(IncrError::Overflow)
        );
        assert_eq!(b.pending_value(b"c"), None);
        assert_eq!(
            b.incr(&pairs(&[("a", i64::MIN)]), None),
            Ok(vec![4 + i64::MIN])
        );
    }

    #[test]
    fn member_bound_counts_new_members_only() {
        let mut b = Buffer::new();
        b.incr(&pairs(&[("a", 1), ("b", 1)]), Some(&cap(2)))
            .unwrap();
        assert_eq!(
            b.incr(&pairs(&[("a", 1), ("c", 1)]), Some(&cap(2))),
            Err(IncrError::TooManyMembers { max: 2 })
        );
        assert_eq!(
            b.pending_value(b"a"),
            Some(1),
            "refused call changed nothing"
        );
        assert_eq!(
            b.incr(&pairs(&[("a", 5)]), Some(&cap(2))),
            Ok(vec![6]),
            "existing members still grow"
        );
        assert_eq!(
            b.incr(&pairs(&[("c", 1)]), None),
            Ok(vec![1]),
            "replicated writes ignore the bound"
        );
    }

    #[test]
    fn drain_is_oldest_first_and_bounded() {
        let mut b = Buffer::new();
        b.incr(&pairs(&[("x", 1), ("y", 2), ("z", 3)]), None)
            .unwrap();
        b.incr(&pairs(&[("x", 10)]), None).unwrap();
        assert_eq!(names(&b.drain(2)), vec![("x".into(), 11), ("y".into(), 2)]);
        assert_eq!(names(&b.drain(10)), vec![("z".into(), 3)]);
        assert!(b.drain(10).is_empty());
        assert!(b.is_empty());
    }

    #[test]
    fn lease_moves_entries_and_new_increments_stay_pending() {
        let mut b = Buffer::new();
        b.incr(&pairs(&[("a", 1), ("b", 2)]), None).unwrap();
        let l = b.lease(1000, 500, 10, 7).unwrap();
        assert_eq!(
            l,
            Lease {
                batch_id: 7,
                delivery: 1,
                deadline_ms: 1500,
                fresh: true
            }
        );
        b.incr(&pairs(&[("a", 5)]), None).unwrap();
        assert_eq!(b.pending_value(b"a"), Some(5));
        assert_eq!(
            names(&b.batch(7).unwrap().entries),
            vec![("a".into(), 1), ("b".into(), 2)]
        );
        // Before the lease runs out, the next lease takes the new pending entries.
        let l2 = b.lease(1200, 500, 10, 8).unwrap();
        assert_eq!((l2.batch_id, l2.fresh), (8, true));
        assert_eq!(
            b.lease(1300, 500, 10, 9),
            None,
            "nothing pending, nothing expired"
        );
        // After batch 7's lease ran out it comes back first, whole, delivery 2.
        let again = b.lease(1500, 500, 10, 9).unwrap();
        assert_eq!(
            again,
            Lease {
                batch_id: 7,
                delivery: 2,
                deadline_ms: 2000,
                fresh: false
            }
        );
        assert_eq!(
            names(&b.batch(7).unwrap().entries),
            vec![("a".into(), 1), ("b".into(), 2)]
        );
        // Then 8 (expired at 1700) before 7 (2000).
        assert_eq!(b.lease(2100, 100, 10, 9).unwrap().batch_id, 8);
        assert!(b.ack(7));
        assert!(!b.ack(7), "second ack finds nothing");
        assert!(b.ack(8));
        assert!(b.is_empty());
    }

    #[test]
    fn plain_drain_never_touches_batches() {
        let mut b = Buffer::new();
        b.incr(&pairs(&[("a", 1)]), None).unwrap();
        b.lease(0, 10, 10, 1).unwrap();
        assert!(b.drain(10).is_empty());
        assert_eq!(b.batch_count(), 1);
    }

    #[test]
    fn removal_by_name_leaves_order_consistent() {
        let mut b = Buffer::new();
        b.incr(&pairs(&[("a", 1), ("b", 2), ("c", 3)]), None)
            .unwrap();
        b.take_members(&[b"b"]);
        b.incr(&pairs(&[("b", 9)]), None).unwrap();
        let order: Vec<_> = b
            .pending_in_order()
            .map(|(m, v)| (m.to_vec(), v.clone()))
            .collect();
        assert_eq!(
            order,
            vec![
                (b"a".to_vec(), Value::Plain(1)),
                (b"c".to_vec(), Value::Plain(3)),
                (b"b".to_vec(), Value::Plain(9))
            ]
        );
        assert_eq!(
            names(&b.drain(10)),
            vec![("a".into(), 1), ("c".into(), 3), ("b".into(), 9)]
        );
        // Heavy churn leaves nothing behind (holes are bounded: pending.rs tests).
        for i in 0..1000 {
            let m = format!("m{}", i % 3);
            b.incr(&[(m.as_bytes(), 1)], None).unwrap();
            b.take_members(&[m.as_bytes()]);
        }
        assert_eq!(b.pending_len(), 0);
    }

    #[test]
    fn put_batch_replays_a_lease() {
        let mut master = Buffer::new();
        let mut replica = Buffer::new();
        let p = pairs(&[("a", 1), ("b", 2), ("c", 3)]);
        master.incr(&p, None).unwrap();
        replica.incr(&p, None).unwrap();
        master.lease(0, 100, 2, 42).unwrap();
        let batch = master.batch(42).unwrap().clone();
        replica.put_batch(42, batch);
        assert_eq!(replica.batch(42), master.batch(42));
        let a: Vec<_> = master
            .pending_in_order()
            .map(|(m, v)| (m.to_vec(), v.clone()))
            .collect();
        let b: Vec<_> = replica
            .pending_in_order()
            .map(|(m, v)| (m.to_vec(), v.clone()))
            .collect();
        assert_eq!(a, b);
        assert!(replica.set_lease(42, 500, 2));
        assert!(!replica.set_lease(43, 500, 2));
        assert_eq!(replica.expired_batch(499), None);
        assert_eq!(replica.expired_batch(500), Some(42));
    }

    fn upd<'a>(op: Op, c: &'a str, v: &'a str) -> Update<'a> {
        Update {
            column: c.as_bytes(),
            op,
            int: v.parse().unwrap_or(0),
            bytes: if op == Op::Set { v.as_bytes() } else { &[] },
        }
    }

    #[test]
    fn rows_and_plain_members_share_order_caps_and_counts() {
        let mut b = Buffer::new();
        b.incr(&pairs(&[("p", 1)]), None).unwrap();
        assert_eq!(
            b.update(
                b"r",
                &[upd(Op::Incr, "n", "1"), upd(Op::Set, "s", "x")],
                Some(&cap(2))
            ),
            Ok(2)
        );
        assert_eq!(b.pending_columns(), 3);
        assert_eq!(
            b.update(b"q", &[upd(Op::Incr, "n", "1")], Some(&cap(2))),
            Err(UpdateError::TooManyMembers { max: 2 })
        );
        // BUFINCR on a row adds its default column (a new column, capped).
        assert_eq!(b.incr(&pairs(&[("r", 5)]), Some(&cap(2))), Ok(vec![5]));
        assert_eq!(b.pending_columns(), 4);
        assert_eq!(
            b.update(b"r", &[upd(Op::Max, "value", "1")], None),
            Err(UpdateError::OpConflict {
                at: 0,
                held: Op::Incr,
                wanted: Op::Max
            })
        );
        // Plain member gains a row through BUFUPDATE.
        assert_eq!(b.update(b"p", &[upd(Op::Min, "lo", "-3")], None), Ok(2));
        assert_eq!(b.pending_columns(), 5);
        let drained = b.drain(10);
        assert_eq!(drained.len(), 2);
        assert_eq!(&drained[0].0[..], b"p");
        assert_eq!(b.pending_columns(), 0);
        assert!(b.is_empty());
    }
}
