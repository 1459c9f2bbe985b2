//! Driver counters (what the transport dropped and why) next to the core's [`swim_proto::Stats`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of the driver's own work, monotonic since start. Every packet or connection the
/// driver drops is counted here; what the core drops is in [`swim_proto::Stats::dropped`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverStats {
    /// Datagrams larger than `core.max_packet_size`, dropped unread.
    pub datagrams_oversized: u64,
    /// Datagram sends the OS refused (buffer full, unreachable), dropped.
    pub udp_send_errors: u64,
    /// Errors receiving datagrams (the socket keeps running).
    pub udp_recv_errors: u64,
    /// Inbound TCP connections accepted.
    pub connections_accepted: u64,
    /// Inbound connections closed at once because `max_connections` were being served.
    pub connections_refused: u64,
    /// Inbound stream messages delivered to the node.
    pub stream_messages_received: u64,
    /// Inbound connections whose length prefix exceeded `core.max_stream_message_size`.
    pub stream_messages_oversized: u64,
    /// Inbound connections that closed or failed before a whole message arrived.
    pub stream_messages_truncated: u64,
    /// Inbound connections that took longer than `stream_timeout` to deliver their message.
    pub stream_read_timeouts: u64,
    /// Outbound stream messages written.
    pub stream_messages_sent: u64,
    /// Outbound stream messages dropped because `max_outbound_streams` were in flight.
    pub stream_sends_dropped: u64,
    /// Outbound stream messages that failed to connect or write within their timeouts.
    pub stream_send_failures: u64,
    /// Seed resolutions (DNS) attempted.
    pub seed_resolutions: u64,
    /// Trace records that could not be written (recording stops at the first failure).
    pub trace_write_errors: u64,
    // Abuse resistance (issue 13).
    /// Inbound connections closed at once because their source IP already held
    /// `max_connections_per_source` of them.
    pub connections_refused_per_source: u64,
    /// Datagrams dropped because their source is outside `allowed_cidrs`.
    pub datagrams_refused_source: u64,
    /// Inbound connections closed at once because their source is outside `allowed_cidrs`.
    pub connections_refused_source: u64,
}

macro_rules! counters {
    ($($field:ident),* $(,)?) => {
        /// The shared, atomically updated form of [`DriverStats`].
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub(crate) $field: AtomicU64,)*
        }

        impl Counters {
            /// A consistent-enough copy (each counter read once, relaxed).
            pub(crate) fn snapshot(&self) -> DriverStats {
                DriverStats { $($field: self.$field.load(Relaxed),)* }
            }
        }
    };
}

counters!(
    datagrams_oversized,
    udp_send_errors,
    udp_recv_errors,
    connections_accepted,
    connections_refused,
    stream_messages_received,
    stream_messages_oversized,
    stream_messages_truncated,
    stream_read_timeouts,
    stream_messages_sent,
    stream_sends_dropped,
    stream_send_failures,
    seed_resolutions,
    trace_write_errors,
    connections_refused_per_source,
    datagrams_refused_source,
    connections_refused_source,
);

/// Adds one to a counter.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

/// Members of this node's view by state, this node included (as alive, unless it left).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberCounts {
    /// Alive members.
    pub alive: usize,
    /// Suspected members.
    pub suspect: usize,
    /// Dead members (tombstones not yet reaped).
    pub dead: usize,
    /// Departed members (tombstones not yet reaped).
    pub left: usize,
}

/// Everything [`Cluster::stats`](crate::Cluster::stats) reports.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ClusterStats {
    /// The core's counters.
    pub core: swim_proto::Stats,
    /// The driver's counters.
    pub driver: DriverStats,
    /// Members by state.
    pub members: MemberCounts,
    /// Lifeguard local health score (0 is healthy).
    pub health_score: u32,
    /// Updates waiting to be gossiped.
    pub pending_broadcasts: usize,
    /// Seconds since the node started.
    pub uptime_s: f64,
}
