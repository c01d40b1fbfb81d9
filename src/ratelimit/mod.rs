//! Rate limiting: `HACK.RATEHIT` (one limit) and `HACK.QUOTA` (several, atomically).
//!
//! - `commands/`: one file per command;
//! - `call.rs`: one call against its keys (read all, decide all, then write all or none,
//!   replicating the effects);
//! - `limiter.rs`: one limit against one key's value (dispatch and type checks, pure);
//! - `waiters.rs` / `queue.rs`: `WAIT` (blocked clients in FIFO queues, timers); `events.rs`:
//!   what deletions, `FLUSHALL` and role changes do to them;
//! - `request.rs`: parses and validates the arguments;
//! - `fixed.rs`, `sliding.rs`, `gcra.rs`: the algorithms, pure functions of (clock,
//!   parameters, stored state) returning a [`verdict::Outcome`];
//! - `verdict.rs`: what an algorithm returns; `math.rs`: bounds and integer helpers;
//! - `codec.rs`: the stored string format of each algorithm's state.

use crate::module::ctx::Ctx;
use crate::module::family::Family;

pub mod call;
pub mod codec;
pub mod commands;
pub mod events;
pub mod fixed;
pub mod gcra;
pub mod limiter;
pub mod math;
pub mod queue;
pub mod request;
pub mod sliding;
pub mod stats;
pub mod verdict;
pub mod waiters;

pub static FAMILY: Family = Family {
    name: "ratelimit",
    register,
    settings: &[],
    info: stats::FIELDS,
    gauges: &[(c"ratelimit_waiters_now", waiters::waiting_now)],
    events: events::EVENTS,
};

fn register(ctx: &Ctx) -> Result<(), String> {
    commands::register_all(ctx)
}
