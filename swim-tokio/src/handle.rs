//! [`Cluster`]: starting a node and the cloneable handle applications hold.
//!
//! A little over 600 lines on purpose: every public method of the handle is here in one `impl`,
//! grouped as the driver guide lists them (`docs/driver.md`), each a thin request to the node task.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swim_proto::{
    Command, Identity, Member, MemberState, Node, NodeName, StateEntry, StateWrite, Status,
};
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::config::{DriverConfig, split_host_port};
use crate::driver::{Driver, Inspect, Leave, Request, resolve};
use crate::error::Error;
use crate::events::{ClusterEvent, Events, TimedEvent};
use crate::metrics::MessageSizes;
use crate::record::Recorder;
use crate::stats::{ClusterStats, Counters, MemberCounts};
use crate::stream::{Inbound, Outbound, accept_loop};
use crate::transport;

/// A running cluster node. Clone it freely: every clone talks to the same node task. The node
/// stops on [`Cluster::shutdown`], or when the last clone is dropped.
#[derive(Clone)]
pub struct Cluster {
    shared: Arc<Shared>,
}

struct Shared {
    requests: mpsc::Sender<Request>,
    /// Weak, so that event streams end when the node task (the strong sender) ends.
    events: broadcast::WeakSender<TimedEvent>,
    counters: Arc<Counters>,
    sizes: MessageSizes,
    local: SocketAddr,
    name: NodeName,
    leave_timeout: Duration,
    started: std::time::Instant,
    task: Mutex<Option<JoinHandle<()>>>,
    // Lifecycle and readiness (issue 14).
    /// The application's `stabilize` check, if it holds readiness (`Cluster::set_stabilize`).
    stabilize: Mutex<Option<Stabilize>>,
    // Duplicate names (issue 15).
    name_taken: crate::name_guard::Taken,
}

