//! The `INFO hacks` section: module-wide counters, then each family's counters and gauges,
//! in the order of the family table given at load.

use std::os::raw::{c_int, c_longlong};
use std::sync::OnceLock;

use redis_module::raw::{self, RedisModuleInfoCtx};

use super::family::Family;
use super::stats::{field_name, Field, FIELDS as MODULE_FIELDS};

static FAMILIES: OnceLock<&'static [&'static Family]> = OnceLock::new();

/// Register the section (module load only).
pub fn register(ctx: &super::ctx::Ctx, families: &'static [&'static Family]) {
    let _ = FAMILIES.set(families);
    // SAFETY: a function pointer read from the API table bound at load.
    if let Some(reg) = unsafe { raw::RedisModule_RegisterInfoFunc } {
        // SAFETY: called at load with the load context; the callback is a plain extern fn.
        unsafe { reg(ctx.raw(), Some(info_callback)) };
    }
}

/// Registered with `RedisModule_RegisterInfoFunc`.
///
/// # Safety
/// Called by the server with a valid info context.
unsafe extern "C" fn info_callback(ctx: *mut RedisModuleInfoCtx, _for_crash_report: c_int) {
    super::guard::guarded("INFO hacks", || add_fields(ctx));
}

fn add_fields(ctx: *mut RedisModuleInfoCtx) {
    // SAFETY: function pointers read from the API table bound at load.
    let (Some(section), Some(field)) = (unsafe { raw::RedisModule_InfoAddSection }, unsafe {
        raw::RedisModule_InfoAddFieldLongLong
    }) else {
        return;
    };
    let put = |name: &std::ffi::CStr, v: u64| {
        let v = c_longlong::try_from(v).unwrap_or(c_longlong::MAX);
        // SAFETY: `ctx` is the server's info context for this call; `name` is NUL-terminated.
        unsafe { field(ctx, name.as_ptr(), v) };
    };
    // An empty name selects the module's default section, named after the module: `hacks`.
    // SAFETY: as above; the empty C string is static.
    unsafe { section(ctx, c"".as_ptr()) };
    let counters = |fields: &[Field]| {
        for (name, counter) in fields {
            if let Some(name) = field_name(name) {
                put(&name, counter.get());
            }
        }
    };
    counters(MODULE_FIELDS);
    for family in FAMILIES.get().copied().unwrap_or(&[]) {
        counters(family.info);
        for (name, gauge) in family.gauges {
            put(name, gauge());
        }
    }
}
