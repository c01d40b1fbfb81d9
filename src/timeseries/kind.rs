//! Which family a key belongs to, for the commands both answer (`HACK.TSRANGE`,
//! `HACK.TSINFO`): a counting series (`hacks-tss`), a distinct series (`hacks-tsd`),
//! missing, or anything else (`WRONGTYPE`).

use crate::module::args::RStr;
use crate::module::ctx::Ctx;
use crate::module::error::{CmdError, WRONGTYPE};
use crate::module::typedkey::TypedKey;

use super::datatype::SERIES_TYPE;
use super::distinct::DistinctSeries;
use super::distinct_type::DISTINCT_TYPE;
use super::series::Series;

pub enum Opened<'t> {
    Counting(TypedKey<'t, Series>),
    Distinct(TypedKey<'t, DistinctSeries>),
}

/// Open `name` for reading as whichever series it holds (a missing key opens as counting,
/// empty).
pub fn open_either(ctx: &Ctx, name: RStr) -> Result<Opened<'static>, CmdError> {
    match TypedKey::open(ctx, name, &SERIES_TYPE, false) {
        Ok(k) => Ok(Opened::Counting(k)),
        Err(e) if e == WRONGTYPE => Ok(Opened::Distinct(TypedKey::open(
            ctx,
            name,
            &DISTINCT_TYPE,
            false,
        )?)),
        Err(e) => Err(e),
    }
}

/// The error a counting-series command answers on a distinct series (and back).
pub fn wrong_family(e: CmdError, ctx: &Ctx, name: RStr, distinct_wanted: bool) -> CmdError {
    if e != WRONGTYPE {
        return e;
    }
    let other_is_there = if distinct_wanted {
        TypedKey::open(ctx, name, &SERIES_TYPE, false).is_ok()
    } else {
        TypedKey::open(ctx, name, &DISTINCT_TYPE, false).is_ok()
    };
    match (other_is_there, distinct_wanted) {
        (true, true) => CmdError::Static(
            "WRONGTYPE the key holds a counting series (HACK.TSINCR/TSSUM), not a distinct series",
        ),
        (true, false) => CmdError::Static(
            "WRONGTYPE the key holds a distinct series (HACK.TSADD/TSCOUNT), not a counting series",
        ),
        _ => e,
    }
}
