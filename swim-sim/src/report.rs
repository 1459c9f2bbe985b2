//! What a run measured: the summary (JSON and a readable table) and the time series behind the
//! HTML report.

use serde::Serialize;

use crate::scenario::FaultKind;

// issue 12: bytes per message kind (measured in `metrics/bytes.rs`).
pub use crate::metrics::KindLoad;

/// p50, p99 and max of a set of samples, in milliseconds; `None` (JSON `null`) without samples.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Median.
    pub p50: Option<f64>,
    /// 99th percentile (nearest rank).
    pub p99: Option<f64>,
    /// Largest sample.
    pub max: Option<f64>,
    /// Number of samples.
    pub count: usize,
}

impl Summary {
    /// Summarizes samples (any order).
    pub fn of(samples: &[f64]) -> Self {
        if samples.is_empty() {
            return Summary::default();
        }
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        let rank = |p: f64| v[(((v.len() as f64) * p).ceil() as usize).clamp(1, v.len()) - 1];
        Summary {
            p50: Some(rank(0.50)),
            p99: Some(rank(0.99)),
            max: v.last().copied(),
            count: v.len(),
        }
    }
}

/// Failure detection, for each node that crashed (and stayed down until detected).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Detection {
    /// Per crash: time from the crash to the first suspicion (or death) anywhere.
    pub first_suspect_ms: Summary,
    /// Per crash: time from the crash to the first "dead" anywhere.
    pub first_dead_ms: Summary,
    /// Per (crash, observer) pair: time from the crash until that live observer holds it dead.
    pub all_dead_ms: Summary,
    /// (crash, observer) pairs where a live observer never declared a permanently crashed node
    /// dead by the end of the run.
    pub undetected: u64,
    // issue 12: the whole detection chain per fault.
    /// Per crash: time from the crash until no live node holds the crashed node alive or
    /// suspect any more (dead at every observer); crashes that never got there are left out.
    pub dead_everywhere_ms: Summary,
}

/// One crash's detection chain (issue 12): first suspicion, first death, dead everywhere.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CrashChain {
    /// The crashed node.
    pub node: u32,
    /// When it crashed, ms of simulated time.
    pub at_ms: f64,
    /// From the crash to the first suspicion (or death) anywhere, ms.
    pub first_suspect_ms: Option<f64>,
    /// From the crash to the first "dead" anywhere, ms.
    pub first_dead_ms: Option<f64>,
    /// From the crash until no live node held it alive or suspect, ms.
    pub dead_everywhere_ms: Option<f64>,
    /// Whether a new instance of the node started before the chain completed (its later
    /// links are then missing).
    pub restarted: bool,
}

/// Events and distinct victims of one kind of false death.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FalseDeathCount {
    /// `MemberFailed` events.
    pub events: u64,
    /// Distinct nodes they were about.
    pub victims: u64,
}

/// `MemberFailed` events about nodes that were up, by kind (issue 12). Each event is of exactly
/// one kind, checked in the order `across_partition`, `faulty_victim`, `fresh`, `restarted`,
/// `healthy_in_faulty_run`, `reachable`. Reachability comes from the world's network rules
/// (partition groups, cut links, time of heal), never from labels; "reachable" needs the last
/// 2 s without separation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FalseDeaths {
    /// (a) A healthy node the observer could reach for at least the last 2 s (same side of a
    /// partition, or from 2 s after the heal on), in a run without node faults. Target: zero.
    pub reachable: FalseDeathCount,
    /// (b) A restarted node whose new instance had been up (and reachable) for 2 s. Target:
    /// zero.
    pub restarted: FalseDeathCount,
    /// (c) A node the observer could not reach at some moment of the last 2 s (across a
    /// partition or a cut link while it is up): expected.
    pub across_partition: FalseDeathCount,
    /// (d) A healthy, reachable node in a run with paused, slow, flaky or clock-skewed nodes.
    /// Target: zero.
    pub healthy_in_faulty_run: FalseDeathCount,
    /// The victim itself was paused, slow, flaky or clock-skewed (from the fault's start on):
    /// expected.
    pub faulty_victim: FalseDeathCount,
    /// The victim's current instance had been up less than 2 s (a claim about its previous
    /// life may still be in flight): not judged.
    pub fresh: FalseDeathCount,
}

