//! Trace files: streamed recording and verified replay (format in `swim_proto::trace`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use swim_proto::trace::{self, TraceHeader, TraceRecord};
use swim_proto::wire::{self, Message, Update};
use swim_proto::{Event, Identity, Input, Instant, Node, NodeName, Output};

use crate::scenario::NodeId;

/// Start of the header description of traces whose addresses are `std::net::SocketAddr`
/// (recorded by the `swim-tokio` driver on a real host) rather than the simulator's integer
/// [`NodeId`]s.
pub const SOCKET_ADDR_TAG: &str = "[addr=socket]";

/// What replay needs of a trace's address type.
trait TraceAddr: swim_proto::Address + std::fmt::Display {}
impl<T: swim_proto::Address + std::fmt::Display> TraceAddr for T {}

/// Opens `path` for a streamed trace.
pub fn create(path: &Path) -> std::io::Result<Box<dyn Write>> {
    Ok(Box::new(BufWriter::with_capacity(
        1 << 20,
        File::create(path)?,
    )))
}

/// Reads frames from a stream without loading it whole.
struct Frames<R> {
    src: R,
    buf: Vec<u8>,
    start: usize,
}

impl<R: Read> Frames<R> {
    fn next<T: serde::de::DeserializeOwned>(&mut self) -> Result<Option<T>, String> {
        loop {
            match trace::decode_frame::<T>(&self.buf[self.start..]) {
                Ok(Some((v, used))) => {
                    self.start += used;
                    return Ok(Some(v));
                }
                Ok(None) => {}
                Err(e) => return Err(format!("corrupt trace frame at byte {}: {e}", self.start)),
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let mut chunk = [0u8; 1 << 16];
            let n = self
                .src
                .read(&mut chunk)
                .map_err(|e| format!("reading trace: {e}"))?;
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err("trace ends inside a frame".into())
                };
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// What to show while replaying.
#[derive(Clone, Debug, Default)]
pub struct ReplayOptions {
    /// Print the timeline of this node (its inputs, outputs and events).
    pub node: Option<String>,
    /// Stop at this simulated (node-local) time.
    pub until: Option<Instant>,
    /// Print piggybacked updates and every output, not just a summary.
    pub verbose: bool,
}

/// The outcome of a replay.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplaySummary {
    /// The trace's header.
    pub description: String,
    /// The seed it was recorded with.
    pub seed: u64,
    /// Node starts replayed.
    pub boots: u64,
    /// `handle` calls replayed.
    pub steps: u64,
    /// The first step whose outputs differ from the recording, if any.
    pub divergence: Option<String>,
}

fn name_of<A: TraceAddr>(names: &BTreeMap<A, String>, a: &A) -> String {
    names.get(a).cloned().unwrap_or_else(|| format!("addr {a}"))
}

fn describe_packet<A: TraceAddr>(
    bytes: &[u8],
    label: &[u8],
    names: &BTreeMap<A, String>,
    verbose: bool,
) -> String {
    match wire::decode_datagram::<A>(bytes, label) {
        Ok(dg) => {
            let msg = match &dg.message {
                Message::Gossip => "gossip".to_string(),
                Message::Ping { seq, target, .. } => format!("ping #{seq} for tag {target:08x}"),
                Message::PingReq { seq, target, .. } => format!("ping-req #{seq} for {target}"),
                Message::Ack { seq, .. } => format!("ack #{seq}"),
                Message::Nack { seq } => format!("nack #{seq}"),
                other => format!("{other:?}"),
            };
            let mut s = format!("{msg} +{} updates", dg.updates.len());
            if verbose {
                for u in &dg.updates {
                    s.push_str(&format!("\n             {}", describe_update(u, names)));
                }
            }
            s
        }
        Err(e) => format!("undecodable datagram ({e}, {} bytes)", bytes.len()),
    }
}

fn describe_update<A: TraceAddr>(u: &Update<'_, A>, _names: &BTreeMap<A, String>) -> String {
    match u {
        Update::Suspect {
            name,
            incarnation,
            accuser,
            ..
        } => format!("suspect {name} inc {incarnation} by {accuser}"),
        other => format!(
            "{} {} inc {}",
            other.state().as_str(),
            other.name(),
            other.incarnation()
        ),
    }
}

fn describe_event<A: TraceAddr>(e: &Event<A>) -> String {
    match e {
        Event::MemberJoined(m) => format!("member joined: {} (inc {})", m.name, m.incarnation),
        Event::MemberSuspected { member, accuser } => {
            format!("member suspected: {} by {accuser}", member.name)
        }
        Event::MemberAlive(m) => format!("member alive again: {} (inc {})", m.name, m.incarnation),
        Event::MemberFailed(m) => format!("member FAILED: {} (inc {})", m.name, m.incarnation),
        Event::MemberLeft(m) => format!("member left: {}", m.name),
        Event::MemberUpdated(m) => format!("member updated: {}", m.name),
        Event::MemberRemoved(m) => format!("member removed: {}", m.name),
        Event::LocalSuspected {
            accuser,
            incarnation,
        } => format!("WE are suspected by {accuser} at inc {incarnation}"),
        Event::LocalRefuted { claim, incarnation } => format!(
            "we refuted a {} claim: now inc {incarnation}",
            claim.as_str()
        ),
        other => format!("{other:?}"),
    }
}

/// Replays a trace through fresh nodes, verifying every step's outputs against the recorded
/// digest, and prints a timeline of `opts.node` to `log`. Stops at the first divergence.
///
/// Reads simulator traces (integer addresses) and traces a real host recorded (socket
/// addresses, marked by [`SOCKET_ADDR_TAG`] at the start of the header's description).
pub fn replay(
    path: &Path,
    opts: &ReplayOptions,
    log: &mut dyn Write,
) -> Result<ReplaySummary, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut src = BufReader::new(file);
    let mut magic = [0u8; 4];
    src.read_exact(&mut magic)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if magic != trace::TRACE_MAGIC {
        return Err(format!("{}: not a swim trace (bad magic)", path.display()));
    }
    let mut frames = Frames {
        src,
        buf: Vec::new(),
        start: 0,
    };
    let header: TraceHeader = frames.next()?.ok_or("trace has no header")?;
    if header.version != trace::TRACE_VERSION {
        return Err(format!(
            "trace version {} not supported (this build reads {})",
            header.version,
            trace::TRACE_VERSION
        ));
    }
    let mut summary = ReplaySummary {
        description: header.description.clone(),
        seed: header.seed,
        ..Default::default()
    };
    let _ = writeln!(log, "trace: {} (seed {})", header.description, header.seed);
    if header.description.starts_with(SOCKET_ADDR_TAG) {
        replay_records::<std::net::SocketAddr, _>(&mut frames, opts, log, &mut summary)?;
    } else {
        replay_records::<NodeId, _>(&mut frames, opts, log, &mut summary)?;
    }
    Ok(summary)
}

fn replay_records<A: TraceAddr, R: Read>(
    frames: &mut Frames<R>,
    opts: &ReplayOptions,
    log: &mut dyn Write,
    summary: &mut ReplaySummary,
) -> Result<(), String> {
    let mut nodes: BTreeMap<NodeId, Node<A>> = BTreeMap::new();
    let mut names: BTreeMap<A, String> = BTreeMap::new();
    let mut labels: BTreeMap<NodeId, Vec<u8>> = BTreeMap::new();
    let mut out = Vec::new();
    let mut index = 0u64;
    let watch = opts.node.as_deref();
    while let Some(rec) = frames.next::<TraceRecord<A>>()? {
        index += 1;
        match rec {
            TraceRecord::Boot {
                node,
                name,
                addr,
                meta,
                seed,
                config,
            } => {
                let label = config.cluster_label.as_bytes().to_vec();
                let id = Identity::new(
                    NodeName::new(&name).map_err(|e| format!("record {index}: {e}"))?,
                    addr.clone(),
                )
                .with_meta(meta);
                let n = Node::new(*config, id, seed).map_err(|e| format!("record {index}: {e}"))?;
                if watch == Some(name.as_str()) {
                    let _ = writeln!(log, "-- boot {name} (seed {seed})");
                }
                nodes.insert(node, n);
                names.insert(addr, name);
                labels.insert(node, label);
                summary.boots += 1;
            }
            TraceRecord::Step {
                node,
                now,
                input,
                digest,
            } => {
                if opts.until.is_some_and(|u| now > u) {
                    break;
                }
                let n = nodes.get_mut(&node).ok_or(format!(
                    "record {index}: step for node {node} before its boot"
                ))?;
                let name = n.local().name.to_string();
                let shown = watch == Some(name.as_str());
                let label = labels.get(&node).cloned().unwrap_or_default();
                if shown {
                    let what = match &input {
                        Input::Datagram { from, bytes } => format!(
                            "datagram from {}: {}",
                            name_of(&names, from),
                            describe_packet(bytes, &label, &names, opts.verbose)
                        ),
                        Input::Stream { from, bytes } => format!(
                            "stream from {} ({} bytes)",
                            name_of(&names, from),
                            bytes.len()
                        ),
                        Input::Tick => "tick".into(),
                        Input::Command(c) => format!("command {c:?}"),
                        other => format!("{other:?}"),
                    };
                    let _ = writeln!(log, "{now:>12}  in   {what}");
                }
                out.clear();
                n.handle_into(input, now, &mut out);
                summary.steps += 1;
                if shown {
                    for o in &out {
                        match o {
                            Output::SendDatagram { to, bytes } => {
                                let _ = writeln!(
                                    log,
                                    "              out  datagram to {}: {}",
                                    name_of(&names, to),
                                    describe_packet(bytes, &label, &names, opts.verbose)
                                );
                            }
                            Output::SendStream { to, bytes } => {
                                let _ = writeln!(
                                    log,
                                    "              out  stream to {} ({} bytes)",
                                    name_of(&names, to),
                                    bytes.len()
                                );
                            }
                            Output::Event(e) => {
                                let _ = writeln!(log, "              EVENT {}", describe_event(e));
                            }
                            Output::TickAt(t) if opts.verbose => {
                                let _ = writeln!(log, "              next tick at {t}");
                            }
                            _ => {}
                        }
                    }
                }
                let got = trace::digest_outputs(&out);
                if got != digest {
                    summary.divergence = Some(format!(
                        "record {index}: {name} at {now}: outputs differ from the recording (digest {got:016x}, recorded {digest:016x})"
                    ));
                    break;
                }
            }
            other => return Err(format!("record {index}: unsupported record {other:?}")),
        }
    }
    Ok(())
}
