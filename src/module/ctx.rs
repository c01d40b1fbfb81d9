//! A thin, panic-free wrapper over the raw command context: replies, the clock, keyspace
//! signals and replication of effects.

use std::ffi::CString;
use std::os::raw::{c_int, c_long, c_longlong};

use redis_module::raw::RedisModuleCtx;

use super::args::RStr;

use super::error::CmdError;
use super::ffi::{has_api, rm};

/// The context of one server callback. Every method passes `raw` to the server, so a `Ctx`
/// only exists for the callback whose context it wraps (see [`Ctx::from_raw`]).
pub struct Ctx {
    raw: *mut RedisModuleCtx,
}

impl Ctx {
    /// Wrap the context the server passed to a callback.
    ///
    /// # Safety
    /// `raw` must be the live context of the current callback (command, blocked-client
    /// reply/timeout/disconnect, timer, event, or the load context), and the `Ctx` must not
    /// be used after that callback returns.
    pub unsafe fn from_raw(raw: *mut RedisModuleCtx) -> Self {
        Ctx { raw }
    }

    pub fn raw(&self) -> *mut RedisModuleCtx {
        self.raw
    }

    /// The server clock in microseconds since the Unix epoch. Handlers read it once and pass
    /// it down. Redis 7.2+ offers the cached time the server itself uses for this command
    /// (microsecond precision, same value Redis uses to expire keys); 7.0 offers milliseconds.
    pub fn now_us(&self) -> Result<i64, CmdError> {
        if has_api!(RedisModule_CachedMicroseconds) {
            let cached = rm!(RedisModule_CachedMicroseconds);
            // SAFETY: an API function checked present by `rm!`; it takes no arguments.
            return Ok(unsafe { cached() });
        }
        let ms = rm!(RedisModule_Milliseconds);
        // SAFETY: an API function checked present by `rm!`; it takes no arguments.
        Ok(unsafe { ms() }.saturating_mul(1000))
    }

    /// The database the call works in (`SELECT`).
    pub fn selected_db(&self) -> Result<i32, CmdError> {
        let f = rm!(RedisModule_GetSelectedDb);
        // SAFETY: `self.raw` is the live context of the current callback (`from_raw`).
        Ok(unsafe { f(self.raw) })
    }

    // ---- replies -------------------------------------------------------------------------

    pub fn reply_array(&self, len: usize) -> Result<(), CmdError> {
        let f = rm!(RedisModule_ReplyWithArray);
        // SAFETY: `self.raw` is the live context of the current callback (`from_raw`).
        unsafe { f(self.raw, c_long::try_from(len).unwrap_or(c_long::MAX)) };
        Ok(())
    }

    /// A map of `len` pairs: a RESP3 map, or a flat array of 2*len under RESP2.
    pub fn reply_map(&self, len: usize) -> Result<(), CmdError> {
        let f = rm!(RedisModule_ReplyWithMap);
        // SAFETY: `self.raw` is the live context of the current callback (`from_raw`).
        unsafe { f(self.raw, c_long::try_from(len).unwrap_or(c_long::MAX)) };
        Ok(())
    }

    pub fn reply_i64(&self, v: i64) -> Result<(), CmdError> {
        let f = rm!(RedisModule_ReplyWithLongLong);
        // SAFETY: `self.raw` is the live context of the current callback (`from_raw`).
        unsafe { f(self.raw, v as c_longlong) };
        Ok(())
    }

    pub fn reply_null(&self) -> Result<(), CmdError> {
        let f = rm!(RedisModule_ReplyWithNull);
        // SAFETY: `self.raw` is the live context of the current callback (`from_raw`).
        unsafe { f(self.raw) };
        Ok(())
    }

    /// User data always goes back as a bulk string (a simple string cannot carry CR/LF/NUL).
    pub fn reply_bulk(&self, bytes: &[u8]) -> Result<(), CmdError> {
        let f = rm!(RedisModule_ReplyWithStringBuffer);
        // SAFETY: live context (`from_raw`); `bytes` is valid for `bytes.len()` bytes during
        // the call, and the server copies them into the reply.
        unsafe { f(self.raw, bytes.as_ptr().cast(), bytes.len()) };
        Ok(())
    }

    pub fn reply_ok(&self) -> Result<(), CmdError> {
        let f = rm!(RedisModule_ReplyWithSimpleString);
        // SAFETY: live context (`from_raw`); a static NUL-terminated string.
        unsafe { f(self.raw, c"OK".as_ptr()) };
        Ok(())
    }

    /// Send an error reply. Never fails: a message with a NUL byte is cut at the NUL.
    pub fn reply_error(&self, err: &CmdError) {
        // SAFETY: copy of an API-table entry, written once at load (see `ffi::rm!`).
        let Some(f) = (unsafe { redis_module::raw::RedisModule_ReplyWithError }) else {
            return;
        };
        let text = err.text();
        let text = text.split('\0').next().unwrap_or("ERR");
        if let Ok(c) = CString::new(text) {
            // SAFETY: live context (`from_raw`); `c` is NUL-terminated and outlives the call
            // (the server copies it).
            unsafe { f(self.raw, c.as_ptr()) };
        }
    }

    /// `REDISMODULE_CTX_FLAGS_*` of the current call.
    pub fn flags(&self) -> Result<u32, CmdError> {
        let f = rm!(RedisModule_GetContextFlags);
        // SAFETY: `self.raw` is the live context of the current callback (`from_raw`).
        Ok(unsafe { f(self.raw) } as u32)
    }

    /// True while applying the master's stream or replaying the AOF: such writes must apply
    /// whatever this server's own limits say, or the copies would diverge.
    pub fn is_replaying(&self) -> Result<bool, CmdError> {
        let f = self.flags()?;
        Ok(f & (redis_module::raw::REDISMODULE_CTX_FLAGS_REPLICATED
            | redis_module::raw::REDISMODULE_CTX_FLAGS_LOADING)
            != 0)
    }

    /// For internal effect commands, which only the master's stream and AOF loading may
    /// run: `refusal` for anyone else (a client could otherwise bypass the checks of the
    /// public command whose effects they carry).
    pub fn replaying_or(&self, refusal: CmdError) -> Result<(), CmdError> {
        if self.is_replaying()? {
            Ok(())
        } else {
            Err(refusal)
        }
    }

    // ---- keyspace side effects ----------------------------------------------------------

    /// Tell WATCH and client-side caching that `key` changed. The module disables implicit
    /// signals (see `lib.rs`), so a command that opens a key for writing but changes nothing
    /// (a denied hit) does not abort other clients' transactions.
    pub fn signal_modified(&self, key: RStr) -> Result<(), CmdError> {
        let f = rm!(RedisModule_SignalModifiedKey);
        // SAFETY: live context (`from_raw`); `key` is a server string valid for this
        // callback (an argument, or one the caller owns: see `RStr`).
        unsafe { f(self.raw, key.as_ptr()) };
        Ok(())
    }

    /// A keyspace notification (`notify-keyspace-events`), e.g. class STRING, event
    /// `hack.ratehit`.
    pub fn notify(
        &self,
        class: c_int,
        event: &'static std::ffi::CStr,
        key: RStr,
    ) -> Result<(), CmdError> {
        let f = rm!(RedisModule_NotifyKeyspaceEvent);
        // SAFETY: live context (`from_raw`); `event` is a static C string, `key` a server
        // string valid for this callback (see `RStr`).
        unsafe { f(self.raw, class, event.as_ptr(), key.as_ptr()) };
        Ok(())
    }
}
