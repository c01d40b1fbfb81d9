//! Module settings, visible as `CONFIG GET/SET hacks.<name>` and settable at load time with
//! `MODULE LOADEX ... CONFIG hacks.<name> <value>` or a `hacks.<name> <value>` line in
//! redis.conf. Values live in atomics read on the hot path without locking.

use std::ffi::{c_void, CStr};
use std::os::raw::{c_char, c_int, c_longlong, c_uint};
use std::sync::atomic::{AtomicI64, AtomicPtr, Ordering};

use redis_module::raw::{self, RedisModuleString};

use super::ctx::Ctx;

/// One integer setting.
pub struct IntSetting {
    /// Name without the `hacks.` prefix the server adds.
    pub name: &'static CStr,
    pub default: i64,
    pub min: i64,
    pub max: i64,
    value: AtomicI64,
}

impl IntSetting {
    pub const fn new(name: &'static CStr, default: i64, min: i64, max: i64) -> Self {
        IntSetting {
            name,
            default,
            min,
            max,
            value: AtomicI64::new(default),
        }
    }

    pub fn get(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// One string setting: validated (and parsed) by `check` before it is accepted.
pub struct StrSetting {
    pub name: &'static CStr,
    pub default: &'static CStr,
    pub check: fn(&[u8]) -> Result<(), String>,
    /// The current value, held for `CONFIG GET` (a retained server string).
    held: AtomicPtr<RedisModuleString>,
}

impl StrSetting {
    pub const fn new(
        name: &'static CStr,
        default: &'static CStr,
        check: fn(&[u8]) -> Result<(), String>,
    ) -> Self {
        StrSetting {
            name,
            default,
            check,
            held: AtomicPtr::new(std::ptr::null_mut()),
        }
    }
}

/// A family's setting, of either kind.
#[derive(Clone, Copy)]
pub enum Setting {
    Int(&'static IntSetting),
    Str(&'static StrSetting),
}

/// # Safety
/// Only the server calls it, with the `privdata` given in [`register_all`]: a
/// `&'static StrSetting`. The same holds for the other three config callbacks.
unsafe extern "C" fn get_str(
    _name: *const c_char,
    privdata: *mut c_void,
) -> *mut RedisModuleString {
    // SAFETY: privdata is the `&'static StrSetting` given at registration (never null, never
    // freed); it is only read through `&` (the value is in an atomic).
    let s = unsafe { &*(privdata as *const StrSetting) };
    s.held.load(Ordering::Relaxed)
}

/// # Safety
/// As [`get_str`]; `val` is a valid server string for the call and `err` null or a valid
/// out-pointer.
unsafe extern "C" fn set_str(
    _name: *const c_char,
    val: *mut RedisModuleString,
    privdata: *mut c_void,
    err: *mut *mut RedisModuleString,
) -> c_int {
    // SAFETY: as in `get_str`: the `&'static StrSetting` given at registration.
    let s = unsafe { &*(privdata as *const StrSetting) };
    // SAFETY: copies of API-table entries, written once at load (see `ffi::rm!`).
    let (Some(ptr_len), Some(hold), Some(free), Some(create)) = (
        unsafe { raw::RedisModule_StringPtrLen },
        unsafe { raw::RedisModule_HoldString },
        unsafe { raw::RedisModule_FreeString },
        unsafe { raw::RedisModule_CreateString },
    ) else {
        return raw::REDISMODULE_ERR as c_int;
    };
    let mut len = 0usize;
    // SAFETY: `val` is the server string being set, valid for this call; `len` is a valid
    // out-pointer.
    let p = unsafe { ptr_len(val, &mut len) };
    let bytes = if p.is_null() {
        &[][..]
    } else {
        // SAFETY: non-null pointer to the `len` bytes of `val`, unchanged during this call.
        unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }
    };
    if let Err(e) = (s.check)(bytes) {
        if !err.is_null() {
            // SAFETY: `err` is the server's non-null out-pointer for the error string (which
            // the server frees); a NULL context is allowed for `CreateString` (no automatic
            // memory), and `e` is valid for `e.len()` bytes.
            unsafe { *err = create(std::ptr::null_mut(), e.as_ptr().cast(), e.len()) };
        }
        return raw::REDISMODULE_ERR as c_int;
    }
    // SAFETY: `val` is valid for this call; holding it with a NULL context gives us our own
    // reference, released below when the next value replaces it.
    let new = unsafe { hold(std::ptr::null_mut(), val) };
    let old = s.held.swap(new, Ordering::Relaxed);
    if !old.is_null() {
        // SAFETY: `old` is the reference this setting held (from `HoldString` or
        // `CreateString` with a NULL context), swapped out above, so released exactly once.
        unsafe { free(std::ptr::null_mut(), old) };
    }
    raw::REDISMODULE_OK as c_int
}

/// # Safety
/// Only the server calls it, with the `privdata` given in [`register_all`]: a
/// `&'static IntSetting` (likewise [`set_int`]).
unsafe extern "C" fn get_int(_name: *const c_char, privdata: *mut c_void) -> c_longlong {
    // SAFETY: privdata is the `&'static IntSetting` given at registration (never null, never
    // freed); it is only read through `&` (the value is an atomic).
    let s = unsafe { &*(privdata as *const IntSetting) };
    s.get()
}

/// # Safety
/// As [`get_int`].
unsafe extern "C" fn set_int(
    _name: *const c_char,
    val: c_longlong,
    privdata: *mut c_void,
    _err: *mut *mut RedisModuleString,
) -> c_int {
    // SAFETY: as in `get_int`: the `&'static IntSetting` given at registration. The server
    // has already checked min/max.
    let s = unsafe { &*(privdata as *const IntSetting) };
    s.value.store(val, Ordering::Relaxed);
    raw::REDISMODULE_OK as c_int
}

fn registered(status: c_int, name: &CStr) -> Result<(), String> {
    if status == raw::REDISMODULE_OK as c_int {
        Ok(())
    } else {
        Err(format!(
            "could not register config hacks.{}",
            name.to_string_lossy()
        ))
    }
}

/// Register every setting, then apply values from the config file / LOADEX.
pub fn register_all(ctx: &Ctx, settings: impl Iterator<Item = Setting>) -> Result<(), String> {
    // SAFETY: copies of API-table entries, written once at load (see `ffi::rm!`).
    let (Some(reg), Some(load)) = (unsafe { raw::RedisModule_RegisterNumericConfig }, unsafe {
        raw::RedisModule_LoadConfigs
    }) else {
        // Before 7.0 there are no module configs: the defaults apply.
        return Ok(());
    };
    // SAFETY: as above.
    let reg_str = unsafe { raw::RedisModule_RegisterStringConfig };
    for setting in settings {
        match setting {
            Setting::Int(s) => {
                s.value.store(s.default, Ordering::Relaxed);
                let privdata = (s as *const IntSetting).cast_mut().cast::<c_void>();
                // SAFETY: `ctx` is the load context (configs can only be registered in
                // `OnLoad`); the name is a static C string the server copies; `privdata` is a
                // `&'static IntSetting`, which is what `get_int`/`set_int` expect.
                let status = unsafe {
                    reg(
                        ctx.raw(),
                        s.name.as_ptr(),
                        s.default,
                        raw::REDISMODULE_CONFIG_DEFAULT as c_uint,
                        s.min,
                        s.max,
                        Some(get_int),
                        Some(set_int),
                        None,
                        privdata,
                    )
                };
                registered(status, s.name)?;
            }
            Setting::Str(s) => {
                let Some(reg_str) = reg_str else { continue };
                // Apply the default first so the setting is valid even before the server sets it.
                (s.check)(s.default.to_bytes()).map_err(|e| format!("bad default: {e}"))?;
                if s.held.load(Ordering::Relaxed).is_null() {
                    // SAFETY: copy of an API-table entry, written once at load.
                    if let Some(create) = unsafe { raw::RedisModule_CreateString } {
                        let d = s.default.to_bytes();
                        // SAFETY: a NULL context is allowed (no automatic memory: the string
                        // is ours until `set_str` frees it); `d` is valid for `d.len()` bytes.
                        let held =
                            unsafe { create(std::ptr::null_mut(), d.as_ptr().cast(), d.len()) };
                        s.held.store(held, Ordering::Relaxed);
                    }
                }
                let privdata = (s as *const StrSetting).cast_mut().cast::<c_void>();
                // SAFETY: as for `reg` above, with a `&'static StrSetting` for
                // `get_str`/`set_str`; name and default are static C strings.
                let status = unsafe {
                    reg_str(
                        ctx.raw(),
                        s.name.as_ptr(),
                        s.default.as_ptr(),
                        raw::REDISMODULE_CONFIG_DEFAULT as c_uint,
                        Some(get_str),
                        Some(set_str),
                        None,
                        privdata,
                    )
                };
                registered(status, s.name)?;
            }
        }
    }
    // SAFETY: `ctx` is the load context, where `LoadConfigs` must be called.
    if unsafe { load(ctx.raw()) } != raw::REDISMODULE_OK as c_int {
        return Err("invalid hacks.* configuration value".into());
    }
    Ok(())
}
