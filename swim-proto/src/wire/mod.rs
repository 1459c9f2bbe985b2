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

use alloc::vec::Vec;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use crate::decode_error::DecodeError;
use crate::member::MemberState;
use crate::packet::plaintext;
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

/// In a datagram's first byte (the primary message's variant index, below 32): membership
/// updates follow the message. Without it there is no update section, not even a count.
const HAS_UPDATES: u8 = 0x40;
/// In a datagram's first byte: state entries follow (after any updates).
const HAS_STATE: u8 = 0x20;
/// The variant index bits of a datagram's first byte.
const VARIANT: u8 = 0x1f;

/// A postcard input whose first byte is replaced: decodes a datagram's primary message with
/// the section flags masked out of its variant byte, still borrowing from the input.
struct Masked<'de> {
    first: Option<u8>,
    rest: &'de [u8],
}

impl<'de> postcard::de_flavors::Flavor<'de> for Masked<'de> {
    type Remainder = &'de [u8];
    type Source = &'de [u8];

    fn pop(&mut self) -> postcard::Result<u8> {
        if let Some(b) = self.first.take() {
            return Ok(b);
        }
        let (&b, rest) = self
            .rest
            .split_first()
            .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
        self.rest = rest;
        Ok(b)
    }

    fn try_take_n(&mut self, ct: usize) -> postcard::Result<&'de [u8]> {
        if self.first.is_some() {
            // Only the variant index (one byte) is read before the fields.
            return Err(postcard::Error::DeserializeBadEncoding);
        }
        if self.rest.len() < ct {
            return Err(postcard::Error::DeserializeUnexpectedEnd);
        }
        let (taken, rest) = self.rest.split_at(ct);
        self.rest = rest;
        Ok(taken)
    }

    fn finalize(self) -> postcard::Result<&'de [u8]> {
        Ok(self.rest)
    }
}

/// A datagram's primary message, whether the update and state sections follow, and the rest.
type MessageAndSections<'a, A> = (Message<'a, A>, bool, bool, &'a [u8]);

/// Reads a datagram's primary message and its section flags (updates, state).
fn take_message<'a, A: DeserializeOwned>(
    payload: &'a [u8],
) -> Result<MessageAndSections<'a, A>, DecodeError> {
    let (&first, rest) = payload.split_first().ok_or(DecodeError::Truncated)?;
    if first & !(VARIANT | HAS_UPDATES | HAS_STATE) != 0 {
        return Err(DecodeError::Malformed);
    }
    let flavor = Masked {
        first: Some(first & VARIANT),
        rest,
    };
    let mut de = postcard::Deserializer::from_flavor(flavor);
    let message = Message::deserialize(&mut de).map_err(map_err)?;
    let rest = de.finalize().map_err(map_err)?;
    Ok((
        message,
        first & HAS_UPDATES != 0,
        first & HAS_STATE != 0,
        rest,
    ))
}

/// Writes a datagram's payload: the primary message, already encoded at `buf[message_at..]`,
/// gets its section flags, then each non-empty section follows as a count and its entries.
pub(crate) fn finish_datagram(
    buf: &mut Vec<u8>,
    message_at: usize,
    updates: (usize, &[u8]),
    state: (usize, &[u8]),
) {
    debug_assert!(buf[message_at] <= VARIANT, "variant index below 32");
    if updates.0 > 0 {
        buf[message_at] |= HAS_UPDATES;
        encode_count(updates.0, buf);
        buf.extend_from_slice(updates.1);
    }
    if state.0 > 0 {
        buf[message_at] |= HAS_STATE;
        encode_count(state.0, buf);
        buf.extend_from_slice(state.1);
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

/// Appends the postcard encoding of `value` to `out`.
pub(crate) fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    let buf = core::mem::take(out);
    // Invariant: postcard into a growable Vec fails only if a Serialize impl fails, and the
    // types encoded here (ours plus the Address type) have infallible impls.
    *out = postcard::to_extend(value, buf).expect("postcard encoding into a Vec is infallible");
}

/// Appends a varint-encoded count to `out`.
pub(crate) fn encode_count(count: usize, out: &mut Vec<u8>) {
    encode_into(&(count as u32), out);
}

fn map_err(e: postcard::Error) -> DecodeError {
    match e {
        postcard::Error::DeserializeUnexpectedEnd => DecodeError::Truncated,
        _ => DecodeError::Malformed,
    }
}

fn take<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<(T, &'a [u8]), DecodeError> {
    postcard::take_from_bytes(bytes).map_err(map_err)
}

/// Reads a flagged section: a non-zero varint count and that many `T`s (nothing when the flag
/// is off, so every datagram has exactly one encoding).
fn read_section<'a, T: Deserialize<'a>>(
    present: bool,
    rest: &'a [u8],
    min_len: usize,
) -> Result<(Vec<T>, &'a [u8]), DecodeError> {
    if !present {
        return Ok((Vec::new(), rest));
    }
    let (items, rest) = read_list(rest, min_len)?;
    if items.is_empty() {
        return Err(DecodeError::Malformed);
    }
    Ok((items, rest))
}

/// Reads a varint count and that many `T`s, each at least `min_len` bytes.
fn read_list<'a, T: Deserialize<'a>>(
    mut rest: &'a [u8],
    min_len: usize,
) -> Result<(Vec<T>, &'a [u8]), DecodeError> {
    let (count, tail) = take::<u32>(rest)?;
    rest = tail;
    let count = count as usize;
    if count > rest.len() / min_len {
        return Err(DecodeError::TooManyUpdates);
    }
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        let (item, tail) = take::<T>(rest)?;
        items.push(item);
        rest = tail;
    }
    Ok((items, rest))
}

