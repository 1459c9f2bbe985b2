//! Traces: what was fed to nodes, so a run (simulated or real) replays exactly.
//!
//! A trace is the config, identity and seed of every node start, then every `handle` call as
//! `(node, now, input)` with a digest of the outputs it produced. Replaying means booting fresh
//! nodes from the same records and feeding the same inputs; the digests show where, if
//! anywhere, the replay diverges. The byte layout is:
//!
//! ```text
//! "SWMT" [frame: TraceHeader] [frame: TraceRecord]*      frame = [len: u32 LE][postcard]
//! ```
//!
//! This module only encodes and decodes bytes; reading and writing files is the driver's job.
//! Deliberately public: the simulator and the tokio driver record traces, `swim-sim replay`
//! reads them.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::hash::Fnv1a64;
use crate::io::{Event, Input, Output};
use crate::time::Instant;
use crate::wire::DecodeError;

/// First bytes of every trace.
pub const TRACE_MAGIC: [u8; 4] = *b"SWMT";
/// Trace format version.
pub const TRACE_VERSION: u16 = 1;
/// Largest frame accepted when reading, in bytes (a record holds one input: at most a stream
/// message, itself bounded by `max_stream_message_size`).
pub const MAX_FRAME_LEN: usize = 1 << 30;

/// Describes a whole trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceHeader {
    /// [`TRACE_VERSION`] of the writer.
    pub version: u16,
    /// The seed the writer derived every node's seed from (informational).
    pub seed: u64,
    /// Free text: the scenario or host that produced it.
    pub description: String,
}

/// One event in a trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "A: serde::de::DeserializeOwned"))]
#[non_exhaustive]
pub enum TraceRecord<A> {
    /// Node `node` starts with fresh state: `Node::new(config, identity, seed)`. A restart is a
    /// second `Boot` of the same `node`.
    Boot {
        /// Trace-local node number.
        node: u32,
        /// The node's name.
        name: String,
        /// The node's address.
        addr: A,
        /// Initial metadata.
        meta: Vec<u8>,
        /// The RNG seed.
        seed: u64,
        /// The node's configuration.
        config: Box<Config>,
    },
    /// One call `handle(input, now)` on node `node`, and [`digest_outputs`] of what it returned.
    Step {
        /// Trace-local node number.
        node: u32,
        /// The `now` passed (the node's own clock).
        now: Instant,
        /// The input.
        input: Input<A>,
        /// Digest of the outputs.
        digest: u64,
    },
}

/// Appends one frame (`[len: u32 LE][postcard]`) holding `value` to `out`.
pub fn encode_frame<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    crate::wire::encode_into(value, out);
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// Decodes one frame from the front of `bytes`: `Ok(None)` if `bytes` holds less than a whole
/// frame (read more), otherwise the value and the number of bytes it used.
pub fn decode_frame<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<Option<(T, usize)>, DecodeError> {
    let Some(len) = bytes.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if len > MAX_FRAME_LEN {
        return Err(DecodeError::Malformed);
    }
    let Some(body) = bytes.get(4..4 + len) else {
        return Ok(None);
    };
    let value = postcard::from_bytes(body).map_err(|_| DecodeError::Malformed)?;
    Ok(Some((value, 4 + len)))
}

/// The digest's hasher: [`Fnv1a64`] with length-prefixed, tagged fields.
struct Fnv(Fnv1a64);

impl Fnv {
    fn bytes(&mut self, b: &[u8]) {
        self.0.write(b);
    }
    fn tagged(&mut self, tag: u8, b: &[u8]) {
        self.bytes(&[tag]);
        self.bytes(&(b.len() as u64).to_le_bytes());
        self.bytes(b);
    }
    fn ser<T: Serialize>(&mut self, tag: u8, v: &T) {
        let mut buf = Vec::new();
        crate::wire::encode_into(v, &mut buf);
        self.tagged(tag, &buf);
    }
}

/// A digest of a `handle` call's outputs, in order: destinations, packet bytes, deadlines and
/// events. Equal outputs give equal digests on every platform.
pub fn digest_outputs<A: Serialize>(outputs: &[Output<A>]) -> u64 {
    let mut h = Fnv(Fnv1a64::new());
    for o in outputs {
        match o {
            Output::SendDatagram { to, bytes } => {
                h.ser(1, to);
                h.tagged(2, bytes);
            }
            Output::SendStream { to, bytes } => {
                h.ser(3, to);
                h.tagged(4, bytes);
            }
            Output::TickAt(t) => h.tagged(5, &t.as_nanos().to_le_bytes()),
            Output::Event(e) => digest_event(e, &mut h),
        }
    }
    h.0.finish()
}

