//! Dissemination (SWIM §4.1): membership updates and state entries piggybacked on outgoing
//! datagrams, and the gossip rounds that send them when no probe traffic carries them.
//!
//! Each update is encoded once into a [`BroadcastQueue`] and copied into packets,
//! least-transmitted first (newest first among equals), until it has been sent
//! `λ·⌈log10(n+1)⌉` times. A newer update about the same member replaces the older one.
//! Queueing, selecting and retiring an update each cost O(log q) for a queue of q updates: no
//! scan or sort of the queue per packet. The same queue type, keyed by (type, key), carries
//! replicated state entries.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::borrow::Borrow;
use core::cmp::Reverse;
use core::hash::Hash;

use super::probe::random_index;
use super::timers::TimerKind;
use super::{Address, Node};
use crate::Map;
use crate::io::{Event, Output};
use crate::keyring::TAG_LEN;
use crate::member::{MemberState, NodeName};
use crate::membership::Entry;
use crate::wire::{self, Message, Update};

/// Retransmissions of each update: `λ · ⌈log10(n + 1)⌉` (SWIM §4.1), at least λ.
pub(super) fn retransmit_limit(mult: u32, n: usize) -> u32 {
    let mut digits = 0u32;
    let mut reach = 1u64;
    while reach < (n as u64).saturating_add(1) {
        reach = reach.saturating_mul(10);
        digits += 1;
    }
    mult.saturating_mul(digits.max(1))
}

impl<A: Address> Node<A> {
    /// Queues this node's own claim about itself (after a refutation, a metadata change or a
    /// leave).
    pub(super) fn announce_self(&mut self) {
        let mut bytes = Vec::new();
        wire::encode_into(&self.self_update(), &mut bytes);
        let name = self.local.name.clone();
        self.queue_broadcast(name, bytes);
    }

    /// Queues an encoded update and makes sure a gossip round is coming: an idle node (empty
    /// queue) has no gossip timer at all, so it wakes only for probes.
    pub(super) fn queue_broadcast(&mut self, name: NodeName, bytes: Vec<u8>) {
        self.stats.broadcasts_dropped += self.broadcasts.push(name, bytes) as u64;
        self.arm_gossip();
    }

    /// Makes sure a gossip round is coming once something is queued: an idle node (empty
    /// queues) has no gossip timer at all, so it wakes only for probes.
    pub(super) fn arm_gossip(&mut self) {
        if self.timers.get(TimerKind::Gossip).is_none() && self.started {
            let at = self.now + self.config.gossip_interval;
            self.timers.set(TimerKind::Gossip, at);
        }
    }

    pub(super) fn enqueue(&mut self, u: &Update<'_, A>) {
        let mut bytes = Vec::new();
        match self.as_removal(u) {
            Some(removal) => wire::encode_into(&removal, &mut bytes), // issue 14
            None => wire::encode_into(u, &mut bytes),
        }
        let name = self.members.get(u.name()).map(|e| e.member.name.clone());
        let name = name.unwrap_or_else(|| NodeName::new(u.name()).expect("validated"));
        self.queue_broadcast(name, bytes);
    }

    /// Gossip round: send queued updates to `gossip_nodes` random members, including members
    /// that died or left within `gossip_to_dead_time` so they can refute.
    pub(super) fn on_gossip_round(&mut self, out: &mut Vec<Output<A>>) {
        let now = self.now;
        self.timers
            .set(TimerKind::Gossip, now + self.config.gossip_interval);
        if !self.broadcasts.is_empty() || !self.state_queue.is_empty() {
            let ttd = self.config.gossip_to_dead_time;
            let targets = self.pick_members(self.config.gossip_nodes, |e| {
                e.member.state.is_active() || now.saturating_duration_since(e.changed_at) < ttd
            });
            for slot in targets {
                let to = self.members.at(slot).member.addr.clone();
                if !self.send_datagram(to, &Message::Gossip, None, true, out) {
                    break;
                }
            }
        }
        self.user_gossip_round(out);
        if self.local.state == MemberState::Left
            && !self.leave_reported
            && (!self.broadcasts.contains(self.local.name.as_str()) || self.members.active() == 0)
        {
            self.leave_reported = true;
            out.push(Output::Event(Event::LeaveComplete));
        }
        if self.broadcasts.is_empty()
            && self.state_queue.is_empty()
            && self.messaging.queue.is_empty()
        {
            self.timers.clear(TimerKind::Gossip); // re-armed by the next queued update
        }
    }

