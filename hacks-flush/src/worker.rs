//! The drain → apply → acknowledge loop.

use std::time::{Duration, Instant};

use crate::args::Config;
use crate::backoff::Backoff;
use crate::batch::{self, Batch, CellVal, Entry, Op};
use crate::log::show;
use crate::member::{canonical_i64, to_id};
use crate::signals;
use crate::sink::{
    self, Changes, ColKind, Outcome, Param, Record, Reject, RowUpdate, Rows, Sink, SinkError,
    Target, REJECTS_TABLE,
};
use crate::source::{Failure, Source};

/// A batch could not be applied (--once only; the daemon keeps going).
pub const EXIT_FAILED: i32 = 1;
/// Bad flags or a schema that cannot receive the increments.
pub const EXIT_CONFIG: i32 = 2;

/// What one drain of one buffer did.
enum Step {
    Batch,
    Empty,
    /// The batch is left unacknowledged (it comes back after its lease).
    Refused,
    RedisDown(String),
    RedisError(String),
    Stopped,
}

/// Runs until stopped (or, with --once, until every buffer is empty); returns the exit status.
pub fn run(cfg: &Config) -> i32 {
    let mut sink = sink::open(&cfg.db);
    let targets = match prepare(sink.as_mut(), cfg) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let mut source = match Source::new(&cfg.redis) {
        Ok(s) => s,
        Err(e) => {
            log!("error: {e}");
            return EXIT_CONFIG;
        }
    };
    let redis = shown_url(&cfg.redis);
    if let Err(code) = wait_for_redis(&mut source, &redis) {
        return code;
    }
    log!(
        "started: {} buffer(s) from redis {redis} into {}",
        targets.len(),
        sink.describe()
    );

    // Redis being down concerns every buffer: one backoff, and the round starts over. An
    // error reply concerns one buffer (e.g. WRONGTYPE): only that one waits.
    let mut down = Backoff::new();
    let mut state: Vec<BufferState> = targets.iter().map(|_| BufferState::new()).collect();
    let mut failed = false;
    let interval = Duration::from_millis(cfg.interval_ms);
    loop {
        let mut busy = false;
        for (target, st) in targets.iter().zip(state.iter_mut()) {
            if st.done || st.retry_at.is_some_and(|t| Instant::now() < t) {
                continue;
            }
            if signals::stop_requested() {
                return stopped();
            }
            let buffer = &target.mapping.buffer;
            // Rows mode applies batches in id order (so SET keeps the last value written):
            // after a start or any failure, a batch may be in flight unapplied (a crash
            // between DRAIN and COMMIT); wait until its lease runs out and DRAIN hands it
            // out again before leasing anything newer.
            if target.mapping.columns.is_some() && !st.settled {
                match source.longest_lease(buffer) {
                    Ok(0) => st.settled = true,
                    Ok(ms) => {
                        st.retry_at = Some(
                            Instant::now()
                                + Duration::from_millis(ms.unsigned_abs().saturating_add(5)),
                        );
                        busy = true;
                        continue;
                    }
                    Err(Failure::Down(e)) | Err(Failure::Reply(e)) => {
                        let why = format_args!("{buffer}: HACK.BUFINFO failed ({e})");
                        st.retry_at = Some(Instant::now() + st.backoff.retry_delay(why));
                        busy = true;
                        continue;
                    }
                }
            }
            let step = step(cfg, &mut source, sink.as_mut(), target);
            if !matches!(step, Step::Batch | Step::Empty) {
                st.settled = false;
            }
            match step {
                Step::Batch => {
                    busy = true;
                    down.reset();
                    st.ok();
                }
                Step::Empty => {
                    down.reset();
                    st.ok();
                    st.done = cfg.once;
                }
                Step::Refused => {
                    busy = true;
                    failed = true;
                    st.done = cfg.once;
                }
                Step::RedisError(e) if cfg.once => {
                    log!("error: {buffer}: HACK.DRAIN failed: {e}");
                    failed = true;
                    st.done = true;
                }
                Step::RedisError(e) => {
                    let why = format_args!("{buffer}: HACK.DRAIN failed ({e})");
                    st.retry_at = Some(Instant::now() + st.backoff.retry_delay(why));
                }
                Step::RedisDown(e) => {
                    let why = format_args!("redis {redis} unreachable ({e})");
                    if !signals::sleep(down.retry_delay(why)) {
                        return stopped();
                    }
                    busy = true;
                    break;
                }
                Step::Stopped => return stopped(),
            }
        }
        if state.iter().all(|s| s.done) {
            if failed {
                log!("every buffer is done, with errors (see above): exiting (--once)");
                return EXIT_FAILED;
            }
            log!("every buffer is empty: exiting (--once)");
            return 0;
        }
        if !busy && !signals::sleep(interval) {
            return stopped();
        }
    }
}

