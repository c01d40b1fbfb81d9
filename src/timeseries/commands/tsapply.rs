//! `HACK.TSAPPLY key increment at_ms now_ms [ROLLUPS rollup ...]`
//!
//! Internal: the effect of `HACK.TSINCR` as replicas and the AOF receive it, with the
//! master's clock reading (`now_ms`) and absolute `AT`, so retention and expiry come out
//! identical everywhere. Never reads the clock; never refuses an old `AT` (what no rollup
//! retains any more is skipped).

use crate::module::args::Args;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::replicate;

use crate::timeseries::args::rollups_arg;
use crate::timeseries::defaults;
use crate::timeseries::increment::apply;
use crate::timeseries::write::When;

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    if args.len() < 5 || args.len() == 6 {
        return Err(CmdError::arity("HACK.TSAPPLY"));
    }
    let inc = args.i64_at(2)?;
    let at = args.i64_at(3)?;
    let now = args.i64_at(4)?;
    let specs = (args.len() > 5).then(|| rollups_arg(args, 5)).transpose()?;
    // Only the master's stream and AOF loading: a client could otherwise bypass the
    // retention checks of HACK.TSINCR.
    ctx.replaying_or(CmdError::Static(
        "ERR HACK.TSAPPLY is internal: it carries HACK.TSINCR's effects to replicas and the AOF; use HACK.TSINCR",
    ))?;
    let name = args.raw(1)?;
    let applied = apply(ctx, name, When::replayed(now, at), inc, || {
        specs.unwrap_or_else(defaults::get)
    })?;
    replicate::verbatim(ctx)?;
    ctx.signal_modified(name)?;
    ctx.reply_i64(applied.value.unwrap_or(0))
}
