//! The node: SWIM with Lifeguard's extensions as one deterministic state machine.
//!
//! [`Node`] and its public API live here; each protocol rule has its own room, an
//! `impl Node` block in a child module that owns its fields:
//!
//! | module | rule | fields |
//! | --- | --- | --- |
//! | `timers` | every deadline, the earliest computed in one place | [`TimerTable`] |
//! | `probe` | SWIM §3.1, §4.3 probing; Lifeguard §IV-A nacks | `Probing` |
//! | `suspicion` | SWIM §4.2 suspicion, Lifeguard §IV-B dynamic timeout; tombstones | (in the member table) |
//! | `updates` | SWIM §4.2 precedence: learn, transition, refute | (the member table) |
//! | `gossip` | SWIM §4.1 dissemination: piggybacking and gossip rounds | `broadcasts` |
//! | `sync` | push-pull anti-entropy | `SyncState` |
//! | `join` | joining through seeds: options, retries, follow-up rounds (`docs/protocol.md` §12.4) | `join_run` (and `SyncState`) |
//! | `heal` | partition healing | `HealState` |
//! | `command` | application commands | |
//! | `receive` | decoding and dispatch of received packets | `Buffers::plain` |
//! | `admission` | which received claims may be merged: incarnation window, address conflicts; reply and introduction limits (`docs/security.md`) | `limits` |
//! | `state`, `state_sync` | replicated key/value state and its anti-entropy (`docs/protocol.md` §10) | `state`, `state_queue` |
//! | `view` | checksums, stable views, leader (`docs/protocol.md` §11) | `view` |
//! | `remove` | operator removal (`docs/protocol.md` §12.1) | `removals` |
//! | `lifecycle` | status, readiness, pausing the failure detector (`docs/protocol.md` §12.2, §12.4) | `fd_paused`, `lifecycle` |
//! | `messaging`, `user_event`, `query` | direct messages, Serf user events and queries (`docs/protocol.md` §13) | `messaging` |
//! | `timing` | protocol timings: probe round trips, periods, suspicion durations (`docs/protocol.md` §14) | `timing` |
//! | `reconfigure` | a new config applied at run time (`docs/protocol.md` §12.3) | |
//!
//! Packet framing and encryption are `crate::packet`.

use alloc::vec::Vec;
use core::fmt::Debug;
use core::hash::Hash;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::Serialize;
use serde::de::DeserializeOwned;

mod admission;
mod command;
mod gossip;
mod heal;
mod join;
mod lifecycle;
pub(crate) mod probe;
mod receive;
mod remove;
mod state;
mod state_sync;
pub(crate) mod suspicion;
mod sync;
mod timers;
mod updates;
mod view;
// Application messaging (issue 14).
mod messaging;
mod query;
mod user_event;
// Protocol stats with timings (issue 14).
mod timing;
// Lifecycle and reconfiguration (issue 14).
mod reconfigure;

pub(crate) use gossip::BroadcastQueue;
pub use lifecycle::Status;
pub use view::View;

use crate::config::{Config, ConfigError};
use crate::health::LocalHealth;
use crate::io::{Command, CommandError, Identity, Input, Output};
use crate::member::{Member, MemberState};
use crate::membership::MemberTable;
use crate::state::{StateKey, StateStore};
use crate::stats::Stats;
use crate::time::Instant;
use heal::HealState;
use probe::Probing;
use sync::SyncState;
use timers::TimerTable;
use updates::Source;

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

/// Reused buffers, so building and receiving packets does not allocate per packet.
#[derive(Debug, Default)]
struct Buffers {
    /// Membership updates while packing a datagram, or a snapshot's body.
    body: Vec<u8>,
    /// State entries while packing a datagram.
    state: Vec<u8>,
    /// Decrypted payloads (kept only while datagram-sized).
    plain: Vec<u8>,
}

