//! Safety invariants: what must hold after every step of a [`World`](crate::World) and across
//! the cluster, as one list of checks returning a typed [`Violation`].
//!
//! Per step (after a node handles one input): the node never holds itself dead, its
//! incarnation never decreases (SWIM §4.2: only the node itself refutes, by raising it), its
//! member table stays within `max_members`, every datagram fits `max_packet_size`, and every
//! tick it asks for lies after its `now`. Across the cluster: nodes stable on one view name one
//! leader, and with zero loss no healthy node is declared dead by a healthy one (Lifeguard's
//! claim). Liveness (views converge after the faults stop) is judged once, at the end of a run.

use std::fmt;
use std::time::Duration;

use swim_proto::{Instant, MemberState, Node, NodeName};

use crate::scenario::NodeId;

/// A broken invariant. The first one stops a run; `Report::violation` prints it with the seed
/// and the simulated time.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// A node holds itself dead.
    SelfDead {
        /// The node.
        node: NodeName,
    },
    /// A node's own incarnation went down.
    IncarnationDecreased {
        /// The node.
        node: NodeName,
        /// Incarnation before the step.
        from: u64,
        /// Incarnation after it.
        to: u64,
    },
    /// A node's member table holds more entries than `max_members`.
    TableOverflow {
        /// The node.
        node: NodeName,
        /// Entries in its table.
        members: usize,
    },
    /// A node sent a datagram larger than `max_packet_size`.
    OversizeDatagram {
        /// The sender.
        node: NodeName,
        /// Its size in bytes.
        bytes: usize,
    },
    /// A node asked for a tick at or before its own `now`.
    TickNotAfterNow {
        /// The node.
        node: NodeName,
        /// The tick asked for (node-local time).
        at: Instant,
        /// The node's `now` (node-local time).
        now: Instant,
    },
    /// Nodes stable on the same view name different leaders.
    LeadersDisagree {
        /// One node's leader.
        one: Option<NodeName>,
        /// Another node's.
        other: Option<NodeName>,
    },
    /// With zero loss, a healthy node declared a healthy node dead.
    HealthyDeclaredDead {
        /// The node declared dead.
        victim: NodeName,
        /// The node that declared it.
        by: NodeName,
    },
    /// Views did not converge to the live set within `bound` of the last fault.
    NotConverged {
        /// The bound the config implies.
        bound: Duration,
        /// When it expired.
        deadline: Instant,
    },
    /// A node's own `check_invariants` (or other code) panicked; the panic message.
    Panic(String),
    /// The trace file could not be written; the I/O error.
    TraceWrite(String),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::SelfDead { node } => write!(f, "{node} holds itself dead"),
            Violation::IncarnationDecreased { node, from, to } => {
                write!(f, "{node} incarnation decreased {from} -> {to}")
            }
            Violation::TableOverflow { node, members } => {
                write!(f, "{node} member table {members} above max_members")
            }
            Violation::OversizeDatagram { node, bytes } => {
                write!(f, "{node} sent a {bytes}-byte datagram")
            }
            Violation::TickNotAfterNow { node, at, now } => {
                write!(
                    f,
                    "{node} asked for a tick at {at}, not after its now {now}"
                )
            }
            Violation::LeadersDisagree { one, other } => write!(
                f,
                "nodes stable on one view name different leaders: {one:?} and {other:?}"
            ),
            Violation::HealthyDeclaredDead { victim, by } => write!(
                f,
                "with zero loss, healthy {victim} was declared dead by healthy {by}"
            ),
            Violation::NotConverged { bound, deadline } => write!(
                f,
                "liveness: views did not converge to the live set within {:.0} s of the last fault (by {deadline})",
                bound.as_secs_f64()
            ),
            Violation::Panic(msg) => write!(f, "invariant panic: {msg}"),
            Violation::TraceWrite(e) => write!(f, "trace write failed: {e}"),
        }
    }
}

/// What a node looked like after one step, for the per-step checks.
pub(crate) struct AfterStep<'a> {
    pub name: &'a NodeName,
    pub incarnation_before: u64,
    pub max_members: usize,
}

/// The per-step checks on one node, in order; every failure is pushed to `found`.
pub(crate) fn check_step(
    node: &Node<NodeId>,
    step: &AfterStep<'_>,
    found: &mut impl FnMut(Violation),
) {
    let local = node.local();
    let (inc, dead) = (local.incarnation, local.state == MemberState::Dead);
    let members: usize = [
        MemberState::Alive,
        MemberState::Suspect,
        MemberState::Dead,
        MemberState::Left,
    ]
    .iter()
    .map(|&s| node.count(s))
    .sum();
    let name = step.name;
    if dead {
        found(Violation::SelfDead { node: name.clone() });
    }
    if inc < step.incarnation_before {
        found(Violation::IncarnationDecreased {
            node: name.clone(),
            from: step.incarnation_before,
            to: inc,
        });
    }
    if members > step.max_members {
        found(Violation::TableOverflow {
            node: name.clone(),
            members,
        });
    }
}

/// Per node: the checksum of its stable view (None while unstable) and its leader, to check
/// that nodes stable on one view name one leader, and to time how long a membership change
/// takes to reach one stable view and leader everywhere.
pub(crate) struct StableViews {
    views: Vec<(Option<u64>, Option<NodeName>)>,
    /// Membership changes not yet followed by one stable view and leader everywhere.
    pending: Vec<Instant>,
    /// Change to one stable view and leader everywhere, ms.
    pub stable_view_ms: Vec<f64>,
}

impl StableViews {
    pub(crate) fn new(n: usize) -> Self {
        StableViews {
            views: vec![(None, None); n],
            pending: Vec::new(),
            stable_view_ms: Vec::new(),
        }
    }

    /// Node `v` started or stopped: it has no view yet; the truth changed at `now` (measured
    /// when `measure`).
    pub(crate) fn reset(&mut self, v: NodeId, now: Instant, measure: bool) {
        self.views[v as usize] = (None, None);
        if measure && now > Instant::ZERO {
            self.pending.push(now);
        }
    }

    pub(crate) fn set_stable(&mut self, v: NodeId, checksum: Option<u64>) {
        self.views[v as usize].0 = checksum;
    }

    pub(crate) fn set_leader(&mut self, v: NodeId, leader: Option<NodeName>) {
        self.views[v as usize].1 = leader;
    }

    /// Whether every up node reports the same stable view; if so they must name the same
    /// leader. Measures `stable_view_ms`.
    pub(crate) fn check(&mut self, now: Instant, up: &[bool]) -> Option<Violation> {
        let mut ups = self.views.iter().zip(up).filter(|(_, u)| **u);
        let Some(((Some(cs), leader), _)) = ups.next() else {
            return None;
        };
        let (cs, leader) = (*cs, leader.clone());
        let mut other_leader = None;
        for ((c, l), _) in ups {
            if *c != Some(cs) {
                return None;
            }
            if *l != leader {
                other_leader = Some(l.clone());
            }
        }
        if let Some(other) = other_leader {
            // Leaders come from the stable view's member list and ranks; a node may briefly
            // name none while its last stable leader is suspected, never another one.
            if other.is_some() && leader.is_some() {
                return Some(Violation::LeadersDisagree { one: leader, other });
            }
            return None;
        }
        if leader.is_some() {
            for since in std::mem::take(&mut self.pending) {
                self.stable_view_ms
                    .push(now.saturating_duration_since(since).as_secs_f64() * 1e3);
            }
        }
        None
    }
}
