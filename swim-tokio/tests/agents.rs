//! `swim-agent` processes: on loopback addresses 127.0.0.x, and (as root, with `ip`) on hosts
//! in network namespaces joined by veth pairs and a bridge.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use swim_tokio::DriverConfig;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

const AGENT: &str = env!("CARGO_BIN_EXE_swim-agent");

/// Fast timers for tests; `heal_interval` and the join backoff are short so a healed link is
/// noticed within seconds.
const CONFIG: &str = r#"
preset = "local"
leave_timeout = "3s"
[core]
probe_interval = "200ms"
probe_timeout = "100ms"
gossip_interval = "50ms"
retransmit_mult = 4
join_retry_initial = "200ms"
join_retry_max = "1s"
heal_interval = "1s"
"#;

/// The longest a crash may take to be reported everywhere under `CONFIG` with `n` members:
/// every member probes every other within `n` protocol periods (SWIM §4.3 round-robin), plus
/// the probe timeout, plus the longest suspicion (Lifeguard: `suspicion_max_timeout_mult ×
/// suspicion_mult × max(1, log10 n) × probe_interval`), plus one second for dissemination and
/// scheduling on a loaded 2-core machine.
fn detection_bound(n: usize) -> Duration {
    let c = DriverConfig::from_toml(CONFIG).unwrap().core;
    let log_n = (n as f64).log10().max(1.0);
    let suspicion = c
        .probe_interval
        .mul_f64(f64::from(c.suspicion_max_timeout_mult) * f64::from(c.suspicion_mult) * log_n);
    c.probe_interval * n as u32 + c.probe_timeout + suspicion + Duration::from_secs(1)
}

struct Agent {
    name: String,
    child: Child,
    lines: mpsc::Receiver<(Instant, Value)>,
    seen: Vec<(Instant, Value)>,
}

impl Agent {
    /// Starts an agent (optionally inside network namespace `netns`).
    fn spawn(
        netns: Option<&str>,
        name: &str,
        bind: SocketAddr,
        join: Option<SocketAddr>,
        config: &Path,
    ) -> Agent {
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, AGENT]);
                c
            }
            None => Command::new(AGENT),
        };
        cmd.args([
            "--log",
            "error",
            "--bind",
            &bind.to_string(),
            "--name",
            name,
            "--config",
        ])
        .arg(config);
        if let Some(j) = join {
            cmd.args(["--join", &j.to_string()]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("swim-agent starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("agent printed a non-JSON line {line:?}: {e}"));
                if tx.send((Instant::now(), v)).await.is_err() {
                    break;
                }
            }
        });
        Agent {
            name: name.to_string(),
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for an event `event` about `node`; returns when this agent printed it.
    async fn wait(&mut self, event: &str, node: &str, deadline: Instant) -> Instant {
        self.wait_any(&[event], node, None, deadline).await
    }

    /// Waits for any of `events` about `node` printed at or after `since`.
    async fn wait_any(
        &mut self,
        events: &[&str],
        node: &str,
        since: Option<Instant>,
        deadline: Instant,
    ) -> Instant {
        let event = events.join("|");
        let hit = |t: Instant, v: &Value| {
            events.iter().any(|e| v["event"] == *e)
                && v["node"] == node
                && since.is_none_or(|s| t >= s)
        };
        if let Some((t, _)) = self.seen.iter().find(|(t, v)| hit(*t, v)) {
            return *t;
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.lines.recv()).await {
                Ok(Some((t, v))) => {
                    let found = hit(t, &v);
                    self.seen.push((t, v));
                    if found {
                        return t;
                    }
                }
                _ => panic!(
                    "{} printed no {event} for {node} in time; it printed {:?}",
                    self.name,
                    self.seen
                        .iter()
                        .map(|(_, v)| v.to_string())
                        .collect::<Vec<_>>()
                ),
            }
        }
    }

    /// Waits until the last membership event this agent printed about `node` says it is
    /// alive (a transient false failure after a heal must also have been refuted).
    async fn settle_alive(&mut self, node: &str, deadline: Instant) {
        loop {
            let last = self
                .seen
                .iter()
                .rev()
                .find(|(_, v)| v["node"] == node && v["event"] != "member_updated");
            if let Some((_, v)) = last
                && (v["event"] == "member_joined" || v["event"] == "member_alive")
            {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.lines.recv()).await {
                Ok(Some(line)) => self.seen.push(line),
                _ => panic!(
                    "{} does not see {node} alive in the end: last {last:?}",
                    self.name
                ),
            }
        }
    }

    fn saw(&self, event: &str, node: &str) -> bool {
        self.seen
            .iter()
            .any(|(_, v)| v["event"] == event && v["node"] == node)
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.id().expect("running").to_string();
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }
}

