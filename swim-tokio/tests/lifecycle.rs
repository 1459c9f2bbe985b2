//! Lifecycle, readiness, join options and runtime reconfiguration on loopback (issue 14):
//! real UDP and TCP sockets, fast timers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use swim_proto::Status;
use swim_tokio::{Cluster, DriverConfig, Error, Preset};

/// Fast timers: 200 ms probes (as `tests/control.rs`).
fn config(name: &str, seeds: &[SocketAddr]) -> DriverConfig {
    let mut c = DriverConfig::with_preset(Preset::Local);
    c.port = 0;
    c.name = name.into();
    c.seeds = seeds.iter().map(ToString::to_string).collect();
    c.core.probe_interval = Duration::from_millis(200);
    c.core.probe_timeout = Duration::from_millis(100);
    c.core.gossip_interval = Duration::from_millis(50);
    c.core.push_pull_interval = Duration::from_secs(5);
    c.core.join_retry_initial = Duration::from_millis(200);
    c.core.join_retry_max = Duration::from_secs(1);
    c
}

/// `Cluster::reconfigure` applies a new core config to the running node, names the fields it
/// keeps, and refuses a bad one by its dotted field name with nothing changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfigure_applies_at_run_time_and_names_what_it_keeps() {
    let node = Cluster::start(config("rc-0", &[])).await.unwrap();
    let mut new = swim_proto::Config::wan();
    new.start_incarnation = 3;
    new.max_stream_message_size = 1 << 20;
    let kept = node.reconfigure(new.clone()).await.unwrap();
    assert_eq!(kept, ["start_incarnation", "max_stream_message_size"]);
    let running = node.inspect(|n| n.config().clone()).await.unwrap();
    assert_eq!(running.probe_interval, new.probe_interval);
    assert_eq!(running.suspicion_mult, new.suspicion_mult);
    assert_eq!(running.start_incarnation, 0);

    let mut bad = new.clone();
    bad.probe_timeout = bad.probe_interval * 2;
    match node.reconfigure(bad).await {
        Err(Error::Config { field, .. }) => assert_eq!(field, "core.probe_timeout"),
        other => panic!("{other:?}"),
    }
    let after = node.inspect(|n| n.config().clone()).await.unwrap();
    assert_eq!(after, running, "a refused reconfiguration changes nothing");
    node.shutdown().await.unwrap();
}

/// `join` waits for the join and returns the members that answered; status and readiness
/// follow, and an application's `stabilize` check holds readiness until it confirms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_returns_who_answered_and_stabilize_holds_readiness() {
    let a = Cluster::start(config("lc-a", &[])).await.unwrap();
    let b = Cluster::start(config("lc-b", &[])).await.unwrap();
    let answered = tokio::time::timeout(Duration::from_secs(10), b.join([a.addr().to_string()]))
        .await
        .expect("joined within 10 s")
        .unwrap();
    let names: Vec<&str> = answered.iter().map(|n| n.as_str()).collect();
    assert_eq!(names, ["lc-a"]);
    assert_eq!(b.status().await.unwrap(), Status::Running);
    assert!(b.ready().await.unwrap());
    let stable = Arc::new(AtomicBool::new(false));
    let flag = stable.clone();
    b.set_stabilize(move || flag.load(Ordering::SeqCst));
    assert!(!b.ready().await.unwrap(), "held by the application");
    stable.store(true, Ordering::SeqCst);
    assert!(b.ready().await.unwrap(), "released by the application");
    b.leave().await.unwrap();
    assert_eq!(b.status().await.unwrap(), Status::Stopped);
    b.shutdown().await.unwrap();
    a.shutdown().await.unwrap();
}

/// With `core.join.max_duration`, a join nobody answers fails with `Error::JoinFailed` and the
/// node is back to `starting`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_nobody_answers_fails_after_max_duration() {
    let mut cfg = config("lc-lonely", &[]);
    cfg.core.join.max_duration = Duration::from_secs(1);
    let node = Cluster::start(cfg).await.unwrap();
    // A bound, silent port: nobody answers there.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let t0 = std::time::Instant::now();
    let r = node.join([silent.local_addr().unwrap().to_string()]).await;
    assert!(matches!(r, Err(Error::JoinFailed { .. })), "{r:?}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(node.status().await.unwrap(), Status::Starting);
    assert!(!node.ready().await.unwrap());
    node.shutdown().await.unwrap();
}
