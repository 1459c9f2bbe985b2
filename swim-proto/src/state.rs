//! Replicated key/value state: a Lamport-versioned last-writer-wins map (a state-based CRDT)
//! with scuttlebutt watermarks for anti-entropy and safe tombstone collection.
//!
//! An entry is keyed by `(type, key)`; its stamp is `(version, origin)`, the origin's Lamport
//! timestamp with the origin's name as tie-breaker. Merge keeps the greater stamp, so it is
//! commutative, associative and idempotent (`docs/protocol.md` §5.1). Deletions are entries
//! without a value (tombstones).
//!
//! For anti-entropy every node keeps, per `(type, origin)`, a *watermark*: the version up to which
//! it holds every write of that origin or a newer entry for the same key (§5.3). Watermarks make
//! digests O(origins) instead of O(entries), let deltas carry only what the peer lacks, and turn
//! away stale copies of deleted entries once their tombstones are collected.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt;
use core::time::Duration;

use crate::config::StateConfig;
use crate::member::NodeName;
use crate::time::Instant;

/// The name of a state type, shared by all entries of the type.
pub type TypeName = Arc<str>;

/// Identifies a state entry: its type and its key within the type. Ordered by type, then key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateKey {
    ty: TypeName,
    key: Arc<str>,
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
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateEntry {
    /// The value, or `None` if the entry was deleted (a tombstone, collected after
    /// `StateConfig::tombstone_ttl`).
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

/// Why an entry changed on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangeCause {
    /// A newer write arrived (by gossip or anti-entropy).
    Remote,
    /// The entry's origin failed or left, and its type expires orphaned entries.
    Expired,
    /// A peer showed the entry was deleted and the deletion already collected (§5.5).
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
}

#[derive(Clone, Debug)]
struct Held {
    entry: StateEntry,
    /// For a tombstone, when it is due for collection (`tombstone_ttl` after this node
    /// learned it); its key in `StateStore::tombstones`.
    collect_at: Instant,
    /// Written by this node since it started (re-stamped if a previous life's writes outrank it).
    this_life: bool,
}

/// Per `(type, origin)` anti-entropy bookkeeping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Mark {
    /// Every write of the origin up to this version is held here, or something newer for its key.
    watermark: u64,
    /// Highest version of a deletion by the origin collected here: peers below it may hold
    /// deleted values and get a reset.
    collected: u64,
    /// Entries held from the origin in this type.
    held: u32,
}

/// The store: entries, their per-origin index, watermarks and the tombstone queue.
#[derive(Debug)]
pub(crate) struct StateStore {
    entries: BTreeMap<StateKey, Held>,
    /// `(origin, type, version, key)` for deltas in ascending version order.
    by_origin: BTreeSet<(NodeName, TypeName, u64, Arc<str>)>,
    marks: BTreeMap<(TypeName, NodeName), Mark>,
    /// Tombstones by collection time.
    tombstones: BTreeSet<(Instant, StateKey)>,
    /// Interned type names.
    types: BTreeSet<TypeName>,
    clock: u64,
    bytes: usize,
    live: usize,
}

/// A delta group ready to encode: entries of one `(type, origin)` ascending.
pub(crate) struct Group<'s> {
    pub ty: &'s str,
    pub origin: &'s str,
    pub watermark: u64,
    pub entries: Vec<(&'s str, u64, Option<&'s [u8]>)>,
}

impl StateStore {
    pub(crate) fn new() -> Self {
        StateStore {
            entries: BTreeMap::new(),
            by_origin: BTreeSet::new(),
            marks: BTreeMap::new(),
            tombstones: BTreeSet::new(),
            types: BTreeSet::new(),
            clock: 0,
            bytes: 0,
            live: 0,
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

    pub(crate) fn origins(&self) -> usize {
        self.marks.len()
    }

    pub(crate) fn get(&self, ty: &str, key: &str) -> Option<&StateEntry> {
        self.lookup(ty, key)
    }

    fn lookup(&self, ty: &str, key: &str) -> Option<&StateEntry> {
        let k = StateKey {
            ty: self.intern_lookup(ty)?,
            key: key.into(),
        };
        self.entries.get(&k).map(|h| &h.entry)
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
            self.entries
                .range(lo..)
                .take_while(move |(k, _)| Arc::ptr_eq(&k.ty, &t) || *k.ty == *t)
        });
        range.into_iter().flatten().map(|(k, h)| (k, &h.entry))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&StateKey, &StateEntry)> {
        self.entries.iter().map(|(k, h)| (k, &h.entry))
    }

