//! Registers: which register a member updates and with what value, Redis's 6-bit packing,
//! and [`Registers`], the one-byte-a-register accumulator used to count unions.
//!
//! Redis (`hllPatLen`): the register index is the low 14 bits of the hash; the value is the
//! position (from 1) of the first 1 bit in the remaining 50 bits, with bit 50 of those forced
//! to 1 so a run of 50 zeros gives 51. So values are 1..=51 and a register never exceeds
//! [`MAX_VALUE`]; a register is updated to the max of its value and the member's.
//!
//! Packing (Redis's dense encoding): register `i` occupies bits `6i..6i+5` of the byte
//! string, least significant bit first, so every 3 bytes hold 4 registers:
//! `b0 = r1[1:0] r0[5:0]`, `b1 = r2[3:0] r1[5:2]`, `b2 = r3[5:0] r2[5:4]` (MSB on the left).
//! 16384 × 6 bits is exactly 12288 bytes, with no padding bit, so the packed bytes are a
//! function of the registers only.

use super::estimate::{estimate, Histogram};
use super::murmur;

/// Bits of the hash that select a register (Redis's `HLL_P`).
pub const P: u32 = 14;
/// Number of registers (2^14).
pub const REGISTERS: usize = 1 << P;
/// Bits left for the zero run (Redis's `HLL_Q`).
pub const Q: u32 = 64 - P;
/// The largest value a register can hold from a member: a run of `Q` zeros, plus 1.
pub const MAX_VALUE: u8 = 51;
/// Bytes of the 6-bit packed registers (Redis's dense payload, without its 16-byte header).
pub const DENSE_BYTES: usize = REGISTERS * 6 / 8;

const INDEX_MASK: u64 = (1 << P) - 1;

/// The register a member updates and the value it offers (Redis's `hllPatLen`).
pub fn pattern(member: &[u8]) -> (u16, u8) {
    pattern_of_hash(murmur::hash(member))
}

/// [`pattern`] from the member's hash.
pub fn pattern_of_hash(hash: u64) -> (u16, u8) {
    // Both casts are exact: the index has 14 bits, and the count is at most Q + 1 = 51
    // because bit Q of `rest` is set.
    let index = (hash & INDEX_MASK) as u16;
    let rest = (hash >> P) | (1u64 << Q);
    let count = rest.trailing_zeros().wrapping_add(1) as u8;
    (index, count)
}

/// The 4 registers held by one 3-byte group of the packed form.
pub fn unpack4(b0: u8, b1: u8, b2: u8) -> [u8; 4] {
    [
        b0 & 0x3f,
        (b0 >> 6) | ((b1 & 0x0f) << 2),
        (b1 >> 4) | ((b2 & 0x03) << 4),
        b2 >> 2,
    ]
}

/// The 3 packed bytes of 4 registers (each below 64).
pub fn pack4(r: [u8; 4]) -> [u8; 3] {
    let [r0, r1, r2, r3] = r;
    [
        (r0 & 0x3f) | (r1 << 6),
        ((r1 & 0x3f) >> 2) | (r2 << 4),
        ((r2 & 0x3f) >> 4) | (r3 << 2),
    ]
}

/// The byte offset of the 3-byte group holding register `index`, and its slot there.
fn group_of(index: usize) -> (usize, usize) {
    ((index >> 2).wrapping_mul(3), index & 3)
}

/// Register `index` of packed registers (0 past the end).
pub fn packed_get(packed: &[u8; DENSE_BYTES], index: usize) -> u8 {
    let (at, slot) = group_of(index);
    match packed.get(at..at.wrapping_add(3)) {
        Some(&[b0, b1, b2]) => unpack4(b0, b1, b2).get(slot).copied().unwrap_or(0),
        _ => 0,
    }
}

