//! Wire codec: the message kinds and bounds-checked decoding.
//!
//! Deliberately public: tools, the simulator, tests and fuzz targets craft and inspect packets
//! with it. The node itself needs none of it from a driver.
//!
//! Every packet, datagram or stream, starts with the header of `packet` (version,
//! cluster label, flags), re-exported here; with encryption on, the payload is sealed there
//! too. The plaintext payload of a datagram carries one postcard-encoded [`Message`], whose
//! first byte (the variant index) also says which sections follow; each present section is a
//! varint count and that many postcard-encoded [`Update`]s (the piggybacked gossip, SWIM §4.1)
//! or [`StateUpdate`]s (`docs/protocol.md` §2). A stream message carries
//! a [`StreamHeader`] followed by a varint count and that many [`Update`]s (a full membership
//! snapshot for push-pull). Decoding borrows names and metadata from the input, checks every
//! length and count against the bytes that remain before allocating, and returns errors as
//! values: it never panics on any input.
//!
//! This module holds the message types; the encoders and decoders are in `codec`, re-exported
//! here.

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

pub use crate::decode_error::DecodeError;
use crate::member::MemberState;
pub use crate::packet::{FLAG_ENCRYPTED, Header, PROTOCOL_VERSION, read_header, write_header};

/// The 4-byte tag a [`Message::Ping`] names its target by: the high 32 bits of the FNV-1a hash
/// of the name. A node that took over an address does not answer a ping tagged for its
/// previous owner (two names share a tag with probability 2⁻³²).
pub fn name_tag(name: &str) -> u32 {
    (crate::hash::fnv1a64(name.as_bytes()) >> 32) as u32
}

/// The low 32 bits of a membership checksum, as pings and acks carry it.
pub fn short_checksum(checksum: u64) -> u32 {
    checksum as u32
}

/// A `u32` as 4 little-endian bytes rather than a varint: tags and checksums are uniformly
/// distributed, so a varint would take 5 bytes for most of them.
mod fixed32 {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &u32, s: S) -> Result<S::Ok, S::Error> {
        v.to_le_bytes().serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        <[u8; 4]>::deserialize(d).map(u32::from_le_bytes)
    }
}

/// Smallest encoded size of one [`Update`], used to bound counts before allocating.
const MIN_UPDATE_LEN: usize = 4;
/// Smallest encoded size of one [`StateUpdate`].
const MIN_STATE_UPDATE_LEN: usize = 6;

/// The primary message of a datagram.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "A: Deserialize<'de>"))]
#[non_exhaustive]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Message<'a, A> {
    /// No primary message: the datagram only carries piggybacked updates (a gossip round).
    Gossip,
    /// SWIM §3.1 direct probe. `target` names the intended receiver so a node that took over
    /// an address does not answer for its previous owner.
    Ping {
        /// Sequence number echoed in the ack.
        seq: u32,
        /// [`name_tag`] of the node being probed (4 bytes on the wire, where the name took
        /// 1 + its length).
        #[serde(with = "fixed32")]
        target: u32,
        /// The low 32 bits of the sender's membership checksum (`docs/protocol.md` §11.1),
        /// 4 bytes on the wire.
        #[serde(with = "fixed32")]
        checksum: u32,
    },
    /// SWIM §3.1 indirect probe request: ping `target` at `target_addr` and relay its ack.
    PingReq {
        /// The requester's sequence number, echoed in the relayed ack or nack.
        seq: u32,
        /// Name of the node to probe.
        target: &'a str,
        /// Where to probe it.
        target_addr: A,
        /// Whether to answer with a nack if the target stays silent (Lifeguard §IV-A).
        want_nack: bool,
    },
    /// Answer to a ping, or a relayed answer to a ping-req.
    Ack {
        /// Sequence number of the ping or ping-req answered.
        seq: u32,
        /// The low 32 bits of the answering node's membership checksum (for a relayed ack,
        /// the target's), 4 bytes on the wire.
        #[serde(with = "fixed32")]
        checksum: u32,
    },
    /// Lifeguard §IV-A: a helper reached no answer from the target, but is itself alive; lets
    /// the requester tell its own trouble from the target's.
    Nack {
        /// Sequence number of the ping-req answered.
        seq: u32,
    },
    // Application messaging (issue 14, `docs/protocol.md` §13).
    /// A best-effort direct message from `sender` to the receiver's application (§13.1).
    User {
        /// Sender's name.
        sender: &'a str,
        /// Application channel.
        channel: u16,
        /// The application's bytes.
        payload: &'a [u8],
    },
    /// User events and queries being gossiped (§13.2, §13.3), each at most once per datagram.
    UserGossip {
        /// The items, in queue order.
        #[serde(borrow)]
        items: Vec<UserItem<'a, A>>,
    },
    /// A query reached `sender` and passed its filter (§13.3).
    QueryAck {
        /// The query's Lamport time at its origin (the receiver of the ack).
        ltime: u64,
        /// The acknowledging member.
        sender: &'a str,
    },
}

