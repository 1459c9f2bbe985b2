//! Protocol configuration: every timer, fan-out and size limit, with presets and validation.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;
use serde::{Deserialize, Serialize};

pub use crate::packet::{
    MAX_DATAGRAM_SIZE, MAX_LABEL_LEN, MAX_NAME_LEN, MAX_STATE_TYPE_LEN, MIN_DATAGRAM_SIZE,
};

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
}

/// The state type under which nodes advertise their view checksum (reserved: applications
/// cannot write types starting with `swim.`).
pub const VIEW_STATE_TYPE: &str = "swim.view";

/// Membership checksums, stable views and the leader (`docs/protocol.md` §11). Defaults are
/// those of [`Config::lan`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ViewConfig {
    /// Advertise this node's view checksum through the replicated state (type `swim.view`) so
    /// every node can tell when all members see the same view: what stable views and the leader
    /// need. Every node must turn it on. Costs one small state write per node per view change,
    /// so O(n²) entry deliveries cluster-wide per membership change (about 30 KB received per
    /// node per change at 1,000 nodes). Without it, views are never reported stable and there
    /// is no leader; checksums on pings and acks work either way. Default false.
    pub advertise: bool,
    /// How long every member must advertise the same checksum before the view is stable.
    /// Default 5 s.
    #[serde(with = "duration")]
    pub settle: Duration,
    /// This node's leader rank: the stable view's member with the lowest `(rank, name)` leads.
    /// Default 0 (so the lowest name leads).
    pub rank: u64,
    /// After this many consecutive probe periods in which every checksum heard on pings and
    /// acks differed from this node's (unchanged) checksum, push-pull with the last such peer.
    /// 0 disables. Default 3.
    pub checksum_sync_periods: u32,
}

impl Default for ViewConfig {
    fn default() -> Self {
        ViewConfig {
            advertise: false,
            settle: Duration::from_secs(5),
            rank: 0,
            checksum_sync_periods: 3,
        }
    }
}

/// Replicated key/value state (see `docs/protocol.md` §10): bounds, timers, and which state types
/// this node stores and forwards. Defaults are those of [`Config::lan`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct StateConfig {
    /// Most entries held, live values and tombstones together. `publish` of a new key at the
    /// bound is rejected; a remote entry for a new key at the bound is dropped and counted
    /// (`Stats::state.rejected_full`). Default 100,000.
    pub max_entries: usize,
    /// Longest key, in bytes (a state type name is at most [`MAX_STATE_TYPE_LEN`]). Default 256.
    pub max_key_len: usize,
    /// Largest value, in bytes. Values whose encoded entry does not fit a datagram travel by
    /// stream only. Default 65,536 (64 KiB).
    pub max_value_size: usize,
    /// Most bytes of keys and values held in total. Default 67,108,864 (64 MiB).
    pub max_total_bytes: usize,
    /// How long a tombstone (a deleted entry) is kept before it is collected, counted from when
    /// this node learned it. Must exceed the time anti-entropy needs to reach every node; a node
    /// away for longer is repaired by a reset (§10.5). Default 1 h.
    #[serde(with = "duration")]
    pub tombstone_ttl: Duration,
    /// Time between anti-entropy exchanges with one random member (scuttlebutt digests, §10.4);
    /// zero disables periodic exchanges (joins still sync once). Default 500 ms.
    #[serde(with = "duration")]
    pub sync_interval: Duration,
    /// Most bytes of entries in one anti-entropy message; what does not fit goes in the next
    /// exchange. Default 262,144 (256 KiB); at most half of `max_stream_message_size` is used
    /// (the rest is room for the digest).
    pub sync_max_bytes: usize,
    /// Most state entries waiting in the piggyback queue; past it the most-transmitted entry is
    /// dropped from the queue (never from the store: anti-entropy still carries it).
    /// Default 8,192.
    pub max_queue: usize,
    /// Most (origin, type) watermarks kept for anti-entropy. Default 65,536.
    pub max_origins: usize,
    /// Whether types not listed in `types` are stored and forwarded. Default true.
    pub store_unlisted: bool,
    /// Per-type switches. Default none.
    pub types: Vec<StateTypeConfig>,
}

/// Per-state-type switches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StateTypeConfig {
    /// The state type's name.
    pub name: String,
    /// Whether this node stores and forwards entries of this type. Default true.
    #[serde(default = "yes")]
    pub store: bool,
    /// When an entry's origin fails or leaves, delete its entries of this type on this node
    /// after this delay (cancelled if the origin comes back). Default none (entries stay).
    #[serde(default, with = "duration::option")]
    pub expire_after_origin_failure: Option<Duration>,
}

fn yes() -> bool {
    true
}

impl StateTypeConfig {
    /// A stored type with no expiry.
    pub fn new(name: impl Into<String>) -> Self {
        StateTypeConfig {
            name: name.into(),
            store: true,
            expire_after_origin_failure: None,
        }
    }

    /// Sets the delay after which entries of a failed or departed origin expire.
    pub fn expire_after_origin_failure(mut self, delay: Duration) -> Self {
        self.expire_after_origin_failure = Some(delay);
        self
    }

    /// Makes this node neither store nor forward the type.
    pub fn not_stored(mut self) -> Self {
        self.store = false;
        self
    }
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            max_entries: 100_000,
            max_key_len: 256,
            max_value_size: 64 << 10,
            max_total_bytes: 64 << 20,
            tombstone_ttl: Duration::from_secs(3_600),
            sync_interval: Duration::from_millis(500),
            sync_max_bytes: 256 << 10,
            max_queue: 8_192,
            max_origins: 65_536,
            store_unlisted: true,
            types: Vec::new(),
        }
    }
}

