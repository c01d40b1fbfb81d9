//! `HACK.QUOTA numkeys key [key ...] limit period_ms [ALGO ...] [BURST n] [OFFSET ms]
//! [limit period_ms [...] ...] [COST n] [PARTIAL] [PEEK] [WAIT timeout_ms]`: several rate
//! limits checked and charged in one atomic step, all or nothing.
//!
//! Each key is an ordinary HACK.RATEHIT key (same encodings and checks). Every argument and
//! every key is validated, and every limit decided, before any key is written.

use crate::module::args::{Args, RStr};
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;

use crate::ratelimit::call::{self, Call};
use crate::ratelimit::request::{self, MAX_KEYS};
use crate::ratelimit::{stats, waiters};

/// Words after the keys: 8 per limit group at most, then 7 for the call options.
const MAX_WORDS: usize = MAX_KEYS * 8 + 7;

/// The most arguments a call takes, name included (`quota.json`'s `max_argc`).
pub const MAX_ARGC: usize = 2 + MAX_KEYS + MAX_WORDS;

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let n = request::numkeys(args.bytes(1)?, args.len())?;
    let mut names: [Option<RStr>; MAX_KEYS] = [None; MAX_KEYS];
    let mut bytes: [&[u8]; MAX_KEYS] = [&[]; MAX_KEYS];
    for i in 0..n {
        let at = i.saturating_add(2);
        let b = args.bytes(at)?;
        if bytes.iter().take(i).any(|&prev| prev == b) {
            return Err(CmdError::msg(format!(
                "ERR keys must be distinct: key {} repeats an earlier key",
                i.saturating_add(1)
            )));
        }
        if let (Some(slot), Some(bslot)) = (names.get_mut(i), bytes.get_mut(i)) {
            *slot = Some(args.raw(at)?);
            *bslot = b;
        }
    }
    let first_word = n.saturating_add(2);
    let q = request::parse_quota_with(n, |i| args.bytes(first_word.saturating_add(i)).ok())?;

    let mut rs: [RStr; MAX_KEYS] = [args.raw(2)?; MAX_KEYS];
    for (slot, name) in rs.iter_mut().zip(names.iter()).take(n) {
        if let Some(name) = name {
            *slot = *name;
        }
    }
    let c = Call {
        names: rs.get(..n).unwrap_or(&[]),
        limits: q.limits(),
        cost: q.cost,
        partial: q.partial,
        peek: q.peek,
    };
    let now_us = ctx.now_us()?;
    let answer = if q.wait_ms > 0 || waiters::any_waiting() {
        let b = bytes.get(..n).unwrap_or(&[]);
        match waiters::call_or_block(ctx, c, b, q.wait_ms, now_us, waiters::Reply::Quota)? {
            Some(a) => a,
            None => return Ok(()),
        }
    } else {
        call::run(ctx, c, now_us, 0)?
    };
    if q.peek {
        stats::QUOTA_PEEKS.incr();
    } else if answer.allowed {
        stats::QUOTA_ALLOWED.incr();
    } else {
        stats::QUOTA_DENIED.incr();
    }
    waiters::reply_quota(ctx, &answer)
}