/// Per-buffer progress in the main loop.
struct BufferState {
    /// --once: this buffer was found empty (or gave up on an error).
    done: bool,
    /// After an error reply: not before then.
    retry_at: Option<Instant>,
    backoff: Backoff,
    /// Rows mode: no unapplied batch can be in flight before the next DRAIN.
    settled: bool,
}

impl BufferState {
    fn new() -> BufferState {
        BufferState {
            done: false,
            retry_at: None,
            backoff: Backoff::new(),
            settled: false,
        }
    }

    fn ok(&mut self) {
        self.retry_at = None;
        self.backoff.reset();
    }
}

fn stopped() -> i32 {
    log!("stopped by signal");
    0
}

/// Checks every mapping against the schema and creates the bookkeeping tables, retrying
/// while the database is unreachable. Err holds the exit status.
fn prepare(sink: &mut dyn Sink, cfg: &Config) -> Result<Vec<Target>, i32> {
    let mut backoff = Backoff::new();
    loop {
        let attempt = (|| {
            let mut targets = Vec::new();
            for m in &cfg.mappings {
                let kind = sink.check(m)?;
                let kinds = match m.columns {
                    Some(_) => sink.check_columns(m)?,
                    None => vec![],
                };
                let columns = m.columns.iter().flatten().cloned().zip(kinds).collect();
                targets.push(Target {
                    mapping: m.clone(),
                    kind,
                    columns,
                });
            }
            sink.create_bookkeeping()?;
            Ok(targets)
        })();
        match attempt {
            Ok(targets) => return Ok(targets),
            Err(SinkError::Config(msg)) => {
                log!("error: {}: {msg}", sink.describe());
                return Err(EXIT_CONFIG);
            }
            Err(SinkError::Retry(msg)) => {
                let why = format_args!("{} unreachable ({msg})", sink.describe());
                if !signals::sleep(backoff.retry_delay(why)) {
                    return Err(stopped());
                }
            }
        }
    }
}

/// Connects and checks that the module is loaded, retrying while Redis is unreachable.
fn wait_for_redis(source: &mut Source, redis: &str) -> Result<(), i32> {
    let mut backoff = Backoff::new();
    loop {
        let why = match source.has_module() {
            Ok(true) => return Ok(()),
            Ok(false) => {
                log!(
                    "error: redis {redis} does not have the redis-hacks module loaded \
                     (no HACK.DRAIN / HACK.ACK)"
                );
                return Err(EXIT_CONFIG);
            }
            Err(Failure::Down(e)) => format!("redis {redis} unreachable ({e})"),
            Err(Failure::Reply(e)) => format!("redis {redis}: COMMAND INFO failed ({e})"),
        };
        if !signals::sleep(backoff.retry_delay(format_args!("{why}"))) {
            return Err(stopped());
        }
    }
}

