//! `HACK.SEMEXTEND key owner ttl_ms`

use crate::module::args::Args;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;

use crate::lock::lease::MAX_MS;
use crate::lock::semaphore::args::check_owner;
use crate::lock::semaphore::wait;
use crate::lock::stats;

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let owner = args.bytes(2)?;
    check_owner(owner)?;
    let ttl_ms = args.int_in(3, "ttl_ms", 1, MAX_MS)?;
    wait::change_holder(ctx, args, &stats::SEM_EXTENDED, |sem, now_ms| {
        sem.extend(owner, ttl_ms, now_ms)
            .map_err(|e| e.to_cmd_error())
    })
}
