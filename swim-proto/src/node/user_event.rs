//! Serf user events (`docs/protocol.md` §13.2): a Lamport clock of their own, dedupe by
//! `(origin, ltime)` in a bounded buffer of recent ids, coalescing of a name's older
//! still-queued event, and dissemination by gossip rounds from a bounded queue (the
//! [`BroadcastQueue`](super::BroadcastQueue) of SWIM §4.1, retransmitted
//! `event_retransmit_factor` times as often as a membership update). Queries travel the same
//! way (`node/query.rs`).

use alloc::string::String;
use alloc::vec::Vec;

use super::gossip::retransmit_limit;
use super::messaging::GossipKey;
use super::{Address, Node};
use crate::io::{CommandError, Event, Output};
use crate::member::{MemberState, NodeName};
use crate::stats::DropReason;
use crate::wire::{self, Message, UserItem};

impl<A: Address> Node<A> {
    /// [`Command::Broadcast`](crate::Command::Broadcast). Nothing changes on error.
    pub(super) fn broadcast_event(
        &mut self,
        name: String,
        payload: Vec<u8>,
        out: &mut Vec<Output<A>>,
    ) -> Result<(), CommandError> {
        self.check_item_name(&name)?;
        let max = self.config.messaging.max_event_payload;
        if payload.len() > max {
            return Err(CommandError::PayloadTooLarge {
                len: payload.len(),
                max,
            });
        }
        let ltime = self.messaging.clock;
        let origin = self.local.name.clone();
        let item: UserItem<'_, A> = UserItem::Event {
            origin: origin.as_str(),
            ltime,
            name: &name,
            payload: &payload,
        };
        let mut bytes = Vec::new();
        wire::encode_into(&item, &mut bytes);
        self.check_item_fits(bytes.len())?;
        self.messaging.clock += 1;
        self.remember(origin.clone(), ltime);
        self.stats.messaging.events_broadcast += 1;
        self.stats.messaging.events_delivered += 1;
        self.queue_item(GossipKey::Event(origin.clone(), name.clone()), bytes);
        out.push(Output::Event(Event::UserEvent {
            origin,
            name,
            ltime,
            payload,
        }));
        Ok(())
    }

    /// An event or query name must be a valid member-name-sized string.
    pub(super) fn check_item_name(&self, name: &str) -> Result<(), CommandError> {
        if name.is_empty() || name.len() > self.config.max_name_len {
            return Err(CommandError::BadEventName);
        }
        Ok(())
    }

    /// Room for user events and queries in one gossip datagram: three quarters of
    /// `max_packet_size`, the rest left to membership updates.
    pub(super) fn item_budget(&self) -> usize {
        self.config.max_packet_size * 3 / 4
    }

    /// An encoded item must fit [`Node::item_budget`], or it could never be gossiped.
    pub(super) fn check_item_fits(&self, len: usize) -> Result<(), CommandError> {
        let max = self.item_budget();
        if len > max {
            return Err(CommandError::PayloadTooLarge { len, max });
        }
        Ok(())
    }

    /// Queues an encoded item for gossip (coalescing by key) and arms the gossip round.
    pub(super) fn queue_item(&mut self, key: GossipKey, bytes: Vec<u8>) {
        if self.messaging.queue.contains(&key) {
            self.stats.messaging.coalesced += 1;
        }
        self.stats.messaging.queue_dropped += self.messaging.queue.push(key, bytes) as u64;
        self.arm_gossip();
    }

    /// Records an id as seen, forgetting the oldest at `dedupe_buffer`, and advances the
    /// clock past it (Lamport's witness rule).
    pub(super) fn remember(&mut self, origin: NodeName, ltime: u64) {
        self.messaging.clock = self.messaging.clock.max(ltime.saturating_add(1));
        let m = &mut self.messaging;
        if m.seen.insert((origin.clone(), ltime)) {
            m.recent.push_back((origin, ltime));
            if m.recent.len() > self.config.messaging.dedupe_buffer {
                let old = m.recent.pop_front().expect("dedupe buffer over its bound");
                m.seen.remove(&old);
            }
        }
    }

    /// Whether an id is new: not remembered, and not older than the dedupe window (an id
    /// that old may have been forgotten, so it is never delivered again).
    fn is_new_item(&mut self, origin: &NodeName, ltime: u64) -> bool {
        let window = self.config.messaging.dedupe_buffer as u64;
        if ltime.saturating_add(window) < self.messaging.clock {
            self.stats.messaging.stale += 1;
            return false;
        }
        if self.messaging.seen.contains(&(origin.clone(), ltime)) {
            self.stats.messaging.duplicates += 1;
            return false;
        }
        true
    }

    /// Gossiped user events and queries: each new one is delivered and queued again.
    pub(super) fn on_user_gossip(
        &mut self,
        from: &A,
        items: &[UserItem<'_, A>],
        out: &mut Vec<Output<A>>,
    ) {
        for item in items {
            let (origin, ltime) = item.id();
            let Some(origin) = self.valid_name(origin) else {
                self.stats.messaging.rejected += 1;
                self.drop_packet(from, DropReason::BadName, out);
                continue;
            };
            if !self.item_within_bounds(item) {
                self.stats.messaging.rejected += 1;
                continue;
            }
            if !self.is_new_item(&origin, ltime) {
                continue;
            }
            self.remember(origin.clone(), ltime);
            let mut bytes = Vec::new();
            wire::encode_into(item, &mut bytes);
            match item {
                UserItem::Event { name, payload, .. } => {
                    self.queue_item(GossipKey::Event(origin.clone(), (*name).into()), bytes);
                    self.stats.messaging.events_delivered += 1;
                    out.push(Output::Event(Event::UserEvent {
                        origin,
                        name: (*name).into(),
                        ltime,
                        payload: payload.to_vec(),
                    }));
                }
                UserItem::Query { .. } => {
                    self.queue_item(GossipKey::Query(origin.clone(), ltime), bytes);
                    self.on_query(origin, item, out);
                }
            }
        }
    }

    /// Names and payloads of a received item within this node's bounds.
    fn item_within_bounds(&self, item: &UserItem<'_, A>) -> bool {
        let m = &self.config.messaging;
        let name_ok = |n: &str| !n.is_empty() && n.len() <= self.config.max_name_len;
        match item {
            UserItem::Event { name, payload, .. } => {
                name_ok(name) && payload.len() <= m.max_event_payload
            }
            UserItem::Query {
                name,
                payload,
                names,
                ..
            } => {
                name_ok(name)
                    && payload.len() <= m.max_query_payload
                    && names.iter().all(|n| name_ok(n))
            }
        }
    }

    /// The gossip round's share for user events and queries: one [`Message::UserGossip`] to
    /// each of `gossip_nodes` random live members, packed up to [`Node::item_budget`]
    /// (membership updates fill the rest). Runs only while the queue holds something.
    pub(super) fn user_gossip_round(&mut self, out: &mut Vec<Output<A>>) {
        if self.messaging.queue.is_empty() || self.local.state == MemberState::Left {
            return;
        }
        let targets = self.pick_members(self.config.gossip_nodes, |e| e.member.state.is_active());
        let n = self.members.active() + 1;
        let limit = retransmit_limit(self.config.retransmit_mult, n)
            .saturating_mul(self.config.messaging.event_retransmit_factor);
        let budget = self.item_budget();
        let mut packed = Vec::new();
        for slot in targets {
            let to = self.members.at(slot).member.addr.clone();
            packed.clear();
            let count = self.messaging.queue.pack(budget, limit, &mut packed, false);
            if count == 0 {
                break;
            }
            let mut rest = &packed[..];
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                let (item, tail) = postcard::take_from_bytes::<UserItem<'_, A>>(rest)
                    .expect("queued user items decode: the node encoded them");
                items.push(item);
                rest = tail;
            }
            self.send_datagram(to, &Message::UserGossip { items }, None, false, out);
        }
    }
}
