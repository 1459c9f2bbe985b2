//! The node: SWIM with Lifeguard's extensions as one deterministic state machine.

use alloc::boxed::Box;
use alloc::collections::{BTreeSet, VecDeque};
use alloc::vec::Vec;
use core::fmt::Debug;
use core::hash::Hash;
use core::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::Serialize;
use serde::de::DeserializeOwned;

mod state;
mod view;

pub use view::View;

use crate::Map;
use crate::config::{Config, ConfigError};
use crate::dissemination::BroadcastQueue;
use crate::health::LocalHealth;
use crate::io::{Command, CommandError, Event, Identity, Input, Output};
use crate::keyring::{NONCE_LEN, TAG_LEN};
use crate::member::{Member, MemberState, Metadata, NodeName, overrides};
use crate::membership::{Entry, MemberTable, Pending};
use crate::probe::{ProbeInFlight, ProbeOrder, Relay, random_index};
use crate::state::{StateKey, StateStore, TypeName};
use crate::stats::{DropReason, Stats};
use crate::suspicion::{Suspicion, min_suspicion_timeout, push_pull_interval, retransmit_limit};
use crate::time::Instant;
use crate::wire::{self, FLAG_ENCRYPTED, Message, MessageKind, StreamHeader, StreamKind, Update};

/// Follow-up push-pull rounds after a join, at most (each only if the previous one taught the
/// node something).
const MAX_JOIN_SYNC_ROUNDS: u8 = 5;

/// What a node needs of an address: the simulator uses integers, the async driver
/// `SocketAddr`. Implemented for every type with these traits.
pub trait Address:
    Clone + Eq + Ord + Hash + Debug + Serialize + DeserializeOwned + 'static
{
}

impl<T> Address for T where
    T: Clone + Eq + Ord + Hash + Debug + Serialize + DeserializeOwned + 'static
{
}

/// Deadlines that exist in numbers: one per suspicion, tombstone and relayed probe.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Suspicion(NodeName),
    Reap(NodeName),
    Relay(u32),
    /// Orphaned entries of a failed origin expire (state §10.7).
    Expire(NodeName, TypeName),
}

/// The periodic deadlines, each kept in a field, and the queue of the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Due {
    Probe,
    Indirect,
    Gossip,
    PushPull,
    Join,
    Heal,
    Sync,
    Collect,
    Queued,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source<'a> {
    /// Piggybacked on a datagram.
    Gossip,
    /// A push-pull snapshot. Tombstones of members we never knew are not adopted, so snapshots
    /// cannot keep reaped members alive forever. Members new to us are re-gossiped (anti-entropy
    /// found a gap, likely shared by our neighbours) unless the snapshot is the answer to our own
    /// join: that one is news only to us, and re-gossiping it would cost every join O(n) updates.
    PushPull { join_reply: bool },
    /// A partition-healing snapshot from `sender` (from the other side of a healed split). As a
    /// push-pull, but a "dead" or "left" claim about a member we hold alive becomes a suspicion
    /// by `sender`: the member refutes with a higher incarnation if it lives, instead of being
    /// declared dead on the word of a side that could not see it.
    Heal { sender: &'a str },
    /// Raised by this node.
    Local,
}

/// A SWIM cluster member: feed it inputs with [`Node::handle`], carry out its outputs.
///
/// Method groups:
/// - **inputs**: [`handle`](Node::handle), [`handle_into`](Node::handle_into),
///   [`handle_datagram`](Node::handle_datagram), [`command`](Node::command);
/// - **getters**: [`local`](Node::local), [`members`](Node::members), [`member`](Node::member),
///   [`members_in`](Node::members_in), [`cluster_size`](Node::cluster_size),
///   [`stats`](Node::stats), [`health_score`](Node::health_score),
///   [`next_deadline`](Node::next_deadline);
/// - **checks**: [`check_invariants`](Node::check_invariants).
///
/// Contract: `now` should never go backwards (an earlier `now` is treated as the latest seen);
/// a tick earlier than [`Output::TickAt`] is harmless; outputs are a pure function of
/// config, seed and the sequence of `(input, now)`.
pub struct Node<A: Address> {
    config: Config,
    rng: ChaCha8Rng,
    now: Instant,
    started: bool,
    local: Member<A>,
    members: MemberTable<A>,
    probe_order: ProbeOrder,
    probe: Option<ProbeInFlight<A>>,
    relays: Map<u32, Relay<A>>,
    broadcasts: BroadcastQueue,
    timers: BTreeSet<(Instant, Timer)>,
    health: LocalHealth,
    stats: Stats,
    next_seq: u32,
    seeds: Vec<A>,
    join_pending: bool,
    join_backoff: Duration,
    next_probe_at: Instant,
    next_gossip_at: Instant,
    next_push_pull_at: Option<Instant>,
    /// Whether the first periodic push-pull round has been placed within the scaled interval.
    push_pull_spread: bool,
    /// After a join: follow-up push-pull rounds left, and the delay before the next one.
    join_sync: Option<(u8, Duration)>,
    /// Count of table changes (new members and state transitions), to tell whether a push-pull
    /// taught this node anything.
    table_changes: u64,
    next_join_at: Option<Instant>,
    next_heal_at: Option<Instant>,
    /// Members declared dead, newest last: targets for partition healing.
    failed: VecDeque<(NodeName, A, Instant)>,
    leave_reported: bool,
    scratch: Vec<u8>,
    /// Reused buffer for state entries while packing a datagram.
    state_scratch: Vec<u8>,
    /// Reused buffer for decrypted payloads.
    plain: Vec<u8>,
    /// The replicated key/value state.
    state: StateStore,
    /// State entries waiting to be piggybacked.
    state_queue: BroadcastQueue<StateKey>,
    next_sync_at: Option<Instant>,
    next_collect_at: Option<Instant>,
    /// Checksums, stability and the leader.
    view: view::ViewTracker,
    /// The last peer whose checksum differed from ours.
    checksum_peer: Option<A>,
}

