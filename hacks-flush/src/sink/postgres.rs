//! PostgreSQL sink (the synchronous `postgres` crate, no TLS).

use std::collections::HashMap;
use std::time::Duration;

use postgres::types::ToSql;
use postgres::{Client, NoTls, Statement};

use super::schema::{self, Column};
use super::{
    bookkeeping_sql, record_and_write, row_sql, rows_sql_pg, upsert_sql, Bookkeeping, Changes,
    ColKind, Dialect, Outcome, Param, Record, Reject, RowUpdate, Rows, Sink, SinkError, Target,
    BATCHES_TABLE, REJECTS_TABLE,
};
use crate::args::{Mapping, Missing};
use crate::member::{Id, IdKind};

/// Rows per multi-row upsert (PostgreSQL takes at most 65,535 parameters a statement; a row
/// has at most 1 + the allow-list's length).
const ROWS_PER_STATEMENT: usize = 200;

/// The columns and ops of a row: rows that share it share a statement.
type Signature = Vec<(usize, crate::batch::Op)>;

pub struct PgSink {
    url: String,
    client: Option<Client>,
    /// Prepared statements by SQL text, valid for the current connection only.
    statements: HashMap<String, Statement>,
}

/// A column as `pg_attribute` describes it, with its `attnum` as the key.
type PgColumn = Column<i16>;

/// What a column of this type takes (`max_chars`: the n of `varchar(n)` / `char(n)`).
fn col_kind(type_name: &str, max_chars: Option<i32>) -> Option<ColKind> {
    let int = |min: i64, max: i64| Some(ColKind::Int { min, max });
    match type_name {
        "smallint" => int(i16::MIN.into(), i16::MAX.into()),
        "integer" => int(i32::MIN.into(), i32::MAX.into()),
        "bigint" => int(i64::MIN, i64::MAX),
        "text" | "character varying" | "character" => Some(ColKind::Text {
            max_chars: max_chars.and_then(|n| usize::try_from(n).ok()),
        }),
        "bytea" => Some(ColKind::Bytes),
        _ => None,
    }
}

impl PgSink {
    pub fn new(url: String) -> PgSink {
        PgSink {
            url,
            client: None,
            statements: HashMap::new(),
        }
    }

    fn client(&mut self) -> Result<&mut Client, SinkError> {
        if self.client.is_none() {
            let mut config: postgres::Config = self
                .url
                .parse()
                .map_err(|e| SinkError::Config(format!("--db: {e}")))?;
            config
                .connect_timeout(Duration::from_secs(5))
                .application_name("hacks-flush");
            let client = config
                .connect(NoTls)
                .map_err(|e| SinkError::Retry(format!("cannot connect: {}", describe(&e))))?;
            self.statements.clear();
            self.client = Some(client);
        }
        self.client
            .as_mut()
            .ok_or_else(|| SinkError::Retry("not connected".into()))
    }

    /// Turns an error into a retry, dropping the connection unless the server just refused
    /// one statement (the connection is then still good).
    fn fail(&mut self, e: postgres::Error) -> SinkError {
        if e.is_closed() || e.as_db_error().is_none() {
            self.client = None;
            self.statements.clear();
        }
        SinkError::Retry(describe(&e))
    }

    fn columns(&mut self, table: &str) -> Result<Vec<PgColumn>, SinkError> {
        let quoted = super::quote(table);
        let client = self.client()?;
        let kind = client.query_opt(
            "SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)",
            &[&quoted],
        );
        let kind: Option<String> = match kind.and_then(|row| row.map(|r| r.try_get(0)).transpose())
        {
            Ok(kind) => kind,
            Err(e) => return Err(self.fail(e)),
        };
        match kind.as_deref() {
            None => return Err(SinkError::Config(format!("table {table} does not exist"))),
            Some("r") | Some("p") => {}
            Some(_) => return Err(SinkError::Config(format!("{table} is not a table"))),
        }
        let client = self.client()?;
        let rows = client.query(
            "SELECT a.attname::text, format_type(a.atttypid, NULL),
                    CASE WHEN a.atttypmod > 4 THEN a.atttypmod - 4 END,
                    a.attnum,
                    a.attnotnull AND NOT (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '')
               FROM pg_attribute a
              WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
            &[&quoted],
        );
        let columns = rows.and_then(|rows| {
            rows.iter()
                .map(|r| {
                    let shown_type: String = r.try_get(1)?;
                    Ok(Column {
                        name: r.try_get(0)?,
                        kind: col_kind(&shown_type, r.try_get(2)?),
                        shown_type,
                        needs_value: r.try_get(4)?,
                        key: r.try_get(3)?,
                    })
                })
                .collect::<Result<Vec<_>, postgres::Error>>()
        });
        columns.map_err(|e| self.fail(e))
    }

