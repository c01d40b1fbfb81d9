//! Writing to a series key of either kind: open it, create it when missing, apply the
//! change, and move the key's expiry with the series'. Shared by the increments of
//! counting series (`increment.rs`) and the member adds of distinct series
//! (`distinct_add.rs`), on the master and in their replayed effects alike.

use crate::module::args::{Args, RStr};
use crate::module::ctx::Ctx;
use crate::module::datatype::ModuleType;
use crate::module::error::CmdError;
use crate::module::replicate;
use crate::module::typedkey::TypedKey;

use super::distinct::DistinctSeries;
use super::series::Series;
use super::spec::RollupSpec;

/// A kind of series a write can create.
pub trait Kind: ModuleType {
    /// Whether this is the distinct kind (for the WRONGTYPE message naming the other one).
    const DISTINCT: bool;
    fn create(specs: &[RollupSpec]) -> Self;
    /// When the key should expire: once no rollup retains its newest bucket.
    fn expire_at_ms(&self) -> Option<i64>;
    /// Work the expiry out again from the data (after buckets were set directly).
    fn refresh_expiry(&mut self);
    /// The error for a key that holds no such series.
    const MISSING: CmdError;
}

/// Both kinds keep their expiry in a field and are created from their rollups.
macro_rules! kind {
    ($t:ty, $distinct:expr, $missing:expr) => {
        impl Kind for $t {
            const DISTINCT: bool = $distinct;
            const MISSING: CmdError = CmdError::Static($missing);
            fn create(specs: &[RollupSpec]) -> Self {
                <$t>::new(specs)
            }
            fn expire_at_ms(&self) -> Option<i64> {
                self.expire_at_ms
            }
            fn refresh_expiry(&mut self) {
                <$t>::refresh_expiry(self)
            }
        }
    };
}
kind!(Series, false, "ERR no such series");
kind!(DistinctSeries, true, "ERR no such distinct series");

/// When a write happens: the master's clock reading, the bucket time, and whether `at` is
/// checked against retention (the master) or applied where it still fits (a replay).
#[derive(Clone, Copy)]
pub struct When {
    pub now: i64,
    pub at: i64,
    pub check: bool,
}

impl When {
    /// A client's call on the master: `at` is checked against retention.
    pub fn checked(now: i64, at: i64) -> Self {
        When {
            now,
            at,
            check: true,
        }
    }
    /// A replayed effect (replica, AOF): applied where it still fits.
    pub fn replayed(now: i64, at: i64) -> Self {
        When {
            now,
            at,
            check: false,
        }
    }
}

/// Apply `change` to the series at `name`. A missing key is created with `create_with()`,
/// and only stored once `change` succeeded and left something retained (an error, or the
/// replay of a time nothing retains, leaves no key behind). The key's expiry is a function
/// of the data, so every copy sets the same absolute time; it is set only when it moves
/// (once per bucket). Returns what `change` returned and, when this call created the
/// series, its rollups.
pub fn write<S: Kind, R>(
    ctx: &Ctx,
    name: RStr,
    create_with: impl FnOnce() -> Vec<RollupSpec>,
    change: impl FnOnce(&mut S) -> Result<R, CmdError>,
) -> Result<(R, Option<Vec<RollupSpec>>), CmdError> {
    let mut key = TypedKey::open(ctx, name, S::TYPE, true)
        .map_err(|e| super::kind::wrong_family(e, ctx, name, S::DISTINCT))?;
    let (r, created, before, after) = match key.get_mut()? {
        Some(s) => {
            let before = s.expire_at_ms();
            let r = change(s)?;
            (r, None, before, s.expire_at_ms())
        }
        None => {
            let specs = create_with();
            let mut s = S::create(&specs);
            let r = change(&mut s)?;
            let after = s.expire_at_ms();
            if after.is_none() {
                return Ok((r, None));
            }
            key.create(s)?;
            (r, Some(specs), None, after)
        }
    };
    if after != before {
        if let Some(at) = after {
            key.set_abs_expire(Some(at))?;
        }
    }
    Ok((r, created))
}

/// What `HACK.TSSET` and `HACK.TSDSET` share: the AOF rewrite's rebuild of an existing series
/// (the rewrite emits `HACK.TSCREATE` first), rollup by rollup. Only from the replication
/// stream or the AOF (`refusal` for clients); `change` sets the buckets, the expiry then
/// follows from the data, and the command replicates as it is. No TTL of its own: the
/// rewrite appends the key's PEXPIREAT after these commands when (and only when) the key
/// had one; setting one here would give a key that had none (PERSIST, RESTORE with TTL 0)
/// a TTL after an AOF restart.
pub fn rebuild<S: Kind>(
    ctx: &Ctx,
    args: &Args,
    refusal: CmdError,
    change: impl FnOnce(&mut S) -> Result<(), CmdError>,
) -> Result<(), CmdError> {
    ctx.replaying_or(refusal)?;
    let name = args.raw(1)?;
    let mut key = TypedKey::open(ctx, name, S::TYPE, true)?;
    let series = key.get_mut()?.ok_or(S::MISSING)?;
    change(series)?;
    series.refresh_expiry();
    drop(key);
    replicate::verbatim(ctx)?;
    ctx.signal_modified(name)?;
    ctx.reply_ok()
}
