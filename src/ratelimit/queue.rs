//! The FIFO queues of clients waiting for rate-limit capacity (`WAIT`), in plain Rust. The
//! server glue (`waiters.rs`) keeps one [`Queues`] for the module; unit tests use integers.
//!
//! A waiter may wait on several keys at once (HACK.QUOTA): it is queued on every one of its
//! keys, and is admitted only when it is at the head of all of them. Sequence numbers are
//! global and increasing, so the oldest waiter of the whole server is at the head of each
//! of its queues: some waiter can always make progress (no deadlock), and no waiter is ever
//! overtaken on any of its keys by a later one.
//!
//! - One queue per (database, key name), created with its first waiter and dropped with
//!   its last: a key nobody waits for costs nothing here.
//! - Each queue remembers the one timer that looks at it again (when its head can be
//!   admitted); a queue that goes away hands its timer back so the glue can stop it.

use std::collections::{BTreeSet, HashMap};

pub use crate::module::keytimer::{KeyId, Timer, TimerSlots};

#[derive(Debug)]
struct KeyQueue {
    seqs: BTreeSet<u64>,
    timer: Option<Timer>,
}

#[derive(Debug)]
pub struct Entry<W> {
    pub handle: usize,
    pub keys: Vec<KeyId>,
    pub data: W,
}

#[derive(Debug)]
pub struct Queues<W> {
    queues: HashMap<KeyId, KeyQueue>,
    entries: HashMap<u64, Entry<W>>,
    by_handle: HashMap<usize, u64>,
    next_seq: u64,
}

impl<W> Default for Queues<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W> TimerSlots for Queues<W> {
    fn slot(&self, key: &KeyId) -> Option<(usize, &Option<Timer>)> {
        self.queues.get(key).map(|q| (q.seqs.len(), &q.timer))
    }

    fn slot_mut(&mut self, key: &KeyId) -> Option<&mut Option<Timer>> {
        self.queues.get_mut(key).map(|q| &mut q.timer)
    }
}

impl<W> Queues<W> {
    pub fn new() -> Self {
        Queues {
            queues: HashMap::new(),
            entries: HashMap::new(),
            by_handle: HashMap::new(),
            next_seq: 0,
        }
    }

    /// No waiter anywhere (the fast path of every command and keyspace event).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn total(&self) -> usize {
        self.entries.len()
    }

    pub fn len(&self, key: &KeyId) -> usize {
        self.queues.get(key).map_or(0, |q| q.seqs.len())
    }

    /// Queue a waiter at the back of each of its keys' queues; `None` if the handle is
    /// already queued.
    pub fn push(&mut self, handle: usize, keys: Vec<KeyId>, data: W) -> Option<u64> {
        if self.by_handle.contains_key(&handle) {
            return None;
        }
        let seq = self.next_seq;
        // 2^64 waiters never queue up; wrapping keeps this total regardless.
        self.next_seq = self.next_seq.wrapping_add(1);
        for k in &keys {
            self.queues
                .entry(k.clone())
                .or_insert_with(|| KeyQueue {
                    seqs: BTreeSet::new(),
                    timer: None,
                })
                .seqs
                .insert(seq);
        }
        self.by_handle.insert(handle, seq);
        self.entries.insert(seq, Entry { handle, keys, data });
        Some(seq)
    }

    /// The first waiter of `key`'s queue.
    pub fn head(&self, key: &KeyId) -> Option<u64> {
        self.queues.get(key)?.seqs.first().copied()
    }

    pub fn entry(&self, seq: u64) -> Option<&Entry<W>> {
        self.entries.get(&seq)
    }

    /// Whether `seq` is first in the queue of every key it waits on.
    pub fn is_head_everywhere(&self, seq: u64) -> bool {
        self.entries.get(&seq).is_some_and(|e| {
            e.keys
                .iter()
                .all(|k| self.queues.get(k).and_then(|q| q.seqs.first()) == Some(&seq))
        })
    }

    pub fn seq_of(&self, handle: usize) -> Option<u64> {
        self.by_handle.get(&handle).copied()
    }

    /// Take a waiter out of all its queues. Returns it and the timers of the queues that
    /// are now gone (to be stopped).
    pub fn remove(&mut self, seq: u64) -> Option<(Entry<W>, Vec<Timer>)> {
        let e = self.entries.remove(&seq)?;
        self.by_handle.remove(&e.handle);
        let mut orphaned = Vec::new();
        for k in &e.keys {
            if let Some(q) = self.queues.get_mut(k) {
                q.seqs.remove(&seq);
                if q.seqs.is_empty() {
                    if let Some(t) = self.queues.remove(k).and_then(|q| q.timer) {
                        orphaned.push(t);
                    }
                }
            }
        }
        Some((e, orphaned))
    }

    /// Every waiter of `key`, in order.
    pub fn waiters_of(&self, key: &KeyId) -> Vec<u64> {
        self.queues
            .get(key)
            .map(|q| q.seqs.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Every key somebody waits on.
    pub fn keys(&self) -> Vec<KeyId> {
        self.queues.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(name: &str) -> KeyId {
        (0, name.as_bytes().to_vec())
    }

    #[test]
    fn fifo_per_key_and_head_of_all() {
        let mut q: Queues<()> = Queues::new();
        let a = q.push(1, vec![k("x")], ()).unwrap();
        let b = q.push(2, vec![k("x"), k("y")], ()).unwrap();
        let c = q.push(3, vec![k("y")], ()).unwrap();
        assert!(q.push(1, vec![k("z")], ()).is_none(), "a handle waits once");
        assert_eq!(q.head(&k("x")), Some(a));
        assert_eq!(q.head(&k("y")), Some(b));
        assert!(q.is_head_everywhere(a));
        assert!(!q.is_head_everywhere(b), "behind a on x");
        assert!(
            !q.is_head_everywhere(c),
            "behind b on y: never overtakes it"
        );
        q.remove(a).unwrap();
        assert!(q.is_head_everywhere(b));
        let (e, orphaned) = q.remove(b).unwrap();
        assert_eq!(e.handle, 2);
        assert!(orphaned.is_empty());
        assert!(q.is_head_everywhere(c));
        assert_eq!(q.total(), 1);
        assert_eq!(q.len(&k("x")), 0);
    }

    #[test]
    fn timers_go_back_with_the_last_waiter() {
        let mut q: Queues<()> = Queues::new();
        let t = Timer { id: 9, due_ms: 50 };
        assert_eq!(q.set_timer(&k("a"), t), Some(t), "no queue: not kept");
        let s = q.push(1, vec![k("a"), k("b")], ()).unwrap();
        assert_eq!(q.set_timer(&k("a"), t), None);
        assert_eq!(q.timer(&k("a")), Some(t));
        assert_eq!(q.seq_of(1), Some(s));
        let (_, orphaned) = q.remove(s).unwrap();
        assert_eq!(orphaned, vec![t]);
        assert!(q.is_empty());
        assert!(q.keys().is_empty());
        assert_eq!(q.seq_of(1), None);
    }
}