/// A user event or a query as it travels by gossip (`docs/protocol.md` §13.2, §13.3).
/// `(origin, ltime)` identifies it cluster-wide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "A: Deserialize<'de>"))]
#[non_exhaustive]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum UserItem<'a, A> {
    /// A Serf user event.
    Event {
        /// The member that broadcast it.
        origin: &'a str,
        /// The origin's user-event Lamport time.
        ltime: u64,
        /// Event name (coalescing key).
        name: &'a str,
        /// The application's bytes.
        payload: &'a [u8],
    },
    /// A Serf query: members passing `filter` deliver it and send a [`Message::QueryAck`];
    /// their application may answer by stream until the origin's deadline.
    Query {
        /// The asking member.
        origin: &'a str,
        /// Where responses and acks go.
        addr: A,
        /// The origin's Lamport time: the query's id.
        ltime: u64,
        /// Query name.
        name: &'a str,
        /// The application's bytes.
        payload: &'a [u8],
        /// Only these members answer (empty: every member).
        #[serde(borrow)]
        names: Vec<&'a str>,
        /// Only members whose metadata contains these bytes answer (empty: every member).
        meta: &'a [u8],
        /// How long the origin collects, in milliseconds.
        timeout_ms: u64,
    },
}

impl<A> UserItem<'_, A> {
    /// The item's cluster-wide id, `(origin, ltime)`.
    pub fn id(&self) -> (&str, u64) {
        match self {
            UserItem::Event { origin, ltime, .. } | UserItem::Query { origin, ltime, .. } => {
                (origin, *ltime)
            }
        }
    }
}

impl<A> Message<'_, A> {
    /// The message kind, for statistics.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Gossip => MessageKind::Gossip,
            Message::Ping { .. } => MessageKind::Ping,
            Message::PingReq { .. } => MessageKind::PingReq,
            Message::Ack { .. } => MessageKind::Ack,
            Message::Nack { .. } => MessageKind::Nack,
            Message::User { .. } => MessageKind::User,
            Message::UserGossip { .. } => MessageKind::UserGossip,
            Message::QueryAck { .. } => MessageKind::QueryAck,
        }
    }
}

/// A membership update: a claim about one member, disseminated by piggybacking (SWIM §4.1)
/// and merged by the precedence rule of SWIM §4.2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "A: Deserialize<'de>"))]
#[non_exhaustive]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Update<'a, A> {
    /// The member is alive at `incarnation`, reachable at `addr`, with metadata `meta`.
    Alive {
        /// Member name.
        name: &'a str,
        /// Incarnation of the claim.
        incarnation: u64,
        /// Member address.
        addr: A,
        /// Member metadata.
        meta: &'a [u8],
    },
    /// `accuser` suspects the member at `incarnation`.
    Suspect {
        /// Member name.
        name: &'a str,
        /// Incarnation of the claim.
        incarnation: u64,
        /// Member address, so a member first heard of through a suspicion can be probed.
        addr: A,
        /// Who raised or confirmed the suspicion (Lifeguard §IV-B counts distinct accusers).
        accuser: &'a str,
    },
    /// The member was declared dead at `incarnation`.
    Dead {
        /// Member name.
        name: &'a str,
        /// Incarnation of the claim.
        incarnation: u64,
        /// Member address.
        addr: A,
    },
    /// The member left gracefully at `incarnation`.
    Left {
        /// Member name.
        name: &'a str,
        /// Incarnation of the claim.
        incarnation: u64,
        /// Member address.
        addr: A,
    },
    // --- operator removal (issue 14) ---
    /// An operator removed the member at `incarnation` (`Command::Remove`, Serf's force-leave):
    /// merged as a leave (state `left`, same precedence), but the removed member, if alive,
    /// does not refute it; it comes back only by an explicit rejoin with a higher incarnation
    /// (`docs/protocol.md` §12.1).
    Removed {
        /// Member name.
        name: &'a str,
        /// Incarnation of the claim: the member's current one when it was removed.
        incarnation: u64,
        /// Member address.
        addr: A,
    },
}

