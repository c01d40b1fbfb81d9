//! Writing to a series key of either kind: open it, create it when missing, apply the
//! change, and move the key's expiry with the series'. Shared by the increments of
//! counting series (`increment.rs`) and the member adds of distinct series
//! (`distinct_add.rs`), on the master and in their replayed effects alike.

use crate::module::args::RStr;
use crate::module::ctx::Ctx;
use crate::module::datatype::ModuleType;
use crate::module::error::CmdError;
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
}

/// Both kinds keep their expiry in a field and are created from their rollups.
macro_rules! kind {
    ($t:ty, $distinct:expr) => {
        impl Kind for $t {
            const DISTINCT: bool = $distinct;
            fn create(specs: &[RollupSpec]) -> Self {
                <$t>::new(specs)
            }
            fn expire_at_ms(&self) -> Option<i64> {
                self.expire_at_ms
            }
        }
    };
}
kind!(Series, false);
kind!(DistinctSeries, true);

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
