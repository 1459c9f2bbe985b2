//! Scenarios: cluster size, network, start mode and a timeline of faults. Built-in ones by
//! name, a TOML file, or the builder API for tests.

use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use swim_proto::{Config, duration};

/// Node index in the simulation; also its address.
pub type NodeId = u32;

/// The simulated network. Durations in TOML are strings such as `"2ms"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSpec {
    /// Minimum one-way delay. Default 1 ms.
    #[serde(with = "duration")]
    pub base_delay: Duration,
    /// Uniform extra delay on top of `base_delay` (also what reorders packets). Default 2 ms.
    #[serde(with = "duration")]
    pub jitter: Duration,
    /// Probability that a packet takes the heavy tail instead. Default 0.
    pub heavy_tail_probability: f64,
    /// Scale of the heavy tail: a Pareto(α = 1.5) delay with this minimum. Default 50 ms.
    #[serde(with = "duration")]
    pub heavy_tail_scale: Duration,
    /// Probability that a datagram is lost (streams are reliable). Default 0.
    pub loss: f64,
    /// Probability that a datagram is delivered twice. Default 0.
    pub duplicate: f64,
    /// Datagrams larger than this many bytes are dropped. Default 1500.
    pub mtu: usize,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            base_delay: Duration::from_millis(1),
            jitter: Duration::from_millis(2),
            heavy_tail_probability: 0.0,
            heavy_tail_scale: Duration::from_millis(50),
            loss: 0.0,
            duplicate: 0.0,
            mtu: 1500,
        }
    }
}

/// How the cluster starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Start {
    /// Every node boots already knowing every other node (as after a long-finished join), the
    /// cheap way to start large clusters converged.
    Warm,
    /// Node 0 starts alone; every other node joins through it at a random moment within
    /// `within`.
    JoinStorm {
        /// Window in which the joins happen.
        #[serde(with = "duration")]
        within: Duration,
    },
}

/// One fault. Nodes are indices `0..nodes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Fault {
    /// The node stops for good.
    Crash {
        /// Which node.
        node: NodeId,
    },
    /// The node stops, then starts afresh (same name and address, new state) after `downtime`
    /// and joins through the seed nodes.
    CrashRestart {
        /// Which node.
        node: NodeId,
        /// How long it stays down.
        #[serde(with = "duration")]
        downtime: Duration,
    },
    /// The node stops processing for `duration` (a long GC pause), then handles its backlog.
    Pause {
        /// Which node.
        node: NodeId,
        /// How long.
        #[serde(with = "duration")]
        duration: Duration,
    },
    /// Every inbound message to the node is handled `delay` late, for `duration`.
    Slow {
        /// Which node.
        node: NodeId,
        /// Extra delay per inbound message.
        #[serde(with = "duration")]
        delay: Duration,
        /// How long the node stays slow.
        #[serde(with = "duration")]
        duration: Duration,
    },
    /// The node's clock runs `ppm` parts per million fast (positive) or slow (negative) from now.
    ClockSkew {
        /// Which node.
        node: NodeId,
        /// Rate error in parts per million (50,000 = 5% fast).
        ppm: i64,
    },
    /// The node leaves gracefully, then its process exits when the leave is out.
    Leave {
        /// Which node.
        node: NodeId,
    },
    /// A node that was not started boots and joins through the seed nodes (late join).
    Join {
        /// Which node (must be listed in `late_joiners`).
        node: NodeId,
    },
    /// Network partition for `duration`: nodes in different groups cannot reach each other
    /// (one direction only, from group 0 to the others, if `one_way`). Nodes not listed form
    /// one more group.
    Partition {
        /// The groups.
        groups: Vec<Vec<NodeId>>,
        /// Block only traffic from the first group to the others.
        #[serde(default)]
        one_way: bool,
        /// How long.
        #[serde(with = "duration")]
        duration: Duration,
    },
    /// Uniform datagram loss `rate` for `duration`, on top of the network's.
    Loss {
        /// Loss probability.
        rate: f64,
        /// How long.
        #[serde(with = "duration")]
        duration: Duration,
    },
    /// An application command delivered to a node (key rotation, metadata update...). In TOML:
    /// `command = { InstallKey = "<64 hex digits>" }`.
    Command {
        /// Which node.
        node: NodeId,
        /// The command.
        command: swim_proto::Command<NodeId>,
    },
    /// Loss `rate` on the link `from → to` for the rest of the run.
    LinkLoss {
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// Loss probability.
        rate: f64,
    },
}

