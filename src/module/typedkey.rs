//! A key holding one of this module's data types, opened through the low-level key API.

use std::ffi::{c_void, CStr};
use std::marker::PhantomData;
use std::ops::RangeInclusive;
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

/// A data type whose values are `Box<T>`: its name, its RDB encodings, and the server's
/// handle once registered.
pub struct DataType<T> {
    /// The server's name for the type: exactly 9 characters.
    pub name: &'static CStr,
    /// For log lines: "series", "lock", ...
    pub what: &'static str,
    /// The oldest encoding this build still reads, and the one it writes (`load` gets the
    /// version it reads).
    encodings: (c_int, c_int),
    ptr: AtomicPtr<RedisModuleType>,
    _t: PhantomData<fn() -> T>,
}

impl<T> DataType<T> {
    pub const fn new(
        name: &'static CStr,
        what: &'static str,
        encodings: RangeInclusive<c_int>,
    ) -> Self {
        DataType {
            name,
            what,
            encodings: (*encodings.start(), *encodings.end()),
            ptr: AtomicPtr::new(std::ptr::null_mut()),
            _t: PhantomData,
        }
    }

    /// The encodings this build reads; the last is the one it writes.
    pub fn encodings(&self) -> RangeInclusive<c_int> {
        self.encodings.0..=self.encodings.1
    }

    /// Record the handle `CreateDataType` returned for `T` (only `datatype::register` may:
    /// [`TypedKey`] trusts it to mean "values are `Box<T>`").
    pub(super) fn set(&self, ty: *mut RedisModuleType) {
        self.ptr.store(ty, Ordering::Relaxed);
    }

    pub fn get(&self) -> *mut RedisModuleType {
        self.ptr.load(Ordering::Relaxed)
    }
}

/// An open key of type `T` (or empty). `key` is null (a missing key opened read-only) or a
/// handle from `OpenKey` on the current callback's context, closed on drop; like `Ctx`, a
/// `TypedKey` is not kept past the callback.
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
        // SAFETY: live context (`Ctx::from_raw`); `name` is a server string valid for this
        // callback (see `RStr`).
        let key = unsafe { open(ctx.raw(), name.as_ptr(), mode as c_int) };
        if key.is_null() {
            // A read-only open of a missing key may return NULL on some versions.
            return Ok(TypedKey { key, ty });
        }
        let handle = TypedKey { key, ty };
        let kind = rm!(RedisModule_KeyType);
        // SAFETY: `key` is a non-null open key handle.
        match unsafe { kind(key) } as isize {
            REDISMODULE_KEYTYPE_EMPTY => Ok(handle),
            REDISMODULE_KEYTYPE_MODULE => {
                let get_type = rm!(RedisModule_ModuleTypeGetType);
                // SAFETY: `key` is a non-null open key holding a module value.
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
        // SAFETY: `self.key` is a non-null open key; for an empty key the server returns null.
        // `open` checked the key is empty or holds our type, whose values are `Box<T>`.
        Ok(unsafe { get(self.key) }.cast::<T>())
    }

    pub fn get(&self) -> Result<Option<&T>, CmdError> {
        // SAFETY: null or the `Box<T>` the server stores for this key (`value_ptr`); it lives
        // while the key is open, and the borrow of `self` keeps it from being replaced,
        // deleted or borrowed mutably through this handle meanwhile.
        Ok(unsafe { self.value_ptr()?.as_ref() })
    }

    pub fn get_mut(&mut self) -> Result<Option<&mut T>, CmdError> {
        // SAFETY: as in `get`; `&mut self` makes this the only borrow of the value through
        // this handle (no command opens one key twice for writing).
        Ok(unsafe { self.value_ptr()?.as_mut() })
    }

    /// Store a new value in an empty key (opened for writing) and return it.
    pub fn create(&mut self, value: T) -> Result<&mut T, CmdError> {
        let set = rm!(RedisModule_ModuleTypeSetValue);
        let raw = Box::into_raw(Box::new(value));
        if self.key.is_null()
            // SAFETY: `self.key` is a non-null key opened for writing; `self.ty` is `T`'s
            // registered type, and `raw` a `Box<T>` whose ownership passes to the server on
            // success (freed later through `datatype::free`).
            || unsafe { set(self.key, self.ty.get(), raw.cast::<c_void>()) }
                != REDISMODULE_OK as c_int
        {
            // The server did not take ownership: free it here.
            // SAFETY: `raw` came from `Box::into_raw` just above and the server refused it,
            // so this is its only owner.
            drop(unsafe { Box::from_raw(raw) });
            return Err(CmdError::Static(
                "ERR internal error: could not store the value",
            ));
        }
        // SAFETY: the server now owns `raw` and keeps it alive while the key is open; the
        // `&mut self` borrow keeps it from being replaced or deleted through this handle
        // while the reference lives.
        Ok(unsafe { &mut *raw })
    }

    /// The absolute expiry in Unix ms, or `None` when the key has no expiry (or is missing).
    pub fn abs_expire_ms(&self) -> Result<Option<i64>, CmdError> {
        if self.key.is_null() {
            return Ok(None);
        }
        let get = rm!(RedisModule_GetAbsExpire);
        // SAFETY: `self.key` is a non-null open key.
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
                // SAFETY: `self.key` is a non-null open key (an empty one is refused).
                unsafe { expire(self.key, at) }
            }
            None => {
                let expire = rm!(RedisModule_SetExpire);
                // SAFETY: as above.
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
        // SAFETY: `self.key` is a non-null open key (`&mut self`: no borrowed value is alive;
        // the server frees it through `datatype::free`).
        unsafe { del(self.key) };
        Ok(())
    }
}

impl<T> Drop for TypedKey<'_, T> {
    fn drop(&mut self) {
        if self.key.is_null() {
            return;
        }
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        if let Some(close) = unsafe { redis_module::raw::RedisModule_CloseKey } {
            // SAFETY: `self.key` is a non-null handle from `OpenKey`, closed only here, once.
            unsafe { close(self.key) };
        }
    }
}
