//! Forged claims (issue 13, `docs/security.md`): one packet from a non-member must not evict
//! a member, pin it dead beyond refutation, or move it to another address. Single-node tests
//! feed packets built with the core's own codec; cluster tests inject them into the harness.

use std::time::Duration;

use swim_proto::wire::{self, Message, StreamHeader, StreamKind, Update};
use swim_proto::{Config, Event, Identity, Input, Instant, MemberState, Node, NodeName, Output};
use swim_tests::{Cluster, is_failed_about};

/// Where the attacker sends from: no member's address.
const ATTACKER: u32 = 9_999;

fn node(name: &str, addr: u32) -> Node<u32> {
    Node::new(
        Config::lan(),
        Identity::new(NodeName::new(name).unwrap(), addr),
        1,
    )
    .unwrap()
}

fn gossip(updates: &[Update<'_, u32>]) -> Vec<u8> {
    wire::encode_datagram(b"", &Message::Gossip, updates)
}

fn alive(name: &str, incarnation: u64, addr: u32) -> Update<'_, u32> {
    Update::Alive {
        name,
        incarnation,
        addr,
        meta: b"",
    }
}

fn dead(name: &str, incarnation: u64, addr: u32) -> Update<'_, u32> {
    Update::Dead {
        name,
        incarnation,
        addr,
    }
}

fn suspect<'a>(name: &'a str, incarnation: u64, addr: u32, accuser: &'a str) -> Update<'a, u32> {
    Update::Suspect {
        name,
        incarnation,
        addr,
        accuser,
    }
}

fn send(n: &mut Node<u32>, from: u32, updates: &[Update<'_, u32>]) -> Vec<Output<u32>> {
    n.handle(
        Input::Datagram {
            from,
            bytes: gossip(updates),
        },
        Instant::ZERO,
    )
}

/// `a` holding `x` alive at incarnation 1, address 5 (introduced by `x` itself).
fn knows_x() -> Node<u32> {
    let mut n = node("a", 0);
    send(&mut n, 5, &[alive("x", 1, 5)]);
    assert_eq!(n.member("x").unwrap().state, MemberState::Alive);
    n
}

#[test]
fn forged_dead_far_above_the_held_incarnation_is_dropped_and_counted() {
    let mut n = knows_x();
    for claim in [dead("x", u64::MAX, 5), suspect("x", u64::MAX, 5, "m")] {
        send(&mut n, ATTACKER, &[claim]);
    }
    let x = n.member("x").unwrap();
    assert_eq!((x.state, x.incarnation), (MemberState::Alive, 1));
    assert_eq!(n.stats().dropped.incarnation_jump, 2);
}

#[test]
fn a_claim_within_the_window_is_merged_as_swim_says() {
    let mut n = knows_x();
    let jump = n.config().max_incarnation_jump;
    send(&mut n, ATTACKER, &[dead("x", 1 + jump, 5)]);
    // Admitted; and, being hearsay, merged as an accusation (issue 12): x is suspected at the
    // claimed incarnation, and only this node's own timer could declare it dead.
    let x = n.member("x").unwrap();
    assert_eq!((x.state, x.incarnation), (MemberState::Suspect, 1 + jump));
    assert_eq!(n.stats().dropped.incarnation_jump, 0);
}

/// Only the member raises its incarnation: from its own held address it may jump any distance
/// (this node missed its refutations), from anywhere else it may not.
#[test]
fn the_member_itself_may_jump_past_the_window() {
    let mut n = knows_x();
    send(&mut n, ATTACKER, &[alive("x", 50_000, 5)]);
    assert_eq!(n.member("x").unwrap().incarnation, 1);
    send(&mut n, 5, &[alive("x", 50_000, 5)]);
    assert_eq!(n.member("x").unwrap().incarnation, 50_000);
}

#[test]
fn a_member_not_known_is_not_learned_beyond_the_ceiling_by_hearsay() {
    let mut n = node("a", 0);
    let ceiling = n.config().incarnation_ceiling + n.config().max_incarnation_jump;
    send(
        &mut n,
        ATTACKER,
        &[dead("x", u64::MAX, 5), alive("y", u64::MAX, 6)],
    );
    assert!(n.member("x").is_none() && n.member("y").is_none());
    assert_eq!(n.stats().dropped.incarnation_jump, 2);
    send(&mut n, ATTACKER, &[alive("y", ceiling, 6)]);
    assert_eq!(n.member("y").unwrap().incarnation, ceiling);
}

/// The claim that could never be refuted (`u64::MAX`) is ignored by its subject; a claim from
/// a previous life (below the ceiling) is refuted as before.
#[test]
fn a_node_refutes_its_previous_life_but_not_an_unrefutable_claim() {
    let mut n = node("a", 0);
    let out = send(&mut n, ATTACKER, &[suspect("a", u64::MAX, 0, "m")]);
    assert_eq!(n.local().incarnation, 0);
    assert_eq!(n.stats().dropped.incarnation_jump, 1);
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Event(Event::LocalRefuted { .. })))
    );
    send(&mut n, 7, &[dead("a", 5_000, 0)]);
    assert_eq!(n.local().incarnation, 5_001);
}

