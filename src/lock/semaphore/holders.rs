//! The value of a semaphore key: its holders (sorted by owner, at most [`MAX_HOLDERS`]),
//! the permits they hold in total, and the limit of the latest acquire; plus the read-only
//! views the glue needs (`SEMINFO`, timers, memory). The decisions that change it are in
//! `admit.rs`, its plain-field form in `parts.rs`.
//!
//! Invariants (kept by every change and checked by `parts.rs` on load):
//! - owners are unique, non-empty, at most [`MAX_OWNER_LEN`] bytes, in byte order;
//! - every holder has 1..=[`MAX_LIMIT`] permits and a token >= 1, tokens are unique;
//! - `in_use` is the sum of the permits and at most [`MAX_LIMIT`];
//! - deadlines are >= 0 (absolute Unix ms);
//! - a bound holder's client id is >= 1 (Redis numbers clients from 1).
//!
//! A holder whose deadline has passed stays in the vector until the next change prunes it
//! (every change does, first): the read-only views skip such holders, so a replica or a
//! read between the deadline and the timer never shows them.

use crate::lock::lease;

/// Largest limit (and so largest number of permits held): 10^15, below 2^53 so every count
/// stays exact in a Lua script (whose numbers are doubles), and far from overflowing a sum.
pub const MAX_LIMIT: u64 = 1_000_000_000_000_000;

/// Most holders in one key. Most changes are O(holders) (a sorted Vec: binary search, then
/// an insert, or one pass to prune), so this bounds their cost (~10 µs) and a key's memory
/// (with [`MAX_OWNER_LEN`], a few MB at worst). A real pool is far smaller.
pub const MAX_HOLDERS: usize = 10_000;

/// Longest owner string in bytes (a UUID, a hostname with a pid, ... fit many times).
pub const MAX_OWNER_LEN: usize = 512;

/// One holder of permits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub owner: Vec<u8>,
    pub permits: u64,
    /// Fencing token of the acquisition (kept on renewal).
    pub token: u64,
    /// Last millisecond (absolute Unix ms) at which the lease still counts.
    pub expires_at_ms: i64,
    /// The connection (client id) the holding is bound to (BOUND), if any.
    pub bound: Option<u64>,
}

impl Holder {
    /// Live up to and including the deadline, as a Redis key with that `PEXPIREAT`.
    pub fn is_live(&self, now_ms: i64) -> bool {
        now_ms <= self.expires_at_ms
    }
}

/// The semaphore stored in a key. Only the functions of this module tree change it, so the
/// invariants above always hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Semaphore {
    /// The limit given by the latest acquire that took or renewed a permit (0 only while
    /// the value is new and empty).
    pub(super) limit: u64,
    /// Sorted by owner bytes: lookup by binary search, and `SEMINFO` lists in a stable order.
    pub(super) holders: Vec<Holder>,
    /// Sum of the holders' permits (kept, not recomputed).
    pub(super) in_use: u64,
}

/// What `SEMINFO` shows at `now_ms` (live holders only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info<'a> {
    pub limit: u64,
    pub permits_in_use: u64,
    /// In owner byte order.
    pub holders: Vec<HolderInfo<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderInfo<'a> {
    pub owner: &'a [u8],
    pub permits: u64,
    /// Remaining lease at `now_ms`, as `lease::remaining` (0 in its last millisecond).
    pub ttl_ms: i64,
    pub token: u64,
    pub bound: bool,
}

impl Semaphore {
    /// An empty semaphore, to acquire into when the key does not exist. Store it only once
    /// it is not [`is_empty`](Self::is_empty).
    pub fn new() -> Self {
        Self::default()
    }

    /// Nobody holds a permit (counting holders whose lease ended but were not pruned yet:
    /// prune with `expire` first): the key must go.
    pub fn is_empty(&self) -> bool {
        self.holders.is_empty()
    }

    /// Number of holders.
    pub fn len(&self) -> usize {
        self.holders.len()
    }

    /// The limit of the latest acquire that took or renewed a permit.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Permits held, live or not yet pruned (after `expire(now)`: exactly the live ones).
    pub fn permits_in_use(&self) -> u64 {
        self.in_use
    }

    /// Every holder, in owner byte order (including any not yet pruned).
    pub fn holders(&self) -> &[Holder] {
        &self.holders
    }

    /// The holder `owner`, live or not.
    pub fn holder(&self, owner: &[u8]) -> Option<&Holder> {
        self.find(owner).ok().and_then(|i| self.holders.get(i))
    }

    /// The earliest deadline of all holders: the glue runs its expiry timer at
    /// `lease::recheck_at(next_expiry)` (the first millisecond at which that lease no longer
    /// counts), prunes with `expire` and admits the next waiters. `None` when empty.
    pub fn next_expiry(&self) -> Option<i64> {
        self.holders.iter().map(|h| h.expires_at_ms).min()
    }

