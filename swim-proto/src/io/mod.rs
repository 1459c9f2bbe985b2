//! What goes into a node ([`Input`]) and what comes out ([`Output`], [`Event`]).
//!
//! A little over 600 lines on purpose: the closed vocabulary of the core (inputs, commands and
//! their errors, outputs, events) stays in one file, so a driver author reads every variant in
//! one place; its tests live in `io/tests.rs`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

use crate::keyring::{KeyringError, SecretKey};
use crate::member::{Member, MemberState, Metadata, NodeName};
use crate::state::{ChangeCause, StateEntry, StateError, StateKey};
use crate::stats::DropReason;
use crate::time::Instant;

/// Everything that can happen to a node. A trace of `(now, Input)` pairs plus the seed and
/// config replays a node exactly.
///
/// **Starting.** A node's first input, whichever it is, starts its periodic timers at that
/// input's `now` ([`Node::start`](crate::Node::start) is the same as a first [`Input::Tick`]).
///
/// **Payload ownership.** Both packet inputs own their bytes (`Vec<u8>`), so an input can be
/// recorded in a trace and replayed. A driver that holds a received packet in a borrowed
/// buffer uses [`Node::handle_datagram`](crate::Node::handle_datagram) or
/// [`Node::handle_stream`](crate::Node::handle_stream) instead: same outputs, no copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "A: Deserialize<'de>"))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum Input<A> {
    /// A datagram arrived from `from`.
    Datagram {
        /// Sender's address.
        from: A,
        /// The datagram's bytes.
        bytes: Vec<u8>,
    },
    /// A complete stream message arrived (push-pull or join), delivered reliably.
    Stream {
        /// Sender's address as seen by the transport (replies go to the address inside the
        /// message).
        from: A,
        /// The message's bytes.
        bytes: Vec<u8>,
    },
    /// Time passed; due timers fire. Ticking at any `now` is idempotent. As a node's first
    /// input, it only starts the node.
    Tick,
    /// An application command.
    Command(Command<A>),
}