// issue 16: unexpected false deaths by side of a partition.
/// Unexpected false deaths (kinds (a), (b) and (d)) about victims on one side of the run's
/// latest partition (counted from its start on, during the split or after the heal).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SideDeaths {
    /// The side: the partition's group index (the unlisted nodes form the last group).
    pub side: u32,
    /// Nodes on that side.
    pub nodes: u32,
    /// Events and distinct victims on that side.
    pub deaths: FalseDeathCount,
}

/// Declarations about nodes that were in fact up.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FalsePositives {
    /// "Dead" declarations (`MemberFailed` events) about nodes that were up.
    pub dead: u64,
    /// Suspicions about nodes that were up.
    pub suspect: u64,
    /// Distinct nodes wrongly declared dead.
    pub victims: u64,
    /// Of those, nodes that were healthy: never paused, slowed or cut off by a partition.
    pub healthy_victims: u64,
}

/// Traffic, per node per simulated second.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Load {
    /// Datagrams sent, mean over nodes.
    pub datagrams_per_node_s: f64,
    /// Datagram bytes sent, mean over nodes.
    pub bytes_per_node_s: f64,
    /// Datagram bytes sent by the busiest node.
    pub max_bytes_per_node_s: f64,
    /// Stream messages sent, mean over nodes.
    pub streams_per_node_s: f64,
    /// Stream bytes sent, mean over nodes.
    pub stream_bytes_per_node_s: f64,
}

/// Time for membership changes to reach every live node.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Dissemination {
    /// Per change (a join, a leave, a death): from the first node that knew to the last.
    pub p50_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Changes measured.
    pub count: usize,
}

/// What the run cost the machine.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Cost {
    /// Simulated node-seconds per wall second.
    pub node_seconds_per_wall_s: f64,
    /// Simulation events per wall second.
    pub events_per_wall_s: f64,
    /// Peak resident memory of the process, in bytes (Linux `VmHWM`), if known.
    pub peak_memory_bytes: Option<u64>,
    /// Peak memory per node, in bytes.
    pub memory_per_node_bytes: Option<u64>,
}

/// A window during which a fault was active, for shading plots.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultWindow {
    /// Start, ms of simulated time.
    pub start_ms: f64,
    /// End, ms (the run's end for faults that never end).
    pub end_ms: f64,
    /// What it was ("crash node-3", "partition 50/50", "loss 5%"...).
    pub label: String,
    /// Its kind.
    pub kind: FaultKind,
}

/// Samples taken at a fixed interval of simulated time, for plots.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Series {
    /// Sample times, ms of simulated time.
    pub t_ms: Vec<f64>,
    /// How many nodes were truly up (running and not left).
    pub true_live: Vec<u32>,
    /// Distribution over up nodes of view size (members held alive or suspect, self included).
    pub view_min: Vec<u32>,
    /// 10th percentile of view size.
    pub view_p10: Vec<u32>,
    /// Median view size.
    pub view_p50: Vec<u32>,
    /// 90th percentile of view size.
    pub view_p90: Vec<u32>,
    /// Largest view size.
    pub view_max: Vec<u32>,
    /// Datagram bytes sent per node per second over the last interval, mean over up nodes.
    pub bytes_mean: Vec<f64>,
    /// Same, busiest node.
    pub bytes_max: Vec<f64>,
}

/// Replicated-state propagation (runs with a workload).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StateReport {
    /// Writes made.
    pub updates: u64,
    /// Writes that reached every live node (or were overtaken there by a later write of the
    /// same key).
    pub reached_all: u64,
    /// Writes that had not reached every live node when the run ended.
    pub never_reached_all: u64,
    /// Time for a write to reach every live node: median, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// Slowest, ms.
    pub max_ms: Option<f64>,
    /// Whether, at the end, every live node held an identical store (equal fingerprints of
    /// every type, key, version and origin).
    pub converged: bool,
    /// Live nodes compared for `converged`.
    pub live_nodes_checked: usize,
}

// issue 16: what ran, for the report page and `swim-sim compare`.
/// One field of the protocol config or the network that differs from its preset or default.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ConfigChange {
    /// Dotted field name, such as `probe_interval` or `network.loss`.
    pub field: String,
    /// The run's value (JSON text).
    pub value: String,
    /// The preset's or default's value (JSON text).
    pub preset: String,
}

/// One fault of the scenario's timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultRecord {
    /// When it starts, ms of simulated time.
    pub at_ms: f64,
    /// Its kind.
    pub kind: FaultKind,
    /// What it is ("crash node-3", "partition 50/50"...).
    pub label: String,
    /// How long it lasts, ms; `None` for faults that never end by themselves (crash, leave,
    /// clock skew, flaky node, cut link) or that are instantaneous (join, command).
    pub duration_ms: Option<f64>,
}

