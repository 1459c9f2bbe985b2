//! Counters a node keeps about its own traffic and protocol activity.

use crate::histogram::Histogram;
use crate::wire::{DecodeError, MessageKind};

/// Why an incoming packet (or part of one) was dropped. Dropping never changes state beyond
/// the counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The packet did not decode.
    Decode(DecodeError),
    /// A ping named another node (the address changed hands).
    PingForOtherNode,
    /// A name longer than `Config::max_name_len`, or empty.
    BadName,
    /// Metadata longer than `Config::max_meta_len`.
    MetadataTooLarge,
    /// The member table is at `Config::max_members` with no tombstone to evict.
    MemberTableFull,
    /// Already relaying `Config::max_pending_relays` ping-reqs.
    RelayTableFull,
    /// A stream message larger than `Config::max_stream_message_size`.
    StreamTooLarge,
    /// A message that claims to come from this node itself.
    FromSelf,
    /// A state entry with an empty or over-long type, key or origin, or an over-large value.
    BadStateEntry,
    // --- abuse resistance (issue 13) ---
    /// A claim about a member at an incarnation it cannot have reached: more than
    /// `Config::max_incarnation_jump` above the one held (`Config::incarnation_ceiling` for a
    /// member not known, or this node's previous life). Only that claim is dropped.
    IncarnationJump,
    /// A claim that an alive or suspect member moved to another address. Only that claim is
    /// dropped; [`Event::Conflict`](crate::Event::Conflict) reports it.
    AddressConflict,
    /// A ping-req for a member not held at the address it names: no relay, so nobody can aim
    /// this node's pings at an address of their choosing.
    UnknownRelayTarget,
    /// A push-pull or healing request (not a join) whose reply address is neither the stream's
    /// source nor the held address of the member it names: its claims are merged, no reply
    /// is sent (no reflection to a third party).
    UnverifiedReplyAddress,
    // --- abuse resistance, wave 3 (issue 13) ---
    /// A request that would be answered to an address that is not a member's beyond
    /// `Config::unverified_reply_rate` (per address) or `unverified_reply_global_rate`: no
    /// reply is sent, so nobody can aim this node's replies at a victim in volume.
    RateLimited,
    /// A new member introduced by a source beyond `Config::introductions_per_source`. Only
    /// that claim is dropped.
    IntroductionLimited,
}

/// Per-message-kind counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PerKind {
    /// Direct probes.
    pub ping: u64,
    /// Indirect probe requests.
    pub ping_req: u64,
    /// Acks, direct or relayed.
    pub ack: u64,
    /// Lifeguard nacks.
    pub nack: u64,
    /// Gossip-only datagrams.
    pub gossip: u64,
    /// Push-pull stream messages.
    pub push_pull: u64,
    /// State anti-entropy stream messages.
    pub state_sync: u64,
    // Application messaging (issue 14).
    /// Direct application messages, datagram or stream.
    pub user: u64,
    /// Datagrams gossiping user events and queries.
    pub user_gossip: u64,
    /// Query acks.
    pub query_ack: u64,
    /// Query responses (streams).
    pub query_response: u64,
}

impl PerKind {
    pub(crate) fn bump(&mut self, kind: MessageKind) {
        match kind {
            MessageKind::Ping => self.ping += 1,
            MessageKind::PingReq => self.ping_req += 1,
            MessageKind::Ack => self.ack += 1,
            MessageKind::Nack => self.nack += 1,
            MessageKind::Gossip => self.gossip += 1,
            MessageKind::PushPull => self.push_pull += 1,
            MessageKind::StateSync => self.state_sync += 1,
            MessageKind::User => self.user += 1,
            MessageKind::UserGossip => self.user_gossip += 1,
            MessageKind::QueryAck => self.query_ack += 1,
            MessageKind::QueryResponse => self.query_response += 1,
        }
    }
}

