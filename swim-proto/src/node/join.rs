//! Joining a cluster: a join push-pull to the seeds, retried with bounded exponential backoff
//! (`join_retry_initial` up to `join_retry_max`) until one answers, then up to
//! [`MAX_JOIN_SYNC_ROUNDS`] early push-pull rounds to learn of members that joined
//! concurrently (`docs/protocol.md` §4.7, §6.5). The snapshots themselves are `node/sync.rs`.

use alloc::vec::Vec;

use super::gossip::retransmit_limit;
use super::timers::TimerKind;
use super::{Address, Node};
use crate::io::{CommandError, Event, Output};
use crate::member::MemberState;

/// Follow-up push-pull rounds after a join, at most (each only if the previous one taught the
/// node something).
pub(super) const MAX_JOIN_SYNC_ROUNDS: u8 = 5;

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
        self.contact_seeds_backing_off(out);
        Ok(())
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
        if self.sync.join_pending || self.members.active() == 0 {
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
            self.sync.join_pending = false;
            self.sync.join_backoff = self.config.join_retry_initial;
            // Members that joined concurrently were gossiped while few knew of us, so their
            // epidemics could not reach us. Follow-up anti-entropy rounds fill that gap: the
            // first once an epidemic has had time to run, then at doubling delays for as long
            // as each round still teaches us something (at most `MAX_JOIN_SYNC_ROUNDS`).
            let limit = retransmit_limit(self.config.retransmit_mult, self.members.active() + 1);
            let settle = self.config.gossip_interval.saturating_mul(limit);
            self.sync.follow_ups = Some((MAX_JOIN_SYNC_ROUNDS, settle));
            self.pull_push_pull_forward(settle);
            self.start_sync(sender_addr.clone(), out);
            out.push(Output::Event(Event::JoinCompleted { via: sender_addr }));
        } else if let Some((left, delay)) = self.sync.follow_ups {
            self.sync.follow_ups = None;
            if learned && left > 1 {
                let delay = delay.saturating_mul(2);
                self.sync.follow_ups = Some((left - 1, delay));
                self.pull_push_pull_forward(delay);
            }
        }
    }
}
