//! Single-node behaviour under hostile or unusual input: bounds, refutation, errors.

use std::time::Duration;

use proptest::prelude::*;
use swim_proto::wire::{self, Message, Update};
use swim_proto::{
    Command, CommandError, Config, DecodeError, DropReason, Event, Identity, Input, Instant,
    MemberState, Node, NodeName, Output,
};

fn node(name: &str, addr: u32, config: Config) -> Node<u32> {
    Node::new(config, Identity::new(NodeName::new(name).unwrap(), addr), 1).unwrap()
}

fn gossip(updates: &[Update<'_, u32>]) -> Vec<u8> {
    wire::encode_datagram(b"", &Message::Gossip, updates)
}

fn alive<'a>(name: &'a str, incarnation: u64, addr: u32) -> Update<'a, u32> {
    Update::Alive {
        name,
        incarnation,
        addr,
        meta: b"",
    }
}

fn events(out: &[Output<u32>]) -> Vec<&Event<u32>> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn garbage_is_dropped_counted_and_reported() {
    let mut n = node("a", 0, Config::lan());
    let t = Instant::from_secs(1);
    let out = n.handle(
        Input::Datagram {
            from: 9,
            bytes: vec![wire::PROTOCOL_VERSION << 4, 0xff, 0xff],
        },
        t,
    );
    assert!(
        events(&out)
            .iter()
            .any(|e| matches!(e, Event::PacketDropped { from: 9, .. }))
    );
    let out = n.handle(
        Input::Datagram {
            from: 9,
            bytes: vec![7, 0],
        },
        t,
    );
    assert!(events(&out).iter().any(|e| matches!(
        e,
        Event::PacketDropped {
            reason: DropReason::Decode(DecodeError::UnsupportedVersion(7)),
            ..
        }
    )));
    n.handle(
        Input::Stream {
            from: 9,
            bytes: vec![],
        },
        t,
    );
    let d = n.stats().dropped;
    assert_eq!((d.malformed, d.unsupported_version), (2, 1));
    assert_eq!(n.members().count(), 0, "nothing learned from garbage");
}

#[test]
fn packets_from_another_cluster_are_dropped() {
    let mut cfg = Config::lan();
    cfg.cluster_label = "prod".into();
    let mut n = node("a", 0, cfg);
    let bytes = wire::encode_datagram(b"staging", &Message::Gossip, &[alive("x", 1, 5)]);
    n.handle(Input::Datagram { from: 5, bytes }, Instant::ZERO);
    assert_eq!(n.stats().dropped.label_mismatch, 1);
    assert!(n.member("x").is_none());
}

/// A packet with one bad update is dropped whole: nothing in it is applied.
#[test]
fn one_bad_update_drops_the_whole_packet() {
    let mut n = node("a", 0, Config::lan());
    let big = vec![0u8; 600];
    let bytes = gossip(&[
        alive("x", 1, 5),
        Update::Alive {
            name: "y",
            incarnation: 1,
            addr: 6,
            meta: &big,
        },
    ]);
    n.handle(Input::Datagram { from: 5, bytes }, Instant::ZERO);
    assert_eq!(n.stats().dropped.metadata_too_large, 1);
    assert!(n.member("x").is_none());
}

/// Hostile input cannot make a node hold itself dead: it refutes any claim at or above its
/// incarnation, and ignores older ones.
#[test]
fn dead_about_self_is_refuted_and_stale_claims_ignored() {
    let mut n = node("a", 0, Config::lan());
    let t = Instant::ZERO;
    n.handle(Input::Command(Command::UpdateMetadata(b"m".to_vec())), t);
    assert_eq!(n.local().incarnation, 1);
    let stale = gossip(&[Update::Dead {
        name: "a",
        incarnation: 0,
        addr: 0,
    }]);
    n.handle(
        Input::Datagram {
            from: 3,
            bytes: stale,
        },
        t,
    );
    assert_eq!(
        n.local().incarnation,
        1,
        "a claim below our incarnation is ignored"
    );
    let dead = gossip(&[Update::Dead {
        name: "a",
        incarnation: 5,
        addr: 0,
    }]);
    let out = n.handle(
        Input::Datagram {
            from: 3,
            bytes: dead,
        },
        t,
    );
    assert_eq!(n.local().incarnation, 6);
    assert_eq!(n.local().state, MemberState::Alive);
    assert!(events(&out).iter().any(|e| matches!(
        e,
        Event::LocalRefuted {
            claim: MemberState::Dead,
            incarnation: 6
        }
    )));
    n.check_invariants();
}