    /// Keys of entries whose current origin is `origin`, for the origin-failed event.
    pub(crate) fn keys_of_origin(&self, origin: &NodeName) -> Vec<StateKey> {
        let mut keys: Vec<StateKey> = self
            .of_origin(origin)
            .filter(|(_, ty, version, key)| {
                self.entries
                    .get(&StateKey {
                        ty: ty.clone(),
                        key: key.clone(),
                    })
                    .is_some_and(|h| h.entry.value.is_some() && h.entry.version == *version)
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
                    h.entry.version,
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
        self.put(
            StateKey {
                ty: ty.clone(),
                key: key.into(),
            },
            entry,
            now,
            ttl,
            true,
        );
        let mark = self.marks.entry((ty, me.clone())).or_default();
        mark.watermark = mark.watermark.max(version);
        version
    }

    /// Merges a remote entry.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn apply(
        &mut self,
        cfg: &StateConfig,
        ty: &str,
        key: &str,
        version: u64,
        origin: &str,
        value: Option<&[u8]>,
        now: Instant,
    ) -> Applied {
        if !cfg.stores(ty) {
            return Applied::NotStored;
        }
        self.clock = self.clock.max(version);
        let held = self.lookup(ty, key);
        match held {
            Some(e) if !e.is_older_than(version, origin, value) => return Applied::NotNewer,
            Some(_) => {}
            None => {
                let covered = self
                    .intern_lookup(ty)
                    .and_then(|t| self.marks.get(&(t, name_key(origin))))
                    .is_some_and(|m| m.watermark >= version);
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
        let old = self.put(key, entry, now, cfg.tombstone_ttl, false);
        self.marks.entry((ty, origin)).or_default();
        Applied::Changed(old)
    }

    /// Inserts or replaces an entry, keeping the indexes, counts and tombstone queue.
    fn put(
        &mut self,
        key: StateKey,
        entry: StateEntry,
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
        self.by_origin.insert((
            entry.origin.clone(),
            key.ty.clone(),
            entry.version,
            key.key.clone(),
        ));
        self.bump_held(&key.ty, &entry.origin, 1);
        self.entries.insert(
            key,
            Held {
                entry,
                collect_at,
                this_life,
            },
        );
        old
    }

    /// Removes an entry and its index records; returns it.
    fn remove(&mut self, key: &StateKey) -> Option<StateEntry> {
        let h = self.entries.remove(key)?;
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
            h.entry.version,
            key.key.clone(),
        ));
        assert!(removed, "every entry is indexed by origin");
        self.bump_held(&key.ty, &h.entry.origin, -1);
        Some(h.entry)
    }

    fn bump_held(&mut self, ty: &TypeName, origin: &NodeName, by: i32) {
        let m = self.marks.entry((ty.clone(), origin.clone())).or_default();
        m.held = m
            .held
            .checked_add_signed(by)
            .expect("held count stays in range");
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
                .is_some_and(|m| m.watermark >= h.entry.version);
            if !covered {
                postponed.push((at.max(now) + ttl / 4, key));
                continue;
            }
            let version = h.entry.version;
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
            .map(|(_, _, v, k)| (*v, k.clone()))
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
            let old = self.remove(k).expect("listed entries are held");
            self.clock = self.clock.saturating_add(1);
            let version = self.clock;
            let entry = StateEntry { version, ..old };
            self.put(k.clone(), entry, now, ttl, true);
            let m = self.marks.entry((k.ty.clone(), me.clone())).or_default();
            m.watermark = m.watermark.max(version);
        }
        keys
    }

    // ------------------------------------------------------------ anti-entropy