fn read_updates<'a, A: DeserializeOwned>(
    rest: &'a [u8],
) -> Result<(Vec<Update<'a, A>>, &'a [u8]), DecodeError> {
    read_list(rest, MIN_UPDATE_LEN)
}

fn end(rest: &[u8]) -> Result<(), DecodeError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::TrailingBytes)
    }
}

/// Decodes a plaintext datagram, checking version and cluster label. Allocates at most one
/// `Vec` of borrowed updates, sized by what the input can actually hold.
pub fn decode_datagram<'a, A: DeserializeOwned>(
    bytes: &'a [u8],
    label: &[u8],
) -> Result<Datagram<'a, A>, DecodeError> {
    decode_datagram_payload(plaintext(bytes, label)?)
}

/// Decodes a datagram's (decrypted) payload: the part after the header.
pub fn decode_datagram_payload<'a, A: DeserializeOwned>(
    payload: &'a [u8],
) -> Result<Datagram<'a, A>, DecodeError> {
    let (message, has_updates, has_state, rest) = take_message::<A>(payload)?;
    // The first byte says which sections follow, so a datagram cut short anywhere never
    // decodes as a shorter valid one.
    let (updates, rest) = read_section(has_updates, rest, MIN_UPDATE_LEN)?;
    let (state, rest) = read_section::<StateUpdate<'a>>(has_state, rest, MIN_STATE_UPDATE_LEN)?;
    end(rest)?;
    Ok(Datagram {
        message,
        updates,
        state,
    })
}

/// Decodes a plaintext stream message, checking version and cluster label.
pub fn decode_stream<'a, A: DeserializeOwned>(
    bytes: &'a [u8],
    label: &[u8],
) -> Result<StreamMessage<'a, A>, DecodeError> {
    decode_stream_payload(plaintext(bytes, label)?)
}

/// Decodes a stream message's (decrypted) payload: the part after the header.
pub fn decode_stream_payload<'a, A: DeserializeOwned>(
    payload: &'a [u8],
) -> Result<StreamMessage<'a, A>, DecodeError> {
    let (header, rest) = take::<StreamHeader<'a, A>>(payload)?;
    let (updates, rest) = read_updates(rest)?;
    let (mut state, mut payload) = (None, None);
    match header.kind {
        StreamKind::State { .. } => {
            let (sync, rest) = take::<StateSync<'a>>(rest)?;
            end(rest)?;
            state = Some(sync);
        }
        StreamKind::User { .. } | StreamKind::QueryResponse { .. } => {
            let (body, rest) = take::<&'a [u8]>(rest)?;
            end(rest)?;
            payload = Some(body);
        }
        _ => end(rest)?,
    }
    Ok(StreamMessage {
        header,
        updates,
        state,
        payload,
    })
}

/// Where a datagram payload's bytes go, for traffic accounting (the simulator's bytes per
/// message kind): the primary message, the piggybacked membership updates and state entries.
/// Each section's size includes its count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DatagramLayout {
    /// The primary message's kind.
    pub kind: MessageKind,
    /// Bytes of the primary message.
    pub message: usize,
    /// Piggybacked membership updates.
    pub updates: usize,
    /// Their bytes, count included.
    pub update_bytes: usize,
    /// Piggybacked state entries.
    pub state: usize,
    /// Their bytes, count included.
    pub state_bytes: usize,
}

