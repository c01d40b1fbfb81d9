//! Expected values produced by redis-server 7.0.15 (`redis-server --port 23457 --bind
//! 127.0.0.1 --save ''`), hard-coded so these tests need no server.
//!
//! Regenerate with (`$C` = `redis-cli -p 23457`, `$ADD` = the Lua loop below):
//!
//! ```text
//! ADD="for i=tonumber(ARGV[1]),tonumber(ARGV[2])-1 do redis.call('PFADD',KEYS[1],'m'..i) end"
//! $C FLUSHALL
//! $C EVAL "$ADD" 1 m:N 0 N ; $C PFCOUNT m:N      # members "m0".."m{N-1}", one key per N
//! $C PFADD empty "" ; $C PFCOUNT empty
//! $C EVAL "for i=0,255 do redis.call('PFADD',KEYS[1],string.char(i)) end" 1 bytes
//! $C PFCOUNT bytes
//! $C PFADD dups a b a c b a "" "" ; $C PFCOUNT dups
//! $C EVAL "$ADD" 1 u1 0 1000 ; $C EVAL "$ADD" 1 u2 500 3000 ; $C EVAL "$ADD" 1 u3 100000 100100
//! $C EVAL "$ADD" 1 u4 0 100000 ; $C EVAL "$ADD" 1 u5 50000 150000
//! $C PFCOUNT u1 u2 ; $C PFCOUNT u1 u2 u3 ; $C PFCOUNT u4 u5 ; $C PFCOUNT u1 u2 u3 u4 u5 nokey
//! # dense registers (encoding byte 0), POSIX cksum of the 12288 bytes after the header:
//! $C --raw GETRANGE m:10000 4 4 | od -An -tu1
//! $C --raw GET m:10000 | head -c 12304 | tail -c 12288 | cksum        # same for m:100000
//! $C CONFIG SET hll-sparse-max-bytes 0 ; $C EVAL "$ADD" 1 d:1000 0 1000
//! $C CONFIG SET hll-sparse-max-bytes 3000
//! $C --raw GET d:1000 | head -c 12304 | tail -c 12288 | cksum
//! # one member's register: the sparse string is XZERO(index) VAL(value,1) XZERO(rest)
//! $C DEL k ; $C PFADD k abc ; $C GET k
//! # crafted registers (estimate.rs): SET x <"HYLL" 0 0 0 0, 7 × 0, 0x80, packed registers>
//! $C PFCOUNT x
//! ```

use super::registers::{Registers, DENSE_BYTES};
use super::sketch::Sketch;

/// POSIX `cksum` (CRC-32, polynomial 0x04C11DB7, MSB first, then the length, complemented).
fn cksum(data: &[u8]) -> u32 {
    fn feed(crc: u32, b: u8) -> u32 {
        let mut crc = crc ^ (u32::from(b) << 24);
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
        crc
    }
    let mut crc = data.iter().fold(0u32, |c, &b| feed(c, b));
    let mut len = data.len();
    while len > 0 {
        crc = feed(crc, (len & 0xff) as u8);
        len >>= 8;
    }
    !crc
}

#[test]
fn cksum_matches_the_posix_tool() {
    // `printf '123456789' | cksum` prints 930766865 9.
    assert_eq!(cksum(b"123456789"), 930766865);
}

fn range(start: usize, end: usize) -> impl Iterator<Item = Vec<u8>> {
    (start..end).map(|i| format!("m{i}").into_bytes())
}

fn sketch_of(members: impl Iterator<Item = Vec<u8>>, bound: usize) -> Sketch {
    let mut s = Sketch::new(bound);
    for m in members {
        s.add(&m);
    }
    s
}

/// `PFCOUNT m:N` after `EVAL "$ADD" 1 m:N 0 N` (members "m0".."m{N-1}").
const COUNTS: [(usize, u64); 10] = [
    (0, 0),
    (1, 1),
    (2, 2),
    (3, 3),
    (10, 10),
    (100, 100),
    (1000, 1002),
    (10_000, 9914),
    (100_000, 98718),
    (1_000_000, 1_020_195),
];

#[test]
fn counts_of_m0_to_mn_match_pfcount() {
    for (n, expected) in COUNTS {
        let s = sketch_of(range(0, n), 3000);
        assert_eq!(s.count(), expected, "m0..m{n} sparse-first");
        if n <= 100_000 {
            let d = sketch_of(range(0, n), 0);
            assert_eq!(d.count(), expected, "m0..m{n} dense");
            assert_eq!(d, s);
        }
        let mut acc = Registers::new();
        s.merge_into(&mut acc);
        assert_eq!(acc.count(), expected, "m0..m{n} as a union of one");
    }
}