    /// Whether the column alone has a unique, non-partial, non-deferrable index (a primary
    /// key or UNIQUE constraint has one), which `ON CONFLICT (column)` needs.
    fn is_unique(&mut self, table: &str, attnum: i16) -> Result<bool, SinkError> {
        let quoted = super::quote(table);
        let client = self.client()?;
        let r = client.query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_index i
                             WHERE i.indrelid = to_regclass($1) AND i.indisunique
                               AND i.indimmediate AND i.indisvalid AND i.indnkeyatts = 1
                               AND i.indkey[0] = $2 AND i.indpred IS NULL
                               AND i.indexprs IS NULL)",
            &[&quoted, &attnum],
        );
        r.and_then(|row| row.try_get(0)).map_err(|e| self.fail(e))
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, SinkError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let client = self.client()?;
        match client.prepare(sql) {
            Ok(s) => {
                self.statements.insert(sql.to_string(), s.clone());
                Ok(s)
            }
            Err(e) => Err(self.fail(e)),
        }
    }
}

/// An error with the server's message (postgres::Error's Display says only "db error") or
/// the underlying cause.
fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

impl Sink for PgSink {
    fn describe(&self) -> String {
        // The URL may hold a password: show only what follows the last '@'.
        let shown = self.url.rsplit('@').next().unwrap_or(&self.url);
        format!("PostgreSQL {shown}")
    }

    fn check(&mut self, m: &Mapping) -> Result<IdKind, SinkError> {
        let cols = self.columns(&m.table)?;
        schema::check(Dialect::Postgres, m, &cols, |id| {
            self.is_unique(&m.table, id.key)
        })
    }

    fn create_bookkeeping(&mut self) -> Result<(), SinkError> {
        let client = self.client()?;
        let r = client.batch_execute(&bookkeeping_sql(Dialect::Postgres));
        r.map_err(|e| self.fail(e))
    }

    fn check_columns(&mut self, m: &Mapping) -> Result<Vec<ColKind>, SinkError> {
        let cols = self.columns(&m.table)?;
        schema::column_kinds(Dialect::Postgres, m, &cols)
    }

    fn apply(&mut self, target: &Target, changes: &Changes) -> Result<(Outcome, u64), SinkError> {
        let st = self.bookkeeping()?;
        let plan = self.plan(target, &changes.rows)?;
        let client = self.client()?;
        let applied = (|| {
            let mut tx = BatchTx {
                tx: client.transaction()?,
                st,
            };
            let mut skipped = 0u64;
            let outcome = record_and_write(&mut tx, changes, |tx| {
                for (statement, params, rows) in &plan {
                    let n = tx.tx.execute(statement, params)?;
                    skipped += rows.saturating_sub(n);
                }
                Ok(())
            })?;
            if outcome == Outcome::Applied {
                tx.tx.commit()?;
            } else {
                tx.tx.rollback()?;
            }
            Ok((outcome, skipped))
        })();
        applied.map_err(|e| self.fail(e))
    }
}

/// A statement of a batch, its parameters, and how many rows it writes.
type Write<'r> = (Statement, Vec<&'r (dyn ToSql + Sync)>, u64);

