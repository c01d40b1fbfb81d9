//! Keyspace and server events, subscribed once for the whole module and handed to every
//! family that asked for them ([`Events`] in its [`Family`]). Once is not a choice: the
//! server keeps one callback per module and server event id (subscribing again replaces
//! the first callback), so two families subscribing on their own would silently lose one.
//!
//! Callbacks here must not write (no writes inside a keyspace-event callback): the families
//! schedule an immediate timer instead.

use std::ffi::c_void;
use std::os::raw::{c_char, c_int};
use std::sync::OnceLock;

use redis_module::raw::{self, RedisModuleCtx, RedisModuleEvent, RedisModuleString};

use super::args::RStr;
use super::ctx::Ctx;
use super::family::Family;
use super::guard::guarded;
use super::keytimer::KeyId;

/// A key event as the families see it. Read lazily: the callback runs on every deletion,
/// expiry and eviction of the server, and a family with nobody waiting looks at nothing.
pub struct KeyEvent<'a> {
    ctx: &'a Ctx,
    event: *const c_char,
    key: *mut RedisModuleString,
}

impl<'a> KeyEvent<'a> {
    /// The event name, e.g. `del`, `expired`, `rename_to`, or a module's own
    /// (`hack.ratehit`).
    pub fn event(&self) -> &'a [u8] {
        // SAFETY: the server passes the event name as a NUL-terminated C string that lives
        // for the callback, which no `KeyEvent` outlives (checked non-null on creation).
        unsafe { std::ffi::CStr::from_ptr(self.event) }.to_bytes()
    }

    /// The key (valid for the callback only).
    pub fn key(&self) -> RStr {
        // SAFETY: the event's key name (non-null, checked on creation), valid for the
        // callback, which the `RStr` is not kept past.
        unsafe { RStr::from_raw(self.key) }
    }

    /// The key's database and name.
    pub fn id(&self) -> Option<KeyId> {
        let db = self.ctx.selected_db().ok()?;
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        let ptr_len = unsafe { raw::RedisModule_StringPtrLen }?;
        let mut len = 0usize;
        // SAFETY: `key` is the event's key name, valid for this callback; `len` is a valid
        // out-pointer.
        let p = unsafe { ptr_len(self.key, &mut len) };
        if p.is_null() {
            return None;
        }
        // SAFETY: non-null pointer to the `len` bytes of `key`, copied at once.
        let name = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }.to_vec();
        Some((db, name))
    }
}

/// What a family wants to hear of. Each hook starts with its own cheap "does anybody
/// wait?" check: keyspace hooks run on every deletion, expiry and eviction of the server.
#[derive(Clone, Copy)]
pub struct Events {
    /// Generic keyspace events (DEL, UNLINK, RENAME, MOVE, ...), expiry and eviction.
    pub keyspace: Option<fn(&Ctx, &KeyEvent<'_>)>,
    /// `FLUSHALL` / `FLUSHDB` finished (they send no per-key events).
    pub flushed: Option<fn(&Ctx)>,
    /// The server turned into a replica (`false`) or a master (`true`).
    pub role_changed: Option<fn(&Ctx, bool)>,
    /// A client connection closed (its id).
    pub client_closed: Option<fn(&Ctx, u64)>,
    /// Loading an RDB or AOF finished.
    pub loaded: Option<fn(&Ctx)>,
}

impl Events {
    pub const NONE: Events = Events {
        keyspace: None,
        flushed: None,
        role_changed: None,
        client_closed: None,
        loaded: None,
    };
}

static FAMILIES: OnceLock<&'static [&'static Family]> = OnceLock::new();

fn each(f: impl Fn(&Events)) {
    for fam in FAMILIES.get().copied().unwrap_or_default() {
        f(&fam.events);
    }
}

/// # Safety
/// Called by the server with the event's live context, event name and key name.
unsafe extern "C" fn on_keyspace_event(
    ctx: *mut RedisModuleCtx,
    _type: c_int,
    event: *const c_char,
    key: *mut RedisModuleString,
) -> c_int {
    if event.is_null() || key.is_null() {
        return raw::REDISMODULE_OK as c_int;
    }
    guarded("keyspace event", || {
        // SAFETY: `ctx` is the live context of this event; `c` stays in the closure.
        let c = unsafe { Ctx::from_raw(ctx) };
        let e = KeyEvent {
            ctx: &c,
            event,
            key,
        };
        each(|ev| {
            if let Some(h) = ev.keyspace {
                h(&c, &e);
            }
        });
    });
    raw::REDISMODULE_OK as c_int
}

