//! Per-origin bookkeeping (issue 13, `docs/security.md`): each origin's fair share of the
//! store, the share of origins that are not members, the `max_origins` bound on watermarks
//! kept in O(log n) per input, and the expiry of non-members' entries.
//!
//! Every bound is checked when an entry or watermark is admitted, never by a sweep: an index of
//! evictable marks (those holding no entry) gives the victim in O(log n), so a flood of
//! 150,000 origins costs each input what one input costs in a quiet store.

use super::*;

/// What the store keeps about one origin, across types.
#[derive(Clone, Debug, Default)]
pub(super) struct OriginUse {
    /// Entries held whose current stamp is this origin's.
    pub entries: usize,
    /// Bytes of their keys and values.
    pub bytes: usize,
    /// `(type, origin)` marks kept.
    pub marks: usize,
    /// Whether the node counts the origin as a member; if not, its use also counts towards
    /// the non-members' share (`StateConfig::non_member_share_percent`).
    pub member: bool,
    /// When to check again whether the origin is a member (`StateConfig::non_member_ttl`).
    pub check_at: Option<Instant>,
}

/// Key of the eviction index: members' marks after non-members', marks that remember a
/// collected deletion after those that do not, then type and origin.
pub(super) type EvictKey = (bool, bool, TypeName, NodeName);

/// A mark's place in the eviction index: `Some(collected)` if it holds no entry.
fn rank(m: &Mark) -> Option<bool> {
    (m.held == 0).then_some(m.collected > 0)
}

/// Why a remote entry or watermark was refused (each counted in `Stats::state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A version, sequence number or watermark further ahead than `max_version_jump`.
    Future,
    /// The origin is at its fair share (`origin_share_percent`).
    Quota,
    /// Origins that are not members are at their share (`non_member_share_percent`).
    NonMember,
    /// `max_origins` watermarks are kept and none can be evicted.
    Origins,
}

impl StateStore {
    /// Whether `origin` counts as a member here (an origin not known yet takes `member`).
    fn counts_as_member(&self, origin: &str, member: bool) -> bool {
        self.origins.get(origin).map_or(member, |u| u.member)
    }

    /// The entries and bytes held of `origin`.
    pub(crate) fn origin_use(&self, origin: &str) -> (usize, usize) {
        self.origins
            .get(origin)
            .map_or((0, 0), |u| (u.entries, u.bytes))
    }

    /// Applies `f` to the mark of `(ty, origin)`, which exists, keeping the eviction index.
    pub(super) fn update_mark<R>(
        &mut self,
        ty: &TypeName,
        origin: &NodeName,
        f: impl FnOnce(&mut Mark) -> R,
    ) -> R {
        let member = self.counts_as_member(origin.as_str(), true);
        let m = self
            .marks
            .get_mut(&(ty.clone(), origin.clone()))
            .expect("an updated mark exists");
        let before = rank(m);
        let r = f(m);
        let after = rank(m);
        if before != after {
            if let Some(c) = before {
                self.evictable
                    .remove(&(member, c, ty.clone(), origin.clone()));
            }
            if let Some(c) = after {
                self.evictable
                    .insert((member, c, ty.clone(), origin.clone()));
            }
        }
        r
    }

    /// Creates the mark of `(ty, origin)` if missing, with no bound checked (the caller
    /// admitted it, or it is this node's own). A new origin counts as a member if `member`.
    pub(super) fn ensure_mark(&mut self, ty: &TypeName, origin: &NodeName, member: bool) {
        let key = (ty.clone(), origin.clone());
        if self.marks.contains_key(&key) {
            return;
        }
        let u = self.origins.entry(origin.clone()).or_insert_with(|| {
            if !member {
                self.fresh_guests.push(origin.clone());
            }
            OriginUse {
                member,
                ..OriginUse::default()
            }
        });
        u.marks += 1;
        let member = u.member;
        if !member {
            self.guest_marks += 1;
        }
        self.marks.insert(key, Mark::default());
        self.mark_types.insert((origin.clone(), ty.clone()));
        self.evictable
            .insert((member, false, ty.clone(), origin.clone()));
    }

