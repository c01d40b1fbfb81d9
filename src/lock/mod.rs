//! Locks: `HACK.LOCK`, `HACK.UNLOCK`, `HACK.EXTEND`, `HACK.LOCKINFO` (and the internal
//! `HACK.LOCKSET`, the replicated effect of every acquisition); semaphores
//! (`HACK.SEMACQUIRE`, `HACK.SEMRELEASE`, `HACK.SEMEXTEND`, `HACK.SEMINFO`).
//!
//! - `lease.rs`: what each command does given the lock's state, pure Rust;
//! - `token.rs`: fencing tokens, strictly increasing per key name across deletion,
//!   restart and failover;
//! - `queue.rs`: the FIFO queues of waiting clients (of locks and of semaphores), pure Rust;
//! - `waiters.rs`: blocking, hand-off and the expiry timers (the server glue of the queues,
//!   on `module/blocked.rs` and `module/keytimer.rs`);
//! - `events.rs`: what deletions, `FLUSHALL`, role changes and closed connections do;
//! - `effect.rs`: writing a held lock and replicating it as `HACK.LOCKSET ... PXAT`;
//! - `datatype.rs`: the `hacks-lck` data type (RDB, AOF rewrite, digest, copy, memory);
//! - `commands/`: one file per command;
//! - `semaphore/`: counting semaphores with fencing tokens, leases, BOUND and FIFO
//!   admission, pure Rust (see its `mod.rs`).

use crate::module::ctx::Ctx;
use crate::module::family::Family;

pub mod commands;
pub mod datatype;
pub mod effect;
pub mod events;
pub mod lease;
pub mod queue;
pub mod semaphore;
pub mod stats;
pub mod token;
pub mod waiters;

pub static FAMILY: Family = Family {
    name: "lock",
    register,
    settings: &[],
    info: stats::FIELDS,
    gauges: &[
        (c"lock_waiters_now", waiting_now),
        (c"sem_waiters_now", sem_waiting_now),
    ],
    events: events::EVENTS,
};

fn register(ctx: &Ctx) -> Result<(), String> {
    crate::module::datatype::register::<lease::Lock>(ctx)?;
    crate::module::datatype::register::<semaphore::holders::Semaphore>(ctx)?;
    effect::init()?;
    commands::register_all(ctx)
}

fn sem_waiting_now() -> u64 {
    semaphore::wait::waiting_now() as u64
}

fn waiting_now() -> u64 {
    waiters::waiting_now() as u64
}
