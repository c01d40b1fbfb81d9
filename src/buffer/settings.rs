//! Write-buffer settings (`CONFIG SET hacks.*`).

use crate::module::config::IntSetting;

/// `hacks.buffer-max-members`: pending members one write buffer may hold.
pub static BUFFER_MAX_MEMBERS: IntSetting =
    IntSetting::new(c"buffer-max-members", 1_000_000, 1, i64::MAX);

/// `hacks.buffer-max-columns`: columns one pending member may hold (`HACK.BUFUPDATE`).
pub static BUFFER_MAX_COLUMNS: IntSetting = IntSetting::new(c"buffer-max-columns", 64, 1, 1024);

/// `hacks.buffer-max-value-bytes`: longest value a `SET` column may hold.
pub static BUFFER_MAX_VALUE_BYTES: IntSetting =
    IntSetting::new(c"buffer-max-value-bytes", 1 << 20, 1, 512 << 20);

/// The caps a client's write is checked against now.
pub fn limits() -> super::row::Limits {
    super::row::Limits {
        max_members: BUFFER_MAX_MEMBERS.get(),
        max_columns: usize::try_from(BUFFER_MAX_COLUMNS.get()).unwrap_or(1),
        max_value_bytes: usize::try_from(BUFFER_MAX_VALUE_BYTES.get()).unwrap_or(1),
    }
}

/// What any server could have admitted (the settings' maxima): the bound for loaded and
/// received values, which a master with larger caps than ours may have written.
pub fn hard_limits() -> (usize, usize) {
    (
        usize::try_from(BUFFER_MAX_COLUMNS.max).unwrap_or(1),
        usize::try_from(BUFFER_MAX_VALUE_BYTES.max).unwrap_or(1),
    )
}