    /// Up to `k` distinct random members satisfying `eligible`, as table slots. O(k) expected
    /// on large tables; exact on small ones or when few members are eligible.
    pub(super) fn pick_members(
        &mut self,
        k: usize,
        eligible: impl Fn(&Entry<A>) -> bool,
    ) -> Vec<usize> {
        let n = self.members.len();
        let mut picked = Vec::with_capacity(k);
        if k == 0 || n == 0 {
            return picked;
        }
        if n > 4 * k + 16 {
            for _ in 0..8 * k {
                let i = random_index(&mut self.rng, n);
                if !picked.contains(&i) && eligible(self.members.at(i)) {
                    picked.push(i);
                    if picked.len() == k {
                        return picked;
                    }
                }
            }
            if self.members.active() * 4 >= n {
                return picked;
            }
            picked.clear();
        }
        let mut candidates: Vec<usize> = (0..n).filter(|&i| eligible(self.members.at(i))).collect();
        for i in 0..k.min(candidates.len()) {
            let j = i + random_index(&mut self.rng, candidates.len() - i);
            candidates.swap(i, j);
            picked.push(candidates[i]);
        }
        picked
    }

    /// Encodes `msg`, piggybacks queued updates up to `max_packet_size` (a `priority` update
    /// first), and emits the datagram. With `require_updates`, sends nothing if no update fits
    /// and returns false.
    pub(super) fn send_datagram(
        &mut self,
        to: A,
        msg: &Message<'_, A>,
        priority: Option<&[u8]>,
        require_updates: bool,
        out: &mut Vec<Output<A>>,
    ) -> bool {
        let mut buf = Vec::with_capacity(128);
        let start = self.open_packet(&mut buf);
        let message_at = buf.len();
        wire::encode_into(msg, &mut buf);
        // Room for the update count (a varint of at most 5 bytes) and the encryption tag.
        let tag = if self.config.keyring.is_some() {
            TAG_LEN
        } else {
            0
        };
        // Room for the two counts (membership updates, state entries; varints of at most 5
        // bytes each) and the tag.
        let budget = self
            .config
            .max_packet_size
            .saturating_sub(buf.len() + 10 + tag);
        let mut body = core::mem::take(&mut self.buffers.body);
        let mut state = core::mem::take(&mut self.buffers.state);
        body.clear();
        state.clear();
        let mut count = 0;
        if let Some(p) = priority.filter(|p| p.len() <= budget) {
            body.extend_from_slice(p);
            count += 1;
        }
        let limit = retransmit_limit(self.config.retransmit_mult, self.members.active() + 1);
        // Fair sharing (memberlist#299): with both kinds queued, membership updates fill at
        // most half the packet, state entries the rest (less their count's 5 bytes), and
        // membership takes back whatever state left unused.
        let with_state = !self.state_queue.is_empty();
        let share = if with_state { budget / 2 } else { budget };
        count += self
            .broadcasts
            .pack(share.saturating_sub(body.len()), limit, &mut body, false);
        let mut state_count = 0;
        if with_state {
            let room = budget.saturating_sub(body.len());
            state_count = self.state_queue.pack(room, limit, &mut state, false);
            let rest = budget.saturating_sub(body.len() + state.len());
            count += self.broadcasts.pack(rest, limit, &mut body, true);
        }
        if require_updates && count == 0 && state_count == 0 {
            self.buffers.body = body;
            self.buffers.state = state;
            return false;
        }
        wire::finish_datagram(&mut buf, message_at, (count, &body), (state_count, &state));
        self.stats.state.piggybacked += state_count as u64;
        self.buffers.body = body;
        self.buffers.state = state;
        self.seal_packet(&mut buf, start);
        assert!(
            buf.len() <= self.config.max_packet_size,
            "datagram within max_packet_size"
        );
        self.stats.sent.bump(msg.kind());
        self.stats.datagrams_sent += 1;
        self.stats.datagram_bytes_sent += buf.len() as u64;
        self.stats.updates_sent += count as u64;
        out.push(Output::SendDatagram { to, bytes: buf });
        true
    }
}

/// Packing gives up after skipping this many updates that do not fit the space left, so a
/// packet costs O(log q) even when the queue holds many large updates.
const MAX_SKIPS_PER_PACKET: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Priority {
    transmits: u32,
    newest_first: Reverse<u64>,
}

