//! Replicated-state workload: which node writes which key when, and how long each write takes
//! to reach every live node.

use std::collections::VecDeque;

use swim_proto::Instant;

use crate::report::{StateReport, Summary};
use crate::scenario::{NodeId, StateWorkload};

/// The key node `node` writes as its `j`-th key.
pub(crate) fn key_name(node: NodeId, j: u32) -> String {
    format!("n{node}.{j}")
}

/// Parses a [`key_name`] back into `(node, j)`.
fn parse_key(key: &str) -> Option<(NodeId, u32)> {
    let (node, j) = key.strip_prefix('n')?.split_once('.')?;
    Some((node.parse().ok()?, j.parse().ok()?))
}

/// A write's value: its sequence number (per key, from 1) then padding.
pub(crate) fn value(seq: u32, size: usize) -> Vec<u8> {
    let mut v = vec![0xa5; size.max(4)];
    v[..4].copy_from_slice(&seq.to_le_bytes());
    v
}

struct Pending {
    seq: u32,
    publisher: NodeId,
    at: Instant,
    /// Live nodes other than the publisher that hold this write or a later one.
    reached: u32,
}

/// Tracks every write until every live node holds it (or a later write of the same key).
pub(crate) struct StateTracker {
    ty: String,
    keys_per_node: u32,
    total_keys: usize,
    /// Latest sequence each node holds for each key, `node * total_keys + key`.
    seen: Vec<u32>,
    next_seq: Vec<u32>,
    /// Per key, writes not yet everywhere, oldest first.
    pending: Vec<VecDeque<Pending>>,
    /// Per node, how many writes it has made (its next key is `writes % keys_per_node`).
    writes: Vec<u32>,
    latencies_ms: Vec<f64>,
    updates: u64,
}

impl StateTracker {
    pub(crate) fn new(n: usize, w: &StateWorkload) -> Self {
        let total_keys = n * w.keys_per_node as usize;
        StateTracker {
            ty: w.ty.clone(),
            keys_per_node: w.keys_per_node,
            total_keys,
            seen: vec![0; n * total_keys],
            next_seq: vec![0; total_keys],
            pending: (0..total_keys).map(|_| VecDeque::new()).collect(),
            writes: vec![0; n],
            latencies_ms: Vec::new(),
            updates: 0,
        }
    }

    fn key_id(&self, node: NodeId, j: u32) -> usize {
        node as usize * self.keys_per_node as usize + j as usize
    }

    /// Chooses `node`'s next write: its key and the sequence number the value carries.
    pub(crate) fn publish(&mut self, node: NodeId, now: Instant) -> (String, u32) {
        let j = self.writes[node as usize] % self.keys_per_node;
        self.writes[node as usize] += 1;
        let k = self.key_id(node, j);
        self.next_seq[k] += 1;
        let seq = self.next_seq[k];
        self.seen[node as usize * self.total_keys + k] = seq;
        self.pending[k].push_back(Pending {
            seq,
            publisher: node,
            at: now,
            reached: 0,
        });
        self.updates += 1;
        (key_name(node, j), seq)
    }

    /// `observer` now holds `key` at the write carrying `value`.
    pub(crate) fn on_change(
        &mut self,
        observer: NodeId,
        ty: &str,
        key: &str,
        value: &[u8],
        now: Instant,
        up: &[bool],
    ) {
        if ty != self.ty || value.len() < 4 {
            return;
        }
        let Some((node, j)) = parse_key(key) else {
            return;
        };
        if node as usize >= self.writes.len() || j >= self.keys_per_node {
            return;
        }
        let seq = u32::from_le_bytes(value[..4].try_into().expect("4 bytes"));
        let k = self.key_id(node, j);
        let slot = observer as usize * self.total_keys + k;
        let old = self.seen[slot];
        if seq <= old {
            return;
        }
        self.seen[slot] = seq;
        for p in self.pending[k].iter_mut() {
            if p.seq > old && p.seq <= seq && p.publisher != observer {
                p.reached += 1;
            }
        }
        self.complete(k, now, up);
    }

