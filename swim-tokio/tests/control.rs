//! Operator control on loopback (issue 14): real UDP and TCP sockets, fast timers.

mod common;
use common::eventually;

use std::net::SocketAddr;
use std::time::Duration;

use swim_proto::{CommandError, MemberState};
use swim_tokio::{Cluster, DriverConfig, Error, Preset};
use tokio::time::sleep;

/// Fast timers: 200 ms probes (as `tests/cluster.rs`).
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
    c.core.join_retry_initial = Duration::from_millis(200);
    c.core.join_retry_max = Duration::from_secs(1);
    c
}

async fn cluster(prefix: &str, n: usize) -> Vec<Cluster> {
    common::start_cluster(prefix, n, config).await
}

async fn state_of(node: &Cluster, name: &str) -> Option<MemberState> {
    let name = name.to_string();
    node.inspect(move |n| n.member(&name).map(|m| m.state))
        .await
        .unwrap()
}

/// A live member removed by an operator is held left by every node, answers no probes
/// because none come, and stays out (no refutation) until its application rejoins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_by_the_operator_stops_being_probed_everywhere() {
    let nodes = cluster("rm", 5).await;
    eventually(Duration::from_secs(15), "cluster converges", || async {
        for n in &nodes {
            if n.alive().await.unwrap().len() != 5 {
                return false;
            }
        }
        true
    })
    .await;
    let victim = &nodes[3];
    let name = victim.name().to_string();
    assert!(matches!(
        nodes[1].remove(nodes[1].name()).await,
        Err(Error::Command(CommandError::RemoveSelf))
    ));
    assert!(matches!(
        nodes[1].remove("nobody").await,
        Err(Error::Command(CommandError::UnknownMember { .. }))
    ));
    nodes[1].remove(name.clone()).await.unwrap();
    eventually(
        Duration::from_secs(10),
        "removal reaches everyone",
        || async {
            for (i, n) in nodes.iter().enumerate() {
                if i != 3 && state_of(n, &name).await != Some(MemberState::Left) {
                    return false;
                }
            }
            state_of(victim, &name).await == Some(MemberState::Left)
        },
    )
    .await;
    sleep(Duration::from_secs(1)).await; // probes already in flight land
    let pings = victim.stats().await.unwrap().core.received.ping;
    sleep(Duration::from_secs(3)).await; // 15 protocol periods
    assert_eq!(
        victim.stats().await.unwrap().core.received.ping,
        pings,
        "the removed member is still probed"
    );
    for (i, n) in nodes.iter().enumerate() {
        if i != 3 {
            assert_eq!(
                state_of(n, &name).await,
                Some(MemberState::Left),
                "{}",
                n.name()
            );
        }
    }
    // The explicit rejoin brings it back everywhere.
    victim.join([nodes[0].addr().to_string()]).await.unwrap();
    eventually(Duration::from_secs(10), "rejoin spreads", || async {
        for n in &nodes {
            if state_of(n, &name).await != Some(MemberState::Alive) {
                return false;
            }
        }
        true
    })
    .await;
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}