/// Application commands. Misuse is rejected with a [`CommandError`] and changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum Command<A> {
    /// Join a cluster through these seed addresses: push-pull with each, retried with bounded
    /// exponential backoff until a member answers; re-contacted whenever the node finds itself
    /// alone.
    Join {
        /// Seed addresses (this node's own address is skipped).
        seeds: Vec<A>,
    },
    /// Leave gracefully: announce departure, stop probing. Others report the node as left,
    /// never as failed. [`Event::LeaveComplete`] says when the announcement is out.
    Leave,
    /// Replace this node's metadata; announced with a higher incarnation.
    UpdateMetadata(Vec<u8>),
    /// Add a key that packets may be decrypted with (first step of a rotation).
    InstallKey(SecretKey),
    /// Encrypt with this installed key from now on (second step).
    UseKey(SecretKey),
    /// Stop accepting a key that is no longer primary (last step).
    RemoveKey(SecretKey),
    /// Write one replicated state entry (`docs/protocol.md` §10): versioned by this node's
    /// Lamport clock, gossiped, and repaired by anti-entropy.
    Publish(StateWrite),
    /// Write several entries at once: all are accepted or none (the first bad one is named).
    PublishMany(Vec<StateWrite>),
    /// Delete an entry: a tombstone that outranks every earlier write of the key.
    Delete {
        /// State type.
        ty: String,
        /// Key within the type.
        key: String,
    },
    // --- operator control (issue 14) ---
    /// Remove another member cluster-wide (Serf's force-leave, Partisan's `leave(Node)`): it is
    /// marked left at its current incarnation here and the removal is gossiped like a leave,
    /// so nobody probes it again. A removed member that is in fact alive learns it
    /// ([`Event::LocalRemoved`]), stops probing and stays out until an explicit
    /// [`Command::Join`], which rejoins it with a higher incarnation. Errors: removing this
    /// node ([`CommandError::RemoveSelf`]) or a member not in the table
    /// ([`CommandError::UnknownMember`]).
    Remove {
        /// The member's name.
        name: String,
    },
    /// Stop probing while staying a member (`docs/protocol.md` §12.2): the node suspects
    /// nobody, but still answers probes, gossips and refutes, so others keep it alive.
    PauseFailureDetector,
    /// Probe again from the next protocol period.
    ResumeFailureDetector,
    // Application messaging (issue 14, `docs/protocol.md` §13).
    /// Send `payload` to the member named `to` (Partisan's send/forward, memberlist's direct
    /// send). Unreliable: one datagram, best effort, refused if it does not fit one; reliable: a
    /// stream message, up to `MessagingConfig::max_reliable_payload`. The receiver gets
    /// [`Event::Message`]. To this node itself, it is delivered at once.
    Send {
        /// The member's name; it must be alive or suspect here.
        to: String,
        /// Application channel, so applications can multiplex.
        channel: u16,
        /// The application's bytes.
        payload: Vec<u8>,
        /// By stream (`true`) or datagram (`false`).
        reliable: bool,
    },
    /// Broadcast a Serf user event: gossiped to every live member, delivered exactly once per
    /// node (this one included) as [`Event::UserEvent`]. A still-queued older event of the same
    /// name from this node is replaced (coalesced).
    Broadcast {
        /// Event name, 1 to `max_name_len` bytes.
        name: String,
        /// At most `MessagingConfig::max_event_payload` bytes.
        payload: Vec<u8>,
    },
    /// Ask a Serf query: gossiped like an event to the members passing `filter`, which receive
    /// [`Event::Query`] and may answer with [`Command::Respond`]. This node gets
    /// [`Event::QueryResponse`] for each answer and [`Event::QueryDone`] at `now + timeout`.
    Query {
        /// Query name, 1 to `max_name_len` bytes.
        name: String,
        /// At most `MessagingConfig::max_query_payload` bytes.
        payload: Vec<u8>,
        /// Which members answer.
        filter: QueryFilter,
        /// How long to collect answers; at most `MessagingConfig::max_query_timeout`.
        timeout: core::time::Duration,
    },
    /// Answer a query delivered as [`Event::Query`], once, before its deadline; sent to the
    /// asker by stream.
    Respond {
        /// The query answered.
        query: QueryId,
        /// At most `MessagingConfig::max_query_payload` bytes.
        payload: Vec<u8>,
    },
    // --- lifecycle and reconfiguration (issue 14) ---
    /// Apply a new config without a restart (the Clojure membership API's `configure!`,
    /// `docs/protocol.md` §12.3): validated as [`Node::new`](crate::Node::new) validates one,
    /// and refused with [`CommandError::Reconfigure`] (the field named, nothing changed) if a
    /// bound is below what the node holds now. Identity, `keyring` and `start_incarnation` stay
    /// as they were ([`Config::fixed_at_run_time`](crate::Config::fixed_at_run_time)).
    Reconfigure(
        #[cfg_attr(feature = "arbitrary", arbitrary(default))] alloc::boxed::Box<crate::Config>,
    ),
}

/// Which members answer a [`Command::Query`]: all conditions must hold; the default (empty)
/// filter matches every member.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct QueryFilter {
    /// Only these members (empty: any).
    pub names: Vec<String>,
    /// Only members whose metadata contains these bytes (empty: any).
    pub meta: Vec<u8>,
}

/// A query's cluster-wide id: its asker and the asker's Lamport time when asking.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct QueryId {
    /// The asking member.
    pub origin: String,
    /// Its Lamport time.
    pub ltime: u64,
}

/// One state write for [`Command::Publish`] and [`Command::PublishMany`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct StateWrite {
    /// State type (for example `"backend_health"`).
    pub ty: String,
    /// Key within the type.
    pub key: String,
    /// The value's bytes (serialize it with serde or any codec).
    pub value: Vec<u8>,
}

impl StateWrite {
    /// A write of `value` to `(ty, key)`.
    pub fn new(ty: impl Into<String>, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        StateWrite {
            ty: ty.into(),
            key: key.into(),
            value: value.into(),
        }
    }
}

