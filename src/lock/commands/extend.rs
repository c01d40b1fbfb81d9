//! `HACK.EXTEND key owner ttl_ms`

use crate::module::args::Args;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::typedkey::TypedKey;

use crate::lock::commands::lock::{EMPTY_OWNER, NOT_REPLICATED};
use crate::lock::datatype::LOCK_TYPE;
use crate::lock::effect::{self, Owner};
use crate::lock::lease::{self, MAX_MS};
use crate::lock::stats;
use crate::lock::waiters::{self, LockName};

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let owner = args.bytes(2)?;
    if owner.is_empty() {
        return Err(EMPTY_OWNER);
    }
    let ttl_ms = args.int_in(3, "ttl_ms", 1, MAX_MS)?;
    if ctx.is_replaying()? {
        return Err(NOT_REPLICATED);
    }
    let name = args.raw(1)?;
    let lock = LockName::of_command(ctx, args)?;
    let mut key = TypedKey::open(ctx, name, &LOCK_TYPE, true)?;
    let held = key.get()?;
    let Some(token) = held
        .filter(|l| lease::may_extend(Some(l), owner))
        .map(|l| l.token)
    else {
        stats::LOCK_NOT_HOLDER.incr();
        return ctx.reply_i64(0);
    };
    let now_ms = ctx.now_us()?.div_euclid(1000);
    let at = lease::expiry(now_ms, ttl_ms);
    effect::install(
        ctx,
        &mut key,
        name,
        Owner::Arg(args.raw(2)?, owner),
        token,
        at,
    )?;
    waiters::watch(ctx, &key, &lock, now_ms)?;
    stats::LOCK_EXTENDED.incr();
    ctx.reply_i64(1)
}
