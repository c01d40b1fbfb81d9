//! `HACK.UNLOCK key owner`

use redis_module::raw;

use crate::module::args::Args;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::replicate;
use crate::module::typedkey::TypedKey;

use crate::lock::commands::lock::EMPTY_OWNER;
use crate::lock::datatype::LOCK_TYPE;
use crate::lock::lease::{self, Release};
use crate::lock::stats;
use crate::lock::waiters::{self, LockName};

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let owner = args.bytes(2)?;
    if owner.is_empty() {
        return Err(EMPTY_OWNER);
    }
    // Replicas and AOF replay receive a plain release as this very command: it reads no
    // clock, and the key's state decides it. (They have nobody waiting.)
    let replaying = ctx.is_replaying()?;
    let name = args.raw(1)?;
    let lock = LockName::of_command(ctx, args)?;
    let mut key = TypedKey::open(ctx, name, &LOCK_TYPE, true)?;
    let queued = if replaying { 0 } else { waiters::queued(&lock) };
    match lease::on_unlock(key.get()?, owner, queued) {
        Release::NotHolder => {
            stats::LOCK_NOT_HOLDER.incr();
            ctx.reply_i64(0)
        }
        Release::Delete => {
            key.delete()?;
            drop(key);
            replicate::verbatim(ctx)?;
            ctx.signal_modified(name)?;
            ctx.notify(raw::REDISMODULE_NOTIFY_MODULE, c"hack.unlock", name)?;
            stats::LOCK_RELEASED.incr();
            ctx.reply_i64(1)
        }
        Release::HandOff => {
            ctx.notify(raw::REDISMODULE_NOTIFY_MODULE, c"hack.unlock", name)?;
            stats::LOCK_RELEASED.incr();
            let now_ms = ctx.now_us()?.div_euclid(1000);
            waiters::hand_off(ctx, &mut key, name, &lock, now_ms)?;
            waiters::watch(ctx, &key, &lock, now_ms)?;
            ctx.reply_i64(1)
        }
    }
}
