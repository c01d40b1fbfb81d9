//! Write buffers: `HACK.BUFINCR`, `HACK.BUFUPDATE`, `HACK.DRAIN`, `HACK.ACK`, `HACK.BUFINFO` (and the internal
//! `HACK.BUFBATCH`, the replicated effect of a leased drain).
//!
//! - `commands/`: one file per command;
//! - `store.rs`: the buffer (pending entries in arrival order, leased batches), pure Rust;
//! - `row.rs`: row values (columns with INCR/SET/MAX/MIN) and their merge rules, pure Rust;
//!   `packed.rs`: a row's cells in one allocation; `pending.rs`: pending members in arrival
//!   order, found by name;
//! - `ids.rs`: batch ids that are never reused;
//! - `datatype.rs`: the `hacks-buf` data type (RDB, AOF rewrite, digest, copy, memory);
//! - `settings.rs`: `hacks.buffer-*`; `stats.rs`: its `INFO hacks` fields.

use crate::module::config::Setting;
use crate::module::ctx::Ctx;
use crate::module::family::Family;

pub mod commands;
pub mod datatype;
pub mod ids;
pub mod packed;
pub mod pending;
pub mod row;
pub mod settings;
pub mod stats;
pub mod store;
pub mod wire;

pub static FAMILY: Family = Family {
    name: "buffer",
    register,
    settings: &[
        Setting::Int(&settings::BUFFER_MAX_MEMBERS),
        Setting::Int(&settings::BUFFER_MAX_COLUMNS),
        Setting::Int(&settings::BUFFER_MAX_VALUE_BYTES),
    ],
    info: stats::FIELDS,
    gauges: &[],
    events: crate::module::events::Events::NONE,
};

fn register(ctx: &Ctx) -> Result<(), String> {
    crate::module::datatype::register::<store::Buffer>(ctx)?;
    commands::register_all(ctx)
}
