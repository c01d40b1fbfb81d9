//! Module data types: the [`ModuleType`] trait a family implements for its value, and the
//! generic `extern "C"` callbacks the server calls (RDB load/save with aux id marks, AOF
//! rewrite, digest, memory usage, free, copy), each inside the guard.

use std::ffi::c_void;
use std::os::raw::c_int;

use redis_module::raw::{self, RedisModuleDigest, RedisModuleIO, RedisModuleString};

use super::args::RStr;
use super::command::log;
use super::ctx::Ctx;
use super::highwater::HighWater;
use super::io::{Aof, Digest, Loader, Saver};
use super::typedkey::{DataType, VALUE_WRAPPER_BYTES};

/// Run a data-type callback inside the module's one guard (a panic inside an RDB save or
/// load would abort the server).
pub fn guarded<R>(family: &str, what: &str, f: impl FnOnce() -> R) -> Option<R> {
    super::guard::guarded(format_args!("{family} {what}"), f)
}

/// A module data type: what a family writes for its value; the `extern "C"` shims below
/// (generic over the type) do the pointer handling and run every callback in the guard, so
/// no family writes `unsafe` for its data type.
///
/// Values are handed to the server as `Box<Self>` and the server may drop one on a
/// background thread (lazy free: `UNLINK`, `FLUSHALL ASYNC`, ...). A type that is not
/// `Send` (the buffer's `Rc` member names) must therefore keep every shared handle inside
/// the value itself, never in anything the main thread keeps (a static, a thread-local, a
/// value returned from a command), and [`ModuleType::deep_copy`] must share nothing, so that
/// dropping a value on another thread touches nothing the main thread can touch.
pub trait ModuleType: Sized + 'static {
    /// The type's name, encodings and registered handle (a `static`, named in the call
    /// that creates it: `DataType::new(c"hacks-lck", "lock", 1..=1)`).
    const TYPE: &'static DataType<Self>;
    /// Read a value written with encoding `encver`. Every field is a claim to validate: `None`
    /// on anything a real value could not hold (the load then fails cleanly).
    fn load(io: &Loader, encver: c_int) -> Option<Self>;
    fn save(&self, io: &Saver);
    /// Commands that rebuild the value (the server appends the key's PEXPIREAT itself when
    /// the key has a TTL, so these must not set one).
    fn rewrite(&self, aof: &Aof, key: RStr);
    fn digest(&self, d: &Digest);
    /// Bytes the value owns on the heap (beyond `size_of::<Self>()`).
    fn heap_bytes(&self) -> usize;
    /// Allocations freeing it takes (the server frees large values on a thread).
    fn free_effort(&self) -> usize {
        1
    }
    /// A copy sharing nothing with `self` (COPY; the copy may be freed on another thread).
    fn deep_copy(&self) -> Self;
    /// An id high-water mark saved as aux data before the keyspace, if the type has one.
    fn aux_mark() -> Option<&'static HighWater> {
        None
    }
}

/// The value behind a pointer the server hands to a callback.
///
/// # Safety
/// `value` must be null or a pointer obtained from `Box::<T>::into_raw` for this type.
unsafe fn value_ref<'a, T>(value: *const c_void) -> Option<&'a T> {
    // SAFETY: the caller guarantees the pointer is null or a live `Box<T>`.
    unsafe { value.cast::<T>().as_ref() }
}

// The callbacks below are only called by the server, through the methods `register` gives
// `CreateDataType`: `value` is always null or a `Box<T>` we handed over (from `rdb_load`,
// `copy` or `TypedKey::create`), and the I/O, digest and key pointers are live for the call.

