//! Probing (SWIM §3.1, §4.3): the randomized round-robin probe order, the probe in flight, and
//! the ping-reqs this node relays for others.

use alloc::vec::Vec;
use rand_chacha::ChaCha8Rng;
use rand_core::RngCore;

use crate::member::NodeName;
use crate::time::Instant;

/// Uniform index in `0..n` from the node's seeded RNG (`n > 0`).
pub(crate) fn random_index(rng: &mut ChaCha8Rng, n: usize) -> usize {
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
pub(crate) struct ProbeOrder {
    order: Vec<u32>,
    next: usize,
}

impl ProbeOrder {
    /// The next slot in this round, or `None` at the end of the round.
    pub(crate) fn next(&mut self) -> Option<usize> {
        let slot = *self.order.get(self.next)?;
        self.next += 1;
        Some(slot as usize)
    }

    /// Starts a new round over `slots`, shuffled (Fisher–Yates).
    pub(crate) fn reset(&mut self, slots: impl Iterator<Item = usize>, rng: &mut ChaCha8Rng) {
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
    pub(crate) fn insert(&mut self, slot: usize, rng: &mut ChaCha8Rng) {
        self.order.push(slot as u32);
        let remaining = self.order.len() - self.next;
        let j = self.next + random_index(rng, remaining);
        let last = self.order.len() - 1;
        self.order.swap(j, last);
    }
}

/// The probe of the current protocol period.
#[derive(Debug, Clone)]
pub(crate) struct ProbeInFlight<A> {
    pub target: NodeName,
    pub target_addr: A,
    pub seq: u32,
    /// When helpers are asked (direct ack timeout, stretched by local health).
    pub indirect_at: Instant,
    pub indirect_sent: bool,
    pub expected_nacks: usize,
    pub nacks: usize,
}

/// A ping-req this node is relaying: its own ping's sequence number maps to this.
#[derive(Debug, Clone)]
pub(crate) struct Relay<A> {
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
    fn every_member_probed_once_per_round_including_newcomers() {
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
    fn rounds_are_shuffled_differently() {
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
