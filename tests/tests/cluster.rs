//! Multi-node behaviour of the SWIM core on the in-memory harness. Each test names the rule it
//! checks; every failure message carries the seed that reproduces it.

use std::time::Duration;

use swim_proto::{Command, Config, Event, Input, Instant, MemberState};
use swim_tests::{Cluster, is_failed_about, is_suspected_about};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn joined(n: usize, seed: u64) -> Cluster {
    Cluster::joined(n, Config::lan(), seed)
}

/// Join through one seed: every node ends up knowing every other node (no pair left unknown).
#[test]
fn three_nodes_converge_after_joining_through_one_seed() {
    let c = joined(3, 1);
    assert!(c.converged());
}

#[test]
fn ten_nodes_converge_after_joining_through_one_seed() {
    let c = joined(10, 2);
    assert!(c.converged());
}

#[test]
fn hundred_nodes_converge_after_joining_through_one_seed() {
    let mut c = joined(100, 3);
    let at = c.now();
    // Gossip plus push-pull reach 100%: every pair knows each other, and it stays that way.
    c.run_for(secs(60));
    assert!(
        c.converged(),
        "seed 3: view diverged after convergence at {at}"
    );
    let falsely = c.count_events(|o| matches!(o.event, Event::MemberFailed(_)));
    assert_eq!(falsely, 0, "seed 3: false failures in a healthy cluster");
}

/// SWIM §3.1 + §4.2: a crashed node is suspected, then declared dead by every other node.
#[test]
fn crashed_node_is_declared_dead_by_every_other_node() {
    let seed = 4;
    let mut c = joined(10, seed);
    let victim = 7;
    let name = c.name(victim).to_string();
    let crashed_at = c.now();
    c.crash(victim);
    let mut worst_health = 0;
    let ok = c.run_until_true(secs(120), Duration::from_millis(100), |c| {
        for a in c.running() {
            worst_health = worst_health.max(c.node(a).unwrap().health_score());
        }
        c.states_of(&name)
            .values()
            .all(|s| *s == Some(MemberState::Dead))
    });
    // Lifeguard §IV-A: helpers nack in time, so probing a dead node costs healthy probers no
    // health; without the nacks each failed probe would add 3.
    assert_eq!(worst_health, 0, "seed {seed}: a healthy prober lost health");
    assert!(
        ok,
        "seed {seed}: not every node holds {name} dead: {:?}",
        c.states_of(&name)
    );
    let first = c.log.iter().find(|o| is_failed_about(o, &name)).unwrap();
    let detection = first.at - crashed_at;
    // Probed within a round (10 periods) then a suspicion of at most 6 × 4 s.
    assert!(
        detection < secs(40),
        "seed {seed}: detection took {detection:?}"
    );
    for a in c.running() {
        let failed = c.count_events(|o| o.observer == a && is_failed_about(o, &name));
        assert_eq!(
            failed, 1,
            "seed {seed}: node {a} reported {name} failed {failed} times"
        );
    }
}

/// SWIM §4.2: a member suspected while alive refutes with a higher incarnation and is never
/// declared dead; it keeps its name (no identity change).
#[test]
fn falsely_suspected_node_refutes_and_stays_alive() {
    let seed = 5;
    let mut c = joined(10, seed);
    let target = 3;
    let name = c.name(target).to_string();
    let inc = c.node(target).unwrap().local().incarnation;
    // Node 1 is told (as if by gossip from node 2) that the target is suspect.
    let bytes = swim_proto::wire::encode_datagram(
        b"",
        &swim_proto::wire::Message::Gossip,
        &[swim_proto::wire::Update::Suspect {
            name: &name,
            incarnation: inc,
            addr: target,
            accuser: "node-2",
        }],
    );
    c.input(1, Input::Datagram { from: 2, bytes });
    c.run_for(secs(120)); // far past the longest suspicion timeout
    assert!(
        c.count_events(|o| is_suspected_about(o, &name)) >= 1,
        "seed {seed}"
    );
    assert_eq!(
        c.count_events(|o| is_failed_about(o, &name)),
        0,
        "seed {seed}: refuted node declared dead"
    );
    let local = c.node(target).unwrap().local();
    assert!(local.incarnation > inc, "seed {seed}: no refutation");
    assert_eq!(local.name.as_str(), name);
    assert!(c.converged(), "seed {seed}");
    let refuted =
        c.count_events(|o| o.observer == target && matches!(o.event, Event::LocalRefuted { .. }));
    assert_eq!(
        refuted, 1,
        "seed {seed}: one suspicion needs exactly one refutation"
    );
}

