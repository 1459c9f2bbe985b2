//! The CI guards of issue 12: false deaths by kind in seeded runs. The kinds come from the
//! world's network rules and node lives (`Report::false_deaths`); every failure prints its
//! seed and the figures, reproducible with `swim-sim run`.

use std::time::Duration;

use swim_sim::{Knobs, Report, RestartMode, RunOptions, Scenario, run};

fn built_in(name: &str, knobs: &Knobs, seed: u64) -> Report {
    let s = Scenario::built_in(name, knobs, seed).unwrap();
    run(&s, seed, RunOptions::default())
}

fn figures(what: &str, seed: u64, r: &Report) -> String {
    let f = &r.false_deaths;
    format!(
        "{what}, seed {seed}: false deaths (events/victims) (a) reachable {}/{}, (b) restarted \
         {}/{}, (c) across partition {}/{}, (d) healthy in faulty run {}/{}, faulty victim {}/{}, \
         fresh {}/{}; violation {:?}",
        f.reachable.events,
        f.reachable.victims,
        f.restarted.events,
        f.restarted.victims,
        f.across_partition.events,
        f.across_partition.victims,
        f.healthy_in_faulty_run.events,
        f.healthy_in_faulty_run.victims,
        f.faulty_victim.events,
        f.faulty_victim.victims,
        f.fresh.events,
        f.fresh.victims,
        r.violation
    )
}

/// SWIM §4.2 with Lifeguard §IV-B: a suspicion caused by a partition must not outlive it. A
/// 100-node cluster split in halves for 30 s: every death across the split is expected (c),
/// and no node declares dead a node it could reach for the last 2 s (a).
#[test]
fn partition_of_30_s_declares_no_reachable_node_dead() {
    let seed = 1;
    let knobs = Knobs {
        nodes: 100,
        partition: Some(Duration::from_secs(30)),
        ..Knobs::default()
    };
    let r = built_in("partition", &knobs, seed);
    let msg = figures("partition 30 s, 100 nodes", seed, &r);
    eprintln!("{msg}");
    assert_eq!(r.violation, None, "{msg}");
    assert!(r.false_deaths.across_partition.events > 0, "{msg}");
    assert_eq!(r.false_deaths.reachable.events, 0, "{msg}");
}

/// A restarted node that is back up and reachable is never declared dead (b): every node of a
/// 100-node cluster restarts within 10 s, in both restart modes.
#[test]
fn restart_all_declares_no_restarted_node_dead() {
    let seed = 1;
    for mode in [RestartMode::DownThenUp, RestartMode::Overlap] {
        let knobs = Knobs {
            nodes: 100,
            restart_mode: Some(mode),
            ..Knobs::default()
        };
        let r = built_in("restart-all", &knobs, seed);
        let msg = figures(&format!("restart-all {mode:?}, 100 nodes"), seed, &r);
        eprintln!("{msg}");
        assert_eq!(r.violation, None, "{msg}");
        assert_eq!(r.false_deaths.restarted.events, 0, "{msg}");
    }
}

/// Deaths across a split are classified from the partition's groups: in a 20-node split every
/// node is declared dead by the other side (c), and none of those counts as (a).
#[test]
fn deaths_across_a_partition_are_expected_kind_c() {
    let seed = 3;
    let knobs = Knobs {
        nodes: 20,
        partition: Some(Duration::from_secs(30)),
        ..Knobs::default()
    };
    let r = built_in("partition", &knobs, seed);
    let msg = figures("partition 30 s, 20 nodes", seed, &r);
    assert_eq!(r.false_deaths.across_partition.victims, 20, "{msg}");
    assert_eq!(r.false_deaths.restarted.events, 0, "{msg}");
    assert_eq!(r.false_deaths.healthy_in_faulty_run.events, 0, "{msg}");
}
