//! Interposition (Partisan's interposition functions) and the live faults built on it.
//!
//! A hook set with [`ClusterBuilder::interpose`](crate::ClusterBuilder::interpose) sees every
//! datagram and stream message the node sends or receives, with the peer's name (when known),
//! address and message kind, and returns a [`Verdict`]: pass, drop, delay or replace. On top
//! of it, [`FaultRule`]s injected at run time ([`Cluster::inject_partition`],
//! [`Cluster::inject_rules`]) cut the node off from members (both directions), lose or delay
//! packets per peer with a seeded RNG, until [`Cluster::resolve_partition`].
//!
//! Off by default at no cost: the node task holds an `Option` and checks it once per packet.
//! The interposer exists only while a hook is set, a rule is injected or a delayed packet is
//! held; resolving the last rule removes it. Runs on the node task, so a hook must be quick.
//! No protocol logic lives here: the core never knows (a dropped packet is a lost packet).
//!
//! Bounds: at most [`MAX_INJECTED`] injections and [`MAX_HELD`] delayed packets (more are
//! dropped); the address-to-name table holds at most `core.max_members` entries.

use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use swim_proto::fault_rule::FaultRule;
use swim_proto::wire::{self, StreamKind};
use swim_proto::{Event, MessageKind, Node, NodeName};

use crate::driver::{Driver, Request};
use crate::error::Error;
use crate::handle::Cluster;

/// Injections held at once ([`Cluster::inject_rules`] fails beyond).
pub const MAX_INJECTED: usize = 64;
/// Delayed packets held at once; more are dropped.
pub const MAX_HELD: usize = 4096;

/// Which way a packet goes, seen from this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Sent by this node.
    Outgoing,
    /// Received by this node.
    Incoming,
}

/// How a packet travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A UDP datagram.
    Datagram,
    /// A TCP stream message (one per connection).
    Stream,
}

/// A packet as the hook sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Packet<'a> {
    /// Sent or received.
    pub direction: Direction,
    /// Datagram or stream.
    pub transport: Transport,
    /// The peer's node name: from the member table by address, or for a received stream from
    /// its header. `None` for an address no member holds (a seed before the join).
    pub peer_name: Option<&'a str>,
    /// The peer's address (for a received stream, the connection's source).
    pub peer_addr: SocketAddr,
    /// The message kind, `None` if the bytes do not decode (garbage, another cluster's label,
    /// a key this node lacks).
    pub kind: Option<MessageKind>,
    /// The packet's bytes, as on the wire.
    pub bytes: &'a [u8],
}

/// What happens to a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Deliver (or send) it unchanged.
    Pass,
    /// Lose it.
    Drop,
    /// Deliver (or send) it after this long.
    Delay(Duration),
    /// Deliver (or send) these bytes instead.
    Replace(Vec<u8>),
}

