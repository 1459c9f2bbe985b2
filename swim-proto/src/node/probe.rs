//! Probing (SWIM §3.1, §4.3, Lifeguard §IV-A): the randomized round-robin probe order, the
//! probe of each protocol period (ping, then ping-req through helpers, with nacks), and the
//! ping-reqs this node relays for others.
//!
//! A probe lives for one protocol period: a ping at its start, ping-reqs to `indirect_checks`
//! helpers once `probe_timeout` passes without an ack ([`TimerKind::Indirect`]), and a verdict
//! at the period's end. A missed probe raises a suspicion (`node/suspicion.rs`) and, with the
//! nacks helpers did or did not send, adjusts local health (Lifeguard §IV-A).

use alloc::vec::Vec;
use core::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::RngCore;

use super::timers::{Timer, TimerKind};
use super::{Address, Node, Source};
use crate::Map;
use crate::io::Output;
use crate::member::{MemberState, NodeName};
use crate::stats::DropReason;
use crate::time::Instant;
use crate::wire::{self, Message, Update};

/// The probing state of a node.
#[derive(Debug)]
pub(super) struct Probing<A> {
    /// SWIM §4.3 round-robin order of member-table slots.
    pub(super) order: ProbeOrder,
    /// The probe of the current protocol period.
    pub(super) in_flight: Option<ProbeInFlight<A>>,
    /// Ping-reqs relayed for others, by this node's own sequence number (bounded by
    /// `Config::max_pending_relays`; more are dropped and counted).
    pub(super) relays: Map<u32, Relay<A>>,
    /// The last sequence number used.
    next_seq: u32,
}

impl<A> Probing<A> {
    pub(super) fn new(hasher: foldhash::fast::FixedState) -> Self {
        Probing {
            order: ProbeOrder::default(),
            in_flight: None,
            relays: Map::with_hasher(hasher),
            next_seq: 0,
        }
    }
}

impl<A: Address> Node<A> {
    /// Ends the probe in flight, if any, with its indirect deadline.
    pub(super) fn take_probe(&mut self) -> Option<ProbeInFlight<A>> {
        self.timers.clear(TimerKind::Indirect);
        self.probing.in_flight.take()
    }

    /// A Lifeguard §IV-A nack for the probe in flight, counted if it answers our ping-reqs.
    pub(super) fn on_nack(&mut self, seq: u32) {
        if let Some(p) = self
            .probing
            .in_flight
            .as_mut()
            .filter(|p| p.seq == seq && p.indirect_sent)
        {
            p.nacks += 1;
        }
    }

    pub(super) fn next_seq(&mut self) -> u32 {
        self.probing.next_seq = self.probing.next_seq.wrapping_add(1);
        self.probing.next_seq
    }

    /// End of a protocol period: judge the probe in flight, then probe the next member.
    pub(super) fn on_probe_period(&mut self, out: &mut Vec<Output<A>>) {
        self.timing_period();
        if let Some(p) = self.take_probe() {
            self.on_probe_failed(p, out);
        }
        self.on_view_period(out);
        if self.local.state == MemberState::Left {
            self.timers.clear(TimerKind::Probe);
            return;
        }
        let now = self.now;
        self.timers.set(
            TimerKind::Probe,
            now + self.health.scale(self.config.probe_interval),
        );
        if self.fd_paused {
            return; // failure detector paused by the operator (`lifecycle`)
        }
        let Some(slot) = self.next_probe_target() else {
            return;
        };
        let member = &self.members.at(slot).member;
        let (target, addr) = (member.name.clone(), member.addr.clone());
        // Lifeguard §IV-C (buddy system): a suspect target hears of its suspicion first thing.
        let buddy = (member.state == MemberState::Suspect).then(|| {
            let mut b = Vec::new();
            wire::encode_into(&self.update_for(slot), &mut b);
            b
        });
        let seq = self.next_seq();
        self.stats.probes += 1;
        self.timing_probe_sent(seq);
        self.send_datagram(
            addr.clone(),
            &Message::Ping {
                seq,
                target: wire::name_tag(target.as_str()),
                checksum: wire::short_checksum(self.checksum()),
            },
            buddy.as_deref(),
            false,
            out,
        );
        let indirect_at = now + self.health.scale(self.config.probe_timeout);
        self.timers.set(TimerKind::Indirect, indirect_at);
        self.probing.in_flight = Some(ProbeInFlight {
            target,
            target_addr: addr,
            seq,
            indirect_sent: false,
            expected_nacks: 0,
            nacks: 0,
        });
    }

    pub(super) fn next_probe_target(&mut self) -> Option<usize> {
        for _ in 0..2 {
            while let Some(slot) = self.probing.order.next() {
                if slot < self.members.len() && self.members.at(slot).member.state.is_active() {
                    return Some(slot);
                }
            }
            if self.members.active() == 0 {
                return None;
            }
            let members = &self.members;
            let active = (0..members.len()).filter(|&s| members.at(s).member.state.is_active());
            self.probing.order.reset(active, &mut self.rng);
        }
        None
    }

