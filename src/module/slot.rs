//! Cluster slot ownership as the module can see it, for code that runs outside a command on a
//! key it did not declare (waiter queues re-checked from timers and events).

use std::os::raw::{c_char, c_int};

use redis_module::raw;

use super::ctx::Ctx;

/// In Cluster: whether this node serves `key`'s slot now. `RedisModule_Call` refuses a
/// command on a key of a slot served elsewhere (or being migrated away).
pub fn key_is_local(ctx: &Ctx, key: &[u8]) -> bool {
    // SAFETY: copies of API-table entries, written once at load (see `ffi::rm!`).
    let (Some(call), Some(free)) = (unsafe { raw::RedisModule_Call }, unsafe {
        raw::RedisModule_FreeCallReply
    }) else {
        return true;
    };
    // SAFETY: a live context; format `b` matches the varargs: `key` as pointer + `size_t`
    // length, valid during the call (the server copies it into the command's argv).
    let reply = unsafe {
        call(
            ctx.raw(),
            c"EXISTS".as_ptr(),
            c"b".as_ptr(),
            key.as_ptr().cast::<c_char>(),
            key.len(),
        )
    };
    if reply.is_null() {
        return false;
    }
    // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
    let ok = match unsafe { raw::RedisModule_CallReplyType } {
        // SAFETY: `reply` is the non-null reply `Call` returned, not yet freed.
        Some(ty) => (unsafe { ty(reply) }) != raw::REDISMODULE_REPLY_ERROR as c_int,
        None => true,
    };
    // SAFETY: `reply` is ours (no automatic memory) and freed here, once.
    unsafe { free(reply) };
    ok
}
