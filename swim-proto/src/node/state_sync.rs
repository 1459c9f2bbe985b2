//! State anti-entropy (`docs/protocol.md` §10.4): periodic rounds exchange watermark digests
//! over streams, each side answering with the deltas and resets the other lacks.

use alloc::vec::Vec;

use super::timers::TimerKind;
use super::{Address, Node};
use crate::io::{Event, Output};
use crate::member::MemberState;
use crate::state::ChangeCause;
use crate::stats::DropReason;
use crate::wire::{
    self, DeltaGroup, MessageKind, Reset, StateSync, StateUpdate, StreamHeader, StreamKind,
    SyncPhase, TypeDigest,
};

impl<A: Address> Node<A> {
    // ---------------------------------------------------------------- anti-entropy (§10.4)

    /// Periodic anti-entropy: send this node's watermarks to one random live member.
    pub(super) fn on_sync_round(&mut self, out: &mut Vec<Output<A>>) {
        let interval = self.config.state.sync_interval;
        let at = (!interval.is_zero()).then(|| self.now + interval);
        self.timers.set(TimerKind::Sync, at);
        if self.local.state == MemberState::Left {
            self.timers.clear(TimerKind::Sync);
            return;
        }
        if self.state.is_blank() {
            // Nothing to offer: peers that hold state reach this node through their own
            // rounds (each node is picked about once per interval), so a cluster without
            // state exchanges nothing at all.
            return;
        }
        if let Some(&slot) = self
            .pick_members(1, |e| e.member.state == MemberState::Alive)
            .first()
        {
            let to = self.members.at(slot).member.addr.clone();
            self.start_sync(to, out);
        }
    }

    /// Opens an exchange with `to`: a `Request` carrying a hash of this node's watermarks
    /// (when the peer's hash is equal, that one small message is the whole exchange).
    pub(super) fn start_sync(&mut self, to: A, out: &mut Vec<Output<A>>) {
        self.stats.state.syncs += 1;
        let sync = StateSync {
            summary: Some(self.digest_summary()),
            digest: Vec::new(),
            groups: Vec::new(),
            resets: Vec::new(),
        };
        let (mut bytes, start) = self.state_stream_plain(SyncPhase::Request, &sync);
        drop(sync);
        self.seal_packet(&mut bytes, start);
        self.emit_state_stream(to, bytes, 0, out);
    }

    /// A hash of this node's watermarks (FNV-1a over type, origin and watermark, in order).
    pub(super) fn digest_summary(&self) -> u64 {
        let mut h = crate::hash::Fnv1a64::new();
        let mut eat = |b: &[u8]| h.write(b);
        for t in self.typed_digest() {
            eat(t.ty.as_bytes());
            eat(&[0xff]);
            for (origin, wm) in t.origins {
                eat(origin.as_bytes());
                eat(&wm.to_le_bytes());
            }
        }
        h.finish()
    }