#[test]
fn suspicion_about_self_raises_local_health_and_is_reported() {
    let mut n = node("a", 0, Config::lan());
    let s = gossip(&[Update::Suspect {
        name: "a",
        incarnation: 0,
        addr: 0,
        accuser: "b",
    }]);
    let out = n.handle(Input::Datagram { from: 3, bytes: s }, Instant::ZERO);
    assert!(
        events(&out)
            .iter()
            .any(|e| matches!(e, Event::LocalSuspected { incarnation: 0, .. }))
    );
    assert_eq!(
        n.health_score(),
        1,
        "Lifeguard: refuting a suspicion raises the health score"
    );
    assert_eq!(n.stats().local_refutations, 1);
}

#[test]
fn commands_reject_misuse_without_changing_state() {
    let mut n = node("a", 0, Config::lan());
    let mut out = Vec::new();
    let t = Instant::ZERO;
    let too_big = vec![0; 513];
    assert_eq!(
        n.command(Command::UpdateMetadata(too_big), t, &mut out),
        Err(CommandError::MetadataTooLarge { len: 513, max: 512 })
    );
    assert_eq!(n.local().incarnation, 0);
    assert_eq!(
        n.command(Command::Join { seeds: vec![0] }, t, &mut out),
        Err(CommandError::NoSeeds)
    );
    assert_eq!(n.command(Command::Leave, t, &mut out), Ok(()));
    assert_eq!(
        n.command(Command::Leave, t, &mut out),
        Err(CommandError::Left)
    );
    // Through handle, the same rejection arrives as an event.
    let out = n.handle(Input::Command(Command::Leave), t);
    assert!(
        events(&out)
            .iter()
            .any(|e| matches!(e, Event::CommandRejected(CommandError::Left)))
    );
}

#[test]
fn invalid_config_and_identity_name_the_field() {
    let mut cfg = Config::lan();
    cfg.probe_timeout = Duration::from_secs(2);
    let err = Node::new(cfg, Identity::new(NodeName::new("a").unwrap(), 0u32), 1)
        .err()
        .unwrap();
    assert_eq!(err.field, "probe_timeout");
    let mut cfg = Config::lan();
    cfg.max_name_len = 3;
    let err = Node::new(
        cfg,
        Identity::new(NodeName::new("long-name").unwrap(), 0u32),
        1,
    )
    .err()
    .unwrap();
    assert_eq!(err.field, "identity.name");
}

/// A flood of announcements from unknown members cannot grow the table past its cap, nor the
/// broadcast queue past its cap; every datagram stays within max_packet_size.
#[test]
fn floods_cannot_grow_tables_or_packets_without_bound() {
    let mut cfg = Config::lan();
    cfg.max_members = 300;
    cfg.max_broadcast_queue = 100;
    // One source floods here; the per-source introduction limit is tested in abuse.rs.
    cfg.introductions_per_source = 1_000_000;
    let mut n = node("a", 0, cfg.clone());
    let mut t = Instant::ZERO;
    let meta = vec![7u8; 200];
    for batch in 0..200u32 {
        let names: Vec<String> = (0..5).map(|i| format!("flood-{batch}-{i}")).collect();
        let ups: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, nm)| Update::Alive {
                name: nm,
                incarnation: 1,
                addr: 1000 + batch * 5 + i as u32,
                meta: &meta,
            })
            .collect();
        let out = n.handle(
            Input::Datagram {
                from: 9,
                bytes: gossip(&ups),
            },
            t,
        );
        for o in &out {
            if let Output::SendDatagram { bytes, .. } = o {
                assert!(bytes.len() <= cfg.max_packet_size);
            }
        }
        t = t + Duration::from_millis(50);
        n.check_invariants();
    }
    assert_eq!(n.members().count(), 300);
    assert!(n.pending_broadcasts() <= 100);
    assert_eq!(n.stats().dropped.member_table_full, 700);
    assert!(n.stats().broadcasts_dropped > 0);
}

