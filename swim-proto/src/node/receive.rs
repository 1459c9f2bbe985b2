//! Receiving: datagrams and stream messages are unsealed, decoded and validated whole before
//! anything in them is applied; garbage is dropped, counted in [`Stats::dropped`] and reported
//! as [`Event::PacketDropped`], never an error or a panic. Each received claim, each new member
//! a datagram introduces and each reply to an unverified address must pass
//! `node/admission.rs`. Each message then goes to its room: probes to `node/probe.rs`, claims to `node/updates.rs`, snapshots to `node/sync.rs`
//! and `node/heal.rs`, state to `node/state.rs`.
//!
//! [`Stats::dropped`]: crate::Stats::dropped

use alloc::vec::Vec;

use super::{Address, Node, Source};
use crate::io::{Event, Output};
use crate::member::MemberState;
use crate::stats::DropReason;
use crate::wire::{self, Message, MessageKind, StreamKind};

impl<A: Address> Node<A> {
    pub(super) fn drop_packet(&mut self, from: &A, reason: DropReason, out: &mut Vec<Output<A>>) {
        self.stats.dropped.bump(reason);
        out.push(Output::Event(Event::PacketDropped {
            from: from.clone(),
            reason,
        }));
    }

    pub(super) fn on_datagram(&mut self, from: &A, bytes: &[u8], out: &mut Vec<Output<A>>) {
        self.stats.datagrams_received += 1;
        self.stats.datagram_bytes_received += bytes.len() as u64;
        let mut plain = core::mem::take(&mut self.buffers.plain);
        let (label, keyring) = (
            self.config.cluster_label.as_bytes(),
            self.config.keyring.as_ref(),
        );
        match crate::packet::unseal(bytes, label, keyring, &mut plain) {
            Ok(Some(start)) => self.on_datagram_payload(from, &bytes[start..], out),
            Ok(None) => self.on_datagram_payload(from, &plain, out),
            Err(e) => self.drop_packet(from, DropReason::Decode(e), out),
        }
        self.buffers.plain = plain;
    }

    pub(super) fn on_datagram_payload(
        &mut self,
        from: &A,
        payload: &[u8],
        out: &mut Vec<Output<A>>,
    ) {
        let dg = match wire::decode_datagram_payload::<A>(payload) {
            Ok(dg) => dg,
            Err(e) => return self.drop_packet(from, DropReason::Decode(e), out),
        };
        if let Err(reason) = dg.updates.iter().try_for_each(|u| self.validate_update(u)) {
            return self.drop_packet(from, reason, out);
        }
        if let Err(reason) = dg
            .state
            .iter()
            .try_for_each(|u| self.validate_state_update(u))
        {
            return self.drop_packet(from, reason, out);
        }
        self.stats.received.bump(dg.message.kind());
        for u in &dg.updates {
            if !self.may_introduce(u, from) {
                continue;
            }
            if let Some(u) = self.admit_update(u, Some(from), out) {
                self.apply_update(&u, Source::Gossip { from: Some(from) }, out);
            }
        }
        for e in &dg.state {
            self.apply_state(*e, out);
        }
        match dg.message {
            Message::Gossip => {}
            Message::Ping {
                seq,
                target,
                checksum,
            } => {
                if target != wire::name_tag(self.local.name.as_str()) {
                    return self.drop_packet(from, DropReason::PingForOtherNode, out);
                }
                // An unverified source's checksum could aim a push-pull at a third party.
                if self.members.has_addr(from) {
                    self.observe_checksum(from.clone(), checksum);
                } else if !self.may_reply(from, out) {
                    return;
                }
                self.send_ack(from.clone(), seq, out);
            }
            Message::PingReq {
                seq,
                target,
                target_addr,
                want_nack,
            } => {
                if target.is_empty() || target.len() > self.config.max_name_len {
                    return self.drop_packet(from, DropReason::BadName, out);
                }
                if target != self.local.name.as_str() && !self.holds_at(target, &target_addr) {
                    return self.drop_packet(from, DropReason::UnknownRelayTarget, out);
                }
                if !self.may_reply(from, out) {
                    return;
                }
                self.on_ping_req(from, seq, target, target_addr, want_nack, out);
            }
            Message::Ack { seq, checksum } => self.on_ack(from, seq, checksum, out),
            Message::Nack { seq } => self.on_nack(seq),
            Message::User {
                sender,
                channel,
                payload,
            } => self.on_user_message(from, sender, channel, payload, out),
            Message::UserGossip { items } => self.on_user_gossip(from, &items, out),
            Message::QueryAck { ltime, sender } => match self.valid_name(sender) {
                Some(name) => self.on_query_ack(ltime, name),
                None => self.drop_packet(from, DropReason::BadName, out),
            },
        }
    }

