//! The FIFO queues of clients waiting for locks, in plain Rust. The server glue
//! (`waiters.rs`) keeps one [`Queues`] for the whole module, with blocked-client handles as
//! `H`; the unit tests use integers.
//!
//! - One queue per (database, key name), created with its first waiter and dropped with its
//!   last, so a lock nobody waits for costs nothing here.
//! - Waiters leave from the front (hand-off) or from anywhere (timeout, disconnect): each
//!   waiter has a sequence number, and a queue is a `BTreeMap` by that number, so both are
//!   O(log n), and a handle index finds a waiter's queue in O(1).
//! - Each queue remembers the one timer that will look at its lock again (at the holder's
//!   expiry); when the queue goes, its timer is handed back so the glue can stop it.
//! - The waiter type is a parameter (anything [`Queued`]): `HACK.LOCK` queues [`Waiter`]s
//!   (the default), semaphores queue their own (`semaphore::admit::SemWaiter`, which also
//!   carries the permits asked for). [`Queues::iter`] shows a queue in order without taking
//!   anything out, so a semaphore can decide how many waiters at the front to admit.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

pub use crate::module::keytimer::{KeyId, Timer, TimerSlots};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiter<H> {
    pub handle: H,
    pub owner: Vec<u8>,
    pub ttl_ms: i64,
    /// The module timer that ends the wait at its WAIT deadline, if any.
    pub wake: Option<u64>,
}

/// What a queue needs to know of a waiter: the handle it is found by (unique among all
/// waiters of all keys), and the timer that ends its wait (stopped when it leaves early).
pub trait Queued<H> {
    fn handle(&self) -> H;
    fn wake(&self) -> Option<u64>;
}

impl<H: Copy> Queued<H> for Waiter<H> {
    fn handle(&self) -> H {
        self.handle
    }
    fn wake(&self) -> Option<u64> {
        self.wake
    }
}

#[derive(Debug)]
struct KeyQueue<W> {
    waiting: BTreeMap<u64, W>,
    timer: Option<Timer>,
}

#[derive(Debug)]
pub struct Queues<H, W = Waiter<H>> {
    queues: HashMap<KeyId, KeyQueue<W>>,
    index: HashMap<H, (KeyId, u64)>,
    next_seq: u64,
}

/// A waiter taken out of its queue, and the queue's timer if the queue is now gone.
#[derive(Debug, PartialEq, Eq)]
pub struct Left<W> {
    pub key: KeyId,
    pub waiter: W,
    pub orphaned_timer: Option<Timer>,
}

impl<H: Copy + Eq + Hash, W: Queued<H>> Default for Queues<H, W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H: Copy + Eq + Hash, W: Queued<H>> Queues<H, W> {
    pub fn new() -> Self {
        Queues {
            queues: HashMap::new(),
            index: HashMap::new(),
            next_seq: 0,
        }
    }

    /// No waiter anywhere (the fast path of every keyspace event).
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Waiters of all locks.
    pub fn total(&self) -> usize {
        self.index.len()
    }

    pub fn len(&self, key: &KeyId) -> usize {
        self.queues.get(key).map_or(0, |q| q.waiting.len())
    }

    /// Queue a waiter at the back; returns its position (1 = next in line). A handle that
    /// is already queued is not queued twice (returns `None`).
    pub fn push(&mut self, key: KeyId, waiter: W) -> Option<usize> {
        let handle = waiter.handle();
        if self.index.contains_key(&handle) {
            return None;
        }
        let seq = self.next_seq;
        // 2^64 waiters never queue up; wrapping keeps this total regardless.
        self.next_seq = self.next_seq.wrapping_add(1);
        self.index.insert(handle, (key.clone(), seq));
        let q = self.queues.entry(key).or_insert_with(|| KeyQueue {
            waiting: BTreeMap::new(),
            timer: None,
        });
        q.waiting.insert(seq, waiter);
        Some(q.waiting.len())
    }

    /// Take the first waiter of `key`.
    pub fn pop_front(&mut self, key: &KeyId) -> Option<Left<W>> {
        let q = self.queues.get_mut(key)?;
        let (_, waiter) = q.waiting.pop_first()?;
        self.index.remove(&waiter.handle());
        let orphaned_timer = self.drop_if_empty(key);
        Some(Left {
            key: key.clone(),
            waiter,
            orphaned_timer,
        })
    }

    /// Take a waiter out wherever it is (timeout, disconnect). `None` if it is not queued
    /// (already served).
    pub fn remove(&mut self, handle: H) -> Option<Left<W>> {
        let (key, seq) = self.index.remove(&handle)?;
        let waiter = self.queues.get_mut(&key)?.waiting.remove(&seq)?;
        let orphaned_timer = self.drop_if_empty(&key);
        Some(Left {
            key,
            waiter,
            orphaned_timer,
        })
    }

    /// Take every waiter of `key` out, in order (they all get an error), with the timer.
    pub fn take_all(&mut self, key: &KeyId) -> (Vec<W>, Option<Timer>) {
        let Some(q) = self.queues.remove(key) else {
            return (Vec::new(), None);
        };
        let waiters: Vec<W> = q.waiting.into_values().collect();
        for w in &waiters {
            self.index.remove(&w.handle());
        }
        (waiters, q.timer)
    }

