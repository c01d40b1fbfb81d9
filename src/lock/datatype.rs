//! The `hacks-lck` data type: a held lock's owner and fencing token (its expiry is the
//! key's own TTL, so `PEXPIRETIME`, RDB, `DUMP`/`RESTORE`, `COPY` and expiry by the server
//! need nothing special). Every callback is guarded: a panic here would abort the server.
//!
//! RDB encoding version 1: `owner, token`. Module aux data (before the keyspace): the
//! fencing-token high-water mark, so tokens keep increasing after a restart or a full sync
//! even for key names whose lock is gone.

use std::os::raw::c_int;

use crate::module::args::RStr;
use crate::module::datatype::ModuleType;
use crate::module::highwater::HighWater;
use crate::module::io::{Aof, Digest, Loader, Saver, StrVec};
use crate::module::typedkey::DataType;

use super::lease::Lock;
use super::token;

pub static LOCK_TYPE: DataType<Lock> = DataType::new(c"hacks-lck", "lock", 1..=1);

impl ModuleType for Lock {
    const TYPE: &'static DataType<Self> = &LOCK_TYPE;

    fn load(io: &Loader, _encver: c_int) -> Option<Self> {
        let owner = io.bytes()?;
        let token = io.unsigned()?;
        // What HACK.LOCK could never have stored (an empty owner, token 0) is refused, as
        // the AOF rewrite's HACK.LOCKSET would refuse it; a token no clock made (e.g. 2^64-1
        // in a crafted RESTORE) would pin every later token.
        if owner.is_empty() || token == 0 {
            return None;
        }
        token::observe(token).then_some(Lock {
            owner: owner.into(),
            token,
        })
    }

    fn save(&self, io: &Saver) {
        io.bytes(&self.owner);
        io.unsigned(self.token);
    }

    /// `HACK.LOCKSET key owner token`; the server follows it with the key's `PEXPIREAT`,
    /// as for every key with a TTL.
    fn rewrite(&self, aof: &Aof, key: RStr) {
        let mut args = StrVec::with_capacity(2);
        args.push(&self.owner);
        args.push_int(i128::from(self.token));
        aof.emit(c"HACK.LOCKSET", key, &mut args);
    }

    fn digest(&self, d: &Digest) {
        d.bytes(&self.owner);
        d.int(i64::try_from(self.token).unwrap_or(i64::MAX));
        d.end_sequence();
    }

    fn heap_bytes(&self) -> usize {
        Lock::heap_bytes(self)
    }

    fn deep_copy(&self) -> Self {
        self.clone()
    }

    /// The fencing-token mark travels in the RDB as this type's aux data.
    fn aux_mark() -> Option<&'static HighWater> {
        Some(token::mark())
    }
}
