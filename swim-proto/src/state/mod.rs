//! Replicated key/value state: a Lamport-versioned last-writer-wins map (a state-based CRDT)
//! with scuttlebutt watermarks for anti-entropy and safe tombstone collection.
//!
//! An entry is keyed by `(type, key)`; its stamp is `(version, origin)`, the origin's Lamport
//! timestamp with the origin's name as tie-breaker. Merge keeps the greater stamp, so it is
//! commutative, associative and idempotent (`docs/protocol.md` §10.1). Deletions are entries
//! without a value (tombstones).
//!
//! For anti-entropy every node keeps, per `(type, origin)`, a *watermark*: the version up to which
//! it holds every write of that origin or a newer entry for the same key (§10.3). Watermarks make
//! digests O(origins) instead of O(entries), let deltas carry only what the peer lacks, and turn
//! away stale copies of deleted entries once their tombstones are collected.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::time::Duration;
use serde::Serialize;

use foldhash::fast::FixedState;

use crate::config::StateConfig;
use crate::member::NodeName;
use crate::time::Instant;

pub(crate) use origins::Refusal;
use origins::{EvictKey, OriginUse};

mod anti_entropy;
mod origins;
#[cfg(test)]
mod tests;
mod write;

/// The name of a state type, shared by all entries of the type.
pub type TypeName = Arc<str>;

/// Identifies a state entry: its type and its key within the type. Ordered by type, then key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StateKey {
    ty: TypeName,
    key: Arc<str>,
}

/// Serialized as a struct with the fields `type` and `key`.
impl Serialize for StateKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("StateKey", 2)?;
        st.serialize_field("type", &*self.ty)?;
        st.serialize_field("key", &*self.key)?;
        st.end()
    }
}

impl Hash for StateKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        KeyRef(&self.ty, &self.key).hash(h);
    }
}

/// A borrowed `(type, key)` for lookups without allocating; hashes as [`StateKey`] does.
#[derive(Hash)]
struct KeyRef<'a>(&'a str, &'a str);

impl hashbrown::Equivalent<StateKey> for KeyRef<'_> {
    fn equivalent(&self, k: &StateKey) -> bool {
        self.0 == &*k.ty && self.1 == &*k.key
    }
}

impl StateKey {
    /// A key of type `ty`.
    pub fn new(ty: &str, key: &str) -> Self {
        StateKey {
            ty: ty.into(),
            key: key.into(),
        }
    }

    /// The state type.
    pub fn ty(&self) -> &str {
        &self.ty
    }

    /// The key within the type.
    pub fn key(&self) -> &str {
        &self.key
    }

    fn bytes(&self) -> usize {
        self.ty.len() + self.key.len()
    }
}

impl fmt::Display for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ty, self.key)
    }
}

/// One entry as a node holds it: a value or a deletion, and the stamp of the write.
/// Serialized with the fields `value` (lossy UTF-8 text in human-readable formats, bytes
/// otherwise; `null` for a deletion), `version` and `origin`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StateEntry {
    /// The value, or `None` if the entry was deleted (a tombstone, collected after
    /// `StateConfig::tombstone_ttl`).
    #[serde(serialize_with = "crate::io::ser::opt_text")]
    pub value: Option<Arc<[u8]>>,
    /// The origin's Lamport timestamp for the write.
    pub version: u64,
    /// The node that wrote it.
    pub origin: NodeName,
}

impl StateEntry {
    /// Whether a write of `value` stamped `(version, origin)` wins over this entry: the merge
    /// order is the stamp, then (for equal stamps, which only a misbehaving or restarted origin
    /// produces) the value, a deletion lowest, so merge stays a total order and a CRDT.
    pub fn is_older_than(&self, version: u64, origin: &str, value: Option<&[u8]>) -> bool {
        stamp_cmp(self.version, self.origin.as_str(), version, origin)
            .then_with(|| self.value.as_deref().cmp(&value))
            == Ordering::Less
    }

    fn bytes(&self) -> usize {
        self.value.as_ref().map_or(0, |v| v.len())
    }
}

/// The merge order of stamps: version, then origin name bytes.
pub fn stamp_cmp(v1: u64, o1: &str, v2: u64, o2: &str) -> Ordering {
    v1.cmp(&v2).then_with(|| o1.as_bytes().cmp(o2.as_bytes()))
}

