//! `HACK.TSSET key rollup_index newest_idx [bucket_idx value ...]`
//!
//! Internal: what an AOF rewrite emits to rebuild a series rollup by rollup (bucket values
//! as they are, and the newest bucket index that drives expiry). The key must exist (the
//! rewrite emits `HACK.TSCREATE` first).

use crate::module::args::Args;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;

use crate::timeseries::series::Series;
use crate::timeseries::write::rebuild;

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let which = args.int_in(2, "rollup_index", 0, 64)? as usize;
    let newest = args.i64_at(3)?;
    let mut buckets = Vec::with_capacity(args.len().saturating_sub(4) / 2);
    for i in (4..args.len()).step_by(2) {
        buckets.push((args.i64_at(i)?, args.i64_at(i.saturating_add(1))?));
    }
    let refusal = CmdError::Static(
        "ERR HACK.TSSET is internal: AOF rewrites use it to rebuild series; use HACK.TSINCR",
    );
    rebuild(ctx, args, refusal, |series: &mut Series| {
        let r = series
            .rollups
            .get_mut(which)
            .ok_or(CmdError::Static("ERR rollup_index out of range"))?;
        r.newest = Some(r.newest.unwrap_or(newest).max(newest));
        for (idx, v) in buckets {
            series.set_bucket(which, idx, v);
        }
        Ok(())
    })
}