    /// Lamport rule for versions seen in digests.
    pub(crate) fn observe(&mut self, version: u64) {
        self.clock = self.clock.max(version);
    }

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
        let m = self.marks.entry((t, origin)).or_default();
        m.watermark = m.watermark.max(to);
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
    /// peer may adopt. Also returns the types for which the peer needs a reset (§5.5).
    pub(crate) fn deltas<'s>(
        &'s self,
        cfg: &StateConfig,
        peer: impl Fn(&str, &str) -> u64,
        budget: usize,
    ) -> (Vec<Group<'s>>, Vec<&'s str>) {
        let mut candidates: Vec<(u64, &'s TypeName, &'s NodeName, u64)> = Vec::new();
        let mut resets: Vec<&'s str> = Vec::new();
        for ((ty, origin), m) in &self.marks {
            if !cfg.stores(ty) {
                continue;
            }
            let theirs = peer(ty, origin.as_str());
            if m.collected > theirs && resets.last() != Some(&&**ty) {
                resets.push(ty);
            }
            if m.held == 0 {
                continue;
            }
            let newest = self
                .of_origin_type(origin, ty)
                .last()
                .map_or(0, |(_, _, v, _)| *v);
            if newest > theirs {
                candidates.push((newest, ty, origin, theirs));
            }
        }
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| (a.1, a.2).cmp(&(b.1, b.2))));
        let mut left = budget;
        let mut groups = Vec::new();
        for (_, ty, origin, theirs) in candidates {
            if left < 64 {
                break;
            }
            let mine = self.marks[&(ty.clone(), origin.clone())].watermark;
            let mut entries = Vec::new();
            let mut truncated_at = None;
            let lo = (
                origin.clone(),
                ty.clone(),
                theirs.saturating_add(1),
                empty(),
            );
            for (_, _, version, key) in self
                .by_origin
                .range(lo..)
                .take_while(|(o, t, _, _)| o == origin && t == ty)
            {
                let h = &self.entries[&StateKey {
                    ty: ty.clone(),
                    key: key.clone(),
                }];
                let cost = key.len() + h.entry.bytes() + 16;
                if cost > left {
                    truncated_at = Some(entries.last().map_or(theirs, |e: &(_, u64, _)| e.1));
                    break;
                }
                left -= cost;
                entries.push((&**key, *version, h.entry.value.as_deref()));
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
                keys.binary_search(&k.key()).is_err() && e.version <= theirs(e.origin.as_str())
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for k in doomed {
            if let Some(old) = self.remove(&k) {
                let m = self
                    .marks
                    .entry((k.ty.clone(), old.origin.clone()))
                    .or_default();
                m.collected = m.collected.max(old.version);
                out.push((k, old));
            }
        }
        out
    }

    /// An order-independent fingerprint of every entry held (type, key, version, origin):
    /// equal on two nodes exactly when they hold the same stamps (up to hash collisions).
    pub(crate) fn fingerprint(&self) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        let mut eat = |b: &[u8]| {
            for &x in b {
                h ^= u64::from(x);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        for (k, e) in self.iter() {
            eat(k.ty.as_bytes());
            eat(&[0]);
            eat(k.key.as_bytes());
            eat(&[0]);
            eat(&e.version.to_le_bytes());
            eat(e.origin.as_str().as_bytes());
            eat(&[0xff]);
        }
        h
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

    #[derive(Clone, Debug)]
    struct Write {
        ty: &'static str,
        key: String,
        version: u64,
        origin: String,
        value: Option<Vec<u8>>,
    }

    fn write() -> impl Strategy<Value = Write> {
        (
            prop::sample::select(vec!["a", "b"]),
            0..4u8,
            1..6u64,
            0..3u8,
            prop::option::of(prop::collection::vec(any::<u8>(), 0..4)),
        )
            .prop_map(|(ty, k, version, o, value)| Write {
                ty,
                key: format!("k{k}"),
                version,
                origin: format!("n{o}"),
                value,
            })
    }

    fn merged(writes: &[Write]) -> StateStore {
        let mut s = StateStore::new();
        for w in writes {
            s.apply(
                &cfg(),
                w.ty,
                &w.key,
                w.version,
                &w.origin,
                w.value.as_deref(),
                Instant::ZERO,
            );
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
        fn merge_is_commutative(writes in prop::collection::vec(write(), 0..24), seed in any::<u64>()) {
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
            a in prop::collection::vec(write(), 0..8),
            b in prop::collection::vec(write(), 0..8),
            c in prop::collection::vec(write(), 0..8),
        ) {
            let winners = |s: &StateStore| -> Vec<Write> {
                s.iter().map(|(k, e)| Write {
                    ty: if k.ty() == "a" { "a" } else { "b" },
                    key: k.key().into(),
                    version: e.version,
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
        fn merge_is_idempotent(writes in prop::collection::vec(write(), 0..24)) {
            let once = merged(&writes);
            let twice = merged(&[writes.clone(), writes].concat());
            prop_assert_eq!(contents(&once), contents(&twice));
            prop_assert_eq!(once.fingerprint(), twice.fingerprint());
        }
    }

    #[test]
    fn greater_stamp_wins_and_ties_break_by_origin() {
        let mut s = StateStore::new();
        let c = cfg();
        assert!(matches!(
            s.apply(&c, "t", "k", 5, "b", Some(b"1"), Instant::ZERO),
            Applied::Changed(None)
        ));
        assert_eq!(
            s.apply(&c, "t", "k", 4, "z", Some(b"2"), Instant::ZERO),
            Applied::NotNewer
        );
        assert!(matches!(
            s.apply(&c, "t", "k", 5, "c", Some(b"3"), Instant::ZERO),
            Applied::Changed(Some(_))
        ));
        assert_eq!(s.get("t", "k").unwrap().origin.as_str(), "c");
        assert_eq!(s.clock(), 5, "Lamport: the clock follows the versions seen");
    }

    #[test]
    fn below_the_watermark_an_unknown_key_is_stale() {
        let mut s = StateStore::new();
        let c = cfg();
        s.raise_watermark(&c, "t", "o", 10);
        assert_eq!(
            s.apply(&c, "t", "gone", 7, "o", Some(b"old"), Instant::ZERO),
            Applied::Stale
        );
        assert!(matches!(
            s.apply(&c, "t", "new", 11, "o", Some(b"v"), Instant::ZERO),
            Applied::Changed(None)
        ));
    }

    #[test]
    fn tombstones_are_collected_only_once_covered_by_the_watermark() {
        let mut s = StateStore::new();
        let mut c = cfg();
        let ttl = Duration::from_secs(10);
        c.tombstone_ttl = ttl;
        s.apply(&c, "t", "k", 3, "o", None, Instant::ZERO);
        assert_eq!(s.collect(Instant::from_secs(11), ttl), 0, "not covered yet");
        s.raise_watermark(&c, "t", "o", 3);
        assert_eq!(s.collect(Instant::from_secs(30), ttl), 1);
        assert_eq!(s.len(), 0);
        s.check_invariants(&c);
        // A stale copy of the deleted value is recognised.
        assert_eq!(
            s.apply(&c, "t", "k", 2, "o", Some(b"old"), Instant::ZERO),
            Applied::Stale
        );
    }

    #[test]
    fn deltas_are_prefixes_above_the_peer_watermark_freshest_origin_first() {
        let mut s = StateStore::new();
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
        s.apply(&c, "t", "x", 100, "other", Some(b"w"), Instant::ZERO);
        let (groups, resets) = s.deltas(&c, |_, o| if o == "me" { 2 } else { 0 }, 1 << 20);
        assert!(resets.is_empty());
        assert_eq!(groups[0].origin, "other", "freshest writes first");
        assert_eq!(groups[0].watermark, 0, "we hold no watermark for `other`");
        let mine = &groups[1];
        let versions: Vec<u64> = mine.entries.iter().map(|e| e.1).collect();
        assert_eq!(versions, [3, 4, 5]);
        assert_eq!(mine.watermark, 5);
        // A tight budget cuts the group to a prefix and lowers the watermark to match.
        let (groups, _) = s.deltas(&c, |_, o| if o == "me" { 2 } else { 1000 }, 100);
        assert_eq!(groups[0].entries.len(), 1);
        assert_eq!(groups[0].watermark, 3);
    }
}