/// A SWIM cluster member: feed it inputs with [`Node::handle`], carry out its outputs.
///
/// # Starting
///
/// [`Node::new`] creates a node that has sent nothing and holds no deadline. Its first input,
/// whatever it is ([`Node::start`] is a tick), starts its periodic timers at that input's
/// `now`, each at a random offset within its period. A node that should join a cluster gets
/// [`Command::Join`] as (or soon after) its first input; a node that is a cluster's first
/// member only needs to be started.
///
/// # Methods
///
/// - **inputs** (each returns or appends the outputs, ending with [`Output::TickAt`]):
///   [`handle`](Node::handle), [`handle_into`](Node::handle_into),
///   [`start`](Node::start), [`handle_datagram`](Node::handle_datagram),
///   [`handle_stream`](Node::handle_stream);
/// - **commands**: [`command`](Node::command) (also reachable as [`Input::Command`]);
/// - **queries** — membership: [`local`](Node::local), [`members`](Node::members),
///   [`members_in`](Node::members_in), [`member`](Node::member), [`count`](Node::count),
///   [`cluster_size`](Node::cluster_size); views: [`checksum`](Node::checksum),
///   [`view`](Node::view), [`cluster_consistent`](Node::cluster_consistent),
///   [`node_versions`](Node::node_versions), [`leader`](Node::leader),
///   [`is_leader`](Node::is_leader); replicated state: [`state_get`](Node::state_get),
///   [`state_entry`](Node::state_entry), [`state_iter`](Node::state_iter),
///   [`state_digest`](Node::state_digest), [`state_fingerprint`](Node::state_fingerprint),
///   [`state_clock`](Node::state_clock), [`state_watermark`](Node::state_watermark);
///   the node itself: [`stats`](Node::stats), [`health_score`](Node::health_score),
///   [`pending_broadcasts`](Node::pending_broadcasts), [`config`](Node::config),
///   [`keyring`](Node::keyring), [`now`](Node::now),
///   [`failure_detector_paused`](Node::failure_detector_paused);
/// - **time**: [`next_deadline`](Node::next_deadline) (also sent as [`Output::TickAt`]);
/// - **drains**: none; every output is returned by the input that caused it, so nothing
///   waits inside the node to be polled;
/// - **checks**: [`check_invariants`](Node::check_invariants).
///
/// Contract: `now` should never go backwards (an earlier `now` is treated as the latest seen);
/// a tick earlier than [`Output::TickAt`] is harmless; outputs are a pure function of
/// config, seed and the sequence of `(input, now)`.
pub struct Node<A: Address> {
    config: Config,
    rng: ChaCha8Rng,
    /// The latest `now` seen.
    now: Instant,
    /// Whether the first input has started the timers.
    started: bool,
    local: Member<A>,
    members: MemberTable<A>,
    health: LocalHealth,
    stats: Stats,
    timers: TimerTable,
    probing: Probing<A>,
    /// Membership updates waiting to be piggybacked (SWIM §4.1).
    broadcasts: BroadcastQueue,
    /// Whether [`crate::Event::LeaveComplete`] went out.
    leave_reported: bool,
    sync: SyncState<A>,
    heal: HealState<A>,
    buffers: Buffers,
    /// The replicated key/value state.
    state: StateStore,
    /// State entries waiting to be piggybacked.
    state_queue: BroadcastQueue<StateKey>,
    /// Checksums, stability and the leader.
    view: view::ViewTracker,
    /// The last peer whose checksum differed from ours.
    checksum_peer: Option<A>,
    // --- operator control (issue 14) ---
    /// Members removed by an operator, and whether this node was.
    removals: remove::Removals,
    /// The failure detector is paused: no probes, answers still given (`lifecycle`).
    fd_paused: bool,
    // Application messaging (issue 14).
    /// Direct messages, user events and queries.
    messaging: messaging::Messaging<A>,
    // --- protocol stats with timings (issue 14) ---
    /// Send times of the probe and period in flight (`timing`).
    timing: timing::TimingState,
    // Abuse resistance, wave 3 (issue 13).
    /// Reply limits for unverified addresses and per-source introduction limits (`admission`).
    limits: admission::Limits<A>,
    // Lifecycle and bootstrap (issue 14).
    /// Status and readiness (`lifecycle`).
    lifecycle: lifecycle::Lifecycle,
    /// The join in progress or the last one (`join`).
    join_run: join::JoinRun<A>,
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
        let config_messaging_queue = config.messaging.max_event_queue;
        let mut hasher = || foldhash::fast::FixedState::with_seed(rng.next_u64());
        let (h1, h2, h3, h4, h5) = (hasher(), hasher(), hasher(), hasher(), hasher());
        let identity_name = identity.name.clone();
        // Derived without drawing from the RNG, so nodes not using messaging draw as before.
        let h6 = foldhash::fast::FixedState::with_seed(core::hash::BuildHasher::hash_one(
            &h3,
            0x6d73_6731_3400_u64,
        ));
        Ok(Node {
            members: MemberTable::new(h1),
            probing: Probing::new(h2),
            broadcasts: BroadcastQueue::new(config.max_broadcast_queue, h3),
            state_queue: BroadcastQueue::new(config.state.max_queue, h4),
            health: LocalHealth::new(config.max_local_health),
            sync: SyncState::new(config.join_retry_initial),
            local: Member {
                name: identity.name,
                addr: identity.addr,
                incarnation: config.start_incarnation,
                state: MemberState::Alive,
                meta: identity.meta,
            },
            config,
            rng,
            now: Instant::ZERO,
            started: false,
            timers: TimerTable::default(),
            stats: Stats::default(),
            heal: HealState::new(),
            leave_reported: false,
            buffers: Buffers::default(),
            state: StateStore::new(h5, identity_name),
            view: view::ViewTracker::default(),
            checksum_peer: None,
            removals: remove::Removals::default(),
            fd_paused: false,
            messaging: messaging::Messaging::new(config_messaging_queue, h6),
            timing: timing::TimingState::default(),
            limits: admission::Limits::new(),
            lifecycle: lifecycle::Lifecycle::new(),
            join_run: join::JoinRun::new(),
        })
    }

    // ---------------------------------------------------------------- inputs

    /// Handles one input at time `now` and returns what to do. Due timers fire first. The
    /// first input a node receives, whatever it is, starts its timers (see [`Node::start`]).
    pub fn handle(&mut self, input: Input<A>, now: Instant) -> Vec<Output<A>> {
        let mut out = Vec::new();
        self.handle_into(input, now, &mut out);
        out
    }

    /// Like [`Node::handle`], appending to a caller's buffer (reuse it in hot loops).
    pub fn handle_into(&mut self, input: Input<A>, now: Instant, out: &mut Vec<Output<A>>) {
        self.step(now, out, |node, out| match input {
            Input::Datagram { from, bytes } => node.on_datagram(&from, &bytes, out),
            Input::Stream { from, bytes } => node.on_stream(&from, &bytes, out),
            Input::Tick => {}
            Input::Command(c) => {
                let _ = node.run_command(c, out);
            }
        });
    }

    /// Starts the node at `now`: the same as `handle(Input::Tick, now)`. A node's periodic
    /// timers (probe, gossip, push-pull, healing, state sync) start at its first input,
    /// whatever that input is, each at a random offset within its period; until then
    /// [`Node::next_deadline`] is the latest `now` seen (the node wants an input right away).
    /// Calling `start` is optional and, on a node already started, is just a tick.
    pub fn start(&mut self, now: Instant) -> Vec<Output<A>> {
        self.handle(Input::Tick, now)
    }

    /// Handles a received datagram without taking ownership of its bytes. Same outputs as
    /// `handle_into(Input::Datagram { .. })`. [`Node::handle_stream`] is the same for streams.
    pub fn handle_datagram(
        &mut self,
        from: &A,
        bytes: &[u8],
        now: Instant,
        out: &mut Vec<Output<A>>,
    ) {
        self.step(now, out, |node, out| node.on_datagram(from, bytes, out));
    }

    /// Handles a received stream message without taking ownership of its bytes. Same outputs
    /// as `handle_into(Input::Stream { .. })`.
    pub fn handle_stream(
        &mut self,
        from: &A,
        bytes: &[u8],
        now: Instant,
        out: &mut Vec<Output<A>>,
    ) {
        self.step(now, out, |node, out| node.on_stream(from, bytes, out));
    }

    /// Runs a command and reports whether it was accepted. Same outputs as
    /// `handle_into(Input::Command(..))`, including [`Event::CommandRejected`](crate::Event::CommandRejected) on error; on
    /// error the node's state is unchanged.
    pub fn command(
        &mut self,
        command: Command<A>,
        now: Instant,
        out: &mut Vec<Output<A>>,
    ) -> Result<(), CommandError> {
        self.step(now, out, |node, out| node.run_command(command, out))
    }

    /// One input: due timers fire first (the first input also starts the timers), then `f`
    /// handles the input, then [`Node::finish`].
    fn step<R>(
        &mut self,
        now: Instant,
        out: &mut Vec<Output<A>>,
        f: impl FnOnce(&mut Self, &mut Vec<Output<A>>) -> R,
    ) -> R {
        self.advance(now, out);
        let r = f(self, out);
        self.finish(out);
        r
    }

    /// Ends every input: the input may have made a deadline due (a confirmation shrinks a
    /// suspicion's timeout, measured from when it started, possibly into the past), so due
    /// timers fire again; then the next deadline, always after `now`, goes out.
    fn finish(&mut self, out: &mut Vec<Output<A>>) {
        self.fire_due(out);
        self.refresh_state_stats();
        self.report_status(out);
        out.push(Output::TickAt(self.next_deadline()));
    }

    // ---------------------------------------------------------------- queries

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
        self.earliest_deadline()
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
            self.probing.relays.len() <= self.config.max_pending_relays,
            "relay table within bound"
        );
        assert!(
            self.state_queue.len() <= self.config.state.max_queue,
            "state queue within bound"
        );
        self.check_messaging_invariants();
        assert!(
            self.limits.len() <= self.config.max_limited_sources,
            "per-source limit tables within max_limited_sources"
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

    /// The keyring, if encryption is on.
    pub fn keyring(&self) -> Option<&crate::keyring::Keyring> {
        self.config.keyring.as_ref()
    }

    /// Writes the packet header, and room for the nonce when encrypting; returns where the
    /// payload starts.
    fn open_packet(&self, buf: &mut Vec<u8>) -> usize {
        let label = self.config.cluster_label.as_bytes();
        crate::packet::open(buf, label, self.config.keyring.as_ref())
    }

    /// Encrypts the payload written after `start` in place, if a keyring is configured.
    fn seal_packet(&mut self, buf: &mut Vec<u8>, start: usize) {
        crate::packet::seal(buf, start, self.config.keyring.as_ref(), &mut self.rng);
    }
}
