//! Locks: `HACK.LOCK`, `HACK.UNLOCK`, `HACK.EXTEND`, `HACK.LOCKINFO` (and the internal
//! `HACK.LOCKSET`, the replicated effect of every acquisition); semaphores (their pure
//! core so far: `HACK.SEMACQUIRE`, `HACK.SEMRELEASE`, `HACK.SEMEXTEND`, `HACK.SEMINFO`).
//!
//! - `lease.rs`: what each command does given the lock's state, pure Rust;
//! - `token.rs`: fencing tokens, strictly increasing per key name across deletion,
//!   restart and failover;
//! - `queue.rs`: the FIFO queues of waiting clients (of locks and of semaphores), pure Rust;
//! - `waiters.rs`: blocking, hand-off, the expiry timers and keyspace events (the server
//!   glue of the queues);
//! - `effect.rs`: writing a held lock and replicating it as `HACK.LOCKSET ... PXAT`;
//! - `datatype.rs`: the `hacks-lck` data type (RDB, AOF rewrite, digest, copy, memory);
//! - one file per command (`acquire.rs` is `HACK.LOCK`);
//! - `semaphore/`: counting semaphores with fencing tokens, leases, BOUND and FIFO
//!   admission, pure Rust (see its `mod.rs`); no command is registered yet.

pub mod acquire;
pub mod datatype;
pub mod effect;
pub mod extend;
pub mod lease;
pub mod lockinfo;
pub mod lockset;
pub mod queue;
pub mod semaphore;
pub mod stats;
pub mod token;
pub mod unlock;
pub mod waiters;
