//! A semaphore as plain fields, for the RDB, a rewritten AOF and the replicated effect, and
//! its rebuilding from them with every invariant of `holders.rs` checked: a corrupt or
//! hostile payload is refused, never loaded into a value the commands could misread.
//!
//! The form ([`Semaphore::to_parts`]): `limit`, then the holders in owner byte order, each
//! `owner, permits, token, expires_at_ms, bound client id (0 = not bound)` — all fits the
//! RDB's unsigned/signed/string fields. Rebuilding streams: [`Loading::start`] with the
//! holder count the payload claims, one [`Loading::push`] per holder read, then
//! [`Loading::finish`]. The count is a claim, not a budget: memory grows with the holders
//! actually read (a small reservation up front), so a payload claiming 10 000 holders and
//! carrying one costs one.

use super::holders::{Holder, Semaphore, MAX_HOLDERS, MAX_LIMIT, MAX_OWNER_LEN};

/// Why a payload was refused (for the log line of a failed load).
pub type PartsError = &'static str;

/// Holders reserved before any is read.
const RESERVE: usize = 16;

/// A holder's BOUND as stored: its client id, or 0 (Redis client ids start at 1).
pub fn bound_to_id(bound: Option<u64>) -> u64 {
    bound.unwrap_or(0)
}

/// The stored client id back as BOUND.
pub fn bound_from_id(id: u64) -> Option<u64> {
    (id != 0).then_some(id)
}

impl Semaphore {
    /// The limit and the holders, in owner byte order (the order [`Loading`] requires).
    /// Includes holders whose lease ended but were not pruned yet: the state as it is.
    pub fn to_parts(&self) -> (u64, &[Holder]) {
        (self.limit, &self.holders)
    }

    /// Rebuild from `limit` and `holders` in owner byte order, all checked.
    pub fn from_parts(limit: u64, holders: Vec<Holder>) -> Result<Semaphore, PartsError> {
        let claimed = u64::try_from(holders.len()).map_err(|_| "too many holders")?;
        let mut l = Loading::start(limit, claimed)?;
        for h in holders {
            l.push(h)?;
        }
        l.finish()
    }
}

/// A semaphore being rebuilt from a payload, holder by holder.
#[derive(Debug)]
pub struct Loading {
    sem: Semaphore,
    claimed: usize,
}

