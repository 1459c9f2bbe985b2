//! Driver configuration: the core's [`swim_proto::Config`] plus sockets, seeds, timeouts and
//! queue bounds, read from TOML with errors that name the field.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use swim_proto::duration;

use crate::error::Error;

/// The port SWIM uses by default (memberlist's), for UDP and TCP alike.
pub const DEFAULT_PORT: u16 = 7946;

/// Which core preset the `[core]` table starts from (fields written in `[core]` override it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Preset {
    /// [`swim_proto::Config::lan`]: probe every 1 s, 500 ms timeout.
    #[default]
    Lan,
    /// [`swim_proto::Config::wan`]: probe every 5 s, 3 s timeout.
    Wan,
    /// [`swim_proto::Config::local`]: one host or a test; 1 s probes, 200 ms timeout.
    Local,
}

impl Preset {
    /// The core configuration of this preset.
    pub fn config(self) -> swim_proto::Config {
        match self {
            Preset::Lan => swim_proto::Config::lan(),
            Preset::Wan => swim_proto::Config::wan(),
            Preset::Local => swim_proto::Config::local(),
        }
    }
}

/// Everything [`Cluster::start`](crate::Cluster::start) needs. Missing TOML fields take the
/// defaults below; unknown fields are rejected by name. Durations are strings such as `"500ms"`.
///
/// Every queue the driver keeps is bounded by one of these fields; the doc of each says what
/// happens at the bound.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DriverConfig {
    /// IP address the UDP socket and the TCP listener bind. Default `127.0.0.1`.
    pub bind: IpAddr,
    /// Port for both UDP and TCP. `0` picks a free ephemeral port (tests). Default 7946.
    pub port: u16,
    /// Address announced to other members. Default: `bind:port` (the bound port when `port` is
    /// 0). Required when `bind` is unspecified (`0.0.0.0` or `::`).
    pub advertise: Option<SocketAddr>,
    /// Seeds to join through, as `host:port`; resolved by DNS at join and again on every rejoin
    /// attempt of the core. Default none: the node starts alone until told to join.
    pub seeds: Vec<String>,
    /// Node name, unique in the cluster. `"auto"` generates `<hostname>-<8 hex digits>` from OS
    /// randomness. Default `"auto"`.
    pub name: String,
    /// Initial metadata announced with the node (UTF-8 text). Default empty.
    pub metadata: String,
    /// Which core preset `[core]` starts from: `"lan"`, `"wan"` or `"local"`. Default `"lan"`.
    pub preset: Preset,
    /// Longest wait for an outgoing TCP connection. A stream message that cannot be connected
    /// in time is dropped and counted; the core retries on its own timers. Default 2 s.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// Longest time one stream message may take to arrive whole (inbound) or to be written
    /// (outbound). A peer that stalls is disconnected at this bound. Default 5 s.
    #[serde(with = "duration")]
    pub stream_timeout: Duration,
    /// Inbound TCP connections served at once; more are closed on accept and counted. With
    /// `core.max_stream_message_size` this bounds inbound memory. Default 64.
    pub max_connections: usize,
    /// Inbound TCP connections served at once from one source IP address; more are closed on
    /// accept and counted (`connections_refused_per_source`), so one source holding connections
    /// open (each for up to `stream_timeout`) cannot take every slot and keep joiners out
    /// (issue 13). A value above `max_connections` acts as `max_connections`. Default 8.
    pub max_connections_per_source: usize,
    /// Outbound stream messages in flight at once; more are dropped and counted. Default 64.
    pub max_outbound_streams: usize,
    /// Received stream messages waiting for the node task; connection tasks wait (holding their
    /// connection slot) while it is full. Default 64.
    pub stream_queue: usize,
    /// Commands from handles waiting for the node task; callers wait while it is full.
    /// Default 256.
    pub command_queue: usize,
    /// Events buffered per subscriber; a subscriber further behind loses the oldest and gets a
    /// [`Lagged`](crate::ClusterEvent::Lagged) marker. The node never waits. Default 1024.
    pub event_buffer: usize,
    /// Requested UDP receive buffer (`SO_RCVBUF`) in bytes; `0` keeps the OS default. The
    /// kernel may cap it (`net.core.rmem_max`). Default 4 MiB.
    pub udp_recv_buffer: usize,
    /// How long [`Cluster::leave`](crate::Cluster::leave) waits for the departure to be
    /// disseminated. Default 5 s.
    #[serde(with = "duration")]
    pub leave_timeout: Duration,
    /// Write every `(now, input)` fed to the core to this file in `swim-sim`'s trace format, for
    /// `swim-sim replay`. Default none.
    pub record: Option<PathBuf>,
    /// The protocol core's configuration (`[core]` in TOML), starting from `preset`.
    pub core: swim_proto::Config,
    // Abuse resistance (issue 13).
    /// Networks allowed to talk to this node (memberlist's `CIDRsAllowed`), such as
    /// `["10.0.0.0/8"]`: datagrams and stream connections from other source addresses are
    /// dropped and counted (`datagrams_refused_source`, `connections_refused_source`) before
    /// the core sees them. Default empty: every source is allowed.
    pub allowed_cidrs: Vec<crate::cidr::Cidr>,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: DEFAULT_PORT,
            advertise: None,
            seeds: Vec::new(),
            name: "auto".into(),
            metadata: String::new(),
            preset: Preset::Lan,
            connect_timeout: Duration::from_secs(2),
            stream_timeout: Duration::from_secs(5),
            max_connections: 64,
            max_connections_per_source: 8,
            max_outbound_streams: 64,
            stream_queue: 64,
            command_queue: 256,
            event_buffer: 1024,
            udp_recv_buffer: 4 << 20,
            leave_timeout: Duration::from_secs(5),
            record: None,
            core: swim_proto::Config::lan(),
            allowed_cidrs: Vec::new(),
        }
    }
}

