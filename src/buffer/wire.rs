//! Entries on the wire: as command arguments (`HACK.BUFBATCH` effects, AOF rewrite), as
//! `HACK.DRAIN` replies, and refusals as error replies.
//!
//! Argument form of one entry: `member value` for a plain member (exactly today's form), or
//! `member ROW n (op column value){n}` for a row (`ROW` is no integer, so the two cannot be
//! confused).

use crate::module::args::{is_keyword, Args};
use crate::module::ctx::Ctx;
use crate::module::error::{printable, CmdError};
use crate::module::io::StrVec;

use super::row::{Cell, CellRef, Op, Row, UpdateError, Value, DEFAULT_COLUMN, MAX_COLUMN_NAME};
use super::settings;
use super::store::Member;

/// Append one entry in argument form.
pub fn push_entry(args: &mut StrVec, m: &[u8], v: &Value) {
    args.push(m);
    match v {
        Value::Plain(n) => args.push_int(i128::from(*n)),
        Value::Row(r) => {
            args.push(b"ROW");
            args.push_int(r.len() as i128);
            push_cells(args, v);
        }
    }
}

/// Append `op column value` for every column of `v` (the arguments of a `HACK.BUFUPDATE`
/// that rebuilds it exactly, op kinds included).
pub fn push_cells(args: &mut StrVec, v: &Value) {
    for (c, op, val) in v.cells() {
        args.push(op.word().as_bytes());
        args.push(c);
        match val {
            CellRef::Int(n) => args.push_int(i128::from(n)),
            CellRef::Bytes(b) => args.push(b),
        }
    }
}

/// Parse entries in argument form from `args[from..]` (validated: names, ops, values,
/// counts against what any server could have admitted).
pub fn parse_entries(args: &Args, from: usize) -> Result<Vec<(Member, Value)>, CmdError> {
    let bad = || CmdError::Static("ERR malformed batch entry");
    let (max_columns, max_value) = settings::hard_limits();
    let mut out = Vec::new();
    let mut i = from;
    while i < args.len() {
        let member = Member::from(args.bytes(i)?);
        let spec_at = i.checked_add(1).ok_or_else(bad)?;
        let spec = args.bytes(spec_at).map_err(|_| bad())?;
        if is_keyword(spec, "ROW") {
            let n_at = spec_at.checked_add(1).ok_or_else(bad)?;
            let n = args.int_in(n_at, "ROW count", 1, max_columns as i64)?;
            let n = usize::try_from(n).map_err(|_| bad())?;
            let end = n
                .checked_mul(3)
                .and_then(|k| k.checked_add(n_at).and_then(|e| e.checked_add(1)))
                .filter(|e| *e <= args.len())
                .ok_or_else(bad)?;
            let mut row: Row = Vec::with_capacity(n);
            let mut j = n_at.saturating_add(1);
            while j < end {
                let op = Op::parse(args.bytes(j)?).ok_or_else(bad)?;
                let col = args.bytes(j.saturating_add(1))?;
                let cell = Cell::parse(op, args.bytes(j.saturating_add(2))?).ok_or_else(bad)?;
                row.push((col.into(), cell));
                j = j.saturating_add(3);
            }
            let v = Value::from_row(row, max_columns, max_value).ok_or_else(bad)?;
            out.push((member, v));
            i = end;
        } else {
            let v = args.i64_at(spec_at).map_err(|_| bad())?;
            out.push((member, Value::Plain(v)));
            i = spec_at.saturating_add(1);
        }
    }
    Ok(out)
}

/// Reply one value: an integer for a plain member, else a map `column -> [op, value]`
/// (flat name/value arrays under RESP2).
pub fn reply_value(ctx: &Ctx, v: &Value) -> Result<(), CmdError> {
    match v {
        Value::Plain(n) => ctx.reply_i64(*n),
        Value::Row(r) => {
            ctx.reply_map(r.len())?;
            for (c, op, val) in v.cells() {
                ctx.reply_bulk(c)?;
                ctx.reply_array(2)?;
                ctx.reply_bulk(op.word().as_bytes())?;
                match val {
                    CellRef::Int(n) => ctx.reply_i64(n)?,
                    CellRef::Bytes(b) => ctx.reply_bulk(b)?,
                }
            }
            Ok(())
        }
    }
}

/// Reply entries as a map (RESP3) or a flat `member, value, ...` array (RESP2).
pub fn reply_entries(ctx: &Ctx, entries: &[(Member, Value)]) -> Result<(), CmdError> {
    ctx.reply_map(entries.len())?;
    for (m, v) in entries {
        ctx.reply_bulk(m)?;
        reply_value(ctx, v)?;
    }
    Ok(())
}

/// The error reply for a refused write; `column(at)` names the column of update `at`.
pub fn refusal<'a>(e: UpdateError, column: impl Fn(usize) -> &'a [u8]) -> CmdError {
    match e {
        UpdateError::Overflow => CmdError::Static("ERR increment or decrement would overflow"),
        UpdateError::TooManyMembers { max } => CmdError::msg(format!(
            "ERR buffer is full: it holds hacks.buffer-max-members ({max}) pending members; \
             drain it or raise the limit (existing members can still be incremented)"
        )),
        UpdateError::OpConflict { at, held, wanted } => CmdError::msg(format!(
            "ERR column '{}' of this pending member is {}, not {}: a column keeps one op until drained",
            printable(column(at)),
            held.word(),
            wanted.word()
        )),
        UpdateError::TooManyColumns { max } => CmdError::msg(format!(
            "ERR too many columns: a pending member holds at most hacks.buffer-max-columns ({max})"
        )),
        UpdateError::ValueTooLong { at, max } => CmdError::msg(format!(
            "ERR value of column '{}' is longer than hacks.buffer-max-value-bytes ({max})",
            printable(column(at))
        )),
        UpdateError::BadColumn { .. } => CmdError::msg(format!(
            "ERR column names are 1 to {MAX_COLUMN_NAME} bytes"
        )),
    }
}

/// Whether a refusal is a cap of this server (which a replicated write ignores).
pub fn is_cap(e: &UpdateError) -> bool {
    matches!(
        e,
        UpdateError::TooManyMembers { .. }
            | UpdateError::TooManyColumns { .. }
            | UpdateError::ValueTooLong { .. }
    )
}

/// For error messages of BUFINCR: its only column.
pub fn default_column(_: usize) -> &'static [u8] {
    DEFAULT_COLUMN
}
