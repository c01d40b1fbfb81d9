//! One file per command, named after it without `HACK.`; `lockset.rs` and `semset.rs` are
//! internal (the replicated effects of locks and semaphores, refused from clients).

use crate::module::command::register;
use crate::module::ctx::Ctx;

pub mod extend;
pub mod lock;
pub mod lockinfo;
pub mod lockset;
pub mod semacquire;
pub mod semextend;
pub mod seminfo;
pub mod semrelease;
pub mod semset;
pub mod unlock;

pub fn register_all(ctx: &Ctx) -> Result<(), String> {
    register::<lock::Lock>(ctx)?;
    register::<unlock::Unlock>(ctx)?;
    register::<extend::Extend>(ctx)?;
    register::<lockinfo::LockInfo>(ctx)?;
    register::<semacquire::SemAcquire>(ctx)?;
    register::<semrelease::SemRelease>(ctx)?;
    register::<semextend::SemExtend>(ctx)?;
    register::<seminfo::SemInfo>(ctx)?;
    // Internal effects.
    register::<lockset::LockSet>(ctx)?;
    register::<semset::SemSet>(ctx)
}