/// Raise register `index` of packed registers to `value` if it is below; true if it was.
/// Values above [`MAX_VALUE`] are ignored, like indexes past the end.
pub fn packed_set_max(packed: &mut [u8; DENSE_BYTES], index: usize, value: u8) -> bool {
    if value > MAX_VALUE {
        return false;
    }
    let (at, slot) = group_of(index);
    if let Some([b0, b1, b2]) = packed.get_mut(at..at.wrapping_add(3)) {
        let mut regs = unpack4(*b0, *b1, *b2);
        if let Some(r) = regs.get_mut(slot) {
            if value > *r {
                *r = value;
                [*b0, *b1, *b2] = pack4(regs);
                return true;
            }
        }
    }
    false
}

/// The register histogram of packed registers: `h[v]` registers hold value `v`.
pub fn packed_histogram(packed: &[u8; DENSE_BYTES]) -> Histogram {
    let mut histo: Histogram = [0; 64];
    for group in packed.chunks_exact(3) {
        if let &[b0, b1, b2] = group {
            for r in unpack4(b0, b1, b2) {
                if let Some(h) = histo.get_mut(usize::from(r)) {
                    // At most 16384 registers: never wraps.
                    *h = h.wrapping_add(1);
                }
            }
        }
    }
    histo
}

/// Every register of packed registers, in index order.
pub fn packed_iter(packed: &[u8; DENSE_BYTES]) -> impl Iterator<Item = u8> + '_ {
    packed.chunks_exact(3).flat_map(|g| match g {
        &[b0, b1, b2] => unpack4(b0, b1, b2),
        _ => [0; 4],
    })
}

/// One byte a register: the accumulator for unions (`PFCOUNT k1 k2 ...` builds the same
/// max-per-register array, Redis's internal `HLL_RAW`). 16 KB on the heap; reuse one with
/// [`Registers::clear`] rather than allocating one per union.
#[derive(Clone, PartialEq, Eq)]
pub struct Registers {
    regs: Box<[u8; REGISTERS]>,
}

impl Default for Registers {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Registers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nonzero = self.regs.iter().filter(|&&r| r != 0).count();
        f.debug_struct("Registers")
            .field("nonzero", &nonzero)
            .finish()
    }
}

impl Registers {
    /// All registers 0 (an empty set).
    pub fn new() -> Self {
        Registers {
            regs: Box::new([0; REGISTERS]),
        }
    }

    /// Back to all 0, keeping the allocation.
    pub fn clear(&mut self) {
        self.regs.fill(0);
    }

    /// Register `index` (0 past the end).
    pub fn get(&self, index: usize) -> u8 {
        self.regs.get(index).copied().unwrap_or(0)
    }

    /// Raise register `index` to `value` if it is below; true if it was. Values above
    /// [`MAX_VALUE`] cannot come from a member and are ignored, like indexes past the end.
    pub fn set_max(&mut self, index: usize, value: u8) -> bool {
        if value > MAX_VALUE {
            return false;
        }
        match self.regs.get_mut(index) {
            Some(r) if value > *r => {
                *r = value;
                true
            }
            _ => false,
        }
    }

    /// Add a member, as `PFADD` does; true if a register changed.
    pub fn add(&mut self, member: &[u8]) -> bool {
        let (index, value) = pattern(member);
        self.set_max(usize::from(index), value)
    }

    /// Raise every register to the max of itself and `packed`'s.
    pub fn merge_packed(&mut self, packed: &[u8; DENSE_BYTES]) {
        for (dst, group) in self.regs.chunks_exact_mut(4).zip(packed.chunks_exact(3)) {
            if let &[b0, b1, b2] = group {
                for (d, r) in dst.iter_mut().zip(unpack4(b0, b1, b2)) {
                    *d = (*d).max(r);
                }
            }
        }
    }

    /// The register histogram: `h[v]` registers hold value `v`.
    pub fn histogram(&self) -> Histogram {
        let mut histo: Histogram = [0; 64];
        for &r in self.regs.iter() {
            if let Some(h) = histo.get_mut(usize::from(r)) {
                *h = h.wrapping_add(1);
            }
        }
        histo
    }

    /// The estimated cardinality, exactly as `PFCOUNT` computes it.
    pub fn count(&self) -> u64 {
        estimate(&self.histogram())
    }

