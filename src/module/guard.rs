//! The one panic guard. Every entry point the server calls into (command handlers, data-type
//! callbacks, blocked-client callbacks, timers, events) runs inside [`guarded`]: a panic
//! crossing into C would abort redis-server, so it is caught here, counted in
//! `panics_caught` (`INFO hacks`) and logged.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::command::log;
use super::stats::PANICS_CAUGHT;

/// Run `f`; `None` if it panicked. `what` names the entry point for the log line, e.g.
/// "series load" or "HACK.LOCK".
/// `what` is only formatted when a panic is logged, so the happy path allocates nothing.
pub fn guarded<R>(what: impl std::fmt::Display, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(_) => {
            PANICS_CAUGHT.incr();
            log(
                None,
                c"warning",
                &format!("hacks: internal error in {what}; caught, nothing was aborted"),
            );
            None
        }
    }
}
