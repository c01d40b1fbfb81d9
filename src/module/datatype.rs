//! Pieces every module data type shares: the panic guard for callbacks, typed access to a
//! value pointer, generic `free`/`copy`, RDB aux save/load of a [`HighWater`] mark, and
//! registration.

use std::ffi::{c_void, CStr};
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

use redis_module::raw::{self, RedisModuleIO, RedisModuleString, RedisModuleType};

use super::command::log;
use super::ctx::Ctx;
use super::highwater::HighWater;
use super::io::{Loader, Saver};

/// Run a data-type callback; a panic (which would abort the server from inside an RDB save
/// or load) becomes a logged failure instead.
pub fn guarded<R>(family: &str, what: &str, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(_) => {
            log(
                None,
                c"warning",
                &format!("hacks: internal error in {family} {what}"),
            );
            None
        }
    }
}

/// The value behind a pointer the server hands to a callback.
///
/// # Safety
/// `value` must be null or a pointer obtained from `Box::<T>::into_raw` for this type.
pub unsafe fn value_ref<'a, T>(value: *const c_void) -> Option<&'a T> {
    unsafe { value.cast::<T>().as_ref() }
}

/// Log and refuse an RDB encoding this build cannot read (returns true when refused).
fn wrong_encoding(family: &str, encver: c_int, supported: c_int) -> bool {
    if encver == supported {
        return false;
    }
    log(
        None,
        c"warning",
        &format!(
            "hacks: cannot load {family} encoding version {encver} (this build reads {supported})"
        ),
    );
    true
}

/// The shell of every `rdb_load`: refuse an unknown encoding, run `load` under the guard,
/// and hand the server a boxed value (null on any failure, which fails the load cleanly).
pub fn load_boxed<T>(
    family: &str,
    encver: c_int,
    supported: c_int,
    load: impl FnOnce() -> Option<T>,
) -> *mut c_void {
    if wrong_encoding(family, encver, supported) {
        return std::ptr::null_mut();
    }
    match guarded(family, "load", load).flatten() {
        Some(v) => Box::into_raw(Box::new(v)).cast(),
        None => std::ptr::null_mut(),
    }
}

/// `free` for values stored as `Box<T>`.
///
/// # Safety
/// Called by the server with a value of this type (from `Box::<T>::into_raw`), once.
pub unsafe extern "C" fn free_boxed<T>(value: *mut c_void) {
    if value.is_null() {
        return;
    }
    // SAFETY: every value of this type came from Box::into_raw of a T.
    let v = unsafe { Box::from_raw(value.cast::<T>()) };
    guarded("value", "free", move || drop(v));
}

/// `copy` (COPY, and what RESTORE-like paths need) for values that clone deeply.
///
/// # Safety
/// Called by the server with a live value of this type.
pub unsafe extern "C" fn copy_clone<T: Clone>(
    _from: *mut RedisModuleString,
    _to: *mut RedisModuleString,
    value: *const c_void,
) -> *mut c_void {
    let Some(v) = (unsafe { value_ref::<T>(value) }) else {
        return std::ptr::null_mut();
    };
    match guarded("value", "copy", || v.clone()) {
        Some(c) => Box::into_raw(Box::new(c)).cast(),
        None => std::ptr::null_mut(),
    }
}

/// A family whose id mark travels in the RDB as module aux data.
pub trait AuxMark {
    fn mark() -> &'static HighWater;
}

/// Save the mark before the keyspace (so it is there even when no key is).
///
/// # Safety
/// Called by the server with a valid RDB stream.
pub unsafe extern "C" fn aux_save<M: AuxMark>(rdb: *mut RedisModuleIO, when: c_int) {
    if when == raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
        Saver(rdb).unsigned(M::mark().last());
    }
}

/// Raise the mark from the RDB.
///
/// # Safety
/// Called by the server with a valid RDB stream.
pub unsafe extern "C" fn aux_load<M: AuxMark>(
    rdb: *mut RedisModuleIO,
    _encver: c_int,
    when: c_int,
) -> c_int {
    if when == raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
        match Loader(rdb).unsigned() {
            Some(v) => M::mark().observe(v),
            None => return raw::REDISMODULE_ERR as c_int,
        }
    }
    raw::REDISMODULE_OK as c_int
}

/// Callbacks with every optional one absent (zero is "absent" in the server's struct).
pub fn empty_methods() -> raw::RedisModuleTypeMethods {
    // SAFETY: the struct is plain data of nullable function pointers and integers.
    let mut m: raw::RedisModuleTypeMethods = unsafe { std::mem::zeroed() };
    m.version = raw::REDISMODULE_TYPE_METHOD_VERSION as u64;
    m
}

/// Create a data type (module load only). `name` must be exactly 9 characters.
pub fn create(
    ctx: &Ctx,
    name: &CStr,
    encver: c_int,
    mut methods: raw::RedisModuleTypeMethods,
) -> Result<*mut RedisModuleType, String> {
    let create =
        unsafe { raw::RedisModule_CreateDataType }.ok_or("no RedisModule_CreateDataType")?;
    let ty = unsafe { create(ctx.raw(), name.as_ptr(), encver, &mut methods) };
    if ty.is_null() {
        return Err(format!(
            "could not create data type {}",
            name.to_string_lossy()
        ));
    }
    Ok(ty)
}