/// Issue 12 (healed partitions): a death claim heard about a member this node holds alive
/// makes it a suspect, not dead; the suspect hears of it at once (a datagram to it); "left"
/// stays immediate.
#[test]
fn a_death_claim_about_a_member_held_alive_is_an_accusation() {
    let mut n = node("a", 0, Config::lan());
    let t = Instant::ZERO;
    n.handle(
        Input::Datagram {
            from: 1,
            bytes: gossip(&[alive("b", 1, 1), alive("c", 3, 2)]),
        },
        t,
    );
    let out = n.handle(
        Input::Datagram {
            from: 1,
            bytes: gossip(&[Update::Dead {
                name: "c",
                incarnation: 3,
                addr: 2,
            }]),
        },
        t,
    );
    assert_eq!(n.member("c").unwrap().state, MemberState::Suspect);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::SendDatagram { to: 2, .. })),
        "the suspect is told at once"
    );
    assert_eq!(n.stats().hearsay_deaths, 1);
    n.handle(
        Input::Datagram {
            from: 1,
            bytes: gossip(&[Update::Left {
                name: "b",
                incarnation: 1,
                addr: 1,
            }]),
        },
        t,
    );
    assert_eq!(n.member("b").unwrap().state, MemberState::Left);
}

/// At the member cap, tombstones make way for live members.
#[test]
fn tombstones_are_evicted_for_live_members_at_the_cap() {
    let mut cfg = Config::lan();
    cfg.max_members = 4;
    let mut n = node("a", 0, cfg);
    let t = Instant::ZERO;
    let ups = [
        alive("b", 1, 1),
        alive("c", 1, 2),
        alive("d", 1, 3),
        alive("e", 1, 4),
    ];
    n.handle(
        Input::Datagram {
            from: 1,
            bytes: gossip(&ups),
        },
        t,
    );
    n.handle(
        Input::Datagram {
            from: 1,
            bytes: gossip(&[Update::Left {
                name: "c",
                incarnation: 1,
                addr: 2,
            }]),
        },
        t,
    );
    let out = n.handle(
        Input::Datagram {
            from: 1,
            bytes: gossip(&[alive("f", 1, 5)]),
        },
        t,
    );
    assert!(n.member("f").is_some());
    assert!(n.member("c").is_none());
    assert!(
        events(&out)
            .iter()
            .any(|e| matches!(e, Event::MemberRemoved(m) if m.name.as_str() == "c"))
    );
}

#[test]
fn tombstones_are_reaped_after_retention() {
    let mut n = node("a", 0, Config::lan());
    let t = Instant::from_secs(1);
    n.handle(
        Input::Datagram {
            from: 1,
            bytes: gossip(&[alive("b", 1, 1)]),
        },
        t,
    );
    n.handle(
        Input::Datagram {
            from: 1,
            bytes: gossip(&[Update::Left {
                name: "b",
                incarnation: 1,
                addr: 1,
            }]),
        },
        t,
    );
    assert_eq!(n.member("b").unwrap().state, MemberState::Left);
    // Stale gossip within retention cannot resurrect it.
    n.handle(
        Input::Datagram {
            from: 1,
            bytes: gossip(&[alive("b", 1, 1)]),
        },
        t + Duration::from_secs(30),
    );
    assert_eq!(n.member("b").unwrap().state, MemberState::Left);
    let out = n.handle(Input::Tick, t + Duration::from_secs(61));
    assert!(n.member("b").is_none());
    assert!(
        events(&out)
            .iter()
            .any(|e| matches!(e, Event::MemberRemoved(_)))
    );
}

#[test]
fn ping_for_another_node_is_not_answered() {
    let mut n = node("a", 0, Config::lan());
    let bytes = wire::encode_datagram::<u32>(
        b"",
        &Message::Ping {
            seq: 1,
            target: wire::name_tag("someone-else"),
            checksum: 0,
        },
        &[],
    );
    let out = n.handle(Input::Datagram { from: 4, bytes }, Instant::ZERO);
    assert!(!out.iter().any(|o| matches!(o, Output::SendDatagram { .. })));
    assert_eq!(n.stats().dropped.ping_for_other_node, 1);
    let bytes = wire::encode_datagram::<u32>(
        b"",
        &Message::Ping {
            seq: 2,
            target: wire::name_tag("a"),
            checksum: 0,
        },
        &[],
    );
    // A member pings from its held address (a stranger's ack carries no checksum, issue 13).
    n.handle(
        Input::Datagram {
            from: 4,
            bytes: gossip(&[alive("p", 1, 4)]),
        },
        Instant::ZERO,
    );
    let out = n.handle(Input::Datagram { from: 4, bytes }, Instant::ZERO);
    let ack = out.iter().find_map(|o| match o {
        Output::SendDatagram { to: 4, bytes } => Some(
            wire::decode_datagram::<u32>(bytes, b"")
                .unwrap()
                .message
                .clone(),
        ),
        _ => None,
    });
    assert_eq!(
        ack,
        Some(Message::Ack {
            seq: 2,
            checksum: wire::short_checksum(n.checksum())
        }),
        "the ack carries the node's membership checksum"
    );
}

