//! Row values of a write buffer, in plain Rust: what one pending member holds when it is
//! more than BUFINCR's single counter, and the merge rules of `HACK.BUFUPDATE`.
//!
//! A member is either [`Value::Plain`] (only the default column, an INCR: exactly today's
//! integer, no allocation) or [`Value::Row`] (named columns in first-update order, each with
//! one op kind: INCR adds, MAX/MIN keep the extreme, SET keeps the last bytes written),
//! packed into one allocation (`packed.rs`). [`Row`] / [`Cell`] are the unpacked form
//! loaders and parsers build before validating it into a [`Value`].

use super::packed::{Packed, PackedCell, PackedIter};

/// The column `HACK.BUFINCR` increments; a member holding only this column as INCR drains
/// as a plain integer.
pub const DEFAULT_COLUMN: &[u8] = b"value";
/// Longest column name (a name is an SQL identifier downstream; 64 covers PostgreSQL's 63).
pub const MAX_COLUMN_NAME: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Incr,
    Set,
    Max,
    Min,
}

impl Op {
    pub fn parse(word: &[u8]) -> Option<Op> {
        [Op::Incr, Op::Set, Op::Max, Op::Min]
            .into_iter()
            .find(|op| word.eq_ignore_ascii_case(op.word().as_bytes()))
    }

    /// The upper-case word DRAIN replies and commands take.
    pub fn word(self) -> &'static str {
        match self {
            Op::Incr => "INCR",
            Op::Set => "SET",
            Op::Max => "MAX",
            Op::Min => "MIN",
        }
    }

    /// RDB code.
    pub fn code(self) -> u64 {
        match self {
            Op::Incr => 0,
            Op::Set => 1,
            Op::Max => 2,
            Op::Min => 3,
        }
    }

    pub fn from_code(code: u64) -> Option<Op> {
        [Op::Incr, Op::Set, Op::Max, Op::Min]
            .into_iter()
            .find(|op| op.code() == code)
    }
}

/// One column's pending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Incr(i64),
    Max(i64),
    Min(i64),
    Set(Box<[u8]>),
}

impl Cell {
    pub fn op(&self) -> Op {
        match self {
            Cell::Incr(_) => Op::Incr,
            Cell::Max(_) => Op::Max,
            Cell::Min(_) => Op::Min,
            Cell::Set(_) => Op::Set,
        }
    }

    /// The integer of an INCR/MAX/MIN cell.
    pub fn int(&self) -> Option<i64> {
        match self {
            Cell::Incr(v) | Cell::Max(v) | Cell::Min(v) => Some(*v),
            Cell::Set(_) => None,
        }
    }

    /// A cell from an op and its value as given on the command line (or in a payload).
    pub fn parse(op: Op, value: &[u8]) -> Option<Cell> {
        let int = || std::str::from_utf8(value).ok()?.parse::<i64>().ok();
        Some(match op {
            Op::Incr => Cell::Incr(int()?),
            Op::Max => Cell::Max(int()?),
            Op::Min => Cell::Min(int()?),
            Op::Set => Cell::Set(value.into()),
        })
    }
}

/// A row as loaders build it: (column, cell) in first-update order ([`Value::from_row`]
/// checks: no column twice, never empty).
pub type Row = Vec<(Box<[u8]>, Cell)>;

/// A pending member's value (16 bytes: a plain member costs what an integer did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Plain(i64),
    Row(Packed),
}

/// One column update of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update<'a> {
    pub column: &'a [u8],
    pub op: Op,
    /// The integer of INCR/MAX/MIN (unused for SET).
    pub int: i64,
    /// The bytes of SET (empty otherwise).
    pub bytes: &'a [u8],
}

impl<'a> Update<'a> {
    pub fn incr(column: &'a [u8], v: i64) -> Self {
        Update {
            column,
            op: Op::Incr,
            int: v,
            bytes: &[],
        }
    }
}

/// Caps a client's write is checked against (`None` for replicated and replayed writes,
/// which the master already admitted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_members: i64,
    pub max_columns: usize,
    pub max_value_bytes: usize,
}

