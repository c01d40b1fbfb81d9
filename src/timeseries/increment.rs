//! Applying one increment to a series key, shared by `HACK.TSINCR` (the master, which
//! checks `AT` against its clock) and `HACK.TSAPPLY` (its effect on replicas and in the AOF).

use crate::module::args::RStr;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;

use super::args::incr_error;
use super::series::Series;
use super::spec::RollupSpec;
use super::write::{write, When};

pub struct Applied {
    /// New value of the finest rollup's bucket that took the increment.
    pub value: Option<i64>,
    /// The rollups the series was created with, when this call created it.
    pub created: Option<Vec<RollupSpec>>,
}

/// Add `inc` at `when.at`, as of `when.now`. A missing key is created with `create_with` (validated
/// first: on error no key is left behind).
pub fn apply(
    ctx: &Ctx,
    name: RStr,
    when: When,
    inc: i64,
    create_with: impl FnOnce() -> Vec<RollupSpec>,
) -> Result<Applied, CmdError> {
    let (value, created) = write::<Series, _>(ctx, name, create_with, |s| {
        s.incr(when.now, when.at, inc, when.check)
            .map_err(incr_error)
    })?;
    Ok(Applied { value, created })
}
