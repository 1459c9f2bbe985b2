//! The `swim-agent` binary as an operator meets it: `--help`/`--version`, and its HTTP API
//! driven with `reqwest` on 127.0.0.1, abuse cases included (idle connections, missing
//! token, oversized bodies), subcommands and event handlers.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::time::Instant;

mod common;
use common::{AGENT, free_port};
const TOKEN: &str = "s3cret-token";

/// An agent on 127.0.0.1 with fast timers and its API on a free port.
struct Agent {
    /// Killed on drop.
    _child: Child,
    http: SocketAddr,
}

impl Agent {
    async fn start(extra: &[&str]) -> Agent {
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut cmd = Command::new(AGENT);
        cmd.args(["agent", "--log", "error", "--bind", "127.0.0.1:0"])
            .args(if extra.contains(&"--config") {
                &[][..]
            } else {
                &["--preset", "local"]
            })
            .args(["--http", &http.to_string()])
            .args(extra);
        Agent {
            _child: common::spawn_until_healthy(cmd, http).await,
            http,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    async fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(AGENT)
            .args(args)
            .args(["--http", &self.http.to_string(), "--http-token", TOKEN])
            .output()
            .await
            .unwrap()
    }
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(AGENT)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn help_on_every_subcommand_exits_0_and_shows_defaults() {
    for sub in [
        &[][..],
        &["agent"],
        &["members"],
        &["join"],
        &["leave"],
        &["keys"],
        &["keys", "install"],
        &["keys", "list"],
        &["publish"],
        &["get"],
        &["monitor"],
        &["stats"],
        &["reload"],
        &["force-leave"],
    ] {
        let mut args = sub.to_vec();
        args.push("--help");
        let (code, out, err) = run(&args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(out.contains("Usage: swim-agent"), "{args:?}: {out}");
    }
    let (_, out, _) = run(&["agent", "--help"]);
    for flag in [
        "--bind",
        "--advertise",
        "--join",
        "--name",
        "--config",
        "--preset",
        "--http ",
        "--metrics",
        "--http-token",
        "--record",
        "--log",
        "--event-handler",
        "--handler-timeout",
        "--handler-concurrency",
    ] {
        assert!(out.contains(flag), "agent --help lacks {flag}: {out}");
    }
    assert!(
        out.contains("[default: 127.0.0.1:7946]") && out.contains("[default: info]"),
        "{out}"
    );
    let (_, out, _) = run(&["members", "--help"]);
    assert!(
        out.contains("[default: 127.0.0.1:7947]") && out.contains("[default: table]"),
        "{out}"
    );
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with("swim-agent ") && out.contains(env!("CARGO_PKG_VERSION")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_do_not_lock_out_health_and_limits_hold() {
    let a = Agent::start(&["--http-token", TOKEN]).await;
    // 20 connections that never send a request.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(tokio::net::TcpStream::connect(a.http).await.unwrap());
    }
    let http = reqwest::Client::new();
    let t = Instant::now();
    let r = http.get(a.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "health took {:?}",
        t.elapsed()
    );
    let r = http.get(a.url("/members")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    drop(idle);

    // HEAD works where GET does; a wrong method gets 405 with Allow.
    let r = http.head(a.url("/members")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http.delete(a.url("/members")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let allow = r.headers().get("allow").expect("405 carries Allow");
    assert!(allow.to_str().unwrap().contains("GET"), "{allow:?}");

    // POST without the token: 401; with it: accepted.
    let body = serde_json::json!({ "type": "svc", "key": "web", "value": "up" });
    let r = http
        .post(a.url("/publish"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(a.url("/publish"))
        .bearer_auth("wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(a.url("/publish"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let v: Value = http
        .get(a.url("/state/svc/web"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["value"], "up");

    // An oversized body: 413. (The server closes that connection without reading the body,
    // so a separate client keeps the shared pool clean. The body is just over the 64 KiB limit:
    // small enough to sit in the loopback socket buffer whole, so the client never races the
    // server's close with a broken pipe, as a 1 MiB body did on a loaded machine.)
    let big = "x".repeat((64 << 10) + 1024);
    let r = reqwest::Client::new()
        .post(a.url("/publish"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    // The other read endpoints answer JSON.
    for path in [
        "/ready", "/state", "/view", "/leader", "/keys", "/local", "/stats", "/alive",
    ] {
        let r = http.get(a.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let _: Value = r.json().await.unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    let text = http
        .get(a.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("swim_state_writes_total 1"), "{text}");
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subcommands_drive_a_running_agent() {
    let a = Agent::start(&["--name", "cli-a", "--http-token", TOKEN]).await;
    let b = Agent::start(&["--name", "cli-b"]).await;
    let b_addr: Value = reqwest::get(b.url("/local"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b_addr = b_addr["addr"].as_str().unwrap().to_string();

    // monitor sees the join as it happens.
    let mut monitor = Command::new(AGENT)
        .args(["monitor", "--http", &a.http.to_string()])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = a.cli(&["join", &b_addr]).await;
    assert!(out.status.success(), "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let table = loop {
        let out = a.cli(&["members"]).await;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if text.contains("cli-b") && text.lines().filter(|l| l.contains("alive")).count() == 2 {
            break text;
        }
        assert!(Instant::now() < deadline, "members: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(table.starts_with("NAME"), "{table}");
    let stdout = monitor.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let joined = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(l)) = lines.next_line().await {
            let v: Value = serde_json::from_str(&l).unwrap();
            if v["event"] == "member_joined" && v["node"] == "cli-b" {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(joined, Ok(true), "monitor printed member_joined for cli-b");

    let out = a.cli(&["publish", "cfg", "mode", "blue"]).await;
    assert!(out.status.success(), "{out:?}");
    let out = a.cli(&["get", "cfg", "mode"]).await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["value"], "blue");
    let out = a.cli(&["keys", "list"]).await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["encryption"], false);
    let out = a.cli(&["keys", "install", &"ab".repeat(32)]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("keyring"),
        "{out:?}"
    );
    let out = a.cli(&["stats"]).await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["members"]["alive"], 2);
    // Without the token, a change is refused and the error says why.
    let out = Command::new(AGENT)
        .args(["leave", "--http", &a.http.to_string()])
        .env_remove("SWIM_HTTP_TOKEN")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{out:?}"
    );
    let out = a.cli(&["leave"]).await;
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_handlers_get_the_event_json_and_reload_swaps_them() {
    let dir = std::env::temp_dir().join(format!("swim-handlers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let first = dir.join("first.jsonl");
    let second = dir.join("second.jsonl");
    let config = dir.join("agent.toml");
    let write_config = |out: &std::path::Path| {
        std::fs::write(
            &config,
            format!(
                "preset = \"local\"\n[agent]\nevent_handlers = [\"member_joined=cat >> {}\"]\nhandler_timeout = \"5s\"\n",
                out.display()
            ),
        )
        .unwrap();
    };
    write_config(&first);
    let a = Agent::start(&["--name", "h-a", "--config", config.to_str().unwrap()]).await;
    let addr: Value = reqwest::get(a.url("/local"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let addr = addr["addr"].as_str().unwrap().to_string();
    let wait_for = |path: std::path::PathBuf, node: &'static str| async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if let Some(l) = text.lines().find(|l| l.contains(node)) {
                let v: Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["event"], "member_joined");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} has no line for {node}: {text}",
                path.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let _b = Agent::start(&["--name", "h-b", "--join", &addr]).await;
    wait_for(first.clone(), "h-b").await;

    // Reload: the handler now writes elsewhere; a changed non-reloadable field is refused.
    write_config(&second);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replace(
        "preset = \"local\"\n",
        "preset = \"local\"\nmax_connections = 7\n",
    );
    std::fs::write(&config, text).unwrap();
    let v: Value = reqwest::Client::new()
        .post(a.url("/reload"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["applied"],
        serde_json::json!(["agent.event_handlers"]),
        "{v}"
    );
    assert_eq!(v["refused"], serde_json::json!(["max_connections"]), "{v}");
    let _c = Agent::start(&["--name", "h-c", "--join", &addr]).await;
    wait_for(second.clone(), "h-c").await;
    let old = std::fs::read_to_string(&first).unwrap();
    assert!(!old.contains("h-c"), "the old handler still ran: {old}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn over_the_concurrency_limit_requests_get_503_and_health_stays_served() {
    let mut config = swim_tokio::DriverConfig::with_preset(swim_tokio::Preset::Local);
    config.port = 0;
    config.name = "busy".into();
    let cluster = swim_tokio::Cluster::start(config).await.unwrap();
    let mut api = swim_tokio::control::ApiConfig::default();
    api.max_concurrent = 1;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(swim_tokio::control::serve(listener, cluster.clone(), api));
    // Hold the node task busy so that one request occupies the only slot.
    let busy = cluster.clone();
    let stall = tokio::spawn(async move {
        busy.inspect(|_| std::thread::sleep(Duration::from_millis(1500)))
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let http = reqwest::Client::new();
    let first = tokio::spawn(http.get(format!("http://{addr}/members")).send());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = http
        .get(format!("http://{addr}/members"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "the second request is shed, not queued");
    let r = http
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "/health is outside the limit");
    assert_eq!(first.await.unwrap().unwrap().status(), 200);
    stall.await.unwrap();
    server.abort();
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_handlers_run_one_at_a_time_and_are_killed_at_the_timeout() {
    let out = std::env::temp_dir().join(format!("swim-handler-bounds-{}.txt", std::process::id()));
    std::fs::remove_file(&out).ok();
    let start = |name: &str, seeds: Vec<String>| {
        let mut c = swim_tokio::DriverConfig::with_preset(swim_tokio::Preset::Local);
        c.port = 0;
        c.name = name.into();
        c.seeds = seeds;
        swim_tokio::Cluster::start(c)
    };
    let a = start("bound-a", vec![]).await.unwrap();
    let mut h = swim_tokio::handlers::HandlerConfig::default();
    // Every run appends a line, then sleeps far longer than the timeout.
    h.commands = vec![format!(
        "echo \"$SWIM_EVENT\" >> {}; exec sleep 30",
        out.display()
    )];
    h.concurrency = 1;
    h.timeout = Duration::from_millis(400);
    let (_tx, rx) = tokio::sync::watch::channel(h);
    swim_tokio::handlers::spawn(&a, rx);
    let seed = vec![a.addr().to_string()];
    let b = start("bound-b", seed.clone()).await.unwrap();
    let c = start("bound-c", seed).await.unwrap();
    let lines = || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while lines() == 0 {
        assert!(Instant::now() < deadline, "no handler ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // One slot: the second run waits while the first sleeps.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(lines(), 1, "concurrency 1 let a second handler start");
    // The timeout kills the first, and the next (the other member's join) runs.
    let deadline = Instant::now() + Duration::from_secs(5);
    while lines() < 2 {
        assert!(
            Instant::now() < deadline,
            "the timed-out handler was not killed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for n in [&a, &b, &c] {
        n.shutdown().await.unwrap();
    }
    std::fs::remove_file(&out).ok();
}

/// `POST /reload` applies the `[core]` table to the running node (issue 14's runtime
/// reconfiguration), names `core.start_incarnation` as kept, and refuses a bad core value by
/// name with the running configuration unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_the_core_table_and_names_what_it_keeps() {
    let dir = std::env::temp_dir().join(format!("swim-reload-core-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("agent.toml");
    std::fs::write(&config, "preset = \"local\"\n").unwrap();
    let a = Agent::start(&["--name", "rc-a", "--config", config.to_str().unwrap()]).await;
    let reload = || async {
        let r = reqwest::Client::new()
            .post(a.url("/reload"))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    std::fs::write(
        &config,
        "preset = \"local\"\n[core]\nprobe_timeout = \"300ms\"\nstart_incarnation = 4\n",
    )
    .unwrap();
    let (code, v) = reload().await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["applied"], serde_json::json!(["core"]), "{v}");
    assert_eq!(
        v["refused"],
        serde_json::json!(["core.start_incarnation"]),
        "{v}"
    );
    std::fs::write(
        &config,
        "preset = \"local\"\n[core]\nprobe_timeout = \"5s\"\n",
    )
    .unwrap();
    let (code, v) = reload().await;
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("core.probe_timeout"),
        "{v}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
