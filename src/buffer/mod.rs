//! Write buffers: `HACK.BUFINCR`, `HACK.DRAIN`, `HACK.ACK`, `HACK.BUFINFO` (and the internal
//! `HACK.BUFBATCH`, the replicated effect of a leased drain).
//!
//! - `commands/`: one file per command;
//! - `store.rs`: the buffer (pending entries in arrival order, leased batches), pure Rust;
//! - `ids.rs`: batch ids that are never reused;
//! - `datatype.rs`: the `hacks-buf` data type (RDB, AOF rewrite, digest, copy, memory);
//! - `settings.rs`: `hacks.buffer-*`; `stats.rs`: its `INFO hacks` fields.

use crate::module::config::Setting;
use crate::module::ctx::Ctx;
use crate::module::family::Family;

pub mod commands;
pub mod datatype;
pub mod ids;
pub mod settings;
pub mod stats;
pub mod store;

pub static FAMILY: Family = Family {
    name: "buffer",
    register,
    settings: &[Setting::Int(&settings::BUFFER_MAX_MEMBERS)],
    info: stats::FIELDS,
    gauges: &[],
};

fn register(ctx: &Ctx) -> Result<(), String> {
    crate::module::datatype::register::<store::Buffer>(ctx)?;
    commands::register_all(ctx)
}
