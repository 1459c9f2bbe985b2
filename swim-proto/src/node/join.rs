//! Joining a cluster: a join push-pull to the seeds, retried with bounded exponential backoff
//! (`join_retry_initial` up to `join_retry_max`) until one answers, then up to
//! [`MAX_JOIN_SYNC_ROUNDS`] early push-pull rounds to learn of members that joined
//! concurrently (`docs/protocol.md` §4.7, §6.5). The snapshots themselves are `node/sync.rs`.
//!
//! Join options (ringpop's `BootstrapOptions`, [`JoinConfig`](crate::config::JoinConfig),
//! `docs/protocol.md` §12.4): a join completes once `size` seeds answered (or every seed was
//! tried and one answered); with `parallelism`, seeds are contacted that many at a time, the
//! next batch after `attempt_timeout`; past `max_duration` without an answer the join gives
//! up with [`Event::JoinFailed`]. The defaults contact every seed at once and complete on the
//! first answer, as before the options existed.

use alloc::vec::Vec;

use super::gossip::retransmit_limit;
use super::timers::TimerKind;
use super::{Address, Node};
use crate::io::{CommandError, Event, JoinFailure, Output};
use crate::member::{MemberState, NodeName};
use crate::time::Instant;

/// Follow-up push-pull rounds after a join, at most (each only if the previous one taught the
/// node something).
pub(super) const MAX_JOIN_SYNC_ROUNDS: u8 = 5;

/// The join in progress (or the last one): when it began, who answered, where the batches are.
#[derive(Debug)]
pub(super) struct JoinRun<A> {
    /// When the `Join` command came.
    started: Instant,
    /// `Stats::join_attempts` then, to count this join's own attempts.
    attempts_before: u64,
    /// Seeds that answered, by the address they answered from, with their names (at most the
    /// seed count, itself at most `max_members`).
    answered: Vec<(A, Option<NodeName>)>,
    /// Next seed to contact in batched mode (`parallelism` > 0).
    cursor: usize,
    /// Complete passes over the seeds in batched mode.
    passes: u32,
}

impl<A> JoinRun<A> {
    pub(super) fn new() -> Self {
        JoinRun {
            started: Instant::ZERO,
            attempts_before: 0,
            answered: Vec::new(),
            cursor: 0,
            passes: 0,
        }
    }
}

impl<A: Address> Node<A> {
    /// [`Command::Join`](crate::Command::Join): contacts every seed (deduplicated, without
    /// this node's own address) now, then retries until one answers.
    pub(super) fn join(
        &mut self,
        seeds: Vec<A>,
        out: &mut Vec<Output<A>>,
    ) -> Result<(), CommandError> {
        if seeds.len() > self.config.max_members {
            return Err(CommandError::TooManySeeds {
                given: seeds.len(),
                max: self.config.max_members,
            });
        }
        let mut unique: Vec<A> = Vec::with_capacity(seeds.len());
        for s in seeds {
            if s != self.local.addr && !unique.contains(&s) {
                unique.push(s);
            }
        }
        if unique.is_empty() {
            return Err(CommandError::NoSeeds);
        }
        self.sync.seeds = unique;
        self.sync.join_pending = true;
        self.sync.join_backoff = self.config.join_retry_initial;
        self.join_run = JoinRun {
            started: self.now,
            attempts_before: self.stats.join_attempts,
            answered: Vec::new(),
            cursor: 0,
            passes: 0,
        };
        self.lifecycle.join_requested = true;
        self.lifecycle.join_failed = false;
        self.contact_join_batch(out);
        Ok(())
    }

    /// Whether seeds are contacted in batches (`join.parallelism` below the seed count).
    fn join_batched(&self) -> bool {
        let p = self.config.join.parallelism;
        p != 0 && p < self.sync.seeds.len()
    }

    /// One join attempt: every seed at once (the default), or the next `parallelism` seeds
    /// that have not answered, then the next attempt after `attempt_timeout` (after a whole
    /// pass, after the backoff). The retry never falls after the `max_duration` deadline.
    fn contact_join_batch(&mut self, out: &mut Vec<Output<A>>) {
        if !self.join_batched() {
            self.contact_seeds_backing_off(out);
        } else {
            self.stats.join_attempts += 1;
            let n = self.sync.seeds.len();
            let mut sent = 0;
            while sent < self.config.join.parallelism && self.join_run.cursor < n {
                let seed = self.sync.seeds[self.join_run.cursor].clone();
                self.join_run.cursor += 1;
                if self.join_run.answered.iter().any(|(a, _)| *a == seed) {
                    continue;
                }
                self.send_push_pull(seed, true, false, out);
                sent += 1;
            }
            let timeout = match self.config.join.attempt_timeout {
                d if d.is_zero() => self.config.join_retry_initial,
                d => d,
            };
            let at = if self.join_run.cursor >= n {
                self.join_run.cursor = 0;
                self.join_run.passes += 1;
                let wait = timeout.max(self.sync.join_backoff);
                self.sync.join_backoff = self
                    .sync
                    .join_backoff
                    .saturating_mul(2)
                    .min(self.config.join_retry_max);
                self.now + wait
            } else {
                self.now + timeout
            };
            self.timers.set(TimerKind::Join, at);
        }
        let max = self.config.join.max_duration;
        if !max.is_zero() {
            let deadline = self.join_run.started + max;
            if self
                .timers
                .get(TimerKind::Join)
                .is_some_and(|t| t > deadline)
            {
                self.timers.set(TimerKind::Join, deadline.max(self.now));
            }
        }
    }