impl PgSink {
    /// The statements writing `rows`, prepared before the transaction (cached per
    /// connection). Plain mode: one upsert per row. Rows mode, `--missing insert`: rows with
    /// the same columns and ops go in multi-row upserts of up to ROWS_PER_STATEMENT (one
    /// round trip each instead of one per row: measured faster, see the README); `--missing
    /// skip`: one UPDATE per row (its row count says what was missing).
    fn plan<'r>(&mut self, target: &Target, rows: &'r Rows) -> Result<Vec<Write<'r>>, SinkError> {
        let mut plan = Vec::new();
        match rows {
            Rows::Counts(rows) => {
                let id_param = match target.kind {
                    IdKind::Int { .. } => "$1::bigint",
                    IdKind::Text { .. } => "$1::text",
                };
                let upsert =
                    self.statement(&upsert_sql(&target.mapping, id_param, "$2::bigint"))?;
                for (id, value) in rows {
                    plan.push((upsert.clone(), vec![id_value(id), value], 1));
                }
            }
            Rows::Cells(rows) if target.mapping.missing == Missing::Insert => {
                let mut by_sig: Vec<(Signature, Vec<&(Id, RowUpdate)>)> = Vec::new();
                for row in rows {
                    let sig: Vec<_> = row.1.iter().map(|(i, op, _)| (*i, *op)).collect();
                    match by_sig.iter_mut().find(|(s, _)| *s == sig) {
                        Some((_, v)) => v.push(row),
                        None => by_sig.push((sig, vec![row])),
                    }
                }
                for (sig, members) in by_sig {
                    let per = (65_535 / (sig.len() + 1)).clamp(1, ROWS_PER_STATEMENT);
                    for chunk in members.chunks(per) {
                        let Some(first) = chunk.first() else { continue };
                        let sql = rows_sql_pg(target, &first.1, chunk.len());
                        let params = chunk.iter().flat_map(|(id, cells)| row_values(id, cells));
                        plan.push((self.statement(&sql)?, params.collect(), chunk.len() as u64));
                    }
                }
            }
            Rows::Cells(rows) => {
                for (id, cells) in rows {
                    let sql = row_sql(target, cells, Dialect::Postgres);
                    plan.push((self.statement(&sql)?, row_values(id, cells).collect(), 1));
                }
            }
        }
        Ok(plan)
    }

    fn bookkeeping(&mut self) -> Result<Statements, SinkError> {
        Ok(Statements {
            record: self.statement(&format!(
                "INSERT INTO {BATCHES_TABLE} (buffer, batch_id, entries, checksum) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
            ))?,
            reject: self.statement(&format!(
                "INSERT INTO {REJECTS_TABLE} (buffer, batch_id, member, value, reason) \
                 VALUES ($1, $2, $3, $4, $5)"
            ))?,
        })
    }
}

/// The prepared bookkeeping statements of one batch.
struct Statements {
    record: Statement,
    reject: Statement,
}

/// A batch's transaction with its bookkeeping statements.
struct BatchTx<'c> {
    tx: postgres::Transaction<'c>,
    st: Statements,
}

impl Bookkeeping for BatchTx<'_> {
    type Error = postgres::Error;

    fn record(&mut self, r: &Record) -> Result<bool, postgres::Error> {
        let params: [&(dyn ToSql + Sync); 4] = [&r.buffer, &r.batch_id, &r.entries, &r.checksum];
        Ok(self.tx.execute(&self.st.record, &params)? > 0)
    }

    fn recorded(&mut self, r: &Record) -> Result<Option<(i64, i64)>, postgres::Error> {
        let stored = self.tx.query_opt(
            &format!(
                "SELECT entries::bigint, checksum::bigint FROM {BATCHES_TABLE} \
                 WHERE buffer = $1 AND batch_id = $2"
            ),
            &[&r.buffer, &r.batch_id],
        )?;
        stored
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .transpose()
    }

    fn reject(&mut self, r: &Record, reject: &Reject) -> Result<(), postgres::Error> {
        let params: [&(dyn ToSql + Sync); 5] = [
            &r.buffer,
            &r.batch_id,
            &reject.member,
            &reject.value,
            &reject.reason,
        ];
        self.tx.execute(&self.st.reject, &params)?;
        Ok(())
    }
}

/// An id as the integer or text parameter it holds.
fn id_value(id: &Id) -> &(dyn ToSql + Sync) {
    match id {
        Id::Int(n) => n,
        Id::Text(s) => s,
    }
}

/// The parameters of one row: its id, then the value of each cell.
fn row_values<'r>(
    id: &'r Id,
    cells: &'r RowUpdate,
) -> impl Iterator<Item = &'r (dyn ToSql + Sync)> {
    let values = cells.iter().map(|(_, _, p)| -> &(dyn ToSql + Sync) {
        match p {
            Param::Int(n) => n,
            Param::Text(s) => s,
            Param::Bytes(b) => b,
        }
    });
    std::iter::once(id_value(id)).chain(values)
}
