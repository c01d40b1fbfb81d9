//! `HACK.BUFINFO key`

use crate::buffer::settings::BUFFER_MAX_MEMBERS;
use crate::module::args::Args;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::typedkey::TypedKey;

use crate::buffer::datatype::BUFFER_TYPE;

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let key = TypedKey::open(ctx, args.raw(1)?, &BUFFER_TYPE, false)?;
    let Some(buf) = key.get()? else {
        return ctx.reply_null();
    };
    // Reading the clock is fine here: nothing is written or replicated.
    let now_ms = ctx.now_us()?.div_euclid(1000);
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    ctx.reply_map(7)?;
    ctx.reply_bulk(b"pending_members")?;
    ctx.reply_i64(clamp(buf.pending_len() as u64))?;
    ctx.reply_bulk(b"pending_columns")?;
    ctx.reply_i64(clamp(buf.pending_columns() as u64))?;
    ctx.reply_bulk(b"memory_bytes")?;
    ctx.reply_i64(clamp(buf.heap_bytes() as u64))?;
    ctx.reply_bulk(b"max_pending_members")?;
    ctx.reply_i64(BUFFER_MAX_MEMBERS.get())?;
    // A stable fact (two reads of an unchanged buffer are identical), not a preview of
    // the clock: the newest batch id in flight, 0 when none is.
    ctx.reply_bulk(b"newest_batch_id")?;
    ctx.reply_i64(clamp(buf.batches().map(|(id, _)| id).max().unwrap_or(0)))?;
    ctx.reply_bulk(b"batches_in_flight")?;
    ctx.reply_i64(clamp(buf.batch_count() as u64))?;
    ctx.reply_bulk(b"batches")?;
    ctx.reply_array(buf.batch_count())?;
    for (id, b) in buf.batches() {
        ctx.reply_map(5)?;
        ctx.reply_bulk(b"batch_id")?;
        ctx.reply_i64(clamp(id))?;
        ctx.reply_bulk(b"entries")?;
        ctx.reply_i64(clamp(b.entries.len() as u64))?;
        ctx.reply_bulk(b"delivery_count")?;
        ctx.reply_i64(clamp(b.delivery))?;
        ctx.reply_bulk(b"lease_deadline_ms")?;
        ctx.reply_i64(b.deadline_ms)?;
        ctx.reply_bulk(b"lease_remaining_ms")?;
        ctx.reply_i64(b.deadline_ms.saturating_sub(now_ms))?;
    }
    Ok(())
}