/// Packets dropped, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Drops {
    /// Truncated, malformed or trailing garbage.
    pub malformed: u64,
    /// Unknown protocol version.
    pub unsupported_version: u64,
    /// Another cluster's label.
    pub label_mismatch: u64,
    /// Update count larger than the packet could hold.
    pub too_many_updates: u64,
    /// Pings for another node.
    pub ping_for_other_node: u64,
    /// Empty or over-long names.
    pub bad_name: u64,
    /// Over-long metadata.
    pub metadata_too_large: u64,
    /// Member table full.
    pub member_table_full: u64,
    /// Relay table full.
    pub relay_table_full: u64,
    /// Over-large stream messages.
    pub stream_too_large: u64,
    /// Messages claiming to be from this node.
    pub from_self: u64,
    /// Packets with a malformed state entry.
    pub bad_state_entry: u64,
    /// Encrypted packets received without a keyring.
    pub encrypted: u64,
    /// Plaintext packets received while encryption is required.
    pub not_encrypted: u64,
    /// Packets no installed key authenticates (wrong key, another cluster, tampering).
    pub decrypt_failed: u64,
    // --- abuse resistance (issue 13) ---
    /// Claims at an implausible incarnation.
    pub incarnation_jump: u64,
    /// Claims moving an alive or suspect member to another address.
    pub address_conflict: u64,
    /// Ping-reqs for a member not held at the address named.
    pub unknown_relay_target: u64,
    /// Push-pull and healing requests not answered: unverified reply address.
    pub unverified_reply_address: u64,
    // --- abuse resistance, wave 3 (issue 13) ---
    /// Requests not answered: the reply limits for non-member addresses were reached.
    pub rate_limited: u64,
    /// New members not admitted: their source's introduction limit was reached.
    pub introduction_limited: u64,
}

impl Drops {
    /// Total drops of every reason.
    pub fn total(&self) -> u64 {
        self.malformed
            + self.unsupported_version
            + self.label_mismatch
            + self.too_many_updates
            + self.ping_for_other_node
            + self.bad_name
            + self.metadata_too_large
            + self.member_table_full
            + self.relay_table_full
            + self.stream_too_large
            + self.from_self
            + self.bad_state_entry
            + self.encrypted
            + self.not_encrypted
            + self.decrypt_failed
            + self.incarnation_jump
            + self.address_conflict
            + self.unknown_relay_target
            + self.unverified_reply_address
            + self.rate_limited
            + self.introduction_limited
    }

    pub(crate) fn bump(&mut self, reason: DropReason) {
        let c = match reason {
            DropReason::Decode(DecodeError::UnsupportedVersion(_)) => &mut self.unsupported_version,
            DropReason::Decode(DecodeError::LabelMismatch) => &mut self.label_mismatch,
            DropReason::Decode(DecodeError::TooManyUpdates) => &mut self.too_many_updates,
            DropReason::Decode(DecodeError::Encrypted) => &mut self.encrypted,
            DropReason::Decode(DecodeError::NotEncrypted) => &mut self.not_encrypted,
            DropReason::Decode(DecodeError::DecryptFailed) => &mut self.decrypt_failed,
            DropReason::Decode(_) => &mut self.malformed,
            DropReason::PingForOtherNode => &mut self.ping_for_other_node,
            DropReason::BadName => &mut self.bad_name,
            DropReason::MetadataTooLarge => &mut self.metadata_too_large,
            DropReason::MemberTableFull => &mut self.member_table_full,
            DropReason::RelayTableFull => &mut self.relay_table_full,
            DropReason::StreamTooLarge => &mut self.stream_too_large,
            DropReason::FromSelf => &mut self.from_self,
            DropReason::BadStateEntry => &mut self.bad_state_entry,
            DropReason::IncarnationJump => &mut self.incarnation_jump,
            DropReason::AddressConflict => &mut self.address_conflict,
            DropReason::UnknownRelayTarget => &mut self.unknown_relay_target,
            DropReason::UnverifiedReplyAddress => &mut self.unverified_reply_address,
            DropReason::RateLimited => &mut self.rate_limited,
            DropReason::IntroductionLimited => &mut self.introduction_limited,
        };
        *c += 1;
    }
}

