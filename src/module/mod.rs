//! Module-wide pieces every command family uses: FFI access without panics, argument parsing,
//! replies and the clock, string keys, replication of effects, the handler guard and
//! registration, and the `INFO hacks` counters.
//!
//! # Why `module/` calls the raw API itself
//!
//! `module/` deliberately bypasses most of the `redis-module` crate's safe layer and calls
//! the raw API table (`redis_module::raw::RedisModule_*`, one `Option<fn>` per entry point,
//! `None` when the running server lacks it) directly: it checks every pointer (`ffi::rm!`
//! turns a missing one into an error reply, optional APIs are tested with `has_api!` or
//! `if let Some`) and returns errors instead of panicking. The crate's wrappers (checked
//! against redis-module 2.0.8) do not:
//!
//! - Most of them call `raw::RedisModule_X.unwrap()`: e.g. `raw::reply_with_long_long` and
//!   `raw::reply_with_simple_string` (`src/raw.rs`), `Context::reply_error_string`
//!   (`src/context/mod.rs`), `RedisKey::key_type` / `RedisKey::get_value`, documented
//!   "Will panic if `RedisModule_KeyType` is missing" (`src/key.rs`), and
//!   `Context::create_timer` (`src/context/timer.rs`). Only functions wrapped by the `api!`
//!   proc macro (`redis-module-macros-internals` `src/lib.rs`) use `ok_or`, and only for
//!   APIs newer than the selected `min-redis-compatibility-version-*` feature. A server
//!   lacking an API then panics the module, and a panic outside a guard crosses into C and
//!   aborts redis-server. Redis 7.0 has neither `RedisModule_CachedMicroseconds` (7.2, for
//!   which the crate has no wrapper at all: [`ctx::Ctx::now_us`] falls back to
//!   milliseconds) nor `RedisModule_SetCommandACLCategories` (7.2; the crate's
//!   `redis_command!` does check that one, [`command::register`] does the same).
//! - Strings are turned into C strings with `CString::new(..).unwrap()`, which panics on a
//!   NUL byte: `Context::reply` for `RedisValue::SimpleString` / `SimpleStringStatic`
//!   (`src/context/mod.rs`), and `logging::log` (through `log_internal`,
//!   `src/logging.rs`), which moreover passes the message as the printf format, so a `%` in
//!   it is read as a conversion. Here error texts are cut at a NUL
//!   ([`ctx::Ctx::reply_error`]), log lines escape it and go through `"%s"`
//!   ([`command::log`]), and user data always goes back as a bulk string.
//!
//! What `module/` still takes from the crate: `redis_module!` (the `RedisModule_OnLoad`
//! that binds the API table), the allocator, and `Context`/`RedisString` at load.
//!
//! Every `unsafe` block carries a `// SAFETY:` comment (`clippy::undocumented_unsafe_blocks`
//! is denied crate-wide). The invariants they lean on: the API table is written once at
//! load, before anything of ours runs; the pointers wrapped by [`ctx::Ctx`],
//! [`args::RStr`], [`io::Saver`] and friends come from the server for the current callback
//! and are not kept past it; values of a data type are `Box<T>` handed to the server and
//! freed by it exactly once, through the type's `free`.

pub mod args;
pub mod blocked;
pub mod clock;
pub mod command;
pub mod config;
pub mod ctx;
pub mod datatype;
pub mod error;
pub mod events;
pub mod family;
pub mod ffi;
pub mod guard;
pub mod highwater;
pub mod info;
pub mod io;
pub mod keytimer;
pub mod load;
pub mod num;
pub mod replicate;
pub mod slot;
pub mod stats;
pub mod strkey;
pub mod testhooks;
pub mod typedkey;
