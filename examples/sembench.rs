//! Semaphore benchmarks for `scripts/bench` (std + libc only, raw RESP over loopback), driven
//! as `lockbench.rs` drives locks, against a running server with the module loaded:
//!
//! 1. Throughput of acquire + release pairs on random keys with limit 5, `-c 50 -P 16` style:
//!    `HACK.SEMACQUIRE` + `HACK.SEMRELEASE` against npm `redis-semaphore`'s way (its acquire
//!    Lua script, ZREMRANGEBYSCORE + ZCARD + ZADD + PEXPIRE, via EVALSHA, then ZREM),
//!    interleaved rounds, best of each.
//! 2. Hand-off latency: release sent -> the waiter's reply, against redis-semaphore's loop
//!    that retries its acquire script every 10 ms.
//!
//! `cargo run --release --example sembench -- PORT [pairs] [rounds] [clients] [pipeline] [keyspace]`

use hacks_test_support::resp::{encode, parse, Conn, Reply};
use hacks_test_support::Rng;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

/// npm `redis-semaphore`'s acquire script (acquireSemaphore.lua), its release is a ZREM.
const ACQ: &str = "local key = KEYS[1] local limit = tonumber(ARGV[1]) local identifier = ARGV[2] local lockTimeout = tonumber(ARGV[3]) local now = tonumber(ARGV[4]) local expiredTimestamp = now - lockTimeout redis.call('zremrangebyscore', key, '-inf', expiredTimestamp) if redis.call('zcard', key) < limit then redis.call('zadd', key, now, identifier) redis.call('pexpire', key, lockTimeout) return 1 else return 0 end";

fn now_ms() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
        .to_string()
}

#[derive(Clone, Copy)]
enum Side {
    Module,
    RedisSemaphore,
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
            let key = format!("sem:{}", rng.next() % p.keyspace);
            seq += 1;
            let owner = format!("{seq:016x}");
            let (k, o) = (key.as_bytes(), owner.as_bytes());
            match side {
                Side::Module => {
                    encode(out, &[b"HACK.SEMACQUIRE", k, o, b"5", b"10000"]);
                    encode(out, &[b"HACK.SEMRELEASE", k, o]);
                }
                Side::RedisSemaphore => {
                    let now = now_ms();
                    encode(
                        out,
                        &[
                            b"EVALSHA",
                            sha.as_bytes(),
                            b"1",
                            k,
                            b"5",
                            o,
                            b"10000",
                            now.as_bytes(),
                        ],
                    );
                    encode(out, &[b"ZREM", k, o]);
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

/// SEMRELEASE sent -> the waiter's reply, in ms (limit 1: the waiter needs the permit).
fn handoff_latency(port: u16, n: usize) -> Vec<f64> {
    let mut holder = Conn::open(port);
    let mut waiter = Conn::open(port);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        assert!(matches!(
            holder.call(&["HACK.SEMACQUIRE", "lat", "h", "1", "10000"]),
            Reply::Int(_)
        ));
        waiter.send(&["HACK.SEMACQUIRE", "lat", "w", "1", "10000", "WAIT", "0"]);
        // Only measure once the server has queued the waiter (`waiters` is the last field).
        loop {
            if let Reply::Array(f) = holder.call(&["HACK.SEMINFO", "lat"]) {
                if f.last() == Some(&Reply::Int(1)) {
                    break;
                }
            }
        }
        let t0 = Instant::now();
        holder.send(&["HACK.SEMRELEASE", "lat", "h"]);
        let r = waiter.read();
        let dt = t0.elapsed();
        assert!(matches!(r, Reply::Int(_)), "{r:?}");
        assert_eq!(holder.read(), Reply::Int(1));
        assert_eq!(waiter.call(&["HACK.SEMRELEASE", "lat", "w"]), Reply::Int(1));
        out.push(dt.as_secs_f64() * 1000.0);
    }
    out
}

/// ZREM sent -> the polling waiter's successful acquire script (retried every 10 ms, as
/// redis-semaphore's default retryInterval), in ms.
fn polling_latency(port: u16, sha: &str, n: usize) -> Vec<f64> {
    let mut holder = Conn::open(port);
    let mut out = Vec::with_capacity(n);
    let mut rng = Rng(42);
    for _ in 0..n {
        let now = now_ms();
        assert_eq!(
            holder.call(&["EVALSHA", sha, "1", "poll", "1", "h", "10000", &now]),
            Reply::Int(1)
        );
        let sha2 = sha.to_string();
        let waiter = thread::spawn(move || {
            let mut c = Conn::open(port);
            loop {
                let now = now_ms();
                if c.call(&["EVALSHA", &sha2, "1", "poll", "1", "w", "10000", &now])
                    == Reply::Int(1)
                {
                    let at = Instant::now();
                    c.call(&["ZREM", "poll", "w"]);
                    return at;
                }
                thread::sleep(Duration::from_millis(10));
            }
        });
        thread::sleep(Duration::from_micros(2_000 + rng.next() % 10_000));
        let t0 = Instant::now();
        assert_eq!(holder.call(&["ZREM", "poll", "h"]), Reply::Int(1));
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
    let Reply::Bulk(sha) = c.call(&["SCRIPT", "LOAD", ACQ]) else {
        panic!("SCRIPT LOAD failed");
    };
    let sha = String::from_utf8(sha).expect("sha");

    let (mut best_mod, mut best_lua) = (0f64, 0f64);
    for _ in 0..rounds {
        c.call(&["FLUSHALL"]);
        best_mod = best_mod.max(throughput(&p, Side::Module, &sha));
        c.call(&["FLUSHALL"]);
        best_lua = best_lua.max(throughput(&p, Side::RedisSemaphore, &sha));
    }
    println!(
        "semaphore acquire + release pairs on random keys, limit 5: -c {} -P {} (commands in flight per connection), {} pairs, best of {rounds}",
        p.clients, p.pipeline, p.pairs
    );
    println!(
        "{:<44} {:>12} {:>16}",
        "pair", "pairs/sec", "vs redis-semaphore"
    );
    println!(
        "{:<44} {:>12.0} {:>16}",
        "redis-semaphore: EVALSHA acquire + ZREM", best_lua, "1.00x"
    );
    println!(
        "{:<44} {:>12.0} {:>15.2}x",
        "HACK.SEMACQUIRE + HACK.SEMRELEASE",
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
        ("HACK.SEMACQUIRE ... WAIT (server-side)", &hand),
        ("redis-semaphore acquire every 10 ms", &poll),
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
