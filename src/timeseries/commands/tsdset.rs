//! `HACK.TSDSET key rollup_index newest_idx [bucket_idx sketch ...]`
//!
//! Internal: what an AOF rewrite emits to rebuild a distinct series rollup by rollup: each
//! bucket's registers as `Sketch::to_bytes` writes them (validated exactly as RDB load
//! does), and the newest bucket index that drives expiry. The key must exist (the rewrite
//! emits `HACK.TSCREATE ... DISTINCT` first).

use crate::module::args::Args;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;

use crate::timeseries::distinct::DistinctSeries;
use crate::timeseries::hll::Sketch;
use crate::timeseries::settings::distinct_sparse_max_bytes;
use crate::timeseries::write::rebuild;

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let which = args.int_in(2, "rollup_index", 0, 64)? as usize;
    let newest = args.i64_at(3)?;
    let sparse_max = distinct_sparse_max_bytes();
    let mut buckets = Vec::with_capacity(args.len().saturating_sub(4) / 2);
    for i in (4..args.len()).step_by(2) {
        let idx = args.i64_at(i)?;
        let sketch = Sketch::from_bytes(args.bytes(i.saturating_add(1))?, sparse_max)
            .filter(|s| !s.is_empty())
            .ok_or(CmdError::Static("ERR invalid sketch"))?;
        if idx > newest {
            return Err(CmdError::Static("ERR bucket after newest_idx"));
        }
        buckets.push((idx, sketch));
    }
    let refusal = CmdError::Static(
        "ERR HACK.TSDSET is internal: AOF rewrites use it to rebuild distinct series; use HACK.TSADD",
    );
    rebuild(ctx, args, refusal, |series: &mut DistinctSeries| {
        let r = series
            .rollups
            .get_mut(which)
            .ok_or(CmdError::Static("ERR rollup_index out of range"))?;
        let cap = r.spec.buckets().saturating_add(2);
        if i64::try_from(r.buckets.len().saturating_add(buckets.len())).unwrap_or(i64::MAX) > cap
            || buckets
                .iter()
                .any(|(idx, _)| *idx < newest.saturating_sub(r.spec.buckets().saturating_mul(2)))
        {
            return Err(CmdError::Static("ERR more buckets than the rollup retains"));
        }
        r.newest = Some(r.newest.unwrap_or(newest).max(newest));
        for (idx, s) in &buckets {
            series.merge_bucket(which, *idx, s, sparse_max);
        }
        Ok(())
    })
}
