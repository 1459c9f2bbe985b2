//! `swim-agent`: runs one SWIM node on this host (`agent`, also the default when no
//! subcommand is given) and talks to a running one over its HTTP API (the other subcommands).
//!
//! Over 600 lines on purpose: the clap definitions of every subcommand and flag, whose doc
//! comments are the `--help` text, are most of it; the HTTP client is in `swim-agent/client.rs`.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use swim_tokio::agent::{AgentConfig, changed_fields, load_agent_file};
use swim_tokio::control::{ApiConfig, ReloadRequest};
use swim_tokio::handlers::HandlerConfig;
use swim_tokio::{Cluster, ClusterEvent, DriverConfig, Preset, event_json, unix_ms};
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

#[path = "swim-agent/client.rs"]
mod client;
#[path = "swim-agent/security.rs"]
mod security;

/// Run a SWIM cluster member, or ask a running one.
///
/// Without a subcommand, runs the agent (`swim-agent --bind ...` is `swim-agent agent --bind
/// ...`). The other subcommands talk to a running agent's HTTP API (`--http` on both sides).
#[derive(Parser, Debug)]
#[command(name = "swim-agent", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    agent: AgentArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run one node: one JSON line per event on stdout, logs on stderr. SIGTERM or SIGINT
    /// leaves gracefully (waiting at most leave_timeout) and exits 0; SIGHUP reloads --config.
    #[command(visible_alias = "run")]
    Agent(Box<AgentArgs>),
    /// List the members a running agent knows (a table, or JSON with --format json).
    Members {
        #[command(flatten)]
        api: ApiArgs,
        /// Only alive and suspect members.
        #[arg(long)]
        alive: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Join a cluster through these seeds (host:port).
    Join {
        #[command(flatten)]
        api: ApiArgs,
        /// Seeds, as host:port.
        #[arg(required = true, value_name = "ADDR")]
        seeds: Vec<String>,
    },
    /// Leave the cluster gracefully (the agent keeps running, alone).
    Leave {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Manage the encryption keyring: install, use, remove a key, or list fingerprints.
    Keys {
        #[command(subcommand)]
        op: KeysCmd,
    },
    /// Write a replicated state entry (docs/protocol.md §10).
    Publish {
        #[command(flatten)]
        api: ApiArgs,
        /// State type.
        #[arg(value_name = "TYPE")]
        ty: String,
        /// Key within the type.
        key: String,
        /// Value (UTF-8 text).
        value: String,
    },
    /// Read replicated state: one entry, or every entry of a type.
    Get {
        #[command(flatten)]
        api: ApiArgs,
        /// State type.
        #[arg(value_name = "TYPE")]
        ty: String,
        /// Key within the type (all keys when omitted).
        key: Option<String>,
    },
    /// Stream a running agent's events as JSON lines until interrupted.
    Monitor {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Print a running agent's counters as JSON.
    Stats {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Make a running agent reload its --config file (as SIGHUP does).
    Reload {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Remove another member cluster-wide (operator removal; the member, if alive, stays out
    /// until it joins again).
    ForceLeave {
        #[command(flatten)]
        api: ApiArgs,
        /// The member's name.
        name: String,
    },
    // Application messaging (issue 14).
    /// Send a direct message to one member (docs/protocol.md §13.1).
    Send {
        #[command(flatten)]
        api: ApiArgs,
        /// Application channel.
        #[arg(long, default_value_t = 0)]
        channel: u16,
        /// By TCP stream instead of one best-effort datagram.
        #[arg(long)]
        reliable: bool,
        /// The member's name.
        name: String,
        /// Payload (UTF-8 text).
        payload: String,
    },
    /// Broadcast a user event to every member (docs/protocol.md §13.2).
    Event {
        #[command(flatten)]
        api: ApiArgs,
        /// Event name.
        name: String,
        /// Payload (UTF-8 text, at most 512 bytes by default).
        #[arg(default_value = "")]
        payload: String,
    },
    /// Ask a query and print the answers collected by its deadline (docs/protocol.md §13.3).
    Query {
        #[command(flatten)]
        api: ApiArgs,
        /// Only these members answer (repeatable).
        #[arg(long = "node", value_name = "NAME")]
        names: Vec<String>,
        /// Only members whose metadata contains this text answer.
        #[arg(long, default_value = "")]
        meta: String,
        /// How long to collect answers, in milliseconds.
        #[arg(long, default_value_t = 2_000)]
        timeout_ms: u64,
        /// Query name.
        name: String,
        /// Payload (UTF-8 text).
        #[arg(default_value = "")]
        payload: String,
    },
    // Live partitions (issue 14).
    /// Inject, resolve or list live partitions and fault rules on a running agent
    /// (docs/driver.md, "Interposition and live partitions").
    Partition {
        #[command(subcommand)]
        op: PartitionCmd,
    },
    // Keys (issue 13).
    /// Print a new random encryption key (base64), for --keyring-file or SWIM_KEYRING.
    Keygen,
}

// Live partitions (issue 14).
#[derive(Subcommand, Debug)]
enum PartitionCmd {
    /// Stop exchanging packets with these members (names or ip:port), both directions, until
    /// resolved; prints the partition's id. With --rules, inject a JSON rule list instead.
    Inject {
        #[command(flatten)]
        api: ApiArgs,
        /// A JSON list of fault rules, as a swim-sim scenario writes them (docs/driver.md).
        #[arg(long, value_name = "JSON", conflicts_with = "members")]
        rules: Option<String>,
        /// The members to cut off.
        #[arg(value_name = "NAME", required_unless_present = "rules")]
        members: Vec<String>,
    },
    /// Remove a partition (or rule list) by id.
    Resolve {
        #[command(flatten)]
        api: ApiArgs,
        /// The id `inject` printed.
        id: u64,
    },
    /// List the partitions and rules in force.
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCmd {
    /// Add a key packets may be decrypted with (first step of a rotation).
    Install {
        #[command(flatten)]
        api: ApiArgs,
        /// The key: 64 hexadecimal digits.
        key: String,
    },
    /// Encrypt with this installed key from now on (second step).
    Use {
        #[command(flatten)]
        api: ApiArgs,
        /// The key: 64 hexadecimal digits.
        key: String,
    },
    /// Stop accepting a key that is no longer primary (last step).
    Remove {
        #[command(flatten)]
        api: ApiArgs,
        /// The key: 64 hexadecimal digits.
        key: String,
    },
    /// Show the keyring's key fingerprints (never the keys).
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Table,
    Json,
}

/// Where the running agent's API is.
#[derive(Args, Debug)]
struct ApiArgs {
    /// The agent's HTTP API address (its --http).
    #[arg(long, env = "SWIM_HTTP_ADDR", default_value = "127.0.0.1:7947")]
    http: SocketAddr,
    /// Bearer token for changes (the agent's --http-token). [default: none]
    #[arg(long, env = "SWIM_HTTP_TOKEN", hide_env_values = true)]
    http_token: Option<String>,
}

/// Flags of the agent. Each overrides the --config file's value; unset ones keep the file's
/// (or the default shown).
#[derive(Args, Debug, Clone, Default)]
struct AgentArgs {
    /// Address for UDP and TCP, IP or IP:PORT [default: 127.0.0.1:7946]
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_bind)]
    bind: Option<(IpAddr, Option<u16>)>,
    /// Address announced to other members (required with --bind 0.0.0.0) [default: the bound
    /// address]
    #[arg(long, value_name = "IP:PORT")]
    advertise: Option<SocketAddr>,
    /// A seed to join through, resolved by DNS at every attempt (repeatable) [default: none]
    #[arg(long, value_name = "HOST:PORT")]
    join: Vec<String>,
    /// Node name, unique in the cluster [default: the host name]
    #[arg(long)]
    name: Option<String>,
    /// TOML file: driver fields, `[core]` and `[agent]` (docs/driver.md) [default: none]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Core timer preset when no config file sets one [default: lan]
    #[arg(long, value_enum)]
    preset: Option<PresetArg>,
    /// Serve the HTTP API on this address (loopback unless a token is set) [default: none]
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Serve the same API on a second address, for Prometheus (/metrics) [default: none]
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Bearer token POST requests must carry; required off loopback [default: none]
    #[arg(long, env = "SWIM_HTTP_TOKEN", hide_env_values = true)]
    http_token: Option<String>,
    /// Write every input of the core to FILE, for `swim-sim replay FILE` [default: none]
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// tracing filter for stderr (also RUST_LOG) [default: info]
    #[arg(long, value_name = "FILTER")]
    log: Option<String>,
    /// Run CMD (sh -c) per member event with its JSON on stdin; `EVENT[,EVENT]=CMD` picks
    /// events (repeatable) [default: none]
    #[arg(long, value_name = "[EVENTS=]CMD")]
    event_handler: Vec<String>,
    /// Kill a handler still running after this long [default: 10s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    handler_timeout: Option<Duration>,
    /// Handlers running at once [default: 4]
    #[arg(long, value_name = "N")]
    handler_concurrency: Option<usize>,
    // Keys (issue 13).
    /// Encrypt with the keys in FILE (base64 or hex, one per line, the first primary; mode
    /// 600). The environment variable SWIM_KEYRING may hold them instead [default: none]
    #[arg(long, value_name = "FILE")]
    keyring_file: Option<PathBuf>,
    /// Only this network may talk to the node, as ADDR/LEN (repeatable; memberlist's
    /// CIDRsAllowed); others' packets are dropped and counted [default: every source]
    #[arg(long, value_name = "CIDR")]
    allowed_cidr: Vec<swim_tokio::cidr::Cidr>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PresetArg {
    Lan,
    Wan,
    Local,
}

fn parse_bind(s: &str) -> Result<(IpAddr, Option<u16>), String> {
    match (s.parse::<SocketAddr>(), s.parse::<IpAddr>()) {
        (Ok(a), _) => Ok((a.ip(), Some(a.port()))),
        (_, Ok(ip)) => Ok((ip, None)),
        _ => Err("want IP or IP:PORT".into()),
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    swim_proto::duration::parse(s).map_err(|e| format!("{e} (a duration such as 500ms or 10s)"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => run_agent(cli.agent),
        Some(Cmd::Agent(a)) => run_agent(*a),
        Some(Cmd::Keygen) => security::keygen(),
        Some(cmd) => client::client(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("swim-agent: {e}");
            ExitCode::from(2)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    // One node needs little: the node task, accept and connection tasks, the HTTP server.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))
}

/// Everything the agent runs with: the file's values with the flags over them.
#[derive(Clone, Debug)]
struct Settings {
    driver: DriverConfig,
    agent: AgentConfig,
}

fn settings(f: &AgentArgs) -> Result<Settings, String> {
    let (mut c, mut a, named) = match &f.config {
        Some(path) => {
            load_agent_file(path).map_err(|e| format!("--config {}: {e}", path.display()))?
        }
        None => (DriverConfig::default(), AgentConfig::default(), false),
    };
    if let Some(p) = f.preset {
        if f.config.is_some() {
            return Err("--preset: give the preset in the --config file instead".into());
        }
        c = DriverConfig::with_preset(match p {
            PresetArg::Lan => Preset::Lan,
            PresetArg::Wan => Preset::Wan,
            PresetArg::Local => Preset::Local,
        });
    }
    if let Some((ip, port)) = f.bind {
        c.bind = ip;
        if let Some(port) = port {
            c.port = port;
        }
    }
    if f.advertise.is_some() {
        c.advertise = f.advertise;
    }
    if !f.join.is_empty() {
        c.seeds = f.join.clone();
    }
    match &f.name {
        Some(n) => c.name = n.clone(),
        None if !named => c.name = swim_tokio::host_name(),
        None => {}
    }
    if let Some(r) = &f.record {
        c.record = Some(r.clone());
    }
    a.http = f.http.or(a.http);
    a.metrics = f.metrics.or(a.metrics);
    a.http_token = f.http_token.clone().or(a.http_token);
    a.log = f.log.clone().or(a.log);
    if !f.event_handler.is_empty() {
        a.event_handlers = f.event_handler.clone();
    }
    a.handler_timeout = f.handler_timeout.unwrap_or(a.handler_timeout);
    a.handler_concurrency = f.handler_concurrency.unwrap_or(a.handler_concurrency);
    security::apply_keyring(f.keyring_file.as_deref(), &mut c)?;
    if !f.allowed_cidr.is_empty() {
        c.allowed_cidrs = f.allowed_cidr.clone();
    }
    c.validate().map_err(|e| {
        let flag = match &e {
            swim_tokio::Error::Config { field, .. } if field.starts_with("seeds") => "--join",
            swim_tokio::Error::Config { field, .. } if field == "name" => "--name",
            swim_tokio::Error::Config { field, .. } if field == "advertise" => "--advertise",
            _ => "--config",
        };
        format!("{flag}: {e}")
    })?;
    a.handlers().map_err(|e| format!("event handlers: {e}"))?;
    Ok(Settings {
        driver: c,
        agent: a,
    })
}

type LogHandle =
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

fn filter_of(s: &Settings) -> Result<tracing_subscriber::EnvFilter, String> {
    let text = s
        .agent
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into());
    tracing_subscriber::EnvFilter::try_new(&text).map_err(|e| format!("--log {text:?}: {e}"))
}

fn run_agent(f: AgentArgs) -> Result<ExitCode, String> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let s = settings(&f)?;
    let (filter, log) = tracing_subscriber::reload::Layer::new(filter_of(&s)?);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .init();
    security::warn_if_exposed(&s.driver);
    let mut api = ApiConfig::default();
    api.token = s.agent.http_token.clone();
    api.expect_peers = !s.driver.seeds.is_empty();
    let http = [("--http", s.agent.http), ("--metrics", s.agent.metrics)];
    for (flag, addr) in http {
        if let Some(addr) = addr {
            api.check_bind(addr).map_err(|e| format!("{flag}: {e}"))?;
        }
    }
    runtime()?.block_on(async move {
        let mut servers = Vec::new();
        for (flag, addr) in http {
            if let Some(addr) = addr {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("{flag} {addr}: {e}"))?;
                servers.push(l);
            }
        }
        let (cluster, mut events) = Cluster::start_subscribed(s.driver.clone())
            .await
            .map_err(|e| e.to_string())?;
        let span = tracing::info_span!("swim", node = %cluster.name());
        async move {
            let d = &s.driver;
            tracing::info!(
                name = cluster.name(),
                bind = %SocketAddr::new(d.bind, d.port),
                advertise = %cluster.addr(),
                seeds = ?d.seeds,
                preset = ?d.preset,
                encryption = if d.core.keyring.is_some() { "on" } else { "off" },
                http = ?s.agent.http,
                "swim-agent {} started",
                env!("CARGO_PKG_VERSION"),
            );
            let (reload_tx, reload_rx) = mpsc::channel::<ReloadRequest>(4);
            api.reload = Some(reload_tx);
            for l in servers {
                let serve = swim_tokio::control::serve(l, cluster.clone(), api.clone());
                tokio::spawn(serve.in_current_span());
            }
            let (handlers_tx, handlers_rx) =
                watch::channel(s.agent.handlers().map_err(|e| e.to_string())?);
            swim_tokio::handlers::spawn(&cluster, handlers_rx);
            // Lifecycle lines (issue 14): `started` first, `stopped` last.
            let lifecycle_line = |event: &str| {
                json!({
                    "ts_ms": unix_ms(), "event": event,
                    "node": cluster.name(), "addr": cluster.addr().to_string(),
                })
            };
            let _ = writeln!(std::io::stdout().lock(), "{}", lifecycle_line("started"));
            let printer = tokio::spawn(async move {
                while let Some(item) = events.recv().await {
                    let line = match item {
                        ClusterEvent::Event(e) => event_json(&e),
                        ClusterEvent::Lagged(n) => json!({
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
            let reloader = Reloader {
                cluster: cluster.clone(),
                args: f,
                running: s,
                log,
                handlers: handlers_tx,
            };
            tokio::select! {
                r = reloader.until_shutdown(reload_rx) => r?,
                // The node refused to run (a duplicate name, issue 15): exit with its reason.
                e = cluster.stopped() => {
                    let _ = printer.await;
                    return Err(e.to_string());
                }
            }
            tracing::info!("signal received; leaving");
            if let Err(e) = cluster.leave().await {
                tracing::warn!(error = %e, "leave incomplete");
            }
            let _ = cluster.shutdown().await;
            let _ = printer.await;
            let _ = writeln!(std::io::stdout().lock(), "{}", lifecycle_line("stopped"));
            Ok(ExitCode::SUCCESS)
        }
        .instrument(span)
        .await
    })
}

/// Applies reloads (SIGHUP, `POST /reload`) until SIGTERM or SIGINT.
struct Reloader {
    cluster: Cluster,
    args: AgentArgs,
    running: Settings,
    log: LogHandle,
    handlers: watch::Sender<HandlerConfig>,
}

impl Reloader {
    async fn until_shutdown(
        mut self,
        mut api: mpsc::Receiver<ReloadRequest>,
    ) -> Result<(), String> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let install =
                |k: SignalKind, n: &str| signal(k).map_err(|e| format!("installing {n}: {e}"));
            let mut term = install(SignalKind::terminate(), "SIGTERM")?;
            let mut int = install(SignalKind::interrupt(), "SIGINT")?;
            let mut hup = install(SignalKind::hangup(), "SIGHUP")?;
            loop {
                tokio::select! {
                    _ = term.recv() => return Ok(()),
                    _ = int.recv() => return Ok(()),
                    _ = hup.recv() => { let _ = self.reload().await; }
                    Some(reply) = api.recv() => { let _ = reply.send(self.reload().await); }
                }
            }
        }
        #[cfg(not(unix))]
        loop {
            tokio::select! {
                r = tokio::signal::ctrl_c() => {
                    return r.map_err(|e| format!("installing Ctrl-C: {e}"));
                }
                Some(reply) = api.recv() => { let _ = reply.send(self.reload().await); }
            }
        }
    }

    /// Re-reads the config file with the same flags over it. Applies the log filter, the event
    /// handlers and the `[core]` table (and `preset`, which underlies it) through
    /// [`Cluster::reconfigure`]; names every other changed field in a warning and keeps it as
    /// it was. A core config the node refuses rejects the whole reload, changing nothing.
    async fn reload(&mut self) -> Result<Value, String> {
        let r = async {
            let new = settings(&self.args)?;
            let mut refused = changed_fields(&self.running.driver, &new.driver);
            let mut applied = Vec::new();
            // Everything that can fail is checked before anything is applied.
            let filter = if new.agent.log != self.running.agent.log {
                Some(filter_of(&new)?)
            } else {
                None
            };
            let mut h = new.agent.handlers().map_err(|e| e.to_string())?;
            h.queue = self.running.agent.handler_queue;
            if refused.iter().any(|f| f == "core") {
                let fixed = self
                    .cluster
                    .reconfigure(new.driver.core.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                let mut core = new.driver.core.clone();
                core.keyring = self.running.driver.core.keyring.clone();
                core.start_incarnation = self.running.driver.core.start_incarnation;
                core.max_stream_message_size = self.running.driver.core.max_stream_message_size;
                self.running.driver.core = core;
                self.running.driver.preset = new.driver.preset;
                refused.retain(|f| f != "core" && f != "preset");
                refused.extend(fixed.iter().map(|f| format!("core.{f}")));
                applied.push("core");
            }
            let (old_a, new_a) = (&self.running.agent, &new.agent);
            for (field, changed) in [
                ("agent.http", old_a.http != new_a.http),
                ("agent.metrics", old_a.metrics != new_a.metrics),
                ("agent.http_token", old_a.http_token != new_a.http_token),
                (
                    "agent.handler_queue",
                    old_a.handler_queue != new_a.handler_queue,
                ),
            ] {
                if changed {
                    refused.push(field.into());
                }
            }
            if let Some(filter) = filter {
                self.log
                    .reload(filter)
                    .map_err(|e| format!("log filter: {e}"))?;
                applied.push("agent.log");
            }
            if h != *self.handlers.borrow() {
                self.handlers.send_replace(h);
                applied.push("agent.event_handlers");
            }
            if !refused.is_empty() {
                tracing::warn!(
                    fields = ?refused,
                    "reload: these fields cannot change at run time and keep their running values; restart to apply them"
                );
            }
            tracing::info!(?applied, "configuration reloaded");
            self.running.agent.log = new_a.log.clone();
            self.running.agent.event_handlers = new_a.event_handlers.clone();
            self.running.agent.handler_timeout = new_a.handler_timeout;
            self.running.agent.handler_concurrency = new_a.handler_concurrency;
            Ok(json!({ "applied": applied, "refused": refused }))
        }
        .await;
        if let Err(e) = &r {
            tracing::warn!(error = %e, "reload rejected; the running configuration is unchanged");
        }
        r
    }
}
