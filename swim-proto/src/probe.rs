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
#[derive(Debug, Default)]
pub(crate) struct ProbeOrder {
    order: Vec<NodeName>,
    next: usize,
}

impl ProbeOrder {
    /// The next name in this round, or `None` at the end of the round.
    pub(crate) fn next(&mut self) -> Option<NodeName> {
        let name = self.order.get(self.next)?.clone();
        self.next += 1;
        Some(name)
    }

    /// Starts a new round over `names`, shuffled (Fisher–Yates).
    pub(crate) fn reset(&mut self, names: impl Iterator<Item = NodeName>, rng: &mut ChaCha8Rng) {
        self.order.clear();
        self.order.extend(names);
        for i in (1..self.order.len()).rev() {
            let j = random_index(rng, i + 1);
            self.order.swap(i, j);
        }
        self.next = 0;
    }

    /// Adds a member at a random position among those still to be probed this round, in O(1).
    pub(crate) fn insert(&mut self, name: NodeName, rng: &mut ChaCha8Rng) {
        self.order.push(name);
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

    fn names(n: usize) -> Vec<NodeName> {
        (0..n)
            .map(|i| NodeName::new(&alloc::format!("n{i}")).unwrap())
            .collect()
    }

    /// SWIM §4.3: within a round every member is probed exactly once, even when members join
    /// mid-round.
    #[test]
    fn every_member_probed_once_per_round_including_newcomers() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut order = ProbeOrder::default();
        let all = names(20);
        order.reset(all[..10].iter().cloned(), &mut rng);
        let mut seen = Vec::new();
        for i in 0..5 {
            seen.push(order.next().unwrap());
            order.insert(all[10 + i].clone(), &mut rng);
        }
        for n in &all[15..] {
            order.insert(n.clone(), &mut rng);
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
            order.reset(names(30).into_iter(), &mut rng);
            let mut round = Vec::new();
            while let Some(n) = order.next() {
                round.push(n);
            }
            rounds.push(round);
        }
        assert_ne!(rounds[0], rounds[1]);
    }
}