/// Everything a node counts. Monotonic counters since the node was created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Messages sent, by kind.
    pub sent: PerKind,
    /// Messages received and decoded, by kind.
    pub received: PerKind,
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// Bytes of datagrams sent.
    pub datagram_bytes_sent: u64,
    /// Datagrams received (decoded or not).
    pub datagrams_received: u64,
    /// Bytes of datagrams received.
    pub datagram_bytes_received: u64,
    /// Stream messages sent.
    pub streams_sent: u64,
    /// Bytes of stream messages sent.
    pub stream_bytes_sent: u64,
    /// Stream messages received.
    pub streams_received: u64,
    /// Bytes of stream messages received.
    pub stream_bytes_received: u64,
    /// Updates piggybacked on sent datagrams.
    pub updates_sent: u64,
    /// Updates received (gossip and push-pull).
    pub updates_received: u64,
    /// Updates received that changed nothing (stale or repeated).
    pub updates_stale: u64,
    /// Direct probes started.
    pub probes: u64,
    /// Probes that ended without an ack.
    pub probes_failed: u64,
    /// Ping-reqs sent to helpers.
    pub indirect_probes: u64,
    /// Ping-reqs relayed for other nodes.
    pub relays: u64,
    /// Suspicions this node raised from its own failed probes.
    pub suspicions_raised: u64,
    /// Suspected members seen to refute (come back alive).
    pub suspicions_refuted: u64,
    /// Times this node refuted claims about itself.
    pub local_refutations: u64,
    /// Members this node declared dead when their suspicion timed out.
    pub deaths_declared: u64,
    /// Updates dropped from the broadcast queue at its bound.
    pub broadcasts_dropped: u64,
    /// Push-pull snapshots cut short by `max_stream_message_size`.
    pub push_pull_truncated: u64,
    /// Join attempts (contacting the seeds).
    pub join_attempts: u64,
    /// Partition-healing snapshots sent to members held failed.
    pub heals_sent: u64,
    /// Partition-healing snapshots received.
    pub heals_received: u64,
    /// Acks that matched no probe in flight (late or unknown).
    pub unexpected_acks: u64,
    /// Push-pulls started because checksums on pings and acks kept differing from this node's.
    pub checksum_syncs: u64,
    /// Dropped packets, by reason.
    pub dropped: Drops,
    /// Replicated state activity.
    pub state: StateStats,
    // -- issue 12 (false deaths after heals and restarts) --
    /// Death claims heard from other nodes about members held active, taken as accusations
    /// (a suspicion started or confirmed) rather than verdicts.
    pub hearsay_deaths: u64,
    // Application messaging (issue 14).
    /// Direct messages, user events and queries.
    pub messaging: MessagingStats,
    // --- protocol stats with timings (issue 14) ---
    /// Probe round trips, the protocol period achieved and suspicion durations.
    pub timings: Timings,
}

/// Application messaging counters (monotonic), `docs/protocol.md` §13.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessagingStats {
    /// Direct messages sent by datagram.
    pub sent_unreliable: u64,
    /// Direct messages sent by stream.
    pub sent_reliable: u64,
    /// Direct messages delivered to this node's application.
    pub delivered: u64,
    /// User events broadcast by this node.
    pub events_broadcast: u64,
    /// User events delivered to this node's application (its own included).
    pub events_delivered: u64,
    /// User events and queries received again (already delivered).
    pub duplicates: u64,
    /// User events and queries older than the dedupe window, dropped.
    pub stale: u64,
    /// A name's older still-queued event replaced by a newer one (Serf coalescing).
    pub coalesced: u64,
    /// User events and queries dropped from the gossip queue at `max_event_queue`.
    pub queue_dropped: u64,
    /// User events and queries that were malformed or over a bound, dropped.
    pub rejected: u64,
    /// Queries this node asked.
    pub queries: u64,
    /// Queries from others delivered to this node's application (passing its filter).
    pub queries_delivered: u64,
    /// Responses this node sent.
    pub responses_sent: u64,
    /// Responses received for this node's queries within their deadline.
    pub responses_received: u64,
    /// Responses and acks for unknown or finished queries, or over `max_responses`.
    pub responses_late: u64,
}

