//! Write-buffer settings (`CONFIG SET hacks.*`).

use crate::module::config::IntSetting;

/// `hacks.buffer-max-members`: pending members one write buffer may hold.
pub static BUFFER_MAX_MEMBERS: IntSetting =
    IntSetting::new(c"buffer-max-members", 1_000_000, 1, i64::MAX);
