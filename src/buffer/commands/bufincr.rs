//! `HACK.BUFINCR key member increment [member increment ...]`

use redis_module::raw;

use crate::buffer::settings;
use crate::buffer::wire;
use crate::module::args::Args;
use crate::module::ctx::Ctx;
use crate::module::error::{CmdError, NOT_INTEGER};
use crate::module::replicate;
use crate::module::typedkey::TypedKey;

use crate::buffer::datatype::BUFFER_TYPE;
use crate::buffer::stats;
use crate::buffer::store::Buffer;

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let mut pairs: Vec<(&[u8], i64)> = Vec::with_capacity(args.len().saturating_sub(2) / 2);
    for i in (2..args.len()).step_by(2) {
        let inc = args.i64_at(i.saturating_add(1)).map_err(|_| NOT_INTEGER)?;
        pairs.push((args.bytes(i)?, inc));
    }
    let name = args.raw(1)?;
    let mut key = TypedKey::open(ctx, name, &BUFFER_TYPE, true)?;
    let max = settings::limits();
    let values = match key.get_mut()? {
        Some(buf) => incr(ctx, buf, &pairs, max)?,
        None => {
            // Validate on a fresh buffer first: an error must not leave an empty key.
            let mut fresh = Buffer::new();
            let values = incr(ctx, &mut fresh, &pairs, max)?;
            key.create(fresh)?;
            values
        }
    };
    drop(key);
    // No clock, no setting involved (replicas skip the member bound): the command itself
    // is its effect.
    replicate::verbatim(ctx)?;
    ctx.signal_modified(name)?;
    ctx.notify(raw::REDISMODULE_NOTIFY_MODULE, c"hack.bufincr", name)?;
    stats::BUFFER_INCREMENTS.add(values.len() as u64);
    match values.as_slice() {
        [one] => ctx.reply_i64(*one),
        many => {
            ctx.reply_array(many.len())?;
            for v in many {
                ctx.reply_i64(*v)?;
            }
            Ok(())
        }
    }
}

fn incr(
    ctx: &Ctx,
    buf: &mut Buffer,
    pairs: &[(&[u8], i64)],
    limits: crate::buffer::row::Limits,
) -> Result<Vec<i64>, CmdError> {
    match buf.incr(pairs, Some(&limits)) {
        Ok(v) => Ok(v),
        // The master already admitted this write: a replica or an AOF replay applies it
        // whatever its own settings, or the copies would diverge.
        Err(e) if wire::is_cap(&e) && ctx.is_replaying()? => buf
            .incr(pairs, None)
            .map_err(|e| wire::refusal(e, wire::default_column)),
        Err(e) => {
            if wire::is_cap(&e) {
                stats::BUFFER_REFUSED_FULL.incr();
            }
            Err(wire::refusal(e, wire::default_column))
        }
    }
}
