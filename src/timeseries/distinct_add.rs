//! Adding members to a distinct series key, shared by `HACK.TSADD` (the master, which
//! checks `AT` against its clock) and `HACK.TSADDAT` (its effect on replicas and in the
//! AOF, with the master's `now` and `AT`: the same members into the same buckets give the
//! same registers everywhere).

use crate::module::args::{Args, RStr};
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;

use super::args::at_error;
use super::distinct::DistinctSeries;
use super::settings::distinct_sparse_max_bytes;
use super::spec::RollupSpec;
use super::write::{write, When};

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
    let (changed, created) = write::<DistinctSeries, _>(ctx, name, create_with, |s| {
        s.add(when.now, when.at, iter, when.check, sparse_max)
            .map_err(at_error)
    })?;
    Ok(Added { changed, created })
}
