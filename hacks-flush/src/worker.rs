//! The drain → apply → acknowledge loop.

use std::time::{Duration, Instant};

use crate::args::Config;
use crate::backoff::Backoff;
use crate::batch::{self, Batch};
use crate::log::show;
use crate::member::to_id;
use crate::signals;
use crate::sink::{self, Outcome, Record, Reject, Sink, SinkError, Target, REJECTS_TABLE};
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
            match step(cfg, &mut source, sink.as_mut(), target) {
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
                    let d = st.backoff.next_delay();
                    log!(
                        "{buffer}: HACK.DRAIN failed ({e}): retrying in {} ms",
                        d.as_millis()
                    );
                    st.retry_at = Some(Instant::now() + d);
                }
                Step::RedisDown(e) => {
                    let d = down.next_delay();
                    log!(
                        "redis {redis} unreachable ({e}): retrying in {} ms",
                        d.as_millis()
                    );
                    if !signals::sleep(d) {
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
}

impl BufferState {
    fn new() -> BufferState {
        BufferState {
            done: false,
            retry_at: None,
            backoff: Backoff::new(),
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
                targets.push(Target {
                    mapping: m.clone(),
                    kind,
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
                let d = backoff.next_delay();
                log!(
                    "{} unreachable ({msg}): retrying in {} ms",
                    sink.describe(),
                    d.as_millis()
                );
                if !signals::sleep(d) {
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
        let d = backoff.next_delay();
        log!("{why}: retrying in {} ms", d.as_millis());
        if !signals::sleep(d) {
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
    let (rows, rejects) = split(target, &batch);
    let record = Record {
        buffer,
        batch_id: batch.id,
        entries: batch.entries.len() as i64,
        checksum: batch::checksum(&batch.entries),
    };
    let head = format!("{buffer} batch {}", batch.id);
    // A stop request does not interrupt a batch that applies: it finishes (quickly). Only a
    // batch stuck retrying is abandoned; its lease brings it back.
    let mut backoff = Backoff::new();
    let outcome = loop {
        match sink.apply(target, &record, &rows, &rejects) {
            Ok(o) => break o,
            Err(SinkError::Retry(msg) | SinkError::Config(msg)) => {
                let d = backoff.next_delay();
                log!(
                    "{head}: {} failed ({msg}): retrying in {} ms",
                    sink.describe(),
                    d.as_millis()
                );
                if !signals::sleep(d) {
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
            for r in &rejects {
                log!(
                    "{head}: member {} (value {}) rejected: {}; recorded in {REJECTS_TABLE}",
                    show(&r.member),
                    r.value,
                    r.reason
                );
            }
            format!(
                "{n} entries applied ({} rejected), delivery {d}",
                rejects.len()
            )
        }
        Outcome::AlreadyApplied => format!("{n} entries, delivery {d}: already applied"),
        Outcome::Mismatch { entries, checksum } => {
            log!(
                "error: {head}: the database recorded this batch id with other contents \
                 ({entries} entries, checksum {checksum}; now {n} entries, checksum {}): batch \
                 ids were reused, did Redis lose its data? Not applying and not acknowledging \
                 it: it is handed out again after its lease",
                record.checksum
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

/// The rows to apply, sorted by id, and the members that map to no id.
fn split(target: &Target, batch: &Batch) -> (Vec<(crate::member::Id, i64)>, Vec<Reject>) {
    let mut rows = Vec::with_capacity(batch.entries.len());
    let mut rejects = Vec::new();
    for (member, value) in &batch.entries {
        match to_id(&target.kind, member) {
            Ok(id) => rows.push((id, *value)),
            Err(reason) => rejects.push(Reject {
                member: member.clone(),
                value: *value,
                reason,
            }),
        }
    }
    rows.sort();
    (rows, rejects)
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
            },
            kind: IdKind::Int {
                min: i64::MIN,
                max: i64::MAX,
            },
        };
        let batch = Batch {
            id: 1,
            deliveries: 1,
            entries: vec![(b"9".to_vec(), 1), (b"x".to_vec(), 2), (b"-3".to_vec(), 3)],
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
