//! A minimal RESP client over one loopback socket, for the benchmark drivers
//! (`examples/lockbench.rs`, `examples/sembench.rs`): pipelining without a client crate, so
//! what is measured is the server. The tests use its encoder for raw sockets they drop.

use std::io::{Read, Write};
use std::net::TcpStream;

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Int(i64),
    Nil,
    Ok(String),
    Err(String),
    Bulk(Vec<u8>),
    Array(Vec<Reply>),
}

/// Parse one reply at the start of `b`: the reply and its length, or None if incomplete.
pub fn parse(b: &[u8]) -> Option<(Reply, usize)> {
    let end = b.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&b[1..end]).ok()?;
    let after = end + 2;
    match b.first()? {
        b':' => Some((Reply::Int(line.parse().ok()?), after)),
        b'+' => Some((Reply::Ok(line.to_string()), after)),
        b'-' => Some((Reply::Err(line.to_string()), after)),
        b'_' => Some((Reply::Nil, after)),
        b'$' => {
            let n: i64 = line.parse().ok()?;
            if n < 0 {
                return Some((Reply::Nil, after));
            }
            let n = n as usize;
            if b.len() < after + n + 2 {
                return None;
            }
            Some((Reply::Bulk(b[after..after + n].to_vec()), after + n + 2))
        }
        b'*' => {
            let n: i64 = line.parse().ok()?;
            if n < 0 {
                return Some((Reply::Nil, after));
            }
            let mut at = after;
            let mut items = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let (r, len) = parse(&b[at..])?;
                items.push(r);
                at += len;
            }
            Some((Reply::Array(items), at))
        }
        _ => panic!("unexpected reply byte {:?}", b[0] as char),
    }
}

/// Append one command (an array of bulk strings) to `out`.
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// One command as RESP bytes, for raw sockets (e.g. a client dropped mid-call).
pub fn command(args: &[&str]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    let mut out = Vec::new();
    encode(&mut out, &args);
    out
}

/// A blocking connection for set-up and latency runs.
pub struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        Conn { s, buf: Vec::new() }
    }

    pub fn send(&mut self, args: &[&str]) {
        let mut out = Vec::new();
        let raw: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        encode(&mut out, &raw);
        self.s.write_all(&out).expect("write");
    }

    pub fn read(&mut self) -> Reply {
        loop {
            if let Some((r, len)) = parse(&self.buf) {
                self.buf.drain(..len);
                return r;
            }
            let mut chunk = [0u8; 4096];
            let n = self.s.read(&mut chunk).expect("read");
            assert!(n > 0, "server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub fn call(&mut self, args: &[&str]) -> Reply {
        self.send(args);
        self.read()
    }
}