impl<'a, A> Update<'a, A> {
    /// The member the claim is about.
    pub fn name(&self) -> &'a str {
        match self {
            Update::Alive { name, .. }
            | Update::Suspect { name, .. }
            | Update::Dead { name, .. }
            | Update::Left { name, .. }
            | Update::Removed { name, .. } => name,
        }
    }

    /// The claim's incarnation.
    pub fn incarnation(&self) -> u64 {
        match self {
            Update::Alive { incarnation, .. }
            | Update::Suspect { incarnation, .. }
            | Update::Dead { incarnation, .. }
            | Update::Left { incarnation, .. }
            | Update::Removed { incarnation, .. } => *incarnation,
        }
    }

    /// The state claimed.
    pub fn state(&self) -> MemberState {
        match self {
            Update::Alive { .. } => MemberState::Alive,
            Update::Suspect { .. } => MemberState::Suspect,
            Update::Dead { .. } => MemberState::Dead,
            Update::Left { .. } | Update::Removed { .. } => MemberState::Left,
        }
    }

    /// The member's address carried by the claim.
    pub fn addr(&self) -> &A {
        match self {
            Update::Alive { addr, .. }
            | Update::Suspect { addr, .. }
            | Update::Dead { addr, .. }
            | Update::Left { addr, .. }
            | Update::Removed { addr, .. } => addr,
        }
    }
}

/// What a stream message is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum StreamKind {
    /// Push-pull anti-entropy (SWIM §4.1 extension, as in memberlist): the sender's full state.
    /// `join` marks a join request; `reply` marks the answer, which is not answered again.
    PushPull {
        /// Sent by a joining node to a seed.
        join: bool,
        /// An answer to a push-pull request.
        reply: bool,
    },
    /// Partition healing: the sender's full state, sent to a member it holds failed. The
    /// receiver turns "dead" claims about members it holds alive into suspicions, so they refute
    /// instead of being declared dead, and answers with its own state (`reply`).
    Heal {
        /// An answer to a heal request.
        reply: bool,
    },
    /// Replicated-state anti-entropy (scuttlebutt): the body's [`StateSync`] carries digests,
    /// deltas and resets; the membership update list is empty.
    State {
        /// Which step of the exchange.
        phase: SyncPhase,
    },
    // Application messaging (issue 14, `docs/protocol.md` §13).
    /// A reliable direct message; the body after the (empty) update list is the payload.
    User {
        /// Application channel.
        channel: u16,
    },
    /// An answer to the receiver's query `ltime`; the body is the payload.
    QueryResponse {
        /// The query's Lamport time at its origin.
        ltime: u64,
    },
}

/// The steps of a state anti-entropy exchange (`docs/protocol.md` §10.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum SyncPhase {
    /// "Here is a hash of my watermarks": the receiver stops if its own matches, or answers
    /// with a `Reply`.
    Request,
    /// The responder's watermarks.
    Reply,
    /// The requester's watermarks and the entries the responder lacks; answered with `Deltas`
    /// if the requester lacks anything.
    Push,
    /// Entries the other side lacks (the last step, or a push of an entry too large for a
    /// datagram). Not answered.
    Deltas,
}

/// A replicated state entry as it travels: a value (or, with `value: None`, a deletion) for
/// `(ty, key)`, versioned by its origin's Lamport clock. Piggybacked on datagrams after the
/// membership updates, and carried in [`DeltaGroup`]s by anti-entropy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct StateUpdate<'a> {
    /// State type.
    pub ty: &'a str,
    /// Key within the type.
    pub key: &'a str,
    /// The origin's Lamport timestamp for this write (the merge order).
    pub version: u64,
    /// The write's place in its origin's writes of this type: 1, 2, 3... (watermarks count
    /// these).
    pub seq: u64,
    /// The node that wrote it (breaks version ties).
    pub origin: &'a str,
    /// The value, or `None` for a deletion (tombstone).
    pub value: Option<&'a [u8]>,
}

