//! Operator control of the SWIM core (issue 14) on the in-memory harness: removal of another
//! member (`docs/protocol.md` §12.1) and pausing the failure detector (§12.2). Every failure
//! message carries its seed.

use std::time::Duration;

use swim_proto::{
    Command, CommandError, Config, Event, Identity, Input, Instant, MemberState, Node, NodeName,
};
use swim_tests::{Cluster, is_failed_about, is_suspected_about};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn joined(n: usize, seed: u64) -> Cluster {
    Cluster::joined(n, Config::lan(), seed)
}

/// A member removed by an operator while alive: every node holds it left at the incarnation
/// it had, nobody suspects or probes it again, and the member itself accepts the removal
/// (no refutation) until it rejoins explicitly, with a higher incarnation.
#[test]
fn removed_member_is_left_everywhere_stays_out_and_rejoins_only_explicitly() {
    let seed = 41;
    let mut c = joined(10, seed);
    let (operator, victim) = (2, 6);
    let name = c.name(victim).to_string();
    let inc = c.node(victim).unwrap().local().incarnation;
    c.input(
        operator,
        Input::Command(Command::Remove { name: name.clone() }),
    );
    let ok = c.run_until_true(secs(30), Duration::from_millis(100), |c| {
        c.states_of(&name)
            .values()
            .all(|s| *s == Some(MemberState::Left))
            && c.node(victim).unwrap().local().state == MemberState::Left
    });
    assert!(
        ok,
        "seed {seed}: removal not disseminated: {:?}",
        c.states_of(&name)
    );
    let removed_events = c.count_events(|o| {
        o.observer == victim
            && matches!(o.event, Event::LocalRemoved { incarnation } if incarnation == inc)
    });
    assert_eq!(removed_events, 1, "seed {seed}: LocalRemoved once");
    // Probes already in flight land within a protocol period; after that, silence.
    c.run_for(secs(3));
    let pings = c.node(victim).unwrap().stats().received.ping;
    c.run_for(secs(120));
    assert_eq!(
        c.node(victim).unwrap().stats().received.ping,
        pings,
        "seed {seed}: removed member still probed"
    );
    assert_eq!(c.node(victim).unwrap().local().state, MemberState::Left);
    assert_eq!(
        c.count_events(|o| is_failed_about(o, &name) || is_suspected_about(o, &name)),
        0,
        "seed {seed}: removed member suspected or failed"
    );
    assert_eq!(
        c.count_events(|o| o.observer == victim && matches!(o.event, Event::LocalRefuted { .. })),
        0,
        "seed {seed}: removed member refuted its removal"
    );
    // An explicit rejoin brings it back, with a higher incarnation, everywhere.
    c.input(victim, Input::Command(Command::Join { seeds: vec![0] }));
    let ok = c.run_until_true(secs(60), Duration::from_millis(100), |c| {
        c.converged()
            && c.running().iter().filter(|&&a| a != victim).all(|&a| {
                c.node(a)
                    .unwrap()
                    .member(&name)
                    .is_some_and(|m| m.state == MemberState::Alive && m.incarnation > inc)
            })
    });
    assert!(
        ok,
        "seed {seed}: rejoin after removal did not spread: {:?}",
        c.states_of(&name)
    );
}

/// Removing a member that is already dead turns its tombstone into a removal: still not
/// probed, reported left.
#[test]
fn removing_a_crashed_member_reports_it_left() {
    let seed = 42;
    let mut c = joined(8, seed);
    let victim = 5;
    let name = c.name(victim).to_string();
    c.crash(victim);
    c.input(1, Input::Command(Command::Remove { name: name.clone() }));
    let ok = c.run_until_true(secs(30), Duration::from_millis(100), |c| {
        c.states_of(&name)
            .values()
            .all(|s| *s == Some(MemberState::Left))
    });
    assert!(ok, "seed {seed}: {:?}", c.states_of(&name));
    c.run_for(secs(60));
    assert_eq!(
        c.count_events(|o| is_failed_about(o, &name)),
        0,
        "seed {seed}: a removed member is not declared dead afterwards"
    );
}

/// Removing this node itself or an unknown member is a typed error and changes nothing.
#[test]
fn removing_self_or_an_unknown_member_is_rejected() {
    let id = Identity::new(NodeName::new("a").unwrap(), 1u32);
    let mut node = Node::new(Config::lan(), id, 1).unwrap();
    let mut out = Vec::new();
    let t = Instant::from_nanos(1_000);
    let r = node.command(Command::Remove { name: "a".into() }, t, &mut out);
    assert_eq!(r, Err(CommandError::RemoveSelf));
    let r = node.command(Command::Remove { name: "zz".into() }, t, &mut out);
    assert_eq!(r, Err(CommandError::UnknownMember { name: "zz".into() }));
    assert_eq!(node.local().state, MemberState::Alive);
    assert_eq!(node.members().count(), 0);
    assert_eq!(node.pending_broadcasts(), 0);
}

/// §12.2: a node whose failure detector is paused probes nobody, yet keeps answering, so it
/// is never suspected; after resuming it probes again.
#[test]
fn paused_failure_detector_probes_nobody_but_keeps_the_node_alive() {
    let seed = 43;
    let mut c = joined(8, seed);
    let paused = 3;
    let name = c.name(paused).to_string();
    c.input(paused, Input::Command(Command::PauseFailureDetector));
    assert!(c.node(paused).unwrap().failure_detector_paused());
    let probes = c.node(paused).unwrap().stats().probes;
    let pings_answered = c.node(paused).unwrap().stats().sent.ack;
    c.run_for(secs(60));
    let n = c.node(paused).unwrap();
    assert_eq!(n.stats().probes, probes, "seed {seed}: paused node probed");
    assert!(
        n.stats().sent.ack > pings_answered + 20,
        "seed {seed}: paused node stopped answering"
    );
    assert_eq!(
        c.count_events(|o| is_suspected_about(o, &name)),
        0,
        "seed {seed}: paused node suspected"
    );
    assert!(c.converged(), "seed {seed}: view diverged while paused");
    c.input(paused, Input::Command(Command::ResumeFailureDetector));
    c.run_for(secs(10));
    assert!(
        c.node(paused).unwrap().stats().probes >= probes + 5,
        "seed {seed}: no probes after resume"
    );
}
