//! One file per command, named after it without `HACK.`; `lockset.rs` and `semset.rs` are
//! internal (the replicated effects of locks and semaphores, refused from clients).

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

// Each command's definition (flags, arity, key spec, docs) is `<name>.json` beside its
// `<name>.rs` (whose `run` is the handler): build.rs turns them into the command's type,
// its `Command` impl, and `register_all`.
include!(concat!(env!("OUT_DIR"), "/commands/lock.rs"));
