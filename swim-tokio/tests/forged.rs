//! Issue 13 against live drivers on loopback: an attacker's UDP socket sends packets built
//! with the core's own codec (no keyring, the default). The eviction and takeover rows of the
//! issue's table must no longer work.

use std::net::SocketAddr;
use std::time::Duration;

use swim_proto::MemberState;
use swim_proto::wire::{self, Message, Update};
use swim_tokio::{Cluster, DriverConfig, Preset};
use tokio::net::UdpSocket;
use tokio::time::{Instant, sleep};

fn config(name: &str, seeds: &[SocketAddr]) -> DriverConfig {
    let mut c = DriverConfig::with_preset(Preset::Local);
    c.port = 0;
    c.name = name.into();
    c.core.probe_interval = Duration::from_millis(200);
    c.core.probe_timeout = Duration::from_millis(100);
    c.core.gossip_interval = Duration::from_millis(50);
    c.core.push_pull_interval = Duration::from_secs(5);
    c.core.join_retry_initial = Duration::from_millis(200);
    c.core.join_retry_max = Duration::from_secs(1);
    c.seeds = seeds.iter().map(ToString::to_string).collect();
    c
}

/// Four nodes, converged.
async fn cluster() -> Vec<Cluster> {
    let first = Cluster::start(config("f-0", &[])).await.unwrap();
    let seed = first.addr();
    let mut nodes = vec![first];
    for i in 1..4 {
        nodes.push(
            Cluster::start(config(&format!("f-{i}"), &[seed]))
                .await
                .unwrap(),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut done = true;
        for n in &nodes {
            done &= n.alive().await.unwrap().len() == 4;
        }
        if done {
            return nodes;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster did not converge in 10 s"
        );
        sleep(Duration::from_millis(50)).await;
    }
}

/// What every node but the victim holds about it: (state, address).
async fn views(nodes: &[Cluster], victim: &str) -> Vec<(MemberState, SocketAddr)> {
    let mut out = Vec::new();
    for n in nodes.iter().filter(|n| n.name() != victim) {
        let m = n.members().await.unwrap();
        let m = m
            .iter()
            .find(|m| m.name.as_str() == victim)
            .expect("victim held");
        out.push((m.state, m.addr));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_eviction_and_takeover_fail_against_live_nodes() {
    let nodes = cluster().await;
    let victim = nodes[2].name().to_string();
    let victim_addr = nodes[2].addr();
    let attacker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = attacker.local_addr().unwrap();
    let forged: Vec<Update<'_, SocketAddr>> = vec![
        Update::Dead {
            name: &victim,
            incarnation: u64::MAX,
            addr: victim_addr,
        },
        Update::Suspect {
            name: &victim,
            incarnation: u64::MAX,
            addr: victim_addr,
            accuser: "mallory",
        },
        Update::Alive {
            name: &victim,
            incarnation: u64::MAX,
            addr: me,
            meta: b"mallory",
        },
        Update::Alive {
            name: &victim,
            incarnation: 1_000,
            addr: me,
            meta: b"mallory",
        },
    ];
    for u in &forged {
        let bytes = wire::encode_datagram(b"", &Message::Gossip, std::slice::from_ref(u));
        for n in nodes.iter().filter(|n| n.name() != victim) {
            attacker.send_to(&bytes, n.addr()).await.unwrap();
        }
        sleep(Duration::from_millis(100)).await;
    }
    // Long enough for any of these to spread and for a suspicion to time out.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        for (state, addr) in views(&nodes, &victim).await {
            assert_ne!(
                state,
                MemberState::Dead,
                "{victim} evicted by one forged packet"
            );
            assert_eq!(addr, victim_addr, "{victim} taken over by {me}");
        }
        sleep(Duration::from_millis(100)).await;
    }
    for (state, addr) in views(&nodes, &victim).await {
        assert_eq!((state, addr), (MemberState::Alive, victim_addr));
    }
    let dropped: u64 = {
        let mut sum = 0;
        for n in nodes.iter().filter(|n| n.name() != victim) {
            let s = n.stats().await.unwrap();
            sum += s.core.dropped.incarnation_jump + s.core.dropped.address_conflict;
        }
        sum
    };
    assert!(dropped >= 3, "forged claims counted as dropped ({dropped})");
}
