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
//!
//! **No amplification, bounded reflection.** A datagram's source address can be forged, so an
//! address no member is held at is unverified: a reply to it (an ack to a ping, a relayed ack
//! or nack) is bare, with no piggybacked gossip, and so never larger than the request that
//! triggered it. Replies to unverified addresses, join answers included, are limited per
//! address (`Config::unverified_reply_rate`) and in total (`unverified_reply_global_rate`),
//! token buckets in a bounded table (`max_limited_sources`); requests beyond are dropped and
//! counted (`DropReason::RateLimited`). Members' addresses are never limited: the protocol's
//! own traffic is not the node's to throttle.
//!
//! **Introductions per source.** A datagram may introduce new members (gossip), at most
//! `Config::introductions_per_source` a second from one source address (in bursts of two
//! seconds' worth), so one source cannot flood the table with names; a refused introduction is
//! counted (`DropReason::IntroductionLimited`) and a real member reaches the node again by
//! another member's gossip or by push-pull.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::{Address, Node};
use crate::io::{Event, Output};
use crate::member::{MemberState, overrides};
use crate::stats::DropReason;
use crate::time::Instant;
use crate::wire::{self, Message, Update};

/// A token bucket: `rate` tokens a second, holding at most two seconds' worth, counted in
/// thousandths of a token so slow refills are not lost to rounding.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    milli: u64,
    at: Instant,
}

impl Bucket {
    fn full(rate: u32, now: Instant) -> Self {
        Bucket {
            milli: Self::cap(rate),
            at: now,
        }
    }

    fn cap(rate: u32) -> u64 {
        u64::from(rate) * 2_000
    }

    fn refill(&mut self, rate: u32, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_nanos();
        let add = elapsed.saturating_mul(u128::from(rate)) / 1_000_000;
        self.milli = (u128::from(self.milli) + add).min(u128::from(Self::cap(rate))) as u64;
        self.at = now;
    }

    fn take(&mut self, rate: u32, now: Instant) -> bool {
        self.refill(rate, now);
        let ok = self.milli >= 1_000;
        if ok {
            self.milli -= 1_000;
        }
        ok
    }
}

/// Per-source token buckets, bounded by `Config::max_limited_sources`. Keyed by address in a
/// `BTreeMap` so eviction order is defined (determinism) without a hasher.
#[derive(Debug)]
struct SourceLimits<A> {
    buckets: BTreeMap<A, Bucket>,
}

impl<A: Address> SourceLimits<A> {
    fn new() -> Self {
        SourceLimits {
            buckets: BTreeMap::new(),
        }
    }

    /// Takes a token from `source`'s bucket. At the table's bound, sources whose bucket has
    /// refilled (they are as good as new) are forgotten first, then the lowest address.
    fn take(&mut self, source: &A, rate: u32, bound: usize, now: Instant) -> bool {
        if let Some(b) = self.buckets.get_mut(source) {
            return b.take(rate, now);
        }
        if self.buckets.len() >= bound {
            self.buckets.retain(|_, b| {
                b.refill(rate, now);
                b.milli < Bucket::cap(rate)
            });
            if self.buckets.len() >= bound {
                self.buckets.pop_first();
            }
        }
        let mut b = Bucket::full(rate, now);
        let ok = b.take(rate, now);
        self.buckets.insert(source.clone(), b);
        ok
    }
}

/// The limits a node keeps on what unverified sources can make it send, and on how many new
/// members one source can introduce.
#[derive(Debug)]
pub(super) struct Limits<A> {
    replies: SourceLimits<A>,
    replies_total: Option<Bucket>,
    introductions: SourceLimits<A>,
}

impl<A: Address> Limits<A> {
    pub(super) fn new() -> Self {
        Limits {
            replies: SourceLimits::new(),
            replies_total: None,
            introductions: SourceLimits::new(),
        }
    }

    /// Entries in the per-source tables (for the invariant check).
    pub(super) fn len(&self) -> usize {
        self.replies
            .buckets
            .len()
            .max(self.introductions.buckets.len())
    }
}

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

impl<A: Address> Node<A> {
    /// Whether this node may answer a request at `to`: always for a member's address, within
    /// the reply limits otherwise. A refused reply is counted (`DropReason::RateLimited`) and
    /// reported as a dropped packet from `to`.
    pub(super) fn may_reply(&mut self, to: &A, out: &mut Vec<Output<A>>) -> bool {
        self.members.has_addr(to) || self.within_reply_limits(to, out)
    }

