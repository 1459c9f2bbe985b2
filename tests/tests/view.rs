//! Membership checksums, stable views and the leader on the in-memory harness
//! (`docs/protocol.md` §11). Every failure message carries the seed that reproduces it.

use std::time::Duration;

use swim_proto::{Config, Event};
use swim_tests::{Addr, Cluster};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn config() -> Config {
    let mut c = Config::local();
    c.view.advertise = true;
    c.view.settle = secs(3);
    c
}

fn joined(n: usize, seed: u64) -> Cluster {
    Cluster::joined(n, config(), seed)
}

fn all_stable_on_one_view(c: &Cluster) -> bool {
    let views: Vec<_> = c
        .running()
        .iter()
        .map(|&a| c.node(a).unwrap().view())
        .collect();
    views
        .iter()
        .all(|v| v.stable && v.checksum == views[0].checksum)
}

/// §11.1: nodes that see the same members compute the same checksum.
#[test]
fn converged_nodes_agree_on_the_checksum() {
    let seed = 31;
    let c = joined(12, seed);
    let sums: Vec<u64> = c
        .running()
        .iter()
        .map(|&a| c.node(a).unwrap().checksum())
        .collect();
    assert!(sums.iter().all(|&s| s == sums[0]), "seed {seed}: {sums:x?}");
}

/// §11.2–11.3: every node reports the same stable view (the on-stable hook fires) and names
/// the same leader, the lowest name; only that node is the leader.
#[test]
fn every_node_reports_the_same_stable_view_and_leader() {
    let seed = 32;
    let mut c = joined(10, seed);
    let ok = c.run_until_true(secs(60), Duration::from_millis(200), all_stable_on_one_view);
    assert!(ok, "seed {seed}: views did not become stable everywhere");
    let checksum = c.node(0).unwrap().checksum();
    for a in c.running() {
        let n = c.node(a).unwrap();
        let v = n.view();
        assert_eq!(v.members.len(), 10, "seed {seed}");
        assert_eq!(
            v.leader.as_ref().map(|l| l.as_str()),
            Some("node-0"),
            "seed {seed}: node {a} names another leader"
        );
        assert_eq!(n.is_leader(), a == 0, "seed {seed}: node {a}");
        assert!(n.cluster_consistent(), "seed {seed}: node {a}");
        assert!(n.node_versions().iter().all(|(_, c)| *c == Some(checksum)));
    }
    let stable_events = c.count_events(|o| {
        matches!(&o.event, Event::ViewStable { checksum: cs, members } if *cs == checksum && members.len() == 10)
    });
    assert!(
        stable_events >= 10,
        "seed {seed}: {stable_events} ViewStable events"
    );
}

/// §11.3: when the leader crashes, nodes stop naming it, and once the view without it is
/// stable they agree on the next one.
#[test]
fn a_crashed_leader_is_replaced_once_the_view_is_stable_again() {
    let seed = 33;
    let mut c = joined(8, seed);
    let ok = c.run_until_true(secs(60), Duration::from_millis(200), all_stable_on_one_view);
    assert!(ok, "seed {seed}: no first stable view");
    c.crash(0);
    let leader_is = |c: &Cluster, want: Option<&str>| {
        c.running()
            .iter()
            .all(|&a: &Addr| c.node(a).unwrap().leader().map(|l| l.as_str()) == want)
    };
    let ok = c.run_until_true(secs(60), Duration::from_millis(200), |c| {
        all_stable_on_one_view(c) && leader_is(c, Some("node-1"))
    });
    assert!(
        ok,
        "seed {seed}: no agreement on node-1 after node-0 crashed"
    );
    let handed_over = c.count_events(
        |o| matches!(&o.event, Event::LeaderChanged { leader: Some(l) } if l.as_str() == "node-1"),
    );
    assert_eq!(
        handed_over, 7,
        "seed {seed}: every survivor reports the new leader once"
    );
}