/// Why a write was refused (nothing was changed). `at` is the index of the offending
/// update (or pair) in the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateError {
    Overflow,
    TooManyMembers { max: i64 },
    OpConflict { at: usize, held: Op, wanted: Op },
    TooManyColumns { max: usize },
    ValueTooLong { at: usize, max: usize },
    BadColumn { at: usize },
}

pub fn valid_column(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= MAX_COLUMN_NAME
}

pub(crate) fn round16(n: usize) -> usize {
    n.div_ceil(16).saturating_mul(16)
}

impl Value {
    /// Columns held (a plain member holds one).
    pub fn columns(&self) -> usize {
        match self {
            Value::Plain(_) => 1,
            Value::Row(r) => r.len(),
        }
    }

    /// The columns as (name, op, integer or bytes) in order, plain members included.
    pub fn cells(&self) -> CellIter<'_> {
        match self {
            Value::Plain(v) => CellIter::Plain(Some(*v)),
            Value::Row(r) => CellIter::Row(r.iter()),
        }
    }

    fn find(&self, column: &[u8]) -> Option<(Op, i64)> {
        match self {
            Value::Plain(v) => (column == DEFAULT_COLUMN).then_some((Op::Incr, *v)),
            Value::Row(r) => r.iter().find(|(c, _, _)| *c == column).map(|(_, op, v)| {
                (
                    op,
                    match v {
                        CellRef::Int(n) => n,
                        CellRef::Bytes(_) => 0,
                    },
                )
            }),
        }
    }

    /// The op and integer (0 for SET) of `column`, if the member holds it.
    pub fn column(&self, column: &[u8]) -> Option<(Op, i64)> {
        self.find(column)
    }

    /// A loaded or received row in canonical form: a row holding only the default column
    /// as INCR becomes plain; `None` for a row no command could have built (empty, a
    /// column twice, a bad name, more than `max_columns`, a value over `max_value_bytes`).
    pub fn from_row(row: Row, max_columns: usize, max_value_bytes: usize) -> Option<Value> {
        if row.is_empty() || row.len() > max_columns {
            return None;
        }
        for (i, (c, cell)) in row.iter().enumerate() {
            if !valid_column(c) || row.get(..i)?.iter().any(|(p, _)| p == c) {
                return None;
            }
            if let Cell::Set(b) = cell {
                if b.len() > max_value_bytes {
                    return None;
                }
            }
        }
        Some(match row.as_slice() {
            [(c, Cell::Incr(v))] if &c[..] == DEFAULT_COLUMN => Value::Plain(*v),
            _ => {
                let cells: Vec<PackedCell<'_>> = row
                    .iter()
                    .map(|(c, cell)| {
                        let v = match cell {
                            Cell::Set(b) => CellRef::Bytes(&b[..]),
                            other => CellRef::Int(other.int().unwrap_or(0)),
                        };
                        (&c[..], cell.op(), v)
                    })
                    .collect();
                Value::Row(Packed::build(&cells))
            }
        })
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            Value::Plain(_) => 0,
            Value::Row(r) => round16(r.byte_len()),
        }
    }
}

/// A borrowed cell for iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellRef<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

pub enum CellIter<'a> {
    Plain(Option<i64>),
    Row(PackedIter<'a>),
}

impl<'a> Iterator for CellIter<'a> {
    type Item = (&'a [u8], Op, CellRef<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            CellIter::Plain(v) => v
                .take()
                .map(|v| (DEFAULT_COLUMN, Op::Incr, CellRef::Int(v))),
            CellIter::Row(it) => it.next(),
        }
    }
}