/// # Safety
/// Called by the server with the event's live context and data.
unsafe extern "C" fn on_server_event(
    ctx: *mut RedisModuleCtx,
    eid: RedisModuleEvent,
    subevent: u64,
    data: *mut c_void,
) {
    guarded("server event", || {
        // SAFETY: `ctx` is the live context of this event; `c` stays in the closure.
        let c = unsafe { Ctx::from_raw(ctx) };
        match (eid.id, subevent) {
            (
                raw::REDISMODULE_EVENT_CLIENT_CHANGE,
                raw::REDISMODULE_SUBEVENT_CLIENT_CHANGE_DISCONNECTED,
            ) if !data.is_null() => {
                // SAFETY: for this event the server passes a `RedisModuleClientInfo`
                // (version 1, the only one) valid for the callback; only `id` is read.
                let client = unsafe { (*data.cast::<raw::RedisModuleClientInfo>()).id };
                each(|ev| ev.client_closed.map_or((), |h| h(&c, client)));
            }
            (
                raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED,
                raw::REDISMODULE_EVENT_REPLROLECHANGED_NOW_REPLICA,
            ) => each(|ev| ev.role_changed.map_or((), |h| h(&c, false))),
            (
                raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED,
                raw::REDISMODULE_EVENT_REPLROLECHANGED_NOW_MASTER,
            ) => each(|ev| ev.role_changed.map_or((), |h| h(&c, true))),
            (raw::REDISMODULE_EVENT_LOADING, raw::REDISMODULE_SUBEVENT_LOADING_ENDED) => {
                each(|ev| ev.loaded.map_or((), |h| h(&c)));
            }
            (raw::REDISMODULE_EVENT_FLUSHDB, raw::REDISMODULE_SUBEVENT_FLUSHDB_END) => {
                each(|ev| ev.flushed.map_or((), |h| h(&c)));
            }
            _ => {}
        }
    });
}

/// Subscribe, once, to what any family asked for (module load only).
pub fn register(ctx: &Ctx, families: &'static [&'static Family]) -> Result<(), String> {
    let _ = FAMILIES.set(families);
    let wants = |f: fn(&Events) -> bool| families.iter().any(|fam| f(&fam.events));
    if wants(|e| e.keyspace.is_some()) {
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        let subscribe = unsafe { raw::RedisModule_SubscribeToKeyspaceEvents }
            .ok_or("no RedisModule_SubscribeToKeyspaceEvents")?;
        // Not STRING: a subscription makes the server call us on every string write anywhere
        // (INCR, SET, our own charges), a cost on the hot path of every client.
        let types = raw::REDISMODULE_NOTIFY_GENERIC
            | raw::REDISMODULE_NOTIFY_EXPIRED
            | raw::REDISMODULE_NOTIFY_EVICTED;
        // SAFETY: the live load context; `on_keyspace_event` has the signature the server
        // calls.
        if unsafe { subscribe(ctx.raw(), types, Some(on_keyspace_event)) }
            != raw::REDISMODULE_OK as c_int
        {
            return Err("could not subscribe to keyspace events".into());
        }
    }
    let server_events = [
        (
            raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED,
            wants(|e| e.role_changed.is_some()),
        ),
        (
            raw::REDISMODULE_EVENT_FLUSHDB,
            wants(|e| e.flushed.is_some()),
        ),
        (
            raw::REDISMODULE_EVENT_CLIENT_CHANGE,
            wants(|e| e.client_closed.is_some()),
        ),
        (
            raw::REDISMODULE_EVENT_LOADING,
            wants(|e| e.loaded.is_some()),
        ),
    ];
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let server = unsafe { raw::RedisModule_SubscribeToServerEvent }
        .ok_or("no RedisModule_SubscribeToServerEvent")?;
    for (id, wanted) in server_events {
        if !wanted {
            continue;
        }
        let event = RedisModuleEvent { id, dataver: 1 };
        // SAFETY: the live load context; a known event id; `on_server_event` has the
        // signature the server calls.
        if unsafe { server(ctx.raw(), event, Some(on_server_event)) }
            != raw::REDISMODULE_OK as c_int
        {
            return Err(format!("could not subscribe to server event {id}"));
        }
    }
    Ok(())
}
