//! RESTORE of crafted payloads. A DUMP payload carries a CRC64, so random corruption is
//! refused before the module sees it; a payload built with a valid CRC reaches the module's
//! RDB loader directly (any client allowed to run RESTORE can send one, and a damaged RDB
//! file is the same input).
//!
//! Seeds are real values of every module type (made by commands, then `DUMP`ed), parsed
//! field by field (the `RDB_TYPE_MODULE_2` framing: type byte 7, the length-encoded module
//! id with the encoding version in its low 10 bits, then one opcode per saved field,
//! `UINT` (2) + length-encoded integer or `STRING` (5) + RDB string, and `EOF` (0)). Each
//! seed gives thousands of mutants, each sealed with a correct RDB version and CRC:
//! integer fields replaced by extremes, fields dropped, duplicated, swapped, retyped,
//! truncations at every field boundary, inflated string lengths, unknown opcodes, another
//! type's module id over this type's body, bumped encoding versions, non-canonical length
//! encodings, and random byte flips, insertions and deletions. Rate-limit keys (plain
//! strings the module parses) get the same treatment at the string level.
//!
//! Hand-built edge values (each field acceptable alone, the whole no command makes) and
//! multi-megabyte values join the corpus.
//!
//! For every mutant: RESTORE answers (loaded or refused) within a bound that only catches
//! hangs, the server stays up, a refused payload leaves no key, and a loaded one costs
//! memory in proportion to its size, DUMPs and RESTOREs (and COPYs) to the same digest,
//! survives the module's commands (read-only ones leave it unchanged), and keeps its type
//! and digest through `DEBUG RELOAD` and through an AOF rewrite without RDB preamble
//! replayed by `DEBUG LOADAOF`. No loader panics (`hacks_panics_caught`), and ids no clock
//! could produce (2^64-1, 2^63-1) are refused and never pin the id marks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::*;

/// Longest any single RESTORE (or a check on what it loaded) may take: only catches hangs.
const MAX_LATENCY: Duration = Duration::from_secs(5);
/// Random mutants per seed, on top of the systematic ones.
const RANDOM_PER_SEED: usize = 700;
/// How far ahead of the clock an id may be (`module/highwater.rs`: a year, 366 days).
const MAX_AHEAD_US: i64 = 366 * 86_400 * 1_000_000;

// ---------------------------------------------------------------------------------------
// DUMP framing: CRC64 (Jones, reflected), RDB lengths and strings, module values.
// ---------------------------------------------------------------------------------------

fn crc64(data: &[u8]) -> u64 {
    static TABLE: std::sync::OnceLock<[u64; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u64; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut crc = i as u64;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x95AC_9329_AC4B_C9B5
                } else {
                    crc >> 1
                };
            }
            *slot = crc;
        }
        t
    });
    data.iter().fold(0u64, |crc, b| {
        table[((crc ^ u64::from(*b)) & 0xff) as usize] ^ (crc >> 8)
    })
}