/// A rejected command. In every case the node's state is unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// `Join` with no seed other than this node itself.
    NoSeeds,
    /// `Join` with more seeds than `Config::max_members`.
    TooManySeeds {
        /// Seeds given.
        given: usize,
        /// The bound.
        max: usize,
    },
    /// Metadata longer than `Config::max_meta_len`.
    MetadataTooLarge {
        /// Length given, in bytes.
        len: usize,
        /// The bound, in bytes.
        max: usize,
    },
    /// The node has left; create a new node to rejoin.
    Left,
    /// A key command on a node configured without a keyring (encryption is enabled by config).
    NoKeyring,
    /// The keyring refused the change.
    Keyring(KeyringError),
    /// A state write was refused (for a batch, `index` is the first refused write).
    State {
        /// Position in the batch (0 for single writes).
        index: usize,
        /// Why.
        error: StateError,
    },
    // --- operator control (issue 14) ---
    /// `Remove` named this node itself; [`Command::Leave`] is the way out.
    RemoveSelf,
    /// `Remove` named a member this node does not know (never heard of, or already reaped), or
    /// `Send` named a member that is not alive or suspect here (unknown, dead or left).
    UnknownMember {
        /// The name given.
        name: String,
    },
    /// A payload over its bound (for an unreliable send, what fits one datagram).
    PayloadTooLarge {
        /// Length given, in bytes.
        len: usize,
        /// The bound, in bytes.
        max: usize,
    },
    /// An event or query name that is empty or longer than `max_name_len`.
    BadEventName,
    /// A query timeout of zero or over `MessagingConfig::max_query_timeout`.
    BadQueryTimeout,
    /// Already collecting `MessagingConfig::max_inflight_queries` queries.
    TooManyQueries {
        /// The bound.
        max: usize,
    },
    /// `Respond` to a query that is unknown here, past its deadline or already answered.
    UnknownQuery,
    // --- lifecycle and reconfiguration (issue 14) ---
    /// `Reconfigure` with a config that does not validate, or with a bound below what the node
    /// holds now; the error names the field.
    Reconfigure(crate::config::ConfigError),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::NoSeeds => {
                f.write_str("join needs at least one seed other than this node")
            }
            CommandError::TooManySeeds { given, max } => {
                write!(f, "join got {given} seeds, at most {max} allowed")
            }
            CommandError::MetadataTooLarge { len, max } => {
                write!(f, "metadata is {len} bytes, at most {max} allowed")
            }
            CommandError::Left => f.write_str("the node has left the cluster"),
            CommandError::NoKeyring => f.write_str("encryption is not configured (no keyring)"),
            CommandError::Keyring(e) => write!(f, "keyring: {e}"),
            CommandError::State { index, error } => write!(f, "state write {index}: {error}"),
            CommandError::RemoveSelf => f.write_str("a node cannot remove itself (leave instead)"),
            CommandError::UnknownMember { name } => write!(f, "no member named {name:?}"),
            CommandError::PayloadTooLarge { len, max } => {
                write!(f, "payload is {len} bytes, at most {max} allowed")
            }
            CommandError::BadEventName => {
                f.write_str("event or query name is empty or longer than max_name_len")
            }
            CommandError::BadQueryTimeout => {
                f.write_str("query timeout is zero or above max_query_timeout")
            }
            CommandError::TooManyQueries { max } => {
                write!(f, "already collecting {max} queries")
            }
            CommandError::UnknownQuery => {
                f.write_str("query unknown here, past its deadline or already answered")
            }
            CommandError::Reconfigure(e) => write!(f, "reconfigure: {e}"),
        }
    }
}

impl core::error::Error for CommandError {}

/// What a node asks its driver to do, or tells its application.
///
/// Serialized externally tagged with stable snake_case names: `{"send_datagram": {"to",
/// "bytes"}}`, `{"send_stream": {..}}`, `{"event": {..}}` (see [`Event`]), `{"tick_at": nanos}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Output<A> {
    /// Send a datagram (never larger than `Config::max_packet_size`).
    SendDatagram {
        /// Destination.
        to: A,
        /// Bytes to send.
        bytes: Vec<u8>,
    },
    /// Send a message over a reliable stream (TCP in the async driver); may be larger than a
    /// datagram, up to `Config::max_stream_message_size`.
    SendStream {
        /// Destination.
        to: A,
        /// Bytes to send.
        bytes: Vec<u8>,
    },
    /// Something the application may want to know.
    Event(Event<A>),
    /// The node must be handed an input (a [`Input::Tick`] will do) no later than this instant.
    /// Emitted once at the end of every `handle` call; the latest one supersedes the others.
    TickAt(Instant),
}

