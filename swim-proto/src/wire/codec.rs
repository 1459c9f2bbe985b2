//! The codec proper: section flags in a message's first byte, bounds-checked decoding of
//! datagrams and stream messages, and their encoders (the message types are in the parent
//! module, `wire`).

use alloc::vec::Vec;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::*;
use crate::packet::plaintext;

/// In a datagram's first byte (the primary message's variant index, below 32): membership
/// updates follow the message. Without it there is no update section, not even a count.
pub(super) const HAS_UPDATES: u8 = 0x40;
/// In a datagram's first byte: state entries follow (after any updates).
pub(super) const HAS_STATE: u8 = 0x20;
/// The variant index bits of a datagram's first byte.
pub(super) const VARIANT: u8 = 0x1f;

/// A postcard input whose first byte is replaced: decodes a datagram's primary message with
/// the section flags masked out of its variant byte, still borrowing from the input.
pub(super) struct Masked<'de> {
    first: Option<u8>,
    rest: &'de [u8],
}

impl<'de> postcard::de_flavors::Flavor<'de> for Masked<'de> {
    type Remainder = &'de [u8];
    type Source = &'de [u8];

    fn pop(&mut self) -> postcard::Result<u8> {
        if let Some(b) = self.first.take() {
            return Ok(b);
        }
        let (&b, rest) = self
            .rest
            .split_first()
            .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
        self.rest = rest;
        Ok(b)
    }

    fn try_take_n(&mut self, ct: usize) -> postcard::Result<&'de [u8]> {
        if self.first.is_some() {
            // Only the variant index (one byte) is read before the fields.
            return Err(postcard::Error::DeserializeBadEncoding);
        }
        if self.rest.len() < ct {
            return Err(postcard::Error::DeserializeUnexpectedEnd);
        }
        let (taken, rest) = self.rest.split_at(ct);
        self.rest = rest;
        Ok(taken)
    }

    fn finalize(self) -> postcard::Result<&'de [u8]> {
        Ok(self.rest)
    }
}

/// A datagram's primary message, whether the update and state sections follow, and the rest.
type MessageAndSections<'a, A> = (Message<'a, A>, bool, bool, &'a [u8]);

/// Reads a datagram's primary message and its section flags (updates, state).
pub(super) fn take_message<'a, A: DeserializeOwned>(
    payload: &'a [u8],
) -> Result<MessageAndSections<'a, A>, DecodeError> {
    let (&first, rest) = payload.split_first().ok_or(DecodeError::Truncated)?;
    if first & !(VARIANT | HAS_UPDATES | HAS_STATE) != 0 {
        return Err(DecodeError::Malformed);
    }
    let flavor = Masked {
        first: Some(first & VARIANT),
        rest,
    };
    let mut de = postcard::Deserializer::from_flavor(flavor);
    let message = Message::deserialize(&mut de).map_err(map_err)?;
    let rest = de.finalize().map_err(map_err)?;
    Ok((
        message,
        first & HAS_UPDATES != 0,
        first & HAS_STATE != 0,
        rest,
    ))
}

/// Writes a datagram's payload: the primary message, already encoded at `buf[message_at..]`,
/// gets its section flags, then each non-empty section follows as a count and its entries.
pub(crate) fn finish_datagram(
    buf: &mut Vec<u8>,
    message_at: usize,
    updates: (usize, &[u8]),
    state: (usize, &[u8]),
) {
    debug_assert!(buf[message_at] <= VARIANT, "variant index below 32");
    if updates.0 > 0 {
        buf[message_at] |= HAS_UPDATES;
        encode_count(updates.0, buf);
        buf.extend_from_slice(updates.1);
    }
    if state.0 > 0 {
        buf[message_at] |= HAS_STATE;
        encode_count(state.0, buf);
        buf.extend_from_slice(state.1);
    }
}

/// Appends the postcard encoding of `value` to `out`.
pub(crate) fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    let buf = core::mem::take(out);
    // Invariant: postcard into a growable Vec fails only if a Serialize impl fails, and the
    // types encoded here (ours plus the Address type) have infallible impls.
    *out = postcard::to_extend(value, buf).expect("postcard encoding into a Vec is infallible");
}

/// Appends a varint-encoded count to `out`.
pub(crate) fn encode_count(count: usize, out: &mut Vec<u8>) {
    encode_into(&(count as u32), out);
}

pub(super) fn map_err(e: postcard::Error) -> DecodeError {
    match e {
        postcard::Error::DeserializeUnexpectedEnd => DecodeError::Truncated,
        _ => DecodeError::Malformed,
    }
}

pub(super) fn take<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<(T, &'a [u8]), DecodeError> {
    postcard::take_from_bytes(bytes).map_err(map_err)
}

