//! `INFO hacks` counters for the write buffers.

use crate::module::stats::{Counter, Field};

pub static INCREMENTS: Counter = Counter::new();
pub static UPDATES: Counter = Counter::new();
pub static REFUSED_FULL: Counter = Counter::new();
pub static DRAINED_ENTRIES: Counter = Counter::new();
pub static BATCHES_LEASED: Counter = Counter::new();
pub static LEASES_EXPIRED: Counter = Counter::new();
pub static BATCHES_ACKED: Counter = Counter::new();

pub const FIELDS: &[Field] = &[
    (c"buffer_increments", &INCREMENTS),
    (c"buffer_column_updates", &UPDATES),
    (c"buffer_refused_full", &REFUSED_FULL),
    (c"buffer_drained_entries", &DRAINED_ENTRIES),
    (c"buffer_batches_leased", &BATCHES_LEASED),
    (c"buffer_leases_expired", &LEASES_EXPIRED),
    (c"buffer_batches_acked", &BATCHES_ACKED),
];
