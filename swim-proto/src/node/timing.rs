//! Protocol timings (ringpop's ProtocolStats; `docs/protocol.md` §14): probe round trips
//! (SWIM §3.1, direct and through ping-req helpers), the protocol period actually achieved
//! (SWIM §4.3, stretched by Lifeguard §IV-A local health) and how long suspicions last before
//! a refutation or a death (SWIM §4.2), recorded into [`Stats::timings`](crate::Stats).
//!
//! Statistics only: nothing here draws from the RNG, sets a timer or emits an output, so
//! recording changes no digest. The other rooms call in with one-line hooks.

use core::time::Duration;

use super::probe::ProbeInFlight;
use super::{Address, Node};
use crate::member::MemberState;
use crate::stats::Timings;
use crate::time::Instant;

/// What the node remembers to time its probes and periods (two instants; no table).
#[derive(Debug, Default)]
pub(super) struct TimingState {
    /// The sequence number and send time of the current period's direct ping.
    probe_sent: Option<(u32, Instant)>,
    /// When the last protocol period started.
    last_period: Option<Instant>,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl<A: Address> Node<A> {
    /// A protocol period starts: records the time since the previous one.
    pub(super) fn timing_period(&mut self) {
        let now = self.now;
        if let Some(last) = self.timing.last_period.replace(now) {
            self.stats
                .timings
                .protocol_period
                .record(nanos(now.saturating_duration_since(last)));
        }
    }

    /// The period's direct ping `seq` went out now.
    pub(super) fn timing_probe_sent(&mut self, seq: u32) {
        self.timing.probe_sent = Some((seq, self.now));
    }

    /// The probe `p` was answered by an ack from `from`: direct when the target itself
    /// answered (before or after helpers were asked), indirect when a helper relayed it.
    pub(super) fn timing_probe_acked(&mut self, from: &A, p: &ProbeInFlight<A>) {
        let Some((seq, sent)) = self.timing.probe_sent.take() else {
            return;
        };
        if seq != p.seq {
            return;
        }
        let rtt = nanos(self.now.saturating_duration_since(sent));
        let t = &mut self.stats.timings;
        if !p.indirect_sent || *from == p.target_addr {
            t.probe_rtt_direct.record(rtt);
        } else {
            t.probe_rtt_indirect.record(rtt);
        }
    }
}

impl Timings {
    /// A member's state changes from `old` to `new` at `now`, having held `old` since
    /// `since`: a suspicion that ends in a refutation or a death is recorded.
    pub(crate) fn on_transition(
        &mut self,
        old: MemberState,
        new: MemberState,
        since: Instant,
        now: Instant,
    ) {
        if old != MemberState::Suspect {
            return;
        }
        let d = nanos(now.saturating_duration_since(since));
        match new {
            MemberState::Alive => self.suspicion_refuted.record(d),
            MemberState::Dead => self.suspicion_dead.record(d),
            _ => {}
        }
    }
}
