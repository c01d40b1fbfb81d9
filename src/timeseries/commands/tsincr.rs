//! `HACK.TSINCR key [increment] [AT unix_ms]`

use redis_module::raw;

use crate::module::args::{is_keyword, Args};
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::io::StrVec;
use crate::module::replicate;

use crate::timeseries::args::at_arg;
use crate::timeseries::increment::apply;
use crate::timeseries::write::When;
use crate::timeseries::{defaults, stats};

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let (inc, at) = match args.len() {
        2 => (1, None),
        3 => (args.i64_at(2)?, None),
        4 if is_keyword(args.bytes(2)?, "AT") => (1, Some(at_arg(args, 3)?)),
        5 if is_keyword(args.bytes(3)?, "AT") => (args.i64_at(2)?, Some(at_arg(args, 4)?)),
        4 | 5 => return Err(crate::module::error::SYNTAX),
        _ => return Err(CmdError::arity("HACK.TSINCR")),
    };
    let name = args.raw(1)?;
    let now = ctx.now_us()?.div_euclid(1000);
    let at = at.unwrap_or(now);
    let applied = apply(ctx, name, When::checked(now, at), inc, defaults::get)?;
    // The effect carries the master's clock reading and absolute AT (and the rollups when
    // this call created the series, since a replica's default may differ).
    match &applied.created {
        None => replicate::key_and_ints(ctx, c"HACK.TSAPPLY", name, [inc, at, now])?,
        Some(specs) => {
            let mut effect = StrVec::with_capacity(specs.len().saturating_add(4));
            for v in [inc, at, now] {
                effect.push_int(i128::from(v));
            }
            effect.push(b"ROLLUPS");
            for s in specs {
                effect.push(s.to_string().as_bytes());
            }
            replicate::command(ctx, c"HACK.TSAPPLY", name, &mut effect)?;
        }
    }
    ctx.signal_modified(name)?;
    ctx.notify(raw::REDISMODULE_NOTIFY_MODULE, c"hack.tsincr", name)?;
    stats::TS_INCREMENTS.incr();
    ctx.reply_i64(applied.value.unwrap_or(0))
}
