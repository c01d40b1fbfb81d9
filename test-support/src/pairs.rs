//! The load generator of the lock and semaphore benchmarks (`examples/lockbench.rs`,
//! `examples/sembench.rs`): pairs of commands (acquire + release) on random keys, driven
//! `-c 50 -P 16` style like redis-benchmark (each connection keeps `pipeline` commands in
//! flight, one thread polling all of them), and the hand-off latency table.
//!
//! `PORT [pairs] [rounds] [clients] [pipeline] [keyspace]` on the command line.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::Instant;

use crate::resp::{parse, Reply};
use crate::Rng;

pub struct Load {
    pub port: u16,
    pub pairs: usize,
    pub rounds: usize,
    pub clients: usize,
    pub pipeline: usize,
    pub keyspace: u64,
}

impl Load {
    pub fn from_args() -> Load {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let num = |i: usize, default: u64| -> u64 {
            args.get(i)
                .map(|s| s.parse().expect("numeric argument"))
                .unwrap_or(default)
        };
        Load {
            port: num(0, 6379) as u16,
            pairs: num(1, 500_000) as usize,
            rounds: num(2, 3) as usize,
            clients: num(3, 50) as usize,
            pipeline: num(4, 16) as usize,
            keyspace: num(5, 100_000),
        }
    }
}

/// Pairs per second: `pair(out, key, owner)` appends one pair (two commands) on key number
/// `key` (random below `keyspace`) for a fresh `owner`.
pub fn pairs_per_sec(l: &Load, mut pair: impl FnMut(&mut Vec<u8>, u64, &[u8])) -> f64 {
    let per_batch = (l.pipeline / 2).max(1);
    // (stream, unread bytes, replies awaited, pairs in flight)
    let mut conns: Vec<(TcpStream, Vec<u8>, usize, usize)> = (0..l.clients)
        .map(|_| {
            let s = TcpStream::connect(("127.0.0.1", l.port)).expect("connect");
            s.set_nodelay(true).expect("nodelay");
            (s, Vec::new(), 0, 0)
        })
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut sent_pairs, mut done_pairs, mut seq) = (0usize, 0usize, 0u64);
    // Fills `out` with the next batch; returns its number of pairs.
    let mut batch = |out: &mut Vec<u8>, sent: &mut usize| -> usize {
        out.clear();
        let n = per_batch.min(l.pairs - *sent);
        for _ in 0..n {
            seq += 1;
            let owner = format!("{seq:016x}");
            pair(out, rng.next() % l.keyspace, owner.as_bytes());
        }
        *sent += n;
        n
    };
    let start = Instant::now();
    let mut out = Vec::new();
    for c in conns.iter_mut() {
        let pairs = batch(&mut out, &mut sent_pairs);
        if pairs > 0 {
            c.0.write_all(&out).expect("write");
            (c.2, c.3) = (2 * pairs, pairs);
        }
    }
    for c in &conns {
        c.0.set_nonblocking(true).expect("nonblocking");
    }
    let mut chunk = vec![0u8; 64 * 1024];
    while done_pairs < l.pairs {
        let mut fds: Vec<libc_pollfd> = conns
            .iter()
            .map(|c| libc_pollfd {
                fd: c.0.as_raw_fd(),
                events: POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the call.
        let n = unsafe { poll(fds.as_mut_ptr(), fds.len() as u64, 5000) };
        assert!(n > 0, "no reply within 5 s");
        for (i, fd) in fds.iter().enumerate() {
            if fd.revents == 0 {
                continue;
            }
            let c = &mut conns[i];
            loop {
                match c.0.read(&mut chunk) {
                    Ok(0) => panic!("server closed the connection"),
                    Ok(k) => c.1.extend_from_slice(&chunk[..k]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("read: {e}"),
                }
            }
            let mut at = 0;
            while c.2 > 0 {
                let Some((r, len)) = parse(&c.1[at..]) else {
                    break;
                };
                if let Reply::Err(e) = r {
                    panic!("error reply: {e}");
                }
                at += len;
                c.2 -= 1;
            }
            c.1.drain(..at);
            if c.2 == 0 && c.3 > 0 {
                done_pairs += c.3;
                c.3 = 0;
                let pairs = batch(&mut out, &mut sent_pairs);
                if pairs > 0 {
                    c.0.set_nonblocking(false).expect("blocking");
                    c.0.write_all(&out).expect("write");
                    c.0.set_nonblocking(true).expect("nonblocking");
                    (c.2, c.3) = (2 * pairs, pairs);
                }
            }
        }
    }
    l.pairs as f64 / start.elapsed().as_secs_f64()
}

// poll(2), declared here so the harness needs no libc crate.
#[repr(C)]
struct libc_pollfd {
    fd: i32,
    events: i16,
    revents: i16,
}
const POLLIN: i16 = 1;
extern "C" {
    fn poll(fds: *mut libc_pollfd, nfds: u64, timeout: i32) -> i32;
}

pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The throughput lines: the other way (1.00x) and the module's pair against it.
pub fn print_pairs(title: &str, versus: &str, other: (&str, f64), module: (&str, f64)) {
    println!("{title}");
    println!("{:<44} {:>12} {:>18}", "pair", "pairs/sec", versus);
    println!("{:<44} {:>12.0} {:>18}", other.0, other.1, "1.00x");
    println!(
        "{:<44} {:>12.0} {:>17.2}x",
        module.0,
        module.1,
        module.1 / other.1
    );
}

/// The hand-off latency table (release sent -> waiter's reply): the module's server-side
/// queue against a polling loop, and the ratio of the medians.
pub fn print_handoff(module: (&str, &mut Vec<f64>), polling: (&str, &mut Vec<f64>)) {
    module.1.sort_by(f64::total_cmp);
    polling.1.sort_by(f64::total_cmp);
    println!();
    println!("hand-off latency (release sent -> waiter's reply), ms");
    println!(
        "{:<40} {:>8} {:>8} {:>8} {:>8}",
        "", "runs", "p50", "p90", "p99"
    );
    for (label, v) in [(module.0, &*module.1), (polling.0, &*polling.1)] {
        println!(
            "{:<40} {:>8} {:>8.3} {:>8.3} {:>8.3}",
            label,
            v.len(),
            percentile(v, 0.5),
            percentile(v, 0.9),
            percentile(v, 0.99)
        );
    }
    println!(
        "median hand-off: {:.1}x faster",
        percentile(polling.1, 0.5) / percentile(module.1, 0.5)
    );
}
