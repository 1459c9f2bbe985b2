//! The world: real `swim-proto` nodes, the simulated network and a virtual clock, driven one
//! event at a time (in the style of turmoil's `Sim`). Faults are method calls; what the nodes
//! report is kept as [`Observed`] records; [`invariants`](crate::invariants) are checked after
//! every step. One seed drives every random choice.
//!
//! The event queue is ordered by (time, sequence number). Scenario timelines
//! ([`run`](crate::run)) put their own alarms into the same queue so that fault, sample and
//! workload events interleave with packets exactly as scheduled.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io::Write;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use swim_proto::trace::{self, TraceHeader, TraceRecord};
use swim_proto::wire::{self, StreamHeader, StreamKind, Update};
use swim_proto::{Command, Config, Event, Identity, Input, Instant, Node, NodeName, Output};

use crate::invariants::Violation;
use crate::net::Network;
use crate::scenario::{NetworkSpec, NodeId};

mod clock;
mod faults;
mod step;

impl World {
    /// What nodes sent to addresses no node holds (an adversary's, or the victim's of a
    /// reflection), in total.
    pub fn outside_traffic(&self) -> Traffic {
        self.outside
    }

    /// The cluster label forged packets must carry.
    pub(crate) fn config_label(&self) -> Vec<u8> {
        self.config.cluster_label.as_bytes().to_vec()
    }
}

use clock::Clock;

/// Derives independent seeds from one (SplitMix64).
pub fn derive_seed(seed: u64, a: u64, b: u64) -> u64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Where a node is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Life {
    /// Never booted.
    NotStarted,
    /// Running (possibly paused).
    Up,
    /// Crashed; may be restarted.
    Crashed,
    /// Left gracefully; its process exits once the leave is out.
    Left,
}

/// Something that happened to or was reported by a node.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Happening {
    /// The node reported an event.
    Event(Event<NodeId>),
    /// The node booted with fresh state.
    Booted,
    /// The node crashed, at this incarnation.
    Crashed {
        /// Its incarnation when it crashed.
        incarnation: u64,
    },
    /// The node finished its part of a graceful leave and stopped counting as up.
    Left,
}

/// One [`Happening`], with when and where.
#[derive(Clone, Debug)]
pub struct Observed {
    /// Simulated (global) time.
    pub at: Instant,
    /// The node.
    pub node: NodeId,
    /// What happened.
    pub what: Happening,
}

/// A partition made by [`World::partition`], to [`World::repair`] later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionId(usize);

/// Extra loss added by [`World::add_loss`], to remove later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LossId(usize);

/// What one simulated node is: its process (if running) and the faults on it.
struct SimNode {
    name: NodeName,
    node: Option<Node<NodeId>>,
    /// Its own config, if not the world's.
    config: Option<Config>,
    life: Life,
    boots: u64,
    paused: bool,
    backlog: Vec<Input<NodeId>>,
    slow: Option<Duration>,
    clock: Clock,
    tick_at: Option<Instant>,
    incarnation: u64,
}

pub(crate) enum Ev {
    Deliver {
        to: NodeId,
        input: Input<NodeId>,
        slowed: bool,
    },
    Tick {
        node: NodeId,
    },
    /// A timeline's own event, handed back to it by [`World::next_until`].
    Alarm(u64),
}

struct Scheduled {
    at: Instant,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and the earliest comes first.
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// What [`World::next_until`] did.
pub(crate) enum Next {
    /// Delivered an input or a tick (or dropped it for a node that is not running).
    Stepped,
    /// Reached a timeline alarm; the caller acts on it.
    Alarm(u64),
    /// Nothing due by the deadline, or a violation halted the world.
    Idle,
}

/// Bytes and messages one node sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Traffic {
    /// Datagrams sent.
    pub datagrams: u64,
    /// Their bytes.
    pub datagram_bytes: u64,
    /// Stream messages sent.
    pub streams: u64,
    /// Their bytes.
    pub stream_bytes: u64,
}

