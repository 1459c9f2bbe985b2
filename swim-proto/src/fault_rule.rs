//! Network fault rules as one node applies them to its own traffic: the vocabulary the async
//! driver's interposition (its live partitions, the agent's `POST /partitions`) and the
//! simulator's scenario files share, so a fault script written for the simulator can be
//! replayed against real agents (`docs/driver.md`, "Interposition and live partitions").
//!
//! Not protocol: no [`Node`](crate::Node) reads these. They live here because the core is the
//! one crate both the driver and the simulator depend on. In JSON and TOML a rule is tagged by
//! `kind` (`partition`, `loss`, `delay`), durations are strings such as `"250ms"`, and unknown
//! fields are refused by name.

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use serde::{Deserialize, Serialize};

/// Which of a node's packets a rule touches, seen from the node applying it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Direction {
    /// Packets sent and received (the default).
    #[default]
    Both,
    /// Only packets received.
    Inbound,
    /// Only packets sent.
    Outbound,
}

impl Direction {
    /// Whether a packet going `outgoing` (or coming in) is covered.
    pub fn covers(self, outgoing: bool) -> bool {
        match self {
            Direction::Both => true,
            Direction::Inbound => !outgoing,
            Direction::Outbound => outgoing,
        }
    }
}

/// One fault rule. `members` name peers by node name or by `ip:port` address; an empty list
/// (allowed for loss and delay, not for a partition) means every peer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum FaultRule {
    /// Partisan's `inject_partition`: exchange no packet (datagram or stream) with these
    /// members, in both directions.
    Partition {
        /// The members cut off.
        members: Vec<String>,
    },
    /// Lose `rate` (0 to 1) of the packets exchanged with these members, drawn from a seeded
    /// RNG.
    Loss {
        /// The peers (every peer when empty).
        #[serde(default)]
        members: Vec<String>,
        /// Loss probability.
        rate: f64,
        /// Which packets (default both ways).
        #[serde(default)]
        direction: Direction,
    },
    /// Hold the packets exchanged with these members for `delay` plus a uniform extra of up to
    /// `jitter` (which also reorders them).
    Delay {
        /// The peers (every peer when empty).
        #[serde(default)]
        members: Vec<String>,
        /// Fixed extra delay.
        #[serde(with = "crate::config::duration")]
        delay: Duration,
        /// Uniform extra delay on top (default none).
        #[serde(default, with = "crate::config::duration")]
        jitter: Duration,
        /// Which packets (default both ways).
        #[serde(default)]
        direction: Direction,
    },
}

impl FaultRule {
    /// The members the rule names (empty: every peer).
    pub fn members(&self) -> &[String] {
        match self {
            FaultRule::Partition { members }
            | FaultRule::Loss { members, .. }
            | FaultRule::Delay { members, .. } => members,
        }
    }

    /// Whether the rule applies to a packet exchanged with a peer called `name` (when known)
    /// at `addr` (its `ip:port` text), going out (`outgoing`) or coming in.
    pub fn applies(&self, name: Option<&str>, addr: &str, outgoing: bool) -> bool {
        let direction = match self {
            FaultRule::Partition { .. } => Direction::Both,
            FaultRule::Loss { direction, .. } | FaultRule::Delay { direction, .. } => *direction,
        };
        let m = self.members();
        direction.covers(outgoing)
            && (m.is_empty()
                || m.iter()
                    .any(|x| Some(x.as_str()) == name || x.as_str() == addr))
    }

    /// Checks the rule; the error names the offending field. Nothing is applied on error.
    pub fn validate(&self) -> Result<(), &'static str> {
        match self {
            FaultRule::Partition { members } if members.is_empty() => {
                Err("members: a partition names at least one member")
            }
            FaultRule::Loss { rate, .. } if !(0.0..=1.0).contains(rate) => {
                Err("rate: want a probability within 0..=1")
            }
            _ if self.members().iter().any(String::is_empty) => {
                Err("members: a member name or address is empty")
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn rules_read_from_json_and_match_by_name_or_address() {
        let rules: Vec<FaultRule> = serde_json::from_str(
            r#"[{"kind": "partition", "members": ["b", "10.0.0.3:7946"]},
                {"kind": "loss", "rate": 0.25, "direction": "inbound"},
                {"kind": "delay", "members": ["c"], "delay": "50ms", "jitter": "10ms"}]"#,
        )
        .unwrap();
        assert_eq!(
            rules[0],
            FaultRule::Partition {
                members: vec!["b".into(), "10.0.0.3:7946".into()]
            }
        );
        assert!(rules[0].applies(Some("b"), "10.0.0.2:7946", true));
        assert!(rules[0].applies(None, "10.0.0.3:7946", false));
        assert!(!rules[0].applies(Some("c"), "10.0.0.4:7946", true));
        assert!(rules[1].applies(Some("x"), "1.2.3.4:1", false));
        assert!(!rules[1].applies(Some("x"), "1.2.3.4:1", true));
        assert_eq!(
            rules[2],
            FaultRule::Delay {
                members: vec!["c".into()],
                delay: Duration::from_millis(50),
                jitter: Duration::from_millis(10),
                direction: Direction::Both,
            }
        );
        for r in &rules {
            r.validate().unwrap();
            let back: FaultRule = serde_json::from_str(&serde_json::to_string(r).unwrap()).unwrap();
            assert_eq!(&back, r);
        }
    }

    #[test]
    fn bad_rules_are_refused_naming_the_field() {
        let e = serde_json::from_str::<FaultRule>(r#"{"kind": "partition", "member": ["b"]}"#)
            .unwrap_err();
        assert!(e.to_string().contains("member"), "{e}");
        let r = FaultRule::Loss {
            members: vec![],
            rate: 1.5,
            direction: Direction::Both,
        };
        assert!(r.validate().unwrap_err().starts_with("rate"));
        let r = FaultRule::Partition { members: vec![] };
        assert!(r.validate().unwrap_err().starts_with("members"));
    }
}
