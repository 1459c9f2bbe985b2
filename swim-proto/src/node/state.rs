//! The node's side of the replicated state: commands, queries, piggybacked entries, origin
//! failure and tombstone collection (`docs/protocol.md` §10). Anti-entropy exchanges are
//! `node/state_sync.rs`.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::timers::{Timer, TimerKind};
use super::{Address, Node};
use crate::io::{CommandError, Event, Output, StateWrite};
use crate::member::{MemberState, NodeName};
use crate::state::{Applied, ChangeCause, Refusal, StateEntry, StateError, StateKey};
use crate::stats::DropReason;
use crate::wire::{self, DeltaGroup, StateSync, StateUpdate, SyncPhase};

/// Bytes of framing allowed for around one piggybacked entry when deciding whether it fits a
/// datagram at all (header, label, primary message, counts, encryption).
const DATAGRAM_OVERHEAD: usize = 96;

impl<A: Address> Node<A> {
    // ---------------------------------------------------------------- queries

    /// The live value of `(ty, key)` with its stamp; `None` if absent or deleted.
    pub fn state_get(&self, ty: &str, key: &str) -> Option<&StateEntry> {
        self.state.get(ty, key).filter(|e| e.value.is_some())
    }

    /// The entry held for `(ty, key)`, including a deletion not yet collected.
    pub fn state_entry(&self, ty: &str, key: &str) -> Option<&StateEntry> {
        self.state.get(ty, key)
    }

