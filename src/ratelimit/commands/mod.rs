//! One file per command, named after it without `HACK.`: the server glue (parse, read the
//! key, decide with the pure algorithms, write, replicate the effect, reply).

pub mod quota;
pub mod ratehit;

// Each command's definition (flags, arity, key spec, docs): `<name>.json` beside its file,
// turned by build.rs into a constant `<NAME>` and `register_all`.
include!(concat!(env!("OUT_DIR"), "/commands/ratelimit.rs"));
