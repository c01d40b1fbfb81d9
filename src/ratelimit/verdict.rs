//! What every algorithm returns: the reply, and what (if anything) to store.

/// The five integers of the reply, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// The capacity: `limit`, or the burst capacity for GCRA.
    pub limit: i64,
    /// How many more cost-1 hits would be admitted right after this call.
    pub remaining: i64,
    /// -1 when allowed; when denied, ms until the same call would be admitted; -1 with
    /// `allowed == false` when the cost exceeds the capacity and can never be admitted.
    pub retry_after_ms: i64,
    /// ms until the limiter is back to full capacity (0 when it already is).
    pub reset_after_ms: i64,
}

impl Verdict {
    pub fn to_array(self) -> [i64; 5] {
        [
            i64::from(self.allowed),
            self.limit,
            self.remaining,
            self.retry_after_ms,
            self.reset_after_ms,
        ]
    }
}

/// The write a decision asks for (ignored under PEEK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next<S> {
    /// Nothing changed: leave the key exactly as it is.
    Keep,
    /// Store `state`, expiring at `expire_at_ms` (absolute Unix ms): the moment the limiter
    /// is back at full capacity, so no limiter key lives forever.
    Store { state: S, expire_at_ms: i64 },
    /// The limiter is back at full capacity: delete the key.
    Clear,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome<S> {
    pub verdict: Verdict,
    pub next: Next<S>,
}
