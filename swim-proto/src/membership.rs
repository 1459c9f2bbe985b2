//! The member table: every known member with its state, bounded by `Config::max_members`.

use alloc::vec::Vec;

use crate::Map;
use crate::member::{Member, MemberState};
use crate::suspicion::Suspicion;
use crate::time::Instant;

/// One member and the protocol state kept about it.
#[derive(Debug, Clone)]
pub(crate) struct Entry<A> {
    pub member: Member<A>,
    /// When `member.state` last changed (for gossip to the recently dead).
    pub changed_at: Instant,
    /// The running suspicion, present exactly when the state is `Suspect`.
    pub suspicion: Option<Suspicion>,
    /// When the tombstone is reaped, present exactly when the state is `Dead` or `Left`.
    pub reap_at: Option<Instant>,
}

/// Members in slots with a name index. Slot order is deterministic (insertion order with
/// swap-removal), so iterating it never depends on hashing.
#[derive(Debug)]
pub(crate) struct MemberTable<A> {
    entries: Vec<Entry<A>>,
    index: Map<crate::member::NodeName, usize>,
    counts: [usize; 4],
}

impl<A> MemberTable<A> {
    pub(crate) fn new(index: Map<crate::member::NodeName, usize>) -> Self {
        MemberTable {
            entries: Vec::new(),
            index,
            counts: [0; 4],
        }
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

    pub(crate) fn slot(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Entry<A>> {
        self.slot(name).map(|i| &self.entries[i])
    }

    pub(crate) fn at(&self, slot: usize) -> &Entry<A> {
        &self.entries[slot]
    }

    /// Mutable access; the state must change only through [`MemberTable::set_state`].
    pub(crate) fn at_mut(&mut self, slot: usize) -> &mut Entry<A> {
        &mut self.entries[slot]
    }

    pub(crate) fn set_state(&mut self, slot: usize, state: MemberState) {
        let e = &mut self.entries[slot];
        self.counts[usize::from(e.member.state.rank())] -= 1;
        self.counts[usize::from(state.rank())] += 1;
        e.member.state = state;
    }

    pub(crate) fn insert(&mut self, entry: Entry<A>) -> usize {
        let slot = self.entries.len();
        let prev = self.index.insert(entry.member.name.clone(), slot);
        assert!(prev.is_none(), "member table invariant: names are unique");
        self.counts[usize::from(entry.member.state.rank())] += 1;
        self.entries.push(entry);
        slot
    }

    pub(crate) fn remove(&mut self, name: &str) -> Option<Entry<A>> {
        let slot = self.index.remove(name)?;
        let entry = self.entries.swap_remove(slot);
        if let Some(moved) = self.entries.get(slot) {
            *self
                .index
                .get_mut(moved.member.name.as_str())
                .expect("moved member is indexed") = slot;
        }
        self.counts[usize::from(entry.member.state.rank())] -= 1;
        Some(entry)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry<A>> {
        self.entries.iter()
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
            suspicion: None,
            reap_at: None,
        }
    }

    #[test]
    fn counts_and_index_survive_swap_removal() {
        let mut t = MemberTable::new(Map::with_hasher(foldhash::fast::FixedState::with_seed(3)));
        t.insert(entry("a", MemberState::Alive));
        t.insert(entry("b", MemberState::Dead));
        t.insert(entry("c", MemberState::Alive));
        assert_eq!(t.active(), 2);
        t.remove("a").unwrap();
        assert_eq!(t.get("c").unwrap().member.name.as_str(), "c");
        assert_eq!(t.count(MemberState::Dead), 1);
        let slot = t.slot("c").unwrap();
        t.set_state(slot, MemberState::Suspect);
        assert_eq!(t.count(MemberState::Suspect), 1);
        assert_eq!(t.count(MemberState::Alive), 0);
        assert!(t.remove("a").is_none());
    }
}
