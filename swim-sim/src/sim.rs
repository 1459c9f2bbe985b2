//! The engine: a priority queue of events ordered by (time, sequence), real `swim-proto` nodes,
//! the simulated network, faults, metrics and invariants. One seed drives every random choice.

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

use crate::metrics::Metrics;
use crate::net::{Fate, Network, Partition};
use crate::report::{Cost, FaultWindow, Report, Summary};
use crate::scenario::{Fault, NodeId, Scenario, Start};
use crate::workload::{self, StateTracker};

/// Derives independent seeds from one (SplitMix64).
pub fn derive_seed(seed: u64, a: u64, b: u64) -> u64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Progress of a run, passed to the progress callback.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Simulated time reached.
    pub now: Instant,
    /// Simulated end.
    pub end: Instant,
    /// Events processed so far.
    pub events: u64,
}

/// How to run a scenario.
#[derive(Default)]
pub struct RunOptions {
    /// Write a trace of every node's inputs here.
    pub record: Option<Box<dyn Write>>,
    /// Called every few hundred thousand events.
    pub progress: Option<Box<dyn FnMut(Progress)>>,
    /// Run every node's full `check_invariants` after every step (default: only when the
    /// cluster has at most 64 nodes; otherwise on a rotating subset at every sample).
    pub check_every_step: Option<bool>,
    /// Compute `Report::output_digest` over every output of every node.
    pub digest: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    NotStarted,
    Up,
    Crashed,
    Left,
}

struct SimNode {
    name: NodeName,
    node: Option<Node<NodeId>>,
    life: Life,
    boots: u64,
    paused: bool,
    backlog: Vec<Input<NodeId>>,
    slow: Option<Duration>,
    skew_ppm: i64,
    skew_origin: (Instant, Instant),
    tick_at: Option<Instant>,
    incarnation: u64,
    ever_faulty: bool,
}

enum Ev {
    Deliver {
        to: NodeId,
        input: Input<NodeId>,
        slowed: bool,
    },
    Tick {
        node: NodeId,
    },
    FaultStart(usize),
    FaultEnd(usize),
    Sample,
    /// A workload write by this node.
    Publish(NodeId),
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
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

struct Engine<'a> {
    scenario: &'a Scenario,
    seed: u64,
    now: Instant,
    end: Instant,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    rng: ChaCha8Rng,
    nodes: Vec<SimNode>,
    net: Network,
    metrics: Metrics,
    events: u64,
    out: Vec<Output<NodeId>>,
    violation: Option<String>,
    record: Option<Box<dyn Write>>,
    record_buf: Vec<u8>,
    check_every_step: bool,
    check_cursor: usize,
    last_fault_end: Instant,
    digest: Option<u64>,
    state: Option<StateTracker>,
    /// Which nodes are up (running, not crashed or gone), for the state tracker.
    up: Vec<bool>,
    /// Per node: the checksum of its stable view (None while unstable) and its leader.
    views: Vec<(Option<u64>, Option<NodeName>)>,
    /// Membership changes not yet followed by one stable view and leader everywhere.
    view_pending: Vec<Instant>,
    stable_view_ms: Vec<f64>,
}

fn global_to_local(n: &SimNode, g: Instant) -> Instant {
    if n.skew_ppm == 0 {
        return Instant::from_nanos(
            n.skew_origin.1.as_nanos() + (g.as_nanos() - n.skew_origin.0.as_nanos()),
        );
    }
    let dg = i128::from(g.as_nanos() - n.skew_origin.0.as_nanos());
    let dl = dg * (1_000_000 + i128::from(n.skew_ppm)) / 1_000_000;
    Instant::from_nanos((i128::from(n.skew_origin.1.as_nanos()) + dl).max(0) as u64)
}

