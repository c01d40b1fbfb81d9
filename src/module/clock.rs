//! The system's wall clock in microseconds, for ids that must grow across servers (fencing
//! tokens, batch ids).
//!
//! Commands take their notion of "now" from the server (`Ctx::now_us`), which Redis 7.0 only
//! gives in milliseconds. Ids use `max(last + 1, wall_us)`: with a millisecond clock, a lock
//! released on one node and taken on another within the same millisecond (a slot move under
//! load) could get a token below the last one the first node handed out; with microseconds
//! that needs two acquisitions on two servers within one microsecond, which the network
//! between them rules out (given their clocks agree).

/// Microseconds since the Unix epoch (`CLOCK_REALTIME`), 0 if the clock cannot be read.
pub fn wall_us() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for the duration of the call. (`time_t` and
    // `c_long` are i64 on the 64-bit Linux targets Redis modules run on.)
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec
        .saturating_mul(1_000_000)
        .saturating_add(ts.tv_nsec / 1000)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_microseconds() {
        let a = super::wall_us();
        assert!(a > 1_700_000_000_000_000, "{a}");
        assert!(super::wall_us() >= a);
    }
}