/// Why an entry changed on this node. Serialized as `remote`, `expired` or `reset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ChangeCause {
    /// A newer write arrived (by gossip or anti-entropy).
    Remote,
    /// The entry's origin failed or left, and its type expires orphaned entries.
    Expired,
    /// A peer showed the entry was deleted and the deletion already collected (§10.5).
    Reset,
}

/// A state command rejected; the store is unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateError {
    /// The type name is empty or longer than `MAX_STATE_TYPE_LEN`.
    BadType,
    /// This node does not store the type (`StateConfig::types`).
    TypeNotStored,
    /// Types starting with `swim.` are reserved for the protocol (`swim.view`).
    ReservedType,
    /// The key is empty or longer than `StateConfig::max_key_len`.
    BadKey {
        /// Length given, in bytes.
        len: usize,
        /// The bound, in bytes.
        max: usize,
    },
    /// The value is longer than `StateConfig::max_value_size`.
    ValueTooLarge {
        /// Length given, in bytes.
        len: usize,
        /// The bound, in bytes.
        max: usize,
    },
    /// The store holds `StateConfig::max_entries` entries.
    TooManyEntries {
        /// The bound.
        max: usize,
    },
    /// The write would exceed `StateConfig::max_total_bytes`.
    TooManyBytes {
        /// The bound, in bytes.
        max: usize,
    },
    // Abuse resistance (issue 13).
    /// The write would take this node's entries past its fair share of the store
    /// (`StateConfig::origin_share_percent`), which peers would refuse too.
    OriginQuota {
        /// The most entries one origin may hold.
        max_entries: usize,
        /// The most bytes one origin may hold.
        max_bytes: usize,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::BadType => write!(
                f,
                "state type names are 1 to {} bytes",
                crate::config::MAX_STATE_TYPE_LEN
            ),
            StateError::TypeNotStored => f.write_str("this node does not store that state type"),
            StateError::ReservedType => {
                f.write_str("state types starting with `swim.` are reserved")
            }
            StateError::BadKey { len, max } => {
                write!(f, "key is {len} bytes, must be 1 to {max}")
            }
            StateError::ValueTooLarge { len, max } => {
                write!(f, "value is {len} bytes, at most {max} allowed")
            }
            StateError::TooManyEntries { max } => {
                write!(f, "the state store is full ({max} entries)")
            }
            StateError::TooManyBytes { max } => {
                write!(f, "the state store is full ({max} bytes)")
            }
            StateError::OriginQuota {
                max_entries,
                max_bytes,
            } => write!(
                f,
                "this node holds its fair share of the state store ({max_entries} entries, \
                 {max_bytes} bytes)"
            ),
        }
    }
}

impl core::error::Error for StateError {}

/// What applying a remote entry did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Applied {
    /// The entry is new or newer; the old entry, if any.
    Changed(Option<StateEntry>),
    /// The store already holds this entry or a newer one.
    NotNewer,
    /// The key is not held and the origin's watermark covers the version: the write was
    /// superseded or deleted (and the deletion collected).
    Stale,
    /// The type is not stored on this node.
    NotStored,
    /// At `max_entries` or `max_total_bytes`: dropped and counted.
    Full,
    /// A write by this node's previous life outranked one of this life's: refused, and this
    /// life's entry re-stamped above it (returned so it spreads again).
    Refuted(StateKey),
    /// Refused by an abuse bound (issue 13): dropped and counted.
    Refused(Refusal),
}

#[derive(Clone, Debug)]
struct Held {
    entry: StateEntry,
    /// The write's place in its origin's sequence for the type (1, 2, 3... per origin and
    /// type, contiguous, so a watermark can advance as writes arrive by gossip).
    seq: u64,
    /// For a tombstone, when it is due for collection (`tombstone_ttl` after this node
    /// learned it); its key in `StateStore::tombstones`.
    collect_at: Instant,
    /// Written by this node since it started (re-stamped if a previous life's writes outrank it).
    this_life: bool,
}

/// Per `(type, origin)` anti-entropy bookkeeping. Positions are the origin's write sequence
/// numbers for the type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Mark {
    /// Every write of the origin up to this sequence number is held here, or something newer
    /// for its key.
    watermark: u64,
    /// Highest sequence number of a deletion by the origin collected here (or an entry
    /// expired or reset): peers below it may hold deleted values and get a reset.
    collected: u64,
    /// Entries held from the origin in this type.
    held: u32,
    /// Highest sequence number among them (0 if none).
    newest: u64,
    /// For this node's own writes: the last sequence number it used.
    own_seq: u64,
    /// For this node's own writes: how far a previous life of this node wrote (learned from
    /// peers' digests). Sequence numbers above it are this life's, all known here.
    own_floor: u64,
}