/// Lifeguard §IV-A: a helper that gets no answer from the target sends a nack to the requester.
#[test]
fn relay_without_answer_sends_a_nack() {
    let mut n = node("helper", 0, Config::lan());
    let t = Instant::ZERO;
    // Relays go only to members held at the address named (issue 13).
    n.handle(
        Input::Datagram {
            from: 5,
            bytes: gossip(&[alive("t", 1, 5)]),
        },
        t,
    );
    let req = wire::encode_datagram(
        b"",
        &Message::PingReq {
            seq: 77,
            target: "t",
            target_addr: 5u32,
            want_nack: true,
        },
        &[],
    );
    let out = n.handle(
        Input::Datagram {
            from: 3,
            bytes: req,
        },
        t,
    );
    let ping_seq = out
        .iter()
        .find_map(|o| match o {
            Output::SendDatagram { to: 5, bytes } => {
                match wire::decode_datagram::<u32>(bytes, b"").unwrap().message {
                    Message::Ping { seq, target, .. } if target == wire::name_tag("t") => Some(seq),
                    _ => None,
                }
            }
            _ => None,
        })
        .expect("helper pings the target");
    let out = n.handle(Input::Tick, t + Duration::from_millis(400));
    let nack = out.iter().any(|o| {
        matches!(o, Output::SendDatagram { to: 3, bytes }
        if wire::decode_datagram::<u32>(bytes, b"").unwrap().message == Message::Nack { seq: 77 })
    });
    assert!(nack, "nack to requester after the probe timeout");
    // A late ack for the relayed ping is now unexpected, not relayed.
    let ack = wire::encode_datagram::<u32>(
        b"",
        &Message::Ack {
            seq: ping_seq,
            checksum: 0,
        },
        &[],
    );
    let out = n.handle(
        Input::Datagram {
            from: 5,
            bytes: ack,
        },
        t + Duration::from_millis(700),
    );
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::SendDatagram { to: 3, .. }))
    );
}

#[test]
fn time_going_backwards_is_clamped() {
    let mut n = node("a", 0, Config::lan());
    n.handle(Input::Tick, Instant::from_secs(10));
    n.handle(Input::Tick, Instant::from_secs(5));
    assert_eq!(n.now(), Instant::from_secs(10));
    assert!(n.next_deadline() >= Instant::from_secs(10));
}

/// `Instant::MAX` is "never": ticking there returns instead of re-arming timers forever.
#[test]
fn a_tick_at_the_end_of_time_returns() {
    let mut n = node("a", 0, Config::lan());
    n.handle(
        Input::Command(Command::Join { seeds: vec![1] }),
        Instant::ZERO,
    );
    n.handle(Input::Tick, Instant::MAX);
    n.handle(Input::Tick, Instant::MAX);
    assert_eq!(n.now(), Instant::MAX);
}

#[derive(Clone, Debug)]
struct Claim {
    member: u8,
    incarnation: u64,
    state: u8,
}

fn claim() -> impl Strategy<Value = Claim> {
    (0u8..4, 0u64..4, 0u8..3).prop_map(|(member, incarnation, state)| Claim {
        member,
        incarnation,
        state,
    })
}

fn table_after(claims: &[Claim]) -> Vec<(String, u64, MemberState, u32)> {
    let mut n = node("me", 0, Config::lan());
    let names: Vec<String> = claims.iter().map(|c| format!("m{}", c.member)).collect();
    for (c, name) in claims.iter().zip(&names) {
        let addr = 100 + u32::from(c.member);
        let u = match c.state {
            0 => Update::Alive {
                name,
                incarnation: c.incarnation,
                addr,
                meta: b"",
            },
            1 => Update::Suspect {
                name,
                incarnation: c.incarnation,
                addr,
                accuser: "z",
            },
            _ => Update::Left {
                name,
                incarnation: c.incarnation,
                addr,
            },
        };
        n.handle(
            Input::Datagram {
                from: 1,
                bytes: gossip(&[u]),
            },
            Instant::ZERO,
        );
    }
    let mut t: Vec<_> = n
        .members()
        .map(|m| (m.name.to_string(), m.incarnation, m.state, m.addr))
        .collect();
    t.sort();
    t
}

