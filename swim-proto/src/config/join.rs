//! Configuration of joining (ringpop's `BootstrapOptions`; `docs/protocol.md` §4.7 and §12.4):
//! how many seeds must answer, how many are contacted at once, and how long a join may take.

use core::time::Duration;
use serde::{Deserialize, Serialize};

use super::{ConfigError, duration};

/// How [`Command::Join`](crate::Command::Join) contacts its seeds. Defaults (those of every
/// preset) contact every seed at once and retry with backoff until one answers, for ever.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct JoinConfig {
    /// Join size (ringpop's `joinSize`): the join completes once this many distinct seeds have
    /// answered (or every seed was tried and at least one answered); no further seed is then
    /// contacted. At least 1. Default 1.
    pub size: usize,
    /// Parallelism: at most this many seeds are contacted at once; the next ones are contacted
    /// when `attempt_timeout` passes without enough answers. 0 contacts every seed at once.
    /// Default 0.
    pub parallelism: usize,
    /// How long one batch of seeds has to answer before the next batch is contacted (with
    /// `parallelism` > 0). After a pass over every seed the join backs off
    /// (`join_retry_initial` doubling up to `join_retry_max`) before the next pass. Zero means
    /// `join_retry_initial`. Default 0.
    #[serde(with = "duration")]
    pub attempt_timeout: Duration,
    /// Longest a join may take: past it without an answer the join gives up, the node reports
    /// [`Event::JoinFailed`](crate::Event::JoinFailed) and goes back to
    /// [`Status::Starting`](crate::Status::Starting) (it stops contacting the seeds until the next
    /// `Join`). Zero retries for ever. Default 0.
    #[serde(with = "duration")]
    pub max_duration: Duration,
}

impl Default for JoinConfig {
    fn default() -> Self {
        JoinConfig {
            size: 1,
            parallelism: 0,
            attempt_timeout: Duration::ZERO,
            max_duration: Duration::ZERO,
        }
    }
}

impl JoinConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.size == 0 {
            return Err(ConfigError::new("join.size", "must be at least 1"));
        }
        Ok(())
    }
}
