//! What goes into a node ([`Input`]) and what comes out ([`Output`], [`Event`]).

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
    /// Time passed; due timers fire. Ticking at any `now` is idempotent.
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
        }
    }
}

impl core::error::Error for CommandError {}

/// What a node asks its driver to do, or tells its application.
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<A> {
    /// A member became known alive, or rejoined after being dead or gone.
    MemberJoined(Member<A>),
    /// A member is suspected (SWIM §4.2); it is declared dead unless it refutes in time.
    MemberSuspected {
        /// The member, now suspect.
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
        reason: DropReason,
    },
    /// A command given through [`Node::handle`](crate::Node::handle) was rejected; nothing
    /// changed.
    CommandRejected(CommandError),
    /// A replicated state entry changed on this node other than by a local write: a newer
    /// remote write arrived, or the entry expired or was reset (`new` is `None` when it is gone;
    /// a deletion arrives as an entry whose `value` is `None`).
    StateChanged {
        /// Type and key.
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
        checksum: u64,
        /// Members in the view (alive or suspect), this node included.
        members: usize,
    },
    /// Every member of this node's view has advertised the same checksum for
    /// `ViewConfig::settle`: the on-stable hook (rebalance a hash ring here).
    ViewStable {
        /// The view's checksum.
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
        origin: NodeName,
        /// True if it left gracefully, false if it was declared dead.
        left: bool,
        /// Its live entries on this node, ascending.
        keys: Vec<StateKey>,
    },
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
