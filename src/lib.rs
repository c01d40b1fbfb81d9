//! redis-hacks: atomic server-side commands for the everyday Redis patterns (rate limits,
//! write buffers, time-series counters, locks), loaded into a stock redis-server.
//!
//! Layout: `module/` holds what every family shares (guard, args, replies, replication,
//! INFO); each command family has its own folder (`ratelimit/`, ...). Start at
//! `module/load.rs`, which registers every command.

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

pub mod buffer;
pub mod lock;
pub mod module;
pub mod ratelimit;
pub mod timeseries;

#[cfg(not(test))]
use module::load::init;

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
