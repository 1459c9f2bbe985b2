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
        let with_entries = self.marks.values().filter(|m| m.held > 0).count();
        assert!(
            self.marks.len() <= cfg.max_origins.max(with_entries),
            "marks are within max_origins, or all hold entries"
        );
        for ((ty, origin), m) in &self.marks {
            let held = self.of_origin_type(origin, ty).count();
            assert_eq!(m.held as usize, held, "held count of {ty}/{origin}");
            let newest = self.of_origin_type(origin, ty).last().map_or(0, |r| r.2);
            assert_eq!(m.newest, newest, "newest sequence number of {ty}/{origin}");
        }
    }

    // ------------------------------------------------------------ writes

    fn intern(&mut self, ty: &str) -> TypeName {
        if let Some(t) = self.types.get(ty) {
            return t.clone();
        }
        let t: TypeName = ty.into();
        self.types.insert(t.clone());
        t
    }

    /// Checks that a write fits the bounds; nothing changes.
    pub(crate) fn check_room(
        &self,
        cfg: &StateConfig,
        ty: &str,
        key: &str,
        value_len: usize,
    ) -> Result<(), StateError> {
        let old = self.lookup(ty, key);
        if old.is_none() && self.entries.len() >= cfg.max_entries {
            return Err(StateError::TooManyEntries {
                max: cfg.max_entries,
            });
        }
        let old_bytes = old.map_or(0, |e| e.bytes() + ty.len() + key.len());
        if self.bytes - old_bytes + ty.len() + key.len() + value_len > cfg.max_total_bytes {
            return Err(StateError::TooManyBytes {
                max: cfg.max_total_bytes,
            });
        }
        Ok(())
    }

    /// A local write at the next Lamport time; returns the new entry's version. The caller has
    /// checked the bounds with [`StateStore::check_room`].
    pub(crate) fn write_local(
        &mut self,
        me: &NodeName,
        ty: &str,
        key: &str,
        value: Option<Arc<[u8]>>,
        now: Instant,
        ttl: Duration,
    ) -> u64 {
        self.clock = self.clock.saturating_add(1);
        let version = self.clock;
        let entry = StateEntry {
            value,
            version,
            origin: me.clone(),
        };
        let ty = self.intern(ty);
        let seq = self.next_own_seq(&ty, me);
        self.put(
            StateKey {
                ty,
                key: key.into(),
            },
            entry,
            seq,
            now,
            ttl,
            true,
        );
        version
    }

    /// The next sequence number of this node's writes of `ty` (its watermark moves with it:
    /// a node holds all its own writes or what superseded them).
    fn next_own_seq(&mut self, ty: &TypeName, me: &NodeName) -> u64 {
        let m = self.marks.entry((ty.clone(), me.clone())).or_default();
        m.own_seq = m
            .own_seq
            .max(m.watermark)
            .max(m.own_floor)
            .saturating_add(1);
        if m.watermark >= m.own_floor {
            // Every write of ours up to here is known: this life's are all ours.
            m.watermark = m.own_seq;
        }
        m.own_seq
    }

    /// Merges a remote entry.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn apply(
        &mut self,
        cfg: &StateConfig,
        me: &NodeName,
        w: Write<'_>,
        now: Instant,
    ) -> Applied {
        let Write {
            ty,
            key,
            version,
            seq,
            origin,
            value,
        } = w;
        if !cfg.stores(ty) {
            return Applied::NotStored;
        }
        self.clock = self.clock.max(version);
        let held = self.entries.get(&KeyRef(ty, key));
        match held {
            Some(h) if !h.entry.is_older_than(version, origin, value) => {
                // Held, or superseded: either way it counts towards the origin's watermark.
                self.advance(ty, origin, seq);
                return Applied::NotNewer;
            }
            Some(h) if h.this_life && origin == me.as_str() => {
                // Our previous life wrote this key later (in Lamport order) than we did in this
                // one: our current write stands, stamped above it.
                let k = StateKey::new(ty, key);
                self.restamp_key(me, &k, now, cfg.tombstone_ttl);
                self.advance(ty, origin, seq);
                return Applied::Refuted(k);
            }
            Some(_) => {}
            None => {
                let covered = self
                    .types
                    .get(ty)
                    .and_then(|t| self.marks.get(&(t.clone(), name_key(origin))))
                    .is_some_and(|m| m.watermark >= seq);
                if covered {
                    return Applied::Stale;
                }
            }
        }
        if self
            .check_room(cfg, ty, key, value.map_or(0, <[u8]>::len))
            .is_err()
        {
            return Applied::Full;
        }
        let Ok(origin) = NodeName::new(origin) else {
            return Applied::NotNewer; // validated by the caller; unreachable in practice
        };
        let entry = StateEntry {
            value: value.map(Arc::from),
            version,
            origin: origin.clone(),
        };
        let ty = self.intern(ty);
        let key = StateKey {
            ty: ty.clone(),
            key: key.into(),
        };
        let old = self.put(key, entry, seq, now, cfg.tombstone_ttl, false);
        self.advance(&ty, origin.as_str(), seq);
        Applied::Changed(old)
    }

    /// Moves the watermark of `(ty, origin)` past `seq` if it is the next one, then past any
    /// following writes already held.
    fn advance(&mut self, ty: &str, origin: &str, seq: u64) {
        let Some(t) = self.types.get(ty).cloned() else {
            return;
        };
        let o = name_key(origin);
        let Some(m) = self.marks.get(&(t.clone(), o.clone())) else {
            return;
        };
        if m.watermark.checked_add(1) != Some(seq) {
            return;
        }
        self.extend_watermark(&t, &o, seq);
    }

    /// Sets the watermark of `(ty, origin)` to at least `to`, then moves it past every
    /// following write held (contiguous sequence numbers).
    fn extend_watermark(&mut self, ty: &TypeName, origin: &NodeName, to: u64) {
        let mut wm = self
            .marks
            .get(&(ty.clone(), origin.clone()))
            .map_or(0, |m| m.watermark)
            .max(to);
        for (_, _, seq, _) in self
            .by_origin
            .range((origin.clone(), ty.clone(), wm.saturating_add(1), empty())..)
            .take_while(|(o, t, _, _)| o == origin && t == ty)
        {
            if wm.checked_add(1) != Some(*seq) {
                break;
            }
            wm = *seq;
        }
        let m = self.marks.entry((ty.clone(), origin.clone())).or_default();
        if *origin == self.me && wm >= m.own_floor {
            // Past a previous life's writes, this life's are all known here.
            wm = wm.max(m.own_seq);
        }
        m.watermark = m.watermark.max(wm);
    }

    /// Inserts or replaces an entry, keeping the indexes, counts and tombstone queue.
    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        key: StateKey,
        entry: StateEntry,
        seq: u64,
        now: Instant,
        ttl: Duration,
        this_life: bool,
    ) -> Option<StateEntry> {
        let old = self.remove(&key);
        self.bytes += key.bytes() + entry.bytes();
        let collect_at = now + ttl;
        if entry.value.is_some() {
            self.live += 1;
        } else {
            self.tombstones.insert((collect_at, key.clone()));
        }
        self.by_origin
            .insert((entry.origin.clone(), key.ty.clone(), seq, key.key.clone()));
        self.bump_held(&key.ty, &entry.origin, 1, seq);
        self.order.insert(key.clone());
        self.entries.insert(
            key,
            Held {
                entry,
                seq,
                collect_at,
                this_life,
            },
        );
        old
    }

    /// Removes an entry and its index records; returns it.
    fn remove(&mut self, key: &StateKey) -> Option<StateEntry> {
        self.remove_held(key).map(|(e, _)| e)
    }

    /// Removes an entry and its index records; returns it with its sequence number.
    fn remove_held(&mut self, key: &StateKey) -> Option<(StateEntry, u64)> {
        let h = self.entries.remove(key)?;
        self.order.remove(key);
        self.bytes -= key.bytes() + h.entry.bytes();
        if h.entry.value.is_some() {
            self.live -= 1;
        } else {
            let queued = self.tombstones.remove(&(h.collect_at, key.clone()));
            assert!(queued, "every tombstone is queued for collection");
        }
        let removed = self.by_origin.remove(&(
            h.entry.origin.clone(),
            key.ty.clone(),
            h.seq,
            key.key.clone(),
        ));
        assert!(removed, "every entry is indexed by origin");
        self.bump_held(&key.ty, &h.entry.origin, -1, h.seq);
        Some((h.entry, h.seq))
    }

    /// Counts an entry of `(ty, origin)` in (`by` 1) or out (-1), keeping `newest`. Called
    /// after the origin index was updated.
    fn bump_held(&mut self, ty: &TypeName, origin: &NodeName, by: i32, seq: u64) {
        let key = (ty.clone(), origin.clone());
        let m = self.marks.entry(key.clone()).or_default();
        m.held = m
            .held
            .checked_add_signed(by)
            .expect("held count stays in range");
        if by > 0 {
            m.newest = m.newest.max(seq);
        } else if seq >= m.newest {
            let newest = self
                .of_origin_type(origin, ty)
                .last()
                .map_or(0, |(_, _, v, _)| *v);
            self.marks.get_mut(&key).expect("mark exists").newest = newest;
        }
    }

    /// Collects tombstones due at `now` whose origin's watermark covers them (so a stale copy of
    /// the deleted value is recognised as stale afterwards); postpones the others by a quarter
    /// of `ttl`. Returns the number collected.
    pub(crate) fn collect(&mut self, now: Instant, ttl: Duration) -> usize {
        let mut collected = 0;
        let mut postponed = Vec::new();
        while let Some((at, _)) = self.tombstones.first() {
            if *at > now {
                break;
            }
            let (at, key) = self.tombstones.pop_first().expect("first exists");
            let h = self.entries.get(&key).expect("queued tombstones are held");
            let mark_key = (key.ty.clone(), h.entry.origin.clone());
            let covered = self
                .marks
                .get(&mark_key)
                .is_some_and(|m| m.watermark >= h.seq);
            if !covered {
                postponed.push((at.max(now) + ttl / 4, key));
                continue;
            }
            let version = h.seq;
            // Re-queue so `remove` finds it, then remove for good.
            self.tombstones.insert((at, key.clone()));
            self.remove(&key);
            let m = self.marks.entry(mark_key).or_default();
            m.collected = m.collected.max(version);
            collected += 1;
        }
        for (at, key) in postponed {
            if let Some(h) = self.entries.get_mut(&key) {
                h.collect_at = at;
            }
            self.tombstones.insert((at, key));
        }
        collected
    }

    /// The earliest tombstone collection time.
    pub(crate) fn next_collection(&self) -> Option<Instant> {
        self.tombstones.first().map(|(at, _)| *at)
    }

    /// Deletes, on this node only, the live entries of `origin` in `ty` (orphans of a failed
    /// origin). Returns the keys and old entries.
    pub(crate) fn expire(&mut self, origin: &NodeName, ty: &str) -> Vec<(StateKey, StateEntry)> {
        let Some(t) = self.intern_lookup(ty) else {
            return Vec::new();
        };
        let keys: Vec<(u64, Arc<str>)> = self
            .of_origin_type(origin, &t)
            .map(|(_, _, seq, k)| (*seq, k.clone()))
            .collect();
        let mut out = Vec::new();
        for (version, key) in keys {
            let k = StateKey { ty: t.clone(), key };
            if let Some(old) = self.remove(&k) {
                let m = self.marks.entry((t.clone(), origin.clone())).or_default();
                m.collected = m.collected.max(version);
                out.push((k, old));
            }
        }
        out
    }

    /// Re-stamps this life's entries of `me` at fresh versions (after a restart, or after others
    /// declared this node dead and may have expired them). Returns the re-stamped keys.
    pub(crate) fn restamp_own(
        &mut self,
        me: &NodeName,
        ty: Option<&str>,
        up_to: u64,
        now: Instant,
        ttl: Duration,
    ) -> Vec<StateKey> {
        let keys: Vec<StateKey> = self
            .of_origin(me)
            .filter(|(_, t, v, _)| *v <= up_to && ty.is_none_or(|ty| &**t == ty))
            .map(|(_, t, _, k)| StateKey {
                ty: t.clone(),
                key: k.clone(),
            })
            .filter(|k| self.entries.get(k).is_some_and(|h| h.this_life))
            .collect();
        for k in &keys {
            self.restamp_key(me, k, now, ttl);
        }
        keys
    }

    /// Re-writes this node's entry for `k` at the next Lamport time and sequence number.
    fn restamp_key(&mut self, me: &NodeName, k: &StateKey, now: Instant, ttl: Duration) {
        let old = self.remove(k).expect("re-stamped entries are held");
        self.clock = self.clock.saturating_add(1);
        let version = self.clock;
        let seq = self.next_own_seq(&k.ty, me);
        let entry = StateEntry { version, ..old };
        self.put(k.clone(), entry, seq, now, ttl, true);
    }

    /// Fast-forwards this node's own sequence for `ty` to `to` (a previous life wrote that
    /// far), so its next writes are not taken for stale copies.
    pub(crate) fn skip_own_seq(&mut self, ty: &str, me: &NodeName, to: u64) {
        let t = self.intern(ty);
        let m = self.marks.entry((t, me.clone())).or_default();
        m.own_floor = m.own_floor.max(to);
    }

    // ------------------------------------------------------------ anti-entropy

    /// This node's watermarks, by type then origin (only non-zero ones).
    pub(crate) fn digest(&self) -> Vec<(&str, Vec<(&str, u64)>)> {
        let mut out: Vec<(&str, Vec<(&str, u64)>)> = Vec::new();
        for ((ty, origin), m) in &self.marks {
            if m.watermark == 0 {
                continue;
            }
            match out.last_mut() {
                Some((t, list)) if *t == &**ty => list.push((origin.as_str(), m.watermark)),
                _ => out.push((ty, alloc::vec![(origin.as_str(), m.watermark)])),
            }
        }
        out
    }

    /// This node's watermark for `(ty, origin)`.
    pub(crate) fn watermark(&self, ty: &str, origin: &str) -> u64 {
        self.intern_lookup(ty)
            .and_then(|t| self.marks.get(&(t, name_key(origin))))
            .map_or(0, |m| m.watermark)
    }

    /// Raises the watermark of `(ty, origin)` after a delta group was applied.
    pub(crate) fn raise_watermark(&mut self, cfg: &StateConfig, ty: &str, origin: &str, to: u64) {
        if !cfg.stores(ty) || to == 0 {
            return;
        }
        let Ok(origin) = NodeName::new(origin) else {
            return;
        };
        let known = self
            .intern_lookup(ty)
            .is_some_and(|t| self.marks.contains_key(&(t, origin.clone())));
        if !known && self.marks.len() >= cfg.max_origins && !self.evict_mark() {
            return;
        }
        let t = self.intern(ty);
        self.extend_watermark(&t, &origin, to);
    }

    /// Keeps the marks within `max`: evicts marks of origins with no entries held, those
    /// with nothing collected first. Marks of origins with entries are never evicted (they are
    /// bounded by `max_entries`).
    pub(crate) fn trim_marks(&mut self, max: usize) {
        while self.marks.len() > max {
            if self.evict_mark() {
                continue;
            }
            let victim = self
                .marks
                .iter()
                .find(|(_, m)| m.held == 0)
                .map(|(k, _)| k.clone());
            match victim {
                Some(k) => {
                    self.marks.remove(&k);
                }
                None => return,
            }
        }
    }

    /// Evicts one mark with no entries and nothing collected (the least informative).
    fn evict_mark(&mut self) -> bool {
        let victim = self
            .marks
            .iter()
            .find(|(_, m)| m.held == 0 && m.collected == 0)
            .map(|(k, _)| k.clone());
        victim.is_some_and(|k| self.marks.remove(&k).is_some())
    }

    /// Delta groups for a peer with watermarks `peer` (a lookup by type and origin), at most
    /// `budget` bytes of keys and values, groups with the most recent writes first (so a node
    /// back from a long absence gets the freshest state first). Each group is a prefix of the
    /// origin's entries above the peer's watermark, ascending, and says which watermark the
    /// peer may adopt. Also returns the types for which the peer needs a reset (§10.5).
    ///
    /// `peer` is the peer's digest as `((type, origin), watermark)` sorted ascending (the order
    /// of this store's marks), so one merge walk finds every watermark.
    pub(crate) fn deltas<'s>(
        &'s self,
        cfg: &StateConfig,
        peer: &[((&str, &str), u64)],
        budget: usize,
    ) -> (Vec<Group<'s>>, Vec<&'s str>) {
        let mut candidates: Vec<(u64, &'s TypeName, &'s NodeName, u64, u64)> = Vec::new();
        let mut resets: Vec<&'s str> = Vec::new();
        let mut j = 0;
        let mut last_type: Option<(&str, bool)> = None;
        for ((ty, origin), m) in &self.marks {
            let stored = match last_type {
                Some((t, stored)) if t == &**ty => stored,
                _ => {
                    let stored = cfg.stores(ty);
                    last_type = Some((ty, stored));
                    stored
                }
            };
            if !stored {
                continue;
            }
            let here = (&**ty, origin.as_str());
            while j < peer.len() && peer[j].0 < here {
                j += 1;
            }
            let theirs = if j < peer.len() && peer[j].0 == here {
                peer[j].1
            } else {
                0
            };
            if m.collected > theirs && resets.last() != Some(&&**ty) {
                resets.push(ty);
            }
            if m.held > 0 && m.newest > theirs {
                candidates.push((m.newest, ty, origin, theirs, m.watermark));
            }
        }
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| (a.1, a.2).cmp(&(b.1, b.2))));
        let mut left = budget;
        let mut groups = Vec::new();
        for (_, ty, origin, theirs, mine) in candidates {
            if left < 64 {
                break;
            }
            let mut entries = Vec::new();
            let mut truncated_at = None;
            let lo = (
                origin.clone(),
                ty.clone(),
                theirs.saturating_add(1),
                empty(),
            );
            for (_, _, seq, key) in self
                .by_origin
                .range(lo..)
                .take_while(|(o, t, _, _)| o == origin && t == ty)
            {
                let h = &self.entries[&KeyRef(ty, key)];
                let cost = key.len() + h.entry.bytes() + 24;
                if cost > left {
                    truncated_at = Some(entries.last().map_or(theirs, |e: &(_, u64, u64, _)| e.2));
                    break;
                }
                left -= cost;
                entries.push((&**key, h.entry.version, *seq, h.entry.value.as_deref()));
            }
            if entries.is_empty() {
                continue;
            }
            let watermark = match truncated_at {
                Some(last) => last.min(mine),
                None => mine,
            };
            groups.push(Group {
                ty,
                origin: origin.as_str(),
                watermark,
                entries,
            });
        }
        (groups, resets)
    }

    /// Every key held in `ty`, ascending, for a reset.
    pub(crate) fn keys_of_type(&self, ty: &str) -> Vec<&str> {
        self.iter_type(ty).map(|(k, _)| k.key()).collect()
    }

    /// Applies a reset from a peer that holds exactly `keys` in `ty` and has watermarks `theirs`:
    /// drops each entry the peer does not hold though the peer has seen every write of the
    /// entry's origin up to its version (so it was deleted and the deletion collected there).
    pub(crate) fn apply_reset(
        &mut self,
        ty: &str,
        keys: &[&str],
        theirs: impl Fn(&str) -> u64,
    ) -> Vec<(StateKey, StateEntry)> {
        let doomed: Vec<StateKey> = self
            .iter_type(ty)
            .filter(|(k, e)| {
                keys.binary_search(&k.key()).is_err()
                    && self.entries[&KeyRef(k.ty(), k.key())].seq <= theirs(e.origin.as_str())
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for k in doomed {
            if let Some((old, seq)) = self.remove_held(&k) {
                let m = self
                    .marks
                    .entry((k.ty.clone(), old.origin.clone()))
                    .or_default();
                m.collected = m.collected.max(seq);
                out.push((k, old));
            }
        }
        out
    }

    /// A fingerprint of every application entry held (type, key, version, origin; reserved
    /// `swim.` types left out): equal on two nodes exactly when they hold the same stamps (up to
    /// hash collisions).
    pub(crate) fn fingerprint(&self) -> u64 {
        let mut h = crate::hash::Fnv1a64::new();
        let mut eat = |b: &[u8]| h.write(b);
        for (k, e) in self.iter().filter(|(k, _)| !k.ty().starts_with("swim.")) {
            eat(k.ty.as_bytes());
            eat(&[0]);
            eat(k.key.as_bytes());
            eat(&[0]);
            eat(&e.version.to_le_bytes());
            eat(e.origin.as_str().as_bytes());
            eat(&[0xff]);
        }
        h.finish()
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::String;
    use alloc::vec;
    use proptest::prelude::*;

    fn cfg() -> StateConfig {
        StateConfig::default()
    }

    fn name(s: &str) -> NodeName {
        NodeName::new(s).unwrap()
    }

    /// Merges a remote write whose sequence number equals its version.
    fn ap(
        s: &mut StateStore,
        c: &StateConfig,
        ty: &str,
        key: &str,
        version: u64,
        origin: &str,
        value: Option<&[u8]>,
    ) -> Applied {
        apply_w(
            s,
            c,
            &W {
                ty: ty.into(),
                key: key.into(),
                version,
                seq: version,
                origin: origin.into(),
                value: value.map(<[u8]>::to_vec),
            },
        )
    }

    fn apply_w(s: &mut StateStore, c: &StateConfig, w: &W) -> Applied {
        let write = Write {
            ty: &w.ty,
            key: &w.key,
            version: w.version,
            seq: w.seq,
            origin: &w.origin,
            value: w.value.as_deref(),
        };
        s.apply(c, &name("local"), write, Instant::ZERO)
    }

    /// A write as the tests build it.
    #[derive(Clone, Debug)]
    struct W {
        ty: String,
        key: String,
        version: u64,
        seq: u64,
        origin: String,
        value: Option<Vec<u8>>,
    }

    /// A valid history: three origins write keys of two types; each origin numbers its writes
    /// of a type 1, 2, 3... and versions grow (ties between origins allowed), as Lamport clocks
    /// and the sequence rule produce them.
    fn history() -> impl Strategy<Value = Vec<W>> {
        prop::collection::vec(
            (
                prop::sample::select(vec!["a", "b"]),
                0..4u8,
                0..2u64,
                0..3u8,
                prop::option::of(prop::collection::vec(any::<u8>(), 0..4)),
            ),
            0..24,
        )
        .prop_map(|raw| {
            let mut version = 0;
            let mut seqs = alloc::collections::BTreeMap::new();
            raw.into_iter()
                .map(|(ty, k, bump, o, value)| {
                    version += bump;
                    let seq = seqs.entry((ty, o)).or_insert(0u64);
                    *seq += 1;
                    W {
                        ty: ty.into(),
                        key: format!("k{k}"),
                        version: version.max(1),
                        seq: *seq,
                        origin: format!("n{o}"),
                        value,
                    }
                })
                .collect()
        })
    }

    fn merged(writes: &[W]) -> StateStore {
        let mut s = StateStore::new(FixedState::with_seed(7), name("local"));
        for w in writes {
            apply_w(&mut s, &cfg(), w);
        }
        s.check_invariants(&cfg());
        s
    }

    fn contents(s: &StateStore) -> Vec<(StateKey, StateEntry)> {
        s.iter().map(|(k, e)| (k.clone(), e.clone())).collect()
    }

    proptest! {
        /// Commutativity: the merge of a set of writes does not depend on their order.
        #[test]
        fn merge_is_commutative(writes in history(), seed in any::<u64>()) {
            let mut shuffled = writes.clone();
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(contents(&merged(&writes)), contents(&merged(&shuffled)));
        }

        /// Associativity: merging a with (b merged with c) equals (a with b) with c; with a
        /// state-based merge this is merging the winners of each part.
        #[test]
        fn merge_is_associative(
            writes in history(),
            cut in any::<(prop::sample::Index, prop::sample::Index)>(),
        ) {
            // Three parts of one history, delivered to different replicas.
            let (mut i, mut j) = (cut.0.index(writes.len() + 1), cut.1.index(writes.len() + 1));
            if i > j {
                core::mem::swap(&mut i, &mut j);
            }
            let (a, b, c) = (writes[..i].to_vec(), writes[i..j].to_vec(), writes[j..].to_vec());
            let winners = |s: &StateStore| -> Vec<W> {
                s.iter().map(|(k, e)| W {
                    ty: k.ty().into(),
                    key: k.key().into(),
                    version: e.version,
                    seq: s.get_with_seq(k.ty(), k.key()).unwrap().1,
                    origin: e.origin.as_str().into(),
                    value: e.value.as_deref().map(<[u8]>::to_vec),
                }).collect()
            };
            let bc = merged(&[b.clone(), c.clone()].concat());
            let left = merged(&[a.clone(), winners(&bc)].concat());
            let ab = merged(&[a, b].concat());
            let right = merged(&[winners(&ab), c].concat());
            prop_assert_eq!(contents(&left), contents(&right));
        }

        /// Idempotence: merging the same writes again changes nothing.
        #[test]
        fn merge_is_idempotent(writes in history()) {
            let once = merged(&writes);
            let twice = merged(&[writes.clone(), writes].concat());
            prop_assert_eq!(contents(&once), contents(&twice));
            prop_assert_eq!(once.fingerprint(), twice.fingerprint());
        }
    }

    #[test]
    fn greater_stamp_wins_and_ties_break_by_origin() {
        let mut s = StateStore::new(FixedState::with_seed(7), name("local"));
        let c = cfg();
        assert!(matches!(
            ap(&mut s, &c, "t", "k", 5, "b", Some(b"1")),
            Applied::Changed(None)
        ));
        assert_eq!(
            ap(&mut s, &c, "t", "k", 4, "z", Some(b"2")),
            Applied::NotNewer
        );
        assert!(matches!(
            ap(&mut s, &c, "t", "k", 5, "c", Some(b"3")),
            Applied::Changed(Some(_))
        ));
        assert_eq!(s.get("t", "k").unwrap().origin.as_str(), "c");
        assert_eq!(s.clock(), 5, "Lamport: the clock follows the versions seen");
    }

    #[test]
    fn below_the_watermark_an_unknown_key_is_stale() {
        let mut s = StateStore::new(FixedState::with_seed(7), name("local"));
        let c = cfg();
        s.raise_watermark(&c, "t", "o", 10);
        assert_eq!(
            ap(&mut s, &c, "t", "gone", 7, "o", Some(b"old")),
            Applied::Stale
        );
        assert!(matches!(
            ap(&mut s, &c, "t", "new", 11, "o", Some(b"v")),
            Applied::Changed(None)
        ));
    }

    #[test]
    fn tombstones_are_collected_only_once_covered_by_the_watermark() {
        let mut s = StateStore::new(FixedState::with_seed(7), name("local"));
        let mut c = cfg();
        let ttl = Duration::from_secs(10);
        c.tombstone_ttl = ttl;
        ap(&mut s, &c, "t", "k", 3, "o", None);
        assert_eq!(s.collect(Instant::from_secs(11), ttl), 0, "not covered yet");
        s.raise_watermark(&c, "t", "o", 3);
        assert_eq!(s.collect(Instant::from_secs(30), ttl), 1);
        assert_eq!(s.len(), 0);
        s.check_invariants(&c);
        // A stale copy of the deleted value is recognised.
        assert_eq!(
            ap(&mut s, &c, "t", "k", 2, "o", Some(b"old")),
            Applied::Stale
        );
    }

    #[test]
    fn deltas_are_prefixes_above_the_peer_watermark_freshest_origin_first() {
        let mut s = StateStore::new(FixedState::with_seed(7), name("local"));
        let c = cfg();
        let ttl = Duration::from_secs(60);
        for i in 0..5 {
            let value: Arc<[u8]> = vec![0u8; 40].into();
            s.write_local(
                &name("me"),
                "t",
                &format!("k{i}"),
                Some(value),
                Instant::ZERO,
                ttl,
            );
        }
        ap(&mut s, &c, "t", "x", 100, "other", Some(b"w"));
        let (groups, resets) = s.deltas(&c, &[(("t", "me"), 2)], 1 << 20);
        assert!(resets.is_empty());
        assert_eq!(groups[0].origin, "other", "freshest writes first");
        assert_eq!(groups[0].watermark, 0, "we hold no watermark for `other`");
        let mine = &groups[1];
        let versions: Vec<u64> = mine.entries.iter().map(|e| e.1).collect();
        assert_eq!(versions, [3, 4, 5]);
        assert_eq!(mine.watermark, 5);
        // A tight budget cuts the group to a prefix and lowers the watermark to match.
        let (groups, _) = s.deltas(&c, &[(("t", "me"), 2), (("t", "other"), 1000)], 100);
        assert_eq!(groups[0].entries.len(), 1);
        assert_eq!(groups[0].watermark, 3);
    }
}
