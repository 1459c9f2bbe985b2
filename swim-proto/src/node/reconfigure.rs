//! Runtime reconfiguration (issue 14; `docs/protocol.md` §12.3): a new [`Config`] applied to
//! a running node without a restart, as the Clojure membership API's `configure!` and foca's
//! `set_config`.
//!
//! The new config is checked first, as [`Node::new`] checks one, and then against what the
//! node holds now: a bound may be lowered only as far as current contents allow (a member
//! table of 300 cannot take `max_members = 200`); otherwise the command is refused with the
//! field named and nothing changes. Once accepted, every field applies at once except the
//! identity and the two fields only meaningful at creation (see
//! [`Config::fixed_at_run_time`]). Periodic timers move earlier when the new period is
//! shorter (each to a random point within one new period from `now`, so nodes reconfigured
//! together do not act in lockstep) and otherwise keep their deadline; each handler re-arms
//! from the new config. Suspicions already running keep their deadlines; new suspicions, and
//! every confirmation, use the new timing.

use alloc::format;
use alloc::vec::Vec;
use core::time::Duration;

use super::sync::push_pull_interval;
use super::timers::TimerKind;
use super::{Address, Node};
use crate::config::{Config, ConfigError};
use crate::io::{CommandError, Output};
use crate::member::MemberState;

impl Config {
    /// The fields that differ between `self` (a running node's config) and `new` but that
    /// [`Command::Reconfigure`](crate::Command::Reconfigure) leaves as they were: `keyring`
    /// (keys change at run time only through the key commands, so a rotation in progress is
    /// never undone by a reload) and `start_incarnation` (only meaningful when a node is
    /// created). Drivers log these names when they reload a config file.
    pub fn fixed_at_run_time(&self, new: &Config) -> Vec<&'static str> {
        let mut fixed = Vec::new();
        if self.keyring != new.keyring {
            fixed.push("keyring");
        }
        if self.start_incarnation != new.start_incarnation {
            fixed.push("start_incarnation");
        }
        fixed
    }
}

impl<A: Address> Node<A> {
    /// [`Command::Reconfigure`](crate::Command::Reconfigure). Nothing changes on error.
    pub(super) fn reconfigure(
        &mut self,
        mut config: Config,
        _out: &mut Vec<Output<A>>,
    ) -> Result<(), CommandError> {
        config.validate().map_err(CommandError::Reconfigure)?;
        self.check_fits(&config)
            .map_err(CommandError::Reconfigure)?;
        config.keyring = self.config.keyring.take();
        config.start_incarnation = self.config.start_incarnation;
        let old = core::mem::replace(&mut self.config, config);
        let c = &self.config;
        self.broadcasts.set_max_len(c.max_broadcast_queue);
        self.state_queue.set_max_len(c.state.max_queue);
        self.messaging
            .queue
            .set_max_len(c.messaging.max_event_queue);
        self.health.set_max(c.max_local_health);
        if self.started {
            self.reschedule(&old);
        }
        Ok(())
    }

    /// Whether the node's current contents fit `new`'s bounds; names the first that does not.
    fn check_fits(&self, new: &Config) -> Result<(), ConfigError> {
        let m = &self.messaging;
        let checks: [(&'static str, usize, usize, &str); 14] = [
            (
                "max_name_len",
                new.max_name_len,
                self.local.name.as_str().len(),
                "bytes of this node's name",
            ),
            (
                "max_meta_len",
                new.max_meta_len,
                self.local.meta.len(),
                "bytes of this node's metadata",
            ),
            (
                "max_members",
                new.max_members,
                self.members.len(),
                "members held",
            ),
            (
                "max_broadcast_queue",
                new.max_broadcast_queue,
                self.broadcasts.len(),
                "updates queued",
            ),
            (
                "max_pending_relays",
                new.max_pending_relays,
                self.probing.relays.len(),
                "ping-reqs being relayed",
            ),
            (
                "max_failed_memory",
                new.max_failed_memory,
                self.heal.failed.len(),
                "failed members remembered",
            ),
            (
                "state.max_entries",
                new.state.max_entries,
                self.state.len(),
                "state entries held",
            ),
            (
                "state.max_total_bytes",
                new.state.max_total_bytes,
                self.state.bytes(),
                "bytes of state held",
            ),
            (
                "state.max_origins",
                new.state.max_origins,
                self.state.origins(),
                "state origins tracked",
            ),
            (
                "state.max_queue",
                new.state.max_queue,
                self.state_queue.len(),
                "state entries queued",
            ),
            (
                "messaging.dedupe_buffer",
                new.messaging.dedupe_buffer,
                m.recent.len(),
                "event ids remembered",
            ),
            (
                "messaging.max_event_queue",
                new.messaging.max_event_queue,
                m.queue.len(),
                "events and queries queued",
            ),
            (
                "messaging.max_inflight_queries",
                new.messaging.max_inflight_queries,
                m.asked.len(),
                "queries being collected",
            ),
            (
                "messaging.max_pending_responses",
                new.messaging.max_pending_responses,
                m.answerable.len(),
                "queries awaiting an answer",
            ),
        ];
        for (field, bound, held, what) in checks {
            if bound < held {
                return Err(ConfigError::new(
                    field,
                    &format!("is below the {held} {what} now; lower it once they drain"),
                ));
            }
        }
        Ok(())
    }

    /// Moves each periodic deadline earlier if the new period is shorter, starts the rounds a
    /// zero period had disabled and stops those the new config disables.
    fn reschedule(&mut self, old: &Config) {
        let left = self.local.state == MemberState::Left;
        // The probe in flight finishes under the timing it was sent with.
        if self.probing.in_flight.is_none() {
            let period = self.health.scale(self.config.probe_interval);
            self.pull_forward(TimerKind::Probe, period);
        }
        self.pull_forward(TimerKind::Gossip, self.config.gossip_interval);
        let n = self.members.active() + 1;
        let rounds = [
            (
                TimerKind::PushPull,
                push_pull_interval(self.config.push_pull_interval, n),
                old.push_pull_interval.is_zero(),
            ),
            (
                TimerKind::Heal,
                self.config.heal_interval,
                old.heal_interval.is_zero(),
            ),
            (
                TimerKind::Sync,
                self.config.state.sync_interval,
                old.state.sync_interval.is_zero(),
            ),
        ];
        for (kind, period, was_off) in rounds {
            if period.is_zero() {
                // A push-pull due after a join still runs; its handler re-arms nothing.
                if kind != TimerKind::PushPull {
                    self.timers.clear(kind);
                }
            } else if was_off && !left && self.timers.get(kind).is_none() {
                let at = self.now + self.jitter(period);
                self.timers.set(kind, at);
            } else {
                self.pull_forward(kind, period);
            }
        }
    }

    /// If `kind` is armed later than one `period` from now, re-arms it at a random point
    /// within that period.
    fn pull_forward(&mut self, kind: TimerKind, period: Duration) {
        let Some(at) = self.timers.get(kind) else {
            return;
        };
        if at > self.now + period {
            let new = self.now + self.jitter(period);
            self.timers.set(kind, new);
        }
    }
}
