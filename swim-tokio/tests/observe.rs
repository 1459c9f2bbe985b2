//! Issue 14's observation and fault tools on loopback: protocol timings on the handle and at
//! /metrics, interposition and live partitions, per-member watches, duplicate names.

use std::collections::{BTreeSet, HashMap};
mod common;
use common::eventually;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swim_proto::{MemberState, MessageKind};
use swim_tokio::interpose::{Direction, Verdict};
use swim_tokio::{Cluster, DriverConfig, Preset};
use tokio::time::sleep;

/// Fast timers: 200 ms probes; healing every 2 s so a resolved partition heals quickly.
fn config(name: &str, seeds: &[SocketAddr]) -> DriverConfig {
    let mut c = DriverConfig::with_preset(Preset::Local);
    c.port = 0;
    c.name = name.into();
    c.seeds = seeds.iter().map(ToString::to_string).collect();
    c.core.probe_interval = Duration::from_millis(200);
    c.core.probe_timeout = Duration::from_millis(100);
    c.core.gossip_interval = Duration::from_millis(50);
    c.core.retransmit_mult = 4;
    c.core.push_pull_interval = Duration::from_secs(5);
    c.core.heal_interval = Duration::from_secs(2);
    c.core.join_retry_initial = Duration::from_millis(200);
    c.core.join_retry_max = Duration::from_secs(1);
    c.leave_timeout = Duration::from_secs(3);
    c
}

async fn cluster(prefix: &str, n: usize) -> Vec<Cluster> {
    common::start_cluster(prefix, n, config).await
}

async fn state_of(c: &Cluster, name: &str) -> Option<MemberState> {
    let name = name.to_string();
    c.inspect(move |n| n.member(&name).map(|m| m.state))
        .await
        .unwrap()
}

async fn all_alive(nodes: &[Cluster]) -> bool {
    for n in nodes {
        if n.alive().await.unwrap().len() != nodes.len() {
            return false;
        }
    }
    true
}

/// Partisan's inject_partition through the hook: two nodes cut themselves off from the other
/// two; each side declares the other failed, and after `resolve_partition` the cluster heals
/// by itself (healing snapshots, push-pull).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_partition_is_detected_on_both_sides_and_heals_after_resolving() {
    let nodes = cluster("part", 4).await;
    eventually(Duration::from_secs(10), "4 nodes converge", || {
        all_alive(&nodes)
    })
    .await;
    let mut ids = Vec::new();
    for n in &nodes[..2] {
        ids.push(n.inject_partition(["part-2", "part-3"]).await.unwrap());
    }
    let listed = nodes[0].partitions().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, ids[0]);
    eventually(
        Duration::from_secs(15),
        "both sides see the other failed",
        || {
            let nodes = nodes.clone();
            async move {
                for (i, j) in [(0, 2), (0, 3), (1, 2), (2, 0), (2, 1), (3, 0)] {
                    let name = format!("part-{j}");
                    if state_of(&nodes[i], &name).await != Some(MemberState::Dead) {
                        return false;
                    }
                }
                true
            }
        },
    )
    .await;
    for (n, id) in nodes[..2].iter().zip(&ids) {
        assert!(n.resolve_partition(*id).await.unwrap());
        assert!(!n.resolve_partition(*id).await.unwrap(), "resolved once");
        assert!(n.partitions().await.unwrap().is_empty());
    }
    eventually(
        Duration::from_secs(20),
        "the cluster heals after resolving",
        || all_alive(&nodes),
    )
    .await;
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

