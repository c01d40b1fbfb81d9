//! A buffer's pending members in arrival order, in plain Rust: found by name in O(1),
//! handed out oldest first, removable by name (a replicated drain names its members).
//!
//! Memory is the point (a buffer holds every row seen in the last minutes): each member is
//! one slot of an arrival-ordered deque (its name and value, 32 bytes) plus one 8-byte
//! sequence number in a hash table that hashes the name and compares against the slot. The
//! name is stored once, not shared between a map and an order queue (which cost an `Rc`
//! header, a 40-byte map slot and a 24-byte queue slot per member).
//!
//! A member removed by name leaves a hole in the deque; holes at the front are dropped at
//! once, and the deque is rebuilt (O(pending)) when holes outnumber members, so its size
//! stays O(pending) and every operation O(1) amortized.

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use super::row::{round16, Value};

/// A member name.
pub type Member = Box<[u8]>;

type Slot = Option<(Member, Value)>;

#[derive(Debug, Default, Clone)]
pub struct Pending {
    /// Arrival order; `None` where a member left by name.
    slots: VecDeque<Slot>,
    /// Sequence number of `slots[0]`; a member's sequence number is its slot's.
    base: u64,
    /// Sequence numbers of the live slots, hashed by member name.
    index: HashTable<u64>,
    hasher: RandomState,
    live: usize,
}

/// The live slot of sequence number `seq`.
fn slot(slots: &VecDeque<Slot>, base: u64, seq: u64) -> Option<&(Member, Value)> {
    let i = usize::try_from(seq.checked_sub(base)?).ok()?;
    slots.get(i)?.as_ref()
}

impl Pending {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    fn hash(&self, m: &[u8]) -> u64 {
        self.hasher.hash_one(m)
    }

    fn seq_of(&self, m: &[u8]) -> Option<u64> {
        let (slots, base) = (&self.slots, self.base);
        self.index
            .find(self.hash(m), |&s| {
                slot(slots, base, s).is_some_and(|e| &*e.0 == m)
            })
            .copied()
    }

    pub fn get(&self, m: &[u8]) -> Option<&Value> {
        slot(&self.slots, self.base, self.seq_of(m)?).map(|e| &e.1)
    }

    pub fn get_mut(&mut self, m: &[u8]) -> Option<&mut Value> {
        let i = usize::try_from(self.seq_of(m)?.checked_sub(self.base)?).ok()?;
        self.slots.get_mut(i)?.as_mut().map(|e| &mut e.1)
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        self.seq_of(m).is_some()
    }

    /// Append `m`, which the caller checked is not pending.
    pub fn push(&mut self, m: &[u8], v: Value) {
        // 2^64 arrivals never happen; wrapping keeps this total regardless.
        let seq = self.base.wrapping_add(self.slots.len() as u64);
        self.slots.push_back(Some((m.into(), v)));
        self.live = self.live.saturating_add(1);
        let h = self.hash(m);
        let (slots, base, hasher) = (&self.slots, self.base, &self.hasher);
        self.index.insert_unique(h, seq, |&s| {
            slot(slots, base, s).map_or(0, |e| hasher.hash_one(&*e.0))
        });
    }

    /// Take `m` out wherever it is.
    pub fn remove(&mut self, m: &[u8]) -> Option<Value> {
        let h = self.hash(m);
        let (slots, base) = (&self.slots, self.base);
        let seq = match self
            .index
            .find_entry(h, |&s| slot(slots, base, s).is_some_and(|e| &*e.0 == m))
        {
            Ok(e) => e.remove().0,
            Err(_) => return None,
        };
        let i = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        let (_, v) = self.slots.get_mut(i)?.take()?;
        self.live = self.live.saturating_sub(1);
        self.tidy();
        Some(v)
    }

    /// Take the oldest member.
    pub fn pop_oldest(&mut self) -> Option<(Member, Value)> {
        loop {
            let front = self.slots.pop_front()?;
            let seq = self.base;
            self.base = self.base.wrapping_add(1);
            let Some((m, v)) = front else {
                continue;
            };
            let h = self.hash(&m);
            if let Ok(e) = self.index.find_entry(h, |&s| s == seq) {
                e.remove();
            }
            self.live = self.live.saturating_sub(1);
            self.tidy();
            return Some((m, v));
        }
    }

    /// Oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (&Member, &Value)> {
        self.slots.iter().flatten().map(|(m, v)| (m, v))
    }

    /// Drop holes at the front; rebuild once holes outnumber members.
    fn tidy(&mut self) {
        while matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
            self.base = self.base.wrapping_add(1);
        }
        if self.live == 0 {
            self.slots.clear();
            self.base = 0;
            return;
        }
        let bound = self.live.saturating_mul(2).saturating_add(16);
        if self.slots.len() > bound {
            let live: VecDeque<Slot> = self.slots.drain(..).filter(Option::is_some).collect();
            self.slots = live;
            self.base = 0;
            self.index.clear();
            let (slots, hasher) = (&self.slots, &self.hasher);
            for (i, e) in slots.iter().enumerate() {
                if let Some((m, _)) = e {
                    let seq = i as u64;
                    self.index.insert_unique(hasher.hash_one(&**m), seq, |&s| {
                        slot(slots, 0, s).map_or(0, |e| hasher.hash_one(&*e.0))
                    });
                }
            }
        }
    }

    /// Heap bytes held (for `MEMORY USAGE`): the deque, the index, names and row values.
    pub fn heap_bytes(&self) -> usize {
        let slots = self
            .slots
            .capacity()
            .saturating_mul(std::mem::size_of::<Slot>());
        let owned = self
            .iter()
            .map(|(m, v)| round16(m.len()).saturating_add(v.heap_bytes()))
            .fold(0, usize::saturating_add);
        slots
            .saturating_add(self.index.allocation_size())
            .saturating_add(owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &Pending) -> Vec<String> {
        p.iter()
            .map(|(m, _)| String::from_utf8(m.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn order_lookup_and_removal_agree_with_a_model() {
        // The model: a Vec in arrival order.
        let mut p = Pending::new();
        let mut model: Vec<(String, i64)> = Vec::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for step in 0..20_000i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let name = format!("m{}", x % 300);
            match x % 5 {
                0 | 1 => {
                    if !p.contains(name.as_bytes()) {
                        p.push(name.as_bytes(), Value::Plain(step));
                        model.push((name, step));
                    }
                }
                2 => {
                    let got = p.remove(name.as_bytes());
                    let at = model.iter().position(|(m, _)| *m == name);
                    let want = at.map(|i| Value::Plain(model.remove(i).1));
                    assert_eq!(got, want);
                }
                3 => {
                    let got = p.pop_oldest().map(|(m, v)| (m.to_vec(), v));
                    let want = (!model.is_empty()).then(|| model.remove(0));
                    assert_eq!(got, want.map(|(m, v)| (m.into_bytes(), Value::Plain(v))));
                }
                _ => {
                    if let Some(v) = p.get_mut(name.as_bytes()) {
                        *v = Value::Plain(-step);
                        let e = model.iter_mut().find(|(m, _)| *m == name).unwrap();
                        e.1 = -step;
                    }
                }
            }
            assert_eq!(p.len(), model.len());
            assert!(p.slots.len() <= model.len() * 2 + 16, "holes stay bounded");
        }
        let want: Vec<String> = model.iter().map(|(m, _)| m.clone()).collect();
        assert_eq!(names(&p), want);
        for (m, v) in &model {
            assert_eq!(p.get(m.as_bytes()), Some(&Value::Plain(*v)));
        }
        assert_eq!(p.get(b"nobody"), None);
    }
}
