//! `HACK.SEMINFO key`

use crate::module::args::Args;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::typedkey::TypedKey;

use crate::lock::semaphore::datatype::SEM_TYPE;
use crate::lock::semaphore::wait;
use crate::lock::waiters::LockName;

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let this = LockName::of_command(ctx, args)?;
    let key = TypedKey::open(ctx, args.raw(1)?, &SEM_TYPE, false)?;
    let Some(sem) = key.get()? else {
        return ctx.reply_null();
    };
    // Reading the clock is fine here: nothing is written or replicated. Ended leases are
    // skipped, so a replica (or a read before the expiry timer) shows what is held.
    let now_ms = ctx.now_us()?.div_euclid(1000);
    let Some(info) = sem.info(now_ms) else {
        return ctx.reply_null();
    };
    let int = |v: u64| ctx.reply_i64(i64::try_from(v).unwrap_or(i64::MAX));
    ctx.reply_map(4)?;
    ctx.reply_bulk(b"limit")?;
    int(info.limit)?;
    ctx.reply_bulk(b"permits_in_use")?;
    int(info.permits_in_use)?;
    ctx.reply_bulk(b"holders")?;
    ctx.reply_array(info.holders.len())?;
    for h in &info.holders {
        ctx.reply_map(5)?;
        ctx.reply_bulk(b"owner")?;
        ctx.reply_bulk(h.owner)?;
        ctx.reply_bulk(b"permits")?;
        int(h.permits)?;
        ctx.reply_bulk(b"ttl_ms")?;
        ctx.reply_i64(h.ttl_ms)?;
        ctx.reply_bulk(b"token")?;
        int(h.token)?;
        ctx.reply_bulk(b"bound")?;
        ctx.reply_i64(i64::from(h.bound))?;
    }
    ctx.reply_bulk(b"waiters")?;
    ctx.reply_i64(i64::try_from(wait::queued_for(&this)).unwrap_or(i64::MAX))
}
