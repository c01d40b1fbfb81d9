//! HACK.RATEHIT: the thin glue between the server and the pure algorithms.

use redis_module::raw;

use crate::module::args::{Args, RStr};
use crate::module::command::{ArgDoc, Command, CommandDef, KeySpec};
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::num::Buf;
use crate::module::replicate;
use crate::module::strkey::StrKey;

use crate::ratelimit::codec::{self, Stored};
use crate::ratelimit::request::{self, Algo, Request, MAX_WORDS};
use crate::ratelimit::verdict::{Next, Outcome, Verdict};
use crate::ratelimit::{fixed, gcra, sliding, stats};

pub struct RateHit;

const ALGOS: &[ArgDoc] = &[
    ArgDoc::token(c"fixed", c"FIXED"),
    ArgDoc::token(c"sliding", c"SLIDING"),
    ArgDoc::token(c"gcra", c"GCRA"),
];

const ARGS: &[ArgDoc] = &[
    ArgDoc::key(c"key"),
    ArgDoc::int(c"limit"),
    ArgDoc::int(c"period_ms"),
    ArgDoc::int_option(c"cost", c"COST"),
    ArgDoc::one_of(c"algo", Some(c"ALGO"), ALGOS).optional(),
    ArgDoc::int_option(c"burst", c"BURST"),
    ArgDoc::token(c"peek", c"PEEK").optional(),
];

impl Command for RateHit {
    const DEF: CommandDef = CommandDef {
        name: c"HACK.RATEHIT",
        flags: c"write deny-oom fast",
        arity: -4,
        keys: KeySpec::one(KeySpec::UPDATE),
        summary: c"Counts a hit against a rate limit (FIXED window, SLIDING window or GCRA) atomically. Replies [allowed, limit, remaining, retry_after_ms, reset_after_ms].",
        complexity: c"O(1)",
        since: c"0.1.0",
        args: ARGS,
        max_argc: 2 + MAX_WORDS,
        ..CommandDef::BASE
    };

    fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
        let mut words: [&[u8]; MAX_WORDS] = [&[]; MAX_WORDS];
        let n = args.len().saturating_sub(2);
        for (i, slot) in words.iter_mut().enumerate().take(n) {
            *slot = args.bytes(i.saturating_add(2))?;
        }
        let req = request::parse(words.get(..n).unwrap_or(&[]))?;
        let name = args.raw(1)?;

        let now_us = ctx.now_us()?;
        let now_ms = now_us.div_euclid(1000);
        let mut key = StrKey::open_rw(ctx, name)?;
        let stored = key.read()?.map(codec::decode);
        let verdict = match req.algo {
            Algo::Fixed => {
                let prior = match stored {
                    None => None,
                    Some(Stored::Fixed(count)) => Some(fixed::Stored {
                        count,
                        expires_at_ms: key.abs_expire_ms()?,
                    }),
                    Some(other) => return Err(mismatch(other, req.algo)),
                };
                let o = fixed::decide(now_ms, req.limit, req.period_ms, req.cost, prior);
                let expiry = prior.and_then(|p| p.expires_at_ms);
                apply(ctx, &mut key, name, &req, o, expiry, codec::encode_fixed)?
            }
            Algo::Sliding => {
                let prior = match stored {
                    None => None,
                    Some(Stored::Sliding(s)) => Some(s),
                    Some(other) => return Err(mismatch(other, req.algo)),
                };
                let o = sliding::decide(now_ms, req.limit, req.period_ms, req.cost, prior);
                apply(ctx, &mut key, name, &req, o, None, |s| {
                    codec::encode_sliding(&s)
                })?
            }
            Algo::Gcra => {
                let prior = match stored {
                    None => None,
                    Some(Stored::Gcra(s)) => Some(s),
                    Some(other) => return Err(mismatch(other, req.algo)),
                };
                let o = gcra::decide(now_us, req.limit, req.period_ms, req.burst, req.cost, prior);
                apply(ctx, &mut key, name, &req, o, None, |s| {
                    codec::encode_gcra(&s)
                })?
            }
        };
        drop(key);

        if req.peek {
            stats::PEEKS.incr();
        } else if verdict.allowed {
            stats::ALLOWED.incr();
        } else {
            stats::DENIED.incr();
        }
        ctx.reply_array(5)?;
        for v in verdict.to_array() {
            ctx.reply_i64(v)?;
        }
        Ok(())
    }
}

/// Carry out the decision's write (unless PEEK) and replicate its effect with the absolute
/// expiry computed here, on the master's clock. `expiry` is the key's current absolute expiry
/// when the caller already read it: an unchanged expiry is not set again (FIXED within one
/// window), saving two dictionary operations on the hot path.
fn apply<S>(
    ctx: &Ctx,
    key: &mut StrKey,
    name: RStr,
    req: &Request,
    outcome: Outcome<S>,
    expiry: Option<i64>,
    encode: impl Fn(S) -> Buf,
) -> Result<Verdict, CmdError> {
    if req.peek {
        return Ok(outcome.verdict);
    }
    match outcome.next {
        Next::Keep => {}
        Next::Store {
            state,
            expire_at_ms,
        } => {
            let value = encode(state);
            key.write(value.as_slice())?;
            if expiry != Some(expire_at_ms) {
                key.set_abs_expire(expire_at_ms)?;
            }
            replicate::set_pxat(ctx, name, value.as_slice(), expire_at_ms)?;
            ctx.signal_modified(name)?;
            ctx.notify(raw::REDISMODULE_NOTIFY_STRING, c"hack.ratehit", name)?;
        }
        Next::Clear => {
            key.delete()?;
            replicate::del(ctx, name)?;
            ctx.signal_modified(name)?;
            ctx.notify(raw::REDISMODULE_NOTIFY_GENERIC, c"del", name)?;
        }
    }
    Ok(outcome.verdict)
}

fn mismatch(stored: Stored, wanted: Algo) -> CmdError {
    let held = match stored {
        Stored::Fixed(_) => Algo::Fixed.name(),
        Stored::Sliding(_) => Algo::Sliding.name(),
        Stored::Gcra(_) => Algo::Gcra.name(),
        Stored::Foreign => {
            return CmdError::Static("ERR key holds a string that is not a HACK.RATEHIT limiter")
        }
    };
    CmdError::msg(format!(
        "ERR key holds an ALGO {held} limiter; it cannot be used with ALGO {}",
        wanted.name()
    ))
}
