//! The built-in scenarios, by name, and swarm testing's random ones: which nodes fail and
//! when derive from a seed.

use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::*;

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
    "flaky",
];

/// Knobs of the built-in scenarios that the CLI exposes. `None` keeps a scenario's own
/// default, so runs without the knob are unchanged.
#[derive(Clone, Debug)]
pub struct Knobs {
    /// Nodes.
    pub nodes: usize,
    /// Simulated time.
    pub duration: Duration,
    /// Loss for the `loss` scenario (and added to any other). Default 0.05 for `loss`.
    pub loss: Option<f64>,
    // issue 12: scenario knobs.
    /// Length of the `partition` scenario's split (`--partition-secs`). Default 60 s, at most
    /// a third of the run.
    pub partition: Option<Duration>,
    /// How `restart-all` replaces each node (`--restart-mode`). Default
    /// [`RestartMode::DownThenUp`].
    pub restart_mode: Option<RestartMode>,
    /// Window over which `join-storm`'s nodes start their joins (`--join-window-secs`).
    /// Default 1 s.
    pub join_window: Option<Duration>,
}

impl Default for Knobs {
    /// 100 nodes, 120 s, every scenario's own defaults.
    fn default() -> Self {
        Knobs {
            nodes: 100,
            duration: Duration::from_secs(120),
            loss: None,
            partition: None,
            restart_mode: None,
            join_window: None,
        }
    }
}

/// How `restart-all` replaces each node's process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RestartMode {
    /// The old instance dies at once; the new one starts after a downtime of 0.1-1 s (the
    /// address is silent meanwhile).
    #[default]
    DownThenUp,
    /// The old instance runs until the new one takes over its address: no downtime (in a
    /// scenario file, a `crash-restart` with `downtime = "0s"`).
    Overlap,
}

impl std::str::FromStr for RestartMode {
    type Err = ScenarioError;
    fn from_str(s: &str) -> Result<Self, ScenarioError> {
        match s {
            "down-then-up" => Ok(RestartMode::DownThenUp),
            "overlap" => Ok(RestartMode::Overlap),
            other => Err(ScenarioError(format!(
                "restart_mode (--restart-mode) must be down-then-up or overlap, got {other:?}"
            ))),
        }
    }
}

/// Checks that each knob given applies to scenario `name` and is in range; names the knob.
fn check_knobs(name: &str, k: &Knobs) -> Result<(), ScenarioError> {
    let err = |m: String| Err(ScenarioError(m));
    for (field, given, applies) in [
        (
            "partition_secs (--partition-secs)",
            k.partition,
            "partition",
        ),
        (
            "join_window_secs (--join-window-secs)",
            k.join_window,
            "join-storm",
        ),
    ] {
        if let Some(d) = given {
            if name != applies {
                return err(format!(
                    "{field} applies to the {applies} scenario only, not {name}"
                ));
            }
            if d.is_zero() {
                return err(format!("{field} must be greater than zero"));
            }
        }
    }
    if k.restart_mode.is_some() && name != "restart-all" {
        return err(format!(
            "restart_mode (--restart-mode) applies to the restart-all scenario only, not {name}"
        ));
    }
    if let Some(p) = k.partition {
        let at = Duration::from_secs(10).min(k.duration / 4);
        if at + p >= k.duration {
            return err(format!(
                "partition_secs (--partition-secs) {} s: the split from {} s must end before the \
                 run does ({} s)",
                p.as_secs_f64(),
                at.as_secs_f64(),
                k.duration.as_secs_f64()
            ));
        }
    }
    Ok(())
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
        check_knobs(name, knobs)?;
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
                        duration: knobs.partition.unwrap_or(secs(60).min(d / 3)),
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
                s.start = Start::JoinStorm {
                    within: knobs.join_window.unwrap_or(secs(1)),
                };
                s.seeds = vec![0];
            }
            "restart-all" => {
                let base = secs(10).min(d / 4);
                for node in 0..n as NodeId {
                    let at = base + between(&mut rng, Duration::ZERO, secs(10));
                    let downtime = between(&mut rng, Duration::from_millis(100), secs(1));
                    let downtime = match knobs.restart_mode.unwrap_or_default() {
                        RestartMode::DownThenUp => downtime,
                        RestartMode::Overlap => Duration::ZERO,
                    };
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
            "flaky" => {
                // The Rapid paper's flaky nodes: 1% of nodes lose 20-80% of the datagrams they
                // send and receive, from 5 s on; deaths of the other 99% are false (kind d).
                for node in distinct(&mut rng, n, one_percent, &s.seeds.clone()) {
                    let rate = 0.2 + 0.6 * unit(&mut rng);
                    s.faults.push(TimedFault {
                        at: secs(5).min(d / 4),
                        fault: Fault::Flaky { node, rate },
                    });
                }
            }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_scenario_is_valid() {
        let knobs = Knobs::default();
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
    fn knobs_shape_their_scenario_and_name_the_field_when_wrong() {
        let secs = Duration::from_secs;
        let k = Knobs {
            partition: Some(secs(30)),
            ..Knobs::default()
        };
        let s = Scenario::built_in("partition", &k, 1).unwrap();
        assert!(
            matches!(s.faults[0].fault, Fault::Partition { duration, .. } if duration == secs(30))
        );
        let k = Knobs {
            restart_mode: Some(RestartMode::Overlap),
            ..Knobs::default()
        };
        let s = Scenario::built_in("restart-all", &k, 1).unwrap();
        assert_eq!(s.faults.len(), 100);
        assert!(
            s.faults
                .iter()
                .all(|f| f.fault.duration() == Some(Duration::ZERO))
        );
        let k = Knobs {
            join_window: Some(secs(5)),
            ..Knobs::default()
        };
        let s = Scenario::built_in("join-storm", &k, 1).unwrap();
        assert_eq!(s.start, Start::JoinStorm { within: secs(5) });

        let wrong = |k: Knobs, name: &str, field: &str| {
            let e = Scenario::built_in(name, &k, 1).unwrap_err();
            assert!(e.0.contains(field), "{e}");
        };
        let too_long = Knobs {
            partition: Some(secs(115)),
            ..Knobs::default()
        };
        wrong(too_long, "partition", "partition_secs");
        let zero = Knobs {
            join_window: Some(Duration::ZERO),
            ..Knobs::default()
        };
        wrong(zero, "join-storm", "join_window_secs");
        let misplaced = Knobs {
            restart_mode: Some(RestartMode::DownThenUp),
            ..Knobs::default()
        };
        wrong(misplaced, "crash", "restart_mode");
        let e = "sideways".parse::<RestartMode>().unwrap_err();
        assert!(e.0.contains("restart_mode"), "{e}");
    }

    #[test]
    fn flaky_makes_one_percent_of_nodes_lose_20_to_80_percent() {
        let k = Knobs {
            nodes: 1000,
            ..Knobs::default()
        };
        let s = Scenario::built_in("flaky", &k, 3).unwrap();
        let rates: Vec<f64> = s
            .faults
            .iter()
            .filter_map(|f| match f.fault {
                Fault::Flaky { node, rate } if !s.seeds.contains(&node) => Some(rate),
                _ => None,
            })
            .collect();
        assert_eq!(rates.len(), 10);
        assert!(rates.iter().all(|r| (0.2..=0.8).contains(r)), "{rates:?}");
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