    /// `max_duration` passed without an answer: give up, back to `Starting`.
    fn fail_join(&mut self, out: &mut Vec<Output<A>>) {
        self.sync.join_pending = false;
        self.sync.join_backoff = self.config.join_retry_initial;
        self.lifecycle.join_failed = true;
        self.timers.clear(TimerKind::Join);
        out.push(Output::Event(Event::JoinFailed {
            reason: JoinFailure::MaxDuration,
            attempts: self.stats.join_attempts - self.join_run.attempts_before,
        }));
    }

    /// The members whose answers made (or are making) the current or last join, in the order
    /// they answered.
    pub fn join_answered(&self) -> impl Iterator<Item = &NodeName> {
        self.join_run
            .answered
            .iter()
            .filter_map(|(_, n)| n.as_ref())
    }

    pub(super) fn contact_seeds(&mut self, out: &mut Vec<Output<A>>) {
        self.stats.join_attempts += 1;
        for i in 0..self.sync.seeds.len() {
            let seed = self.sync.seeds[i].clone();
            self.send_push_pull(seed, true, false, out);
        }
    }

    /// Sends a join push-pull to every seed and schedules the next try after the current
    /// backoff, which then doubles up to `join_retry_max`.
    pub(super) fn contact_seeds_backing_off(&mut self, out: &mut Vec<Output<A>>) {
        self.contact_seeds(out);
        let at = self.now + self.sync.join_backoff;
        self.timers.set(TimerKind::Join, at);
        self.sync.join_backoff = self
            .sync
            .join_backoff
            .saturating_mul(2)
            .min(self.config.join_retry_max);
    }

    /// Join retries with bounded exponential backoff while unanswered, and re-contact of the
    /// seeds whenever this node finds itself without live members.
    pub(super) fn on_join_round(&mut self, out: &mut Vec<Output<A>>) {
        if self.local.state == MemberState::Left {
            self.timers.clear(TimerKind::Join);
            return;
        }
        if self.sync.join_pending {
            let max = self.config.join.max_duration;
            if let Some((addr, _)) = self.join_run.answered.last() {
                // Some seeds answered, fewer than `join.size`, and every seed was tried.
                if !self.join_batched() || self.join_run.passes > 0 {
                    let addr = addr.clone();
                    return self.complete_join(addr, out);
                }
            } else if !max.is_zero() && self.now >= self.join_run.started + max {
                return self.fail_join(out);
            }
            self.contact_join_batch(out);
        } else if self.members.active() == 0 && !self.lifecycle.join_failed {
            self.contact_seeds_backing_off(out);
        } else {
            self.sync.join_backoff = self.config.join_retry_initial;
            self.timers
                .set(TimerKind::Join, self.now + self.config.probe_interval);
        }
    }

    /// The answer to a push-pull of ours arrived and was merged: complete a join, or run the
    /// next follow-up round after one (each only if the previous round taught us something).
    pub(super) fn on_push_pull_answer(
        &mut self,
        join: bool,
        learned: bool,
        sender_addr: A,
        out: &mut Vec<Output<A>>,
    ) {
        if join && self.sync.join_pending {
            if !self
                .join_run
                .answered
                .iter()
                .any(|(a, _)| *a == sender_addr)
            {
                let name = self
                    .members
                    .iter()
                    .find(|e| e.member.addr == sender_addr)
                    .map(|e| e.member.name.clone());
                self.join_run.answered.push((sender_addr.clone(), name));
            }
            let size = self.config.join.size.min(self.sync.seeds.len()).max(1);
            if self.join_run.answered.len() >= size {
                self.complete_join(sender_addr, out);
            }
        } else if let Some((left, delay)) = self.sync.follow_ups {
            self.sync.follow_ups = None;
            if learned && left > 1 {
                let delay = delay.saturating_mul(2);
                self.sync.follow_ups = Some((left - 1, delay));
                self.pull_push_pull_forward(delay);
            }
        }
    }

    /// The join is complete: `JoinCompleted`, follow-up rounds, and state sync with `via`.
    fn complete_join(&mut self, via: A, out: &mut Vec<Output<A>>) {
        self.sync.join_pending = false;
        self.sync.join_backoff = self.config.join_retry_initial;
        self.lifecycle.merged = true;
        // Members that joined concurrently were gossiped while few knew of us, so their
        // epidemics could not reach us. Follow-up anti-entropy rounds fill that gap: the
        // first once an epidemic has had time to run, then at doubling delays for as long
        // as each round still teaches us something (at most `MAX_JOIN_SYNC_ROUNDS`).
        let limit = retransmit_limit(self.config.retransmit_mult, self.members.active() + 1);
        let settle = self.config.gossip_interval.saturating_mul(limit);
        self.sync.follow_ups = Some((MAX_JOIN_SYNC_ROUNDS, settle));
        self.pull_push_pull_forward(settle);
        self.start_sync(via.clone(), out);
        out.push(Output::Event(Event::JoinCompleted { via }));
    }
}
