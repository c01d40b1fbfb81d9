//! `HACK.TSADDAT key at_ms now_ms rollup_count [rollup ...] member [member ...]`
//!
//! Internal: the effect of `HACK.TSADD` as replicas and the AOF receive it, with the
//! master's absolute `AT` and clock reading (`now_ms`), and the rollups when the master
//! created the series (`rollup_count` 0 otherwise). The same members into the same buckets
//! give the same registers, so every copy ends identical. Never reads the clock; never
//! refuses an old `AT` (what no rollup retains any more is skipped).

use crate::module::args::Args;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::replicate;

use crate::timeseries::defaults;
use crate::timeseries::distinct_add::add;
use crate::timeseries::write::When;

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let at = args.i64_at(2)?;
    let now = args.i64_at(3)?;
    let nspecs = args.int_in(4, "rollup_count", 0, 8)? as usize;
    let first_member = nspecs.saturating_add(5);
    if first_member >= args.len() {
        return Err(CmdError::arity("HACK.TSADDAT"));
    }
    let specs = if nspecs > 0 {
        // `rollups_until` wants the keyword before the list: parse in place instead.
        let mut list = Vec::with_capacity(nspecs);
        for j in 5..first_member {
            list.push(
                crate::timeseries::spec::parse_one(args.bytes(j)?)
                    .map_err(|e| CmdError::msg(format!("ERR {e}")))?,
            );
        }
        crate::timeseries::spec::validate(&list).map_err(|e| CmdError::msg(format!("ERR {e}")))?;
        Some(list)
    } else {
        None
    };
    // Only the master's stream and AOF loading: a client could otherwise bypass the
    // retention checks of HACK.TSADD.
    ctx.replaying_or(CmdError::Static(
        "ERR HACK.TSADDAT is internal: it carries HACK.TSADD's effects to replicas and the AOF; use HACK.TSADD",
    ))?;
    let name = args.raw(1)?;
    let added = add(
        ctx,
        name,
        When::replayed(now, at),
        args,
        first_member..args.len(),
        || specs.unwrap_or_else(defaults::get_distinct),
    )?;
    replicate::verbatim(ctx)?;
    ctx.signal_modified(name)?;
    ctx.reply_i64(i64::from(added.changed.unwrap_or(false)))
}