/// Membership changes and diagnostics, in the order they happened.
///
/// Serialized internally tagged: an object whose `event` field is the variant's stable
/// snake_case name ([`Event::name`]: `member_joined`, `member_suspected`, ...), with the
/// variant's data beside it. A member's fields are inlined ([`Member`]: `node`, `addr`,
/// `incarnation`, `state`, `meta`), so `{"event": "member_suspected", "node": "b", ...,
/// "accuser": "a"}`. Leaves: a [`DropReason`] as its debug text (`"Decode(Truncated)"`), a
/// [`CommandError`] as `error` with its display text, checksums as 16 hex digits in
/// human-readable formats, state keys as `type` and `key` ([`StateKey`]), and
/// [`Event::OriginFailed`]'s origin as `node` and its keys as `"type/key"` strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event<A> {
    /// A member became known alive, or rejoined after being dead or gone.
    MemberJoined(Member<A>),
    /// A member is suspected (SWIM §4.2); it is declared dead unless it refutes in time.
    MemberSuspected {
        /// The member, now suspect.
        #[serde(flatten)]
        member: Member<A>,
        /// Who raised the suspicion.
        accuser: NodeName,
    },
    /// A suspected member refuted the suspicion with a higher incarnation and is alive again.
    MemberAlive(Member<A>),
    /// A member was declared dead (its suspicion timed out here or elsewhere).
    MemberFailed(Member<A>),
    /// A member left gracefully.
    MemberLeft(Member<A>),
    /// A member announced new metadata or a new address.
    MemberUpdated(Member<A>),
    /// A dead or departed member's tombstone was reaped; the name is forgotten.
    MemberRemoved(Member<A>),
    /// Another member suspects this node; a refutation is already on its way.
    LocalSuspected {
        /// Who suspects us.
        accuser: NodeName,
        /// The incarnation suspected.
        incarnation: u64,
    },
    /// This node refuted a claim about itself (suspect, dead, or a stale life) by taking a
    /// higher incarnation.
    LocalRefuted {
        /// The state claimed about us.
        #[serde(serialize_with = "ser::member_state")]
        claim: MemberState,
        /// Our new incarnation.
        incarnation: u64,
    },
    /// A join request was answered: this node has the cluster's membership.
    JoinCompleted {
        /// The member that answered.
        via: A,
    },
    /// After [`Command::Leave`], the departure has been gossiped its full retransmission count
    /// (or there is nobody left to tell): the driver may shut down.
    LeaveComplete,
    /// Something from the network was dropped (see [`Stats::dropped`](crate::Stats::dropped)).
    PacketDropped {
        /// Sender address.
        from: A,
        /// Why.
        #[serde(serialize_with = "ser::debug")]
        reason: DropReason,
    },
    /// A command given through [`Node::handle`](crate::Node::handle) was rejected; nothing
    /// changed.
    CommandRejected(#[serde(serialize_with = "ser::error")] CommandError),
    /// A replicated state entry changed on this node other than by a local write: a newer
    /// remote write arrived, or the entry expired or was reset (`new` is `None` when it is gone;
    /// a deletion arrives as an entry whose `value` is `None`).
    StateChanged {
        /// Type and key.
        #[serde(flatten)]
        key: StateKey,
        /// The entry held before, if any.
        old: Option<StateEntry>,
        /// The entry held now, if any.
        new: Option<StateEntry>,
        /// Why it changed.
        cause: ChangeCause,
    },
    /// This node's membership checksum changed (a member joined, left, failed, was suspected
    /// or refuted): its view is no longer stable.
    ViewChanged {
        /// The new checksum.
        #[serde(serialize_with = "ser::hex")]
        checksum: u64,
        /// Members in the view (alive or suspect), this node included.
        members: usize,
    },
    /// Every member of this node's view has advertised the same checksum for
    /// `ViewConfig::settle`: the on-stable hook (rebalance a hash ring here).
    ViewStable {
        /// The view's checksum.
        #[serde(serialize_with = "ser::hex")]
        checksum: u64,
        /// Its members, this node included, in name order.
        members: Vec<NodeName>,
    },
    /// The leader changed: the stable view's member with the lowest `(rank, name)`, or `None`
    /// while the last stable view's leader is no longer a member.
    LeaderChanged {
        /// The new leader.
        leader: Option<NodeName>,
    },
    /// The failover hook: a member that originated state entries failed or left. `keys` are
    /// its live entries here; types configured with `expire_after_origin_failure` delete them
    /// after that delay unless the origin comes back.
    OriginFailed {
        /// The failed or departed member.
        #[serde(rename = "node")]
        origin: NodeName,
        /// True if it left gracefully, false if it was declared dead.
        left: bool,
        /// Its live entries on this node, ascending.
        #[serde(serialize_with = "ser::display_all")]
        keys: Vec<StateKey>,
    }, // --- abuse resistance (issue 13) ---
    /// A claim moved a member this node holds alive or suspect to another address; it was
    /// refused (memberlist's `NotifyConflict`). Either two processes share a name, or someone
    /// forged the claim to take the member's traffic. The address changes only once the member
    /// is held dead or gone (`docs/security.md`).
    Conflict {
        /// The member as held, at the address kept.
        #[serde(flatten)]
        member: Member<A>,
        /// The address the refused claim named.
        claimed_addr: A,
    },
    // --- operator control (issue 14) ---
    /// An operator removed this node ([`Command::Remove`] on some member): it now holds itself
    /// left, stops probing, and comes back only by an explicit [`Command::Join`] (which takes
    /// a higher incarnation than `incarnation`).
    LocalRemoved {
        /// The incarnation this node was removed at.
        incarnation: u64,
    },
    // Application messaging (issue 14, `docs/protocol.md` §13).
    /// A direct message ([`Command::Send`]) arrived.
    Message {
        /// The sender.
        from: NodeName,
        /// Application channel.
        channel: u16,
        /// The application's bytes.
        #[serde(serialize_with = "ser::text")]
        payload: Vec<u8>,
    },
    /// A user event ([`Command::Broadcast`]), delivered once per node.
    UserEvent {
        /// The member that broadcast it.
        origin: NodeName,
        /// Event name.
        name: String,
        /// The origin's Lamport time for it.
        ltime: u64,
        /// The application's bytes.
        #[serde(serialize_with = "ser::text")]
        payload: Vec<u8>,
    },
    /// A query passing this node's filter: answer with [`Command::Respond`] before its deadline.
    Query {
        /// Its id, for [`Command::Respond`].
        id: QueryId,
        /// Query name.
        name: String,
        /// The application's bytes.
        #[serde(serialize_with = "ser::text")]
        payload: Vec<u8>,
    },
    /// An answer to this node's query `query` (its Lamport time).
    QueryResponse {
        /// The query's Lamport time ([`QueryId::ltime`]).
        query: u64,
        /// The member that answered.
        from: NodeName,
        /// The application's bytes.
        #[serde(serialize_with = "ser::text")]
        payload: Vec<u8>,
    },
    /// This node's query reached its deadline: how many members acknowledged it and how many
    /// answered. Nothing more is collected for it.
    QueryDone {
        /// The query's Lamport time.
        query: u64,
        /// Members that received it and passed its filter (this node included if it did).
        acks: usize,
        /// Answers collected.
        responses: usize,
    },
    // --- lifecycle and bootstrap (issue 14, `docs/protocol.md` §12.4) ---
    /// The node's [`Status`](crate::Status) changed (reported at the end of the input that
    /// changed it).
    StatusChanged {
        /// The status before.
        from: crate::Status,
        /// The status now.
        to: crate::Status,
    },
    /// A join gave up: no seed answered within `join.max_duration`. The node is back to
    /// [`Status::Starting`](crate::Status::Starting) and contacts no seed until the next
    /// [`Command::Join`].
    JoinFailed {
        /// Why.
        reason: JoinFailure,
        /// Join attempts (batches of seeds contacted) this join made.
        attempts: u64,
    },
}

