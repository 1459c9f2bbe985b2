//! Suspicion (SWIM §4.2, Lifeguard §IV-B): a member that missed a probe is suspected before it
//! is declared dead, and Lifeguard's dynamic timeout shrinks as independent accusers confirm;
//! tombstones of dead and departed members are reaped after `tombstone_retention`.
//!
//! The fixed-point logarithm behind every scaling formula lives here too (gossip's retransmit
//! limit and push-pull's interval use it). All formulas use integer fixed-point
//! logarithms so every platform computes the same deadlines from the same inputs (no
//! floating-point libm in the core).

use alloc::vec::Vec;
use core::time::Duration;

use super::timers::Timer;
use super::{Address, Node, Source};
use crate::io::{Event, Output};
use crate::member::NodeName;
use crate::time::Instant;
use crate::wire::Update;

impl<A: Address> Node<A> {
    pub(super) fn new_suspicion(&mut self, incarnation: u64, accuser: &str) -> Suspicion {
        let (min, max, wanted) = self.suspicion_bounds();
        let accuser = NodeName::new(accuser).expect("accuser names are validated on receipt");
        Suspicion::new(incarnation, accuser, self.now, min, max, wanted)
    }

    /// The suspicion timeout's bounds and the confirmations wanted for this node's current
    /// view of the cluster size (Lifeguard §IV-B).
    fn suspicion_bounds(&self) -> (Duration, Duration, u32) {
        let n = self.members.active() + 1;
        let min = min_suspicion_timeout(self.config.suspicion_mult, n, self.config.probe_interval);
        let max = min.saturating_mul(self.config.suspicion_max_timeout_mult);
        let k = self.config.suspicion_mult.saturating_sub(2);
        let wanted = if n.saturating_sub(2) < k as usize {
            0
        } else {
            k
        };
        (min, max, wanted)
    }

    pub(super) fn on_suspicion_timeout(&mut self, name: &NodeName, out: &mut Vec<Output<A>>) {
        let Some(e) = self.members.get(name.as_str()) else {
            return;
        };
        let Some(s) = e.suspicion() else { return };
        if s.deadline > self.now {
            return; // superseded by a later suspicion at a higher incarnation
        }
        // A suspicion sized while this node knew few members (a restarted node hears gossip
        // before its join snapshot arrives) is re-sized for the cluster it knows now, so its
        // early verdicts do not race ahead of every other node's.
        let (min, max, wanted) = self.suspicion_bounds();
        let slot = self.members.slot(name.as_str()).expect("member exists");
        if let Some(s) = self.members.at_mut(slot).suspicion_mut()
            && s.grow(min, max, wanted)
            && s.deadline > self.now
        {
            let deadline = s.deadline;
            self.timers.push(deadline, Timer::Suspicion(name.clone()));
            return;
        }
        let e = self.members.at(slot);
        let (inc, addr) = (e.member.incarnation, e.member.addr.clone());
        self.stats.deaths_declared += 1;
        self.apply_update(
            &Update::Dead {
                name: name.as_str(),
                incarnation: inc,
                addr,
            },
            Source::Local,
            out,
        );
    }

    pub(super) fn on_reap(&mut self, name: &NodeName, out: &mut Vec<Output<A>>) {
        let Some(e) = self.members.get(name.as_str()) else {
            return;
        };
        if e.reap_at().is_none_or(|t| t > self.now) {
            return;
        }
        let e = self
            .members
            .remove(name.as_str())
            .expect("reaped member exists");
        out.push(Output::Event(Event::MemberRemoved(e.member)));
    }

    /// Makes room at the member table's cap by reaping the tombstone due soonest.
    pub(super) fn evict_oldest_tombstone(&mut self, out: &mut Vec<Output<A>>) -> bool {
        let victim = self.timers.queued().find_map(|(t, timer)| match timer {
            Timer::Reap(n) => {
                let e = self.members.get(n.as_str())?;
                (e.reap_at() == Some(*t)).then(|| n.clone())
            }
            _ => None,
        });
        let Some(name) = victim else { return false };
        let e = self.members.remove(name.as_str()).expect("victim exists");
        out.push(Output::Event(Event::MemberRemoved(e.member)));
        true
    }

