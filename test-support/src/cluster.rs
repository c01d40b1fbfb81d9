//! A local Redis Cluster for tests: every node a [`Server`] with the module loaded, created
//! with `redis-cli --cluster create`, stopped (by pid) when dropped.

use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use redis::cluster::{ClusterClient, ClusterConnection};

use super::{Opts, Server, Value};

pub struct Cluster {
    pub nodes: Vec<Server>,
}

/// A node of a cluster: cluster mode on, its own nodes.conf, a 2 s node timeout.
pub fn cluster_opts() -> Opts {
    Opts {
        extra: vec![
            "--cluster-enabled".into(),
            "yes".into(),
            "--cluster-config-file".into(),
            "nodes.conf".into(),
            "--cluster-node-timeout".into(),
            "2000".into(),
        ],
        ..Opts::default()
    }
}

impl Cluster {
    /// `masters` masters with `replicas` replicas each, all slots assigned, state ok.
    pub fn start(masters: usize, replicas: usize) -> Cluster {
        let nodes: Vec<Server> = (0..masters * (1 + replicas))
            .map(|_| Server::with(cluster_opts()))
            .collect();
        let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
        args.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        args.extend([
            "--cluster-replicas".into(),
            replicas.to_string(),
            "--cluster-yes".into(),
        ]);
        let out = Command::new(super::cli_bin())
            .args(&args)
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let c = Cluster { nodes };
        c.wait_ok(&c.nodes.iter().collect::<Vec<_>>());
        c.wait_replicas_synced();
        c
    }

    /// `cluster_state:ok` does not wait for replicas: wait until every replica's link to its
    /// master is up (its initial sync done), so `WAIT 1` can be answered.
    pub fn wait_replicas_synced(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for n in &self.nodes {
            loop {
                let Ok(mut c) = n.try_conn() else { break };
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut c)
                    .unwrap_or_default();
                if info.contains("role:master") || info.contains("master_link_status:up") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "a replica never finished its sync:\n{info}"
                );
                sleep(Duration::from_millis(50));
            }
        }
    }

    /// Wait until every given node reports `cluster_state:ok` and agrees on slot owners.
    pub fn wait_ok(&self, nodes: &[&Server]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = nodes.iter().all(|n| {
                let Ok(mut c) = n.try_conn() else {
                    return false;
                };
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut c)
                    .unwrap_or_default();
                info.contains("cluster_state:ok")
            });
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "cluster never reached state ok");
            sleep(Duration::from_millis(50));
        }
    }

    /// A cluster client seeded with every node still running.
    pub fn client(&mut self) -> ClusterConnection {
        let seeds: Vec<String> = self
            .nodes
            .iter_mut()
            .filter_map(|n| n.alive().then(|| format!("redis://127.0.0.1:{}/", n.port)))
            .collect();
        let client = ClusterClient::new(seeds).expect("cluster client");
        client.get_connection().expect("cluster connection")
    }

    pub fn slot_of(&self, key: &str) -> i64 {
        let mut c = self.nodes[0].conn();
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut c)
            .expect("KEYSLOT")
    }

    /// Index in `nodes` of the master serving `slot`, asking `via`.
    pub fn owner_of(&self, slot: i64, via: usize) -> usize {
        let mut c = self.nodes[via].conn();
        let slots: Vec<Value> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut c)
            .expect("SLOTS");
        for range in slots {
            let Value::Array(parts) = range else { continue };
            let (Some(Value::Int(lo)), Some(Value::Int(hi)), Some(Value::Array(master))) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                continue;
            };
            if (*lo..=*hi).contains(&slot) {
                if let Some(Value::Int(port)) = master.get(1) {
                    if let Some(i) = self.nodes.iter().position(|n| i64::from(n.port) == *port) {
                        return i;
                    }
                }
            }
        }
        panic!("no owner for slot {slot}");
    }

    pub fn node_id(&self, i: usize) -> String {
        let mut c = self.nodes[i].conn();
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut c)
            .expect("MYID")
    }

    /// Begin moving `slot` from node `source` to node `target`: IMPORTING on the target,
    /// then MIGRATING on the source (the keys are then moved with MIGRATE).
    pub fn begin_slot_move(&self, slot: i64, source: usize, target: usize) {
        let (src_id, dst_id) = (self.node_id(source), self.node_id(target));
        for (node, state, other) in [(target, "IMPORTING", src_id), (source, "MIGRATING", dst_id)] {
            let mut c = self.nodes[node].conn();
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg(state)
                .arg(&other)
                .query::<()>(&mut c)
                .unwrap_or_else(|e| panic!("CLUSTER SETSLOT {slot} {state} {other}: {e}"));
        }
    }

    /// Finish a slot move: every node assigns `slot` to node `target`.
    pub fn finish_slot_move(&self, slot: i64, target: usize) {
        let dst_id = self.node_id(target);
        for n in &self.nodes {
            let mut c = n.conn();
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg("NODE")
                .arg(&dst_id)
                .query::<()>(&mut c)
                .unwrap_or_else(|e| panic!("CLUSTER SETSLOT {slot} NODE {dst_id}: {e}"));
        }
    }

    /// Indexes of nodes that are masters now.
    pub fn masters(&mut self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| {
                if !self.nodes[*i].alive() {
                    return false;
                }
                let Ok(mut c) = self.nodes[*i].try_conn() else {
                    return false;
                };
                let role: Vec<Value> = redis::cmd("ROLE").query(&mut c).unwrap_or_default();
                matches!(role.first(), Some(Value::BulkString(r)) if r == b"master")
            })
            .collect()
    }
}
