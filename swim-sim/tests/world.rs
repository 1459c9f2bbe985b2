//! The steppable `World`: faults as calls, invariants after every step, one seed for all.

use std::time::Duration;

use swim_proto::{Config, Instant, MemberState};
use swim_sim::{Happening, Life, NetworkSpec, World};

fn warm(n: usize, seed: u64) -> World {
    let mut w = World::new(n, Config::lan(), NetworkSpec::default(), seed);
    w.enable_digest();
    w.start_warm();
    w
}

/// What every running node but `about` holds about `about`.
fn states(w: &World, about: u32) -> Vec<Option<MemberState>> {
    let name = w.name(about).to_string();
    (0..w.len() as u32)
        .filter(|&v| v != about)
        .filter_map(|v| w.node(v))
        .map(|n| n.member(&name).map(|m| m.state))
        .collect()
}

#[test]
fn same_seed_same_steps_same_digest() {
    let run = |seed| {
        let mut w = warm(12, seed);
        w.run_for(Duration::from_secs(3));
        w.crash(5);
        w.set_loss(0.05);
        w.run_until(Instant::from_secs(40));
        (w.output_digest(), w.steps())
    };
    assert_eq!(run(9), run(9), "seed 9: two runs diverged");
    assert_ne!(run(9).0, run(10).0, "seeds 9 and 10 should differ");
}

/// SWIM §4.3 / Lifeguard: a pause shorter than the suspicion timeout is refuted, not fatal.
#[test]
fn a_short_pause_is_survived_and_the_backlog_handled() {
    let seed = 3;
    let mut w = warm(8, seed);
    w.run_for(Duration::from_secs(2));
    assert!(w.pause(2), "seed {seed}: node 2 was up");
    assert!(w.is_paused(2));
    w.run_for(Duration::from_secs(2));
    w.resume(2);
    assert!(!w.is_paused(2));
    w.run_for(Duration::from_secs(30));
    assert_eq!(w.violation(), None, "seed {seed}");
    assert!(
        states(&w, 2).iter().all(|s| *s == Some(MemberState::Alive)),
        "seed {seed}: {:?}",
        states(&w, 2)
    );
}

#[test]
fn an_isolated_node_is_declared_dead_and_a_crash_is_observed() {
    let seed = 4;
    let mut w = warm(8, seed);
    w.drain_observed().for_each(drop);
    w.isolate(6);
    w.crash(7);
    assert_eq!(w.life(7), Life::Crashed);
    w.run_for(Duration::from_secs(40));
    assert!(
        states(&w, 6).iter().all(|s| *s == Some(MemberState::Dead)),
        "seed {seed}: {:?}",
        states(&w, 6)
    );
    let crashed = w
        .drain_observed()
        .filter(|o| matches!(o.what, Happening::Crashed { .. }) && o.node == 7)
        .count();
    assert_eq!(crashed, 1, "seed {seed}");
    assert!(w.ever_lossy());
    assert_eq!(w.violation(), None, "seed {seed}");
}

#[test]
fn a_partition_cuts_only_across_groups_until_repaired() {
    let seed = 5;
    let mut w = warm(10, seed);
    let p = w.partition(&[vec![0, 1, 2, 3, 4]], false);
    assert!(w.is_partitioned());
    w.run_for(Duration::from_secs(40));
    // Each side declares the other dead and keeps its own alive.
    assert_eq!(
        w.node(0).unwrap().member("node-7").map(|m| m.state),
        Some(MemberState::Dead),
        "seed {seed}"
    );
    assert_eq!(
        w.node(0).unwrap().member("node-3").map(|m| m.state),
        Some(MemberState::Alive),
        "seed {seed}"
    );
    w.repair(p);
    assert!(!w.is_partitioned());
    assert_eq!(w.violation(), None, "seed {seed}");
}
