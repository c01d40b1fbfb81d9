//! `HACK.SEMACQUIRE key owner limit ttl_ms [PERMITS n] [WAIT timeout_ms] [BOUND]`

use redis_module::raw;

use crate::module::args::Args;
use crate::module::blocked;
use crate::module::ctx::Ctx;
use crate::module::error::{CmdError, SYNTAX};
use crate::module::ffi::rm;
use crate::module::typedkey::TypedKey;

use crate::lock::commands::lock::NOT_REPLICATED;
use crate::lock::semaphore::admit::Acquired;
use crate::lock::semaphore::args::parse_acquire;
use crate::lock::semaphore::datatype::SEM_TYPE;
use crate::lock::semaphore::{bound, wait};
use crate::lock::waiters::LockName;
use crate::lock::{stats, token};

/// Most arguments a valid call has (name, 4 fixed, PERMITS n, WAIT t, BOUND).
const MAX_ARGS: usize = 10;

const BOUND_NEEDS_CLIENT: CmdError = CmdError::Static(
    "ERR BOUND needs the calling connection: not available inside a script or without a client",
);

pub fn run(ctx: &Ctx, args: &Args) -> Result<(), CmdError> {
    if args.len() > MAX_ARGS {
        return Err(SYNTAX);
    }
    let mut argv: [&[u8]; MAX_ARGS] = [&[]; MAX_ARGS];
    for (i, slot) in argv.iter_mut().enumerate().take(args.len()) {
        *slot = args.bytes(i)?;
    }
    let req = parse_acquire(argv.get(..args.len()).unwrap_or(&[]))?;
    let flags = ctx.flags()?;
    if flags & (raw::REDISMODULE_CTX_FLAGS_REPLICATED | raw::REDISMODULE_CTX_FLAGS_LOADING) != 0 {
        return Err(NOT_REPLICATED);
    }
    let client = if req.bound {
        // A script's connection is the script engine's, which never closes.
        if flags & raw::REDISMODULE_CTX_FLAGS_LUA != 0 {
            return Err(BOUND_NEEDS_CLIENT);
        }
        let id = rm!(RedisModule_GetClientId);
        // SAFETY: the live context of this command.
        let id = unsafe { id(ctx.raw()) };
        if id == 0 {
            return Err(BOUND_NEEDS_CLIENT);
        }
        id
    } else {
        0
    };
    let ask = req.ask(client);
    let may_block = req.wait.is_some() && blocked::can_block(flags);
    let name = args.raw(1)?;
    let sem_name = LockName {
        db: ctx.selected_db()?,
        name: req.key,
    };
    let now_us = ctx.now_us()?;
    let now_ms = now_us.div_euclid(1000);
    let mut key = TypedKey::open(ctx, name, &SEM_TYPE, true)?;
    let outcome = wait::change(ctx, &mut key, name, &sem_name, now_ms, |sem, ahead| {
        let mut exhausted = false;
        let r = sem.acquire(&ask, now_ms, ahead, || match token::allocate_at(now_us) {
            Ok(t) => t,
            Err(_) => {
                exhausted = true;
                0
            }
        });
        if exhausted {
            // Never store a holder without a real token.
            sem.release(ask.owner, now_ms);
            return (false, Err(token::ID_SPACE_EXHAUSTED));
        }
        match r {
            Ok(a @ (Acquired::New { .. } | Acquired::Renewed { .. })) => (true, Ok(a)),
            Ok(Acquired::Busy) => (false, Ok(Acquired::Busy)),
            Err(e) => (false, Err(e.to_cmd_error())),
        }
    })??;
    match outcome {
        Acquired::New { token } | Acquired::Renewed { token } => {
            if matches!(outcome, Acquired::New { .. }) {
                stats::SEM_ACQUIRED.incr();
            } else {
                stats::SEM_RENEWED.incr();
            }
            if ask.bound.is_some() {
                bound::note(client, &sem_name.id());
            }
            ctx.reply_i64(i64::try_from(token).unwrap_or(i64::MAX))
        }
        Acquired::Busy => match req.wait {
            Some(timeout) if may_block => {
                wait::block(ctx, sem_name.id(), &ask, timeout, key.get()?, now_ms)
            }
            _ => {
                stats::SEM_BUSY.incr();
                ctx.reply_null()
            }
        },
    }
}
