//! A scenario's timeline driving a [`World`]: it starts the cluster, applies each fault to the
//! world at its time (and ends it after its duration), samples metrics, runs the state
//! workload, checks the cross-node invariants on what the world observed, judges liveness at
//! the end, and turns the [`Metrics`] into a [`Report`].
//!
//! A little over 600 lines on purpose: the scenario's whole schedule (faults, workload, checks)
//! reads top to bottom in one place; the outcome is in `timeline/outcome.rs`.

use std::io::Write;
use std::time::Duration;

use rand_core::RngCore;
use swim_proto::{Command, Event, Input, Instant};

mod outcome;
// Live fault rules (issue 14).
mod rules;
pub(crate) use rules::rule_member;

use crate::invariants::{StableViews, Violation};
use crate::metrics::Metrics;
use crate::net::Partition;
use crate::report::{FaultWindow, Report};
use crate::scenario::{Fault, NodeId, Scenario, Start};
use crate::workload::{self, StateTracker};
use crate::world::{Happening, Life, LossId, Next, Observed, PartitionId, World};

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

/// A timeline event, kept in the world's queue as an alarm token.
#[derive(Clone, Copy, Debug)]
enum Alarm {
    FaultStart(usize),
    FaultEnd(usize),
    Sample,
    /// A workload write by this node.
    Publish(NodeId),
    /// The `k`-th user event (issue 14).
    UserEvent(u64),
}

impl Alarm {
    fn token(self) -> u64 {
        let (kind, i) = match self {
            Alarm::FaultStart(i) => (0, i as u64),
            Alarm::FaultEnd(i) => (1, i as u64),
            Alarm::Sample => (2, 0),
            Alarm::Publish(v) => (3, u64::from(v)),
            Alarm::UserEvent(k) => (4, k),
        };
        kind << 56 | i
    }

    fn from_token(t: u64) -> Alarm {
        let i = t & ((1 << 56) - 1);
        match t >> 56 {
            0 => Alarm::FaultStart(i as usize),
            1 => Alarm::FaultEnd(i as usize),
            2 => Alarm::Sample,
            3 => Alarm::Publish(i as NodeId),
            _ => Alarm::UserEvent(i),
        }
    }
}

/// What a fault made in the world, to undo at its end.
#[derive(Clone)]
enum Undo {
    None,
    Partition(PartitionId),
    Loss(LossId),
    // Live fault rules (issue 14).
    Rules(rules::Applied),
}

struct Timeline<'a> {
    scenario: &'a Scenario,
    world: World,
    end: Instant,
    metrics: Metrics,
    state: Option<StateTracker>,
    /// Which nodes are up (running, not crashed or gone).
    up: Vec<bool>,
    /// Nodes ever paused, slowed or cut into a minority: "dead" claims about them are not
    /// held against the protocol.
    ever_faulty: Vec<bool>,
    views: StableViews,
    undo: Vec<Undo>,
    check_every_step: bool,
    check_cursor: usize,
    last_fault_end: Instant,
    observed: Vec<Observed>,
    /// Per node: its own datagram loss from a `Flaky` fault.
    flaky_rate: Vec<f64>,
}

impl<'a> Timeline<'a> {
    fn new(scenario: &'a Scenario, seed: u64, opts: &mut RunOptions) -> Self {
        let n = scenario.nodes;
        let mut world = World::new(n, scenario.config.clone(), scenario.network.clone(), seed);
        let check_every_step = opts.check_every_step.unwrap_or(n <= 64);
        world.check_every_step(check_every_step);
        if opts.digest {
            world.enable_digest();
        }
        if let Some(w) = opts.record.take() {
            world.record_to(w, format!("swim-sim scenario {}", scenario.name));
        }
        Timeline {
            scenario,
            world,
            end: Instant::ZERO + scenario.duration,
            metrics: Metrics::new(n),
            state: scenario.workload.as_ref().map(|w| StateTracker::new(n, w)),
            up: vec![false; n],
            ever_faulty: vec![false; n],
            views: StableViews::new(n),
            undo: vec![Undo::None; scenario.faults.len()],
            check_every_step,
            check_cursor: 0,
            last_fault_end: Instant::ZERO,
            observed: Vec::new(),
            flaky_rate: vec![0.0; n],
        }
    }

