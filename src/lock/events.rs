//! What the lock family does on keyspace and server events (subscribed once for the module,
//! `module/events.rs`): a deleted, renamed, expired or evicted lock or semaphore with
//! waiters is looked at from an immediate timer (no writes inside an event callback);
//! `FLUSHALL` does the same for every waited-on key; a server turned replica fails its
//! waiters; closed connections release their BOUND permits; client ids from elsewhere
//! (loading, promotion) are swept.

use crate::module::ctx::Ctx;
use crate::module::events::{Events, KeyEvent};
use crate::module::keytimer::now_ms;

use super::semaphore::{bound, wait as sem_wait};
use super::waiters::{self, NOT_MASTER};

pub const EVENTS: Events = Events {
    keyspace: Some(on_key),
    flushed: Some(on_flush),
    role_changed: Some(on_role),
    client_closed: Some(bound::disconnected),
    loaded: Some(bound::schedule_sweep),
};

fn on_key(ctx: &Ctx, e: &KeyEvent<'_>) {
    if waiters::idle() && sem_wait::idle() && !bound::any() {
        return;
    }
    let (Some(now), Some(id)) = (now_ms(), e.id()) else {
        return;
    };
    if waiters::queued_id(&id) > 0 {
        waiters::poke(ctx, &id, now);
    }
    if sem_wait::queued(&id) > 0 {
        sem_wait::poke(ctx, &id, now);
    }
    // A semaphore that arrived under a new name keeps its BOUND holders' connections.
    if matches!(e.event(), b"rename_to" | b"move_to" | b"copy_to") {
        bound::reindex(ctx, e.key(), id);
    }
}

fn on_flush(ctx: &Ctx) {
    let Some(now) = now_ms() else {
        return;
    };
    for id in waiters::keys() {
        waiters::poke(ctx, &id, now);
    }
    for id in sem_wait::keys() {
        sem_wait::poke(ctx, &id, now);
    }
}

fn on_role(ctx: &Ctx, now_master: bool) {
    if now_master {
        // Client ids of the old master mean nothing here: release its BOUND holders.
        bound::schedule_sweep(ctx);
        return;
    }
    for id in waiters::keys() {
        waiters::fail_all::<waiters::LockWaits>(ctx, &id, &NOT_MASTER);
    }
    for id in sem_wait::keys() {
        sem_wait::fail_all(ctx, &id, &NOT_MASTER);
    }
}