/// Each forged round moves a node's incarnation by at most the window plus one, so pinning
/// it at `u64::MAX` takes about 2⁶⁴ / 1,000 rounds.
#[test]
fn forged_rounds_walk_the_incarnation_by_at_most_the_window() {
    let mut n = node("a", 0);
    let jump = n.config().max_incarnation_jump;
    let ceiling = n.config().incarnation_ceiling;
    send(&mut n, ATTACKER, &[dead("a", ceiling + jump, 0)]);
    let start = n.local().incarnation;
    assert_eq!(start, ceiling + jump + 1);
    for _ in 0..10 {
        let next = n.local().incarnation + jump + 1;
        send(&mut n, ATTACKER, &[dead("a", next, 0)]);
    }
    assert_eq!(n.local().incarnation, start);
    for _ in 0..10 {
        let next = n.local().incarnation + jump;
        send(&mut n, ATTACKER, &[dead("a", next, 0)]);
    }
    assert_eq!(n.local().incarnation, start + 10 * (jump + 1));
}

#[test]
fn moving_an_alive_member_to_another_address_is_refused_and_reported() {
    let mut n = knows_x();
    let out = send(&mut n, ATTACKER, &[alive("x", 2, ATTACKER)]);
    assert_eq!(n.member("x").unwrap().addr, 5);
    assert_eq!(n.stats().dropped.address_conflict, 1);
    let conflict = out.iter().find_map(|o| match o {
        Output::Event(Event::Conflict {
            member,
            claimed_addr,
        }) => Some((member.addr, *claimed_addr)),
        _ => None,
    });
    assert_eq!(conflict, Some((5, ATTACKER)));
    // Suspect claims cannot move it either: they are merged at the held address.
    send(&mut n, ATTACKER, &[suspect("x", 2, ATTACKER, "m")]);
    let x = n.member("x").unwrap();
    assert_eq!((x.state, x.addr), (MemberState::Suspect, 5));
}

/// A process restarted at a new address is accepted once its previous life is held dead.
#[test]
fn a_dead_member_may_come_back_at_a_new_address() {
    let mut n = knows_x();
    send(&mut n, 6, &[dead("x", 1, 5)]);
    // The death claim is an accusation (issue 12); x is held dead once this node's own
    // suspicion timer fires (within 30 s for a two-member table).
    n.handle(Input::Tick, Instant::from_secs(30));
    assert_eq!(n.member("x").unwrap().state, MemberState::Dead);
    n.handle(
        Input::Datagram {
            from: 8,
            bytes: gossip(&[alive("x", 2, 8)]),
        },
        Instant::from_secs(31),
    );
    let x = n.member("x").unwrap();
    assert_eq!((x.state, x.addr), (MemberState::Alive, 8));
    assert_eq!(n.stats().dropped.address_conflict, 0);
}

/// Stale claims naming an old address stay merely stale: no conflict is reported.
#[test]
fn a_stale_claim_at_an_old_address_is_not_a_conflict() {
    let mut n = knows_x();
    send(&mut n, 5, &[alive("x", 3, 5)]);
    let out = send(&mut n, 6, &[alive("x", 2, 8)]);
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Event(Event::Conflict { .. })))
    );
    assert_eq!(n.stats().dropped.address_conflict, 0);
}

