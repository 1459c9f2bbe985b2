//! FNV-1a, 64-bit: the one hash behind the core's digests and checksums (trace digests, the
//! membership checksum, state fingerprints and watermark summaries).
//!
//! Stable: the same bytes hash to the same value on every platform and in every version, so
//! digests can be recorded, compared across machines and pinned in tests. Not cryptographic
//! and not collision-resistant against an adversary: never use it where a peer choosing the
//! input could gain from a collision (the node's hash maps use a seeded hasher instead).

/// FNV-1a offset basis (64-bit).
const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV prime (64-bit).
const PRIME: u64 = 0x0100_0000_01b3;

/// Incremental FNV-1a (64-bit): feeding bytes in several [`write`](Fnv1a64::write) calls
/// gives the same hash as feeding them at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv1a64(u64);

impl Fnv1a64 {
    /// A hasher at the offset basis.
    pub const fn new() -> Self {
        Fnv1a64(OFFSET_BASIS)
    }

    /// Feeds `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(PRIME);
        }
    }

    /// Folds a whole 64-bit word in one FNV step (`(h ^ word) · prime`), as a digest of a
    /// sequence of digests does. Not the same as writing the word's eight bytes.
    pub fn write_word(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(PRIME);
    }

    /// The hash so far.
    pub const fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv1a64 {
    fn default() -> Self {
        Fnv1a64::new()
    }
}

/// FNV-1a (64-bit) of `bytes`: a stable, non-cryptographic hash for digests (see
/// [`Fnv1a64`] to hash in several pieces).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a64::new();
    h.write(bytes);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published FNV-1a 64-bit test vectors: the hash must never change.
    #[test]
    fn matches_the_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        let mut h = Fnv1a64::new();
        h.write(b"foo");
        h.write(b"bar");
        assert_eq!(h.finish(), fnv1a64(b"foobar"));
    }
}
