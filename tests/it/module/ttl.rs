//! Every family's keys keep exactly their TTL, or their lack of one, through an AOF rewrite
//! without RDB preamble and a restart: the server appends its own PEXPIREAT after a module
//! value's rewritten commands when (and only when) the key has a TTL, so the commands must
//! not set one themselves. (A persisted series once came back with a two-year TTL.)

use crate::common::*;

#[test]
fn aof_rewrite_keeps_every_ttl_and_every_missing_ttl() {
    let mut s = Server::with(Opts::aof_without_preamble());
    let mut c = s.conn();
    let far = (server_ms(&mut c) + 3_600_000).to_string();
    let setup: &[&[&str]] = &[
        // Series: its own data-derived expiry, persisted, and a shorter one set by hand.
        &["HACK.TSINCR", "ts:own"],
        &["HACK.TSINCR", "ts:persisted"],
        &["PERSIST", "ts:persisted"],
        &["HACK.TSINCR", "ts:short"],
        &["PEXPIREAT", "ts:short", &far],
        // Locks: the lease as TTL, persisted, and extended by hand.
        &["HACK.LOCK", "lock:own", "o", "60000"],
        &["HACK.LOCK", "lock:persisted", "o", "60000"],
        &["PERSIST", "lock:persisted"],
        // Buffers: none by default, one given by hand.
        &["HACK.BUFINCR", "buf:none", "m", "1"],
        &["HACK.BUFINCR", "buf:ttl", "m", "1"],
        &["HACK.DRAIN", "buf:ttl", "COUNT", "1", "LEASE", "60000"],
        &["HACK.BUFINCR", "buf:ttl", "n", "2"],
        &["PEXPIREAT", "buf:ttl", &far],
        // Rate-limit keys: their window end, and persisted.
        &["HACK.RATEHIT", "rl:own", "10", "60000", "ALGO", "GCRA"],
        &[
            "HACK.RATEHIT",
            "rl:persisted",
            "10",
            "60000",
            "ALGO",
            "SLIDING",
        ],
        &["PERSIST", "rl:persisted"],
    ];
    for args in setup {
        cmd(&mut c, args);
    }
    let before = dataset(&mut c);
    assert_eq!(before["ts:persisted"].2, -1);
    assert_eq!(before["lock:persisted"].2, -1);
    assert_eq!(before["buf:none"].2, -1);
    assert_eq!(before["rl:persisted"].2, -1);
    assert_eq!(before["buf:ttl"].2.to_string(), far);
    assert_eq!(before["ts:short"].2.to_string(), far);
    cmd(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite(&mut c);
    drop(c);
    s.restart();
    let mut c = s.conn();
    assert_eq!(dataset(&mut c), before);
}