impl DriverConfig {
    /// Defaults with the core taken from `preset`.
    pub fn with_preset(preset: Preset) -> Self {
        DriverConfig {
            preset,
            core: preset.config(),
            ..DriverConfig::default()
        }
    }

    /// Parses a TOML document and validates it. Errors name the field (`core.probe_timeout`)
    /// and, for syntax and type errors, show the offending line.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let mut config: DriverConfig = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        if config.preset != Preset::Lan {
            // `[core]` fields default to `lan()` above; redo `[core]` over the chosen preset.
            // The first pass already checked every value written, so this cannot fail on them.
            let raw: toml::Table = text.parse().map_err(|e| toml_error(text, &e))?;
            let mut core = toml::Table::try_from(config.preset.config())
                .map_err(|e| Error::config("core", e.to_string()))?;
            if let Some(toml::Value::Table(user)) = raw.get("core") {
                core.extend(user.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            config.core = core
                .try_into()
                .map_err(|e: toml::de::Error| Error::config("core", e.message().to_string()))?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a TOML file (see [`DriverConfig::from_toml`]).
    pub fn from_file(path: &std::path::Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            what: format!("reading config file {}", path.display()),
            source: e,
        })?;
        DriverConfig::from_toml(&text).map_err(|e| match e {
            Error::Config { field, problem } => Error::Config {
                field,
                problem: format!("{problem} (in {})", path.display()),
            },
            other => other,
        })
    }

    /// Checks every field, the core's included, and names the first one out of range.
    pub fn validate(&self) -> Result<(), Error> {
        fn positive(field: &str, v: usize) -> Result<(), Error> {
            if v == 0 {
                return Err(Error::config(field, "must be at least 1"));
            }
            Ok(())
        }
        fn nonzero(field: &str, d: Duration) -> Result<(), Error> {
            if d.is_zero() {
                return Err(Error::config(field, "must be greater than zero"));
            }
            Ok(())
        }
        self.core
            .validate()
            .map_err(|e| Error::config(&format!("core.{}", e.field), e.problem))?;
        if self.bind.is_unspecified() && self.advertise.is_none() {
            return Err(Error::config(
                "advertise",
                "is required when bind is 0.0.0.0 or :: (other members need a reachable address)",
            ));
        }
        if let Some(a) = self.advertise
            && (a.ip().is_unspecified() || a.port() == 0)
        {
            return Err(Error::config(
                "advertise",
                format!("{a} is not an address others can reach"),
            ));
        }
        if self.name != "auto" {
            swim_proto::NodeName::new(&self.name)
                .map_err(|e| Error::config("name", e.to_string()))?;
            if self.name.len() > self.core.max_name_len {
                return Err(Error::config(
                    "name",
                    format!(
                        "is {} bytes, longer than core.max_name_len ({})",
                        self.name.len(),
                        self.core.max_name_len
                    ),
                ));
            }
        }
        if self.metadata.len() > self.core.max_meta_len {
            return Err(Error::config(
                "metadata",
                format!(
                    "is {} bytes, longer than core.max_meta_len ({})",
                    self.metadata.len(),
                    self.core.max_meta_len
                ),
            ));
        }
        for (i, s) in self.seeds.iter().enumerate() {
            if split_host_port(s).is_none() {
                return Err(Error::config(
                    &format!("seeds[{i}]"),
                    format!("{s:?} is not host:port"),
                ));
            }
        }
        nonzero("connect_timeout", self.connect_timeout)?;
        nonzero("stream_timeout", self.stream_timeout)?;
        nonzero("leave_timeout", self.leave_timeout)?;
        positive("max_connections", self.max_connections)?;
        positive(
            "max_connections_per_source",
            self.max_connections_per_source,
        )?;
        positive("max_outbound_streams", self.max_outbound_streams)?;
        positive("stream_queue", self.stream_queue)?;
        positive("command_queue", self.command_queue)?;
        positive("event_buffer", self.event_buffer)?;
        if self.event_buffer > 1 << 20 {
            return Err(Error::config("event_buffer", "must be at most 1048576"));
        }
        Ok(())
    }
}

