//! Configuration of application messaging (`docs/protocol.md` §13): direct messages between
//! members, user events and queries, and every bound they keep.

use core::time::Duration;
use serde::{Deserialize, Serialize};

use super::{ConfigError, duration};

/// Bounds of direct messages ([`Command::Send`](crate::Command::Send)), user events
/// ([`Command::Broadcast`](crate::Command::Broadcast)) and queries
/// ([`Command::Query`](crate::Command::Query)). Defaults are those of
/// [`Config::lan`](super::Config::lan). Nothing here costs anything while the features are
/// unused: no timer, no queue entry, no byte on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MessagingConfig {
    /// Largest payload of a reliable direct message (sent by stream), in bytes. Larger sends
    /// are refused with `CommandError::PayloadTooLarge`. Must leave 1 KiB of framing under
    /// `max_stream_message_size`. Default 64 KiB.
    pub max_reliable_payload: usize,
    /// Largest payload of a user event, in bytes (Serf's 512 B). Larger broadcasts are refused;
    /// received events above it are dropped and counted. An event must also fit one datagram
    /// with room to spare, so at most half of `max_packet_size`. Default 512 B.
    pub max_event_payload: usize,
    /// Largest payload of a query or a query response, in bytes. Queries travel by gossip like
    /// events (so at most half of `max_packet_size`); responses go by stream. Default 512 B.
    pub max_query_payload: usize,
    /// Recent user event and query ids `(origin, ltime)` remembered for deduplication. At the
    /// bound the oldest id is forgotten; an event older than every remembered id of the clock
    /// window (`ltime` more than this many ticks behind the local clock) is dropped as stale,
    /// so an evicted id is never delivered twice. Default 4,096.
    pub dedupe_buffer: usize,
    /// Most user events and queries waiting to be gossiped. At the bound the item sent most
    /// often is dropped and counted (`Stats::messaging.queue_dropped`). Default 1,024.
    pub max_event_queue: usize,
    /// How many times more than a membership update each user event and query is
    /// retransmitted (`λ·⌈log10(n+1)⌉` times this factor), because a missed event is never
    /// repaired by push-pull. Default 3.
    pub event_retransmit_factor: u32,
    /// Most queries this node has asked and is still collecting; a new query at the bound is
    /// refused with `CommandError::TooManyQueries`. Default 64.
    pub max_inflight_queries: usize,
    /// Most responses collected per query this node asked; further ones are counted and
    /// dropped. Default 65,536.
    pub max_responses: usize,
    /// Most queries from others this node remembers so the application can respond; the
    /// oldest is forgotten at the bound (`CommandError::UnknownQuery` afterwards). Default 256.
    pub max_pending_responses: usize,
    /// Longest accepted query timeout. Default 5 min.
    #[serde(with = "duration")]
    pub max_query_timeout: Duration,
}

impl Default for MessagingConfig {
    fn default() -> Self {
        MessagingConfig {
            max_reliable_payload: 64 << 10,
            max_event_payload: 512,
            max_query_payload: 512,
            dedupe_buffer: 4_096,
            max_event_queue: 1_024,
            event_retransmit_factor: 3,
            max_inflight_queries: 64,
            max_responses: 65_536,
            max_pending_responses: 256,
            max_query_timeout: Duration::from_secs(300),
        }
    }
}

impl MessagingConfig {
    /// Checks every field against the datagram and stream bounds; names the first bad one.
    pub(super) fn validate(
        &self,
        max_packet_size: usize,
        max_stream_message_size: usize,
    ) -> Result<(), ConfigError> {
        fn range(field: &'static str, v: u64, lo: u64, hi: u64) -> Result<(), ConfigError> {
            if v < lo || v > hi {
                return Err(ConfigError::range(field, v, lo, hi));
            }
            Ok(())
        }
        range(
            "messaging.max_reliable_payload",
            self.max_reliable_payload as u64,
            0,
            max_stream_message_size.saturating_sub(1024) as u64,
        )?;
        let gossip_room = (max_packet_size / 2) as u64;
        range(
            "messaging.max_event_payload",
            self.max_event_payload as u64,
            0,
            gossip_room,
        )?;
        range(
            "messaging.max_query_payload",
            self.max_query_payload as u64,
            0,
            gossip_room,
        )?;
        range(
            "messaging.dedupe_buffer",
            self.dedupe_buffer as u64,
            16,
            1 << 22,
        )?;
        range(
            "messaging.max_event_queue",
            self.max_event_queue as u64,
            16,
            1 << 20,
        )?;
        range(
            "messaging.event_retransmit_factor",
            self.event_retransmit_factor.into(),
            1,
            64,
        )?;
        range(
            "messaging.max_inflight_queries",
            self.max_inflight_queries as u64,
            1,
            1 << 16,
        )?;
        range(
            "messaging.max_responses",
            self.max_responses as u64,
            1,
            1 << 24,
        )?;
        range(
            "messaging.max_pending_responses",
            self.max_pending_responses as u64,
            1,
            1 << 20,
        )?;
        if self.max_query_timeout.is_zero() {
            return Err(ConfigError::new(
                "messaging.max_query_timeout",
                "must be greater than zero",
            ));
        }
        Ok(())
    }
}
