//! RDB reading and writing for data types, with I/O errors as values (the module declares
//! `HANDLE_IO_ERRORS`, so a truncated stream reports an error instead of aborting), plus
//! digest and AOF helpers.

use std::ffi::CStr;
use std::os::raw::c_longlong;

use redis_module::raw::{self, RedisModuleDigest, RedisModuleIO, RedisModuleString};

use super::args::RStr;

// The four wrappers below hold the I/O handle the server passed to a data-type callback.
// Their fields are private to `module/`: only the callbacks in `datatype.rs` build them,
// from the handle of the current call, and families only ever borrow them for that call.

/// An RDB stream being written.
pub struct Saver(pub(super) *mut RedisModuleIO);

impl Saver {
    pub fn unsigned(&self, v: u64) {
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        if let Some(f) = unsafe { raw::RedisModule_SaveUnsigned } {
            // SAFETY: `self.0` is the live RDB handle of the current `rdb_save`/`aux_save`.
            unsafe { f(self.0, v) };
        }
    }
    pub fn signed(&self, v: i64) {
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        if let Some(f) = unsafe { raw::RedisModule_SaveSigned } {
            // SAFETY: `self.0` is the live RDB handle of the current `rdb_save`.
            unsafe { f(self.0, v) };
        }
    }
    pub fn bytes(&self, b: &[u8]) {
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        if let Some(f) = unsafe { raw::RedisModule_SaveStringBuffer } {
            // SAFETY: live RDB handle; `b` is valid for `b.len()` bytes during the call (the
            // server writes them out before returning).
            unsafe { f(self.0, b.as_ptr().cast(), b.len()) };
        }
    }
}

/// An RDB stream being read. Every getter returns `None` once the stream failed.
pub struct Loader(pub(super) *mut RedisModuleIO);

impl Loader {
    fn failed(&self) -> bool {
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        match unsafe { raw::RedisModule_IsIOError } {
            // SAFETY: `self.0` is the live RDB handle of the current `rdb_load`/`aux_load`.
            Some(f) => (unsafe { f(self.0) }) != 0,
            None => false,
        }
    }
    pub fn unsigned(&self) -> Option<u64> {
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        let f = unsafe { raw::RedisModule_LoadUnsigned }?;
        // SAFETY: live RDB handle; with `HANDLE_IO_ERRORS` a failed read returns 0 and sets
        // the error flag checked next, instead of aborting.
        let v = unsafe { f(self.0) };
        (!self.failed()).then_some(v)
    }
    pub fn signed(&self) -> Option<i64> {
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        let f = unsafe { raw::RedisModule_LoadSigned }?;
        // SAFETY: as in `unsigned`.
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
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        let load = unsafe { raw::RedisModule_LoadStringBuffer }?;
        // SAFETY: as above.
        let free = unsafe { raw::RedisModule_Free }?;
        let mut len = 0usize;
        // SAFETY: live RDB handle (as in `unsigned`); `len` is a valid out-pointer.
        let p = unsafe { load(self.0, &mut len) };
        if p.is_null() {
            return None;
        }
        // SAFETY: a non-null result is a buffer of `len` bytes the server allocated for us.
        let v = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }.to_vec();
        // SAFETY: that buffer is ours to free (with `RedisModule_Free`), once; `v` is a copy.
        unsafe { free(p.cast()) };
        (!self.failed()).then_some(v)
    }
}

/// `DEBUG DIGEST` input.
pub struct Digest(pub(super) *mut RedisModuleDigest);

