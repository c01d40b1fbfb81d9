//! `HACK.TSRANGE key from to [STEP ms]`

use crate::module::args::{is_keyword, Args};
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::timeseries::settings::TS_MAX_RANGE_POINTS;

use crate::timeseries::args::time_arg;
use crate::timeseries::kind::{open_either, Opened};
use crate::timeseries::series::RangeError;

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let step = match args.len() {
        4 => None,
        6 if is_keyword(args.bytes(4)?, "STEP") => Some(args.int_in(5, "STEP", 1, i64::MAX)?),
        6 => return Err(crate::module::args::unknown_option(args.bytes(4)?)),
        _ => return Err(CmdError::arity("HACK.TSRANGE")),
    };
    let now = ctx.now_us()?.div_euclid(1000);
    let from = time_arg(args, 2, now)?;
    let to = time_arg(args, 3, now)?;
    let max = TS_MAX_RANGE_POINTS.get();
    let range_error = |e| match e {
        RangeError::BadStep => CmdError::Static(
            "ERR STEP must be a multiple of the resolution of a rollup covering the range",
        ),
        RangeError::TooManyPoints(n) => CmdError::msg(format!(
            "ERR the range has {n} points, more than hacks.ts-max-range-points ({max})"
        )),
    };
    let points: Vec<(i64, i64)> = match open_either(ctx, args.raw(1)?)? {
        Opened::Counting(key) => match key.get()? {
            Some(series) => series
                .range(now, from, to, step, max)
                .map_err(range_error)?,
            None => vec![],
        },
        // A distinct series: the distinct count of each step.
        Opened::Distinct(key) => match key.get()? {
            Some(series) => series
                .range(now, from, to, step, max)
                .map_err(range_error)?
                .into_iter()
                .map(|(t, n)| (t, i64::try_from(n).unwrap_or(i64::MAX)))
                .collect(),
            None => vec![],
        },
    };
    ctx.reply_array(points.len())?;
    for (t, v) in points {
        ctx.reply_array(2)?;
        ctx.reply_i64(t)?;
        ctx.reply_i64(v)?;
    }
    Ok(())
}
