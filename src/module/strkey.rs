//! A string key opened through the low-level key API (no `RM_Call`, no copies on the read
//! path). The key is closed when the handle drops.

use std::os::raw::c_int;

use redis_module::raw::{
    RedisModuleKey, REDISMODULE_KEYTYPE_EMPTY, REDISMODULE_KEYTYPE_STRING, REDISMODULE_OK,
    REDISMODULE_READ, REDISMODULE_WRITE,
};

use super::args::RStr;
use super::ctx::Ctx;
use super::error::{CmdError, WRONGTYPE};
use super::ffi::rm;

/// An open string key (or empty): a non-null handle from `OpenKey` on the current
/// callback's context, closed on drop; like `Ctx`, not kept past the callback.
pub struct StrKey {
    key: *mut RedisModuleKey,
}

impl StrKey {
    /// Open `name` for reading and writing. Fails with `WRONGTYPE` unless the key is
    /// missing or a string.
    pub fn open_rw(ctx: &Ctx, name: RStr) -> Result<Self, CmdError> {
        let open = rm!(RedisModule_OpenKey);
        let mode = (REDISMODULE_READ | REDISMODULE_WRITE) as c_int;
        // SAFETY: live context (`Ctx::from_raw`); `name` is a server string valid for this
        // callback (see `RStr`).
        let key = unsafe { open(ctx.raw(), name.as_ptr(), mode) };
        if key.is_null() {
            return Err(CmdError::Static("ERR internal error: could not open key"));
        }
        let handle = StrKey { key };
        let kind = rm!(RedisModule_KeyType);
        // SAFETY: `key` is a non-null open key handle.
        let t = unsafe { kind(key) } as isize;
        if t != REDISMODULE_KEYTYPE_EMPTY && t != REDISMODULE_KEYTYPE_STRING {
            return Err(WRONGTYPE);
        }
        Ok(handle)
    }

    pub fn is_empty(&self) -> Result<bool, CmdError> {
        let kind = rm!(RedisModule_KeyType);
        // SAFETY: `self.key` is a non-null open key (`open_rw`).
        Ok(unsafe { kind(self.key) } as isize == REDISMODULE_KEYTYPE_EMPTY)
    }

    /// The value, or `None` for a missing key. The slice is valid until the key is written.
    pub fn read(&self) -> Result<Option<&[u8]>, CmdError> {
        if self.is_empty()? {
            return Ok(None);
        }
        let dma = rm!(RedisModule_StringDMA);
        let mut len = 0usize;
        // SAFETY: `self.key` is a non-null open key holding a string; `len` is a valid
        // out-pointer.
        let ptr = unsafe { dma(self.key, &mut len, REDISMODULE_READ as c_int) };
        if ptr.is_null() {
            return Err(WRONGTYPE);
        }
        // SAFETY: DMA returned a non-null pointer to the string's `len` bytes; they stay put
        // while the key is open and unwritten, which the `&self` borrow ensures (writes and
        // deletion take `&mut self`).
        Ok(Some(unsafe {
            std::slice::from_raw_parts(ptr.cast::<u8>(), len)
        }))
    }

    /// The absolute expiry in Unix ms, or `None` when the key has no expiry (or is missing).
    pub fn abs_expire_ms(&self) -> Result<Option<i64>, CmdError> {
        let get = rm!(RedisModule_GetAbsExpire);
        // SAFETY: `self.key` is a non-null open key.
        let at = unsafe { get(self.key) };
        Ok((at >= 0).then_some(at))
    }

    /// Replace the value in place (resize + copy: no new object when the size is stable).
    /// An existing expiry is kept.
    pub fn write(&mut self, value: &[u8]) -> Result<(), CmdError> {
        let truncate = rm!(RedisModule_StringTruncate);
        let dma = rm!(RedisModule_StringDMA);
        // SAFETY: `self.key` is a non-null key opened for writing, empty or a string.
        if unsafe { truncate(self.key, value.len()) } != REDISMODULE_OK as c_int {
            return Err(CmdError::Static("ERR internal error: could not write key"));
        }
        let mut len = 0usize;
        // SAFETY: as above; `len` is a valid out-pointer.
        let ptr = unsafe { dma(self.key, &mut len, REDISMODULE_WRITE as c_int) };
        if ptr.is_null() || len != value.len() {
            return Err(CmdError::Static("ERR internal error: could not write key"));
        }
        // SAFETY: DMA returned a writable buffer of exactly `len` bytes (checked equal to
        // `value.len()`), owned by the server, which cannot overlap `value`.
        unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), ptr.cast::<u8>(), len) };
        Ok(())
    }

    /// Set the absolute expiry (Unix ms) of an existing key.
    pub fn set_abs_expire(&mut self, at_ms: i64) -> Result<(), CmdError> {
        let expire = rm!(RedisModule_SetAbsExpire);
        // SAFETY: `self.key` is a non-null open key.
        if unsafe { expire(self.key, at_ms) } != REDISMODULE_OK as c_int {
            return Err(CmdError::Static("ERR internal error: could not set expiry"));
        }
        Ok(())
    }

    pub fn delete(&mut self) -> Result<(), CmdError> {
        let del = rm!(RedisModule_DeleteKey);
        // SAFETY: `self.key` is a non-null key opened for writing; `&mut self` means no slice
        // from `read` is alive.
        unsafe { del(self.key) };
        Ok(())
    }
}

impl Drop for StrKey {
    fn drop(&mut self) {
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        if let Some(close) = unsafe { redis_module::raw::RedisModule_CloseKey } {
            // SAFETY: `self.key` is a non-null handle from `OpenKey`, closed only here, once.
            unsafe { close(self.key) };
        }
    }
}

/// Whether `name` exists, whatever its type.
pub fn key_exists(ctx: &Ctx, name: RStr) -> Result<bool, CmdError> {
    let open = rm!(RedisModule_OpenKey);
    let kind = rm!(RedisModule_KeyType);
    let close = rm!(RedisModule_CloseKey);
    // SAFETY: live context (`Ctx::from_raw`); `name` is a server string valid for this
    // callback (see `RStr`).
    let key = unsafe { open(ctx.raw(), name.as_ptr(), REDISMODULE_READ as c_int) };
    if key.is_null() {
        return Ok(false);
    }
    // SAFETY: `key` is a non-null open key handle.
    let t = unsafe { kind(key) } as isize;
    // SAFETY: `key` is open and closed here, once; nothing uses it afterwards.
    unsafe { close(key) };
    Ok(t != REDISMODULE_KEYTYPE_EMPTY)
}
