//! Model-based test of the semaphore core: random sequences of acquire (with and without
//! queueing), extend, release, clock advance and expiry, disconnects, waiter timeouts and
//! admission, with many owners and short leases, run against the real value (and the real
//! shared `Queues`) and against a naive model recomputed from a plain Vec; after every step
//! the two must agree and the safety properties must hold.

use std::collections::VecDeque;

use super::admit::{Acquired, Admission, SemError, SemWaiter};
use super::holders::{Holder, Semaphore};
use crate::lock::queue::{KeyId, Queues};

/// splitmix64: deterministic, so a failing seed replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A request: what a queued waiter holds, with no handle or deadline.
type Req = SemWaiter<()>;

/// The naive semaphore: holders in a Vec in no particular order, everything recomputed.
#[derive(Default)]
struct Model {
    limit: u64,
    holders: Vec<Holder>,
    queue: VecDeque<(u32, Req)>,
    tokens: u64,
    /// The latest change of the limit was a renewal (which may leave more permits held
    /// than the limit says; a new admission may not).
    limit_set_by_renewal: bool,
}

impl Model {
    fn in_use(&self) -> u64 {
        self.holders.iter().map(|h| h.permits).sum()
    }

    fn prune(&mut self, now: i64) -> Vec<Holder> {
        let (gone, keep) = self.holders.drain(..).partition(|h| now > h.expires_at_ms);
        self.holders = keep;
        sorted(gone)
    }

    fn serve(&mut self, r: &Req, now: i64, may_enter: bool) -> Result<Acquired, SemError> {
        let deadline = now.saturating_add(r.ttl_ms).max(0);
        if let Some(h) = self.holders.iter_mut().find(|h| h.owner == r.owner) {
            if h.permits != r.permits {
                return Err(SemError::PermitsMismatch { held: h.permits });
            }
            h.expires_at_ms = deadline;
            h.bound = r.bound;
            self.limit = r.limit;
            self.limit_set_by_renewal = true;
            return Ok(Acquired::Renewed { token: h.token });
        }
        if !may_enter || self.in_use() + r.permits > r.limit {
            return Ok(Acquired::Busy);
        }
        self.tokens += 1;
        self.holders.push(Holder {
            owner: r.owner.clone(),
            permits: r.permits,
            token: self.tokens,
            expires_at_ms: deadline,
            bound: r.bound,
        });
        self.limit = r.limit;
        self.limit_set_by_renewal = false;
        Ok(Acquired::New { token: self.tokens })
    }

    fn remove(&mut self, gone: impl Fn(&Holder) -> bool) -> Vec<Holder> {
        let (out, keep) = self.holders.drain(..).partition(|h| gone(h));
        self.holders = keep;
        sorted(out)
    }
}

fn sorted(mut v: Vec<Holder>) -> Vec<Holder> {
    v.sort_by(|a, b| a.owner.cmp(&b.owner));
    v
}

struct World {
    rng: Rng,
    now: i64,
    sem: Semaphore,
    queues: Queues<u32, SemWaiter<u32>>,
    key: KeyId,
    model: Model,
    /// The real token source: strictly increasing, counts its calls.
    minted: u64,
    /// The largest token handed out to a new holder so far.
    last_new_token: u64,
    next_handle: u32,
    seen: Seen,
}

/// How often the walk reached the states worth testing.
#[derive(Default, Debug)]
struct Seen {
    admitted_from_queue: usize,
    renewals: usize,
    mismatches: usize,
    over_limit: usize,
    expired: usize,
    disconnected: usize,
    longest_queue: usize,
}

const OWNERS: u64 = 8;
const CLIENTS: u64 = 3;

impl World {
    fn new(seed: u64) -> Self {
        World {
            rng: Rng(seed),
            // Start near 0 sometimes, so deadlines clamp at 0 are exercised too.
            now: if seed.is_multiple_of(2) {
                1_700_000_000_000
            } else {
                0
            },
            sem: Semaphore::new(),
            queues: Queues::new(),
            key: (0, b"sem".to_vec()),
            model: Model::default(),
            minted: 0,
            last_new_token: 0,
            next_handle: 0,
            seen: Seen::default(),
        }
    }

    fn owner(&mut self) -> Vec<u8> {
        format!("owner-{}", self.rng.below(OWNERS)).into_bytes()
    }

    fn request(&mut self) -> Req {
        // Mostly one limit, sometimes lower or higher ones (a lowered or raised limit).
        let limit = if self.rng.chance(70) {
            5
        } else {
            self.rng.range(1, 7)
        };
        // Owners mostly ask the same n again (renewals), sometimes another (an error).
        let owner = self.owner();
        let usual = 1 + (owner.last().copied().unwrap_or(0) as u64 % 3);
        let permits = if self.rng.chance(85) {
            usual
        } else {
            self.rng.range(1, 3)
        }
        .min(limit);
        Req {
            handle: (),
            owner,
            permits,
            limit,
            ttl_ms: self.rng.range(1, 30) as i64,
            bound: self.rng.chance(30).then(|| self.rng.range(1, CLIENTS)),
            wake: None,
        }
    }

