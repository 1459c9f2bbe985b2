//! Prometheus exposition of [`ClusterStats`] with `prometheus-client`, and the message-size
//! histograms the driver fills.
//!
//! The core's and driver's counters are monotonic snapshots, so each scrape builds a fresh
//! registry from one [`ClusterStats`] (no state is kept between scrapes); only the histograms
//! live across scrapes, in [`MessageSizes`]. Names start with `swim_`; counters end in
//! `_total`; per-kind and per-reason series carry a `kind`, `reason` or `state` label.
//!
//! The core's protocol timings ([`swim_proto::Timings`]: probe round trips, the protocol period
//! achieved, suspicion durations) are exported as histograms in seconds, re-bucketed from the
//! core's log-linear buckets onto fixed powers of two of nanoseconds (131 µs .. 68.7 s), so
//! every scrape has the same `le` labels.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::stats::ClusterStats;

/// The `Content-Type` of [`render`]'s output (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, &'static str)>;

/// Sizes of the messages this node sent and received, in bytes, as histograms labelled
/// `direction="sent"|"received"`, buckets 64 B .. 1 MiB (powers of 4). Shared by the node task
/// (which observes) and scrapes (which read).
#[derive(Clone, Debug)]
pub struct MessageSizes {
    datagrams: Family<Labels, Histogram, fn() -> Histogram>,
    streams: Family<Labels, Histogram, fn() -> Histogram>,
}

fn size_histogram() -> Histogram {
    Histogram::new(exponential_buckets(64.0, 4.0, 8))
}

impl Default for MessageSizes {
    fn default() -> Self {
        let sizes = MessageSizes {
            datagrams: Family::new_with_constructor(size_histogram),
            streams: Family::new_with_constructor(size_histogram),
        };
        // Every series exists from the start (empty), so dashboards see them before traffic.
        for f in [&sizes.datagrams, &sizes.streams] {
            for d in [SENT, RECEIVED] {
                drop(f.get_or_create(&vec![d]));
            }
        }
        sizes
    }
}

const SENT: (&str, &str) = ("direction", "sent");
const RECEIVED: (&str, &str) = ("direction", "received");

impl MessageSizes {
    pub(crate) fn datagram_sent(&self, len: usize) {
        self.datagrams
            .get_or_create(&vec![SENT])
            .observe(len as f64);
    }
    pub(crate) fn datagram_received(&self, len: usize) {
        self.datagrams
            .get_or_create(&vec![RECEIVED])
            .observe(len as f64);
    }
    pub(crate) fn stream_sent(&self, len: usize) {
        self.streams.get_or_create(&vec![SENT]).observe(len as f64);
    }
    pub(crate) fn stream_received(&self, len: usize) {
        self.streams
            .get_or_create(&vec![RECEIVED])
            .observe(len as f64);
    }
}

fn counter(r: &mut Registry, name: &str, help: &str, v: u64) {
    let c: Counter = Counter::default();
    c.inc_by(v);
    r.register(name, help, c);
}

fn gauge(r: &mut Registry, name: &str, help: &str, v: i64) {
    let g: Gauge = Gauge::default();
    g.set(v);
    r.register(name, help, g);
}