    pub(super) fn typed_digest(&self) -> Vec<TypeDigest<'_>> {
        self.state
            .digest()
            .into_iter()
            .filter(|(ty, _)| self.config.state.stores(ty))
            .map(|(ty, origins)| TypeDigest { ty, origins })
            .collect()
    }

    /// Handles a state stream message from `sender` (reachable at `reply_to`).
    pub(super) fn on_state_stream(
        &mut self,
        phase: SyncPhase,
        reply_to: A,
        sync: &StateSync<'_>,
        out: &mut Vec<Output<A>>,
    ) {
        let bad = sync
            .groups
            .iter()
            .flat_map(|g| g.entries.iter().map(move |e| (g, e)))
            .any(|(g, (key, _, _, value))| {
                self.validate_entry(g.ty, key, g.origin, *value).is_err()
            });
        if bad {
            return self.drop_packet(&reply_to, DropReason::BadStateEntry, out);
        }
        let theirs = DigestLookup::new(&sync.digest);
        for g in &sync.groups {
            // A refused entry must stay above the watermark, or it would later be taken for a
            // stale copy and never arrive (issue 13).
            let mut watermark = g.watermark;
            for &(key, version, seq, value) in &g.entries {
                let w = StateUpdate {
                    ty: g.ty,
                    key,
                    version,
                    seq,
                    origin: g.origin,
                    value,
                };
                if self.apply_state(w, out) {
                    watermark = watermark.min(seq.saturating_sub(1));
                }
            }
            let member = self.is_state_member(g.origin);
            let cfg = &self.config.state;
            let raised = self
                .state
                .raise_watermark(cfg, g.ty, g.origin, watermark, member);
            self.watch_new_origins();
            if let Err(r) = raised {
                self.count_refusal(r);
            }
        }
        self.observe_digest(&theirs, out);
        for r in &sync.resets {
            self.apply_reset(r, &theirs, out);
        }
        match phase {
            SyncPhase::Request => {
                if sync.summary == Some(self.digest_summary()) {
                    self.stats.state.syncs_in_agreement += 1;
                } else {
                    self.answer_sync(reply_to, SyncPhase::Reply, &theirs, out);
                }
            }
            SyncPhase::Reply => self.answer_sync(reply_to, SyncPhase::Push, &theirs, out),
            SyncPhase::Push => self.answer_sync(reply_to, SyncPhase::Deltas, &theirs, out),
            SyncPhase::Deltas => {}
        }
    }

    /// Re-stamps this life's writes if the peer has seen a previous life of this node write
    /// further in its sequence (§10.6): the sequence skips ahead, and this life's writes are
    /// numbered after the previous life's so peers do not take them for stale copies.
    pub(super) fn observe_digest(&mut self, theirs: &DigestLookup<'_>, out: &mut Vec<Output<A>>) {
        let me = self.local.name.clone();
        let mut behind: Vec<(&str, u64)> = Vec::new();
        for &((ty, origin), wm) in &theirs.sorted {
            if origin != me.as_str() {
                continue;
            }
            let ours = self.state.watermark(ty, origin);
            if wm > ours && self.config.state.stores(ty) {
                if wm > ours.saturating_add(self.config.state.max_version_jump) {
                    // A forged watermark that would push this node's sequence to the end.
                    self.stats.state.rejected_future += 1;
                    continue;
                }
                behind.push((ty, wm));
            }
        }
        for (ty, wm) in behind {
            self.state.skip_own_seq(ty, &me, wm);
            self.restamp(Some(ty), wm, out);
        }
    }

    /// Re-stamps this life's own entries (of `ty`, or all) with sequence numbers up to `up_to`
    /// at fresh versions and sequence numbers.
    pub(super) fn restamp(&mut self, ty: Option<&str>, up_to: u64, out: &mut Vec<Output<A>>) {
        let me = self.local.name.clone();
        let ttl = self.config.state.tombstone_ttl;
        let keys = self.state.restamp_own(&me, ty, up_to, self.now, ttl);
        self.stats.state.restamped += keys.len() as u64;
        for k in keys {
            self.spread_entry(k, out);
        }
        self.arm_collection();
    }

    pub(super) fn apply_reset(
        &mut self,
        r: &Reset<'_>,
        theirs: &DigestLookup<'_>,
        out: &mut Vec<Output<A>>,
    ) {
        if !self.config.state.stores(r.ty) {
            return;
        }
        let mut keys = r.keys.clone();
        keys.sort_unstable();
        let dropped = self
            .state
            .apply_reset(r.ty, &keys, |origin| theirs.get(r.ty, origin));
        self.stats.state.reset_drops += dropped.len() as u64;
        for (key, old) in dropped {
            out.push(Output::Event(Event::StateChanged {
                key,
                old: Some(old),
                new: None,
                cause: ChangeCause::Reset,
            }));
        }
    }

    /// The next step of an exchange: the `Reply` to a request (this node's digest), the
    /// requester's `Push` (its digest and what the responder lacks), or the final `Deltas`
    /// (what the requester lacks; sent only if there is anything).
    pub(super) fn answer_sync(
        &mut self,
        to: A,
        phase: SyncPhase,
        theirs: &DigestLookup<'_>,
        out: &mut Vec<Output<A>>,
    ) {
        let cfg = &self.config.state;
        let budget = cfg
            .sync_max_bytes
            .min(self.config.max_stream_message_size / 2);
        let (groups, reset_types) = if phase == SyncPhase::Reply {
            (Vec::new(), Vec::new())
        } else {
            self.state.deltas(cfg, &theirs.sorted, budget)
        };
        let mut sent_entries = 0u64;
        let groups: Vec<DeltaGroup<'_>> = groups
            .into_iter()
            .map(|g| {
                sent_entries += g.entries.len() as u64;
                DeltaGroup {
                    ty: g.ty,
                    origin: g.origin,
                    watermark: g.watermark,
                    entries: g.entries,
                }
            })
            .collect();
        let resets: Vec<Reset<'_>> = reset_types
            .iter()
            .map(|ty| Reset {
                ty,
                keys: self.state.keys_of_type(ty),
            })
            .collect();
        if phase == SyncPhase::Deltas && groups.is_empty() && resets.is_empty() {
            return;
        }
        let with_digest = phase != SyncPhase::Deltas || !resets.is_empty();
        let n_resets = resets.len() as u64;
        let mut sync = StateSync {
            summary: None,
            digest: if with_digest {
                self.typed_digest()
            } else {
                Vec::new()
            },
            groups,
            resets,
        };
        let (mut bytes, mut start) = self.state_stream_plain(phase, &sync);
        let mut resets_sent = n_resets;
        // Room for the encryption tag.
        let max = self.config.max_stream_message_size - crate::keyring::TAG_LEN;
        if bytes.len() > max && !sync.resets.is_empty() {
            // Resets are as large as a type's key list; without them the exchange still
            // carries the deltas, and the reset is retried on the next exchange.
            sync.resets.clear();
            resets_sent = 0;
            (bytes, start) = self.state_stream_plain(phase, &sync);
        }
        drop(sync);
        if bytes.len() > max {
            return; // a digest beyond the stream limit: max_origins is set too high for it
        }
        self.seal_packet(&mut bytes, start);
        self.stats.state.resets_sent += resets_sent;
        self.stats.state.sync_entries_sent += sent_entries;
        self.emit_state_stream(to, bytes, 0, out);
    }

    /// Encodes a state stream message, not yet sealed: returns it and where the payload starts
    /// (pass both to `seal_packet`).
    pub(super) fn state_stream_plain(
        &self,
        phase: SyncPhase,
        sync: &StateSync<'_>,
    ) -> (Vec<u8>, usize) {
        let mut buf = Vec::new();
        let start = self.open_packet(&mut buf);
        let header = StreamHeader {
            kind: StreamKind::State { phase },
            sender: self.local.name.as_str(),
            sender_addr: self.local.addr.clone(),
        };
        wire::encode_into(&header, &mut buf);
        wire::encode_count(0, &mut buf);
        wire::encode_into(sync, &mut buf);
        (buf, start)
    }

    pub(super) fn emit_state_stream(
        &mut self,
        to: A,
        bytes: Vec<u8>,
        entries: u64,
        out: &mut Vec<Output<A>>,
    ) {
        self.stats.state.sync_entries_sent += entries;
        self.stats.sent.bump(MessageKind::StateSync);
        self.stats.streams_sent += 1;
        self.stats.stream_bytes_sent += bytes.len() as u64;
        out.push(Output::SendStream { to, bytes });
    }
}

/// A peer's watermarks, sorted for lookup by `(type, origin)`.
pub(super) struct DigestLookup<'a> {
    sorted: Vec<((&'a str, &'a str), u64)>,
}

impl<'a> DigestLookup<'a> {
    pub(super) fn new(digest: &[TypeDigest<'a>]) -> Self {
        let mut sorted: Vec<((&'a str, &'a str), u64)> = digest
            .iter()
            .flat_map(|t| t.origins.iter().map(move |&(o, wm)| ((t.ty, o), wm)))
            .collect();
        // Honest peers send their digest sorted; sort only what is not.
        if !sorted.is_sorted() {
            sorted.sort_unstable();
        }
        sorted.dedup_by(|a, b| a.0 == b.0);
        DigestLookup { sorted }
    }

    pub(super) fn get(&self, ty: &str, origin: &str) -> u64 {
        self.sorted
            .binary_search_by(|((t, o), _)| (*t, *o).cmp(&(ty, origin)))
            .map_or(0, |i| self.sorted[i].1)
    }
}
