//! Write buffers: `HACK.BUFINCR`, `HACK.DRAIN`, `HACK.ACK`, `HACK.BUFINFO` (and the internal
//! `HACK.BUFBATCH`, the replicated effect of a leased drain).
//!
//! - `store.rs`: the buffer (pending entries in arrival order, leased batches), pure Rust;
//! - `ids.rs`: batch ids that are never reused;
//! - `datatype.rs`: the `hacks-buf` data type (RDB, AOF rewrite, digest, copy, memory);
//! - one file per command.

pub mod ack;
pub mod bufbatch;
pub mod bufincr;
pub mod bufinfo;
pub mod datatype;
pub mod drain;
pub mod ids;
pub mod stats;
pub mod store;
