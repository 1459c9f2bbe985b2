//! Dissemination: the queue of membership updates piggybacked on outgoing packets (SWIM §4.1).
//!
//! Each update is encoded once and copied into packets, least-transmitted first (newest first
//! among equals), until it has been sent `λ·⌈log10(n+1)⌉` times. A newer update about the same
//! member replaces the older one. Queueing, selecting and retiring an update each cost
//! O(log q) for a queue of q updates: no scan or sort of the queue per packet. The same queue
//! type, keyed by (type, key), carries replicated state entries.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::borrow::Borrow;
use core::cmp::Reverse;
use core::hash::Hash;

use crate::Map;
use crate::member::NodeName;

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
    bytes: Vec<u8>,
}

/// Bounded queue of encoded updates, one per subject at most (a member's name, or a state
/// entry's type and key).
#[derive(Debug)]
pub(crate) struct BroadcastQueue<K = NodeName> {
    by_priority: BTreeMap<Priority, Queued<K>>,
    by_name: Map<K, Priority>,
    next_id: u64,
    max_len: usize,
    picked: Vec<Priority>,
    /// Where the updates packed by the last `pack` call now sit, so a second call for the same
    /// packet does not repeat them.
    just_packed: Vec<Priority>,
}

impl<K: Clone + Eq + Hash> BroadcastQueue<K> {
    pub(crate) fn new(max_len: usize, hasher: foldhash::fast::FixedState) -> Self {
        BroadcastQueue {
            by_priority: BTreeMap::new(),
            by_name: Map::with_hasher(hasher),
            next_id: 0,
            max_len,
            picked: Vec::new(),
            just_packed: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_priority.len()
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

    /// Queues an encoded update about `name`, replacing any older one about the same subject.
    /// Returns how many updates were dropped to respect the bound (0 or 1).
    pub(crate) fn push(&mut self, name: K, bytes: Vec<u8>) -> usize {
        if let Some(old) = self.by_name.remove(&name) {
            self.by_priority.remove(&old);
        }
        let key = Priority {
            transmits: 0,
            newest_first: Reverse(self.next_id),
        };
        self.next_id += 1;
        self.by_name.insert(name.clone(), key);
        self.by_priority.insert(key, Queued { name, bytes });
        if self.by_priority.len() > self.max_len {
            // The most transmitted (and among those the oldest) update has done the most good.
            let (_, dropped) = self
                .by_priority
                .pop_last()
                .expect("queue over its bound is non-empty");
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
        for (key, q) in &self.by_priority {
            if same_packet && self.just_packed.contains(key) {
                continue;
            }
            if q.bytes.len() <= left {
                left -= q.bytes.len();
                self.picked.push(*key);
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
        for key in &self.picked {
            let q = self.by_priority.remove(key).expect("picked key is queued");
            out.extend_from_slice(&q.bytes);
            let next = Priority {
                transmits: key.transmits + 1,
                newest_first: key.newest_first,
            };
            if next.transmits >= limit {
                self.by_name.remove(&q.name);
            } else {
                *self
                    .by_name
                    .get_mut(&q.name)
                    .expect("queued update is indexed by name") = next;
                self.by_priority.insert(next, q);
                self.just_packed.push(next);
            }
        }
        self.picked.len()
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
