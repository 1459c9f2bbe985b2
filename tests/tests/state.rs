//! Replicated key/value state on the in-memory harness (`docs/protocol.md` §10). Every failure
//! message carries the seed that reproduces it.

use std::time::Duration;

use swim_proto::{
    ChangeCause, Command, CommandError, Config, Event, Input, StateError, StateTypeConfig,
    StateWrite,
};
use swim_tests::{Addr, Cluster};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn config() -> Config {
    let mut c = Config::local();
    c.state.tombstone_ttl = secs(30);
    c
}

fn joined(n: usize, config: Config, seed: u64) -> Cluster {
    Cluster::joined(n, config, seed)
}

fn publish(c: &mut Cluster, at: Addr, ty: &str, key: &str, value: &[u8]) {
    c.input(
        at,
        Input::Command(Command::Publish(StateWrite::new(ty, key, value))),
    );
}

fn value_at(c: &Cluster, at: Addr, ty: &str, key: &str) -> Option<Vec<u8>> {
    c.node(at)?
        .state_get(ty, key)
        .and_then(|e| e.value.as_deref().map(<[u8]>::to_vec))
}

fn everyone_has(c: &Cluster, ty: &str, key: &str, value: &[u8]) -> bool {
    c.running()
        .iter()
        .all(|&a| value_at(c, a, ty, key).as_deref() == Some(value))
}

fn fingerprints_agree(c: &Cluster) -> bool {
    let mut prints = c
        .running()
        .into_iter()
        .map(|a| c.node(a).unwrap().state_fingerprint());
    let first = prints.next();
    prints.all(|p| Some(p) == first)
}

/// §10.2: a publish on one node reaches every node by gossip within a few gossip rounds.
#[test]
fn a_published_entry_reaches_every_node() {
    let seed = 11;
    let mut c = joined(20, config(), seed);
    publish(&mut c, 3, "health", "backend-1", b"up");
    let ok = c.run_until_true(secs(10), Duration::from_millis(100), |c| {
        everyone_has(c, "health", "backend-1", b"up")
    });
    assert!(
        ok,
        "seed {seed}: the entry did not reach every node in 10 s"
    );
    let changed = c.count_events(|o| {
        matches!(&o.event, Event::StateChanged { key, cause: ChangeCause::Remote, .. }
            if key.key() == "backend-1")
    });
    assert_eq!(
        changed, 19,
        "seed {seed}: every other node reports the change once"
    );
}

/// §10.1: concurrent writes on both sides of a partition converge, after it heals, to the write
/// with the greater (version, origin) stamp, on every node.
#[test]
fn conflicting_writes_across_a_partition_converge_after_it_heals() {
    let seed = 12;
    let mut cfg = config();
    // Long suspicion so the split does not turn into deaths: this test is about state.
    cfg.suspicion_mult = 60;
    let mut c = joined(10, cfg, seed);
    for a in 0..5 {
        for b in 5..10 {
            c.cut(a, b);
            c.cut(b, a);
        }
    }
    for i in 0..20 {
        publish(&mut c, 1, "drain", &format!("k{i}"), b"left-side");
        publish(&mut c, 7, "drain", &format!("k{i}"), b"right-side");
        publish(&mut c, 8, "drain", &format!("k{i}"), b"right-again");
    }
    c.run_for(secs(10));
    assert_eq!(
        value_at(&c, 0, "drain", "k0").as_deref(),
        Some(&b"left-side"[..])
    );
    assert_eq!(
        value_at(&c, 9, "drain", "k0").as_deref(),
        Some(&b"right-again"[..])
    );
    c.heal();
    let ok = c.run_until_true(secs(30), Duration::from_millis(200), fingerprints_agree);
    assert!(
        ok,
        "seed {seed}: state did not converge 30 s after the heal"
    );
    let winner = c.node(0).unwrap().state_get("drain", "k5").unwrap().clone();
    for a in c.running() {
        let e = c.node(a).unwrap().state_get("drain", "k5").unwrap();
        assert_eq!(e, &winner, "seed {seed}: node {a} holds another winner");
    }
}

