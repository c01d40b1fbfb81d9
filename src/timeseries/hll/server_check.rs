//! Cross-checks against a live redis-server, ignored by default (they need one):
//!
//! ```text
//! redis-server --port 23457 --bind 127.0.0.1 --save '' --daemonize yes --pidfile /tmp/hll.pid
//! HLL_REDIS_URL=redis://127.0.0.1:23457 cargo test --release --lib timeseries::hll -- --ignored
//! ```
//!
//! They use keys under `hll-check:` and flush nothing else. Random member sets: every register
//! of `GET` (sparse or dense) and `PFCOUNT` against [`Sketch`]; crafted registers stored with
//! `SET` (via [`Sketch::to_redis_dense`]) against the estimator; unions against
//! `PFCOUNT k1 k2 ...`.

use super::registers::REGISTERS;
use super::rng::Rng;
use super::sketch::Sketch;
use super::Registers;

fn connection() -> redis::Connection {
    let url = std::env::var("HLL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:23457".into());
    redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .unwrap_or_else(|e| panic!("no server at {url}: {e}"))
}

/// The registers of a Redis HLL string, either encoding.
fn parse_redis_hll(s: &[u8]) -> Vec<u8> {
    assert_eq!(&s[..4], b"HYLL");
    let body = &s[16..];
    match s[4] {
        0 => {
            assert_eq!(body.len(), 12288);
            (0..REGISTERS)
                .map(|i| {
                    let (byte, fb) = (i * 6 / 8, i * 6 % 8);
                    let mut v = u16::from(body[byte]) >> fb;
                    if fb > 2 {
                        v |= u16::from(body[byte + 1]) << (8 - fb);
                    }
                    (v & 63) as u8
                })
                .collect()
        }
        1 => {
            let mut regs = Vec::with_capacity(REGISTERS);
            let mut p = 0;
            while p < body.len() {
                let c = body[p];
                if c & 0xc0 == 0 {
                    regs.extend(std::iter::repeat_n(0, usize::from(c & 0x3f) + 1));
                    p += 1;
                } else if c & 0xc0 == 0x40 {
                    let n = (usize::from(c & 0x3f) << 8 | usize::from(body[p + 1])) + 1;
                    regs.extend(std::iter::repeat_n(0, n));
                    p += 2;
                } else {
                    let v = ((c >> 2) & 0x1f) + 1;
                    regs.extend(std::iter::repeat_n(v, usize::from(c & 3) + 1));
                    p += 1;
                }
            }
            assert_eq!(regs.len(), REGISTERS);
            regs
        }
        e => panic!("encoding {e}"),
    }
}

/// A random member of 0 to 39 bytes.
fn member(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(40) as usize;
    (0..len).map(|_| rng.next() as u8).collect()
}

fn registers_of(s: &Sketch) -> Vec<u8> {
    (0..REGISTERS).map(|i| s.get(i)).collect()
}

#[test]
#[ignore = "needs a redis-server: HLL_REDIS_URL"]
fn random_member_sets_match_registers_and_pfcount() {
    let mut con = connection();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for round in 0..60 {
        let key = format!("hll-check:set:{round}");
        let _: () = redis::cmd("DEL").arg(&key).query(&mut con).unwrap();
        // Log-uniform sizes from 1 to ~300k, plus repeats of earlier members.
        let n = (1.5f64.powf(rng.below(32) as f64)) as u64 + rng.below(3);
        let mut sketch = Sketch::new([0, 40, 3000, 12288][round % 4]);
        let mut seen: Vec<Vec<u8>> = Vec::new();
        let mut added = 0u64;
        let mut first = true;
        while added < n {
            let batch: Vec<Vec<u8>> = (0..(n - added).min(1000))
                .map(|_| {
                    if !seen.is_empty() && rng.below(5) == 0 {
                        seen[rng.below(seen.len() as u64) as usize].clone()
                    } else {
                        member(&mut rng)
                    }
                })
                .collect();
            added += batch.len() as u64;
            if seen.len() < 1000 {
                seen.extend(batch.iter().take(10).cloned());
            }
            let mut changed = false;
            for m in &batch {
                changed |= sketch.add(m);
            }
            let reply: i64 = redis::cmd("PFADD")
                .arg(&key)
                .arg(&batch)
                .query(&mut con)
                .unwrap();
            if !first {
                assert_eq!(reply == 1, changed, "PFADD reply, round {round}");
            }
            first = false;
        }
        let count: i64 = redis::cmd("PFCOUNT").arg(&key).query(&mut con).unwrap();
        assert_eq!(sketch.count() as i64, count, "round {round}, n {n}");
        let raw: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut con).unwrap();
        assert_eq!(
            parse_redis_hll(&raw),
            registers_of(&sketch),
            "round {round}"
        );
        let back = Sketch::from_bytes(&sketch.to_bytes(), 3000).unwrap();
        assert_eq!(back, sketch);
    }
}

