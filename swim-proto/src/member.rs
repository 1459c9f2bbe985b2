//! Members as the protocol sees them, and the SWIM §4.2 precedence rule between two claims.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use core::borrow::Borrow;
use core::fmt;
use serde::{Deserialize, Serialize};

use crate::config::MAX_NAME_LEN;

/// A member's unique name: non-empty UTF-8, at most 255 bytes (a node's config may lower the
/// bound). Names up to 22 bytes are stored inline with no allocation; longer ones are shared.
/// Cheap to clone.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeName(NameRepr);

/// Longest name stored inline.
const INLINE_NAME: usize = 22;

#[derive(Clone)]
enum NameRepr {
    Inline { len: u8, bytes: [u8; INLINE_NAME] },
    Shared(Arc<str>),
}

/// A rejected node name; nothing was created.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// The name is longer than the limit, in bytes.
    TooLong {
        /// Length of the rejected name in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("node name is empty"),
            NameError::TooLong { len, max } => {
                write!(f, "node name is {len} bytes, longer than {max}")
            }
        }
    }
}

impl core::error::Error for NameError {}

impl NodeName {
    /// Validates and wraps a name.
    pub fn new(name: &str) -> Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong {
                len: name.len(),
                max: MAX_NAME_LEN,
            });
        }
        if name.len() <= INLINE_NAME {
            let mut bytes = [0; INLINE_NAME];
            bytes[..name.len()].copy_from_slice(name.as_bytes());
            return Ok(NodeName(NameRepr::Inline {
                len: name.len() as u8,
                bytes,
            }));
        }
        Ok(NodeName(NameRepr::Shared(Arc::from(name))))
    }

    /// The name as a string slice.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            NameRepr::Inline { len, bytes } => core::str::from_utf8(&bytes[..usize::from(*len)])
                .expect("inline names are copied from valid UTF-8"),
            NameRepr::Shared(s) => s,
        }
    }
}

impl NodeName {
    /// The name's UTF-8 bytes, without re-validating inline names (hot paths compare these).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            NameRepr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            NameRepr::Shared(s) => s.as_bytes(),
        }
    }
}

impl PartialEq for NodeName {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for NodeName {}

impl PartialOrd for NodeName {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for NodeName {
    /// UTF-8 byte order, which is the order of the strings.
    #[inline]
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl core::hash::Hash for NodeName {
    /// Hashes as the `str` does, so maps keyed by names can be queried with `&str`.
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl TryFrom<String> for NodeName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        NodeName::new(&s)
    }
}

impl TryFrom<&str> for NodeName {
    type Error = NameError;
    fn try_from(s: &str) -> Result<Self, NameError> {
        NodeName::new(s)
    }
}

impl From<NodeName> for String {
    fn from(n: NodeName) -> String {
        String::from(n.as_str())
    }
}

impl Borrow<str> for NodeName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for NodeName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Application bytes attached to a member (role, version, ports...). Bounded by
/// `Config::max_meta_len`. Cheap to clone; empty metadata allocates nothing. One thin pointer
/// (8 bytes), since every member entry holds one: a simulator keeps n² of them.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(clippy::redundant_allocation)] // the inner box keeps the outer pointer thin
pub struct Metadata(Option<Arc<Box<[u8]>>>);

impl Metadata {
    /// Empty metadata.
    pub fn empty() -> Self {
        Metadata::default()
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_deref().map_or(&[], |b| b)
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

impl From<&[u8]> for Metadata {
    fn from(b: &[u8]) -> Self {
        Metadata((!b.is_empty()).then(|| Arc::new(Box::from(b))))
    }
}

impl From<alloc::vec::Vec<u8>> for Metadata {
    fn from(b: alloc::vec::Vec<u8>) -> Self {
        Metadata((!b.is_empty()).then(|| Arc::new(b.into_boxed_slice())))
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match core::str::from_utf8(self.as_bytes()) {
            Ok(s) => write!(f, "{s:?}"),
            Err(_) => write!(f, "{} bytes", self.len()),
        }
    }
}

impl AsRef<[u8]> for Metadata {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Serialize for Metadata {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.as_bytes())
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Metadata;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Metadata, E> {
                Ok(Metadata::from(v))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// Where a member stands in this node's view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum MemberState {
    /// Answering probes, or not yet suspected.
    Alive,
    /// Missed a probe round; declared dead unless it refutes before its suspicion times out
    /// (SWIM §4.2).
    Suspect,
    /// Declared failed. Kept as a tombstone for `Config::tombstone_retention`, then reaped.
    Dead,
    /// Left gracefully: never reported as failed, never probed again. Kept as a tombstone.
    Left,
}

impl MemberState {
    /// Alive or suspect: still counted as a member and still probed.
    pub fn is_active(self) -> bool {
        matches!(self, MemberState::Alive | MemberState::Suspect)
    }

    /// Rank of the state among claims of the same incarnation; the higher rank wins.
    pub(crate) fn rank(self) -> u8 {
        match self {
            MemberState::Alive => 0,
            MemberState::Suspect => 1,
            MemberState::Dead => 2,
            MemberState::Left => 3,
        }
    }

    /// A short lowercase name for reports and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Alive => "alive",
            MemberState::Suspect => "suspect",
            MemberState::Dead => "dead",
            MemberState::Left => "left",
        }
    }
}

/// Whether a claim `(new_incarnation, new_state)` about a member replaces the claim held.
///
/// SWIM §4.2 gives alive(i) over suspect(j) iff i > j and suspect(i) over alive(j) iff i >= j.
/// For dead, the paper's Confirm message overrides any incarnation; like memberlist, this core
/// lets dead override alive and suspect only of the same or lower incarnation, so a member that
/// already refuted (higher incarnation) is not killed by a stale declaration. Graceful leave
/// outranks dead at the same incarnation, so a departure is never reported as a failure; only a
/// higher incarnation (a rejoin) overrides dead or left.
///
/// All of this is one total order on `(incarnation, rank)` with alive < suspect < dead < left,
/// which makes each member's entry a max-register: gossiped claims merge the same in any order.
/// (Two policies sit outside the order: push-pull snapshots do not adopt tombstones of members
/// never known, and tombstones are eventually reaped.)
pub fn overrides(new: (u64, MemberState), held: (u64, MemberState)) -> bool {
    (new.0, new.1.rank()) > (held.0, held.1.rank())
}

/// A member: name, address, incarnation, state and metadata.
///
/// Serialized (as the subject of an [`Event`](crate::Event)) with the fields `node` (the
/// name), `addr`, `incarnation`, `state` (`alive`, `suspect`, `dead`, `left`) and `meta` (lossy
/// UTF-8 text in human-readable formats such as JSON, bytes otherwise).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Member<A> {
    /// Unique name.
    #[serde(rename = "node")]
    pub name: NodeName,
    /// Where to reach it.
    pub addr: A,
    /// Its incarnation: raised only by the member itself, to refute suspicion or publish new
    /// metadata (SWIM §4.2).
    pub incarnation: u64,
    /// Where it stands in this node's view.
    #[serde(serialize_with = "crate::io::ser::member_state")]
    pub state: MemberState,
    /// Its application metadata as last announced.
    #[serde(serialize_with = "crate::io::ser::text")]
    pub meta: Metadata,
}

#[cfg(test)]
mod tests {
    use super::*;
    use MemberState::*;
    use alloc::string::ToString;

