//! Protocol stats with timings (issue 14, `docs/protocol.md` §14): probe round trips, the
//! protocol period achieved and suspicion durations land in `Stats::timings`, and recording
//! them changes no output (the pinned digest in `determinism.rs` covers that).

use std::time::Duration;

use swim_proto::{Config, MemberState};
use swim_tests::Cluster;

const MS: u64 = 1_000_000;

/// SWIM §3.1, §4.3: every node times its direct probes (one-way delay 1–3 ms here, so a round
/// trip of 2–6 ms) and achieves its 1 s protocol period.
#[test]
fn direct_round_trips_and_periods_are_timed() {
    let mut c = Cluster::joined(8, Config::lan(), 7);
    c.run_for(Duration::from_secs(30));
    for a in c.running() {
        let t = &c.node(a).unwrap().stats().timings;
        let seed = c.seed();
        assert!(
            t.probe_rtt_direct.count() >= 20,
            "seed {seed}: node {a} timed {} probes",
            t.probe_rtt_direct.count()
        );
        let [p50, _, p99, _] = t.probe_rtt_direct.percentiles();
        assert!(
            (2 * MS..=7 * MS).contains(&p50) && p99 <= 7 * MS,
            "seed {seed}: node {a} rtt p50 {p50} p99 {p99}"
        );
        assert_eq!(
            t.probe_rtt_indirect.count(),
            0,
            "seed {seed}: no loss, no helper"
        );
        let period = t.protocol_period.quantile(0.5);
        assert!(
            (1_000 * MS..=1_125 * MS).contains(&period),
            "seed {seed}: node {a} period p50 {period}"
        );
        assert_eq!(t.suspicion_dead.count() + t.suspicion_refuted.count(), 0);
    }
}

/// SWIM §3.1: a probe whose direct path is cut is answered through ping-req helpers, and
/// its round trip (counted from the direct ping, so at least `probe_timeout`) is indirect.
#[test]
fn probes_answered_through_helpers_are_timed_as_indirect() {
    let mut c = Cluster::joined(6, Config::lan(), 11);
    c.cut(0, 1);
    c.cut(1, 0);
    c.run_for(Duration::from_secs(40));
    let t = &c.node(0).unwrap().stats().timings;
    assert!(
        t.probe_rtt_indirect.count() >= 1,
        "seed {}: indirect {:?}",
        c.seed(),
        t.probe_rtt_indirect
    );
    assert!(
        t.probe_rtt_indirect.min() >= 500 * MS,
        "{:?}",
        t.probe_rtt_indirect
    );
}

/// SWIM §4.2: a crashed member's suspicion ends in death after at least the minimum
/// suspicion timeout; an isolated member that comes back before it refutes, and that
/// suspicion is timed as refuted.
#[test]
fn suspicion_durations_split_by_outcome() {
    let mut c = Cluster::joined(8, Config::lan(), 5);
    c.isolate(7);
    c.run_for(Duration::from_secs(3));
    c.heal();
    c.run_for(Duration::from_secs(20));
    let refuted: u64 = (0..7)
        .map(|a| c.node(a).unwrap().stats().timings.suspicion_refuted.count())
        .sum();
    assert!(
        refuted >= 1,
        "seed {}: no refuted suspicion timed",
        c.seed()
    );
    c.crash(3);
    c.run_for(Duration::from_secs(60));
    for a in (0..8).filter(|&a| a != 3) {
        let n = c.node(a).unwrap();
        assert_eq!(n.member("node-3").unwrap().state, MemberState::Dead);
        let dead = &n.stats().timings.suspicion_dead;
        // The minimum suspicion timeout for 8 nodes: suspicion_mult (4) × 1 s.
        assert!(
            dead.count() >= 1 && dead.min() >= 4_000 * MS,
            "seed {}: node {a} {dead:?}",
            c.seed()
        );
    }
}