    /// The waiters of `key`, first in line first, left where they are.
    pub fn iter(&self, key: &KeyId) -> impl Iterator<Item = &W> {
        self.queues
            .get(key)
            .into_iter()
            .flat_map(|q| q.waiting.values())
    }

    /// Every lock somebody waits for.
    pub fn keys(&self) -> Vec<KeyId> {
        self.queues.keys().cloned().collect()
    }

    fn drop_if_empty(&mut self, key: &KeyId) -> Option<Timer> {
        if self.queues.get(key).is_some_and(|q| q.waiting.is_empty()) {
            return self.queues.remove(key).and_then(|q| q.timer);
        }
        None
    }
}

impl<H: Copy + Eq + Hash, W: Queued<H>> TimerSlots for Queues<H, W> {
    fn slot(&self, key: &KeyId) -> Option<(usize, &Option<Timer>)> {
        self.queues.get(key).map(|q| (q.waiting.len(), &q.timer))
    }

    fn slot_mut(&mut self, key: &KeyId) -> Option<&mut Option<Timer>> {
        self.queues.get_mut(key).map(|q| &mut q.timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(name: &str) -> KeyId {
        (0, name.as_bytes().to_vec())
    }

    fn w(handle: u32) -> Waiter<u32> {
        Waiter {
            handle,
            owner: format!("o{handle}").into_bytes(),
            ttl_ms: 100,
            wake: None,
        }
    }

    #[test]
    fn first_in_first_out_per_key() {
        let mut q = Queues::new();
        assert!(q.is_empty());
        assert_eq!(q.push(k("a"), w(1)), Some(1));
        assert_eq!(q.push(k("b"), w(2)), Some(1));
        assert_eq!(q.push(k("a"), w(3)), Some(2));
        assert_eq!(q.push(k("a"), w(1)), None, "a handle waits once");
        assert_eq!((q.len(&k("a")), q.len(&k("b")), q.total()), (2, 1, 3));
        assert_eq!(q.pop_front(&k("a")).map(|l| l.waiter.handle), Some(1));
        assert_eq!(q.pop_front(&k("a")).map(|l| l.waiter.handle), Some(3));
        assert_eq!(q.pop_front(&k("a")), None);
        assert_eq!(q.len(&k("a")), 0);
        assert_eq!(q.total(), 1);
    }

    #[test]
    fn databases_are_separate() {
        let mut q = Queues::new();
        q.push((0, b"x".to_vec()), w(1));
        q.push((1, b"x".to_vec()), w(2));
        assert_eq!(q.len(&(0, b"x".to_vec())), 1);
        assert_eq!(
            q.pop_front(&(1, b"x".to_vec())).map(|l| l.waiter.handle),
            Some(2)
        );
    }

    #[test]
    fn leaving_from_the_middle_keeps_the_order() {
        let mut q = Queues::new();
        for h in 1..=4 {
            q.push(k("a"), w(h));
        }
        let left = q.remove(3).unwrap();
        assert_eq!((left.key, left.waiter.handle), (k("a"), 3));
        assert_eq!(q.remove(3), None, "already gone");
        let order: Vec<u32> = std::iter::from_fn(|| q.pop_front(&k("a")))
            .map(|l| l.waiter.handle)
            .collect();
        assert_eq!(order, vec![1, 2, 4]);
        assert!(q.is_empty());
    }

    #[test]
    fn the_timer_goes_back_with_the_last_waiter() {
        let mut q = Queues::new();
        let t = Timer { id: 9, due_ms: 50 };
        assert_eq!(q.set_timer(&k("a"), t), Some(t), "no queue: not kept");
        q.push(k("a"), w(1));
        q.push(k("a"), w(2));
        assert_eq!(q.set_timer(&k("a"), t), None);
        assert_eq!(q.timer(&k("a")), Some(t));
        assert_eq!(q.pop_front(&k("a")).unwrap().orphaned_timer, None);
        assert_eq!(q.remove(2).unwrap().orphaned_timer, Some(t));
        assert_eq!(q.timer(&k("a")), None);
        q.push(k("a"), w(3));
        q.set_timer(&k("a"), t);
        assert_eq!(q.clear_timer(&k("a")), Some(t));
        assert_eq!(q.pop_front(&k("a")).unwrap().orphaned_timer, None);
    }

    #[test]
    fn take_all_empties_a_queue() {
        let mut q = Queues::new();
        q.push(k("a"), w(1));
        q.push(k("a"), w(2));
        q.push(k("b"), w(3));
        let t = Timer { id: 1, due_ms: 5 };
        q.set_timer(&k("a"), t);
        let (all, timer) = q.take_all(&k("a"));
        assert_eq!(all.iter().map(|w| w.handle).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(timer, Some(t));
        assert_eq!(q.total(), 1);
        assert_eq!(q.remove(1), None);
        assert_eq!(q.keys(), vec![k("b")]);
    }

    #[test]
    fn iter_shows_a_queue_in_order_and_takes_nothing() {
        let mut q = Queues::new();
        for h in [5, 2, 9] {
            q.push(k("a"), w(h));
        }
        q.push(k("b"), w(1));
        let order: Vec<u32> = q.iter(&k("a")).map(|w| w.handle).collect();
        assert_eq!(order, vec![5, 2, 9]);
        assert_eq!(q.len(&k("a")), 3);
        assert_eq!(q.iter(&k("c")).count(), 0);
    }
}
