//! `swim-agent`: runs one SWIM node on this host and prints one JSON line per event.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use swim_tokio::{Cluster, ClusterEvent, DriverConfig, Preset, event_json, unix_ms};

const USAGE: &str = "\
usage:
  swim-agent [run] --bind IP[:PORT] [--join HOST:PORT ...] [--name NAME] [--config FILE]
                   [--preset lan|wan|local] [--http ADDR] [--metrics ADDR] [--record FILE]
                   [--log FILTER]
  swim-agent members --http ADDR [--alive]

run:      one node; one JSON line per event on stdout, logs on stderr; SIGTERM or SIGINT
          leaves gracefully (waiting at most leave_timeout), then exits 0.
  --bind     address for UDP and TCP (default 127.0.0.1:7946; the port defaults to 7946)
  --join     a seed to join through, resolved by DNS at every attempt (repeatable)
  --name     node name (default: the config's, else \"auto\": <hostname>-<random hex>)
  --config   TOML file: driver fields plus [core] (see docs/driver.md); flags override it
  --preset   core timer preset when no config file sets one
  --http     serve GET /members /alive /local /stats /metrics /health on ADDR
  --metrics  serve the same endpoints (for Prometheus: /metrics) on ADDR
  --record   write every input of the core to FILE, for `swim-sim replay FILE`
  --log      tracing filter for stderr (default \"warn\"; also RUST_LOG)
members:  print the members of a running agent as JSON (--alive: only alive and suspect)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.first().map(String::as_str) {
        Some("members") => ("members", &args[1..]),
        Some("run") => ("run", &args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => ("run", &args[..]),
    };
    let result = match cmd {
        "members" => Flags::parse(rest, &["--alive"], &["--http"]).and_then(members),
        _ => Flags::parse(
            rest,
            &[],
            &[
                "--bind",
                "--join",
                "--name",
                "--config",
                "--preset",
                "--http",
                "--metrics",
                "--record",
                "--log",
            ],
        )
        .and_then(run),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("swim-agent: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// `--flag value` pairs and switches; anything else is rejected naming the argument.
struct Flags {
    pairs: Vec<(String, Option<String>)>,
}

impl Flags {
    fn parse(args: &[String], switches: &[&str], valued: &[&str]) -> Result<Flags, String> {
        let mut pairs = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if switches.contains(&a.as_str()) {
                pairs.push((a.clone(), None));
            } else if valued.contains(&a.as_str()) {
                let v = it.next().ok_or(format!("{a} needs a value"))?;
                pairs.push((a.clone(), Some(v.clone())));
            } else if a.starts_with('-') {
                return Err(format!("unknown option {a}"));
            } else {
                return Err(format!("unexpected argument {a:?}"));
            }
        }
        Ok(Flags { pairs })
    }

    fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, v)| v.clone())
            .collect()
    }

    fn addr(&self, name: &str) -> Result<Option<SocketAddr>, String> {
        self.get(name)
            .map(|v| {
                v.parse()
                    .map_err(|e| format!("{name} {v:?}: {e} (want IP:PORT)"))
            })
            .transpose()
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    // One node needs little: the node task, accept and connection tasks, the HTTP server.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))
}

fn members(f: Flags) -> Result<ExitCode, String> {
    let addr = f.addr("--http")?.ok_or("members needs --http ADDR")?;
    let path = if f.has("--alive") {
        "/alive"
    } else {
        "/members"
    };
    let (code, body) = runtime()?
        .block_on(swim_tokio::control::get(addr, path))
        .map_err(|e| format!("--http {addr}: {e}"))?;
    if code != 200 {
        return Err(format!("--http {addr}: HTTP {code}: {}", body.trim()));
    }
    print!("{body}");
    Ok(ExitCode::SUCCESS)
}

/// The driver config from `--config` (if any) with the flags applied over it.
fn config(f: &Flags) -> Result<DriverConfig, String> {
    let mut c = match f.get("--config") {
        Some(path) => DriverConfig::from_file(&PathBuf::from(path))
            .map_err(|e| format!("--config {path}: {e}"))?,
        None => DriverConfig::default(),
    };
    if let Some(p) = f.get("--preset") {
        let preset = match p {
            "lan" => Preset::Lan,
            "wan" => Preset::Wan,
            "local" => Preset::Local,
            other => return Err(format!("--preset {other:?}: want lan, wan or local")),
        };
        if f.has("--config") {
            return Err("--preset: give the preset in the --config file instead".into());
        }
        c = DriverConfig::with_preset(preset);
    }
    if let Some(b) = f.get("--bind") {
        match (b.parse::<SocketAddr>(), b.parse::<std::net::IpAddr>()) {
            (Ok(a), _) => {
                c.bind = a.ip();
                c.port = a.port();
            }
            (_, Ok(ip)) => c.bind = ip,
            _ => return Err(format!("--bind {b:?}: want IP or IP:PORT")),
        }
    }
    let joins = f.all("--join");
    if !joins.is_empty() {
        c.seeds = joins;
    }
    if let Some(n) = f.get("--name") {
        c.name = n.to_string();
    }
    if let Some(r) = f.get("--record") {
        c.record = Some(PathBuf::from(r));
    }
    c.validate().map_err(|e| {
        let flag = match &e {
            swim_tokio::Error::Config { field, .. } if field.starts_with("seeds") => "--join",
            swim_tokio::Error::Config { field, .. } if field == "name" => "--name",
            swim_tokio::Error::Config { field, .. } if field == "advertise" => "--bind",
            _ => "--config",
        };
        format!("{flag}: {e}")
    })?;
    Ok(c)
}

fn run(f: Flags) -> Result<ExitCode, String> {
    let config = config(&f)?;
    let http = f.addr("--http")?;
    let metrics = f.addr("--metrics")?;
    let filter = f
        .get("--log")
        .map(String::from)
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "warn".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .map_err(|e| format!("--log {filter:?}: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    runtime()?.block_on(async move {
        let mut servers = Vec::new();
        for (flag, addr) in [("--http", http), ("--metrics", metrics)] {
            if let Some(addr) = addr {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("{flag} {addr}: {e}"))?;
                servers.push(l);
            }
        }
        let (cluster, mut events) = Cluster::start_subscribed(config)
            .await
            .map_err(|e| e.to_string())?;
        for l in servers {
            tokio::spawn(swim_tokio::control::serve(l, cluster.clone()));
        }
        let printer = tokio::spawn(async move {
            use std::io::Write;
            while let Some(item) = events.recv().await {
                let line = match item {
                    ClusterEvent::Event(e) => event_json(&e),
                    ClusterEvent::Lagged(n) => serde_json::json!({
                        "ts_ms": unix_ms(), "event": "lagged", "missed": n,
                    }),
                    _ => continue,
                };
                // stdout is line-buffered: each event is visible as soon as it happens.
                if writeln!(std::io::stdout().lock(), "{line}").is_err() {
                    break; // stdout closed: keep the node running, stop printing.
                }
            }
        });
        shutdown_signal().await?;
        tracing::info!("signal received; leaving");
        match cluster.leave().await {
            Ok(()) => {}
            Err(e) => tracing::warn!(error = %e, "leave incomplete"),
        }
        let _ = cluster.shutdown().await;
        let _ = printer.await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Waits for SIGTERM or SIGINT.
async fn shutdown_signal() -> Result<(), String> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| format!("installing SIGTERM: {e}"))?;
        let mut int =
            signal(SignalKind::interrupt()).map_err(|e| format!("installing SIGINT: {e}"))?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .map_err(|e| format!("installing Ctrl-C: {e}"))
    }
}