impl Digest {
    pub fn bytes(&self, b: &[u8]) {
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        if let Some(f) = unsafe { raw::RedisModule_DigestAddStringBuffer } {
            // SAFETY: `self.0` is the live digest of the current `digest` callback; `b` is
            // valid for `b.len()` bytes during the call.
            unsafe { f(self.0, b.as_ptr().cast(), b.len()) };
        }
    }
    pub fn int(&self, v: i64) {
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        if let Some(f) = unsafe { raw::RedisModule_DigestAddLongLong } {
            // SAFETY: the live digest of the current `digest` callback.
            unsafe { f(self.0, v as c_longlong) };
        }
    }
    pub fn end_sequence(&self) {
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        if let Some(f) = unsafe { raw::RedisModule_DigestEndSequence } {
            // SAFETY: the live digest of the current `digest` callback.
            unsafe { f(self.0) };
        }
    }
}

/// Server strings built for one call (AOF rewrite, replication of explicit entries), freed
/// on drop. Every element is a string this vector created and owns (one reference each),
/// which is why the field is private to `module/`. A string the server could not create
/// marks the vector incomplete: [`replicate::command`](super::replicate::command) refuses
/// to send it and [`Aof::emit`] leaves it out (no line rather than a wrong one), so
/// callers push without checking each step.
pub struct StrVec(pub(super) Vec<*mut RedisModuleString>, bool);

impl StrVec {
    pub fn with_capacity(n: usize) -> Self {
        StrVec(Vec::with_capacity(n), false)
    }
    /// Whether a push failed since the vector was created or cleared.
    pub fn incomplete(&self) -> bool {
        self.1
    }
    /// Append a copy of `b` (if the server cannot create it, the vector is incomplete).
    pub fn push(&mut self, b: &[u8]) {
        let pushed = self.try_push(b);
        self.1 |= !pushed;
    }
    fn try_push(&mut self, b: &[u8]) -> bool {
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        let Some(create) = (unsafe { raw::RedisModule_CreateString }) else {
            return false;
        };
        // SAFETY: a NULL context is allowed (no automatic memory: `release` frees the
        // string); `b` is valid for `b.len()` bytes and the server copies them.
        let s = unsafe { create(std::ptr::null_mut(), b.as_ptr().cast(), b.len()) };
        if s.is_null() {
            return false;
        }
        self.0.push(s);
        true
    }
    /// Append the decimal form of `v`.
    pub fn push_int(&mut self, v: i128) {
        let mut buf = super::num::Buf::new();
        buf.push_int(v);
        self.push(buf.as_slice());
    }
    /// The first string, borrowed as an [`RStr`] (valid while `self` is alive and not
    /// cleared).
    pub fn first(&self) -> Option<RStr> {
        // SAFETY: every element is a live string owned by `self`; the `RStr` contract (not
        // kept past the owner) is the caller's, as for every `RStr`.
        self.0.first().map(|&s| unsafe { RStr::from_raw(s) })
    }
    /// The string at `i`, borrowed as an [`RStr`] (as [`StrVec::first`]).
    pub fn get(&self, i: usize) -> Option<RStr> {
        // SAFETY: as in `first`.
        self.0.get(i).map(|&s| unsafe { RStr::from_raw(s) })
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
        self.1 = false;
    }
    fn release(&mut self) {
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        if let Some(free) = unsafe { raw::RedisModule_FreeString } {
            for s in &self.0 {
                // SAFETY: each element is a string `push` created with a NULL context and this
                // vector owns; `clear` and `drop`, the only callers, empty or drop the vector
                // right after, so each is freed exactly once.
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
pub struct Aof(pub(super) *mut RedisModuleIO);

impl Aof {
    /// Emit one command: `cmd key args...`.
    /// Append `cmd key args...` to the rewritten AOF; nothing when `args` is incomplete.
    pub fn emit(&self, cmd: &CStr, key: RStr, args: &mut StrVec) {
        if args.incomplete() {
            return;
        }
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        let Some(emit) = (unsafe { raw::RedisModule_EmitAOF }) else {
            return;
        };
        // SAFETY: `self.0` is the live AOF handle of the current `aof_rewrite`; `cmd` is
        // NUL-terminated; format `sv`: the server string `key` (the callback's key), then an
        // array of `args.len()` strings owned by `args`, alive until after the call.
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
