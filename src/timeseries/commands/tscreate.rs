//! `HACK.TSCREATE key ROLLUPS rollup [rollup ...] [DISTINCT]`

use redis_module::raw;

use crate::module::args::Args;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::replicate;
use crate::module::strkey::key_exists;
use crate::module::typedkey::TypedKey;

use crate::module::args::is_keyword;
use crate::timeseries::args::rollups_until;
use crate::timeseries::datatype::SERIES_TYPE;
use crate::timeseries::distinct::DistinctSeries;
use crate::timeseries::distinct_type::DISTINCT_TYPE;
use crate::timeseries::series::Series;

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let n = args.len();
    let distinct = is_keyword(args.bytes(n.saturating_sub(1))?, "DISTINCT");
    let specs = rollups_until(args, 2, if distinct { n.saturating_sub(1) } else { n })?;
    let name = args.raw(1)?;
    if key_exists(ctx, name)? {
        return Err(CmdError::Static("ERR key already exists"));
    }
    if distinct {
        let mut key = TypedKey::open(ctx, name, &DISTINCT_TYPE, true)?;
        key.create(DistinctSeries::new(&specs))?;
    } else {
        let mut key = TypedKey::open(ctx, name, &SERIES_TYPE, true)?;
        key.create(Series::new(&specs))?;
    }
    // No clock involved: an empty series has no expiry until its first bucket.
    replicate::verbatim(ctx)?;
    ctx.signal_modified(name)?;
    ctx.notify(raw::REDISMODULE_NOTIFY_MODULE, c"hack.tscreate", name)?;
    ctx.reply_ok()
}
