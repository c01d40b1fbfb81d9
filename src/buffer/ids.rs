//! Batch ids: never reused for the same key name, not after ACK, not after the key is
//! deleted and created again, not after a restart or a failover. One module-wide
//! [`HighWater`] mark (see `module/highwater.rs` for the scheme and its assumption), saved
//! in the RDB as the buffer type's aux data.

use crate::module::highwater::HighWater;

pub static BATCH_IDS: HighWater = HighWater::new();

/// The id a new batch gets now (taken by [`observe`] once the batch exists); an error once
/// the id space is exhausted, never an id handed out twice.
pub fn peek() -> Result<u64, crate::module::error::CmdError> {
    BATCH_IDS
        .peek()
        .ok_or(crate::module::error::CmdError::Static(
            "ERR batch ids are exhausted on this server (the id mark reached 2^63-1)",
        ))
}

/// Raise the mark to at least `id`; false (nothing changed) for an id no clock could have
/// produced, which the caller refuses.
#[must_use]
pub fn observe(id: u64) -> bool {
    BATCH_IDS.observe(id)
}

pub fn last() -> u64 {
    BATCH_IDS.last()
}
