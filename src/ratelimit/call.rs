//! One rate-limit call (HACK.RATEHIT's one limit, or HACK.QUOTA's several) carried out
//! against its keys: read every key, decide every limit, and only then write — all keys or
//! none — replicating each key's effect as `SET ... PXAT` / `DEL` with the absolute times
//! computed here. Used by the commands and by the waiters (admission from a timer).

use redis_module::raw;

use crate::module::args::RStr;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::replicate;
use crate::module::strkey::StrKey;

use super::limiter::{self, Decision, Prior, Write};
use super::request::{Algo, Limit, MAX_KEYS};
use super::verdict::Verdict;

/// What a call asks, over `names.len()` keys (at most `MAX_KEYS`, distinct).
#[derive(Clone, Copy)]
pub struct Call<'a> {
    pub names: &'a [RStr],
    pub limits: &'a [Limit],
    pub cost: i64,
    pub partial: bool,
    pub peek: bool,
}

/// The answer: HACK.QUOTA's reply fields, and each limit's verdict after the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub allowed: bool,
    pub granted: i64,
    /// Bit `i`: limit `i` denied.
    pub denied: u32,
    pub retry_after_ms: i64,
    pub n: usize,
    pub verdicts: [Verdict; MAX_KEYS],
}

const NO_VERDICT: Verdict = Verdict {
    allowed: true,
    limit: 0,
    remaining: 0,
    retry_after_ms: -1,
    reset_after_ms: 0,
};

impl Answer {
    pub fn verdicts(&self) -> &[Verdict] {
        self.verdicts.get(..self.n).unwrap_or(&[])
    }

    /// HACK.RATEHIT's five integers for limit 0.
    pub fn ratehit_array(&self) -> [i64; 5] {
        let v = self.verdicts.first().copied().unwrap_or(NO_VERDICT);
        [
            i64::from(self.allowed),
            v.limit,
            v.remaining,
            self.retry_after_ms,
            v.reset_after_ms,
        ]
    }
}

fn bit(i: usize) -> u32 {
    1u32.checked_shl(u32::try_from(i).unwrap_or(31))
        .unwrap_or(0)
}

/// Carry out `call` at `now_us`. `queued` (bit per key): keys with waiters ahead of this
/// caller; a positive charge on such a key is denied (FIFO fairness: nobody barges ahead of
/// the queue). Errors (type, algorithm or offset mismatch) come before any write.
pub fn run(ctx: &Ctx, call: Call<'_>, now_us: i64, queued: u32) -> Result<Answer, CmdError> {
    let n = call.names.len().min(call.limits.len()).min(MAX_KEYS);
    let mut keys: [Option<StrKey>; MAX_KEYS] = std::array::from_fn(|_| None);
    let mut priors = [Prior::None; MAX_KEYS];
    for i in 0..n {
        let (Some(&name), Some(lim), Some(slot), Some(p)) = (
            call.names.get(i),
            call.limits.get(i),
            keys.get_mut(i),
            priors.get_mut(i),
        ) else {
            continue;
        };
        let key = StrKey::open_rw(ctx, name)?;
        let value = key.read()?;
        // Only FIXED reads the expiry (it dates the stored count): one lookup saved elsewhere.
        let expiry = match value {
            Some(_) if lim.algo == Algo::Fixed => key.abs_expire_ms()?,
            _ => None,
        };
        *p = limiter::prior(lim, value, expiry)?;
        *slot = Some(key);
    }
    let limits = call.limits.get(..n).unwrap_or(&[]);
    let (answer, decisions) = decide_all(limits, &priors, call, now_us, queued);
    if answer.allowed && !call.peek {
        for (i, d) in decisions.iter().enumerate().take(n) {
            let (Some(Some(key)), Some(&name)) = (keys.get_mut(i), call.names.get(i)) else {
                continue;
            };
            write(ctx, key, name, d)?;
        }
    }
    Ok(answer)
}