/// The interposition hook: called on the node task for every packet.
pub type Hook = Box<dyn FnMut(&Packet<'_>) -> Verdict + Send>;

/// An injection's id, as [`Cluster::inject_partition`] returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PartitionId(pub u64);

impl std::fmt::Display for PartitionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One injection: the rules applied together under one id.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Injected {
    /// Its id.
    pub id: PartitionId,
    /// Its rules.
    pub rules: Vec<FaultRule>,
}

/// A packet held back by a delay.
pub(crate) struct Held {
    at: Instant,
    seq: u64,
    direction: Direction,
    transport: Transport,
    addr: SocketAddr,
    bytes: Vec<u8>,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    /// Reversed, so the max-heap pops the earliest first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The node task's interposition slot: `active` is `None` unless a hook, a rule or a held
/// packet needs it.
pub(crate) struct Slot {
    pub active: Option<Box<Interposer>>,
    /// Seeds the rules' RNG when the interposer is created.
    pub seed: u64,
}

impl Slot {
    pub(crate) fn new(hook: Option<Hook>, seed: u64) -> Self {
        Slot {
            active: hook.map(|h| Box::new(Interposer::new(Some(h), seed))),
            seed,
        }
    }
}

/// Everything interposition keeps (only while active).
pub(crate) struct Interposer {
    hook: Option<Hook>,
    injected: Vec<Injected>,
    next_id: u64,
    /// SplitMix64 state: loss and jitter draws.
    rng: u64,
    /// Member addresses to names, learned from the table and from events.
    names: HashMap<SocketAddr, NodeName>,
    names_learned: bool,
    held: BinaryHeap<Held>,
    seq: u64,
}

impl Interposer {
    fn new(hook: Option<Hook>, seed: u64) -> Self {
        Interposer {
            hook,
            injected: Vec::new(),
            next_id: 0,
            rng: seed,
            names: HashMap::new(),
            names_learned: false,
            held: BinaryHeap::new(),
            seq: 0,
        }
    }

    fn idle(&self) -> bool {
        self.hook.is_none() && self.injected.is_empty() && self.held.is_empty()
    }

    fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform draw in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.random() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Keeps the address table current from a member event.
    pub(crate) fn on_event(&mut self, e: &Event<SocketAddr>, max: usize) {
        if let Event::MemberJoined(m)
        | Event::MemberAlive(m)
        | Event::MemberUpdated(m)
        | Event::MemberFailed(m)
        | Event::MemberLeft(m) = e
        {
            if self.names.len() >= max && !self.names.contains_key(&m.addr) {
                self.names.clear();
                self.names_learned = false;
            }
            self.names.insert(m.addr, m.name.clone());
        }
    }

    fn learn(&mut self, node: &Node<SocketAddr>) {
        if !self.names_learned {
            self.names_learned = true;
            for m in node.members() {
                self.names.insert(m.addr, m.name.clone());
            }
        }
    }

    /// Runs the hook, then the injected rules, on one packet: the bytes to handle now, or
    /// `None` when the packet was dropped or is held for later.
    fn filter(
        &mut self,
        node: &Node<SocketAddr>,
        direction: Direction,
        transport: Transport,
        addr: SocketAddr,
        mut bytes: Vec<u8>,
        now: Instant,
    ) -> Option<Vec<u8>> {
        self.learn(node);
        let (kind, sender) = classify(node, transport, direction, &bytes);
        let name = sender.or_else(|| self.names.get(&addr).map(|n| n.as_str().to_string()));
        let mut delay = Duration::ZERO;
        if let Some(hook) = &mut self.hook {
            let p = Packet {
                direction,
                transport,
                peer_name: name.as_deref(),
                peer_addr: addr,
                kind,
                bytes: &bytes,
            };
            match hook(&p) {
                Verdict::Pass => {}
                Verdict::Drop => return None,
                Verdict::Delay(d) => delay = d,
                Verdict::Replace(b) => bytes = b,
            }
        }
        if !self.injected.is_empty() {
            let outgoing = direction == Direction::Outgoing;
            let addr_text = addr.to_string();
            // (loss rate, fixed delay, jitter) of every rule that applies, in injection order.
            let mut draws = Vec::new();
            for rule in self.injected.iter().flat_map(|i| &i.rules) {
                if !rule.applies(name.as_deref(), &addr_text, outgoing) {
                    continue;
                }
                match rule {
                    FaultRule::Partition { .. } => return None,
                    FaultRule::Loss { rate, .. } => draws.push((*rate, Duration::ZERO, None)),
                    FaultRule::Delay { delay, jitter, .. } => {
                        draws.push((0.0, *delay, Some(*jitter)));
                    }
                    _ => {}
                }
            }
            for (rate, fixed, jitter) in draws {
                if rate > 0.0 && self.unit() < rate {
                    return None;
                }
                delay += fixed;
                if let Some(j) = jitter.filter(|j| !j.is_zero()) {
                    delay += j.mul_f64(self.unit());
                }
            }
        }
        if delay.is_zero() {
            return Some(bytes);
        }
        if self.held.len() < MAX_HELD {
            self.seq += 1;
            self.held.push(Held {
                at: now + delay,
                seq: self.seq,
                direction,
                transport,
                addr,
                bytes,
            });
        }
        None
    }
}

/// The message kind of a packet and, for a received stream, its sender's name.
fn classify(
    node: &Node<SocketAddr>,
    transport: Transport,
    direction: Direction,
    bytes: &[u8],
) -> (Option<MessageKind>, Option<String>) {
    let label = node.config().cluster_label.as_bytes();
    let plain = match node.keyring() {
        Some(k) => match k.decrypt_packet(bytes, label) {
            Ok(p) => Some(p),
            Err(_) => return (None, None),
        },
        None => None,
    };
    match transport {
        Transport::Datagram => {
            let d = match &plain {
                Some(p) => wire::decode_datagram_payload::<SocketAddr>(p),
                None => wire::decode_datagram::<SocketAddr>(bytes, label),
            };
            (d.ok().map(|d| d.message.kind()), None)
        }
        Transport::Stream => {
            let m = match &plain {
                Some(p) => wire::decode_stream_payload::<SocketAddr>(p),
                None => wire::decode_stream::<SocketAddr>(bytes, label),
            };
            let Ok(m) = m else { return (None, None) };
            let kind = match m.header.kind {
                StreamKind::State { .. } => MessageKind::StateSync,
                StreamKind::User { .. } => MessageKind::User,
                StreamKind::QueryResponse { .. } => MessageKind::QueryResponse,
                _ => MessageKind::PushPull,
            };
            let sender = (direction == Direction::Incoming).then(|| m.header.sender.to_string());
            (Some(kind), sender)
        }
    }
}

/// An operation on the node task's slot (inject, resolve, list).
pub(crate) type SlotOp = Box<dyn FnOnce(&mut Slot, &Node<SocketAddr>) + Send>;

impl Driver {
    /// A received packet through interposition: the bytes to feed now, or `None`.
    pub(crate) fn interpose_in(
        &mut self,
        transport: Transport,
        from: SocketAddr,
        bytes: Vec<u8>,
    ) -> Option<Vec<u8>> {
        let Some(i) = self.interpose.active.as_deref_mut() else {
            return Some(bytes);
        };
        let now = Instant::now();
        i.filter(&self.node, Direction::Incoming, transport, from, bytes, now)
    }

    /// A packet to send through interposition: the bytes to send now, or `None`.
    pub(crate) fn interpose_out(
        &mut self,
        transport: Transport,
        to: SocketAddr,
        bytes: Vec<u8>,
    ) -> Option<Vec<u8>> {
        let Some(i) = self.interpose.active.as_deref_mut() else {
            return Some(bytes);
        };
        let now = Instant::now();
        i.filter(&self.node, Direction::Outgoing, transport, to, bytes, now)
    }

    /// When the earliest held packet is due.
    pub(crate) fn interpose_due(&self) -> Option<Instant> {
        self.interpose.active.as_ref()?.held.peek().map(|h| h.at)
    }

    fn send_datagram_now(&self, to: SocketAddr, bytes: &[u8]) {
        if let Err(e) = self.udp_send.send_to(bytes, to) {
            crate::stats::bump(&self.counters.udp_send_errors);
            tracing::debug!(%to, error = %e, "delayed datagram not sent");
        }
    }

    /// Sends or feeds every held packet that is due, then drops the interposer if idle.
    pub(crate) fn release_held(&mut self) {
        let now = Instant::now();
        loop {
            let Some(i) = self.interpose.active.as_deref_mut() else {
                return;
            };
            if i.held.peek().is_none_or(|h| h.at > now) {
                break;
            }
            let h = i.held.pop().expect("peeked above");
            match (h.direction, h.transport) {
                (Direction::Outgoing, Transport::Datagram) => {
                    self.send_datagram_now(h.addr, &h.bytes)
                }
                (Direction::Outgoing, Transport::Stream) => self.outbound.send(h.addr, h.bytes),
                (Direction::Incoming, Transport::Datagram) => {
                    self.feed(swim_proto::Input::Datagram {
                        from: h.addr,
                        bytes: h.bytes,
                    })
                }
                (Direction::Incoming, Transport::Stream) => self.feed(swim_proto::Input::Stream {
                    from: h.addr,
                    bytes: h.bytes,
                }),
            }
        }
        self.interpose_tidy();
    }

    /// Runs an operation on the slot, then drops the interposer if nothing needs it.
    pub(crate) fn on_slot_op(&mut self, op: SlotOp) {
        op(&mut self.interpose, &self.node);
        self.interpose_tidy();
    }

    fn interpose_tidy(&mut self) {
        if self.interpose.active.as_ref().is_some_and(|i| i.idle()) {
            self.interpose.active = None;
        }
    }
}

// ------------------------------------------------------------------- the handle's methods

impl Cluster {
    async fn slot_op<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Slot, &Node<SocketAddr>) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let op: SlotOp = Box::new(move |slot, node| {
            let _ = tx.send(f(slot, node));
        });
        self.request(Request::Interpose(op)).await?;
        rx.await.map_err(|_| Error::Shutdown)
    }

    /// Partisan's `inject_partition`: this node stops exchanging packets (datagrams and
    /// streams, both directions) with `members`, named by node name or `ip:port`, until
    /// [`Cluster::resolve_partition`]. Others see those members fail from here and this node
    /// fail from there; after resolving, the protocol heals by itself (push-pull and
    /// healing snapshots). Fails, changing nothing, for an empty list or at [`MAX_INJECTED`].
    pub async fn inject_partition<S: Into<String>>(
        &self,
        members: impl IntoIterator<Item = S>,
    ) -> Result<PartitionId, Error> {
        let members = members.into_iter().map(Into::into).collect();
        self.inject_rules(vec![FaultRule::Partition { members }])
            .await
    }

    /// Injects fault rules (partition, per-peer loss, per-peer delay; the rule list a
    /// simulator scenario uses) under one id. Loss and jitter draw from a seeded RNG
    /// ([`ClusterBuilder::fault_seed`](crate::ClusterBuilder::fault_seed)). Fails, changing
    /// nothing, for an empty or invalid list (the error names the rule and field) or at
    /// [`MAX_INJECTED`].
    pub async fn inject_rules(&self, rules: Vec<FaultRule>) -> Result<PartitionId, Error> {
        if rules.is_empty() {
            return Err(Error::config("rules", "no rule given"));
        }
        for (i, r) in rules.iter().enumerate() {
            r.validate()
                .map_err(|e| Error::config(&format!("rules[{i}]"), e))?;
        }
        self.slot_op(move |slot, _| {
            let seed = slot.seed;
            let i = slot
                .active
                .get_or_insert_with(|| Box::new(Interposer::new(None, seed)));
            if i.injected.len() >= MAX_INJECTED {
                return Err(Error::config(
                    "rules",
                    format!("{MAX_INJECTED} injections are already held; resolve one first"),
                ));
            }
            i.next_id += 1;
            let id = PartitionId(i.next_id);
            i.injected.push(Injected { id, rules });
            Ok(id)
        })
        .await?
    }

    /// Removes an injection; returns whether it was there. Packets already held by a delay
    /// are still delivered when due.
    pub async fn resolve_partition(&self, id: PartitionId) -> Result<bool, Error> {
        self.slot_op(move |slot, _| {
            let Some(i) = slot.active.as_deref_mut() else {
                return false;
            };
            let before = i.injected.len();
            i.injected.retain(|x| x.id != id);
            i.injected.len() != before
        })
        .await
    }

    /// The injections in force, oldest first.
    pub async fn partitions(&self) -> Result<Vec<Injected>, Error> {
        self.slot_op(|slot, _| {
            slot.active
                .as_ref()
                .map(|i| i.injected.clone())
                .unwrap_or_default()
        })
        .await
    }
}
