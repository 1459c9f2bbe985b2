//! Anti-entropy over watermarks (`docs/protocol.md` §10.3–§10.5): digests of what this node
//! holds, deltas of what a peer lacks, resets of collected deletions, and fingerprints.

use super::*;

impl StateStore {
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

    /// Raises the watermark of `(ty, origin)` after a delta group was applied; `member` says
    /// whether the origin is in the member table. A raise further than `max_version_jump`
    /// (a forged watermark that would turn the origin's next writes away as stale) or past the
    /// origins' bounds is refused.
    pub(crate) fn raise_watermark(
        &mut self,
        cfg: &StateConfig,
        ty: &str,
        origin: &str,
        to: u64,
        member: bool,
    ) -> Result<(), Refusal> {
        if !cfg.stores(ty) || to == 0 {
            return Ok(());
        }
        let Ok(origin) = NodeName::new(origin) else {
            return Ok(());
        };
        if to
            > self
                .watermark(ty, origin.as_str())
                .saturating_add(cfg.max_version_jump)
        {
            return Err(Refusal::Future);
        }
        let member = member || origin == self.me;
        let t = self.admit_mark(cfg, ty, &origin, member)?;
        self.extend_watermark(&t, &origin, to);
        Ok(())
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
                self.update_mark(&k.ty, &old.origin, |m| m.collected = m.collected.max(seq));
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