impl StateConfig {
    /// Whether this node stores and forwards entries of type `ty` (always for the reserved
    /// view type).
    pub fn stores(&self, ty: &str) -> bool {
        if ty == VIEW_STATE_TYPE {
            return true;
        }
        match self.types.iter().find(|t| t.name == ty) {
            Some(t) => t.store,
            None => self.store_unlisted,
        }
    }

    /// The expiry delay for orphaned entries of type `ty`, if configured.
    pub fn expiry(&self, ty: &str) -> Option<Duration> {
        self.types
            .iter()
            .find(|t| t.name == ty)
            .and_then(|t| t.expire_after_origin_failure)
    }

    fn validate(&self, max_stream: usize) -> Result<(), ConfigError> {
        fn range(field: &'static str, v: u64, lo: u64, hi: u64) -> Result<(), ConfigError> {
            if v < lo || v > hi {
                return Err(ConfigError::range(field, v, lo, hi));
            }
            Ok(())
        }
        range("state.max_entries", self.max_entries as u64, 0, 1 << 26)?;
        range("state.max_key_len", self.max_key_len as u64, 1, 1 << 16)?;
        let value_room = max_stream.saturating_sub(1024);
        if self.max_value_size > value_room {
            return Err(ConfigError::new(
                "state.max_value_size",
                &alloc::format!(
                    "is {}, must be at most {value_room}: max_stream_message_size less 1 KiB, so \
                     an entry fits a stream message (lower this or raise that)",
                    self.max_value_size
                ),
            ));
        }
        range(
            "state.max_total_bytes",
            self.max_total_bytes as u64,
            0,
            1 << 40,
        )?;
        if self.tombstone_ttl.is_zero() {
            return Err(ConfigError::new(
                "state.tombstone_ttl",
                "must be greater than zero",
            ));
        }
        range(
            "state.sync_max_bytes",
            self.sync_max_bytes as u64,
            1024,
            1 << 30,
        )?;
        range("state.max_queue", self.max_queue as u64, 16, 1 << 24)?;
        range("state.max_origins", self.max_origins as u64, 16, 1 << 24)?;
        for (i, t) in self.types.iter().enumerate() {
            if t.name.is_empty() || t.name.len() > MAX_STATE_TYPE_LEN {
                return Err(ConfigError::new(
                    "state.types.name",
                    &alloc::format!(
                        "entry {i}: a state type name must be 1 to {MAX_STATE_TYPE_LEN} bytes"
                    ),
                ));
            }
            if self.types[..i].iter().any(|o| o.name == t.name) {
                return Err(ConfigError::new(
                    "state.types.name",
                    &alloc::format!("type {:?} is listed twice", t.name),
                ));
            }
        }
        Ok(())
    }
}

/// Serde for durations: `"1.5s"`-style strings when human readable, nanoseconds otherwise.
pub mod duration {
    use core::fmt;
    use core::time::Duration;
    use serde::{Deserializer, Serializer, de};

    /// Formats a duration with the largest unit that keeps it exact (`"1s"`, `"250ms"`, `"90s"`).
    pub fn format(d: Duration, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = d.as_nanos();
        for (unit, scale) in [("s", 1_000_000_000u128), ("ms", 1_000_000), ("us", 1_000)] {
            if n >= scale && n.is_multiple_of(scale) {
                return write!(f, "{}{unit}", n / scale);
            }
        }
        write!(f, "{n}ns")
    }

    /// Parses `"<number><unit>"`, unit one of `ns`, `us`, `ms`, `s`, `m`, `h`; the number may
    /// have a fractional part (`"1.5s"`).
    pub fn parse(s: &str) -> Result<Duration, &'static str> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or("missing unit (ns, us, ms, s, m, h)")?;
        let (num, unit) = s.split_at(split);
        let scale: u128 = match unit.trim() {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err("unknown unit (use ns, us, ms, s, m or h)"),
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if int.is_empty() && frac.is_empty() {
            return Err("missing number");
        }
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| "bad number")?
        };
        let mut nanos = int.checked_mul(scale).ok_or("too large")?;
        let mut place = scale;
        for c in frac.chars() {
            let digit = c.to_digit(10).ok_or("bad number")? as u128;
            place /= 10;
            nanos += digit * place;
        }
        u64::try_from(nanos)
            .map(Duration::from_nanos)
            .map_err(|_| "too large")
    }

    /// Serializes a duration.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            struct Show(Duration);
            impl fmt::Display for Show {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    format(self.0, f)
                }
            }
            s.collect_str(&Show(*d))
        } else {
            s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        }
    }

    /// Deserializes a duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"500ms\" or \"1.5s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                parse(v).map_err(|why| E::custom(alloc::format!("invalid duration {v:?}: {why}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(Duration::from_nanos(v))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_u64(V)
        }
    }

    /// Serde for `Option<Duration>` in the same formats (`None` is absent or `null`).
    pub mod option {
        use core::time::Duration;
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        #[derive(Serialize, Deserialize)]
        #[serde(transparent)]
        struct Wrapped(#[serde(with = "super")] Duration);

        /// Serializes an optional duration.
        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            d.map(Wrapped).serialize(s)
        }

        /// Deserializes an optional duration.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
        }
    }
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
        self.state.validate(self.max_stream_message_size)?;
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
