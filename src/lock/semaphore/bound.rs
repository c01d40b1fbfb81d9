//! BOUND: permits that end with the connection that took them.
//!
//! - The master keeps an index, client id -> semaphore keys where that client took or
//!   renewed a BOUND holding (or was admitted as a BOUND waiter). It may name keys the
//!   client no longer holds (released, expired, deleted): harmless, looked up and skipped.
//! - The lock family's client-change event hook (`lock/events.rs`) is [`disconnected`],
//!   for every closed connection: a map lookup, nothing more, unless the client has BOUND
//!   holdings. Then an immediate timer (no writes inside an event callback) releases them in
//!   each key, admits waiters and replicates the result, in the same event-loop iteration.
//! - A client id means something only in the process that handed it out. A holder that
//!   arrives from elsewhere (RDB, AOF, replication, RESTORE) is bound to `STALE`: released at
//!   the key's next change (`wait::change`), and by a sweep of the whole keyspace on a
//!   master after loading ends or after a replica is promoted ([`schedule_sweep`]), which
//!   replicates each release as an effect.
//! - `RENAME`/`MOVE`/`COPY` keep bound holders bound: the keyspace event of the new name
//!   indexes it under the same connections ([`reindex`]).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::c_void;
use std::os::raw::{c_int, c_void as CVoid};
use std::sync::atomic::{AtomicU64, Ordering};

use redis_module::raw::{self, RedisModuleCtx, RedisModuleKey, RedisModuleString};

use crate::lock::stats;
use crate::module::args::RStr;
use crate::module::command::log;
use crate::module::ctx::Ctx;
use crate::module::guard::guarded;
use crate::module::keytimer::KeyId;
use crate::module::typedkey::TypedKey;

use super::datatype::{SEM_TYPE, STALE};
use super::holders::Semaphore;
use super::wait;

thread_local! {
    static INDEX: RefCell<HashMap<u64, HashSet<KeyId>>> = RefCell::new(HashMap::new());
}

/// Bound holders loaded or replicated in (bound to `STALE`) since the last sweep.
static STALE_LOADED: AtomicU64 = AtomicU64::new(0);

/// Some connection has BOUND holdings here.
pub fn any() -> bool {
    INDEX.with(|i| i.try_borrow().map(|i| !i.is_empty()).unwrap_or(false))
}

/// Client `client` holds (or was admitted to) a BOUND holding in `id`.
pub fn note(client: u64, id: &KeyId) {
    if client == 0 || client == STALE {
        return;
    }
    INDEX.with(|i| {
        if let Ok(mut i) = i.try_borrow_mut() {
            let keys = i.entry(client).or_default();
            if !keys.contains(id) {
                keys.insert(id.clone());
            }
        }
    });
}

