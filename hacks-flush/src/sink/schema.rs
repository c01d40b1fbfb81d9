//! The checks at start, the same for every database: each sink reads its table's columns
//! into [`Column`]s (and answers whether a column is unique), these decide whether the
//! mapping can work and say why not.

use super::{ColKind, Dialect, SinkError};
use crate::args::{Mapping, Missing};
use crate::member::IdKind;

/// A column of a mapping's table, as the checks see it.
pub struct Column<K> {
    pub name: String,
    /// Its type, as error messages show it.
    pub shown_type: String,
    /// What buffered values it takes, if any.
    pub kind: Option<ColKind>,
    /// NOT NULL with nothing to fill it (no default, identity, generation or rowid): an
    /// INSERT must give it a value.
    pub needs_value: bool,
    /// What the database needs to look the column's indexes up again.
    pub key: K,
}

impl Dialect {
    /// Whether `a` and `b` name the same column (SQLite ignores ASCII case).
    fn same_name(self, a: &str, b: &str) -> bool {
        match self {
            Dialect::Sqlite => a.eq_ignore_ascii_case(b),
            Dialect::Postgres => a == b,
        }
    }
}

/// `name` among the columns of `m`'s table, or the config error saying it is missing.
fn find<'c, K>(
    d: Dialect,
    m: &Mapping,
    cols: &'c [Column<K>],
    name: &str,
) -> Result<&'c Column<K>, SinkError> {
    cols.iter()
        .find(|c| d.same_name(&c.name, name))
        .ok_or_else(|| SinkError::Config(format!("table {} has no column {name}", m.table)))
}

/// [`super::Sink::check`] on the columns of `m`'s table: the value column (plain mode) holds
/// integers; the id column holds integers or text and is unique (`is_unique`, asked of the
/// database); with `--missing insert`, a new row can leave every column it does not name out.
pub fn check<K>(
    d: Dialect,
    m: &Mapping,
    cols: &[Column<K>],
    is_unique: impl FnOnce(&Column<K>) -> Result<bool, SinkError>,
) -> Result<IdKind, SinkError> {
    if m.columns.is_none() {
        let value = find(d, m, cols, &m.column)?;
        if !matches!(value.kind, Some(ColKind::Int { .. })) {
            let which = match d {
                Dialect::Sqlite => "",
                Dialect::Postgres => " (smallint, integer or bigint)",
            };
            return Err(SinkError::Config(format!(
                "column {}.{} is {}, not an integer column{which}",
                m.table, m.column, value.shown_type
            )));
        }
    }
    let id = find(d, m, cols, &m.id_column)?;
    let kind = match id.kind {
        Some(ColKind::Int { min, max }) => IdKind::Int { min, max },
        Some(ColKind::Text { max_chars }) => IdKind::Text { max_chars },
        _ => {
            return Err(SinkError::Config(format!(
                "id column {}.{} is {}: it must be an integer or text column",
                m.table, m.id_column, id.shown_type
            )))
        }
    };
    if !is_unique(id)? {
        return Err(SinkError::Config(format!(
            "id column {}.{} is neither the PRIMARY KEY nor UNIQUE: rows cannot be upserted",
            m.table, m.id_column
        )));
    }
    // Rows mode (`m.column` empty): a row may leave any buffered column out, so only the id
    // is exempt; with --missing skip nothing is ever inserted.
    let ours =
        |c: &Column<K>| d.same_name(&c.name, &m.column) || d.same_name(&c.name, &m.id_column);
    let blocker = cols.iter().find(|c| c.needs_value && !ours(c));
    if let Some(c) = blocker.filter(|_| m.missing == Missing::Insert) {
        return Err(SinkError::Config(format!(
            "column {}.{} is NOT NULL without a default: missing rows cannot be inserted",
            m.table, c.name
        )));
    }
    Ok(kind)
}

/// [`super::Sink::check_columns`] on the columns of `m`'s table.
pub fn column_kinds<K>(
    d: Dialect,
    m: &Mapping,
    cols: &[Column<K>],
) -> Result<Vec<ColKind>, SinkError> {
    let bytes = match d {
        Dialect::Sqlite => "blob",
        Dialect::Postgres => "bytea",
    };
    let kind = |name: &String| {
        let c = find(d, m, cols, name)?;
        c.kind.clone().ok_or_else(|| {
            SinkError::Config(format!(
                "column {}.{name} is {}: buffered columns must be integer, text or {bytes}",
                m.table, c.shown_type
            ))
        })
    };
    m.columns.iter().flatten().map(kind).collect()
}
