//! Rate limiting: `HACK.RATEHIT`.
//!
//! - `commands/ratehit.rs`: the server glue (read the key, decide, write, replicate);
//! - `request.rs`: parses and validates the arguments;
//! - `fixed.rs`, `sliding.rs`, `gcra.rs`: the algorithms, pure functions of (clock,
//!   parameters, stored state) returning a [`verdict::Outcome`];
//! - `verdict.rs`: what an algorithm returns; `math.rs`: bounds and integer helpers;
//! - `codec.rs`: the stored string format of each algorithm's state.

use crate::module::ctx::Ctx;
use crate::module::family::Family;

pub mod codec;
pub mod commands;
pub mod fixed;
pub mod gcra;
pub mod math;
pub mod request;
pub mod sliding;
pub mod stats;
pub mod verdict;

pub static FAMILY: Family = Family {
    name: "ratelimit",
    register,
    settings: &[],
    info: stats::FIELDS,
    gauges: &[],
};

fn register(ctx: &Ctx) -> Result<(), String> {
    commands::register_all(ctx)
}