/// The bitwise form, to check the table against.
fn crc64_bitwise(data: &[u8]) -> u64 {
    let mut crc = 0u64;
    for b in data {
        crc ^= u64::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x95AC_9329_AC4B_C9B5
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// A DUMP payload: body, then the 2-byte RDB version and the CRC64 of both (little-endian).
fn seal(body: &[u8], rdb_ver: [u8; 2]) -> Vec<u8> {
    let mut p = Vec::with_capacity(body.len() + 10);
    p.extend_from_slice(body);
    p.extend_from_slice(&rdb_ver);
    let crc = crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

/// Split a real DUMP into body and RDB version, checking its CRC.
fn unseal(p: &[u8]) -> (Vec<u8>, [u8; 2]) {
    assert!(p.len() >= 11, "short DUMP: {}", hex(p));
    let n = p.len() - 8;
    let crc = u64::from_le_bytes(p[n..].try_into().unwrap());
    assert_eq!(
        crc64(&p[..n]),
        crc,
        "our CRC64 must reproduce DUMP's: {}",
        hex(p)
    );
    (p[..n - 2].to_vec(), [p[n - 2], p[n - 1]])
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An RDB length: the shortest form, or always the 9-byte `0x81` form (`wide`).
fn put_len(out: &mut Vec<u8>, v: u64, wide: bool) {
    if wide || v > u64::from(u32::MAX) {
        out.push(0x81);
        out.extend_from_slice(&v.to_be_bytes());
    } else if v < 64 {
        out.push(v as u8);
    } else if v < 16384 {
        out.push(0x40 | (v >> 8) as u8);
        out.push((v & 0xff) as u8);
    } else {
        out.push(0x80);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    }
}

const OP_EOF: u64 = 0;
const OP_UINT: u64 = 2;
const OP_STRING: u64 = 5;
const RDB_TYPE_MODULE_2: u8 = 7;

/// One saved field of a module value.
#[derive(Clone, Debug, PartialEq)]
enum Field {
    /// `RedisModule_SaveUnsigned` / `SaveSigned`.
    Uint(u64),
    /// `RedisModule_SaveStringBuffer`, written as a plain RDB string.
    Str(Vec<u8>),
    /// A string in an encoding kept verbatim (LZF-compressed), opcode excluded.
    Raw(Vec<u8>),
    /// A string whose length prefix claims `claimed` bytes, followed by `data`.
    Claimed { claimed: u64, data: Vec<u8> },
    /// A bare opcode (an unknown one, or an early EOF).
    Opcode(u64),
}

#[derive(Clone, Debug, PartialEq)]
struct ModValue {
    id: u64,
    fields: Vec<Field>,
    /// Whether the value ends with the EOF opcode.
    eof: bool,
}

impl ModValue {
    fn encode(&self, wide: bool) -> Vec<u8> {
        let mut out = vec![RDB_TYPE_MODULE_2];
        put_len(&mut out, self.id, wide);
        for f in &self.fields {
            match f {
                Field::Uint(v) => {
                    put_len(&mut out, OP_UINT, wide);
                    put_len(&mut out, *v, wide);
                }
                Field::Str(s) => {
                    put_len(&mut out, OP_STRING, wide);
                    put_len(&mut out, s.len() as u64, wide);
                    out.extend_from_slice(s);
                }
                Field::Raw(r) => {
                    put_len(&mut out, OP_STRING, wide);
                    out.extend_from_slice(r);
                }
                Field::Claimed { claimed, data } => {
                    put_len(&mut out, OP_STRING, wide);
                    put_len(&mut out, *claimed, wide);
                    out.extend_from_slice(data);
                }
                Field::Opcode(op) => put_len(&mut out, *op, wide),
            }
        }
        if self.eof {
            put_len(&mut out, OP_EOF, wide);
        }
        out
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        s
    }

    /// A length, and whether it is an encoded-string marker (`11xxxxxx`).
    fn len(&mut self) -> (u64, bool) {
        let b = self.take(1)[0];
        match b >> 6 {
            0 => (u64::from(b & 0x3f), false),
            1 => (
                (u64::from(b & 0x3f) << 8) | u64::from(self.take(1)[0]),
                false,
            ),
            3 => (u64::from(b & 0x3f), true),
            _ if b == 0x80 => (
                u64::from(u32::from_be_bytes(self.take(4).try_into().unwrap())),
                false,
            ),
            _ if b == 0x81 => (u64::from_be_bytes(self.take(8).try_into().unwrap()), false),
            _ => panic!("bad length byte {b:#x}"),
        }
    }

    fn string(&mut self) -> Field {
        let start = self.pos;
        match self.len() {
            (n, false) => Field::Str(self.take(n as usize).to_vec()),
            (0, true) => Field::Str((self.take(1)[0] as i8).to_string().into_bytes()),
            (1, true) => Field::Str(
                i16::from_le_bytes(self.take(2).try_into().unwrap())
                    .to_string()
                    .into_bytes(),
            ),
            (2, true) => Field::Str(
                i32::from_le_bytes(self.take(4).try_into().unwrap())
                    .to_string()
                    .into_bytes(),
            ),
            (3, true) => {
                let (clen, _) = self.len();
                let _ = self.len();
                self.take(clen as usize);
                Field::Raw(self.b[start..self.pos].to_vec())
            }
            (e, true) => panic!("unknown string encoding {e}"),
        }
    }
}

fn parse_module_value(body: &[u8]) -> ModValue {
    assert_eq!(
        body[0],
        RDB_TYPE_MODULE_2,
        "not a module value: {}",
        hex(body)
    );
    let mut r = Reader { b: body, pos: 1 };
    let (id, _) = r.len();
    let mut fields = Vec::new();
    loop {
        match r.len() {
            (OP_EOF, false) => break,
            (OP_UINT, false) => fields.push(Field::Uint(r.len().0)),
            (OP_STRING, false) => fields.push(r.string()),
            other => panic!("unexpected opcode {other:?} in {}", hex(body)),
        }
    }
    assert_eq!(r.pos, body.len(), "trailing bytes in {}", hex(body));
    ModValue {
        id,
        fields,
        eof: true,
    }
}

/// `moduleTypeEncodeId`: nine 6-bit characters, then the 10-bit encoding version.
fn type_id(name: &str, encver: u64) -> u64 {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    assert_eq!(name.len(), 9);
    let mut id = 0u64;
    for c in name.bytes() {
        let pos = CHARS.iter().position(|x| *x == c).unwrap() as u64;
        id = (id << 6) | pos;
    }
    (id << 10) | (encver & 1023)
}

const TYPES: [&str; 3] = ["hacks-tss", "hacks-buf", "hacks-lck"];

/// The encoding version each type writes today (buffers: 2, rows; version 1 still loads,
/// and the hand-built edge cases below use it).
fn encoding_of(ty: &str) -> u64 {
    if ty == "hacks-buf" {
        2
    } else {
        1
    }
}
const RATELIMIT: &str = "ratelimit";

// ---------------------------------------------------------------------------------------
// Mutants.
// ---------------------------------------------------------------------------------------

const EXTREMES: [u64; 9] = [
    0,
    1,
    2,
    255,
    1 << 31,
    1 << 32,
    i64::MAX as u64,
    1 << 63,
    u64::MAX,
];

/// The integer replacements of a field holding `v`.
fn replacements(v: u64) -> Vec<u64> {
    let mut r = EXTREMES.to_vec();
    r.extend([v.wrapping_add(1), v.wrapping_sub(1), v.wrapping_mul(1000)]);
    r.sort_unstable();
    r.dedup();
    r.retain(|x| *x != v);
    r
}

/// A module seed: which type it is, its parsed value and the RDB version of its DUMP.
struct Seed {
    ty: &'static str,
    name: String,
    value: ModValue,
    rdb_ver: [u8; 2],
}

/// A payload to RESTORE and what it was made from.
struct Mutant {
    ty: &'static str,
    what: String,
    payload: Vec<u8>,
}

fn systematic(seed: &Seed) -> Vec<(String, Vec<u8>)> {
    let v = &seed.value;
    let n = v.fields.len();
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut with = |what: String, m: ModValue| out.push((what, m.encode(false)));
    with("unchanged".into(), v.clone());
    for (i, f) in v.fields.iter().enumerate() {
        if let Field::Uint(x) = f {
            for r in replacements(*x) {
                let mut m = v.clone();
                m.fields[i] = Field::Uint(r);
                with(format!("field {i} = {r}"), m);
            }
            let mut m = v.clone();
            m.fields[i] = Field::Str(x.to_string().into_bytes());
            with(format!("field {i} as a string"), m);
        }
        if let Field::Str(s) = f {
            let big = vec![b'a'; 5000];
            for (label, r) in [
                ("empty", Vec::new()),
                ("one byte", b"x".to_vec()),
                ("binary", vec![0, 255, b'\r', b'\n', 0]),
                ("5000 bytes", big),
                ("a number", b"12345".to_vec()),
            ] {
                let mut m = v.clone();
                m.fields[i] = Field::Str(r);
                with(format!("field {i} = {label} string"), m);
            }
            let mut m = v.clone();
            m.fields[i] = Field::Uint(s.len() as u64);
            with(format!("field {i} as an integer"), m);
            for claimed in [
                s.len() as u64 + 1,
                s.len() as u64 + 100,
                1 << 20,
                1 << 31,
                u64::from(u32::MAX),
                1 << 40,
                1 << 62,
                u64::MAX - 1,
            ] {
                let mut m = v.clone();
                m.fields[i] = Field::Claimed {
                    claimed,
                    data: s.clone(),
                };
                with(format!("field {i} claims {claimed} bytes"), m);
            }
            if !s.is_empty() {
                let mut m = v.clone();
                m.fields[i] = Field::Claimed {
                    claimed: s.len() as u64 - 1,
                    data: s.clone(),
                };
                with(format!("field {i} claims one byte less"), m);
            }
        }
        let mut m = v.clone();
        m.fields.remove(i);
        with(format!("field {i} dropped"), m);
        let mut m = v.clone();
        m.fields.insert(i, f.clone());
        with(format!("field {i} duplicated"), m);
        if i + 1 < n {
            let mut m = v.clone();
            m.fields.swap(i, i + 1);
            with(format!("fields {i} and {} swapped", i + 1), m);
        }
    }
    for k in 0..=n {
        let mut m = v.clone();
        m.fields.truncate(k);
        with(format!("truncated after {k} fields, EOF"), m.clone());
        m.eof = false;
        with(format!("truncated after {k} fields, no EOF"), m);
    }
    for at in [0, n / 2, n] {
        for op in [OP_EOF, 1, 3, 4, 6, 63, 1 << 20] {
            let mut m = v.clone();
            m.fields.insert(at, Field::Opcode(op));
            with(format!("opcode {op} before field {at}"), m);
        }
    }
    for other in TYPES {
        for encver in [0, 1, 2, 3, 1023] {
            let mut m = v.clone();
            m.id = type_id(other, encver);
            if m.id != v.id {
                with(format!("{other} encoding {encver} header"), m);
            }
        }
    }
    let mut m = v.clone();
    m.id = type_id("hacks-zzz", 1);
    with("unknown module type".into(), m);
    let mut m = v.clone();
    m.fields.push(Field::Uint(0));
    with("trailing field".into(), m);
    let mut m = v.clone();
    m.fields.push(Field::Str(b"extra".to_vec()));
    with("trailing string".into(), m);
    out.push(("wide length encodings".into(), v.encode(true)));
    let body = v.encode(false);
    let mut b = body.clone();
    b.extend_from_slice(&[0x02, 0x05]);
    out.push(("bytes after EOF".into(), b));
    let mut b = body.clone();
    b[0] = 6;
    out.push(("RDB_TYPE_MODULE (v1)".into(), b));
    for cut in 1..body.len().min(24) {
        out.push((format!("cut at byte {cut}"), body[..cut].to_vec()));
    }
    out
}

fn random_field(rng: &mut Rng) -> Field {
    match rng.below(3) {
        0 => Field::Uint(EXTREMES[rng.below(EXTREMES.len())]),
        1 => Field::Uint(rng.next() >> rng.below(64)),
        _ => {
            let len = rng.below(12);
            Field::Str((0..len).map(|_| rng.next() as u8).collect())
        }
    }
}

fn random_mutant(seed: &Seed, rng: &mut Rng) -> (String, Vec<u8>) {
    let mut m = seed.value.clone();
    let mut what = Vec::new();
    let structured = 1 + rng.below(3);
    for _ in 0..structured {
        let n = m.fields.len();
        match rng.below(9) {
            0..=2 if n > 0 => {
                let i = rng.below(n);
                if let Field::Uint(x) = m.fields[i] {
                    let r = replacements(x);
                    let new = match rng.below(3) {
                        0 => r[rng.below(r.len())],
                        1 => rng.next() >> rng.below(64),
                        _ => x.wrapping_add(rng.next() % 2001).wrapping_sub(1000),
                    };
                    m.fields[i] = Field::Uint(new);
                    what.push(format!("field {i} = {new}"));
                } else {
                    m.fields[i] = random_field(rng);
                    what.push(format!("field {i} replaced"));
                }
            }
            3 if n > 0 => {
                let i = rng.below(n);
                m.fields.remove(i);
                what.push(format!("field {i} dropped"));
            }
            4 if n > 0 => {
                let i = rng.below(n);
                let f = m.fields[i].clone();
                m.fields.insert(rng.below(n + 1), f);
                what.push(format!("field {i} duplicated"));
            }
            5 if n > 1 => {
                let (i, j) = (rng.below(n), rng.below(n));
                m.fields.swap(i, j);
                what.push(format!("fields {i}, {j} swapped"));
            }
            6 => {
                let at = rng.below(n + 1);
                m.fields.insert(at, random_field(rng));
                what.push(format!("field inserted at {at}"));
            }
            7 => {
                m.id = type_id(TYPES[rng.below(3)], rng.below(4) as u64);
                what.push("header swapped".into());
            }
            _ => {
                m.fields.truncate(rng.below(n + 1));
                m.eof = rng.chance(50);
                what.push(format!("truncated to {}", m.fields.len()));
            }
        }
    }
    let mut body = m.encode(rng.chance(5));
    if rng.chance(40) {
        for _ in 0..1 + rng.below(3) {
            // Byte 0 stays the module type: other RDB types are the server's own loaders.
            let len = body.len();
            if len < 2 {
                break;
            }
            let at = 1 + rng.below(len - 1);
            match rng.below(6) {
                0 => body[at] ^= 1 << rng.below(8),
                1 => body[at] = rng.next() as u8,
                2 => body.insert(at, rng.next() as u8),
                3 => {
                    body.remove(at);
                }
                4 => body.truncate(at),
                _ => {
                    let fill = [0x00, 0xff, rng.next() as u8][rng.below(3)];
                    for b in body.iter_mut().skip(at).take(1 + rng.below(9)) {
                        *b = fill;
                    }
                }
            }
            what.push(format!("bytes changed at {at}"));
        }
    }
    (what.join(", "), body)
}

fn module_mutants(seeds: &[Seed], rng: &mut Rng) -> Vec<Mutant> {
    let mut out = Vec::new();
    for seed in seeds {
        let mut bodies = systematic(seed);
        for _ in 0..RANDOM_PER_SEED {
            bodies.push(random_mutant(seed, rng));
        }
        for (what, body) in bodies {
            out.push(Mutant {
                ty: seed.ty,
                what: format!("{}: {what}", seed.name),
                payload: seal(&body, seed.rdb_ver),
            });
        }
        // RDB versions around the server's own (a later one is refused by the server).
        let body = seed.value.encode(false);
        let ver = u16::from_le_bytes(seed.rdb_ver);
        for v in [0, ver.wrapping_sub(1), ver.wrapping_add(1), u16::MAX] {
            out.push(Mutant {
                ty: seed.ty,
                what: format!("{}: RDB version {v}", seed.name),
                payload: seal(&body, v.to_le_bytes()),
            });
        }
    }
    out
}

/// A plain RDB string value (type 0, raw length + bytes).
fn string_body(s: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    put_len(&mut out, s.len() as u64, false);
    out.extend_from_slice(s);
    out
}

/// Rate-limit states (plain strings) with every number replaced by extremes and malformed
/// texts, plus byte-level damage to the string framing.
fn ratelimit_mutants(states: &[Vec<u8>], rdb_ver: [u8; 2], rng: &mut Rng) -> Vec<Mutant> {
    const NUMBERS: &[&str] = &[
        "0",
        "1",
        "-1",
        "2",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "170141183460469231731687303715884105727",
        "-170141183460469231731687303715884105728",
        "99999999999999999999999999999999999999999",
        "",
        "x",
        " 1",
        "1.5",
        "00000000000000000000001",
    ];
    let mut texts: Vec<Vec<u8>> = Vec::new();
    for s in states {
        texts.push(s.clone());
        let parts: Vec<&[u8]> = s.split(|b| *b == b':').collect();
        for i in 0..parts.len() {
            for n in NUMBERS {
                let mut p: Vec<Vec<u8>> = parts.iter().map(|x| x.to_vec()).collect();
                p[i] = n.as_bytes().to_vec();
                texts.push(p.join(&b':'));
            }
        }
        let mut extra = s.clone();
        extra.extend_from_slice(b":1");
        texts.push(extra);
        if parts.len() > 1 {
            texts.push(parts[..parts.len() - 1].join(&b':'));
        }
    }
    for prefix in ["s:", "g:", "s:1:", "g:1:", "s::::", "g::"] {
        texts.push(prefix.as_bytes().to_vec());
    }
    let mut out = Vec::new();
    for t in &texts {
        out.push(Mutant {
            ty: RATELIMIT,
            what: format!("rate-limit state {:?}", String::from_utf8_lossy(t)),
            payload: seal(&string_body(t), rdb_ver),
        });
    }
    for _ in 0..300 {
        let t = &texts[rng.below(texts.len())];
        let mut body = string_body(t);
        let at = 1 + rng.below(body.len() - 1);
        match rng.below(4) {
            0 => body[at] ^= 1 << rng.below(8),
            1 => body.insert(at, rng.next() as u8),
            2 => body.truncate(at),
            _ => body[1] = [0x3f, 0x40, 0x7f, 0x80, 0x81, 0xc0, 0xc1, 0xc3][rng.below(8)],
        }
        out.push(Mutant {
            ty: RATELIMIT,
            what: format!("damaged rate-limit string {}", hex(&body)),
            payload: seal(&body, rdb_ver),
        });
    }
    out
}

// ---------------------------------------------------------------------------------------
// Seeds from real commands.
// ---------------------------------------------------------------------------------------

fn dump(c: &mut Connection, key: &str) -> Vec<u8> {
    redis::cmd("DUMP")
        .arg(key)
        .query(c)
        .unwrap_or_else(|e| panic!("DUMP {key}: {e}"))
}

fn module_seed(c: &mut Connection, key: &str) -> Seed {
    let ty = text(&cmd(c, &["TYPE", key]));
    let ty = TYPES
        .into_iter()
        .find(|t| *t == ty)
        .unwrap_or_else(|| panic!("{key} is a {ty}"));
    let d = dump(c, key);
    let (body, rdb_ver) = unseal(&d);
    let value = parse_module_value(&body);
    assert_eq!(value.id, type_id(ty, encoding_of(ty)), "module id of {key}");
    // The encoder reproduces DUMP's bytes for values without int-encoded strings.
    if value.encode(false) == body {
        assert_eq!(seal(&body, rdb_ver), d);
    }
    Seed {
        ty,
        name: key.to_string(),
        value,
        rdb_ver,
    }
}

fn make_seeds(c: &mut Connection) -> (Vec<Seed>, Vec<Vec<u8>>, [u8; 2]) {
    let now = server_ms(c);
    cmd(c, &["HACK.TSCREATE", "t1", "ROLLUPS", "1s:1h", "1m:1d"]);
    for (inc, ago) in [
        (1i64, 0i64),
        (5, 1_500),
        (-3, 61_000),
        (1 << 40, 3_000_000),
        (7, 20 * 3_600_000),
        (i64::MAX / 4, 600_000),
        (-9, 3_590_000),
    ] {
        let at = (now - ago).to_string();
        cmd(c, &["HACK.TSINCR", "t1", &inc.to_string(), "AT", &at]);
    }
    // A default-rollup series.
    cmd(c, &["HACK.TSINCR", "t2", "5"]);
    cmd(
        c,
        &[
            "HACK.TSINCR",
            "t2",
            "2",
            "AT",
            &(now - 86_000_000).to_string(),
        ],
    );
    // Fine resolution, three rollups.
    cmd(
        c,
        &[
            "HACK.TSCREATE",
            "t3",
            "ROLLUPS",
            "100ms:2s",
            "1s:1m",
            "1m:1h",
        ],
    );
    for ago in [0i64, 150, 1_900, 30_000, 1_000_000] {
        let at = (now - ago).to_string();
        cmd(c, &["HACK.TSINCR", "t3", "3", "AT", &at]);
    }
    cmd(c, &["HACK.BUFINCR", "b1", "m1", "1", "m2", "2"]);
    cmd(c, &["HACK.DRAIN", "b1", "COUNT", "1", "LEASE", "60000"]);
    // m1 is in flight and pending again.
    cmd(c, &["HACK.BUFINCR", "b1", "m1", "5", "m3", "-4"]);
    cmd(
        c,
        &[
            "HACK.BUFINCR",
            "b2",
            "12345",
            "9223372036854775807",
            "-7",
            "-9223372036854775808",
            "member-with-a-long-name-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "3",
            "\u{0}\r\n\u{ff}",
            "1",
        ],
    );
    cmd(c, &["HACK.BUFINCR", "b3", "a", "1", "b", "2", "c", "3"]);
    cmd(c, &["HACK.DRAIN", "b3", "COUNT", "1", "LEASE", "60000"]);
    cmd(c, &["HACK.DRAIN", "b3", "COUNT", "1", "LEASE", "1"]);
    cmd(c, &["HACK.BUFINCR", "b3", "a", "10", "d", "4"]);
    cmd(c, &["HACK.BUFINCR", "b4", "x", "1"]);
    cmd(c, &["HACK.DRAIN", "b4", "COUNT", "10", "LEASE", "60000"]);
    cmd(c, &["HACK.LOCK", "l1", "owner", "60000"]);
    cmd(c, &["HACK.LOCK", "l2", "worker-7\u{0}binary", "600000"]);
    let mut seeds = Vec::new();
    for k in ["t1", "t2", "t3", "b1", "b2", "b3", "b4", "l1", "l2"] {
        seeds.push(module_seed(c, k));
    }
    for (k, algo) in [("rf", "FIXED"), ("rs", "SLIDING"), ("rg", "GCRA")] {
        for _ in 0..3 {
            cmd(c, &["HACK.RATEHIT", k, "10", "60000", "ALGO", algo]);
        }
    }
    let mut states = Vec::new();
    for k in ["rf", "rs", "rg"] {
        let v: Vec<u8> = redis::cmd("GET").arg(k).query(c).unwrap();
        states.push(v);
    }
    let rdb_ver = seeds[0].rdb_ver;
    (seeds, states, rdb_ver)
}

// ---------------------------------------------------------------------------------------
// Running payloads.
// ---------------------------------------------------------------------------------------

fn run(c: &mut Connection, args: &[&[u8]]) -> Result<Value, redis::RedisError> {
    let mut r = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        r.arg(*a);
    }
    r.query(c)
}

/// Where a crash, a lost connection or a hang points: the payload, in hex.
fn fail(s: &mut Server, m: &Mutant, what: &str) -> ! {
    let alive = s.alive();
    let log = s.log();
    let tail: Vec<&str> = log.lines().rev().take(40).collect();
    panic!(
        "{what} (server alive: {alive}) after {} [{}]\npayload: {}\nlog tail:\n{}",
        m.what,
        m.ty,
        hex(&m.payload),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
}

#[derive(Default)]
struct Tally {
    loaded: usize,
    refused: usize,
}

/// Restore every mutant; check what loaded. Returns the loaded keys with their digests.
fn restore_all(
    s: &mut Server,
    c: &mut Connection,
    mutants: &[Mutant],
    tally: &mut BTreeMap<&'static str, Tally>,
    max_latency: &mut Duration,
) -> Vec<(String, String, usize)> {
    let now = server_ms(c);
    let (from, to) = ((now - 3_600_000).to_string(), now.to_string());
    let mut kept = Vec::new();
    for (i, m) in mutants.iter().enumerate() {
        let key = format!("k{i}");
        let t = Instant::now();
        let r = run(
            c,
            &[b"RESTORE", key.as_bytes(), b"0", &m.payload, b"REPLACE"],
        );
        let took = t.elapsed();
        *max_latency = (*max_latency).max(took);
        if took > MAX_LATENCY {
            fail(s, m, &format!("RESTORE took {took:?}"));
        }
        if !s.alive() {
            fail(s, m, "the server died");
        }
        let t = tally.entry(m.ty).or_default();
        match r {
            Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => {
                fail(s, m, &format!("RESTORE lost the connection: {e}"))
            }
            Err(_) => {
                t.refused += 1;
                let exists = int(&cmd(c, &["EXISTS", &key]));
                if exists != 0 {
                    fail(s, m, "a refused RESTORE left a key");
                }
            }
            Ok(_) => {
                t.loaded += 1;
                let t = Instant::now();
                let d = check_loaded(s, c, m, &key, (&from, &to));
                let took = t.elapsed();
                *max_latency = (*max_latency).max(took);
                if took > MAX_LATENCY {
                    fail(s, m, &format!("checking the loaded key took {took:?}"));
                }
                kept.push((key, d, i));
            }
        }
        if i % 200 == 0 {
            match redis::cmd("PING").query::<String>(c) {
                Ok(p) if p == "PONG" => {}
                other => fail(s, m, &format!("PING answered {other:?}")),
            }
        }
    }
    kept
}

/// A loaded key: bounded memory, DUMP/RESTORE to the same digest, read-only commands do not
/// crash. Returns its digest.
fn check_loaded(
    s: &mut Server,
    c: &mut Connection,
    m: &Mutant,
    key: &str,
    (from, to): (&str, &str),
) -> String {
    let d = state(c, key);
    if d.starts_with("none ") {
        fail(s, m, "RESTORE succeeded but left no key");
    }
    let used = int(&cmd(c, &["MEMORY", "USAGE", key]));
    let bound = 64 * m.payload.len() as i64 + 4096;
    if used > bound {
        fail(
            s,
            m,
            &format!(
                "MEMORY USAGE {used} > {bound} for a {} byte payload",
                m.payload.len()
            ),
        );
    }
    let again = match run(c, &[b"DUMP", key.as_bytes()]) {
        Ok(Value::BulkString(b)) => b,
        other => fail(s, m, &format!("DUMP of the loaded key: {other:?}")),
    };
    let copy = format!("{key}:copy");
    if let Err(e) = run(c, &[b"RESTORE", copy.as_bytes(), b"0", &again, b"REPLACE"]) {
        fail(
            s,
            m,
            &format!("its own DUMP is refused: {e}; DUMP: {}", hex(&again)),
        );
    }
    if state(c, &copy) != d {
        fail(
            s,
            m,
            &format!("DUMP/RESTORE changed the value; DUMP: {}", hex(&again)),
        );
    }
    // COPY (the type's copy callback) gives the same value.
    let copy2 = format!("{key}:copy2");
    probe(
        s,
        c,
        m,
        &[b"COPY", copy.as_bytes(), copy2.as_bytes(), b"REPLACE"],
    );
    if state(c, &copy2) != d {
        fail(s, m, "COPY changed the value");
    }
    // Read-only commands on whatever loaded: errors are fine, crashes and panics are not.
    let c2 = copy2.as_bytes();
    for p in [
        &[&b"HACK.TSINFO"[..], c2][..],
        &[b"HACK.TSRANGE", c2, from.as_bytes(), to.as_bytes()],
        &[b"HACK.TSSUM", c2, b"0", b"9223372036854775807"],
        &[b"HACK.BUFINFO", c2],
        &[b"HACK.LOCKINFO", c2],
    ] {
        probe(s, c, m, p);
    }
    if state(c, &copy2) != d {
        fail(s, m, "a read-only command changed the value");
    }
    // Then commands that change it (on the copy).
    let earlier = (server_ms(c) - 3_000_000).to_string();
    for p in [
        &[&b"HACK.TSINCR"[..], c2][..],
        &[b"HACK.TSINCR", c2, b"-5", b"AT", earlier.as_bytes()],
        &[b"HACK.TSINCR", c2, b"9223372036854775807"],
        &[b"HACK.BUFINCR", c2, b"m1", b"1", b"a", b"-1"],
        &[b"HACK.DRAIN", c2, b"COUNT", b"1"],
        &[b"HACK.LOCK", c2, b"someone", b"1000"],
        &[b"HACK.EXTEND", c2, b"someone", b"1000"],
        &[b"HACK.UNLOCK", c2, b"someone"],
    ] {
        probe(s, c, m, p);
    }
    for _ in 0..3 {
        let r = probe(
            s,
            c,
            m,
            &[b"HACK.DRAIN", c2, b"COUNT", b"2", b"LEASE", b"1"],
        );
        if let Some(Value::Array(v)) = r {
            if let Some(Value::Int(id)) = v.first() {
                probe(s, c, m, &[b"HACK.ACK", c2, id.to_string().as_bytes()]);
            }
        }
    }
    if m.ty == RATELIMIT {
        for algo in ["FIXED", "SLIDING", "GCRA"] {
            for extra in [&["PEEK"][..], &[]] {
                let mut args: Vec<&[u8]> = vec![
                    b"HACK.RATEHIT",
                    copy.as_bytes(),
                    b"10",
                    b"60000",
                    b"ALGO",
                    algo.as_bytes(),
                ];
                args.extend(extra.iter().map(|a| a.as_bytes()));
                probe(s, c, m, &args);
            }
        }
    }
    cmd(c, &["DEL", &copy2]);
    if !s.alive() {
        fail(s, m, "the server died checking the loaded key");
    }
    cmd(c, &["DEL", &copy]);
    d
}

/// Run a command on a loaded value: an error reply is fine, a lost connection is not.
fn probe(s: &mut Server, c: &mut Connection, m: &Mutant, args: &[&[u8]]) -> Option<Value> {
    match run(c, args) {
        Ok(v) => Some(v),
        Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => {
            let shown: Vec<String> = args
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            fail(s, m, &format!("{shown:?} lost the connection: {e}"))
        }
        Err(_) => None,
    }
}

/// A key's type and `DEBUG DIGEST-VALUE` (a missing key digests as zeros, like some
/// values: the type tells them apart).
fn state(c: &mut Connection, key: &str) -> String {
    let ty = text(&cmd(c, &["TYPE", key]));
    format!("{ty} {}", digest(c, key).unwrap_or_default())
}

fn time_us(c: &mut Connection) -> i64 {
    let (s, us): (i64, i64) = redis::cmd("TIME").query(c).unwrap();
    s * 1_000_000 + us
}

fn lock_token(c: &mut Connection, key: &str) -> i64 {
    int(&cmd(c, &["HACK.LOCK", key, "someone", "60000"]))
}

fn leased_batch_id(c: &mut Connection, key: &str) -> i64 {
    let r = cmd(c, &["HACK.DRAIN", key, "COUNT", "10", "LEASE", "10000"]);
    match r {
        Value::Array(v) => int(&v[0]),
        other => panic!("HACK.DRAIN {key} LEASE: {other:?}"),
    }
}

#[test]
fn crc64_is_redis_crc64() {
    assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    assert_eq!(crc64_bitwise(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    let mut rng = Rng(7);
    for len in 0..300 {
        let b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        assert_eq!(crc64(&b), crc64_bitwise(&b));
    }
    assert_eq!(type_id("hacks-lck", 1) & 1023, 1);
}

#[test]
fn crafted_payloads_never_crash_and_what_loads_round_trips() {
    let started = Instant::now();
    let mut s = Server::start();
    let mut c = s.conn();
    let (seeds, states, rdb_ver) = make_seeds(&mut c);
    let rng_seed = std::env::var("HACKS_RESTORE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_0f0d_u64);
    let mut rng = Rng(rng_seed);
    let mut mutants = module_mutants(&seeds, &mut rng);
    mutants.extend(edge_cases(&seeds, server_ms(&mut c)));
    mutants.extend(large_cases(rdb_ver, server_ms(&mut c)));
    mutants.extend(ratelimit_mutants(&states, rdb_ver, &mut rng));
    let before = used_memory(&mut c);
    let mut tally: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut max_latency = Duration::ZERO;
    let kept = restore_all(&mut s, &mut c, &mutants, &mut tally, &mut max_latency);
    let restore_time = started.elapsed();

    let loaded_bytes: i64 = kept
        .iter()
        .map(|(_, _, i)| mutants[*i].payload.len() as i64)
        .sum();
    let grown = used_memory(&mut c) - before;
    let bound = 64 * loaded_bytes + 4096 * kept.len() as i64 + (32 << 20);
    assert!(
        grown <= bound,
        "used_memory grew by {grown} (bound {bound})"
    );

    // Everything that loaded survives a save and load of the whole dataset.
    cmd(&mut c, &["DEBUG", "RELOAD"]);
    assert!(s.alive(), "DEBUG RELOAD crashed the server:\n{}", s.log());
    for (key, d, i) in &kept {
        let now = state(&mut c, key);
        assert_eq!(
            &now,
            d,
            "{key} changed through DEBUG RELOAD: {} [{}]\npayload: {}",
            mutants[*i].what,
            mutants[*i].ty,
            hex(&mutants[*i].payload)
        );
    }

    // No crafted id pinned the marks: fresh ids are near the clock and still increase.
    let now_us = time_us(&mut c);
    let a = lock_token(&mut c, "fresh-lock-1");
    let b = lock_token(&mut c, "fresh-lock-2");
    assert_fresh_ids("token", a, b, now_us);
    cmd(&mut c, &["HACK.BUFINCR", "fresh-buf-1", "m", "1"]);
    cmd(&mut c, &["HACK.BUFINCR", "fresh-buf-2", "m", "1"]);
    let x = leased_batch_id(&mut c, "fresh-buf-1");
    let y = leased_batch_id(&mut c, "fresh-buf-2");
    assert_fresh_ids("batch id", x, y, now_us);

    let _: String = redis::cmd("PING").query(&mut c).unwrap();
    assert!(s.alive());
    let panics = info_field(&mut c, "hacks_panics_caught");

    println!(
        "{} payloads in {:.1?} (restore phase {:.1?}), slowest RESTORE or check {:.1?}, \
         seed {rng_seed:#x}, server {}",
        mutants.len(),
        started.elapsed(),
        restore_time,
        max_latency,
        server_bin()
    );
    for (ty, t) in &tally {
        println!("  {ty}: {} loaded, {} refused", t.loaded, t.refused);
    }
    assert_eq!(panics, 0, "loader panics caught; log:\n{}", s.log());
    for ty in TYPES.into_iter().chain([RATELIMIT]) {
        let t = tally.get(ty).unwrap_or_else(|| panic!("no {ty} payloads"));
        assert!(
            t.loaded > 0 && t.refused > 0,
            "{ty}: {} loaded, {} refused: the corpus must do both",
            t.loaded,
            t.refused
        );
    }
}

/// A lock token or batch id no clock could produce (2^64-1, 2^63-1) is refused by RESTORE,
/// and later ids are still near the clock and increasing (they used to be pinned at
/// 2^63-1 for good).
#[test]
fn restored_ids_no_clock_made_are_refused_and_do_not_pin_the_marks() {
    let (_s, mut c) = Server::start_with_conn();
    let token = lock_token(&mut c, "l");
    let seed = module_seed(&mut c, "l");
    assert_eq!(
        seed.value.fields.get(1),
        Some(&Field::Uint(token as u64)),
        "lock encoding: owner, token"
    );
    let with_token = |t: u64| {
        let mut v = seed.value.clone();
        v.fields[1] = Field::Uint(t);
        seal(&v.encode(false), seed.rdb_ver)
    };
    for bad in [u64::MAX, i64::MAX as u64] {
        let p = with_token(bad);
        let r = run(&mut c, &[b"RESTORE", b"l2", b"0", &p, b"REPLACE"]);
        assert!(r.is_err(), "lock with token {bad} restored: {}", hex(&p));
        assert_eq!(int(&cmd(&mut c, &["EXISTS", "l2"])), 0);
    }
    // The same framing with a plausible token loads (the refusals were about the token).
    let p = with_token(token as u64 + 1);
    run(&mut c, &[b"RESTORE", b"l3", b"0", &p, b"REPLACE"]).expect("plausible token");
    let before = time_us(&mut c);
    let a = lock_token(&mut c, "fresh");
    let after = time_us(&mut c);
    assert!(
        a >= before - 1_000_000 && a <= after + 1_000_000,
        "token {a} is not the clock (TIME {before}..{after} us)"
    );
    let b = lock_token(&mut c, "fresh2");
    assert!(b > a, "tokens {a} then {b}");
    assert_eq!(int(&cmd(&mut c, &["HACK.UNLOCK", "fresh", "someone"])), 1);
    let again = lock_token(&mut c, "fresh");
    assert!(again > b, "tokens {b} then {again}");

    cmd(&mut c, &["HACK.BUFINCR", "b", "m1", "1", "m2", "2"]);
    let id = leased_batch_id(&mut c, "b");
    let seed = module_seed(&mut c, "b");
    let at = seed
        .value
        .fields
        .iter()
        .position(|f| *f == Field::Uint(id as u64))
        .expect("the batch id in the buffer's encoding");
    for bad in [u64::MAX, i64::MAX as u64] {
        let mut v = seed.value.clone();
        v.fields[at] = Field::Uint(bad);
        let p = seal(&v.encode(false), seed.rdb_ver);
        let r = run(&mut c, &[b"RESTORE", b"b2", b"0", &p, b"REPLACE"]);
        assert!(
            r.is_err(),
            "buffer with batch id {bad} restored: {}",
            hex(&p)
        );
        assert_eq!(int(&cmd(&mut c, &["EXISTS", "b2"])), 0);
    }
    cmd(&mut c, &["HACK.BUFINCR", "x1", "m", "1"]);
    cmd(&mut c, &["HACK.BUFINCR", "x2", "m", "1"]);
    let now = time_us(&mut c);
    let x = leased_batch_id(&mut c, "x1");
    let y = leased_batch_id(&mut c, "x2");
    assert_ne!(x, y, "two leases got batch id {x}");
    assert!(y > x, "batch ids {x} then {y}");
    assert!(
        (x - now).abs() < 5_000_000,
        "batch id {x} is not the clock ({now} us)"
    );
    // The marks saved in the RDB (aux data) are the sane ones too.
    cmd(&mut c, &["DEBUG", "RELOAD"]);
    let now = time_us(&mut c);
    let t = lock_token(&mut c, "after-reload");
    assert!(t > again, "tokens {again} then {t} across DEBUG RELOAD");
    assert!((t - now).abs() < 5_000_000, "token {t} at {now} us");
    cmd(&mut c, &["HACK.BUFINCR", "x3", "m", "1"]);
    let z = leased_batch_id(&mut c, "x3");
    assert!(z > y, "batch ids {y} then {z} across DEBUG RELOAD");
    assert!((z - now).abs() < 5_000_000, "batch id {z} at {now} us");
    assert_eq!(info_field(&mut c, "hacks_panics_caught"), 0);
}

/// Two ids of one kind (`what`: "token", "batch id") made one after the other at about
/// `now_us`: they increase, and no restored value pushed them further ahead of the clock
/// than an id may be (`MAX_AHEAD_US`, plus ten seconds of slack).
fn assert_fresh_ids(what: &str, first: i64, second: i64, now_us: i64) {
    assert!(second > first, "{what}s {first} then {second}");
    assert!(
        first < now_us + MAX_AHEAD_US + 10_000_000,
        "{what} {first} at {now_us}"
    );
}

/// Unsigned fields, in order.
fn uints(values: &[u64]) -> Vec<Field> {
    values.iter().map(|&v| Field::Uint(v)).collect()
}

/// A buffer value with nothing pending and one leased batch: batch `id` with lease
/// `deadline`, delivered `delivery` times, holding `(member, value)` entries.
fn one_batch(id: u64, deadline: u64, delivery: u64, entries: Vec<(Field, u64)>) -> Vec<Field> {
    let mut f = uints(&[0, 1, id, deadline, delivery, entries.len() as u64]);
    for (member, value) in entries {
        f.extend([member, Field::Uint(value)]);
    }
    f
}

/// Values no command produces but each field of which the loader accepts on its own: the
/// edges between "a real value could hold this" and "refused".
fn edge_cases(seeds: &[Seed], now_ms: i64) -> Vec<Mutant> {
    use Field::{Str, Uint};
    let id = (now_ms * 1000) as u64;
    let dl = (now_ms + 60_000) as u64;
    let newest = (now_ms / 1000) as u64;
    let far = i64::MAX as u64 / 2;
    let m = || Str(b"m".to_vec());
    let cases: Vec<(&'static str, &str, Vec<Field>)> = vec![
        ("hacks-buf", "empty buffer", uints(&[0, 0])),
        (
            "hacks-buf",
            "batch without entries",
            one_batch(id, dl, 1, vec![]),
        ),
        (
            "hacks-buf",
            "batch id 0",
            one_batch(0, dl, 1, vec![(m(), 1)]),
        ),
        (
            "hacks-buf",
            "delivery 0",
            one_batch(id, dl, 0, vec![(m(), 1)]),
        ),
        (
            "hacks-buf",
            "negative deadline",
            one_batch(id, u64::MAX, 1, vec![(m(), 1)]),
        ),
        (
            "hacks-buf",
            "pending value 0",
            vec![Uint(1), m(), Uint(0), Uint(0)],
        ),
        (
            "hacks-buf",
            "pending member twice",
            vec![Uint(2), m(), Uint(1), m(), Uint(2), Uint(0)],
        ),
        (
            "hacks-buf",
            "member twice in one batch",
            one_batch(id, dl, 1, vec![(m(), 1), (m(), 2)]),
        ),
        (
            "hacks-buf",
            "empty member name",
            vec![Uint(1), Str(Vec::new()), Uint(1), Uint(0)],
        ),
        ("hacks-lck", "empty owner", vec![Str(Vec::new()), Uint(id)]),
        ("hacks-lck", "token 0", vec![Str(b"o".to_vec()), Uint(0)]),
        (
            "hacks-tss",
            "expiry beyond what the buckets give",
            uints(&[1, far, 1, 1000, 60_000, 1, newest, 1, newest, 5]),
        ),
        (
            "hacks-tss",
            "newest without buckets",
            uints(&[0, 0, 1, 1000, 60_000, 1, newest, 0]),
        ),
        (
            "hacks-tss",
            "no buckets, no newest",
            uints(&[0, 0, 1, 1000, 60_000, 0, 0, 0]),
        ),
        (
            "hacks-tss",
            "bucket far behind the clock",
            uints(&[0, 0, 1, 1000, 60_000, 1, 5, 1, 5, 1]),
        ),
        (
            "hacks-tss",
            "bucket far ahead of the clock",
            uints(&[0, 0, 1, 1000, 60_000, 1, newest * 1000, 1, newest * 1000, 1]),
        ),
    ];
    crafted("edge case", seeds[0].rdb_ver, cases)
}

/// Large values (megabytes): loading, copying and saving them stays linear, and their
/// memory follows their size.
fn large_cases(rdb_ver: [u8; 2], now_ms: i64) -> Vec<Mutant> {
    use Field::{Str, Uint};
    let id0 = (now_ms * 1000) as u64;
    let dl = (now_ms + 60_000) as u64;
    let member = |i: usize| Str(format!("m{i}").into_bytes());
    let mut cases: Vec<(&'static str, String, Vec<Field>)> = Vec::new();
    let n = 200_000;
    let mut f = vec![Uint(n as u64)];
    for i in 0..n {
        f.extend([member(i), Uint(i as u64 + 1)]);
    }
    f.push(Uint(0));
    cases.push(("hacks-buf", format!("{n} pending members"), f));
    let mut f = vec![Uint(n as u64)];
    for _ in 0..n {
        f.extend([member(7), Uint(1)]);
    }
    f.push(Uint(0));
    cases.push(("hacks-buf", format!("one member {n} times"), f));
    let batches = 20_000;
    let mut f = vec![Uint(0), Uint(batches as u64)];
    for b in 0..batches {
        f.extend([Uint(id0 + b as u64), Uint(dl), Uint(1), Uint(2)]);
        f.extend([member(2 * b), Uint(1), member(2 * b + 1), Uint(2)]);
    }
    cases.push(("hacks-buf", format!("{batches} batches"), f));
    let newest = now_ms as u64;
    for (what, step) in [("consecutive", 1u64), ("spread", 1000)] {
        let mut f = vec![Uint(0), Uint(0), Uint(1)];
        // 1ms:100y: retention 3,153,600,000,000 ms.
        f.extend([
            Uint(1),
            Uint(3_153_600_000_000),
            Uint(1),
            Uint(newest),
            Uint(n as u64),
        ]);
        for i in (0..n as u64).rev() {
            f.extend([Uint(newest - i * step), Uint(i + 1)]);
        }
        cases.push(("hacks-tss", format!("{n} {what} buckets"), f));
    }
    let mut f = vec![Uint(0), Uint(0), Uint(8)];
    for r in 0..8u32 {
        let res = 10u64.pow(r);
        f.extend([Uint(res), Uint(res * 100_000), Uint(1), Uint(newest / res)]);
        f.push(Uint(1000));
        for i in (0..1000).rev() {
            f.extend([Uint(newest / res - i), Uint(1)]);
        }
    }
    cases.push(("hacks-tss", "8 rollups of 1000 buckets".into(), f));
    cases.push((
        "hacks-lck",
        "a 4 MB owner".into(),
        vec![Str(vec![b'o'; 4 << 20]), Uint(id0)],
    ));
    crafted("large", rdb_ver, cases)
}

/// Mutants written by hand as `(type, what, fields)`: each value is sealed as a payload of
/// encoding version 1 of its type, described as `{kind}: {what}`.
fn crafted<W: std::fmt::Display>(
    kind: &str,
    rdb_ver: [u8; 2],
    cases: Vec<(&'static str, W, Vec<Field>)>,
) -> Vec<Mutant> {
    cases
        .into_iter()
        .map(|(ty, what, fields)| Mutant {
            ty,
            what: format!("{kind}: {what}"),
            payload: seal(
                &ModValue {
                    id: type_id(ty, 1),
                    fields,
                    eof: true,
                }
                .encode(false),
                rdb_ver,
            ),
        })
        .collect()
}

fn persistence_field(c: &mut Connection, field: &str) -> String {
    let info: String = redis::cmd("INFO").arg("persistence").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO persistence:\n{info}"))
        .trim()
        .to_string()
}

/// What RESTORE loads is rebuilt by the AOF rewrite's commands: the same digest after
/// `DEBUG LOADAOF` from a rewritten AOF without RDB preamble.
#[test]
fn what_restore_loads_survives_an_aof_rewrite() {
    let mut s = Server::start();
    let mut c = s.conn();
    let (seeds, _, _) = make_seeds(&mut c);
    let now = server_ms(&mut c);
    let mut mutants = edge_cases(&seeds, now);
    for seed in &seeds {
        for (what, body) in systematic(seed) {
            mutants.push(Mutant {
                ty: seed.ty,
                what: format!("{}: {what}", seed.name),
                payload: seal(&body, seed.rdb_ver),
            });
        }
    }
    let mut tally: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut max_latency = Duration::ZERO;
    let kept = restore_all(&mut s, &mut c, &mutants, &mut tally, &mut max_latency);
    for k in ["t1", "t2", "t3", "b1", "b2", "b3", "b4", "l1", "l2"] {
        cmd(&mut c, &["DEL", k]);
    }
    cmd(&mut c, &["CONFIG", "SET", "aof-use-rdb-preamble", "no"]);
    cmd(&mut c, &["CONFIG", "SET", "appendonly", "yes"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while persistence_field(&mut c, "aof_rewrite_in_progress") != "0"
        || persistence_field(&mut c, "aof_rewrite_scheduled") != "0"
        || persistence_field(&mut c, "aof_enabled") != "1"
    {
        assert!(Instant::now() < deadline, "the AOF rewrite did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(persistence_field(&mut c, "aof_last_bgrewrite_status"), "ok");
    cmd(&mut c, &["DEBUG", "LOADAOF"]);
    assert!(s.alive(), "DEBUG LOADAOF crashed the server:\n{}", s.log());
    let mut lost = Vec::new();
    for (key, d, i) in &kept {
        let now = state(&mut c, key);
        if &now != d {
            let m = &mutants[*i];
            lost.push(format!(
                "{key} {} after the AOF rewrite: {} [{}]\n  payload: {}",
                if now.starts_with("none ") {
                    "missing"
                } else {
                    "changed"
                },
                m.what,
                m.ty,
                hex(&m.payload)
            ));
        }
    }
    println!(
        "{} payloads, {} loaded, {} differ after the AOF rewrite",
        mutants.len(),
        kept.len(),
        lost.len()
    );
    assert_eq!(info_field(&mut c, "hacks_panics_caught"), 0);
    assert!(
        lost.is_empty(),
        "{} of {} loaded keys did not survive the AOF rewrite:\n{}",
        lost.len(),
        kept.len(),
        lost.join("\n")
    );
}
