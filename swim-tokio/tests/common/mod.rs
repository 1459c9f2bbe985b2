//! Helpers shared by swim-tokio's tests on 127.0.0.1: agent processes and in-process clusters.
//! Each test binary uses a subset, hence `dead_code` allowed.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;

/// The agent binary cargo built for these tests.
pub const AGENT: &str = env!("CARGO_BIN_EXE_swim-agent");

/// A TCP port free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Spawns `cmd` (quiet, killed on drop, without an inherited `SWIM_HTTP_TOKEN`) and waits up to
/// 10 s until its HTTP API at `http` answers `/health` with 200.
pub async fn spawn_until_healthy(mut cmd: Command, http: SocketAddr) -> Child {
    let child = cmd
        .env_remove("SWIM_HTTP_TOKEN")
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(r) = reqwest::get(format!("http://{http}/health")).await
            && r.status() == 200
        {
            return child;
        }
        assert!(Instant::now() < deadline, "agent API not up at {http}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts `n` in-process nodes named `{prefix}-{i}` from `config(name, seeds)`, every one after
/// the first joining through the first.
pub async fn start_cluster(
    prefix: &str,
    n: usize,
    config: impl Fn(&str, &[SocketAddr]) -> swim_tokio::DriverConfig,
) -> Vec<swim_tokio::Cluster> {
    let first = swim_tokio::Cluster::start(config(&format!("{prefix}-0"), &[]))
        .await
        .unwrap();
    let seed = first.addr();
    let mut nodes = vec![first];
    for i in 1..n {
        let c = config(&format!("{prefix}-{i}"), &[seed]);
        nodes.push(swim_tokio::Cluster::start(c).await.unwrap());
    }
    nodes
}

/// Polls `f` every 50 ms until it holds, panicking with `what` after `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !f().await {
        assert!(Instant::now() < deadline, "{what} (after {within:?})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
