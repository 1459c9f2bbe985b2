//! `/stats` as JSON: the core's and driver's counters and the protocol timings.

use serde_json::{Value, json};

/// `ClusterStats` as JSON: members, health, and the core's and driver's main counters.
pub fn stats_json(s: &crate::ClusterStats) -> Value {
    let (c, d) = (&s.core, &s.driver);
    let st = &c.state;
    json!({
        "members": {
            "alive": s.members.alive, "suspect": s.members.suspect,
            "dead": s.members.dead, "left": s.members.left,
        },
        "health_score": s.health_score,
        "pending_broadcasts": s.pending_broadcasts,
        "uptime_s": s.uptime_s,
        "core": {
            "datagrams_sent": c.datagrams_sent, "datagrams_received": c.datagrams_received,
            "datagram_bytes_sent": c.datagram_bytes_sent,
            "datagram_bytes_received": c.datagram_bytes_received,
            "streams_sent": c.streams_sent, "streams_received": c.streams_received,
            "probes": c.probes, "probes_failed": c.probes_failed,
            "indirect_probes": c.indirect_probes, "suspicions_raised": c.suspicions_raised,
            "suspicions_refuted": c.suspicions_refuted,
            "local_refutations": c.local_refutations, "deaths_declared": c.deaths_declared,
            "join_attempts": c.join_attempts, "dropped": c.dropped.total(),
        },
        "state": {
            "entries": st.entries, "live": st.live, "bytes": st.bytes, "origins": st.origins,
            "writes": st.writes, "received": st.received, "applied": st.applied,
            "syncs": st.syncs, "expired": st.expired,
        },
        "driver": {
            "datagrams_oversized": d.datagrams_oversized,
            "udp_send_errors": d.udp_send_errors, "udp_recv_errors": d.udp_recv_errors,
            "connections_accepted": d.connections_accepted,
            "connections_refused": d.connections_refused,
            "stream_messages_received": d.stream_messages_received,
            "stream_messages_oversized": d.stream_messages_oversized,
            "stream_messages_truncated": d.stream_messages_truncated,
            "stream_read_timeouts": d.stream_read_timeouts,
            "stream_messages_sent": d.stream_messages_sent,
            "stream_sends_dropped": d.stream_sends_dropped,
            "stream_send_failures": d.stream_send_failures,
            "seed_resolutions": d.seed_resolutions,
            "trace_write_errors": d.trace_write_errors,
        },
        // Protocol stats with timings (issue 14).
        "timings": timings_json(s),
    })
}

/// The core's protocol timings in milliseconds (`docs/protocol.md` §14) and messages per kind:
/// counts since start and their average rate per second over the uptime.
fn timings_json(s: &crate::ClusterStats) -> Value {
    use crate::metrics::timing_json;
    let t = &s.core.timings;
    let per_kind = |k: &swim_proto::PerKind| {
        let up = s.uptime_s.max(1e-3);
        let mut m = serde_json::Map::new();
        for (kind, n) in [
            ("ping", k.ping),
            ("ping_req", k.ping_req),
            ("ack", k.ack),
            ("nack", k.nack),
            ("gossip", k.gossip),
            ("push_pull", k.push_pull),
            ("state_sync", k.state_sync),
            ("user", k.user),
            ("user_gossip", k.user_gossip),
            ("query_ack", k.query_ack),
            ("query_response", k.query_response),
        ] {
            m.insert(
                kind.into(),
                json!({ "count": n, "avg_per_s": n as f64 / up }),
            );
        }
        Value::Object(m)
    };
    json!({
        "probe_rtt_direct": timing_json(&t.probe_rtt_direct),
        "probe_rtt_indirect": timing_json(&t.probe_rtt_indirect),
        "protocol_period": timing_json(&t.protocol_period),
        "suspicion_refuted": timing_json(&t.suspicion_refuted),
        "suspicion_dead": timing_json(&t.suspicion_dead),
        "messages_sent": per_kind(&s.core.sent),
        "messages_received": per_kind(&s.core.received),
    })
}