impl Fault {
    /// How long the fault lasts, if it ends by itself.
    pub fn duration(&self) -> Option<Duration> {
        match self {
            Fault::CrashRestart { downtime, .. } => Some(*downtime),
            Fault::Pause { duration, .. }
            | Fault::Slow { duration, .. }
            | Fault::Partition { duration, .. }
            | Fault::Loss { duration, .. } => Some(*duration),
            _ => None,
        }
    }

    /// What kind of fault this is, for grouping and coloring in reports.
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Crash { .. } => FaultKind::Crash,
            Fault::Partition { .. } => FaultKind::Partition,
            Fault::Loss { .. } | Fault::LinkLoss { .. } => FaultKind::Loss,
            Fault::Slow { .. } => FaultKind::Slow,
            Fault::Pause { .. } => FaultKind::Pause,
            Fault::CrashRestart { .. } | Fault::Leave { .. } | Fault::Join { .. } => {
                FaultKind::Churn
            }
            Fault::Command { command, .. } => match command {
                swim_proto::Command::Join { .. } | swim_proto::Command::Leave => FaultKind::Churn,
                _ => FaultKind::Other,
            },
            Fault::ClockSkew { .. } => FaultKind::Other,
        }
    }

    /// A short label for reports.
    pub fn label(&self) -> String {
        match self {
            Fault::Crash { node } => format!("crash node-{node}"),
            Fault::CrashRestart { node, .. } => format!("restart node-{node}"),
            Fault::Pause { node, .. } => format!("pause node-{node}"),
            Fault::Slow { node, delay, .. } => format!("slow node-{node} +{}ms", delay.as_millis()),
            Fault::ClockSkew { node, ppm } => format!("skew node-{node} {ppm}ppm"),
            Fault::Leave { node } => format!("leave node-{node}"),
            Fault::Join { node } => format!("join node-{node}"),
            Fault::Partition {
                groups, one_way, ..
            } => {
                let sizes: Vec<String> = groups.iter().map(|g| g.len().to_string()).collect();
                format!(
                    "partition {}{}",
                    sizes.join("/"),
                    if *one_way { " one-way" } else { "" }
                )
            }
            Fault::Loss { rate, .. } => format!("loss {:.0}%", rate * 100.0),
            Fault::LinkLoss { from, to, rate } => {
                format!("link {from}->{to} loss {:.0}%", rate * 100.0)
            }
            Fault::Command { node, command } => {
                let what = format!("{command:?}");
                let kind = what
                    .split(['(', ' ', '{'])
                    .next()
                    .unwrap_or("command")
                    .to_string();
                format!("{kind} node-{node}")
            }
        }
    }
}

/// The kind of a [`Fault`], as reports group and color them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FaultKind {
    /// A node stops for good.
    Crash,
    /// The network splits.
    Partition,
    /// Datagrams are lost (everywhere or on one link).
    Loss,
    /// A node handles its inbound messages late.
    Slow,
    /// A node stops processing for a while.
    Pause,
    /// Membership changes: restarts, joins and leaves.
    Churn,
    /// Anything else (clock skew, application commands).
    Other,
}

/// A fault at a time. (Unknown fields are rejected by the flattened [`Fault`]; serde cannot
/// deny them on a struct that flattens.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimedFault {
    /// When, from the start of the run.
    #[serde(with = "duration")]
    pub at: Duration,
    /// What.
    #[serde(flatten)]
    pub fault: Fault,
}

