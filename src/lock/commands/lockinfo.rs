//! `HACK.LOCKINFO key`

use crate::module::args::Args;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::typedkey::TypedKey;

use crate::lock::datatype::LOCK_TYPE;
use crate::lock::lease;
use crate::lock::waiters::{self, LockName};

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let key = TypedKey::open(ctx, args.raw(1)?, &LOCK_TYPE, false)?;
    let Some(lock) = key.get()? else {
        return ctx.reply_null();
    };
    // Reading the clock is fine here: nothing is written or replicated.
    let now_ms = ctx.now_us()?.div_euclid(1000);
    let ttl = lease::remaining(key.abs_expire_ms()?, now_ms);
    let waiting = waiters::queued(&LockName::of_command(ctx, args)?);
    ctx.reply_map(4)?;
    ctx.reply_bulk(b"owner")?;
    ctx.reply_bulk(&lock.owner)?;
    ctx.reply_bulk(b"ttl_ms")?;
    ctx.reply_i64(ttl)?;
    ctx.reply_bulk(b"token")?;
    ctx.reply_i64(i64::try_from(lock.token).unwrap_or(i64::MAX))?;
    ctx.reply_bulk(b"waiters")?;
    ctx.reply_i64(i64::try_from(waiting).unwrap_or(i64::MAX))
}