/// Drains one batch of one buffer, applies it and acknowledges it.
fn step(cfg: &Config, source: &mut Source, sink: &mut dyn Sink, target: &Target) -> Step {
    let buffer = target.mapping.buffer.as_str();
    let batch = match source.drain(buffer, cfg.batch, cfg.lease_ms) {
        Ok(Some(b)) => b,
        Ok(None) => return Step::Empty,
        Err(Failure::Down(e)) => return Step::RedisDown(e),
        Err(Failure::Reply(e)) => return Step::RedisError(e),
    };
    let started = Instant::now();
    let rows_mode = target.mapping.columns.is_some();
    let (rows, rejects) = if rows_mode {
        let (rows, rejects) = split_rows(target, &batch);
        (Rows::Cells(rows), rejects)
    } else {
        let (rows, rejects) = split(target, &batch);
        (Rows::Counts(rows), rejects)
    };
    let changes = Changes {
        record: Record {
            buffer,
            batch_id: batch.id,
            entries: batch.entries.len() as i64,
            checksum: batch::checksum(&batch.entries),
        },
        rows,
        rejects,
    };
    let head = format!("{buffer} batch {}", batch.id);
    // A stop request does not interrupt a batch that applies: it finishes (quickly). Only a
    // batch stuck retrying is abandoned; its lease brings it back.
    let mut backoff = Backoff::new();
    let (outcome, skipped) = loop {
        match sink.apply(target, &changes) {
            Ok(applied) => break applied,
            Err(SinkError::Retry(msg) | SinkError::Config(msg)) => {
                let why = format_args!("{head}: {} failed ({msg})", sink.describe());
                if !signals::sleep(backoff.retry_delay(why)) {
                    log!("{head}: abandoned on stop; it is handed out again after its lease");
                    return Step::Stopped;
                }
            }
        }
    };
    let n = batch.entries.len();
    let d = batch.deliveries;
    let what = match outcome {
        Outcome::Applied => {
            for r in &changes.rejects {
                log!(
                    "{head}: member {} (value {}) rejected: {}; recorded in {REJECTS_TABLE}",
                    show(&r.member),
                    r.value,
                    r.reason
                );
            }
            let missing = if rows_mode {
                format!(", {skipped} missing rows skipped")
            } else {
                String::new()
            };
            format!(
                "{n} entries applied ({} rejected{missing}), delivery {d}",
                changes.rejects.len()
            )
        }
        Outcome::AlreadyApplied => format!("{n} entries, delivery {d}: already applied"),
        Outcome::Mismatch { entries, checksum } => {
            log!(
                "error: {head}: the database recorded this batch id with other contents \
                 ({entries} entries, checksum {checksum}; now {n} entries, checksum {}): batch \
                 ids were reused, did Redis lose its data? Not applying and not acknowledging \
                 it: it is handed out again after its lease",
                changes.record.checksum
            );
            return Step::Refused;
        }
    };
    let acked = match source.ack(buffer, batch.id) {
        Ok(true) => String::new(),
        Ok(false) => " (it had already been acknowledged)".into(),
        Err(Failure::Down(e) | Failure::Reply(e)) => {
            format!("; HACK.ACK failed ({e}): it is handed out again after its lease and skipped")
        }
    };
    log!(
        "{head}: {what}, {:.1} ms{acked}",
        started.elapsed().as_secs_f64() * 1000.0
    );
    Step::Batch
}

/// The rows to apply, sorted by id, and the members that map to no id (plain mode: a row
/// entry is rejected, it needs `--columns`).
fn split(target: &Target, batch: &Batch) -> (Vec<(crate::member::Id, i64)>, Vec<Reject>) {
    let mut rows = Vec::with_capacity(batch.entries.len());
    let mut rejects = Vec::new();
    for (member, entry) in &batch.entries {
        let value = match entry {
            Entry::Plain(v) => *v,
            Entry::Row(_) => {
                rejects.push(Reject {
                    member: member.clone(),
                    value: 0,
                    reason: format!(
                        "a row (HACK.BUFUPDATE), not a plain counter: map this buffer with \
                         --columns; row: {}",
                        render(entry)
                    ),
                });
                continue;
            }
        };
        match to_id(&target.kind, member) {
            Ok(id) => rows.push((id, value)),
            Err(reason) => rejects.push(Reject {
                member: member.clone(),
                value,
                reason,
            }),
        }
    }
    rows.sort();
    (rows, rejects)
}

