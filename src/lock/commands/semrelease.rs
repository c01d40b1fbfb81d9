//! `HACK.SEMRELEASE key owner`

use crate::module::args::Args;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;

use crate::lock::semaphore::args::check_owner;
use crate::lock::semaphore::wait;
use crate::lock::stats;

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let owner = args.bytes(2)?;
    check_owner(owner)?;
    wait::change_holder(ctx, args, &stats::SEM_RELEASED, |sem, now_ms| {
        Ok(sem.release(owner, now_ms).is_some())
    })
}