fn write_config(tag: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("swim-agent-{tag}-{}.toml", std::process::id()));
    std::fs::write(&path, CONFIG).unwrap();
    path
}

/// A port free on the first address (then used on every 127.0.0.x address).
fn free_port(ip: &str) -> u16 {
    let s = std::net::UdpSocket::bind((ip, 0)).unwrap();
    s.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_on_loopback_report_a_kill_as_failed_and_a_sigterm_as_left() {
    const N: usize = 6;
    let config = write_config("loopback");
    let port = free_port("127.0.0.11");
    let addr = |i: usize| -> SocketAddr { format!("127.0.0.{}:{port}", 11 + i).parse().unwrap() };
    let mut agents: Vec<Agent> = (0..N)
        .map(|i| {
            Agent::spawn(
                None,
                &format!("agent-{i}"),
                addr(i),
                (i > 0).then(|| addr(0)),
                &config,
            )
        })
        .collect();
    let start = Instant::now() + Duration::from_secs(15);
    for i in 0..N {
        for j in 0..N {
            if i != j {
                let name = agents[j].name.clone();
                agents[i].wait("member_joined", &name, start).await;
            }
        }
    }

    // kill -9: no leave, sockets vanish. Every survivor must print member_failed in time.
    let bound = detection_bound(N);
    agents[N - 1].child.start_kill().unwrap();
    let killed = Instant::now();
    let mut times = Vec::new();
    for a in &mut agents[..N - 1] {
        times.push(a.wait("member_failed", "agent-5", killed + bound).await - killed);
    }
    times.sort();
    eprintln!(
        "kill -9 agent-5: first member_failed after {:?}, last after {:?} (bound {bound:?})",
        times[0],
        times[times.len() - 1]
    );

    // SIGTERM: graceful leave, exit 0; survivors print member_left and never member_failed.
    agents[N - 2].signal("-TERM");
    let deadline = Instant::now() + Duration::from_secs(8);
    for a in &mut agents[..N - 2] {
        a.wait("member_left", "agent-4", deadline).await;
        assert!(
            !a.saw("member_failed", "agent-4"),
            "{} saw agent-4 fail",
            a.name
        );
    }
    let status = timeout(Duration::from_secs(8), agents[N - 2].child.wait())
        .await
        .expect("agent exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "exit status {status}");
    for a in &agents[..N - 2] {
        a.signal("-KILL");
    }
    std::fs::remove_file(&config).ok();
}

/// Runs `ip ARGS`, panicking with its stderr on failure.
fn ip(args: &[&str]) {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Why the namespace test cannot run here, if it cannot.
fn netns_unavailable() -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(String::from))
        })
        .unwrap_or_default();
    if uid != "0" {
        return Some(format!("not running as root (uid {uid})"));
    }
    match std::process::Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => {}
        _ => return Some("the `ip` command (iproute2) is not available".into()),
    }
    let probe = format!("swimprobe{}", std::process::id());
    let ok = std::process::Command::new("ip")
        .args(["netns", "add", &probe])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        return Some("`ip netns add` is not permitted here".into());
    }
    ip(&["netns", "del", &probe]);
    None
}

/// Namespaces and links, removed on drop (also when the test fails).
struct Net {
    namespaces: Vec<String>,
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", ns])
                .output();
        }
    }
}

