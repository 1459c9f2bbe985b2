//! Lifecycle (issue 14; `docs/protocol.md` §12.2, §12.4): the node's [`Status`] and readiness
//! (the Clojure membership API's `running?`, ringpop's `ready`), and pausing the failure
//! detector while staying a member (`stop-failure-detector!`).
//!
//! The status is derived from the node's state at the end of every input, in one place
//! ([`Node::report_status`]), and each change is reported once as
//! [`Event::StatusChanged`](crate::Event::StatusChanged).
//!
//! A paused node keeps its protocol period (view advertising still runs on it) but sends no
//! probe, so it suspects nobody; it still answers pings and ping-reqs, gossips, runs
//! push-pull and refutes claims about itself, so others keep it alive. An operator tool: a
//! node whose probes would be misleading (an overloaded host, a link under maintenance) stops
//! accusing others without leaving.

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use super::{Address, Node};
use crate::io::{Event, Output};
use crate::member::MemberState;

/// Where a node is in its life (the Clojure membership API's `start!`/`stop!`/`running?`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Status {
    /// Created and not yet given an input, or a join gave up
    /// ([`Event::JoinFailed`](crate::Event::JoinFailed)); the node is in no cluster but its own.
    Starting,
    /// A [`Command::Join`](crate::Command::Join) is contacting its seeds.
    Joining,
    /// A member: joined, or started as a cluster's first member (no join asked).
    Running,
    /// [`Command::Leave`](crate::Command::Leave) given; the departure is being gossiped.
    Leaving,
    /// Left (the departure is out, [`Event::LeaveComplete`](crate::Event::LeaveComplete)) or
    /// removed by an operator; only an explicit rejoin after a removal brings it back.
    Stopped,
}

impl Status {
    /// `starting`, `joining`, `running`, `leaving` or `stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Joining => "joining",
            Status::Running => "running",
            Status::Leaving => "leaving",
            Status::Stopped => "stopped",
        }
    }
}

/// The lifecycle fields of a node.
#[derive(Debug)]
pub(super) struct Lifecycle {
    /// The status last reported.
    pub(super) status: Status,
    /// A join was ever asked of this node.
    pub(super) join_requested: bool,
    /// The last join gave up after `join.max_duration`.
    pub(super) join_failed: bool,
    /// A join answer (a push-pull snapshot) has been merged.
    pub(super) merged: bool,
}

impl Lifecycle {
    pub(super) fn new() -> Self {
        Lifecycle {
            status: Status::Starting,
            join_requested: false,
            join_failed: false,
            merged: false,
        }
    }
}

impl<A: Address> Node<A> {
    /// [`Command::PauseFailureDetector`](crate::Command::PauseFailureDetector): drops the
    /// probe in flight (it raises no suspicion) and probes nobody until resumed. Idempotent.
    pub(super) fn pause_failure_detector(&mut self, _out: &mut Vec<Output<A>>) {
        self.fd_paused = true;
        self.take_probe();
    }

    /// [`Command::ResumeFailureDetector`](crate::Command::ResumeFailureDetector): probing
    /// resumes at the next protocol period. Idempotent.
    pub(super) fn resume_failure_detector(&mut self) {
        self.fd_paused = false;
    }

    /// Whether the failure detector is paused (the node probes nobody, but answers).
    pub fn failure_detector_paused(&self) -> bool {
        self.fd_paused
    }
}

impl<A: Address> Node<A> {
    /// The node's [`Status`].
    pub fn status(&self) -> Status {
        self.lifecycle.status
    }

    /// Ready to serve (ringpop's `ready`): running, and, if it was asked to join, its join
    /// answered and that snapshot merged. A cluster's first member is ready once started.
    pub fn ready(&self) -> bool {
        self.lifecycle.status == Status::Running
            && (!self.lifecycle.join_requested || self.lifecycle.merged)
    }

    /// The status the node's state says it is in.
    fn derive_status(&self) -> Status {
        if !self.started {
            Status::Starting
        } else if self.local.state == MemberState::Left {
            if self.leave_reported || self.removals.local {
                Status::Stopped
            } else {
                Status::Leaving
            }
        } else if self.sync.join_pending {
            Status::Joining
        } else if self.lifecycle.join_failed {
            Status::Starting
        } else {
            Status::Running
        }
    }

    /// Reports a status change (end of every input).
    pub(super) fn report_status(&mut self, out: &mut Vec<Output<A>>) {
        let to = self.derive_status();
        let from = self.lifecycle.status;
        if to != from {
            self.lifecycle.status = to;
            out.push(Output::Event(Event::StatusChanged { from, to }));
        }
    }
}