#[test]
#[ignore = "needs a redis-server: HLL_REDIS_URL"]
fn crafted_registers_match_pfcount() {
    let mut con = connection();
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let key = "hll-check:crafted";
    for round in 0..3000 {
        let mut regs = Registers::new();
        match round % 5 {
            // Registers as n members would leave them, n log-uniform up to 2^60.
            0 | 1 => {
                let log_n = rng.below(60) as f64 + (rng.below(1000) as f64 / 1000.0);
                let per_register = 2f64.powf(log_n) / REGISTERS as f64;
                for i in 0..REGISTERS {
                    // P(register <= k) = exp(-lambda / 2^k) for k < 51, as for n members.
                    let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
                    let v = (0..51u8)
                        .find(|&k| u <= (-per_register / 2f64.powi(i32::from(k))).exp())
                        .unwrap_or(51);
                    regs.set_max(i, v);
                }
            }
            // Uniform values, with a random ceiling.
            2 => {
                let top = rng.below(52) + 1;
                for i in 0..REGISTERS {
                    regs.set_max(i, rng.below(top) as u8);
                }
            }
            // Mostly one value with some 0s and some 51s (the tau and sigma tails).
            _ => {
                let base = rng.below(52) as u8;
                let zeros = rng.below(REGISTERS as u64);
                let tops = rng.below(REGISTERS as u64);
                for i in 0..REGISTERS {
                    let r = rng.below(REGISTERS as u64);
                    let v = if r < zeros {
                        0
                    } else if r < zeros + tops {
                        51
                    } else {
                        base
                    };
                    regs.set_max(i, v);
                }
            }
        }
        let mut sketch = Sketch::new(3000);
        for i in 0..REGISTERS {
            sketch.set_max(i as u16, regs.get(i));
        }
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(sketch.to_redis_dense())
            .query(&mut con)
            .unwrap();
        let count: i64 = redis::cmd("PFCOUNT").arg(key).query(&mut con).unwrap();
        assert_eq!(
            regs.count() as i64,
            count,
            "round {round}: {:?}",
            regs.histogram()
        );
        assert_eq!(sketch.count(), regs.count());
    }
}

#[test]
#[ignore = "needs a redis-server: HLL_REDIS_URL"]
fn unions_match_multi_key_pfcount() {
    let mut con = connection();
    let mut rng = Rng(0x0bad_cafe_0123_4567);
    for round in 0..30 {
        let parts = 1 + rng.below(6) as usize;
        let mut keys = Vec::new();
        let mut acc = Registers::new();
        let mut merged = Sketch::new(3000);
        for p in 0..parts {
            let key = format!("hll-check:union:{round}:{p}");
            let _: () = redis::cmd("DEL").arg(&key).query(&mut con).unwrap();
            let n = 1.6f64.powf(rng.below(26) as f64) as u64;
            let start = rng.below(100_000);
            let members: Vec<Vec<u8>> = (start..start + n)
                .map(|i| format!("m{i}").into_bytes())
                .collect();
            let mut s = Sketch::new(3000);
            for chunk in members.chunks(1000) {
                let _: i64 = redis::cmd("PFADD")
                    .arg(&key)
                    .arg(chunk)
                    .query(&mut con)
                    .unwrap();
                for m in chunk {
                    s.add(m);
                }
            }
            s.merge_into(&mut acc);
            merged.merge_from(&s);
            keys.push(key);
        }
        let count: i64 = redis::cmd("PFCOUNT").arg(&keys).query(&mut con).unwrap();
        assert_eq!(acc.count() as i64, count, "round {round}");
        assert_eq!(merged.count() as i64, count, "round {round}");
    }
}
