//! One file per command, named after it without `HACK.`; `tsapply.rs` and `tsset.rs` are
//! internal (the replicated effect of TSINCR and the AOF rewrite's rebuild, refused from
//! clients).

use crate::module::command::register;
use crate::module::ctx::Ctx;

pub mod tsapply;
pub mod tscreate;
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
    // Internal effects.
    register::<tsapply::TsApply>(ctx)?;
    register::<tsset::TsSet>(ctx)
}