/// A simulated cluster you can step: nodes named `node-0..`, at addresses `0..n`, a seeded
/// network and a virtual clock starting at zero.
///
/// ```
/// use std::time::Duration;
/// use swim_proto::{Config, Instant, MemberState};
/// use swim_sim::{NetworkSpec, World};
///
/// let mut world = World::new(10, Config::lan(), NetworkSpec::default(), 7);
/// world.start_warm(); // every node up, knowing every other
/// world.run_for(Duration::from_secs(5));
/// world.crash(3);
/// world.run_until(Instant::from_secs(30));
/// for v in (0..10).filter(|&v| v != 3) {
///     let view = world.node(v).unwrap().member("node-3").map(|m| m.state);
///     assert_eq!(view, Some(MemberState::Dead), "node-{v}");
/// }
/// assert_eq!(world.violation(), None);
/// ```
pub struct World {
    seed: u64,
    config: Config,
    now: Instant,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    rng: ChaCha8Rng,
    nodes: Vec<SimNode>,
    pub(crate) net: Network,
    out: Vec<Output<NodeId>>,
    observed: Vec<Observed>,
    traffic: Vec<Traffic>,
    steps: u64,
    violation: Option<(Instant, Violation)>,
    check_every_step: bool,
    digest: Option<swim_proto::Fnv1a64>,
    record: Option<(Box<dyn Write>, Vec<u8>)>,
    next_id: usize,
    /// What nodes sent to addresses outside the world: an adversary's, or a victim's it named
    /// (`crate::adversary`).
    outside: Traffic,
    // issue 12: bytes per message kind, over every node.
    pub(crate) kind_bytes: crate::metrics::KindBytes,
}

impl World {
    /// `n` nodes, none started yet, all with `config` (validated: panics if it is not), on
    /// `network`; every random choice derives from `seed`. Every node's full
    /// `check_invariants` runs after every step when `n` is at most 64.
    pub fn new(n: usize, config: Config, network: NetworkSpec, seed: u64) -> World {
        config.validate().expect("World::new: the config is valid");
        let nodes = (0..n)
            .map(|i| SimNode {
                name: NodeName::new(&format!("node-{i}")).expect("valid name"),
                node: None,
                config: None,
                life: Life::NotStarted,
                boots: 0,
                paused: false,
                backlog: Vec::new(),
                slow: None,
                clock: Clock::default(),
                tick_at: None,
                incarnation: 0,
            })
            .collect();
        World {
            seed,
            config,
            now: Instant::ZERO,
            queue: BinaryHeap::new(),
            seq: 0,
            rng: ChaCha8Rng::seed_from_u64(derive_seed(seed, 0x4e37, 0)),
            nodes,
            net: Network::new(network),
            out: Vec::new(),
            observed: Vec::new(),
            traffic: vec![Traffic::default(); n],
            outside: Traffic::default(),
            steps: 0,
            violation: None,
            check_every_step: n <= 64,
            digest: None,
            record: None,
            next_id: 0,
            kind_bytes: crate::metrics::KindBytes::default(),
        }
    }

    // ---- settings --------------------------------------------------------------------------

    /// Run every node's full `check_invariants` after every step (or not).
    pub fn check_every_step(&mut self, on: bool) {
        self.check_every_step = on;
    }

    /// Start computing [`World::output_digest`] over every output of every node from now on.
    pub fn enable_digest(&mut self) {
        self.digest.get_or_insert_with(swim_proto::Fnv1a64::new);
    }

    /// Record a trace of every node's boots and inputs to `w`, starting with its header.
    pub fn record_to(&mut self, mut w: Box<dyn Write>, description: String) {
        let header = TraceHeader {
            version: trace::TRACE_VERSION,
            seed: self.seed,
            description,
        };
        let mut buf = trace::TRACE_MAGIC.to_vec();
        trace::encode_frame(&header, &mut buf);
        if let Err(e) = w.write_all(&buf) {
            self.flag(Violation::TraceWrite(e.to_string()));
        }
        self.record = Some((w, Vec::new()));
    }

    /// Flushes the trace, if recording.
    pub fn flush_record(&mut self) {
        if let Some((w, _)) = self.record.as_mut()
            && let Err(e) = w.flush()
        {
            self.flag(Violation::TraceWrite(e.to_string()));
        }
    }

    /// Gives node `v` its own config for its next boot (validated: panics if it is not).
    pub fn set_config(&mut self, v: NodeId, config: Config) {
        config
            .validate()
            .expect("World::set_config: the config is valid");
        self.nodes[v as usize].config = Some(config);
    }