    fn now(&self) -> Instant {
        self.world.now()
    }

    /// Boots the cluster and puts the faults, samples and workload writes on the timeline.
    fn start(&mut self) {
        let n = self.scenario.nodes as NodeId;
        let late = &self.scenario.late_joiners;
        let started: Vec<NodeId> = (0..n).filter(|v| !late.contains(v)).collect();
        match &self.scenario.start {
            Start::Warm => {
                // As `World::start_warm_nodes`, taking in each node's events as it boots (a
                // large cluster's first steps report every member to every node).
                let snapshot = self.world.warm_snapshot(&started);
                for v in started {
                    self.world.boot(v);
                    let bytes = snapshot.clone();
                    self.world.input(
                        v,
                        Input::Stream {
                            from: NodeId::MAX,
                            bytes,
                        },
                    );
                    self.observe();
                }
            }
            Start::JoinStorm { within } => {
                let within = within.as_nanos().max(1) as u64;
                for v in started {
                    self.world.boot(v);
                    if v != 0 {
                        let at =
                            self.now() + Duration::from_nanos(self.world.rng().next_u64() % within);
                        let join = Input::Command(Command::Join { seeds: vec![0] });
                        self.world.input_at(at, v, join);
                    }
                }
            }
        }
        self.observe();
        if let Start::JoinStorm { .. } = self.scenario.start {
            // Convergence counts from here: with only some nodes booted, their lone views
            // trivially matched the partial truth.
            self.metrics.first_convergence = None;
            self.metrics.converged_since = None;
        }
        for (i, f) in self.scenario.faults.iter().enumerate() {
            let at = Instant::ZERO + f.at;
            self.world.alarm_first(at, Alarm::FaultStart(i).token());
            let end = match f.fault {
                // Rules kept to the end of the run: nothing to heal before it ends.
                Fault::Rules { duration: None, .. } => self.end,
                _ => at + f.fault.duration().unwrap_or_default(),
            };
            self.last_fault_end = self.last_fault_end.max(end);
            self.metrics
                .faults
                .push(self.fault_window(at, end, &f.fault));
        }
        let interval = self.scenario.sample_interval;
        self.world
            .alarm(self.now() + interval, Alarm::Sample.token());
        if let Some(u) = &self.scenario.user_events {
            let at = Instant::ZERO + u.start;
            self.world.alarm(at, Alarm::UserEvent(0).token());
        }
        if let Some(w) = &self.scenario.workload {
            let period = Duration::from_secs_f64(1.0 / w.writes_per_node_per_s);
            for v in 0..n {
                let offset = self.world.rng().next_u64() % period.as_nanos() as u64;
                let at = Instant::ZERO + w.start + Duration::from_nanos(offset);
                self.world.alarm(at, Alarm::Publish(v).token());
            }
        }
    }

    /// The window a fault shades on the report's plots.
    fn fault_window(&self, at: Instant, end: Instant, fault: &Fault) -> FaultWindow {
        let d = self.scenario.duration;
        let shade_end = match fault {
            Fault::Crash { .. } | Fault::Leave { .. } | Fault::Join { .. } => at + d / 200,
            Fault::ClockSkew { .. } | Fault::LinkLoss { .. } | Fault::Flaky { .. } => self.end,
            Fault::Rules { duration: None, .. } => self.end,
            Fault::Command { .. } => at + d / 400,
            _ => end,
        };
        FaultWindow {
            start_ms: at.as_nanos() as f64 / 1e6,
            end_ms: shade_end.min(self.end).as_nanos() as f64 / 1e6,
            label: fault.label(),
            kind: fault.kind(),
        }
    }

