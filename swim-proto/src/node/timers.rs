//! Time and timers: every deadline the node keeps, in one [`TimerTable`], and the loop that
//! fires what is due.
//!
//! The periodic timers (SWIM §4.3 protocol period and its indirect-probe timeout, §4.1 gossip,
//! push-pull, join retries, partition healing, state anti-entropy and tombstone collection)
//! each have one slot keyed by [`TimerKind`]; the deadlines that exist in numbers (one per
//! suspicion, tombstone, relayed probe and orphaned state origin) sit in a sorted queue. The
//! earliest deadline is computed in one place, [`TimerTable::earliest`], as quinn-proto keeps
//! its connection timers. Ties fire in [`TimerKind`] order, then queued timers in their own
//! order: that order is part of the node's determinism and must not change.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::time::Duration;

use rand_core::RngCore;

use super::{Address, Node};
use crate::io::Output;
use crate::member::NodeName;
use crate::state::TypeName;
use crate::time::Instant;

/// The periodic timers, one slot each. Declaration order is the firing order among timers due
/// at the same instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TimerKind {
    /// End of the protocol period: judge the probe in flight, probe the next member (SWIM §4.3).
    Probe,
    /// No direct ack in time: send ping-reqs (SWIM §4.3). Set only while a probe awaits it.
    Indirect,
    /// Gossip round (SWIM §4.1); unset while nothing is queued.
    Gossip,
    /// Periodic push-pull anti-entropy round.
    PushPull,
    /// Partition-healing round.
    Heal,
    /// Join retry, or re-contact of the seeds by a node without live members.
    Join,
    /// State anti-entropy round (`docs/protocol.md` §10).
    Sync,
    /// Collection of state tombstones (`docs/protocol.md` §10).
    Collect,
    // issue 12 (heal): set only while a member declared dead is remembered.
    /// Partition-healing probe: ping a member held failed, heal on its answer.
    HealProbe,
}

impl TimerKind {
    const ALL: [TimerKind; 9] = [
        TimerKind::Probe,
        TimerKind::Indirect,
        TimerKind::Gossip,
        TimerKind::PushPull,
        TimerKind::Heal,
        TimerKind::Join,
        TimerKind::Sync,
        TimerKind::Collect,
        TimerKind::HealProbe,
    ];
}

/// Deadlines that exist in numbers: one per suspicion, tombstone and relayed probe.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// A suspicion's deadline (SWIM §4.2, Lifeguard §IV-B).
    Suspicion(NodeName),
    /// A tombstone's removal.
    Reap(NodeName),
    /// A relayed probe's nack deadline (Lifeguard §IV-A).
    Relay(u32),
    /// Orphaned entries of a failed origin expire (state §10.7).
    Expire(NodeName, TypeName),
    // Application messaging (issue 14).
    /// The deadline of this node's query with this Lamport time (`docs/protocol.md` §12.3).
    Query(u64),
    // State abuse resistance (issue 13).
    /// Check whether a state origin is a member, else expire its entries
    /// (`StateConfig::non_member_ttl`).
    NonMember(NodeName),
}

/// What is due first: a periodic timer or the head of the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Due {
    Periodic(TimerKind),
    Queued,
}

/// Every deadline of a node. `Instant::MAX` means "never" and is stored as unset. The queue
/// holds one entry per live suspicion, tombstone, relay and orphaned origin, each bounded by
/// its own table (`max_members`, `max_pending_relays`, the state store's bounds); a stale entry
/// (superseded deadline) is popped and ignored by its handler.
#[derive(Debug, Default)]
pub(super) struct TimerTable {
    periodic: [Option<Instant>; TimerKind::ALL.len()],
    queue: BTreeSet<(Instant, Timer)>,
}

impl TimerTable {
    /// The deadline of `kind`, if set.
    pub(super) fn get(&self, kind: TimerKind) -> Option<Instant> {
        self.periodic[kind as usize]
    }

    /// Sets (or with `None` or `Instant::MAX`, clears) the deadline of `kind`.
    pub(super) fn set(&mut self, kind: TimerKind, at: impl Into<Option<Instant>>) {
        self.periodic[kind as usize] = at.into().filter(|&t| t != Instant::MAX);
    }

    /// Clears the deadline of `kind`.
    pub(super) fn clear(&mut self, kind: TimerKind) {
        self.periodic[kind as usize] = None;
    }

    /// Queues a deadline that exists in numbers.
    pub(super) fn push(&mut self, at: Instant, timer: Timer) {
        self.queue.insert((at, timer));
    }

    /// The queued deadlines, earliest first.
    pub(super) fn queued(&self) -> impl Iterator<Item = &(Instant, Timer)> {
        self.queue.iter()
    }

    /// The earliest deadline (`Instant::MAX` if none) and what it is. Ties go to the first
    /// [`TimerKind`], and to the queue last.
    #[inline]
    fn earliest(&self) -> (Instant, Due) {
        let mut best = (Instant::MAX, Due::Periodic(TimerKind::Probe));
        for kind in TimerKind::ALL {
            if let Some(t) = self.get(kind)
                && t < best.0
            {
                best = (t, Due::Periodic(kind));
            }
        }
        if let Some((t, _)) = self.queue.first()
            && *t < best.0
        {
            best = (*t, Due::Queued);
        }
        best
    }
}