    /// Drops the first evictable mark (a non-member's only, if `guests_only`); whether one was.
    fn evict(&mut self, guests_only: bool) -> bool {
        match self.evictable.first() {
            None => return false,
            Some((member, ..)) if guests_only && *member => return false,
            Some(_) => {}
        }
        let (member, _, ty, origin) = self.evictable.pop_first().expect("first exists");
        self.marks.remove(&(ty.clone(), origin.clone()));
        self.mark_types.remove(&(origin.clone(), ty));
        if !member {
            self.guest_marks -= 1;
        }
        let u = self
            .origins
            .get_mut(&origin)
            .expect("a mark's origin is kept");
        u.marks -= 1;
        if u.marks == 0 {
            assert_eq!(u.entries, 0, "an origin with entries keeps its marks");
            self.origins.remove(&origin);
        }
        true
    }

    /// Makes room for the mark of `(ty, origin)` if it is missing (evicting a mark that holds
    /// no entry if at a bound) and returns the interned type.
    pub(super) fn admit_mark(
        &mut self,
        cfg: &StateConfig,
        ty: &str,
        origin: &NodeName,
        member: bool,
    ) -> Result<TypeName, Refusal> {
        if let Some(t) = self.intern_lookup(ty)
            && self.marks.contains_key(&(t.clone(), origin.clone()))
        {
            return Ok(t);
        }
        let guest = !self.counts_as_member(origin.as_str(), member);
        if guest && self.guest_marks >= cfg.non_member_quota().2 && !self.evict(true) {
            return Err(Refusal::NonMember);
        }
        if self.marks.len() >= cfg.max_origins && !self.evict(guest) {
            return Err(if guest {
                Refusal::NonMember
            } else {
                Refusal::Origins
            });
        }
        let t = self.intern(ty);
        self.ensure_mark(&t, origin, member);
        Ok(t)
    }

    /// Checks that `origin` may write `value_len` bytes under `(ty, key)` within its fair share
    /// and, if it is not a member, within the non-members' share. Nothing changes.
    pub(crate) fn check_quota(
        &self,
        cfg: &StateConfig,
        ty: &str,
        key: &str,
        value_len: usize,
        origin: &str,
        member: bool,
    ) -> Result<(), Refusal> {
        let (old_n, old_bytes) = match self.entries.get(&KeyRef(ty, key)) {
            Some(h) if h.entry.origin.as_str() == origin => {
                (1, ty.len() + key.len() + h.entry.bytes())
            }
            _ => (0, 0),
        };
        let bytes = ty.len() + key.len() + value_len;
        let (n, b) = self.origin_use(origin);
        let (max_n, max_b) = cfg.origin_quota();
        if n - old_n + 1 > max_n || b - old_bytes + bytes > max_b {
            return Err(Refusal::Quota);
        }
        if !self.counts_as_member(origin, member) {
            let (max_n, max_b, _) = cfg.non_member_quota();
            if self.guest_entries - old_n + 1 > max_n
                || self.guest_bytes - old_bytes + bytes > max_b
            {
                return Err(Refusal::NonMember);
            }
        }
        Ok(())
    }

    /// Counts an entry of `origin` of `bytes` bytes in (`sign` 1) or out (-1).
    pub(super) fn account(&mut self, origin: &NodeName, sign: isize, bytes: usize) {
        let u = self
            .origins
            .get_mut(origin)
            .expect("an entry's origin has a mark");
        let member = u.member;
        if sign > 0 {
            u.entries += 1;
            u.bytes += bytes;
        } else {
            u.entries -= 1;
            u.bytes -= bytes;
        }
        if !member {
            if sign > 0 {
                self.guest_entries += 1;
                self.guest_bytes += bytes;
            } else {
                self.guest_entries -= 1;
                self.guest_bytes -= bytes;
            }
        }
    }

