//! Protocol configuration: every timer, fan-out and size limit, with presets and validation.
//! The replicated state's and views' sections are `config/state.rs`; the wire's hard limits are
//! `crate::packet`'s (re-exported here).

use alloc::string::String;
use core::fmt;
use core::time::Duration;
use serde::{Deserialize, Serialize};

pub use crate::packet::{
    MAX_DATAGRAM_SIZE, MAX_LABEL_LEN, MAX_NAME_LEN, MAX_STATE_TYPE_LEN, MIN_DATAGRAM_SIZE,
};

pub mod duration;
mod state;
// Application messaging (issue 14).
mod messaging;
// Lifecycle and bootstrap (issue 14).
mod join;

pub use join::JoinConfig;
pub use messaging::MessagingConfig;
pub use state::{StateConfig, StateTypeConfig, VIEW_STATE_TYPE, ViewConfig};

/// Everything tunable about a node. Build one from a preset ([`Config::lan`], [`Config::wan`],
/// [`Config::local`]), change fields, and let [`Node::new`](crate::Node::new) validate it.
///
/// Durations are wall-clock intervals measured on the driver's [`Instant`](crate::Instant)s.
/// Defaults below are those of [`Config::lan`], which is also `Config::default()`.
///
/// `Config` is (de)serializable: in human-readable formats (TOML, JSON) durations are strings such
/// as `"500ms"`, `"1.5s"` or `"2m"`, missing fields take the `lan()` default and unknown fields are
/// rejected by name; in binary formats (traces) durations are nanoseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Time between probe rounds (SWIM §3.1 protocol period). Stretched by local health
    /// (Lifeguard §IV-A). Default 1 s.
    #[serde(with = "duration")]
    pub probe_interval: Duration,
    /// How long to wait for a direct ack before asking helpers (SWIM §3.1). Must be below
    /// `probe_interval`. Stretched by local health. Default 500 ms.
    #[serde(with = "duration")]
    pub probe_timeout: Duration,
    /// Helpers asked to probe a target indirectly with ping-req (SWIM §3.1, `k`). Default 3.
    pub indirect_checks: usize,
    /// λ in the retransmission limit λ·⌈log10(n+1)⌉ of each gossiped update (SWIM §4.1).
    /// Default 4.
    pub retransmit_mult: u32,
    /// Multiplier of the minimum suspicion timeout, `suspicion_mult·max(1, log10 n)·probe_interval`
    /// (SWIM §4.2, Lifeguard §IV-B). Also sets the confirmations wanted: `suspicion_mult − 2`.
    /// Default 4.
    pub suspicion_mult: u32,
    /// The suspicion timeout starts at this multiple of the minimum and shrinks with each
    /// independent confirmation (Lifeguard §IV-B). Default 6.
    pub suspicion_max_timeout_mult: u32,
    /// Upper bound of the local health multiplier (Lifeguard §IV-A): the health score runs
    /// 0..`max_local_health`, and probe interval and timeout are scaled by `score + 1`.
    /// Default 8.
    pub max_local_health: u32,
    /// Time between gossip rounds that send queued updates to random members (SWIM §4.1).
    /// Default 200 ms.
    #[serde(with = "duration")]
    pub gossip_interval: Duration,
    /// Members each gossip round sends to. Default 3.
    pub gossip_nodes: usize,
    /// How long recently dead or departed members still receive gossip, so they learn what
    /// was said about them and can refute. Default 30 s.
    #[serde(with = "duration")]
    pub gossip_to_dead_time: Duration,
    /// Time between push-pull anti-entropy exchanges with one random member; stretched above
    /// 32 members by `⌈log2 n − log2 32⌉ + 1`. Zero disables periodic push-pull (joins still
    /// use it). Default 30 s.
    #[serde(with = "duration")]
    pub push_pull_interval: Duration,
    /// Partition healing: how often each node considers contacting a member it holds failed.
    /// Zero disables healing. Default 30 s.
    #[serde(with = "duration")]
    pub heal_interval: Duration,
    /// Partition healing: each node makes an attempt per `heal_interval` with probability
    /// `min(1, heal_base / n)`, so the cluster makes about `heal_base` attempts per interval
    /// whatever its size (as ringpop does). Default 3.
    pub heal_base: u32,
    /// How many failed members a node remembers as healing targets (oldest forgotten first).
    /// Default 1,024.
    pub max_failed_memory: usize,
    /// How long a failed member stays a healing target. Default 1 h.
    #[serde(with = "duration")]
    pub failed_memory_time: Duration,
    /// How long dead and departed members stay as tombstones, so stale gossip cannot bring
    /// them back, before they are reaped. Default 60 s.
    #[serde(with = "duration")]
    pub tombstone_retention: Duration,
    /// First delay before re-contacting seeds when a join gets no answer, or when the node finds
    /// itself alone; doubles on each attempt up to `join_retry_max`. Default 1 s.
    #[serde(with = "duration")]
    pub join_retry_initial: Duration,
    /// Cap of the join retry backoff. Default 30 s.
    #[serde(with = "duration")]
    pub join_retry_max: Duration,
    /// Largest datagram the node sends, in bytes; piggybacked updates fill packets up to it.
    /// 512..=65,507. Default 1400 (fits a 1500-byte Ethernet MTU with room for headers).
    pub max_packet_size: usize,
    /// Largest stream message (push-pull state) the node sends or accepts, in bytes.
    /// Default 8 MiB.
    pub max_stream_message_size: usize,
    /// Hard cap on the member table, tombstones included. At the cap a new member evicts the
    /// oldest tombstone; with no tombstone to evict it is refused and counted. Default 65,536.
    pub max_members: usize,
    /// Hard cap on updates waiting to be gossiped. At the cap the update sent most often is
    /// dropped and counted; push-pull repairs what gossip missed. Default 8,192.
    pub max_broadcast_queue: usize,
    /// Hard cap on ping-reqs this node is relaying for others at once. Further requests are
    /// refused and counted. Default 1,024.
    pub max_pending_relays: usize,
    /// Longest accepted node name, in bytes (at most 255). Default 128.
    pub max_name_len: usize,
    /// Longest accepted member metadata, in bytes. Default 512.
    pub max_meta_len: usize,
    /// Cluster label carried in every packet; packets with another label are dropped, so two
    /// clusters sharing a network never merge. At most 255 bytes. Default empty.
    pub cluster_label: String,
    /// Keys for authenticated encryption of every datagram and stream message
    /// (ChaCha20-Poly1305, the header and label as associated data). With a keyring, plaintext
    /// packets are dropped; without one, encrypted packets are. Rotate keys at run time with
    /// `Command::InstallKey`, `UseKey` and `RemoveKey`. Default none (plaintext).
    pub keyring: Option<crate::keyring::Keyring>,
    /// The replicated key/value state: bounds, anti-entropy timing and per-type switches.
    pub state: StateConfig,
    /// Membership checksums, stable views and the leader.
    pub view: ViewConfig,
    // -- issue 12 (false deaths after heals and restarts) --
    /// The incarnation this node starts at (SWIM §4.2). A process that restarts under the same
    /// name can start above the incarnation of its previous life (persisted by the driver), so
    /// its first `alive` already out-refutes suspicions and death claims about that life.
    /// Default 0.
    pub start_incarnation: u64,
    // -- abuse resistance (issue 13) --
    /// How far above the incarnation held for a member a claim about it made by someone else
    /// may go. Only the member raises its incarnation (SWIM §4.2), by one per refutation or
    /// metadata change, so a claim further ahead is forged (or this node missed that many of
    /// the member's refutations); it is dropped and counted (`DropReason::IncarnationJump`).
    /// Claims that arrive from the member's own held address are exempt. The window also
    /// bounds how far a forged claim about this node can push its incarnation per refutation:
    /// walking it to `u64::MAX` would take 2⁶⁴ / 1,000 forged rounds. Default 1,000; within
    /// 1..=2⁴⁸. See `docs/protocol.md` §3.5.
    pub max_incarnation_jump: u64,
    /// The highest incarnation accepted for a member this node does not hold (from anyone but
    /// the member itself) or in a claim about this node from a previous life (refuted only up to
    /// this value plus `max_incarnation_jump`). At one refutation a second a member takes 136
    /// years to reach the default. Default 2³² (4,294,967,296); within 0..=2⁴⁸.
    pub incarnation_ceiling: u64,
    // Application messaging (issue 14).
    /// Direct messages, user events and queries: payload sizes, dedupe and queue bounds.
    pub messaging: MessagingConfig,
    // -- abuse resistance, wave 3 (issue 13): reply and introduction limits --
    /// Replies per second this node sends to one address that is not a member's: acks to
    /// pings, relayed acks and nacks, join answers (`docs/security.md`). Such a source is
    /// unverified (UDP sources can be forged), so it gets a bare reply (no piggybacked
    /// gossip, never larger than the request) and at most this many a second, in bursts of up
    /// to two seconds' worth; requests beyond are dropped and counted
    /// (`DropReason::RateLimited`). Members' addresses are not limited. Default 10 per second;
    /// within 1..=1,000,000.
    pub unverified_reply_rate: u32,
    /// Replies per second to all non-member addresses together (same bursts), so forging
    /// many source addresses does not multiply what the node sends. Joiners beyond it retry
    /// (`join_retry_initial`). Default 100 per second; within 1..=1,000,000.
    pub unverified_reply_global_rate: u32,
    /// New members one source address may introduce per second in datagrams (gossip), in
    /// bursts of up to two seconds' worth; further introductions are dropped and counted
    /// (`DropReason::IntroductionLimited`) and reach this node again by push-pull or by
    /// another member's gossip. Claims about members already held are not limited. Default
    /// 10 per second (bursts of 20): a flood of 100,000 names from one source then leaves
    /// about 34 fakes, and a real crash is still detected within 2× the normal time
    /// (`swim-sim/tests/adversary.rs`); within 1..=1,000,000.
    pub introductions_per_source: u32,
    /// Source addresses the per-source limits track at once (a bounded table: at the bound,
    /// sources whose allowance has refilled are forgotten first, then the lowest address).
    /// Default 4,096; within 16..=2²⁰.
    pub max_limited_sources: usize,
    // Lifecycle and bootstrap (issue 14).
    /// Join size, parallelism, per-attempt timeout and longest join (ringpop's
    /// `BootstrapOptions`).
    pub join: JoinConfig,
    // -- issue 12 (bytes): anti-entropy only where views differ --
    /// Skip a periodic push-pull round when the last membership checksum heard on a ping since
    /// the previous round equalled this node's (ringpop's rule: compare checksums first, send
    /// full state only on a mismatch). Pings carry the checksum already, so in a quiet cluster
    /// the O(n) snapshot exchange costs nothing; a mismatch that persists triggers a push-pull
    /// on its own (`ViewConfig::checksum_sync_periods`), and the early rounds after a join
    /// always run. The checksum covers names, incarnations and states, not addresses or
    /// metadata: with this on, a missed metadata update is repaired by the member's next
    /// change rather than the next round. Default true.
    pub push_pull_only_on_mismatch: bool,
    // -- issue 12 (heal): probing members held failed --
    /// Partition healing: while this node remembers members it declared dead, every
    /// `heal_probe_interval` it pings one of them with probability `min(1, heal_probe_base / n)`
    /// (a cluster-wide rate of about `heal_probe_base` pings per interval, whatever its size);
    /// an answer means the member is alive on the other side of a healed partition, and a heal
    /// snapshot follows at once. A ping costs tens of bytes where a blind heal snapshot costs
    /// the whole membership, so healing starts within about a second of the heal instead of
    /// waiting for a `heal_interval` round. Zero disables it. Default 1 s.
    pub heal_probe_interval: Duration,
    /// See `heal_probe_interval`. Default 20; within 1..=10,000.
    pub heal_probe_base: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config::lan()
    }
}

