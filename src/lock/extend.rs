//! `HACK.EXTEND key owner ttl_ms`

use redis_module::raw;

use crate::module::args::Args;
use crate::module::command::{ArgDoc, Command, CommandDef, KeySpec};
use crate::module::ctx::Ctx;
use crate::module::error::CmdError;
use crate::module::typedkey::TypedKey;

use super::acquire::{EMPTY_OWNER, NOT_REPLICATED};
use super::datatype::LOCK_TYPE;
use super::effect::{self, Owner};
use super::lease::{self, MAX_MS};
use super::stats;
use super::waiters::{self, LockName};

pub struct Extend;

impl Command for Extend {
    const DEF: CommandDef = CommandDef {
        name: c"HACK.EXTEND",
        flags: c"write deny-oom fast",
        arity: 4,
        keys: Some(KeySpec {
            first: 1,
            last: 1,
            step: 1,
            flags: raw::REDISMODULE_CMD_KEY_RW
                | raw::REDISMODULE_CMD_KEY_ACCESS
                | raw::REDISMODULE_CMD_KEY_UPDATE,
        }),
        summary: c"Sets the remaining TTL of a lock held by owner to ttl_ms (same fencing token): 1 extended, 0 if owner is not the holder (nothing changes).",
        complexity: c"O(1)",
        since: c"0.1.0",
        args: &[
            ArgDoc::key(c"key"),
            ArgDoc::string(c"owner"),
            ArgDoc::int(c"ttl_ms"),
        ],
    };

    fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
        if args.len() != 4 {
            return Err(CmdError::arity("HACK.EXTEND"));
        }
        let owner = args.bytes(2)?;
        if owner.is_empty() {
            return Err(EMPTY_OWNER);
        }
        let ttl_ms = args.int_in(3, "ttl_ms", 1, MAX_MS)?;
        if ctx.is_replaying()? {
            return Err(NOT_REPLICATED);
        }
        let name = args.raw(1)?;
        let lock = LockName {
            db: ctx.selected_db()?,
            name: args.bytes(1)?,
        };
        let mut key = TypedKey::open(ctx, name, &LOCK_TYPE, true)?;
        let held = key.get()?;
        let Some(token) = held
            .filter(|l| lease::may_extend(Some(l), owner))
            .map(|l| l.token)
        else {
            stats::NOT_HOLDER.incr();
            return ctx.reply_i64(0);
        };
        let now_ms = ctx.now_us()?.div_euclid(1000);
        let at = lease::expiry(now_ms, ttl_ms);
        effect::install(
            ctx,
            &mut key,
            name,
            Owner::Arg(args.raw(2)?, owner),
            token,
            at,
        )?;
        waiters::watch(ctx, &key, &lock, now_ms)?;
        stats::EXTENDED.incr();
        ctx.reply_i64(1)
    }
}
