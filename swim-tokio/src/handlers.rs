//! Event handlers, as Serf's `-event-handler`: a shell command run for each matching event,
//! with the event's JSON line on its standard input.
//!
//! Bounded: at most [`HandlerConfig::concurrency`] commands run at once, at most
//! [`HandlerConfig::queue`] runs wait for a slot (more are dropped with a warning), and a
//! command still running after [`HandlerConfig::timeout`] is killed. The node never waits for
//! a handler: runs are fed from an event subscription, which lags (and says so) rather than
//! blocking the node.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use crate::error::Error;
use crate::events::{ClusterEvent, event_json, event_name};
use crate::handle::Cluster;

/// The largest [`HandlerConfig::concurrency`].
pub const MAX_CONCURRENCY: usize = 1024;

/// Which commands run for which events, and their bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandlerConfig {
    /// Each `CMD` (run for every `member_*` event) or `EVENT[,EVENT...]=CMD` (run for the named
    /// events, any event name of the JSON output, or `*` for all). Run with `sh -c`.
    pub commands: Vec<String>,
    /// A command still running after this is killed and a warning logged. Default 10 s.
    pub timeout: Duration,
    /// Commands running at once, at most [`MAX_CONCURRENCY`]. Default 4.
    pub concurrency: usize,
    /// Runs waiting for a free slot; further runs are dropped with a warning. Default 256.
    pub queue: usize,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        HandlerConfig {
            commands: Vec::new(),
            timeout: Duration::from_secs(10),
            concurrency: 4,
            queue: 256,
        }
    }
}

impl HandlerConfig {
    /// Checks the bounds and every command's form, naming the offending field.
    pub fn validate(&self) -> Result<(), Error> {
        if self.timeout.is_zero() {
            return Err(Error::config(
                "agent.handler_timeout",
                "must be greater than zero",
            ));
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(Error::config(
                "agent.handler_concurrency",
                format!("must be within 1..={MAX_CONCURRENCY}"),
            ));
        }
        if self.queue == 0 {
            return Err(Error::config("agent.handler_queue", "must be at least 1"));
        }
        for (i, c) in self.commands.iter().enumerate() {
            if parse_handler(c).1.trim().is_empty() {
                return Err(Error::config(
                    &format!("agent.event_handlers[{i}]"),
                    format!("{c:?} has no command"),
                ));
            }
        }
        Ok(())
    }
}

/// `EVENT[,EVENT...]=CMD` into its filter (empty: member events) and command. A `=` only
/// counts as a filter separator when everything before it looks like event names.
fn parse_handler(spec: &str) -> (Vec<&str>, &str) {
    if let Some((filter, cmd)) = spec.split_once('=') {
        let names: Vec<&str> = filter.split(',').map(str::trim).collect();
        if names.iter().all(|n| {
            *n == "*" || (!n.is_empty() && n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        }) {
            return (names, cmd);
        }
    }
    (Vec::new(), spec)
}

fn matches(filter: &[&str], event: &str) -> bool {
    if filter.is_empty() {
        event.starts_with("member_")
    } else {
        filter.iter().any(|f| *f == "*" || *f == event)
    }
}

/// Runs the handlers of `config` for `cluster`'s events until the node stops. The settings
/// can be replaced at run time through the watch channel (a reload); the queue bound is
/// fixed at start.
pub fn spawn(cluster: &Cluster, config: watch::Receiver<HandlerConfig>) -> JoinHandle<()> {
    let mut events = cluster.subscribe();
    let node = cluster.name().to_string();
    let (tx, mut rx) = mpsc::channel::<(String, String, Value)>(config.borrow().queue);
    let runner_config = config.clone();
    let runner = async move {
        let mut running = JoinSet::new();
        while let Some((name, cmd, line)) = rx.recv().await {
            // Reap finished runs, then wait for a slot; the bound is read at each run, so a
            // reload takes effect at once.
            while running.try_join_next().is_some() {}
            while running.len() >= runner_config.borrow().concurrency {
                running.join_next().await;
            }
            let timeout = runner_config.borrow().timeout;
            let node = node.clone();
            running.spawn(
                async move { run_one(&node, &name, &cmd, &line, timeout).await }.in_current_span(),
            );
        }
    };
    tokio::spawn(runner.in_current_span());
    tokio::spawn(
        async move {
            while let Some(item) = events.recv().await {
                let e = match item {
                    ClusterEvent::Event(e) => e,
                    ClusterEvent::Lagged(n) => {
                        tracing::warn!(missed = n, "event handlers fell behind; events skipped");
                        continue;
                    }
                };
                let commands = config.borrow().commands.clone();
                let name = event_name(&e.event);
                let line = event_json(&e);
                for spec in &commands {
                    let (filter, cmd) = parse_handler(spec);
                    if !matches(&filter, name) {
                        continue;
                    }
                    if tx
                        .try_send((name.to_string(), cmd.to_string(), line.clone()))
                        .is_err()
                    {
                        tracing::warn!(
                            event = name,
                            command = cmd,
                            "event handler queue full; run dropped"
                        );
                    }
                }
            }
        }
        .in_current_span(),
    )
}

/// Runs one command with the event on stdin; logs a failure, a non-zero exit or a timeout.
async fn run_one(node: &str, event: &str, cmd: &str, line: &Value, timeout: Duration) {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("SWIM_EVENT", event)
        .env("SWIM_SELF_NAME", node)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(command = cmd, error = %e, "event handler did not start");
            return;
        }
    };
    let input = format!("{line}\n");
    let run = async {
        if let Some(mut stdin) = child.stdin.take() {
            // A handler that does not read its input is not an error.
            let _ = stdin.write_all(input.as_bytes()).await;
        }
        child.wait().await
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(status)) if status.success() => {
            tracing::debug!(command = cmd, event, "event handler done")
        }
        Ok(Ok(status)) => tracing::warn!(command = cmd, event, %status, "event handler failed"),
        Ok(Err(e)) => tracing::warn!(command = cmd, event, error = %e, "event handler failed"),
        Err(_) => {
            let _ = child.kill().await;
            tracing::warn!(
                command = cmd,
                event,
                ?timeout,
                "event handler timed out; killed"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_select_events() {
        assert_eq!(parse_handler("logger x"), (vec![], "logger x"));
        assert_eq!(
            parse_handler("member_failed,member_left=notify.sh"),
            (vec!["member_failed", "member_left"], "notify.sh")
        );
        assert_eq!(parse_handler("FOO=1 cmd"), (vec![], "FOO=1 cmd"));
        assert!(matches(&[], "member_joined"));
        assert!(!matches(&[], "state_changed"));
        assert!(matches(&["*"], "state_changed"));
        assert!(!matches(&["member_failed"], "member_left"));
    }

    #[test]
    fn bad_settings_are_named() {
        let mut c = HandlerConfig {
            commands: vec!["member_failed=".into()],
            ..HandlerConfig::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("event_handlers[0]")
        );
        c.commands.clear();
        c.concurrency = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("handler_concurrency")
        );
    }
}
