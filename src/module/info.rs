//! The `INFO hacks` section: module-wide counters, then each family's.

use std::os::raw::{c_int, c_longlong};

use redis_module::raw::{self, RedisModuleInfoCtx};

use super::stats::{Field, MODULE_FIELDS};

/// Every family's counters, in the order they appear in `INFO hacks`.
const FAMILIES: &[&[Field]] = &[
    MODULE_FIELDS,
    crate::ratelimit::stats::FIELDS,
    crate::buffer::stats::FIELDS,
    crate::timeseries::stats::FIELDS,
    crate::lock::stats::FIELDS,
];

/// Registered with `RedisModule_RegisterInfoFunc`.
///
/// # Safety
/// Called by the server with a valid info context.
pub unsafe extern "C" fn info_callback(ctx: *mut RedisModuleInfoCtx, _for_crash_report: c_int) {
    let (Some(section), Some(field)) = (unsafe { raw::RedisModule_InfoAddSection }, unsafe {
        raw::RedisModule_InfoAddFieldLongLong
    }) else {
        return;
    };
    // An empty name selects the module's default section, named after the module: `hacks`.
    unsafe { section(ctx, c"".as_ptr()) };
    for fields in FAMILIES {
        for (name, counter) in *fields {
            let v = c_longlong::try_from(counter.get()).unwrap_or(c_longlong::MAX);
            unsafe { field(ctx, name.as_ptr(), v) };
        }
    }
    // Gauges: what is true now, not counted since load.
    let waiting =
        c_longlong::try_from(crate::lock::waiters::waiting_now()).unwrap_or(c_longlong::MAX);
    unsafe { field(ctx, c"lock_waiters_now".as_ptr(), waiting) };
}