/// §10.7: when an origin fails, every other node gets the failover event naming its entries,
/// and types configured to expire orphans delete them after the delay.
#[test]
fn origin_failure_reports_entries_and_expires_configured_types() {
    let seed = 13;
    let mut cfg = config();
    cfg.state.types = vec![StateTypeConfig::new("conn").expire_after_origin_failure(secs(5))];
    let mut c = joined(8, cfg, seed);
    publish(&mut c, 5, "conn", "count", b"17");
    publish(&mut c, 5, "health", "b1", b"up");
    let ok = c.run_until_true(secs(10), Duration::from_millis(100), |c| {
        everyone_has(c, "conn", "count", b"17") && everyone_has(c, "health", "b1", b"up")
    });
    assert!(ok, "seed {seed}: entries did not spread");
    c.crash(5);
    let ok = c.run_until_true(secs(60), Duration::from_millis(200), |c| {
        c.count_events(|o| matches!(&o.event, Event::OriginFailed { origin, left: false, .. } if origin.as_str() == "node-5")) == 7
    });
    assert!(
        ok,
        "seed {seed}: not every node reported the origin failure"
    );
    let o = c
        .log
        .iter()
        .find(|o| matches!(&o.event, Event::OriginFailed { .. }))
        .unwrap();
    let Event::OriginFailed { keys, .. } = &o.event else {
        unreachable!()
    };
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    assert_eq!(keys, ["conn/count", "health/b1"], "seed {seed}");
    c.run_for(secs(6));
    for a in c.running() {
        assert_eq!(
            value_at(&c, a, "conn", "count"),
            None,
            "seed {seed}: node {a} kept an orphan"
        );
        assert_eq!(
            value_at(&c, a, "health", "b1").as_deref(),
            Some(&b"up"[..]),
            "seed {seed}: node {a} expired a type without expiry"
        );
    }
}

/// §10.5: deletions are tombstones, collected after `tombstone_ttl`; a node that was cut off
/// through the deletion and the collection, still holding the old value, is reset when it comes
/// back: the old value never returns anywhere.
#[test]
fn collected_tombstone_never_lets_an_old_value_come_back() {
    let seed = 14;
    // The isolated node is declared dead and comes back by partition healing: membership
    // recovers on its own; what is under test is that state does not bring the value back.
    let mut c = joined(6, config(), seed);
    publish(&mut c, 2, "flag", "maintenance", b"on");
    let ok = c.run_until_true(secs(10), Duration::from_millis(100), |c| {
        everyone_has(c, "flag", "maintenance", b"on")
    });
    assert!(ok, "seed {seed}: the value did not spread");
    c.isolate(4);
    c.input(
        2,
        Input::Command(Command::Delete {
            ty: "flag".into(),
            key: "maintenance".into(),
        }),
    );
    c.run_for(secs(100)); // deletion spreads, then is collected (ttl 30 s)
    for a in [0, 1, 2, 3, 5] {
        let n = c.node(a).unwrap();
        assert!(
            n.state_entry("flag", "maintenance").is_none(),
            "seed {seed}: node {a} still holds the tombstone"
        );
        assert!(
            n.stats().state.tombstones_collected >= 1,
            "seed {seed}: node {a}"
        );
    }
    assert_eq!(
        value_at(&c, 4, "flag", "maintenance").as_deref(),
        Some(&b"on"[..]),
        "the cut-off node still holds the old value"
    );
    c.heal();
    let ok = c.run_until_true(secs(120), Duration::from_millis(500), Cluster::converged);
    assert!(ok, "seed {seed}: membership did not heal");
    c.run_for(secs(10));
    assert!(
        c.node(4).unwrap().stats().state.reset_drops >= 1,
        "seed {seed}: no reset"
    );
    for a in c.running() {
        assert_eq!(
            value_at(&c, a, "flag", "maintenance"),
            None,
            "seed {seed}: the deleted value came back on node {a}"
        );
    }
    assert!(fingerprints_agree(&c), "seed {seed}: state diverged");
}

