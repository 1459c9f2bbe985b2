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
//! Deliberately public: the simulator and the async driver record traces, `swim-sim replay`
//! reads them.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::hash::Fnv1a64;
use crate::io::{Input, Output};
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

/// A digest of a `handle` call's outputs, in order: destinations, packet bytes, deadlines and
/// events. Equal outputs give equal digests on every platform.
///
/// It hashes the outputs' own `Serialize` derivation: packets and deadlines encoded with the wire
/// codec, events in the JSON form drivers emit as event lines. A new output or event
/// variant is covered the moment it exists: there is no hand-written walk to forget it in.
pub fn digest_outputs<A: Serialize>(outputs: &[Output<A>]) -> u64 {
    let mut h = Fnv1a64::new();
    let mut buf = Vec::new();
    for o in outputs {
        buf.clear();
        match o {
            // Events flatten the member they carry into one object, which the wire codec
            // (postcard) cannot size ahead; their JSON form is the one drivers emit anyway.
            Output::Event(e) => {
                buf.push(0xe0);
                // Invariant: events serialize infallibly (the names test covers every variant).
                let json = serde_json::to_vec(e).expect("events serialize to JSON");
                buf.extend_from_slice(&json);
            }
            other => crate::wire::encode_into(other, &mut buf),
        }
        h.write(&(buf.len() as u64).to_le_bytes());
        h.write(&buf);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::Event;
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

    #[test]
    fn digest_tells_events_apart_by_kind_and_field() {
        use crate::member::{Member, MemberState, Metadata};
        let m = Member {
            name: NodeName::new("b").unwrap(),
            addr: 2u32,
            incarnation: 3,
            state: MemberState::Dead,
            meta: Metadata::empty(),
        };
        let failed = [Output::Event(Event::MemberFailed(m.clone()))];
        let left = [Output::Event(Event::MemberLeft(m.clone()))];
        let mut later = m;
        later.incarnation = 4;
        let failed_later = [Output::Event(Event::MemberFailed(later))];
        assert_ne!(digest_outputs(&failed), digest_outputs(&left));
        assert_ne!(digest_outputs(&failed), digest_outputs(&failed_later));
        // Boundaries count: one output of two events' bytes is not two outputs.
        assert_ne!(digest_outputs::<u32>(&[]), digest_outputs(&failed));
    }
}
