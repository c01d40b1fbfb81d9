//! `HACK.TSSUM key [key ...] from to`

use crate::module::args::Args;
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::typedkey::TypedKey;

use crate::timeseries::args::time_arg;
use crate::timeseries::datatype::SERIES_TYPE;

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    // `args.len() >= 4`: none of these subtractions can underflow.
    let n = args.len().saturating_sub(3);
    // Reads may use the clock freely: nothing is written or replicated.
    let now = ctx.now_us()?.div_euclid(1000);
    let from = time_arg(args, args.len().saturating_sub(2), now)?;
    let to = time_arg(args, args.len().saturating_sub(1), now)?;
    let mut sums: Vec<i64> = Vec::with_capacity(n);
    for i in 1..=n {
        let name = args.raw(i)?;
        let key = TypedKey::open(ctx, name, &SERIES_TYPE, false)
            .map_err(|e| crate::timeseries::kind::wrong_family(e, ctx, name, false))?;
        let total = key.get()?.map_or(0, |s| s.sum(now, from, to));
        sums.push(
            i64::try_from(total)
                .map_err(|_| CmdError::Static("ERR the sum overflows a 64-bit integer"))?,
        );
    }
    crate::timeseries::stats::TS_SUMS.incr();
    match sums.as_slice() {
        [one] if n == 1 => ctx.reply_i64(*one),
        many => {
            ctx.reply_array(many.len())?;
            for v in many {
                ctx.reply_i64(*v)?;
            }
            Ok(())
        }
    }
}
