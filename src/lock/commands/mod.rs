//! One file per command, named after it without `HACK.`; `lockset.rs` is internal (the
//! replicated effect of every acquisition and hand-off, refused from clients).

use crate::module::command::register;
use crate::module::ctx::Ctx;

pub mod extend;
pub mod lock;
pub mod lockinfo;
pub mod lockset;
pub mod unlock;

pub fn register_all(ctx: &Ctx) -> Result<(), String> {
    register::<lock::Lock>(ctx)?;
    register::<unlock::Unlock>(ctx)?;
    register::<extend::Extend>(ctx)?;
    register::<lockinfo::LockInfo>(ctx)?;
    // Internal effect.
    register::<lockset::LockSet>(ctx)
}
