//! Adding members to a distinct series key, shared by `HACK.TSADD` (the master, which
//! checks `AT` against its clock) and `HACK.TSADDAT` (its effect on replicas and in the
//! AOF, with the master's `now` and `AT`: the same members into the same buckets give the
//! same registers everywhere).

use crate::module::args::{Args, RStr};
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::typedkey::TypedKey;

use super::args::at_error;
use super::distinct::DistinctSeries;
use super::distinct_type::DISTINCT_TYPE;
use super::settings::distinct_sparse_max_bytes;
use super::spec::RollupSpec;

/// When a write happens: the master's clock reading, the bucket time, and whether `at` is
/// checked against retention (the master) or applied where it still fits (a replay).
#[derive(Clone, Copy)]
pub struct When {
    pub now: i64,
    pub at: i64,
    pub check: bool,
}

pub struct Added {
    /// Whether the finest retaining rollup's sketch changed (`None`: nothing retains AT).
    pub changed: Option<bool>,
    /// The rollups the series was created with, when this call created it.
    pub created: Option<Vec<RollupSpec>>,
}

/// Add `args[members]` at `at`, as of `now`. A missing key is created with `create_with`
/// (validated first: on error no key is left behind). `check` is false when replaying.
pub fn add(
    ctx: &Ctx,
    name: RStr,
    when: When,
    args: &Args,
    members: std::ops::Range<usize>,
    create_with: impl FnOnce() -> Vec<RollupSpec>,
) -> Result<Added, CmdError> {
    // Every member is a valid string argument (checked before any write).
    for i in members.clone() {
        args.bytes(i)?;
    }
    let iter = members.map(|i| args.bytes(i).unwrap_or(&[]));
    let sparse_max = distinct_sparse_max_bytes();
    let mut key = TypedKey::open(ctx, name, &DISTINCT_TYPE, true)
        .map_err(|e| super::kind::wrong_family(e, ctx, name, true))?;
    let (changed, created, before, after) = match key.get_mut()? {
        Some(s) => {
            let before = s.expire_at_ms;
            let c = s
                .add(when.now, when.at, iter, when.check, sparse_max)
                .map_err(at_error)?;
            (c, None, before, s.expire_at_ms)
        }
        None => {
            let specs = create_with();
            let mut s = DistinctSeries::new(&specs);
            let c = s
                .add(when.now, when.at, iter, when.check, sparse_max)
                .map_err(at_error)?;
            let after = s.expire_at_ms;
            if after.is_none() {
                // Replay of an AT nothing retains: no empty key is left behind.
                return Ok(Added {
                    changed: c,
                    created: None,
                });
            }
            key.create(s)?;
            (c, Some(specs), None, after)
        }
    };
    // The key expires once no rollup retains its newest bucket (see `layout`).
    if after != before {
        if let Some(at) = after {
            key.set_abs_expire(Some(at))?;
        }
    }
    Ok(Added { changed, created })
}