    /// Counts `origin` as a member or not from now on (moving its use in or out of the
    /// non-members' share).
    pub(crate) fn set_member(&mut self, origin: &str, member: bool) {
        let Some(u) = self.origins.get_mut(origin) else {
            return;
        };
        if u.member == member {
            return;
        }
        u.member = member;
        let (n, b, m) = (u.entries, u.bytes, u.marks);
        if member {
            self.guest_entries -= n;
            self.guest_bytes -= b;
            self.guest_marks -= m;
        } else {
            self.guest_entries += n;
            self.guest_bytes += b;
            self.guest_marks += m;
        }
        let o = name_key(origin);
        let types: Vec<TypeName> = self.types_of(&o).cloned().collect();
        for t in types {
            let r = rank(&self.marks[&(t.clone(), o.clone())]);
            if let Some(c) = r {
                self.evictable.remove(&(!member, c, t.clone(), o.clone()));
                self.evictable.insert((member, c, t, o.clone()));
            }
        }
    }

    /// The types of which `origin` has a mark.
    fn types_of<'s>(&'s self, origin: &'s NodeName) -> impl Iterator<Item = &'s TypeName> + 's {
        self.mark_types
            .range((origin.clone(), empty())..)
            .take_while(move |(o, _)| o == origin)
            .map(|(_, t)| t)
    }

    /// Origins first seen as non-members since the last call (to schedule their check).
    pub(crate) fn take_fresh_guests(&mut self) -> Vec<NodeName> {
        core::mem::take(&mut self.fresh_guests)
    }

    /// Schedules the membership check of `origin` at `at`; whether the store keeps it.
    pub(crate) fn watch(&mut self, origin: &str, at: Instant) -> bool {
        self.origins
            .get_mut(origin)
            .map(|u| u.check_at = Some(at))
            .is_some()
    }

    /// Whether the membership check of `origin` is due at `now` (and clears it if so).
    pub(crate) fn take_check(&mut self, origin: &str, now: Instant) -> bool {
        match self.origins.get_mut(origin) {
            Some(u) if u.check_at.is_some_and(|at| at <= now) => {
                u.check_at = None;
                true
            }
            _ => false,
        }
    }

    /// Deletes here every entry of `origin` (no longer a member); keeps its marks so stale
    /// copies are recognised. Returns the keys and old entries.
    pub(crate) fn expire_origin(&mut self, origin: &NodeName) -> Vec<(StateKey, StateEntry)> {
        self.set_member(origin.as_str(), false);
        let types: Vec<TypeName> = self.types_of(origin).cloned().collect();
        let mut out = Vec::new();
        for t in types {
            out.extend(self.expire(origin, &t));
        }
        out
    }

    /// Checks the per-origin bookkeeping against the entries and marks; panics naming the
    /// broken invariant.
    pub(super) fn check_origins(&self, cfg: &StateConfig) {
        let (mut n, mut b, mut m) = (0, 0, 0);
        for (o, u) in &self.origins {
            assert_eq!(
                u.marks,
                self.types_of(o).count(),
                "mark count of origin {o}"
            );
            assert!(u.marks > 0, "an origin is kept only with marks");
            if !u.member {
                n += u.entries;
                b += u.bytes;
                m += u.marks;
            }
        }
        assert_eq!(
            (n, b, m),
            (self.guest_entries, self.guest_bytes, self.guest_marks),
            "the non-member totals match their origins"
        );
        let mut per: BTreeMap<&NodeName, (usize, usize)> = BTreeMap::new();
        for (k, h) in &self.entries {
            let e = per.entry(&h.entry.origin).or_default();
            e.0 += 1;
            e.1 += k.bytes() + h.entry.bytes();
        }
        for (o, u) in &self.origins {
            assert_eq!(
                per.remove(o).unwrap_or_default(),
                (u.entries, u.bytes),
                "entries and bytes of origin {o}"
            );
        }
        assert!(per.is_empty(), "every entry's origin is kept");
        assert_eq!(self.marks.len(), self.mark_types.len(), "marks by origin");
        let evictable = self.marks.values().filter(|m| m.held == 0).count();
        assert_eq!(evictable, self.evictable.len(), "the eviction index");
        let own = self.types_of(&self.me).count();
        assert!(
            self.marks.len() <= cfg.max_origins + own,
            "marks are within max_origins (plus this node's own)"
        );
    }
}
