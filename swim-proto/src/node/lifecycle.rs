//! Lifecycle controls (issue 14; `docs/protocol.md` §12.2): pausing the failure detector
//! while staying a member (the Clojure membership API's `stop-failure-detector!`).
//!
//! A paused node keeps its protocol period (view advertising still runs on it) but sends no
//! probe, so it suspects nobody; it still answers pings and ping-reqs, gossips, runs
//! push-pull and refutes claims about itself, so others keep it alive. An operator tool: a
//! node whose probes would be misleading (an overloaded host, a link under maintenance) stops
//! accusing others without leaving.

use alloc::vec::Vec;

use super::{Address, Node};
use crate::io::Output;

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
