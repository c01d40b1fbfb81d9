//! `HACK.BUFUPDATE key member op column value [op column value ...]`
//! (op: `INCR` | `SET` | `MAX` | `MIN`)

use redis_module::raw;

use crate::module::args::Args;
use crate::module::ctx::Ctx;
use crate::module::error::{printable, CmdError, NOT_INTEGER};
use crate::module::replicate;
use crate::module::typedkey::TypedKey;

use crate::buffer::datatype::BUFFER_TYPE;
use crate::buffer::row::{Op, Update};
use crate::buffer::store::Buffer;
use crate::buffer::{settings, stats, wire};

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let member = args.bytes(2)?;
    let mut updates: Vec<Update<'_>> = Vec::with_capacity(args.len().saturating_sub(3) / 3);
    for i in (3..args.len()).step_by(3) {
        let word = args.bytes(i)?;
        let op = Op::parse(word).ok_or_else(|| {
            CmdError::msg(format!(
                "ERR unknown op '{}': use INCR, SET, MAX or MIN",
                printable(word)
            ))
        })?;
        let column = args.bytes(i.saturating_add(1))?;
        let value_at = i.saturating_add(2);
        let u = match op {
            Op::Set => Update {
                column,
                op,
                int: 0,
                bytes: args.bytes(value_at)?,
            },
            _ => Update {
                column,
                op,
                int: args.i64_at(value_at).map_err(|_| NOT_INTEGER)?,
                bytes: &[],
            },
        };
        updates.push(u);
    }
    let column = |at: usize| updates.get(at).map_or(&b""[..], |u| u.column);
    let name = args.raw(1)?;
    let mut key = TypedKey::open(ctx, name, &BUFFER_TYPE, true)?;
    let limits = settings::limits();
    let apply = |buf: &mut Buffer| match buf.update(member, &updates, Some(&limits)) {
        Ok(n) => Ok(n),
        // Admitted by the master: a replica or an AOF replay applies it whatever its own
        // caps (as BUFINCR does for the member bound).
        Err(e) if wire::is_cap(&e) && ctx.is_replaying()? => buf
            .update(member, &updates, None)
            .map_err(|e| wire::refusal(e, column)),
        Err(e) => {
            if wire::is_cap(&e) {
                stats::BUFFER_REFUSED_FULL.incr();
            }
            Err(wire::refusal(e, column))
        }
    };
    let columns = match key.get_mut()? {
        Some(buf) => apply(buf)?,
        None => {
            // Validate on a fresh buffer first: an error must not leave an empty key.
            let mut fresh = Buffer::new();
            let n = apply(&mut fresh)?;
            key.create(fresh)?;
            n
        }
    };
    drop(key);
    // No clock involved and replicas skip the caps: the command itself is its effect.
    replicate::verbatim(ctx)?;
    ctx.signal_modified(name)?;
    ctx.notify(raw::REDISMODULE_NOTIFY_MODULE, c"hack.bufupdate", name)?;
    stats::BUFFER_COLUMN_UPDATES.add(updates.len() as u64);
    ctx.reply_i64(i64::try_from(columns).unwrap_or(i64::MAX))
}
