//! Direct messages between members (`docs/protocol.md` §13.1; Partisan's send/forward,
//! memberlist's direct send), and the fields shared by the user event and query rooms.
//!
//! An unreliable message is one [`Message::User`] datagram (membership updates ride along as
//! on any datagram); it is refused if it does not fit `max_packet_size`. A reliable message is
//! one [`StreamKind::User`] stream message, up to `MessagingConfig::max_reliable_payload`. The
//! core queues nothing: each send is an output of the command that asked for it, so the only
//! outbound queue is the driver's.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;

use super::{Address, BroadcastQueue, Node};
use crate::io::{CommandError, Event, Output};
use crate::keyring::TAG_LEN;
use crate::member::NodeName;
use crate::stats::DropReason;
use crate::time::Instant;
use crate::wire::{self, Message, MessageKind, StreamHeader, StreamKind};

/// What a node keeps for application messaging; empty and timer-free while unused.
#[derive(Debug)]
pub(super) struct Messaging<A> {
    /// The user-event and query Lamport clock (Serf's): the next local id.
    pub(super) clock: u64,
    /// Recent `(origin, ltime)` ids, oldest first, bounded by `dedupe_buffer`.
    pub(super) recent: VecDeque<(NodeName, u64)>,
    /// The same ids, for lookup.
    pub(super) seen: BTreeSet<(NodeName, u64)>,
    /// Encoded user events and queries waiting to be gossiped.
    pub(super) queue: BroadcastQueue<GossipKey>,
    /// Queries this node asked and is collecting, by Lamport time.
    pub(super) asked: BTreeMap<u64, Asked>,
    /// Queries from others this node may still answer, oldest first.
    pub(super) answerable: VecDeque<Answerable<A>>,
}

/// A gossip queue subject: a user event coalesces with its origin's older event of the same
/// name; a query never coalesces.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum GossipKey {
    Event(NodeName, String),
    Query(NodeName, u64),
}

/// A query this node asked.
#[derive(Debug, Default)]
pub(super) struct Asked {
    pub(super) acks: BTreeSet<NodeName>,
    pub(super) responders: BTreeSet<NodeName>,
}

/// A query from another member that the application may answer.
#[derive(Debug)]
pub(super) struct Answerable<A> {
    pub(super) origin: NodeName,
    pub(super) ltime: u64,
    pub(super) addr: A,
    pub(super) deadline: Instant,
}

impl<A> Messaging<A> {
    pub(super) fn new(max_queue: usize, hasher: foldhash::fast::FixedState) -> Self {
        Messaging {
            clock: 0,
            recent: VecDeque::new(),
            seen: BTreeSet::new(),
            queue: BroadcastQueue::new(max_queue, hasher),
            asked: BTreeMap::new(),
            answerable: VecDeque::new(),
        }
    }
}

impl<A: Address> Node<A> {
    /// [`Command::Send`](crate::Command::Send). Nothing changes on error.
    pub(super) fn send_message(
        &mut self,
        to: &str,
        channel: u16,
        payload: Vec<u8>,
        reliable: bool,
        out: &mut Vec<Output<A>>,
    ) -> Result<(), CommandError> {
        let max = if reliable {
            self.config.messaging.max_reliable_payload
        } else {
            self.max_unreliable_payload()
        };
        if payload.len() > max {
            return Err(CommandError::PayloadTooLarge {
                len: payload.len(),
                max,
            });
        }
        if to == self.local.name.as_str() {
            self.stats.messaging.delivered += 1;
            out.push(Output::Event(Event::Message {
                from: self.local.name.clone(),
                channel,
                payload,
            }));
            return Ok(());
        }
        let addr = match self.members.get(to) {
            Some(e) if e.member.state.is_active() => e.member.addr.clone(),
            _ => return Err(CommandError::UnknownMember { name: to.into() }),
        };
        if reliable {
            self.stats.messaging.sent_reliable += 1;
            self.send_payload_stream(addr, StreamKind::User { channel }, &payload, out);
        } else {
            self.stats.messaging.sent_unreliable += 1;
            // `send_datagram` borrows the node mutably: the message borrows a copy of the name.
            let name = self.local.name.clone();
            let msg = Message::User {
                sender: name.as_str(),
                channel,
                payload: &payload,
            };
            self.send_datagram(addr, &msg, None, false, out);
        }
        Ok(())
    }

