//! Module-wide pieces every command family uses: FFI access without panics, argument parsing,
//! replies and the clock, string keys, replication of effects, the handler guard and
//! registration, and the `INFO hacks` counters.

pub mod args;
pub mod clock;
pub mod command;
pub mod config;
pub mod ctx;
pub mod datatype;
pub mod error;
pub mod family;
pub mod ffi;
pub mod guard;
pub mod highwater;
pub mod info;
pub mod io;
pub mod load;
pub mod num;
pub mod replicate;
pub mod stats;
pub mod strkey;
pub mod testhooks;
pub mod typedkey;
