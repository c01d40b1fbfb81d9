//! The `hacks-sem` data type: a semaphore's limit and holders. The key's own expiry is the
//! last lease's deadline, so the key vanishes with its last holder even if nothing runs.
//! Every callback is guarded (see `module/datatype.rs`).
//!
//! RDB encoding version 1: `limit, holder count`, then per holder `owner, permits, token,
//! deadline (signed, Unix ms), bound (0/1)`. The client id of a BOUND holder is never
//! written: it means nothing to another process (a restart, a replica, a RESTORE
//! elsewhere), so a loaded bound holder is bound to [`STALE`], which no connection has, and
//! is released at the key's next change or by the sweep after loading/promotion.
//! The fencing-token mark is saved by the lock type (`lock/datatype.rs`): one mark for both.

use std::os::raw::c_int;

use crate::lock::token;
use crate::module::args::RStr;
use crate::module::datatype::ModuleType;
use crate::module::io::{Aof, Digest, Loader, Saver, StrVec};
use crate::module::typedkey::DataType;

use super::holders::{Holder, Semaphore};
use super::parts::Loading;

pub static SEM_TYPE: DataType<Semaphore> = DataType::new(c"hacks-sem", "semaphore", 1..=1);

/// The client a BOUND holder is bound to once its real connection is unknown (loaded,
/// replicated, copied): no connection has this id (Redis counts ids up from 1).
pub const STALE: u64 = u64::MAX;

/// A holder's BOUND as it leaves this process: 1 bound, 0 not.
pub fn bound_flag(h: &Holder) -> u64 {
    u64::from(h.bound.is_some())
}

/// A BOUND flag as it arrives from outside this process.
pub fn bound_from_flag(flag: u64) -> Option<Option<u64>> {
    match flag {
        0 => Some(None),
        1 => Some(Some(STALE)),
        _ => None,
    }
}

impl ModuleType for Semaphore {
    const TYPE: &'static DataType<Self> = &SEM_TYPE;

    fn load(io: &Loader, _encver: c_int) -> Option<Self> {
        let limit = io.unsigned()?;
        let claimed = io.unsigned()?;
        let mut l = Loading::start(limit, claimed).ok()?;
        for _ in 0..claimed {
            let owner = io.bytes()?;
            let permits = io.unsigned()?;
            let token = io.unsigned()?;
            let expires_at_ms = io.signed()?;
            let bound = bound_from_flag(io.unsigned()?)?;
            // A token no clock made would pin every later token: refuse the value.
            if !token::observe(token) {
                return None;
            }
            l.push(Holder {
                owner,
                permits,
                token,
                expires_at_ms,
                bound,
            })
            .ok()?;
        }
        let sem = l.finish().ok()?;
        super::bound::loaded_stale(&sem);
        Some(sem)
    }

    fn save(&self, io: &Saver) {
        let (limit, holders) = self.to_parts();
        io.unsigned(limit);
        io.unsigned(holders.len() as u64);
        for h in holders {
            io.bytes(&h.owner);
            io.unsigned(h.permits);
            io.unsigned(h.token);
            io.signed(h.expires_at_ms);
            io.unsigned(bound_flag(h));
        }
    }

    /// `HACK.SEMSET key limit [owner permits token deadline bound]...`; the server follows
    /// it with the key's `PEXPIREAT`.
    fn rewrite(&self, aof: &Aof, key: RStr) {
        let mut args = StrVec::with_capacity(1);
        super::effect::semset_args(self, &mut args);
        aof.emit(c"HACK.SEMSET", key, &mut args);
    }

    /// The state every node agrees on (a client id is local: only the BOUND flag counts).
    fn digest(&self, d: &Digest) {
        let (limit, holders) = self.to_parts();
        d.int(i64::try_from(limit).unwrap_or(i64::MAX));
        for h in holders {
            d.bytes(&h.owner);
            d.int(i64::try_from(h.permits).unwrap_or(i64::MAX));
            d.int(i64::try_from(h.token).unwrap_or(i64::MAX));
            d.int(h.expires_at_ms);
            d.int(i64::from(h.bound.is_some()));
        }
        d.end_sequence();
    }

    fn heap_bytes(&self) -> usize {
        Semaphore::heap_bytes(self)
    }

    fn free_effort(&self) -> usize {
        self.len().max(1)
    }

    /// COPY: the copy's BOUND holders stay bound (`bound.rs` indexes the copy under the
    /// same connections on the `copy_to` event).
    fn deep_copy(&self) -> Self {
        self.clone()
    }
}