impl<A> Event<A> {
    /// The event's stable snake_case name, the `event` tag of its serialized form
    /// (`member_joined`, `member_failed`, ...). Exhaustive: a new variant cannot go unnamed.
    pub fn name(&self) -> &'static str {
        match self {
            Event::MemberJoined(_) => "member_joined",
            Event::MemberSuspected { .. } => "member_suspected",
            Event::MemberAlive(_) => "member_alive",
            Event::MemberFailed(_) => "member_failed",
            Event::MemberLeft(_) => "member_left",
            Event::MemberUpdated(_) => "member_updated",
            Event::MemberRemoved(_) => "member_removed",
            Event::LocalSuspected { .. } => "local_suspected",
            Event::LocalRefuted { .. } => "local_refuted",
            Event::JoinCompleted { .. } => "join_completed",
            Event::LeaveComplete => "leave_complete",
            Event::PacketDropped { .. } => "packet_dropped",
            Event::CommandRejected(_) => "command_rejected",
            Event::StateChanged { .. } => "state_changed",
            Event::ViewChanged { .. } => "view_changed",
            Event::ViewStable { .. } => "view_stable",
            Event::LeaderChanged { .. } => "leader_changed",
            Event::OriginFailed { .. } => "origin_failed",
            Event::LocalRemoved { .. } => "local_removed",
            Event::Conflict { .. } => "conflict",
            Event::Message { .. } => "message",
            Event::UserEvent { .. } => "user_event",
            Event::Query { .. } => "query",
            Event::QueryResponse { .. } => "query_response",
            Event::QueryDone { .. } => "query_done",
            Event::StatusChanged { .. } => "status_changed",
            Event::JoinFailed { .. } => "join_failed",
        }
    }
}

