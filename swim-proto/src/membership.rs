//! The member table: every known member with its state, bounded by `Config::max_members`.
//!
//! Compact by design, since a simulator holds n² entries: 72 bytes per entry with the
//! address type `u32` (names up to 22 bytes inline, metadata one thin pointer and unallocated
//! when empty, the rare suspicion boxed), plus a 4-byte slot and a control byte in the name
//! index, and the same again in the address index.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::hash::{BuildHasher, Hash};

use foldhash::fast::FixedState;
use hashbrown::HashTable;

use crate::member::{Member, MemberState};
use crate::node::suspicion::Suspicion;
use crate::time::Instant;

/// The deadline attached to a member, which depends on its state.
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    /// Alive: nothing pending.
    None,
    /// Suspect: declared dead when the suspicion times out.
    Suspicion(Box<Suspicion>),
    /// Dead or left: the tombstone is reaped at this instant.
    Reap(Instant),
}

/// One member and the protocol state kept about it.
#[derive(Debug, Clone)]
pub(crate) struct Entry<A> {
    pub member: Member<A>,
    /// When `member.state` last changed (for gossip to the recently dead).
    pub changed_at: Instant,
    /// Suspicion for suspects, reap deadline for tombstones.
    pub pending: Pending,
}

impl<A> Entry<A> {
    pub(crate) fn suspicion(&self) -> Option<&Suspicion> {
        match &self.pending {
            Pending::Suspicion(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn suspicion_mut(&mut self) -> Option<&mut Suspicion> {
        match &mut self.pending {
            Pending::Suspicion(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn reap_at(&self) -> Option<Instant> {
        match self.pending {
            Pending::Reap(t) => Some(t),
            _ => None,
        }
    }
}

/// Members in slots with a name index. Slot order is deterministic (insertion order with
/// swap-removal), so iterating it never depends on hashing.
#[derive(Debug)]
pub(crate) struct MemberTable<A> {
    entries: Vec<Entry<A>>,
    /// Slots, hashed by the name of the entry they point to.
    index: HashTable<u32>,
    /// Slots, hashed by the address of the entry they point to (several members may share
    /// one: a dead process and its successor). Answers "is this address a member's?" in O(1)
    /// for the reply limits of `node/admission.rs`.
    by_addr: HashTable<u32>,
    /// Per slot: whether the member ever answered a probe of this node at its address (a
    /// direct or relayed ack). Members known only by hearsay do not count against local
    /// health (`node/admission.rs`). Kept beside the entries (one byte each) so `Entry`
    /// stays 72 bytes.
    confirmed: Vec<bool>,
    hasher: FixedState,
    counts: [usize; 4],
    /// Sum of [`view_hash`] over the active members: the table's share of the membership
    /// checksum, kept up to date on every change.
    view_sum: u64,
}

/// One member's contribution to the membership checksum (ringpop's checksum of sorted names,
/// incarnations and states, made order-independent as a sum of per-member hashes so it updates
/// in O(1)). The same function on every node: FNV-1a over the name, then a SplitMix finalizer
/// over (hash, incarnation, state).
pub(crate) fn view_hash(name: &[u8], incarnation: u64, state: MemberState) -> u64 {
    let h = crate::hash::fnv1a64(name);
    let mut z = h ^ incarnation.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(state.rank());
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn contribution<A>(m: &Member<A>) -> u64 {
    if m.state.is_active() {
        view_hash(m.name.as_bytes(), m.incarnation, m.state)
    } else {
        0
    }
}

impl<A: Eq + Hash> MemberTable<A> {
    pub(crate) fn new(hasher: FixedState) -> Self {
        MemberTable {
            entries: Vec::new(),
            index: HashTable::new(),
            by_addr: HashTable::new(),
            confirmed: Vec::new(),
            hasher,
            counts: [0; 4],
            view_sum: 0,
        }
    }

    /// The table's share of the membership checksum (active members only).
    pub(crate) fn view_sum(&self) -> u64 {
        self.view_sum
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Members in a given state.
    pub(crate) fn count(&self, state: MemberState) -> usize {
        self.counts[usize::from(state.rank())]
    }

    /// Alive plus suspect members (this node excluded).
    pub(crate) fn active(&self) -> usize {
        self.count(MemberState::Alive) + self.count(MemberState::Suspect)
    }

    /// Names are hashed and compared as bytes: no UTF-8 re-validation on the hot path.
    #[inline]
    pub(crate) fn slot(&self, name: &str) -> Option<usize> {
        let name = name.as_bytes();
        let hash = self.hasher.hash_one(name);
        let entries = &self.entries;
        self.index
            .find(hash, |&s| {
                entries[s as usize].member.name.as_bytes() == name
            })
            .map(|&s| s as usize)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Entry<A>> {
        self.slot(name).map(|i| &self.entries[i])
    }

    pub(crate) fn at(&self, slot: usize) -> &Entry<A> {
        &self.entries[slot]
    }

    /// Whether some member (in any state) is held at `addr`.
    pub(crate) fn has_addr(&self, addr: &A) -> bool {
        let entries = &self.entries;
        self.by_addr
            .find(self.hasher.hash_one(addr), |&s| {
                entries[s as usize].member.addr == *addr
            })
            .is_some()
    }

    /// Moves a member to another address, keeping the address index; the new address is
    /// not confirmed yet.
    pub(crate) fn set_addr(&mut self, slot: usize, addr: A) {
        if self.entries[slot].member.addr == addr {
            return;
        }
        self.unindex_addr(slot, slot);
        self.entries[slot].member.addr = addr;
        self.index_addr(slot);
        self.confirmed[slot] = false;
    }

    /// Whether the member in `slot` ever answered this node's probe at its address.
    pub(crate) fn confirmed(&self, slot: usize) -> bool {
        self.confirmed[slot]
    }

    /// The member in `slot` answered this node's probe (a direct or relayed ack).
    pub(crate) fn confirm(&mut self, slot: usize) {
        self.confirmed[slot] = true;
    }

    fn index_addr(&mut self, slot: usize) {
        let hash = self.hasher.hash_one(&self.entries[slot].member.addr);
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.by_addr.insert_unique(hash, slot as u32, |&s| {
            hasher.hash_one(&entries[s as usize].member.addr)
        });
    }

    /// Removes the address index entry pointing at `slot`, found by the address of the entry
    /// now at `at` (the same slot, or where a swap-removal put it).
    fn unindex_addr(&mut self, at: usize, slot: usize) {
        let hash = self.hasher.hash_one(&self.entries[at].member.addr);
        self.by_addr
            .find_entry(hash, |&s| s as usize == slot)
            .expect("member table invariant: every slot is in the address index")
            .remove();
    }

    /// Mutable access; state and incarnation change only through [`MemberTable::set_state`],
    /// the address only through [`MemberTable::set_addr`].
    pub(crate) fn at_mut(&mut self, slot: usize) -> &mut Entry<A> {
        &mut self.entries[slot]
    }

    /// Changes a member's state and incarnation, keeping the counts and the checksum.
    pub(crate) fn set_state(&mut self, slot: usize, state: MemberState, incarnation: u64) {
        let e = &mut self.entries[slot];
        self.view_sum = self.view_sum.wrapping_sub(contribution(&e.member));
        self.counts[usize::from(e.member.state.rank())] -= 1;
        self.counts[usize::from(state.rank())] += 1;
        e.member.state = state;
        e.member.incarnation = incarnation;
        self.view_sum = self.view_sum.wrapping_add(contribution(&e.member));
    }

    pub(crate) fn insert(&mut self, entry: Entry<A>) -> usize {
        debug_assert!(
            self.slot(entry.member.name.as_str()).is_none(),
            "member table invariant: names are unique (callers look up before inserting)"
        );
        let slot = self.entries.len();
        let hash = self.hasher.hash_one(entry.member.name.as_bytes());
        self.counts[usize::from(entry.member.state.rank())] += 1;
        self.view_sum = self.view_sum.wrapping_add(contribution(&entry.member));
        self.entries.push(entry);
        self.confirmed.push(false);
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index.insert_unique(hash, slot as u32, |&s| {
            hasher.hash_one(entries[s as usize].member.name.as_bytes())
        });
        self.index_addr(slot);
        slot
    }

    pub(crate) fn remove(&mut self, name: &str) -> Option<Entry<A>> {
        let slot = self.slot(name)?;
        let hash = self.hasher.hash_one(name.as_bytes());
        self.index
            .find_entry(hash, |&s| s as usize == slot)
            .expect("indexed slot is found by its own name")
            .remove();
        self.unindex_addr(slot, slot);
        let entry = self.entries.swap_remove(slot);
        self.confirmed.swap_remove(slot);
        if let Some(moved) = self.entries.get(slot) {
            let old = self.entries.len() as u32;
            let hash = self.hasher.hash_one(moved.member.name.as_bytes());
            *self
                .index
                .find_mut(hash, |&s| s == old)
                .expect("moved member is indexed") = slot as u32;
            let hash = self.hasher.hash_one(&moved.member.addr);
            *self
                .by_addr
                .find_mut(hash, |&s| s == old)
                .expect("moved member is in the address index") = slot as u32;
        }
        self.counts[usize::from(entry.member.state.rank())] -= 1;
        self.view_sum = self.view_sum.wrapping_sub(contribution(&entry.member));
        Some(entry)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry<A>> {
        self.entries.iter()
    }

    /// Gives back memory after a bulk merge grew the table by doubling: keeps at most 1/16 spare.
    pub(crate) fn trim(&mut self) {
        let len = self.entries.len();
        if self.entries.capacity() > len + len / 16 + 16 {
            self.entries.shrink_to(len + len / 32);
            self.confirmed.shrink_to(len + len / 32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::{Metadata, NodeName};

    fn entry(name: &str, state: MemberState) -> Entry<u32> {
        Entry {
            member: Member {
                name: NodeName::new(name).unwrap(),
                addr: 1,
                incarnation: 0,
                state,
                meta: Metadata::empty(),
            },
            changed_at: Instant::ZERO,
            pending: Pending::None,
        }
    }

    #[test]
    fn counts_and_index_survive_swap_removal() {
        let mut t = MemberTable::new(FixedState::with_seed(3));
        t.insert(entry("a", MemberState::Alive));
        t.insert(entry("b", MemberState::Dead));
        t.insert(entry("c", MemberState::Alive));
        assert_eq!(t.active(), 2);
        t.remove("a").unwrap();
        assert_eq!(t.get("c").unwrap().member.name.as_str(), "c");
        assert_eq!(t.get("b").unwrap().member.name.as_str(), "b");
        assert_eq!(t.count(MemberState::Dead), 1);
        let slot = t.slot("c").unwrap();
        t.set_state(slot, MemberState::Suspect, 0);
        assert_eq!(t.count(MemberState::Suspect), 1);
        assert_eq!(t.count(MemberState::Alive), 0);
        assert!(t.remove("a").is_none());
    }

    #[test]
    fn many_inserts_and_removes_keep_the_index_exact() {
        let mut t = MemberTable::new(FixedState::with_seed(9));
        for i in 0..500 {
            t.insert(entry(&alloc::format!("m{i}"), MemberState::Alive));
        }
        for i in (0..500).step_by(3) {
            assert!(t.remove(&alloc::format!("m{i}")).is_some());
        }
        for i in 0..500 {
            let present = t.get(&alloc::format!("m{i}")).is_some();
            assert_eq!(present, i % 3 != 0, "m{i}");
        }
        t.trim();
        assert_eq!(t.len(), 333);
    }

    #[test]
    fn address_index_follows_inserts_moves_and_removals() {
        let mut t = MemberTable::new(FixedState::with_seed(5));
        for i in 0..50u32 {
            let mut e = entry(&alloc::format!("m{i}"), MemberState::Alive);
            e.member.addr = i;
            t.insert(e);
        }
        for i in (0..50u32).step_by(2) {
            t.remove(&alloc::format!("m{i}")).unwrap();
        }
        let slot = t.slot("m1").unwrap();
        t.set_addr(slot, 1_000);
        for i in 0..50u32 {
            assert_eq!(t.has_addr(&i), i % 2 == 1 && i != 1, "address {i}");
        }
        assert!(t.has_addr(&1_000));
        t.remove("m1").unwrap();
        assert!(!t.has_addr(&1_000));
    }

    #[test]
    fn entries_are_compact() {
        assert!(
            core::mem::size_of::<Entry<u32>>() <= 72,
            "{}",
            core::mem::size_of::<Entry<u32>>()
        );
    }
}