    /// The latest deadline: when every lease has ended (a key expiry time that makes the key
    /// vanish with its last holder even if no timer runs).
    pub fn last_expiry(&self) -> Option<i64> {
        self.holders.iter().map(|h| h.expires_at_ms).max()
    }

    /// What `SEMINFO` shows at `now_ms`; `None` when no lease is live (the key is logically
    /// gone: reply nil). Read-only, so it is right on a replica and between a deadline and
    /// the timer that prunes it.
    pub fn info(&self, now_ms: i64) -> Option<Info<'_>> {
        let holders: Vec<HolderInfo<'_>> = self
            .holders
            .iter()
            .filter(|h| h.is_live(now_ms))
            .map(|h| HolderInfo {
                owner: &h.owner,
                permits: h.permits,
                ttl_ms: lease::remaining(Some(h.expires_at_ms), now_ms),
                token: h.token,
                bound: h.bound.is_some(),
            })
            .collect();
        if holders.is_empty() {
            return None;
        }
        // Permits are at most MAX_LIMIT in total, so this sum cannot saturate.
        let permits_in_use = holders
            .iter()
            .fold(0u64, |sum, h| sum.saturating_add(h.permits));
        Some(Info {
            limit: self.limit,
            permits_in_use,
            holders,
        })
    }

    /// Heap memory owned by the value (`MEMORY USAGE`).
    pub fn heap_bytes(&self) -> usize {
        let owners = self
            .holders
            .iter()
            .fold(0usize, |sum, h| sum.saturating_add(h.owner.capacity()));
        self.holders
            .capacity()
            .saturating_mul(std::mem::size_of::<Holder>())
            .saturating_add(owners)
    }

    /// Where `owner` is (`Ok`) or would go (`Err`) in the sorted holders.
    pub(super) fn find(&self, owner: &[u8]) -> Result<usize, usize> {
        self.holders
            .binary_search_by(|h| h.owner.as_slice().cmp(owner))
    }

    /// Take out every holder matching `gone`, keeping the order and the total; returns them
    /// (in owner order). Allocates nothing when none matches.
    pub(super) fn remove_where(&mut self, gone: impl Fn(&Holder) -> bool) -> Vec<Holder> {
        if !self.holders.iter().any(&gone) {
            return Vec::new();
        }
        let (out, keep): (Vec<Holder>, Vec<Holder>) = std::mem::take(&mut self.holders)
            .into_iter()
            .partition(&gone);
        self.holders = keep;
        for h in &out {
            // Each holder's permits are part of the total, so this never saturates.
            self.in_use = self.in_use.saturating_sub(h.permits);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sem(holders: &[(&str, u64, u64, i64, Option<u64>)]) -> Semaphore {
        let mut s = Semaphore::new();
        s.limit = 10;
        for &(o, permits, token, at, bound) in holders {
            s.holders.push(Holder {
                owner: o.as_bytes().to_vec(),
                permits,
                token,
                expires_at_ms: at,
                bound,
            });
            s.in_use += permits;
        }
        s
    }

    #[test]
    fn views_skip_ended_leases() {
        let s = sem(&[("a", 2, 5, 100, None), ("b", 1, 6, 50, Some(3))]);
        assert_eq!(s.next_expiry(), Some(50));
        assert_eq!(s.last_expiry(), Some(100));
        let info = s.info(50).unwrap();
        assert_eq!(info.permits_in_use, 3, "b is live in its last millisecond");
        assert_eq!(info.holders[1].ttl_ms, 0);
        assert!(info.holders[1].bound);
        let info = s.info(51).unwrap();
        assert_eq!((info.limit, info.permits_in_use), (10, 2));
        assert_eq!(info.holders.len(), 1);
        assert_eq!(info.holders[0].owner, b"a");
        assert_eq!(info.holders[0].ttl_ms, 49);
        assert!(!info.holders[0].bound);
        assert_eq!(s.info(101), None, "nothing live: nil");
        assert_eq!(Semaphore::new().info(0), None);
        assert_eq!(Semaphore::new().next_expiry(), None);
    }

    #[test]
    fn lookup_and_removal() {
        let mut s = sem(&[
            ("a", 2, 5, 100, None),
            ("b", 1, 6, 50, Some(3)),
            ("c", 3, 7, 9, Some(3)),
        ]);
        assert_eq!(s.holder(b"b").map(|h| h.token), Some(6));
        assert_eq!(s.holder(b"bb"), None);
        assert_eq!(s.find(b"bb"), Err(2));
        let gone = s.remove_where(|h| h.bound == Some(3));
        assert_eq!(gone.len(), 2);
        assert_eq!((s.len(), s.permits_in_use()), (1, 2));
        assert!(s.remove_where(|_| false).is_empty());
        assert!(s.heap_bytes() > 0);
    }
}