/// The checked outcome of a call on one member: the running integer after each update, and
/// how many columns the member gains. Validation never writes.
pub fn stage(
    current: Option<&Value>,
    updates: &[Update<'_>],
    limits: Option<&Limits>,
) -> Result<(Vec<i64>, usize), UpdateError> {
    let mut staged: Vec<i64> = Vec::with_capacity(updates.len());
    let mut new_columns = 0usize;
    for (i, u) in updates.iter().enumerate() {
        if !valid_column(u.column) {
            return Err(UpdateError::BadColumn { at: i });
        }
        let earlier = updates
            .get(..i)
            .and_then(|p| p.iter().rposition(|p| p.column == u.column));
        let held = match earlier {
            Some(j) => updates.get(j).zip(staged.get(j)).map(|(p, v)| (p.op, *v)),
            None => current.and_then(|c| c.find(u.column)),
        };
        if held.is_none() {
            new_columns = new_columns.saturating_add(1);
        }
        if let Some((op, _)) = held {
            if op != u.op {
                return Err(UpdateError::OpConflict {
                    at: i,
                    held: op,
                    wanted: u.op,
                });
            }
        }
        let v = match (u.op, held) {
            (Op::Incr, Some((_, base))) => base.checked_add(u.int).ok_or(UpdateError::Overflow)?,
            (Op::Max, Some((_, base))) => base.max(u.int),
            (Op::Min, Some((_, base))) => base.min(u.int),
            (Op::Set, _) => {
                if let Some(l) = limits {
                    if u.bytes.len() > l.max_value_bytes {
                        return Err(UpdateError::ValueTooLong {
                            at: i,
                            max: l.max_value_bytes,
                        });
                    }
                }
                0
            }
            (_, None) => u.int,
        };
        staged.push(v);
    }
    if let Some(l) = limits {
        let have = current.map_or(0, Value::columns);
        if new_columns > 0 && have.saturating_add(new_columns) > l.max_columns {
            return Err(UpdateError::TooManyColumns { max: l.max_columns });
        }
    }
    Ok((staged, new_columns))
}

fn cell_of<'a>(u: &Update<'a>, v: i64) -> CellRef<'a> {
    match u.op {
        Op::Set => CellRef::Bytes(u.bytes),
        _ => CellRef::Int(v),
    }
}

