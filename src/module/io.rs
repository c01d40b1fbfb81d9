//! RDB reading and writing for data types, with I/O errors as values (the module declares
//! `HANDLE_IO_ERRORS`, so a truncated stream reports an error instead of aborting), plus
//! digest and AOF helpers.

use std::ffi::CStr;
use std::os::raw::c_longlong;

use redis_module::raw::{self, RedisModuleDigest, RedisModuleIO, RedisModuleString};

use super::args::RStr;

/// An RDB stream being written.
pub struct Saver(pub *mut RedisModuleIO);

impl Saver {
    pub fn unsigned(&self, v: u64) {
        if let Some(f) = unsafe { raw::RedisModule_SaveUnsigned } {
            unsafe { f(self.0, v) };
        }
    }
    pub fn signed(&self, v: i64) {
        if let Some(f) = unsafe { raw::RedisModule_SaveSigned } {
            unsafe { f(self.0, v) };
        }
    }
    pub fn bytes(&self, b: &[u8]) {
        if let Some(f) = unsafe { raw::RedisModule_SaveStringBuffer } {
            unsafe { f(self.0, b.as_ptr().cast(), b.len()) };
        }
    }
}

/// An RDB stream being read. Every getter returns `None` once the stream failed.
pub struct Loader(pub *mut RedisModuleIO);

impl Loader {
    fn failed(&self) -> bool {
        match unsafe { raw::RedisModule_IsIOError } {
            Some(f) => (unsafe { f(self.0) }) != 0,
            None => false,
        }
    }
    pub fn unsigned(&self) -> Option<u64> {
        let f = unsafe { raw::RedisModule_LoadUnsigned }?;
        let v = unsafe { f(self.0) };
        (!self.failed()).then_some(v)
    }
    pub fn signed(&self) -> Option<i64> {
        let f = unsafe { raw::RedisModule_LoadSigned }?;
        let v = unsafe { f(self.0) };
        (!self.failed()).then_some(v)
    }
    /// A length-prefixed count, bounded so a corrupt stream cannot make us reserve terabytes.
    pub fn count(&self) -> Option<usize> {
        usize::try_from(self.unsigned()?)
            .ok()
            .filter(|n| *n < (1 << 40))
    }
    pub fn bytes(&self) -> Option<Vec<u8>> {
        let load = unsafe { raw::RedisModule_LoadStringBuffer }?;
        let free = unsafe { raw::RedisModule_Free }?;
        let mut len = 0usize;
        let p = unsafe { load(self.0, &mut len) };
        if p.is_null() || self.failed() {
            return None;
        }
        let v = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }.to_vec();
        unsafe { free(p.cast()) };
        Some(v)
    }
}

/// `DEBUG DIGEST` input.
pub struct Digest(pub *mut RedisModuleDigest);

impl Digest {
    pub fn bytes(&self, b: &[u8]) {
        if let Some(f) = unsafe { raw::RedisModule_DigestAddStringBuffer } {
            unsafe { f(self.0, b.as_ptr().cast(), b.len()) };
        }
    }
    pub fn int(&self, v: i64) {
        if let Some(f) = unsafe { raw::RedisModule_DigestAddLongLong } {
            unsafe { f(self.0, v as c_longlong) };
        }
    }
    pub fn end_sequence(&self) {
        if let Some(f) = unsafe { raw::RedisModule_DigestEndSequence } {
            unsafe { f(self.0) };
        }
    }
}

/// Server strings built for one call (AOF rewrite, replication of explicit entries), freed
/// on drop.
pub struct StrVec(pub Vec<*mut RedisModuleString>);

impl StrVec {
    pub fn with_capacity(n: usize) -> Self {
        StrVec(Vec::with_capacity(n))
    }
    /// Append a copy of `b`; false if the server could not create it.
    pub fn push(&mut self, b: &[u8]) -> bool {
        let Some(create) = (unsafe { raw::RedisModule_CreateString }) else {
            return false;
        };
        let s = unsafe { create(std::ptr::null_mut(), b.as_ptr().cast(), b.len()) };
        if s.is_null() {
            return false;
        }
        self.0.push(s);
        true
    }
    /// Append the decimal form of `v`.
    pub fn push_int(&mut self, v: i128) -> bool {
        let mut buf = super::num::Buf::new();
        buf.push_int(v);
        self.push(buf.as_slice())
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn clear(&mut self) {
        self.release();
        self.0.clear();
    }
    fn release(&mut self) {
        if let Some(free) = unsafe { raw::RedisModule_FreeString } {
            for s in &self.0 {
                unsafe { free(std::ptr::null_mut(), *s) };
            }
        }
    }
}

impl Drop for StrVec {
    fn drop(&mut self) {
        self.release();
    }
}

/// A rewritten AOF being written.
pub struct Aof(pub *mut RedisModuleIO);

impl Aof {
    /// Emit one command: `cmd key args...`.
    pub fn emit(&self, cmd: &CStr, key: RStr, args: &mut StrVec) {
        let Some(emit) = (unsafe { raw::RedisModule_EmitAOF }) else {
            return;
        };
        unsafe {
            emit(
                self.0,
                cmd.as_ptr(),
                c"sv".as_ptr(),
                key.as_ptr(),
                args.0.as_mut_ptr(),
                args.0.len(),
            )
        };
    }
}
