//! `HACK.SEMEXTEND key owner ttl_ms`

use crate::module::args::Args;
use crate::module::command::{ArgDoc, Command, CommandDef, KeySpec};
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::typedkey::TypedKey;

use crate::lock::commands::lock::NOT_REPLICATED;
use crate::lock::lease::MAX_MS;
use crate::lock::semaphore::args::check_owner;
use crate::lock::semaphore::datatype::SEM_TYPE;
use crate::lock::semaphore::wait;
use crate::lock::stats;
use crate::lock::waiters::LockName;

pub struct SemExtend;

impl Command for SemExtend {
    const DEF: CommandDef = CommandDef {
        name: c"HACK.SEMEXTEND",
        flags: c"write deny-oom fast",
        arity: 4,
        keys: KeySpec::one(KeySpec::UPDATE),
        summary: c"Sets the remaining lease of owner's permits in a semaphore to ttl_ms (same fencing token and permits): 1 extended, 0 if owner holds none (nothing changes).",
        complexity: c"O(H) for H holders",
        since: c"0.2.0",
        args: &[
            ArgDoc::key(c"key"),
            ArgDoc::string(c"owner"),
            ArgDoc::int(c"ttl_ms"),
        ],
        ..CommandDef::BASE
    };

    fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
        let owner = args.bytes(2)?;
        check_owner(owner)?;
        let ttl_ms = args.int_in(3, "ttl_ms", 1, MAX_MS)?;
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
        let extended = wait::change(ctx, &mut key, name, &sem_name, now_ms, |sem, _| {
            match sem.extend(owner, ttl_ms, now_ms) {
                Ok(done) => (done, Ok(done)),
                Err(e) => (false, Err(e.to_cmd_error())),
            }
        })??;
        if extended {
            stats::SEM_EXTENDED.incr();
            ctx.reply_i64(1)
        } else {
            stats::SEM_NOT_HOLDER.incr();
            ctx.reply_i64(0)
        }
    }
}
