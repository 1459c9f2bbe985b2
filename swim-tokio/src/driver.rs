//! The node task: the one owner of the [`Node`]. It waits on datagrams, stream messages,
//! requests from handles, seed resolutions and the node's next deadline, feeds each to the
//! core as an input and carries out the outputs. No protocol logic lives here.

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::time::Duration;

use swim_proto::{Command, CommandError, Event, Input, Instant, MemberState, Node, Output};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::events::{TimedEvent, unix_ms};
use crate::interpose::Transport;
use crate::metrics::MessageSizes;
use crate::record::Recorder;
use crate::stats::{Counters, bump};
use crate::stream::{Outbound, Received};

/// How often buffered trace records reach the file.
const TRACE_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// The longest the task sleeps when nothing is due (the core's deadline may be "never").
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// A read-only look at the node, run on the node task.
pub(crate) type Inspect = Box<dyn FnOnce(&Node<SocketAddr>) + Send>;

/// What a handle asks of the node task. Each carries its own reply channel.
///
/// Adding an operation: a core command needs no new variant (use [`Request::Command`] through
/// `Cluster::command`); a query needs none either (use [`Request::Inspect`] through
/// `Cluster::inspect`). Only operations that wait for a later event need their own variant.
pub(crate) enum Request {
    /// Run a core command; the reply says whether the core accepted it.
    Command {
        command: Command<SocketAddr>,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    /// Join through `addrs`, remembering `seeds` (their `host:port` names) to resolve again on
    /// every rejoin attempt. With no address yet, resolution is retried with backoff.
    Join {
        seeds: Vec<String>,
        addrs: Vec<SocketAddr>,
        reply: Option<oneshot::Sender<Result<(), CommandError>>>,
    },
    /// Leave; the reply comes when the departure has been disseminated.
    Leave {
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    /// Run a closure on the node (members, stats, ...).
    Inspect(Inspect),
    /// Stop the task; the reply comes after the trace is flushed.
    Shutdown { reply: oneshot::Sender<()> },
    // Application messaging (issue 14).
    /// Run a `Command::Query`; the reply is the query's Lamport time, to match its answers.
    Query {
        command: Command<SocketAddr>,
        reply: oneshot::Sender<Result<u64, CommandError>>,
    },
    // Interposition and live partitions (issue 14).
    /// Inject, resolve or list fault rules (`interpose`).
    Interpose(crate::interpose::SlotOp),
}

/// Resolves `host:port` seeds by DNS: every address found, deduplicated and sorted, and the
/// seeds that failed with why.
pub(crate) async fn resolve(seeds: &[String]) -> (Vec<SocketAddr>, Vec<(String, String)>) {
    let mut addrs = Vec::new();
    let mut failures = Vec::new();
    for seed in seeds {
        match tokio::net::lookup_host(seed.as_str()).await {
            Ok(found) => {
                let before = addrs.len();
                addrs.extend(found);
                if addrs.len() == before {
                    failures.push((seed.clone(), "no address".to_string()));
                }
            }
            Err(e) => failures.push((seed.clone(), e.to_string())),
        }
    }
    addrs.sort();
    addrs.dedup();
    (addrs, failures)
}

/// Everything the node task owns.
pub(crate) struct Driver {
    pub node: Node<SocketAddr>,
    /// `swim_proto::Instant::ZERO`: the core's clock is nanoseconds since this moment.
    pub epoch: std::time::Instant,
    pub udp: UdpSocket,
    pub udp_send: StdUdpSocket,
    pub streams: mpsc::Receiver<Received>,
    pub requests: mpsc::Receiver<Request>,
    pub events: broadcast::Sender<TimedEvent>,
    pub outbound: Outbound,
    pub counters: Arc<Counters>,
    /// Networks allowed to send datagrams (`allowed_cidrs`; empty: all).
    pub allowed: Vec<crate::cidr::Cidr>,
    pub sizes: MessageSizes,
    pub recorder: Option<Recorder>,
    /// The accept loop, stopped when the task ends so the port is released.
    pub acceptor: JoinHandle<()>,
    /// Initial delay and cap of seed re-resolution retries (the core's join backoff).
    pub resolve_backoff: (Duration, Duration),
    /// Reused output buffer.
    pub out: Vec<Output<SocketAddr>>,
    pub leave: Leave,
    // Interposition and live partitions (issue 14).
    /// The interposition hook and injected fault rules; `None` inside unless in use.
    pub interpose: crate::interpose::Slot,
    // Duplicate names (issue 15).
    pub name_guard: crate::name_guard::NameGuard,
}

/// Callers of `leave` waiting for [`Event::LeaveComplete`].
#[derive(Default)]
pub(crate) struct Leave {
    waiters: Vec<oneshot::Sender<Result<(), CommandError>>>,
    complete: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// Seed names and where resolving them stands.
#[derive(Default)]
struct Seeds {
    names: Vec<String>,
    /// The addresses last given to the core.
    addrs: Vec<SocketAddr>,
    join_attempts_seen: u64,
    resolving: bool,
    retry_at: Option<std::time::Instant>,
    backoff: Duration,
}

impl Driver {
    fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    fn wall(&self, at: Instant) -> std::time::Instant {
        let dt = Duration::from_nanos(at.as_nanos());
        let max = std::time::Instant::now() + MAX_SLEEP;
        self.epoch.checked_add(dt).map_or(max, |t| t.min(max))
    }

    /// Runs until shutdown, or until every handle is dropped.
    pub(crate) async fn run(mut self) {
        let mut buf = vec![0u8; self.node.config().max_packet_size + 1];
        let mut seeds = Seeds {
            backoff: self.resolve_backoff.0,
            ..Seeds::default()
        };
        let (resolved_tx, mut resolved_rx) = mpsc::channel::<Vec<SocketAddr>>(1);
        let mut next_flush = std::time::Instant::now() + TRACE_FLUSH_INTERVAL;

        // Start the node's timers.
        self.feed(Input::Tick);
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        loop {
            let mut wake = self.wall(self.node.next_deadline());
            if let Some(at) = seeds.retry_at {
                wake = wake.min(at);
            }
            if self.recorder.is_some() {
                wake = wake.min(next_flush);
            }
            if let Some(at) = self.interpose_due() {
                wake = wake.min(at);
            }
            let wake = tokio::time::Instant::from_std(wake);
            if sleep.deadline() != wake {
                sleep.as_mut().reset(wake);
            }
            tokio::select! {
                req = self.requests.recv() => {
                    // `None`: every handle is gone, so nobody can use the node any more.
                    let Some(req) = req else { break };
                    if self.on_request(req, &mut seeds) == Flow::Stop {
                        break;
                    }
                }
                r = self.udp.recv_from(&mut buf) => self.on_datagram(r, &buf),
                Some((from, bytes)) = self.streams.recv() => {
                    self.sizes.stream_received(bytes.len());
                    if let Some(bytes) = self.interpose_in(Transport::Stream, from, bytes) {
                        if self.name_taken(&bytes) {
                            break;
                        }
                        self.feed(Input::Stream { from, bytes });
                    }
                }
                Some(addrs) = resolved_rx.recv() => self.on_resolved(addrs, &mut seeds),
                () = &mut sleep => {
                    self.release_held();
                    let now = std::time::Instant::now();
                    if self.wall(self.node.next_deadline()) <= now {
                        self.feed(Input::Tick);
                    }
                    if seeds.retry_at.is_some_and(|at| at <= now) {
                        seeds.retry_at = None;
                        self.start_resolve(&mut seeds, &resolved_tx);
                    }
                    if next_flush <= now {
                        next_flush = now + TRACE_FLUSH_INTERVAL;
                        if let Some(r) = &mut self.recorder && !r.flush() {
                            bump(&self.counters.trace_write_errors);
                            self.recorder = None;
                        }
                    }
                }
            }
            // SWIM's rejoin: the core contacted its seeds again, so look their names up again.
            let attempts = self.node.stats().join_attempts;
            if attempts > seeds.join_attempts_seen {
                seeds.join_attempts_seen = attempts;
                self.start_resolve(&mut seeds, &resolved_tx);
            }
        }
        if let Some(r) = &mut self.recorder {
            r.flush();
        }
        self.acceptor.abort();
    }

    fn on_request(&mut self, req: Request, seeds: &mut Seeds) -> Flow {
        match req {
            Request::Command { command, reply } => {
                let r = self.command(command);
                let _ = reply.send(r);
            }
            Request::Query { command, reply } => {
                let ltime = self.node.user_clock();
                let r = self.command(command).map(|()| ltime);
                let _ = reply.send(r);
            }
            Request::Join {
                seeds: names,
                addrs,
                reply,
            } => {
                let r = if addrs.is_empty() {
                    // Config seeds that do not resolve yet: retry in the background.
                    seeds.retry_at = Some(std::time::Instant::now() + seeds.backoff);
                    Ok(())
                } else {
                    self.command(Command::Join {
                        seeds: addrs.clone(),
                    })
                };
                if r.is_ok() {
                    self.outbound.set_join_seeds(addrs.clone());
                    seeds.names = names;
                    seeds.addrs = addrs;
                }
                seeds.join_attempts_seen = self.node.stats().join_attempts;
                if let Some(reply) = reply {
                    let _ = reply.send(r);
                }
            }
            Request::Leave { reply } => {
                let r = if self.node.local().state == MemberState::Left {
                    Ok(()) // Already leaving: wait for (or confirm) the same departure.
                } else {
                    self.command(Command::Leave)
                };
                match r {
                    Ok(()) if self.leave.complete => {
                        let _ = reply.send(Ok(()));
                    }
                    Ok(()) => {
                        self.leave.waiters.retain(|w| !w.is_closed());
                        self.leave.waiters.push(reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Request::Inspect(f) => f(&self.node),
            Request::Interpose(op) => self.on_slot_op(op),
            Request::Shutdown { reply } => {
                if let Some(r) = &mut self.recorder {
                    r.flush();
                }
                let _ = reply.send(());
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn on_datagram(&mut self, r: std::io::Result<(usize, SocketAddr)>, buf: &[u8]) {
        match r {
            Ok((_, from)) if !crate::cidr::allowed(&self.allowed, from.ip()) => {
                bump(&self.counters.datagrams_refused_source);
                tracing::debug!(%from, "datagram from outside allowed_cidrs; dropped");
            }
            Ok((n, from)) if n < buf.len() => {
                self.sizes.datagram_received(n);
                if self.interpose.active.is_some() {
                    let bytes = buf[..n].to_vec();
                    if let Some(bytes) = self.interpose_in(Transport::Datagram, from, bytes) {
                        self.feed(Input::Datagram { from, bytes });
                    }
                } else if self.recorder.is_some() {
                    self.feed(Input::Datagram {
                        from,
                        bytes: buf[..n].to_vec(),
                    });
                } else {
                    let now = self.now();
                    self.node
                        .handle_datagram(&from, &buf[..n], now, &mut self.out);
                    self.carry_out();
                }
            }
            Ok((_, from)) => {
                bump(&self.counters.datagrams_oversized);
                tracing::debug!(%from, "datagram over max_packet_size; dropped");
            }
            Err(e) => {
                // ICMP errors on some platforms, or a transient failure: never fatal.
                bump(&self.counters.udp_recv_errors);
                tracing::debug!(error = %e, "UDP receive error");
            }
        }
    }

    fn on_resolved(&mut self, addrs: Vec<SocketAddr>, seeds: &mut Seeds) {
        seeds.resolving = false;
        if addrs.is_empty() {
            seeds.retry_at = Some(std::time::Instant::now() + seeds.backoff);
            seeds.backoff = (seeds.backoff * 2).min(self.resolve_backoff.1);
            return;
        }
        seeds.backoff = self.resolve_backoff.0;
        seeds.retry_at = None;
        if addrs != seeds.addrs && self.node.local().state != MemberState::Left {
            tracing::info!(
                ?addrs,
                "seeds resolved to new addresses; joining through them"
            );
            seeds.addrs = addrs.clone();
            if self
                .command(Command::Join {
                    seeds: addrs.clone(),
                })
                .is_ok()
            {
                self.outbound.set_join_seeds(addrs);
            }
            seeds.join_attempts_seen = self.node.stats().join_attempts;
        }
    }

    fn start_resolve(&self, seeds: &mut Seeds, done: &mpsc::Sender<Vec<SocketAddr>>) {
        if seeds.names.is_empty() || seeds.resolving {
            return;
        }
        seeds.resolving = true;
        bump(&self.counters.seed_resolutions);
        let names = seeds.names.clone();
        let done = done.clone();
        tokio::spawn(
            async move {
                let (addrs, failures) = resolve(&names).await;
                for (seed, why) in failures {
                    tracing::warn!(%seed, %why, "seed did not resolve");
                }
                let _ = done.send(addrs).await;
            }
            .in_current_span(),
        );
    }

    /// Runs a command as an input (recorded like any other) and says whether the core took it.
    fn command(&mut self, command: Command<SocketAddr>) -> Result<(), CommandError> {
        let now = self.now();
        let recorded = self.recorder.is_some().then(|| command.clone());
        let r = self.node.command(command, now, &mut self.out);
        if let Some(c) = recorded {
            self.record(now, Input::Command(c));
        }
        self.carry_out();
        r
    }

    pub(crate) fn feed(&mut self, input: Input<SocketAddr>) {
        let now = self.now();
        if self.recorder.is_some() {
            let copy = input.clone();
            self.node.handle_into(input, now, &mut self.out);
            self.record(now, copy);
        } else {
            self.node.handle_into(input, now, &mut self.out);
        }
        self.carry_out();
    }

    fn record(&mut self, now: Instant, input: Input<SocketAddr>) {
        if let Some(r) = &mut self.recorder
            && !r.step(now, input, &self.out)
        {
            bump(&self.counters.trace_write_errors);
            self.recorder = None;
        }
    }

    /// Carries out a `handle` call's outputs, in order.
    fn carry_out(&mut self) {
        let mut out = std::mem::take(&mut self.out);
        for o in out.drain(..) {
            match o {
                Output::SendDatagram { to, bytes } => {
                    self.sizes.datagram_sent(bytes.len());
                    let Some(bytes) = self.interpose_out(Transport::Datagram, to, bytes) else {
                        continue;
                    };
                    // Non-blocking: a full socket buffer drops the datagram, as a network would.
                    if let Err(e) = self.udp_send.send_to(&bytes, to) {
                        bump(&self.counters.udp_send_errors);
                        tracing::debug!(%to, error = %e, "datagram not sent");
                    }
                }
                Output::SendStream { to, bytes } => {
                    self.sizes.stream_sent(bytes.len());
                    let Some(bytes) = self.interpose_out(Transport::Stream, to, bytes) else {
                        continue;
                    };
                    self.outbound.send(to, bytes);
                }
                Output::Event(event) => {
                    if let Some(i) = self.interpose.active.as_deref_mut() {
                        i.on_event(&event, self.node.config().max_members);
                    }
                    if matches!(event, Event::JoinCompleted { .. }) {
                        self.name_guard.joined = true;
                        self.outbound.set_join_seeds(Vec::new());
                    }
                    if matches!(event, Event::LeaveComplete) {
                        self.leave.complete = true;
                        for w in self.leave.waiters.drain(..) {
                            let _ = w.send(Ok(()));
                        }
                    }
                    log_event(&event);
                    if !matches!(event, Event::PacketDropped { .. }) {
                        // No subscriber is not an error; a slow one lags, never blocks us.
                        let _ = self.events.send(TimedEvent {
                            ts_ms: unix_ms(),
                            event,
                        });
                    }
                }
                Output::TickAt(_) => {} // `next_deadline()` is read before each wait.
                _ => {}
            }
        }
        self.out = out;
    }
}

fn log_event(e: &Event<SocketAddr>) {
    match e {
        Event::MemberJoined(m) => {
            tracing::info!(node = %m.name, addr = %m.addr, inc = m.incarnation, "member joined")
        }
        Event::MemberSuspected { member, accuser } => {
            tracing::info!(node = %member.name, %accuser, inc = member.incarnation, "member suspected")
        }
        Event::MemberAlive(m) => {
            tracing::info!(node = %m.name, inc = m.incarnation, "member alive again")
        }
        Event::MemberFailed(m) => {
            tracing::warn!(node = %m.name, addr = %m.addr, inc = m.incarnation, "member failed")
        }
        Event::MemberLeft(m) => tracing::info!(node = %m.name, "member left"),
        Event::MemberUpdated(m) => tracing::info!(node = %m.name, "member updated"),
        Event::MemberRemoved(m) => tracing::debug!(node = %m.name, "member removed"),
        Event::LocalSuspected {
            accuser,
            incarnation,
        } => tracing::warn!(%accuser, incarnation, "this node is suspected; refuting"),
        Event::JoinCompleted { via } => tracing::info!(%via, "joined the cluster"),
        Event::LeaveComplete => tracing::info!("leave disseminated"),
        Event::PacketDropped { from, reason } => {
            tracing::debug!(%from, ?reason, "packet dropped")
        }
        Event::CommandRejected(err) => tracing::warn!(%err, "command rejected"),
        other => tracing::debug!(?other, "event"),
    }
}
