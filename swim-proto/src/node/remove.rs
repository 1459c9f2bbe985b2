//! Operator removal (Serf's force-leave, Partisan's `leave(Node)`;
//! `docs/protocol.md` §12.1): [`Command::Remove`](crate::Command::Remove) marks another member left
//! cluster-wide at its current incarnation.
//!
//! The removal travels as [`Update::Removed`]: merged by the SWIM §4.2 precedence rule exactly
//! as a leave (state `left`, same rank), so the member leaves every probe order and its
//! tombstone is reaped after `tombstone_retention`. What differs from a leave is the removed
//! member itself: a node that hears a leave it never announced refutes it (SWIM §4.2), but a
//! node that hears its own removal accepts it, holds itself left and stops probing, and comes
//! back only when the application gives it [`Command::Join`](crate::Command::Join) again,
//! which rejoins with a higher incarnation. Tombstones of removed members are gossiped and
//! snapshotted as removals (not plain leaves), so a removed node learns the same thing
//! whichever way the news reaches it.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::timers::TimerKind;
use super::updates::Source;
use super::{Address, Node};
use crate::io::{CommandError, Event, Output};
use crate::member::{MemberState, NodeName};
use crate::wire::Update;

/// Removed members and whether this node itself was removed.
#[derive(Debug, Default)]
pub(super) struct Removals {
    /// Members held removed, with the incarnation they were removed at. Bounded by
    /// `Config::max_members`: entries whose member is no longer held left at that incarnation
    /// (reaped, or rejoined higher) are pruned whenever the map outgrows the member table.
    removed: BTreeMap<NodeName, u64>,
    /// This node was removed and has not rejoined since.
    pub(super) local: bool,
}

impl<A: Address> Node<A> {
    /// [`Command::Remove`](crate::Command::Remove): the member is marked left at its current
    /// incarnation here and the removal queued for gossip. Errors change nothing.
    pub(super) fn remove_member(
        &mut self,
        name: &str,
        out: &mut Vec<Output<A>>,
    ) -> Result<(), CommandError> {
        if name == self.local.name.as_str() {
            return Err(CommandError::RemoveSelf);
        }
        let Some(e) = self.members.get(name) else {
            return Err(CommandError::UnknownMember { name: name.into() });
        };
        let (name, incarnation, addr) = (
            e.member.name.clone(),
            e.member.incarnation,
            e.member.addr.clone(),
        );
        let u = Update::Removed {
            name: name.as_str(),
            incarnation,
            addr,
        };
        self.apply_update(&u, Source::Local, out);
        // A member already left at this incarnation is not re-transitioned by the precedence
        // rule (nothing was queued); the removal is gossiped anyway so the member learns it.
        self.enqueue(&u);
        Ok(())
    }

    /// Merges a removal claim (`Update::Removed`, dispatched here by `apply_update`). About
    /// this node: [`Node::on_removed_self`]. About another member: merged as a leave at the
    /// same incarnation, and remembered as a removal if the table then holds it so.
    pub(super) fn apply_removal(
        &mut self,
        u: &Update<'_, A>,
        source: Source<'_, A>,
        out: &mut Vec<Output<A>>,
    ) {
        let (name, incarnation) = (u.name(), u.incarnation());
        if name.as_bytes() == self.local.name.as_bytes() {
            if source != Source::Local {
                self.stats.updates_received += 1;
            }
            self.on_removed_self(incarnation, out);
            return;
        }
        let left = Update::Left {
            name,
            incarnation,
            addr: u.addr().clone(),
        };
        let key = NodeName::new(name).expect("names are validated on receipt");
        // Recorded first, so the leave re-gossiped by the merge goes out as a removal.
        let before = self.removals.removed.insert(key.clone(), incarnation);
        self.apply_update(&left, source, out);
        let held = self.members.get(name).is_some_and(|e| {
            e.member.state == MemberState::Left && e.member.incarnation == incarnation
        });
        if !held {
            match before {
                Some(b) => self.removals.removed.insert(key, b),
                None => self.removals.removed.remove(&key),
            };
        }
        if self.removals.removed.len() > self.config.max_members {
            let members = &self.members;
            self.removals.removed.retain(|n, inc| {
                members.get(n.as_str()).is_some_and(|e| {
                    e.member.state == MemberState::Left && e.member.incarnation == *inc
                })
            });
        }
    }

    /// A leave claim as this node gossips it: a removal if the member was removed at that
    /// incarnation, the claim itself otherwise.
    pub(super) fn as_removal<'a>(&self, u: &Update<'a, A>) -> Option<Update<'a, A>> {
        match u {
            Update::Left {
                name,
                incarnation,
                addr,
            } if self.is_removed(name, *incarnation) => Some(Update::Removed {
                name,
                incarnation: *incarnation,
                addr: addr.clone(),
            }),
            _ => None,
        }
    }

    /// Whether the member `name`, held left at `incarnation`, was removed by an operator.
    pub(super) fn is_removed(&self, name: &str, incarnation: u64) -> bool {
        self.removals.removed.get(name) == Some(&incarnation)
    }

    /// A removal of this node at an incarnation not older than ours: accept it, hold
    /// ourselves left and stop probing until an explicit rejoin.
    pub(super) fn on_removed_self(&mut self, incarnation: u64, out: &mut Vec<Output<A>>) {
        if self.local.state == MemberState::Left {
            return; // left or removed already
        }
        if incarnation < self.local.incarnation {
            self.stats.updates_stale += 1;
            return;
        }
        self.local.state = MemberState::Left;
        self.removals.local = true;
        self.take_probe();
        self.timers.clear(TimerKind::Probe);
        self.timers.clear(TimerKind::Join);
        self.timers.clear(TimerKind::PushPull);
        self.sync.join_pending = false;
        out.push(Output::Event(Event::LocalRemoved { incarnation }));
    }

    /// Before an explicit [`Command::Join`](crate::Command::Join) on a removed node: alive
    /// again with an incarnation above the removed one, probing and push-pull rescheduled from
    /// `now`. The join itself then announces us to the seeds.
    pub(super) fn rejoin_after_removal(&mut self) {
        self.removals.local = false;
        self.leave_reported = false;
        self.local.state = MemberState::Alive;
        self.local.incarnation = self.local.incarnation.saturating_add(1);
        let now = self.now;
        let probe = now + self.jitter(self.config.probe_interval);
        self.timers.set(TimerKind::Probe, probe);
        if !self.config.push_pull_interval.is_zero() {
            let t = now + self.jitter(self.config.push_pull_interval);
            self.timers.set(TimerKind::PushPull, t);
        }
        self.announce_self();
    }
}
