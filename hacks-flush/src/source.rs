//! The Redis side: one connection, reopened after any I/O problem.

use std::time::Duration;

use crate::batch::{self, Batch};
use redis::{Connection, ErrorKind, RedisError, Value};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// DRAIN and ACK answer in microseconds; a reply this late means a stuck link.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call failed.
#[derive(Debug)]
pub enum Failure {
    /// Cannot reach the server or the link broke: reconnect with backoff.
    Down(String),
    /// The server answered with an error (or a reply of the wrong shape).
    Reply(String),
}

pub struct Source {
    client: redis::Client,
    con: Option<Connection>,
}

impl Source {
    /// Fails only on a malformed URL.
    pub fn new(url: &str) -> Result<Source, String> {
        let client = redis::Client::open(url).map_err(|e| format!("--redis {url}: {e}"))?;
        Ok(Source { client, con: None })
    }

    fn con(&mut self) -> Result<&mut Connection, Failure> {
        if self.con.is_none() {
            let con = self
                .client
                .get_connection_with_timeout(CONNECT_TIMEOUT)
                .map_err(|e| Failure::Down(e.to_string()))?;
            con.set_read_timeout(Some(IO_TIMEOUT))
                .and_then(|_| con.set_write_timeout(Some(IO_TIMEOUT)))
                .map_err(|e| Failure::Down(e.to_string()))?;
            self.con = Some(con);
        }
        self.con
            .as_mut()
            .ok_or_else(|| Failure::Down("not connected".into()))
    }

    fn query(&mut self, cmd: &redis::Cmd) -> Result<Value, Failure> {
        let result = cmd.query::<Value>(self.con()?);
        result.map_err(|e| {
            if is_reply(&e) {
                Failure::Reply(e.to_string())
            } else {
                // Whatever else went wrong, the connection's state is unknown: drop it.
                self.con = None;
                Failure::Down(e.to_string())
            }
        })
    }

    /// Whether the module's commands exist (`COMMAND INFO` replies nil for unknown ones).
    pub fn has_module(&mut self) -> Result<bool, Failure> {
        let v = self.query(
            redis::cmd("COMMAND")
                .arg("INFO")
                .arg("HACK.DRAIN")
                .arg("HACK.ACK"),
        )?;
        Ok(match v {
            Value::Array(items) => items.iter().all(|i| !matches!(i, Value::Nil)),
            _ => false,
        })
    }

    pub fn drain(
        &mut self,
        buffer: &str,
        count: u64,
        lease_ms: u64,
    ) -> Result<Option<Batch>, Failure> {
        let v = self.query(
            redis::cmd("HACK.DRAIN")
                .arg(buffer)
                .arg("COUNT")
                .arg(count)
                .arg("LEASE")
                .arg(lease_ms),
        )?;
        batch::from_reply(v).map_err(Failure::Reply)
    }

    /// The longest remaining lease among the buffer's batches in flight, in ms (0 when none
    /// is leased: nothing in flight, or only expired batches, which DRAIN hands out first).
    pub fn longest_lease(&mut self, buffer: &str) -> Result<i64, Failure> {
        let v = self.query(redis::cmd("HACK.BUFINFO").arg(buffer))?;
        let Value::Array(fields) = v else {
            return Ok(0);
        };
        let mut longest = 0i64;
        let mut it = fields.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            if k != Value::BulkString(b"batches".to_vec()) {
                continue;
            }
            let Value::Array(batches) = v else {
                return Err(Failure::Reply("unexpected HACK.BUFINFO batches".into()));
            };
            for b in batches {
                let Value::Array(bf) = b else { continue };
                let mut bi = bf.into_iter();
                while let (Some(k), Some(v)) = (bi.next(), bi.next()) {
                    if let (true, Value::Int(ms)) =
                        (k == Value::BulkString(b"lease_remaining_ms".to_vec()), v)
                    {
                        longest = longest.max(ms);
                    }
                }
            }
        }
        Ok(longest)
    }

    /// True when the batch was in flight and is now gone, false when it was already acked.
    pub fn ack(&mut self, buffer: &str, batch_id: i64) -> Result<bool, Failure> {
        match self.query(redis::cmd("HACK.ACK").arg(buffer).arg(batch_id))? {
            Value::Int(n) => Ok(n == 1),
            other => Err(Failure::Reply(format!(
                "unexpected HACK.ACK reply {other:?}"
            ))),
        }
    }
}

fn is_reply(e: &RedisError) -> bool {
    matches!(e.kind(), ErrorKind::Server(_) | ErrorKind::Extension)
}
