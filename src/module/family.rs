//! What a command family hands the shared layer. Each family's `mod.rs` defines one
//! [`Family`]; `lib.rs` lists them all in one table, and module load walks that table: the
//! settings of every family, then each family's `register` (data types, commands, events),
//! and `INFO hacks` prints each family's fields in table order. The shared layer itself
//! names no family.

use super::config::Setting;
use super::ctx::Ctx;
use super::events::Events;
use super::stats::Field;

/// A value that is true now (not counted since load), e.g. waiters queued.
pub type Gauge = (&'static std::ffi::CStr, fn() -> u64);

pub struct Family {
    /// Folder name, for log lines.
    pub name: &'static str,
    /// Data types, commands, keyspace/server events, shared strings: called once at load,
    /// after every family's settings are registered and loaded.
    pub register: fn(&Ctx) -> Result<(), String>,
    /// `CONFIG SET hacks.*` settings.
    pub settings: &'static [Setting],
    /// `INFO hacks` counters, then gauges.
    pub info: &'static [Field],
    pub gauges: &'static [Gauge],
    /// Keyspace and server events it listens to (subscribed once for all families).
    pub events: Events,
}
