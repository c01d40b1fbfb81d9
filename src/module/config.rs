//! Module settings, visible as `CONFIG GET/SET hacks.<name>` and settable at load time with
//! `MODULE LOADEX ... CONFIG hacks.<name> <value>` or a `hacks.<name> <value>` line in
//! redis.conf. Values live in atomics read on the hot path without locking.

use std::ffi::{c_void, CStr};
use std::os::raw::{c_char, c_int, c_longlong, c_uint};
use std::sync::atomic::{AtomicI64, Ordering};

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

/// Every setting, registered at load.
pub static SETTINGS: &[&IntSetting] = &[&BUFFER_MAX_MEMBERS];

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
    if unsafe { load(ctx.raw()) } != raw::REDISMODULE_OK as c_int {
        return Err("invalid hacks.* configuration value".into());
    }
    Ok(())
}