    /// The live entries of one type, in key order.
    pub fn state_iter<'s>(
        &'s self,
        ty: &str,
    ) -> impl Iterator<Item = (&'s StateKey, &'s StateEntry)> + 's {
        self.state.iter_type(ty).filter(|(_, e)| e.value.is_some())
    }

    /// The digest: every application entry held (deletions included; the reserved `swim.`
    /// types left out) as `(type and key, version)`, in order. Two nodes with equal digests and
    /// origins hold the same state.
    pub fn state_digest(&self) -> impl Iterator<Item = (&StateKey, u64)> {
        self.state
            .iter()
            .filter(|(k, _)| !k.ty().starts_with("swim."))
            .map(|(k, e)| (k, e.version))
    }

    /// A 64-bit fingerprint of every application entry's type, key, version and origin: equal
    /// on nodes that hold the same state (a cheap convergence check for simulators and
    /// operators).
    pub fn state_fingerprint(&self) -> u64 {
        self.state.fingerprint()
    }

    /// This node's Lamport clock.
    pub fn state_clock(&self) -> u64 {
        self.state.clock()
    }

    /// This node's anti-entropy watermark for writes of `origin` in `ty`: the sequence number
    /// up to which it holds every such write or a newer entry for its key.
    pub fn state_watermark(&self, ty: &str, origin: &str) -> u64 {
        self.state.watermark(ty, origin)
    }

    // ---------------------------------------------------------------- commands

    fn check_write(&self, ty: &str, key: &str, value_len: usize) -> Result<(), StateError> {
        let cfg = &self.config.state;
        if ty.is_empty() || ty.len() > crate::config::MAX_STATE_TYPE_LEN {
            return Err(StateError::BadType);
        }
        if ty.starts_with("swim.") {
            return Err(StateError::ReservedType);
        }
        if !cfg.stores(ty) {
            return Err(StateError::TypeNotStored);
        }
        if key.is_empty() || key.len() > cfg.max_key_len {
            return Err(StateError::BadKey {
                len: key.len(),
                max: cfg.max_key_len,
            });
        }
        if value_len > cfg.max_value_size {
            return Err(StateError::ValueTooLarge {
                len: value_len,
                max: cfg.max_value_size,
            });
        }
        self.state.check_room(cfg, ty, key, value_len)
    }

    /// Validates a batch as a whole (each write, then the batch's total against the bounds)
    /// and writes it. On error nothing is written.
    pub(super) fn publish(
        &mut self,
        writes: Vec<(StateWrite, bool)>,
        out: &mut Vec<Output<A>>,
    ) -> Result<(), CommandError> {
        let cfg = &self.config.state;
        let mut new_keys = 0usize;
        let mut added_bytes = 0usize;
        let (own_entries, own_bytes) = self.state.origin_use(self.local.name.as_str());
        let (quota_entries, quota_bytes) = cfg.origin_quota();
        let mut taken = 0usize;
        for (index, (w, delete)) in writes.iter().enumerate() {
            let len = if *delete { 0 } else { w.value.len() };
            self.check_write(&w.ty, &w.key, len)
                .map_err(|error| CommandError::State { index, error })?;
            let held = self.state.get(&w.ty, &w.key);
            if held.is_none() {
                new_keys += 1;
            }
            if held.is_none_or(|e| e.origin != self.local.name) {
                taken += 1;
            }
            added_bytes += w.ty.len() + w.key.len() + len;
            let full = if self.state.len() + new_keys > cfg.max_entries {
                Some(StateError::TooManyEntries {
                    max: cfg.max_entries,
                })
            } else if self.state.bytes() + added_bytes > cfg.max_total_bytes {
                Some(StateError::TooManyBytes {
                    max: cfg.max_total_bytes,
                })
            } else if own_entries + taken > quota_entries || own_bytes + added_bytes > quota_bytes {
                Some(StateError::OriginQuota {
                    max_entries: quota_entries,
                    max_bytes: quota_bytes,
                })
            } else {
                None
            };
            if let Some(error) = full {
                return Err(CommandError::State { index, error });
            }
        }
        let ttl = self.config.state.tombstone_ttl;
        for (w, delete) in writes {
            let value = (!delete).then(|| Arc::<[u8]>::from(w.value));
            self.state
                .write_local(&self.local.name, &w.ty, &w.key, value, self.now, ttl);
            self.stats.state.writes += 1;
            self.spread_entry(StateKey::new(&w.ty, &w.key), out);
        }
        self.arm_collection();
        Ok(())
    }

    // ---------------------------------------------------------------- receiving entries

    pub(super) fn validate_state_update(&self, u: &StateUpdate<'_>) -> Result<(), DropReason> {
        self.validate_entry(u.ty, u.key, u.origin, u.value)
    }

    pub(super) fn validate_entry(
        &self,
        ty: &str,
        key: &str,
        origin: &str,
        value: Option<&[u8]>,
    ) -> Result<(), DropReason> {
        let cfg = &self.config.state;
        let ok = !ty.is_empty()
            && ty.len() <= crate::config::MAX_STATE_TYPE_LEN
            && !key.is_empty()
            && key.len() <= cfg.max_key_len
            && !origin.is_empty()
            && origin.len() <= self.config.max_name_len
            && value.is_none_or(|v| v.len() <= cfg.max_value_size);
        if ok {
            Ok(())
        } else {
            Err(DropReason::BadStateEntry)
        }
    }

    /// Whether `origin` is in the member table (or is this node): entries of other origins
    /// count towards the non-members' share and expire (issue 13).
    pub(super) fn is_state_member(&self, origin: &str) -> bool {
        origin == self.local.name.as_str() || self.members.get(origin).is_some()
    }

    /// Counts a refusal by an abuse bound.
    pub(super) fn count_refusal(&mut self, r: Refusal) {
        let s = &mut self.stats.state;
        match r {
            Refusal::Future => s.rejected_future += 1,
            Refusal::Quota => s.rejected_quota += 1,
            Refusal::NonMember => s.rejected_non_member += 1,
            Refusal::Origins => s.rejected_origins += 1,
        }
    }

    /// Merges one remote entry; on a change, reports it and passes it on by gossip. Returns
    /// whether the entry was refused by a bound (so it must not be counted as delivered).
    pub(super) fn apply_state(&mut self, w: StateUpdate<'_>, out: &mut Vec<Output<A>>) -> bool {
        self.stats.state.received += 1;
        let (ty, key) = (w.ty, w.key);
        let member = self.is_state_member(w.origin);
        let r = self
            .state
            .apply(&self.config.state, &self.local.name, w, member, self.now);
        self.watch_new_origins();
        match r {
            Applied::Changed(old) => {
                self.stats.state.applied += 1;
                if ty == crate::config::VIEW_STATE_TYPE {
                    self.view.records_changed += 1;
                }
                let k = StateKey::new(ty, key);
                let new = self.state.get(ty, key).cloned();
                if new.as_ref().is_some_and(|e| e.value.is_none()) {
                    self.arm_collection();
                }
                out.push(Output::Event(Event::StateChanged {
                    key: k.clone(),
                    old,
                    new,
                    cause: ChangeCause::Remote,
                }));
                if member {
                    // A non-member's entries are not gossiped on (no amplification of forged
                    // entries, issue 13); anti-entropy still carries them.
                    self.spread_entry(k, out);
                }
            }
            Applied::NotNewer => self.stats.state.not_newer += 1,
            Applied::Stale => self.stats.state.stale += 1,
            Applied::NotStored => self.stats.state.not_stored += 1,
            Applied::Full => {
                self.stats.state.rejected_full += 1;
                return true;
            }
            Applied::Refuted(k) => {
                self.stats.state.restamped += 1;
                self.spread_entry(k, out);
            }
            Applied::Refused(r) => {
                self.count_refusal(r);
                return true;
            }
        }
        false
    }

    /// Schedules the membership check of origins first seen as non-members.
    pub(super) fn watch_new_origins(&mut self) {
        for origin in self.state.take_fresh_guests() {
            self.watch_origin(&origin);
        }
    }

    fn watch_origin(&mut self, origin: &NodeName) {
        let at = self.now + self.config.state.non_member_ttl;
        if self.state.watch(origin.as_str(), at) {
            self.timers.push(at, Timer::NonMember(origin.clone()));
        }
    }

    /// `non_member_ttl` after an origin was first seen as a non-member, or failed or left:
    /// counts it as a member if it is one and active; checks again later if it is listed but
    /// down; else deletes its entries here (`docs/security.md`).
    pub(super) fn on_non_member_check(&mut self, origin: &NodeName, out: &mut Vec<Output<A>>) {
        if !self.state.take_check(origin.as_str(), self.now) {
            return; // rescheduled, or forgotten
        }
        match self.members.get(origin.as_str()) {
            Some(e) if e.member.state.is_active() => self.state.set_member(origin.as_str(), true),
            Some(_) => self.watch_origin(origin),
            None => {
                for (key, old) in self.state.expire_origin(origin) {
                    self.stats.state.non_member_expired += 1;
                    if key.ty().starts_with("swim.") {
                        self.view.records_changed += 1;
                        continue; // protocol bookkeeping, not application state
                    }
                    out.push(Output::Event(Event::StateChanged {
                        key,
                        old: Some(old),
                        new: None,
                        cause: ChangeCause::Expired,
                    }));
                }
            }
        }
    }

    /// Queues the entry held for `key` for piggybacking, or, if it cannot fit a datagram,
    /// pushes it by stream to `gossip_nodes` random members.
    pub(super) fn spread_entry(&mut self, key: StateKey, out: &mut Vec<Output<A>>) {
        let Some((e, seq)) = self.state.get_with_seq(key.ty(), key.key()) else {
            return;
        };
        let u = StateUpdate {
            ty: key.ty(),
            key: key.key(),
            version: e.version,
            seq,
            origin: e.origin.as_str(),
            value: e.value.as_deref(),
        };
        let mut bytes = Vec::new();
        wire::encode_into(&u, &mut bytes);
        let room = self.config.max_packet_size.saturating_sub(
            DATAGRAM_OVERHEAD
                + self.config.cluster_label.len()
                + crate::keyring::ENCRYPTION_OVERHEAD,
        );
        if bytes.len() <= room {
            self.stats.state.queue_dropped += self.state_queue.push(key, bytes) as u64;
            self.arm_gossip();
            return;
        }
        let group = DeltaGroup {
            ty: key.ty(),
            origin: e.origin.as_str(),
            watermark: 0,
            entries: alloc::vec![(key.key(), e.version, seq, e.value.as_deref())],
        };
        let sync = StateSync {
            summary: None,
            digest: Vec::new(),
            groups: alloc::vec![group],
            resets: Vec::new(),
        };
        let (plain, start) = self.state_stream_plain(SyncPhase::Deltas, &sync);
        drop(sync);
        let targets = self.pick_members(self.config.gossip_nodes, |m| {
            m.member.state == MemberState::Alive
        });
        for slot in targets {
            let to = self.members.at(slot).member.addr.clone();
            let mut bytes = plain.clone();
            self.seal_packet(&mut bytes, start);
            self.emit_state_stream(to, bytes, 1, out);
        }
    }

    // ---------------------------------------------------------------- origins and collection

    /// The failover hook: `member` failed or left. Reports its entries and schedules the
    /// expiry of the types configured for it.
    pub(super) fn on_origin_down(
        &mut self,
        origin: &NodeName,
        left: bool,
        out: &mut Vec<Output<A>>,
    ) {
        if *origin != self.local.name {
            // Its entries expire if it is removed from the member table (issue 13).
            self.watch_origin(origin);
        }
        let mut keys = self.state.keys_of_origin(origin);
        if keys.is_empty() {
            return;
        }
        let view_type = crate::config::VIEW_STATE_TYPE;
        if keys.iter().any(|k| k.ty() == view_type) {
            // Its view record goes when its tombstone would.
            let at = self.now + self.config.tombstone_retention;
            self.timers
                .push(at, Timer::Expire(origin.clone(), view_type.into()));
            keys.retain(|k| !k.ty().starts_with("swim."));
            if keys.is_empty() {
                return;
            }
        }
        for t in &self.config.state.types {
            if let Some(delay) = t.expire_after_origin_failure {
                let ty: Arc<str> = t.name.as_str().into();
                self.timers
                    .push(self.now + delay, Timer::Expire(origin.clone(), ty));
            }
        }
        out.push(Output::Event(Event::OriginFailed {
            origin: origin.clone(),
            left,
            keys,
        }));
    }

    /// Deletes, here only, the orphaned entries of `origin` in `ty`, unless it came back.
    pub(super) fn on_expire(&mut self, origin: &NodeName, ty: &str, out: &mut Vec<Output<A>>) {
        let back = self
            .members
            .get(origin.as_str())
            .is_some_and(|e| e.member.state.is_active());
        if back {
            return;
        }
        for (key, old) in self.state.expire(origin, ty) {
            self.stats.state.expired += 1;
            if ty == crate::config::VIEW_STATE_TYPE {
                self.view.records_changed += 1;
                continue; // protocol bookkeeping, not application state
            }
            out.push(Output::Event(Event::StateChanged {
                key,
                old: Some(old),
                new: None,
                cause: ChangeCause::Expired,
            }));
        }
    }

    /// After this node refuted a claim that it was dead or gone: others may have expired its
    /// entries, so re-stamp those of expiring types to spread them again.
    pub(super) fn restamp_after_false_death(&mut self, out: &mut Vec<Output<A>>) {
        let types: Vec<Arc<str>> = self
            .config
            .state
            .types
            .iter()
            .filter(|t| t.expire_after_origin_failure.is_some())
            .map(|t| t.name.as_str().into())
            .collect();
        for ty in types {
            self.restamp(Some(&ty), u64::MAX, out);
        }
    }

    /// Collects due tombstones.
    pub(super) fn on_collect(&mut self) {
        let ttl = self.config.state.tombstone_ttl;
        let n = self.state.collect(self.now, ttl);
        self.stats.state.tombstones_collected += n as u64;
        self.arm_collection();
    }

    pub(super) fn arm_collection(&mut self) {
        let at = self.state.next_collection();
        self.timers.set(TimerKind::Collect, at);
    }

    /// Refreshes the size figures in `Stats::state`.
    pub(super) fn refresh_state_stats(&mut self) {
        self.stats.state.entries = self.state.len() as u64;
        self.stats.state.live = self.state.live() as u64;
        self.stats.state.bytes = self.state.bytes() as u64;
        self.stats.state.origins = self.state.origins() as u64;
    }
}
