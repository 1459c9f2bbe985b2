//! Configuration of the replicated state (`docs/protocol.md` §10) and of views and the leader
//! (§11).

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;
use serde::{Deserialize, Serialize};

use super::{ConfigError, MAX_STATE_TYPE_LEN, duration};

/// The state type under which nodes advertise their view checksum (reserved: applications
/// cannot write types starting with `swim.`).
pub const VIEW_STATE_TYPE: &str = "swim.view";

/// Membership checksums, stable views and the leader (`docs/protocol.md` §11). Defaults are
/// those of [`Config::lan`](super::Config::lan).
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
/// this node stores and forwards. Defaults are those of [`Config::lan`](super::Config::lan).
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
    // Abuse resistance (issue 13, `docs/security.md`).
    /// Largest step, above this node's Lamport clock, that a remote entry's version may take
    /// (and, above this node's watermark for the origin, a remote sequence number or
    /// watermark). A stamp further ahead is a stamp from the future (forged, such as
    /// `u64::MAX`, which would outrank every later write to the key for good): refused and
    /// counted (`Stats::state.rejected_future`). Honest clocks only get this far apart after
    /// this many writes made without any exchange. Default 4,294,967,296 (2^32) writes.
    pub max_version_jump: u64,
    /// Fair share of one origin: the most entries and bytes one origin's writes may take, in
    /// percent of `max_entries` and `max_total_bytes` (at least one entry), so one origin
    /// cannot fill the store for everyone. A remote entry past it is refused and counted
    /// (`Stats::state.rejected_quota`); a local publish past it fails with
    /// `StateError::OriginQuota`. Default 50 %; 1 to 100.
    pub origin_share_percent: u8,
    /// Share of origins that are not members (not in this node's member table: forged
    /// names, or nodes not yet learned or already removed), in percent of `max_entries`,
    /// `max_total_bytes` and `max_origins` for all of them together. Past it their new entries
    /// are refused and counted (`Stats::state.rejected_non_member`) and anti-entropy delivers
    /// them again once the origin is a member. Default 10 %; 1 to 100.
    pub non_member_share_percent: u8,
    /// How long entries of an origin that is not a member are kept: checked this long after
    /// the origin was first seen, or after it failed or left; an origin then absent from the
    /// member table has its entries deleted here (`ChangeCause::Expired`,
    /// `Stats::state.non_member_expired`), one still listed but down is checked again after as
    /// long. Default 10 min.
    #[serde(with = "duration")]
    pub non_member_ttl: Duration,
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

/// `pct` percent of `x`, rounded down.
fn percent(x: usize, pct: u8) -> usize {
    (x as u128 * u128::from(pct) / 100) as usize
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
            max_version_jump: 1 << 32,
            origin_share_percent: 50,
            non_member_share_percent: 10,
            non_member_ttl: Duration::from_secs(600),
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

    /// The most entries and bytes one origin may hold (`origin_share_percent`).
    pub fn origin_quota(&self) -> (usize, usize) {
        let pct = self.origin_share_percent;
        (
            percent(self.max_entries, pct).max(1),
            percent(self.max_total_bytes, pct),
        )
    }

    /// The most entries, bytes and `(type, origin)` watermarks all origins that are not
    /// members may hold together (`non_member_share_percent`).
    pub fn non_member_quota(&self) -> (usize, usize, usize) {
        let pct = self.non_member_share_percent;
        (
            percent(self.max_entries, pct).max(1),
            percent(self.max_total_bytes, pct),
            percent(self.max_origins, pct).max(1),
        )
    }

    /// The expiry delay for orphaned entries of type `ty`, if configured.
    pub fn expiry(&self, ty: &str) -> Option<Duration> {
        self.types
            .iter()
            .find(|t| t.name == ty)
            .and_then(|t| t.expire_after_origin_failure)
    }

    pub(super) fn validate(&self, max_stream: usize) -> Result<(), ConfigError> {
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
        range(
            "state.max_version_jump",
            self.max_version_jump,
            1,
            u64::MAX / 2,
        )?;
        range(
            "state.origin_share_percent",
            self.origin_share_percent.into(),
            1,
            100,
        )?;
        range(
            "state.non_member_share_percent",
            self.non_member_share_percent.into(),
            1,
            100,
        )?;
        if self.non_member_ttl.is_zero() {
            return Err(ConfigError::new(
                "state.non_member_ttl",
                "must be greater than zero",
            ));
        }
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
