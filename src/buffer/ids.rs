//! Batch ids: never reused for the same key name, not after ACK, not after the key is
//! deleted and created again, not after a restart or a failover. One module-wide
//! [`HighWater`] mark (see `module/highwater.rs` for the scheme and its assumption), saved
//! in the RDB as the buffer type's aux data.

use crate::module::highwater::HighWater;

pub static BATCH_IDS: HighWater = HighWater::new();

/// The id a new batch gets now (taken by [`observe`] once the batch exists).
pub fn peek() -> u64 {
    BATCH_IDS.peek()
}

/// Raise the mark to at least `id`.
pub fn observe(id: u64) {
    BATCH_IDS.observe(id);
}

pub fn last() -> u64 {
    BATCH_IDS.last()
}
