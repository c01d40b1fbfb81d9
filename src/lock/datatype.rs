//! The `hacks-lck` data type: a held lock's owner and fencing token (its expiry is the
//! key's own TTL, so `PEXPIRETIME`, RDB, `DUMP`/`RESTORE`, `COPY` and expiry by the server
//! need nothing special). Every callback is guarded: a panic here would abort the server.
//!
//! RDB encoding version 1: `owner, token`. Module aux data (before the keyspace): the
//! fencing-token high-water mark, so tokens keep increasing after a restart or a full sync
//! even for key names whose lock is gone.

use std::ffi::c_void;
use std::os::raw::c_int;

use redis_module::raw::{self, RedisModuleDigest, RedisModuleIO, RedisModuleString};

use crate::module::args::RStr;
use crate::module::ctx::Ctx;
use crate::module::datatype::{
    aux_load, aux_save, copy_clone, create, empty_methods, free_boxed, guarded, load_boxed, AuxMark,
};
use crate::module::io::{Aof, Digest, Loader, Saver, StrVec};
use crate::module::typedkey::DataType;

use super::lease::Lock;
use super::token;

pub static LOCK_TYPE: DataType<Lock> = DataType::new();

/// The fencing-token mark travels in the RDB as this type's aux data.
struct Marks;
impl AuxMark for Marks {
    fn mark() -> &'static crate::module::highwater::HighWater {
        token::mark()
    }
}

/// Exactly 9 characters, as Redis requires.
const TYPE_NAME: &std::ffi::CStr = c"hacks-lck";
const ENCODING_VERSION: c_int = 1;

unsafe fn lock<'a>(value: *const c_void) -> Option<&'a Lock> {
    unsafe { value.cast::<Lock>().as_ref() }
}

unsafe extern "C" fn rdb_load(rdb: *mut RedisModuleIO, encver: c_int) -> *mut c_void {
    load_boxed("lock", encver, ENCODING_VERSION, || {
        let io = Loader(rdb);
        let owner = io.bytes()?;
        let token = io.unsigned()?;
        token::observe(token);
        Some(Lock { owner, token })
    })
}

unsafe extern "C" fn rdb_save(rdb: *mut RedisModuleIO, value: *mut c_void) {
    let Some(l) = (unsafe { lock(value) }) else {
        return;
    };
    guarded("lock", "save", || {
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
    guarded("lock", "AOF rewrite", || {
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
    guarded("lock", "digest", || {
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

unsafe extern "C" fn free_effort(_key: *mut RedisModuleString, _value: *const c_void) -> usize {
    1
}

/// Register the type (module load only).
pub fn register(ctx: &Ctx) -> Result<(), String> {
    let mut methods = empty_methods();
    methods.rdb_load = Some(rdb_load);
    methods.rdb_save = Some(rdb_save);
    methods.aof_rewrite = Some(aof_rewrite);
    methods.mem_usage = Some(mem_usage);
    methods.digest = Some(digest);
    methods.free = Some(free_boxed::<Lock>);
    methods.aux_load = Some(aux_load::<Marks>);
    methods.aux_save = Some(aux_save::<Marks>);
    methods.aux_save_triggers = raw::REDISMODULE_AUX_BEFORE_RDB as c_int;
    methods.free_effort = Some(free_effort);
    methods.copy = Some(copy_clone::<Lock>);
    LOCK_TYPE.set(create(ctx, TYPE_NAME, ENCODING_VERSION, methods)?);
    Ok(())
}