    /// Steps the world to the end of the run, acting on the timeline's alarms.
    fn run(&mut self, progress: &mut Option<Box<dyn FnMut(Progress)>>) {
        self.start();
        loop {
            match self.world.next_until(self.end) {
                Next::Idle => break,
                Next::Stepped => {}
                Next::Alarm(t) => match Alarm::from_token(t) {
                    Alarm::FaultStart(i) => self.fault_start(i),
                    Alarm::FaultEnd(i) => self.fault_end(i),
                    Alarm::Sample => self.sample(),
                    Alarm::Publish(v) => self.publish(v),
                    Alarm::UserEvent(k) => self.user_event(k),
                },
            }
            self.observe();
            let events = self.world.steps();
            // Often enough for a line every few seconds on slow runs (a 1,000-node partition
            // steps a few thousand events per second); the printer itself rate-limits.
            if events.is_multiple_of(4_096)
                && let Some(p) = progress.as_mut()
            {
                p(Progress {
                    now: self.now(),
                    end: self.end,
                    events,
                });
            }
        }
        if self.world.violation().is_none() {
            self.world.advance_clock(self.end);
            self.check_liveness();
        }
        if std::env::var_os("SWIM_SIM_DEBUG_STATE").is_some() {
            self.debug_state();
        }
        if std::env::var_os("SWIM_SIM_DEBUG_VIEWS").is_some() {
            self.debug_views();
        }
    }

    /// Applies fault `i` to the world, and schedules its end if it has one.
    fn fault_start(&mut self, i: usize) {
        let f = self.scenario.faults[i].fault.clone();
        let end = self.now() + f.duration().unwrap_or_default();
        let w = &mut self.world;
        match f {
            Fault::Crash { node } => w.crash(node),
            Fault::CrashRestart { node, .. } => {
                w.crash(node);
                w.alarm(end, Alarm::FaultEnd(i).token());
            }
            Fault::Pause { node, .. } => {
                if w.pause(node) {
                    self.ever_faulty[node as usize] = true;
                    self.metrics.deaths.node_fault(node);
                    w.alarm(end, Alarm::FaultEnd(i).token());
                }
            }
            Fault::Slow { node, delay, .. } => {
                w.set_slow(node, Some(delay));
                self.ever_faulty[node as usize] = true;
                self.metrics.deaths.node_fault(node);
                w.alarm(end, Alarm::FaultEnd(i).token());
            }
            Fault::ClockSkew { node, ppm } => {
                w.skew_clock(node, ppm);
                self.metrics.deaths.node_fault(node);
            }
            Fault::Leave { node } => w.leave(node),
            Fault::Join { node } => {
                if w.life(node) == Life::NotStarted {
                    let seeds = self.seeds_for(node);
                    self.world.join(node, seeds);
                }
            }
            Fault::Partition {
                groups, one_way, ..
            } => {
                // Nodes cut into a group of at most half the cluster are faulty.
                let group = Partition::new(i, self.up.len(), &groups, one_way).group;
                let mut sizes = vec![0usize; groups.len() + 1];
                for &g in &group {
                    sizes[g as usize] += 1;
                }
                for (v, &g) in group.iter().enumerate() {
                    if sizes[g as usize] * 2 <= group.len() {
                        self.ever_faulty[v] = true;
                    }
                }
                self.undo[i] = Undo::Partition(w.partition(&groups, one_way));
                w.alarm(end, Alarm::FaultEnd(i).token());
            }
            Fault::Loss { rate, .. } => {
                self.undo[i] = Undo::Loss(w.add_loss(rate));
                w.alarm(end, Alarm::FaultEnd(i).token());
            }
            Fault::Command { node, command } => w.input(node, Input::Command(command)),
            Fault::LinkLoss { from, to, rate } => w.set_link_loss(from, to, rate),
            Fault::Flaky { node, rate } => self.flaky(node, rate),
            Fault::Rules {
                node,
                rules,
                duration,
            } => {
                self.ever_faulty[node as usize] = true;
                self.metrics.deaths.node_fault(node);
                self.undo[i] = Undo::Rules(rules::apply(&mut self.world, node, &rules));
                if duration.is_some() {
                    self.world.alarm(end, Alarm::FaultEnd(i).token());
                }
            }
        }
        self.metrics.deaths.network(self.now(), &self.world.net);
    }

    /// Node `v` loses `rate` of the datagrams it sends and receives from now on: loss on each
    /// of its links, combined with the other end's own when both are flaky.
    fn flaky(&mut self, v: NodeId, rate: f64) {
        self.ever_faulty[v as usize] = true;
        self.metrics.deaths.node_fault(v);
        self.flaky_rate[v as usize] = rate;
        for o in 0..self.up.len() as NodeId {
            if o != v {
                let other = self.flaky_rate[o as usize];
                let both = 1.0 - (1.0 - rate) * (1.0 - other);
                self.world.set_link_loss(v, o, both);
                self.world.set_link_loss(o, v, both);
            }
        }
    }

