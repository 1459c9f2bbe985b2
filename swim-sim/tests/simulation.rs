//! Seeded simulator runs of whole clusters: the CI tier. Every failure message carries the seed
//! (and the violation text names seed and time) so a failure reproduces with `swim-sim run`.

use std::time::Duration;

use swim_sim::scenario::Knobs;
use swim_sim::trace_file::{self, ReplayOptions};
use swim_sim::{Fault, RunOptions, Scenario, ScenarioBuilder, derive_seed, run};

fn built_in(name: &str, nodes: usize, seconds: u64, seed: u64) -> Scenario {
    let knobs = Knobs {
        nodes,
        duration: Duration::from_secs(seconds),
        ..Knobs::default()
    };
    Scenario::built_in(name, &knobs, seed).unwrap()
}

/// The CI headline run: 1,000 nodes, 300 simulated seconds, 1% crash. Every crashed node is
/// declared dead by every live node, nobody healthy is, and views converge.
#[test]
fn thousand_nodes_crash_every_death_detected_everywhere() {
    let seed = 1;
    let s = built_in("crash", 1000, 300, seed);
    let r = run(&s, seed, RunOptions::default());
    assert_eq!(r.violation, None, "seed {seed}");
    assert_eq!(
        r.detection.first_dead_ms.count, 10,
        "seed {seed}: every crash declared dead somewhere"
    );
    assert_eq!(
        r.detection.all_dead_ms.count,
        10 * 990,
        "seed {seed}: every (crash, live observer) pair"
    );
    assert_eq!(r.detection.undetected, 0, "seed {seed}");
    assert_eq!(r.false_positives.dead, 0, "seed {seed}: false deaths");
    assert!(r.converged, "seed {seed}: views did not converge");
    // Lifeguard with n = 1000: suspicion between 12 s (confirmed) and 72 s (alone).
    let p99 = r.detection.all_dead_ms.p99.unwrap();
    assert!(p99 < 72_000.0, "seed {seed}: p99 detection {p99} ms");
    eprintln!(
        "1000-node crash: all-dead p50 {:?} p99 {:?} ms, wall {:.2} s",
        r.detection.all_dead_ms.p50, r.detection.all_dead_ms.p99, r.wall_s
    );
}

