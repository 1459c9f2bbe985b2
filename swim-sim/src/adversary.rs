//! The adversary (issue 13, `docs/security.md`): forged packets built with the core's own
//! codec, injected into a [`World`] from an address no node holds, as an attacker on the
//! network would send them without a keyring. No protocol logic lives here: each attack is a
//! list of datagrams and stream messages, and the nodes decide what to make of them.
//!
//! The attacker's address is [`World::attacker`]; fake members get addresses above it, so
//! whatever nodes send to them is counted in [`World::outside_traffic`] (the reflection and
//! amplification measure) and goes nowhere.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use swim_proto::wire::{self, Message, StreamHeader, StreamKind, Update};
use swim_proto::{Input, Instant, MemberState};

use crate::scenario::NodeId;
use crate::world::World;

/// One attack, as the table lists them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "attack", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Attack {
    /// One forged `dead` datagram about `victim` at `incarnation` (`u64::MAX`: nothing could
    /// out-refute it) to every node.
    ForgedDead {
        /// The member to evict.
        victim: NodeId,
        /// The claimed incarnation.
        incarnation: u64,
    },
    /// One forged `suspect` datagram about `victim` at `incarnation` to every node.
    ForgedSuspect {
        /// The member to accuse.
        victim: NodeId,
        /// The claimed incarnation.
        incarnation: u64,
    },
    /// A forged `alive` about `victim` at `incarnation` with the attacker's address, to
    /// every node (an address takeover).
    Takeover {
        /// The member to impersonate.
        victim: NodeId,
        /// The claimed incarnation.
        incarnation: u64,
    },
    /// `names` fake members introduced by gossip to `target`, `per_packet` to a datagram,
    /// spread evenly over `within`.
    Flood {
        /// The node flooded.
        target: NodeId,
        /// How many fake names.
        names: u32,
        /// Fake names per datagram.
        per_packet: u32,
        /// The flood's length.
        #[serde(with = "swim_proto::duration")]
        within: Duration,
    },
    /// Reflection: `pings` pings with their source forged to `victim_addr` (an address no
    /// node holds), and `joins` join requests naming it as the reply address, to `target`.
    Reflect {
        /// The node used as a reflector.
        target: NodeId,
        /// The third party the replies would hit.
        victim_addr: NodeId,
        /// Forged pings.
        pings: u32,
        /// Forged join requests.
        joins: u32,
    },
}

/// What an attack sent: the measure of amplification is what nodes sent outside the world
/// ([`World::outside_traffic`]) against these bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sent {
    /// Forged datagrams and stream messages.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl World {
    /// The attacker's address: the first one above every node's.
    pub fn attacker(&self) -> NodeId {
        self.len() as NodeId
    }

    /// Injects `attack` now (a flood spreads over its window); returns what was sent.
    pub fn attack(&mut self, attack: &Attack) -> Sent {
        let mut sent = Sent::default();
        let label = self.config_label();
        let from = self.attacker();
        let all: Vec<NodeId> = (0..self.len() as NodeId).collect();
        match *attack {
            Attack::ForgedDead {
                victim,
                incarnation,
            }
            | Attack::ForgedSuspect {
                victim,
                incarnation,
            }
            | Attack::Takeover {
                victim,
                incarnation,
            } => {
                let name = self.name(victim).to_string();
                let u = match attack {
                    Attack::ForgedDead { .. } => Update::Dead {
                        name: &name,
                        incarnation,
                        addr: victim,
                    },
                    Attack::ForgedSuspect { .. } => Update::Suspect {
                        name: &name,
                        incarnation,
                        addr: victim,
                        accuser: "mallory",
                    },
                    _ => Update::Alive {
                        name: &name,
                        incarnation,
                        addr: from,
                        meta: b"mallory",
                    },
                };
                let bytes = wire::encode_datagram(&label, &Message::Gossip, &[u]);
                for v in all.into_iter().filter(|&v| v != victim) {
                    self.forge(&mut sent, self.now(), v, from, bytes.clone(), false);
                }
            }
            Attack::Flood {
                target,
                names,
                per_packet,
                within,
            } => {
                let per = per_packet.max(1);
                let packets = names.div_ceil(per).max(1);
                let step = within / packets;
                let meta: &[u8] = b"";
                for p in 0..packets {
                    let first = p * per;
                    let fakes: Vec<(String, NodeId)> = (first..(first + per).min(names))
                        .map(|i| (format!("fake-{i}"), from + 1 + i))
                        .collect();
                    let ups: Vec<Update<'_, NodeId>> = fakes
                        .iter()
                        .map(|(name, addr)| Update::Alive {
                            name,
                            incarnation: 1,
                            addr: *addr,
                            meta,
                        })
                        .collect();
                    let bytes = wire::encode_datagram(&label, &Message::Gossip, &ups);
                    let at = self.now() + step * p;
                    self.forge(&mut sent, at, target, from, bytes, false);
                }
            }
            Attack::Reflect {
                target,
                victim_addr,
                pings,
                joins,
            } => {
                let name = self.name(target).to_string();
                for seq in 0..pings {
                    let msg = Message::Ping {
                        seq,
                        target: wire::name_tag(&name),
                        checksum: 0,
                    };
                    let bytes = wire::encode_datagram::<NodeId>(&label, &msg, &[]);
                    self.forge(&mut sent, self.now(), target, victim_addr, bytes, false);
                }
                for i in 0..joins {
                    let joiner = format!("joiner-{i}");
                    let header = StreamHeader {
                        sender: &joiner,
                        sender_addr: victim_addr,
                        kind: StreamKind::PushPull {
                            join: true,
                            reply: false,
                        },
                    };
                    let me = Update::Alive {
                        name: &joiner,
                        incarnation: 0,
                        addr: victim_addr,
                        meta: b"",
                    };
                    let bytes = wire::encode_stream(&label, &header, &[me]);
                    self.forge(&mut sent, self.now(), target, from, bytes, true);
                }
            }
        }
        sent
    }

    fn forge(
        &mut self,
        sent: &mut Sent,
        at: Instant,
        to: NodeId,
        from: NodeId,
        bytes: Vec<u8>,
        stream: bool,
    ) {
        sent.packets += 1;
        sent.bytes += bytes.len() as u64;
        let input = if stream {
            Input::Stream { from, bytes }
        } else {
            Input::Datagram { from, bytes }
        };
        self.input_at(at, to, input);
    }

    /// Whether every running node but `about` holds `about` in `state`.
    pub fn all_hold(&self, about: NodeId, state: MemberState) -> bool {
        let name = self.name(about).to_string();
        (0..self.len() as NodeId)
            .filter(|&v| v != about)
            .filter_map(|v| self.node(v))
            .all(|n| n.member(&name).is_some_and(|m| m.state == state))
    }
}