/// The earliest global instant at which the node's clock reads `l` or later.
fn local_to_global(n: &SimNode, l: Instant) -> Instant {
    if l == Instant::MAX {
        return Instant::MAX;
    }
    let dl = i128::from(l.as_nanos()) - i128::from(n.skew_origin.1.as_nanos());
    let rate = 1_000_000 + i128::from(n.skew_ppm);
    let dg = if dl <= 0 {
        dl * 1_000_000 / rate
    } else {
        (dl * 1_000_000 + rate - 1) / rate
    };
    let g = i128::from(n.skew_origin.0.as_nanos()) + dg;
    Instant::from_nanos(g.clamp(0, i128::from(u64::MAX)) as u64)
}

impl<'a> Engine<'a> {
    fn new(scenario: &'a Scenario, seed: u64, opts: &mut RunOptions) -> Self {
        let n = scenario.nodes;
        let nodes = (0..n)
            .map(|i| SimNode {
                name: NodeName::new(&format!("node-{i}")).expect("valid name"),
                node: None,
                life: Life::NotStarted,
                boots: 0,
                paused: false,
                backlog: Vec::new(),
                slow: None,
                skew_ppm: 0,
                skew_origin: (Instant::ZERO, Instant::ZERO),
                tick_at: None,
                incarnation: 0,
                ever_faulty: false,
            })
            .collect();
        Engine {
            scenario,
            seed,
            now: Instant::ZERO,
            end: Instant::ZERO + scenario.duration,
            queue: BinaryHeap::new(),
            seq: 0,
            rng: ChaCha8Rng::seed_from_u64(derive_seed(seed, 0x4e37, 0)),
            nodes,
            net: Network::new(scenario.network.clone()),
            metrics: Metrics::new(n),
            events: 0,
            out: Vec::new(),
            violation: None,
            record: opts.record.take(),
            record_buf: Vec::new(),
            check_every_step: opts.check_every_step.unwrap_or(n <= 64),
            check_cursor: 0,
            last_fault_end: Instant::ZERO,
            digest: opts.digest.then_some(0xcbf2_9ce4_8422_2325),
            state: scenario.workload.as_ref().map(|w| StateTracker::new(n, w)),
            up: vec![false; n],
            views: vec![(None, None); n],
            view_pending: Vec::new(),
            stable_view_ms: Vec::new(),
        }
    }

