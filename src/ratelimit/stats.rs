//! `INFO hacks` counters for HACK.RATEHIT, HACK.QUOTA and their waits.

use crate::module::stats::{Counter, Field};

pub static ALLOWED: Counter = Counter::new();
pub static DENIED: Counter = Counter::new();
pub static PEEKS: Counter = Counter::new();
pub static QUOTA_ALLOWED: Counter = Counter::new();
pub static QUOTA_DENIED: Counter = Counter::new();
pub static QUOTA_PEEKS: Counter = Counter::new();
/// Calls that blocked (WAIT), and how their waits ended.
pub static WAITS: Counter = Counter::new();
pub static WAITS_ADMITTED: Counter = Counter::new();
pub static WAIT_TIMEOUTS: Counter = Counter::new();
pub static WAIT_DISCONNECTS: Counter = Counter::new();
pub static WAIT_ERRORS: Counter = Counter::new();

pub const FIELDS: &[Field] = &[
    (c"ratehit_allowed", &ALLOWED),
    (c"ratehit_denied", &DENIED),
    (c"ratehit_peeks", &PEEKS),
    (c"quota_allowed", &QUOTA_ALLOWED),
    (c"quota_denied", &QUOTA_DENIED),
    (c"quota_peeks", &QUOTA_PEEKS),
    (c"ratelimit_waits", &WAITS),
    (c"ratelimit_waits_admitted", &WAITS_ADMITTED),
    (c"ratelimit_waits_timed_out", &WAIT_TIMEOUTS),
    (c"ratelimit_waits_disconnected", &WAIT_DISCONNECTS),
    (c"ratelimit_waits_failed", &WAIT_ERRORS),
];
