//! In-process clusters on loopback: real UDP and TCP sockets, one tokio runtime, fast timers.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use swim_proto::MemberState;
use swim_tokio::{Cluster, ClusterEvent, DriverConfig, Events, Preset};
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, sleep, timeout};

/// Fast timers: 200 ms probes, so a crash is declared within about 1–4 s.
fn config(name: &str) -> DriverConfig {
    let mut c = DriverConfig::with_preset(Preset::Local);
    c.port = 0;
    c.name = name.into();
    c.core.probe_interval = Duration::from_millis(200);
    c.core.probe_timeout = Duration::from_millis(100);
    c.core.gossip_interval = Duration::from_millis(50);
    // `local()` gossips each update λ = 2 times per log10(n+1); at that rate a departure
    // occasionally dies out before reaching every member, which then probes the gone node and
    // declares it failed before push-pull tells it otherwise (seen in about 1 of 10 runs of the
    // leave test). The LAN value makes dissemination reliable.
    c.core.retransmit_mult = 4;
    c.core.push_pull_interval = Duration::from_secs(5);
    c.core.join_retry_initial = Duration::from_millis(200);
    c.core.join_retry_max = Duration::from_secs(1);
    c.leave_timeout = Duration::from_secs(3);
    c
}

async fn start(name: &str, seeds: &[SocketAddr]) -> Cluster {
    let mut c = config(name);
    c.seeds = seeds.iter().map(ToString::to_string).collect();
    Cluster::start(c).await.expect("node starts")
}

/// Starts `n` nodes `prefix-0..n`, every one joining through the first.
async fn cluster(prefix: &str, n: usize) -> Vec<Cluster> {
    let first = start(&format!("{prefix}-0"), &[]).await;
    let seed = first.addr();
    let mut nodes = vec![first];
    for i in 1..n {
        nodes.push(start(&format!("{prefix}-{i}"), &[seed]).await);
    }
    nodes
}

/// Waits until every node in `nodes` sees exactly `names` as its live members.
async fn converged(nodes: &[Cluster], names: &BTreeSet<String>, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let mut all = true;
        for n in nodes {
            let alive: BTreeSet<String> = n
                .alive()
                .await
                .unwrap()
                .iter()
                .map(|m| m.name.to_string())
                .collect();
            if &alive != names {
                all = false;
                if Instant::now() > deadline {
                    panic!(
                        "{} sees {alive:?}, want {names:?} (after {within:?})",
                        n.name()
                    );
                }
                break;
            }
        }
        if all {
            return;
        }
        sleep(Duration::from_millis(50)).await;
    }
}

fn names(nodes: &[Cluster]) -> BTreeSet<String> {
    nodes.iter().map(|n| n.name().to_string()).collect()
}

