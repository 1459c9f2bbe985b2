//! Partition healing at the node level: a heal snapshot turns "dead" claims about members the
//! receiver holds alive into suspicions (they refute instead of dying), revives the healer, and
//! is answered with the receiver's own state.

use swim_proto::wire::{self, StreamHeader, StreamKind, Update};
use swim_proto::{Config, Event, Identity, Input, Instant, MemberState, Node, NodeName, Output};

#[test]
fn heal_snapshot_suspects_instead_of_killing_and_is_answered() {
    let mut b = Node::new(
        Config::lan(),
        Identity::new(NodeName::new("b").unwrap(), 2u32),
        1,
    )
    .unwrap();
    let t = Instant::from_secs(100);
    // b's side of a split: it knows c alive and holds a (the other side) dead.
    let mine = wire::encode_datagram(
        b"",
        &wire::Message::Gossip,
        &[Update::Alive {
            name: "c",
            incarnation: 4,
            addr: 3,
            meta: b"",
        }],
    );
    b.handle(
        Input::Datagram {
            from: 3,
            bytes: mine,
        },
        t,
    );
    // b never held a alive, so the claim is a tombstone, not an accusation (a death claim
    // about a member held alive only starts a suspicion: issue 12).
    let dead_a = wire::encode_datagram(
        b"",
        &wire::Message::Gossip,
        &[Update::Dead {
            name: "a",
            incarnation: 7,
            addr: 1,
        }],
    );
    b.handle(
        Input::Datagram {
            from: 3,
            bytes: dead_a,
        },
        t,
    );
    assert_eq!(b.member("a").unwrap().state, MemberState::Dead);

    // a heals: its snapshot says a is alive (refuted, incarnation 8) and c and b are dead.
    let header = StreamHeader {
        kind: StreamKind::Heal { reply: false },
        sender: "a",
        sender_addr: 1u32,
    };
    let snapshot = wire::encode_stream(
        b"",
        &header,
        &[
            Update::Alive {
                name: "a",
                incarnation: 8,
                addr: 1,
                meta: b"",
            },
            Update::Dead {
                name: "c",
                incarnation: 4,
                addr: 3,
            },
            Update::Dead {
                name: "b",
                incarnation: 0,
                addr: 2,
            },
        ],
    );
    let out = b.handle(
        Input::Stream {
            from: 1,
            bytes: snapshot,
        },
        t,
    );
    assert_eq!(
        b.member("a").unwrap().state,
        MemberState::Alive,
        "the healer is back"
    );
    assert_eq!(
        b.member("c").unwrap().state,
        MemberState::Suspect,
        "c is suspected, not killed"
    );
    assert!(
        b.local().incarnation > 0,
        "b refuted the claim that it is dead"
    );
    assert!(out.iter().any(|o| matches!(o, Output::Event(Event::MemberSuspected { accuser, .. }) if accuser.as_str() == "a")));
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Event(Event::MemberFailed(_))))
    );
    let reply = out.iter().find_map(|o| match o {
        Output::SendStream { to: 1, bytes } => {
            Some(wire::decode_stream::<u32>(bytes, b"").unwrap().header.kind)
        }
        _ => None,
    });
    assert_eq!(reply, Some(StreamKind::Heal { reply: true }));
    assert_eq!(b.stats().heals_received, 1);
}

/// Healing attempts go only to remembered failed members, about `heal_base` per interval
/// cluster-wide: a 3-node view makes one per interval on average, never more than one per round.
#[test]
fn a_node_tries_to_heal_with_members_it_holds_failed() {
    let mut cfg = Config::lan();
    cfg.heal_base = 1000; // always attempt, for the test
    let mut a = Node::new(cfg, Identity::new(NodeName::new("a").unwrap(), 1u32), 5).unwrap();
    let t = Instant::from_secs(1);
    let g = |u: Update<'_, u32>| wire::encode_datagram(b"", &wire::Message::Gossip, &[u]);
    a.handle(
        Input::Datagram {
            from: 2,
            bytes: g(Update::Alive {
                name: "x",
                incarnation: 1,
                addr: 9,
                meta: b"",
            }),
        },
        t,
    );
    a.handle(
        Input::Datagram {
            from: 2,
            bytes: g(Update::Dead {
                name: "x",
                incarnation: 1,
                addr: 9,
            }),
        },
        t,
    );
    let mut heals_to_x = 0;
    let mut now = t;
    for _ in 0..4 {
        now = now + std::time::Duration::from_secs(31);
        for o in a.handle(Input::Tick, now) {
            if let Output::SendStream { to: 9, bytes } = o {
                assert_eq!(
                    wire::decode_stream::<u32>(&bytes, b"").unwrap().header.kind,
                    StreamKind::Heal { reply: false }
                );
                heals_to_x += 1;
            }
        }
    }
    assert_eq!(heals_to_x, 4, "one attempt per heal interval");
    assert_eq!(a.stats().heals_sent, 4);
}