#[derive(Debug)]
struct Queued<K> {
    name: K,
    bytes: UpdateBytes,
}

/// Longest encoded update kept inline in its queue slot (most alive, suspect and dead updates
/// with short names fit).
const INLINE_UPDATE: usize = 46;

/// An encoded update: inline when short, so packing reads it from the slot it already visits
/// instead of a separate (cold) allocation.
#[derive(Debug)]
enum UpdateBytes {
    Inline { len: u8, buf: [u8; INLINE_UPDATE] },
    Heap(Vec<u8>),
}

impl UpdateBytes {
    fn new(bytes: Vec<u8>) -> Self {
        if bytes.len() <= INLINE_UPDATE {
            let mut buf = [0; INLINE_UPDATE];
            buf[..bytes.len()].copy_from_slice(&bytes);
            UpdateBytes::Inline {
                len: bytes.len() as u8,
                buf,
            }
        } else {
            UpdateBytes::Heap(bytes)
        }
    }

    #[inline]
    fn as_slice(&self) -> &[u8] {
        match self {
            UpdateBytes::Inline { len, buf } => &buf[..usize::from(*len)],
            UpdateBytes::Heap(v) => v,
        }
    }
}

/// Bounded queue of encoded updates, one per subject at most (a member's name, or a state
/// entry's type and key).
///
/// The updates sit in a slab and the priority order holds 4-byte slot numbers: re-queueing an
/// update after each transmission then moves 20-byte B-tree entries, not the update itself.
#[derive(Debug)]
pub(crate) struct BroadcastQueue<K = NodeName> {
    by_priority: BTreeMap<Priority, u32>,
    by_name: Map<K, Priority>,
    /// The queued updates; `None` slots are listed in `free`. At most `max_len + 1` slots.
    slots: Vec<Option<Queued<K>>>,
    free: Vec<u32>,
    next_id: u64,
    max_len: usize,
    picked: Vec<(Priority, u32)>,
    /// Where the updates packed by the last `pack` call now sit, so a second call for the same
    /// packet does not repeat them.
    just_packed: Vec<Priority>,
}

