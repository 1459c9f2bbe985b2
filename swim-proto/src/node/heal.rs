//! Partition healing (ringpop's approach, fixing memberlist#222): members declared dead are
//! remembered for `failed_memory_time`, and each `heal_interval` a node may send a heal
//! snapshot to one of them (or to a join seed that is not an active member). When a partition
//! heals, the exchange revives each side in the other's view: claims of the other side about
//! members we hold alive become suspicions (`Source::Heal` in `node/updates.rs`).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use rand_core::RngCore;

use super::probe::random_index;
use super::timers::TimerKind;
use super::{Address, Node};
use crate::io::Output;
use crate::member::{MemberState, NodeName};
use crate::time::Instant;
use crate::wire::{self, Message, StreamKind};

/// The partition-healing state of a node.
#[derive(Debug)]
pub(super) struct HealState<A> {
    /// Members declared dead, newest last, with when (at most `max_failed_memory`; the oldest
    /// is forgotten first).
    pub(super) failed: VecDeque<(NodeName, A, Instant)>,
    /// The heal probe awaiting an answer: its sequence number and the member pinged.
    pub(super) probe: Option<(u32, NodeName, A)>,
}

impl<A> HealState<A> {
    pub(super) fn new() -> Self {
        HealState {
            failed: VecDeque::new(),
            probe: None,
        }
    }
}

impl<A: Address> Node<A> {
    /// Remembers a member declared dead as a target for partition healing (bounded).
    pub(super) fn remember_failed(&mut self, name: NodeName, addr: A) {
        if self.config.max_failed_memory == 0 {
            return;
        }
        if self.heal.failed.len() >= self.config.max_failed_memory {
            self.heal.failed.pop_front();
        }
        self.heal.failed.push_back((name, addr, self.now));
        if !self.config.heal_probe_interval.is_zero()
            && self.timers.get(TimerKind::HealProbe).is_none()
        {
            let at = self.now + self.config.heal_probe_interval;
            self.timers.set(TimerKind::HealProbe, at);
        }
    }

    /// Heal probing: while members declared dead are remembered, each `heal_probe_interval`
    /// ping one of them with probability `min(1, heal_probe_base / n)`. The timer stops when
    /// the memory empties and restarts with the next death.
    pub(super) fn on_heal_probe(&mut self, out: &mut Vec<Output<A>>) {
        self.heal.probe = None;
        self.forget_old_failed();
        if self.local.state == MemberState::Left || self.heal.failed.is_empty() {
            self.timers.clear(TimerKind::HealProbe);
            return;
        }
        let at = self.now + self.config.heal_probe_interval;
        self.timers.set(TimerKind::HealProbe, at);
        let n = self.cluster_size().max(1) as u64;
        if self.rng.next_u64() % n >= u64::from(self.config.heal_probe_base) {
            return;
        }
        // A few tries to find a remembered member that is not active again already.
        let Some((name, addr)) = (0..4).find_map(|_| {
            let i = random_index(&mut self.rng, self.heal.failed.len());
            let (name, addr, _) = &self.heal.failed[i];
            let active = self
                .members
                .get(name.as_str())
                .is_some_and(|e| e.member.state.is_active());
            (!active).then(|| (name.clone(), addr.clone()))
        }) else {
            return;
        };
        let seq = self.next_seq();
        let ping = Message::Ping {
            seq,
            target: wire::name_tag(name.as_str()),
            checksum: wire::short_checksum(self.checksum()),
        };
        self.send_datagram(addr.clone(), &ping, None, false, out);
        self.heal.probe = Some((seq, name, addr));
    }

    /// An ack to the heal probe: the member is alive across a healed partition (or back), so
    /// the heal exchange starts now. Returns whether the ack was the heal probe's.
    pub(super) fn on_heal_probe_ack(
        &mut self,
        from: &A,
        seq: u32,
        out: &mut Vec<Output<A>>,
    ) -> bool {
        if !self
            .heal
            .probe
            .as_ref()
            .is_some_and(|(s, _, addr)| *s == seq && addr == from)
        {
            return false;
        }
        let (_, name, addr) = self.heal.probe.take().expect("checked above");
        if self
            .members
            .get(name.as_str())
            .is_some_and(|e| e.member.state.is_active())
        {
            return true;
        }
        self.stats.heals_sent += 1;
        self.send_snapshot(addr, StreamKind::Heal { reply: false }, out);
        true
    }

    /// Forgets members declared dead longer than `failed_memory_time` ago.
    fn forget_old_failed(&mut self) {
        while let Some((_, _, at)) = self.heal.failed.front() {
            if self.now.saturating_duration_since(*at) <= self.config.failed_memory_time {
                break;
            }
            self.heal.failed.pop_front();
        }
    }

    /// Partition healing (ringpop's approach, fixing memberlist#222): each `heal_interval`,
    /// with probability `min(1, heal_base / n)`, send a heal snapshot to a member this node holds
    /// failed, or to one of its join seeds that is not an active member. If it is alive on the other side of a healed partition, the exchange revives each
    /// side in the other's view and the reincarnation spreads by gossip.
    pub(super) fn on_heal_round(&mut self, out: &mut Vec<Output<A>>) {
        if self.local.state == MemberState::Left {
            self.timers.clear(TimerKind::Heal);
            return;
        }
        self.timers
            .set(TimerKind::Heal, self.now + self.config.heal_interval);
        self.forget_old_failed();
        let n = self.cluster_size().max(1) as u64;
        if (self.heal.failed.is_empty() && self.sync.seeds.is_empty())
            || self.rng.next_u64() % n >= u64::from(self.config.heal_base)
        {
            return;
        }
        // Seeds this node joined through that are not active members now: one may be on the
        // other side of a partition under another name, or back after a restart.
        let lost_seeds: Vec<A> = self
            .sync
            .seeds
            .iter()
            .filter(|s| {
                !self
                    .members
                    .iter()
                    .any(|e| e.member.state.is_active() && e.member.addr == **s)
            })
            .cloned()
            .collect();
        let candidates = self.heal.failed.len() + lost_seeds.len();
        if candidates == 0 {
            return;
        }
        let pick = random_index(&mut self.rng, candidates);
        if pick >= self.heal.failed.len() {
            let to = lost_seeds[pick - self.heal.failed.len()].clone();
            self.stats.heals_sent += 1;
            self.send_snapshot(to, StreamKind::Heal { reply: false }, out);
            return;
        }
        // A few tries to find a remembered member that is not active again already.
        for _ in 0..4 {
            let i = random_index(&mut self.rng, self.heal.failed.len());
            let (name, addr, _) = &self.heal.failed[i];
            if self
                .members
                .get(name.as_str())
                .is_some_and(|e| e.member.state.is_active())
            {
                continue;
            }
            let to = addr.clone();
            self.stats.heals_sent += 1;
            self.send_snapshot(to, StreamKind::Heal { reply: false }, out);
            return;
        }
    }
}
