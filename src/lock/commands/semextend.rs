//! `HACK.SEMEXTEND key owner ttl_ms`

use crate::module::args::Args;
use crate::module::command::{ArgDoc, Command, CommandDef, KeySpec};
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;

use crate::lock::lease::MAX_MS;
use crate::lock::semaphore::args::check_owner;
use crate::lock::semaphore::wait;
use crate::lock::stats;

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
        wait::change_holder(ctx, args, &stats::SEM_EXTENDED, |sem, now_ms| {
            sem.extend(owner, ttl_ms, now_ms)
                .map_err(|e| e.to_cmd_error())
        })
    }
}