fn digest_event<A: Serialize>(e: &Event<A>, h: &mut Fnv) {
    let mut member = |tag: u8, m: &crate::member::Member<A>| {
        h.tagged(tag, m.name.as_str().as_bytes());
        h.ser(tag, &(&m.addr, m.incarnation, m.state.rank()));
        h.tagged(tag, m.meta.as_bytes());
    };
    match e {
        Event::MemberJoined(m) => member(10, m),
        Event::MemberSuspected { member: m, accuser } => {
            member(11, m);
            h.tagged(11, accuser.as_str().as_bytes());
        }
        Event::MemberAlive(m) => member(12, m),
        Event::MemberFailed(m) => member(13, m),
        Event::MemberLeft(m) => member(14, m),
        Event::MemberUpdated(m) => member(15, m),
        Event::MemberRemoved(m) => member(16, m),
        Event::LocalSuspected {
            accuser,
            incarnation,
        } => {
            h.tagged(17, accuser.as_str().as_bytes());
            h.tagged(17, &incarnation.to_le_bytes());
        }
        Event::LocalRefuted { claim, incarnation } => {
            h.tagged(18, &[claim.rank()]);
            h.tagged(18, &incarnation.to_le_bytes());
        }
        Event::JoinCompleted { via } => h.ser(19, via),
        Event::LeaveComplete => h.tagged(20, &[]),
        Event::PacketDropped { from, reason } => {
            h.ser(21, from);
            h.tagged(21, alloc::format!("{reason:?}").as_bytes());
        }
        Event::CommandRejected(err) => h.tagged(22, alloc::format!("{err:?}").as_bytes()),
        Event::StateChanged {
            key,
            old,
            new,
            cause,
        } => {
            h.tagged(23, key.ty().as_bytes());
            h.tagged(23, key.key().as_bytes());
            for e in [old, new] {
                match e {
                    Some(e) => {
                        h.tagged(24, &e.version.to_le_bytes());
                        h.tagged(24, e.origin.as_str().as_bytes());
                        h.tagged(24, e.value.as_deref().unwrap_or(b"\xff-deleted"));
                    }
                    None => h.tagged(25, &[]),
                }
            }
            h.tagged(23, alloc::format!("{cause:?}").as_bytes());
        }
        Event::ViewChanged { checksum, members } => {
            h.tagged(28, &checksum.to_le_bytes());
            h.tagged(28, &(*members as u64).to_le_bytes());
        }
        Event::ViewStable { checksum, members } => {
            h.tagged(29, &checksum.to_le_bytes());
            for m in members {
                h.tagged(29, m.as_str().as_bytes());
            }
        }
        Event::LeaderChanged { leader } => {
            h.tagged(
                30,
                leader.as_ref().map_or(&b""[..], |l| l.as_str().as_bytes()),
            );
        }
        Event::OriginFailed { origin, left, keys } => {
            h.tagged(26, origin.as_str().as_bytes());
            h.tagged(26, &[u8::from(*left)]);
            for k in keys {
                h.tagged(27, k.ty().as_bytes());
                h.tagged(27, k.key().as_bytes());
            }
        }
        // operator control (issue 14): tags from 140 up
        Event::LocalRemoved { incarnation } => h.tagged(140, &incarnation.to_le_bytes()),
        Event::Conflict {
            member: m,
            claimed_addr,
        } => {
            member(131, m);
            h.ser(131, claimed_addr);
        }
        // Application messaging (issue 14).
        Event::Message {
            from,
            channel,
            payload,
        } => {
            h.tagged(31, from.as_str().as_bytes());
            h.tagged(31, &channel.to_le_bytes());
            h.tagged(31, payload);
        }
        Event::UserEvent {
            origin,
            name,
            ltime,
            payload,
        } => {
            h.tagged(32, origin.as_str().as_bytes());
            h.tagged(32, name.as_bytes());
            h.tagged(32, &ltime.to_le_bytes());
            h.tagged(32, payload);
        }
        Event::Query { id, name, payload } => {
            h.tagged(33, id.origin.as_bytes());
            h.tagged(33, &id.ltime.to_le_bytes());
            h.tagged(33, name.as_bytes());
            h.tagged(33, payload);
        }
        Event::QueryResponse {
            query,
            from,
            payload,
        } => {
            h.tagged(34, &query.to_le_bytes());
            h.tagged(34, from.as_str().as_bytes());
            h.tagged(34, payload);
        }
        Event::QueryDone {
            query,
            acks,
            responses,
        } => {
            h.tagged(35, &query.to_le_bytes());
            h.tagged(35, &(*acks as u64).to_le_bytes());
            h.tagged(35, &(*responses as u64).to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Command, Identity, Node, NodeName};
    use alloc::vec;

    #[test]
    fn frames_round_trip_and_report_partial_input() {
        let rec: TraceRecord<u32> = TraceRecord::Step {
            node: 3,
            now: Instant::from_millis(5),
            input: Input::Command(Command::Join { seeds: vec![1, 2] }),
            digest: 42,
        };
        let mut buf = Vec::new();
        encode_frame(&rec, &mut buf);
        let (back, used) = decode_frame::<TraceRecord<u32>>(&buf).unwrap().unwrap();
        assert_eq!((back, used), (rec, buf.len()));
        assert_eq!(
            decode_frame::<TraceRecord<u32>>(&buf[..buf.len() - 1]).unwrap(),
            None
        );
        let garbage = [5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(decode_frame::<TraceRecord<u32>>(&garbage).is_err());
    }

    #[test]
    fn digest_tracks_every_output_byte() {
        let id = Identity::new(NodeName::new("a").unwrap(), 1u32);
        let mut n = Node::new(Config::lan(), id, 7).unwrap();
        let out = n.handle(
            Input::Command(Command::Join { seeds: vec![2] }),
            Instant::ZERO,
        );
        let d = digest_outputs(&out);
        let mut changed = out.clone();
        if let Some(Output::SendStream { bytes, .. }) = changed.first_mut() {
            bytes[3] ^= 1;
        }
        assert_ne!(d, digest_outputs(&changed));
        assert_eq!(d, digest_outputs(&out));
    }
}