/// Waits for an event about `node` matching `want` (by the JSON event name).
async fn wait_event(events: &mut Events, node: &str, want: &str, within: Duration) -> Instant {
    timeout(within, async {
        loop {
            match events.recv().await.expect("node still running") {
                ClusterEvent::Event(e) => {
                    let v = swim_tokio::event_json(&e);
                    if v["event"] == want && v["node"] == node {
                        return Instant::now();
                    }
                    assert!(
                        !(v["node"] == node
                            && want == "member_left"
                            && v["event"] == "member_failed"),
                        "{node} reported failed although it left"
                    );
                }
                ClusterEvent::Lagged(_) => {}
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {want} for {node} within {within:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_nodes_join_and_converge() {
    let nodes = cluster("join", 20).await;
    converged(&nodes, &names(&nodes), Duration::from_secs(15)).await;
    sleep(Duration::from_millis(500)).await;
    let stats = nodes[5].stats().await.unwrap();
    assert_eq!(stats.members.alive, 20);
    assert!(stats.core.probes > 0, "{stats:?}");
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_node_is_detected_by_all() {
    let nodes = cluster("crash", 8).await;
    converged(&nodes, &names(&nodes), Duration::from_secs(10)).await;
    let mut subs: Vec<Events> = nodes[..7].iter().map(Cluster::subscribe).collect();
    // Dropped without leave: the sockets close, nothing is announced.
    let crashed = nodes[7].clone();
    crashed.shutdown().await.unwrap();
    let killed_at = Instant::now();
    for s in &mut subs {
        wait_event(s, "crash-7", "member_failed", Duration::from_secs(10)).await;
    }
    let took = killed_at.elapsed();
    eprintln!("all 7 survivors declared crash-7 failed within {took:?}");
    converged(&nodes[..7], &names(&nodes[..7]), Duration::from_secs(5)).await;
    for n in &nodes[..7] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_leave_is_reported_as_left_never_failed() {
    let nodes = cluster("leave", 6).await;
    converged(&nodes, &names(&nodes), Duration::from_secs(10)).await;
    let mut subs: Vec<Events> = nodes[..5].iter().map(Cluster::subscribe).collect();
    nodes[5].leave().await.expect("leave disseminated in time");
    assert_eq!(nodes[5].local().await.unwrap().state, MemberState::Left);
    // A second leave confirms the same departure.
    nodes[5].leave().await.unwrap();
    nodes[5].shutdown().await.unwrap();
    for s in &mut subs {
        wait_event(s, "leave-5", "member_left", Duration::from_secs(5)).await;
    }
    // Still left (not failed) a few probe rounds later.
    sleep(Duration::from_secs(2)).await;
    for n in &nodes[..5] {
        let m = n.members().await.unwrap();
        let gone = m.iter().find(|m| m.name.as_str() == "leave-5").unwrap();
        assert_eq!(gone.state, MemberState::Left, "as seen by {}", n.name());
    }
    for n in &nodes[..5] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_under_the_same_name_rejoins() {
    let mut nodes = cluster("restart", 5).await;
    converged(&nodes, &names(&nodes), Duration::from_secs(10)).await;
    let old = nodes.pop().unwrap();
    let addr = old.addr();
    old.shutdown().await.unwrap();
    let mut sub = nodes[0].subscribe();
    wait_event(
        &mut sub,
        "restart-4",
        "member_failed",
        Duration::from_secs(10),
    )
    .await;
    // Same name, same port, fresh state (incarnation 0): it refutes the death claim.
    let mut c = config("restart-4");
    c.port = addr.port();
    c.seeds = vec![nodes[1].addr().to_string()];
    let back = Cluster::start(c).await.unwrap();
    nodes.push(back);
    converged(&nodes, &names(&nodes), Duration::from_secs(10)).await;
    let seen = nodes[0].members().await.unwrap();
    let m = seen
        .iter()
        .find(|m| m.name.as_str() == "restart-4")
        .unwrap();
    assert!(m.incarnation > 0, "rejoined with a higher incarnation");
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_resolve_by_dns_and_metadata_updates_spread() {
    let a = start("dns-a", &[]).await;
    let mut c = config("dns-b");
    c.seeds = vec![format!("localhost:{}", a.addr().port())];
    c.metadata = "role=web".into();
    let b = Cluster::start(c).await.unwrap();
    converged(
        &[a.clone(), b.clone()],
        &names(&[a.clone(), b.clone()]),
        Duration::from_secs(10),
    )
    .await;
    let mut sub = a.subscribe();
    b.update_metadata(b"role=db".to_vec()).await.unwrap();
    wait_event(&mut sub, "dns-b", "member_updated", Duration::from_secs(5)).await;
    let m = a.members().await.unwrap();
    let seen = m.iter().find(|m| m.name.as_str() == "dns-b").unwrap();
    assert_eq!(seen.meta.as_bytes(), b"role=db");
    // Joining through nothing resolvable fails and changes nothing.
    let err = a.join(["no-such-host.invalid:1"]).await.unwrap_err();
    assert!(matches!(err, swim_tokio::Error::Resolve { .. }), "{err}");
    let err = a.join(["nonsense"]).await.unwrap_err();
    assert!(err.to_string().contains("seeds[0]"), "{err}");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    assert!(matches!(
        a.members().await,
        Err(swim_tokio::Error::Shutdown)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_stalled_connections_cost_bounded_time_and_are_counted() {
    let mut c = config("target");
    c.stream_timeout = Duration::from_millis(300);
    c.max_connections = 4;
    c.core.max_stream_message_size = 1 << 16;
    c.core.state.max_value_size = 1 << 15;
    c.core.messaging.max_reliable_payload = 1 << 15;
    let target = Cluster::start(c).await.unwrap();
    let peer = start("peer", &[target.addr()]).await;
    let addr = target.addr();

    // Garbage datagrams, and one larger than max_packet_size.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..50u8 {
        udp.send_to(&[i; 64], addr).await.unwrap();
    }
    udp.send_to(&[0u8; 4000], addr).await.unwrap();
    // A length prefix over the limit; a truncated message; stalled connections over the limit.
    let mut over = tokio::net::TcpStream::connect(addr).await.unwrap();
    over.write_all(&(1u32 << 30).to_be_bytes()).await.unwrap();
    let mut short = tokio::net::TcpStream::connect(addr).await.unwrap();
    short.write_all(&[0, 0, 0, 100, 1, 2, 3]).await.unwrap();
    drop(short);
    let mut stalled = Vec::new();
    for _ in 0..8 {
        stalled.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    sleep(Duration::from_millis(800)).await;
    drop(stalled);

    let s = target.stats().await.unwrap();
    assert!(s.core.dropped.total() >= 50, "{:?}", s.core.dropped);
    assert_eq!(s.driver.datagrams_oversized, 1);
    assert!(s.driver.stream_messages_oversized >= 1, "{:?}", s.driver);
    assert!(s.driver.stream_read_timeouts >= 1, "{:?}", s.driver);
    // All 8 stalled connections come from one source, so the per-source limit (here the whole
    // max_connections) refuses the excess before the global one would.
    assert!(
        s.driver.connections_refused + s.driver.connections_refused_per_source >= 1,
        "{:?}",
        s.driver
    );
    // And the node still works.
    converged(
        &[target.clone(), peer.clone()],
        &names(&[target.clone(), peer.clone()]),
        Duration::from_secs(10),
    )
    .await;
    let text = target.metrics().await.unwrap();
    assert!(text.contains("swim_dropped_packets_total{reason=\"malformed\"}"));
    assert!(text.contains("# TYPE swim_members gauge"));
    assert!(text.contains("# TYPE swim_datagram_size_bytes histogram"));
    assert!(text.contains("swim_datagram_size_bytes_count{direction=\"received\"}"));
    assert!(text.contains("swim_state_writes_total 0"), "{text}");
    target.shutdown().await.unwrap();
    peer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_gets_a_lagged_marker_and_never_blocks_the_node() {
    let mut c = config("lag-0");
    c.event_buffer = 2;
    let a = Cluster::start(c).await.unwrap();
    let mut slow = a.subscribe();
    let others = [
        start("lag-1", &[a.addr()]).await,
        start("lag-2", &[a.addr()]).await,
        start("lag-3", &[a.addr()]).await,
        start("lag-4", &[a.addr()]).await,
    ];
    let mut all = others.to_vec();
    all.push(a.clone());
    converged(&all, &names(&all), Duration::from_secs(10)).await;
    let mut lagged = false;
    while let Ok(Some(item)) = timeout(Duration::from_millis(200), slow.recv()).await {
        if let ClusterEvent::Lagged(n) = item {
            assert!(n > 0);
            lagged = true;
        }
    }
    assert!(lagged, "four joins through a 2-event buffer must lag");
    for n in &all {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_trace_replays_exactly_with_swim_sim() {
    let dir = std::env::temp_dir().join(format!("swim-tokio-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("a.trace");
    let mut c = config("rec-a");
    c.record = Some(path.clone());
    let a = Cluster::start(c).await.unwrap();
    let b = start("rec-b", &[a.addr()]).await;
    let c3 = start("rec-c", &[a.addr()]).await;
    let all = [a.clone(), b.clone(), c3.clone()];
    converged(&all, &names(&all), Duration::from_secs(10)).await;
    c3.shutdown().await.unwrap();
    let mut sub = a.subscribe();
    wait_event(&mut sub, "rec-c", "member_failed", Duration::from_secs(10)).await;
    a.update_metadata(b"x".to_vec()).await.unwrap();
    a.leave().await.unwrap();
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();

    let mut log = Vec::new();
    let opts = swim_sim::trace_file::ReplayOptions {
        node: Some("rec-a".into()),
        ..Default::default()
    };
    let summary = swim_sim::trace_file::replay(&path, &opts, &mut log).unwrap();
    let log = String::from_utf8_lossy(&log);
    assert_eq!(summary.divergence, None, "{log}");
    assert_eq!(summary.boots, 1);
    assert!(summary.steps > 20, "{summary:?}");
    assert!(log.contains("member FAILED: rec-c"), "{log}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_before_its_seed_joins_once_the_seed_is_up() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let seed: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let early = start("early", &[seed]).await;
    sleep(Duration::from_millis(700)).await;
    let s = early.stats().await.unwrap();
    assert!(s.core.join_attempts >= 2, "the core retries: {s:?}");
    assert!(
        s.driver.stream_send_failures >= 1,
        "refused connects are counted"
    );
    let mut c = config("late-seed");
    c.port = port;
    let late = Cluster::start(c).await.unwrap();
    let both = [early.clone(), late.clone()];
    converged(&both, &names(&both), Duration::from_secs(10)).await;
    early.shutdown().await.unwrap();
    late.shutdown().await.unwrap();
}

/// Replicated state over real sockets: writes on different nodes (one too large for a
/// datagram, so it travels by TCP) reach every node, a delete removes the value everywhere, and
/// a node that leaves is reported through `origin_failed` with its entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_propagates_to_every_node() {
    let nodes = cluster("state", 6).await;
    converged(&nodes, &names(&nodes), Duration::from_secs(10)).await;
    nodes[1].publish("health", "backend-a", "up").await.unwrap();
    nodes[4]
        .publish_many(vec![
            swim_proto::StateWrite::new("drain", "backend-b", "yes"),
            swim_proto::StateWrite::new("blob", "big", vec![7u8; 20_000]),
        ])
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    'wait: loop {
        for n in &nodes {
            let a = n.get("health", "backend-a").await.unwrap();
            let b = n.get("drain", "backend-b").await.unwrap();
            let big = n.get("blob", "big").await.unwrap();
            let ok = a.is_some_and(|e| e.value.as_deref() == Some(&b"up"[..]))
                && b.is_some_and(|e| e.origin.as_str() == "state-4")
                && big.is_some_and(|e| e.value.as_deref().map(<[u8]>::len) == Some(20_000));
            if !ok {
                assert!(
                    Instant::now() < deadline,
                    "{} lacks an entry after 10 s",
                    n.name()
                );
                sleep(Duration::from_millis(50)).await;
                continue 'wait;
            }
        }
        break;
    }
    nodes[2].delete("health", "backend-a").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    for n in &nodes {
        while n.get("health", "backend-a").await.unwrap().is_some() {
            assert!(
                Instant::now() < deadline,
                "{} kept a deleted value",
                n.name()
            );
            sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(nodes[0].entries("drain").await.unwrap().len(), 1);
    let mut events = nodes[0].subscribe();
    nodes[4].leave().await.unwrap();
    timeout(Duration::from_secs(10), async {
        loop {
            if let Some(ClusterEvent::Event(e)) = events.recv().await {
                let v = swim_tokio::event_json(&e);
                if v["event"] == "origin_failed" && v["node"] == "state-4" {
                    assert_eq!(v["left"], true);
                    assert_eq!(
                        v["keys"],
                        serde_json::json!(["blob/big", "drain/backend-b"])
                    );
                    return;
                }
            }
        }
    })
    .await
    .expect("origin_failed for the node that left");
    let err = nodes[0].publish("", "k", "v").await.unwrap_err();
    assert!(err.to_string().contains("state"), "{err}");
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}
