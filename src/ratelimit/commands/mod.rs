//! One file per command, named after it without `HACK.`: the server glue (parse, read the
//! key, decide with the pure algorithms, write, replicate the effect, reply).

pub mod quota;
pub mod ratehit;

// Each command's definition (flags, arity, key spec, docs) is `<name>.json` beside its
// `<name>.rs` (whose `run` is the handler): build.rs turns them into the command's type,
// its `Command` impl, and `register_all`.
include!(concat!(env!("OUT_DIR"), "/commands/ratelimit.rs"));