    pub(super) fn on_stream(&mut self, from: &A, bytes: &[u8], out: &mut Vec<Output<A>>) {
        self.stats.streams_received += 1;
        self.stats.stream_bytes_received += bytes.len() as u64;
        if bytes.len() > self.config.max_stream_message_size {
            return self.drop_packet(from, DropReason::StreamTooLarge, out);
        }
        let mut plain = core::mem::take(&mut self.buffers.plain);
        let (label, keyring) = (
            self.config.cluster_label.as_bytes(),
            self.config.keyring.as_ref(),
        );
        match crate::packet::unseal(bytes, label, keyring, &mut plain) {
            Ok(Some(start)) => self.on_stream_payload(from, &bytes[start..], out),
            Ok(None) => self.on_stream_payload(from, &plain, out),
            Err(e) => self.drop_packet(from, DropReason::Decode(e), out),
        }
        // A snapshot can be megabytes: keep the buffer only if it is datagram-sized.
        if plain.capacity() <= 2 * self.config.max_packet_size {
            self.buffers.plain = plain;
        }
    }

    pub(super) fn on_stream_payload(&mut self, from: &A, payload: &[u8], out: &mut Vec<Output<A>>) {
        let msg = match wire::decode_stream_payload::<A>(payload) {
            Ok(m) => m,
            Err(e) => return self.drop_packet(from, DropReason::Decode(e), out),
        };
        if msg.header.sender == self.local.name.as_str() {
            // Duplicate names (issue 15): a join under this node's own name from another
            // address is answered with a snapshot (holding this node alive), so the joiner
            // learns the name is taken, and reported as a conflict; nothing is merged.
            if let StreamKind::PushPull { join: true, .. } = msg.header.kind
                && msg.header.sender_addr != self.local.addr
            {
                let claimed_addr = msg.header.sender_addr.clone();
                out.push(Output::Event(Event::Conflict {
                    member: self.local.clone(),
                    claimed_addr: claimed_addr.clone(),
                }));
                self.send_push_pull(claimed_addr, false, true, out);
            }
            return self.drop_packet(from, DropReason::FromSelf, out);
        }
        if let Err(reason) = msg.updates.iter().try_for_each(|u| self.validate_update(u)) {
            return self.drop_packet(from, reason, out);
        }
        if let (StreamKind::User { channel }, Some(payload)) = (msg.header.kind, msg.payload) {
            self.stats.received.bump(MessageKind::User);
            let sender = msg.header.sender;
            return self.on_user_message(from, sender, channel, payload, out);
        }
        if let (StreamKind::QueryResponse { ltime }, Some(payload)) = (msg.header.kind, msg.payload)
        {
            self.stats.received.bump(MessageKind::QueryResponse);
            return match self.valid_name(msg.header.sender) {
                Some(name) => self.on_query_response(ltime, name, payload, out),
                None => self.drop_packet(from, DropReason::BadName, out),
            };
        }
        if let (StreamKind::State { phase }, Some(sync)) = (msg.header.kind, &msg.state) {
            if self.local.state == MemberState::Left {
                return;
            }
            self.stats.received.bump(MessageKind::StateSync);
            return self.on_state_stream(phase, msg.header.sender_addr.clone(), sync, out);
        }
        self.stats.received.bump(MessageKind::PushPull);
        let (join, reply, source) = match msg.header.kind {
            StreamKind::PushPull { join, reply } => (
                join,
                reply,
                Source::PushPull {
                    join_reply: join && reply,
                    sender: msg.header.sender,
                },
            ),
            StreamKind::Heal { reply } => {
                self.stats.heals_received += 1;
                (
                    false,
                    reply,
                    Source::Heal {
                        sender: msg.header.sender,
                    },
                )
            }
            StreamKind::State { .. } => unreachable!("state streams carry a state body"),
            StreamKind::User { .. } | StreamKind::QueryResponse { .. } => {
                unreachable!("user and query response streams carry a payload")
            }
        };
        // Checked before the snapshot's own claims could vouch for the address.
        let verified = *from == msg.header.sender_addr
            || self.holds_at(msg.header.sender, &msg.header.sender_addr);
        let changes_before = self.sync.table_changes;
        for u in &msg.updates {
            if let Some(u) = self.admit_update(u, None, out) {
                self.apply_update(&u, source, out);
            }
        }
        let learned = self.sync.table_changes > changes_before;
        self.members.trim();
        let sender_addr = msg.header.sender_addr;
        let request = matches!(msg.header.kind, StreamKind::Heal { reply: false }) || !reply;
        if request && !join && !verified {
            return self.drop_packet(from, DropReason::UnverifiedReplyAddress, out);
        }
        // A join names its own reply address: answered within the reply limits.
        if request && join && !verified && !self.within_reply_limits(&sender_addr, out) {
            return;
        }
        if let StreamKind::Heal { reply: false } = msg.header.kind {
            self.send_snapshot(sender_addr, StreamKind::Heal { reply: true }, out);
        } else if !reply {
            // The answer echoes `join` so the joiner can tell its join snapshot apart.
            self.send_push_pull(sender_addr, join, true, out);
        } else {
            self.on_push_pull_answer(join, learned, sender_addr, out);
        }
    }
}
