//! The tokio driver for [`swim_proto`]: runs one SWIM node on real sockets.
//!
//! The driver is thin. One task owns the [`swim_proto::Node`] and feeds it datagrams (UDP),
//! stream messages (TCP, one length-prefixed message per connection), commands from
//! [`Cluster`] handles and ticks at the node's next deadline; it carries out the outputs:
//! datagrams go out on the UDP socket, stream messages on new TCP connections, events to
//! subscribers and the log. No protocol logic lives here.
//!
//! # Run a node
//!
//! ```no_run
//! # async fn run() -> Result<(), swim_tokio::Error> {
//! use swim_tokio::{Cluster, ClusterEvent, DriverConfig};
//!
//! let mut config = DriverConfig::default();
//! config.port = 7946;
//! config.seeds = vec!["10.0.0.1:7946".into()];
//! let cluster = Cluster::start(config).await?;
//! let mut events = cluster.subscribe();
//! while let Some(item) = events.recv().await {
//!     match item {
//!         ClusterEvent::Event(e) => println!("{}", swim_tokio::event_json(&e)),
//!         ClusterEvent::Lagged(n) => eprintln!("missed {n} events"),
//!         _ => {}
//!     }
//! }
//! cluster.leave().await?;
//! cluster.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! # Time and randomness
//!
//! The core's [`swim_proto::Instant`] is nanoseconds since the node task started (a monotonic
//! clock). The core's RNG seed and `auto` node names come from OS-seeded randomness here, never
//! in the core. With [`DriverConfig::record`] set, every input is written to a trace that
//! `swim-sim replay` re-executes exactly.
//!
//! # Errors vs drops
//!
//! [`Error`] is for the local caller: invalid config (naming the field), sockets that cannot be
//! bound, seeds that do not resolve, commands the core rejects. Anything a peer sends — garbage
//! datagrams, oversized or stalled connections — is dropped and counted in [`DriverStats`] or
//! the core's [`swim_proto::Stats`], never returned and never a panic. Every queue is bounded by
//! a [`DriverConfig`] field.
//!
//! `docs/driver.md` in the repository has the architecture, wire framing, configuration
//! reference, agent usage, JSON event schema, metrics and measured figures.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod agent;
pub mod cidr;
mod config;
pub mod control;
mod driver;
mod error;
mod events;
mod handle;
pub mod handlers;
pub mod keys;
pub mod metrics;
mod record;
mod stats;
mod stream;
mod transport;
// Application messaging (issue 14).
mod messaging;
// Interposition and live partitions (issue 14).
pub mod interpose;
// Per-member watches (issue 14).
mod watch;
// Refusing duplicate names (issue 15).
mod name_guard;

pub use config::{DEFAULT_PORT, DriverConfig, Preset};
pub use error::Error;
pub use events::{ClusterEvent, Events, TimedEvent, event_json, event_name, member_json, unix_ms};
pub use handle::{Cluster, ClusterBuilder, host_name};
pub use messaging::{Messages, QueryOutcome, ReceivedMessage};
pub use record::ADDR_TAG;
pub use stats::{ClusterStats, DriverStats, MemberCounts};
pub use stream::{LEN_PREFIX, frame};
pub use watch::{MemberWatch, Transition};