/// Decodes a datagram's (decrypted) payload and says where its bytes go.
pub fn datagram_layout<A: DeserializeOwned>(payload: &[u8]) -> Result<DatagramLayout, DecodeError> {
    let (message, has_updates, has_state, rest) = take_message::<A>(payload)?;
    let (updates, tail) = read_section::<Update<'_, A>>(has_updates, rest, MIN_UPDATE_LEN)?;
    let (state, last) = read_section::<StateUpdate<'_>>(has_state, tail, MIN_STATE_UPDATE_LEN)?;
    end(last)?;
    Ok(DatagramLayout {
        kind: message.kind(),
        message: payload.len() - rest.len(),
        updates: updates.len(),
        update_bytes: rest.len() - tail.len(),
        state: state.len(),
        state_bytes: tail.len(),
    })
}

/// The kind of a stream message, from its (decrypted) payload's header alone.
pub fn stream_kind<A: DeserializeOwned>(payload: &[u8]) -> Result<StreamKind, DecodeError> {
    take::<StreamHeader<'_, A>>(payload).map(|(h, _)| h.kind)
}

/// Encodes a complete datagram (used by tests, fuzzers and tools; the node packs its own
/// datagrams up to `max_packet_size`).
pub fn encode_datagram<A: Serialize>(
    label: &[u8],
    message: &Message<'_, A>,
    updates: &[Update<'_, A>],
) -> Vec<u8> {
    encode_datagram_with_state(label, message, updates, &[])
}

/// Encodes a complete datagram with piggybacked state entries.
pub fn encode_datagram_with_state<A: Serialize>(
    label: &[u8],
    message: &Message<'_, A>,
    updates: &[Update<'_, A>],
    state: &[StateUpdate<'_>],
) -> Vec<u8> {
    let mut out = Vec::new();
    write_header(&mut out, label, 0);
    let at = out.len();
    encode_into(message, &mut out);
    let (mut body, mut entries) = (Vec::new(), Vec::new());
    for u in updates {
        encode_into(u, &mut body);
    }
    for e in state {
        encode_into(e, &mut entries);
    }
    finish_datagram(
        &mut out,
        at,
        (updates.len(), &body),
        (state.len(), &entries),
    );
    out
}

/// Encodes a complete stream message. For a [`StreamKind::State`] header the body is an empty
/// [`StateSync`]; use [`encode_stream_with_state`] to give one.
pub fn encode_stream<A: Serialize>(
    label: &[u8],
    header: &StreamHeader<'_, A>,
    updates: &[Update<'_, A>],
) -> Vec<u8> {
    encode_stream_with_state(label, header, updates, &StateSync::default())
}

/// Encodes a complete stream message; `sync` is written only for a [`StreamKind::State`]
/// header, and an empty payload for [`StreamKind::User`] and [`StreamKind::QueryResponse`]
/// (use [`encode_stream_with_payload`] to give one).
pub fn encode_stream_with_state<A: Serialize>(
    label: &[u8],
    header: &StreamHeader<'_, A>,
    updates: &[Update<'_, A>],
    sync: &StateSync<'_>,
) -> Vec<u8> {
    let mut out = Vec::new();
    write_header(&mut out, label, 0);
    encode_into(header, &mut out);
    encode_count(updates.len(), &mut out);
    for u in updates {
        encode_into(u, &mut out);
    }
    match header.kind {
        StreamKind::State { .. } => encode_into(sync, &mut out),
        // An empty payload, so every header encodes to a message that decodes.
        StreamKind::User { .. } | StreamKind::QueryResponse { .. } => {
            encode_into(&[][..] as &[u8], &mut out);
        }
        _ => {}
    }
    out
}

/// Encodes a decoded stream message back into bytes that decode equal: header, updates, and
/// the state exchange or application payload its kind carries (a missing one is written
/// empty). Tools and the fuzz targets re-encode with it.
pub fn encode_stream_message<A: Serialize>(label: &[u8], m: &StreamMessage<'_, A>) -> Vec<u8> {
    match (m.header.kind, m.payload) {
        (StreamKind::User { .. } | StreamKind::QueryResponse { .. }, Some(payload)) => {
            let mut out = Vec::new();
            write_header(&mut out, label, 0);
            encode_into(&m.header, &mut out);
            encode_count(m.updates.len(), &mut out);
            for u in &m.updates {
                encode_into(u, &mut out);
            }
            encode_into(payload, &mut out);
            out
        }
        _ => {
            let empty = StateSync::default();
            encode_stream_with_state(
                label,
                &m.header,
                &m.updates,
                m.state.as_ref().unwrap_or(&empty),
            )
        }
    }
}

/// Encodes a complete [`StreamKind::User`] or [`StreamKind::QueryResponse`] stream message
/// carrying `payload` (no membership updates).
pub fn encode_stream_with_payload<A: Serialize>(
    label: &[u8],
    header: &StreamHeader<'_, A>,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    write_header(&mut out, label, 0);
    encode_into(header, &mut out);
    encode_count(0, &mut out);
    encode_into(payload, &mut out);
    out
}

#[cfg(test)]
mod tests;