/// Needs root and iproute2, so it is ignored by default and reported as such; `.ci/run` runs it
/// as root with `--ignored`. Run it by hand with
/// `sudo cargo test --release -p swim-tokio --test agents -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root and iproute2 (network namespaces); .ci/run runs it with --ignored"]
async fn hosts_in_network_namespaces_detect_a_cut_link_and_heal() {
    if let Some(why) = netns_unavailable() {
        panic!("this test needs network namespaces and cannot run here: {why}");
    }
    const N: usize = 3;
    let tag = std::process::id() % 100_000;
    // A hub namespace holds the bridge; each host namespace has one veth into it. The subnet
    // exists only inside these namespaces.
    let hub = format!("swimhub{tag}");
    let host = |i: usize| format!("swimh{i}x{tag}");
    let mut net = Net {
        namespaces: vec![hub.clone()],
    };
    ip(&["netns", "add", &hub]);
    ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"]);
    ip(&["-n", &hub, "link", "set", "br0", "up"]);
    for i in 0..N {
        let ns = host(i);
        ip(&["netns", "add", &ns]);
        net.namespaces.push(ns.clone());
        let (inner, outer) = (format!("eth{i}"), format!("port{i}"));
        ip(&[
            "-n", &hub, "link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns", &ns,
        ]);
        ip(&["-n", &hub, "link", "set", &outer, "master", "br0", "up"]);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("10.213.0.{}/24", i + 1),
            "dev",
            &inner,
        ]);
        ip(&["-n", &ns, "link", "set", &inner, "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
    }
    let config = write_config("netns");
    let addr = |i: usize| -> SocketAddr { format!("10.213.0.{}:7946", i + 1).parse().unwrap() };
    let mut agents: Vec<Agent> = (0..N)
        .map(|i| {
            Agent::spawn(
                Some(&host(i)),
                &format!("host-{i}"),
                addr(i),
                (i > 0).then(|| addr(0)),
                &config,
            )
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    for i in 0..N {
        for j in 0..N {
            if i != j {
                let name = agents[j].name.clone();
                agents[i].wait("member_joined", &name, deadline).await;
            }
        }
    }

    // Cut host-2's link at the bridge: the others must declare it failed.
    ip(&["-n", &hub, "link", "set", "port2", "down"]);
    let cut = Instant::now();
    let bound = detection_bound(N);
    for a in &mut agents[..N - 1] {
        let t = a.wait("member_failed", "host-2", cut + bound).await;
        eprintln!(
            "{} declared host-2 failed {:?} after the cut",
            a.name,
            t - cut
        );
    }
    for j in 0..N - 1 {
        let name = agents[j].name.clone();
        agents[N - 1]
            .wait("member_failed", &name, cut + bound)
            .await;
    }
    // Restore it: host-2 finds itself alone and rejoins through its seed, refuting the death
    // claim with a higher incarnation; every host sees every other alive again.
    ip(&["-n", &hub, "link", "set", "port2", "up"]);
    let healed = Instant::now();
    let deadline = healed + Duration::from_secs(20);
    let back = ["member_joined", "member_alive"];
    for i in 0..N {
        for j in 0..N {
            if i != j && (i == N - 1 || j == N - 1) {
                let name = agents[j].name.clone();
                let t = agents[i]
                    .wait_any(&back, &name, Some(healed), deadline)
                    .await;
                eprintln!(
                    "{} sees {name} alive again {:?} after the heal",
                    agents[i].name,
                    t - healed
                );
            }
        }
    }
    for i in 0..N {
        for j in 0..N {
            if i != j {
                let name = agents[j].name.clone();
                agents[i].settle_alive(&name, deadline).await;
            }
        }
    }
    for a in &agents {
        let failed: Vec<String> = a
            .seen
            .iter()
            .filter(|(_, v)| v["event"] == "member_failed")
            .map(|(t, v)| format!("{} at +{:?}", v["node"], t.saturating_duration_since(cut)))
            .collect();
        eprintln!(
            "{} printed member_failed for {failed:?} (cut at +0, healed at +{:?})",
            a.name,
            healed - cut
        );
    }
    for a in &mut agents {
        a.child.start_kill().ok();
        let _ = a.child.wait().await;
    }
    drop(net);
    std::fs::remove_file(&config).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_and_config_values_are_rejected_naming_them() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(AGENT)
            .args(args)
            .env_remove("SWIM_HTTP_TOKEN")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&["--bogus"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unexpected argument '--bogus'"), "{err}");
    let (code, err) = run(&["--bind", "nonsense"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--bind") && err.contains("nonsense"), "{err}");
    let (_, err) = run(&["--join", "no-port"]);
    assert!(err.contains("--join") && err.contains("seeds[0]"), "{err}");
    let (_, err) = run(&["--join"]);
    assert!(err.contains("a value is required for '--join"), "{err}");
    let (code, err) = run(&["agent", "--preset", "moon"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--preset") && err.contains("moon") && err.contains("local"),
        "{err}"
    );
    let (code, err) = run(&["--handler-timeout", "soon"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--handler-timeout"), "{err}");
    // A misspelt flag is named, with the closest one suggested.
    let (code, err) = run(&["--advertize", "127.0.0.1:1"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("'--advertize'") && err.contains("--advertise"),
        "{err}"
    );
    let (code, err) = run(&["members", "--formt", "json"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("'--formt'") && err.contains("--format"),
        "{err}"
    );
    // --flag=value works like --flag value.
    let (code, err) = run(&["--bind=127.0.0.1:1", "--join=no-port"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("seeds[0]"), "{err}");
    // 0.0.0.0 needs --advertise; with it, the config is valid (checked before binding).
    let (_, err) = run(&["--bind", "0.0.0.0:1", "--join", "no-port"]);
    assert!(err.contains("--advertise"), "{err}");
    let (_, err) = run(&[
        "--bind",
        "0.0.0.0:1",
        "--advertise",
        "127.0.0.1:1",
        "--join",
        "no-port",
    ]);
    assert!(
        err.contains("seeds[0]") && !err.contains("advertise"),
        "{err}"
    );
    // The API off loopback needs a token.
    let (code, err) = run(&["--bind", "127.0.0.1:0", "--http", "0.0.0.0:0"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--http") && err.contains("token"), "{err}");
    let bad = std::env::temp_dir().join(format!("swim-agent-bad-{}.toml", std::process::id()));
    std::fs::write(&bad, "[core]\nprobe_timeout = \"5s\"\n").unwrap();
    let (code, err) = run(&["--config", bad.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("core.probe_timeout"), "{err}");
    std::fs::write(&bad, "max_conections = 3\n").unwrap();
    let (_, err) = run(&["--config", bad.to_str().unwrap()]);
    assert!(err.contains("`max_conections`"), "{err}");
    std::fs::remove_file(&bad).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_interface_serves_members_and_metrics() {
    let config = write_config("http");
    let port = free_port("127.0.0.21");
    let http: SocketAddr = format!("127.0.0.21:{}", free_port("127.0.0.21"))
        .parse()
        .unwrap();
    let a_addr: SocketAddr = format!("127.0.0.21:{port}").parse().unwrap();
    let b_addr: SocketAddr = format!("127.0.0.22:{port}").parse().unwrap();
    let mut a = {
        let mut cmd = Command::new(AGENT);
        cmd.args([
            "--log",
            "error",
            "--bind",
            &a_addr.to_string(),
            "--name",
            "web-a",
        ])
        .args([
            "--config",
            config.to_str().unwrap(),
            "--http",
            &http.to_string(),
        ])
        .stdout(Stdio::null())
        .kill_on_drop(true);
        cmd.spawn().unwrap()
    };
    let mut b = Agent::spawn(None, "web-b", b_addr, Some(a_addr), &config);
    b.wait(
        "member_joined",
        "web-a",
        Instant::now() + Duration::from_secs(10),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let members = loop {
        let out = Command::new(AGENT)
            .args(["members", "--format", "json", "--http", &http.to_string()])
            .output()
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if out.status.success() && v.as_array().is_some_and(|a| a.len() == 2) {
            break v;
        }
        assert!(Instant::now() < deadline, "members: {out:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(members[0]["name"], "web-a");
    assert_eq!(members[1]["name"], "web-b");
    assert_eq!(members[1]["state"], "alive");
    let get = |path: &str| {
        let url = format!("http://{http}{path}");
        async move {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (code, text) = get("/metrics").await;
    assert_eq!(code, 200);
    assert!(text.contains("swim_members{state=\"alive\"} 2"), "{text}");
    let (code, _) = get("/nope").await;
    assert_eq!(code, 404);
    let (code, text) = get("/stats").await;
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["members"]["alive"], 2, "{text}");
    a.start_kill().unwrap();
    let _ = a.wait().await;
    b.child.start_kill().unwrap();
    std::fs::remove_file(&config).ok();
}
