//! Lock benchmarks for `scripts/bench` (std + libc only, raw RESP over loopback), against a
//! running server with the module loaded:
//!
//! 1. Throughput of uncontended lock + unlock pairs on random keys, `-c 50 -P 16` style:
//!    50 connections, each keeping 16 commands (8 pairs) in flight, driven by one thread
//!    with poll(2) like redis-benchmark. `HACK.LOCK` + `HACK.UNLOCK` against
//!    `SET key token NX PX` + a Lua compare-and-delete (`EVALSHA`), interleaved rounds, best
//!    of each.
//! 2. Hand-off latency: from the moment UNLOCK is sent to the moment the waiter's reply
//!    arrives, against the classic loop that retries `SET NX PX` every 10 ms.
//!
//! `cargo run --release --example lockbench -- PORT [pairs] [rounds] [clients] [pipeline] [keyspace]`

use hacks_test_support::resp::{encode, parse, Conn, Reply};
use hacks_test_support::Rng;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

const CAD: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

#[derive(Clone, Copy)]
enum Side {
    Module,
    SetNxLua,
}

struct Params {
    port: u16,
    pairs: usize,
    clients: usize,
    pipeline: usize,
    keyspace: u64,
}

/// Pairs per second for one side.
fn throughput(p: &Params, side: Side, sha: &str) -> f64 {
    let per_batch = (p.pipeline / 2).max(1);
    let mut conns: Vec<(TcpStream, Vec<u8>, usize, usize)> = (0..p.clients)
        .map(|_| {
            let s = TcpStream::connect(("127.0.0.1", p.port)).expect("connect");
            s.set_nodelay(true).expect("nodelay");
            (s, Vec::new(), 0, 0)
        })
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut sent_pairs = 0usize;
    let mut done_pairs = 0usize;
    let mut seq = 0u64;
    // Fills `out` with the next batch; returns its number of pairs.
    let mut batch = |out: &mut Vec<u8>, sent: &mut usize| -> usize {
        out.clear();
        let n = per_batch.min(p.pairs - *sent);
        for _ in 0..n {
            let key = format!("lk:{}", rng.next() % p.keyspace);
            seq += 1;
            let owner = format!("{seq:016x}");
            let (k, o) = (key.as_bytes(), owner.as_bytes());
            match side {
                Side::Module => {
                    encode(out, &[b"HACK.LOCK", k, o, b"10000"]);
                    encode(out, &[b"HACK.UNLOCK", k, o]);
                }
                Side::SetNxLua => {
                    encode(out, &[b"SET", k, o, b"NX", b"PX", b"10000"]);
                    encode(out, &[b"EVALSHA", sha.as_bytes(), b"1", k, o]);
                }
            }
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
    while done_pairs < p.pairs {
        let mut fds: Vec<libc::pollfd> = conns
            .iter()
            .map(|c| libc::pollfd {
                fd: c.0.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 5000) };
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
    p.pairs as f64 / start.elapsed().as_secs_f64()
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// UNLOCK sent -> waiter's reply, in ms.
fn handoff_latency(port: u16, n: usize) -> Vec<f64> {
    let mut holder = Conn::open(port);
    let mut waiter = Conn::open(port);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        assert!(matches!(
            holder.call(&["HACK.LOCK", "lat", "h", "10000"]),
            Reply::Int(_)
        ));
        waiter.send(&["HACK.LOCK", "lat", "w", "10000", "WAIT", "0"]);
        // Only measure once the server has queued the waiter.
        loop {
            if let Reply::Array(f) = holder.call(&["HACK.LOCKINFO", "lat"]) {
                if f.get(7) == Some(&Reply::Int(1)) {
                    break;
                }
            }
        }
        let t0 = Instant::now();
        holder.send(&["HACK.UNLOCK", "lat", "h"]);
        let r = waiter.read();
        let dt = t0.elapsed();
        assert!(matches!(r, Reply::Int(_)), "{r:?}");
        assert_eq!(holder.read(), Reply::Int(1));
        assert_eq!(waiter.call(&["HACK.UNLOCK", "lat", "w"]), Reply::Int(1));
        out.push(dt.as_secs_f64() * 1000.0);
    }
    out
}

/// Release (compare-and-delete sent) -> the polling waiter's successful SET NX, in ms.
fn polling_latency(port: u16, sha: &str, n: usize) -> Vec<f64> {
    let mut holder = Conn::open(port);
    let mut out = Vec::with_capacity(n);
    let mut rng = Rng(42);
    for _ in 0..n {
        assert_eq!(
            holder.call(&["SET", "poll", "h", "NX", "PX", "10000"]),
            Reply::Ok("OK".into())
        );
        let waiter = thread::spawn(move || {
            let mut c = Conn::open(port);
            loop {
                if c.call(&["SET", "poll", "w", "NX", "PX", "10000"]) == Reply::Ok("OK".into()) {
                    let at = Instant::now();
                    c.call(&["DEL", "poll"]);
                    return at;
                }
                thread::sleep(Duration::from_millis(10));
            }
        });
        // Release at a random point of the waiter's 10 ms cycle.
        thread::sleep(Duration::from_micros(2_000 + rng.next() % 10_000));
        let t0 = Instant::now();
        assert_eq!(
            holder.call(&["EVALSHA", sha, "1", "poll", "h"]),
            Reply::Int(1)
        );
        let got = waiter.join().expect("waiter");
        out.push(got.duration_since(t0).as_secs_f64() * 1000.0);
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: u64| -> u64 {
        args.get(i)
            .map(|s| s.parse().expect("numeric argument"))
            .unwrap_or(default)
    };
    let p = Params {
        port: num(0, 6379) as u16,
        pairs: num(1, 500_000) as usize,
        clients: num(3, 50) as usize,
        pipeline: num(4, 16) as usize,
        keyspace: num(5, 100_000),
    };
    let rounds = num(2, 3) as usize;
    let mut c = Conn::open(p.port);
    let Reply::Bulk(sha) = c.call(&["SCRIPT", "LOAD", CAD]) else {
        panic!("SCRIPT LOAD failed");
    };
    let sha = String::from_utf8(sha).expect("sha");

    let (mut best_mod, mut best_lua) = (0f64, 0f64);
    for _ in 0..rounds {
        c.call(&["FLUSHALL"]);
        best_mod = best_mod.max(throughput(&p, Side::Module, &sha));
        c.call(&["FLUSHALL"]);
        best_lua = best_lua.max(throughput(&p, Side::SetNxLua, &sha));
    }
    println!(
        "lock + unlock pairs on random keys: -c {} -P {} (commands in flight per connection), {} pairs, best of {rounds}",
        p.clients, p.pipeline, p.pairs
    );
    println!("{:<40} {:>12} {:>14}", "pair", "pairs/sec", "vs SET NX+Lua");
    println!(
        "{:<40} {:>12.0} {:>14}",
        "SET NX PX + EVALSHA compare-and-delete", best_lua, "1.00x"
    );
    println!(
        "{:<40} {:>12.0} {:>13.2}x",
        "HACK.LOCK + HACK.UNLOCK",
        best_mod,
        best_mod / best_lua
    );

    c.call(&["FLUSHALL"]);
    let mut hand = handoff_latency(p.port, 2000);
    let mut poll = polling_latency(p.port, &sha, 200);
    hand.sort_by(f64::total_cmp);
    poll.sort_by(f64::total_cmp);
    println!();
    println!("hand-off latency (release sent -> waiter's reply), ms");
    println!(
        "{:<40} {:>8} {:>8} {:>8} {:>8}",
        "", "runs", "p50", "p90", "p99"
    );
    for (label, v) in [
        ("HACK.LOCK ... WAIT (server-side queue)", &hand),
        ("SET NX PX retried every 10 ms", &poll),
    ] {
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
        percentile(&poll, 0.5) / percentile(&hand, 0.5)
    );
}
