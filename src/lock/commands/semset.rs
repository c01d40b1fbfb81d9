//! `HACK.SEMSET key limit [owner permits token deadline bound]... [PXAT at_ms]`
//!
//! Internal: the effect of every semaphore change, as replicas and the AOF receive it (also
//! what an AOF rewrite emits, followed by the server's own `PEXPIREAT`). It stores the
//! semaphore exactly as given (deadlines are the master's absolute Unix ms; `bound` is 1/0:
//! a client id means nothing here, so a bound holder is bound to no connection of this
//! server), raises the fencing-token mark with every token, and never reads the clock.
//! Refused from clients: it could hand out tokens below the mark and break fencing.

use crate::module::args::{is_keyword, Args};
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::replicate;
use crate::module::typedkey::TypedKey;

use crate::lock::semaphore::datatype::{bound_from_flag, SEM_TYPE};
use crate::lock::semaphore::holders::Holder;
use crate::lock::semaphore::parts::Loading;
use crate::lock::semaphore::{args::check_owner, bound};
use crate::lock::token;

pub const INTERNAL_ONLY: CmdError = CmdError::Static(
    "ERR HACK.SEMSET is internal: it carries semaphore changes to replicas and the AOF; use HACK.SEMACQUIRE",
);

const I64_MAX: i64 = i64::MAX;

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    let n = args.len();
    // name key limit, then groups of 5, then optionally PXAT at.
    let (groups_end, at_ms) = match n.checked_sub(3).map(|r| r % 5) {
        Some(0) => (n, None),
        Some(2) => {
            let at = n.saturating_sub(2);
            if !is_keyword(args.bytes(at)?, "PXAT") {
                return Err(crate::module::args::unknown_option(args.bytes(at)?));
            }
            (
                at,
                Some(args.int_in(at.saturating_add(1), "PXAT", 1, I64_MAX)?),
            )
        }
        _ => return Err(CmdError::arity("HACK.SEMSET")),
    };
    let limit = args.int_in(2, "limit", 1, I64_MAX)?.unsigned_abs();
    let count = groups_end.saturating_sub(3) / 5;
    let mut load = Loading::start(limit, count as u64).map_err(bad)?;
    let mut i = 3;
    while i < groups_end {
        let owner = args.bytes(i)?;
        check_owner(owner)?;
        let permits = args.int_in(i.saturating_add(1), "permits", 1, I64_MAX)?;
        let token = args.int_in(i.saturating_add(2), "token", 1, I64_MAX)?;
        let deadline = args.int_in(i.saturating_add(3), "deadline", 0, I64_MAX)?;
        let flag = args.int_in(i.saturating_add(4), "bound", 0, 1)?;
        let bound = bound_from_flag(flag.unsigned_abs()).ok_or(bad("bound must be 0 or 1"))?;
        load.push(Holder {
            owner: owner.to_vec(),
            permits: permits.unsigned_abs(),
            token: token.unsigned_abs(),
            expires_at_ms: deadline,
            bound,
        })
        .map_err(bad)?;
        i = i.saturating_add(5);
    }
    let sem = load.finish().map_err(bad)?;
    ctx.replaying_or(INTERNAL_ONLY)?;
    // Every token must be one a clock could have made (else the mark would be pinned).
    if !sem.holders().iter().all(|h| token::observe(h.token)) {
        return Err(CmdError::Static("ERR token out of range"));
    }
    bound::loaded_stale(&sem);
    let name = args.raw(1)?;
    let mut key = TypedKey::open(ctx, name, &SEM_TYPE, true)?;
    match key.get_mut()? {
        Some(v) => *v = sem,
        None => {
            key.create(sem)?;
        }
    }
    key.set_abs_expire(at_ms)?;
    drop(key);
    replicate::verbatim(ctx)?;
    ctx.signal_modified(name)?;
    ctx.reply_ok()
}

fn bad(why: &'static str) -> CmdError {
    CmdError::msg(format!("ERR invalid semaphore state: {why}"))
}
