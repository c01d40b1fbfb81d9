//! [`Entries`]: the sparse registers of a sketch, sorted by index, packed in 3 bytes each
//! (the low 24 bits of `index << 8 | value`, little-endian): a 14-bit index and a value up to
//! 51 need 22 bits, so a fourth byte would only hold zeros. 3 bytes a set register instead of
//! 4 is a quarter less memory for every sparse bucket, which is most of a busy series.

/// Bytes one entry takes.
pub const ENTRY_BYTES: usize = 3;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Entries(Vec<u8>);

fn pack(e: u32) -> [u8; 3] {
    let [b0, b1, b2, _] = e.to_le_bytes();
    [b0, b1, b2]
}

fn unpack(c: &[u8]) -> u32 {
    match c {
        &[b0, b1, b2, ..] => u32::from_le_bytes([b0, b1, b2, 0]),
        _ => 0,
    }
}

impl Entries {
    pub fn with_capacity(n: usize) -> Self {
        Entries(Vec::with_capacity(n.saturating_mul(ENTRY_BYTES)))
    }

    pub fn len(&self) -> usize {
        self.0.len() / ENTRY_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Entry `i` (`None` past the end).
    pub fn get(&self, i: usize) -> Option<u32> {
        let at = i.checked_mul(ENTRY_BYTES)?;
        self.0.get(at..at.checked_add(ENTRY_BYTES)?).map(unpack)
    }

    /// Replace entry `i` (no-op past the end).
    pub fn set(&mut self, i: usize, e: u32) {
        let Some(at) = i.checked_mul(ENTRY_BYTES) else {
            return;
        };
        if let Some(slot) = self.0.get_mut(at..at.saturating_add(ENTRY_BYTES)) {
            slot.copy_from_slice(&pack(e));
        }
    }

    /// Insert `e` before entry `i` (at the end when `i >= len`).
    pub fn insert(&mut self, i: usize, e: u32) {
        let at = i.saturating_mul(ENTRY_BYTES).min(self.0.len());
        self.0.splice(at..at, pack(e));
    }

    /// Append `e` (the caller keeps the order).
    pub fn push(&mut self, e: u32) {
        self.0.extend_from_slice(&pack(e));
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.chunks_exact(ENTRY_BYTES).map(unpack)
    }

    /// Binary search by the entry's index (`key` of each entry), as `slice::binary_search_by_key`.
    pub fn search(&self, index: u16, key: impl Fn(u32) -> u16) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            // `lo < hi`: the difference is positive and the midpoint lies between them.
            let mid = lo.saturating_add(hi.saturating_sub(lo) / 2);
            let k = self.get(mid).map_or(u16::MAX, &key);
            match k.cmp(&index) {
                std::cmp::Ordering::Equal => return Ok(mid),
                std::cmp::Ordering::Less => lo = mid.saturating_add(1),
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Err(lo)
    }

    /// Room for one more entry, growing by an eighth (at least 4 entries) but never past
    /// `max_entries`: the slack stays within about 12 %.
    pub fn reserve_one(&mut self, max_entries: usize) {
        if self.0.len().saturating_add(ENTRY_BYTES) > self.0.capacity() {
            let len = self.len();
            let room = max_entries.saturating_sub(len).max(1);
            let more = (len / 8).max(4).min(room);
            self.0.reserve_exact(more.saturating_mul(ENTRY_BYTES));
        }
    }

    pub fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }

    /// Heap bytes held.
    pub fn capacity_bytes(&self) -> usize {
        self.0.capacity()
    }
}