/// Rows mode: each entry's columns checked against the allow-list and the column types, as
/// parameters; a row that cannot be written whole goes to the rejects (with its contents).
fn split_rows(
    target: &Target,
    batch: &Batch,
) -> (Vec<(crate::member::Id, RowUpdate)>, Vec<Reject>) {
    let mut rows = Vec::with_capacity(batch.entries.len());
    let mut rejects = Vec::new();
    for (member, entry) in &batch.entries {
        let plain_value = match entry {
            Entry::Plain(v) => *v,
            Entry::Row(_) => 0,
        };
        let converted =
            to_id(&target.kind, member).and_then(|id| Ok((id, row_update(target, entry)?)));
        match converted {
            Ok(row) => rows.push(row),
            Err(reason) => rejects.push(Reject {
                member: member.clone(),
                value: plain_value,
                reason: format!("{reason}; row: {}", render(entry)),
            }),
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    (rows, rejects)
}

fn row_update(target: &Target, entry: &Entry) -> Result<RowUpdate, String> {
    let plain;
    let cells: &[batch::Cell] = match entry {
        Entry::Plain(v) => {
            plain = [batch::Cell {
                column: b"value".to_vec(),
                op: Op::Incr,
                value: CellVal::Int(*v),
            }];
            &plain
        }
        Entry::Row(cells) => cells,
    };
    let mut out = Vec::with_capacity(cells.len());
    for c in cells {
        let name = String::from_utf8_lossy(&c.column);
        let Some(i) = target
            .columns
            .iter()
            .position(|(n, _)| n.as_bytes() == c.column)
        else {
            return Err(format!("column {name:?} is not in --columns"));
        };
        let kind = target.columns.get(i).map(|(_, k)| k);
        let param = match (c.op, &c.value, kind) {
            (Op::Incr | Op::Max | Op::Min, CellVal::Int(n), Some(ColKind::Int { min, max })) => {
                if c.op != Op::Incr && (n < min || n > max) {
                    return Err(format!("{name}: {n} is out of the column's range"));
                }
                Param::Int(*n)
            }
            (Op::Set, CellVal::Bytes(b), Some(ColKind::Int { min, max })) => {
                let n = canonical_i64(b)
                    .filter(|n| n >= min && n <= max)
                    .ok_or_else(|| format!("{name}: SET value is no integer the column holds"))?;
                Param::Int(n)
            }
            (Op::Set, CellVal::Bytes(b), Some(ColKind::Text { max_chars })) => {
                let s = std::str::from_utf8(b)
                    .map_err(|_| format!("{name}: SET value is not valid UTF-8"))?;
                if s.contains('\0') {
                    return Err(format!("{name}: SET value contains a NUL byte"));
                }
                if max_chars.is_some_and(|m| s.chars().count() > m) {
                    return Err(format!("{name}: SET value is longer than the column"));
                }
                Param::Text(s.to_string())
            }
            (Op::Set, CellVal::Bytes(b), Some(ColKind::Bytes)) => Param::Bytes(b.clone()),
            (op, _, _) => {
                return Err(format!(
                    "{name}: {} does not fit the column's type",
                    op.word()
                ))
            }
        };
        out.push((i, c.op, param));
    }
    Ok(out)
}

/// An entry for log lines and the rejects table (long values cut).
fn render(entry: &Entry) -> String {
    match entry {
        Entry::Plain(v) => v.to_string(),
        Entry::Row(cells) => cells
            .iter()
            .map(|c| {
                let v = match &c.value {
                    CellVal::Int(n) => n.to_string(),
                    CellVal::Bytes(b) => {
                        let s = show(b);
                        if s.len() > 200 {
                            format!("{}...", s.chars().take(200).collect::<String>())
                        } else {
                            s
                        }
                    }
                };
                format!("{} {} {v}", show(&c.column), c.op.word())
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The URL without its password, for log lines.
fn shown_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Mapping;
    use crate::member::{Id, IdKind};

    #[test]
    fn hides_passwords() {
        assert_eq!(shown_url("redis://u:pw@h:1/0"), "redis://h:1/0");
        assert_eq!(
            shown_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }

    #[test]
    fn splits_and_sorts() {
        let target = Target {
            mapping: Mapping {
                buffer: "b".into(),
                table: "t".into(),
                column: "c".into(),
                id_column: "id".into(),
                columns: None,
                missing: crate::args::Missing::Insert,
            },
            kind: IdKind::Int {
                min: i64::MIN,
                max: i64::MAX,
            },
            columns: vec![],
        };
        let p = Entry::Plain;
        let batch = Batch {
            id: 1,
            deliveries: 1,
            entries: vec![
                (b"9".to_vec(), p(1)),
                (b"x".to_vec(), p(2)),
                (b"-3".to_vec(), p(3)),
            ],
        };
        let (rows, rejects) = split(&target, &batch);
        assert_eq!(rows, [(Id::Int(-3), 3), (Id::Int(9), 1)]);
        assert_eq!(rejects.len(), 1);
        assert_eq!(
            (rejects[0].member.as_slice(), rejects[0].value),
            (&b"x"[..], 2)
        );
    }
}