/// # Safety
/// Called by the server with the live RDB handle of a load (see the note above).
unsafe extern "C" fn rdb_load<T: ModuleType>(
    rdb: *mut RedisModuleIO,
    encver: c_int,
) -> *mut c_void {
    if !T::TYPE.encodings().contains(&encver) {
        log(
            None,
            c"warning",
            &format!(
                "hacks: cannot load {} encoding version {encver} (this build reads {} to {})",
                T::TYPE.what,
                T::TYPE.encodings().start(),
                T::TYPE.encodings().end()
            ),
        );
        return std::ptr::null_mut();
    }
    match guarded(T::TYPE.what, "load", || T::load(&Loader(rdb), encver)).flatten() {
        Some(v) => Box::into_raw(Box::new(v)).cast(),
        None => std::ptr::null_mut(),
    }
}

/// # Safety
/// Called by the server with the live RDB handle and a value of this type (note above).
unsafe extern "C" fn rdb_save<T: ModuleType>(rdb: *mut RedisModuleIO, value: *mut c_void) {
    // SAFETY: the server hands back a value of this type: null or a live `Box<T>` it owns,
    // not mutated during the callback.
    if let Some(v) = unsafe { value_ref::<T>(value) } {
        guarded(T::TYPE.what, "save", || v.save(&Saver(rdb)));
    }
}

/// # Safety
/// Called by the server with the live AOF handle, the key's name and its value (note above).
unsafe extern "C" fn aof_rewrite<T: ModuleType>(
    aof: *mut RedisModuleIO,
    key: *mut RedisModuleString,
    value: *mut c_void,
) {
    // SAFETY: as in `rdb_save`: null or the live `Box<T>` the server owns.
    if let Some(v) = unsafe { value_ref::<T>(value) } {
        // SAFETY: the key name the server passed, valid for this callback; `key` is only
        // used inside it.
        let key = unsafe { RStr::from_raw(key) };
        guarded(T::TYPE.what, "AOF rewrite", || v.rewrite(&Aof(aof), key));
    }
}

/// # Safety
/// Called by the server with the live digest and a value of this type (note above).
unsafe extern "C" fn digest<T: ModuleType>(md: *mut RedisModuleDigest, value: *mut c_void) {
    // SAFETY: as in `rdb_save`: null or the live `Box<T>` the server owns.
    if let Some(v) = unsafe { value_ref::<T>(value) } {
        guarded(T::TYPE.what, "digest", || v.digest(&Digest(md)));
    }
}

/// # Safety
/// Called by the server with a value of this type (note above).
unsafe extern "C" fn mem_usage<T: ModuleType>(value: *const c_void) -> usize {
    // SAFETY: as in `rdb_save`: null or the live `Box<T>` the server owns.
    let Some(v) = (unsafe { value_ref::<T>(value) }) else {
        return 0;
    };
    guarded(T::TYPE.what, "memory usage", || {
        std::mem::size_of::<T>()
            .saturating_add(v.heap_bytes())
            .saturating_add(VALUE_WRAPPER_BYTES)
    })
    .unwrap_or(0)
}

/// # Safety
/// Called by the server with a value of this type (note above).
unsafe extern "C" fn free_effort<T: ModuleType>(
    _key: *mut RedisModuleString,
    value: *const c_void,
) -> usize {
    // SAFETY: as in `rdb_save`: null or the live `Box<T>` the server owns.
    unsafe { value_ref::<T>(value) }
        .and_then(|v| guarded(T::TYPE.what, "free effort", || v.free_effort()))
        .unwrap_or(1)
}

/// # Safety
/// Called by the server, once per value, when it drops a value of this type (possibly on
/// a background thread: see [`ModuleType`]).
unsafe extern "C" fn free<T: ModuleType>(value: *mut c_void) {
    if value.is_null() {
        return;
    }
    // SAFETY: every value of this type came from `Box::into_raw` of a `T` (in `rdb_load`,
    // `copy` or `TypedKey::create`) and the server calls `free` exactly once per value, after
    // its last use; off the main thread, the `ModuleType` contract makes the drop touch
    // nothing shared.
    let v = unsafe { Box::from_raw(value.cast::<T>()) };
    guarded(T::TYPE.what, "free", move || drop(v));
}