    /// Retires the writes of key `k` that every live node holds.
    fn complete(&mut self, k: usize, now: Instant, up: &[bool]) {
        let live = up.iter().filter(|&&u| u).count() as u32;
        while let Some(p) = self.pending[k].front() {
            let needed = live - u32::from(up[p.publisher as usize]);
            if p.reached < needed {
                break;
            }
            self.latencies_ms
                .push(now.saturating_duration_since(p.at).as_secs_f64() * 1e3);
            self.pending[k].pop_front();
        }
    }

    /// `node` stopped: it no longer counts towards any write's reach, and if it comes back its
    /// store starts empty.
    pub(crate) fn node_down(&mut self, node: NodeId, now: Instant, up: &[bool]) {
        let row = node as usize * self.total_keys;
        for k in 0..self.total_keys {
            let seen = std::mem::take(&mut self.seen[row + k]);
            if seen == 0 {
                continue;
            }
            for p in self.pending[k].iter_mut() {
                if p.seq <= seen && p.publisher != node {
                    p.reached = p.reached.saturating_sub(1);
                }
            }
        }
        self.sweep(now, up);
    }

    /// Retires whatever the current live set makes complete.
    pub(crate) fn sweep(&mut self, now: Instant, up: &[bool]) {
        for k in 0..self.total_keys {
            if !self.pending[k].is_empty() {
                self.complete(k, now, up);
            }
        }
    }

    pub(crate) fn report(&self, converged: bool, live_nodes_checked: usize) -> StateReport {
        let s = Summary::of(&self.latencies_ms);
        StateReport {
            updates: self.updates,
            reached_all: self.latencies_ms.len() as u64,
            never_reached_all: self.pending.iter().map(|p| p.len() as u64).sum(),
            p50_ms: s.p50,
            p99_ms: s.p99,
            max_ms: s.max,
            converged,
            live_nodes_checked,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        assert_eq!(parse_key(&key_name(17, 3)), Some((17, 3)));
        assert_eq!(parse_key("x1.2"), None);
    }

    #[test]
    fn a_write_completes_when_every_other_live_node_holds_it_or_a_later_one() {
        let w = StateWorkload::default();
        let mut t = StateTracker::new(3, &w);
        let up = [true, true, true];
        let (k, s1) = t.publish(0, Instant::ZERO);
        let (_, s2) = t.publish(0, Instant::from_millis(10));
        let (k3, _) = t.publish(0, Instant::from_millis(20));
        let (k4, _) = t.publish(0, Instant::from_millis(30));
        let (k5, s5) = t.publish(0, Instant::from_millis(40)); // key 0 again, seq 2
        assert_eq!((s1, s2, s5), (1, 1, 2));
        assert_eq!(k5, k);
        let _ = (k3, k4);
        t.on_change(1, "load", &k, &value(1, 32), Instant::from_millis(100), &up);
        assert_eq!(t.latencies_ms.len(), 0);
        // Node 2 skips seq 1 and gets seq 2: both writes of key 0 now reached everyone.
        t.on_change(2, "load", &k, &value(2, 32), Instant::from_millis(200), &up);
        t.on_change(1, "load", &k, &value(2, 32), Instant::from_millis(300), &up);
        assert_eq!(t.latencies_ms, vec![200.0, 260.0]);
        // A crash of a node that never got key 1's write completes it.
        t.on_change(
            1,
            "load",
            &key_name(0, 1),
            &value(1, 32),
            Instant::from_millis(300),
            &up,
        );
        t.node_down(2, Instant::from_millis(400), &[true, true, false]);
        assert_eq!(t.latencies_ms.len(), 3);
        let r = t.report(true, 2);
        assert_eq!((r.updates, r.reached_all, r.never_reached_all), (5, 3, 2));
    }
}
