//! MurmurHash64A (MurmurHash2, 64-bit), as Redis's `hyperloglog.c` computes it.
//!
//! Redis reads the body as little-endian 64-bit words on every architecture (its
//! "endian neutral" variant), and folds the 1..=7 tail bytes in little-endian order too,
//! so the hash of a member is the same on every server. All arithmetic is modulo 2^64,
//! as in C's `uint64_t`: hence `wrapping_*` throughout.

/// The seed Redis's `hllPatLen` hashes members with.
pub const REDIS_SEED: u32 = 0xadc8_3b19;

const M: u64 = 0xc6a4_a793_5bd1_e995;
const R: u32 = 47;

/// MurmurHash64A of `data` with `seed`.
///
/// Redis passes the length as a C `int`; members longer than `i32::MAX` bytes cannot reach
/// `PFADD` (the protocol's bulk length is far below), so the length is taken as a `u64` here.
pub fn murmur64a(data: &[u8], seed: u32) -> u64 {
    let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
    let mut h = u64::from(seed) ^ len.wrapping_mul(M);

    let mut words = data.chunks_exact(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let mut k = u64::from_le_bytes(bytes);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }

    let tail = words.remainder();
    if !tail.is_empty() {
        // Byte i of the tail lands at bits 8i..8i+7, as in Redis's fall-through switch.
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b).wrapping_shl(u32::try_from(i).unwrap_or(0).wrapping_mul(8));
        }
        h = h.wrapping_mul(M);
    }

    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The hash Redis's HyperLogLog uses for a member.
pub fn hash(member: &[u8]) -> u64 {
    murmur64a(member, REDIS_SEED)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A straight transcription of the C algorithm, byte by byte, to cross-check the
    /// word-at-a-time version on every tail length.
    fn reference(data: &[u8], seed: u32) -> u64 {
        let mut h = u64::from(seed) ^ (data.len() as u64).wrapping_mul(M);
        let body = data.len() - data.len() % 8;
        let mut i = 0;
        while i < body {
            let mut k = 0u64;
            for j in 0..8 {
                k |= u64::from(data[i + j]) << (8 * j);
            }
            k = k.wrapping_mul(M);
            k ^= k >> R;
            k = k.wrapping_mul(M);
            h ^= k;
            h = h.wrapping_mul(M);
            i += 8;
        }
        let rem = data.len() % 8;
        if rem > 0 {
            for j in (0..rem).rev() {
                h ^= u64::from(data[body + j]) << (8 * j);
            }
            h = h.wrapping_mul(M);
        }
        h ^= h >> R;
        h = h.wrapping_mul(M);
        h ^= h >> R;
        h
    }

    #[test]
    fn word_version_matches_bytewise_reference_on_every_tail_length() {
        let data: Vec<u8> = (0..64u8)
            .map(|b| b.wrapping_mul(37).wrapping_add(11))
            .collect();
        for len in 0..data.len() {
            for seed in [0, REDIS_SEED, u32::MAX] {
                assert_eq!(murmur64a(&data[..len], seed), reference(&data[..len], seed));
            }
        }
    }

    #[test]
    fn empty_input_is_the_seed_mixed() {
        // h = seed ^ 0, no body, no tail: only the final mix.
        let mut h = u64::from(REDIS_SEED);
        h ^= h >> R;
        h = h.wrapping_mul(M);
        h ^= h >> R;
        assert_eq!(hash(b""), h);
    }
}
