//! `INFO hacks` counters for HACK.RATEHIT.

use crate::module::stats::{Counter, Field};

pub static ALLOWED: Counter = Counter::new();
pub static DENIED: Counter = Counter::new();
pub static PEEKS: Counter = Counter::new();

pub const FIELDS: &[Field] = &[
    (c"ratehit_allowed", &ALLOWED),
    (c"ratehit_denied", &DENIED),
    (c"ratehit_peeks", &PEEKS),
];
