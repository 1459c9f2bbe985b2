//! Application messaging on loopback (`docs/protocol.md` §13, `docs/driver.md`): direct
//! messages, user events and queries through the `Cluster` handle, and through a running
//! `swim-agent`'s HTTP API and CLI subcommands.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use swim_proto::{Event, QueryFilter};
use swim_tokio::{Cluster, ClusterEvent, DriverConfig, Preset};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout};

const AGENT: &str = env!("CARGO_BIN_EXE_swim-agent");

fn config(name: &str, seeds: &[SocketAddr]) -> DriverConfig {
    let mut c = DriverConfig::with_preset(Preset::Local);
    c.port = 0;
    c.name = name.into();
    c.core.probe_interval = Duration::from_millis(200);
    c.core.probe_timeout = Duration::from_millis(100);
    c.core.gossip_interval = Duration::from_millis(50);
    c.core.join_retry_initial = Duration::from_millis(200);
    c.core.join_retry_max = Duration::from_secs(1);
    c.seeds = seeds.iter().map(ToString::to_string).collect();
    c
}

async fn wait_members(nodes: &[Cluster], n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for c in nodes {
        while c.alive().await.unwrap().len() < n - 1 {
            assert!(
                Instant::now() < deadline,
                "{} did not see {n} members",
                c.name()
            );
            sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Handle: `send`, `send_reliable` and `messages(channel)`; `broadcast` reaches every node
/// once; `query` returns every member's answer at its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_event_and_query_through_the_handle() {
    let a = Cluster::start(config("msg-a", &[])).await.unwrap();
    let mut nodes = vec![a.clone()];
    for name in ["msg-b", "msg-c"] {
        nodes.push(Cluster::start(config(name, &[a.addr()])).await.unwrap());
    }
    wait_members(&nodes, 3).await;
    let b = nodes[1].clone();

    let mut inbox = b.messages(5);
    let mut other = b.messages(6);
    a.send("msg-b", 5, "datagram").await.unwrap();
    a.send_reliable("msg-b", 5, vec![7u8; 30_000])
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let m = timeout(Duration::from_secs(5), inbox.recv())
            .await
            .expect("message within 5 s")
            .unwrap();
        assert_eq!(m.from.as_str(), "msg-a");
        got.push(m.payload.len());
    }
    got.sort();
    assert_eq!(got, vec![8, 30_000]);
    assert!(
        timeout(Duration::from_millis(200), other.recv())
            .await
            .is_err(),
        "nothing on another channel"
    );
    let e = a.send("nobody", 5, "x").await.unwrap_err();
    assert!(e.to_string().contains("nobody"), "{e}");

    // Responders: every node answers every query with its name.
    let mut streams: Vec<_> = nodes.iter().map(|n| n.subscribe()).collect();
    for (n, mut events) in nodes.iter().cloned().zip(streams.drain(..)) {
        tokio::spawn(async move {
            while let Some(item) = events.recv().await {
                if let ClusterEvent::Event(e) = item
                    && let Event::Query { id, .. } = e.event
                {
                    let _ = n.respond(id, n.name().to_string()).await;
                }
            }
        });
    }
    let mut watchers: Vec<_> = nodes.iter().map(|n| n.subscribe()).collect();
    a.broadcast("deploy", "v2").await.unwrap();
    for (i, w) in watchers.iter_mut().enumerate() {
        timeout(Duration::from_secs(5), async {
            loop {
                if let Some(ClusterEvent::Event(e)) = w.recv().await
                    && let Event::UserEvent { name, payload, .. } = e.event
                {
                    assert_eq!((name.as_str(), &payload[..]), ("deploy", &b"v2"[..]));
                    return;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("node {i} got no user event"));
    }
    let outcome = a
        .query("who", "", QueryFilter::default(), Duration::from_secs(2))
        .await
        .unwrap();
    let from: BTreeSet<String> = outcome
        .responses
        .iter()
        .map(|(f, _)| f.to_string())
        .collect();
    let want: BTreeSet<String> = ["msg-a", "msg-b", "msg-c"].map(String::from).into();
    assert_eq!(from, want);
    assert_eq!(outcome.acks, 3);
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Agent {
    _child: Child,
    http: SocketAddr,
    lines: mpsc::Receiver<Value>,
}

impl Agent {
    async fn start(name: &str, port: u16, join: Option<u16>) -> Agent {
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut cmd = Command::new(AGENT);
        cmd.args([
            "agent", "--log", "error", "--preset", "local", "--name", name,
        ])
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .args(["--http", &http.to_string()]);
        if let Some(j) = join {
            cmd.args(["--join", &format!("127.0.0.1:{j}")]);
        }
        let mut child = cmd
            .env_remove("SWIM_HTTP_TOKEN")
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel(1024);
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(l)) = out.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&l) {
                    let _ = tx.send(v).await;
                }
            }
        });
        let agent = Agent {
            _child: child,
            http,
            lines,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while reqwest::get(agent.url("/health")).await.is_err() {
            assert!(Instant::now() < deadline, "agent API not up at {http}");
            sleep(Duration::from_millis(50)).await;
        }
        agent
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = reqwest::Client::new()
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }

    async fn cli(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(AGENT)
            .args(args)
            .args(["--http", &self.http.to_string()])
            .output()
            .await
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
        )
    }

    /// The next event line named `event`, within 10 s.
    async fn wait(&mut self, event: &str) -> Value {
        timeout(Duration::from_secs(10), async {
            loop {
                let v = self.lines.recv().await.expect("agent running");
                if v["event"] == event {
                    return v;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {event} event within 10 s"))
    }
}

/// The agent: `send`, `event` and `query` subcommands and their `POST` routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_event_and_query_through_the_agent() {
    let (pa, pb) = (free_port(), free_port());
    let a = Agent::start("ag-a", pa, None).await;
    let mut b = Agent::start("ag-b", pb, Some(pa)).await;
    b.wait("join_completed").await;
    sleep(Duration::from_millis(500)).await;

    let (ok, out) = a.cli(&["send", "--channel", "3", "ag-b", "hello"]).await;
    assert!(ok, "{out}");
    let m = b.wait("message").await;
    assert_eq!(
        (m["from"].as_str(), m["channel"].as_u64()),
        (Some("ag-a"), Some(3))
    );
    assert_eq!(m["payload"], "hello");
    let (code, _) = a
        .post(
            "/send",
            json!({"to": "ag-b", "payload": "again", "reliable": true}),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(b.wait("message").await["payload"], "again");
    let (code, v) = a
        .post("/send", json!({"to": "nobody", "payload": "x"}))
        .await;
    assert_eq!(code, 409, "{v}");

    let (ok, out) = a.cli(&["event", "deploy", "v3"]).await;
    assert!(ok, "{out}");
    let e = b.wait("user_event").await;
    assert_eq!(
        (e["name"].as_str(), e["payload"].as_str()),
        (Some("deploy"), Some("v3"))
    );

    // A query from the CLI; b answers through its HTTP API when it sees the query event.
    let cli = {
        let http = a.http.to_string();
        tokio::spawn(async move {
            Command::new(AGENT)
                .args([
                    "query",
                    "--timeout-ms",
                    "3000",
                    "load",
                    "?",
                    "--http",
                    &http,
                ])
                .output()
                .await
                .unwrap()
        })
    };
    let q = b.wait("query").await;
    let (code, v) = b
        .post(
            "/respond",
            json!({"origin": q["id"]["origin"], "ltime": q["id"]["ltime"], "payload": "0.5"}),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    let out = cli.await.unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["responses"],
        json!([{"from": "ag-b", "payload": "0.5"}]),
        "{v}"
    );
    assert_eq!(v["acks"], 2, "{v}");
}
