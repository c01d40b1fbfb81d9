//! Counters shown by `INFO hacks`.
//!
//! Commands run on the server's main thread only, so a counter is bumped with a plain
//! load + store (no locked read-modify-write on the hot path); the atomic type only keeps the
//! static `Sync`.

use std::ffi::CStr;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }

    #[inline]
    pub fn incr(&self) {
        self.add(1);
    }

    #[inline]
    pub fn add(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Default for Counter {
    fn default() -> Self {
        Self::new()
    }
}

/// One `INFO` field: its name and its counter.
pub type Field = (&'static CStr, &'static Counter);

/// Panics caught by the command guard (each one answered with an error reply).
pub static PANICS_CAUGHT: Counter = Counter::new();

pub const MODULE_FIELDS: &[Field] = &[(c"panics_caught", &PANICS_CAUGHT)];
