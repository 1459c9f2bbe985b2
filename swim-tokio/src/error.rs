//! The driver's error type: each variant names the field, address or operation at fault.

use std::fmt;

/// What can go wrong starting or using a [`Cluster`](crate::Cluster). None of these is caused
/// by a peer: bad packets and connections are dropped and counted, never returned.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid; nothing was started.
    Config {
        /// The field, dotted for nested tables (`core.probe_timeout`, `seeds[2]`).
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A socket or file operation failed.
    Io {
        /// What the driver was doing (`binding UDP 127.0.0.1:7946`).
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// No seed resolved to an address; the node's state is unchanged.
    Resolve {
        /// Each seed and why it failed.
        failures: Vec<(String, String)>,
    },
    /// The core rejected a command; its state is unchanged.
    Command(swim_proto::CommandError),
    /// `leave` gave up waiting for the departure to be disseminated. The node has left (it
    /// answers nothing as a member) but some members may learn of it only by probing.
    LeaveTimeout,
    /// The node task has stopped (after `shutdown`, or the runtime is gone).
    Shutdown,
}

impl Error {
    pub(crate) fn config(field: &str, problem: impl Into<String>) -> Self {
        Error::Config {
            field: field.to_string(),
            problem: problem.into(),
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config { field, problem } => {
                write!(f, "invalid config field `{field}`: {problem}")
            }
            Error::Io { what, source } => write!(f, "{what}: {source}"),
            Error::Resolve { failures } => {
                f.write_str("no seed could be resolved:")?;
                for (seed, why) in failures {
                    write!(f, " {seed} ({why});")?;
                }
                Ok(())
            }
            Error::Command(e) => write!(f, "command rejected: {e}"),
            Error::LeaveTimeout => {
                f.write_str("leave timed out before the departure was disseminated")
            }
            Error::Shutdown => f.write_str("the cluster node has shut down"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Command(e) => Some(e),
            _ => None,
        }
    }
}