fn family(
    r: &mut Registry,
    name: &str,
    help: &str,
    label: &'static str,
    series: &[(&'static str, u64)],
) {
    let f = Family::<Labels, Counter>::default();
    for (value, v) in series {
        f.get_or_create(&vec![(label, *value)]).inc_by(*v);
    }
    r.register(name, help, f);
}

/// Renders every counter, gauge and histogram as OpenMetrics text (see [`CONTENT_TYPE`]).
pub fn render(s: &ClusterStats, sizes: &MessageSizes) -> String {
    let mut r = Registry::with_prefix("swim");
    let (c, d) = (&s.core, &s.driver);
    let members = Family::<Labels, Gauge>::default();
    for (state, n) in [
        ("alive", s.members.alive),
        ("suspect", s.members.suspect),
        ("dead", s.members.dead),
        ("left", s.members.left),
    ] {
        members.get_or_create(&vec![("state", state)]).set(n as i64);
    }
    r.register(
        "members",
        "Members in this node's view by state, this node included",
        members,
    );
    gauge(
        &mut r,
        "health_score",
        "Lifeguard local health score (0 is healthy)",
        i64::from(s.health_score),
    );
    gauge(
        &mut r,
        "pending_broadcasts",
        "Updates waiting to be gossiped",
        s.pending_broadcasts as i64,
    );
    let uptime = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    uptime.set(s.uptime_s);
    r.register("uptime_seconds", "Seconds since the node started", uptime);
    let per_kind = |k: &swim_proto::PerKind| {
        [
            ("ping", k.ping),
            ("ping_req", k.ping_req),
            ("ack", k.ack),
            ("nack", k.nack),
            ("gossip", k.gossip),
            ("push_pull", k.push_pull),
            ("state_sync", k.state_sync),
        ]
    };
    family(
        &mut r,
        "messages_sent",
        "Protocol messages sent, by kind",
        "kind",
        &per_kind(&c.sent),
    );
    family(
        &mut r,
        "messages_received",
        "Protocol messages received and decoded, by kind",
        "kind",
        &per_kind(&c.received),
    );
    let counters: &[(&str, &str, u64)] = &[
        ("datagrams_sent", "Datagrams sent", c.datagrams_sent),
        (
            "datagram_bytes_sent",
            "Bytes of datagrams sent",
            c.datagram_bytes_sent,
        ),
        (
            "datagrams_received",
            "Datagrams received",
            c.datagrams_received,
        ),
        (
            "datagram_bytes_received",
            "Bytes of datagrams received",
            c.datagram_bytes_received,
        ),
        (
            "streams_sent",
            "Stream messages sent by the core",
            c.streams_sent,
        ),
        (
            "stream_bytes_sent",
            "Bytes of stream messages sent",
            c.stream_bytes_sent,
        ),
        (
            "streams_received",
            "Stream messages received by the core",
            c.streams_received,
        ),
        (
            "stream_bytes_received",
            "Bytes of stream messages received",
            c.stream_bytes_received,
        ),
        (
            "updates_sent",
            "Updates piggybacked on sent datagrams",
            c.updates_sent,
        ),
        ("updates_received", "Updates received", c.updates_received),
        ("probes", "Direct probes started", c.probes),
        (
            "probes_failed",
            "Probes that ended without an ack",
            c.probes_failed,
        ),
        (
            "indirect_probes",
            "Ping-reqs sent to helpers",
            c.indirect_probes,
        ),
        (
            "suspicions_raised",
            "Suspicions raised by this node",
            c.suspicions_raised,
        ),
        (
            "suspicions_refuted",
            "Suspected members seen to refute",
            c.suspicions_refuted,
        ),
        (
            "local_refutations",
            "Claims about this node it refuted",
            c.local_refutations,
        ),
        (
            "deaths_declared",
            "Members this node declared dead",
            c.deaths_declared,
        ),
        (
            "broadcasts_dropped",
            "Updates dropped at the broadcast queue bound",
            c.broadcasts_dropped,
        ),
        (
            "join_attempts",
            "Join attempts (seeds contacted)",
            c.join_attempts,
        ),
        (
            "heals_sent",
            "Partition-healing snapshots sent",
            c.heals_sent,
        ),
        (
            "driver_connections_accepted",
            "Inbound TCP connections accepted",
            d.connections_accepted,
        ),
        (
            "driver_stream_messages_sent",
            "Outbound stream messages written",
            d.stream_messages_sent,
        ),
        (
            "driver_stream_messages_received",
            "Inbound stream messages delivered to the node",
            d.stream_messages_received,
        ),
        (
            "driver_seed_resolutions",
            "Seed DNS resolutions",
            d.seed_resolutions,
        ),
    ];
    for (name, help, v) in counters {
        counter(&mut r, name, help, *v);
    }
    let x = &c.dropped;
    family(
        &mut r,
        "dropped_packets",
        "Packets the core dropped, by reason",
        "reason",
        &[
            ("malformed", x.malformed),
            ("unsupported_version", x.unsupported_version),
            ("label_mismatch", x.label_mismatch),
            ("too_many_updates", x.too_many_updates),
            ("ping_for_other_node", x.ping_for_other_node),
            ("bad_name", x.bad_name),
            ("metadata_too_large", x.metadata_too_large),
            ("member_table_full", x.member_table_full),
            ("relay_table_full", x.relay_table_full),
            ("stream_too_large", x.stream_too_large),
            ("from_self", x.from_self),
            ("bad_state_entry", x.bad_state_entry),
            ("encrypted", x.encrypted),
            ("not_encrypted", x.not_encrypted),
            ("decrypt_failed", x.decrypt_failed),
            ("incarnation_jump", x.incarnation_jump),
            ("address_conflict", x.address_conflict),
            ("unknown_relay_target", x.unknown_relay_target),
            ("unverified_reply_address", x.unverified_reply_address),
            ("rate_limited", x.rate_limited),
            ("introduction_limited", x.introduction_limited),
        ],
    );
    family(
        &mut r,
        "driver_dropped",
        "Datagrams, connections and stream messages the driver dropped, by reason",
        "reason",
        &[
            ("datagram_oversized", d.datagrams_oversized),
            ("udp_send_error", d.udp_send_errors),
            ("udp_recv_error", d.udp_recv_errors),
            ("connection_limit", d.connections_refused),
            ("stream_oversized", d.stream_messages_oversized),
            ("stream_truncated", d.stream_messages_truncated),
            ("stream_read_timeout", d.stream_read_timeouts),
            ("stream_send_limit", d.stream_sends_dropped),
            ("stream_send_failed", d.stream_send_failures),
            ("trace_write_error", d.trace_write_errors),
        ],
    );
    state(&mut r, &c.state);
    timings(&mut r, &c.timings);
    r.register(
        "datagram_size_bytes",
        "Sizes of datagrams sent and received, in bytes",
        sizes.datagrams.clone(),
    );
    r.register(
        "stream_message_size_bytes",
        "Sizes of stream messages sent and received (without the length prefix), in bytes",
        sizes.streams.clone(),
    );
    let mut out = String::with_capacity(16 << 10);
    encode(&mut out, &r).expect("writing to a String cannot fail");
    out
}

/// The replicated-state counters of [`swim_proto::StateStats`] (`docs/protocol.md` §10).
fn state(r: &mut Registry, s: &swim_proto::StateStats) {
    let gauges: &[(&str, &str, u64)] = &[
        (
            "state_entries",
            "State entries held, live values and tombstones",
            s.entries,
        ),
        (
            "state_live_entries",
            "Live (not deleted) state entries held",
            s.live,
        ),
        (
            "state_bytes",
            "Bytes of state keys and values held",
            s.bytes,
        ),
        ("state_origins", "(type, origin) watermarks held", s.origins),
    ];
    for (name, help, v) in gauges {
        gauge(r, name, help, *v as i64);
    }
    let counters: &[(&str, &str, u64)] = &[
        (
            "state_writes",
            "Local state writes (publishes and deletes)",
            s.writes,
        ),
        (
            "state_received",
            "Remote state entries received",
            s.received,
        ),
        (
            "state_applied",
            "Remote state entries that changed the store",
            s.applied,
        ),
        (
            "state_not_newer",
            "Remote state entries not newer than the store's",
            s.not_newer,
        ),
        (
            "state_stale",
            "Remote state entries below the origin's watermark",
            s.stale,
        ),
        (
            "state_not_stored",
            "Remote state entries of types this node does not store",
            s.not_stored,
        ),
        (
            "state_rejected_full",
            "Remote state entries refused at the store's bounds",
            s.rejected_full,
        ),
        (
            "state_piggybacked",
            "State entries piggybacked on sent datagrams",
            s.piggybacked,
        ),
        (
            "state_queue_dropped",
            "State entries dropped at the piggyback queue bound",
            s.queue_dropped,
        ),
        ("state_syncs", "Anti-entropy exchanges started", s.syncs),
        (
            "state_syncs_in_agreement",
            "Anti-entropy exchanges that found both sides equal",
            s.syncs_in_agreement,
        ),
        (
            "state_sync_entries_sent",
            "State entries sent in anti-entropy messages",
            s.sync_entries_sent,
        ),
        ("state_resets_sent", "State resets sent", s.resets_sent),
        (
            "state_reset_drops",
            "State entries dropped by resets received",
            s.reset_drops,
        ),
        (
            "state_tombstones_collected",
            "State tombstones collected",
            s.tombstones_collected,
        ),
        (
            "state_expired",
            "State entries expired after their origin failed",
            s.expired,
        ),
        (
            "state_restamped",
            "Own state entries re-stamped",
            s.restamped,
        ),
    ];
    for (name, help, v) in counters {
        counter(r, name, help, *v);
    }
}

// --- protocol stats with timings (issue 14) ---

/// Smallest and largest power of two (in nanoseconds) used as a bucket bound: 2^17 ns is
/// 131 µs, 2^36 ns is 68.7 s.
const TIMING_BOUNDS: std::ops::RangeInclusive<u32> = 17..=36;

/// A core [`swim_proto::histogram::Histogram`] of nanoseconds as Prometheus histogram data in
/// seconds: `(upper bound, count in that bucket)`, the last bound `+Inf`.
#[derive(Debug)]
struct Seconds {
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

impl Seconds {
    fn of(h: &swim_proto::histogram::Histogram) -> Self {
        let mut buckets: Vec<(f64, u64)> = TIMING_BOUNDS
            .map(|k| ((1u64 << k) as f64 / 1e9, 0))
            .collect();
        buckets.push((f64::MAX, 0));
        // Core buckets tile each power of two exactly, so a core bucket lies below `2^k`
        // whole or not at all.
        for (upper, n) in h.buckets() {
            let i = TIMING_BOUNDS
                .clone()
                .position(|k| upper < 1u64 << k)
                .unwrap_or(buckets.len() - 1);
            buckets[i].1 += n;
        }
        Seconds {
            sum: h.sum() as f64 / 1e9,
            count: h.count(),
            buckets,
        }
    }
}

impl prometheus_client::metrics::TypedMetric for Seconds {
    const TYPE: prometheus_client::metrics::MetricType =
        prometheus_client::metrics::MetricType::Histogram;
}

impl prometheus_client::encoding::EncodeMetric for Seconds {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            self.sum,
            self.count,
            &self.buckets,
            None,
        )
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
    }
}

/// Histograms of one metric, one series per label value.
#[derive(Debug)]
struct SecondsFamily {
    label: &'static str,
    series: Vec<(&'static str, Seconds)>,
}

impl prometheus_client::metrics::TypedMetric for SecondsFamily {
    const TYPE: prometheus_client::metrics::MetricType =
        prometheus_client::metrics::MetricType::Histogram;
}

impl prometheus_client::encoding::EncodeMetric for SecondsFamily {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        for (value, h) in &self.series {
            let labels: Labels = vec![(self.label, value)];
            h.encode(encoder.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
    }
}

/// The core's protocol timings (`docs/protocol.md` §14) as histograms in seconds.
fn timings(r: &mut Registry, t: &swim_proto::Timings) {
    r.register(
        "probe_rtt_seconds",
        "Probe round trips, from the direct ping to the ack, by path (direct, or relayed by ping-req helpers)",
        SecondsFamily {
            label: "path",
            series: vec![
                ("direct", Seconds::of(&t.probe_rtt_direct)),
                ("indirect", Seconds::of(&t.probe_rtt_indirect)),
            ],
        },
    );
    r.register(
        "protocol_period_seconds",
        "Time between the starts of consecutive protocol periods",
        Seconds::of(&t.protocol_period),
    );
    r.register(
        "suspicion_seconds",
        "How long members stayed suspect, by outcome (refuted or dead)",
        SecondsFamily {
            label: "outcome",
            series: vec![
                ("refuted", Seconds::of(&t.suspicion_refuted)),
                ("dead", Seconds::of(&t.suspicion_dead)),
            ],
        },
    );
}

/// p50, p95, p99, p99.9, max and count of a core histogram of nanoseconds, in milliseconds,
/// as JSON (for `/stats`).
pub fn timing_json(h: &swim_proto::histogram::Histogram) -> serde_json::Value {
    let ms = |ns: u64| ns as f64 / 1e6;
    let [p50, p95, p99, p999] = h.percentiles();
    serde_json::json!({
        "count": h.count(),
        "p50_ms": ms(p50), "p95_ms": ms(p95), "p99_ms": ms(p99), "p999_ms": ms(p999),
        "max_ms": ms(h.max()),
    })
}