/// An application's readiness check (etcd-clustering's `stabilize -> Bool`).
type Stabilize = Arc<dyn Fn() -> bool + Send + Sync>;

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.shared.name.as_str())
            .field("addr", &self.shared.local)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Validates `config`, binds UDP and TCP on `bind:port`, starts the node task and, if
    /// `config.seeds` is not empty, joins through them (seeds that do not resolve yet are
    /// retried with backoff in the background). Must be called inside a tokio runtime.
    pub async fn start(config: DriverConfig) -> Result<Cluster, Error> {
        Cluster::start_subscribed(config).await.map(|(c, _)| c)
    }

    /// [`Cluster::start`], also returning an event stream subscribed before the node started,
    /// so no event is missed (not even the join's).
    pub async fn start_subscribed(config: DriverConfig) -> Result<(Cluster, Events), Error> {
        Cluster::builder(config).start_subscribed().await
    }

    // --- interposition and live partitions (issue 14) ---
    /// A builder for options that are not configuration data (an interposition hook, the
    /// fault rules' RNG seed); [`Cluster::start`] is `Cluster::builder(config).start()`.
    pub fn builder(config: DriverConfig) -> ClusterBuilder {
        ClusterBuilder {
            config,
            hook: None,
            fault_seed: None,
        }
    }

    async fn launch(b: ClusterBuilder) -> Result<(Cluster, Events), Error> {
        let config = b.config;
        config.validate()?;
        let bound = transport::bind(&config)?;
        let addr = config.advertise.unwrap_or(bound.local);
        let name = if config.name == "auto" {
            auto_name()
        } else {
            config.name.clone()
        };
        let name = NodeName::new(&name).map_err(|e| Error::config("name", e.to_string()))?;
        let identity =
            Identity::new(name.clone(), addr).with_meta(config.metadata.as_bytes().to_vec());
        let seed = os_random();
        let recorder = match &config.record {
            Some(path) => Some(Recorder::create(path, &identity, seed, &config.core)?),
            None => None,
        };
        let node = Node::new(config.core.clone(), identity, seed)
            .map_err(|e| Error::config(&format!("core.{}", e.field), e.problem))?;

        // Every log line of this node's tasks carries its name.
        let span = tracing::info_span!("swim", node = %name);
        let counters = Arc::new(Counters::default());
        let sizes = MessageSizes::default();
        let (requests_tx, requests_rx) = mpsc::channel(config.command_queue);
        let (streams_tx, streams_rx) = mpsc::channel(config.stream_queue);
        let (events_tx, first_subscriber) = broadcast::channel(config.event_buffer);
        let events_weak = events_tx.downgrade();
        let acceptor = tokio::spawn(
            accept_loop(Inbound {
                listener: bound.tcp,
                slots: Arc::new(Semaphore::new(config.max_connections)),
                to_node: streams_tx,
                max_message: config.core.max_stream_message_size,
                timeout: config.stream_timeout,
                counters: counters.clone(),
                per_source: config
                    .max_connections_per_source
                    .min(config.max_connections),
                allowed: config.allowed_cidrs.clone(),
            })
            .instrument(span.clone()),
        );
        let driver = Driver {
            node,
            epoch: std::time::Instant::now(),
            udp: bound.udp,
            udp_send: bound.udp_send,
            streams: streams_rx,
            requests: requests_rx,
            events: events_tx,
            outbound: Outbound {
                slots: Arc::new(Semaphore::new(config.max_outbound_streams)),
                connect_timeout: config.connect_timeout,
                write_timeout: config.stream_timeout,
                counters: counters.clone(),
                join_seeds: Arc::default(),
            },
            counters: counters.clone(),
            allowed: config.allowed_cidrs.clone(),
            sizes: sizes.clone(),
            recorder,
            acceptor,
            resolve_backoff: (config.core.join_retry_initial, config.core.join_retry_max),
            out: Vec::new(),
            leave: Leave::default(),
            interpose: crate::interpose::Slot::new(b.hook, b.fault_seed.unwrap_or_else(os_random)),
            name_guard: crate::name_guard::NameGuard::default(),
        };
        let name_taken = driver.name_guard.taken.clone();
        let task = tokio::spawn(driver.run().instrument(span.clone()));
        span.in_scope(|| tracing::info!(%addr, bound = %bound.local, "node started"));
        let cluster = Cluster {
            shared: Arc::new(Shared {
                requests: requests_tx,
                events: events_weak,
                counters,
                sizes,
                local: addr,
                name,
                leave_timeout: config.leave_timeout,
                started: std::time::Instant::now(),
                task: Mutex::new(Some(task)),
                stabilize: Mutex::new(None),
                name_taken,
            }),
        };
        if !config.seeds.is_empty() {
            let (addrs, failures) = resolve(&config.seeds).await;
            for (seed, why) in &failures {
                tracing::warn!(%seed, %why, "seed did not resolve; will retry");
            }
            let (reply, rx) = oneshot::channel();
            cluster
                .request(Request::Join {
                    seeds: config.seeds.clone(),
                    addrs,
                    reply: Some(reply),
                })
                .await?;
            rx.await
                .map_err(|_| Error::Shutdown)?
                .map_err(Error::Command)?;
        }
        Ok((cluster, Events::new(first_subscriber)))
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        self.shared.name.as_str()
    }

    /// The address the node announces (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.shared.local
    }

    pub(crate) fn name_taken_slot(&self) -> &crate::name_guard::Taken {
        &self.shared.name_taken
    }

    pub(crate) async fn request(&self, r: Request) -> Result<(), Error> {
        self.shared
            .requests
            .send(r)
            .await
            .map_err(|_| Error::Shutdown)
    }

    /// Runs a core command (join by address, leave without waiting, metadata, key rotation,
    /// and whatever commands the core adds). Returns the core's verdict; a rejected command
    /// changed nothing.
    pub async fn command(&self, command: Command<SocketAddr>) -> Result<(), Error> {
        let (reply, rx) = oneshot::channel();
        self.request(Request::Command { command, reply }).await?;
        rx.await
            .map_err(|_| Error::Shutdown)?
            .map_err(Error::Command)
    }

    /// Runs `f` on the node task with read access to the node and returns its result: the way
    /// to ask anything of the core's getters.
    pub async fn inspect<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Node<SocketAddr>) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        let f: Inspect = Box::new(move |node| {
            let _ = tx.send(f(node));
        });
        self.request(Request::Inspect(f)).await?;
        rx.await.map_err(|_| Error::Shutdown)
    }

    /// Joins a cluster through `host:port` seeds and waits until the join completes (with the
    /// core's `join.size` seeds answered, `docs/protocol.md` §12.4): returns the members that
    /// answered. Each seed is resolved by DNS now and again on every rejoin attempt the core
    /// makes (when it finds itself alone). Fails, changing nothing, if no seed resolves or the
    /// core rejects the join (for example after `leave`); fails with [`Error::JoinFailed`]
    /// when the core gives up after `join.max_duration`. With the default (retry for ever) it
    /// waits until a seed answers: bound it with `tokio::time::timeout` if needed (the join
    /// goes on in the background).
    pub async fn join<S: Into<String>>(
        &self,
        seeds: impl IntoIterator<Item = S>,
    ) -> Result<Vec<NodeName>, Error> {
        let seeds: Vec<String> = seeds.into_iter().map(Into::into).collect();
        for (i, s) in seeds.iter().enumerate() {
            if split_host_port(s).is_none() {
                return Err(Error::config(
                    &format!("seeds[{i}]"),
                    format!("{s:?} is not host:port"),
                ));
            }
        }
        let (addrs, failures) = resolve(&seeds).await;
        if addrs.is_empty() {
            return Err(Error::Resolve { failures });
        }
        // Subscribed before the join, so its outcome cannot be missed.
        let mut events = self.subscribe();
        let (reply, rx) = oneshot::channel();
        self.request(Request::Join {
            seeds,
            addrs,
            reply: Some(reply),
        })
        .await?;
        rx.await
            .map_err(|_| Error::Shutdown)?
            .map_err(Error::Command)?;
        self.join_outcome(&mut events).await
    }

    /// Leaves gracefully: announces the departure, then waits until it has been gossiped its
    /// full retransmission count, at most `leave_timeout` ([`Error::LeaveTimeout`] after
    /// that; the node has left either way). Others report the node as left, never as failed.
    /// Calling it again after a leave waits for (or confirms) the same departure.
    pub async fn leave(&self) -> Result<(), Error> {
        let (reply, rx) = oneshot::channel();
        self.request(Request::Leave { reply }).await?;
        match tokio::time::timeout(self.shared.leave_timeout, rx).await {
            Err(_) => Err(Error::LeaveTimeout),
            Ok(Err(_)) => Err(Error::Shutdown),
            Ok(Ok(r)) => r.map_err(Error::Command),
        }
    }

    /// Removes another member cluster-wide (Serf's force-leave; `docs/protocol.md`,
    /// "Operator removal"): it is marked left at its current incarnation and the removal is
    /// gossiped, so nobody probes it again. A removed member that is alive stays out until
    /// its application joins again. Fails, changing nothing, for this node's own name
    /// ([`CommandError::RemoveSelf`](swim_proto::CommandError::RemoveSelf)) or a member not
    /// known here ([`CommandError::UnknownMember`](swim_proto::CommandError::UnknownMember)).
    pub async fn remove(&self, name: impl Into<String>) -> Result<(), Error> {
        self.command(Command::Remove { name: name.into() }).await
    }

    /// Pauses (`true`) or resumes (`false`) the failure detector while staying a member
    /// (`docs/protocol.md` §12.2): a paused node probes nobody but still answers, so others
    /// keep it alive. An operator tool.
    pub async fn set_failure_detector_paused(&self, paused: bool) -> Result<(), Error> {
        self.command(if paused {
            Command::PauseFailureDetector
        } else {
            Command::ResumeFailureDetector
        })
        .await
    }

    /// Stops the node task and closes its sockets, without leaving (others will detect the
    /// node as failed unless it left first). Returns once the task has ended and its trace is
    /// flushed. Later calls on any clone return [`Error::Shutdown`].
    pub async fn shutdown(&self) -> Result<(), Error> {
        let (reply, rx) = oneshot::channel();
        let sent = self.request(Request::Shutdown { reply }).await;
        let _ = rx.await;
        let task = self.shared.task.lock().expect("task lock poisoned").take();
        if let Some(task) = task {
            let _ = task.await;
        }
        sent
    }

    /// Every member this node knows, itself first, tombstones (dead, left) included.
    pub async fn members(&self) -> Result<Vec<Member<SocketAddr>>, Error> {
        self.inspect(|n| {
            std::iter::once(n.local())
                .chain(n.members())
                .cloned()
                .collect()
        })
        .await
    }

    /// Current members: alive or suspect (a suspect may still refute), this node included
    /// unless it left. Memberlist calls this `Members()`.
    pub async fn alive(&self) -> Result<Vec<Member<SocketAddr>>, Error> {
        self.inspect(|n| {
            std::iter::once(n.local())
                .chain(n.members())
                .filter(|m| m.state.is_active())
                .cloned()
                .collect()
        })
        .await
    }

    /// This node as a member (incarnation, state, metadata).
    pub async fn local(&self) -> Result<Member<SocketAddr>, Error> {
        self.inspect(|n| n.local().clone()).await
    }

    /// Core and driver counters, members by state and local health.
    pub async fn stats(&self) -> Result<ClusterStats, Error> {
        let driver = self.shared.counters.snapshot();
        let uptime_s = self.shared.started.elapsed().as_secs_f64();
        self.inspect(move |n| {
            let mut members = MemberCounts {
                alive: n.count(MemberState::Alive),
                suspect: n.count(MemberState::Suspect),
                dead: n.count(MemberState::Dead),
                left: n.count(MemberState::Left),
            };
            match n.local().state {
                MemberState::Left => members.left += 1,
                _ => members.alive += 1,
            }
            ClusterStats {
                core: n.stats().clone(),
                driver,
                members,
                health_score: n.health_score(),
                pending_broadcasts: n.pending_broadcasts(),
                uptime_s,
            }
        })
        .await
    }

    /// Prometheus exposition of [`Cluster::stats`] and the message-size histograms
    /// (OpenMetrics text; see [`metrics::CONTENT_TYPE`](crate::metrics::CONTENT_TYPE)).
    pub async fn metrics(&self) -> Result<String, Error> {
        let stats = self.stats().await?;
        Ok(crate::metrics::render(&stats, &self.shared.sizes))
    }

    /// This node's view of the cluster: membership checksum, members, stability and leader
    /// (`docs/protocol.md` §11).
    pub async fn view(&self) -> Result<swim_proto::View, Error> {
        self.inspect(|n| n.view()).await
    }

    /// Replaces this node's metadata; announced with a higher incarnation.
    pub async fn update_metadata(&self, meta: impl Into<Vec<u8>>) -> Result<(), Error> {
        self.command(Command::UpdateMetadata(meta.into())).await
    }

    /// Writes one replicated state entry (`docs/protocol.md` §10): versioned by this node's
    /// Lamport clock, spread by gossip and anti-entropy. A refused write (bounds, a type this
    /// node does not store) returns [`Error::Command`] and changes nothing.
    pub async fn publish(
        &self,
        ty: impl Into<String>,
        key: impl Into<String>,
        value: impl Into<Vec<u8>>,
    ) -> Result<(), Error> {
        self.command(Command::Publish(StateWrite::new(ty, key, value)))
            .await
    }

    /// Writes several entries at once: all or none (the error names the first refused write).
    pub async fn publish_many(&self, writes: Vec<StateWrite>) -> Result<(), Error> {
        self.command(Command::PublishMany(writes)).await
    }

    /// Deletes an entry (a tombstone that outranks every earlier write of the key).
    pub async fn delete(&self, ty: impl Into<String>, key: impl Into<String>) -> Result<(), Error> {
        self.command(Command::Delete {
            ty: ty.into(),
            key: key.into(),
        })
        .await
    }

    /// The live entry for `(ty, key)` (value, version, origin), or `None` if absent or deleted.
    pub async fn get(
        &self,
        ty: impl Into<String>,
        key: impl Into<String>,
    ) -> Result<Option<StateEntry>, Error> {
        let (ty, key) = (ty.into(), key.into());
        self.inspect(move |n| n.state_get(&ty, &key).cloned()).await
    }

    /// Every live entry of one type, in key order, as `(key, entry)`.
    pub async fn entries(&self, ty: impl Into<String>) -> Result<Vec<(String, StateEntry)>, Error> {
        let ty = ty.into();
        self.inspect(move |n| {
            n.state_iter(&ty)
                .map(|(k, e)| (k.key().to_string(), e.clone()))
                .collect()
        })
        .await
    }

    /// Subscribes to events from now on. The stream never blocks the node: a subscriber more
    /// than `event_buffer` events behind skips the oldest and receives
    /// [`ClusterEvent::Lagged`](crate::ClusterEvent::Lagged). `PacketDropped` diagnostics are
    /// not sent (they are counted in stats and logged at debug level).
    pub fn subscribe(&self) -> Events {
        match self.shared.events.upgrade() {
            Some(tx) => Events::new(tx.subscribe()),
            // The node has stopped: a stream that ends at once.
            None => Events::new(broadcast::channel(1).1),
        }
    }

    // --- lifecycle, reconfiguration and readiness (issue 14) ---

    /// Applies a new core config without a restart (`docs/protocol.md` §12.3): validated as at
    /// start, refused with [`Error::Config`] naming the field (`core.max_members`, ...) if a
    /// value is out of range or a bound is below what the node holds now; nothing changes
    /// then. Timers are rescheduled from now. Returns the fields that differ but keep their
    /// running values: `keyring` and `start_incarnation` (the core's
    /// [`Config::fixed_at_run_time`](swim_proto::Config::fixed_at_run_time)) and
    /// `max_stream_message_size` (the stream acceptor's limit, fixed at start).
    pub async fn reconfigure(
        &self,
        mut core: swim_proto::Config,
    ) -> Result<Vec<&'static str>, Error> {
        let running = self.inspect(|n| n.config().clone()).await?;
        let mut fixed = running.fixed_at_run_time(&core);
        if core.max_stream_message_size != running.max_stream_message_size {
            core.max_stream_message_size = running.max_stream_message_size;
            fixed.push("max_stream_message_size");
        }
        match self.command(Command::Reconfigure(Box::new(core))).await {
            Err(Error::Command(swim_proto::CommandError::Reconfigure(e))) => {
                Err(Error::config(&format!("core.{}", e.field), e.problem))
            }
            r => r.map(|()| fixed),
        }
    }

    /// Waits for the join just started to complete or fail.
    async fn join_outcome(&self, events: &mut Events) -> Result<Vec<NodeName>, Error> {
        let answered = |n: &Node<SocketAddr>| n.join_answered().cloned().collect::<Vec<_>>();
        loop {
            match events.recv().await {
                None => return Err(Error::Shutdown),
                Some(ClusterEvent::Event(e)) => match e.event {
                    swim_proto::Event::JoinCompleted { .. } => return self.inspect(answered).await,
                    swim_proto::Event::JoinFailed {
                        reason, attempts, ..
                    } => return Err(Error::JoinFailed { reason, attempts }),
                    _ => {}
                },
                // The outcome may be among the skipped events: ask the node.
                Some(ClusterEvent::Lagged(_)) => match self.status().await? {
                    Status::Joining => {}
                    Status::Starting => {
                        let attempts = self.inspect(|n| n.stats().join_attempts).await?;
                        return Err(Error::JoinFailed {
                            reason: swim_proto::JoinFailure::MaxDuration,
                            attempts,
                        });
                    }
                    _ => return self.inspect(answered).await,
                },
            }
        }
    }

    /// The node's lifecycle [`Status`] (`docs/protocol.md` §12.4): starting, joining, running,
    /// leaving or stopped. Changes are also sent as `status_changed` events.
    pub async fn status(&self) -> Result<Status, Error> {
        self.inspect(|n| n.status()).await
    }

    /// Ready to serve (ringpop's `ready`): the core is running and, if it joined, has merged
    /// the cluster's membership; and the application's `stabilize` check, if one is set
    /// ([`Cluster::set_stabilize`]), returns true. The agent's `/ready` answers with it.
    pub async fn ready(&self) -> Result<bool, Error> {
        if !self.inspect(|n| n.ready()).await? {
            return Ok(false);
        }
        let check = self
            .shared
            .stabilize
            .lock()
            .expect("stabilize lock poisoned")
            .clone();
        Ok(check.is_none_or(|f| f()))
    }

    /// Holds readiness until `stabilize` returns true (etcd-clustering's `stabilize -> Bool`):
    /// an application that must load data or settle a hash ring first. Called on every
    /// [`Cluster::ready`]; keep it quick. Replaces any previous check.
    pub fn set_stabilize(&self, stabilize: impl Fn() -> bool + Send + Sync + 'static) {
        *self
            .shared
            .stabilize
            .lock()
            .expect("stabilize lock poisoned") = Some(Arc::new(stabilize));
    }

    /// Removes the `stabilize` check: readiness is the core's alone again.
    pub fn clear_stabilize(&self) {
        *self
            .shared
            .stabilize
            .lock()
            .expect("stabilize lock poisoned") = None;
    }
}

