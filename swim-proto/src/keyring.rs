//! Authenticated encryption of every packet, with a keyring that rotates without downtime.
//!
//! ChaCha20-Poly1305 (RFC 8439). The packet header (version, cluster label, flags) is the
//! associated data, so a packet cannot be moved to another cluster or have its label stripped.
//! Nonces are 96 bits from the node's seeded RNG: runs stay deterministic and replayable, and a
//! collision needs about 2^48 packets under one key.
//!
//! Rotation: install the new key on every node (all still encrypt with the old primary, and
//! decrypt with either), make it primary everywhere, then remove the old key. At every step
//! every node can read what every other node sends. `docs/security.md` has the procedure.

use alloc::vec::Vec;
use core::fmt;

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce, Tag};
use serde::{Deserialize, Serialize};

use crate::decode_error::DecodeError;

/// Key length in bytes.
pub const KEY_LEN: usize = 32;
/// Nonce length in bytes.
pub const NONCE_LEN: usize = 12;
/// Authentication tag length in bytes.
pub const TAG_LEN: usize = 16;
/// Bytes encryption adds to every packet (nonce and tag).
pub const ENCRYPTION_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Most keys a keyring holds (the primary included).
pub const MAX_KEYS: usize = 16;

/// A 256-bit secret key. Its `Debug` shows only a fingerprint, never the key.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// A key from its 32 bytes.
    pub const fn new(bytes: [u8; KEY_LEN]) -> Self {
        SecretKey(bytes)
    }

    /// Parses 64 hexadecimal digits.
    pub fn from_hex(hex: &str) -> Result<Self, KeyringError> {
        let hex = hex.trim();
        if hex.len() != 2 * KEY_LEN {
            return Err(KeyringError::BadKey);
        }
        let mut key = [0u8; KEY_LEN];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or(KeyringError::BadKey)?, 16)
                .map_err(|_| KeyringError::BadKey)?;
        }
        Ok(SecretKey(key))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A short, non-secret identifier for logs: the first 4 bytes of a hash of the key.
    pub fn fingerprint(&self) -> u32 {
        let mut h: u32 = 0x811c_9dc5;
        for &b in &self.0 {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        h
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({:08x})", self.fingerprint())
    }
}

impl Serialize for SecretKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            let mut hex = alloc::string::String::with_capacity(2 * KEY_LEN);
            for b in self.0 {
                hex.push_str(&alloc::format!("{b:02x}"));
            }
            s.serialize_str(&hex)
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for SecretKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = SecretKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 32-byte key as 64 hexadecimal digits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SecretKey, E> {
                SecretKey::from_hex(v).map_err(|_| E::custom("a key must be 64 hexadecimal digits"))
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<SecretKey, E> {
                let key: [u8; KEY_LEN] = v
                    .try_into()
                    .map_err(|_| E::custom("a key must be 32 bytes"))?;
                Ok(SecretKey(key))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_bytes(V)
        }
    }
}

/// A rejected keyring change; the keyring is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyringError {
    /// The keyring already holds [`MAX_KEYS`] keys.
    Full,
    /// The key is not installed.
    UnknownKey,
    /// The primary key cannot be removed; make another key primary first.
    RemovePrimary,
    /// Not 64 hexadecimal digits.
    BadKey,
}

impl fmt::Display for KeyringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyringError::Full => "the keyring is full",
            KeyringError::UnknownKey => "the key is not installed",
            KeyringError::RemovePrimary => {
                "the primary key cannot be removed; make another key primary first"
            }
            KeyringError::BadKey => "a key must be 64 hexadecimal digits",
        })
    }
}

impl core::error::Error for KeyringError {}

/// The keys a node decrypts with; the first (primary) is the one it encrypts with.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keyring {
    /// Primary first. Never empty, at most [`MAX_KEYS`].
    keys: Vec<SecretKey>,
}

impl Keyring {
    /// A keyring with one (primary) key.
    pub fn new(primary: SecretKey) -> Self {
        Keyring {
            keys: alloc::vec![primary],
        }
    }

    /// The key packets are encrypted with.
    pub fn primary(&self) -> &SecretKey {
        &self.keys[0]
    }