/// The decision for every limit (pure): all-or-nothing, PARTIAL, refunds, queue fairness.
pub fn decide_all(
    limits: &[Limit],
    priors: &[Prior],
    call: Call<'_>,
    now_us: i64,
    queued: u32,
) -> (Answer, [Decision; MAX_KEYS]) {
    let n = limits.len().min(priors.len()).min(MAX_KEYS);
    let pairs = || limits.iter().zip(priors.iter().copied()).take(n);
    let mut cost = call.cost;
    let mut denied = 0u32;
    let mut retry: i64 = -1;
    let mut never = false;
    if call.cost > 0 && call.partial {
        cost = pairs()
            .map(|(l, p)| limiter::admissible(l, now_us, call.cost, p))
            .min()
            .unwrap_or(0);
    }
    let mut decisions: [Decision; MAX_KEYS] = std::array::from_fn(|_| Decision {
        verdict: NO_VERDICT,
        write: Write::Keep,
    });
    // With PARTIAL and a grant of 0, "the same call" is one of cost 1: its verdicts say which
    // limits deny and when all admit.
    let probe = if cost == 0 && call.cost > 0 { 1 } else { cost };
    for (i, (l, p)) in pairs().enumerate() {
        let d = limiter::decide(l, now_us, probe, p);
        let v = d.verdict;
        let held = queued & bit(i) != 0 && probe > 0;
        if !v.allowed || held {
            denied |= bit(i);
            if !v.allowed && v.retry_after_ms < 0 {
                never = true;
            }
            retry = retry.max(if v.allowed {
                1
            } else {
                v.retry_after_ms.max(1)
            });
        }
        if let Some(slot) = decisions.get_mut(i) {
            *slot = d;
        }
    }
    let allowed = denied == 0 && !(call.cost > 0 && cost == 0);
    if !allowed {
        // Nothing is charged: every limit's fields describe the key as it is.
        for (i, (l, p)) in pairs().enumerate() {
            if let Some(slot) = decisions.get_mut(i) {
                if slot.verdict.allowed || probe != call.cost {
                    *slot = limiter::decide(l, now_us, 0, p);
                }
                slot.write = Write::Keep;
            }
        }
    }
    let mut verdicts = [NO_VERDICT; MAX_KEYS];
    for (v, d) in verdicts.iter_mut().zip(decisions.iter()).take(n) {
        *v = d.verdict;
    }
    let answer = Answer {
        allowed,
        granted: if allowed { cost } else { 0 },
        denied,
        retry_after_ms: if allowed || never { -1 } else { retry },
        n,
        verdicts,
    };
    (answer, decisions)
}

/// Carry out one key's write and replicate its effect (an unchanged expiry is not set
/// again: FIXED within one window, saving two dictionary operations on the hot path).
pub fn write(ctx: &Ctx, key: &mut StrKey, name: RStr, d: &Decision) -> Result<(), CmdError> {
    match &d.write {
        Write::Keep => {}
        Write::Store {
            state,
            at_ms,
            same_expiry,
        } => {
            let value = state.encode();
            key.write(value.as_slice())?;
            if !same_expiry {
                key.set_abs_expire(*at_ms)?;
            }
            replicate::set_pxat(ctx, name, value.as_slice(), *at_ms)?;
            ctx.signal_modified(name)?;
            ctx.notify(raw::REDISMODULE_NOTIFY_STRING, c"hack.ratehit", name)?;
        }
        Write::Clear => {
            key.delete()?;
            replicate::del(ctx, name)?;
            ctx.signal_modified(name)?;
            ctx.notify(raw::REDISMODULE_NOTIFY_GENERIC, c"del", name)?;
        }
    }
    Ok(())
}

/// Whether this call gives capacity back (a refund), so waiters may be admitted after it.
pub fn frees_capacity(call: &Call<'_>) -> bool {
    call.cost < 0 && !call.peek
}

