//! `HACK.ACK key batch_id`

use redis_module::raw;

use crate::module::args::Args;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::replicate;
use crate::module::typedkey::TypedKey;

use crate::buffer::datatype::BUFFER_TYPE;
use crate::buffer::stats;
use crate::buffer::store::Buffer;

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let id = args.int_in(2, "batch_id", 0, i64::MAX)?;
    let name = args.raw(1)?;
    let mut key = TypedKey::open(ctx, name, &BUFFER_TYPE, true)?;
    let acked = match key.get_mut()? {
        Some(buf) => buf.ack(id.unsigned_abs()),
        None => false,
    };
    if acked {
        if key.get()?.is_some_and(Buffer::is_empty) {
            key.delete()?;
        }
        // Deterministic: the same id removes the same batch everywhere.
        replicate::verbatim(ctx)?;
        ctx.signal_modified(name)?;
        ctx.notify(raw::REDISMODULE_NOTIFY_MODULE, c"hack.ack", name)?;
        stats::BUFFER_BATCHES_ACKED.incr();
    }
    ctx.reply_i64(i64::from(acked))
}
