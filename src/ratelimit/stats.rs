//! `INFO hacks` counters for HACK.RATEHIT, HACK.QUOTA and their waits.

crate::counters! {
    RATEHIT_ALLOWED,
    RATEHIT_DENIED,
    RATEHIT_PEEKS,
    QUOTA_ALLOWED,
    QUOTA_DENIED,
    QUOTA_PEEKS,
    /// Calls that blocked (WAIT), and how their waits ended.
    RATELIMIT_WAITS,
    RATELIMIT_WAITS_ADMITTED,
    RATELIMIT_WAITS_TIMED_OUT,
    RATELIMIT_WAITS_DISCONNECTED,
    RATELIMIT_WAITS_FAILED,
}
