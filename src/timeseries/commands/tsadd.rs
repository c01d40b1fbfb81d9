//! `HACK.TSADD key member [member ...] [AT unix_ms]`

use redis_module::raw;

use crate::module::args::{is_keyword, Args};
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::io::StrVec;
use crate::module::replicate;

use crate::timeseries::args::at_arg;
use crate::timeseries::distinct_add::add;
use crate::timeseries::write::When;
use crate::timeseries::{defaults, stats};

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let n = args.len();
    // `AT ms` is the option only as the last two arguments after at least one member: a
    // member literally named "AT" is fine anywhere else (order does not matter to a set).
    let has_at = n >= 4 && is_keyword(args.bytes(n.saturating_sub(2))?, "AT");
    let (members, at) = if has_at {
        if n == 4 {
            return Err(CmdError::Static(
                "ERR HACK.TSADD needs at least one member before AT",
            ));
        }
        (
            2..n.saturating_sub(2),
            Some(at_arg(args, n.saturating_sub(1))?),
        )
    } else {
        (2..n, None)
    };
    let name = args.raw(1)?;
    let now = ctx.now_us()?.div_euclid(1000);
    let at = at.unwrap_or(now);
    let added = add(
        ctx,
        name,
        When::checked(now, at),
        args,
        members.clone(),
        defaults::get_distinct,
    )?;
    // The effect: the master's AT and clock reading, the rollups when this call created
    // the series (a replica's default may differ), then the members.
    let specs = added.created.as_deref().unwrap_or(&[]);
    let mut effect =
        StrVec::with_capacity(specs.len().saturating_add(members.len()).saturating_add(3));
    effect.push_int(i128::from(at));
    effect.push_int(i128::from(now));
    effect.push_int(specs.len() as i128);
    for s in specs {
        effect.push(s.to_string().as_bytes());
    }
    for i in members {
        effect.push(args.bytes(i)?);
    }
    replicate::command(ctx, c"HACK.TSADDAT", name, &mut effect)?;
    ctx.signal_modified(name)?;
    ctx.notify(raw::REDISMODULE_NOTIFY_MODULE, c"hack.tsadd", name)?;
    stats::TS_DISTINCT_ADDS.incr();
    ctx.reply_i64(i64::from(added.changed.unwrap_or(false)))
}