/// A loaded value has this many bound holders (bound to `STALE`): a sweep is due.
pub fn loaded_stale(sem: &Semaphore) {
    let n = sem.holders().iter().filter(|h| h.bound.is_some()).count();
    if n > 0 {
        STALE_LOADED.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A job for an immediate timer: release `client`'s holdings in `keys`.
struct Job {
    client: u64,
    keys: Vec<KeyId>,
}

/// Connection `client` closed: release its BOUND holdings from an immediate timer.
pub fn disconnected(ctx: &Ctx, client: u64) {
    let keys = INDEX.with(|i| i.try_borrow_mut().ok().and_then(|mut i| i.remove(&client)));
    let Some(keys) = keys else {
        return;
    };
    let job = Job {
        client,
        keys: keys.into_iter().collect(),
    };
    schedule(ctx, Box::new(job));
}

fn schedule(ctx: &Ctx, job: Box<Job>) {
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let Some(create) = (unsafe { raw::RedisModule_CreateTimer }) else {
        return;
    };
    let data = Box::into_raw(job);
    // SAFETY: a live context; `data` is a `Box<Job>` that `on_job` reclaims when the timer
    // fires (this timer is never stopped).
    unsafe { create(ctx.raw(), 0, Some(on_job), data.cast()) };
}

/// # Safety
/// Called by the server when a timer from `schedule` fires, with its data.
unsafe extern "C" fn on_job(ctx: *mut RedisModuleCtx, data: *mut c_void) {
    if data.is_null() {
        return;
    }
    // SAFETY: the data of every `on_job` timer is a `Box<Job>` (`schedule`), never stopped,
    // so reclaimed here exactly once.
    let job = *unsafe { Box::from_raw(data.cast::<Job>()) };
    guarded("semaphore disconnect", || {
        // SAFETY: `ctx` is the live timer context of this callback; `c` stays in the closure.
        let c = unsafe { Ctx::from_raw(ctx) };
        for id in &job.keys {
            if let Err(e) = release_in(&c, id, job.client) {
                log(
                    Some(&c),
                    c"warning",
                    &format!("hacks: releasing BOUND permits failed: {}", e.text()),
                );
            }
        }
    });
}

/// Release what `client` holds in `id` (and admit waiters), where this server may write.
fn release_in(ctx: &Ctx, id: &KeyId, client: u64) -> Result<(), crate::module::error::CmdError> {
    let Some(now) = wait::writable_here(ctx, id, false)? else {
        return Ok(());
    };
    wait::change_key(ctx, id, now, |sem, _| {
        let gone = sem.release_client(client);
        if !gone.is_empty() {
            stats::SEM_BOUND_RELEASED.add(gone.len() as u64);
        }
        (!gone.is_empty(), ())
    })
}

/// A semaphore arrived under the name `key` (RENAME, MOVE, COPY): its BOUND holders'
/// connections now also hold it under that name. Reads only (inside a keyspace event).
pub fn reindex(ctx: &Ctx, name: RStr, id: KeyId) {
    let Ok(k) = TypedKey::open(ctx, name, &SEM_TYPE, false) else {
        return;
    };
    let Ok(Some(sem)) = k.get() else {
        return;
    };
    for h in sem.holders() {
        if let Some(client) = h.bound {
            note(client, &id);
        }
    }
}

// ---- the sweep of stale bindings ----------------------------------------------------------

/// After loading or a promotion: if bound holders came from elsewhere, release them all
/// (from an immediate timer, on a master).
pub fn schedule_sweep(ctx: &Ctx) {
    if STALE_LOADED.load(Ordering::Relaxed) == 0 {
        return;
    }
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let Some(create) = (unsafe { raw::RedisModule_CreateTimer }) else {
        return;
    };
    // SAFETY: a live context; `on_sweep` takes no data.
    unsafe { create(ctx.raw(), 0, Some(on_sweep), std::ptr::null_mut()) };
}

/// # Safety
/// Called by the server when a timer from `schedule_sweep` fires.
unsafe extern "C" fn on_sweep(ctx: *mut RedisModuleCtx, _data: *mut c_void) {
    guarded("semaphore sweep", || {
        // SAFETY: `ctx` is the live timer context of this callback; `c` stays in the closure.
        let c = unsafe { Ctx::from_raw(ctx) };
        let Ok(flags) = c.flags() else {
            return;
        };
        // A replica keeps them (its master decides); a loading server sweeps when done.
        if flags & raw::REDISMODULE_CTX_FLAGS_MASTER == 0
            || flags & raw::REDISMODULE_CTX_FLAGS_LOADING != 0
        {
            return;
        }
        STALE_LOADED.store(0, Ordering::Relaxed);
        let mut swept = 0usize;
        for db in 0..i32::MAX {
            let Some(names) = stale_keys(&c, db) else {
                break;
            };
            for name in names {
                let id: KeyId = (db, name);
                if release_in(&c, &id, STALE).is_ok() {
                    swept = swept.saturating_add(1);
                }
            }
        }
        if swept > 0 {
            log(
                Some(&c),
                c"notice",
                &format!("hacks: released stale BOUND holders in {swept} semaphore(s)"),
            );
        }
    });
}

/// Names of the semaphores in `db` with holders bound to `STALE`; `None` when there is no
/// such db.
fn stale_keys(ctx: &Ctx, db: i32) -> Option<Vec<Vec<u8>>> {
    // SAFETY: copies of API-table entries, written once at load (see `ffi::rm!`).
    let (select, create, scan, destroy) = unsafe {
        (
            raw::RedisModule_SelectDb?,
            raw::RedisModule_ScanCursorCreate?,
            raw::RedisModule_Scan?,
            raw::RedisModule_ScanCursorDestroy?,
        )
    };
    // SAFETY: the live timer context.
    if unsafe { select(ctx.raw(), db) } != raw::REDISMODULE_OK as c_int {
        return None;
    }
    let mut names: Vec<Vec<u8>> = Vec::new();
    // SAFETY: creates a cursor, destroyed below.
    let cursor = unsafe { create() };
    if cursor.is_null() {
        return Some(names);
    }
    let data: *mut Vec<Vec<u8>> = &mut names;
    // SAFETY: a live context and cursor; `on_key` gets `data`, a `Vec` that outlives the
    // loop; the cursor is destroyed once, after it.
    unsafe {
        while scan(ctx.raw(), cursor, Some(on_key), data.cast()) != 0 {}
        destroy(cursor);
    }
    Some(names)
}

/// # Safety
/// Called by `RedisModule_Scan` with a key opened for reading and the `Vec` of `stale_keys`.
unsafe extern "C" fn on_key(
    _ctx: *mut RedisModuleCtx,
    keyname: *mut RedisModuleString,
    key: *mut RedisModuleKey,
    data: *mut CVoid,
) {
    if key.is_null() || keyname.is_null() || data.is_null() {
        return;
    }
    // SAFETY: copies of API-table entries, written once at load (see `ffi::rm!`).
    let (Some(get_type), Some(get_value), Some(ptr_len)) = (unsafe {
        (
            raw::RedisModule_ModuleTypeGetType,
            raw::RedisModule_ModuleTypeGetValue,
            raw::RedisModule_StringPtrLen,
        )
    }) else {
        return;
    };
    // SAFETY: `key` is the live key the scan opened; only read.
    if unsafe { get_type(key) } != SEM_TYPE.get() {
        return;
    }
    // SAFETY: a key of our type holds a `Semaphore` (see `module/typedkey.rs`).
    let Some(sem) = (unsafe { get_value(key).cast::<Semaphore>().as_ref() }) else {
        return;
    };
    if !sem.holders().iter().any(|h| h.bound == Some(STALE)) {
        return;
    }
    let mut len = 0usize;
    // SAFETY: `keyname` is the scan's live key name; `len` a valid out-pointer.
    let p = unsafe { ptr_len(keyname, &mut len) };
    if p.is_null() {
        return;
    }
    // SAFETY: `data` is the `Vec` `stale_keys` passed, alive and not otherwise borrowed
    // during the scan; `p` points to `len` bytes, copied at once.
    unsafe {
        (*data.cast::<Vec<Vec<u8>>>())
            .push(std::slice::from_raw_parts(p.cast::<u8>(), len).to_vec());
    }
}
