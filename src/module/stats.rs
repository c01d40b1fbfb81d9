//! Counters shown by `INFO hacks`.
//!
//! Commands run on the server's main thread only, so a counter is bumped with a plain
//! load + store (no locked read-modify-write on the hot path); the atomic type only keeps the
//! static `Sync`.

use std::ffi::CString;
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

/// One `INFO` field: its counter's name (the field's name in upper case) and the counter.
pub type Field = (&'static str, &'static Counter);

/// Declares counters once each: every name becomes a `pub static` [`Counter`] and a row of
/// `pub const FIELDS: &[Field]`, shown by `INFO hacks` as the name in lower case
/// (`LOCK_WAITS` is `lock_waits`), so a counter and its field cannot drift apart.
#[macro_export]
macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        $(
            $(#[$doc])*
            pub static $name: $crate::module::stats::Counter = $crate::module::stats::Counter::new();
        )*
        /// Every counter above, in `INFO hacks` order.
        pub const FIELDS: &[$crate::module::stats::Field] = &[$((stringify!($name), &$name)),*];
    };
}

/// The `INFO` field name of a counter named `name`: its lower case, NUL-terminated.
pub fn field_name(name: &str) -> Option<CString> {
    CString::new(name.to_ascii_lowercase()).ok()
}

crate::counters! {
    /// Panics caught by the command guard (each one answered with an error reply).
    PANICS_CAUGHT,
}
