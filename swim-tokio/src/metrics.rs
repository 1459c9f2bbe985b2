//! Prometheus text exposition (format 0.0.4) of [`ClusterStats`], written by hand.

use std::fmt::Write;

use crate::stats::ClusterStats;

/// Renders every counter and gauge as Prometheus text. Names start with `swim_`; counters end
/// in `_total`; per-kind and per-reason series carry a `kind` or `reason` label.
pub fn render(s: &ClusterStats) -> String {
    let mut o = String::with_capacity(8 << 10);
    let c = &s.core;
    let d = &s.driver;
    let mut metric = |name: &str, kind: &str, help: &str, series: &[(&str, f64)]| {
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} {kind}");
        for (labels, v) in series {
            if labels.is_empty() {
                let _ = writeln!(o, "{name} {v}");
            } else {
                let _ = writeln!(o, "{name}{{{labels}}} {v}");
            }
        }
    };
    let one = |v: u64| [("", v as f64)];
    let per_kind = |k: &swim_proto::PerKind| {
        [
            ("kind=\"ping\"", k.ping as f64),
            ("kind=\"ping_req\"", k.ping_req as f64),
            ("kind=\"ack\"", k.ack as f64),
            ("kind=\"nack\"", k.nack as f64),
            ("kind=\"gossip\"", k.gossip as f64),
            ("kind=\"push_pull\"", k.push_pull as f64),
        ]
    };
    metric(
        "swim_members",
        "gauge",
        "Members in this node's view by state, this node included.",
        &[
            ("state=\"alive\"", s.members.alive as f64),
            ("state=\"suspect\"", s.members.suspect as f64),
            ("state=\"dead\"", s.members.dead as f64),
            ("state=\"left\"", s.members.left as f64),
        ],
    );
    metric(
        "swim_health_score",
        "gauge",
        "Lifeguard local health score (0 is healthy).",
        &[("", s.health_score as f64)],
    );
    metric(
        "swim_pending_broadcasts",
        "gauge",
        "Updates waiting to be gossiped.",
        &[("", s.pending_broadcasts as f64)],
    );
    metric(
        "swim_uptime_seconds",
        "gauge",
        "Seconds since the node started.",
        &[("", s.uptime_s)],
    );
    metric(
        "swim_messages_sent_total",
        "counter",
        "Protocol messages sent, by kind.",
        &per_kind(&c.sent),
    );
    metric(
        "swim_messages_received_total",
        "counter",
        "Protocol messages received and decoded, by kind.",
        &per_kind(&c.received),
    );
    let counters: [(&str, &str, u64); 24] = [
        (
            "swim_datagrams_sent_total",
            "Datagrams sent.",
            c.datagrams_sent,
        ),
        (
            "swim_datagram_bytes_sent_total",
            "Bytes of datagrams sent.",
            c.datagram_bytes_sent,
        ),
        (
            "swim_datagrams_received_total",
            "Datagrams received.",
            c.datagrams_received,
        ),
        (
            "swim_datagram_bytes_received_total",
            "Bytes of datagrams received.",
            c.datagram_bytes_received,
        ),
        (
            "swim_streams_sent_total",
            "Stream messages sent by the core.",
            c.streams_sent,
        ),
        (
            "swim_stream_bytes_sent_total",
            "Bytes of stream messages sent.",
            c.stream_bytes_sent,
        ),
        (
            "swim_streams_received_total",
            "Stream messages received by the core.",
            c.streams_received,
        ),
        (
            "swim_stream_bytes_received_total",
            "Bytes of stream messages received.",
            c.stream_bytes_received,
        ),
        (
            "swim_updates_sent_total",
            "Updates piggybacked on sent datagrams.",
            c.updates_sent,
        ),
        (
            "swim_updates_received_total",
            "Updates received.",
            c.updates_received,
        ),
        ("swim_probes_total", "Direct probes started.", c.probes),
        (
            "swim_probes_failed_total",
            "Probes that ended without an ack.",
            c.probes_failed,
        ),
        (
            "swim_indirect_probes_total",
            "Ping-reqs sent to helpers.",
            c.indirect_probes,
        ),
        (
            "swim_suspicions_raised_total",
            "Suspicions raised by this node.",
            c.suspicions_raised,
        ),
        (
            "swim_suspicions_refuted_total",
            "Suspected members seen to refute.",
            c.suspicions_refuted,
        ),
        (
            "swim_local_refutations_total",
            "Claims about this node it refuted.",
            c.local_refutations,
        ),
        (
            "swim_deaths_declared_total",
            "Members this node declared dead.",
            c.deaths_declared,
        ),
        (
            "swim_broadcasts_dropped_total",
            "Updates dropped at the broadcast queue bound.",
            c.broadcasts_dropped,
        ),
        (
            "swim_join_attempts_total",
            "Join attempts (seeds contacted).",
            c.join_attempts,
        ),
        (
            "swim_heals_sent_total",
            "Partition-healing snapshots sent.",
            c.heals_sent,
        ),
        (
            "swim_driver_connections_accepted_total",
            "Inbound TCP connections accepted.",
            d.connections_accepted,
        ),
        (
            "swim_driver_stream_messages_sent_total",
            "Outbound stream messages written.",
            d.stream_messages_sent,
        ),
        (
            "swim_driver_stream_messages_received_total",
            "Inbound stream messages delivered to the node.",
            d.stream_messages_received,
        ),
        (
            "swim_driver_seed_resolutions_total",
            "Seed DNS resolutions.",
            d.seed_resolutions,
        ),
    ];
    for (name, help, v) in counters {
        metric(name, "counter", help, &one(v));
    }
    let x = &c.dropped;
    metric(
        "swim_dropped_packets_total",
        "counter",
        "Packets the core dropped, by reason.",
        &[
            ("reason=\"malformed\"", x.malformed as f64),
            (
                "reason=\"unsupported_version\"",
                x.unsupported_version as f64,
            ),
            ("reason=\"label_mismatch\"", x.label_mismatch as f64),
            ("reason=\"too_many_updates\"", x.too_many_updates as f64),
            (
                "reason=\"ping_for_other_node\"",
                x.ping_for_other_node as f64,
            ),
            ("reason=\"bad_name\"", x.bad_name as f64),
            ("reason=\"metadata_too_large\"", x.metadata_too_large as f64),
            ("reason=\"member_table_full\"", x.member_table_full as f64),
            ("reason=\"relay_table_full\"", x.relay_table_full as f64),
            ("reason=\"stream_too_large\"", x.stream_too_large as f64),
            ("reason=\"from_self\"", x.from_self as f64),
            ("reason=\"encrypted\"", x.encrypted as f64),
            ("reason=\"not_encrypted\"", x.not_encrypted as f64),
            ("reason=\"decrypt_failed\"", x.decrypt_failed as f64),
        ],
    );
    metric(
        "swim_driver_dropped_total",
        "counter",
        "Datagrams, connections and stream messages the driver dropped, by reason.",
        &[
            (
                "reason=\"datagram_oversized\"",
                d.datagrams_oversized as f64,
            ),
            ("reason=\"udp_send_error\"", d.udp_send_errors as f64),
            ("reason=\"udp_recv_error\"", d.udp_recv_errors as f64),
            ("reason=\"connection_limit\"", d.connections_refused as f64),
            (
                "reason=\"stream_oversized\"",
                d.stream_messages_oversized as f64,
            ),
            (
                "reason=\"stream_truncated\"",
                d.stream_messages_truncated as f64,
            ),
            (
                "reason=\"stream_read_timeout\"",
                d.stream_read_timeouts as f64,
            ),
            (
                "reason=\"stream_send_limit\"",
                d.stream_sends_dropped as f64,
            ),
            (
                "reason=\"stream_send_failed\"",
                d.stream_send_failures as f64,
            ),
            ("reason=\"trace_write_error\"", d.trace_write_errors as f64),
        ],
    );
    o
}