/// What ran: the build, the command line and the scenario's configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunInfo {
    /// The simulator's version: crate version and, when built from git, `git describe`.
    pub version: String,
    /// The command line that ran it, when run from the `swim-sim` binary.
    pub command_line: Option<String>,
    /// The protocol config preset closest to the run's (`lan`, `wan` or `local`).
    pub config_preset: String,
    /// Every protocol config field that differs from that preset, and every network field
    /// that differs from the default network.
    pub config_changes: Vec<ConfigChange>,
    /// How the cluster started ("warm", "join storm within 1 s").
    pub start: String,
    /// The replicated-state workload, if any, in words.
    pub workload: Option<String>,
    /// The fault timeline, in time order.
    pub faults: Vec<FaultRecord>,
}

/// Everything one run measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Nodes in the cluster (at the start, plus late joiners).
    pub nodes: usize,
    /// Simulated seconds.
    pub seconds: f64,
    /// The run's seed.
    pub seed: u64,
    /// Wall-clock seconds the run took.
    pub wall_s: f64,
    /// Simulation events processed.
    pub events: u64,
    /// Failure detection.
    pub detection: Detection,
    /// Wrong declarations.
    pub false_positives: FalsePositives,
    /// Traffic.
    pub load: Load,
    /// Time from the start until every live node's view equals the true live set (join storm
    /// or warm start), ms; `None` if never.
    pub convergence_ms: Option<f64>,
    /// Time from the last partition healing until views converge again, ms; `None` without a
    /// partition or if they never did.
    pub heal_ms: Option<f64>,
    /// Per live node: from the last partition's end until its view first equals the true live
    /// set again (nodes that never heal are missing from `count`).
    pub heal_nodes_ms: Summary,
    /// Per membership change (crash, leave, join, restart) with view advertising on: from the
    /// change until every live node reports the same stable view and the same leader.
    pub stable_view_ms: Summary,
    /// Whether, at the end, every live node's view equalled the true live set.
    pub converged: bool,
    /// How many live nodes' views differed from the true live set at the end.
    pub unconverged_nodes: u32,
    /// Packets dropped by running nodes (undecodable, wrong key or label, over a bound...).
    pub packets_dropped: u64,
    /// Spread of membership changes.
    pub dissemination: Dissemination,
    /// Digest of every output of every node, in order (when asked for): equal for equal runs.
    pub output_digest: Option<String>,
    /// Replicated-state propagation, when the scenario has a workload.
    pub state: Option<StateReport>,
    /// Machine cost.
    pub cost: Cost,
    /// Number of invariant violations (the run stops at the first).
    pub invariant_violations: usize,
    /// The violation, if any, with the seed and time.
    pub violation: Option<String>,
    // issue 12: false deaths by kind, and the detection chain per crash.
    /// `MemberFailed` events about up nodes, by kind.
    pub false_deaths: FalseDeaths,
    /// Per crash, in time order: suspicion, first death, dead everywhere.
    pub crashes: Vec<CrashChain>,
    // issue 16: what ran, and unexpected false deaths by side of a partition.
    /// The build, command line and configuration of the run.
    pub run: RunInfo,
    /// Unexpected false deaths (kinds (a), (b), (d)) by the victim's side of the latest
    /// partition; empty without a partition.
    pub false_deaths_by_side: Vec<SideDeaths>,
    /// Fault windows, for plots.
    #[serde(skip)]
    pub faults: Vec<FaultWindow>,
    /// Sampled series, for plots.
    #[serde(skip)]
    pub series: Series,
    /// All (crash, observer) detection latencies, ms, for the CDF plot.
    #[serde(skip)]
    pub detection_samples_ms: Vec<f64>,
    // --- protocol timings (issue 14) ---
    /// The core's protocol timings, merged over the nodes running at the end.
    pub timings: ProtocolTimings,
    // issue 12: bytes per message kind.
    /// Datagram and stream traffic by message kind, per node per second (piggybacked updates
    /// and state entries are kinds of their own; headers stay with their message).
    pub bytes_by_kind: Vec<KindLoad>,
}

