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
    pub value: &'static AtomicI64,
}

impl IntSetting {
    pub fn get(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// `hacks.buffer-max-members`: pending members one write buffer may hold.
pub static BUFFER_MAX_MEMBERS_VALUE: AtomicI64 = AtomicI64::new(1_000_000);
pub static BUFFER_MAX_MEMBERS: IntSetting = IntSetting {
    name: c"buffer-max-members",
    default: 1_000_000,
    min: 1,
    max: i64::MAX,
    value: &BUFFER_MAX_MEMBERS_VALUE,
};

/// `hacks.ts-max-range-points`: most points one HACK.TSRANGE reply may hold.
pub static TS_MAX_RANGE_POINTS_VALUE: AtomicI64 = AtomicI64::new(100_000);
pub static TS_MAX_RANGE_POINTS: IntSetting = IntSetting {
    name: c"ts-max-range-points",
    default: 100_000,
    min: 1,
    max: 100_000_000,
    value: &TS_MAX_RANGE_POINTS_VALUE,
};

/// Every integer setting, registered at load.
pub static SETTINGS: &[&IntSetting] = &[&BUFFER_MAX_MEMBERS, &TS_MAX_RANGE_POINTS];

/// One string setting: validated (and parsed) by `check` before it is accepted.
pub struct StrSetting {
    pub name: &'static CStr,
    pub default: &'static CStr,
    pub check: fn(&[u8]) -> Result<(), String>,
    /// The current value, held for `CONFIG GET` (a retained server string).
    pub held: &'static AtomicPtr<RedisModuleString>,
}

/// `hacks.ts-default-rollups`: rollups of series created implicitly by HACK.TSINCR.
pub static TS_DEFAULT_ROLLUPS_HELD: AtomicPtr<RedisModuleString> =
    AtomicPtr::new(std::ptr::null_mut());
pub static TS_DEFAULT_ROLLUPS: StrSetting = StrSetting {
    name: c"ts-default-rollups",
    default: c"10s:1d,1h:90d,1d:2y",
    check: crate::timeseries::defaults::set,
    held: &TS_DEFAULT_ROLLUPS_HELD,
};

pub static STR_SETTINGS: &[&StrSetting] = &[&TS_DEFAULT_ROLLUPS];

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
pub fn register_all(ctx: &Ctx) -> Result<(), String> {
    let (Some(reg), Some(load)) = (unsafe { raw::RedisModule_RegisterNumericConfig }, unsafe {
        raw::RedisModule_LoadConfigs
    }) else {
        // Before 7.0 there are no module configs: the defaults apply.
        return Ok(());
    };
    for s in SETTINGS {
        s.value.store(s.default, Ordering::Relaxed);
        let privdata = (*s as *const IntSetting).cast_mut().cast::<c_void>();
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
    if let Some(reg_str) = unsafe { raw::RedisModule_RegisterStringConfig } {
        for s in STR_SETTINGS {
            // Apply the default first so the setting is valid even before the server sets it.
            (s.check)(s.default.to_bytes()).map_err(|e| format!("bad default: {e}"))?;
            if s.held.load(Ordering::Relaxed).is_null() {
                if let Some(create) = unsafe { raw::RedisModule_CreateString } {
                    let d = s.default.to_bytes();
                    let held = unsafe { create(std::ptr::null_mut(), d.as_ptr().cast(), d.len()) };
                    s.held.store(held, Ordering::Relaxed);
                }
            }
            let privdata = (*s as *const StrSetting).cast_mut().cast::<c_void>();
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
    if unsafe { load(ctx.raw()) } != raw::REDISMODULE_OK as c_int {
        return Err("invalid hacks.* configuration value".into());
    }
    Ok(())
}
