//! What each semaphore operation does to the value, in plain Rust: acquire (take or renew),
//! release, extend, expiry, a disconnect, and the FIFO admission of waiters. The rules are
//! listed in `mod.rs`; the glue opens the key, calls one of these with the server's `now`
//! (Unix ms) and, where a permit may be handed out, a token source
//! (`token::HandOffClock::allocate`), then writes, replicates and replies.
//!
//! Every change first prunes the holders whose lease ended (`now > deadline`), so a
//! decision never counts a permit that is already free. The glue that needs to know what
//! expired (events, stats) calls [`Semaphore::expire`] itself first; the later prune then
//! finds nothing.

use crate::lock::lease::{self, MAX_MS};
use crate::lock::queue::Queued;
use crate::module::error::CmdError;

use super::holders::{Holder, Semaphore, MAX_HOLDERS, MAX_LIMIT, MAX_OWNER_LEN};

/// One acquire request: what `HACK.SEMACQUIRE` asks (parsed by `args.rs`), served at once
/// or later from the wait queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask<'a> {
    pub owner: &'a [u8],
    pub permits: u64,
    /// The limit this request was made with (checked when it is served).
    pub limit: u64,
    pub ttl_ms: i64,
    /// BOUND: the id of the client whose disconnect releases the holding.
    pub bound: Option<u64>,
}

/// A client queued with `WAIT` for a semaphore, as the glue keeps it in
/// `Queues<H, SemWaiter<H>>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemWaiter<H> {
    pub handle: H,
    pub owner: Vec<u8>,
    pub permits: u64,
    pub limit: u64,
    pub ttl_ms: i64,
    pub bound: Option<u64>,
    /// The server timer that wakes the event loop at the WAIT deadline, if any.
    pub wake: Option<u64>,
}

impl<H: Copy> Queued<H> for SemWaiter<H> {
    fn handle(&self) -> H {
        self.handle
    }
    fn wake(&self) -> Option<u64> {
        self.wake
    }
}

impl<H> SemWaiter<H> {
    /// Queue `ask` under `handle`.
    pub fn new(handle: H, ask: &Ask<'_>, wake: Option<u64>) -> Self {
        SemWaiter {
            handle,
            owner: ask.owner.to_vec(),
            permits: ask.permits,
            limit: ask.limit,
            ttl_ms: ask.ttl_ms,
            bound: ask.bound,
            wake,
        }
    }

    /// The request this waiter made.
    pub fn ask(&self) -> Ask<'_> {
        Ask {
            owner: &self.owner,
            permits: self.permits,
            limit: self.limit,
            ttl_ms: self.ttl_ms,
            bound: self.bound,
        }
    }
}

/// What an acquire did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// A new holder, with the token just minted.
    New { token: u64 },
    /// The owner already held as many permits: same token, lease, BOUND and limit renewed.
    Renewed { token: u64 },
    /// No room (or waiters are queued ahead): nothing changed. Reply nil, or queue the
    /// caller with WAIT.
    Busy,
}

/// What one waiter at the front of the queue gets from [`Semaphore::admit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    New {
        token: u64,
    },
    Renewed {
        token: u64,
    },
    /// Served with an error (it leaves the queue; the ones behind are looked at next).
    Rejected(SemError),
}

/// An acquire or extend that cannot be served; nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SemError {
    /// The owner holds `held` permits and asked for a different number.
    PermitsMismatch { held: u64 },
    /// There is room for the permits but the key has [`MAX_HOLDERS`] holders already (an
    /// error rather than nil: waiting would not be a fix, a smaller pool of owners is).
    TooManyHolders,
    /// A request `args.rs` would have refused (the core checks again, so no caller can
    /// break the value's invariants).
    Invalid(&'static str),
}

impl SemError {
    pub fn to_cmd_error(self) -> CmdError {
        match self {
            SemError::PermitsMismatch { held } => CmdError::msg(format!(
                "ERR owner already holds {held} permit{} of this semaphore: \
                 re-acquire with PERMITS {held} to renew, or SEMRELEASE first",
                if held == 1 { "" } else { "s" }
            )),
            SemError::TooManyHolders => CmdError::msg(format!(
                "ERR the semaphore already has {MAX_HOLDERS} holders, the most one key takes"
            )),
            SemError::Invalid(e) => CmdError::Static(e),
        }
    }
}

