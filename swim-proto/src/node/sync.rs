//! Push-pull anti-entropy: full membership snapshots exchanged over streams.
//!
//! A periodic round (`push_pull_interval`, stretched above 32 members) sends this node's
//! snapshot to one random alive member, which answers with its own; merging both repairs what
//! gossip missed. Joining (a push-pull to the seeds) is `node/join.rs`; the merge itself is
//! `node/updates.rs`. The join's state still lives in [`SyncState`].
//!
//! A periodic round is skipped when the last membership checksum heard on a ping agreed with
//! this node's (`Config::push_pull_only_on_mismatch`, ringpop's checksum-first rule): in a
//! quiet cluster anti-entropy then costs no bytes, which keeps a node's traffic flat in the
//! cluster's size.

use alloc::vec::Vec;
use core::time::Duration;

use super::suspicion::log2_q16;
use super::timers::TimerKind;
use super::{Address, Node};
use crate::io::Output;
use crate::keyring::TAG_LEN;
use crate::member::MemberState;
use crate::wire::{self, MessageKind, StreamHeader, StreamKind};

/// Push-pull interval stretched above 32 members by `⌈log2 n − log2 32⌉ + 1`, so the cluster's
/// total anti-entropy traffic grows slowly with its size.
pub(super) fn push_pull_interval(base: Duration, n: usize) -> Duration {
    const THRESHOLD: u64 = 32;
    let n = n as u64;
    if n <= THRESHOLD {
        return base;
    }
    let diff = log2_q16(n) - log2_q16(THRESHOLD);
    let mult = diff.div_ceil(1 << 16) + 1;
    base.saturating_mul(u32::try_from(mult).unwrap_or(u32::MAX))
}

/// The push-pull and join state of a node.
#[derive(Debug)]
pub(super) struct SyncState<A> {
    /// The join seeds, deduplicated, without this node's own address (at most `max_members`).
    pub(super) seeds: Vec<A>,
    /// Whether a join awaits its first answer.
    pub(super) join_pending: bool,
    /// The delay before the next join retry.
    pub(super) join_backoff: Duration,
    /// After a join: follow-up push-pull rounds left, and the delay before the next one.
    pub(super) follow_ups: Option<(u8, Duration)>,
    /// Whether the first periodic push-pull round has been placed within the scaled interval.
    pub(super) push_pull_spread: bool,
    /// Count of table changes (new members and state transitions), to tell whether a push-pull
    /// taught this node anything.
    pub(super) table_changes: u64,
    // issue 12 (bytes): checksum first.
    /// Whether the last membership checksum heard on a ping since the previous periodic round
    /// equalled ours (`None`: none heard).
    pub(super) last_checksum_agreed: Option<bool>,
}

impl<A> SyncState<A> {
    pub(super) fn new(join_retry_initial: Duration) -> Self {
        SyncState {
            seeds: Vec::new(),
            join_pending: false,
            join_backoff: join_retry_initial,
            follow_ups: None,
            push_pull_spread: false,
            table_changes: 0,
            last_checksum_agreed: None,
        }
    }
}

impl<A: Address> Node<A> {
    pub(super) fn on_push_pull_round(&mut self, out: &mut Vec<Output<A>>) {
        let base = self.config.push_pull_interval;
        let interval = push_pull_interval(base, self.members.active() + 1);
        if !self.sync.push_pull_spread {
            // The first round was drawn within the unscaled interval, before the membership was
            // known. In a large cluster, draw it again over the scaled one, or every node of a
            // cluster started together would push-pull in the first `base` seconds.
            self.sync.push_pull_spread = true;
            if interval > base && self.local.state != MemberState::Left {
                let at = self.now + self.jitter(interval - base);
                self.timers.set(TimerKind::PushPull, at);
                return;
            }
        }
        // A zero interval disables periodic rounds; the early round after a join still runs.
        self.timers.set(
            TimerKind::PushPull,
            (!interval.is_zero()).then(|| self.now + interval),
        );
        if self.local.state == MemberState::Left {
            self.timers.clear(TimerKind::PushPull);
            return;
        }
        // ringpop's rule: full state only where views differ. The early rounds after a join
        // always run.
        let agreed = self.sync.last_checksum_agreed.take() == Some(true);
        if agreed && self.config.push_pull_only_on_mismatch && self.sync.follow_ups.is_none() {
            return;
        }
        if let Some(&slot) = self
            .pick_members(1, |e| e.member.state == MemberState::Alive)
            .first()
        {
            let to = self.members.at(slot).member.addr.clone();
            self.send_push_pull(to, false, false, out);
        }
    }

    /// Sends this node's full state (itself, live members, then tombstones), cut short at
    /// `max_stream_message_size`.
    pub(super) fn send_push_pull(
        &mut self,
        to: A,
        join: bool,
        reply: bool,
        out: &mut Vec<Output<A>>,
    ) {
        self.send_snapshot(to, StreamKind::PushPull { join, reply }, out);
    }

    /// Sends this node's full state (itself, live members, then tombstones) as a stream message
    /// of `kind`, cut short at `max_stream_message_size`.
    pub(super) fn send_snapshot(&mut self, to: A, kind: StreamKind, out: &mut Vec<Output<A>>) {
        let mut buf = Vec::new();
        let start = self.open_packet(&mut buf);
        let header = StreamHeader {
            kind,
            sender: self.local.name.as_str(),
            sender_addr: self.local.addr.clone(),
        };
        wire::encode_into(&header, &mut buf);
        let mut body = core::mem::take(&mut self.buffers.body);
        body.clear();
        wire::encode_into(&self.self_update(), &mut body);
        let mut count = 1;
        let limit = self
            .config
            .max_stream_message_size
            .saturating_sub(buf.len() + 5 + TAG_LEN);
        'passes: for live in [true, false] {
            for slot in 0..self.members.len() {
                if self.members.at(slot).member.state.is_active() != live {
                    continue;
                }
                let before = body.len();
                wire::encode_into(&self.update_for(slot), &mut body);
                if body.len() > limit {
                    body.truncate(before);
                    self.stats.push_pull_truncated += 1;
                    break 'passes;
                }
                count += 1;
            }
        }
        wire::encode_count(count, &mut buf);
        buf.extend_from_slice(&body);
        self.buffers.body = body;
        self.seal_packet(&mut buf, start);
        self.stats.sent.bump(MessageKind::PushPull);
        self.stats.streams_sent += 1;
        self.stats.stream_bytes_sent += buf.len() as u64;
        out.push(Output::SendStream { to, bytes: buf });
    }

    /// Makes the next push-pull round happen within `delay` (never later than planned).
    pub(super) fn pull_push_pull_forward(&mut self, delay: Duration) {
        let at = self.now + delay;
        if self.timers.get(TimerKind::PushPull).is_none_or(|t| t > at) {
            self.timers.set(TimerKind::PushPull, at);
        }
        self.sync.push_pull_spread = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_pull_stretches_above_32() {
        let b = Duration::from_secs(30);
        assert_eq!(push_pull_interval(b, 32), b);
        assert_eq!(push_pull_interval(b, 64), b * 2);
        assert_eq!(push_pull_interval(b, 1000), b * 6);
    }
}
