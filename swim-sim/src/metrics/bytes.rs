//! Bytes per message kind (issue 12): every datagram and stream message a node sends is
//! classified by its primary message (or stream kind), and a datagram's piggybacked membership
//! updates and state entries are counted as kinds of their own, so the report shows where the
//! bytes go. Headers and counts stay with the message that carries them.

use serde::Serialize;
use swim_proto::wire::{self, MessageKind, StreamKind};

use crate::scenario::NodeId;

/// The kinds counted, in report order.
const KINDS: [&str; 20] = [
    "ping",
    "ping-req",
    "ack",
    "nack",
    "gossip",
    "piggybacked updates",
    "piggybacked state",
    "user",
    "user-gossip",
    "query-ack",
    "other datagram",
    "push-pull",
    "join",
    "heal",
    "state-sync",
    "user stream",
    "query-response",
    "other stream",
    "encrypted",
    "undecodable",
];

const UPDATES: usize = 5;
const STATE: usize = 6;
const ENCRYPTED: usize = 18;
const UNDECODABLE: usize = 19;

/// One row of the report: a message kind's share of the traffic.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KindLoad {
    /// The kind ("ping", "piggybacked updates", "push-pull"...).
    pub kind: String,
    /// Messages of the kind (for piggybacked kinds: updates or entries) per node per second.
    pub per_node_s: f64,
    /// Their bytes per node per second.
    pub bytes_per_node_s: f64,
    /// Mean bytes per message (or per update or entry).
    pub bytes_each: f64,
}

/// Messages and bytes sent so far, by kind, over every node.
#[derive(Debug, Default)]
pub(crate) struct KindBytes {
    count: [u64; KINDS.len()],
    bytes: [u64; KINDS.len()],
}

/// A plaintext payload, or the kind to count the packet as. The label is not checked (nodes
/// may have their own configs): it is read from the header itself.
fn payload(bytes: &[u8]) -> Result<&[u8], usize> {
    let first = *bytes.first().ok_or(UNDECODABLE)?;
    let label = match first & 2 {
        0 => &[][..],
        _ => {
            let len = usize::from(*bytes.get(1).ok_or(UNDECODABLE)?);
            bytes.get(2..2 + len).ok_or(UNDECODABLE)?
        }
    };
    match wire::read_header(bytes, label) {
        Ok(h) if h.flags & wire::FLAG_ENCRYPTED != 0 => Err(ENCRYPTED),
        Ok(h) => Ok(&bytes[h.len..]),
        Err(_) => Err(UNDECODABLE),
    }
}

fn datagram_index(kind: MessageKind) -> usize {
    match kind {
        MessageKind::Ping => 0,
        MessageKind::PingReq => 1,
        MessageKind::Ack => 2,
        MessageKind::Nack => 3,
        MessageKind::Gossip => 4,
        MessageKind::User => 7,
        MessageKind::UserGossip => 8,
        MessageKind::QueryAck => 9,
        _ => 10,
    }
}

fn stream_index(kind: StreamKind) -> usize {
    match kind {
        StreamKind::PushPull { join: false, .. } => 11,
        StreamKind::PushPull { join: true, .. } => 12,
        StreamKind::Heal { .. } => 13,
        StreamKind::State { .. } => 14,
        StreamKind::User { .. } => 15,
        StreamKind::QueryResponse { .. } => 16,
        _ => 17,
    }
}

impl KindBytes {
    fn add(&mut self, i: usize, count: u64, bytes: usize) {
        self.count[i] += count;
        self.bytes[i] += bytes as u64;
    }

    /// Counts a datagram as sent.
    pub(crate) fn datagram(&mut self, bytes: &[u8]) {
        let p = match payload(bytes) {
            Ok(p) => p,
            Err(i) => return self.add(i, 1, bytes.len()),
        };
        match wire::datagram_layout::<NodeId>(p) {
            Ok(l) => {
                let head = bytes.len() - l.update_bytes - l.state_bytes;
                self.add(datagram_index(l.kind), 1, head);
                if l.updates > 0 {
                    self.add(UPDATES, l.updates as u64, l.update_bytes);
                } else {
                    self.bytes[datagram_index(l.kind)] += l.update_bytes as u64;
                }
                if l.state > 0 {
                    self.add(STATE, l.state as u64, l.state_bytes);
                } else {
                    self.bytes[datagram_index(l.kind)] += l.state_bytes as u64;
                }
            }
            Err(_) => self.add(UNDECODABLE, 1, bytes.len()),
        }
    }

    /// Counts a stream message as sent.
    pub(crate) fn stream(&mut self, bytes: &[u8]) {
        let i = match payload(bytes) {
            Ok(p) => wire::stream_kind::<NodeId>(p).map_or(UNDECODABLE, stream_index),
            Err(i) => i,
        };
        self.add(i, 1, bytes.len());
    }

    /// The kinds seen, per node per second over `seconds` and `nodes`.
    pub(crate) fn report(&self, nodes: usize, seconds: f64) -> Vec<KindLoad> {
        let per = (nodes.max(1) as f64) * seconds.max(1e-9);
        (0..KINDS.len())
            .filter(|&i| self.bytes[i] > 0)
            .map(|i| KindLoad {
                kind: KINDS[i].to_string(),
                per_node_s: self.count[i] as f64 / per,
                bytes_per_node_s: self.bytes[i] as f64 / per,
                bytes_each: self.bytes[i] as f64 / self.count[i].max(1) as f64,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swim_proto::wire::{Message, Update, encode_datagram};

    #[test]
    fn a_datagram_splits_into_message_and_updates() {
        let update = Update::Dead {
            name: "node-7",
            incarnation: 3,
            addr: 7u32,
        };
        let ping = Message::Ping {
            seq: 1,
            target: wire::name_tag("node-2"),
            checksum: 9,
        };
        let bytes = encode_datagram(b"", &ping, &[update]);
        let mut k = KindBytes::default();
        k.datagram(&bytes);
        let rows = k.report(1, 1.0);
        let total: f64 = rows.iter().map(|r| r.bytes_per_node_s).sum();
        assert_eq!(total, bytes.len() as f64, "every byte counted once");
        assert_eq!(rows[0].kind, "ping");
        assert_eq!(rows[1].kind, "piggybacked updates");
        assert_eq!(rows[1].per_node_s, 1.0);
    }
}