/// Everything that defines a run, apart from the seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Name for reports.
    pub name: String,
    /// Number of nodes, late joiners included.
    pub nodes: usize,
    /// Nodes that are not started at the beginning (they start with a `join` fault).
    pub late_joiners: Vec<NodeId>,
    /// Simulated time.
    #[serde(with = "duration")]
    pub duration: Duration,
    /// Protocol configuration of every node.
    pub config: Config,
    /// The network.
    pub network: NetworkSpec,
    /// How the cluster starts.
    pub start: Start,
    /// The fault timeline.
    pub faults: Vec<TimedFault>,
    /// Nodes that restarted and late-joining nodes join through (the first few nodes).
    pub seeds: Vec<NodeId>,
    /// Interval of metric samples and periodic invariant checks. Default 1 s.
    #[serde(with = "duration")]
    pub sample_interval: Duration,
    /// Check that views converge after the last fault, within the bound the config implies.
    pub check_liveness: bool,
    /// Replicated-state writes, if any.
    pub workload: Option<StateWorkload>,
}

/// Replicated-state traffic: every live node writes its own keys at a fixed rate, and the run
/// measures how long each write takes to reach every live node (`Report::state`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateWorkload {
    /// State type written. Default `"load"`.
    pub ty: String,
    /// Writes per node per second. Default 1.
    pub writes_per_node_per_s: f64,
    /// Keys each node owns and writes in turn. Default 4.
    pub keys_per_node: u32,
    /// Value size in bytes (at least 8: the value carries the write's sequence number).
    /// Default 32.
    pub value_size: usize,
    /// When writes start. Default 5 s.
    #[serde(with = "duration")]
    pub start: Duration,
    /// When writes stop; the rest of the run is quiet so anti-entropy can converge the stores.
    /// Default 60 s.
    #[serde(with = "duration")]
    pub stop: Duration,
}

impl Default for StateWorkload {
    fn default() -> Self {
        StateWorkload {
            ty: "load".into(),
            writes_per_node_per_s: 1.0,
            keys_per_node: 4,
            value_size: 32,
            start: Duration::from_secs(5),
            stop: Duration::from_secs(60),
        }
    }
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: "custom".into(),
            nodes: 10,
            late_joiners: Vec::new(),
            duration: Duration::from_secs(60),
            config: Config::lan(),
            network: NetworkSpec::default(),
            start: Start::Warm,
            faults: Vec::new(),
            seeds: vec![0, 1, 2],
            sample_interval: Duration::from_secs(1),
            check_liveness: true,
            workload: None,
        }
    }
}

/// A scenario name or file that could not be used.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioError(pub String);

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScenarioError {}

/// Built-in scenario names.
pub const BUILT_IN: &[&str] = &[
    "steady",
    "crash",
    "loss",
    "slow",
    "pause",
    "partition",
    "churn",
    "join-storm",
    "restart-all",
    "state",
    "leader",
    "swarm",
];

/// Knobs of the built-in scenarios that the CLI exposes.
#[derive(Clone, Debug)]
pub struct Knobs {
    /// Nodes.
    pub nodes: usize,
    /// Simulated time.
    pub duration: Duration,
    /// Loss for the `loss` scenario (and added to any other). Default 0.05 for `loss`.
    pub loss: Option<f64>,
}

