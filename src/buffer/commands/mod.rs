//! One file per command, named after it without `HACK.`; `bufbatch.rs` is internal (the
//! replicated effect of a leased drain, refused from clients).

pub mod ack;
pub mod bufbatch;
pub mod bufincr;
pub mod bufinfo;
pub mod bufupdate;
pub mod drain;

// Each command's definition (flags, arity, key spec, docs) is `<name>.json` beside its
// `<name>.rs` (whose `run` is the handler): build.rs turns them into the command's type,
// its `Command` impl, and `register_all`.
include!(concat!(env!("OUT_DIR"), "/commands/buffer.rs"));