impl Config {
    /// Tuned for a LAN: memberlist's LAN numbers (probe 1 s, timeout 500 ms, 3 indirect
    /// checks, retransmit 4, suspicion 4 with max 6, gossip every 200 ms to 3, push-pull 30 s).
    pub fn lan() -> Self {
        Config {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            indirect_checks: 3,
            retransmit_mult: 4,
            suspicion_mult: 4,
            suspicion_max_timeout_mult: 6,
            max_local_health: 8,
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: 3,
            gossip_to_dead_time: Duration::from_secs(30),
            push_pull_interval: Duration::from_secs(30),
            tombstone_retention: Duration::from_secs(60),
            heal_interval: Duration::from_secs(30),
            heal_base: 3,
            max_failed_memory: 1_024,
            failed_memory_time: Duration::from_secs(3_600),
            join_retry_initial: Duration::from_secs(1),
            join_retry_max: Duration::from_secs(30),
            max_packet_size: 1400,
            max_stream_message_size: 8 << 20,
            max_members: 65_536,
            max_broadcast_queue: 8_192,
            max_pending_relays: 1_024,
            max_name_len: 128,
            max_meta_len: 512,
            cluster_label: String::new(),
            keyring: None,
            state: StateConfig::default(),
            view: ViewConfig::default(),
            start_incarnation: 0,
            max_incarnation_jump: 1_000,
            incarnation_ceiling: 1 << 32,
            messaging: MessagingConfig::default(),
            unverified_reply_rate: 10,
            unverified_reply_global_rate: 100,
            introductions_per_source: 10,
            max_limited_sources: 4_096,
            join: JoinConfig::default(),
            push_pull_only_on_mismatch: true,
            heal_probe_interval: Duration::from_secs(1),
            heal_probe_base: 20,
        }
    }