    /// Every installed key, primary first.
    pub fn keys(&self) -> &[SecretKey] {
        &self.keys
    }

    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if self.keys.is_empty() {
            return Err("must hold at least one key");
        }
        if self.keys.len() > MAX_KEYS {
            return Err("holds more than 16 keys");
        }
        Ok(())
    }

    /// Adds a key for decryption (idempotent).
    pub fn install(&mut self, key: SecretKey) -> Result<(), KeyringError> {
        if self.keys.contains(&key) {
            return Ok(());
        }
        if self.keys.len() >= MAX_KEYS {
            return Err(KeyringError::Full);
        }
        self.keys.push(key);
        Ok(())
    }

    /// Makes an installed key the primary.
    pub fn use_key(&mut self, key: &SecretKey) -> Result<(), KeyringError> {
        let i = self
            .keys
            .iter()
            .position(|k| k == key)
            .ok_or(KeyringError::UnknownKey)?;
        let k = self.keys.remove(i);
        self.keys.insert(0, k);
        Ok(())
    }

    /// Removes a key that is not the primary.
    pub fn remove(&mut self, key: &SecretKey) -> Result<(), KeyringError> {
        let i = self
            .keys
            .iter()
            .position(|k| k == key)
            .ok_or(KeyringError::UnknownKey)?;
        if i == 0 {
            return Err(KeyringError::RemovePrimary);
        }
        self.keys.remove(i);
        Ok(())
    }

    /// Encrypts `buf[start..]` in place with the primary key. `buf[start - NONCE_LEN..start]`
    /// receives the nonce, `buf[..start - NONCE_LEN]` is authenticated as associated data, and
    /// the tag is appended.
    pub(crate) fn seal(&self, buf: &mut Vec<u8>, start: usize, nonce: [u8; NONCE_LEN]) {
        let (head, payload) = buf.split_at_mut(start);
        let aad_len = start - NONCE_LEN;
        head[aad_len..].copy_from_slice(&nonce);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(self.primary().as_bytes()));
        let tag = cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &head[..aad_len], payload)
            .expect("ChaCha20-Poly1305 encrypts any packet shorter than 256 GiB");
        buf.extend_from_slice(&tag);
    }

    /// Authenticates and decrypts `sealed` (nonce, ciphertext, tag) with any installed key,
    /// primary first, into `out`.
    pub(crate) fn open(
        &self,
        aad: &[u8],
        sealed: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), DecodeError> {
        if sealed.len() < ENCRYPTION_OVERHEAD {
            return Err(DecodeError::Truncated);
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        for key in &self.keys {
            out.clear();
            out.extend_from_slice(ciphertext);
            let cipher = ChaCha20Poly1305::new(Key::from_slice(key.as_bytes()));
            if cipher
                .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, out, Tag::from_slice(tag))
                .is_ok()
            {
                return Ok(());
            }
        }
        out.clear();
        Err(DecodeError::DecryptFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SecretKey {
        SecretKey::new([b; KEY_LEN])
    }

    fn sealed(ring: &Keyring, aad: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut buf = aad.to_vec();
        buf.extend_from_slice(&[0; NONCE_LEN]);
        let start = buf.len();
        buf.extend_from_slice(msg);
        ring.seal(&mut buf, start, [7; NONCE_LEN]);
        buf
    }

    #[test]
    fn seal_open_round_trip_and_reject_tampering() {
        let ring = Keyring::new(key(1));
        let buf = sealed(&ring, b"hdr", b"hello");
        let mut out = Vec::new();
        ring.open(b"hdr", &buf[3..], &mut out).unwrap();
        assert_eq!(out, b"hello");
        assert_eq!(
            ring.open(b"HDR", &buf[3..], &mut out),
            Err(DecodeError::DecryptFailed),
            "header is authenticated"
        );
        let mut flipped = buf.clone();
        flipped[5 + NONCE_LEN] ^= 1;
        assert_eq!(
            ring.open(b"hdr", &flipped[3..], &mut out),
            Err(DecodeError::DecryptFailed)
        );
        assert_eq!(
            Keyring::new(key(2)).open(b"hdr", &buf[3..], &mut out),
            Err(DecodeError::DecryptFailed)
        );
        assert_eq!(
            ring.open(b"hdr", &buf[3..10], &mut out),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn whole_packets_encrypt_and_decrypt() {
        let ring = Keyring::new(key(3));
        let plain = crate::wire::encode_datagram::<u32>(
            b"lbl",
            &crate::wire::Message::Ack {
                seq: 9,
                checksum: 0,
            },
            &[],
        );
        let sealed = ring.encrypt_packet(&plain, [1; NONCE_LEN]).unwrap();
        assert_eq!(sealed.len(), plain.len() + ENCRYPTION_OVERHEAD);
        let payload = ring.decrypt_packet(&sealed, b"lbl").unwrap();
        assert_eq!(
            payload,
            plain[1 + 1 + 3..],
            "the payload follows the version-2 header"
        );
        assert_eq!(
            ring.decrypt_packet(&sealed, b"xyz"),
            Err(DecodeError::LabelMismatch)
        );
        assert_eq!(
            ring.decrypt_packet(&plain, b"lbl"),
            Err(DecodeError::NotEncrypted)
        );
        assert_eq!(
            ring.encrypt_packet(&sealed, [1; NONCE_LEN]),
            Err(DecodeError::Encrypted)
        );
    }

    #[test]
    fn rotation_keeps_old_and_new_readable() {
        let mut ring = Keyring::new(key(1));
        let old = sealed(&ring, b"", b"old");
        ring.install(key(2)).unwrap();
        ring.use_key(&key(2)).unwrap();
        let new = sealed(&ring, b"", b"new");
        let mut out = Vec::new();
        ring.open(b"", &old, &mut out).unwrap();
        ring.open(b"", &new, &mut out).unwrap();
        assert_eq!(ring.remove(&key(2)), Err(KeyringError::RemovePrimary));
        ring.remove(&key(1)).unwrap();
        assert_eq!(
            ring.open(b"", &old, &mut out),
            Err(DecodeError::DecryptFailed)
        );
        assert_eq!(ring.use_key(&key(9)), Err(KeyringError::UnknownKey));
        for b in 10..10 + MAX_KEYS as u8 - 1 {
            ring.install(key(b)).unwrap();
        }
        assert_eq!(ring.install(key(99)), Err(KeyringError::Full));
    }

    #[test]
    fn keys_parse_from_hex_and_never_print() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let k = SecretKey::from_hex(hex).unwrap();
        assert_eq!(k.as_bytes()[1], 0x11);
        assert!(!alloc::format!("{k:?}").contains("0011"));
        assert_eq!(SecretKey::from_hex("abc"), Err(KeyringError::BadKey));
        assert_eq!(
            SecretKey::from_hex(&"zz".repeat(32)),
            Err(KeyringError::BadKey)
        );
        let bytes = postcard::to_allocvec(&Keyring::new(k.clone())).unwrap();
        assert_eq!(
            postcard::from_bytes::<Keyring>(&bytes).unwrap().primary(),
            &k
        );
    }
}
