//! What a lock command does, decided in plain Rust from the key's state, the caller and
//! whether anyone is queued. The glue (`lock.rs`, `unlock.rs`, ...) reads the key, asks
//! here, then writes, replicates and replies.
//!
//! The rules:
//! - A free lock with nobody queued goes to the caller, with a new fencing token.
//! - A free lock with waiters queued (its key was just deleted or expired and the hand-off
//!   has not run yet) goes to the first waiter before the caller is considered: nobody
//!   barges ahead of the queue.
//! - The holder calling LOCK again keeps its token and gets a fresh TTL (a client that
//!   retries after a lost reply does not lock itself out).
//! - UNLOCK/EXTEND by anyone but the holder change nothing.

/// Longest TTL and WAIT timeout: 10^13 ms (~317 years), so `now + ttl` never overflows.
pub const MAX_MS: i64 = 10_000_000_000_000;

/// The lock as stored in its key (the expiry is the key's own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub owner: OwnerBytes,
    pub token: u64,
}

impl Lock {
    pub fn is_held_by(&self, owner: &[u8]) -> bool {
        self.owner.as_slice() == owner
    }

    pub fn heap_bytes(&self) -> usize {
        self.owner.heap_bytes()
    }
}

/// Owners up to this many bytes are stored inside the value (a UUID, `host:pid:thread`):
/// acquiring a free lock then allocates nothing for the owner (one allocation and one free
/// fewer per lock than a `Vec`, measured as a few % of HACK.LOCK's throughput).
const INLINE_OWNER: usize = 46;

/// An owner's bytes, inline when short, on the heap otherwise.
#[derive(Clone)]
pub enum OwnerBytes {
    Inline { len: u8, buf: [u8; INLINE_OWNER] },
    Heap(Vec<u8>),
}

impl OwnerBytes {
    pub fn new(b: &[u8]) -> Self {
        match u8::try_from(b.len()) {
            Ok(len) if b.len() <= INLINE_OWNER => {
                let mut buf = [0u8; INLINE_OWNER];
                if let Some(dst) = buf.get_mut(..b.len()) {
                    dst.copy_from_slice(b);
                }
                OwnerBytes::Inline { len, buf }
            }
            _ => OwnerBytes::Heap(b.to_vec()),
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            OwnerBytes::Inline { len, buf } => buf.get(..usize::from(*len)).unwrap_or(&[]),
            OwnerBytes::Heap(v) => v,
        }
    }

    /// Replace the bytes (in place when they fit where they are).
    pub fn set(&mut self, b: &[u8]) {
        if let OwnerBytes::Heap(v) = self {
            if b.len() > INLINE_OWNER {
                v.clear();
                v.extend_from_slice(b);
                return;
            }
        }
        *self = OwnerBytes::new(b);
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            OwnerBytes::Inline { .. } => 0,
            OwnerBytes::Heap(v) => v.capacity(),
        }
    }
}

impl From<Vec<u8>> for OwnerBytes {
    fn from(v: Vec<u8>) -> Self {
        if v.len() <= INLINE_OWNER {
            OwnerBytes::new(&v)
        } else {
            OwnerBytes::Heap(v)
        }
    }
}

impl std::ops::Deref for OwnerBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for OwnerBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for OwnerBytes {}

impl std::fmt::Debug for OwnerBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

/// What `HACK.LOCK` does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockStep {
    /// Free, nobody queued: the caller takes it with a new token.
    Acquire,
    /// Held by the caller: same token, TTL reset.
    Renew { token: u64 },
    /// Free but waiters are queued: hand it to the first waiter, then look again.
    ServeQueueFirst,
    /// Held by someone else: block (WAIT, outside MULTI/Lua) or answer nil.
    Busy,
}

pub fn on_lock(held: Option<&Lock>, caller: &[u8], queued: usize) -> LockStep {
    match held {
        Some(l) if l.is_held_by(caller) => LockStep::Renew { token: l.token },
        Some(_) => LockStep::Busy,
        None if queued > 0 => LockStep::ServeQueueFirst,
        None => LockStep::Acquire,
    }
}