/// The same rules hold for push-pull snapshots; the rest of the snapshot is still merged.
#[test]
fn a_snapshot_with_a_forged_claim_keeps_its_honest_claims() {
    let mut n = knows_x();
    let header = StreamHeader {
        sender: "m",
        sender_addr: ATTACKER,
        kind: StreamKind::PushPull {
            join: false,
            reply: true,
        },
    };
    let bytes = wire::encode_stream(
        b"",
        &header,
        &[
            dead("x", u64::MAX, 5),
            alive("y", 1, 6),
            alive("x", 2, ATTACKER),
        ],
    );
    n.handle(
        Input::Stream {
            from: ATTACKER,
            bytes,
        },
        Instant::ZERO,
    );
    let x = n.member("x").unwrap();
    assert_eq!((x.state, x.incarnation, x.addr), (MemberState::Alive, 1, 5));
    assert_eq!(n.member("y").unwrap().state, MemberState::Alive);
    assert_eq!(n.stats().dropped.incarnation_jump, 1);
    assert_eq!(n.stats().dropped.address_conflict, 1);
}

fn joined(n: usize, seed: u64) -> Cluster {
    Cluster::joined(n, Config::lan(), seed)
}

/// Issue 13, rows 1 and 2: a forged `dead`/`suspect` at `u64::MAX`, and an `alive` at
/// `u64::MAX` with the attacker's address, sent to every member, change nobody's view.
#[test]
fn forged_eviction_and_takeover_do_not_spread_in_a_cluster() {
    let seed = 13;
    let mut c = joined(5, seed);
    let victim = 3;
    let name = c.name(victim).to_string();
    let forged = [
        dead(&name, u64::MAX, victim),
        suspect(&name, u64::MAX, victim, "node-0"),
        alive(&name, u64::MAX, ATTACKER),
    ];
    for to in c.running() {
        for u in &forged {
            let bytes = gossip(std::slice::from_ref(u));
            c.input(
                to,
                Input::Datagram {
                    from: ATTACKER,
                    bytes,
                },
            );
        }
    }
    c.run_for(Duration::from_secs(30));
    for a in c.running() {
        if a == victim {
            continue;
        }
        let m = c.node(a).unwrap().member(&name).unwrap();
        assert_eq!(
            (m.state, m.addr),
            (MemberState::Alive, victim),
            "seed {seed}: node {a} holds {m:?}"
        );
    }
    assert_eq!(
        c.count_events(|o| is_failed_about(o, &name)),
        0,
        "seed {seed}"
    );
    assert!(c.converged(), "seed {seed}: views diverged");
}

fn ping_req(target: &str, target_addr: u32) -> Vec<u8> {
    wire::encode_datagram(
        b"",
        &Message::PingReq {
            seq: 1,
            target,
            target_addr,
            want_nack: true,
        },
        &[],
    )
}

fn datagrams_to(out: &[Output<u32>]) -> Vec<u32> {
    out.iter()
        .filter_map(|o| match o {
            Output::SendDatagram { to, .. } => Some(*to),
            _ => None,
        })
        .collect()
}

/// Issue 13: a ping-req is relayed only to a member held at the address it names, so nobody
/// can aim this node's pings at an address of their choosing.
#[test]
fn ping_req_is_relayed_only_to_a_known_member_address() {
    let mut n = knows_x();
    for (target, addr) in [("x", 4_242), ("stranger", 4_242)] {
        let out = n.handle(
            Input::Datagram {
                from: ATTACKER,
                bytes: ping_req(target, addr),
            },
            Instant::ZERO,
        );
        assert!(
            datagrams_to(&out).is_empty(),
            "relayed to {target} at {addr}"
        );
    }
    assert_eq!(n.stats().dropped.unknown_relay_target, 2);
    let out = n.handle(
        Input::Datagram {
            from: ATTACKER,
            bytes: ping_req("x", 5),
        },
        Instant::ZERO,
    );
    assert_eq!(datagrams_to(&out), vec![5]);
}