/// Swarm testing: 200 small clusters, each seed turning a different mix of faults on; every
/// safety invariant after every step, liveness in the quiet tail.
#[test]
fn swarm_of_200_runs_holds_every_invariant() {
    let mut failures = Vec::new();
    for i in 0..200 {
        let case = derive_seed(2026, 0x5a4a, i);
        let r = run(&Scenario::swarm(case), case, RunOptions::default());
        if let Some(v) = r.violation {
            failures.push(format!(
                "{v}\n  reproduce: swim-sim run --scenario swarm --seed {case}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 200 swarm runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One seed drives everything: the same seed twice gives identical outputs, byte for byte; a
/// different seed does not.
#[test]
fn same_seed_same_run_byte_for_byte() {
    let s = built_in("churn", 60, 120, 5);
    let opts = || RunOptions {
        digest: true,
        ..RunOptions::default()
    };
    let a = run(&s, 5, opts());
    let b = run(&s, 5, opts());
    assert_eq!(a.output_digest, b.output_digest, "seed 5: runs diverged");
    assert_eq!(
        (a.events, a.detection.clone(), a.false_positives.clone()),
        (b.events, b.detection, b.false_positives)
    );
    let c = run(&s, 6, opts());
    assert_ne!(a.output_digest, c.output_digest);
}

/// A recorded trace replays through fresh nodes with every output verified; a corrupted
/// recording is caught at the first divergent step.
#[test]
fn record_then_replay_round_trip() {
    let s = ScenarioBuilder::new(12)
        .seconds(60)
        .loss(0.02)
        .crash(10.0, 4)
        .fault(
            15.0,
            Fault::CrashRestart {
                node: 5,
                downtime: Duration::from_secs(5),
            },
        )
        .fault(20.0, Fault::Leave { node: 6 })
        .build();
    let dir = std::env::temp_dir().join(format!("swim-sim-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.trace");
    let record = trace_file::create(&path).unwrap();
    let r = run(
        &s,
        9,
        RunOptions {
            record: Some(record),
            ..RunOptions::default()
        },
    );
    assert_eq!(r.violation, None);
    let mut timeline = Vec::new();
    let opts = ReplayOptions {
        node: Some("node-1".into()),
        until: None,
        verbose: false,
    };
    let summary = trace_file::replay(&path, &opts, &mut timeline).unwrap();
    assert_eq!(summary.divergence, None);
    assert_eq!(summary.boots, 13, "12 boots plus one restart");
    assert!(summary.steps > 1000);
    let timeline = String::from_utf8(timeline).unwrap();
    assert!(
        timeline.contains("member FAILED: node-4"),
        "the timeline shows node-1 seeing the crash"
    );
    assert!(timeline.contains("member left: node-6"));

    // Flip one byte inside the last frame's digest: replay must report the divergence.
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    let bad = dir.join("bad.trace");
    std::fs::write(&bad, &bytes).unwrap();
    let summary = trace_file::replay(&bad, &ReplayOptions::default(), &mut std::io::sink());
    match summary {
        Ok(s) => assert!(s.divergence.is_some(), "a tampered digest must diverge"),
        Err(e) => assert!(e.contains("corrupt"), "{e}"),
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `partition`: during a 50/50 split each side declares the other dead (partitioned victims,
/// not healthy ones); after it heals, partition healing re-merges the halves and views
/// converge again.
#[test]
fn partition_is_detected_then_heals() {
    let seed = 3;
    let r = run(
        &built_in("partition", 100, 240, seed),
        seed,
        RunOptions::default(),
    );
    assert_eq!(r.violation, None, "seed {seed}");
    assert!(
        r.false_positives.victims >= 90,
        "seed {seed}: each side should declare the other dead: {:?}",
        r.false_positives
    );
    assert_eq!(
        r.false_positives.healthy_victims, 0,
        "seed {seed}: partitioned nodes are not healthy victims"
    );
    let heal = r.heal_ms.expect("views reconverged after the heal");
    assert!(heal < 120_000.0, "seed {seed}: healing took {heal} ms");
    assert!(r.converged, "seed {seed}");
    // Issue 7's goal, per node: p99 heal time within 60 s of a 60 s split ending.
    assert_eq!(
        r.heal_nodes_ms.count, 100,
        "seed {seed}: every node's view heals"
    );
    let p99 = r.heal_nodes_ms.p99.unwrap();
    assert!(p99 <= 60_000.0, "seed {seed}: p99 heal {p99} ms");
}

/// `leader`: with view advertising on, after every membership change (1% crashes, then the
/// leader itself) every node reports the same stable view and names the same leader (checked
/// as an invariant whenever views agree), and after the leader's crash they agree on the next
/// name in order.
#[test]
fn stable_views_and_one_leader_after_changes() {
    let seed = 1;
    let r = run(
        &built_in("leader", 200, 120, seed),
        seed,
        RunOptions::default(),
    );
    assert_eq!(r.violation, None, "seed {seed}");
    assert_eq!(
        r.stable_view_ms.count, 3,
        "seed {seed}: two crashes and the leader's"
    );
    let p99 = r.stable_view_ms.p99.unwrap();
    assert!(p99 <= 60_000.0, "seed {seed}: stable view p99 {p99} ms");
    eprintln!(
        "200-node leader: stable view p50 {:?} p99 {:?} ms, wall {:.1} s",
        r.stable_view_ms.p50, r.stable_view_ms.p99, r.wall_s
    );
}

/// `join-storm`: every node joins through one seed within a second; views converge quickly.
#[test]
fn join_storm_converges() {
    let seed = 4;
    let r = run(
        &built_in("join-storm", 300, 60, seed),
        seed,
        RunOptions::default(),
    );
    assert_eq!(r.violation, None, "seed {seed}");
    let ms = r.convergence_ms.expect("converged");
    assert!(
        (1_000.0..20_000.0).contains(&ms),
        "seed {seed}: join storm took {ms} ms"
    );
    assert!(r.dissemination.count > 250, "seed {seed}: joins measured");
}

/// `restart-all` (memberlist#311): every node restarts within 10 s and the cluster ends whole.
#[test]
fn restart_all_ends_with_everyone_alive() {
    let seed = 6;
    let r = run(
        &built_in("restart-all", 100, 240, seed),
        seed,
        RunOptions::default(),
    );
    assert_eq!(r.violation, None, "seed {seed}");
    assert!(r.converged, "seed {seed}: not everyone alive again");
}

/// `slow`, `pause`, `loss` and `churn`: faults that make nodes look dead without being so.
/// False deaths land only on faulty nodes; invariants and convergence hold.
#[test]
fn faulty_but_alive_nodes_do_not_take_healthy_ones_down() {
    for (name, seed) in [("slow", 7), ("pause", 8), ("loss", 9), ("churn", 10)] {
        let r = run(&built_in(name, 100, 300, seed), seed, RunOptions::default());
        assert_eq!(r.violation, None, "{name} seed {seed}");
        assert_eq!(r.detection.undetected, 0, "{name} seed {seed}");
        if name != "loss" {
            assert_eq!(
                r.false_positives.healthy_victims, 0,
                "{name} seed {seed}: {:?}",
                r.false_positives
            );
        }
        assert!(r.converged, "{name} seed {seed}: views did not converge");
    }
}

/// Replicated state in CI (issue targets at 200 nodes): every node writes its own keys once a
/// second under 5% loss and 1% crashes; each write reaches every live node
/// (p99 within 5 s), and after 60 s without writes every live node holds an identical store.
/// Membership detection stays within 10% of the same runs without the state traffic (pooled
/// over three seeds: with two crashes per run, one seed's median is too noisy to compare).
#[test]
fn two_hundred_nodes_state_spreads_and_converges() {
    let (mut with_sum, mut base_sum) = (0.0, 0.0);
    for seed in 1..=3 {
        let s = built_in("state", 200, 90, seed);
        let r = run(&s, seed, RunOptions::default());
        assert_eq!(r.violation, None, "seed {seed}");
        let st = r.state.as_ref().expect("the state scenario reports state");
        assert!(st.updates > 4_000, "seed {seed}: {} writes", st.updates);
        assert_eq!(
            st.never_reached_all, 0,
            "seed {seed}: writes that never reached every live node"
        );
        let p99 = st.p99_ms.unwrap();
        assert!(p99 <= 5_000.0, "seed {seed}: state p99 {p99} ms > 5 s");
        assert!(
            st.converged,
            "seed {seed}: stores differ after the quiet minute"
        );
        assert_eq!(st.live_nodes_checked, 198, "seed {seed}");
        let mut without = s.clone();
        without.workload = None;
        let base = run(&without, seed, RunOptions::default());
        assert_eq!(base.violation, None, "seed {seed}");
        assert_eq!(
            r.false_positives.dead, 0,
            "seed {seed}: false deaths with state"
        );
        assert_eq!(r.detection.undetected, 0, "seed {seed}");
        with_sum += r.detection.all_dead_ms.p50.unwrap();
        base_sum += base.detection.all_dead_ms.p50.unwrap();
        eprintln!(
            "200-node state, seed {seed}: {} writes, p50 {:?} p99 {:?} max {:?} ms; wall {:.1} s",
            st.updates, st.p50_ms, st.p99_ms, st.max_ms, r.wall_s
        );
    }
    assert!(
        (with_sum - base_sum).abs() <= 0.1 * base_sum,
        "mean detection p50 {} ms with state, {} ms without",
        with_sum / 3.0,
        base_sum / 3.0
    );
}