/// Why a join gave up ([`Event::JoinFailed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum JoinFailure {
    /// No seed answered within `join.max_duration`.
    MaxDuration,
}

/// Serde helpers for the leaves of [`Event`]'s serialized form.
pub(crate) mod ser {
    use core::fmt::{Debug, Display};

    use serde::Serializer;
    use serde::ser::{SerializeSeq, SerializeStruct};

    use crate::member::MemberState;

    /// Bytes as lossy UTF-8 text in human-readable formats, as bytes otherwise.
    pub(crate) fn text<B: AsRef<[u8]>, S: Serializer>(b: &B, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(&alloc::string::String::from_utf8_lossy(b.as_ref()))
        } else {
            s.serialize_bytes(b.as_ref())
        }
    }

    /// As [`text`], `None` as a unit (`null`).
    pub(crate) fn opt_text<B: AsRef<[u8]>, S: Serializer>(
        b: &Option<B>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match b {
            Some(b) => text(b, s),
            None => s.serialize_none(),
        }
    }

    /// `alive`, `suspect`, `dead` or `left`.
    pub(crate) fn member_state<S: Serializer>(m: &MemberState, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(m.as_str())
    }

    /// The value's `Debug` text.
    pub(crate) fn debug<T: Debug, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{v:?}"))
    }

    /// A checksum: 16 hex digits in human-readable formats, the number otherwise.
    pub(crate) fn hex<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(&format_args!("{v:016x}"))
        } else {
            s.serialize_u64(*v)
        }
    }

    /// Each item's `Display` text.
    pub(crate) fn display_all<T: Display, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for x in v {
            seq.serialize_element(&format_args!("{x}"))?;
        }
        seq.end()
    }

    /// An error as a struct with one field, `error`, its `Display` text (a newtype variant of
    /// an internally tagged enum must serialize as a struct).
    pub(crate) fn error<E: Display, S: Serializer>(e: &E, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Error", 1)?;
        st.serialize_field("error", &format_args!("{e}"))?;
        st.end()
    }
}

/// Who a node is: a unique name, the address others reach it at, and its initial metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity<A> {
    /// Unique name within the cluster.
    pub name: NodeName,
    /// Address other members send to.
    pub addr: A,
    /// Initial metadata.
    pub meta: Metadata,
}

impl<A> Identity<A> {
    /// An identity with empty metadata.
    pub fn new(name: NodeName, addr: A) -> Self {
        Identity {
            name,
            addr,
            meta: Metadata::empty(),
        }
    }

    /// Sets the initial metadata.
    pub fn with_meta(mut self, meta: impl Into<Metadata>) -> Self {
        self.meta = meta.into();
        self
    }
}

#[cfg(test)]
mod tests;
