//! The `[agent]` table of a `swim-agent` config file: what the agent binary adds around a
//! [`DriverConfig`] (HTTP API, log filter, event handlers), and which of it a reload may change.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use swim_proto::duration;

use crate::config::DriverConfig;
use crate::error::Error;
use crate::handlers::HandlerConfig;

/// The `[agent]` table. Every field is optional; command-line flags override it. Fields marked
/// *reloadable* take effect on `SIGHUP` or `POST /reload`; the others are named in a log line
/// and kept as they were.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AgentConfig {
    /// Address of the HTTP control API (`--http`). Default none (no API).
    pub http: Option<SocketAddr>,
    /// A second listener for the same API, for Prometheus (`--metrics`). Default none.
    pub metrics: Option<SocketAddr>,
    /// Bearer token for POST requests (`--http-token`, env `SWIM_HTTP_TOKEN`). Required when
    /// the API is bound off loopback. Default none.
    pub http_token: Option<String>,
    /// tracing filter for stderr (`--log`, env `RUST_LOG`). Default `"info"`. Reloadable.
    pub log: Option<String>,
    /// Commands run for events (`--event-handler`), each `CMD` (member events) or
    /// `EVENT[,EVENT...]=CMD`. Reloadable.
    pub event_handlers: Vec<String>,
    /// Longest a handler may run before it is killed (`--handler-timeout`). Default 10 s.
    /// Reloadable.
    #[serde(with = "duration")]
    pub handler_timeout: Duration,
    /// Handlers running at once (`--handler-concurrency`). Default 4. Reloadable.
    pub handler_concurrency: usize,
    /// Handler runs waiting for a slot; more are dropped with a warning. Default 256.
    pub handler_queue: usize,
}

impl Default for AgentConfig {
    /// No API, default log filter, no handlers, handler bounds as [`HandlerConfig::default`].
    fn default() -> Self {
        let h = HandlerConfig::default();
        AgentConfig {
            http: None,
            metrics: None,
            http_token: None,
            log: None,
            event_handlers: Vec::new(),
            handler_timeout: h.timeout,
            handler_concurrency: h.concurrency,
            handler_queue: h.queue,
        }
    }
}

impl AgentConfig {
    /// The event-handler settings of this table.
    pub fn handlers(&self) -> Result<HandlerConfig, Error> {
        let h = HandlerConfig {
            commands: self.event_handlers.clone(),
            timeout: self.handler_timeout,
            concurrency: self.handler_concurrency,
            queue: self.handler_queue,
        };
        h.validate()?;
        Ok(h)
    }
}

#[derive(Deserialize)]
struct OnlyAgent {
    #[serde(default)]
    agent: AgentConfig,
}

/// Reads a `swim-agent` config file: the driver's fields and `[core]` (see
/// [`DriverConfig::from_toml`]) plus an `[agent]` table. Errors name the field
/// (`agent.handler_timeout`, `core.probe_timeout`). Also returns whether the file sets `name`
/// (the agent's default name is then not the host name).
pub fn load_agent_file(path: &Path) -> Result<(DriverConfig, AgentConfig, bool), Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading config file {}", path.display()), e))?;
    let in_file = |e: Error| match e {
        Error::Config { field, problem } => Error::Config {
            field,
            problem: format!("{problem} (in {})", path.display()),
        },
        other => other,
    };
    let agent: OnlyAgent =
        toml::from_str(&text).map_err(|e| in_file(crate::config::toml_error(&text, &e)))?;
    let driver = DriverConfig::from_toml(&blank_table(&text, "agent")).map_err(in_file)?;
    let names = text
        .parse::<toml::Table>()
        .map(|t| t.contains_key("name"))
        .unwrap_or(false);
    Ok((driver, agent.agent, names))
}

/// `text` with the lines of table `[name]` (and its sub-tables) blanked out, byte offsets kept
/// so that errors in the rest still point at the right line.
fn blank_table(text: &str, name: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with('[') {
            let header = t.trim_matches(|c| c == '[' || c == ']').trim();
            inside = header == name || header.starts_with(&format!("{name}."));
        }
        if inside {
            out.extend(line.chars().map(|c| if c == '\n' { '\n' } else { ' ' }));
        } else {
            out.push_str(line);
        }
    }
    out
}

/// The top-level fields of two driver configs that differ (`core` counts as one), in order:
/// what a reload cannot change at run time.
pub fn changed_fields(old: &DriverConfig, new: &DriverConfig) -> Vec<String> {
    let table = |c: &DriverConfig| toml::Table::try_from(c).unwrap_or_default();
    let (a, b) = (table(old), table(new));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<(DriverConfig, AgentConfig, bool), Error> {
        let path = std::env::temp_dir().join(format!(
            "swim-agent-table-{}-{}.toml",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&path, text).unwrap();
        let r = load_agent_file(&path);
        std::fs::remove_file(&path).ok();
        r
    }

    #[test]
    fn the_agent_table_parses_beside_the_driver_fields() {
        let (d, a, named) = load(
            "port = 8000\n[agent]\nlog = \"debug\"\nevent_handlers = [\"cat\"]\nhandler_timeout = \"2s\"\n[core]\nprobe_interval = \"2s\"\n",
        )
        .unwrap();
        assert_eq!(d.port, 8000);
        assert_eq!(d.core.probe_interval, Duration::from_secs(2));
        assert_eq!(a.log.as_deref(), Some("debug"));
        assert_eq!(a.handler_timeout, Duration::from_secs(2));
        assert_eq!(
            a.handler_concurrency, 4,
            "unwritten fields keep their defaults"
        );
        assert!(!named);
    }

    #[test]
    fn errors_name_the_field_inside_and_outside_the_agent_table() {
        let field = |text: &str| match load(text) {
            Err(Error::Config { field, .. }) => field,
            other => panic!("{text:?}: {other:?}"),
        };
        assert_eq!(
            field("[agent]\nhandler_timeout = 5\n"),
            "agent.handler_timeout"
        );
        assert_eq!(field("[agent]\nbogus = 1\n"), "agent.bogus");
        assert_eq!(
            field("[agent]\nlog = \"x\"\n[core]\nprobe_timeout = \"5s\"\n"),
            "core.probe_timeout"
        );
        assert_eq!(field("max_conections = 3\n[agent]\n"), "max_conections");
    }

    #[test]
    fn changed_fields_names_what_differs() {
        let a = DriverConfig::default();
        let mut b = a.clone();
        b.port = 1;
        b.core.probe_interval = Duration::from_secs(9);
        assert_eq!(changed_fields(&a, &b), ["core", "port"]);
        assert!(changed_fields(&a, &a).is_empty());
    }
}
