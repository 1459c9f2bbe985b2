//! `swim-agent partition inject|resolve|list` and `POST/GET/DELETE /partitions` against two
//! real agents on 127.0.0.1 (issue 14's live partitions, issue 15's subcommand), and an agent
//! refused for a node name already alive at another address.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::time::Instant;

mod common;
use common::{AGENT, free_port};
const TOKEN: &str = "faults-token";

/// Fast timers, so a partition is detected and healed within seconds.
const CONFIG: &str = r#"
preset = "local"
[core]
probe_interval = "200ms"
probe_timeout = "100ms"
gossip_interval = "50ms"
retransmit_mult = 4
push_pull_interval = "5s"
heal_interval = "2s"
join_retry_initial = "200ms"
join_retry_max = "1s"
"#;

struct Agent {
    _child: Child,
    http: SocketAddr,
}

impl Agent {
    async fn start(name: &str, join: Option<SocketAddr>) -> Agent {
        let dir = std::env::temp_dir().join(format!("swim-faults-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("agent.toml");
        std::fs::write(&config, CONFIG).unwrap();
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut cmd = Command::new(AGENT);
        cmd.args([
            "agent",
            "--log",
            "error",
            "--bind",
            "127.0.0.1:0",
            "--name",
            name,
        ])
        .args(["--config", config.to_str().unwrap()])
        .args(["--http", &http.to_string(), "--http-token", TOKEN]);
        if let Some(seed) = join {
            cmd.args(["--join", &seed.to_string()]);
        }
        Agent {
            _child: common::spawn_until_healthy(cmd, http).await,
            http,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    async fn get(&self, path: &str) -> Value {
        reqwest::get(self.url(path))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn addr(&self) -> SocketAddr {
        self.get("/local").await["addr"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    async fn state_of(&self, name: &str) -> Option<String> {
        let members = self.get("/members").await;
        members
            .as_array()
            .unwrap()
            .iter()
            .find_map(|m| (m["name"] == name).then(|| m["state"].as_str().unwrap().to_string()))
    }

    async fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(AGENT)
            .args(args)
            .args(["--http", &self.http.to_string(), "--http-token", TOKEN])
            .output()
            .await
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }
}

async fn eventually(within: Duration, what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f().await {
        assert!(Instant::now() < deadline, "{what} (after {within:?})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_are_injected_listed_and_resolved_over_http_and_the_cli() {
    let a = Agent::start("fa-a", None).await;
    let b = Agent::start("fa-b", Some(a.addr().await)).await;
    eventually(Duration::from_secs(10), "a sees b alive", async || {
        a.state_of("fa-b").await.as_deref() == Some("alive")
    })
    .await;

    // Changes need the token; the listing does not.
    let http = reqwest::Client::new();
    let r = http
        .post(a.url("/partitions"))
        .json(&json!({ "members": ["fa-b"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(a.url("/partitions"))
        .bearer_auth(TOKEN)
        .json(&json!({ "members": ["fa-b"], "rules": [] , "extra": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "unknown fields are refused");
    let r = http
        .post(a.url("/partitions"))
        .bearer_auth(TOKEN)
        .json(&json!({ "rules": [{ "kind": "loss", "rate": 2.0 }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("rate"));

    let (ok, out, err) = a.cli(&["partition", "inject", "fa-b"]).await;
    assert!(ok, "{err}");
    let id = serde_json::from_str::<Value>(&out).unwrap()["id"]
        .as_u64()
        .unwrap();
    let listed = a.get("/partitions").await;
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["rules"][0]["kind"], "partition");
    assert_eq!(listed[0]["rules"][0]["members"][0], "fa-b");
    let (ok, out, _) = a.cli(&["partition", "list"]).await;
    assert!(ok && out.contains("fa-b"), "{out}");

    eventually(
        Duration::from_secs(15),
        "each side sees the other dead",
        async || {
            a.state_of("fa-b").await.as_deref() == Some("dead")
                && b.state_of("fa-a").await.as_deref() == Some("dead")
        },
    )
    .await;

    let (ok, out, err) = a.cli(&["partition", "resolve", &id.to_string()]).await;
    assert!(ok, "{err}");
    assert!(out.contains("resolved"), "{out}");
    let (ok, _, err) = a.cli(&["partition", "resolve", &id.to_string()]).await;
    assert!(!ok && err.contains("404"), "{err}");
    assert_eq!(a.get("/partitions").await, json!([]));
    eventually(Duration::from_secs(20), "the two heal", async || {
        a.state_of("fa-b").await.as_deref() == Some("alive")
            && b.state_of("fa-a").await.as_deref() == Some("alive")
    })
    .await;
}

/// Issue 15: an agent started under a name already alive at another address is refused with a
/// clear error, and the running owner of the name is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_with_a_name_alive_elsewhere_is_refused() {
    let a = Agent::start("dup-a", None).await;
    let seed = a.addr().await;
    let out = tokio::time::timeout(
        Duration::from_secs(15),
        Command::new(AGENT)
            .args([
                "agent",
                "--log",
                "error",
                "--bind",
                "127.0.0.1:0",
                "--name",
                "dup-a",
            ])
            .args(["--preset", "local", "--join", &seed.to_string()])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the duplicate agent exits by itself")
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("\"dup-a\" is already alive at") && err.contains(&seed.to_string()),
        "{err}"
    );
    let local = a.get("/local").await;
    assert_eq!(
        local["incarnation"], 0,
        "the owner never had to refute: {local}"
    );
    assert_eq!(a.get("/members").await.as_array().unwrap().len(), 1);
}

#[test]
fn partition_subcommands_have_help_and_refuse_an_empty_inject() {
    for sub in [
        &["partition"][..],
        &["partition", "inject"],
        &["partition", "resolve"],
        &["partition", "list"],
    ] {
        let out = std::process::Command::new(AGENT)
            .args(sub)
            .arg("--help")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{sub:?}");
        assert!(
            text.contains("Usage: swim-agent partition"),
            "{sub:?}: {text}"
        );
    }
    let out = std::process::Command::new(AGENT)
        .args(["partition", "inject"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NAME"));
}
