//! A key holding one of this module's data types, opened through the low-level key API.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicPtr, Ordering};

use redis_module::raw::{
    RedisModuleKey, RedisModuleType, REDISMODULE_KEYTYPE_EMPTY, REDISMODULE_KEYTYPE_MODULE,
    REDISMODULE_OK, REDISMODULE_READ, REDISMODULE_WRITE,
};

use super::args::RStr;
use super::ctx::Ctx;
use super::error::{CmdError, WRONGTYPE};
use super::ffi::rm;

/// What the server allocates around every module value (its object header and the
/// type/value pair): part of what a key costs, so every type's `mem_usage` adds it.
pub const VALUE_WRAPPER_BYTES: usize = 32;

/// The server's handle of a registered data type whose values are `Box<T>`.
pub struct DataType<T> {
    ptr: AtomicPtr<RedisModuleType>,
    _t: PhantomData<fn() -> T>,
}

impl<T> DataType<T> {
    pub const fn new() -> Self {
        DataType {
            ptr: AtomicPtr::new(std::ptr::null_mut()),
            _t: PhantomData,
        }
    }

    pub fn set(&self, ty: *mut RedisModuleType) {
        self.ptr.store(ty, Ordering::Relaxed);
    }

    pub fn get(&self) -> *mut RedisModuleType {
        self.ptr.load(Ordering::Relaxed)
    }
}

impl<T> Default for DataType<T> {
    fn default() -> Self {
        Self::new()
    }
}

pub struct TypedKey<'t, T> {
    key: *mut RedisModuleKey,
    ty: &'t DataType<T>,
}

impl<'t, T> TypedKey<'t, T> {
    /// Open `name`; `WRONGTYPE` unless it is missing or holds type `ty`.
    pub fn open(ctx: &Ctx, name: RStr, ty: &'t DataType<T>, write: bool) -> Result<Self, CmdError> {
        let open = rm!(RedisModule_OpenKey);
        let mode = if write {
            REDISMODULE_READ | REDISMODULE_WRITE
        } else {
            REDISMODULE_READ
        };
        let key = unsafe { open(ctx.raw(), name.as_ptr(), mode as c_int) };
        if key.is_null() {
            // A read-only open of a missing key may return NULL on some versions.
            return Ok(TypedKey { key, ty });
        }
        let handle = TypedKey { key, ty };
        let kind = rm!(RedisModule_KeyType);
        match unsafe { kind(key) } as isize {
            REDISMODULE_KEYTYPE_EMPTY => Ok(handle),
            REDISMODULE_KEYTYPE_MODULE => {
                let get_type = rm!(RedisModule_ModuleTypeGetType);
                if unsafe { get_type(key) } == ty.get() {
                    Ok(handle)
                } else {
                    Err(WRONGTYPE)
                }
            }
            _ => Err(WRONGTYPE),
        }
    }

    fn value_ptr(&self) -> Result<*mut T, CmdError> {
        if self.key.is_null() {
            return Ok(std::ptr::null_mut());
        }
        let get = rm!(RedisModule_ModuleTypeGetValue);
        Ok(unsafe { get(self.key) }.cast::<T>())
    }

    pub fn get(&self) -> Result<Option<&T>, CmdError> {
        // SAFETY: the server stores the `Box<T>` we gave it; it lives while the key is open.
        Ok(unsafe { self.value_ptr()?.as_ref() })
    }

    pub fn get_mut(&mut self) -> Result<Option<&mut T>, CmdError> {
        Ok(unsafe { self.value_ptr()?.as_mut() })
    }

    /// Store a new value in an empty key (opened for writing) and return it.
    pub fn create(&mut self, value: T) -> Result<&mut T, CmdError> {
        let set = rm!(RedisModule_ModuleTypeSetValue);
        let raw = Box::into_raw(Box::new(value));
        if self.key.is_null()
            || unsafe { set(self.key, self.ty.get(), raw.cast::<c_void>()) }
                != REDISMODULE_OK as c_int
        {
            // The server did not take ownership: free it here.
            drop(unsafe { Box::from_raw(raw) });
            return Err(CmdError::Static(
                "ERR internal error: could not store the value",
            ));
        }
        // SAFETY: the server now owns `raw` and keeps it alive while the key is open.
        Ok(unsafe { &mut *raw })
    }

    /// The absolute expiry in Unix ms, or `None` when the key has no expiry (or is missing).
    pub fn abs_expire_ms(&self) -> Result<Option<i64>, CmdError> {
        if self.key.is_null() {
            return Ok(None);
        }
        let get = rm!(RedisModule_GetAbsExpire);
        let at = unsafe { get(self.key) };
        Ok((at >= 0).then_some(at))
    }

    /// Set the absolute expiry (Unix ms) of the key, or remove it (`None`).
    pub fn set_abs_expire(&mut self, at_ms: Option<i64>) -> Result<(), CmdError> {
        if self.key.is_null() {
            return Err(CmdError::Static("ERR internal error: could not set expiry"));
        }
        let status = match at_ms {
            Some(at) => {
                let expire = rm!(RedisModule_SetAbsExpire);
                unsafe { expire(self.key, at) }
            }
            None => {
                let expire = rm!(RedisModule_SetExpire);
                unsafe { expire(self.key, redis_module::raw::REDISMODULE_NO_EXPIRE.into()) }
            }
        };
        if status != REDISMODULE_OK as c_int {
            return Err(CmdError::Static("ERR internal error: could not set expiry"));
        }
        Ok(())
    }

    /// Delete the key (the server frees the value through the type's `free`).
    pub fn delete(&mut self) -> Result<(), CmdError> {
        if self.key.is_null() {
            return Ok(());
        }
        let del = rm!(RedisModule_DeleteKey);
        unsafe { del(self.key) };
        Ok(())
    }
}

impl<T> Drop for TypedKey<'_, T> {
    fn drop(&mut self) {
        if self.key.is_null() {
            return;
        }
        if let Some(close) = unsafe { redis_module::raw::RedisModule_CloseKey } {
            unsafe { close(self.key) };
        }
    }
}