    /// SWIM §4.2 precedence, the whole table: (new, held, overrides?).
    #[test]
    fn precedence_table() {
        let cases = [
            // alive(i) over suspect(j) iff i > j
            ((2, Alive), (1, Suspect), true),
            ((1, Alive), (1, Suspect), false),
            ((0, Alive), (1, Suspect), false),
            // alive(i) over alive(j) iff i > j
            ((2, Alive), (1, Alive), true),
            ((1, Alive), (1, Alive), false),
            // suspect(i) over alive(j) iff i >= j
            ((1, Suspect), (1, Alive), true),
            ((2, Suspect), (1, Alive), true),
            ((0, Suspect), (1, Alive), false),
            // suspect(i) over suspect(j) iff i > j
            ((2, Suspect), (1, Suspect), true),
            ((1, Suspect), (1, Suspect), false),
            // dead over alive and suspect of the same or lower incarnation
            ((1, Dead), (1, Alive), true),
            ((1, Dead), (1, Suspect), true),
            ((3, Dead), (1, Suspect), true),
            ((0, Dead), (1, Alive), false),
            ((0, Dead), (1, Suspect), false),
            // nothing but a higher incarnation overrides dead
            ((1, Alive), (1, Dead), false),
            ((1, Suspect), (1, Dead), false),
            ((1, Dead), (1, Dead), false),
            ((2, Alive), (1, Dead), true),
            // leave outranks dead of the same incarnation; a rejoin needs a higher one
            ((1, Left), (1, Dead), true),
            ((1, Left), (1, Alive), true),
            ((1, Dead), (1, Left), false),
            ((1, Alive), (1, Left), false),
            ((2, Alive), (1, Left), true),
        ];
        for (new, held, want) in cases {
            assert_eq!(overrides(new, held), want, "{new:?} over {held:?}");
        }
    }

    #[test]
    fn names_are_bounded_and_non_empty() {
        assert_eq!(NodeName::new(""), Err(NameError::Empty));
        let long = "x".repeat(256);
        assert_eq!(
            NodeName::new(&long),
            Err(NameError::TooLong { len: 256, max: 255 })
        );
        assert_eq!(NodeName::new("a").unwrap().as_str(), "a");
    }

    #[test]
    fn inline_and_shared_names_behave_alike() {
        let short = NodeName::new("node-1").unwrap();
        let long = NodeName::new("a-rather-long-node-name-on-the-heap").unwrap();
        assert!(matches!(short.0, NameRepr::Inline { .. }));
        assert!(matches!(long.0, NameRepr::Shared(_)));
        assert_eq!(short.as_str(), "node-1");
        assert_eq!(long.to_string(), "a-rather-long-node-name-on-the-heap");
        assert!(long < short);
        assert_eq!(core::mem::size_of::<NodeName>(), 24);
        assert_eq!(
            core::mem::size_of::<Metadata>(),
            8,
            "metadata is one thin pointer"
        );
        assert!(
            Metadata::from(&b""[..]).0.is_none(),
            "empty metadata allocates nothing"
        );
    }
}
