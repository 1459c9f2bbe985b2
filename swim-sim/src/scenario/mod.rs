//! Scenarios: cluster size, network, start mode and a timeline of faults (the types, here).
//! Built-in ones by name (`built_in.rs`), a TOML file (`file.rs`), or the builder for tests.

use std::time::Duration;

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
        /// Rate error in parts per million (50,000 = 5% fast), within
        /// [`MIN_SKEW_PPM`]`..=`[`MAX_SKEW_PPM`] (a clock that stops or runs backwards is
        /// refused).
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
    // issue 12: per-node loss (the Rapid paper's flaky nodes).
    /// The node loses `rate` of the datagrams it sends and of those sent to it, for the rest
    /// of the run (a bad NIC or an overloaded host; the Rapid paper's flaky nodes).
    Flaky {
        /// Which node.
        node: NodeId,
        /// Loss probability in each direction.
        rate: f64,
    },
    // Live fault rules (issue 14): the vocabulary of the agent's `POST /partitions`.
    /// `rules` as node `node` applies them to its own traffic, for `duration` (the rest of the
    /// run when absent): the same JSON/TOML rule list `swim-agent partition inject --rules`
    /// takes, so a script tried here can be replayed against real agents. Members are node
    /// names (`node-3`) or ids (`3`, a simulated node's address). Partition rules cut the links
    /// both ways (streams too); loss rules set link loss on datagrams; delay rules are refused
    /// (the simulated network has no per-link delay: use `network` or a `slow` fault).
    Rules {
        /// The node applying the rules.
        node: NodeId,
        /// The rules (`swim_proto::fault_rule::FaultRule`).
        rules: Vec<swim_proto::fault_rule::FaultRule>,
        /// How long (default: the rest of the run).
        #[serde(default, with = "duration::option")]
        duration: Option<Duration>,
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
            Fault::Rules { duration, .. } => *duration,
            _ => None,
        }
    }

    /// What kind of fault this is, for grouping and coloring in reports.
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Crash { .. } => FaultKind::Crash,
            Fault::Partition { .. } => FaultKind::Partition,
            Fault::Loss { .. } | Fault::LinkLoss { .. } | Fault::Flaky { .. } => FaultKind::Loss,
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
            Fault::Rules { rules, .. } => {
                if rules
                    .iter()
                    .any(|r| matches!(r, swim_proto::fault_rule::FaultRule::Partition { .. }))
                {
                    FaultKind::Partition
                } else {
                    FaultKind::Loss
                }
            }
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
            Fault::Flaky { node, rate } => format!("flaky node-{node} {:.0}%", rate * 100.0),
            Fault::Rules { node, rules, .. } => format!("{} rules at node-{node}", rules.len()),
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
    // --- user events (issue 14) ---
    /// Serf user events broadcast during the run, if any (`swim-sim run --user-events-per-sec`).
    pub user_events: Option<UserEvents>,
}

/// Serf user events (`docs/protocol.md` §13.2): `per_sec` events per second cluster-wide, each
/// broadcast by the next live node in a fixed stride over the cluster, from `start` to the end.
/// Their cost shows in `Report::load`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserEvents {
    /// Events per second, cluster-wide. Default 1.
    pub per_sec: f64,
    /// Payload bytes per event. Default 64.
    pub payload_size: usize,
    /// When the first event goes out. Default 0 s.
    #[serde(with = "duration")]
    pub start: Duration,
}

impl Default for UserEvents {
    fn default() -> Self {
        UserEvents {
            per_sec: 1.0,
            payload_size: 64,
            start: Duration::ZERO,
        }
    }
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
            user_events: None,
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

mod built_in;
mod file;

/// Most nodes a run may have (the command line's `--nodes` bound, and scenario files').
pub const MAX_NODES: usize = 100_000;
/// Slowest clock skew: the clock must still move forward (−1,000,000 would stop it).
pub const MIN_SKEW_PPM: i64 = -999_999;
/// Fastest clock skew: 1,000× real time.
pub const MAX_SKEW_PPM: i64 = 1_000_000_000;
/// Resident memory per member-table entry measured in large runs (issue 13); every node holds
/// an entry per other node, so a run needs about n² of them.
pub const BYTES_PER_MEMBER_ENTRY: u64 = 87;

/// The memory a run of `nodes` nodes needs, roughly: n² member entries of
/// [`BYTES_PER_MEMBER_ENTRY`].
pub fn memory_estimate(nodes: usize) -> u64 {
    (nodes as u64).saturating_mul(nodes as u64) * BYTES_PER_MEMBER_ENTRY
}

pub use built_in::{BUILT_IN, Knobs, RestartMode};

impl Scenario {
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
        | Fault::Command { node, .. }
        | Fault::Flaky { node, .. }
        | Fault::Rules { node, .. } => Some(*node),
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
