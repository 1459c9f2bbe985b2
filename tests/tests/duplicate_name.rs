//! Duplicate names (issue 15, `docs/protocol.md` §14.1): a join under a name already alive at
//! another address is answered with a snapshot that shows the name taken, reported as a
//! conflict, and nothing from it is merged.

use swim_proto::{Command, Config, Event, Identity, Input, Instant, Node, NodeName, Output};

fn node(name: &str, addr: u32) -> Node<u32> {
    let id = Identity::new(NodeName::new(name).unwrap(), addr);
    Node::new(Config::local(), id, u64::from(addr)).unwrap()
}

#[test]
fn a_join_under_the_owners_name_is_answered_and_reported_as_a_conflict() {
    let mut owner = node("x", 1);
    let mut dup = node("x", 2);
    let _ = owner.start(Instant::ZERO);
    let out = dup.handle(
        Input::Command(Command::Join { seeds: vec![1] }),
        Instant::ZERO,
    );
    let join = out
        .iter()
        .find_map(|o| match o {
            Output::SendStream { to: 1, bytes } => Some(bytes.clone()),
            _ => None,
        })
        .expect("the duplicate sends a join to the owner");
    let out = owner.handle(
        Input::Stream {
            from: 2,
            bytes: join,
        },
        Instant::from_nanos(1_000_000),
    );
    assert!(
        out.iter().any(
            |o| matches!(o, Output::Event(Event::Conflict { member, claimed_addr: 2 })
            if member.name.as_str() == "x" && member.addr == 1)
        ),
        "{out:?}"
    );
    let reply = out
        .iter()
        .find_map(|o| match o {
            Output::SendStream { to: 2, bytes } => Some(bytes.clone()),
            _ => None,
        })
        .expect("the owner answers the join");
    let m = swim_proto::wire::decode_stream::<u32>(&reply, b"").unwrap();
    assert!(
        m.updates
            .iter()
            .any(|u| u.name() == "x" && *u.addr() == 1 && u.state().is_active())
    );
    assert_eq!(owner.stats().dropped.from_self, 1);
    assert_eq!(owner.local().incarnation, 0, "the owner did not refute");
    assert_eq!(owner.members().count(), 0, "nothing merged");
}