fn push_pull_request(sender: &str, sender_addr: u32, join: bool) -> Vec<u8> {
    let header = StreamHeader {
        sender,
        sender_addr,
        kind: StreamKind::PushPull { join, reply: false },
    };
    wire::encode_stream(b"", &header, &[alive(sender, 1, sender_addr)])
}

fn streams_to(out: &[Output<u32>]) -> Vec<u32> {
    out.iter()
        .filter_map(|o| match o {
            Output::SendStream { to, .. } => Some(*to),
            _ => None,
        })
        .collect()
}

/// Issue 13: a push-pull request is answered at the address inside it only if that address is
/// the stream's source or the held address of the member it names; joins are always answered.
#[test]
fn push_pull_is_not_reflected_to_an_address_named_inside_the_request() {
    let mut n = knows_x();
    let victim = 4_242;
    let stream =
        |n: &mut Node<u32>, from, bytes| n.handle(Input::Stream { from, bytes }, Instant::ZERO);
    // A stranger names a victim's address: its claims are merged, nothing goes to the victim.
    let out = stream(&mut n, ATTACKER, push_pull_request("evil", victim, false));
    assert!(streams_to(&out).is_empty());
    assert_eq!(n.stats().dropped.unverified_reply_address, 1);
    // Naming a held member's own address, or the stream's source, is answered.
    let out = stream(&mut n, ATTACKER, push_pull_request("x", 5, false));
    assert_eq!(streams_to(&out), vec![5]);
    let out = stream(&mut n, 77, push_pull_request("z", 77, false));
    assert_eq!(streams_to(&out), vec![77]);
    // A join from an unknown node is answered (a joiner is unknown by nature).
    let out = stream(&mut n, ATTACKER, push_pull_request("newcomer", 88, true));
    assert_eq!(streams_to(&out), vec![88]);
}

fn ping(seq: u32, target: &str) -> Vec<u8> {
    wire::encode_datagram::<u32>(
        b"",
        &Message::Ping {
            seq,
            target: wire::name_tag(target),
            checksum: 0,
        },
        &[],
    )
}

/// Sizes of the datagrams sent to `dest` (timers may send others in the same step).
fn datagrams(out: &[Output<u32>], dest: u32) -> Vec<usize> {
    out.iter()
        .filter_map(|o| match o {
            Output::SendDatagram { to, bytes } if *to == dest => Some(bytes.len()),
            _ => None,
        })
        .collect()
}

/// `a` holding 40 members (so its broadcast queue is full of gossip to piggyback), each
/// introduced by itself from its own address.
fn knows_many() -> Node<u32> {
    let mut n = node("a", 0);
    for i in 0..40u32 {
        let name = format!("m{i}");
        send(&mut n, 100 + i, &[alive(&name, 1, 100 + i)]);
    }
    assert!(n.pending_broadcasts() > 0);
    n
}

/// Issue 13 (no amplification): an ack to an address no member is held at carries no gossip,
/// so it is never larger than the ping that triggered it; a member's ack still piggybacks.
#[test]
fn an_ack_to_an_unverified_source_is_no_larger_than_its_ping() {
    let mut n = knows_many();
    let request = ping(7, "a");
    let out = n.handle(
        Input::Datagram {
            from: ATTACKER,
            bytes: request.clone(),
        },
        Instant::ZERO,
    );
    let sent = datagrams(&out, ATTACKER);
    assert_eq!(sent.len(), 1);
    let bare = out
        .iter()
        .find_map(|o| match o {
            Output::SendDatagram { to, bytes } if *to == ATTACKER => Some(bytes),
            _ => None,
        })
        .expect("an ack to the attacker");
    let decoded = wire::decode_datagram::<u32>(bare, b"").expect("a bare ack decodes");
    assert!(matches!(decoded.message, Message::Ack { seq: 7, .. }));
    assert!(
        sent[0] <= request.len(),
        "ack of {} B to a {} B ping",
        sent[0],
        request.len()
    );
    let out = n.handle(
        Input::Datagram {
            from: 100,
            bytes: request.clone(),
        },
        Instant::ZERO,
    );
    assert!(
        datagrams(&out, 100)[0] > request.len(),
        "a member's ack piggybacks"
    );
}

