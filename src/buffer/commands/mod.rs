//! One file per command, named after it without `HACK.`; `bufbatch.rs` is internal (the
//! replicated effect of a leased drain, refused from clients).

pub mod ack;
pub mod bufbatch;
pub mod bufincr;
pub mod bufinfo;
pub mod bufupdate;
pub mod drain;

// Each command's definition (flags, arity, key spec, docs): `<name>.json` beside its file,
// turned by build.rs into a constant `<NAME>` and `register_all`.
include!(concat!(env!("OUT_DIR"), "/commands/buffer.rs"));