    /// Lifeguard §IV-B: an independent accuser confirms; the timeout shrinks.
    pub(super) fn confirm_suspicion(&mut self, slot: usize, accuser: &str) -> bool {
        let e = self.members.at_mut(slot);
        let Some(s) = e.suspicion_mut() else {
            return false;
        };
        if !s.confirm(accuser) {
            return false;
        }
        let (deadline, name) = (s.deadline, e.member.name.clone());
        self.timers.push(deadline, Timer::Suspicion(name));
        true
    }
}

/// log2(x) in Q16 fixed point (16 fractional bits), for x >= 1.
pub(super) fn log2_q16(x: u64) -> u64 {
    let x = x.max(1);
    let int = 63 - u64::from(x.leading_zeros());
    // Mantissa in [1, 2) as Q32; each squaring yields one more fractional bit.
    let mut m: u128 = (u128::from(x) << 32) >> int;
    let mut frac = 0u64;
    for bit in (0..16).rev() {
        m = (m * m) >> 32;
        if m >= (2u128 << 32) {
            m >>= 1;
            frac |= 1 << bit;
        }
    }
    (int << 16) | frac
}

fn scale(d: Duration, q16: u128) -> Duration {
    let nanos = d.as_nanos().saturating_mul(q16) >> 16;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Minimum suspicion timeout: `mult · max(1, log10 n) · probe_interval` (SWIM §4.2 with
/// memberlist's log scaling; Lifeguard §IV-B uses it as the floor).
pub(crate) fn min_suspicion_timeout(mult: u32, n: usize, probe_interval: Duration) -> Duration {
    let log10_q16 = (u128::from(log2_q16(n as u64)) << 16) / u128::from(log2_q16(10));
    let node_scale = log10_q16.max(1 << 16);
    scale(probe_interval, node_scale * u128::from(mult))
}

/// One suspicion about one member at one incarnation (Lifeguard §IV-B).
///
/// The timeout starts at `max` and falls toward `min` as independent accusers confirm it:
/// `timeout(c) = max(min, max − (max − min) · log(c + 1) / log(k + 1))` for `c` confirmations
/// out of `k` wanted. Confirmations make a true failure declared sooner; a lone, possibly
/// unhealthy accuser has to wait the longest.
#[derive(Clone, Debug)]
pub(crate) struct Suspicion {
    /// Incarnation the suspicion is about; a refutation carries a higher one.
    pub incarnation: u64,
    started: Instant,
    min: Duration,
    max: Duration,
    wanted: u32,
    /// The first accuser, then each distinct confirmer, at most `wanted + 1` names.
    accusers: Vec<NodeName>,
    /// When the member is declared dead unless refuted.
    pub deadline: Instant,
}

impl Suspicion {
    pub(crate) fn new(
        incarnation: u64,
        accuser: NodeName,
        started: Instant,
        min: Duration,
        max: Duration,
        wanted: u32,
    ) -> Self {
        let mut s = Suspicion {
            incarnation,
            started,
            min,
            max: max.max(min),
            wanted,
            accusers: alloc::vec![accuser],
            deadline: started,
        };
        s.deadline = started + s.timeout();
        s
    }

    /// Independent confirmations received so far (the first accuser excluded).
    pub(crate) fn confirmations(&self) -> u32 {
        (self.accusers.len() - 1) as u32
    }

    /// The first accuser.
    pub(crate) fn accuser(&self) -> &NodeName {
        &self.accusers[0]
    }

    fn timeout(&self) -> Duration {
        let c = self.confirmations();
        if self.wanted == 0 || c >= self.wanted {
            return self.min;
        }
        let frac = (u128::from(log2_q16(u64::from(c) + 1)) << 16)
            / u128::from(log2_q16(u64::from(self.wanted) + 1));
        let span = self.max - self.min;
        self.max - scale(span, frac).min(span)
    }

    /// Re-sizes the suspicion for a much larger cluster: if `min` exceeds the current minimum
    /// by more than a quarter, the bounds and wanted confirmations are replaced and the
    /// deadline recomputed from the start (smaller growth, from ordinary joins, changes
    /// nothing). Returns whether anything changed. Bounds never shrink.
    pub(crate) fn grow(&mut self, min: Duration, max: Duration, wanted: u32) -> bool {
        if min <= self.min + self.min / 4 {
            return false;
        }
        self.min = min;
        self.max = max.max(min);
        self.wanted = wanted;
        self.accusers.truncate(wanted as usize + 1);
        self.deadline = self.started + self.timeout();
        true
    }

    /// Records a confirmation from `accuser`. Returns true if it was new and independent, in
    /// which case `deadline` may have moved earlier.
    pub(crate) fn confirm(&mut self, accuser: &str) -> bool {
        if self.confirmations() >= self.wanted
            || self
                .accusers
                .iter()
                .any(|a| a.as_bytes() == accuser.as_bytes())
        {
            return false;
        }
        let Ok(name) = NodeName::new(accuser) else {
            return false;
        };
        self.accusers.push(name);
        self.deadline = self.started + self.timeout();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_fixed_point_is_accurate() {
        for (x, want) in [
            (1u64, 0.0f64),
            (2, 1.0),
            (3, 1.58496),
            (10, core::f64::consts::LOG2_10),
            (1000, 9.96578),
        ] {
            let got = log2_q16(x) as f64 / 65536.0;
            assert!((got - want).abs() < 1e-3, "log2({x}) = {got}, want {want}");
        }
    }

    #[test]
    fn min_timeout_scales_with_log10_n() {
        let i = Duration::from_secs(1);
        assert_eq!(min_suspicion_timeout(4, 1, i), Duration::from_secs(4));
        assert_eq!(min_suspicion_timeout(4, 10, i), Duration::from_secs(4));
        let t = min_suspicion_timeout(4, 1000, i).as_secs_f64();
        assert!((t - 12.0).abs() < 0.01, "{t}");
    }

    /// Lifeguard §IV-B: each independent confirmation shrinks the timeout toward the minimum.
    #[test]
    fn confirmations_shrink_the_timeout() {
        let n = |s: &str| NodeName::new(s).unwrap();
        let (min, max) = (Duration::from_secs(4), Duration::from_secs(24));
        let mut s = Suspicion::new(1, n("a"), Instant::ZERO, min, max, 2);
        assert_eq!(s.deadline, Instant::from_secs(24));
        assert!(!s.confirm("a"), "the first accuser does not confirm itself");
        assert!(s.confirm("b"));
        let mid = s.deadline;
        assert!(
            mid < Instant::from_secs(24) && mid > Instant::from_secs(4),
            "{mid}"
        );
        assert!(!s.confirm("b"), "a repeated confirmer is not independent");
        assert!(s.confirm("c"));
        assert_eq!(s.deadline, Instant::from_secs(4));
        assert!(!s.confirm("d"), "no more than k confirmations are tracked");
    }

    /// A suspicion sized for a tiny cluster grows with the cluster learned later (issue 12:
    /// a restarted node must not declare members dead on a 4 s timeout in a 1,000-node cluster).
    #[test]
    fn suspicion_grows_with_the_cluster_and_never_shrinks() {
        let i = Duration::from_secs(1);
        let small = min_suspicion_timeout(4, 10, i);
        let mut s = Suspicion::new(
            0,
            NodeName::new("a").unwrap(),
            Instant::ZERO,
            small,
            small,
            0,
        );
        assert_eq!(s.deadline, Instant::from_secs(4));
        let big = min_suspicion_timeout(4, 1000, i);
        assert!(s.grow(big, big * 6, 2));
        assert_eq!(
            s.deadline,
            Instant::ZERO + big * 6,
            "no confirmations yet: the maximum"
        );
        assert!(!s.grow(small, small, 0), "bounds never shrink");
        assert!(s.confirm("b") && s.confirm("c"));
        assert_eq!(s.deadline, Instant::ZERO + big);
    }

    #[test]
    fn no_confirmations_wanted_means_minimum() {
        let s = Suspicion::new(
            0,
            NodeName::new("a").unwrap(),
            Instant::ZERO,
            Duration::from_secs(4),
            Duration::from_secs(24),
            0,
        );
        assert_eq!(s.deadline, Instant::from_secs(4));
    }
}
