//! Why a received packet could not be decoded: a leaf module shared by the packet framing,
//! the keyring and the codec (re-exported as `wire::DecodeError` and at the crate root).

use core::fmt;

/// Why a packet could not be decoded. The packet is dropped and counted; nothing changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeError {
    /// The packet is empty or shorter than its header.
    Truncated,
    /// The version byte is not [`PROTOCOL_VERSION`](crate::wire::PROTOCOL_VERSION).
    UnsupportedVersion(u8),
    /// The cluster label differs from this node's.
    LabelMismatch,
    /// A field does not decode (bad enum tag, bad UTF-8, length past the end...).
    Malformed,
    /// The declared update count cannot fit in the bytes that remain.
    TooManyUpdates,
    /// Bytes remain after the last update.
    TrailingBytes,
    /// The packet is encrypted and this node has no keyring (or a plaintext decoder was used).
    Encrypted,
    /// The packet is plaintext and this node requires encryption.
    NotEncrypted,
    /// No installed key authenticates the packet (wrong key, or tampered with).
    DecryptFailed,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("packet truncated"),
            DecodeError::UnsupportedVersion(v) => write!(f, "unsupported protocol version {v}"),
            DecodeError::LabelMismatch => f.write_str("cluster label mismatch"),
            DecodeError::Malformed => f.write_str("malformed field"),
            DecodeError::TooManyUpdates => f.write_str("update count exceeds packet size"),
            DecodeError::TrailingBytes => f.write_str("trailing bytes after last update"),
            DecodeError::Encrypted => f.write_str("encrypted packet, no keyring"),
            DecodeError::NotEncrypted => f.write_str("plaintext packet, encryption required"),
            DecodeError::DecryptFailed => f.write_str("no installed key authenticates the packet"),
        }
    }
}

impl core::error::Error for DecodeError {}