    /// Tuned for a WAN: slower, more tolerant timers (probe 5 s, timeout 3 s, suspicion 6,
    /// gossip every 500 ms to 4, push-pull 60 s).
    pub fn wan() -> Self {
        Config {
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(3),
            suspicion_mult: 6,
            gossip_interval: Duration::from_millis(500),
            gossip_nodes: 4,
            gossip_to_dead_time: Duration::from_secs(60),
            push_pull_interval: Duration::from_secs(60),
            tombstone_retention: Duration::from_secs(120),
            heal_interval: Duration::from_secs(60),
            ..Config::lan()
        }
    }

    /// Tuned for one host or a test: fast timers (probe 1 s, timeout 200 ms, 1 indirect
    /// check, retransmit 2, suspicion 3, gossip every 100 ms, push-pull 15 s).
    pub fn local() -> Self {
        Config {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(200),
            indirect_checks: 1,
            retransmit_mult: 2,
            suspicion_mult: 3,
            gossip_interval: Duration::from_millis(100),
            gossip_to_dead_time: Duration::from_secs(15),
            push_pull_interval: Duration::from_secs(15),
            tombstone_retention: Duration::from_secs(30),
            heal_interval: Duration::from_secs(15),
            ..Config::lan()
        }
    }

    /// Checks every field and names the first one that is out of range. Nothing is changed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn nonzero(field: &'static str, d: Duration) -> Result<(), ConfigError> {
            if d.is_zero() {
                return Err(ConfigError::new(field, "must be greater than zero"));
            }
            Ok(())
        }
        fn range(field: &'static str, v: u64, lo: u64, hi: u64) -> Result<(), ConfigError> {
            if v < lo || v > hi {
                return Err(ConfigError::range(field, v, lo, hi));
            }
            Ok(())
        }
        nonzero("probe_interval", self.probe_interval)?;
        nonzero("probe_timeout", self.probe_timeout)?;
        if self.probe_timeout >= self.probe_interval {
            return Err(ConfigError::new(
                "probe_timeout",
                "must be below probe_interval so indirect probes fit in the protocol period",
            ));
        }
        range("indirect_checks", self.indirect_checks as u64, 0, 32)?;
        range("retransmit_mult", self.retransmit_mult.into(), 1, 64)?;
        range("suspicion_mult", self.suspicion_mult.into(), 1, 64)?;
        range(
            "suspicion_max_timeout_mult",
            self.suspicion_max_timeout_mult.into(),
            1,
            64,
        )?;
        range("max_local_health", self.max_local_health.into(), 1, 64)?;
        nonzero("gossip_interval", self.gossip_interval)?;
        range("gossip_nodes", self.gossip_nodes as u64, 1, 64)?;
        nonzero("tombstone_retention", self.tombstone_retention)?;
        range("heal_base", self.heal_base.into(), 1, 1_000)?;
        range("heal_probe_base", self.heal_probe_base.into(), 1, 10_000)?;
        range(
            "max_failed_memory",
            self.max_failed_memory as u64,
            0,
            1 << 20,
        )?;
        nonzero("join_retry_initial", self.join_retry_initial)?;
        if self.join_retry_max < self.join_retry_initial {
            return Err(ConfigError::new(
                "join_retry_max",
                "must be at least join_retry_initial",
            ));
        }
        range(
            "max_packet_size",
            self.max_packet_size as u64,
            MIN_DATAGRAM_SIZE as u64,
            MAX_DATAGRAM_SIZE as u64,
        )?;
        range(
            "max_stream_message_size",
            self.max_stream_message_size as u64,
            self.max_packet_size as u64,
            1 << 30,
        )?;
        range("max_members", self.max_members as u64, 2, 1 << 24)?;
        range(
            "max_broadcast_queue",
            self.max_broadcast_queue as u64,
            16,
            1 << 24,
        )?;
        range(
            "max_pending_relays",
            self.max_pending_relays as u64,
            1,
            1 << 20,
        )?;
        range(
            "max_name_len",
            self.max_name_len as u64,
            1,
            MAX_NAME_LEN as u64,
        )?;
        if self.cluster_label.len() > MAX_LABEL_LEN {
            return Err(ConfigError::range(
                "cluster_label",
                self.cluster_label.len() as u64,
                0,
                MAX_LABEL_LEN as u64,
            ));
        }
        range(
            "max_incarnation_jump",
            self.max_incarnation_jump,
            1,
            u64::MAX >> 16,
        )?;
        range(
            "incarnation_ceiling",
            self.incarnation_ceiling,
            0,
            u64::MAX >> 16,
        )?;
        range(
            "unverified_reply_rate",
            self.unverified_reply_rate.into(),
            1,
            1_000_000,
        )?;
        range(
            "unverified_reply_global_rate",
            self.unverified_reply_global_rate.into(),
            1,
            1_000_000,
        )?;
        range(
            "introductions_per_source",
            self.introductions_per_source.into(),
            1,
            1_000_000,
        )?;
        range(
            "max_limited_sources",
            self.max_limited_sources as u64,
            16,
            1 << 20,
        )?;
        self.state.validate(self.max_stream_message_size)?;
        self.messaging
            .validate(self.max_packet_size, self.max_stream_message_size)?;
        self.join.validate()?;
        if let Some(k) = &self.keyring {
            k.check().map_err(|why| ConfigError::new("keyring", why))?;
        }
        // The largest alive announcement (name, metadata, an address, incarnation and framing)
        // must fit in one datagram next to a ping and the encryption overhead, or it could only
        // ever travel by push-pull.
        let budget = self.max_packet_size.saturating_sub(
            self.cluster_label.len()
                + 2 * self.max_name_len
                + 96
                + crate::keyring::ENCRYPTION_OVERHEAD
                + 1,
        );
        if self.max_meta_len > budget {
            return Err(ConfigError::range(
                "max_meta_len",
                self.max_meta_len as u64,
                0,
                budget as u64,
            ));
        }
        Ok(())
    }
}