    /// Ends fault `i`.
    fn fault_end(&mut self, i: usize) {
        match self.scenario.faults[i].fault.clone() {
            Fault::CrashRestart { node, .. } if self.world.life(node) == Life::Crashed => {
                let seeds = self.seeds_for(node);
                self.world.restart(node, seeds);
            }
            Fault::Pause { node, .. } => self.world.resume(node),
            Fault::Slow { node, .. } => self.world.set_slow(node, None),
            Fault::Partition { .. } => {
                if let Undo::Partition(p) = self.undo[i].clone() {
                    self.world.repair(p);
                }
                if !self.world.is_partitioned() {
                    self.metrics.partition_healed(self.now());
                }
            }
            Fault::Loss { .. } => {
                if let Undo::Loss(l) = self.undo[i].clone() {
                    self.world.remove_loss(l);
                }
            }
            Fault::Rules { .. } => {
                if let Undo::Rules(a) = std::mem::replace(&mut self.undo[i], Undo::None) {
                    rules::undo(&mut self.world, a);
                }
            }
            _ => {}
        }
        self.metrics.deaths.network(self.now(), &self.world.net);
    }

    /// Nodes a (re)starting node joins through: the scenario's seeds, or else the first three
    /// up nodes.
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
                (0..self.up.len() as NodeId)
                    .filter(|&s| s != v && self.world.life(s) == Life::Up)
                    .take(3),
            );
        }
        seeds
    }

    fn sample(&mut self) {
        let interval = self.scenario.sample_interval;
        let now = self.now();
        self.metrics
            .sample(now, interval.as_secs_f64(), self.world.all_traffic());
        if let Some(t) = self.state.as_mut() {
            t.sweep(now, &self.up);
        }
        if !self.check_every_step {
            // Full O(n) invariant checks on a rotating subset, ~200k member and state entries
            // per sample.
            let n = self.up.len();
            let entries = (0..n as NodeId)
                .find_map(|v| self.world.node(v))
                .map_or(0, |x| x.stats().state.entries as usize);
            let k = (200_000 / (n + 16 * entries).max(1)).clamp(1, n);
            for _ in 0..k {
                self.check_cursor = (self.check_cursor + 1) % n;
                if let Some(node) = self.world.node(self.check_cursor as NodeId) {
                    node.check_invariants();
                }
            }
        }
        self.world.alarm(now + interval, Alarm::Sample.token());
    }

    /// A workload write: the node publishes its next key, and writes again one period later.
    fn publish(&mut self, v: NodeId) {
        let Some(w) = &self.scenario.workload else {
            return;
        };
        let now = self.now();
        if now >= Instant::ZERO + w.stop {
            return;
        }
        let period = Duration::from_secs_f64(1.0 / w.writes_per_node_per_s);
        self.world.alarm(now + period, Alarm::Publish(v).token());
        if !self.up[v as usize] || self.world.is_paused(v) {
            return;
        }
        let (ty, size) = (w.ty.clone(), w.value_size);
        let tracker = self.state.as_mut().expect("a workload has a tracker");
        let (key, seq) = tracker.publish(v, now);
        let write = swim_proto::StateWrite::new(ty, key, workload::value(seq, size));
        self.world.input(v, Input::Command(Command::Publish(write)));
    }

    /// Broadcasts the `k`-th user event from the next live node in a fixed stride, and
    /// schedules the next one.
    fn user_event(&mut self, k: u64) {
        let Some(u) = &self.scenario.user_events else {
            return;
        };
        let (period, size) = (Duration::from_secs_f64(1.0 / u.per_sec), u.payload_size);
        self.world
            .alarm(self.now() + period, Alarm::UserEvent(k + 1).token());
        let n = self.up.len() as u64;
        let Some(origin) = (0..n)
            .map(|j| ((k + j) * 7919 % n) as NodeId)
            .find(|&v| self.up[v as usize] && !self.world.is_paused(v))
        else {
            return;
        };
        let ev = Command::Broadcast {
            name: format!("ev-{k}"),
            payload: vec![0x42; size],
        };
        self.world.input(origin, Input::Command(ev));
    }

    /// Takes in what the world observed since the last call, in order.
    fn observe(&mut self) {
        let mut observed = std::mem::take(&mut self.observed);
        self.world.take_observed(&mut observed);
        for o in observed.drain(..) {
            self.on_observed(o);
        }
        self.observed = observed;
    }

    fn on_observed(&mut self, o: Observed) {
        let (v, now) = (o.node, o.at);
        match o.what {
            Happening::Booted => {
                let measure_join = !(now == Instant::ZERO && self.scenario.start == Start::Warm);
                self.metrics.node_up(now, v, measure_join);
                self.up[v as usize] = true;
                self.truth_changed(v);
            }
            Happening::Crashed { incarnation } => {
                self.metrics.node_down(now, v, Some(incarnation));
                self.node_down(v);
            }
            Happening::Left => {
                self.metrics.node_down(now, v, None);
                self.node_down(v);
            }
            Happening::Event(e) => self.on_event(v, e),
        }
    }

    /// Node `v` stopped counting as up.
    fn node_down(&mut self, v: NodeId) {
        self.up[v as usize] = false;
        self.truth_changed(v);
        if let Some(t) = self.state.as_mut() {
            t.node_down(v, self.world.now(), &self.up);
        }
    }

    /// The set of up nodes changed at `v`: time until one stable view and leader everywhere.
    fn truth_changed(&mut self, v: NodeId) {
        let measure = self.scenario.config.view.advertise;
        self.views.reset(v, self.world.now(), measure);
    }

    fn on_event(&mut self, v: NodeId, e: Event<NodeId>) {
        let now = self.now();
        match e {
            Event::StateChanged {
                key,
                new: Some(entry),
                ..
            } => {
                if let (Some(t), Some(value)) = (self.state.as_mut(), entry.value.as_deref()) {
                    t.on_change(v, key.ty(), key.key(), value, now, &self.up);
                }
            }
            Event::ViewStable { checksum, .. } => {
                self.views.set_stable(v, Some(checksum));
                self.check_views();
            }
            Event::ViewChanged { .. } => self.views.set_stable(v, None),
            Event::LeaderChanged { leader } => {
                self.views.set_leader(v, leader);
                self.check_views();
            }
            e => self.on_membership_event(v, &e),
        }
    }

    fn check_views(&mut self) {
        if let Some(x) = self.views.check(self.world.now(), &self.up) {
            self.world.flag(x);
        }
    }

    /// Metrics for a membership event, and the zero-loss invariant: no healthy node is
    /// declared dead by a healthy one.
    fn on_membership_event(&mut self, o: NodeId, e: &Event<NodeId>) {
        let faulty = &self.ever_faulty;
        let is_faulty = |t: NodeId| faulty.get(t as usize).is_some_and(|f| *f);
        let observer_faulty = faulty[o as usize];
        if let Some((victim, healthy)) = self.metrics.on_event(self.world.now(), o, e, is_faulty)
            && healthy
            && !observer_faulty
            && !self.world.ever_lossy()
        {
            let victim = self.world.name(victim).clone();
            let by = self.world.name(o).clone();
            self.world
                .flag(Violation::HealthyDeclaredDead { victim, by });
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
                self.world.flag(Violation::NotConverged { bound, deadline });
            }
        }
    }
}

/// Runs a scenario with a seed and returns what it measured. A violated invariant stops the
/// run early; it is reported in `Report::violation` with the seed and the simulated time.
pub fn run(scenario: &Scenario, seed: u64, mut opts: RunOptions) -> Report {
    let wall = std::time::Instant::now();
    let mut progress = opts.progress.take();
    let mut timeline = Timeline::new(scenario, seed, &mut opts);
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| timeline.run(&mut progress)));
    if let Err(panic) = outcome {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into());
        timeline.world.set_violation(Violation::Panic(msg));
    }
    timeline.world.flush_record();
    let wall_s = wall.elapsed().as_secs_f64();
    timeline.report(seed, wall_s)
}