    /// Takes one reply to `to` from the limits for unverified addresses (a join answer's
    /// address is checked here even when a member is held there: the join itself, or an
    /// earlier forged claim, may have put one there). A refused reply is counted.
    pub(super) fn within_reply_limits(&mut self, to: &A, out: &mut Vec<Output<A>>) -> bool {
        let (now, c) = (self.now, &self.config);
        let (rate, total_rate, bound) = (
            c.unverified_reply_rate,
            c.unverified_reply_global_rate,
            c.max_limited_sources,
        );
        let total = self
            .limits
            .replies_total
            .get_or_insert_with(|| Bucket::full(total_rate, now));
        // The global bucket is checked first so a refused source spends no global token.
        let mut probe = *total;
        let ok = probe.take(total_rate, now) && self.limits.replies.take(to, rate, bound, now);
        if ok {
            *total = probe;
        } else {
            self.drop_packet(to, DropReason::RateLimited, out);
        }
        ok
    }

    /// Sends a reply datagram: with piggybacked gossip to a member's address, bare to any
    /// other, and an ack's checksum zeroed (a varint: one byte), so the reply is never larger
    /// than the ping or ping-req it answers (no amplification) and tells a stranger nothing
    /// of the view.
    pub(super) fn send_reply(&mut self, to: A, msg: &Message<'_, A>, out: &mut Vec<Output<A>>) {
        if self.members.has_addr(&to) {
            self.send_datagram(to, msg, None, false, out);
            return;
        }
        let mut buf = Vec::with_capacity(64);
        let start = self.open_packet(&mut buf);
        if let Message::Ack { seq, .. } = *msg {
            let bare: Message<'_, A> = Message::Ack { seq, checksum: 0 };
            wire::encode_into(&bare, &mut buf);
        } else {
            wire::encode_into(msg, &mut buf);
        }
        // Wire version 2: no section flags set, so no sections follow (`wire::finish_datagram`).
        self.seal_packet(&mut buf, start);
        self.stats.sent.bump(msg.kind());
        self.stats.datagrams_sent += 1;
        self.stats.datagram_bytes_sent += buf.len() as u64;
        out.push(Output::SendDatagram { to, bytes: buf });
    }

    /// Whether `from` may introduce the member `u` names (one not held): within
    /// `Config::introductions_per_source`. A refused introduction is counted.
    pub(super) fn may_introduce(&mut self, u: &Update<'_, A>, from: &A) -> bool {
        if self.members.get(u.name()).is_some() || u.name() == self.local.name.as_str() {
            return true;
        }
        let (now, c) = (self.now, &self.config);
        let (rate, bound) = (c.introductions_per_source, c.max_limited_sources);
        let ok = self.limits.introductions.take(from, rate, bound, now);
        if !ok {
            self.stats.dropped.bump(DropReason::IntroductionLimited);
        }
        ok
    }
}

// Hearsay members (Lifeguard §IV-A's local health, issue 13): a member this node learned of
// only by gossip, and that never answered its probe, may be a forged name. Its failed probes
// and its silence as a helper say nothing about this node's own health, so they do not raise
// the health score; a flood of fake names therefore cannot stretch every timeout.
impl<A: Address> Node<A> {
    /// Whether `name` ever answered this node's probe at its held address.
    pub(super) fn is_confirmed(&self, name: &str) -> bool {
        self.members
            .slot(name)
            .is_some_and(|s| self.members.confirmed(s))
    }

    /// `name` answered a probe sent to `addr` (directly or through helpers).
    pub(super) fn confirm_member(&mut self, name: &str, addr: &A) {
        if let Some(s) = self.members.slot(name)
            && self.members.at(s).member.addr == *addr
        {
            self.members.confirm(s);
        }
    }

    /// The nacks Lifeguard §IV-A expects from `helpers`: one per confirmed helper.
    pub(super) fn expected_nacks(&self, helpers: &[usize]) -> usize {
        helpers
            .iter()
            .filter(|&&s| self.members.confirmed(s))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_two_seconds_worth_then_the_rate() {
        let mut b = Bucket::full(10, Instant::ZERO);
        let burst = (0..100).filter(|_| b.take(10, Instant::ZERO)).count();
        assert_eq!(burst, 20);
        let t = Instant::from_millis(1_000);
        let after = (0..100).filter(|_| b.take(10, t)).count();
        assert_eq!(after, 10);
    }

    #[test]
    fn source_table_stays_within_its_bound() {
        let mut t = SourceLimits::<u32>::new();
        for a in 0..1_000 {
            assert!(t.take(&a, 1, 16, Instant::ZERO));
        }
        assert!(t.buckets.len() <= 16);
    }
}