    // ---- queries ---------------------------------------------------------------------------

    /// Current simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The seed the world was built from (print it when a test fails).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Number of nodes, running or not.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the world has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node at `v`, if its process runs.
    pub fn node(&self, v: NodeId) -> Option<&Node<NodeId>> {
        self.nodes[v as usize].node.as_ref()
    }

    /// Name of node `v`.
    pub fn name(&self, v: NodeId) -> &NodeName {
        &self.nodes[v as usize].name
    }

    /// Where node `v` is in its life.
    pub fn life(&self, v: NodeId) -> Life {
        self.nodes[v as usize].life
    }

    /// Whether node `v` is paused.
    pub fn is_paused(&self, v: NodeId) -> bool {
        self.nodes[v as usize].paused
    }

    /// What node `v` sent so far, over all its lives.
    pub fn traffic(&self, v: NodeId) -> Traffic {
        self.traffic[v as usize]
    }

    /// What every node sent so far, by node.
    pub fn all_traffic(&self) -> &[Traffic] {
        &self.traffic
    }

    /// Events processed so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The first broken invariant and when, if any; the world stops stepping after it.
    pub fn violation(&self) -> Option<&(Instant, Violation)> {
        self.violation.as_ref()
    }

    /// Whether any loss, cut link or partition ever applied.
    pub fn ever_lossy(&self) -> bool {
        self.net.ever_lossy
    }

    /// Hash of every output of every node since [`World::enable_digest`].
    pub fn output_digest(&self) -> Option<u64> {
        self.digest.map(|d| d.finish())
    }

