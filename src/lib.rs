//! redis-hacks: atomic server-side commands for the everyday Redis patterns (rate limits,
//! write buffers, time-series counters, locks), loaded into a stock redis-server.
//!
//! Layout: `module/` holds the mechanisms every family shares (guard, args, replies,
//! replication, settings, INFO, data-type plumbing) and names no family; each command family
//! has its own folder (`ratelimit/`, ...) whose `mod.rs` defines its [`module::family::Family`];
//! [`FAMILIES`] below is the one list of them. A command `HACK.X` lives in
//! `<family>/commands/x.rs` (its handler, `run`) beside `x.json` (its definition).

// Command paths must never panic (a panic would abort redis-server): no unwrap/expect, no
// explicit panics, no indexing that can go out of bounds, no arithmetic that can overflow or
// divide by zero (use `checked_*`, `saturating_*` or `wrapping_*`, saying why where it is not
// obvious). Tests may use them freely.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]
// Every `unsafe` block states why it is sound (`// SAFETY: ...`), in tests too; and every
// unsafe operation sits in such a block, even inside an `unsafe fn` (the server callbacks).
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

pub mod buffer;
pub mod lock;
pub mod module;
pub mod ratelimit;
pub mod timeseries;

/// Every family, in `INFO hacks` order. A new family is one line here.
pub static FAMILIES: &[&module::family::Family] = &[
    &ratelimit::FAMILY,
    &buffer::FAMILY,
    &timeseries::FAMILY,
    &lock::FAMILY,
];

#[cfg(not(test))]
fn init(ctx: &redis_module::Context, args: &[redis_module::RedisString]) -> redis_module::Status {
    module::load::init(ctx, args, FAMILIES)
}

// The server's allocator backs every Rust allocation inside the module (so INFO memory and
// maxmemory see it). Unit tests run without a server and keep the system allocator.
#[cfg(all(not(test), not(feature = "system-alloc")))]
redis_module::redis_module! {
    name: "hacks",
    version: 100,
    allocator: (redis_module::alloc::RedisAlloc, redis_module::alloc::RedisAlloc),
    data_types: [],
    init: init,
}

// The valgrind build (scripts/valgrind): the C library's malloc, which valgrind tracks.
#[cfg(all(not(test), feature = "system-alloc"))]
redis_module::redis_module! {
    name: "hacks",
    version: 100,
    allocator: (std::alloc::System, std::alloc::System),
    data_types: [],
    init: init,
}