/// Replicated state counters (monotonic), and the store's current size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateStats {
    /// Entries held now, live values and tombstones.
    pub entries: u64,
    /// Live (not deleted) entries held now.
    pub live: u64,
    /// Bytes of keys and values held now.
    pub bytes: u64,
    /// `(type, origin)` watermarks held now (bounded by `StateConfig::max_origins`).
    pub origins: u64,
    /// Local writes (publishes and deletes).
    pub writes: u64,
    /// Remote entries received (gossip and anti-entropy).
    pub received: u64,
    /// Remote entries that changed the store.
    pub applied: u64,
    /// Remote entries older than or equal to what the store holds.
    pub not_newer: u64,
    /// Remote entries recognised as superseded or deleted (below the origin's watermark).
    pub stale: u64,
    /// Remote entries of types this node does not store.
    pub not_stored: u64,
    /// Remote entries refused at `max_entries` or `max_total_bytes`.
    pub rejected_full: u64,
    /// Entries piggybacked on sent datagrams.
    pub piggybacked: u64,
    /// Entries dropped from the piggyback queue at `max_queue` (anti-entropy still carries them).
    pub queue_dropped: u64,
    /// Anti-entropy exchanges started.
    pub syncs: u64,
    /// Exchanges answered with nothing because both sides' watermarks already matched.
    pub syncs_in_agreement: u64,
    /// Entries sent in anti-entropy messages.
    pub sync_entries_sent: u64,
    /// Resets sent.
    pub resets_sent: u64,
    /// Entries dropped by resets received.
    pub reset_drops: u64,
    /// Tombstones collected.
    pub tombstones_collected: u64,
    /// Entries expired after their origin failed.
    pub expired: u64,
    /// Own entries re-stamped (after a restart or a false death).
    pub restamped: u64,
    // Abuse resistance (issue 13).
    /// Remote entries and watermarks refused as stamps from the future
    /// (`StateConfig::max_version_jump`).
    pub rejected_future: u64,
    /// Remote entries refused at their origin's fair share (`StateConfig::origin_share_percent`).
    pub rejected_quota: u64,
    /// Remote entries and watermarks of non-member origins refused at their share
    /// (`StateConfig::non_member_share_percent`).
    pub rejected_non_member: u64,
    /// Remote entries and watermarks refused at `StateConfig::max_origins`.
    pub rejected_origins: u64,
    /// Entries deleted because their origin was not a member for `StateConfig::non_member_ttl`.
    pub non_member_expired: u64,
}

// --- protocol stats with timings (issue 14, ringpop's ProtocolStats) ---
/// Protocol timings, in nanoseconds of the node's clock (the `now` of its inputs), each a
/// bounded [`Histogram`] (p50, p95, p99, p99.9 within 12.5%; about 2.4 KiB each, fixed). They
/// are statistics only: recording them draws no randomness and changes no output, so a run's
/// digest is the same with or without anyone reading them (`docs/protocol.md` §14).
///
/// Rates (messages per kind per second) are derived from the monotonic [`Stats::sent`] and
/// [`Stats::received`] counters by whoever samples them (Prometheus `rate()`, the agent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timings {
    /// SWIM §3.1: ping sent to ack received, for probes answered directly by the target.
    pub probe_rtt_direct: Histogram,
    /// SWIM §3.1: ping sent to the relayed ack, for probes answered through ping-req helpers
    /// (the whole time since the direct ping, including `probe_timeout`).
    pub probe_rtt_indirect: Histogram,
    /// The protocol period actually achieved: time between the starts of consecutive probe
    /// periods (`probe_interval` scaled by Lifeguard §IV-A local health, plus driver lateness).
    pub protocol_period: Histogram,
    /// SWIM §4.2: time a member stayed suspect in this node's view before it refuted (came
    /// back alive at a higher incarnation).
    pub suspicion_refuted: Histogram,
    /// SWIM §4.2, Lifeguard §IV-B: time a member stayed suspect in this node's view before it
    /// was declared dead (by this node's timeout or another's verdict).
    pub suspicion_dead: Histogram,
}