    fn schedule(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            ev,
        });
    }

    fn violate(&mut self, what: String) {
        if self.violation.is_none() {
            self.violation = Some(format!("seed {} at {}: {what}", self.seed, self.now));
        }
    }

    fn write_record(&mut self, rec: &TraceRecord<NodeId>) {
        if let Some(w) = self.record.as_mut() {
            self.record_buf.clear();
            trace::encode_frame(rec, &mut self.record_buf);
            if let Err(e) = w.write_all(&self.record_buf) {
                self.violation
                    .get_or_insert(format!("trace write failed: {e}"));
            }
        }
    }

    /// Starts node `v` with fresh state.
    fn boot(&mut self, v: NodeId) {
        let measure_join = !(self.now == Instant::ZERO && self.scenario.start == Start::Warm);
        let cfg: Config = self.scenario.config.clone();
        let n = &mut self.nodes[v as usize];
        n.boots += 1;
        let seed = derive_seed(self.seed, u64::from(v) + 1, n.boots);
        let id = Identity::new(n.name.clone(), v);
        n.node = Some(Node::new(cfg.clone(), id, seed).expect("scenario config was validated"));
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
        self.metrics.node_up(self.now, v, measure_join);
        self.up[v as usize] = true;
        self.views[v as usize] = (None, None);
        self.view_changed_truth();
        self.schedule(self.now, Ev::Tick { node: v });
    }

    fn seeds_for(&self, v: NodeId) -> Vec<NodeId> {
        let mut seeds: Vec<NodeId> = self
            .scenario
            .seeds
            .iter()
            .copied()
            .filter(|&s| s != v)
            .collect();
        if seeds.is_empty() {
            seeds.extend(
                (0..self.nodes.len() as NodeId)
                    .filter(|&s| s != v && self.nodes[s as usize].life == Life::Up)
                    .take(3),
            );
        }
        seeds
    }

    fn start(&mut self) {
        let n = self.scenario.nodes as NodeId;
        let late = &self.scenario.late_joiners;
        match &self.scenario.start {
            Start::Warm => {
                // One snapshot, as if every node had joined long ago: the answer to a join
                // (so nobody re-gossips it) from a name that is not a member.
                let started: Vec<NodeId> = (0..n).filter(|v| !late.contains(v)).collect();
                let names: Vec<String> = started
                    .iter()
                    .map(|&v| self.nodes[v as usize].name.to_string())
                    .collect();
                let updates: Vec<Update<'_, NodeId>> = started
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
                let label = self.scenario.config.cluster_label.as_bytes();
                let mut snapshot = wire::encode_stream(label, &header, &updates);
                if let Some(ring) = &self.scenario.config.keyring {
                    let mut nonce = [0u8; 12];
                    self.rng.fill_bytes(&mut nonce);
                    snapshot = ring
                        .encrypt_packet(&snapshot, nonce)
                        .expect("a fresh plaintext snapshot encrypts");
                }
                for &v in &started {
                    self.boot(v);
                    self.deliver(
                        v,
                        Input::Stream {
                            from: NodeId::MAX,
                            bytes: snapshot.clone(),
                        },
                    );
                }
            }
            Start::JoinStorm { within } => {
                let within = *within;
                for v in (0..n).filter(|v| !late.contains(v)) {
                    self.boot(v);
                    if v != 0 {
                        let at = self.now
                            + Duration::from_nanos(
                                self.rng.next_u64() % within.as_nanos().max(1) as u64,
                            );
                        let input = Input::Command(Command::Join { seeds: vec![0] });
                        self.schedule(
                            at,
                            Ev::Deliver {
                                to: v,
                                input,
                                slowed: false,
                            },
                        );
                    }
                }
                // Convergence counts from here: with only some nodes booted, their lone views
                // trivially matched the partial truth.
                self.metrics.first_convergence = None;
                self.metrics.converged_since = None;
            }
        }
        for (i, f) in self.scenario.faults.iter().enumerate() {
            let at = Instant::ZERO + f.at;
            self.queue.push(Scheduled {
                at,
                seq: 0,
                ev: Ev::FaultStart(i),
            });
            let end = at + f.fault.duration().unwrap_or_default();
            self.last_fault_end = self.last_fault_end.max(end);
            let shade_end = match f.fault {
                Fault::Crash { .. } | Fault::Leave { .. } | Fault::Join { .. } => {
                    at + self.scenario.duration / 200
                }
                Fault::ClockSkew { .. } | Fault::LinkLoss { .. } => self.end,
                Fault::Command { .. } => at + self.scenario.duration / 400,
                _ => end,
            };
            self.metrics.faults.push(FaultWindow {
                start_ms: at.as_nanos() as f64 / 1e6,
                end_ms: shade_end.min(self.end).as_nanos() as f64 / 1e6,
                label: f.fault.label(),
            });
        }
        self.schedule(self.now + self.scenario.sample_interval, Ev::Sample);
        if let Some(w) = &self.scenario.workload {
            let period = Duration::from_secs_f64(1.0 / w.writes_per_node_per_s);
            for v in 0..n {
                let offset = Duration::from_nanos(self.rng.next_u64() % period.as_nanos() as u64);
                self.schedule(Instant::ZERO + w.start + offset, Ev::Publish(v));
            }
        }
    }

    /// A workload write: the node publishes its next key, and writes again one period later.
    fn publish(&mut self, v: NodeId) {
        let Some(w) = &self.scenario.workload else {
            return;
        };
        if self.now >= Instant::ZERO + w.stop {
            return;
        }
        let period = Duration::from_secs_f64(1.0 / w.writes_per_node_per_s);
        self.schedule(self.now + period, Ev::Publish(v));
        if !self.up[v as usize] || self.nodes[v as usize].paused {
            return;
        }
        let (ty, size) = (w.ty.clone(), w.value_size);
        let tracker = self.state.as_mut().expect("a workload has a tracker");
        let (key, seq) = tracker.publish(v, self.now);
        let write = swim_proto::StateWrite::new(ty, key, workload::value(seq, size));
        self.deliver(v, Input::Command(Command::Publish(write)));
    }

    /// A membership change: time until one stable view and leader everywhere again.
    fn view_changed_truth(&mut self) {
        if self.scenario.config.view.advertise && self.now > Instant::ZERO {
            self.view_pending.push(self.now);
        }
    }

    /// Whether every up node reports the same stable view; checks that they then name the same
    /// leader, and measures `stable_view_ms`.
    fn check_views(&mut self) {
        let mut up = self.views.iter().zip(&self.up).filter(|(_, u)| **u);
        let Some(((Some(cs), leader), _)) = up.next() else {
            return;
        };
        let (cs, leader) = (*cs, leader.clone());
        let mut same_view = true;
        let mut other_leader = None;
        for ((c, l), _) in up {
            if *c != Some(cs) {
                same_view = false;
                break;
            }
            if *l != leader {
                other_leader = Some(l.clone());
            }
        }
        if !same_view {
            return;
        }
        if let Some(other) = other_leader {
            // Leaders come from the stable view's member list and ranks; a node may briefly
            // name none while its last stable leader is suspected, never another one.
            if other.is_some() && leader.is_some() {
                self.violate(format!(
                    "nodes stable on one view name different leaders: {leader:?} and {other:?}"
                ));
            }
            return;
        }
        if leader.is_some() {
            for since in std::mem::take(&mut self.view_pending) {
                self.stable_view_ms
                    .push(self.now.saturating_duration_since(since).as_secs_f64() * 1e3);
            }
        }
    }

    /// Marks a node down for the state tracker.
    fn state_down(&mut self, v: NodeId) {
        self.up[v as usize] = false;
        self.views[v as usize] = (None, None);
        self.view_changed_truth();
        if let Some(t) = self.state.as_mut() {
            t.node_down(v, self.now, &self.up);
        }
    }

    /// Hands an input to a node now, honouring pause and slowness, and carries out its outputs.
    fn deliver(&mut self, v: NodeId, input: Input<NodeId>) {
        let vi = v as usize;
        let local_now = global_to_local(&self.nodes[vi], self.now);
        let sn = &mut self.nodes[vi];
        let Some(node) = sn.node.as_mut() else { return };
        if sn.paused {
            sn.backlog.push(input);
            return;
        }
        self.out.clear();
        let recorded_input = self.record.is_some().then(|| input.clone());
        node.handle_into(input, local_now, &mut self.out);
        // Safety invariants checked after every step.
        let local = node.local();
        let (inc, dead) = (local.incarnation, local.state == MemberState::Dead);
        let table: usize = [
            MemberState::Alive,
            MemberState::Suspect,
            MemberState::Dead,
            MemberState::Left,
        ]
        .iter()
        .map(|&s| node.count(s))
        .sum();
        if self.check_every_step {
            node.check_invariants();
        }
        let previous = std::mem::replace(&mut sn.incarnation, inc);
        let name = sn.name.clone();
        if dead {
            self.violate(format!("{name} holds itself dead"));
        }
        if inc < previous {
            self.violate(format!("{name} incarnation decreased {previous} -> {inc}"));
        }
        if table > self.scenario.config.max_members {
            self.violate(format!("{name} member table {table} above max_members"));
        }
        if let Some(d) = self.digest.as_mut() {
            let step = trace::digest_outputs(&self.out)
                ^ u64::from(v)
                ^ self.now.as_nanos().rotate_left(17);
            *d = (*d ^ step).wrapping_mul(0x0100_0000_01b3);
        }
        if let Some(input) = recorded_input {
            let digest = trace::digest_outputs(&self.out);
            self.write_record(&TraceRecord::Step {
                node: v,
                now: local_now,
                input,
                digest,
            });
        }
        let mut out = std::mem::take(&mut self.out);
        let mut stop_after = false;
        for o in out.drain(..) {
            match o {
                Output::SendDatagram { to, bytes } => {
                    if bytes.len() > self.scenario.config.max_packet_size {
                        self.violate(format!(
                            "{} sent a {}-byte datagram",
                            self.nodes[vi].name,
                            bytes.len()
                        ));
                    }
                    self.metrics.on_datagram(v, bytes.len());
                    if to as usize >= self.nodes.len() {
                        continue;
                    }
                    match self.net.datagram(v, to, bytes.len(), &mut self.rng) {
                        Fate::Dropped => {}
                        Fate::Delivered(d) => {
                            self.schedule(
                                self.now + d,
                                Ev::Deliver {
                                    to,
                                    input: Input::Datagram { from: v, bytes },
                                    slowed: false,
                                },
                            );
                        }
                        Fate::Duplicated(d1, d2) => {
                            let copy = Input::Datagram {
                                from: v,
                                bytes: bytes.clone(),
                            };
                            self.schedule(
                                self.now + d1,
                                Ev::Deliver {
                                    to,
                                    input: copy,
                                    slowed: false,
                                },
                            );
                            self.schedule(
                                self.now + d2,
                                Ev::Deliver {
                                    to,
                                    input: Input::Datagram { from: v, bytes },
                                    slowed: false,
                                },
                            );
                        }
                    }
                }
                Output::SendStream { to, bytes } => {
                    self.metrics.on_stream(v, bytes.len());
                    if to as usize >= self.nodes.len() {
                        continue;
                    }
                    if let Some(d) = self.net.stream(v, to, &mut self.rng) {
                        self.schedule(
                            self.now + d,
                            Ev::Deliver {
                                to,
                                input: Input::Stream { from: v, bytes },
                                slowed: false,
                            },
                        );
                    }
                }
                Output::TickAt(t) => {
                    if t <= local_now {
                        self.violate(format!(
                            "{} asked for a tick at {t}, not after its now {local_now}",
                            self.nodes[vi].name
                        ));
                        continue;
                    }
                    let g = local_to_global(&self.nodes[vi], t).max(self.now);
                    let sn = &mut self.nodes[vi];
                    if sn.tick_at.is_none_or(|p| g < p) && g != Instant::MAX {
                        sn.tick_at = Some(g);
                        self.schedule(g, Ev::Tick { node: v });
                    }
                }
                Output::Event(Event::StateChanged {
                    key,
                    new: Some(entry),
                    ..
                }) => {
                    if let (Some(t), Some(value)) = (self.state.as_mut(), entry.value.as_deref()) {
                        t.on_change(v, key.ty(), key.key(), value, self.now, &self.up);
                    }
                }
                Output::Event(Event::ViewStable { checksum, .. }) => {
                    self.views[vi].0 = Some(checksum);
                    self.check_views();
                }
                Output::Event(Event::ViewChanged { .. }) => self.views[vi].0 = None,
                Output::Event(Event::LeaderChanged { leader }) => {
                    self.views[vi].1 = leader;
                    self.check_views();
                }
                Output::Event(e) => {
                    if matches!(e, Event::LeaveComplete) {
                        stop_after = true;
                    }
                    self.on_event(v, &e);
                }
                _ => {}
            }
        }
        self.out = out;
        if stop_after && self.nodes[vi].life == Life::Left {
            self.nodes[vi].node = None;
        }
    }

    fn on_event(&mut self, o: NodeId, e: &Event<NodeId>) {
        let nodes = &self.nodes;
        let faulty = |t: NodeId| nodes.get(t as usize).is_some_and(|n| n.ever_faulty);
        let observer_faulty = nodes[o as usize].ever_faulty;
        if let Some((victim, healthy)) = self.metrics.on_event(self.now, o, e, faulty)
            && healthy
            && !observer_faulty
            && !self.net.ever_lossy
        {
            let name = self.nodes[victim as usize].name.to_string();
            let by = self.nodes[o as usize].name.to_string();
            self.violate(format!(
                "with zero loss, healthy {name} was declared dead by healthy {by}"
            ));
        }
    }

    fn crash(&mut self, v: NodeId) {
        let n = &mut self.nodes[v as usize];
        if n.life != Life::Up {
            return;
        }
        n.node = None;
        n.life = Life::Crashed;
        n.paused = false;
        n.backlog.clear();
        n.tick_at = None;
        let inc = n.incarnation;
        self.metrics.node_down(self.now, v, Some(inc));
        self.state_down(v);
    }

    fn fault_start(&mut self, i: usize) {
        let f = self.scenario.faults[i].fault.clone();
        let end = self.now + f.duration().unwrap_or_default();
        match f {
            Fault::Crash { node } => self.crash(node),
            Fault::CrashRestart { node, .. } => {
                self.crash(node);
                self.schedule(end, Ev::FaultEnd(i));
            }
            Fault::Pause { node, .. } => {
                let n = &mut self.nodes[node as usize];
                if n.life == Life::Up {
                    n.paused = true;
                    n.ever_faulty = true;
                    self.schedule(end, Ev::FaultEnd(i));
                }
            }
            Fault::Slow { node, delay, .. } => {
                let n = &mut self.nodes[node as usize];
                n.slow = Some(delay);
                n.ever_faulty = true;
                self.schedule(end, Ev::FaultEnd(i));
            }
            Fault::ClockSkew { node, ppm } => {
                let n = &mut self.nodes[node as usize];
                let local = global_to_local(n, self.now);
                n.skew_origin = (self.now, local);
                n.skew_ppm = ppm;
            }
            Fault::Leave { node } => {
                if self.nodes[node as usize].life == Life::Up {
                    self.deliver(node, Input::Command(Command::Leave));
                    let n = &mut self.nodes[node as usize];
                    if n.life == Life::Up {
                        n.life = Life::Left;
                        if n.node
                            .as_ref()
                            .is_some_and(|x| x.local().state == MemberState::Left)
                            && n.node.as_ref().is_some_and(|x| x.cluster_size() == 0)
                        {
                            n.node = None;
                        }
                        self.metrics.node_down(self.now, node, None);
                        self.state_down(node);
                    }
                }
            }
            Fault::Join { node } => {
                if self.nodes[node as usize].life == Life::NotStarted {
                    self.boot(node);
                    let seeds = self.seeds_for(node);
                    self.deliver(node, Input::Command(Command::Join { seeds }));
                }
            }
            Fault::Partition {
                groups, one_way, ..
            } => {
                let p = Partition::new(i, self.nodes.len(), &groups, one_way);
                let total = self.nodes.len();
                let mut sizes = vec![0usize; groups.len() + 1];
                for &g in &p.group {
                    sizes[g as usize] += 1;
                }
                for (v, &g) in p.group.iter().enumerate() {
                    if sizes[g as usize] * 2 <= total {
                        self.nodes[v].ever_faulty = true;
                    }
                }
                self.net.partitions.push(p);
                self.net.now_lossy(self.now);
                self.schedule(end, Ev::FaultEnd(i));
            }
            Fault::Loss { rate, .. } => {
                self.net.extra_loss.push((i, rate));
                if rate > 0.0 {
                    self.net.now_lossy(self.now);
                }
                self.schedule(end, Ev::FaultEnd(i));
            }
            Fault::Command { node, command } => self.deliver(node, Input::Command(command)),
            Fault::LinkLoss { from, to, rate } => {
                self.net.link_loss.insert((from, to), rate);
                if rate > 0.0 {
                    self.net.now_lossy(self.now);
                }
            }
        }
    }

    fn fault_end(&mut self, i: usize) {
        match self.scenario.faults[i].fault.clone() {
            Fault::CrashRestart { node, .. } if self.nodes[node as usize].life == Life::Crashed => {
                self.boot(node);
                let seeds = self.seeds_for(node);
                self.deliver(node, Input::Command(Command::Join { seeds }));
            }
            Fault::Pause { node, .. } => {
                let n = &mut self.nodes[node as usize];
                if n.paused {
                    n.paused = false;
                    let backlog = std::mem::take(&mut n.backlog);
                    self.deliver(node, Input::Tick);
                    for input in backlog {
                        self.deliver(node, input);
                    }
                }
            }
            Fault::Slow { node, .. } => self.nodes[node as usize].slow = None,
            Fault::Partition { .. } => {
                self.net.partitions.retain(|p| p.id != i);
                if self.net.partitions.is_empty() {
                    self.metrics.partition_healed(self.now);
                }
            }
            Fault::Loss { .. } => self.net.extra_loss.retain(|(id, _)| *id != i),
            _ => {}
        }
    }

    fn sample(&mut self) {
        let interval = self.scenario.sample_interval;
        self.metrics.sample(self.now, interval.as_secs_f64());
        if let Some(t) = self.state.as_mut() {
            t.sweep(self.now, &self.up);
        }
        if !self.check_every_step {
            // Full O(n) invariant checks on a rotating subset, ~200k member and state entries
            // per sample.
            let n = self.nodes.len();
            let entries = self
                .nodes
                .iter()
                .find_map(|x| x.node.as_ref())
                .map_or(0, |x| x.stats().state.entries as usize);
            let k = (200_000 / (n + 16 * entries).max(1)).clamp(1, n);
            for _ in 0..k {
                self.check_cursor = (self.check_cursor + 1) % n;
                if let Some(node) = &self.nodes[self.check_cursor].node {
                    node.check_invariants();
                }
            }
        }
        self.schedule(self.now + interval, Ev::Sample);
    }

    fn run(&mut self, progress: &mut Option<Box<dyn FnMut(Progress)>>) {
        self.start();
        while let Some(s) = self.queue.pop() {
            if s.at > self.end || self.violation.is_some() {
                break;
            }
            self.now = s.at;
            self.events += 1;
            match s.ev {
                Ev::Deliver { to, input, slowed } => {
                    if !slowed && let Some(d) = self.nodes[to as usize].slow {
                        self.schedule(
                            self.now + d,
                            Ev::Deliver {
                                to,
                                input,
                                slowed: true,
                            },
                        );
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
                Ev::FaultStart(i) => self.fault_start(i),
                Ev::FaultEnd(i) => self.fault_end(i),
                Ev::Sample => self.sample(),
                Ev::Publish(v) => self.publish(v),
            }
            if self.events.is_multiple_of(262_144)
                && let Some(p) = progress.as_mut()
            {
                p(Progress {
                    now: self.now,
                    end: self.end,
                    events: self.events,
                });
            }
        }
        if self.violation.is_none() {
            self.now = self.end;
            self.check_liveness();
        }
        if std::env::var_os("SWIM_SIM_DEBUG_STATE").is_some() {
            let mut total = swim_proto::StateStats::default();
            for n in self.nodes.iter().filter_map(|n| n.node.as_ref()) {
                let s = n.stats().state;
                total.received += s.received;
                total.applied += s.applied;
                total.not_newer += s.not_newer;
                total.stale += s.stale;
                total.piggybacked += s.piggybacked;
                total.queue_dropped += s.queue_dropped;
                total.syncs += s.syncs;
                total.sync_entries_sent += s.sync_entries_sent;
            }
            eprintln!("state totals: {total:?}");
        }
        if std::env::var_os("SWIM_SIM_DEBUG_VIEWS").is_some() {
            for o in 0..self.nodes.len() {
                if self.nodes[o].life == Life::Up {
                    let (missing, extra) = self.metrics.views.diff(o);
                    if missing + extra > 0 {
                        let n = self.nodes[o].node.as_ref().map(|n| {
                            (
                                n.cluster_size(),
                                n.stats().streams_received,
                                n.stats().join_attempts,
                            )
                        });
                        eprintln!(
                            "node-{o}: missing {missing} extra {extra} (cluster_size, streams_received, join_attempts) {n:?}"
                        );
                    }
                }
            }
        }
    }

    /// After the last fault, views must converge within the bound the config implies.
    fn check_liveness(&mut self) {
        if !self.scenario.check_liveness {
            return;
        }
        let bound = self.scenario.liveness_bound();
        let quiet_from = self.last_fault_end;
        if self.end < quiet_from + bound {
            return; // the run ends too soon after the last fault to judge
        }
        match self.metrics.converged_since {
            Some(t) if t <= quiet_from + bound => {}
            _ => {
                let deadline = quiet_from + bound;
                self.violate(format!(
                    "liveness: views did not converge to the live set within {:.0} s of the last fault (by {deadline})",
                    bound.as_secs_f64()
                ));
            }
        }
    }
}

fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs a scenario with a seed and returns what it measured. A violated invariant stops the
/// run early; it is reported in `Report::violation` with the seed and the simulated time.
pub fn run(scenario: &Scenario, seed: u64, mut opts: RunOptions) -> Report {
    let wall = std::time::Instant::now();
    let mut progress = opts.progress.take();
    let mut engine = Engine::new(scenario, seed, &mut opts);
    if engine.record.is_some() {
        let header = TraceHeader {
            version: trace::TRACE_VERSION,
            seed,
            description: format!("swim-sim scenario {}", scenario.name),
        };
        let mut buf = trace::TRACE_MAGIC.to_vec();
        trace::encode_frame(&header, &mut buf);
        if let Some(w) = engine.record.as_mut()
            && let Err(e) = w.write_all(&buf)
        {
            engine.violation = Some(format!("trace write failed: {e}"));
        }
    }
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.run(&mut progress)));
    if let Err(panic) = outcome {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into());
        engine.violation = Some(format!(
            "seed {seed} at {}: invariant panic: {msg}",
            engine.now
        ));
    }
    if let Some(w) = engine.record.as_mut()
        && let Err(e) = w.flush()
    {
        engine
            .violation
            .get_or_insert(format!("trace write failed: {e}"));
    }
    let wall_s = wall.elapsed().as_secs_f64();
    let seconds = engine.now.as_nanos() as f64 / 1e9;
    let (detection, samples) = engine.metrics.detection();
    let peak = peak_memory_bytes();
    let n = scenario.nodes;
    let state = engine.state.as_ref().map(|t| {
        let prints: Vec<u64> = engine
            .nodes
            .iter()
            .zip(&engine.up)
            .filter(|(_, up)| **up)
            .filter_map(|(n, _)| n.node.as_ref())
            .map(|n| n.state_fingerprint())
            .collect();
        let converged = prints.windows(2).all(|w| w[0] == w[1]);
        t.report(converged, prints.len())
    });
    Report {
        scenario: scenario.name.clone(),
        nodes: n,
        seconds,
        seed,
        wall_s,
        events: engine.events,
        detection,
        false_positives: engine.metrics.false_positives(),
        load: engine.metrics.load(seconds),
        convergence_ms: engine
            .metrics
            .first_convergence
            .map(|t| t.as_nanos() as f64 / 1e6),
        heal_ms: engine.metrics.heal_ms,
        heal_nodes_ms: Summary::of(&engine.metrics.heal_node_ms),
        stable_view_ms: Summary::of(&engine.stable_view_ms),
        converged: engine.metrics.converged_since.is_some(),
        unconverged_nodes: engine.metrics.views.unconverged(),
        packets_dropped: engine
            .nodes
            .iter()
            .filter_map(|n| n.node.as_ref())
            .map(|n| n.stats().dropped.total())
            .sum(),
        dissemination: engine.metrics.dissemination(),
        state,
        output_digest: engine.digest.map(|d| format!("{d:016x}")),
        cost: Cost {
            node_seconds_per_wall_s: n as f64 * seconds / wall_s.max(1e-9),
            events_per_wall_s: engine.events as f64 / wall_s.max(1e-9),
            peak_memory_bytes: peak,
            memory_per_node_bytes: peak.map(|p| p / n.max(1) as u64),
        },
        invariant_violations: usize::from(engine.violation.is_some()),
        violation: engine.violation.take(),
        faults: std::mem::take(&mut engine.metrics.faults),
        series: std::mem::take(&mut engine.metrics.series),
        detection_samples_ms: samples,
    }
}
