//! Local and remote writes into the store: interning, the merge rule (the greater stamp
//! wins, `docs/protocol.md` §10.1), watermark upkeep (§10.3), origin failure and tombstone
//! collection (§10.5, §10.7).

use super::*;

impl StateStore {
    pub(super) fn intern(&mut self, ty: &str) -> TypeName {
        if let Some(t) = self.types.get(ty) {
            return t.clone();
        }
        let t: TypeName = ty.into();
        self.types.insert(t.clone());
        t
    }

    /// Checks that a local write fits the bounds and this node's fair share; nothing changes.
    pub(crate) fn check_room(
        &self,
        cfg: &StateConfig,
        ty: &str,
        key: &str,
        value_len: usize,
    ) -> Result<(), StateError> {
        self.check_bounds(cfg, ty, key, value_len)?;
        if self
            .check_quota(cfg, ty, key, value_len, self.me.as_str(), true)
            .is_err()
        {
            let (max_entries, max_bytes) = cfg.origin_quota();
            return Err(StateError::OriginQuota {
                max_entries,
                max_bytes,
            });
        }
        Ok(())
    }

    /// Checks that a write fits the store's bounds; nothing changes.
    fn check_bounds(
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
        self.ensure_mark(ty, me, true);
        let m = self
            .marks
            .get_mut(&(ty.clone(), me.clone()))
            .expect("just ensured");
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

    /// Merges a remote entry whose origin is (`member`) or is not in the member table.
    pub(crate) fn apply(
        &mut self,
        cfg: &StateConfig,
        me: &NodeName,
        w: Write<'_>,
        member: bool,
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
        // A stamp from the future (issue 13): refused before it moves the clock.
        if version > self.clock.saturating_add(cfg.max_version_jump)
            || seq
                > self
                    .watermark(ty, origin)
                    .saturating_add(cfg.max_version_jump)
        {
            return Applied::Refused(Refusal::Future);
        }
        let member = member || origin == me.as_str();
        if member {
            self.set_member(origin, true);
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
            .check_bounds(cfg, ty, key, value.map_or(0, <[u8]>::len))
            .is_err()
        {
            return Applied::Full;
        }
        let value_len = value.map_or(0, <[u8]>::len);
        if let Err(r) = self.check_quota(cfg, ty, key, value_len, origin, member) {
            return Applied::Refused(r);
        }
        let Ok(origin) = NodeName::new(origin) else {
            return Applied::NotNewer; // validated by the caller; unreachable in practice
        };
        let ty = match self.admit_mark(cfg, ty, &origin, member) {
            Ok(t) => t,
            Err(r) => return Applied::Refused(r),
        };
        let entry = StateEntry {
            value: value.map(Arc::from),
            version,
            origin: origin.clone(),
        };
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
    pub(super) fn extend_watermark(&mut self, ty: &TypeName, origin: &NodeName, to: u64) {
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
        let is_me = *origin == self.me;
        self.ensure_mark(ty, origin, true);
        self.update_mark(ty, origin, |m| {
            if is_me && wm >= m.own_floor {
                // Past a previous life's writes, this life's are all known here.
                wm = wm.max(m.own_seq);
            }
            m.watermark = m.watermark.max(wm);
        });
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
        let bytes = key.bytes() + entry.bytes();
        self.bytes += bytes;
        let collect_at = now + ttl;
        if entry.value.is_some() {
            self.live += 1;
        } else {
            self.tombstones.insert((collect_at, key.clone()));
        }
        self.by_origin
            .insert((entry.origin.clone(), key.ty.clone(), seq, key.key.clone()));
        self.bump_held(&key.ty, &entry.origin, 1, seq);
        self.account(&entry.origin, 1, bytes);
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
    pub(super) fn remove_held(&mut self, key: &StateKey) -> Option<(StateEntry, u64)> {
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
        self.account(&h.entry.origin, -1, key.bytes() + h.entry.bytes());
        Some((h.entry, h.seq))
    }

    /// Counts an entry of `(ty, origin)` in (`by` 1) or out (-1), keeping `newest`. Called
    /// after the origin index was updated.
    fn bump_held(&mut self, ty: &TypeName, origin: &NodeName, by: i32, seq: u64) {
        self.ensure_mark(ty, origin, true);
        let newest = if by < 0 {
            self.newest_seq(origin, ty)
        } else {
            0
        };
        self.update_mark(ty, origin, |m| {
            m.held = m
                .held
                .checked_add_signed(by)
                .expect("held count stays in range");
            if by > 0 {
                m.newest = m.newest.max(seq);
            } else if seq >= m.newest {
                m.newest = newest;
            }
        });
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
            let (t, o) = mark_key;
            self.update_mark(&t, &o, |m| m.collected = m.collected.max(version));
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
                self.update_mark(&t, origin, |m| m.collected = m.collected.max(version));
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
        self.ensure_mark(&t, me, true);
        self.update_mark(&t, me, |m| m.own_floor = m.own_floor.max(to));
    }
}