    /// The largest payload an unreliable message from this node can carry: what fits one
    /// datagram with the header, this node's name, the framing and the encryption tag.
    pub(super) fn max_unreliable_payload(&self) -> usize {
        let mut buf = Vec::new();
        self.open_packet(&mut buf);
        let tag = if self.config.keyring.is_some() {
            TAG_LEN
        } else {
            0
        };
        // Varints: variant (1), name length (2), channel (3), payload length (3), the two
        // update counts (10).
        let overhead = buf.len() + 1 + 2 + self.local.name.as_str().len() + 3 + 3 + 10 + tag;
        self.config.max_packet_size.saturating_sub(overhead)
    }

    /// Sends a stream message whose body is `payload` (a reliable message or a query response).
    pub(super) fn send_payload_stream(
        &mut self,
        to: A,
        kind: StreamKind,
        payload: &[u8],
        out: &mut Vec<Output<A>>,
    ) {
        let mut buf = Vec::with_capacity(payload.len() + 64);
        let start = self.open_packet(&mut buf);
        let header = StreamHeader {
            kind,
            sender: self.local.name.as_str(),
            sender_addr: self.local.addr.clone(),
        };
        wire::encode_into(&header, &mut buf);
        wire::encode_count(0, &mut buf);
        wire::encode_into(payload, &mut buf);
        self.seal_packet(&mut buf, start);
        let kind = match kind {
            StreamKind::QueryResponse { .. } => MessageKind::QueryResponse,
            _ => MessageKind::User,
        };
        self.stats.sent.bump(kind);
        self.stats.streams_sent += 1;
        self.stats.stream_bytes_sent += buf.len() as u64;
        out.push(Output::SendStream { to, bytes: buf });
    }

    /// A received direct message, datagram or stream.
    pub(super) fn on_user_message(
        &mut self,
        from: &A,
        sender: &str,
        channel: u16,
        payload: &[u8],
        out: &mut Vec<Output<A>>,
    ) {
        let Some(name) = self.valid_name(sender) else {
            return self.drop_packet(from, DropReason::BadName, out);
        };
        self.stats.messaging.delivered += 1;
        out.push(Output::Event(Event::Message {
            from: name,
            channel,
            payload: payload.to_vec(),
        }));
    }

    /// `name` as a [`NodeName`] if it is a valid member name here.
    pub(super) fn valid_name(&self, name: &str) -> Option<NodeName> {
        if name.is_empty() || name.len() > self.config.max_name_len {
            return None;
        }
        NodeName::new(name).ok()
    }
}

impl<A: Address> Node<A> {
    /// Messaging's bounds hold (part of [`Node::check_invariants`]).
    pub(super) fn check_messaging_invariants(&self) {
        let (m, c) = (&self.messaging, &self.config.messaging);
        assert!(
            m.recent.len() <= c.dedupe_buffer,
            "dedupe buffer within bound"
        );
        assert_eq!(m.recent.len(), m.seen.len(), "dedupe buffer and set agree");
        assert!(
            m.queue.len() <= c.max_event_queue,
            "event queue within bound"
        );
        assert!(
            m.asked.len() <= c.max_inflight_queries,
            "in-flight queries within bound"
        );
        assert!(
            m.answerable.len() <= c.max_pending_responses,
            "answerable queries within bound"
        );
    }
}

impl<A: Address> Node<A> {
    /// The user-event and query Lamport clock: the `ltime` the next
    /// [`Command::Broadcast`](crate::Command::Broadcast) or [`Command::Query`](crate::Command::Query)
    /// of this node gets (a query's [`QueryId::ltime`](crate::QueryId::ltime)).
    pub fn user_clock(&self) -> u64 {
        self.messaging.clock
    }
}