#[cfg(test)]
mod tests {
    //! A model-based test of the composition with a simulated clock: random sequences of
    //! RATEHIT-like single calls and QUOTA calls (1–4 keys, mixed algorithms and offsets,
    //! COST, PARTIAL, refunds, PEEK) against a straightforward model built from the
    //! single-limit decisions: "peek every limit; if all admit, charge each", and PARTIAL as
    //! a search from COST down to 1.
    use super::*;

    type Store = Vec<Option<(Vec<u8>, i64)>>;

    fn prior_of(store: &Store, k: usize, lim: &Limit, now_ms: i64) -> Prior {
        let kv = store
            .get(k)
            .cloned()
            .flatten()
            .filter(|(_, at)| *at > now_ms);
        let at = kv.as_ref().map(|(_, at)| *at);
        limiter::prior(lim, kv.as_ref().map(|(v, _)| v.as_slice()), at).unwrap()
    }

    fn apply(store: &mut Store, k: usize, d: &Decision) {
        match &d.write {
            Write::Keep => {}
            Write::Clear => store[k] = None,
            Write::Store { state, at_ms, .. } => {
                store[k] = Some((state.encode().as_slice().to_vec(), *at_ms))
            }
        }
    }

    /// The model: one QUOTA call, from single-limit decisions only.
    #[allow(clippy::too_many_arguments)]
    fn model(
        store: &mut Store,
        keys: &[usize],
        limits: &[Limit],
        cost: i64,
        partial: bool,
        peek: bool,
        now_us: i64,
    ) -> (bool, i64, Vec<usize>, i64, Vec<[i64; 3]>) {
        let now_ms = now_us.div_euclid(1000);
        let priors: Vec<Prior> = keys
            .iter()
            .zip(limits)
            .map(|(&k, l)| prior_of(store, k, l, now_ms))
            .collect();
        let all_admit = |c: i64| {
            limits
                .iter()
                .zip(&priors)
                .all(|(l, p)| limiter::decide(l, now_us, c, *p).verdict.allowed)
        };
        let grant = if cost <= 0 {
            Some(cost)
        } else if partial {
            (1..=cost).rev().find(|&c| all_admit(c))
        } else if all_admit(cost) {
            Some(cost)
        } else {
            None
        };
        let fields = |c: i64| -> Vec<[i64; 3]> {
            limits
                .iter()
                .zip(&priors)
                .map(|(l, p)| {
                    let v = limiter::decide(l, now_us, c, *p).verdict;
                    [v.limit, v.remaining, v.reset_after_ms]
                })
                .collect()
        };
        match grant {
            Some(g) => {
                let f = fields(g);
                if !peek {
                    for ((&k, l), p) in keys.iter().zip(limits).zip(&priors) {
                        let d = limiter::decide(l, now_us, g, *p);
                        apply(store, k, &d);
                    }
                }
                (true, g, vec![], -1, f)
            }
            None => {
                let probe = if partial { 1 } else { cost };
                let vs: Vec<Verdict> = limits
                    .iter()
                    .zip(&priors)
                    .map(|(l, p)| limiter::decide(l, now_us, probe, *p).verdict)
                    .collect();
                let denied: Vec<usize> = (0..vs.len()).filter(|&i| !vs[i].allowed).collect();
                let retry = if denied.iter().any(|&i| vs[i].retry_after_ms < 0) {
                    -1
                } else {
                    denied.iter().map(|&i| vs[i].retry_after_ms).max().unwrap()
                };
                (false, 0, denied, retry, fields(0))
            }
        }
    }

