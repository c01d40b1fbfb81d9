//! `HACK.LOCK key owner ttl_ms [WAIT timeout_ms]`

use redis_module::raw;

use crate::module::args::{is_keyword, missing_value, repeated_option, unknown_option, Args};
use crate::module::blocked;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::typedkey::TypedKey;

use crate::lock::datatype::LOCK_TYPE;
use crate::lock::effect::{self, Owner};
use crate::lock::lease::{self, LockStep, MAX_MS};
use crate::lock::waiters::{self, LockName};
use crate::lock::{stats, token};

pub const EMPTY_OWNER: CmdError = CmdError::Static("ERR owner must not be empty");
pub const NOT_REPLICATED: CmdError = CmdError::Static(
    "ERR lock commands are never replicated as such (their effect is HACK.LOCKSET or DEL)",
);

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let req = parse(args)?;
    let flags = ctx.flags()?;
    if flags & (raw::REDISMODULE_CTX_FLAGS_REPLICATED | raw::REDISMODULE_CTX_FLAGS_LOADING) != 0 {
        return Err(NOT_REPLICATED);
    }
    let may_block = req.wait.is_some() && blocked::can_block(flags);
    let name = args.raw(1)?;
    let lock = LockName::of_command(ctx, args)?;
    let owner = Owner::Arg(args.raw(2)?, req.owner);
    let now_us = ctx.now_us()?;
    let now_ms = now_us.div_euclid(1000);
    let mut key = TypedKey::open(ctx, name, &LOCK_TYPE, true)?;
    // At most two rounds: a free lock with waiters goes to the first of them, then the
    // caller is looked at against the new holder.
    for _ in 0..2 {
        let step = lease::on_lock(key.get()?, req.owner, waiters::queued(&lock));
        match step {
            LockStep::Acquire => {
                let token = token::allocate_at(now_us)?;
                let at = lease::expiry(now_ms, req.ttl_ms);
                effect::install(ctx, &mut key, name, owner, token, at)?;
                stats::LOCK_ACQUIRED.incr();
                return reply_token(ctx, token);
            }
            LockStep::Renew { token } => {
                let at = lease::expiry(now_ms, req.ttl_ms);
                effect::install(ctx, &mut key, name, owner, token, at)?;
                waiters::watch(ctx, &key, &lock, now_ms)?;
                stats::LOCK_RENEWED.incr();
                return reply_token(ctx, token);
            }
            LockStep::ServeQueueFirst => {
                waiters::hand_off(ctx, &mut key, name, &lock, now_ms)?;
                waiters::watch(ctx, &key, &lock, now_ms)?;
            }
            LockStep::Busy => {
                return match req.wait {
                    Some(timeout) if may_block => {
                        let expiry = key.abs_expire_ms()?;
                        drop(key);
                        waiters::block(ctx, &lock, req.owner, req.ttl_ms, timeout, expiry, now_ms)
                    }
                    _ => {
                        stats::LOCK_BUSY.incr();
                        ctx.reply_null()
                    }
                };
            }
        }
    }
    Err(CmdError::Static(
        "ERR internal error: the lock changed hands unexpectedly",
    ))
}

fn reply_token(ctx: &Ctx, token: u64) -> Result<(), CmdError> {
    ctx.reply_i64(i64::try_from(token).unwrap_or(i64::MAX))
}

struct Request<'a> {
    owner: &'a [u8],
    ttl_ms: i64,
    /// `WAIT timeout_ms` (0 = no limit).
    wait: Option<i64>,
}

fn parse<'a>(args: &Args<'a>) -> Result<Request<'a>, CmdError> {
    let owner = args.bytes(2)?;
    if owner.is_empty() {
        return Err(EMPTY_OWNER);
    }
    let ttl_ms = args.int_in(3, "ttl_ms", 1, MAX_MS)?;
    let mut wait = None;
    let mut i = 4;
    while i < args.len() {
        let opt = args.bytes(i)?;
        if !is_keyword(opt, "WAIT") {
            return Err(unknown_option(opt));
        }
        if wait.is_some() {
            return Err(repeated_option("WAIT"));
        }
        // `i < args.len()`, so `i + 1` and `i + 2` cannot overflow.
        let value_at = i.saturating_add(1);
        if value_at >= args.len() {
            return Err(missing_value("WAIT"));
        }
        wait = Some(args.int_in(value_at, "WAIT timeout_ms", 0, MAX_MS)?);
        i = i.saturating_add(2);
    }
    Ok(Request {
        owner,
        ttl_ms,
        wait,
    })
}
