//! Applying one increment to a series key, shared by `HACK.TSINCR` (the master, which
//! checks `AT` against its clock) and `HACK.TSAPPLY` (its effect on replicas and in the AOF).

use crate::module::args::RStr;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::typedkey::TypedKey;

use super::args::incr_error;
use super::datatype::SERIES_TYPE;
use super::series::Series;
use super::spec::RollupSpec;

pub struct Applied {
    /// New value of the finest rollup's bucket that took the increment.
    pub value: Option<i64>,
    /// The rollups the series was created with, when this call created it.
    pub created: Option<Vec<RollupSpec>>,
}

/// Add `inc` at `at`, as of `now`. A missing key is created with `create_with` (validated
/// first: on error no key is left behind). `check` is false when replaying an effect.
pub fn apply(
    ctx: &Ctx,
    name: RStr,
    now: i64,
    at: i64,
    inc: i64,
    check: bool,
    create_with: impl FnOnce() -> Vec<RollupSpec>,
) -> Result<Applied, CmdError> {
    let mut key = TypedKey::open(ctx, name, &SERIES_TYPE, true)
        .map_err(|e| super::kind::wrong_family(e, ctx, name, false))?;
    let (value, created, expire_before, expire_after) = match key.get_mut()? {
        Some(s) => {
            let before = s.expire_at_ms;
            let v = s.incr(now, at, inc, check).map_err(incr_error)?;
            (v, None, before, s.expire_at_ms)
        }
        None => {
            let specs = create_with();
            let mut s = Series::new(&specs);
            let v = s.incr(now, at, inc, check).map_err(incr_error)?;
            let after = s.expire_at_ms;
            key.create(s)?;
            (v, Some(specs), None, after)
        }
    };
    // The key expires once no rollup retains its newest bucket: a function of the data, so
    // every copy sets the same absolute time. Only set when it moves (once per bucket).
    if expire_after != expire_before {
        if let Some(at) = expire_after {
            key.set_abs_expire(Some(at))?;
        }
    }
    Ok(Applied { value, created })
}
