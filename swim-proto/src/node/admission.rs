//! Admission (`docs/security.md`): the checks a membership claim from the network passes
//! before the precedence rule of SWIM §4.2 (`node/updates.rs`) sees it.
//!
//! SWIM trusts every claim: one forged packet about member X at incarnation `u64::MAX` makes
//! X dead for good (nothing can out-refute it), and an alive claim naming another address
//! moves X's traffic there. Two rules close that, per claim (the rest of the packet is kept):
//!
//! - **Incarnation window.** Only X raises X's incarnation, one step per refutation, so a claim
//!   more than `Config::max_incarnation_jump` above the incarnation held is refused, unless
//!   it arrives in a datagram from X's held address. For a member not held, and for this node's
//!   own previous life (a restarted node starts at 0), `Config::incarnation_ceiling` stands in
//!   for the held incarnation. A claim about this node within the window is refuted as usual,
//!   so an attacker moves a node's incarnation by at most the window per forged round.
//! - **No address change while alive.** A claim that puts a member held alive or suspect at
//!   another address (and would override the claim held: stale ones stay merely stale) is
//!   refused and reported as [`Event::Conflict`]; the address changes once
//!   the member is held dead or gone (memberlist's rule). A process restarted at a new address
//!   is thus accepted once its previous life is declared dead. A suspect, dead or left claim
//!   naming another address is merged at the held address instead.
//!
//! Replies go where requests came from (`node/receive.rs` asks [`Node::holds_at`]): a ping-req
//! is relayed only to a member held at the address named, and a push-pull or healing request
//! is answered at its `sender_addr` only if that is the stream's source or the held address of
//! the member the request names. A join is answered regardless (a joiner is unknown by nature).

use alloc::vec::Vec;

use super::{Address, Node};
use crate::io::{Event, Output};
use crate::member::{MemberState, overrides};
use crate::stats::DropReason;
use crate::wire::Update;

impl<A: Address> Node<A> {
    /// Whether a claim received from the network may be merged. `direct_from` is the source
    /// address of a datagram (`None` for a stream, whose source is a connection's). A refused
    /// claim is counted in `Stats::dropped` (and a conflict reported); nothing else changes.
    pub(super) fn admit_update<'a>(
        &mut self,
        u: &Update<'a, A>,
        direct_from: Option<&A>,
        out: &mut Vec<Output<A>>,
    ) -> Option<Update<'a, A>> {
        match self.check_claim(u, direct_from) {
            Ok(()) => Some(u.clone()),
            // A suspect, dead or left claim is about the member, not its address: it is merged
            // at the address held (only an alive claim may move a member).
            Err(DropReason::AddressConflict) if u.state() != MemberState::Alive => {
                let held = self.members.get(u.name()).map(|e| e.member.addr.clone())?;
                let mut u = u.clone();
                match &mut u {
                    Update::Suspect { addr, .. }
                    | Update::Dead { addr, .. }
                    | Update::Left { addr, .. }
                    | Update::Removed { addr, .. }
                    | Update::Alive { addr, .. } => *addr = held,
                }
                Some(u)
            }
            Err(reason) => {
                if reason == DropReason::AddressConflict
                    && let Some(e) = self.members.get(u.name())
                {
                    out.push(Output::Event(Event::Conflict {
                        member: e.member.clone(),
                        claimed_addr: u.addr().clone(),
                    }));
                }
                self.stats.dropped.bump(reason);
                None
            }
        }
    }

    /// Whether `name` is held (in any state) at `addr`: the address is a member's, learned
    /// from the member itself or from gossip it did not contradict.
    pub(super) fn holds_at(&self, name: &str, addr: &A) -> bool {
        self.members
            .get(name)
            .is_some_and(|e| e.member.addr == *addr)
    }

    fn check_claim(&self, u: &Update<'_, A>, direct_from: Option<&A>) -> Result<(), DropReason> {
        let jump = self.config.max_incarnation_jump;
        let ceiling = self.config.incarnation_ceiling;
        if u.name().as_bytes() == self.local.name.as_bytes() {
            let limit = self.local.incarnation.max(ceiling).saturating_add(jump);
            return if u.incarnation() > limit {
                Err(DropReason::IncarnationJump)
            } else {
                Ok(())
            };
        }
        let Some(e) = self.members.get(u.name()) else {
            let introduces_itself = direct_from == Some(u.addr());
            return if !introduces_itself && u.incarnation() > ceiling.saturating_add(jump) {
                Err(DropReason::IncarnationJump)
            } else {
                Ok(())
            };
        };
        let held = &e.member;
        let would_override =
            overrides((u.incarnation(), u.state()), (held.incarnation, held.state));
        if held.state.is_active() && *u.addr() != held.addr && would_override {
            return Err(DropReason::AddressConflict);
        }
        let from_member = direct_from == Some(&held.addr);
        if !from_member && u.incarnation() > held.incarnation.saturating_add(jump) {
            return Err(DropReason::IncarnationJump);
        }
        Ok(())
    }
}
