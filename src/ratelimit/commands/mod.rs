//! One file per command, named after it without `HACK.`: the server glue (parse, read the
//! key, decide with the pure algorithms, write, replicate the effect, reply).

use crate::module::command::register;
use crate::module::ctx::Ctx;

pub mod quota;
pub mod ratehit;

pub fn register_all(ctx: &Ctx) -> Result<(), String> {
    register::<ratehit::RateHit>(ctx)?;
    register::<quota::Quota>(ctx)
}