#[test]
fn odd_members_match_pfcount() {
    // PFADD empty "" ; PFCOUNT empty -> 1
    assert_eq!(sketch_of(std::iter::once(Vec::new()), 3000).count(), 1);
    // EVAL "for i=0,255 do redis.call('PFADD',KEYS[1],string.char(i)) end" 1 bytes -> 256
    assert_eq!(sketch_of((0..=255u8).map(|b| vec![b]), 3000).count(), 256);
    // PFADD dups a b a c b a "" "" ; PFCOUNT dups -> 4
    let dups = ["a", "b", "a", "c", "b", "a", "", ""];
    let s = sketch_of(dups.iter().map(|m| m.as_bytes().to_vec()), 3000);
    assert_eq!(s.count(), 4);
}

#[test]
fn unions_match_multi_key_pfcount() {
    let u1 = sketch_of(range(0, 1000), 3000);
    let u2 = sketch_of(range(500, 3000), 3000);
    let u3 = sketch_of(range(100_000, 100_100), 3000);
    let u4 = sketch_of(range(0, 100_000), 3000);
    let u5 = sketch_of(range(50_000, 150_000), 3000);
    let nokey = Sketch::default();
    let union = |parts: &[&Sketch]| {
        let mut acc = Registers::new();
        for p in parts {
            p.merge_into(&mut acc);
        }
        acc.count()
    };
    assert_eq!(union(&[&u1, &u2]), 3001); // PFCOUNT u1 u2
    assert_eq!(union(&[&u1, &u2, &u3]), 3105); // PFCOUNT u1 u2 u3
    assert_eq!(union(&[&u4, &u5]), 148_959); // PFCOUNT u4 u5
    assert_eq!(union(&[&u1, &u2, &u3, &u4, &u5, &nokey]), 148_959);

    // The same unions through merge_from, sparse and dense.
    let mut m = u1.clone();
    m.merge_from(&u2);
    assert_eq!(m.count(), 3001);
    m.merge_from(&u3);
    assert_eq!(m.count(), 3105);
    let mut m = u5.clone();
    m.merge_from(&u4);
    assert_eq!(m.count(), 148_959);
}

#[test]
fn dense_registers_are_byte_for_byte_those_of_get() {
    // (members, POSIX cksum of the 12288 register bytes GET returned, dense encoding)
    for (n, expected) in [
        (1000, 751_859_991u32),
        (10_000, 1_127_604_004),
        (100_000, 2_231_543_724),
    ] {
        let s = sketch_of(range(0, n), 3000);
        let packed = s.to_packed();
        assert_eq!(packed.len(), DENSE_BYTES);
        assert_eq!(cksum(&packed[..]), expected, "m0..m{n}");
        assert_eq!(cksum(&s.to_redis_dense()[16..]), expected);
    }
    // m0..m999 (sparse on the server, 972 registers set, summing to 1944); 972 entries are
    // 3888 bytes here, so sparse needs a bound that large.
    let s = sketch_of(range(0, 1000), 4000);
    assert!(s.is_sparse());
    assert_eq!(s.nonzero(), 972);
    let mut sum = 0u32;
    s.for_each_nonzero(|_, v| sum += u32::from(v));
    assert_eq!(sum, 1944);
}

#[test]
fn single_member_registers_match_the_server() {
    // DEL k ; PFADD k <member> ; GET k -> the one VAL opcode's register and value.
    let cases: [(&[u8], u16, u8); 16] = [
        (b"", 5938, 2),
        (b"a", 12711, 2),
        (b"ab", 719, 1),
        (b"abc", 9474, 1),
        (b"abcd", 11070, 8),
        (b"abcde", 3726, 4),
        (b"abcdef", 13647, 2),
        (b"abcdefg", 5634, 2),
        (b"abcdefgh", 1383, 1),
        (b"abcdefghi", 6903, 1),
        (b"abcdefghijklmno", 12377, 4),
        (b"abcdefghijklmnop", 9328, 1),
        (b"abcdefghijklmnopq", 4271, 1),
        (b"\x00", 8840, 2),
        (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff", 10316, 1),
        (b"hello world", 9399, 4),
    ];
    for (member, index, value) in cases {
        assert_eq!(super::pattern(member), (index, value), "{member:?}");
        let mut s = Sketch::default();
        assert!(s.add(member));
        assert_eq!(s.nonzero(), 1);
        assert_eq!(s.get(usize::from(index)), value);
    }
}
