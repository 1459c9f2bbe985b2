//! The driver's error type: each variant names the field, address or operation at fault.

/// What can go wrong starting or using a [`Cluster`](crate::Cluster). None of these is caused
/// by a peer: bad packets and connections are dropped and counted, never returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid; nothing was started.
    #[error("invalid config field `{field}`: {problem}")]
    Config {
        /// The field, dotted for nested tables (`core.probe_timeout`, `seeds[2]`).
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A socket or file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What the driver was doing (`binding UDP 127.0.0.1:7946`).
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// No seed resolved to an address; the node's state is unchanged.
    #[error("no seed could be resolved:{}", failures_text(.failures))]
    Resolve {
        /// Each seed and why it failed.
        failures: Vec<(String, String)>,
    },
    /// The core rejected a command; its state is unchanged.
    #[error("command rejected: {0}")]
    Command(#[source] swim_proto::CommandError),
    /// `leave` gave up waiting for the departure to be disseminated. The node has left (it
    /// answers nothing as a member) but some members may learn of it only by probing.
    #[error("leave timed out before the departure was disseminated")]
    LeaveTimeout,
    /// The node task has stopped (after `shutdown`, or the runtime is gone).
    #[error("the cluster node has shut down")]
    Shutdown,
    // Lifecycle and bootstrap (issue 14).
    /// The join gave up (`join.max_duration` passed with no seed answering); the node is back
    /// to `starting` and contacts no seed until the next join.
    #[error("join failed ({reason:?}) after {attempts} attempts")]
    JoinFailed {
        /// Why.
        reason: swim_proto::JoinFailure,
        /// Join attempts made.
        attempts: u64,
    },
    // --- duplicate names (issue 15) ---
    /// The node stopped while joining: its name is already alive at another address (another
    /// process uses it). Nothing was announced under the name; choose another one.
    #[error(
        "node name {name:?} is already alive at {addr} (another process uses it); choose another name"
    )]
    NameTaken {
        /// The name.
        name: String,
        /// The address of the member already using it.
        addr: std::net::SocketAddr,
    },
}

fn failures_text(failures: &[(String, String)]) -> String {
    failures
        .iter()
        .map(|(seed, why)| format!(" {seed} ({why});"))
        .collect()
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