    /// No direct ack in time: ask `indirect_checks` random alive members to probe the target.
    pub(super) fn on_direct_timeout(&mut self, out: &mut Vec<Output<A>>) {
        self.timers.clear(TimerKind::Indirect);
        let Some(p) = self.probing.in_flight.as_mut() else {
            return;
        };
        p.indirect_sent = true;
        let (seq, target, target_addr) = (p.seq, p.target.clone(), p.target_addr.clone());
        let helpers = self.pick_members(self.config.indirect_checks, |e| {
            e.member.state == MemberState::Alive && e.member.name != target
        });
        for &slot in &helpers {
            let to = self.members.at(slot).member.addr.clone();
            let msg = Message::PingReq {
                seq,
                target: target.as_str(),
                target_addr: target_addr.clone(),
                want_nack: true,
            };
            self.send_datagram(to, &msg, None, false, out);
        }
        self.stats.indirect_probes += helpers.len() as u64;
        let expected = self.expected_nacks(&helpers); // hearsay helpers owe no nack (issue 13)
        if let Some(p) = self.probing.in_flight.as_mut() {
            p.expected_nacks = expected;
        }
    }

    /// The period ended without an ack: adjust local health (Lifeguard §IV-A) and suspect.
    pub(super) fn on_probe_failed(&mut self, p: ProbeInFlight<A>, out: &mut Vec<Output<A>>) {
        self.stats.probes_failed += 1;
        let missed = if p.expected_nacks > 0 {
            p.expected_nacks.saturating_sub(p.nacks)
        } else {
            usize::from(self.is_confirmed(p.target.as_str())) // hearsay costs no health (issue 13)
        };
        self.health.apply(missed as i64);
        let Some(slot) = self.members.slot(p.target.as_str()) else {
            return;
        };
        let m = &self.members.at(slot).member;
        if !m.state.is_active() {
            return;
        }
        if m.state == MemberState::Alive {
            self.stats.suspicions_raised += 1;
        }
        let (inc, addr) = (m.incarnation, m.addr.clone());
        let me = self.local.name.clone();
        let claim = Update::Suspect {
            name: p.target.as_str(),
            incarnation: inc,
            addr,
            accuser: me.as_str(),
        };
        self.apply_update(&claim, Source::Local, out);
    }

    pub(super) fn on_ack(&mut self, from: &A, seq: u32, checksum: u32, out: &mut Vec<Output<A>>) {
        if self.on_heal_probe_ack(from, seq, out) {
            return; // issue 12: a member held failed answered (`node/heal.rs`)
        }
        if let Some(r) = self.probing.relays.remove(&seq) {
            let ack = Message::Ack {
                seq: r.requester_seq,
                checksum,
            };
            self.send_reply(r.requester, &ack, out); // bare to a non-member (issue 13)
            return;
        }
        if let Some(p) = self.probing.in_flight.take_if(|p| p.seq == seq) {
            self.timers.clear(TimerKind::Indirect);
            self.timing_probe_acked(from, &p);
            self.health.apply(-1);
            self.confirm_member(p.target.as_str(), &p.target_addr); // issue 13
            // A relayed ack carries the target's checksum: compare it, sync with the target.
            let peer = if p.indirect_sent {
                p.target_addr
            } else {
                from.clone()
            };
            self.observe_checksum(peer, checksum);
            return;
        }
        self.stats.unexpected_acks += 1;
    }

    /// Answers a probe of this node, with its membership checksum.
    pub(super) fn send_ack(&mut self, to: A, seq: u32, out: &mut Vec<Output<A>>) {
        let checksum = wire::short_checksum(self.checksum());
        self.send_reply(to, &Message::Ack { seq, checksum }, out); // bare to a non-member (issue 13)
    }

    pub(super) fn on_ping_req(
        &mut self,
        from: &A,
        seq: u32,
        target: &str,
        target_addr: A,
        want_nack: bool,
        out: &mut Vec<Output<A>>,
    ) {
        if target == self.local.name.as_str() {
            self.send_ack(from.clone(), seq, out);
            return;
        }
        if self.probing.relays.len() >= self.config.max_pending_relays {
            self.drop_packet(from, DropReason::RelayTableFull, out);
            return;
        }
        let own = self.next_seq();
        let deadline = self.now + self.relay_timeout();
        self.probing.relays.insert(
            own,
            Relay {
                requester: from.clone(),
                requester_seq: seq,
                want_nack,
                deadline,
            },
        );
        self.timers.push(deadline, Timer::Relay(own));
        self.stats.relays += 1;
        let checksum = wire::short_checksum(self.checksum());
        self.send_datagram(
            target_addr,
            &Message::Ping {
                seq: own,
                target: wire::name_tag(target),
                checksum,
            },
            None,
            false,
            out,
        );
    }