impl<K: Clone + Eq + Hash> BroadcastQueue<K> {
    pub(crate) fn new(max_len: usize, hasher: foldhash::fast::FixedState) -> Self {
        BroadcastQueue {
            by_priority: BTreeMap::new(),
            by_name: Map::with_hasher(hasher),
            slots: Vec::new(),
            free: Vec::new(),
            next_id: 0,
            max_len,
            picked: Vec::new(),
            just_packed: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_priority.len()
    }

    /// Changes the bound (runtime reconfiguration, `node/reconfigure.rs`); the caller checks
    /// that the queue already fits it.
    pub(crate) fn set_max_len(&mut self, max_len: usize) {
        debug_assert!(self.len() <= max_len, "queue fits its new bound");
        self.max_len = max_len;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_priority.is_empty()
    }

    pub(crate) fn contains<Q: Hash + Eq + ?Sized>(&self, name: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.by_name.contains_key(name)
    }

    /// Stores `q` in a free slot.
    fn store(&mut self, q: Queued<K>) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(q);
                i
            }
            None => {
                self.slots.push(Some(q));
                u32::try_from(self.slots.len() - 1).expect("slots bounded by max_len + 1")
            }
        }
    }

    /// Frees slot `i` and returns what it held.
    fn release(&mut self, i: u32) -> Queued<K> {
        self.free.push(i);
        self.slots[i as usize]
            .take()
            .expect("a queued priority points to a filled slot")
    }

    /// Queues an encoded update about `name`, replacing any older one about the same subject.
    /// Returns how many updates were dropped to respect the bound (0 or 1).
    pub(crate) fn push(&mut self, name: K, bytes: Vec<u8>) -> usize {
        if let Some(old) = self.by_name.remove(&name)
            && let Some(i) = self.by_priority.remove(&old)
        {
            self.release(i);
        }
        let key = Priority {
            transmits: 0,
            newest_first: Reverse(self.next_id),
        };
        self.next_id += 1;
        self.by_name.insert(name.clone(), key);
        let slot = self.store(Queued {
            name,
            bytes: UpdateBytes::new(bytes),
        });
        self.by_priority.insert(key, slot);
        if self.by_priority.len() > self.max_len {
            // The most transmitted (and among those the oldest) update has done the most good.
            let (_, i) = self
                .by_priority
                .pop_last()
                .expect("queue over its bound is non-empty");
            let dropped = self.release(i);
            self.by_name.remove(&dropped.name);
            return 1;
        }
        0
    }

    /// Appends updates to `out` while they fit in `budget` bytes, least transmitted first, and
    /// retires those that reach `limit` transmissions. Returns the number of updates appended.
    /// With `same_packet`, skips the updates the previous call packed (a second pass filling
    /// the same datagram).
    pub(crate) fn pack(
        &mut self,
        budget: usize,
        limit: u32,
        out: &mut Vec<u8>,
        same_packet: bool,
    ) -> usize {
        let mut left = budget;
        let mut skips = 0;
        self.picked.clear();
        if !same_packet {
            self.just_packed.clear();
        }
        for (key, &i) in &self.by_priority {
            if same_packet && self.just_packed.contains(key) {
                continue;
            }
            let len = self.slots[i as usize]
                .as_ref()
                .expect("a queued priority points to a filled slot")
                .bytes
                .as_slice()
                .len();
            if len <= left {
                left -= len;
                self.picked.push((*key, i));
                if left < 4 {
                    break;
                }
            } else {
                skips += 1;
                if skips >= MAX_SKIPS_PER_PACKET {
                    break;
                }
            }
        }
        let picked = core::mem::take(&mut self.picked);
        for &(key, i) in &picked {
            self.by_priority.remove(&key);
            let q = self.slots[i as usize]
                .as_ref()
                .expect("a picked priority points to a filled slot");
            out.extend_from_slice(q.bytes.as_slice());
            let next = Priority {
                transmits: key.transmits + 1,
                newest_first: key.newest_first,
            };
            if next.transmits >= limit {
                let q = self.release(i);
                self.by_name.remove(&q.name);
            } else {
                *self
                    .by_name
                    .get_mut(&q.name)
                    .expect("queued update is indexed by name") = next;
                self.by_priority.insert(next, i);
                self.just_packed.push(next);
            }
        }
        let n = picked.len();
        self.picked = picked;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn name(s: &str) -> NodeName {
        NodeName::new(s).unwrap()
    }

    fn queue(max: usize) -> BroadcastQueue<NodeName> {
        BroadcastQueue::new(max, foldhash::fast::FixedState::with_seed(1))
    }

    #[test]
    fn newer_update_replaces_older_about_same_member() {
        let mut q = queue(16);
        q.push(name("a"), vec![1; 5]);
        q.push(name("a"), vec![2; 5]);
        assert_eq!(q.len(), 1);
        let mut out = Vec::new();
        assert_eq!(q.pack(100, 3, &mut out, false), 1);
        assert_eq!(out, vec![2; 5]);
    }

    #[test]
    fn least_sent_first_and_retired_at_limit() {
        let mut q = queue(16);
        q.push(name("a"), vec![1; 10]);
        let mut out = Vec::new();
        q.pack(10, 2, &mut out, false); // a sent once
        q.push(name("b"), vec![2; 10]);
        out.clear();
        q.pack(10, 2, &mut out, false);
        assert_eq!(out, vec![2; 10], "b was sent fewer times, so it goes first");
        out.clear();
        q.pack(100, 2, &mut out, false);
        assert_eq!(out.len(), 20, "both sent a second time");
        assert!(q.is_empty(), "both retired at the limit");
    }

    #[test]
    fn packing_never_exceeds_budget() {
        let mut q = queue(64);
        for i in 0..50 {
            q.push(name(&alloc::format!("m{i}")), vec![0; 7 + i % 13]);
        }
        let mut out = Vec::new();
        let n = q.pack(100, 10, &mut out, false);
        assert!(out.len() <= 100 && n > 0);
    }

    #[test]
    fn queue_is_bounded() {
        let mut q = queue(16);
        let mut dropped = 0;
        for i in 0..100 {
            dropped += q.push(name(&alloc::format!("m{i}")), vec![0; 4]);
        }
        assert_eq!(q.len(), 16);
        assert_eq!(dropped, 84);
    }
}

#[cfg(test)]
mod formula_tests {
    use super::*;

    #[test]
    fn retransmit_limit_follows_log10() {
        assert_eq!(retransmit_limit(4, 1), 4);
        assert_eq!(retransmit_limit(4, 9), 4);
        assert_eq!(retransmit_limit(4, 10), 8);
        assert_eq!(retransmit_limit(4, 99), 8);
        assert_eq!(retransmit_limit(4, 1000), 16);
    }
}