    fn mint(minted: &mut u64) -> impl FnMut() -> u64 + '_ {
        move || {
            *minted += 1;
            *minted
        }
    }

    fn note_new(&mut self, token: u64) {
        assert!(token > self.last_new_token, "tokens strictly increase");
        self.last_new_token = token;
        assert!(
            self.sem.permits_in_use() <= self.sem.limit(),
            "a new holder never takes the total past its limit"
        );
    }

    fn acquire(&mut self) {
        let r = self.request();
        if self.rng.chance(50) {
            // What the glue does first.
            self.admit();
        }
        let queued = self.queues.len(&self.key);
        assert_eq!(queued, self.model.queue.len());
        let got = self
            .sem
            .acquire(&r.ask(), self.now, queued, Self::mint(&mut self.minted));
        self.model.prune(self.now);
        let want = self.model.serve(&r, self.now, queued == 0);
        assert_eq!(got, want, "acquire {r:?}");
        match got {
            Ok(Acquired::Renewed { .. }) => self.seen.renewals += 1,
            Err(SemError::PermitsMismatch { .. }) => self.seen.mismatches += 1,
            _ => {}
        }
        match got {
            Ok(Acquired::New { token }) => {
                assert_eq!(queued, 0, "no barging");
                self.note_new(token);
            }
            Ok(Acquired::Busy) if self.rng.chance(60) => {
                let handle = self.next_handle;
                self.next_handle += 1;
                let w = SemWaiter::new(handle, &r.ask(), None);
                assert!(self.queues.push(self.key.clone(), w).is_some());
                self.model.queue.push_back((handle, r));
            }
            _ => {}
        }
    }

    fn admit(&mut self) {
        let front: Vec<u32> = self.queues.iter(&self.key).map(|w| w.handle).collect();
        let served = self.sem.admit(
            self.queues.iter(&self.key).map(SemWaiter::ask),
            self.now,
            Self::mint(&mut self.minted),
        );
        let popped: Vec<u32> = (0..served.len())
            .map(|_| self.queues.pop_front(&self.key).unwrap().waiter.handle)
            .collect();
        assert_eq!(
            popped,
            front[..served.len()],
            "served from the front, in order"
        );
        // The model, one waiter after another.
        self.model.prune(self.now);
        let mut want = Vec::new();
        while let Some((_, r)) = self.model.queue.front().cloned() {
            let outcome = match self.model.serve(&r, self.now, true) {
                Ok(Acquired::Busy) => break,
                Ok(Acquired::New { token }) => Admission::New { token },
                Ok(Acquired::Renewed { token }) => Admission::Renewed { token },
                Err(e) => Admission::Rejected(e),
            };
            match outcome {
                Admission::Renewed { .. } => self.seen.renewals += 1,
                Admission::Rejected(SemError::PermitsMismatch { .. }) => self.seen.mismatches += 1,
                _ => {}
            }
            want.push(outcome);
            self.model.queue.pop_front();
        }
        assert_eq!(served, want, "admission");
        for a in &served {
            if let Admission::New { token } = a {
                self.seen.admitted_from_queue += 1;
                assert!(*token > self.last_new_token, "tokens strictly increase");
                self.last_new_token = *token;
            }
        }
        // At once: whoever is first now does not fit (strict FIFO holds the rest back).
        if let Some((_, head)) = self.model.queue.front() {
            assert!(!self.model.holders.iter().any(|h| h.owner == head.owner));
            assert!(self.model.in_use() + head.permits > head.limit);
        }
    }

    fn release(&mut self) {
        let owner = self.owner();
        let got = self.sem.release(&owner, self.now);
        self.model.prune(self.now);
        let want = self.model.remove(|h| h.owner == owner).pop();
        assert_eq!(got, want, "release");
    }

    fn extend(&mut self) {
        let owner = self.owner();
        let ttl = self.rng.range(1, 30) as i64;
        let got = self.sem.extend(&owner, ttl, self.now);
        self.model.prune(self.now);
        let h = self.model.holders.iter_mut().find(|h| h.owner == owner);
        let want = h.is_some();
        if let Some(h) = h {
            h.expires_at_ms = self.now.saturating_add(ttl).max(0);
        }
        assert_eq!(got, Ok(want), "extend");
    }

    fn advance(&mut self) {
        self.now += self.rng.range(0, 12) as i64;
        if self.rng.chance(50) {
            let got = self.sem.expire(self.now);
            self.seen.expired += got.len();
            assert_eq!(got, self.model.prune(self.now), "expire");
        }
    }

    fn disconnect(&mut self) {
        let c = self.rng.range(1, CLIENTS);
        let got = self.sem.release_client(c);
        self.seen.disconnected += got.len();
        assert_eq!(got, self.model.remove(|h| h.bound == Some(c)), "disconnect");
        // Its queued requests leave too (the glue's disconnect callback).
        let gone: Vec<u32> = self
            .model
            .queue
            .iter()
            .filter(|(_, r)| r.bound == Some(c))
            .map(|(h, _)| *h)
            .collect();
        for h in gone {
            assert!(self.queues.remove(h).is_some());
            self.model.queue.retain(|(x, _)| *x != h);
        }
    }

    fn timeout(&mut self) {
        if self.model.queue.is_empty() {
            return;
        }
        let i = self.rng.below(self.model.queue.len() as u64) as usize;
        let (h, _) = self.model.queue.remove(i).unwrap();
        assert_eq!(self.queues.remove(h).map(|l| l.waiter.handle), Some(h));
    }

    fn step(&mut self) {
        match self.rng.below(100) {
            0..=29 => self.acquire(),
            30..=44 => self.admit(),
            45..=54 => self.release(),
            55..=64 => self.extend(),
            65..=84 => self.advance(),
            85..=92 => self.disconnect(),
            93..=97 => self.timeout(),
            _ => {
                let got = self.sem.release_all_bound();
                assert_eq!(got, self.model.remove(|h| h.bound.is_some()));
            }
        }
        self.check();
        let m = &self.model;
        self.seen.longest_queue = self.seen.longest_queue.max(m.queue.len());
        if m.in_use() > m.limit {
            self.seen.over_limit += 1;
        }
    }

    fn check(&self) {
        let (s, m) = (&self.sem, &self.model);
        assert_eq!(s.holders(), sorted(m.holders.clone()).as_slice(), "holders");
        assert_eq!(s.permits_in_use(), m.in_use(), "total");
        assert_eq!(s.limit(), m.limit, "limit");
        assert_eq!(s.is_empty(), m.holders.is_empty());
        assert_eq!(
            s.next_expiry(),
            m.holders.iter().map(|h| h.expires_at_ms).min()
        );
        assert_eq!(
            s.last_expiry(),
            m.holders.iter().map(|h| h.expires_at_ms).max()
        );
        assert_eq!(
            self.minted, m.tokens,
            "a token is minted only for a new holder"
        );
        assert!(
            s.permits_in_use() <= s.limit() || m.limit_set_by_renewal,
            "over the limit only after a renewal lowered it"
        );
        // Tokens are unique and an owner's token is the one it was admitted with (the
        // model's, compared above).
        let mut tokens: Vec<u64> = s.holders().iter().map(|h| h.token).collect();
        tokens.sort_unstable();
        tokens.dedup();
        assert_eq!(tokens.len(), s.len());
        // SEMINFO: live holders only.
        let live: Vec<Holder> = sorted(m.holders.clone())
            .into_iter()
            .filter(|h| self.now <= h.expires_at_ms)
            .collect();
        match s.info(self.now) {
            None => assert!(live.is_empty()),
            Some(info) => {
                assert_eq!(info.limit, m.limit);
                assert_eq!(
                    info.permits_in_use,
                    live.iter().map(|h| h.permits).sum::<u64>()
                );
                assert_eq!(info.holders.len(), live.len());
                for (i, h) in info.holders.iter().zip(&live) {
                    assert_eq!(
                        (i.owner, i.permits, i.token, i.bound),
                        (h.owner.as_slice(), h.permits, h.token, h.bound.is_some())
                    );
                    assert_eq!(i.ttl_ms, h.expires_at_ms - self.now);
                }
            }
        }
        // The stored form rebuilds the same value.
        let (limit, holders) = s.to_parts();
        if s.is_empty() {
            assert!(Semaphore::from_parts(limit, holders.to_vec()).is_err());
        } else {
            assert_eq!(
                Semaphore::from_parts(limit, holders.to_vec()).as_ref(),
                Ok(s)
            );
        }
        // The queue is the model's.
        let q: Vec<u32> = self.queues.iter(&self.key).map(|w| w.handle).collect();
        let want: Vec<u32> = m.queue.iter().map(|(h, _)| *h).collect();
        assert_eq!(q, want, "queue");
    }
}

#[test]
fn the_core_agrees_with_a_naive_model() {
    let mut total = Seen::default();
    for seed in 0..400 {
        let mut w = World::new(seed);
        for step in 0..400 {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.step()));
            if r.is_err() {
                panic!("seed {seed}, step {step}");
            }
        }
        let s = &w.seen;
        total.admitted_from_queue += s.admitted_from_queue;
        total.renewals += s.renewals;
        total.mismatches += s.mismatches;
        total.over_limit += s.over_limit;
        total.expired += s.expired;
        total.disconnected += s.disconnected;
        total.longest_queue = total.longest_queue.max(s.longest_queue);
    }
    // The random walk must reach the interesting states, often.
    let t = &total;
    assert!(
        t.admitted_from_queue > 1000
            && t.renewals > 1000
            && t.mismatches > 100
            && t.over_limit > 100
            && t.expired > 1000
            && t.disconnected > 100
            && t.longest_queue >= 5,
        "{t:?}"
    );
    eprintln!("{t:?}");
}
