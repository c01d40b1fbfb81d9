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
use super::request::{Limit, MAX_KEYS};
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
        let expiry = match value {
            Some(_) => key.abs_expire_ms()?,
            None => None,
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
            value,
            at_ms,
            same_expiry,
        } => {
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
