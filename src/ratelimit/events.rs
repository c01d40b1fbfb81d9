//! What rate-limit waiters do on keyspace and server events (subscribed once for the module,
//! `module/events.rs`): a deleted, renamed, expired or evicted key with waiters, and every
//! waited-on key after `FLUSHALL`, is looked at from an immediate timer (capacity may be
//! free now; no writes inside an event callback); a server turned replica fails its waiters.

use crate::module::ctx::Ctx;
use crate::module::events::{Events, KeyEvent};
use crate::module::keytimer::now_ms;

use super::waiters::{self, NOT_MASTER};

pub const EVENTS: Events = Events {
    keyspace: Some(on_key),
    flushed: Some(on_flush),
    role_changed: Some(on_role),
    client_closed: None,
    loaded: None,
};

fn on_key(ctx: &Ctx, e: &KeyEvent<'_>) {
    // The module's own charges: their callers already serve the queues.
    if !waiters::any_waiting() || e.event() == b"hack.ratehit" {
        return;
    }
    if let (Some(now), Some(id)) = (now_ms(), e.id()) {
        waiters::poke(ctx, &id, now);
    }
}

fn on_flush(ctx: &Ctx) {
    if !waiters::any_waiting() {
        return;
    }
    if let Some(now) = now_ms() {
        for id in waiters::keys() {
            waiters::poke(ctx, &id, now);
        }
    }
}

fn on_role(ctx: &Ctx, now_master: bool) {
    if !now_master && waiters::any_waiting() {
        waiters::fail_all(ctx, &NOT_MASTER);
    }
}