fn pick(rng: &mut ChaCha8Rng, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

fn between(rng: &mut ChaCha8Rng, lo: Duration, hi: Duration) -> Duration {
    if hi <= lo {
        return lo;
    }
    lo + Duration::from_nanos(rng.next_u64() % (hi - lo).as_nanos() as u64)
}

fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// `count` distinct nodes, never the seed nodes when avoidable.
fn distinct(rng: &mut ChaCha8Rng, n: usize, count: usize, avoid: &[NodeId]) -> Vec<NodeId> {
    let mut pool: Vec<NodeId> = (0..n as NodeId).filter(|i| !avoid.contains(i)).collect();
    if pool.len() < count {
        pool = (0..n as NodeId).collect();
    }
    let mut out = Vec::new();
    for _ in 0..count.min(pool.len()) {
        let i = pick(rng, pool.len());
        out.push(pool.swap_remove(i));
    }
    out
}

impl Scenario {
    /// A built-in scenario. Fault choices (which nodes, when) derive from `seed`.
    pub fn built_in(name: &str, knobs: &Knobs, seed: u64) -> Result<Scenario, ScenarioError> {
        let n = knobs.nodes;
        if n < 2 {
            return Err(ScenarioError(format!(
                "--nodes must be at least 2, got {n}"
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5ce7_a210);
        let d = knobs.duration;
        let mut s = Scenario {
            name: name.into(),
            nodes: n,
            duration: d,
            ..Scenario::default()
        };
        s.seeds = (0..n.min(3) as NodeId).collect();
        let one_percent = (n / 100).max(1);
        let secs = Duration::from_secs;
        let crash = |s: &mut Scenario, rng: &mut ChaCha8Rng| {
            for node in distinct(rng, n, one_percent, &s.seeds.clone()) {
                let at = between(rng, secs(10), secs(20)).min(d / 2);
                s.faults.push(TimedFault {
                    at,
                    fault: Fault::Crash { node },
                });
            }
        };
        match name {
            "steady" => {}
            "crash" => crash(&mut s, &mut rng),
            "loss" => {
                crash(&mut s, &mut rng);
                s.network.loss = knobs.loss.unwrap_or(0.05);
            }
            "slow" => {
                crash(&mut s, &mut rng);
                let slow = (n / 50).max(1);
                for node in distinct(&mut rng, n, slow, &s.seeds.clone()) {
                    let delay = between(&mut rng, Duration::from_millis(500), secs(2));
                    s.faults.push(TimedFault {
                        at: secs(5).min(d / 4),
                        fault: Fault::Slow {
                            node,
                            delay,
                            duration: d,
                        },
                    });
                }
            }
            "pause" => {
                crash(&mut s, &mut rng);
                for node in distinct(&mut rng, n, one_percent, &s.seeds.clone()) {
                    let at = between(&mut rng, secs(10), (d / 2).max(secs(11)));
                    let duration = between(&mut rng, secs(5), secs(30));
                    s.faults.push(TimedFault {
                        at,
                        fault: Fault::Pause { node, duration },
                    });
                }
            }
            "partition" => {
                // Each side declares the other dead during the 60 s split; partition healing
                // re-merges them after it ends (`heal_ms`, `heal_nodes_ms`).
                let half: Vec<NodeId> = (0..(n / 2) as NodeId).collect();
                let at = secs(10).min(d / 4);
                s.faults.push(TimedFault {
                    at,
                    fault: Fault::Partition {
                        groups: vec![half],
                        one_way: false,
                        duration: secs(60).min(d / 3),
                    },
                });
            }
            "churn" => {
                let joiners = (n / 20).max(1).min(n - 1);
                s.late_joiners = ((n - joiners) as NodeId..n as NodeId).collect();
                let quiet_tail = if d > secs(180) { secs(90) } else { d / 3 };
                let end = d.saturating_sub(quiet_tail).max(secs(11));
                for &node in &s.late_joiners {
                    let at = between(&mut rng, secs(5), end);
                    s.faults.push(TimedFault {
                        at,
                        fault: Fault::Join { node },
                    });
                }
                let per_10s = (n / 100).max(1);
                let mut t = secs(10);
                while t < end {
                    for _ in 0..per_10s {
                        let node = pick(&mut rng, n - joiners) as NodeId;
                        if s.seeds.contains(&node) {
                            continue;
                        }
                        let at = t + between(&mut rng, Duration::ZERO, secs(10));
                        let downtime = between(&mut rng, secs(5), secs(20));
                        s.faults.push(TimedFault {
                            at,
                            fault: Fault::CrashRestart { node, downtime },
                        });
                    }
                    t += secs(10);
                }
            }
            "join-storm" => {
                s.start = Start::JoinStorm { within: secs(1) };
                s.seeds = vec![0];
            }
            "restart-all" => {
                let base = secs(10).min(d / 4);
                for node in 0..n as NodeId {
                    let at = base + between(&mut rng, Duration::ZERO, secs(10));
                    let downtime = between(&mut rng, Duration::from_millis(100), secs(1));
                    s.faults.push(TimedFault {
                        at,
                        fault: Fault::CrashRestart { node, downtime },
                    });
                }
            }
            "state" => {
                // Crashes (so detection is measured next to the state traffic), 5% loss, one
                // write per node per second until 60 s before the end, then quiet.
                crash(&mut s, &mut rng);
                s.network.loss = knobs.loss.unwrap_or(0.05);
                s.workload = Some(StateWorkload {
                    stop: d.saturating_sub(secs(60)).max(secs(6)),
                    ..StateWorkload::default()
                });
            }
            "leader" => {
                // Stable views and the leader: views advertised, 1% crashes between 10 and
                // 20 s, and the leader itself (node 0, the lowest name) crashes at 30 s.
                crash(&mut s, &mut rng);
                s.config.view.advertise = true;
                s.faults.push(TimedFault {
                    at: secs(30).min(d / 2),
                    fault: Fault::Crash { node: 0 },
                });
                s.seeds = (1..n.min(4) as NodeId).collect();
            }
            "swarm" => return Ok(Scenario::swarm(seed)),
            other => {
                return Err(ScenarioError(format!(
                    "unknown scenario {other:?}; built-in scenarios: {}",
                    BUILT_IN.join(", ")
                )));
            }
        }
        if let Some(loss) = knobs.loss
            && name != "loss"
            && name != "state"
        {
            s.network.loss = loss;
        }
        s.faults.sort_by_key(|f| f.at);
        Ok(s)
    }

    /// A randomized small cluster with a random fault mix, all derived from `seed` (swarm
    /// testing: each seed turns different faults on and sets how hard they hit). Faults happen
    /// in the first part of the run; a quiet tail long enough for the liveness bound follows.
    pub fn swarm(seed: u64) -> Scenario {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5a7a_3000);
        let n = 4 + pick(&mut rng, 29);
        let config = Config::lan();
        let fault_phase = Duration::from_secs(40 + pick(&mut rng, 60) as u64);
        let mut s = Scenario {
            name: "swarm".into(),
            nodes: n,
            config,
            seeds: vec![0, 1],
            ..Scenario::default()
        };
        if rng.next_u64() % 3 == 0 {
            s.start = Start::JoinStorm {
                within: Duration::from_secs(2),
            };
        }
        let on = |rng: &mut ChaCha8Rng| rng.next_u64().is_multiple_of(2);
        let time = |rng: &mut ChaCha8Rng| between(rng, Duration::from_secs(5), fault_phase);
        let push = |s: &mut Scenario, at, fault| s.faults.push(TimedFault { at, fault });
        let seeds = s.seeds.clone();
        // Swarm testing: each fault kind is on or off for this seed.
        if on(&mut rng) {
            let count = 1 + pick(&mut rng, 2);
            for node in distinct(&mut rng, n, count, &seeds) {
                let at = time(&mut rng);
                push(&mut s, at, Fault::Crash { node });
            }
        }
        if on(&mut rng) {
            let count = 1 + pick(&mut rng, 3);
            for node in distinct(&mut rng, n, count, &seeds) {
                let at = time(&mut rng);
                let downtime = between(
                    &mut rng,
                    Duration::from_millis(200),
                    Duration::from_secs(20),
                );
                push(&mut s, at, Fault::CrashRestart { node, downtime });
            }
        }
        if on(&mut rng) {
            let count = 1 + pick(&mut rng, 2);
            for node in distinct(&mut rng, n, count, &seeds) {
                let at = time(&mut rng);
                let duration = between(&mut rng, Duration::from_secs(1), Duration::from_secs(20));
                push(&mut s, at, Fault::Pause { node, duration });
            }
        }
        if on(&mut rng) {
            let count = 1 + pick(&mut rng, 2);
            for node in distinct(&mut rng, n, count, &seeds) {
                let at = time(&mut rng);
                let delay = between(
                    &mut rng,
                    Duration::from_millis(100),
                    Duration::from_millis(1500),
                );
                let duration = between(&mut rng, Duration::from_secs(5), Duration::from_secs(40));
                push(
                    &mut s,
                    at,
                    Fault::Slow {
                        node,
                        delay,
                        duration,
                    },
                );
            }
        }
        if on(&mut rng) {
            let count = 1 + pick(&mut rng, 2);
            for node in distinct(&mut rng, n, count, &[]) {
                let at = time(&mut rng);
                let ppm = (pick(&mut rng, 200_001) as i64) - 100_000;
                push(&mut s, at, Fault::ClockSkew { node, ppm });
            }
        }
        if on(&mut rng) {
            let node = distinct(&mut rng, n, 1, &seeds)[0];
            let at = time(&mut rng);
            push(&mut s, at, Fault::Leave { node });
        }
        if on(&mut rng) && n > 5 {
            let joiner = (n - 1) as NodeId;
            if !s
                .faults
                .iter()
                .any(|f| fault_node(&f.fault) == Some(joiner))
            {
                s.late_joiners.push(joiner);
                let at = time(&mut rng);
                push(&mut s, at, Fault::Join { node: joiner });
            }
        }
        if on(&mut rng) {
            let size = 1 + pick(&mut rng, n / 2);
            let group = distinct(&mut rng, n, size, &[]);
            let at = time(&mut rng);
            // Short splits end in refutations; long ones in deaths on both sides, which
            // partition healing must then undo within the liveness bound.
            let duration = between(
                &mut rng,
                Duration::from_millis(500),
                Duration::from_secs(40),
            );
            let one_way = rng.next_u64() % 4 == 0;
            push(
                &mut s,
                at,
                Fault::Partition {
                    groups: vec![group],
                    one_way,
                    duration,
                },
            );
        }
        if on(&mut rng) {
            let rate = unit(&mut rng) * 0.10;
            let at = time(&mut rng);
            let duration = between(&mut rng, Duration::from_secs(5), fault_phase);
            push(&mut s, at, Fault::Loss { rate, duration });
        }
        if on(&mut rng) {
            s.network.duplicate = unit(&mut rng) * 0.05;
        }
        if on(&mut rng) {
            s.network.heavy_tail_probability = unit(&mut rng) * 0.02;
        }
        s.faults.sort_by_key(|f| f.at);
        let last_end = s
            .faults
            .iter()
            .map(|f| f.at + f.fault.duration().unwrap_or_default())
            .max()
            .unwrap_or_default();
        s.duration = last_end + s.liveness_bound() + Duration::from_secs(30);
        s
    }

    /// Parses a TOML scenario file's contents. Unknown fields are rejected by name.
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let mut s: Scenario =
            toml::from_str(text).map_err(|e| ScenarioError(format!("scenario file: {e}")))?;
        s.faults.sort_by_key(|f| f.at);
        s.validate()?;
        Ok(s)
    }

    /// Checks node indices, probabilities and the config; names what is wrong.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let err = |m: String| Err(ScenarioError(m));
        if self.nodes < 1 {
            return err("nodes must be at least 1".into());
        }
        self.config
            .validate()
            .map_err(|e| ScenarioError(format!("config: {e}")))?;
        for (field, p) in [
            ("network.loss", self.network.loss),
            ("network.duplicate", self.network.duplicate),
            (
                "network.heavy_tail_probability",
                self.network.heavy_tail_probability,
            ),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return err(format!("{field} must be within 0..=1, got {p}"));
            }
        }
        if self.sample_interval.is_zero() {
            return err("sample_interval must be greater than zero".into());
        }
        if let Some(w) = &self.workload {
            if !(w.writes_per_node_per_s > 0.0 && w.writes_per_node_per_s <= 1000.0) {
                return err(format!(
                    "workload.writes_per_node_per_s must be within (0, 1000], got {}",
                    w.writes_per_node_per_s
                ));
            }
            if w.keys_per_node == 0 {
                return err("workload.keys_per_node must be at least 1".into());
            }
            if w.value_size < 8 || w.value_size > self.config.state.max_value_size {
                return err(format!(
                    "workload.value_size must be within 8..={} (config.state.max_value_size), got {}",
                    self.config.state.max_value_size, w.value_size
                ));
            }
            if w.ty.is_empty() || !self.config.state.stores(&w.ty) {
                return err(format!(
                    "workload.ty {:?} must be a non-empty type the nodes store",
                    w.ty
                ));
            }
        }
        let n = self.nodes as NodeId;
        for &j in self.late_joiners.iter().chain(&self.seeds) {
            if j >= n {
                return err(format!("node {j} is out of range 0..{n}"));
            }
        }
        for (i, f) in self.faults.iter().enumerate() {
            let bad = |m: &str| {
                Err(ScenarioError(format!(
                    "faults[{i}] ({}): {m}",
                    f.fault.label()
                )))
            };
            let nodes: Vec<NodeId> = match &f.fault {
                Fault::Partition { groups, .. } => groups.iter().flatten().copied().collect(),
                Fault::LinkLoss { from, to, .. } => vec![*from, *to],
                other => fault_node(other).into_iter().collect(),
            };
            if let Some(&x) = nodes.iter().find(|&&x| x >= n) {
                return bad(&format!("node {x} is out of range 0..{n}"));
            }
            if let Fault::Loss { rate, .. } | Fault::LinkLoss { rate, .. } = f.fault
                && !(0.0..=1.0).contains(&rate)
            {
                return bad("rate must be within 0..=1");
            }
            if let Fault::Join { node } = f.fault
                && !self.late_joiners.contains(&node)
            {
                return bad("a joining node must be listed in late_joiners");
            }
        }
        Ok(())
    }

    /// How long after the last fault every live node's view must equal the true live set:
    /// the longest suspicion, two push-pull rounds (anti-entropy repairs what gossip missed),
    /// ten probe periods, the time dead members are still gossiped to, and three heal intervals
    /// (about three healing attempts per interval cluster-wide reconnect a healed partition).
    pub fn liveness_bound(&self) -> Duration {
        let c = &self.config;
        let n = self.nodes.max(1);
        let log10 = (n as f64).log10().max(1.0);
        let min_suspicion = c
            .probe_interval
            .mul_f64(f64::from(c.suspicion_mult) * log10);
        let max_suspicion = min_suspicion * c.suspicion_max_timeout_mult;
        let scale = if n <= 32 {
            1.0
        } else {
            ((n as f64).log2() - 5.0).ceil() + 1.0
        };
        let push_pull = c.push_pull_interval.mul_f64(scale);
        max_suspicion
            + push_pull * 2
            + c.probe_interval * 10
            + c.gossip_to_dead_time
            + c.heal_interval * 3
    }
}