    #[test]
    fn random_sequences_match_the_model() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..40 {
            // Six keys, each with its own limit (so no mismatch errors).
            let configs: Vec<Limit> = (0..6)
                .map(|_| {
                    let algo = [Algo::Fixed, Algo::Sliding, Algo::Gcra][rnd(3) as usize];
                    let limit = 1 + rnd(8) as i64;
                    let period_ms = [50, 100, 1000][rnd(3) as usize];
                    Limit {
                        limit,
                        period_ms,
                        algo,
                        burst: if algo == Algo::Gcra {
                            1 + rnd(10) as i64
                        } else {
                            limit
                        },
                        offset_ms: if algo == Algo::Gcra {
                            0
                        } else {
                            rnd(period_ms as u64) as i64
                        },
                    }
                })
                .collect();
            let mut real: Store = vec![None; 6];
            let mut modeled: Store = vec![None; 6];
            let mut now_us: i64 = 1_700_000_000_000_000 + round * 7_777;
            for step in 0..400 {
                now_us += rnd(40_000) as i64 + if rnd(10) == 0 { 300_000 } else { 0 };
                let now_ms = now_us.div_euclid(1000);
                let n = 1 + rnd(4) as usize;
                let mut keys: Vec<usize> = Vec::new();
                while keys.len() < n {
                    let k = rnd(6) as usize;
                    if !keys.contains(&k) {
                        keys.push(k);
                    }
                }
                let limits: Vec<Limit> = keys.iter().map(|&k| configs[k]).collect();
                let cost = rnd(9) as i64 - 2;
                let partial = rnd(3) == 0;
                let peek = rnd(6) == 0;
                let priors: Vec<Prior> = keys
                    .iter()
                    .zip(&limits)
                    .map(|(&k, l)| prior_of(&real, k, l, now_ms))
                    .collect();
                let call = Call {
                    names: &[],
                    limits: &limits,
                    cost,
                    partial,
                    peek,
                };
                let (a, decisions) = decide_all(&limits, &priors, call, now_us, 0);
                if a.allowed && !peek {
                    for (i, &k) in keys.iter().enumerate() {
                        apply(&mut real, k, &decisions[i]);
                    }
                }
                let want = model(&mut modeled, &keys, &limits, cost, partial, peek, now_us);
                let denied: Vec<usize> = (0..n).filter(|&i| a.denied & (1 << i) != 0).collect();
                let fields: Vec<[i64; 3]> = a
                    .verdicts()
                    .iter()
                    .map(|v| [v.limit, v.remaining, v.reset_after_ms])
                    .collect();
                let got = (a.allowed, a.granted, denied, a.retry_after_ms, fields);
                assert_eq!(
                    got, want,
                    "round {round} step {step}: {keys:?} {limits:?} cost {cost} partial {partial}"
                );
                // Drop expired keys in both, then the stores must agree exactly.
                for s in [&mut real, &mut modeled] {
                    for kv in s.iter_mut() {
                        if kv.as_ref().is_some_and(|(_, at)| *at <= now_ms) {
                            *kv = None;
                        }
                    }
                }
                assert_eq!(real, modeled, "round {round} step {step}");
                // Retry is truthful: when all limits first admit the same call.
                if !a.allowed && a.retry_after_ms > 0 && cost > 0 {
                    let probe = if partial { 1 } else { cost };
                    let at = now_us + a.retry_after_ms * 1000;
                    let before = now_us + (a.retry_after_ms - 1) * 1000;
                    let admits = |t: i64| {
                        keys.iter().zip(&limits).all(|(&k, l)| {
                            let p = prior_of(&real, k, l, t.div_euclid(1000));
                            limiter::decide(l, t, probe, p).verdict.allowed
                        })
                    };
                    assert!(
                        admits(at),
                        "round {round} step {step}: not admitted at retry"
                    );
                    if a.retry_after_ms > 1 {
                        assert!(
                            !admits(before),
                            "round {round} step {step}: admitted before retry"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn queued_keys_deny_charges_but_not_refunds() {
        let l = [Limit {
            limit: 5,
            period_ms: 1000,
            algo: Algo::Fixed,
            burst: 5,
            offset_ms: 0,
        }];
        let call = |cost| Call {
            names: &[],
            limits: &l,
            cost,
            partial: false,
            peek: false,
        };
        let (a, _) = decide_all(&l, &[Prior::None], call(1), 1_000_000, 1);
        assert_eq!((a.allowed, a.denied, a.retry_after_ms), (false, 1, 1));
        let (a, _) = decide_all(&l, &[Prior::None], call(-1), 1_000_000, 1);
        assert!(a.allowed);
    }
}