/// The core's `Stats::timings` (`docs/protocol.md` §14) merged over the nodes running at the
/// end of a run, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProtocolTimings {
    /// Ping to ack, answered by the target.
    pub probe_rtt_direct: TimingSummary,
    /// Ping to relayed ack, answered through ping-req helpers.
    pub probe_rtt_indirect: TimingSummary,
    /// Time between protocol periods.
    pub protocol_period: TimingSummary,
    /// Suspicions that ended in a refutation.
    pub suspicion_refuted: TimingSummary,
    /// Suspicions that ended in a death.
    pub suspicion_dead: TimingSummary,
}

/// One timing histogram: count and quantiles in milliseconds (within 12.5% above the truth).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TimingSummary {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl TimingSummary {
    /// Summarises a core histogram of nanoseconds.
    pub fn of(h: &swim_proto::histogram::Histogram) -> Self {
        let ms = |ns: u64| ns as f64 / 1e6;
        let [p50, _, p99, p999] = h.percentiles();
        TimingSummary {
            count: h.count(),
            p50_ms: ms(p50),
            p99_ms: ms(p99),
            p999_ms: ms(p999),
            max_ms: ms(h.max()),
        }
    }
}

impl ProtocolTimings {
    /// Merges the timings of `nodes`.
    pub fn of<'a>(nodes: impl Iterator<Item = &'a swim_proto::Timings>) -> Self {
        let mut all = swim_proto::Timings::default();
        for t in nodes {
            all.probe_rtt_direct.merge(&t.probe_rtt_direct);
            all.probe_rtt_indirect.merge(&t.probe_rtt_indirect);
            all.protocol_period.merge(&t.protocol_period);
            all.suspicion_refuted.merge(&t.suspicion_refuted);
            all.suspicion_dead.merge(&t.suspicion_dead);
        }
        ProtocolTimings {
            probe_rtt_direct: TimingSummary::of(&all.probe_rtt_direct),
            probe_rtt_indirect: TimingSummary::of(&all.probe_rtt_indirect),
            protocol_period: TimingSummary::of(&all.protocol_period),
            suspicion_refuted: TimingSummary::of(&all.suspicion_refuted),
            suspicion_dead: TimingSummary::of(&all.suspicion_dead),
        }
    }
}