/// Reads a flagged section: a non-zero varint count and that many `T`s (nothing when the flag
/// is off, so every datagram has exactly one encoding).
pub(super) fn read_section<'a, T: Deserialize<'a>>(
    present: bool,
    rest: &'a [u8],
    min_len: usize,
) -> Result<(Vec<T>, &'a [u8]), DecodeError> {
    if !present {
        return Ok((Vec::new(), rest));
    }
    let (items, rest) = read_list(rest, min_len)?;
    if items.is_empty() {
        return Err(DecodeError::Malformed);
    }
    Ok((items, rest))
}

/// Reads a varint count and that many `T`s, each at least `min_len` bytes.
pub(super) fn read_list<'a, T: Deserialize<'a>>(
    mut rest: &'a [u8],
    min_len: usize,
) -> Result<(Vec<T>, &'a [u8]), DecodeError> {
    let (count, tail) = take::<u32>(rest)?;
    rest = tail;
    let count = count as usize;
    if count > rest.len() / min_len {
        return Err(DecodeError::TooManyUpdates);
    }
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        let (item, tail) = take::<T>(rest)?;
        items.push(item);
        rest = tail;
    }
    Ok((items, rest))
}

pub(super) fn read_updates<'a, A: DeserializeOwned>(
    rest: &'a [u8],
) -> Result<(Vec<Update<'a, A>>, &'a [u8]), DecodeError> {
    read_list(rest, MIN_UPDATE_LEN)
}

pub(super) fn end(rest: &[u8]) -> Result<(), DecodeError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::TrailingBytes)
    }
}

/// Decodes a plaintext datagram, checking version and cluster label. Allocates at most one
/// `Vec` of borrowed updates, sized by what the input can actually hold.
pub fn decode_datagram<'a, A: DeserializeOwned>(
    bytes: &'a [u8],
    label: &[u8],
) -> Result<Datagram<'a, A>, DecodeError> {
    decode_datagram_payload(plaintext(bytes, label)?)
}

/// Decodes a datagram's (decrypted) payload: the part after the header.
pub fn decode_datagram_payload<'a, A: DeserializeOwned>(
    payload: &'a [u8],
) -> Result<Datagram<'a, A>, DecodeError> {
    let (message, has_updates, has_state, rest) = take_message::<A>(payload)?;
    // The first byte says which sections follow, so a datagram cut short anywhere never
    // decodes as a shorter valid one.
    let (updates, rest) = read_section(has_updates, rest, MIN_UPDATE_LEN)?;
    let (state, rest) = read_section::<StateUpdate<'a>>(has_state, rest, MIN_STATE_UPDATE_LEN)?;
    end(rest)?;
    Ok(Datagram {
        message,
        updates,
        state,
    })
}

/// Decodes a plaintext stream message, checking version and cluster label.
pub fn decode_stream<'a, A: DeserializeOwned>(
    bytes: &'a [u8],
    label: &[u8],
) -> Result<StreamMessage<'a, A>, DecodeError> {
    decode_stream_payload(plaintext(bytes, label)?)
}

/// Decodes a stream message's (decrypted) payload: the part after the header.
pub fn decode_stream_payload<'a, A: DeserializeOwned>(
    payload: &'a [u8],
) -> Result<StreamMessage<'a, A>, DecodeError> {
    let (header, rest) = take::<StreamHeader<'a, A>>(payload)?;
    let (updates, rest) = read_updates(rest)?;
    let (mut state, mut payload) = (None, None);
    match header.kind {
        StreamKind::State { .. } => {
            let (sync, rest) = take::<StateSync<'a>>(rest)?;
            end(rest)?;
            state = Some(sync);
        }
        StreamKind::User { .. } | StreamKind::QueryResponse { .. } => {
            let (body, rest) = take::<&'a [u8]>(rest)?;
            end(rest)?;
            payload = Some(body);
        }
        _ => end(rest)?,
    }
    Ok(StreamMessage {
        header,
        updates,
        state,
        payload,
    })
}

/// Where a datagram payload's bytes go, for traffic accounting (the simulator's bytes per
/// message kind): the primary message, the piggybacked membership updates and state entries.
/// Each section's size includes its count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DatagramLayout {
    /// The primary message's kind.
    pub kind: MessageKind,
    /// Bytes of the primary message.
    pub message: usize,
    /// Piggybacked membership updates.
    pub updates: usize,
    /// Their bytes, count included.
    pub update_bytes: usize,
    /// Piggybacked state entries.
    pub state: usize,
    /// Their bytes, count included.
    pub state_bytes: usize,
}

