//! `HACK.TSINFO key`

use crate::module::args::Args;
use crate::module::command::{ArgDoc, Command, CommandDef, KeySpec};
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::typedkey::TypedKey;

use crate::timeseries::datatype::SERIES_TYPE;
use crate::timeseries::series::Series;

pub struct TsInfo;

impl Command for TsInfo {
    const DEF: CommandDef = CommandDef {
        name: c"HACK.TSINFO",
        flags: c"readonly",
        arity: 2,
        keys: KeySpec::one(KeySpec::READ),
        summary: c"Shows a time series' rollups with their first and last buckets, layout and memory; nil when the key does not exist.",
        complexity: c"O(R + B) where R is the number of rollups and B their buckets",
        since: c"0.1.0",
        args: &[ArgDoc::key(c"key")],
        ..CommandDef::BASE
    };

    fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
        let key = TypedKey::open(ctx, args.raw(1)?, &SERIES_TYPE, false)?;
        let Some(s) = key.get()? else {
            return ctx.reply_null();
        };
        let now = ctx.now_us()?.div_euclid(1000);
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
