//! `HACK.TSCOUNT key [key ...] from to [UNION]`

use crate::module::args::{is_keyword, Args};
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::typedkey::TypedKey;

use crate::timeseries::args::time_arg;
use crate::timeseries::distinct_type::DISTINCT_TYPE;
use crate::timeseries::hll::Registers;
use crate::timeseries::kind::wrong_family;

/// Whether the call ends in `UNION` (after at least one key, from and to).
fn is_union(args: &Args) -> bool {
    let n = args.len();
    n >= 5
        && args
            .bytes(n.saturating_sub(1))
            .is_ok_and(|b| is_keyword(b, "UNION"))
}

/// argv indexes of the keys: from 1 up to `from` (which is before `to` and `UNION`).
pub fn keys(args: &Args) -> std::ops::Range<usize> {
    let tail = if is_union(args) { 3 } else { 2 };
    1..args.len().saturating_sub(tail).max(1)
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let union = is_union(args);
    let keys = keys(args);
    let end = keys.end;
    // Reads may use the clock freely: nothing is written or replicated.
    let now = ctx.now_us()?.div_euclid(1000);
    let from = time_arg(args, end, now)?;
    let to = time_arg(args, end.saturating_add(1), now)?;
    let mut acc = Registers::new();
    let mut counts: Vec<u64> = Vec::with_capacity(if union { 0 } else { keys.len() });
    for i in keys.clone() {
        let name = args.raw(i)?;
        let key = TypedKey::open(ctx, name, &DISTINCT_TYPE, false)
            .map_err(|e| wrong_family(e, ctx, name, true))?;
        match (key.get()?, union) {
            (Some(s), true) => s.merge_range(now, from, to, &mut acc),
            (Some(s), false) => counts.push(s.count(now, from, to, &mut acc)),
            (None, true) => {}
            (None, false) => counts.push(0),
        }
    }
    crate::timeseries::stats::TS_DISTINCT_COUNTS.incr();
    let as_int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    if union {
        return ctx.reply_i64(as_int(acc.count()));
    }
    match counts.as_slice() {
        [one] if keys.len() == 1 => ctx.reply_i64(as_int(*one)),
        many => {
            ctx.reply_array(many.len())?;
            for v in many {
                ctx.reply_i64(as_int(*v))?;
            }
            Ok(())
        }
    }
}
