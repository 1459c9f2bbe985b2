//! Lifecycle and runtime reconfiguration of the SWIM core (issue 14; `docs/protocol.md` §12.3
//! onwards) on the in-memory harness. Every failure message carries its seed.

use std::time::Duration;

use swim_proto::{Command, CommandError, Config, Event, Input, Instant, MemberState, Status};
use swim_tests::{Addr, Cluster, is_failed_about, is_suspected_about};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn reconfigure(c: &mut Cluster, a: Addr, config: Config) {
    c.input(a, Input::Command(Command::Reconfigure(Box::new(config))));
}

/// Crashes `victim` and returns (crash → first suspicion, crash → held dead by every live
/// node), or panics naming the seed if that takes over 60 s.
fn detect(c: &mut Cluster, victim: Addr) -> (Duration, Duration) {
    let name = c.name(victim).to_string();
    let t0 = c.now();
    let from = c.log.len();
    c.crash(victim);
    let all_dead = |c: &Cluster| {
        c.states_of(&name)
            .values()
            .all(|s| matches!(s, Some(MemberState::Dead) | None))
    };
    let ok = c.run_until_true(secs(60), Duration::from_millis(100), all_dead);
    assert!(ok, "seed {}: {name} not detected within 60 s", c.seed());
    let first_suspect = c.log[from..]
        .iter()
        .find(|o| is_suspected_about(o, &name))
        .map(|o| o.at)
        .expect("a suspicion preceded the death");
    let last_dead = c.log[from..]
        .iter()
        .filter(|o| is_failed_about(o, &name))
        .map(|o| o.at)
        .max()
        .expect("deaths were reported");
    let since = |t: Instant| t.saturating_duration_since(t0);
    (since(first_suspect), since(last_dead))
}

/// A running 200-node cluster switched from `lan()` to `local()` timing detects a crash on the
/// new timing: Lifeguard's suspicion floor drops from `4·log10(200)·1 s ≈ 9.2 s` to
/// `3·log10(200)·1 s ≈ 6.9 s` (SWIM §4.2, Lifeguard §IV-B) and the probe timeout from 500 to
/// 200 ms, so the crash is held dead everywhere sooner than the same cluster on `lan()`
/// manages, and within the local timing's own bound.
#[test]
fn a_running_cluster_switched_to_local_timing_detects_on_the_new_timing() {
    let seed = 14;
    let n = 200;
    let victim = 77;

    let mut lan = Cluster::joined(n, Config::lan(), seed);
    lan.run_for(secs(5));
    let (lan_suspect, lan_dead) = detect(&mut lan, victim);

    let mut c = Cluster::joined(n, Config::lan(), seed);
    for a in 0..n as Addr {
        reconfigure(&mut c, a, Config::local());
    }
    let rejected = c.count_events(|o| {
        matches!(
            o.event,
            Event::CommandRejected(CommandError::Reconfigure(_))
        )
    });
    assert_eq!(rejected, 0, "seed {seed}: every node took the new config");
    for a in 0..n as Addr {
        let cfg = c.node(a).unwrap().config();
        assert_eq!(cfg.probe_timeout, Config::local().probe_timeout);
        assert_eq!(cfg.suspicion_mult, Config::local().suspicion_mult);
    }
    c.run_for(secs(5));
    let (suspect, dead) = detect(&mut c, victim);
    eprintln!(
        "seed {seed}, n = {n}: lan suspect {lan_suspect:?} dead everywhere {lan_dead:?}; \
         after reconfigure to local: suspect {suspect:?} dead everywhere {dead:?}"
    );
    assert!(
        dead < lan_dead,
        "seed {seed}: local timing detects sooner ({dead:?} vs {lan_dead:?} on lan)"
    );
    // The local floor (6.9 s) after the first suspicion, plus gossip to everyone.
    assert!(
        dead <= suspect + Duration::from_millis(9_200),
        "seed {seed}: dead everywhere {dead:?} after the crash, suspicion at {suspect:?}: \
         more than the lan floor of 9.2 s after it"
    );
}

/// A reconfiguration that does not validate, or whose bound is below what the node holds,
/// is refused with the field named, and nothing changes.
#[test]
fn a_bad_reconfiguration_names_the_field_and_changes_nothing() {
    let seed = 15;
    let mut c = Cluster::joined(12, Config::lan(), seed);
    let before = c.node(3).unwrap().config().clone();

    let mut bad = Config::local();
    bad.probe_timeout = bad.probe_interval * 2;
    let mut small = Config::local();
    small.max_members = 5; // the node holds 11 others
    for (cfg, field) in [(bad, "probe_timeout"), (small, "max_members")] {
        let from = c.log.len();
        reconfigure(&mut c, 3, cfg);
        let err = c.log[from..]
            .iter()
            .find_map(|o| match &o.event {
                Event::CommandRejected(e) if o.observer == 3 => Some(e.clone()),
                _ => None,
            })
            .expect("the command was rejected");
        match err {
            CommandError::Reconfigure(e) => assert_eq!(e.field, field, "seed {seed}: {e}"),
            e => panic!("seed {seed}: unexpected error {e}"),
        }
        assert_eq!(
            c.node(3).unwrap().config(),
            &before,
            "seed {seed}: unchanged"
        );
    }
}

