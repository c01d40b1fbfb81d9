//! `HACK.SEMRELEASE key owner`

use crate::module::args::Args;
use crate::module::command::{ArgDoc, Command, CommandDef, KeySpec};
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::typedkey::TypedKey;

use crate::lock::commands::lock::NOT_REPLICATED;
use crate::lock::semaphore::args::check_owner;
use crate::lock::semaphore::datatype::SEM_TYPE;
use crate::lock::semaphore::wait;
use crate::lock::stats;
use crate::lock::waiters::LockName;

pub struct SemRelease;

impl Command for SemRelease {
    const DEF: CommandDef = CommandDef {
        name: c"HACK.SEMRELEASE",
        flags: c"write fast",
        arity: 3,
        keys: KeySpec::one(KeySpec::TAKE),
        summary: c"Releases the permits owner holds in a semaphore: 1 released (waiters that now fit are admitted in FIFO order), 0 if owner holds none (nothing changes).",
        complexity: c"O(H) for H holders, plus O(log W) per waiter admitted",
        since: c"0.2.0",
        args: &[ArgDoc::key(c"key"), ArgDoc::string(c"owner")],
        ..CommandDef::BASE
    };

    fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
        let owner = args.bytes(2)?;
        check_owner(owner)?;
        if ctx.is_replaying()? {
            return Err(NOT_REPLICATED);
        }
        let name = args.raw(1)?;
        let sem_name = LockName {
            db: ctx.selected_db()?,
            name: args.bytes(1)?,
        };
        let now_ms = ctx.now_us()?.div_euclid(1000);
        let mut key = TypedKey::open(ctx, name, &SEM_TYPE, true)?;
        if key.get()?.is_none() {
            stats::SEM_NOT_HOLDER.incr();
            return ctx.reply_i64(0);
        }
        let released = wait::change(ctx, &mut key, name, &sem_name, now_ms, |sem, _| {
            let gone = sem.release(owner, now_ms).is_some();
            (gone, gone)
        })?;
        if released {
            stats::SEM_RELEASED.incr();
            ctx.reply_i64(1)
        } else {
            stats::SEM_NOT_HOLDER.incr();
            ctx.reply_i64(0)
        }
    }
}