/// Operator removal (Serf's force-leave): once every node holds the removed member left,
/// nobody pings it any more. Pings are counted by an interposition hook on every node; the
/// same nodes report probe round trips on the handle and at /metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_is_probed_by_nobody_and_timings_are_reported() {
    type Pings = Arc<Mutex<HashMap<String, u64>>>;
    let pings: Pings = Arc::default();
    let mut nodes: Vec<Cluster> = Vec::new();
    for i in 0..4 {
        let seeds: Vec<SocketAddr> = nodes.first().map(Cluster::addr).into_iter().collect();
        let counter = pings.clone();
        let c = Cluster::builder(config(&format!("rm-{i}"), &seeds))
            .interpose(move |p| {
                if p.direction == Direction::Outgoing
                    && p.kind == Some(MessageKind::Ping)
                    && let Some(to) = p.peer_name
                {
                    *counter.lock().unwrap().entry(to.to_string()).or_default() += 1;
                }
                Verdict::Pass
            })
            .start()
            .await
            .unwrap();
        nodes.push(c);
    }
    eventually(Duration::from_secs(10), "4 nodes converge", || {
        all_alive(&nodes)
    })
    .await;
    sleep(Duration::from_secs(1)).await;
    let before = pings.lock().unwrap().get("rm-3").copied().unwrap_or(0);
    assert!(before > 0, "the hook saw pings to rm-3: {:?}", pings.lock());

    let s = nodes[0].stats().await.unwrap();
    let rtt = &s.core.timings.probe_rtt_direct;
    assert!(rtt.count() > 0, "{rtt:?}");
    assert!(rtt.quantile(0.5) < 100_000_000, "loopback rtt {rtt:?}");
    assert!(s.core.timings.protocol_period.count() > 0);
    let text = nodes[0].metrics().await.unwrap();
    for want in [
        "# TYPE swim_probe_rtt_seconds histogram",
        "swim_probe_rtt_seconds_bucket{le=\"+Inf\",path=\"direct\"}",
        "swim_protocol_period_seconds_count",
        "swim_suspicion_seconds_count{outcome=\"dead\"} 0",
    ] {
        assert!(text.contains(want), "{want} missing from\n{text}");
    }
    let json = swim_tokio::control::stats_json(&s);
    assert!(
        json["timings"]["probe_rtt_direct"]["p99_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(
        json["timings"]["messages_sent"]["ping"]["count"]
            .as_u64()
            .unwrap()
            > 0
    );

    nodes[0].remove("rm-3").await.unwrap();
    eventually(
        Duration::from_secs(10),
        "every node holds rm-3 left",
        || {
            let nodes = nodes.clone();
            async move {
                for n in &nodes[..3] {
                    if state_of(n, "rm-3").await != Some(MemberState::Left) {
                        return false;
                    }
                }
                true
            }
        },
    )
    .await;
    sleep(Duration::from_millis(500)).await; // a probe period in flight ends
    let settled = pings.lock().unwrap().get("rm-3").copied().unwrap_or(0);
    sleep(Duration::from_secs(3)).await; // 15 protocol periods
    let after = pings.lock().unwrap().get("rm-3").copied().unwrap_or(0);
    assert_eq!(after, settled, "rm-3 was pinged after its removal");
    let others: BTreeSet<String> = pings.lock().unwrap().keys().cloned().collect();
    assert!(others.contains("rm-1"), "{others:?}");
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

/// Partisan's on_up / on_down: a watch reports each transition of one member once, here a
/// crash (down) and a rejoin under the same name at a new address (up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_fires_once_per_transition_through_a_crash_and_a_rejoin() {
    use swim_tokio::Transition;
    let nodes = cluster("w", 3).await;
    eventually(Duration::from_secs(10), "3 nodes converge", || {
        all_alive(&nodes)
    })
    .await;
    let mut watch = nodes[0].watch("w-2").await.unwrap();
    assert!(watch.is_up());
    let mut unknown = nodes[0].watch("w-9").await.unwrap();
    assert!(!unknown.is_up());
    nodes[2].shutdown().await.unwrap(); // a crash: no leave
    let t = tokio::time::timeout(Duration::from_secs(15), watch.recv())
        .await
        .expect("down within 15 s")
        .unwrap();
    assert!(
        matches!(&t, Transition::Down(m) if m.name.as_str() == "w-2"),
        "{t:?}"
    );
    let back = Cluster::start(config("w-2", &[nodes[0].addr()]))
        .await
        .unwrap();
    let t = tokio::time::timeout(Duration::from_secs(15), watch.recv())
        .await
        .expect("up within 15 s")
        .unwrap();
    assert!(
        matches!(&t, Transition::Up(m) if m.name.as_str() == "w-2" && m.addr == back.addr()),
        "{t:?}"
    );
    // Suspicions, refutations and tombstone reaping of the old life are not transitions.
    let more = tokio::time::timeout(Duration::from_secs(2), watch.recv()).await;
    assert!(more.is_err(), "a second transition: {more:?}");
    assert!(
        tokio::time::timeout(Duration::from_millis(100), unknown.recv())
            .await
            .is_err()
    );
    for n in nodes[..2].iter().chain([&back]) {
        n.shutdown().await.unwrap();
    }
}

/// Issue 15: a node joining under a name already alive at another address stops before the
/// core sees the snapshot, and says why; the owner of the name never has to refute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_name_is_alive_elsewhere_stops_with_name_taken() {
    let owner = Cluster::start(config("dup-0", &[])).await.unwrap();
    let dup = Cluster::start(config("dup-0", &[owner.addr()]))
        .await
        .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(10), dup.stopped())
        .await
        .expect("the duplicate stops by itself");
    match e {
        swim_tokio::Error::NameTaken { name, addr } => {
            assert_eq!((name.as_str(), addr), ("dup-0", owner.addr()));
        }
        other => panic!("{other}"),
    }
    assert_eq!(owner.local().await.unwrap().incarnation, 0);
    assert_eq!(owner.members().await.unwrap().len(), 1);
    owner.shutdown().await.unwrap();
}
