//! The `hacks-lck` data type: a held lock's owner and fencing token (its expiry is the
//! key's own TTL, so `PEXPIRETIME`, RDB, `DUMP`/`RESTORE`, `COPY` and expiry by the server
//! need nothing special). Every callback is guarded: a panic here would abort the server.
//!
//! RDB encoding version 1: `owner, token`. Module aux data (before the keyspace): the
//! fencing-token high-water mark, so tokens keep increasing after a restart or a full sync
//! even for key names whose lock is gone.

use std::ffi::c_void;
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

use redis_module::raw::{self, RedisModuleDigest, RedisModuleIO, RedisModuleString};

use crate::module::args::RStr;
use crate::module::ctx::Ctx;
use crate::module::io::{Aof, Digest, Loader, Saver, StrVec};
use crate::module::typedkey::DataType;

use super::lease::Lock;
use super::token;

pub static LOCK_TYPE: DataType<Lock> = DataType::new();

/// Exactly 9 characters, as Redis requires.
const TYPE_NAME: &std::ffi::CStr = c"hacks-lck";
const ENCODING_VERSION: c_int = 1;

fn guarded<R>(what: &str, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(_) => {
            crate::module::command::log(
                None,
                c"warning",
                &format!("hacks: internal error in lock {what}"),
            );
            None
        }
    }
}

unsafe fn lock<'a>(value: *const c_void) -> Option<&'a Lock> {
    unsafe { value.cast::<Lock>().as_ref() }
}

unsafe extern "C" fn rdb_load(rdb: *mut RedisModuleIO, encver: c_int) -> *mut c_void {
    if encver != ENCODING_VERSION {
        crate::module::command::log(
            None,
            c"warning",
            &format!(
                "hacks: cannot load lock encoding version {encver} (this build reads {ENCODING_VERSION})"
            ),
        );
        return std::ptr::null_mut();
    }
    let loaded = guarded("load", || {
        let io = Loader(rdb);
        let owner = io.bytes()?;
        let token = io.unsigned()?;
        token::observe(token);
        Some(Lock { owner, token })
    })
    .flatten();
    match loaded {
        Some(l) => Box::into_raw(Box::new(l)).cast(),
        None => std::ptr::null_mut(),
    }
}

unsafe extern "C" fn rdb_save(rdb: *mut RedisModuleIO, value: *mut c_void) {
    let Some(l) = (unsafe { lock(value) }) else {
        return;
    };
    guarded("save", || {
        let io = Saver(rdb);
        io.bytes(&l.owner);
        io.unsigned(l.token);
    });
}

/// Rewritten AOF: `HACK.LOCKSET key owner token`; the server follows it with the key's
/// `PEXPIREAT`, as for every key with a TTL.
unsafe extern "C" fn aof_rewrite(
    aof: *mut RedisModuleIO,
    key: *mut RedisModuleString,
    value: *mut c_void,
) {
    let Some(l) = (unsafe { lock(value) }) else {
        return;
    };
    let (aof, key) = (Aof(aof), RStr::from_raw(key));
    guarded("AOF rewrite", || {
        let mut args = StrVec::with_capacity(2);
        if args.push(&l.owner) && args.push_int(i128::from(l.token)) {
            aof.emit(c"HACK.LOCKSET", key, &mut args);
        }
    });
}

unsafe extern "C" fn digest(md: *mut RedisModuleDigest, value: *mut c_void) {
    let Some(l) = (unsafe { lock(value) }) else {
        return;
    };
    guarded("digest", || {
        let d = Digest(md);
        d.bytes(&l.owner);
        d.int(i64::try_from(l.token).unwrap_or(i64::MAX));
        d.end_sequence();
    });
}

unsafe extern "C" fn mem_usage(value: *const c_void) -> usize {
    let Some(l) = (unsafe { lock(value) }) else {
        return 0;
    };
    std::mem::size_of::<Lock>()
        .saturating_add(l.heap_bytes())
        .saturating_add(crate::module::typedkey::VALUE_WRAPPER_BYTES)
}

unsafe extern "C" fn free(value: *mut c_void) {
    if value.is_null() {
        return;
    }
    // SAFETY: every value the server holds came from Box::into_raw of a Lock.
    let l = unsafe { Box::from_raw(value.cast::<Lock>()) };
    guarded("free", move || drop(l));
}

unsafe extern "C" fn free_effort(_key: *mut RedisModuleString, _value: *const c_void) -> usize {
    1
}

/// `COPY`: the copy is a lock of its own with the same owner and token (and, as the server
/// copies it, the same expiry).
unsafe extern "C" fn copy(
    _from: *mut RedisModuleString,
    _to: *mut RedisModuleString,
    value: *const c_void,
) -> *mut c_void {
    let Some(l) = (unsafe { lock(value) }) else {
        return std::ptr::null_mut();
    };
    match guarded("copy", || l.clone()) {
        Some(c) => Box::into_raw(Box::new(c)).cast(),
        None => std::ptr::null_mut(),
    }
}

unsafe extern "C" fn aux_save(rdb: *mut RedisModuleIO, when: c_int) {
    if when == raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
        Saver(rdb).unsigned(token::last());
    }
}

unsafe extern "C" fn aux_load(rdb: *mut RedisModuleIO, _encver: c_int, when: c_int) -> c_int {
    if when == raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
        match Loader(rdb).unsigned() {
            Some(v) => token::observe(v),
            None => return raw::REDISMODULE_ERR as c_int,
        }
    }
    raw::REDISMODULE_OK as c_int
}

/// Register the type (module load only).
pub fn register(ctx: &Ctx) -> Result<(), String> {
    let create =
        unsafe { raw::RedisModule_CreateDataType }.ok_or("no RedisModule_CreateDataType")?;
    // SAFETY: zero is "absent" for every optional callback of the struct.
    let mut methods: raw::RedisModuleTypeMethods = unsafe { std::mem::zeroed() };
    methods.version = raw::REDISMODULE_TYPE_METHOD_VERSION as u64;
    methods.rdb_load = Some(rdb_load);
    methods.rdb_save = Some(rdb_save);
    methods.aof_rewrite = Some(aof_rewrite);
    methods.mem_usage = Some(mem_usage);
    methods.digest = Some(digest);
    methods.free = Some(free);
    methods.aux_load = Some(aux_load);
    methods.aux_save = Some(aux_save);
    methods.aux_save_triggers = raw::REDISMODULE_AUX_BEFORE_RDB as c_int;
    methods.free_effort = Some(free_effort);
    methods.copy = Some(copy);
    let ty = unsafe {
        create(
            ctx.raw(),
            TYPE_NAME.as_ptr(),
            ENCODING_VERSION,
            &mut methods,
        )
    };
    if ty.is_null() {
        return Err("could not create data type hacks-lck".into());
    }
    LOCK_TYPE.set(ty);
    Ok(())
}