/// Write staged updates (from [`stage`], which accepted them) into a member's value: a new
/// packed row (one allocation) unless the member stays plain.
pub fn apply(current: Option<Value>, updates: &[Update<'_>], staged: &[i64]) -> Value {
    let only_default = |us: &[Update<'_>]| {
        us.iter()
            .all(|u| u.op == Op::Incr && u.column == DEFAULT_COLUMN)
    };
    match current {
        None | Some(Value::Plain(_)) if only_default(updates) => {
            let base = match current {
                Some(Value::Plain(v)) => v,
                _ => 0,
            };
            Value::Plain(staged.last().copied().unwrap_or(base))
        }
        current => {
            let mut cells: Vec<PackedCell<'_>> = Vec::with_capacity(
                current
                    .as_ref()
                    .map_or(0, Value::columns)
                    .saturating_add(updates.len()),
            );
            if let Some(v) = &current {
                cells.extend(v.cells());
            }
            for (u, v) in updates.iter().zip(staged) {
                let cell = cell_of(u, *v);
                match cells.iter_mut().find(|(c, _, _)| *c == u.column) {
                    Some(slot) => slot.2 = cell,
                    None => cells.push((u.column, u.op, cell)),
                }
            }
            Value::Row(Packed::build(&cells))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set<'a>(c: &'a str, b: &'a str) -> Update<'a> {
        Update {
            column: c.as_bytes(),
            op: Op::Set,
            int: 0,
            bytes: b.as_bytes(),
        }
    }
    fn int<'a>(op: Op, c: &'a str, v: i64) -> Update<'a> {
        Update {
            column: c.as_bytes(),
            op,
            int: v,
            bytes: &[],
        }
    }

    fn run(cur: Option<Value>, us: &[Update<'_>]) -> Result<Value, UpdateError> {
        let (staged, _) = stage(cur.as_ref(), us, None)?;
        Ok(apply(cur, us, &staged))
    }

    #[test]
    fn merges_follow_op_kinds() {
        let v = run(
            None,
            &[
                int(Op::Incr, "n", 2),
                int(Op::Max, "hi", 5),
                int(Op::Min, "lo", 5),
                set("s", "a"),
                int(Op::Incr, "n", 3),
                int(Op::Max, "hi", 4),
                int(Op::Min, "lo", 9),
                set("s", "b"),
            ],
        )
        .unwrap();
        let cells: Vec<_> = v.cells().collect();
        assert_eq!(
            cells,
            vec![
                (&b"n"[..], Op::Incr, CellRef::Int(5)),
                (&b"hi"[..], Op::Max, CellRef::Int(5)),
                (&b"lo"[..], Op::Min, CellRef::Int(5)),
                (&b"s"[..], Op::Set, CellRef::Bytes(b"b")),
            ]
        );
        let v = run(Some(v), &[int(Op::Max, "hi", 7), int(Op::Min, "lo", -1)]).unwrap();
        assert_eq!(v.find(b"hi"), Some((Op::Max, 7)));
        assert_eq!(v.find(b"lo"), Some((Op::Min, -1)));
    }

    #[test]
    fn conflicts_and_overflow_refuse_the_whole_call() {
        let v = run(None, &[int(Op::Incr, "n", i64::MAX)]).unwrap();
        assert_eq!(
            stage(Some(&v), &[set("x", "1"), set("n", "1")], None),
            Err(UpdateError::OpConflict {
                at: 1,
                held: Op::Incr,
                wanted: Op::Set
            })
        );
        assert_eq!(
            stage(Some(&v), &[int(Op::Incr, "n", 1)], None),
            Err(UpdateError::Overflow)
        );
        assert_eq!(
            stage(None, &[int(Op::Max, "m", 1), int(Op::Min, "m", 1)], None),
            Err(UpdateError::OpConflict {
                at: 1,
                held: Op::Max,
                wanted: Op::Min
            })
        );
        assert_eq!(
            stage(None, &[set("", "x")], None),
            Err(UpdateError::BadColumn { at: 0 })
        );
    }

    #[test]
    fn caps_count_new_columns_and_value_bytes() {
        let l = Limits {
            max_members: 10,
            max_columns: 2,
            max_value_bytes: 3,
        };
        let v = run(None, &[set("a", "123")]).unwrap();
        assert_eq!(
            stage(Some(&v), &[set("b", "1"), set("c", "1")], Some(&l)),
            Err(UpdateError::TooManyColumns { max: 2 })
        );
        assert!(stage(
            Some(&v),
            &[set("b", "1"), set("b", "2"), set("a", "")],
            Some(&l)
        )
        .is_ok());
        assert_eq!(
            stage(Some(&v), &[set("a", "1234")], Some(&l)),
            Err(UpdateError::ValueTooLong { at: 0, max: 3 })
        );
        assert!(
            stage(Some(&v), &[set("a", "1234")], None).is_ok(),
            "replicated: no caps"
        );
    }

    #[test]
    fn default_column_stays_plain() {
        let v = run(None, &[Update::incr(DEFAULT_COLUMN, 4)]).unwrap();
        assert_eq!(v, Value::Plain(4));
        let v = run(Some(v), &[Update::incr(DEFAULT_COLUMN, 1)]).unwrap();
        assert_eq!(v, Value::Plain(5));
        let v = run(Some(v), &[set("m", "x")]).unwrap();
        assert_eq!(v.columns(), 2);
        assert_eq!(v.find(DEFAULT_COLUMN), Some((Op::Incr, 5)));
        assert_eq!(
            Value::from_row(vec![(DEFAULT_COLUMN.into(), Cell::Incr(3))], 10, 10),
            Some(Value::Plain(3))
        );
        assert_eq!(
            Value::from_row(
                vec![
                    (b"a"[..].into(), Cell::Incr(3)),
                    (b"a"[..].into(), Cell::Incr(3))
                ],
                10,
                10
            ),
            None
        );
        assert_eq!(Value::from_row(vec![], 10, 10), None);
        assert_eq!(std::mem::size_of::<Value>(), 16);
    }
}