/// What `HACK.UNLOCK` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The holder released it and nobody waits: the key goes.
    Delete,
    /// The holder released it: the first waiter takes it over.
    HandOff,
    /// The caller is not the holder (or the lock is free): nothing changes.
    NotHolder,
}

pub fn on_unlock(held: Option<&Lock>, caller: &[u8], queued: usize) -> Release {
    match held {
        Some(l) if l.is_held_by(caller) => {
            if queued > 0 {
                Release::HandOff
            } else {
                Release::Delete
            }
        }
        _ => Release::NotHolder,
    }
}

/// Whether `HACK.EXTEND` applies.
pub fn may_extend(held: Option<&Lock>, caller: &[u8]) -> bool {
    held.is_some_and(|l| l.is_held_by(caller))
}

/// Absolute expiry of a lock taken or extended at `now_ms` for `ttl_ms`.
pub fn expiry(now_ms: i64, ttl_ms: i64) -> i64 {
    now_ms.saturating_add(ttl_ms)
}

/// When to look at a held lock again for its waiters: just after its expiry (Redis treats a
/// key as expired once the clock is strictly past its expiry time).
pub fn recheck_at(expires_at_ms: i64) -> i64 {
    expires_at_ms.saturating_add(1)
}

/// Remaining TTL as `LOCKINFO` shows it: -1 for no expiry, never below 0.
pub fn remaining(expires_at_ms: Option<i64>, now_ms: i64) -> i64 {
    match expires_at_ms {
        None => -1,
        Some(at) => at.saturating_sub(now_ms).max(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(owner: &str, token: u64) -> Lock {
        Lock {
            owner: OwnerBytes::new(owner.as_bytes()),
            token,
        }
    }

    #[test]
    fn lock_decisions() {
        assert_eq!(on_lock(None, b"a", 0), LockStep::Acquire);
        assert_eq!(
            on_lock(None, b"a", 2),
            LockStep::ServeQueueFirst,
            "no barging"
        );
        let held = lock("a", 7);
        assert_eq!(
            on_lock(Some(&held), b"a", 3),
            LockStep::Renew { token: 7 },
            "same owner keeps its token even with waiters"
        );
        assert_eq!(on_lock(Some(&held), b"b", 0), LockStep::Busy);
        assert_eq!(
            on_lock(Some(&held), b"A", 0),
            LockStep::Busy,
            "owners are exact bytes"
        );
    }

    #[test]
    fn unlock_and_extend_need_the_holder() {
        let held = lock("a", 7);
        assert_eq!(on_unlock(Some(&held), b"a", 0), Release::Delete);
        assert_eq!(on_unlock(Some(&held), b"a", 1), Release::HandOff);
        assert_eq!(on_unlock(Some(&held), b"b", 1), Release::NotHolder);
        assert_eq!(on_unlock(None, b"a", 1), Release::NotHolder);
        assert!(may_extend(Some(&held), b"a"));
        assert!(!may_extend(Some(&held), b"b"));
        assert!(!may_extend(None, b"a"));
    }

    #[test]
    fn owners_inline_or_on_the_heap() {
        for n in [0, 1, 45, 46, 47, 300] {
            let b: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let mut o = OwnerBytes::new(&b);
            assert_eq!(o.as_slice(), &b[..]);
            assert_eq!(o.heap_bytes() > 0, n > 46, "{n}");
            assert_eq!(OwnerBytes::from(b.clone()), o);
            o.set(b"short");
            assert_eq!(&*o, b"short");
            o.set(&b);
            assert_eq!(o.as_slice(), &b[..]);
        }
    }

    #[test]
    fn times() {
        assert_eq!(expiry(1000, 50), 1050);
        assert_eq!(expiry(i64::MAX - 1, MAX_MS), i64::MAX);
        assert_eq!(recheck_at(1050), 1051);
        assert_eq!(remaining(None, 5), -1);
        assert_eq!(remaining(Some(1050), 1000), 50);
        assert_eq!(remaining(Some(1050), 2000), 0);
    }
}