    /// How long a helper waits for the target before sending its nack (Lifeguard §IV-A): the
    /// requester sends ping-reqs `probe_timeout` into its period and judges the probe at the
    /// period's end, so the nack must come back within `probe_interval − probe_timeout`. The
    /// helper waits 80% of that window (at most `probe_timeout`), leaving the rest for the trip
    /// back. A requester with a poor health score has a longer window, so this is conservative.
    pub(super) fn relay_timeout(&self) -> Duration {
        let window = self.config.probe_interval - self.config.probe_timeout;
        (window * 4 / 5).min(self.config.probe_timeout)
    }

    pub(super) fn on_relay_timeout(&mut self, seq: u32, out: &mut Vec<Output<A>>) {
        if self
            .probing
            .relays
            .get(&seq)
            .is_none_or(|r| r.deadline > self.now)
        {
            return;
        }
        let r = self
            .probing
            .relays
            .remove(&seq)
            .expect("relay checked above");
        if r.want_nack {
            let nack = Message::Nack {
                seq: r.requester_seq,
            };
            self.send_reply(r.requester, &nack, out); // bare to a non-member (issue 13)
        }
    }
}

/// Uniform index in `0..n` from the node's seeded RNG (`n > 0`).
pub(super) fn random_index(rng: &mut ChaCha8Rng, n: usize) -> usize {
    debug_assert!(n > 0);
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// SWIM §4.3 randomized round-robin: members are probed in a shuffled order, reshuffled each
/// round, and a new member is inserted at a random position among those not yet probed this
/// round. Every member is probed once per round, which bounds the time to first detection
/// to one round (n protocol periods) in the worst case.
///
/// The order holds member-table slots (4 bytes each; a simulator holds n² of them). Reaping a
/// tombstone moves the table's last member into the freed slot, so within the current round
/// that member may be probed one round late; the next round is rebuilt from the table.
#[derive(Debug, Default)]
pub(super) struct ProbeOrder {
    order: Vec<u32>,
    next: usize,
}

impl ProbeOrder {
    /// The next slot in this round, or `None` at the end of the round.
    pub(super) fn next(&mut self) -> Option<usize> {
        let slot = *self.order.get(self.next)?;
        self.next += 1;
        Some(slot as usize)
    }

    /// Starts a new round over `slots`, shuffled (Fisher–Yates).
    pub(super) fn reset(&mut self, slots: impl Iterator<Item = usize>, rng: &mut ChaCha8Rng) {
        self.order.clear();
        self.order.extend(slots.map(|s| s as u32));
        let len = self.order.len();
        if self.order.capacity() > len + len / 8 + 16 {
            self.order.shrink_to(len + len / 16);
        }
        for i in (1..len).rev() {
            let j = random_index(rng, i + 1);
            self.order.swap(i, j);
        }
        self.next = 0;
    }

    /// Adds a member at a random position among those still to be probed this round, in O(1).
    pub(super) fn insert(&mut self, slot: usize, rng: &mut ChaCha8Rng) {
        self.order.push(slot as u32);
        let remaining = self.order.len() - self.next;
        let j = self.next + random_index(rng, remaining);
        let last = self.order.len() - 1;
        self.order.swap(j, last);
    }
}

/// The probe of the current protocol period.
#[derive(Debug, Clone)]
pub(super) struct ProbeInFlight<A> {
    pub target: NodeName,
    pub target_addr: A,
    pub seq: u32,
    /// Whether helpers were asked (the indirect deadline is [`TimerKind::Indirect`]).
    pub indirect_sent: bool,
    pub expected_nacks: usize,
    pub nacks: usize,
}

/// A ping-req this node is relaying: its own ping's sequence number maps to this.
#[derive(Debug, Clone)]
pub(super) struct Relay<A> {
    pub requester: A,
    pub requester_seq: u32,
    pub want_nack: bool,
    pub deadline: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;
    use rand_core::SeedableRng;

    /// SWIM §4.3: within a round every member is probed exactly once, even when members join
    /// mid-round.
    #[test]
    pub(super) fn every_member_probed_once_per_round_including_newcomers() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut order = ProbeOrder::default();
        order.reset(0..10, &mut rng);
        let mut seen = Vec::new();
        for i in 0..5 {
            seen.push(order.next().unwrap());
            order.insert(10 + i, &mut rng);
        }
        for n in 15..20 {
            order.insert(n, &mut rng);
        }
        while let Some(n) = order.next() {
            seen.push(n);
        }
        assert_eq!(seen.len(), 20);
        let unique: BTreeSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), 20);
    }

    #[test]
    pub(super) fn rounds_are_shuffled_differently() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut order = ProbeOrder::default();
        let mut rounds = Vec::new();
        for _ in 0..2 {
            order.reset(0..30, &mut rng);
            let mut round = Vec::new();
            while let Some(n) = order.next() {
                round.push(n);
            }
            rounds.push(round);
        }
        assert_ne!(rounds[0], rounds[1]);
    }
}