/// The node a single-node fault is about.
pub fn fault_node(f: &Fault) -> Option<NodeId> {
    match f {
        Fault::Crash { node }
        | Fault::CrashRestart { node, .. }
        | Fault::Pause { node, .. }
        | Fault::Slow { node, .. }
        | Fault::ClockSkew { node, .. }
        | Fault::Leave { node }
        | Fault::Join { node }
        | Fault::Command { node, .. } => Some(*node),
        _ => None,
    }
}

/// Builder for tests: `ScenarioBuilder::new(20).seconds(120).crash(60, 3).build()`.
#[derive(Clone, Debug)]
pub struct ScenarioBuilder(Scenario);

impl ScenarioBuilder {
    /// A warm-started cluster of `nodes` with LAN config, 60 s, no faults.
    pub fn new(nodes: usize) -> Self {
        ScenarioBuilder(Scenario {
            nodes,
            seeds: (0..nodes.min(3) as NodeId).collect(),
            ..Scenario::default()
        })
    }
    /// Scenario name.
    pub fn name(mut self, name: &str) -> Self {
        self.0.name = name.into();
        self
    }
    /// Simulated seconds.
    pub fn seconds(mut self, s: u64) -> Self {
        self.0.duration = Duration::from_secs(s);
        self
    }
    /// Protocol config.
    pub fn config(mut self, c: Config) -> Self {
        self.0.config = c;
        self
    }
    /// Network.
    pub fn network(mut self, n: NetworkSpec) -> Self {
        self.0.network = n;
        self
    }
    /// Datagram loss.
    pub fn loss(mut self, p: f64) -> Self {
        self.0.network.loss = p;
        self
    }
    /// Start with a join storm within `within`.
    pub fn join_storm(mut self, within: Duration) -> Self {
        self.0.start = Start::JoinStorm { within };
        self
    }
    /// Adds a fault at `at_s` seconds.
    pub fn fault(mut self, at_s: f64, fault: Fault) -> Self {
        self.0.faults.push(TimedFault {
            at: Duration::from_secs_f64(at_s),
            fault,
        });
        self
    }
    /// Crashes `node` at `at_s` seconds.
    pub fn crash(self, at_s: f64, node: NodeId) -> Self {
        self.fault(at_s, Fault::Crash { node })
    }
    /// Marks nodes as not started until a `Join` fault.
    pub fn late_joiners(mut self, nodes: &[NodeId]) -> Self {
        self.0.late_joiners = nodes.to_vec();
        self
    }
    /// The scenario.
    pub fn build(mut self) -> Scenario {
        self.0.faults.sort_by_key(|f| f.at);
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_scenario_is_valid() {
        let knobs = Knobs {
            nodes: 100,
            duration: Duration::from_secs(120),
            loss: None,
        };
        for name in BUILT_IN {
            let s = Scenario::built_in(name, &knobs, 7).unwrap();
            s.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert_eq!(
            Scenario::built_in("crash", &knobs, 7).unwrap().faults.len(),
            1
        );
        let err = Scenario::built_in("nope", &knobs, 1).unwrap_err();
        assert!(err.0.contains("steady"), "{err}");
    }

    #[test]
    fn toml_scenarios_parse_and_reject_unknown_fields() {
        let text = r#"
            name = "file"
            nodes = 20
            duration = "90s"
            [network]
            loss = 0.01
            jitter = "5ms"
            [config]
            probe_interval = "2s"
            [[faults]]
            at = "30s"
            kind = "crash"
            node = 4
            [[faults]]
            at = "40s"
            kind = "partition"
            groups = [[0, 1, 2]]
            duration = "10s"
        "#;
        let s = Scenario::from_toml(text).unwrap();
        assert_eq!(
            (s.nodes, s.duration, s.faults.len()),
            (20, Duration::from_secs(90), 2)
        );
        assert_eq!(s.config.probe_interval, Duration::from_secs(2));
        assert_eq!(s.network.jitter, Duration::from_millis(5));
        let bad = Scenario::from_toml("nodes = 3\nprobe = 1").unwrap_err();
        assert!(bad.0.contains("probe"), "{bad}");
        let bad =
            Scenario::from_toml("nodes = 3\n[[faults]]\nat = \"1s\"\nkind = \"crash\"\nnode = 9")
                .unwrap_err();
        assert!(bad.0.contains("out of range"), "{bad}");
        let bad =
            Scenario::from_toml("nodes = 3\n[[faults]]\nat = \"1s\"\nkind = \"crash\"\nnod = 1")
                .unwrap_err();
        assert!(bad.0.contains("nod"), "{bad}");
        let bad = Scenario::from_toml("nodes = 3\n[config]\nprobe_interval = \"0s\"").unwrap_err();
        assert!(bad.0.contains("probe_interval"), "{bad}");
    }

    #[test]
    fn swarm_scenarios_vary_and_leave_a_quiet_tail() {
        let a = Scenario::swarm(1);
        let b = Scenario::swarm(2);
        assert_ne!(a, b);
        for s in [a, b] {
            s.validate().unwrap();
            let last = s
                .faults
                .iter()
                .map(|f| f.at + f.fault.duration().unwrap_or_default())
                .max()
                .unwrap_or_default();
            assert!(s.duration >= last + s.liveness_bound());
        }
    }
}
