//! `HACK.TSINFO key`

use crate::module::args::Args;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;

use crate::timeseries::distinct::DistinctSeries;
use crate::timeseries::kind::{open_either, Opened};
use crate::timeseries::layout;
use crate::timeseries::series::Series;
use crate::timeseries::spec::RollupSpec;
use std::mem::size_of;

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
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

fn counting(ctx: &Ctx, s: &Series, now: i64) -> Result<(), CmdError> {
    ctx.reply_map(3)?;
    series_fields(
        ctx,
        size_of::<Series>().saturating_add(s.heap_bytes()),
        s.expire_at_ms,
    )?;
    ctx.reply_bulk(b"rollups")?;
    ctx.reply_array(s.rollups.len())?;
    for r in &s.rollups {
        ctx.reply_map(8)?;
        let bounds = r.store.bounds();
        let used = r.store.used();
        rollup_fields(ctx, &r.spec, r.oldest_start(now), used, bounds)?;
        ctx.reply_bulk(b"layout")?;
        ctx.reply_bulk(if r.store.is_dense() {
            b"dense"
        } else {
            b"sparse"
        })?;
    }
    Ok(())
}

/// A distinct series: the same fields as a counting series, plus `type`, the sparse bound
/// and per rollup its sparse/dense sketches and their memory.
fn distinct(ctx: &Ctx, s: &DistinctSeries, now: i64) -> Result<(), CmdError> {
    ctx.reply_map(5)?;
    ctx.reply_bulk(b"type")?;
    ctx.reply_bulk(b"distinct")?;
    let memory = size_of::<DistinctSeries>().saturating_add(s.heap_bytes());
    series_fields(ctx, memory, s.expire_at_ms)?;
    ctx.reply_bulk(b"sparse_max_bytes")?;
    ctx.reply_i64(crate::timeseries::settings::TS_DISTINCT_SPARSE_MAX_BYTES.get())?;
    ctx.reply_bulk(b"rollups")?;
    ctx.reply_array(s.rollups.len())?;
    for r in &s.rollups {
        let used = r.buckets.len();
        let dense = r.dense_buckets();
        let bounds = r.buckets.first().zip(r.buckets.last());
        let bounds = bounds.map(|((a, _), (b, _))| (*a, *b));
        ctx.reply_map(11)?;
        let oldest = layout::oldest_start(&r.spec, now);
        rollup_fields(ctx, &r.spec, oldest, used, bounds)?;
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

/// The fields of both kinds of series: their memory and expiry.
fn series_fields(ctx: &Ctx, memory: usize, expire_at_ms: Option<i64>) -> Result<(), CmdError> {
    ctx.reply_bulk(b"memory_bytes")?;
    ctx.reply_i64(memory as i64)?;
    ctx.reply_bulk(b"expire_at_ms")?;
    reply_opt(ctx, expire_at_ms)
}

/// The first seven fields of a rollup of either kind; `bounds` are its first and last
/// bucket indexes.
fn rollup_fields(
    ctx: &Ctx,
    spec: &RollupSpec,
    oldest_ms: i64,
    used: usize,
    bounds: Option<(i64, i64)>,
) -> Result<(), CmdError> {
    let res = spec.resolution_ms;
    ctx.reply_bulk(b"rollup")?;
    ctx.reply_bulk(spec.to_string().as_bytes())?;
    ctx.reply_bulk(b"resolution_ms")?;
    ctx.reply_i64(res)?;
    ctx.reply_bulk(b"retention_ms")?;
    ctx.reply_i64(spec.retention_ms)?;
    ctx.reply_bulk(b"oldest_retained_ms")?;
    ctx.reply_i64(oldest_ms)?;
    ctx.reply_bulk(b"buckets_used")?;
    ctx.reply_i64(used as i64)?;
    ctx.reply_bulk(b"first_bucket_ms")?;
    reply_opt(ctx, bounds.map(|(a, _)| a.saturating_mul(res)))?;
    ctx.reply_bulk(b"last_bucket_ms")?;
    reply_opt(ctx, bounds.map(|(_, b)| b.saturating_mul(res)))
}

fn reply_opt(ctx: &Ctx, v: Option<i64>) -> Result<(), CmdError> {
    match v {
        Some(v) => ctx.reply_i64(v),
        None => ctx.reply_null(),
    }
}
