//! `HACK.BUFBATCH key batch_id deadline_ms delivery_count [member value | member ROW n (op column value){n} ...]`
//!
//! Internal: the effect of a leased `HACK.DRAIN`, as replicas and the AOF receive it (also
//! what an AOF rewrite emits for batches in flight). With entries it installs the batch
//! (its members leave pending); without, it renews the lease of an existing batch. It never
//! reads the clock, and it runs only from the master's stream or while loading.

use crate::module::args::Args;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::replicate;
use crate::module::typedkey::TypedKey;

use crate::buffer::datatype::BUFFER_TYPE;
use crate::buffer::ids;
use crate::buffer::store::{Batch, Buffer};
use crate::buffer::wire::parse_entries;

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let id = args.int_in(2, "batch_id", 1, i64::MAX)?.unsigned_abs();
    let deadline_ms = args.i64_at(3)?;
    let delivery = args
        .int_in(4, "delivery_count", 1, i64::MAX)?
        .unsigned_abs();
    let entries = parse_entries(args, 5)?;
    // A client could install a batch under an id already acknowledged, and a worker would
    // then skip it as applied: only the master's stream and AOF loading may run it.
    ctx.replaying_or(CmdError::Static(
        "ERR HACK.BUFBATCH is internal: it carries leased drains to replicas and the AOF; use HACK.DRAIN",
    ))?;
    let name = args.raw(1)?;
    let mut key = TypedKey::open(ctx, name, &BUFFER_TYPE, true)?;
    let applied = if entries.is_empty() {
        key.get_mut()?
            .is_some_and(|b| b.set_lease(id, deadline_ms, delivery))
    } else {
        let batch = Batch {
            entries,
            deadline_ms,
            delivery,
        };
        match key.get_mut()? {
            Some(b) => b.put_batch(id, batch),
            None => key.create(Buffer::new())?.put_batch(id, batch),
        }
        true
    };
    let _ = ids::observe(id);
    if applied {
        replicate::verbatim(ctx)?;
        ctx.signal_modified(name)?;
    }
    ctx.reply_i64(i64::from(applied))
}
