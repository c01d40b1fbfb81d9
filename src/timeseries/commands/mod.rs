//! One file per command, named after it without `HACK.`; `tsapply.rs` / `tsaddat.rs` and
//! `tsset.rs` / `tsdset.rs` are internal (the replicated effects of TSINCR / TSADD and the
//! AOF rewrite's rebuild of counting / distinct series, refused from clients).

use crate::module::command::register;
use crate::module::ctx::Ctx;

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

pub fn register_all(ctx: &Ctx) -> Result<(), String> {
    register::<tscreate::TsCreate>(ctx)?;
    register::<tsincr::TsIncr>(ctx)?;
    register::<tssum::TsSum>(ctx)?;
    register::<tsrange::TsRange>(ctx)?;
    register::<tsinfo::TsInfo>(ctx)?;
    register::<tsadd::TsAdd>(ctx)?;
    register::<tscount::TsCount>(ctx)?;
    // Internal effects.
    register::<tsapply::TsApply>(ctx)?;
    register::<tsaddat::TsAddAt>(ctx)?;
    register::<tsdset::TsDSet>(ctx)?;
    register::<tsset::TsSet>(ctx)
}