/// A configuration or identity value out of range. Returned by [`Config::validate`] and
/// [`Node::new`](crate::Node::new); no node was created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The offending field, e.g. `"probe_timeout"` or `"identity.name"`.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(field: &'static str, problem: &str) -> Self {
        ConfigError {
            field,
            problem: problem.into(),
        }
    }

    fn range(field: &'static str, value: u64, lo: u64, hi: u64) -> Self {
        ConfigError {
            field,
            problem: alloc::format!("is {value}, must be within {lo}..={hi}"),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid config field `{}`: {}", self.field, self.problem)
    }
}

impl core::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn presets_are_valid() {
        for c in [
            Config::lan(),
            Config::wan(),
            Config::local(),
            Config::default(),
        ] {
            c.validate().unwrap();
        }
    }

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(duration::parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration::parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration::parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration::parse(" 250us "), Ok(Duration::from_micros(250)));
        assert!(duration::parse("5").is_err());
        assert!(duration::parse("5 parsecs").is_err());
        assert!(duration::parse("s").is_err());
        struct Show(Duration);
        impl fmt::Display for Show {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                duration::format(self.0, f)
            }
        }
        assert_eq!(Show(Duration::from_millis(1500)).to_string(), "1500ms");
        assert_eq!(Show(Duration::from_secs(30)).to_string(), "30s");
    }

    #[test]
    fn config_round_trips_through_postcard() {
        let mut c = Config::wan();
        c.cluster_label = "prod".into();
        let bytes = postcard::to_allocvec(&c).unwrap();
        assert_eq!(postcard::from_bytes::<Config>(&bytes).unwrap(), c);
    }

    #[test]
    fn validate_names_the_offending_field() {
        type Mutation = fn(&mut Config);
        let cases: [(&str, Mutation); 8] = [
            ("probe_interval", |c| c.probe_interval = Duration::ZERO),
            ("probe_timeout", |c| c.probe_timeout = c.probe_interval),
            ("max_packet_size", |c| c.max_packet_size = 100),
            ("max_packet_size", |c| c.max_packet_size = 70_000),
            ("gossip_interval", |c| c.gossip_interval = Duration::ZERO),
            ("max_name_len", |c| c.max_name_len = 300),
            ("max_meta_len", |c| c.max_meta_len = 1400),
            ("join_retry_max", |c| {
                c.join_retry_max = Duration::from_millis(1)
            }),
        ];
        for (field, mutate) in cases {
            let mut c = Config::lan();
            mutate(&mut c);
            let err = c.validate().unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert!(err.to_string().contains(field));
        }
    }
}