impl Loading {
    /// Begin with the limit and the number of holders the payload says follow; refuses
    /// impossible ones before anything else is read.
    pub fn start(limit: u64, claimed: u64) -> Result<Loading, PartsError> {
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err("limit out of range");
        }
        let claimed = usize::try_from(claimed).map_err(|_| "too many holders")?;
        if claimed == 0 {
            // The key goes with its last holder: an empty semaphore is never stored.
            return Err("no holders");
        }
        if claimed > MAX_HOLDERS {
            return Err("too many holders");
        }
        let mut sem = Semaphore::new();
        sem.limit = limit;
        sem.holders = Vec::with_capacity(claimed.min(RESERVE));
        Ok(Loading { sem, claimed })
    }

    /// Add the next holder (owners must come in strictly increasing byte order: no
    /// duplicates, and the value's order without sorting).
    pub fn push(&mut self, h: Holder) -> Result<(), PartsError> {
        if self.sem.holders.len() >= self.claimed {
            return Err("more holders than announced");
        }
        if h.owner.is_empty() || h.owner.len() > MAX_OWNER_LEN {
            return Err("owner empty or too long");
        }
        if let Some(prev) = self.sem.holders.last() {
            if prev.owner >= h.owner {
                return Err("owners duplicated or out of order");
            }
        }
        if h.permits == 0 || h.permits > MAX_LIMIT {
            return Err("permits out of range");
        }
        if h.token == 0 {
            return Err("token 0");
        }
        if h.expires_at_ms < 0 {
            return Err("negative deadline");
        }
        if h.bound == Some(0) {
            return Err("bound to client 0");
        }
        // A total above MAX_LIMIT is impossible (every admission kept it within a limit
        // <= MAX_LIMIT); a total above the current limit is not (the limit was lowered).
        let total = self
            .sem
            .in_use
            .checked_add(h.permits)
            .filter(|t| *t <= MAX_LIMIT)
            .ok_or("permits in use out of range")?;
        self.sem.in_use = total;
        self.sem.holders.push(h);
        Ok(())
    }

    /// The semaphore, once exactly the announced number of holders came, with distinct
    /// tokens (each holder got its own acquisition).
    pub fn finish(self) -> Result<Semaphore, PartsError> {
        if self.sem.holders.len() != self.claimed {
            return Err("fewer holders than announced");
        }
        let mut tokens: Vec<u64> = self.sem.holders.iter().map(|h| h.token).collect();
        tokens.sort_unstable();
        if tokens.windows(2).any(|w| w.first() == w.get(1)) {
            return Err("two holders with the same token");
        }
        Ok(self.sem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(owner: &str, permits: u64, token: u64) -> Holder {
        Holder {
            owner: owner.as_bytes().to_vec(),
            permits,
            token,
            expires_at_ms: 1000,
            bound: bound_from_id(0),
        }
    }

    #[test]
    fn round_trip() {
        let mut s = Semaphore::new();
        let mut t = 0;
        let mut mint = || {
            t += 1;
            t
        };
        for (o, n) in [("b", 2), ("a", 1), ("c", 3)] {
            let ask = super::super::admit::Ask {
                owner: o.as_bytes(),
                permits: n,
                limit: 6,
                ttl_ms: 10,
                bound: Some(4),
            };
            s.acquire(&ask, 0, 0, &mut mint).unwrap();
        }
        let (limit, holders) = s.to_parts();
        assert_eq!(
            holders
                .iter()
                .map(|h| bound_to_id(h.bound))
                .collect::<Vec<_>>(),
            [4, 4, 4]
        );
        let back = Semaphore::from_parts(limit, holders.to_vec()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn impossible_values_are_refused() {
        let ok = || vec![h("a", 1, 1), h("b", 2, 2)];
        assert!(
            Semaphore::from_parts(2, ok()).is_ok(),
            "over the limit is possible"
        );
        assert_eq!(Semaphore::from_parts(0, ok()), Err("limit out of range"));
        assert_eq!(
            Semaphore::from_parts(MAX_LIMIT + 1, ok()),
            Err("limit out of range")
        );
        assert_eq!(Semaphore::from_parts(5, vec![]), Err("no holders"));
        let bad: Vec<(Vec<Holder>, PartsError)> = vec![
            (
                vec![h("a", 1, 1), h("a", 1, 2)],
                "owners duplicated or out of order",
            ),
            (
                vec![h("b", 1, 1), h("a", 1, 2)],
                "owners duplicated or out of order",
            ),
            (vec![h("", 1, 1)], "owner empty or too long"),
            (
                vec![h(&"x".repeat(MAX_OWNER_LEN + 1), 1, 1)],
                "owner empty or too long",
            ),
            (vec![h("a", 0, 1)], "permits out of range"),
            (vec![h("a", MAX_LIMIT + 1, 1)], "permits out of range"),
            (
                vec![h("a", MAX_LIMIT, 1), h("b", 1, 2)],
                "permits in use out of range",
            ),
            (vec![h("a", 1, 0)], "token 0"),
            (
                vec![h("a", 1, 7), h("b", 1, 7)],
                "two holders with the same token",
            ),
            (
                vec![Holder {
                    expires_at_ms: -1,
                    ..h("a", 1, 1)
                }],
                "negative deadline",
            ),
            (
                vec![Holder {
                    bound: Some(0),
                    ..h("a", 1, 1)
                }],
                "bound to client 0",
            ),
        ];
        for (holders, why) in bad {
            assert_eq!(
                Semaphore::from_parts(5, holders.clone()),
                Err(why),
                "{holders:?}"
            );
        }
    }

    #[test]
    fn a_count_is_a_claim_not_a_budget() {
        assert_eq!(
            Loading::start(5, MAX_HOLDERS as u64 + 1).unwrap_err(),
            "too many holders"
        );
        assert_eq!(Loading::start(5, u64::MAX).unwrap_err(), "too many holders");
        let mut l = Loading::start(5, MAX_HOLDERS as u64).unwrap();
        assert!(l.sem.holders.capacity() <= RESERVE);
        l.push(h("a", 1, 1)).unwrap();
        assert_eq!(l.finish().unwrap_err(), "fewer holders than announced");
        let mut l = Loading::start(5, 1).unwrap();
        l.push(h("a", 1, 1)).unwrap();
        assert_eq!(l.push(h("b", 1, 2)), Err("more holders than announced"));
        assert_eq!(l.finish().map(|s| s.len()), Ok(1));
    }
}
