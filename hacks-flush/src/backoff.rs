//! Exponential backoff for reconnecting: 100 ms, doubling, at most 5 s.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_secs(5);

pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff { next: FIRST }
    }

    /// The delay to wait now; the following one is twice as long (capped).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (d * 2).min(MAX);
        d
    }

    /// The delay to wait now, logged as `{why}: retrying in N ms`.
    pub fn retry_delay(&mut self, why: std::fmt::Arguments) -> Duration {
        let d = self.next_delay();
        log!("{why}: retrying in {} ms", d.as_millis());
        d
    }

    pub fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_five_seconds_and_resets() {
        let mut b = Backoff::new();
        let ms: Vec<u128> = (0..9).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 100);
    }
}
