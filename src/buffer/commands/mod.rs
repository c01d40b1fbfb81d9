//! One file per command, named after it without `HACK.`; `bufbatch.rs` is internal (the
//! replicated effect of a leased drain, refused from clients).

use crate::module::command::register;
use crate::module::ctx::Ctx;

pub mod ack;
pub mod bufbatch;
pub mod bufincr;
pub mod bufinfo;
pub mod bufupdate;
pub mod drain;

pub fn register_all(ctx: &Ctx) -> Result<(), String> {
    register::<bufincr::BufIncr>(ctx)?;
    register::<bufupdate::BufUpdate>(ctx)?;
    register::<drain::Drain>(ctx)?;
    register::<ack::Ack>(ctx)?;
    register::<bufinfo::BufInfo>(ctx)?;
    // Internal effect.
    register::<bufbatch::BufBatch>(ctx)
}
