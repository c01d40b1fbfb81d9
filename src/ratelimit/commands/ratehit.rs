//! HACK.RATEHIT: the thin glue between the server and the pure algorithms.

use crate::module::args::Args;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::strkey::StrKey;

use crate::ratelimit::call::{self, Call};
use crate::ratelimit::limiter;
use crate::ratelimit::request::{self, Algo, MAX_WORDS};
use crate::ratelimit::{stats, waiters};

/// The most arguments a call takes, name included (`ratehit.json`'s `max_argc`).
pub const MAX_ARGC: usize = 2 + MAX_WORDS;

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let mut words: [&[u8]; MAX_WORDS] = [&[]; MAX_WORDS];
    let n = args.len().saturating_sub(2);
    for (i, slot) in words.iter_mut().enumerate().take(n) {
        *slot = args.bytes(i.saturating_add(2))?;
    }
    let req = request::parse(words.get(..n).unwrap_or(&[]))?;
    let name = args.raw(1)?;
    let now_us = ctx.now_us()?;

    // Waiters (WAIT) on this key, or a WAIT caller: the queue-aware path. Everything else
    // (the hot path) is one key read, one decision and at most one write.
    if req.wait_ms > 0 || waiters::any_waiting() {
        let names = [name];
        let limits = [req.lim];
        let c = Call {
            names: &names,
            limits: &limits,
            cost: req.cost,
            partial: false,
            peek: req.peek,
        };
        let names_b = [args.bytes(1)?];
        if let Some(answer) = waiters::call_or_block(
            ctx,
            c,
            &names_b,
            req.wait_ms,
            now_us,
            waiters::Reply::RateHit,
        )? {
            count(&req, answer.allowed);
            return reply(ctx, answer.ratehit_array());
        }
        return Ok(());
    }

    let mut key = StrKey::open_rw(ctx, name)?;
    let value = key.read()?;
    // Only FIXED reads the expiry (it dates the stored count): one lookup saved elsewhere.
    let expiry = match value {
        Some(_) if req.lim.algo == Algo::Fixed => key.abs_expire_ms()?,
        _ => None,
    };
    let prior = limiter::prior(&req.lim, value, expiry)?;
    let d = limiter::decide(&req.lim, now_us, req.cost, prior);
    if !req.peek {
        call::write(ctx, &mut key, name, &d)?;
    }
    drop(key);
    count(&req, d.verdict.allowed);
    reply(ctx, d.verdict.to_array())
}

fn count(req: &request::Request, allowed: bool) {
    if req.peek {
        stats::RATEHIT_PEEKS.incr();
    } else if allowed {
        stats::RATEHIT_ALLOWED.incr();
    } else {
        stats::RATEHIT_DENIED.incr();
    }
}

fn reply(ctx: &Ctx, a: [i64; 5]) -> Result<(), CmdError> {
    ctx.reply_array(5)?;
    for v in a {
        ctx.reply_i64(v)?;
    }
    Ok(())
}
