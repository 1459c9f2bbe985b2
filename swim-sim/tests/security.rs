//! Encryption, cluster labels and hostile peers: a node with the wrong key or label can neither
//! join nor inject updates (and its attempts are counted); key rotation keeps a running cluster
//! connected; replayed old packets do no harm.

use swim_proto::wire::{self, Message, Update};
use swim_proto::{
    Command, Config, Event, Identity, Input, Instant, Keyring, MemberState, Node, NodeName, Output,
    SecretKey,
};
use swim_sim::{Fault, RunOptions, ScenarioBuilder, run};

fn key(b: u8) -> SecretKey {
    SecretKey::new([b; 32])
}

fn config(keyring: Option<Keyring>, label: &str) -> Config {
    let mut c = Config::lan();
    c.keyring = keyring;
    c.cluster_label = label.into();
    c
}

fn node(name: &str, addr: u32, c: Config) -> Node<u32> {
    Node::new(
        c,
        Identity::new(NodeName::new(name).unwrap(), addr),
        u64::from(addr),
    )
    .unwrap()
}

/// Delivers every packet `from` emitted to `to` (the only peer in these tests), repeatedly,
/// until nothing more is sent, and returns everything `to` reported.
fn exchange(
    a: &mut Node<u32>,
    b: &mut Node<u32>,
    first: Vec<Output<u32>>,
    now: Instant,
) -> Vec<Event<u32>> {
    let mut events = Vec::new();
    let mut pending: Vec<(u32, Output<u32>)> =
        first.into_iter().map(|o| (a.local().addr, o)).collect();
    for _ in 0..10 {
        let mut next = Vec::new();
        for (from, o) in pending.drain(..) {
            let (input, to) = match o {
                Output::SendDatagram { to, bytes } => (Input::Datagram { from, bytes }, to),
                Output::SendStream { to, bytes } => (Input::Stream { from, bytes }, to),
                Output::Event(e) => {
                    events.push(e);
                    continue;
                }
                _ => continue,
            };
            let target = if to == a.local().addr {
                &mut *a
            } else {
                &mut *b
            };
            let addr = target.local().addr;
            next.extend(target.handle(input, now).into_iter().map(|o| (addr, o)));
        }
        pending = next;
    }
    events
}

#[test]
fn nodes_sharing_a_key_join_and_every_packet_is_encrypted() {
    let ring = Keyring::new(key(1));
    let mut a = node("a", 1, config(Some(ring.clone()), "prod"));
    let mut b = node("b", 2, config(Some(ring), "prod"));
    let t = Instant::from_secs(1);
    a.handle(Input::Tick, t);
    let out = b.handle(Input::Command(Command::Join { seeds: vec![1] }), t);
    for o in &out {
        if let Output::SendStream { bytes, .. } = o {
            assert_eq!(
                wire::decode_stream::<u32>(bytes, b"prod").unwrap_err(),
                swim_proto::DecodeError::Encrypted
            );
            assert!(
                !bytes.windows(1).any(|w| w == b"b") || bytes.len() > 28,
                "payload is not plaintext"
            );
        }
    }
    let events = exchange(&mut b, &mut a, out, t);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::JoinCompleted { .. }))
    );
    assert_eq!(a.member("b").unwrap().state, MemberState::Alive);
    assert_eq!(b.member("a").unwrap().state, MemberState::Alive);
}

/// A node with the wrong key, the wrong label, or no key at all cannot join an encrypted
/// node, and each attempt is dropped and counted.
#[test]
fn wrong_key_wrong_label_or_plaintext_cannot_join_or_inject() {
    let t = Instant::from_secs(1);
    let cases = [
        ("wrong key", config(Some(Keyring::new(key(9))), "prod")),
        ("wrong label", config(Some(Keyring::new(key(1))), "staging")),
        ("plaintext", config(None, "prod")),
    ];
    for (what, intruder_config) in cases {
        let mut a = node("a", 1, config(Some(Keyring::new(key(1))), "prod"));
        let mut x = node("x", 2, intruder_config);
        a.handle(Input::Tick, t);
        let out = x.handle(Input::Command(Command::Join { seeds: vec![1] }), t);
        let events = exchange(&mut x, &mut a, out, t);
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, Event::JoinCompleted { .. })),
            "{what}: joined"
        );
        assert!(a.member("x").is_none(), "{what}: intruder learned");
        let d = a.stats().dropped;
        assert_eq!(
            d.decrypt_failed + d.not_encrypted + d.label_mismatch,
            1,
            "{what}: attempt counted: {d:?}"
        );
        // Forged gossip claiming a member of the cluster is dead changes nothing either.
        a.handle(
            Input::Datagram {
                from: 3,
                bytes: wire::encode_datagram(
                    b"prod",
                    &Message::Gossip,
                    &[Update::Alive {
                        name: "c",
                        incarnation: 1,
                        addr: 3,
                        meta: b"",
                    }],
                ),
            },
            t,
        );
        let forged = wire::encode_datagram(
            b"prod",
            &Message::Gossip,
            &[Update::Dead {
                name: "c",
                incarnation: 1,
                addr: 3,
            }],
        );
        let forged = Keyring::new(key(9))
            .encrypt_packet(&forged, [1; 12])
            .unwrap();
        a.handle(
            Input::Datagram {
                from: 2,
                bytes: forged,
            },
            t,
        );
        assert!(
            a.member("c").is_none(),
            "{what}: plaintext gossip was applied"
        );
        assert!(a.stats().dropped.total() >= 3, "{what}");
    }
}

