//! Who may hold stream slots and send packets (issue 13): one source IP holding connections open
//! takes at most `max_connections_per_source` slots, so a node joining from another address
//! still gets in; `allowed_cidrs` drops other networks' packets and connections. Loopback
//! only: the attacker connects from 127.0.0.2 (Linux routes all of 127.0.0.0/8 to the loopback
//! interface).

use std::net::SocketAddr;
use std::time::Duration;

use swim_tokio::{Cluster, DriverConfig, Preset};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, sleep};

fn config(name: &str) -> DriverConfig {
    let mut c = DriverConfig::with_preset(Preset::Local);
    c.port = 0;
    c.name = name.into();
    c.stream_timeout = Duration::from_secs(30);
    c.core.join_retry_initial = Duration::from_millis(200);
    c.core.join_retry_max = Duration::from_secs(1);
    c
}

/// Opens a connection to `to` from 127.0.0.2 and never sends a byte.
async fn hold(to: SocketAddr) -> Option<TcpStream> {
    let s = TcpSocket::new_v4().ok()?;
    s.bind("127.0.0.2:0".parse().unwrap()).ok()?;
    s.connect(to).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_loris_source_cannot_keep_a_joiner_out() {
    let seed = Cluster::start(config("seed")).await.unwrap();
    let Some(first) = hold(seed.addr()).await else {
        eprintln!("skipped: cannot bind 127.0.0.2 on this host");
        return;
    };
    // The attacker opens twice as many connections as there are slots, sending nothing.
    let mut held = vec![first];
    for _ in 1..128 {
        if let Some(c) = hold(seed.addr()).await {
            held.push(c);
        }
    }
    sleep(Duration::from_millis(200)).await;
    let stats = seed.stats().await.unwrap();
    assert!(
        stats.driver.connections_refused_per_source >= 100,
        "the source was limited: {stats:?}"
    );
    let mut c = config("joiner");
    c.seeds = vec![seed.addr().to_string()];
    let joiner = Cluster::start(c).await.unwrap();
    // Well within stream_timeout (30 s): the held connections are still open.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let members = seed.alive().await.unwrap();
        if members.iter().any(|m| m.name.as_str() == "joiner") {
            break;
        }
        assert!(Instant::now() < deadline, "the joiner never got in");
        sleep(Duration::from_millis(100)).await;
    }
    drop(held);
    joiner.shutdown().await.unwrap();
    seed.shutdown().await.unwrap();
}

/// `allowed_cidrs` (memberlist's `CIDRsAllowed`): datagrams and connections from 127.0.0.2 are
/// dropped and counted by a node that allows only 127.0.0.1; a joiner from 127.0.0.1 gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_outside_allowed_cidrs_are_dropped_and_counted() {
    let mut c = config("guarded");
    c.allowed_cidrs = vec!["127.0.0.1/32".parse().unwrap()];
    let seed = Cluster::start(c).await.unwrap();
    let Some(_conn) = hold(seed.addr()).await else {
        eprintln!("skipped: cannot bind 127.0.0.2 on this host");
        return;
    };
    let udp = tokio::net::UdpSocket::bind("127.0.0.2:0").await.unwrap();
    udp.send_to(b"not even a packet", seed.addr())
        .await
        .unwrap();
    let mut c = config("insider");
    c.seeds = vec![seed.addr().to_string()];
    let joiner = Cluster::start(c).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let members = seed.alive().await.unwrap();
        if members.iter().any(|m| m.name.as_str() == "insider") {
            break;
        }
        assert!(Instant::now() < deadline, "the allowed joiner never got in");
        sleep(Duration::from_millis(100)).await;
    }
    let d = seed.stats().await.unwrap().driver;
    assert_eq!(d.connections_refused_source, 1, "{d:?}");
    assert_eq!(d.datagrams_refused_source, 1, "{d:?}");
    assert_eq!(seed.stats().await.unwrap().core.dropped.total(), 0);
    joiner.shutdown().await.unwrap();
    seed.shutdown().await.unwrap();
}