/// Starts a [`Cluster`] with options beyond [`DriverConfig`] (from [`Cluster::builder`]).
pub struct ClusterBuilder {
    config: DriverConfig,
    hook: Option<crate::interpose::Hook>,
    fault_seed: Option<u64>,
}

impl std::fmt::Debug for ClusterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterBuilder")
            .field("name", &self.config.name)
            .field("interpose", &self.hook.is_some())
            .finish_non_exhaustive()
    }
}

impl ClusterBuilder {
    /// Sets the interposition hook (`interpose`): called on the node task for every datagram
    /// and stream message sent or received, it passes, drops, delays or replaces each. Without
    /// one (the default) packets take no detour at all.
    pub fn interpose(
        mut self,
        hook: impl FnMut(&crate::interpose::Packet<'_>) -> crate::interpose::Verdict + Send + 'static,
    ) -> Self {
        self.hook = Some(Box::new(hook));
        self
    }

    /// Seeds the RNG of injected loss and jitter rules, for repeatable fault runs. Default:
    /// OS-seeded randomness.
    pub fn fault_seed(mut self, seed: u64) -> Self {
        self.fault_seed = Some(seed);
        self
    }

    /// [`Cluster::start`] with these options.
    pub async fn start(self) -> Result<Cluster, Error> {
        self.start_subscribed().await.map(|(c, _)| c)
    }

    /// [`Cluster::start_subscribed`] with these options.
    pub async fn start_subscribed(self) -> Result<(Cluster, Events), Error> {
        Cluster::launch(self).await
    }
}

/// 64 bits from OS-seeded randomness (std's `RandomState` keys) mixed with the time: the core's
/// RNG seed and `auto` names. The core itself never touches OS randomness.
pub(crate) fn os_random() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// This host's name (from the kernel, else `/etc/hostname`), cut to ASCII alphanumerics, `-`
/// and `.` and to 64 bytes, so it is a valid node name; `"node"` if there is none. Stable
/// across restarts: the agent's default node name.
pub fn host_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(64)
        .collect();
    if host.is_empty() { "node".into() } else { host }
}

/// `<hostname>-<8 hex digits>`: unique per start, for several nodes on one host.
pub(crate) fn auto_name() -> String {
    format!("{}-{:08x}", host_name(), os_random() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_names_are_valid_and_differ() {
        let a = auto_name();
        let b = auto_name();
        assert_ne!(a, b);
        assert!(NodeName::new(&a).is_ok());
        assert!(a.len() <= 128);
    }
}