/// `host:port` with a non-empty host and a numeric port (`[v6]:port` allowed).
pub(crate) fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then_some((host, port))
}

/// A TOML error as [`Error::Config`], naming the dotted key at the error's position.
pub(crate) fn toml_error(text: &str, e: &toml::de::Error) -> Error {
    let field = e
        .span()
        .and_then(|span| key_at(text, span.start))
        .unwrap_or_else(|| "(file)".into());
    Error::Config {
        field,
        problem: e.to_string().trim_end().to_string(),
    }
}

/// The dotted key (`core.probe_interval`) on the line holding byte `pos`: the key before `=`
/// on that line, under the last `[table]` header above it.
fn key_at(text: &str, pos: usize) -> Option<String> {
    let pos = pos.min(text.len());
    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .or_else(|| {
            let l = line.trim();
            l.starts_with('[')
                .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
        })?;
    Some(match table {
        Some(t) if !line.trim().starts_with('[') => format!("{t}.{key}"),
        _ => key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(text: &str) -> String {
        match DriverConfig::from_toml(text) {
            Err(Error::Config { field, .. }) => field,
            other => panic!("expected a config error for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = DriverConfig::from_toml("").unwrap();
        assert_eq!(c, DriverConfig::default());
        assert_eq!(c.port, 7946);
        assert_eq!(c.name, "auto");
        assert_eq!(c.core, swim_proto::Config::lan());
    }

    #[test]
    fn a_full_file_parses_and_preset_underlies_core() {
        let c = DriverConfig::from_toml(
            r#"
            bind = "127.0.0.2"
            port = 8000
            seeds = ["127.0.0.1:7946", "localhost:7947"]
            name = "web-1"
            preset = "local"
            leave_timeout = "2s"
            max_connections = 8
            [core]
            probe_interval = "300ms"
            cluster_label = "prod"
            "#,
        )
        .unwrap();
        assert_eq!(c.bind, "127.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(c.port, 8000);
        assert_eq!(c.seeds.len(), 2);
        assert_eq!(c.leave_timeout, Duration::from_secs(2));
        assert_eq!(c.core.probe_interval, Duration::from_millis(300));
        assert_eq!(c.core.cluster_label, "prod");
        // Not written: from the `local` preset, not `lan`.
        assert_eq!(
            c.core.probe_timeout,
            swim_proto::Config::local().probe_timeout
        );
        assert_eq!(c.core.suspicion_mult, 3);
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of("port = 70000"), "port");
        assert_eq!(field_of("bogus = 1"), "bogus");
        assert_eq!(
            field_of("[core]\nprobe_interval = 5"),
            "core.probe_interval"
        );
        assert_eq!(
            field_of("[core]\nprobe_intervl = \"1s\""),
            "core.probe_intervl"
        );
        assert_eq!(
            field_of("[core]\nprobe_timeout = \"2s\""),
            "core.probe_timeout"
        );
        assert_eq!(field_of("leave_timeout = \"0s\""), "leave_timeout");
        assert_eq!(field_of("max_connections = 0"), "max_connections");
        assert_eq!(field_of("seeds = [\"nohost\"]"), "seeds[0]");
        assert_eq!(field_of("bind = \"0.0.0.0\""), "advertise");
        assert_eq!(field_of("bind = \"not-an-ip\""), "bind");
        assert_eq!(field_of("name = \"\""), "name");
        assert_eq!(field_of("preset = \"moon\""), "preset");
        let e = DriverConfig::from_toml("[core]\nprobe_timeout = \"2s\"").unwrap_err();
        assert!(e.to_string().contains("core.probe_timeout"), "{e}");
    }

    #[test]
    fn host_port_splits() {
        assert_eq!(split_host_port("a:1"), Some(("a", 1)));
        assert_eq!(split_host_port("[::1]:7946"), Some(("::1", 7946)));
        assert_eq!(split_host_port("a"), None);
        assert_eq!(split_host_port(":80"), None);
        assert_eq!(split_host_port("a:99999"), None);
    }
}