    /// The registers, one byte each.
    pub fn as_array(&self) -> &[u8; REGISTERS] {
        &self.regs
    }

    /// The registers in Redis's 6-bit packing.
    pub fn to_packed(&self) -> Box<[u8; DENSE_BYTES]> {
        let mut packed = Box::new([0u8; DENSE_BYTES]);
        for (dst, regs) in packed.chunks_exact_mut(3).zip(self.regs.chunks_exact(4)) {
            if let (&mut [ref mut b0, ref mut b1, ref mut b2], &[r0, r1, r2, r3]) = (dst, regs) {
                [*b0, *b1, *b2] = pack4([r0, r1, r2, r3]);
            }
        }
        packed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_and_unpack_are_inverse_for_every_value() {
        for a in 0..64u8 {
            for b in [0u8, 1, 17, 42, 51, 63] {
                let regs = [a, b, 63 - a, b ^ a];
                let [b0, b1, b2] = pack4(regs);
                assert_eq!(unpack4(b0, b1, b2), regs);
            }
        }
    }

    #[test]
    fn packed_layout_is_lsb_first_six_bits_per_register() {
        // Register i at bits 6i..6i+5: a single register set to 0b111111 shows where it lands.
        for index in 0..8usize {
            let mut regs = [0u8; 8];
            regs[index] = 63;
            let mut packed = Box::new([0u8; DENSE_BYTES]);
            let [a, b, c] = pack4(regs[..4].try_into().unwrap());
            let [d, e, f] = pack4(regs[4..].try_into().unwrap());
            packed[..6].copy_from_slice(&[a, b, c, d, e, f]);
            let mut bits = 0u64;
            for (i, &b) in packed[..8].iter().enumerate() {
                bits |= u64::from(b) << (8 * i);
            }
            assert_eq!(bits, 63u64 << (6 * index), "register {index}");
            assert_eq!(packed_get(&packed, index), 63);
            let mut other = Box::new([0u8; DENSE_BYTES]);
            assert!(packed_set_max(&mut other, index, 51));
            assert_eq!(packed_get(&other, index), 51);
            assert!(!packed_set_max(&mut other, index, 63));
        }
        // The last register is in the last byte's top 6 bits.
        let mut packed = Box::new([0u8; DENSE_BYTES]);
        assert!(packed_set_max(&mut packed, REGISTERS - 1, 51));
        assert_eq!(packed[DENSE_BYTES - 1], 51 << 2);
        assert_eq!(packed_get(&packed, REGISTERS), 0);
        assert!(!packed_set_max(&mut packed, REGISTERS, 5));
    }

    #[test]
    fn set_max_keeps_the_larger_value_and_leaves_neighbours_alone() {
        let mut packed = Box::new([0u8; DENSE_BYTES]);
        let mut plain = Registers::new();
        let mut x = 12345u64;
        for _ in 0..100_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let index = ((x >> 20) as usize) % REGISTERS;
            let value = ((x >> 40) % 53) as u8; // 52 is refused by both
            assert_eq!(
                packed_set_max(&mut packed, index, value),
                plain.set_max(index, value)
            );
        }
        for i in 0..REGISTERS {
            assert_eq!(packed_get(&packed, i), plain.get(i));
        }
        assert_eq!(
            packed_iter(&packed).collect::<Vec<_>>(),
            plain.as_array().to_vec()
        );
        assert_eq!(*plain.to_packed(), *packed);
        assert_eq!(packed_histogram(&packed), plain.histogram());
        let mut merged = Registers::new();
        merged.merge_packed(&packed);
        assert_eq!(merged, plain);
    }

    #[test]
    fn pattern_follows_hllpatlen() {
        assert_eq!(pattern_of_hash(0), (0, 51));
        assert_eq!(pattern_of_hash(u64::MAX), (0x3fff, 1));
        assert_eq!(pattern_of_hash(1 << 14), (0, 1));
        assert_eq!(pattern_of_hash((1 << 15) | 7), (7, 2));
        assert_eq!(pattern_of_hash(1 << 63), (0, 50));
    }
}