/// The store: entries, their per-origin index, watermarks and the tombstone queue.
#[derive(Debug)]
pub(crate) struct StateStore {
    /// Entries by key, hashed with the node's seeded hasher (lookups on every received entry).
    entries: hashbrown::HashMap<StateKey, Held, FixedState>,
    /// The same keys in order, for ordered iteration (iteration order never depends on the
    /// hash map).
    order: BTreeSet<StateKey>,
    /// `(origin, type, seq, key)` for deltas in ascending sequence order.
    by_origin: BTreeSet<(NodeName, TypeName, u64, Arc<str>)>,
    marks: BTreeMap<(TypeName, NodeName), Mark>,
    /// Tombstones by collection time.
    tombstones: BTreeSet<(Instant, StateKey)>,
    /// Interned type names.
    types: BTreeSet<TypeName>,
    clock: u64,
    bytes: usize,
    live: usize,
    /// This node's name (its own writes' origin).
    me: NodeName,
    // Per-origin bookkeeping (issue 13, `state/origins.rs`).
    /// Use and membership of every origin with a mark.
    origins: BTreeMap<NodeName, OriginUse>,
    /// `(origin, type)` of every mark, to find an origin's marks.
    mark_types: BTreeSet<(NodeName, TypeName)>,
    /// Marks that hold no entry, in eviction order.
    evictable: BTreeSet<EvictKey>,
    /// Entries, bytes and marks of origins that are not members.
    guest_entries: usize,
    guest_bytes: usize,
    guest_marks: usize,
    /// Non-member origins first seen since the node last asked.
    fresh_guests: Vec<NodeName>,
}

/// A remote write to merge: the wire form, borrowed from the packet.
pub(crate) type Write<'a> = crate::wire::StateUpdate<'a>;

/// A delta group ready to encode: entries of one `(type, origin)` ascending.
pub(crate) struct Group<'s> {
    pub ty: &'s str,
    pub origin: &'s str,
    pub watermark: u64,
    pub entries: Vec<(&'s str, u64, u64, Option<&'s [u8]>)>,
}

impl StateStore {
    pub(crate) fn new(hasher: FixedState, me: NodeName) -> Self {
        StateStore {
            entries: hashbrown::HashMap::with_hasher(hasher),
            order: BTreeSet::new(),
            by_origin: BTreeSet::new(),
            marks: BTreeMap::new(),
            tombstones: BTreeSet::new(),
            types: BTreeSet::new(),
            clock: 0,
            bytes: 0,
            live: 0,
            me,
            origins: BTreeMap::new(),
            mark_types: BTreeSet::new(),
            evictable: BTreeSet::new(),
            guest_entries: 0,
            guest_bytes: 0,
            guest_marks: 0,
            fresh_guests: Vec::new(),
        }
    }

