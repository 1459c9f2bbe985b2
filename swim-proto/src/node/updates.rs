//! Membership updates (SWIM §4.2): every claim about a member, gossiped, snapshotted or raised
//! locally, is merged here by the precedence rule (`overrides`): learning new members,
//! transitions with their events and timers, and refutation of claims about this node.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::timers::Timer;
use super::{Address, Node};
use crate::io::{Event, Output};
use crate::member::{Member, MemberState, Metadata, NodeName, overrides};
use crate::membership::{Entry, Pending};
use crate::stats::DropReason;
use crate::wire::{self, Message, Update};

/// Where a claim came from: decides how far it is trusted and whether it is re-gossiped.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Source<'a, A> {
    /// Piggybacked on a datagram from `from` (whose name, if a member, is the accuser of a
    /// death claim it carries).
    Gossip { from: Option<&'a A> },
    /// A push-pull snapshot. Tombstones of members we never knew are not adopted, so snapshots
    /// cannot keep reaped members alive forever. Members new to us are re-gossiped (anti-entropy
    /// found a gap, likely shared by our neighbours) unless the snapshot is the answer to our own
    /// join: that one is news only to us, and re-gossiping it would cost every join O(n) updates.
    PushPull { join_reply: bool, sender: &'a str },
    /// A partition-healing snapshot from `sender` (from the other side of a healed split). As a
    /// push-pull, but a "dead" or "left" claim about a member we hold alive becomes a suspicion
    /// by `sender`: the member refutes with a higher incarnation if it lives, instead of being
    /// declared dead on the word of a side that could not see it.
    Heal { sender: &'a str },
    /// Raised by this node.
    Local,
}

impl<A> Clone for Source<'_, A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A> Copy for Source<'_, A> {}

impl<A: Address> Node<A> {
    pub(super) fn validate_update(&self, u: &Update<'_, A>) -> Result<(), DropReason> {
        let name_ok = |n: &str| !n.is_empty() && n.len() <= self.config.max_name_len;
        if !name_ok(u.name()) {
            return Err(DropReason::BadName);
        }
        match u {
            Update::Alive { meta, .. } if meta.len() > self.config.max_meta_len => {
                Err(DropReason::MetadataTooLarge)
            }
            Update::Suspect { accuser, .. } if !name_ok(accuser) => Err(DropReason::BadName),
            _ => Ok(()),
        }
    }

    /// Merges one claim into the table by the precedence rule, with its events, timers and
    /// re-gossip. The claim has passed [`Node::validate_update`].
    pub(super) fn apply_update(
        &mut self,
        u: &Update<'_, A>,
        source: Source<'_, A>,
        out: &mut Vec<Output<A>>,
    ) {
        if let Update::Removed { .. } = u {
            return self.apply_removal(u, source, out); // operator removal (issue 14)
        }
        if source != Source::Local {
            self.stats.updates_received += 1;
        }
        if u.name().as_bytes() == self.local.name.as_bytes() {
            self.on_claim_about_self(u, out);
            return;
        }
        let Some(slot) = self.members.slot(u.name()) else {
            self.learn_member(u, source, out);
            return;
        };
        let m = &self.members.at(slot).member;
        let held = (m.incarnation, m.state);
        if let Source::Heal { sender } = source {
            let (name, incarnation, addr) = (u.name(), u.incarnation(), u.addr().clone());
            let suspicion = Update::Suspect {
                name,
                incarnation,
                addr,
                accuser: sender,
            };
            if !u.state().is_active() && held.1.is_active() {
                // The other side could not see this member: suspect it rather than kill it.
                return self.apply_update(&suspicion, Source::Gossip { from: None }, out);
            }
            if u.state().is_active() && held.1 == MemberState::Dead && u.incarnation() == held.0 {
                // We declared it dead at the incarnation the other side still sees alive: our
                // side could not see it. Bring it back as a suspect, outside the precedence
                // order, so it refutes if it lives (and dies again if it does not). This makes
                // both ends of a heal exchange bridges to the whole other side.
                self.transition(slot, &suspicion, out);
                self.enqueue(&suspicion);
                return;
            }
        }
        let claim = (u.incarnation(), u.state());
        if let Update::Dead { name, addr, .. } = u
            && source != Source::Local
            && held.1.is_active()
            && overrides(claim, held)
        {
            return self.accuse_on_hearsay(slot, name, addr, u.incarnation(), source, out);
        }
        if overrides(claim, held) {
            self.transition(slot, u, out);
            self.enqueue(u);
        } else if claim == held
            && let Update::Suspect { accuser, .. } = u
            && self.confirm_suspicion(slot, accuser)
        {
            self.enqueue(u);
        } else {
            self.stats.updates_stale += 1;
        }
    }

    pub(super) fn learn_member(
        &mut self,
        u: &Update<'_, A>,
        source: Source<'_, A>,
        out: &mut Vec<Output<A>>,
    ) {
        self.sync.table_changes += 1;
        let state = u.state();
        if !state.is_active() && matches!(source, Source::PushPull { .. } | Source::Heal { .. }) {
            self.stats.updates_stale += 1;
            return;
        }
        if self.members.len() >= self.config.max_members && !self.evict_oldest_tombstone(out) {
            self.stats.dropped.bump(DropReason::MemberTableFull);
            return;
        }
        let name = NodeName::new(u.name()).expect("names are validated on receipt");
        let meta = match u {
            Update::Alive { meta, .. } => Metadata::from(*meta),
            _ => Metadata::empty(),
        };
        let member = Member {
            name: name.clone(),
            addr: u.addr().clone(),
            incarnation: u.incarnation(),
            state,
            meta,
        };
        let mut entry = Entry {
            member,
            changed_at: self.now,
            pending: Pending::None,
        };
        match u {
            Update::Alive { .. } => {
                out.push(Output::Event(Event::MemberJoined(entry.member.clone())))
            }
            Update::Suspect { accuser, .. } => {
                let s = self.new_suspicion(u.incarnation(), accuser);
                self.timers.push(s.deadline, Timer::Suspicion(name.clone()));
                entry.pending = Pending::Suspicion(Box::new(s));
                out.push(Output::Event(Event::MemberJoined(entry.member.clone())));
                let accuser = NodeName::new(accuser).expect("validated");
                out.push(Output::Event(Event::MemberSuspected {
                    member: entry.member.clone(),
                    accuser,
                }));
            }
            _ => {
                let at = self.now + self.config.tombstone_retention;
                entry.pending = Pending::Reap(at);
                self.timers.push(at, Timer::Reap(name.clone()));
            }
        }
        let slot = self.members.insert(entry);
        if state.is_active() {
            self.probing.order.insert(slot, &mut self.rng);
        }
        if !matches!(
            source,
            Source::PushPull {
                join_reply: true,
                ..
            }
        ) {
            self.enqueue(u);
        }
    }

    pub(super) fn transition(&mut self, slot: usize, u: &Update<'_, A>, out: &mut Vec<Output<A>>) {
        self.sync.table_changes += 1;
        let now = self.now;
        let new_state = u.state();
        let mut changed = self.members.at(slot).member.addr != *u.addr();
        self.members.set_addr(slot, u.addr().clone()); // keeps the address index (issue 13)
        let e = self.members.at_mut(slot);
        let old_state = e.member.state;
        if let Update::Alive { meta, .. } = u
            && *meta != e.member.meta.as_bytes()
        {
            e.member.meta = Metadata::from(*meta);
            changed = true;
        }
        self.stats
            .timings
            .on_transition(old_state, new_state, e.changed_at, now);
        if old_state != new_state {
            e.changed_at = now;
        }
        e.pending = Pending::None;
        let name = e.member.name.clone();
        self.members.set_state(slot, new_state, u.incarnation());
        let revived = !old_state.is_active() && new_state.is_active();
        if revived {
            self.probing.order.insert(slot, &mut self.rng);
        }
        let event = match u {
            Update::Alive { .. } => match old_state {
                MemberState::Suspect => {
                    self.stats.suspicions_refuted += 1;
                    Some(Event::MemberAlive(self.members.at(slot).member.clone()))
                }
                MemberState::Alive if changed => {
                    Some(Event::MemberUpdated(self.members.at(slot).member.clone()))
                }
                MemberState::Alive => None,
                _ => Some(Event::MemberJoined(self.members.at(slot).member.clone())),
            },
            Update::Suspect { accuser, .. } => {
                let s = self.new_suspicion(u.incarnation(), accuser);
                self.timers.push(s.deadline, Timer::Suspicion(name));
                self.members.at_mut(slot).pending = Pending::Suspicion(Box::new(s));
                if revived {
                    out.push(Output::Event(Event::MemberJoined(
                        self.members.at(slot).member.clone(),
                    )));
                }
                let accuser = NodeName::new(accuser).expect("validated");
                Some(Event::MemberSuspected {
                    member: self.members.at(slot).member.clone(),
                    accuser,
                })
            }
            Update::Dead { .. } | Update::Left { .. } | Update::Removed { .. } => {
                let at = now + self.config.tombstone_retention;
                self.members.at_mut(slot).pending = Pending::Reap(at);
                self.timers.push(at, Timer::Reap(name));
                let m = self.members.at(slot).member.clone();
                let ev = if new_state == MemberState::Left {
                    Some(Event::MemberLeft(m.clone()))
                } else if old_state != MemberState::Dead {
                    self.remember_failed(m.name.clone(), m.addr.clone());
                    Some(Event::MemberFailed(m.clone()))
                } else {
                    None
                };
                if old_state.is_active() {
                    if let Some(ev) = ev {
                        out.push(Output::Event(ev));
                    }
                    self.on_origin_down(&m.name, new_state == MemberState::Left, out);
                    return;
                }
                ev
            }
        };
        if let Some(ev) = event {
            out.push(Output::Event(ev));
        }
    }

    /// SWIM §4.2: a node that hears itself suspected (or declared dead, or sees a claim from a
    /// previous life of its name) refutes by taking a higher incarnation and gossiping alive.
    pub(super) fn on_claim_about_self(&mut self, u: &Update<'_, A>, out: &mut Vec<Output<A>>) {
        if self.local.state == MemberState::Left {
            return; // we are leaving; there is nothing to defend
        }
        let mine = self.local.incarnation;
        let stale = match u {
            Update::Alive {
                incarnation,
                addr,
                meta,
                ..
            } => {
                *incarnation < mine
                    || (*incarnation == mine
                        && *addr == self.local.addr
                        && *meta == self.local.meta.as_bytes())
            }
            _ => u.incarnation() < mine,
        };
        if stale {
            self.stats.updates_stale += 1;
            return;
        }
        if let Update::Suspect {
            accuser,
            incarnation,
            ..
        } = u
        {
            let accuser = NodeName::new(accuser).expect("validated");
            out.push(Output::Event(Event::LocalSuspected {
                accuser,
                incarnation: *incarnation,
            }));
        }
        if u.state() != MemberState::Alive {
            self.health.apply(1);
        }
        self.local.incarnation = u.incarnation().max(mine).saturating_add(1);
        self.stats.local_refutations += 1;
        out.push(Output::Event(Event::LocalRefuted {
            claim: u.state(),
            incarnation: self.local.incarnation,
        }));
        self.announce_self();
        if !u.state().is_active() {
            self.restamp_after_false_death(out);
        }
    }

    /// A death claim heard from another node about a member this node holds active is an
    /// accusation, not a verdict (Lifeguard §IV-B; memberlist does the same for push-pull): it
    /// starts a suspicion at the claimed incarnation, or confirms ours with the sender as an
    /// independent accuser, and only this node's own suspicion timer declares the member dead.
    /// A member that is reachable again (the claim crossed a healed partition, or came from a
    /// node that just restarted) refutes before the timer fires: the suspect hears of the
    /// suspicion at once (a direct datagram carrying it, Lifeguard's buddy system).
    /// "Left" claims stay immediate: only the member itself can send them.
    fn accuse_on_hearsay(
        &mut self,
        slot: usize,
        name: &str,
        addr: &A,
        incarnation: u64,
        source: Source<'_, A>,
        out: &mut Vec<Output<A>>,
    ) {
        self.stats.hearsay_deaths += 1;
        let accuser: NodeName = match source {
            Source::PushPull { sender, .. } | Source::Heal { sender } => {
                NodeName::new(sender).expect("validated")
            }
            Source::Gossip { from: Some(from) } => self
                .members
                .iter()
                .find(|e| e.member.addr == *from)
                .map_or_else(|| self.local.name.clone(), |e| e.member.name.clone()),
            _ => self.local.name.clone(),
        };
        let suspicion = Update::Suspect {
            name,
            incarnation,
            addr: addr.clone(),
            accuser: accuser.as_str(),
        };
        let held = self.members.at(slot).member.incarnation;
        if self.members.at(slot).member.state == MemberState::Suspect && held == incarnation {
            self.confirm_suspicion(slot, accuser.as_str());
            return;
        }
        self.transition(slot, &suspicion, out);
        self.enqueue(&suspicion);
        let mut buddy = Vec::new();
        wire::encode_into(&suspicion, &mut buddy);
        self.send_datagram(addr.clone(), &Message::Gossip, Some(&buddy), false, out);
    }

    /// The claim this node holds about the member in `slot`, as an update.
    pub(super) fn update_for(&self, slot: usize) -> Update<'_, A> {
        let e = self.members.at(slot);
        let (name, incarnation, addr) = (
            e.member.name.as_str(),
            e.member.incarnation,
            e.member.addr.clone(),
        );
        match e.member.state {
            MemberState::Alive => Update::Alive {
                name,
                incarnation,
                addr,
                meta: e.member.meta.as_bytes(),
            },
            MemberState::Suspect => {
                let accuser = e
                    .suspicion()
                    .map_or(self.local.name.as_str(), |s| s.accuser().as_str());
                Update::Suspect {
                    name,
                    incarnation,
                    addr,
                    accuser,
                }
            }
            MemberState::Dead => Update::Dead {
                name,
                incarnation,
                addr,
            },
            MemberState::Left if self.is_removed(name, incarnation) => Update::Removed {
                name,
                incarnation,
                addr,
            },
            MemberState::Left => Update::Left {
                name,
                incarnation,
                addr,
            },
        }
    }

    /// This node's own claim about itself: alive, or left.
    pub(super) fn self_update(&self) -> Update<'_, A> {
        let l = &self.local;
        if l.state == MemberState::Left {
            Update::Left {
                name: l.name.as_str(),
                incarnation: l.incarnation,
                addr: l.addr.clone(),
            }
        } else {
            Update::Alive {
                name: l.name.as_str(),
                incarnation: l.incarnation,
                addr: l.addr.clone(),
                meta: l.meta.as_bytes(),
            }
        }
    }
}