/// A node that leaves gracefully is reported as left by everyone, never as failed, and is
/// not probed again.
#[test]
fn node_that_leaves_is_never_reported_failed() {
    let seed = 6;
    let mut c = joined(10, seed);
    let leaver = 4;
    let name = c.name(leaver).to_string();
    c.input(leaver, Input::Command(Command::Leave));
    let ok = c.run_until_true(secs(30), Duration::from_millis(100), |c| {
        c.states_of(&name)
            .values()
            .all(|s| *s == Some(MemberState::Left))
    });
    assert!(
        ok,
        "seed {seed}: leave not disseminated: {:?}",
        c.states_of(&name)
    );
    // The leaver keeps gossiping its departure for its full retransmission count, then says so.
    c.run_for(secs(3));
    let complete =
        c.count_events(|o| o.observer == leaver && matches!(o.event, Event::LeaveComplete));
    assert_eq!(complete, 1, "seed {seed}: LeaveComplete once");
    c.crash(leaver); // the process exits after leaving
    c.run_for(secs(120));
    assert_eq!(
        c.count_events(|o| is_failed_about(o, &name)),
        0,
        "seed {seed}: left node reported failed"
    );
    assert_eq!(
        c.count_events(|o| is_suspected_about(o, &name)),
        0,
        "seed {seed}: left node probed"
    );
    let left_events =
        c.count_events(|o| matches!(&o.event, Event::MemberLeft(m) if m.name.as_str() == name));
    assert_eq!(
        left_events, 9,
        "seed {seed}: every other node reports the leave once"
    );
}

/// A node restarted with fresh state (incarnation 0) after being declared dead takes an
/// incarnation above the recorded one and rejoins as alive, with no manual step.
#[test]
fn restarted_node_with_fresh_state_rejoins_as_alive() {
    let seed = 7;
    let mut c = joined(10, seed);
    let victim = 5;
    let name = c.name(victim).to_string();
    c.crash(victim);
    let dead = c.run_until_true(secs(120), Duration::from_millis(200), |c| {
        c.states_of(&name)
            .values()
            .all(|s| *s == Some(MemberState::Dead))
    });
    assert!(dead, "seed {seed}");
    c.restart(victim, 0);
    let ok = c.run_until_true(secs(60), Duration::from_millis(200), Cluster::converged);
    assert!(
        ok,
        "seed {seed}: restarted node did not rejoin: {:?}",
        c.states_of(&name)
    );
    assert!(
        c.node(victim).unwrap().local().incarnation > 0,
        "seed {seed}: took a higher incarnation"
    );
    c.run_for(secs(60));
    assert!(c.converged(), "seed {seed}: rejoined node did not stay");
}

/// A node restarted before anyone noticed (others still hold it alive at a higher
/// incarnation) also takes over its old identity cleanly.
#[test]
fn quickly_restarted_node_takes_over_its_name() {
    let seed = 8;
    let mut c = joined(5, seed);
    // Raise node 2's incarnation so the restarted process starts below it.
    c.input(2, Input::Command(Command::UpdateMetadata(b"v1".to_vec())));
    c.input(2, Input::Command(Command::UpdateMetadata(b"v2".to_vec())));
    c.run_for(secs(5));
    c.restart(2, 0);
    let ok = c.run_until_true(secs(30), Duration::from_millis(100), |c| {
        c.converged()
            && c.running().iter().filter(|&&a| a != 2).all(|&a| {
                c.node(a)
                    .unwrap()
                    .member("node-2")
                    .is_some_and(|m| m.meta.is_empty())
            })
    });
    assert!(
        ok,
        "seed {seed}: restarted node's fresh metadata did not win"
    );
    assert!(c.node(2).unwrap().local().incarnation > 2);
}

/// At 10% packet loss, Lifeguard's indirect probes, nacks and suspicion keep a healthy
/// 10-node cluster free of false deaths for 10 simulated minutes.
#[test]
fn ten_percent_loss_causes_no_false_deaths_over_ten_minutes() {
    for seed in [9, 10, 11] {
        let mut c = joined(10, seed);
        c.loss = 0.10;
        c.run_for(secs(600));
        let deaths = c.count_events(|o| matches!(o.event, Event::MemberFailed(_)));
        assert_eq!(deaths, 0, "seed {seed}: {deaths} false deaths at 10% loss");
        assert!(c.converged(), "seed {seed}");
    }
}