impl<A: Address> Node<A> {
    pub(super) fn advance(&mut self, now: Instant, out: &mut Vec<Output<A>>) {
        if now > self.now {
            self.now = now;
        }
        if !self.started {
            self.start_timers();
        }
        self.fire_due(out);
    }

    /// Schedules the periodic timers, each at a random offset within its period so nodes
    /// started together do not probe and gossip in lockstep.
    fn start_timers(&mut self) {
        self.started = true;
        let now = self.now;
        let probe = now + self.jitter(self.config.probe_interval);
        self.timers.set(TimerKind::Probe, probe);
        let gossip = now + self.jitter(self.config.gossip_interval);
        self.timers.set(TimerKind::Gossip, gossip);
        if !self.config.push_pull_interval.is_zero() {
            let t = now + self.jitter(self.config.push_pull_interval);
            self.timers.set(TimerKind::PushPull, t);
        }
        if !self.config.heal_interval.is_zero() {
            let t = now + self.jitter(self.config.heal_interval);
            self.timers.set(TimerKind::Heal, t);
        }
        if !self.config.state.sync_interval.is_zero() {
            let t = now + self.jitter(self.config.state.sync_interval);
            self.timers.set(TimerKind::Sync, t);
        }
    }

    /// A random delay in `(0, period]` from the node's RNG.
    pub(super) fn jitter(&mut self, period: Duration) -> Duration {
        let nanos = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX).max(1);
        Duration::from_nanos(1 + self.rng.next_u64() % nanos)
    }

    /// The earliest deadline of any timer (`Instant::MAX` if none).
    pub(super) fn earliest_deadline(&self) -> Instant {
        self.timers.earliest().0
    }

    /// Fires every deadline at or before `now`, earliest first. Each handler moves its own
    /// deadline past `now`, so the loop ends.
    pub(super) fn fire_due(&mut self, out: &mut Vec<Output<A>>) {
        loop {
            let (at, due) = self.timers.earliest();
            // `Instant::MAX` means "never": deadlines saturate there, and firing them at a `now`
            // of `MAX` would re-arm them at `MAX` forever.
            if at > self.now || at == Instant::MAX {
                return;
            }
            match due {
                Due::Periodic(TimerKind::Probe) => self.on_probe_period(out),
                Due::Periodic(TimerKind::Indirect) => self.on_direct_timeout(out),
                Due::Periodic(TimerKind::Gossip) => self.on_gossip_round(out),
                Due::Periodic(TimerKind::PushPull) => self.on_push_pull_round(out),
                Due::Periodic(TimerKind::Join) => self.on_join_round(out),
                Due::Periodic(TimerKind::Heal) => self.on_heal_round(out),
                Due::Periodic(TimerKind::Sync) => self.on_sync_round(out),
                Due::Periodic(TimerKind::Collect) => self.on_collect(),
                Due::Periodic(TimerKind::HealProbe) => self.on_heal_probe(out),
                Due::Queued => {
                    let (_, timer) = self
                        .timers
                        .queue
                        .pop_first()
                        .expect("earliest queued timer exists");
                    match timer {
                        Timer::Suspicion(name) => self.on_suspicion_timeout(&name, out),
                        Timer::Reap(name) => self.on_reap(&name, out),
                        Timer::Relay(seq) => self.on_relay_timeout(seq, out),
                        Timer::Expire(origin, ty) => self.on_expire(&origin, &ty, out),
                        Timer::Query(ltime) => self.on_query_deadline(ltime, out),
                        Timer::NonMember(origin) => self.on_non_member_check(&origin, out),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ties fire in `TimerKind` order, then the queue: the order today's digests depend on.
    #[test]
    fn earliest_breaks_ties_by_kind_then_queue() {
        let mut t = TimerTable::default();
        assert_eq!(t.earliest().0, Instant::MAX);
        let at = Instant::from_secs(1);
        t.push(at, Timer::Relay(1));
        assert_eq!(t.earliest(), (at, Due::Queued));
        t.set(TimerKind::Collect, at);
        assert_eq!(t.earliest(), (at, Due::Periodic(TimerKind::Collect)));
        t.set(TimerKind::Gossip, at);
        t.set(TimerKind::Heal, at);
        assert_eq!(t.earliest(), (at, Due::Periodic(TimerKind::Gossip)));
        t.set(TimerKind::Probe, Instant::from_millis(1500));
        assert_eq!(t.earliest(), (at, Due::Periodic(TimerKind::Gossip)));
        t.set(TimerKind::Gossip, Instant::MAX);
        assert_eq!(t.get(TimerKind::Gossip), None, "MAX means never");
        assert_eq!(t.earliest(), (at, Due::Periodic(TimerKind::Heal)));
    }
}