impl<A: Address> Node<A> {
    /// Creates a node. Validates `config` and the identity against it (name and metadata
    /// length); on error nothing is created. All randomness derives from `seed`.
    pub fn new(config: Config, identity: Identity<A>, seed: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        if identity.name.as_str().len() > config.max_name_len {
            return Err(ConfigError::new(
                "identity.name",
                "is longer than max_name_len",
            ));
        }
        if identity.meta.len() > config.max_meta_len {
            return Err(ConfigError::new(
                "identity.meta",
                "is longer than max_meta_len",
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut hasher = || foldhash::fast::FixedState::with_seed(rng.next_u64());
        let (h1, h2, h3, h4, h5) = (hasher(), hasher(), hasher(), hasher(), hasher());
        let identity_name = identity.name.clone();
        Ok(Node {
            members: MemberTable::new(h1),
            relays: Map::with_hasher(h2),
            broadcasts: BroadcastQueue::new(config.max_broadcast_queue, h3),
            state_queue: BroadcastQueue::new(config.state.max_queue, h4),
            health: LocalHealth::new(config.max_local_health),
            join_backoff: config.join_retry_initial,
            local: Member {
                name: identity.name,
                addr: identity.addr,
                incarnation: 0,
                state: MemberState::Alive,
                meta: identity.meta,
            },
            config,
            rng,
            now: Instant::ZERO,
            started: false,
            probe_order: ProbeOrder::default(),
            probe: None,
            timers: BTreeSet::new(),
            stats: Stats::default(),
            next_seq: 0,
            seeds: Vec::new(),
            join_pending: false,
            next_probe_at: Instant::MAX,
            next_gossip_at: Instant::MAX,
            next_push_pull_at: None,
            push_pull_spread: false,
            join_sync: None,
            table_changes: 0,
            next_join_at: None,
            next_heal_at: None,
            failed: VecDeque::new(),
            leave_reported: false,
            scratch: Vec::new(),
            state_scratch: Vec::new(),
            plain: Vec::new(),
            state: StateStore::new(h5, identity_name),
            next_sync_at: None,
            next_collect_at: None,
            view: view::ViewTracker::default(),
            checksum_peer: None,
        })
    }

    // ---------------------------------------------------------------- inputs

    /// Handles one input at time `now` and returns what to do. Due timers fire first.
    pub fn handle(&mut self, input: Input<A>, now: Instant) -> Vec<Output<A>> {
        let mut out = Vec::new();
        self.handle_into(input, now, &mut out);
        out
    }

    /// Like [`Node::handle`], appending to a caller's buffer (reuse it in hot loops).
    pub fn handle_into(&mut self, input: Input<A>, now: Instant, out: &mut Vec<Output<A>>) {
        self.advance(now, out);
        match input {
            Input::Datagram { from, bytes } => self.on_datagram(&from, &bytes, out),
            Input::Stream { from, bytes } => self.on_stream(&from, &bytes, out),
            Input::Tick => {}
            Input::Command(c) => {
                let _ = self.run_command(c, out);
            }
        }
        self.finish(out);
    }

    /// Handles a received datagram without taking ownership of its bytes. Same outputs as
    /// `handle_into(Input::Datagram { .. })`.
    pub fn handle_datagram(
        &mut self,
        from: &A,
        bytes: &[u8],
        now: Instant,
        out: &mut Vec<Output<A>>,
    ) {
        self.advance(now, out);
        self.on_datagram(from, bytes, out);
        self.finish(out);
    }

    /// Runs a command and reports whether it was accepted. Same outputs as
    /// `handle_into(Input::Command(..))`, including [`Event::CommandRejected`] on error; on
    /// error the node's state is unchanged.
    pub fn command(
        &mut self,
        command: Command<A>,
        now: Instant,
        out: &mut Vec<Output<A>>,
    ) -> Result<(), CommandError> {
        self.advance(now, out);
        let r = self.run_command(command, out);
        self.finish(out);
        r
    }

    /// Ends every input: the input may have made a deadline due (a confirmation shrinks a
    /// suspicion's timeout, measured from when it started, possibly into the past), so due
    /// timers fire again; then the next deadline, always after `now`, goes out.
    fn finish(&mut self, out: &mut Vec<Output<A>>) {
        self.fire_due(out);
        self.refresh_state_stats();
        out.push(Output::TickAt(self.next_deadline()));
    }

    // ---------------------------------------------------------------- getters

    /// This node as a member: name, address, incarnation, state (alive, or left) and metadata.
    pub fn local(&self) -> &Member<A> {
        &self.local
    }

    /// Every other member known, tombstones included, in a deterministic order.
    pub fn members(&self) -> impl Iterator<Item = &Member<A>> {
        self.members.iter().map(|e| &e.member)
    }

    /// Other members in one state.
    pub fn members_in(&self, state: MemberState) -> impl Iterator<Item = &Member<A>> {
        self.members().filter(move |m| m.state == state)
    }

    /// One member by name, this node included.
    pub fn member(&self, name: &str) -> Option<&Member<A>> {
        if name == self.local.name.as_str() {
            return Some(&self.local);
        }
        self.members.get(name).map(|e| &e.member)
    }

    /// Number of other members in `state`.
    pub fn count(&self, state: MemberState) -> usize {
        self.members.count(state)
    }

    /// Alive and suspect members, this node included unless it left.
    pub fn cluster_size(&self) -> usize {
        self.members.active() + usize::from(self.local.state == MemberState::Alive)
    }

    /// Counters since creation.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Lifeguard local health score, 0 (healthy) up to `max_local_health − 1`.
    pub fn health_score(&self) -> u32 {
        self.health.score()
    }

    /// Updates waiting to be gossiped (bounded by `Config::max_broadcast_queue`).
    pub fn pending_broadcasts(&self) -> usize {
        self.broadcasts.len()
    }

    /// The node's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The latest `now` seen.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// When the node next needs an input; a [`Input::Tick`] then fires what is due.
    pub fn next_deadline(&self) -> Instant {
        if !self.started {
            return self.now;
        }
        self.earliest().0
    }

    /// Panics with a description if an internal invariant is broken. Simulators and fuzzers
    /// call it after every step; it costs O(n).
    pub fn check_invariants(&self) {
        assert_ne!(
            self.local.state,
            MemberState::Dead,
            "a node never holds itself dead"
        );
        assert!(
            self.members.get(self.local.name.as_str()).is_none(),
            "the local node is not in its own table"
        );
        assert!(
            self.members.len() <= self.config.max_members,
            "member table within max_members"
        );
        assert!(
            self.broadcasts.len() <= self.config.max_broadcast_queue,
            "broadcast queue within bound"
        );
        assert!(
            self.relays.len() <= self.config.max_pending_relays,
            "relay table within bound"
        );
        assert!(
            self.state_queue.len() <= self.config.state.max_queue,
            "state queue within bound"
        );
        self.state.check_invariants(&self.config.state);
        let fresh = self
            .members
            .iter()
            .filter(|e| e.member.state.is_active())
            .map(|e| {
                let m = &e.member;
                crate::membership::view_hash(m.name.as_bytes(), m.incarnation, m.state)
            })
            .fold(0u64, u64::wrapping_add);
        assert_eq!(
            fresh,
            self.members.view_sum(),
            "the membership checksum matches the table"
        );
        let mut counts = [0usize; 4];
        for e in self.members.iter() {
            counts[usize::from(e.member.state.rank())] += 1;
            assert_eq!(
                e.suspicion().is_some(),
                e.member.state == MemberState::Suspect,
                "suspicion present exactly for suspect members ({})",
                e.member.name
            );
            assert_eq!(
                e.reap_at().is_some(),
                matches!(e.member.state, MemberState::Dead | MemberState::Left),
                "reap deadline present exactly for tombstones ({})",
                e.member.name
            );
            if let Some(s) = e.suspicion() {
                assert_eq!(
                    s.incarnation, e.member.incarnation,
                    "suspicion matches incarnation"
                );
            }
        }
        for s in [
            MemberState::Alive,
            MemberState::Suspect,
            MemberState::Dead,
            MemberState::Left,
        ] {
            assert_eq!(
                counts[usize::from(s.rank())],
                self.members.count(s),
                "state counts match table"
            );
        }
    }

    // ---------------------------------------------------------------- time and timers

    fn advance(&mut self, now: Instant, out: &mut Vec<Output<A>>) {
        if now > self.now {
            self.now = now;
        }
        if !self.started {
            self.start();
        }
        self.fire_due(out);
    }

    /// Schedules the periodic timers, each at a random offset within its period so nodes
    /// started together do not probe and gossip in lockstep.
    fn start(&mut self) {
        self.started = true;
        let now = self.now;
        self.next_probe_at = now + self.jitter(self.config.probe_interval);
        self.next_gossip_at = now + self.jitter(self.config.gossip_interval);
        if !self.config.push_pull_interval.is_zero() {
            self.next_push_pull_at = Some(now + self.jitter(self.config.push_pull_interval));
        }
        if !self.config.heal_interval.is_zero() {
            self.next_heal_at = Some(now + self.jitter(self.config.heal_interval));
        }
        if !self.config.state.sync_interval.is_zero() {
            self.next_sync_at = Some(now + self.jitter(self.config.state.sync_interval));
        }
    }

    fn jitter(&mut self, period: Duration) -> Duration {
        let nanos = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX).max(1);
        Duration::from_nanos(1 + self.rng.next_u64() % nanos)
    }

    fn earliest(&self) -> (Instant, Due) {
        let mut best = (self.next_probe_at, Due::Probe);
        let mut consider = |t: Instant, d: Due| {
            if t < best.0 {
                best = (t, d);
            }
        };
        if let Some(p) = &self.probe
            && !p.indirect_sent
        {
            consider(p.indirect_at, Due::Indirect);
        }
        consider(self.next_gossip_at, Due::Gossip);
        if let Some(t) = self.next_push_pull_at {
            consider(t, Due::PushPull);
        }
        if let Some(t) = self.next_heal_at {
            consider(t, Due::Heal);
        }
        if let Some(t) = self.next_join_at {
            consider(t, Due::Join);
        }
        if let Some(t) = self.next_sync_at {
            consider(t, Due::Sync);
        }
        if let Some(t) = self.next_collect_at {
            consider(t, Due::Collect);
        }
        if let Some((t, _)) = self.timers.first() {
            consider(*t, Due::Queued);
        }
        best
    }

    /// Fires every deadline at or before `now`, earliest first. Each handler moves its own
    /// deadline past `now`, so the loop ends.
    fn fire_due(&mut self, out: &mut Vec<Output<A>>) {
        loop {
            let (at, due) = self.earliest();
            // `Instant::MAX` means "never": deadlines saturate there, and firing them at a `now`
            // of `MAX` would re-arm them at `MAX` forever.
            if at > self.now || at == Instant::MAX {
                return;
            }
            match due {
                Due::Probe => self.on_probe_period(out),
                Due::Indirect => self.on_direct_timeout(out),
                Due::Gossip => self.on_gossip_round(out),
                Due::PushPull => self.on_push_pull_round(out),
                Due::Join => self.on_join_round(out),
                Due::Heal => self.on_heal_round(out),
                Due::Sync => self.on_sync_round(out),
                Due::Collect => self.on_collect(),
                Due::Queued => {
                    let (_, timer) = self
                        .timers
                        .pop_first()
                        .expect("earliest queued timer exists");
                    match timer {
                        Timer::Suspicion(name) => self.on_suspicion_timeout(&name, out),
                        Timer::Reap(name) => self.on_reap(&name, out),
                        Timer::Relay(seq) => self.on_relay_timeout(seq, out),
                        Timer::Expire(origin, ty) => self.on_expire(&origin, &ty, out),
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- probing (SWIM §3.1, §4.3)

    /// End of a protocol period: judge the probe in flight, then probe the next member.
    fn on_probe_period(&mut self, out: &mut Vec<Output<A>>) {
        if let Some(p) = self.probe.take() {
            self.on_probe_failed(p, out);
        }
        self.on_view_period(out);
        if self.local.state == MemberState::Left {
            self.next_probe_at = Instant::MAX;
            return;
        }
        let now = self.now;
        self.next_probe_at = now + self.health.scale(self.config.probe_interval);
        let Some(slot) = self.next_probe_target() else {
            return;
        };
        let member = &self.members.at(slot).member;
        let (target, addr) = (member.name.clone(), member.addr.clone());
        // Lifeguard §IV-C (buddy system): a suspect target hears of its suspicion first thing.
        let buddy = (member.state == MemberState::Suspect).then(|| {
            let mut b = Vec::new();
            wire::encode_into(&self.update_for(slot), &mut b);
            b
        });
        let seq = self.next_seq();
        self.stats.probes += 1;
        self.send_datagram(
            addr.clone(),
            &Message::Ping {
                seq,
                target: target.as_str(),
                checksum: self.checksum(),
            },
            buddy.as_deref(),
            false,
            out,
        );
        self.probe = Some(ProbeInFlight {
            target,
            target_addr: addr,
            seq,
            indirect_at: now + self.health.scale(self.config.probe_timeout),
            indirect_sent: false,
            expected_nacks: 0,
            nacks: 0,
        });
    }

    fn next_probe_target(&mut self) -> Option<usize> {
        for _ in 0..2 {
            while let Some(slot) = self.probe_order.next() {
                if slot < self.members.len() && self.members.at(slot).member.state.is_active() {
                    return Some(slot);
                }
            }
            if self.members.active() == 0 {
                return None;
            }
            let members = &self.members;
            let active = (0..members.len()).filter(|&s| members.at(s).member.state.is_active());
            self.probe_order.reset(active, &mut self.rng);
        }
        None
    }

    /// No direct ack in time: ask `indirect_checks` random alive members to probe the target.
    fn on_direct_timeout(&mut self, out: &mut Vec<Output<A>>) {
        let Some(p) = self.probe.as_mut() else { return };
        p.indirect_sent = true;
        let (seq, target, target_addr) = (p.seq, p.target.clone(), p.target_addr.clone());
        let helpers = self.pick_members(self.config.indirect_checks, |e| {
            e.member.state == MemberState::Alive && e.member.name != target
        });
        for &slot in &helpers {
            let to = self.members.at(slot).member.addr.clone();
            let msg = Message::PingReq {
                seq,
                target: target.as_str(),
                target_addr: target_addr.clone(),
                want_nack: true,
            };
            self.send_datagram(to, &msg, None, false, out);
        }
        self.stats.indirect_probes += helpers.len() as u64;
        if let Some(p) = self.probe.as_mut() {
            p.expected_nacks = helpers.len();
        }
    }

    /// The period ended without an ack: adjust local health (Lifeguard §IV-A) and suspect.
    fn on_probe_failed(&mut self, p: ProbeInFlight<A>, out: &mut Vec<Output<A>>) {
        self.stats.probes_failed += 1;
        let missed = if p.expected_nacks > 0 {
            p.expected_nacks.saturating_sub(p.nacks)
        } else {
            1
        };
        self.health.apply(missed as i64);
        let Some(slot) = self.members.slot(p.target.as_str()) else {
            return;
        };
        let m = &self.members.at(slot).member;
        if !m.state.is_active() {
            return;
        }
        if m.state == MemberState::Alive {
            self.stats.suspicions_raised += 1;
        }
        let (inc, addr) = (m.incarnation, m.addr.clone());
        let me = self.local.name.clone();
        let claim = Update::Suspect {
            name: p.target.as_str(),
            incarnation: inc,
            addr,
            accuser: me.as_str(),
        };
        self.apply_update(&claim, Source::Local, out);
    }

    fn on_ack(&mut self, from: &A, seq: u32, checksum: u64, out: &mut Vec<Output<A>>) {
        if let Some(r) = self.relays.remove(&seq) {
            self.send_datagram(
                r.requester,
                &Message::Ack {
                    seq: r.requester_seq,
                    checksum,
                },
                None,
                false,
                out,
            );
            return;
        }
        if let Some(p) = self.probe.take_if(|p| p.seq == seq) {
            self.health.apply(-1);
            // A relayed ack carries the target's checksum: compare it, sync with the target.
            let peer = if p.indirect_sent {
                p.target_addr
            } else {
                from.clone()
            };
            self.observe_checksum(peer, checksum);
            return;
        }
        self.stats.unexpected_acks += 1;
    }

    /// Answers a probe of this node, with its membership checksum.
    fn send_ack(&mut self, to: A, seq: u32, out: &mut Vec<Output<A>>) {
        let checksum = self.checksum();
        self.send_datagram(to, &Message::Ack { seq, checksum }, None, false, out);
    }

    fn on_ping_req(
        &mut self,
        from: &A,
        seq: u32,
        target: &str,
        target_addr: A,
        want_nack: bool,
        out: &mut Vec<Output<A>>,
    ) {
        if target == self.local.name.as_str() {
            self.send_ack(from.clone(), seq, out);
            return;
        }
        if self.relays.len() >= self.config.max_pending_relays {
            self.drop_packet(from, DropReason::RelayTableFull, out);
            return;
        }
        let own = self.next_seq();
        let deadline = self.now + self.relay_timeout();
        self.relays.insert(
            own,
            Relay {
                requester: from.clone(),
                requester_seq: seq,
                want_nack,
                deadline,
            },
        );
        self.timers.insert((deadline, Timer::Relay(own)));
        self.stats.relays += 1;
        let checksum = self.checksum();
        self.send_datagram(
            target_addr,
            &Message::Ping {
                seq: own,
                target,
                checksum,
            },
            None,
            false,
            out,
        );
    }

    /// How long a helper waits for the target before sending its nack (Lifeguard §IV-A): the
    /// requester sends ping-reqs `probe_timeout` into its period and judges the probe at the
    /// period's end, so the nack must come back within `probe_interval − probe_timeout`. The
    /// helper waits 80% of that window (at most `probe_timeout`), leaving the rest for the trip
    /// back. A requester with a poor health score has a longer window, so this is conservative.
    fn relay_timeout(&self) -> Duration {
        let window = self.config.probe_interval - self.config.probe_timeout;
        (window * 4 / 5).min(self.config.probe_timeout)
    }

    fn on_relay_timeout(&mut self, seq: u32, out: &mut Vec<Output<A>>) {
        if self.relays.get(&seq).is_none_or(|r| r.deadline > self.now) {
            return;
        }
        let r = self.relays.remove(&seq).expect("relay checked above");
        if r.want_nack {
            self.send_datagram(
                r.requester,
                &Message::Nack {
                    seq: r.requester_seq,
                },
                None,
                false,
                out,
            );
        }
    }

    // ---------------------------------------------------------------- suspicion (SWIM §4.2, Lifeguard §IV-B)

    fn new_suspicion(&mut self, incarnation: u64, accuser: &str) -> Suspicion {
        let n = self.members.active() + 1;
        let min = min_suspicion_timeout(self.config.suspicion_mult, n, self.config.probe_interval);
        let max = min.saturating_mul(self.config.suspicion_max_timeout_mult);
        let k = self.config.suspicion_mult.saturating_sub(2);
        let wanted = if n.saturating_sub(2) < k as usize {
            0
        } else {
            k
        };
        let accuser = NodeName::new(accuser).expect("accuser names are validated on receipt");
        Suspicion::new(incarnation, accuser, self.now, min, max, wanted)
    }

    fn on_suspicion_timeout(&mut self, name: &NodeName, out: &mut Vec<Output<A>>) {
        let Some(e) = self.members.get(name.as_str()) else {
            return;
        };
        let Some(s) = e.suspicion() else { return };
        if s.deadline > self.now {
            return; // superseded by a later suspicion at a higher incarnation
        }
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

    fn on_reap(&mut self, name: &NodeName, out: &mut Vec<Output<A>>) {
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
    fn evict_oldest_tombstone(&mut self, out: &mut Vec<Output<A>>) -> bool {
        let victim = self.timers.iter().find_map(|(t, timer)| match timer {
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

    // ---------------------------------------------------------------- membership updates (SWIM §4.2)

    fn validate_update(&self, u: &Update<'_, A>) -> Result<(), DropReason> {
        let name_ok = |n: &str| !n.is_empty() && n.len() <= self.config.max_name_len;
        if !name_ok(u.name()) {
            return Err(DropReason::BadName);
        }
        match u {
            Update::Alive { meta, .. } if meta.len() > self.config.max_meta_len => {
                Err(DropReason::MetadataTooLarge)
            }
            Update::Suspect { accuser, .. } if !name_ok(accuser) => Err(DropReason::BadName),
            _ => Ok(()),
        }
    }

    /// Merges one claim into the table by the precedence rule, with its events, timers and
    /// re-gossip. The claim has passed [`Node::validate_update`].
    fn apply_update(&mut self, u: &Update<'_, A>, source: Source<'_>, out: &mut Vec<Output<A>>) {
        if source != Source::Local {
            self.stats.updates_received += 1;
        }
        if u.name().as_bytes() == self.local.name.as_bytes() {
            self.on_claim_about_self(u, out);
            return;
        }
        let Some(slot) = self.members.slot(u.name()) else {
            self.learn_member(u, source, out);
            return;
        };
        let m = &self.members.at(slot).member;
        let held = (m.incarnation, m.state);
        if let Source::Heal { sender } = source {
            let (name, incarnation, addr) = (u.name(), u.incarnation(), u.addr().clone());
            let suspicion = Update::Suspect {
                name,
                incarnation,
                addr,
                accuser: sender,
            };
            if !u.state().is_active() && held.1.is_active() {
                // The other side could not see this member: suspect it rather than kill it.
                return self.apply_update(&suspicion, Source::Gossip, out);
            }
            if u.state().is_active() && held.1 == MemberState::Dead && u.incarnation() == held.0 {
                // We declared it dead at the incarnation the other side still sees alive: our
                // side could not see it. Bring it back as a suspect, outside the precedence
                // order, so it refutes if it lives (and dies again if it does not). This makes
                // both ends of a heal exchange bridges to the whole other side.
                self.transition(slot, &suspicion, out);
                self.enqueue(&suspicion);
                return;
            }
        }
        let claim = (u.incarnation(), u.state());
        if overrides(claim, held) {
            self.transition(slot, u, out);
            self.enqueue(u);
        } else if claim == held
            && let Update::Suspect { accuser, .. } = u
            && self.confirm_suspicion(slot, accuser)
        {
            self.enqueue(u);
        } else {
            self.stats.updates_stale += 1;
        }
    }

    /// Lifeguard §IV-B: an independent accuser confirms; the timeout shrinks.
    fn confirm_suspicion(&mut self, slot: usize, accuser: &str) -> bool {
        let e = self.members.at_mut(slot);
        let Some(s) = e.suspicion_mut() else {
            return false;
        };
        if !s.confirm(accuser) {
            return false;
        }
        let (deadline, name) = (s.deadline, e.member.name.clone());
        self.timers.insert((deadline, Timer::Suspicion(name)));
        true
    }

    fn learn_member(&mut self, u: &Update<'_, A>, source: Source<'_>, out: &mut Vec<Output<A>>) {
        self.table_changes += 1;
        let state = u.state();
        if !state.is_active() && matches!(source, Source::PushPull { .. } | Source::Heal { .. }) {
            self.stats.updates_stale += 1;
            return;
        }
        if self.members.len() >= self.config.max_members && !self.evict_oldest_tombstone(out) {
            self.stats.dropped.bump(DropReason::MemberTableFull);
            return;
        }
        let name = NodeName::new(u.name()).expect("names are validated on receipt");
        let meta = match u {
            Update::Alive { meta, .. } => Metadata::from(*meta),
            _ => Metadata::empty(),
        };
        let member = Member {
            name: name.clone(),
            addr: u.addr().clone(),
            incarnation: u.incarnation(),
            state,
            meta,
        };
        let mut entry = Entry {
            member,
            changed_at: self.now,
            pending: Pending::None,
        };
        match u {
            Update::Alive { .. } => {
                out.push(Output::Event(Event::MemberJoined(entry.member.clone())))
            }
            Update::Suspect { accuser, .. } => {
                let s = self.new_suspicion(u.incarnation(), accuser);
                self.timers
                    .insert((s.deadline, Timer::Suspicion(name.clone())));
                entry.pending = Pending::Suspicion(Box::new(s));
                out.push(Output::Event(Event::MemberJoined(entry.member.clone())));
                let accuser = NodeName::new(accuser).expect("validated");
                out.push(Output::Event(Event::MemberSuspected {
                    member: entry.member.clone(),
                    accuser,
                }));
            }
            _ => {
                let at = self.now + self.config.tombstone_retention;
                entry.pending = Pending::Reap(at);
                self.timers.insert((at, Timer::Reap(name.clone())));
            }
        }
        let slot = self.members.insert(entry);
        if state.is_active() {
            self.probe_order.insert(slot, &mut self.rng);
        }
        if source != (Source::PushPull { join_reply: true }) {
            self.enqueue(u);
        }
    }

    fn transition(&mut self, slot: usize, u: &Update<'_, A>, out: &mut Vec<Output<A>>) {
        self.table_changes += 1;
        let now = self.now;
        let new_state = u.state();
        let e = self.members.at_mut(slot);
        let old_state = e.member.state;
        let mut changed = e.member.addr != *u.addr();
        e.member.addr = u.addr().clone();
        if let Update::Alive { meta, .. } = u
            && *meta != e.member.meta.as_bytes()
        {
            e.member.meta = Metadata::from(*meta);
            changed = true;
        }
        if old_state != new_state {
            e.changed_at = now;
        }
        e.pending = Pending::None;
        let name = e.member.name.clone();
        self.members.set_state(slot, new_state, u.incarnation());
        let revived = !old_state.is_active() && new_state.is_active();
        if revived {
            self.probe_order.insert(slot, &mut self.rng);
        }
        let event = match u {
            Update::Alive { .. } => match old_state {
                MemberState::Suspect => {
                    self.stats.suspicions_refuted += 1;
                    Some(Event::MemberAlive(self.members.at(slot).member.clone()))
                }
                MemberState::Alive if changed => {
                    Some(Event::MemberUpdated(self.members.at(slot).member.clone()))
                }
                MemberState::Alive => None,
                _ => Some(Event::MemberJoined(self.members.at(slot).member.clone())),
            },
            Update::Suspect { accuser, .. } => {
                let s = self.new_suspicion(u.incarnation(), accuser);
                self.timers.insert((s.deadline, Timer::Suspicion(name)));
                self.members.at_mut(slot).pending = Pending::Suspicion(Box::new(s));
                if revived {
                    out.push(Output::Event(Event::MemberJoined(
                        self.members.at(slot).member.clone(),
                    )));
                }
                let accuser = NodeName::new(accuser).expect("validated");
                Some(Event::MemberSuspected {
                    member: self.members.at(slot).member.clone(),
                    accuser,
                })
            }
            Update::Dead { .. } | Update::Left { .. } => {
                let at = now + self.config.tombstone_retention;
                self.members.at_mut(slot).pending = Pending::Reap(at);
                self.timers.insert((at, Timer::Reap(name)));
                let m = self.members.at(slot).member.clone();
                let ev = if new_state == MemberState::Left {
                    Some(Event::MemberLeft(m.clone()))
                } else if old_state != MemberState::Dead {
                    self.remember_failed(m.name.clone(), m.addr.clone());
                    Some(Event::MemberFailed(m.clone()))
                } else {
                    None
                };
                if old_state.is_active() {
                    if let Some(ev) = ev {
                        out.push(Output::Event(ev));
                    }
                    self.on_origin_down(&m.name, new_state == MemberState::Left, out);
                    return;
                }
                ev
            }
        };
        if let Some(ev) = event {
            out.push(Output::Event(ev));
        }
    }

    /// SWIM §4.2: a node that hears itself suspected (or declared dead, or sees a claim from a
    /// previous life of its name) refutes by taking a higher incarnation and gossiping alive.
    fn on_claim_about_self(&mut self, u: &Update<'_, A>, out: &mut Vec<Output<A>>) {
        if self.local.state == MemberState::Left {
            return; // we are leaving; there is nothing to defend
        }
        let mine = self.local.incarnation;
        let stale = match u {
            Update::Alive {
                incarnation,
                addr,
                meta,
                ..
            } => {
                *incarnation < mine
                    || (*incarnation == mine
                        && *addr == self.local.addr
                        && *meta == self.local.meta.as_bytes())
            }
            _ => u.incarnation() < mine,
        };
        if stale {
            self.stats.updates_stale += 1;
            return;
        }
        if let Update::Suspect {
            accuser,
            incarnation,
            ..
        } = u
        {
            let accuser = NodeName::new(accuser).expect("validated");
            out.push(Output::Event(Event::LocalSuspected {
                accuser,
                incarnation: *incarnation,
            }));
        }
        if u.state() != MemberState::Alive {
            self.health.apply(1);
        }
        self.local.incarnation = u.incarnation().max(mine).saturating_add(1);
        self.stats.local_refutations += 1;
        out.push(Output::Event(Event::LocalRefuted {
            claim: u.state(),
            incarnation: self.local.incarnation,
        }));
        self.announce_self();
        if !u.state().is_active() {
            self.restamp_after_false_death(out);
        }
    }

    fn announce_self(&mut self) {
        let l = &self.local;
        let u = if l.state == MemberState::Left {
            Update::Left {
                name: l.name.as_str(),
                incarnation: l.incarnation,
                addr: l.addr.clone(),
            }
        } else {
            Update::Alive {
                name: l.name.as_str(),
                incarnation: l.incarnation,
                addr: l.addr.clone(),
                meta: l.meta.as_bytes(),
            }
        };
        let mut bytes = Vec::new();
        wire::encode_into(&u, &mut bytes);
        let name = self.local.name.clone();
        self.queue_broadcast(name, bytes);
    }

    /// Queues an encoded update and makes sure a gossip round is coming: an idle node (empty
    /// queue) has no gossip timer at all, so it wakes only for probes.
    fn queue_broadcast(&mut self, name: NodeName, bytes: Vec<u8>) {
        self.stats.broadcasts_dropped += self.broadcasts.push(name, bytes) as u64;
        if self.next_gossip_at == Instant::MAX && self.started {
            self.next_gossip_at = self.now + self.config.gossip_interval;
        }
    }

    fn enqueue(&mut self, u: &Update<'_, A>) {
        let mut bytes = Vec::new();
        wire::encode_into(u, &mut bytes);
        let name = self.members.get(u.name()).map(|e| e.member.name.clone());
        let name = name.unwrap_or_else(|| NodeName::new(u.name()).expect("validated"));
        self.queue_broadcast(name, bytes);
    }

    /// The claim this node holds about the member in `slot`, as an update.
    fn update_for(&self, slot: usize) -> Update<'_, A> {
        let e = self.members.at(slot);
        let (name, incarnation, addr) = (
            e.member.name.as_str(),
            e.member.incarnation,
            e.member.addr.clone(),
        );
        match e.member.state {
            MemberState::Alive => Update::Alive {
                name,
                incarnation,
                addr,
                meta: e.member.meta.as_bytes(),
            },
            MemberState::Suspect => {
                let accuser = e
                    .suspicion()
                    .map_or(self.local.name.as_str(), |s| s.accuser().as_str());
                Update::Suspect {
                    name,
                    incarnation,
                    addr,
                    accuser,
                }
            }
            MemberState::Dead => Update::Dead {
                name,
                incarnation,
                addr,
            },
            MemberState::Left => Update::Left {
                name,
                incarnation,
                addr,
            },
        }
    }

    // ---------------------------------------------------------------- dissemination (SWIM §4.1)

    /// Gossip round: send queued updates to `gossip_nodes` random members, including members
    /// that died or left within `gossip_to_dead_time` so they can refute.
    fn on_gossip_round(&mut self, out: &mut Vec<Output<A>>) {
        let now = self.now;
        self.next_gossip_at = now + self.config.gossip_interval;
        if !self.broadcasts.is_empty() || !self.state_queue.is_empty() {
            let ttd = self.config.gossip_to_dead_time;
            let targets = self.pick_members(self.config.gossip_nodes, |e| {
                e.member.state.is_active() || now.saturating_duration_since(e.changed_at) < ttd
            });
            for slot in targets {
                let to = self.members.at(slot).member.addr.clone();
                if !self.send_datagram(to, &Message::Gossip, None, true, out) {
                    break;
                }
            }
        }
        if self.local.state == MemberState::Left
            && !self.leave_reported
            && (!self.broadcasts.contains(self.local.name.as_str()) || self.members.active() == 0)
        {
            self.leave_reported = true;
            out.push(Output::Event(Event::LeaveComplete));
        }
        if self.broadcasts.is_empty() && self.state_queue.is_empty() {
            self.next_gossip_at = Instant::MAX; // re-armed by the next queued update
        }
    }

    /// Up to `k` distinct random members satisfying `eligible`, as table slots. O(k) expected
    /// on large tables; exact on small ones or when few members are eligible.
    fn pick_members(&mut self, k: usize, eligible: impl Fn(&Entry<A>) -> bool) -> Vec<usize> {
        let n = self.members.len();
        let mut picked = Vec::with_capacity(k);
        if k == 0 || n == 0 {
            return picked;
        }
        if n > 4 * k + 16 {
            for _ in 0..8 * k {
                let i = random_index(&mut self.rng, n);
                if !picked.contains(&i) && eligible(self.members.at(i)) {
                    picked.push(i);
                    if picked.len() == k {
                        return picked;
                    }
                }
            }
            if self.members.active() * 4 >= n {
                return picked;
            }
            picked.clear();
        }
        let mut candidates: Vec<usize> = (0..n).filter(|&i| eligible(self.members.at(i))).collect();
        for i in 0..k.min(candidates.len()) {
            let j = i + random_index(&mut self.rng, candidates.len() - i);
            candidates.swap(i, j);
            picked.push(candidates[i]);
        }
        picked
    }

    /// Encodes `msg`, piggybacks queued updates up to `max_packet_size` (a `priority` update
    /// first), and emits the datagram. With `require_updates`, sends nothing if no update fits
    /// and returns false.
    fn send_datagram(
        &mut self,
        to: A,
        msg: &Message<'_, A>,
        priority: Option<&[u8]>,
        require_updates: bool,
        out: &mut Vec<Output<A>>,
    ) -> bool {
        let mut buf = Vec::with_capacity(128);
        let start = self.open_packet(&mut buf);
        wire::encode_into(msg, &mut buf);
        // Room for the update count (a varint of at most 5 bytes) and the encryption tag.
        let tag = if self.config.keyring.is_some() {
            TAG_LEN
        } else {
            0
        };
        // Room for the two counts (membership updates, state entries; varints of at most 5
        // bytes each) and the tag.
        let budget = self
            .config
            .max_packet_size
            .saturating_sub(buf.len() + 10 + tag);
        let mut body = core::mem::take(&mut self.scratch);
        let mut state = core::mem::take(&mut self.state_scratch);
        body.clear();
        state.clear();
        let mut count = 0;
        if let Some(p) = priority.filter(|p| p.len() <= budget) {
            body.extend_from_slice(p);
            count += 1;
        }
        let limit = retransmit_limit(self.config.retransmit_mult, self.members.active() + 1);
        // Fair sharing (memberlist#299): with both kinds queued, membership updates fill at
        // most half the packet, state entries the rest (less their count's 5 bytes), and
        // membership takes back whatever state left unused.
        let with_state = !self.state_queue.is_empty();
        let share = if with_state { budget / 2 } else { budget };
        count += self
            .broadcasts
            .pack(share.saturating_sub(body.len()), limit, &mut body, false);
        let mut state_count = 0;
        if with_state {
            let room = budget.saturating_sub(body.len());
            state_count = self.state_queue.pack(room, limit, &mut state, false);
            let rest = budget.saturating_sub(body.len() + state.len());
            count += self.broadcasts.pack(rest, limit, &mut body, true);
        }
        if require_updates && count == 0 && state_count == 0 {
            self.scratch = body;
            self.state_scratch = state;
            return false;
        }
        wire::encode_count(count, &mut buf);
        buf.extend_from_slice(&body);
        wire::encode_count(state_count, &mut buf);
        buf.extend_from_slice(&state);
        self.stats.state.piggybacked += state_count as u64;
        self.scratch = body;
        self.state_scratch = state;
        self.seal_packet(&mut buf, start);
        assert!(
            buf.len() <= self.config.max_packet_size,
            "datagram within max_packet_size"
        );
        self.stats.sent.bump(msg.kind());
        self.stats.datagrams_sent += 1;
        self.stats.datagram_bytes_sent += buf.len() as u64;
        self.stats.updates_sent += count as u64;
        out.push(Output::SendDatagram { to, bytes: buf });
        true
    }

    // ---------------------------------------------------------------- push-pull and join

    fn on_push_pull_round(&mut self, out: &mut Vec<Output<A>>) {
        let base = self.config.push_pull_interval;
        let interval = push_pull_interval(base, self.members.active() + 1);
        if !self.push_pull_spread {
            // The first round was drawn within the unscaled interval, before the membership was
            // known. In a large cluster, draw it again over the scaled one, or every node of a
            // cluster started together would push-pull in the first `base` seconds.
            self.push_pull_spread = true;
            if interval > base && self.local.state != MemberState::Left {
                self.next_push_pull_at = Some(self.now + self.jitter(interval - base));
                return;
            }
        }
        // A zero interval disables periodic rounds; the early round after a join still runs.
        self.next_push_pull_at = (!interval.is_zero()).then(|| self.now + interval);
        if self.local.state == MemberState::Left {
            self.next_push_pull_at = None;
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
    fn send_push_pull(&mut self, to: A, join: bool, reply: bool, out: &mut Vec<Output<A>>) {
        self.send_snapshot(to, StreamKind::PushPull { join, reply }, out);
    }

    /// Sends this node's full state (itself, live members, then tombstones) as a stream message
    /// of `kind`, cut short at `max_stream_message_size`.
    fn send_snapshot(&mut self, to: A, kind: StreamKind, out: &mut Vec<Output<A>>) {
        let mut buf = Vec::new();
        let start = self.open_packet(&mut buf);
        let header = StreamHeader {
            kind,
            sender: self.local.name.as_str(),
            sender_addr: self.local.addr.clone(),
        };
        wire::encode_into(&header, &mut buf);
        let mut body = core::mem::take(&mut self.scratch);
        body.clear();
        let l = &self.local;
        let me = if l.state == MemberState::Left {
            Update::Left {
                name: l.name.as_str(),
                incarnation: l.incarnation,
                addr: l.addr.clone(),
            }
        } else {
            Update::Alive {
                name: l.name.as_str(),
                incarnation: l.incarnation,
                addr: l.addr.clone(),
                meta: l.meta.as_bytes(),
            }
        };
        wire::encode_into(&me, &mut body);
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
        self.scratch = body;
        self.seal_packet(&mut buf, start);
        self.stats.sent.bump(MessageKind::PushPull);
        self.stats.streams_sent += 1;
        self.stats.stream_bytes_sent += buf.len() as u64;
        out.push(Output::SendStream { to, bytes: buf });
    }

    fn contact_seeds(&mut self, out: &mut Vec<Output<A>>) {
        self.stats.join_attempts += 1;
        for i in 0..self.seeds.len() {
            let seed = self.seeds[i].clone();
            self.send_push_pull(seed, true, false, out);
        }
    }

    /// Join retries with bounded exponential backoff while unanswered, and re-contact of the
    /// seeds whenever this node finds itself without live members.
    fn on_join_round(&mut self, out: &mut Vec<Output<A>>) {
        if self.local.state == MemberState::Left {
            self.next_join_at = None;
            return;
        }
        if self.join_pending || self.members.active() == 0 {
            self.contact_seeds(out);
            self.next_join_at = Some(self.now + self.join_backoff);
            self.join_backoff = self
                .join_backoff
                .saturating_mul(2)
                .min(self.config.join_retry_max);
        } else {
            self.join_backoff = self.config.join_retry_initial;
            self.next_join_at = Some(self.now + self.config.probe_interval);
        }
    }

    fn run_command(
        &mut self,
        command: Command<A>,
        out: &mut Vec<Output<A>>,
    ) -> Result<(), CommandError> {
        let r = self.try_command(command, out);
        if let Err(e) = &r {
            out.push(Output::Event(Event::CommandRejected(e.clone())));
        }
        r
    }

    fn try_command(
        &mut self,
        command: Command<A>,
        out: &mut Vec<Output<A>>,
    ) -> Result<(), CommandError> {
        if self.local.state == MemberState::Left {
            return Err(CommandError::Left);
        }
        match command {
            Command::Join { seeds } => {
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
                self.seeds = unique;
                self.join_pending = true;
                self.join_backoff = self.config.join_retry_initial;
                self.contact_seeds(out);
                self.next_join_at = Some(self.now + self.join_backoff);
                self.join_backoff = self
                    .join_backoff
                    .saturating_mul(2)
                    .min(self.config.join_retry_max);
            }
            Command::Leave => {
                self.local.state = MemberState::Left;
                self.probe = None;
                self.next_probe_at = Instant::MAX;
                self.next_join_at = None;
                self.next_push_pull_at = None;
                self.announce_self();
                if self.members.active() == 0 {
                    self.leave_reported = true;
                    out.push(Output::Event(Event::LeaveComplete));
                }
            }
            Command::InstallKey(key) => {
                let ring = self
                    .config
                    .keyring
                    .as_mut()
                    .ok_or(CommandError::NoKeyring)?;
                ring.install(key).map_err(CommandError::Keyring)?;
            }
            Command::UseKey(key) => {
                let ring = self
                    .config
                    .keyring
                    .as_mut()
                    .ok_or(CommandError::NoKeyring)?;
                ring.use_key(&key).map_err(CommandError::Keyring)?;
            }
            Command::RemoveKey(key) => {
                let ring = self
                    .config
                    .keyring
                    .as_mut()
                    .ok_or(CommandError::NoKeyring)?;
                ring.remove(&key).map_err(CommandError::Keyring)?;
            }
            Command::Publish(w) => self.publish(alloc::vec![(w, false)], out)?,
            Command::PublishMany(ws) => {
                self.publish(ws.into_iter().map(|w| (w, false)).collect(), out)?;
            }
            Command::Delete { ty, key } => {
                let w = crate::io::StateWrite {
                    ty,
                    key,
                    value: Vec::new(),
                };
                self.publish(alloc::vec![(w, true)], out)?;
            }
            Command::UpdateMetadata(meta) => {
                if meta.len() > self.config.max_meta_len {
                    return Err(CommandError::MetadataTooLarge {
                        len: meta.len(),
                        max: self.config.max_meta_len,
                    });
                }
                self.local.meta = Metadata::from(meta);
                self.local.incarnation = self.local.incarnation.saturating_add(1);
                self.announce_self();
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- receiving

    fn drop_packet(&mut self, from: &A, reason: DropReason, out: &mut Vec<Output<A>>) {
        self.stats.dropped.bump(reason);
        out.push(Output::Event(Event::PacketDropped {
            from: from.clone(),
            reason,
        }));
    }

    fn on_datagram(&mut self, from: &A, bytes: &[u8], out: &mut Vec<Output<A>>) {
        self.stats.datagrams_received += 1;
        self.stats.datagram_bytes_received += bytes.len() as u64;
        let mut plain = core::mem::take(&mut self.plain);
        match self.unseal(bytes, &mut plain) {
            Ok(Some(start)) => self.on_datagram_payload(from, &bytes[start..], out),
            Ok(None) => self.on_datagram_payload(from, &plain, out),
            Err(e) => self.drop_packet(from, DropReason::Decode(e), out),
        }
        self.plain = plain;
    }

    fn on_datagram_payload(&mut self, from: &A, payload: &[u8], out: &mut Vec<Output<A>>) {
        let dg = match wire::decode_datagram_payload::<A>(payload) {
            Ok(dg) => dg,
            Err(e) => return self.drop_packet(from, DropReason::Decode(e), out),
        };
        if let Err(reason) = dg.updates.iter().try_for_each(|u| self.validate_update(u)) {
            return self.drop_packet(from, reason, out);
        }
        if let Err(reason) = dg
            .state
            .iter()
            .try_for_each(|u| self.validate_state_update(u))
        {
            return self.drop_packet(from, reason, out);
        }
        self.stats.received.bump(dg.message.kind());
        for u in &dg.updates {
            self.apply_update(u, Source::Gossip, out);
        }
        for e in &dg.state {
            self.apply_state(*e, out);
        }
        match dg.message {
            Message::Gossip => {}
            Message::Ping {
                seq,
                target,
                checksum,
            } => {
                if target != self.local.name.as_str() {
                    return self.drop_packet(from, DropReason::PingForOtherNode, out);
                }
                self.observe_checksum(from.clone(), checksum);
                self.send_ack(from.clone(), seq, out);
            }
            Message::PingReq {
                seq,
                target,
                target_addr,
                want_nack,
            } => {
                if target.is_empty() || target.len() > self.config.max_name_len {
                    return self.drop_packet(from, DropReason::BadName, out);
                }
                self.on_ping_req(from, seq, target, target_addr, want_nack, out);
            }
            Message::Ack { seq, checksum } => self.on_ack(from, seq, checksum, out),
            Message::Nack { seq } => {
                if let Some(p) = self
                    .probe
                    .as_mut()
                    .filter(|p| p.seq == seq && p.indirect_sent)
                {
                    p.nacks += 1;
                }
            }
        }
    }

    fn on_stream(&mut self, from: &A, bytes: &[u8], out: &mut Vec<Output<A>>) {
        self.stats.streams_received += 1;
        self.stats.stream_bytes_received += bytes.len() as u64;
        if bytes.len() > self.config.max_stream_message_size {
            return self.drop_packet(from, DropReason::StreamTooLarge, out);
        }
        let mut plain = core::mem::take(&mut self.plain);
        match self.unseal(bytes, &mut plain) {
            Ok(Some(start)) => self.on_stream_payload(from, &bytes[start..], out),
            Ok(None) => self.on_stream_payload(from, &plain, out),
            Err(e) => self.drop_packet(from, DropReason::Decode(e), out),
        }
        // A snapshot can be megabytes: keep the buffer only if it is datagram-sized.
        if plain.capacity() <= 2 * self.config.max_packet_size {
            self.plain = plain;
        }
    }

    fn on_stream_payload(&mut self, from: &A, payload: &[u8], out: &mut Vec<Output<A>>) {
        let msg = match wire::decode_stream_payload::<A>(payload) {
            Ok(m) => m,
            Err(e) => return self.drop_packet(from, DropReason::Decode(e), out),
        };
        if msg.header.sender == self.local.name.as_str() {
            return self.drop_packet(from, DropReason::FromSelf, out);
        }
        if let Err(reason) = msg.updates.iter().try_for_each(|u| self.validate_update(u)) {
            return self.drop_packet(from, reason, out);
        }
        if let (StreamKind::State { phase }, Some(sync)) = (msg.header.kind, &msg.state) {
            if self.local.state == MemberState::Left {
                return;
            }
            self.stats.received.bump(MessageKind::StateSync);
            return self.on_state_stream(phase, msg.header.sender_addr.clone(), sync, out);
        }
        self.stats.received.bump(MessageKind::PushPull);
        let (join, reply, source) = match msg.header.kind {
            StreamKind::PushPull { join, reply } => (
                join,
                reply,
                Source::PushPull {
                    join_reply: join && reply,
                },
            ),
            StreamKind::Heal { reply } => {
                self.stats.heals_received += 1;
                (
                    false,
                    reply,
                    Source::Heal {
                        sender: msg.header.sender,
                    },
                )
            }
            StreamKind::State { .. } => unreachable!("state streams carry a state body"),
        };
        let changes_before = self.table_changes;
        for u in &msg.updates {
            self.apply_update(u, source, out);
        }
        let learned = self.table_changes > changes_before;
        self.members.trim();
        let sender_addr = msg.header.sender_addr;
        if let StreamKind::Heal { reply: false } = msg.header.kind {
            self.send_snapshot(sender_addr, StreamKind::Heal { reply: true }, out);
        } else if !reply {
            // The answer echoes `join` so the joiner can tell its join snapshot apart.
            self.send_push_pull(sender_addr, join, true, out);
        } else if join && self.join_pending {
            self.join_pending = false;
            self.join_backoff = self.config.join_retry_initial;
            // Members that joined concurrently were gossiped while few knew of us, so their
            // epidemics could not reach us. Follow-up anti-entropy rounds fill that gap: the
            // first once an epidemic has had time to run, then at doubling delays for as long
            // as each round still teaches us something (at most `MAX_JOIN_SYNC_ROUNDS`).
            let limit = retransmit_limit(self.config.retransmit_mult, self.members.active() + 1);
            let settle = self.config.gossip_interval.saturating_mul(limit);
            self.join_sync = Some((MAX_JOIN_SYNC_ROUNDS, settle));
            self.pull_push_pull_forward(settle);
            self.start_sync(sender_addr.clone(), out);
            out.push(Output::Event(Event::JoinCompleted { via: sender_addr }));
        } else if let Some((left, delay)) = self.join_sync {
            self.join_sync = None;
            if learned && left > 1 {
                let delay = delay.saturating_mul(2);
                self.join_sync = Some((left - 1, delay));
                self.pull_push_pull_forward(delay);
            }
        }
    }

    /// Remembers a member declared dead as a target for partition healing (bounded).
    fn remember_failed(&mut self, name: NodeName, addr: A) {
        if self.config.max_failed_memory == 0 {
            return;
        }
        if self.failed.len() >= self.config.max_failed_memory {
            self.failed.pop_front();
        }
        self.failed.push_back((name, addr, self.now));
    }

    /// Partition healing (ringpop's approach, fixing memberlist#222): each `heal_interval`,
    /// with probability `min(1, heal_base / n)`, send a heal snapshot to a member this node holds
    /// failed, or to one of its join seeds that is not an active member. If it is alive on the other side of a healed partition, the exchange revives each
    /// side in the other's view and the reincarnation spreads by gossip.
    fn on_heal_round(&mut self, out: &mut Vec<Output<A>>) {
        if self.local.state == MemberState::Left {
            self.next_heal_at = None;
            return;
        }
        self.next_heal_at = Some(self.now + self.config.heal_interval);
        while let Some((_, _, at)) = self.failed.front() {
            if self.now.saturating_duration_since(*at) <= self.config.failed_memory_time {
                break;
            }
            self.failed.pop_front();
        }
        let n = self.cluster_size().max(1) as u64;
        if (self.failed.is_empty() && self.seeds.is_empty())
            || self.rng.next_u64() % n >= u64::from(self.config.heal_base)
        {
            return;
        }
        // Seeds this node joined through that are not active members now: one may be on the
        // other side of a partition under another name, or back after a restart.
        let lost_seeds: Vec<A> = self
            .seeds
            .iter()
            .filter(|s| {
                !self
                    .members
                    .iter()
                    .any(|e| e.member.state.is_active() && e.member.addr == **s)
            })
            .cloned()
            .collect();
        let candidates = self.failed.len() + lost_seeds.len();
        if candidates == 0 {
            return;
        }
        let pick = random_index(&mut self.rng, candidates);
        if pick >= self.failed.len() {
            let to = lost_seeds[pick - self.failed.len()].clone();
            self.stats.heals_sent += 1;
            self.send_snapshot(to, StreamKind::Heal { reply: false }, out);
            return;
        }
        // A few tries to find a remembered member that is not active again already.
        for _ in 0..4 {
            let i = random_index(&mut self.rng, self.failed.len());
            let (name, addr, _) = &self.failed[i];
            if self
                .members
                .get(name.as_str())
                .is_some_and(|e| e.member.state.is_active())
            {
                continue;
            }
            let to = addr.clone();
            self.stats.heals_sent += 1;
            self.send_snapshot(to, StreamKind::Heal { reply: false }, out);
            return;
        }
    }

    /// Makes the next push-pull round happen within `delay` (never later than planned).
    fn pull_push_pull_forward(&mut self, delay: Duration) {
        let at = self.now + delay;
        if self.next_push_pull_at.is_none_or(|t| t > at) {
            self.next_push_pull_at = Some(at);
        }
        self.push_pull_spread = true;
    }

    /// Writes the packet header, and room for the nonce when encrypting; returns where the
    /// payload starts.
    fn open_packet(&self, buf: &mut Vec<u8>) -> usize {
        let label = self.config.cluster_label.as_bytes();
        let encrypted = self.config.keyring.is_some();
        wire::write_header(buf, label, if encrypted { FLAG_ENCRYPTED } else { 0 });
        if encrypted {
            buf.extend_from_slice(&[0; NONCE_LEN]);
        }
        buf.len()
    }

    /// Encrypts the payload written after `start` in place, if a keyring is configured.
    fn seal_packet(&mut self, buf: &mut Vec<u8>, start: usize) {
        if self.config.keyring.is_none() {
            return;
        }
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill_bytes(&mut nonce);
        if let Some(k) = &self.config.keyring {
            k.seal(buf, start, nonce);
        }
    }

    /// Checks a packet's header and finds its plaintext payload: `Some(start)` when it is
    /// `bytes[start..]`, `None` when it was decrypted into `plain`.
    fn unseal(
        &self,
        bytes: &[u8],
        plain: &mut Vec<u8>,
    ) -> Result<Option<usize>, wire::DecodeError> {
        let h = wire::read_header(bytes, self.config.cluster_label.as_bytes())?;
        match (&self.config.keyring, h.flags & FLAG_ENCRYPTED != 0) {
            (None, false) => Ok(Some(h.len)),
            (None, true) => Err(wire::DecodeError::Encrypted),
            (Some(_), false) => Err(wire::DecodeError::NotEncrypted),
            (Some(k), true) => {
                k.open(&bytes[..h.len], &bytes[h.len..], plain)?;
                Ok(None)
            }
        }
    }

    /// The keyring, if encryption is on.
    pub fn keyring(&self) -> Option<&crate::keyring::Keyring> {
        self.config.keyring.as_ref()
    }

    fn next_seq(&mut self) -> u32 {
        self.next_seq = self.next_seq.wrapping_add(1);
        self.next_seq
    }
}
