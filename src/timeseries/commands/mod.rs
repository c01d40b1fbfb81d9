//! One file per command, named after it without `HACK.`; `tsapply.rs` / `tsaddat.rs` and
//! `tsset.rs` / `tsdset.rs` are internal (the replicated effects of TSINCR / TSADD and the
//! AOF rewrite's rebuild of counting / distinct series, refused from clients).

pub mod tsadd;
pub mod tsaddat;
pub mod tsapply;
pub mod tscount;
pub mod tscreate;
pub mod tsdset;
pub mod tsincr;
pub mod tsinfo;
pub mod tsrange;
pub mod tsset;
pub mod tssum;

// Each command's definition (flags, arity, key spec, docs) is `<name>.json` beside its
// `<name>.rs` (whose `run` is the handler): build.rs turns them into the command's type,
// its `Command` impl, and `register_all`.
include!(concat!(env!("OUT_DIR"), "/commands/timeseries.rs"));