    // ------------------------------------------------------------ queries

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn live(&self) -> usize {
        self.live
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn clock(&self) -> u64 {
        self.clock
    }

    /// Whether this store holds nothing and has no watermark: nothing to tell a peer.
    pub(crate) fn is_blank(&self) -> bool {
        self.entries.is_empty() && self.marks.values().all(|m| m.watermark == 0)
    }

    pub(crate) fn origins(&self) -> usize {
        self.marks.len()
    }

    pub(crate) fn get(&self, ty: &str, key: &str) -> Option<&StateEntry> {
        self.lookup(ty, key)
    }

    /// The entry for `(ty, key)` with its sequence number.
    pub(crate) fn get_with_seq(&self, ty: &str, key: &str) -> Option<(&StateEntry, u64)> {
        self.entries
            .get(&KeyRef(ty, key))
            .map(|h| (&h.entry, h.seq))
    }

    fn lookup(&self, ty: &str, key: &str) -> Option<&StateEntry> {
        self.entries.get(&KeyRef(ty, key)).map(|h| &h.entry)
    }

    fn intern_lookup(&self, ty: &str) -> Option<TypeName> {
        self.types.get(ty).cloned()
    }

    pub(crate) fn iter_type<'s>(
        &'s self,
        ty: &str,
    ) -> impl Iterator<Item = (&'s StateKey, &'s StateEntry)> + 's {
        let range = self.intern_lookup(ty).map(|t| {
            let lo = StateKey {
                ty: t.clone(),
                key: "".into(),
            };
            self.order
                .range(lo..)
                .take_while(move |k| Arc::ptr_eq(&k.ty, &t) || *k.ty == *t)
        });
        range
            .into_iter()
            .flatten()
            .map(|k| (k, &self.entries[k].entry))
    }

    /// Every entry, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&StateKey, &StateEntry)> {
        self.order.iter().map(|k| (k, &self.entries[k].entry))
    }

    /// Keys of entries whose current origin is `origin`, for the origin-failed event.
    pub(crate) fn keys_of_origin(&self, origin: &NodeName) -> Vec<StateKey> {
        let mut keys: Vec<StateKey> = self
            .of_origin(origin)
            .filter(|(_, ty, version, key)| {
                self.entries
                    .get(&KeyRef(ty, key))
                    .is_some_and(|h| h.entry.value.is_some() && h.seq == *version)
            })
            .map(|(_, ty, _, key)| StateKey {
                ty: ty.clone(),
                key: key.clone(),
            })
            .collect();
        keys.sort();
        keys
    }

    /// Checks the store's internal invariants; panics naming the broken one.
    pub(crate) fn check_invariants(&self, cfg: &StateConfig) {
        assert_eq!(
            self.entries.len(),
            self.by_origin.len(),
            "every entry is indexed by origin exactly once"
        );
        assert_eq!(
            self.entries.len(),
            self.order.len(),
            "every entry is in the ordered key set"
        );
        let bytes: usize = self
            .entries
            .iter()
            .map(|(k, h)| k.bytes() + h.entry.bytes())
            .sum();
        assert_eq!(bytes, self.bytes, "the byte count matches the entries");
        assert!(
            self.entries.len() <= cfg.max_entries,
            "the store is within max_entries"
        );
        let live = self
            .entries
            .values()
            .filter(|h| h.entry.value.is_some())
            .count();
        assert_eq!(live, self.live, "the live count matches the entries");
        assert_eq!(
            self.entries.len() - live,
            self.tombstones.len(),
            "every tombstone is queued for collection exactly once"
        );
        for (k, h) in &self.entries {
            assert!(
                h.entry.version <= self.clock,
                "the Lamport clock is at least every version held"
            );
            assert!(
                self.by_origin.contains(&(
                    h.entry.origin.clone(),
                    k.ty.clone(),
                    h.seq,
                    k.key.clone()
                )),
                "entry {k} is indexed under its origin"
            );
        }
        self.check_origins(cfg);
        for ((ty, origin), m) in &self.marks {
            let held = self.of_origin_type(origin, ty).count();
            assert_eq!(m.held as usize, held, "held count of {ty}/{origin}");
            let newest = self.of_origin_type(origin, ty).last().map_or(0, |r| r.2);
            assert_eq!(m.newest, newest, "newest sequence number of {ty}/{origin}");
        }
    }
}

fn empty() -> Arc<str> {
    "".into()
}

type OriginRecord = (NodeName, TypeName, u64, Arc<str>);

impl StateStore {
    /// Index records of `origin`, by type, version ascending.
    fn of_origin<'s>(&'s self, origin: &'s NodeName) -> impl Iterator<Item = &'s OriginRecord> {
        self.by_origin
            .range((origin.clone(), empty(), 0, empty())..)
            .take_while(move |r| r.0 == *origin)
    }

    /// The highest sequence number of `origin`'s entries in `ty` (0 if none), in O(log n).
    fn newest_seq(&self, origin: &NodeName, ty: &TypeName) -> u64 {
        let lo = (origin.clone(), ty.clone(), 0, empty());
        let top = (origin.clone(), ty.clone(), u64::MAX, empty());
        let at_top = self
            .by_origin
            .range(top.clone()..)
            .next()
            .is_some_and(|r| r.0 == *origin && r.1 == *ty);
        if at_top {
            return u64::MAX;
        }
        self.by_origin.range(lo..top).next_back().map_or(0, |r| r.2)
    }

    /// Index records of `origin` in `ty`, version ascending.
    fn of_origin_type<'s>(
        &'s self,
        origin: &'s NodeName,
        ty: &'s TypeName,
    ) -> impl Iterator<Item = &'s OriginRecord> {
        self.by_origin
            .range((origin.clone(), ty.clone(), 0, empty())..)
            .take_while(move |r| r.0 == *origin && r.1 == *ty)
    }
}

fn name_key(origin: &str) -> NodeName {
    NodeName::new(origin).unwrap_or_else(|_| NodeName::new("?").expect("valid"))
}