/// §10.6: a node restarted under the same name starts its Lamport clock at zero; its new writes
/// still win over its previous life's, everywhere.
#[test]
fn restarted_node_writes_win_over_its_previous_life() {
    let seed = 15;
    let mut c = joined(6, config(), seed);
    for i in 0..5 {
        publish(&mut c, 3, "cfg", "mode", format!("v{i}").as_bytes());
    }
    let ok = c.run_until_true(secs(10), Duration::from_millis(100), |c| {
        everyone_has(c, "cfg", "mode", b"v4")
    });
    assert!(ok, "seed {seed}: first life's value did not spread");
    c.crash(3);
    c.run_for(secs(2));
    c.restart(3, 0);
    c.run_for(Duration::from_millis(1));
    publish(&mut c, 3, "cfg", "mode", b"new-life");
    // A key the previous life never wrote: numbered below the previous life's sequence, it
    // would look like a stale copy to the others unless the new life re-numbers it.
    publish(&mut c, 3, "cfg", "fresh", b"1");
    let ok = c.run_until_true(secs(30), Duration::from_millis(200), |c| {
        everyone_has(c, "cfg", "mode", b"new-life") && everyone_has(c, "cfg", "fresh", b"1")
    });
    assert!(
        ok,
        "seed {seed}: the new life's write did not win everywhere"
    );
}

/// Bounds: a publish past `max_entries` is rejected with a typed error and changes nothing.
#[test]
fn publish_past_the_bound_is_rejected_and_changes_nothing() {
    let mut cfg = config();
    cfg.state.max_entries = 3;
    cfg.state.origin_share_percent = 100; // one node alone: its fair share is the whole store
    let mut c = Cluster::new(1, cfg, 16);
    for i in 0..3 {
        publish(&mut c, 0, "t", &format!("k{i}"), b"x");
    }
    let batch = vec![
        StateWrite::new("t", "k0", "y"),
        StateWrite::new("t", "k9", "z"),
    ];
    c.input(0, Input::Command(Command::PublishMany(batch)));
    let rejected = c.log.iter().find_map(|o| match &o.event {
        Event::CommandRejected(e) => Some(e.clone()),
        _ => None,
    });
    assert_eq!(
        rejected,
        Some(CommandError::State {
            index: 1,
            error: StateError::TooManyEntries { max: 3 }
        })
    );
    let n = c.node(0).unwrap();
    assert_eq!(
        n.state_get("t", "k0").unwrap().value.as_deref(),
        Some(&b"x"[..])
    );
    assert!(n.state_get("t", "k9").is_none());
    assert_eq!(n.stats().state.writes, 3);
}

/// Per-type switches: a node that does not store a type neither holds nor forwards it, and
/// the others still converge.
#[test]
fn a_node_that_does_not_store_a_type_ignores_it() {
    let seed = 17;
    let mut c = joined(5, config(), seed);
    publish(&mut c, 1, "secret", "k", b"v");
    c.run_for(secs(5));
    assert!(everyone_has(&c, "secret", "k", b"v"));
    // A fresh node configured without the type joins.
    let mut cfg = config();
    cfg.state.types = vec![StateTypeConfig::new("secret").not_stored()];
    let mut d = Cluster::new(3, cfg, seed);
    d.join_all_via(0, secs(1));
    d.run_for(secs(10));
    d.input(
        0,
        Input::Command(Command::Publish(StateWrite::new("secret", "k", "v"))),
    );
    assert!(d.log.iter().any(|o| matches!(
        &o.event,
        Event::CommandRejected(CommandError::State {
            error: StateError::TypeNotStored,
            ..
        })
    )));
}

/// Entries too large for a datagram travel by stream and anti-entropy.
#[test]
fn an_entry_larger_than_a_datagram_still_reaches_every_node() {
    let seed = 18;
    let mut c = joined(10, config(), seed);
    let big = vec![7u8; 10_000];
    publish(&mut c, 2, "blob", "b", &big);
    let ok = c.run_until_true(secs(20), Duration::from_millis(200), |c| {
        everyone_has(c, "blob", "b", &big)
    });
    assert!(ok, "seed {seed}: the large entry did not reach every node");
}

/// Anti-entropy alone (no piggybacking: the entry is published on a node whose gossip is cut)
/// repairs a node that missed every gossip.
#[test]
fn anti_entropy_repairs_a_node_that_missed_the_gossip() {
    let seed = 19;
    let mut c = joined(8, config(), seed);
    c.loss = 0.3;
    for i in 0..50 {
        publish(&mut c, (i % 8) as Addr, "load", &format!("k{i}"), b"1");
    }
    c.run_for(secs(5));
    c.loss = 0.0;
    let ok = c.run_until_true(secs(30), Duration::from_millis(200), |c| {
        fingerprints_agree(c)
            && c.running()
                .iter()
                .all(|&a| c.node(a).unwrap().state_iter("load").count() == 50)
    });
    assert!(ok, "seed {seed}: anti-entropy did not converge the store");
}