impl From<SemError> for CmdError {
    fn from(e: SemError) -> Self {
        e.to_cmd_error()
    }
}

impl Ask<'_> {
    /// The bounds `args.rs` enforces, as a last line of defence.
    pub fn check(&self) -> Result<(), SemError> {
        if self.owner.is_empty() || self.owner.len() > MAX_OWNER_LEN {
            return Err(SemError::Invalid("ERR owner must be 1 to 512 bytes"));
        }
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return Err(SemError::Invalid("ERR limit out of range"));
        }
        if !(1..=self.limit).contains(&self.permits) {
            return Err(SemError::Invalid(
                "ERR PERMITS n must be an integer from 1 to the limit",
            ));
        }
        if !(1..=MAX_MS).contains(&self.ttl_ms) {
            return Err(SemError::Invalid("ERR ttl_ms out of range"));
        }
        if self.bound == Some(0) {
            return Err(SemError::Invalid("ERR BOUND needs a real client"));
        }
        Ok(())
    }
}

/// The deadline of a lease taken or renewed at `now_ms` for `ttl_ms`: the last millisecond
/// it counts. Never negative (a value `parts.rs` would refuse to load), even for a clock
/// before 1970.
pub fn deadline(now_ms: i64, ttl_ms: i64) -> i64 {
    lease::expiry(now_ms, ttl_ms.clamp(1, MAX_MS)).max(0)
}

impl Semaphore {
    /// `HACK.SEMACQUIRE` at `now_ms`, with `queued` clients waiting for this key (the glue
    /// runs [`admit`](Self::admit) first, so only waiters that do not fit remain). `mint` is
    /// called once, only when a new holder gets in.
    ///
    /// A holder re-acquiring is renewed whatever the queue and the limit say (it takes no
    /// new permit); anyone else gets in only with nobody queued (no barging) and
    /// `in_use + permits <= ask.limit`.
    pub fn acquire(
        &mut self,
        ask: &Ask<'_>,
        now_ms: i64,
        queued: usize,
        mint: impl FnOnce() -> u64,
    ) -> Result<Acquired, SemError> {
        ask.check()?;
        self.expire(now_ms);
        self.take(ask, now_ms, queued == 0, mint)
    }