    /// Everything observed since the last drain, in order.
    pub fn drain_observed(&mut self) -> std::vec::Drain<'_, Observed> {
        self.observed.drain(..)
    }

    pub(crate) fn take_observed(&mut self, into: &mut Vec<Observed>) {
        into.clear();
        std::mem::swap(&mut self.observed, into);
    }

    pub(crate) fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// Records a broken invariant; the first one wins and halts the world.
    pub(crate) fn flag(&mut self, v: Violation) {
        self.violation.get_or_insert((self.now, v));
    }

    /// Records a broken invariant in place of any earlier one (a panic ends the run).
    pub(crate) fn set_violation(&mut self, v: Violation) {
        self.violation = Some((self.now, v));
    }

    // ---- time ------------------------------------------------------------------------------

    /// Processes the next due event; false when nothing is queued or a violation halted the
    /// world. Timeline alarms are skipped.
    pub fn step(&mut self) -> bool {
        !matches!(self.next_until(Instant::MAX), Next::Idle)
    }

    /// Processes every event up to `deadline`, then sets the clock to it.
    pub fn run_until(&mut self, deadline: Instant) {
        while !matches!(self.next_until(deadline), Next::Idle) {}
        if self.violation.is_none() {
            self.now = self.now.max(deadline);
        }
    }

    /// Runs for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Sets the clock forward to `t` without processing anything.
    pub(crate) fn advance_clock(&mut self, t: Instant) {
        self.now = t;
    }

    /// Processes the next event due by `deadline`.
    pub(crate) fn next_until(&mut self, deadline: Instant) -> Next {
        if self.violation.is_some() || self.queue.peek().is_none_or(|s| s.at > deadline) {
            return Next::Idle;
        }
        let s = self.queue.pop().expect("peeked");
        self.now = s.at;
        self.steps += 1;
        match s.ev {
            Ev::Deliver { to, input, slowed } => {
                if !slowed && let Some(d) = self.nodes[to as usize].slow {
                    let input = Ev::Deliver {
                        to,
                        input,
                        slowed: true,
                    };
                    self.schedule(self.now + d, input);
                } else {
                    self.deliver(to, input);
                }
            }
            Ev::Tick { node } => {
                let n = &mut self.nodes[node as usize];
                if n.tick_at == Some(s.at) {
                    n.tick_at = None;
                    self.deliver(node, Input::Tick);
                }
            }
            Ev::Alarm(a) => return Next::Alarm(a),
        }
        Next::Stepped
    }

    fn schedule(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            ev,
        });
    }

    /// A timeline alarm at `at`, after everything already scheduled for then.
    pub(crate) fn alarm(&mut self, at: Instant, token: u64) {
        self.schedule(at, Ev::Alarm(token));
    }

    /// A timeline alarm at `at`, before anything else scheduled for then.
    pub(crate) fn alarm_first(&mut self, at: Instant, token: u64) {
        self.queue.push(Scheduled {
            at,
            seq: 0,
            ev: Ev::Alarm(token),
        });
    }

    // ---- nodes -----------------------------------------------------------------------------

    /// Starts node `v` with fresh state (a restart if it ran before); it ticks at once.
    pub fn boot(&mut self, v: NodeId) {
        let world_seed = self.seed;
        let n = &mut self.nodes[v as usize];
        let cfg = n.config.clone().unwrap_or_else(|| self.config.clone());
        n.boots += 1;
        let seed = derive_seed(world_seed, u64::from(v) + 1, n.boots);
        let id = Identity::new(n.name.clone(), v);
        n.node = Some(Node::new(cfg.clone(), id, seed).expect("the config was validated"));
        n.life = Life::Up;
        n.paused = false;
        n.backlog.clear();
        n.tick_at = None;
        n.incarnation = 0;
        let name = n.name.to_string();
        if self.record.is_some() {
            self.write_record(&TraceRecord::Boot {
                node: v,
                name,
                addr: v,
                meta: Vec::new(),
                seed,
                config: Box::new(cfg),
            });
        }
        self.observe(v, Happening::Booted);
        self.schedule(self.now, Ev::Tick { node: v });
    }

    /// Boots every node not yet started, each already knowing all of them (as after a
    /// long-finished join).
    pub fn start_warm(&mut self) {
        let all: Vec<NodeId> = (0..self.nodes.len() as NodeId)
            .filter(|&v| self.nodes[v as usize].life == Life::NotStarted)
            .collect();
        self.start_warm_nodes(&all);
    }

    /// Boots `nodes`, each handed one snapshot listing all of them: the answer to a join (so
    /// nobody re-gossips it) from a name that is not a member.
    pub fn start_warm_nodes(&mut self, nodes: &[NodeId]) {
        let snapshot = self.warm_snapshot(nodes);
        for &v in nodes {
            self.boot(v);
            let bytes = snapshot.clone();
            self.input(
                v,
                Input::Stream {
                    from: NodeId::MAX,
                    bytes,
                },
            );
        }
    }

    /// The snapshot [`World::start_warm_nodes`] hands each of `nodes`: a stream message to
    /// deliver from `NodeId::MAX` right after booting the node.
    pub fn warm_snapshot(&mut self, nodes: &[NodeId]) -> Vec<u8> {
        let names: Vec<String> = nodes
            .iter()
            .map(|&v| self.nodes[v as usize].name.to_string())
            .collect();
        let updates: Vec<Update<'_, NodeId>> = nodes
            .iter()
            .zip(&names)
            .map(|(&v, name)| Update::Alive {
                name,
                incarnation: 0,
                addr: v,
                meta: b"",
            })
            .collect();
        let header = StreamHeader {
            kind: StreamKind::PushPull {
                join: true,
                reply: true,
            },
            sender: "bootstrap",
            sender_addr: NodeId::MAX,
        };
        let label = self.config.cluster_label.as_bytes();
        let mut snapshot = wire::encode_stream(label, &header, &updates);
        if let Some(ring) = &self.config.keyring {
            let mut nonce = [0u8; 12];
            self.rng.fill_bytes(&mut nonce);
            snapshot = ring
                .encrypt_packet(&snapshot, nonce)
                .expect("a fresh plaintext snapshot encrypts");
        }
        snapshot
    }

    /// Boots node `v` and has it join through `seeds` at once.
    pub fn join(&mut self, v: NodeId, seeds: Vec<NodeId>) {
        self.boot(v);
        self.input(v, Input::Command(Command::Join { seeds }));
    }

    /// Hands an input to node `v` now, as its driver would (honouring pause).
    pub fn input(&mut self, v: NodeId, input: Input<NodeId>) {
        self.deliver(v, input);
    }

    /// Hands an input to node `v` at `at` (honouring slowness and pause then).
    pub fn input_at(&mut self, at: Instant, v: NodeId, input: Input<NodeId>) {
        let ev = Ev::Deliver {
            to: v,
            input,
            slowed: false,
        };
        self.schedule(at, ev);
    }
}