impl Report {
    /// The JSON object printed by `--json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serializes")
    }

    /// A readable table.
    pub fn to_table(&self) -> String {
        use std::fmt::Write;
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0} ms"));
        // Each row says what its samples are, so "n" never stands bare.
        let row = |s: &Summary, of: &str| {
            format!(
                "p50 {:>9}  p99 {:>9}  max {:>9}  (over {} {of})",
                ms(s.p50),
                ms(s.p99),
                ms(s.max),
                s.count
            )
        };
        let mut t = String::new();
        let _ = writeln!(
            t,
            "scenario {}  nodes {}  simulated {:.0} s  seed {}",
            self.scenario, self.nodes, self.seconds, self.seed
        );
        let _ = writeln!(t, "\ndetection");
        let _ = writeln!(
            t,
            "  first suspect   {}",
            row(&self.detection.first_suspect_ms, "crashes")
        );
        let _ = writeln!(
            t,
            "  first dead      {}",
            row(&self.detection.first_dead_ms, "crashes")
        );
        let _ = writeln!(
            t,
            "  dead at all     {}",
            row(&self.detection.all_dead_ms, "crash × observer pairs")
        );
        let _ = writeln!(
            t,
            "  dead everywhere {}",
            row(&self.detection.dead_everywhere_ms, "crashes")
        );
        let _ = writeln!(t, "  undetected      {}", self.detection.undetected);
        let fp = &self.false_positives;
        let _ = writeln!(t, "\nfalse positives");
        let _ = writeln!(
            t,
            "  dead {}  suspect {}  victims {}  healthy victims {}",
            fp.dead, fp.suspect, fp.victims, fp.healthy_victims
        );
        let fd = &self.false_deaths;
        let _ = writeln!(t, "false deaths by kind (events / distinct victims)");
        for (name, c) in [
            ("(a) reachable", fd.reachable),
            ("(b) restarted", fd.restarted),
            ("(c) across partition", fd.across_partition),
            ("(d) healthy, faulty run", fd.healthy_in_faulty_run),
            ("faulty victim", fd.faulty_victim),
            ("fresh (< 2 s up)", fd.fresh),
        ] {
            let _ = writeln!(t, "  {name:<24} {} / {}", c.events, c.victims);
        }
        let l = &self.load;
        let _ = writeln!(t, "\nload per node per second");
        let _ = writeln!(
            t,
            "  datagrams {:.1}  bytes {:.0} (busiest {:.0})  streams {:.3}  stream bytes {:.0}",
            l.datagrams_per_node_s,
            l.bytes_per_node_s,
            l.max_bytes_per_node_s,
            l.streams_per_node_s,
            l.stream_bytes_per_node_s
        );
        for k in &self.bytes_by_kind {
            let _ = writeln!(
                t,
                "    {:<20} {:>9.3} /s  {:>9.1} B/s  {:>8.1} B each",
                k.kind, k.per_node_s, k.bytes_per_node_s, k.bytes_each
            );
        }
        let _ = writeln!(
            t,
            "\nviews {} at the end; first convergence {}   heal {}   dissemination p50 {} p99 {} (over {} membership changes)",
            if self.converged {
                "converged"
            } else {
                "NOT converged"
            },
            ms(self.convergence_ms),
            ms(self.heal_ms),
            ms(self.dissemination.p50_ms),
            ms(self.dissemination.p99_ms),
            self.dissemination.count
        );
        let pt = &self.timings;
        if pt.probe_rtt_direct.count > 0 {
            let _ = writeln!(
                t,
                "timings: probe rtt p50 {:.1} ms p99 {:.1} ms (indirect: {} p99 {:.0} ms)   period p50 {:.0} ms p99 {:.0} ms   suspicion refuted {} p50 {:.0} ms / dead {} p50 {:.0} ms",
                pt.probe_rtt_direct.p50_ms,
                pt.probe_rtt_direct.p99_ms,
                pt.probe_rtt_indirect.count,
                pt.probe_rtt_indirect.p99_ms,
                pt.protocol_period.p50_ms,
                pt.protocol_period.p99_ms,
                pt.suspicion_refuted.count,
                pt.suspicion_refuted.p50_ms,
                pt.suspicion_dead.count,
                pt.suspicion_dead.p50_ms,
            );
        }
        if self.heal_nodes_ms.count > 0 {
            let _ = writeln!(t, "heal per node  {}", row(&self.heal_nodes_ms, "nodes"));
        }
        if self.stable_view_ms.count > 0 {
            let _ = writeln!(
                t,
                "stable view    {}",
                row(&self.stable_view_ms, "membership changes")
            );
        }
        if let Some(st) = &self.state {
            let _ = writeln!(
                t,
                "\nstate: {} writes; reached every live node p50 {} p99 {} max {} ({} did not by the end); stores {} across {} live nodes",
                st.updates,
                ms(st.p50_ms),
                ms(st.p99_ms),
                ms(st.max_ms),
                st.never_reached_all,
                if st.converged { "identical" } else { "DIFFER" },
                st.live_nodes_checked
            );
        }
        let c = &self.cost;
        let mem = c.peak_memory_bytes.map_or("-".into(), |b| {
            format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
        });
        let per = c
            .memory_per_node_bytes
            .map_or("-".into(), |b| format!("{:.1} KiB", b as f64 / 1024.0));
        let _ = writeln!(
            t,
            "\ncost: {:.2} s wall time, {} events processed, {:.0} simulated node-seconds per wall second, {:.0} events per wall second, peak memory {mem} ({per} per node)",
            self.wall_s, self.events, c.node_seconds_per_wall_s, c.events_per_wall_s
        );
        match &self.violation {
            None => {
                let _ = writeln!(t, "invariants: all held");
            }
            Some(v) => {
                let _ = writeln!(t, "INVARIANT VIOLATED: {v}");
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_uses_nearest_rank() {
        let s = Summary::of(&[5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!(
            (s.p50, s.p99, s.max, s.count),
            (Some(3.0), Some(5.0), Some(5.0), 5)
        );
        assert_eq!(Summary::of(&[]).p50, None);
    }

    #[test]
    fn json_has_the_contract_fields_and_nulls() {
        let r = Report {
            scenario: "steady".into(),
            ..Report::default()
        };
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        for key in [
            "scenario",
            "nodes",
            "seconds",
            "seed",
            "wall_s",
            "events",
            "detection",
            "false_positives",
            "load",
            "convergence_ms",
            "heal_ms",
            "invariant_violations",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert!(v["detection"]["first_suspect_ms"]["p50"].is_null());
        assert!(v["convergence_ms"].is_null());
        for key in [
            "datagrams_per_node_s",
            "bytes_per_node_s",
            "max_bytes_per_node_s",
            "stream_bytes_per_node_s",
        ] {
            assert!(v["load"].get(key).is_some(), "missing load.{key}");
        }
    }
}
