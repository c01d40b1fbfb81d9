//! `HACK.TSINFO key`

use crate::module::args::Args;
use crate::module::command::{ArgDoc, Command, CommandDef, KeySpec};
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;

use crate::timeseries::distinct::DistinctSeries;
use crate::timeseries::kind::{open_either, Opened};
use crate::timeseries::layout;
use crate::timeseries::series::Series;

pub struct TsInfo;

impl Command for TsInfo {
    const DEF: CommandDef = CommandDef {
        name: c"HACK.TSINFO",
        flags: c"readonly",
        arity: 2,
        keys: KeySpec::one(KeySpec::READ),
        summary: c"Shows a time series' rollups with their first and last buckets, layout and memory (for a distinct series also its sparse and dense sketches); nil when the key does not exist.",
        complexity: c"O(R + B) where R is the number of rollups and B their buckets",
        since: c"0.1.0",
        args: &[ArgDoc::key(c"key")],
        ..CommandDef::BASE
    };

    fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
        let now = ctx.now_us()?.div_euclid(1000);
        match open_either(ctx, args.raw(1)?)? {
            Opened::Counting(key) => match key.get()? {
                Some(s) => counting(ctx, s, now),
                None => ctx.reply_null(),
            },
            Opened::Distinct(key) => match key.get()? {
                Some(s) => distinct(ctx, s, now),
                None => ctx.reply_null(),
            },
        }
    }
}

fn counting(ctx: &Ctx, s: &Series, now: i64) -> Result<(), CmdError> {
    {
        ctx.reply_map(3)?;
        ctx.reply_bulk(b"memory_bytes")?;
        ctx.reply_i64(std::mem::size_of::<Series>().saturating_add(s.heap_bytes()) as i64)?;
        ctx.reply_bulk(b"expire_at_ms")?;
        match s.expire_at_ms {
            Some(t) => ctx.reply_i64(t)?,
            None => ctx.reply_null()?,
        }
        ctx.reply_bulk(b"rollups")?;
        ctx.reply_array(s.rollups.len())?;
        for r in &s.rollups {
            let res = r.spec.resolution_ms;
            ctx.reply_map(8)?;
            ctx.reply_bulk(b"rollup")?;
            ctx.reply_bulk(r.spec.to_string().as_bytes())?;
            ctx.reply_bulk(b"resolution_ms")?;
            ctx.reply_i64(res)?;
            ctx.reply_bulk(b"retention_ms")?;
            ctx.reply_i64(r.spec.retention_ms)?;
            ctx.reply_bulk(b"oldest_retained_ms")?;
            ctx.reply_i64(r.oldest_start(now))?;
            ctx.reply_bulk(b"buckets_used")?;
            ctx.reply_i64(r.store.used() as i64)?;
            let bounds = r.store.bounds();
            ctx.reply_bulk(b"first_bucket_ms")?;
            match bounds {
                Some((a, _)) => ctx.reply_i64(a.saturating_mul(res))?,
                None => ctx.reply_null()?,
            }
            ctx.reply_bulk(b"last_bucket_ms")?;
            match bounds {
                Some((_, b)) => ctx.reply_i64(b.saturating_mul(res))?,
                None => ctx.reply_null()?,
            }
            ctx.reply_bulk(b"layout")?;
            ctx.reply_bulk(if r.store.is_dense() {
                b"dense"
            } else {
                b"sparse"
            })?;
        }
        Ok(())
    }
}

/// A distinct series: the same fields as a counting series, plus `type`, the sparse bound
/// and per rollup its sparse/dense sketches and their memory.
fn distinct(ctx: &Ctx, s: &DistinctSeries, now: i64) -> Result<(), CmdError> {
    ctx.reply_map(5)?;
    ctx.reply_bulk(b"type")?;
    ctx.reply_bulk(b"distinct")?;
    ctx.reply_bulk(b"memory_bytes")?;
    ctx.reply_i64(std::mem::size_of::<DistinctSeries>().saturating_add(s.heap_bytes()) as i64)?;
    ctx.reply_bulk(b"expire_at_ms")?;
    match s.expire_at_ms {
        Some(t) => ctx.reply_i64(t)?,
        None => ctx.reply_null()?,
    }
    ctx.reply_bulk(b"sparse_max_bytes")?;
    ctx.reply_i64(crate::timeseries::settings::TS_DISTINCT_SPARSE_MAX_BYTES.get())?;
    ctx.reply_bulk(b"rollups")?;
    ctx.reply_array(s.rollups.len())?;
    for r in &s.rollups {
        let res = r.spec.resolution_ms;
        let used = r.buckets.len();
        let dense = r.dense_buckets();
        ctx.reply_map(11)?;
        ctx.reply_bulk(b"rollup")?;
        ctx.reply_bulk(r.spec.to_string().as_bytes())?;
        ctx.reply_bulk(b"resolution_ms")?;
        ctx.reply_i64(res)?;
        ctx.reply_bulk(b"retention_ms")?;
        ctx.reply_i64(r.spec.retention_ms)?;
        ctx.reply_bulk(b"oldest_retained_ms")?;
        ctx.reply_i64(layout::oldest_start(&r.spec, now))?;
        ctx.reply_bulk(b"buckets_used")?;
        ctx.reply_i64(used as i64)?;
        ctx.reply_bulk(b"first_bucket_ms")?;
        match r.buckets.first() {
            Some((a, _)) => ctx.reply_i64(a.saturating_mul(res))?,
            None => ctx.reply_null()?,
        }
        ctx.reply_bulk(b"last_bucket_ms")?;
        match r.buckets.last() {
            Some((b, _)) => ctx.reply_i64(b.saturating_mul(res))?,
            None => ctx.reply_null()?,
        }
        ctx.reply_bulk(b"layout")?;
        ctx.reply_bulk(match (dense, used) {
            (0, _) => b"sparse".as_slice(),
            (d, u) if d == u => b"dense",
            _ => b"mixed",
        })?;
        ctx.reply_bulk(b"sparse_buckets")?;
        ctx.reply_i64(used.saturating_sub(dense) as i64)?;
        ctx.reply_bulk(b"dense_buckets")?;
        ctx.reply_i64(dense as i64)?;
        ctx.reply_bulk(b"memory_bytes")?;
        ctx.reply_i64(r.heap_bytes() as i64)?;
    }
    Ok(())
}