/// Replaying a captured, validly encrypted old packet does no harm: stale claims lose to the
/// precedence rule, a replayed ping only earns an ack.
#[test]
fn replayed_old_packets_do_no_harm() {
    let ring = Keyring::new(key(1));
    let mut a = node("a", 1, config(Some(ring.clone()), ""));
    let t0 = Instant::from_secs(1);
    // A valid old packet: "c is suspect at incarnation 0", as some member once gossiped it.
    let old = wire::encode_datagram(
        b"",
        &Message::Gossip,
        &[
            Update::Alive {
                name: "c",
                incarnation: 0,
                addr: 3,
                meta: b"",
            },
            Update::Suspect {
                name: "c",
                incarnation: 0,
                addr: 3,
                accuser: "b",
            },
        ],
    );
    let old = ring.encrypt_packet(&old, [5; 12]).unwrap();
    a.handle(
        Input::Datagram {
            from: 2,
            bytes: old.clone(),
        },
        t0,
    );
    assert_eq!(a.member("c").unwrap().state, MemberState::Suspect);
    // c refutes at incarnation 1.
    let refute = wire::encode_datagram(
        b"",
        &Message::Gossip,
        &[Update::Alive {
            name: "c",
            incarnation: 1,
            addr: 3,
            meta: b"",
        }],
    );
    a.handle(
        Input::Datagram {
            from: 3,
            bytes: ring.encrypt_packet(&refute, [6; 12]).unwrap(),
        },
        t0,
    );
    assert_eq!(a.member("c").unwrap().state, MemberState::Alive);
    // The attacker replays the old packet many times. (Time stands still: with nobody to answer
    // its probes, the node would otherwise come to suspect c on its own, rightly.)
    for _ in 0..100 {
        let out = a.handle(
            Input::Datagram {
                from: 2,
                bytes: old.clone(),
            },
            t0,
        );
        assert!(
            !out.iter()
                .any(|o| matches!(o, Output::Event(Event::MemberSuspected { .. })))
        );
    }
    assert_eq!(a.member("c").unwrap().state, MemberState::Alive);
    assert_eq!(a.member("c").unwrap().incarnation, 1);
    assert!(a.stats().updates_stale >= 200);
}

#[test]
fn key_commands_need_a_keyring_and_keep_the_primary() {
    let mut plain = node("p", 1, config(None, ""));
    let mut out = Vec::new();
    assert_eq!(
        plain.command(Command::InstallKey(key(2)), Instant::ZERO, &mut out),
        Err(swim_proto::CommandError::NoKeyring)
    );
    let mut n = node("n", 2, config(Some(Keyring::new(key(1))), ""));
    n.command(Command::InstallKey(key(2)), Instant::ZERO, &mut out)
        .unwrap();
    assert!(
        n.command(Command::RemoveKey(key(1)), Instant::ZERO, &mut out)
            .is_err(),
        "primary stays"
    );
    n.command(Command::UseKey(key(2)), Instant::ZERO, &mut out)
        .unwrap();
    n.command(Command::RemoveKey(key(1)), Instant::ZERO, &mut out)
        .unwrap();
    assert_eq!(n.keyring().unwrap().keys(), &[key(2)]);
}

/// The documented rotation on a running 40-node encrypted cluster: install the new key
/// everywhere, make it primary everywhere, remove the old one. Nobody is suspected, nothing
/// is dropped, views stay converged, and a crash during the rotation is still detected.
#[test]
fn key_rotation_keeps_a_running_cluster_connected() {
    let n = 40;
    let mut c = Config::lan();
    c.keyring = Some(Keyring::new(key(1)));
    let mut b = ScenarioBuilder::new(n)
        .seconds(150)
        .config(c)
        .crash(50.0, 17);
    for node in 0..n as u32 {
        let stagger = f64::from(node) * 0.1;
        b = b
            .fault(
                20.0 + stagger,
                Fault::Command {
                    node,
                    command: Command::InstallKey(key(2)),
                },
            )
            .fault(
                40.0 + stagger,
                Fault::Command {
                    node,
                    command: Command::UseKey(key(2)),
                },
            )
            .fault(
                60.0 + stagger,
                Fault::Command {
                    node,
                    command: Command::RemoveKey(key(1)),
                },
            );
    }
    let r = run(&b.build(), 11, RunOptions::default());
    assert_eq!(r.violation, None);
    assert_eq!(r.false_positives.suspect, 0, "rotation caused suspicions");
    assert_eq!(r.false_positives.dead, 0);
    assert_eq!(
        r.packets_dropped, 0,
        "a packet could not be read during the rotation"
    );
    assert_eq!(
        r.detection.all_dead_ms.count,
        n - 1,
        "the crash was detected by every live node"
    );
    assert!(r.converged);
}