/// Decodes a datagram's (decrypted) payload and says where its bytes go.
pub fn datagram_layout<A: DeserializeOwned>(payload: &[u8]) -> Result<DatagramLayout, DecodeError> {
    let (message, has_updates, has_state, rest) = take_message::<A>(payload)?;
    let (updates, tail) = read_section::<Update<'_, A>>(has_updates, rest, MIN_UPDATE_LEN)?;
    let (state, last) = read_section::<StateUpdate<'_>>(has_state, tail, MIN_STATE_UPDATE_LEN)?;
    end(last)?;
    Ok(DatagramLayout {
        kind: message.kind(),
        message: payload.len() - rest.len(),
        updates: updates.len(),
        update_bytes: rest.len() - tail.len(),
        state: state.len(),
        state_bytes: tail.len(),
    })
}

/// The kind of a stream message, from its (decrypted) payload's header alone.
pub fn stream_kind<A: DeserializeOwned>(payload: &[u8]) -> Result<StreamKind, DecodeError> {
    take::<StreamHeader<'_, A>>(payload).map(|(h, _)| h.kind)
}

/// Encodes a complete datagram (used by tests, fuzzers and tools; the node packs its own
/// datagrams up to `max_packet_size`).
pub fn encode_datagram<A: Serialize>(
    label: &[u8],
    message: &Message<'_, A>,
    updates: &[Update<'_, A>],
) -> Vec<u8> {
    encode_datagram_with_state(label, message, updates, &[])
}

/// Encodes a complete datagram with piggybacked state entries.
pub fn encode_datagram_with_state<A: Serialize>(
    label: &[u8],
    message: &Message<'_, A>,
    updates: &[Update<'_, A>],
    state: &[StateUpdate<'_>],
) -> Vec<u8> {
    let mut out = Vec::new();
    write_header(&mut out, label, 0);
    let at = out.len();
    encode_into(message, &mut out);
    let (mut body, mut entries) = (Vec::new(), Vec::new());
    for u in updates {
        encode_into(u, &mut body);
    }
    for e in state {
        encode_into(e, &mut entries);
    }
    finish_datagram(
        &mut out,
        at,
        (updates.len(), &body),
        (state.len(), &entries),
    );
    out
}

/// Encodes a complete stream message. For a [`StreamKind::State`] header the body is an empty
/// [`StateSync`]; use [`encode_stream_with_state`] to give one.
pub fn encode_stream<A: Serialize>(
    label: &[u8],
    header: &StreamHeader<'_, A>,
    updates: &[Update<'_, A>],
) -> Vec<u8> {
    encode_stream_with_state(label, header, updates, &StateSync::default())
}

/// Encodes a complete stream message; `sync` is written only for a [`StreamKind::State`]
/// header, and an empty payload for [`StreamKind::User`] and [`StreamKind::QueryResponse`]
/// (use [`encode_stream_with_payload`] to give one).
pub fn encode_stream_with_state<A: Serialize>(
    label: &[u8],
    header: &StreamHeader<'_, A>,
    updates: &[Update<'_, A>],
    sync: &StateSync<'_>,
) -> Vec<u8> {
    let mut out = Vec::new();
    write_header(&mut out, label, 0);
    encode_into(header, &mut out);
    encode_count(updates.len(), &mut out);
    for u in updates {
        encode_into(u, &mut out);
    }
    match header.kind {
        StreamKind::State { .. } => encode_into(sync, &mut out),
        // An empty payload, so every header encodes to a message that decodes.
        StreamKind::User { .. } | StreamKind::QueryResponse { .. } => {
            encode_into(&[][..] as &[u8], &mut out);
        }
        _ => {}
    }
    out
}

/// Encodes a decoded stream message back into bytes that decode equal: header, updates, and
/// the state exchange or application payload its kind carries (a missing one is written
/// empty). Tools and the fuzz targets re-encode with it.
pub fn encode_stream_message<A: Serialize>(label: &[u8], m: &StreamMessage<'_, A>) -> Vec<u8> {
    match (m.header.kind, m.payload) {
        (StreamKind::User { .. } | StreamKind::QueryResponse { .. }, Some(payload)) => {
            let mut out = Vec::new();
            write_header(&mut out, label, 0);
            encode_into(&m.header, &mut out);
            encode_count(m.updates.len(), &mut out);
            for u in &m.updates {
                encode_into(u, &mut out);
            }
            encode_into(payload, &mut out);
            out
        }
        _ => {
            let empty = StateSync::default();
            encode_stream_with_state(
                label,
                &m.header,
                &m.updates,
                m.state.as_ref().unwrap_or(&empty),
            )
        }
    }
}

/// Encodes a complete [`StreamKind::User`] or [`StreamKind::QueryResponse`] stream message
/// carrying `payload` (no membership updates).
pub fn encode_stream_with_payload<A: Serialize>(
    label: &[u8],
    header: &StreamHeader<'_, A>,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    write_header(&mut out, label, 0);
    encode_into(header, &mut out);
    encode_count(0, &mut out);
    encode_into(payload, &mut out);
    out
}