/// Identity, keyring and `start_incarnation` survive a reconfiguration, and
/// `Config::fixed_at_run_time` names the fields left as they were.
#[test]
fn reconfiguration_keeps_identity_keyring_and_start_incarnation() {
    let seed = 16;
    let mut c = Cluster::joined(4, Config::lan(), seed);
    let local = c.node(1).unwrap().local().clone();
    let mut new = Config::wan();
    new.start_incarnation = 9;
    new.keyring = Some(swim_proto::Keyring::new(swim_proto::SecretKey::new(
        [7; 32],
    )));
    let fixed = c.node(1).unwrap().config().fixed_at_run_time(&new);
    assert_eq!(fixed, ["keyring", "start_incarnation"]);
    reconfigure(&mut c, 1, new);
    let node = c.node(1).unwrap();
    assert_eq!(node.local(), &local, "seed {seed}: identity untouched");
    assert_eq!(
        node.config().keyring,
        None,
        "seed {seed}: keyring untouched"
    );
    assert_eq!(node.config().start_incarnation, 0);
    assert_eq!(node.config().probe_interval, Config::wan().probe_interval);
}

fn statuses_of(c: &Cluster, a: Addr) -> Vec<(Status, Status)> {
    c.log
        .iter()
        .filter(|o| o.observer == a)
        .filter_map(|o| match o.event {
            Event::StatusChanged { from, to } => Some((from, to)),
            _ => None,
        })
        .collect()
}

/// A node's status walks starting → running (started) → joining → running (joined) →
/// leaving → stopped, each change reported once, and `ready` follows the join.
#[test]
fn status_walks_the_lifecycle_and_ready_follows_the_join() {
    let seed = 21;
    let mut c = Cluster::new(4, Config::lan(), seed);
    assert_eq!(c.node(1).unwrap().status(), Status::Starting);
    assert!(
        !c.node(1).unwrap().ready(),
        "not ready before the first input"
    );
    c.input(1, Input::Tick); // the first input starts the node
    assert_eq!(c.node(1).unwrap().status(), Status::Running);
    assert!(
        c.node(1).unwrap().ready(),
        "a first member is ready once started"
    );
    c.input(1, Input::Command(Command::Join { seeds: vec![0] }));
    assert_eq!(c.node(1).unwrap().status(), Status::Joining);
    assert!(
        !c.node(1).unwrap().ready(),
        "seed {seed}: not ready while joining"
    );
    for a in [2, 3] {
        c.input(a, Input::Command(Command::Join { seeds: vec![0] }));
    }
    c.run_for(secs(5));
    assert_eq!(c.node(1).unwrap().status(), Status::Running);
    assert!(c.node(1).unwrap().ready(), "seed {seed}: ready once joined");
    let names: Vec<&str> = c
        .node(1)
        .unwrap()
        .join_answered()
        .map(|n| n.as_str())
        .collect();
    assert_eq!(names, [c.name(0)], "seed {seed}: the seed answered");
    c.input(1, Input::Command(Command::Leave));
    c.run_for(secs(10));
    assert_eq!(c.node(1).unwrap().status(), Status::Stopped);
    use Status::*;
    assert_eq!(
        statuses_of(&c, 1),
        [
            (Starting, Running),
            (Running, Joining),
            (Joining, Running),
            (Running, Leaving),
            (Leaving, Stopped)
        ],
        "seed {seed}"
    );
}

/// Join size 3 and parallelism 2 over five seeds (ringpop's `BootstrapOptions`): two batches
/// of two are contacted, the join completes at the third answer, and the fifth seed is never
/// contacted.
#[test]
fn join_size_and_parallelism_bound_the_seeds_contacted() {
    let seed = 22;
    let mut c = Cluster::new(7, Config::lan(), seed);
    for a in 1..5 {
        c.input(a, Input::Command(Command::Join { seeds: vec![0] }));
    }
    c.run_for(secs(10));
    let mut cfg = Config::lan();
    cfg.join.size = 3;
    cfg.join.parallelism = 2;
    cfg.join.attempt_timeout = Duration::from_millis(500);
    c.configure(6, cfg);
    c.input(
        6,
        Input::Command(Command::Join {
            seeds: vec![0, 1, 2, 3, 4],
        }),
    );
    let ok = c.run_until_true(secs(10), Duration::from_millis(50), |c| {
        c.node(6).unwrap().status() == Status::Running
    });
    assert!(ok, "seed {seed}: the join completed");
    let node = c.node(6).unwrap();
    let answered: Vec<String> = node.join_answered().map(|n| n.to_string()).collect();
    assert_eq!(answered.len(), 3, "seed {seed}: {answered:?}");
    assert!(
        !answered.iter().any(|n| n == c.name(4)),
        "seed {seed}: the fifth seed was never needed: {answered:?}"
    );
    assert_eq!(node.stats().join_attempts, 2, "seed {seed}: two batches");
}

/// With `join.max_duration`, a join nobody answers gives up with `JoinFailed`, the node goes
/// back to `Starting` and stops contacting the seeds.
#[test]
fn a_join_past_its_max_duration_fails_and_stops() {
    let seed = 23;
    let mut c = Cluster::new(3, Config::lan(), seed);
    c.crash(0);
    let mut cfg = Config::lan();
    cfg.join.max_duration = secs(5);
    c.configure(1, cfg);
    let t0 = c.now();
    c.input(1, Input::Command(Command::Join { seeds: vec![0] }));
    c.run_for(secs(10));
    let failed: Vec<_> = c
        .log
        .iter()
        .filter(|o| o.observer == 1 && matches!(o.event, Event::JoinFailed { .. }))
        .collect();
    assert_eq!(failed.len(), 1, "seed {seed}: one JoinFailed");
    assert_eq!(
        failed[0].at.saturating_duration_since(t0),
        secs(5),
        "seed {seed}"
    );
    let node = c.node(1).unwrap();
    assert_eq!(node.status(), Status::Starting);
    assert!(!node.ready());
    let attempts = node.stats().join_attempts;
    c.run_for(secs(60));
    assert_eq!(
        c.node(1).unwrap().stats().join_attempts,
        attempts,
        "seed {seed}: no attempt after giving up"
    );
}