/// Issue 13 (per-source limits): one unverified address draws at most two seconds' worth of
/// `unverified_reply_rate` replies at once, then the rate; the rest are dropped and counted.
/// A member's address is never limited.
#[test]
fn replies_to_one_unverified_source_are_rate_limited() {
    let mut n = knows_many();
    let rate = n.config().unverified_reply_rate as usize;
    let mut acks = 0;
    for seq in 0..1_000 {
        let out = n.handle(
            Input::Datagram {
                from: ATTACKER,
                bytes: ping(seq, "a"),
            },
            Instant::ZERO,
        );
        acks += datagrams(&out, ATTACKER).len();
    }
    assert_eq!(acks, 2 * rate);
    assert_eq!(n.stats().dropped.rate_limited, 1_000 - 2 * rate as u64);
    let later = Instant::ZERO + Duration::from_secs(1);
    let out = n.handle(
        Input::Datagram {
            from: ATTACKER,
            bytes: ping(1, "a"),
        },
        later,
    );
    assert_eq!(datagrams(&out, ATTACKER).len(), 1, "the allowance refills");
    for seq in 0..1_000 {
        let out = n.handle(
            Input::Datagram {
                from: 100,
                bytes: ping(seq, "a"),
            },
            later,
        );
        assert_eq!(datagrams(&out, 100).len(), 1, "a member is not limited");
    }
}

/// Issue 13: forging many source addresses does not multiply the replies: all unverified
/// addresses together get at most `unverified_reply_global_rate` (two seconds' worth at once),
/// and the per-source table stays within `max_limited_sources`.
#[test]
fn replies_to_many_forged_sources_are_bounded_in_total() {
    let mut n = knows_many();
    let total = n.config().unverified_reply_global_rate as usize;
    let mut acks = 0;
    for i in 0..20_000u32 {
        let out = n.handle(
            Input::Datagram {
                from: 1_000_000 + i,
                bytes: ping(i, "a"),
            },
            Instant::ZERO,
        );
        acks += datagrams(&out, 1_000_000 + i).len();
    }
    assert_eq!(acks, 2 * total);
    n.check_invariants();
}

/// Issue 13 (join reflection): join requests naming addresses of an attacker's choosing are
/// answered within the reply limits, not once per request.
#[test]
fn join_answers_to_unverified_addresses_are_rate_limited() {
    let mut n = knows_x();
    let rate = n.config().unverified_reply_rate as usize;
    let mut answers = 0;
    for i in 0..200 {
        let bytes = push_pull_request(&format!("joiner{i}"), 4_242, true);
        let out = n.handle(
            Input::Stream {
                from: ATTACKER,
                bytes,
            },
            Instant::ZERO,
        );
        answers += streams_to(&out).len();
    }
    assert_eq!(answers, 2 * rate);
    assert!(n.stats().dropped.rate_limited > 0);
}

/// Issue 13 (introductions per source): one source floods a thousand new names in one
/// instant; at most two seconds' worth of `introductions_per_source` get in, the rest are
/// counted. Claims about members already held are not limited.
#[test]
fn introductions_are_rate_limited_per_source() {
    let mut n = node("a", 0);
    let per = n.config().introductions_per_source as usize;
    let names: Vec<String> = (0..1_000).map(|i| format!("fake{i}")).collect();
    for chunk in names.chunks(20) {
        let ups: Vec<_> = chunk.iter().map(|nm| alive(nm, 1, 7_000)).collect();
        send(&mut n, ATTACKER, &ups);
    }
    assert_eq!(n.members().count(), 2 * per);
    assert_eq!(
        n.stats().dropped.introduction_limited,
        (1_000 - 2 * per) as u64
    );
    // Another source is not held back by the first one's flood.
    send(&mut n, 5, &[alive("x", 1, 5)]);
    assert_eq!(n.member("x").unwrap().state, MemberState::Alive);
    // Claims about held members still flow from the flooding source.
    send(&mut n, ATTACKER, &[suspect("fake0", 1, 7_000, "m")]);
    assert_eq!(n.member("fake0").unwrap().state, MemberState::Suspect);
}