/// One state type's watermarks: for each origin, the sequence number up to which the sender
/// holds every write of that origin (or something newer for the same key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct TypeDigest<'a> {
    /// State type.
    pub ty: &'a str,
    /// `(origin, watermark)` pairs.
    #[serde(borrow)]
    pub origins: Vec<(&'a str, u64)>,
}

/// Entries of one origin and type, in ascending sequence order, sent because the receiver's
/// watermark for that origin is lower.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DeltaGroup<'a> {
    /// State type.
    pub ty: &'a str,
    /// Origin of every entry in the group.
    pub origin: &'a str,
    /// The watermark the receiver may adopt for `(ty, origin)` once it has applied the group.
    pub watermark: u64,
    /// `(key, version, seq, value)`, sequence numbers ascending; `None` is a deletion.
    #[serde(borrow)]
    pub entries: Vec<(&'a str, u64, u64, Option<&'a [u8]>)>,
}

/// Every key the sender holds in one state type, sent when the receiver may hold entries whose
/// deletion the sender has already collected: the receiver drops what the sender no longer
/// holds though it has seen every write of that entry's origin up to the entry's version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Reset<'a> {
    /// State type.
    pub ty: &'a str,
    /// Every key the sender holds in `ty`, live or deleted, in ascending order.
    #[serde(borrow)]
    pub keys: Vec<&'a str>,
}

/// The body of a [`StreamKind::State`] message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct StateSync<'a> {
    /// A hash of the sender's watermarks (in `Request`): equal hashes end the exchange.
    pub summary: Option<u64>,
    /// The sender's watermarks (in `Reply` and `Push`, and with any reset).
    #[serde(borrow)]
    pub digest: Vec<TypeDigest<'a>>,
    /// Entries the receiver lacks.
    #[serde(borrow)]
    pub groups: Vec<DeltaGroup<'a>>,
    /// Resets (rare: only after tombstones were collected).
    #[serde(borrow)]
    pub resets: Vec<Reset<'a>>,
}

/// Header of a stream message; the sender's address is explicit because a stream's source
/// port is not the sender's listening address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "A: Deserialize<'de>"))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct StreamHeader<'a, A> {
    /// Purpose of the message.
    pub kind: StreamKind,
    /// Sender's name.
    pub sender: &'a str,
    /// Sender's listening address, where any reply goes.
    pub sender_addr: A,
}

/// Message kinds, for per-kind statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum MessageKind {
    /// [`Message::Ping`].
    Ping,
    /// [`Message::PingReq`].
    PingReq,
    /// [`Message::Ack`].
    Ack,
    /// [`Message::Nack`].
    Nack,
    /// [`Message::Gossip`].
    Gossip,
    /// A push-pull stream message.
    PushPull,
    /// A state anti-entropy stream message.
    StateSync,
    // Application messaging (issue 14).
    /// A direct message, [`Message::User`] or a [`StreamKind::User`] stream.
    User,
    /// [`Message::UserGossip`].
    UserGossip,
    /// [`Message::QueryAck`].
    QueryAck,
    /// A [`StreamKind::QueryResponse`] stream.
    QueryResponse,
}

/// A decoded datagram: one primary message and the updates piggybacked on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram<'a, A> {
    /// The primary message.
    pub message: Message<'a, A>,
    /// Piggybacked membership updates, in packet order.
    pub updates: Vec<Update<'a, A>>,
    /// Piggybacked state entries, in packet order.
    pub state: Vec<StateUpdate<'a>>,
}

/// A decoded stream message: header and membership snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamMessage<'a, A> {
    /// Purpose and sender.
    pub header: StreamHeader<'a, A>,
    /// The sender's membership, itself included.
    pub updates: Vec<Update<'a, A>>,
    /// The state exchange, in [`StreamKind::State`] messages.
    pub state: Option<StateSync<'a>>,
    /// The application payload, in [`StreamKind::User`] and [`StreamKind::QueryResponse`]
    /// messages.
    pub payload: Option<&'a [u8]>,
}

mod codec;
pub use codec::*;

#[cfg(test)]
mod tests;