/// A node wrongly declared dead (cut off long enough) gets back in by itself once the network
/// heals, and stays reachable.
#[test]
fn node_wrongly_declared_dead_gets_back_in_by_itself() {
    let seed = 12;
    let mut c = joined(8, seed);
    let victim = 6;
    let name = c.name(victim).to_string();
    c.isolate(victim);
    let dead = c.run_until_true(secs(120), Duration::from_millis(200), |c| {
        c.running().iter().filter(|&&a| a != victim).all(|&a| {
            c.node(a)
                .unwrap()
                .member(&name)
                .is_none_or(|m| m.state == MemberState::Dead)
        })
    });
    assert!(dead, "seed {seed}: isolated node not declared dead");
    c.heal();
    let back = c.run_until_true(secs(120), Duration::from_millis(200), Cluster::converged);
    assert!(
        back,
        "seed {seed}: node not back after heal: {:?}",
        c.states_of(&name)
    );
    c.run_for(secs(60));
    assert!(c.converged(), "seed {seed}: node did not stay");
}

/// memberlist#311: every node restarting within a few seconds must end with everyone alive.
#[test]
fn mass_restart_ends_with_everyone_alive() {
    let seed = 13;
    let mut c = joined(20, seed);
    for a in 0..20 {
        c.run_for(Duration::from_millis(250));
        c.restart(a, (a + 1) % 20);
    }
    let ok = c.run_until_true(secs(180), Duration::from_millis(500), Cluster::converged);
    assert!(
        ok,
        "seed {seed}: cluster did not reconverge after a mass restart"
    );
    c.run_for(secs(60));
    assert!(c.converged(), "seed {seed}");
}

/// A full cluster of ticks is idempotent: ticking twice at the same instant changes nothing.
#[test]
fn ticks_are_idempotent_and_time_never_runs_backwards() {
    let mut c = joined(3, 14);
    let now = c.now();
    let node = c.node(0).unwrap();
    let before = (node.stats().clone(), node.next_deadline());
    c.input(0, Input::Tick);
    c.input(0, Input::Tick);
    let node = c.node(0).unwrap();
    assert_eq!(node.stats().datagrams_sent, before.0.datagrams_sent);
    assert_eq!(node.next_deadline(), before.1);
    assert!(node.now() <= now);
    let _ = Instant::ZERO;
}

/// SWIM §3.1: when the direct path between two members is broken, ping-req through helpers
/// still gets the ack back, so neither is suspected.
#[test]
fn indirect_probes_keep_a_member_with_a_broken_direct_link_alive() {
    let seed = 15;
    let mut c = joined(6, seed);
    c.cut(0, 1);
    c.cut(1, 0);
    c.run_for(secs(120));
    let suspected = c.count_events(|o| {
        (o.observer == 0 && is_suspected_about(o, "node-1"))
            || (o.observer == 1 && is_suspected_about(o, "node-0"))
    });
    assert_eq!(
        suspected, 0,
        "seed {seed}: indirect probes should have answered"
    );
    assert!(
        c.node(0).unwrap().stats().indirect_probes > 0,
        "seed {seed}"
    );
    let relays: u64 = c
        .running()
        .iter()
        .map(|&a| c.node(a).unwrap().stats().relays)
        .sum();
    assert!(relays > 0, "seed {seed}");
    assert_eq!(
        c.count_events(|o| matches!(o.event, Event::MemberFailed(_))),
        0
    );
}

/// Lifeguard §IV-A: a node that stops hearing anything (acks and nacks alike) raises its local
/// health score, which stretches its probe interval.
#[test]
fn deaf_node_raises_its_health_score() {
    let seed = 16;
    let mut c = joined(6, seed);
    for a in 1..6 {
        c.cut(a, 0); // node 0 can send but receives nothing
    }
    c.run_for(secs(10));
    let health = c.node(0).unwrap().health_score();
    assert!(health >= 3, "seed {seed}: health score {health}");
    let probes_deaf = c.node(0).unwrap().stats().probes;
    c.run_for(secs(20));
    let rate_deaf = c.node(0).unwrap().stats().probes - probes_deaf;
    assert!(
        rate_deaf < 10,
        "seed {seed}: a starved node probes less than once per second ({rate_deaf} in 20 s)"
    );
    for a in 1..6 {
        assert_eq!(
            c.node(a).unwrap().health_score(),
            0,
            "seed {seed}: healthy nodes stay healthy"
        );
    }
}