    /// Admit waiters from the front of a queue (given in order, first in line first) after
    /// a release, an expiry or a disconnect freed permits. Returns one outcome per waiter
    /// served, in queue order: the glue pops exactly that many from the front and answers
    /// them. It stops at the first waiter that does not fit, which then blocks everyone
    /// behind it (strict FIFO: a large request is never overtaken). `mint` is called once
    /// per new holder, in queue order.
    pub fn admit<'a>(
        &mut self,
        queue: impl IntoIterator<Item = Ask<'a>>,
        now_ms: i64,
        mut mint: impl FnMut() -> u64,
    ) -> Vec<Admission> {
        self.expire(now_ms);
        let mut served = Vec::new();
        for ask in queue {
            let outcome = ask
                .check()
                .and_then(|()| self.take(&ask, now_ms, true, &mut mint));
            served.push(match outcome {
                Ok(Acquired::New { token }) => Admission::New { token },
                Ok(Acquired::Renewed { token }) => Admission::Renewed { token },
                Ok(Acquired::Busy) => break,
                Err(e) => Admission::Rejected(e),
            });
        }
        served
    }

    /// `HACK.SEMRELEASE`: the holding `owner` gave up (`Some`: reply 1, then admit waiters),
    /// or `None` when `owner` holds nothing live (reply 0).
    pub fn release(&mut self, owner: &[u8], now_ms: i64) -> Option<Holder> {
        self.expire(now_ms);
        let i = self.find(owner).ok()?;
        let gone = (i < self.holders.len()).then(|| self.holders.remove(i))?;
        // Its permits are part of the total.
        self.in_use = self.in_use.saturating_sub(gone.permits);
        Some(gone)
    }

    /// `HACK.SEMEXTEND`: a live holding gets a lease of `ttl_ms` from now (shorter or
    /// longer; token, permits and BOUND unchanged): `Ok(true)`, reply 1. `Ok(false)` when
    /// `owner` holds nothing live (reply 0).
    pub fn extend(&mut self, owner: &[u8], ttl_ms: i64, now_ms: i64) -> Result<bool, SemError> {
        if !(1..=MAX_MS).contains(&ttl_ms) {
            return Err(SemError::Invalid("ERR ttl_ms out of range"));
        }
        self.expire(now_ms);
        let Some(h) = self.find(owner).ok().and_then(|i| self.holders.get_mut(i)) else {
            return Ok(false);
        };
        h.expires_at_ms = deadline(now_ms, ttl_ms);
        Ok(true)
    }

    /// Prune every holder whose lease ended by `now_ms` (deadline < now); returns them.
    /// If any, the glue admits waiters next (and deletes the key if it is empty).
    pub fn expire(&mut self, now_ms: i64) -> Vec<Holder> {
        self.remove_where(|h| !h.is_live(now_ms))
    }

    /// Client `client_id` disconnected: remove every holding BOUND to it (returned, in
    /// owner order). If any, the glue admits waiters next (and deletes the key if empty).
    pub fn release_client(&mut self, client_id: u64) -> Vec<Holder> {
        self.remove_where(|h| h.bound == Some(client_id))
    }

    /// Remove every BOUND holding, whatever its client: for when every connection the
    /// bindings name is gone (a restart from RDB, a replica promoted to master).
    pub fn release_all_bound(&mut self) -> Vec<Holder> {
        self.remove_where(|h| h.bound.is_some())
    }

    /// Serve `ask` (checked, holders pruned): renew the owner's holding, or let a new holder
    /// in if `may_enter` (nobody queued ahead) and there is room.
    fn take(
        &mut self,
        ask: &Ask<'_>,
        now_ms: i64,
        may_enter: bool,
        mint: impl FnOnce() -> u64,
    ) -> Result<Acquired, SemError> {
        let at = deadline(now_ms, ask.ttl_ms);
        let slot = match self.find(ask.owner) {
            Ok(i) => {
                let Some(h) = self.holders.get_mut(i) else {
                    return Ok(Acquired::Busy);
                };
                if h.permits != ask.permits {
                    return Err(SemError::PermitsMismatch { held: h.permits });
                }
                h.expires_at_ms = at;
                h.bound = ask.bound;
                let token = h.token;
                self.limit = ask.limit;
                return Ok(Acquired::Renewed { token });
            }
            Err(slot) => slot,
        };
        // `in_use <= MAX_LIMIT` and `permits <= MAX_LIMIT`: the sum cannot overflow, and
        // `checked_add` says "no room" if it ever did.
        let fits = self
            .in_use
            .checked_add(ask.permits)
            .is_some_and(|total| total <= ask.limit);
        if !may_enter || !fits {
            return Ok(Acquired::Busy);
        }
        if self.holders.len() >= MAX_HOLDERS {
            return Err(SemError::TooManyHolders);
        }
        let token = mint();
        self.holders.insert(
            slot.min(self.holders.len()),
            Holder {
                owner: ask.owner.to_vec(),
                permits: ask.permits,
                token,
                expires_at_ms: at,
                bound: ask.bound,
            },
        );
        self.in_use = self.in_use.saturating_add(ask.permits);
        self.limit = ask.limit;
        Ok(Acquired::New { token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(owner: &str, permits: u64, limit: u64) -> Ask<'_> {
        Ask {
            owner: owner.as_bytes(),
            permits,
            limit,
            ttl_ms: 100,
            bound: None,
        }
    }

    /// A token source like `token::HandOffClock::allocate`: strictly increasing.
    fn tokens() -> impl FnMut() -> u64 {
        let mut t = 0;
        move || {
            t += 1;
            t
        }
    }

    #[test]
    fn admits_up_to_the_limit() {
        let mut mint = tokens();
        let mut s = Semaphore::new();
        assert_eq!(
            s.acquire(&ask("a", 2, 3), 0, 0, &mut mint),
            Ok(Acquired::New { token: 1 })
        );
        assert_eq!(
            s.acquire(&ask("b", 2, 3), 0, 0, &mut mint),
            Ok(Acquired::Busy)
        );
        assert_eq!(
            s.acquire(&ask("b", 1, 3), 0, 0, &mut mint),
            Ok(Acquired::New { token: 2 })
        );
        assert_eq!((s.permits_in_use(), s.limit(), s.len()), (3, 3, 2));
        assert_eq!(
            s.acquire(&ask("c", 1, 3), 0, 0, &mut mint),
            Ok(Acquired::Busy)
        );
        assert_eq!(mint(), 3, "no token minted for Busy");
    }

    #[test]
    fn renewal_keeps_the_token_and_needs_the_same_permits() {
        let mut mint = tokens();
        let mut s = Semaphore::new();
        s.acquire(&ask("a", 2, 2), 0, 0, &mut mint).unwrap();
        let renew = Ask {
            ttl_ms: 500,
            bound: Some(7),
            ..ask("a", 2, 2)
        };
        assert_eq!(
            s.acquire(&renew, 10, 3, &mut mint),
            Ok(Acquired::Renewed { token: 1 }),
            "renewed even with waiters queued and no room left"
        );
        let h = s.holder(b"a").unwrap();
        assert_eq!(
            (h.expires_at_ms, h.bound),
            (510, Some(7)),
            "lease and BOUND of the renewal"
        );
        assert_eq!(
            s.acquire(&ask("a", 1, 2), 20, 0, &mut mint),
            Err(SemError::PermitsMismatch { held: 2 })
        );
        assert_eq!(s.holder(b"a").unwrap().expires_at_ms, 510, "unchanged");
        assert!(SemError::PermitsMismatch { held: 2 }
            .to_cmd_error()
            .text()
            .starts_with("ERR owner already holds 2 permits"));
    }

    #[test]
    fn lowering_the_limit_takes_nothing_away() {
        let mut mint = tokens();
        let mut s = Semaphore::new();
        for o in ["a", "b", "c", "d"] {
            s.acquire(&ask(o, 1, 4), 0, 0, &mut mint).unwrap();
        }
        assert_eq!(
            s.acquire(&ask("e", 1, 2), 0, 0, &mut mint),
            Ok(Acquired::Busy)
        );
        assert_eq!(s.limit(), 4, "a refused acquire changes nothing");
        assert_eq!(
            s.acquire(&ask("a", 1, 2), 0, 0, &mut mint),
            Ok(Acquired::Renewed { token: 1 })
        );
        assert_eq!(
            (s.limit(), s.permits_in_use()),
            (2, 4),
            "over the new limit, nobody lost"
        );
        s.release(b"b", 0);
        s.release(b"c", 0);
        assert_eq!(
            s.acquire(&ask("e", 1, 2), 0, 0, &mut mint),
            Ok(Acquired::Busy),
            "2 held"
        );
        s.release(b"d", 0);
        assert_eq!(
            s.acquire(&ask("e", 1, 2), 0, 0, &mut mint),
            Ok(Acquired::New { token: 5 })
        );
    }

    #[test]
    fn no_barging_past_the_queue() {
        let mut s = Semaphore::new();
        assert_eq!(
            s.acquire(&ask("a", 1, 5), 0, 1, tokens()),
            Ok(Acquired::Busy)
        );
        assert!(s.is_empty());
    }

    #[test]
    fn leases_end_after_their_last_millisecond() {
        let mut mint = tokens();
        let mut s = Semaphore::new();
        s.acquire(&ask("a", 1, 1), 1000, 0, &mut mint).unwrap();
        assert_eq!(s.next_expiry(), Some(1100));
        assert_eq!(lease::recheck_at(1100), 1101);
        assert!(s.expire(1100).is_empty());
        assert_eq!(
            s.acquire(&ask("b", 1, 1), 1100, 0, &mut mint),
            Ok(Acquired::Busy)
        );
        assert_eq!(
            s.acquire(&ask("b", 1, 1), 1101, 0, &mut mint),
            Ok(Acquired::New { token: 2 })
        );
        assert_eq!(s.holder(b"a"), None, "pruned by the acquire");
        assert!(s.extend(b"b", 5, 1150).unwrap());
        assert_eq!(s.next_expiry(), Some(1155));
        assert!(
            !s.extend(b"b", 5, 1156).unwrap(),
            "ended: nothing to extend"
        );
        assert!(s.is_empty(), "and pruned");
        assert_eq!(
            s.extend(b"b", 0, 0),
            Err(SemError::Invalid("ERR ttl_ms out of range"))
        );
    }

    #[test]
    fn release_frees_at_once() {
        let mut mint = tokens();
        let mut s = Semaphore::new();
        s.acquire(&ask("a", 3, 3), 0, 0, &mut mint).unwrap();
        assert_eq!(s.release(b"b", 0), None);
        assert_eq!(s.release(b"a", 0).map(|h| h.permits), Some(3));
        assert_eq!(s.release(b"a", 0), None);
        assert!(s.is_empty());
        assert_eq!(s.permits_in_use(), 0);
        s.acquire(&ask("a", 1, 3), 0, 0, &mut mint).unwrap();
        assert_eq!(
            s.release(b"a", 101),
            None,
            "an ended lease is not released, it is gone"
        );
    }

    #[test]
    fn bound_holdings_go_with_their_connection() {
        let mut mint = tokens();
        let mut s = Semaphore::new();
        let bound = |o, c| Ask {
            bound: Some(c),
            ..ask(o, 1, 5)
        };
        s.acquire(&bound("a", 1), 0, 0, &mut mint).unwrap();
        s.acquire(&bound("b", 2), 0, 0, &mut mint).unwrap();
        s.acquire(&bound("c", 1), 0, 0, &mut mint).unwrap();
        s.acquire(&ask("d", 1, 5), 0, 0, &mut mint).unwrap();
        let gone: Vec<Vec<u8>> = s.release_client(1).into_iter().map(|h| h.owner).collect();
        assert_eq!(gone, vec![b"a".to_vec(), b"c".to_vec()]);
        assert!(s.release_client(1).is_empty());
        assert_eq!(s.permits_in_use(), 2);
        // A renewal without BOUND unbinds.
        s.acquire(&ask("b", 1, 5), 0, 0, &mut mint).unwrap();
        assert!(s.release_client(2).is_empty());
        s.acquire(&bound("b", 4), 0, 0, &mut mint).unwrap();
        assert_eq!(s.release_all_bound().len(), 1);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn admission_is_strict_fifo() {
        let mut mint = tokens();
        let mut s = Semaphore::new();
        s.acquire(&ask("a", 3, 4), 0, 0, &mut mint).unwrap();
        let queue = [ask("big", 3, 4), ask("small", 1, 4)];
        assert!(
            s.admit(queue, 0, &mut mint).is_empty(),
            "the head blocks the small one"
        );
        s.release(b"a", 0);
        assert_eq!(
            s.admit(queue, 0, &mut mint),
            vec![Admission::New { token: 2 }, Admission::New { token: 3 }],
            "both fit now: admitted together, in order"
        );
        s.release(b"big", 0);
        let queue = [
            ask("small", 2, 4),
            Ask {
                permits: 0,
                ..ask("x", 1, 4)
            },
            ask("p", 2, 4),
            ask("q", 1, 4),
            ask("r", 1, 4),
        ];
        assert_eq!(
            s.admit(queue, 0, &mut mint),
            vec![
                Admission::Rejected(SemError::PermitsMismatch { held: 1 }),
                Admission::Rejected(SemError::Invalid(
                    "ERR PERMITS n must be an integer from 1 to the limit"
                )),
                Admission::New { token: 4 },
                Admission::New { token: 5 },
            ],
            "errors are served and skipped; r does not fit"
        );
    }

    #[test]
    fn admission_uses_each_waiters_limit() {
        let mut mint = tokens();
        let mut s = Semaphore::new();
        s.acquire(&ask("a", 2, 4), 0, 0, &mut mint).unwrap();
        assert!(s.admit([ask("w", 1, 2)], 0, &mut mint).is_empty());
        assert_eq!(
            s.admit([ask("w", 1, 3)], 0, &mut mint),
            vec![Admission::New { token: 2 }]
        );
        assert_eq!(s.limit(), 3);
        assert_eq!(
            s.admit([ask("a", 2, 2)], 0, &mut mint),
            vec![Admission::Renewed { token: 1 }],
            "a queued renewal passes, even over its limit"
        );
        assert_eq!((s.limit(), s.permits_in_use()), (2, 3));
    }

    #[test]
    fn the_holder_cap() {
        let mut s = Semaphore::new();
        let mut mint = tokens();
        let names: Vec<String> = (0..=MAX_HOLDERS).map(|i| format!("o{i:05}")).collect();
        for n in names.iter().take(MAX_HOLDERS) {
            assert!(matches!(
                s.acquire(&ask(n, 1, MAX_LIMIT), 0, 0, &mut mint),
                Ok(Acquired::New { .. })
            ));
        }
        let last = names.last().unwrap();
        assert_eq!(
            s.acquire(&ask(last, 1, MAX_LIMIT), 0, 0, &mut mint),
            Err(SemError::TooManyHolders)
        );
        assert_eq!(
            s.acquire(&ask(last, 1, MAX_HOLDERS as u64), 0, 0, &mut mint),
            Ok(Acquired::Busy),
            "no room for the permits: nil, not the cap error"
        );
        assert_eq!(
            s.acquire(&ask(&names[7], 1, 1), 0, 0, &mut mint),
            Ok(Acquired::Renewed { token: 8 })
        );
    }

    #[test]
    fn requests_are_checked_again() {
        let mut s = Semaphore::new();
        let bad = [
            Ask {
                owner: b"",
                ..ask("a", 1, 1)
            },
            Ask {
                limit: 0,
                permits: 0,
                ..ask("a", 1, 1)
            },
            Ask {
                limit: MAX_LIMIT + 1,
                ..ask("a", 1, 1)
            },
            ask("a", 2, 1),
            Ask {
                ttl_ms: 0,
                ..ask("a", 1, 1)
            },
            Ask {
                ttl_ms: MAX_MS + 1,
                ..ask("a", 1, 1)
            },
            Ask {
                bound: Some(0),
                ..ask("a", 1, 1)
            },
        ];
        let long = vec![b'x'; MAX_OWNER_LEN + 1];
        for a in bad.iter().chain([&Ask {
            owner: &long,
            ..ask("a", 1, 1)
        }]) {
            assert!(
                matches!(s.acquire(a, 0, 0, || 1), Err(SemError::Invalid(_))),
                "{a:?}"
            );
        }
        assert!(s.is_empty());
        assert_eq!(deadline(-50, 10), 0, "never a negative deadline");
        assert_eq!(deadline(i64::MAX - 5, MAX_MS), i64::MAX);
    }

    #[test]
    fn waiters_queue_in_the_shared_queues() {
        use crate::lock::queue::Queues;
        let key = (0, b"s".to_vec());
        let mut q: Queues<u32, SemWaiter<u32>> = Queues::new();
        let a = ask("a", 2, 3);
        q.push(key.clone(), SemWaiter::new(1, &a, None));
        q.push(key.clone(), SemWaiter::new(2, &ask("b", 2, 3), Some(9)));
        assert_eq!(q.push(key.clone(), SemWaiter::new(1, &a, None)), None);
        let mut s = Semaphore::new();
        let served = s.admit(q.iter(&key).map(SemWaiter::ask), 0, tokens());
        assert_eq!(served, vec![Admission::New { token: 1 }]);
        let left = q.pop_front(&key).unwrap();
        assert_eq!(left.waiter.ask(), a);
        assert_eq!(q.iter(&key).map(|w| w.handle).collect::<Vec<_>>(), vec![2]);
    }
}