/// # Safety
/// Called by the server (COPY) with a value of this type (note above).
unsafe extern "C" fn copy<T: ModuleType>(
    _from: *mut RedisModuleString,
    _to: *mut RedisModuleString,
    value: *const c_void,
) -> *mut c_void {
    // SAFETY: as in `rdb_save`: null or the live `Box<T>` the server owns.
    let Some(v) = (unsafe { value_ref::<T>(value) }) else {
        return std::ptr::null_mut();
    };
    match guarded(T::TYPE.what, "copy", || v.deep_copy()) {
        Some(c) => Box::into_raw(Box::new(c)).cast(),
        None => std::ptr::null_mut(),
    }
}

/// Save the mark before the keyspace (so it is there even when no key is).
///
/// # Safety
/// Called by the server with the live RDB handle of a save.
unsafe extern "C" fn aux_save<T: ModuleType>(rdb: *mut RedisModuleIO, when: c_int) {
    if when == raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
        if let Some(m) = T::aux_mark() {
            Saver(rdb).unsigned(m.last());
        }
    }
}

/// Raise the mark from the RDB (a mark no clock could have produced is refused there).
///
/// # Safety
/// Called by the server with the live RDB handle of a load.
unsafe extern "C" fn aux_load<T: ModuleType>(
    rdb: *mut RedisModuleIO,
    _encver: c_int,
    when: c_int,
) -> c_int {
    if when == raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
        match (Loader(rdb).unsigned(), T::aux_mark()) {
            (Some(v), Some(m)) => {
                // A mark no clock made is ignored (logged), not fatal to the whole RDB: the
                // values themselves still raise the mark with every id they carry.
                if !m.observe(v) {
                    log(
                        None,
                        c"warning",
                        &format!(
                            "hacks: ignoring an implausible {} id mark {v}",
                            T::TYPE.what
                        ),
                    );
                }
            }
            _ => return raw::REDISMODULE_ERR as c_int,
        }
    }
    raw::REDISMODULE_OK as c_int
}

/// Create the data type `T` (module load only).
pub fn register<T: ModuleType>(ctx: &Ctx) -> Result<(), String> {
    // SAFETY: the struct is plain data of nullable function pointers and integers; zero is
    // "absent" for each.
    let mut m: raw::RedisModuleTypeMethods = unsafe { std::mem::zeroed() };
    m.version = raw::REDISMODULE_TYPE_METHOD_VERSION as u64;
    m.rdb_load = Some(rdb_load::<T>);
    m.rdb_save = Some(rdb_save::<T>);
    m.aof_rewrite = Some(aof_rewrite::<T>);
    m.mem_usage = Some(mem_usage::<T>);
    m.digest = Some(digest::<T>);
    m.free = Some(free::<T>);
    m.free_effort = Some(free_effort::<T>);
    m.copy = Some(copy::<T>);
    if T::aux_mark().is_some() {
        m.aux_load = Some(aux_load::<T>);
        m.aux_save = Some(aux_save::<T>);
        m.aux_save_triggers = raw::REDISMODULE_AUX_BEFORE_RDB as c_int;
    }
    // SAFETY: a function pointer read from the API table bound at load.
    let create =
        unsafe { raw::RedisModule_CreateDataType }.ok_or("no RedisModule_CreateDataType")?;
    // SAFETY: called at load with the load context; the name is NUL-terminated and the
    // server copies the methods struct.
    let ty = unsafe {
        create(
            ctx.raw(),
            T::TYPE.name.as_ptr(),
            *T::TYPE.encodings().end(),
            &mut m,
        )
    };
    if ty.is_null() {
        return Err(format!(
            "could not create data type {}",
            T::TYPE.name.to_string_lossy()
        ));
    }
    T::TYPE.set(ty);
    Ok(())
}
