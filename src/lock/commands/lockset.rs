//! `HACK.LOCKSET key owner token [PXAT at_ms]`
//!
//! Internal: the effect of every acquisition, renewal, extension and hand-off, as replicas
//! and the AOF receive it (also what an AOF rewrite emits, followed by the server's own
//! `PEXPIREAT`). It stores the lock exactly as given, with the master's absolute expiry
//! (none without PXAT), raises the fencing-token mark, and never reads the clock.
//!
//! It runs only where effects are applied (from the master's stream, or while loading):
//! a client calling it on a master could hand out a token below the mark and break fencing,
//! so that is refused.

use crate::module::args::{is_keyword, Args};
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::replicate;
use crate::module::typedkey::TypedKey;

use crate::lock::datatype::LOCK_TYPE;
use crate::lock::{effect, token};

pub const INTERNAL_ONLY: CmdError = CmdError::Static(
    "ERR HACK.LOCKSET is internal: it carries HACK.LOCK's effects to replicas and the AOF; use HACK.LOCK",
);

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    if args.len() != 4 && args.len() != 6 {
        return Err(CmdError::arity("HACK.LOCKSET"));
    }
    let owner = args.bytes(2)?;
    if owner.is_empty() {
        return Err(crate::lock::commands::lock::EMPTY_OWNER);
    }
    let token = args.int_in(3, "token", 1, i64::MAX)?.unsigned_abs();
    let at_ms = if args.len() == 6 {
        if !is_keyword(args.bytes(4)?, "PXAT") {
            return Err(crate::module::args::unknown_option(args.bytes(4)?));
        }
        Some(args.int_in(5, "PXAT", 1, i64::MAX)?)
    } else {
        None
    };
    ctx.replaying_or(INTERNAL_ONLY)?;
    let name = args.raw(1)?;
    let mut key = TypedKey::open(ctx, name, &LOCK_TYPE, true)?;
    effect::store(&mut key, owner, token, at_ms)?;
    drop(key);
    let _ = token::observe(token);
    replicate::verbatim(ctx)?;
    ctx.signal_modified(name)?;
    ctx.reply_ok()
}