/// §11.1: a node whose view differs from every peer it hears for several probe periods, while
/// its own does not change, push-pulls with the last of them; hearing its own checksum resets
/// the count.
#[test]
fn a_persistent_checksum_mismatch_triggers_a_push_pull() {
    use swim_proto::wire::{self, Message, StreamKind, Update};
    use swim_proto::{Identity, Input, Instant, Node, NodeName, Output};
    let mut cfg = Config::local();
    cfg.push_pull_interval = Duration::ZERO;
    let mut n = Node::new(cfg, Identity::new(NodeName::new("a").unwrap(), 0u32), 1).unwrap();
    let peers = [("b", 1u32), ("c", 2), ("d", 3)];
    let updates: Vec<Update<'_, u32>> = peers
        .iter()
        .map(|&(name, addr)| Update::Alive {
            name,
            incarnation: 0,
            addr,
            meta: b"",
        })
        .collect();
    let gossip = wire::encode_datagram(b"", &Message::Gossip, &updates);
    let mut now = Instant::ZERO;
    n.handle(
        Input::Datagram {
            from: 1,
            bytes: gossip,
        },
        now,
    );
    let push_pulls_to = |out: &[Output<u32>]| -> Vec<u32> {
        out.iter()
            .filter_map(|o| match o {
                Output::SendStream { to, bytes } => {
                    let m = wire::decode_stream::<u32>(bytes, b"").ok()?;
                    matches!(m.header.kind, StreamKind::PushPull { .. }).then_some(*to)
                }
                _ => None,
            })
            .collect()
    };
    // Runs one probe period, acking the node's probe with `checksum` (None: its own).
    let period = |n: &mut Node<u32>, now: &mut Instant, checksum: Option<u64>| {
        *now = *now + Duration::from_secs(1);
        let out = n.handle(Input::Tick, *now);
        let mut sent = push_pulls_to(&out);
        let pings: Vec<(u32, u32)> = out
            .iter()
            .filter_map(|o| match o {
                Output::SendDatagram { to, bytes } => {
                    match wire::decode_datagram::<u32>(bytes, b"").ok()?.message {
                        Message::Ping { seq, .. } => Some((*to, seq)),
                        _ => None,
                    }
                }
                _ => None,
            })
            .collect();
        for (to, seq) in pings {
            let checksum = wire::short_checksum(checksum.unwrap_or_else(|| n.checksum()));
            let ack = wire::encode_datagram::<u32>(b"", &Message::Ack { seq, checksum }, &[]);
            let out = n.handle(
                Input::Datagram {
                    from: to,
                    bytes: ack,
                },
                *now,
            );
            sent.extend(push_pulls_to(&out));
            sent.push(1000 + to); // marks which peer answered
        }
        sent
    };
    // Periods hearing only a wrong checksum: a push-pull after the third, to the last peer.
    let mut log = Vec::new();
    for _ in 0..5 {
        log.extend(period(&mut n, &mut now, Some(42)));
    }
    let pulls: Vec<&u32> = log.iter().filter(|&&x| x < 1000).collect();
    assert_eq!(pulls.len(), 1, "one push-pull in five periods: {log:?}");
    let at = log.iter().position(|&x| x < 1000).unwrap();
    assert_eq!(
        log[at - 1],
        1000 + *pulls[0],
        "to the peer that disagreed last: {log:?}"
    );
    assert_eq!(n.stats().checksum_syncs, 1);
    // A period that hears agreement resets the count.
    for i in 0..6 {
        let cs = if i % 2 == 1 { Some(42) } else { None };
        let out = period(&mut n, &mut now, cs);
        assert!(out.iter().all(|&x| x >= 1000), "no push-pull: {out:?}");
    }
    assert_eq!(n.stats().checksum_syncs, 1);
}

/// §11.4: a configured rank overrides name order: the lowest `(rank, name)` leads.
#[test]
fn the_lowest_rank_leads_whatever_its_name() {
    let seed = 35;
    let mut c = Cluster::new(6, config(), seed);
    for a in 0..6 {
        let mut cfg = config();
        cfg.view.rank = if a == 4 { 1 } else { 5 };
        c.configure(a, cfg);
    }
    c.join_all_via(0, secs(1));
    let ok = c.run_until_true(secs(90), Duration::from_millis(200), |c| {
        all_stable_on_one_view(c)
            && c.running()
                .iter()
                .all(|&a| c.node(a).unwrap().leader().map(|l| l.as_str()) == Some("node-4"))
    });
    assert!(ok, "seed {seed}: node-4 (rank 1) is not everyone's leader");
    assert!(c.node(4).unwrap().is_leader());
}
