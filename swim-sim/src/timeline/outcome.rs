//! What a finished run hands back: its metrics, the world's traffic and the final nodes turned
//! into a [`Report`]; and the debug dumps (`SWIM_SIM_DEBUG_STATE`, `SWIM_SIM_DEBUG_VIEWS`).

use super::Timeline;
use crate::invariants::Violation;
use crate::metrics::Metrics;
use crate::report::{Cost, Report, Summary};
use crate::scenario::NodeId;
use crate::world::Life;

impl Timeline<'_> {
    fn running(&self) -> impl Iterator<Item = &swim_proto::Node<NodeId>> {
        (0..self.up.len() as NodeId).filter_map(|v| self.world.node(v))
    }

    pub(super) fn debug_state(&self) {
        let mut total = swim_proto::StateStats::default();
        for n in self.running() {
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

    pub(super) fn debug_views(&self) {
        for o in 0..self.up.len() {
            if self.world.life(o as NodeId) == Life::Up {
                let (missing, extra) = self.metrics.views.diff(o);
                if missing + extra > 0 {
                    let n = self.world.node(o as NodeId).map(|n| {
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

    /// What the run measured.
    pub(super) fn report(mut self, seed: u64, wall_s: f64) -> Report {
        let scenario = self.scenario;
        let seconds = self.now().as_nanos() as f64 / 1e9;
        let (detection, samples) = self.metrics.detection();
        let peak = peak_memory_bytes();
        let n = scenario.nodes;
        let state = self.state.as_ref().map(|t| {
            let prints: Vec<u64> = (0..n as NodeId)
                .filter(|&v| self.up[v as usize])
                .filter_map(|v| self.world.node(v))
                .map(|n| n.state_fingerprint())
                .collect();
            let converged = prints.windows(2).all(|w| w[0] == w[1]);
            t.report(converged, prints.len())
        });
        let events = self.world.steps();
        let violation = self.world.violation().map(|(at, v)| match v {
            Violation::TraceWrite(_) => v.to_string(),
            _ => format!("seed {seed} at {at}: {v}"),
        });
        Report {
            scenario: scenario.name.clone(),
            nodes: n,
            seconds,
            seed,
            wall_s,
            events,
            detection,
            false_positives: self.metrics.false_positives(),
            load: Metrics::load(self.world.all_traffic(), seconds),
            convergence_ms: self
                .metrics
                .first_convergence
                .map(|t| t.as_nanos() as f64 / 1e6),
            heal_ms: self.metrics.heal_ms,
            heal_nodes_ms: Summary::of(&self.metrics.heal_node_ms),
            stable_view_ms: Summary::of(&self.views.stable_view_ms),
            converged: self.metrics.converged_since.is_some(),
            unconverged_nodes: self.metrics.views.unconverged(),
            packets_dropped: self.running().map(|n| n.stats().dropped.total()).sum(),
            dissemination: self.metrics.dissemination(),
            state,
            output_digest: self.world.output_digest().map(|d| format!("{d:016x}")),
            cost: Cost {
                node_seconds_per_wall_s: n as f64 * seconds / wall_s.max(1e-9),
                events_per_wall_s: events as f64 / wall_s.max(1e-9),
                peak_memory_bytes: peak,
                memory_per_node_bytes: peak.map(|p| p / n.max(1) as u64),
            },
            invariant_violations: usize::from(violation.is_some()),
            violation,
            false_deaths: self.metrics.deaths.report(),
            crashes: self.metrics.crash_chains(),
            run: crate::run_info::of(scenario),
            false_deaths_by_side: self.metrics.deaths.by_side(),
            faults: std::mem::take(&mut self.metrics.faults),
            series: std::mem::take(&mut self.metrics.series),
            detection_samples_ms: samples,
            timings: crate::report::ProtocolTimings::of(self.running().map(|n| &n.stats().timings)),
            bytes_by_kind: self.world.kind_bytes.report(n, seconds),
        }
    }
}

fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
