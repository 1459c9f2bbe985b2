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
use swim_proto::{
    Command, Config, Event, Identity, Input, Instant, MemberState, Node, NodeName, Output,
};

use crate::invariants::{self, AfterStep, Violation};
use crate::net::{Fate, Network, Partition};
use crate::scenario::{NetworkSpec, NodeId};

mod clock;

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
    digest: Option<u64>,
    record: Option<(Box<dyn Write>, Vec<u8>)>,
    next_id: usize,
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
            steps: 0,
            violation: None,
            check_every_step: n <= 64,
            digest: None,
            record: None,
            next_id: 0,
        }
    }

    // ---- settings --------------------------------------------------------------------------

    /// Run every node's full `check_invariants` after every step (or not).
    pub fn check_every_step(&mut self, on: bool) {
        self.check_every_step = on;
    }

    /// Start computing [`World::output_digest`] over every output of every node from now on.
    pub fn enable_digest(&mut self) {
        self.digest.get_or_insert(0xcbf2_9ce4_8422_2325);
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
            self.flag_always(Violation::TraceWrite(e.to_string()));
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
        self.digest
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

    /// Records a violation found outside the world (the first one wins).
    pub(crate) fn flag(&mut self, v: Violation) {
        if self.violation.is_none() {
            self.violation = Some((self.now, v));
        }
    }

    fn flag_always(&mut self, v: Violation) {
        self.violation.get_or_insert((self.now, v));
    }

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

    // ---- node faults -----------------------------------------------------------------------

    /// Stops node `v` abruptly (no leave, state lost); nothing if it is not up.
    pub fn crash(&mut self, v: NodeId) {
        let n = &mut self.nodes[v as usize];
        if n.life != Life::Up {
            return;
        }
        n.node = None;
        n.life = Life::Crashed;
        n.paused = false;
        n.backlog.clear();
        n.tick_at = None;
        let incarnation = n.incarnation;
        self.observe(v, Happening::Crashed { incarnation });
    }

    /// Starts node `v` afresh (same name and address, new state) and joins it through
    /// `seeds`.
    pub fn restart(&mut self, v: NodeId, seeds: Vec<NodeId>) {
        self.join(v, seeds);
    }

    /// Node `v` leaves gracefully: it gets `Command::Leave`, stops counting as up, and its
    /// process exits once its leave is out. Nothing if it is not up.
    pub fn leave(&mut self, v: NodeId) {
        if self.nodes[v as usize].life != Life::Up {
            return;
        }
        self.deliver(v, Input::Command(Command::Leave));
        let n = &mut self.nodes[v as usize];
        if n.life == Life::Up {
            n.life = Life::Left;
            if n.node
                .as_ref()
                .is_some_and(|x| x.local().state == MemberState::Left && x.cluster_size() == 0)
            {
                n.node = None;
            }
            self.observe(v, Happening::Left);
        }
    }

    /// Node `v` stops processing (a long GC pause): inputs queue up until [`World::resume`].
    /// Returns whether it was up to pause.
    pub fn pause(&mut self, v: NodeId) -> bool {
        let n = &mut self.nodes[v as usize];
        if n.life == Life::Up {
            n.paused = true;
        }
        n.life == Life::Up
    }

    /// A paused node ticks, then handles its backlog in order.
    pub fn resume(&mut self, v: NodeId) {
        let n = &mut self.nodes[v as usize];
        if n.paused {
            n.paused = false;
            let backlog = std::mem::take(&mut n.backlog);
            self.deliver(v, Input::Tick);
            for input in backlog {
                self.deliver(v, input);
            }
        }
    }

    /// Every inbound message to node `v` is handled `delay` late (`None`: on time again).
    pub fn set_slow(&mut self, v: NodeId, delay: Option<Duration>) {
        self.nodes[v as usize].slow = delay;
    }

    /// Node `v`'s clock runs `ppm` parts per million fast (positive) or slow from now.
    pub fn skew_clock(&mut self, v: NodeId, ppm: i64) {
        self.nodes[v as usize].clock.set_rate(self.now, ppm);
    }

    // ---- network faults --------------------------------------------------------------------

    /// Cuts traffic between groups (only from group 0 to the others when `one_way`); nodes
    /// in no group form one more group.
    pub fn partition(&mut self, groups: &[Vec<NodeId>], one_way: bool) -> PartitionId {
        let id = self.next_id;
        self.next_id += 1;
        let p = Partition::new(id, self.nodes.len(), groups, one_way);
        self.net.partitions.push(p);
        self.net.now_lossy();
        PartitionId(id)
    }

    /// Ends one partition.
    pub fn repair(&mut self, id: PartitionId) {
        self.net.partitions.retain(|p| p.id != id.0);
    }

    /// Whether any partition or cut link is in force.
    pub fn is_partitioned(&self) -> bool {
        !self.net.partitions.is_empty()
    }

    /// Cuts one direction of one link.
    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        self.net.cut.insert((from, to));
        self.net.now_lossy();
    }

    /// Cuts both directions between `v` and every other node.
    pub fn isolate(&mut self, v: NodeId) {
        for o in (0..self.nodes.len() as NodeId).filter(|&o| o != v) {
            self.cut(v, o);
            self.cut(o, v);
        }
    }

    /// Restores every cut link and ends every partition.
    pub fn repair_all(&mut self) {
        self.net.cut.clear();
        self.net.partitions.clear();
    }

    /// Sets the network's own datagram loss probability.
    pub fn set_loss(&mut self, rate: f64) {
        self.net.spec.loss = rate;
        if rate > 0.0 {
            self.net.now_lossy();
        }
    }

    /// Sets the network's delay: `base` plus uniform jitter below `jitter`.
    pub fn set_delay(&mut self, base: Duration, jitter: Duration) {
        self.net.spec.base_delay = base;
        self.net.spec.jitter = jitter;
    }

    /// Adds datagram loss on top of the network's, until removed.
    pub fn add_loss(&mut self, rate: f64) -> LossId {
        let id = self.next_id;
        self.next_id += 1;
        self.net.extra_loss.push((id, rate));
        if rate > 0.0 {
            self.net.now_lossy();
        }
        LossId(id)
    }

    /// Removes loss added by [`World::add_loss`].
    pub fn remove_loss(&mut self, id: LossId) {
        self.net.extra_loss.retain(|(i, _)| *i != id.0);
    }

    /// Loss `rate` on the link `from → to`.
    pub fn set_link_loss(&mut self, from: NodeId, to: NodeId, rate: f64) {
        self.net.link_loss.insert((from, to), rate);
        if rate > 0.0 {
            self.net.now_lossy();
        }
    }

    // ---- one step --------------------------------------------------------------------------

    /// Hands an input to node `v` now and carries out what it outputs.
    fn deliver(&mut self, v: NodeId, input: Input<NodeId>) {
        let vi = v as usize;
        let local_now = self.nodes[vi].clock.local(self.now);
        let sn = &mut self.nodes[vi];
        let Some(node) = sn.node.as_mut() else { return };
        if sn.paused {
            sn.backlog.push(input);
            return;
        }
        self.out.clear();
        let recorded_input = self.record.is_some().then(|| input.clone());
        node.handle_into(input, local_now, &mut self.out);
        self.check_step(v);
        self.digest_step(v, local_now, recorded_input);
        let mut out = std::mem::take(&mut self.out);
        let mut left = false;
        for o in out.drain(..) {
            match o {
                Output::SendDatagram { to, bytes } => self.send_datagram(v, to, bytes),
                Output::SendStream { to, bytes } => self.send_stream(v, to, bytes),
                Output::TickAt(t) => self.tick_at(v, t, local_now),
                Output::Event(e) => {
                    left |= matches!(e, Event::LeaveComplete);
                    self.observe(v, Happening::Event(e));
                }
                _ => {}
            }
        }
        self.out = out;
        if left && self.nodes[vi].life == Life::Left {
            self.nodes[vi].node = None;
        }
    }

    /// The per-step invariants on node `v`, just after it handled an input.
    fn check_step(&mut self, v: NodeId) {
        let sn = &mut self.nodes[v as usize];
        let node = sn.node.as_ref().expect("the node just stepped");
        if self.check_every_step {
            node.check_invariants();
        }
        let max_members = sn.config.as_ref().unwrap_or(&self.config).max_members;
        let incarnation_before = sn.incarnation;
        sn.incarnation = node.local().incarnation;
        let step = AfterStep {
            name: &sn.name,
            incarnation_before,
            max_members,
        };
        let violation = &mut self.violation;
        let now = self.now;
        invariants::check_step(node, &step, &mut |x| {
            violation.get_or_insert((now, x));
        });
    }

    /// Folds node `v`'s outputs into the digest and the trace.
    fn digest_step(&mut self, v: NodeId, local_now: Instant, input: Option<Input<NodeId>>) {
        if let Some(d) = self.digest.as_mut() {
            let step = trace::digest_outputs(&self.out)
                ^ u64::from(v)
                ^ self.now.as_nanos().rotate_left(17);
            *d = (*d ^ step).wrapping_mul(0x0100_0000_01b3);
        }
        if let Some(input) = input {
            let digest = trace::digest_outputs(&self.out);
            self.write_record(&TraceRecord::Step {
                node: v,
                now: local_now,
                input,
                digest,
            });
        }
    }

    fn send_datagram(&mut self, v: NodeId, to: NodeId, bytes: Vec<u8>) {
        let max = self.max_packet_size(v);
        if bytes.len() > max {
            let node = self.nodes[v as usize].name.clone();
            let bytes = bytes.len();
            self.flag(Violation::OversizeDatagram { node, bytes });
        }
        let t = &mut self.traffic[v as usize];
        t.datagrams += 1;
        t.datagram_bytes += bytes.len() as u64;
        if to as usize >= self.nodes.len() {
            return;
        }
        match self.net.datagram(v, to, bytes.len(), &mut self.rng) {
            Fate::Dropped => {}
            Fate::Delivered(d) => {
                let input = Input::Datagram { from: v, bytes };
                self.input_at(self.now + d, to, input);
            }
            Fate::Duplicated(d1, d2) => {
                let copy = Input::Datagram {
                    from: v,
                    bytes: bytes.clone(),
                };
                self.input_at(self.now + d1, to, copy);
                self.input_at(self.now + d2, to, Input::Datagram { from: v, bytes });
            }
        }
    }

    fn send_stream(&mut self, v: NodeId, to: NodeId, bytes: Vec<u8>) {
        let t = &mut self.traffic[v as usize];
        t.streams += 1;
        t.stream_bytes += bytes.len() as u64;
        if to as usize >= self.nodes.len() {
            return;
        }
        if let Some(d) = self.net.stream(v, to, &mut self.rng) {
            self.input_at(self.now + d, to, Input::Stream { from: v, bytes });
        }
    }

    /// Node `v` asked for a tick at its local time `t`.
    fn tick_at(&mut self, v: NodeId, t: Instant, local_now: Instant) {
        let sn = &mut self.nodes[v as usize];
        if t <= local_now {
            let node = sn.name.clone();
            self.flag(Violation::TickNotAfterNow {
                node,
                at: t,
                now: local_now,
            });
            return;
        }
        let g = sn.clock.global(t).max(self.now);
        if sn.tick_at.is_none_or(|p| g < p) && g != Instant::MAX {
            sn.tick_at = Some(g);
            self.schedule(g, Ev::Tick { node: v });
        }
    }

    fn max_packet_size(&self, v: NodeId) -> usize {
        let n = &self.nodes[v as usize];
        n.config.as_ref().unwrap_or(&self.config).max_packet_size
    }

    fn observe(&mut self, node: NodeId, what: Happening) {
        self.observed.push(Observed {
            at: self.now,
            node,
            what,
        });
    }

    fn write_record(&mut self, rec: &TraceRecord<NodeId>) {
        if let Some((w, buf)) = self.record.as_mut() {
            buf.clear();
            trace::encode_frame(rec, buf);
            if let Err(e) = w.write_all(buf) {
                self.flag_always(Violation::TraceWrite(e.to_string()));
            }
        }
    }
}
