//! `HACK.SEMRELEASE key owner`

use crate::module::args::Args;
use crate::module::command::{ArgDoc, Command, CommandDef, KeySpec};
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;

use crate::lock::semaphore::args::check_owner;
use crate::lock::semaphore::wait;
use crate::lock::stats;

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
        wait::change_holder(ctx, args, &stats::SEM_RELEASED, |sem, now_ms| {
            Ok(sem.release(owner, now_ms).is_some())
        })
    }
}
