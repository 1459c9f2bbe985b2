//! Packets: the header every datagram and stream message starts with, the cluster label,
//! sealing and opening (encryption), and the wire's hard size limits.
//!
//! ```text
//! [version << 4 | flags: u8][label length: u8, label bytes: only with FLAG_LABELED][payload]
//! ```
//!
//! Version 2 (issue 12) packs the version and the flags into one byte, and the label's length
//! and bytes follow only when the label is not empty, so an unlabeled plaintext packet spends
//! one byte on its header (version 1 spent three: version, label length, flags). A version 1
//! packet's first byte is 1, read as version 1 and dropped as unsupported.
//!
//! With encryption on (flag bit 0, [`FLAG_ENCRYPTED`]), the payload is
//! `[nonce: 12][ciphertext][tag: 16]` and the header is the associated data, so a packet cannot
//! be moved to another cluster or have its label stripped (`keyring` holds the keys and the
//! cipher). The payload's layout is `wire`'s.

use alloc::vec::Vec;

use rand_chacha::ChaCha8Rng;
use rand_core::RngCore;

use crate::decode_error::DecodeError;
use crate::keyring::{ENCRYPTION_OVERHEAD, Keyring, NONCE_LEN};

/// Largest packet a UDP datagram can carry over IPv4 (65,535 − 8 − 20 bytes).
pub const MAX_DATAGRAM_SIZE: usize = 65_507;
/// Smallest allowed `max_packet_size`: the IPv4 minimum reassembly buffer.
pub const MIN_DATAGRAM_SIZE: usize = 512;
/// Hard wire limit on a node name's length in bytes; `Config::max_name_len` may lower it.
pub const MAX_NAME_LEN: usize = 255;
/// Hard wire limit on a cluster label's length in bytes.
pub const MAX_LABEL_LEN: usize = 255;
/// Hard wire limit on a state type name's length in bytes.
pub const MAX_STATE_TYPE_LEN: usize = 64;

/// Version byte that starts every packet. Packets with another version are dropped and counted.
pub const PROTOCOL_VERSION: u8 = 2;

/// Header flag: the payload is encrypted.
pub const FLAG_ENCRYPTED: u8 = 1;
/// Header flag (version 2): a label length and the label follow the first byte.
const FLAG_LABELED: u8 = 2;

/// Writes the packet header (version, flags, cluster label) at the end of `out`. `flags` may
/// hold [`FLAG_ENCRYPTED`].
pub fn write_header(out: &mut Vec<u8>, label: &[u8], flags: u8) {
    debug_assert!(label.len() <= MAX_LABEL_LEN);
    debug_assert!(flags & !FLAG_ENCRYPTED == 0);
    let labeled = if label.is_empty() { 0 } else { FLAG_LABELED };
    out.push(PROTOCOL_VERSION << 4 | labeled | flags);
    if !label.is_empty() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
}

/// A checked packet header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Flag bits ([`FLAG_ENCRYPTED`]).
    pub flags: u8,
    /// Header length in bytes: the payload starts here.
    pub len: usize,
}

/// Checks version, cluster label and flags.
pub fn read_header(bytes: &[u8], label: &[u8]) -> Result<Header, DecodeError> {
    let (&first, rest) = bytes.split_first().ok_or(DecodeError::Truncated)?;
    // Version 1 used the whole first byte for the version.
    let version = if first >> 4 == 0 { first } else { first >> 4 };
    if version != PROTOCOL_VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let flags = first & 0x0f;
    if flags & !(FLAG_ENCRYPTED | FLAG_LABELED) != 0 {
        return Err(DecodeError::Malformed);
    }
    let flags_out = flags & FLAG_ENCRYPTED;
    if flags & FLAG_LABELED == 0 {
        if !label.is_empty() {
            return Err(DecodeError::LabelMismatch);
        }
        return Ok(Header {
            flags: flags_out,
            len: 1,
        });
    }
    let (&len, rest) = rest.split_first().ok_or(DecodeError::Truncated)?;
    let len = usize::from(len);
    if len == 0 {
        return Err(DecodeError::Malformed);
    }
    if rest.len() < len {
        return Err(DecodeError::Truncated);
    }
    if &rest[..len] != label {
        return Err(DecodeError::LabelMismatch);
    }
    Ok(Header {
        flags: flags_out,
        len: 2 + len,
    })
}

