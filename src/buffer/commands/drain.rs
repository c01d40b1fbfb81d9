//! `HACK.DRAIN key [COUNT n] [LEASE ms]`
//!
//! `drain.json` has no `deny-oom`: draining frees memory, so it must work when the server
//! is full.

use redis_module::raw;

use crate::module::args::{is_keyword, missing_value, repeated_option, unknown_option, Args, RStr};
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::io::StrVec;
use crate::module::replicate;
use crate::module::typedkey::TypedKey;

use crate::buffer::datatype::BUFFER_TYPE;
use crate::buffer::store::Buffer;
use crate::buffer::wire::{push_entry, reply_entries};
use crate::buffer::{ids, stats};

/// Entries handed out when COUNT is not given.
pub const DEFAULT_COUNT: i64 = 100;
pub const MAX_COUNT: i64 = 1_000_000;
/// Longest lease: 30 days.
pub const MAX_LEASE_MS: i64 = 30 * 24 * 3600 * 1000;

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let (count, lease) = parse(args)?;
    let name = args.raw(1)?;
    let mut key = TypedKey::open(ctx, name, &BUFFER_TYPE, true)?;
    match lease {
        None => plain(ctx, &mut key, name, count),
        Some(ms) => leased(ctx, &mut key, name, count, ms),
    }
}

fn parse(args: &Args) -> Result<(usize, Option<i64>), CmdError> {
    let (mut count, mut lease) = (None, None);
    let mut i = 2;
    while i < args.len() {
        let opt = args.bytes(i)?;
        let (name, slot) = if is_keyword(opt, "COUNT") {
            ("COUNT", &mut count)
        } else if is_keyword(opt, "LEASE") {
            ("LEASE", &mut lease)
        } else {
            return Err(unknown_option(opt));
        };
        if slot.is_some() {
            return Err(repeated_option(name));
        }
        // `i < args.len()`, so `i + 1` and `i + 2` cannot overflow.
        let value_at = i.saturating_add(1);
        if value_at >= args.len() {
            return Err(missing_value(name));
        }
        let max = if name == "COUNT" {
            MAX_COUNT
        } else {
            MAX_LEASE_MS
        };
        *slot = Some(args.int_in(value_at, name, 1, max)?);
        i = i.saturating_add(2);
    }
    let count = usize::try_from(count.unwrap_or(DEFAULT_COUNT)).unwrap_or(1);
    Ok((count, lease))
}

/// Delete the key once nothing is pending and nothing is in flight.
fn delete_if_empty(key: &mut TypedKey<'_, Buffer>) -> Result<(), CmdError> {
    if key.get()?.is_some_and(Buffer::is_empty) {
        key.delete()?;
    }
    Ok(())
}

fn plain(
    ctx: &Ctx,
    key: &mut TypedKey<'_, Buffer>,
    name: RStr,
    count: usize,
) -> Result<(), CmdError> {
    let Some(buf) = key.get_mut()? else {
        return reply_entries(ctx, &[]);
    };
    let entries = buf.drain(count);
    if !entries.is_empty() {
        delete_if_empty(key)?;
        // Which entries go is decided by the buffer's state alone (oldest first), which
        // replicas and the AOF share: the command is its own effect.
        replicate::verbatim(ctx)?;
        ctx.signal_modified(name)?;
        ctx.notify(raw::REDISMODULE_NOTIFY_MODULE, c"hack.drain", name)?;
        stats::BUFFER_DRAINED_ENTRIES.add(entries.len() as u64);
    }
    reply_entries(ctx, &entries)
}

fn leased(
    ctx: &Ctx,
    key: &mut TypedKey<'_, Buffer>,
    name: RStr,
    count: usize,
    lease_ms: i64,
) -> Result<(), CmdError> {
    let Some(buf) = key.get_mut()? else {
        return ctx.reply_null();
    };
    let now_ms = ctx.now_us()?.div_euclid(1000);
    let candidate = ids::peek()?;
    let Some(lease) = buf.lease(now_ms, lease_ms, count, candidate) else {
        return ctx.reply_null();
    };
    let batch = buf
        .batch(lease.batch_id)
        .ok_or(CmdError::Static("ERR internal error: batch vanished"))?;
    // Replicate the effect with the master's absolute deadline and id: a new batch carries
    // its entries; a batch handed out again only its new lease.
    let mut effect = StrVec::with_capacity(if lease.fresh {
        batch.entries.len().saturating_mul(2).saturating_add(3)
    } else {
        3
    });
    effect.push_int(i128::from(lease.batch_id));
    effect.push_int(i128::from(lease.deadline_ms));
    effect.push_int(i128::from(lease.delivery));
    if lease.fresh {
        // The id came from peek(): within the clock's horizon.
        let _ = ids::observe(lease.batch_id);
        stats::BUFFER_BATCHES_LEASED.incr();
        stats::BUFFER_DRAINED_ENTRIES.add(batch.entries.len() as u64);
        for (m, v) in &batch.entries {
            push_entry(&mut effect, m, v);
        }
    } else {
        stats::BUFFER_LEASES_EXPIRED.incr();
    }
    replicate::command(ctx, c"HACK.BUFBATCH", name, &mut effect)?;
    ctx.signal_modified(name)?;
    ctx.notify(raw::REDISMODULE_NOTIFY_MODULE, c"hack.drain", name)?;
    ctx.reply_array(3)?;
    ctx.reply_i64(i64::try_from(lease.batch_id).unwrap_or(i64::MAX))?;
    ctx.reply_i64(i64::try_from(lease.delivery).unwrap_or(i64::MAX))?;
    reply_entries(ctx, &batch.entries)
}
