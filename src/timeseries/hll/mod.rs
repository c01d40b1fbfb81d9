//! A pure-Rust HyperLogLog that is bit-compatible with Redis's own (`PFADD` / `PFCOUNT`).
//!
//! Distinct-count time series keep one sketch per time bucket; the count of a range must be
//! exactly what `PFCOUNT` returns for one HLL key that received the same members, and the
//! count of a union exactly what `PFCOUNT k1 k2 ...` returns. So every step is Redis's:
//!
//! - `murmur.rs`: MurmurHash64A with Redis's seed `0xadc83b19` (little-endian words and tail);
//! - `registers.rs`: 2^14 registers of 6 bits; a member's register (low 14 bits of its hash)
//!   and value (position of the first 1 bit in the other 50, bit 50 forced: 1..=51), the
//!   6-bit packing (the same bytes as Redis's dense encoding), and [`Registers`], a plain
//!   one-byte-a-register accumulator for unions (like Redis's internal `HLL_RAW`);
//! - `estimate.rs`: Ertl's improved estimator that Redis uses since 5.0 (`hllTau`,
//!   `hllSigma` over the register histogram, rounded half away from zero);
//! - `sketch.rs`: [`Sketch`], sparse while small, dense (12 KB) past a caller-given byte
//!   bound, with merge, equality by registers and a validated serialization for RDB.
//!
//! Checked against redis-server 7.0.15: the unit tests hard-code counts and register digests
//! the server returned (each says the redis-cli commands that produce it), and
//! `server_check.rs` holds ignored tests that compare against a live server
//! (`HLL_REDIS_URL=redis://127.0.0.1:PORT cargo test --lib timeseries::hll -- --ignored`).

pub mod entries;
pub mod estimate;
pub mod murmur;
pub mod registers;
pub mod sketch;

#[cfg(test)]
mod rng;
#[cfg(test)]
mod server_check;
#[cfg(test)]
mod testdata;

pub use estimate::{estimate, Histogram};
pub use registers::{pattern, Registers, DENSE_BYTES, MAX_VALUE, REGISTERS};
pub use sketch::{Sketch, DEFAULT_SPARSE_MAX_BYTES};
