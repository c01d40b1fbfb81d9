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

unsafe extern "C" fn get_str(
    _name: *const c_char,
    privdata: *mut c_void,
) -> *mut RedisModuleString {
    // SAFETY: privdata is the `&'static StrSetting` given at registration.
    let s = unsafe { &*(privdata as *const StrSetting) };
    s.held.load(Ordering::Relaxed)
}

unsafe extern "C" fn set_str(
    _name: *const c_char,
    val: *mut RedisModuleString,
    privdata: *mut c_void,
    err: *mut *mut RedisModuleString,
) -> c_int {
    // SAFETY: as above.
    let s = unsafe { &*(privdata as *const StrSetting) };
    let (Some(ptr_len), Some(hold), Some(free), Some(create)) = (
        unsafe { raw::RedisModule_StringPtrLen },
        unsafe { raw::RedisModule_HoldString },
        unsafe { raw::RedisModule_FreeString },
        unsafe { raw::RedisModule_CreateString },
    ) else {
        return raw::REDISMODULE_ERR as c_int;
    };
    let mut len = 0usize;
    let p = unsafe { ptr_len(val, &mut len) };
    let bytes = if p.is_null() {
        &[][..]
    } else {
        unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }
    };
    if let Err(e) = (s.check)(bytes) {
        if !err.is_null() {
            unsafe { *err = create(std::ptr::null_mut(), e.as_ptr().cast(), e.len()) };
        }
        return raw::REDISMODULE_ERR as c_int;
    }
    let new = unsafe { hold(std::ptr::null_mut(), val) };
    let old = s.held.swap(new, Ordering::Relaxed);
    if !old.is_null() {
        unsafe { free(std::ptr::null_mut(), old) };
    }
    raw::REDISMODULE_OK as c_int
}

unsafe extern "C" fn get_int(_name: *const c_char, privdata: *mut c_void) -> c_longlong {
    // SAFETY: privdata is the `&'static IntSetting` given at registration.
    let s = unsafe { &*(privdata as *const IntSetting) };
    s.get()
}

unsafe extern "C" fn set_int(
    _name: *const c_char,
    val: c_longlong,
    privdata: *mut c_void,
    _err: *mut *mut RedisModuleString,
) -> c_int {
    // SAFETY: as above. The server has already checked min/max.
    let s = unsafe { &*(privdata as *const IntSetting) };
    s.value.store(val, Ordering::Relaxed);
    raw::REDISMODULE_OK as c_int
}

/// Register every setting, then apply values from the config file / LOADEX.
pub fn register_all(ctx: &Ctx, settings: impl Iterator<Item = Setting>) -> Result<(), String> {
    let (Some(reg), Some(load)) = (unsafe { raw::RedisModule_RegisterNumericConfig }, unsafe {
        raw::RedisModule_LoadConfigs
    }) else {
        // Before 7.0 there are no module configs: the defaults apply.
        return Ok(());
    };
    let reg_str = unsafe { raw::RedisModule_RegisterStringConfig };
    for setting in settings {
        match setting {
            Setting::Int(s) => {
                s.value.store(s.default, Ordering::Relaxed);
                let privdata = (s as *const IntSetting).cast_mut().cast::<c_void>();
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
                if status != raw::REDISMODULE_OK as c_int {
                    return Err(format!(
                        "could not register config hacks.{}",
                        s.name.to_string_lossy()
                    ));
                }
            }
            Setting::Str(s) => {
                let Some(reg_str) = reg_str else { continue };
                // Apply the default first so the setting is valid even before the server sets it.
                (s.check)(s.default.to_bytes()).map_err(|e| format!("bad default: {e}"))?;
                if s.held.load(Ordering::Relaxed).is_null() {
                    if let Some(create) = unsafe { raw::RedisModule_CreateString } {
                        let d = s.default.to_bytes();
                        let held =
                            unsafe { create(std::ptr::null_mut(), d.as_ptr().cast(), d.len()) };
                        s.held.store(held, Ordering::Relaxed);
                    }
                }
                let privdata = (s as *const StrSetting).cast_mut().cast::<c_void>();
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
                if status != raw::REDISMODULE_OK as c_int {
                    return Err(format!(
                        "could not register config hacks.{}",
                        s.name.to_string_lossy()
                    ));
                }
            }
        }
    }
    if unsafe { load(ctx.raw()) } != raw::REDISMODULE_OK as c_int {
        return Err("invalid hacks.* configuration value".into());
    }
    Ok(())
}