/// The plaintext payload of a packet, or [`DecodeError::Encrypted`].
pub(crate) fn plaintext<'a>(bytes: &'a [u8], label: &[u8]) -> Result<&'a [u8], DecodeError> {
    let h = read_header(bytes, label)?;
    if h.flags & FLAG_ENCRYPTED != 0 {
        return Err(DecodeError::Encrypted);
    }
    Ok(&bytes[h.len..])
}

/// Writes the header (the cluster `label`; encrypted if there is a keyring), and room for the
/// nonce when encrypting; returns where the payload starts.
pub(crate) fn open(buf: &mut Vec<u8>, label: &[u8], keyring: Option<&Keyring>) -> usize {
    let encrypted = keyring.is_some();
    write_header(buf, label, if encrypted { FLAG_ENCRYPTED } else { 0 });
    if encrypted {
        buf.extend_from_slice(&[0; NONCE_LEN]);
    }
    buf.len()
}

/// Encrypts the payload written after `start` (as returned by [`open`]) in place, if there is
/// a keyring, with a nonce from the node's RNG.
pub(crate) fn seal(
    buf: &mut Vec<u8>,
    start: usize,
    keyring: Option<&Keyring>,
    rng: &mut ChaCha8Rng,
) {
    let Some(k) = keyring else { return };
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    k.seal(buf, start, nonce);
}

/// Checks a received packet's header against the cluster `label` and finds its plaintext
/// payload: `Some(start)` when it is `bytes[start..]`, `None` when it was decrypted into
/// `plain` (with `keyring`, which encryption requires).
pub(crate) fn unseal(
    bytes: &[u8],
    label: &[u8],
    keyring: Option<&Keyring>,
    plain: &mut Vec<u8>,
) -> Result<Option<usize>, DecodeError> {
    let h = read_header(bytes, label)?;
    match (keyring, h.flags & FLAG_ENCRYPTED != 0) {
        (None, false) => Ok(Some(h.len)),
        (None, true) => Err(DecodeError::Encrypted),
        (Some(_), false) => Err(DecodeError::NotEncrypted),
        (Some(k), true) => {
            k.open(&bytes[..h.len], &bytes[h.len..], plain)?;
            Ok(None)
        }
    }
}

impl Keyring {
    /// Encrypts a whole plaintext packet (as built by `wire::encode_datagram` or
    /// `encode_stream`) with the primary key, for tools and tests that craft packets outside a
    /// node. The node itself encrypts as it builds packets.
    pub fn encrypt_packet(
        &self,
        packet: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Result<Vec<u8>, DecodeError> {
        let first = *packet.first().ok_or(DecodeError::Truncated)?;
        let header_len = if first & FLAG_LABELED == 0 {
            1
        } else {
            2 + usize::from(*packet.get(1).ok_or(DecodeError::Truncated)?)
        };
        if packet.len() < header_len {
            return Err(DecodeError::Truncated);
        }
        if first & FLAG_ENCRYPTED != 0 {
            return Err(DecodeError::Encrypted);
        }
        let mut buf = Vec::with_capacity(packet.len() + ENCRYPTION_OVERHEAD);
        buf.extend_from_slice(&packet[..header_len]);
        buf[0] |= FLAG_ENCRYPTED;
        buf.extend_from_slice(&[0; NONCE_LEN]);
        let start = buf.len();
        buf.extend_from_slice(&packet[header_len..]);
        self.seal(&mut buf, start, nonce);
        Ok(buf)
    }

    /// Checks an encrypted packet's header against `label` and decrypts its payload with any
    /// installed key, as a receiving node does; for tools and tests that inspect what a node
    /// sent. Returns the plaintext payload (what follows the header).
    pub fn decrypt_packet(&self, packet: &[u8], label: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let header = read_header(packet, label)?;
        if header.flags & FLAG_ENCRYPTED == 0 {
            return Err(DecodeError::NotEncrypted);
        }
        let (aad, sealed) = packet.split_at(header.len);
        let mut out = Vec::new();
        self.open(aad, sealed, &mut out)?;
        Ok(out)
    }
}