proptest! {
    /// SWIM §4.2 precedence is a max-register per member: any order of the same claims gives
    /// the same table. "Dead" claims are left out: heard from another node about a member held
    /// active they only start a suspicion (issue 12), so their effect depends on what is held
    /// (`a_death_claim_about_a_member_held_alive_is_an_accusation`).
    #[test]
    fn applying_updates_in_any_order_gives_the_same_table(
        claims in proptest::collection::vec(claim(), 1..24),
        shuffle in any::<u64>(),
    ) {
        let mut shuffled = claims.clone();
        let mut s = shuffle | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(table_after(&claims), table_after(&shuffled));
    }

    /// Arbitrary datagrams and streams never panic a node or break its invariants.
    #[test]
    fn arbitrary_input_never_breaks_a_node(packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..20)) {
        let mut n = node("a", 0, Config::lan());
        for (i, mut p) in packets.into_iter().enumerate() {
            if i % 2 == 0 && p.len() >= 2 { p[0] = 1; p[1] = 0; } // well-framed half the time
            let t = Instant::from_millis(i as u64 * 100);
            n.handle(Input::Datagram { from: 1, bytes: p.clone() }, t);
            n.handle(Input::Stream { from: 1, bytes: p }, t);
            n.check_invariants();
        }
    }
}

/// A confirmation can shrink a suspicion's timeout below the time already elapsed (Lifeguard
/// measures it from the suspicion's start): the member is declared dead in that same call, and
/// the next deadline the node asks for is never in the past.
#[test]
fn a_confirmation_that_makes_a_suspicion_overdue_fires_at_once() {
    let mut n = node("me", 0, Config::lan());
    let names: Vec<String> = (1..=5).map(|i| format!("m{i}")).collect();
    let ups: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, nm)| alive(nm, 1, i as u32 + 1))
        .collect();
    let t0 = Instant::from_secs(1);
    n.handle(
        Input::Datagram {
            from: 1,
            bytes: gossip(&ups),
        },
        t0,
    );
    let suspect = |by: &'static str| {
        gossip(&[Update::Suspect {
            name: "m1",
            incarnation: 1,
            addr: 1,
            accuser: by,
        }])
    };
    n.handle(
        Input::Datagram {
            from: 2,
            bytes: suspect("m2"),
        },
        t0,
    );
    // n = 6: minimum 4 s, maximum 24 s, two confirmations wanted.
    let later = t0 + Duration::from_secs(10);
    n.handle(
        Input::Datagram {
            from: 3,
            bytes: suspect("m3"),
        },
        later,
    );
    assert_eq!(
        n.member("m1").unwrap().state,
        MemberState::Suspect,
        "one confirmation: ~13 s"
    );
    let out = n.handle(
        Input::Datagram {
            from: 4,
            bytes: suspect("m4"),
        },
        later,
    );
    assert_eq!(
        n.member("m1").unwrap().state,
        MemberState::Dead,
        "two confirmations: 4 s, long past"
    );
    assert!(
        events(&out)
            .iter()
            .any(|e| matches!(e, Event::MemberFailed(m) if m.name.as_str() == "m1"))
    );
    let tick = out
        .iter()
        .rev()
        .find_map(|o| match o {
            Output::TickAt(t) => Some(*t),
            _ => None,
        })
        .unwrap();
    assert!(tick > later, "next deadline {tick} not after now {later}");
}

/// Partition healing also tries the join seeds: a seed that is no longer an active member (on
/// the other side of a split, say) gets a heal snapshot.
#[test]
fn heal_rounds_try_seeds_that_are_not_members() {
    let mut cfg = Config::local();
    cfg.heal_base = 1_000; // attempt every round, whatever the cluster size
    let mut n = node("a", 0, cfg.clone());
    let t = Instant::ZERO;
    n.handle(Input::Command(Command::Join { seeds: vec![9] }), t);
    // The join is answered by "b" at 1, not by anyone at the seed's address.
    n.handle(
        Input::Datagram {
            from: 1,
            bytes: gossip(&[alive("b", 0, 1)]),
        },
        t,
    );
    let mut heals_to_seed = 0;
    let mut now = t;
    for _ in 0..40 {
        now = now + Duration::from_secs(1);
        for o in n.handle(Input::Tick, now) {
            if let Output::SendStream { to: 9, bytes } = o
                && let Ok(m) = wire::decode_stream::<u32>(&bytes, b"")
                && matches!(m.header.kind, wire::StreamKind::Heal { reply: false })
            {
                heals_to_seed += 1;
            }
        }
    }
    assert!(heals_to_seed >= 1, "no heal snapshot to the lost seed");
    assert!(n.stats().heals_sent >= heals_to_seed);
}
