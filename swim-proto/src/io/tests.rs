//! Tests of the input and output vocabulary: event names, the JSON form drivers emit, and
//! the trace digest's encoding of every event.

use super::*;
use crate::{DecodeError, KeyringError};
use alloc::string::ToString;
use alloc::vec;

fn member(name: &str, state: MemberState) -> Member<u32> {
    Member {
        name: NodeName::new(name).unwrap(),
        addr: 7,
        incarnation: 3,
        state,
        meta: Metadata::from(&b"zone=a"[..]),
    }
}

/// One of every variant: the exhaustive `name` and the serde tag must agree.
fn every_event() -> Vec<Event<u32>> {
    let n = |s: &str| NodeName::new(s).unwrap();
    let entry = StateEntry {
        value: Some(alloc::sync::Arc::from(&b"v"[..])),
        version: 4,
        origin: n("o"),
    };
    vec![
        Event::MemberJoined(member("a", MemberState::Alive)),
        Event::MemberSuspected {
            member: member("a", MemberState::Suspect),
            accuser: n("b"),
        },
        Event::MemberAlive(member("a", MemberState::Alive)),
        Event::MemberFailed(member("a", MemberState::Dead)),
        Event::MemberLeft(member("a", MemberState::Left)),
        Event::MemberUpdated(member("a", MemberState::Alive)),
        Event::MemberRemoved(member("a", MemberState::Dead)),
        Event::LocalSuspected {
            accuser: n("b"),
            incarnation: 2,
        },
        Event::LocalRefuted {
            claim: MemberState::Suspect,
            incarnation: 3,
        },
        Event::JoinCompleted { via: 9 },
        Event::LeaveComplete,
        Event::PacketDropped {
            from: 9,
            reason: DropReason::Decode(DecodeError::Truncated),
        },
        Event::CommandRejected(CommandError::Keyring(KeyringError::UnknownKey)),
        Event::StateChanged {
            key: StateKey::new("t", "k"),
            old: None,
            new: Some(entry),
            cause: ChangeCause::Remote,
        },
        Event::ViewChanged {
            checksum: 0xab,
            members: 3,
        },
        Event::ViewStable {
            checksum: 0xab,
            members: vec![n("a"), n("b")],
        },
        Event::LeaderChanged { leader: None },
        Event::OriginFailed {
            origin: n("o"),
            left: false,
            keys: vec![StateKey::new("t", "k")],
        },
        Event::LocalRemoved { incarnation: 2 },
        Event::Message {
            from: n("a"),
            channel: 1,
            payload: b"hi".to_vec(),
        },
        Event::UserEvent {
            origin: n("a"),
            name: "deploy".into(),
            ltime: 3,
            payload: b"v2".to_vec(),
        },
        Event::Query {
            id: QueryId {
                origin: "a".into(),
                ltime: 4,
            },
            name: "load".into(),
            payload: Vec::new(),
        },
        Event::QueryResponse {
            query: 4,
            from: n("b"),
            payload: b"0.5".to_vec(),
        },
        Event::QueryDone {
            query: 4,
            acks: 2,
            responses: 1,
        },
        Event::Conflict {
            member: member("a", MemberState::Alive),
            claimed_addr: 9,
        },
    ]
}

/// The trace digest encodes outputs through the same derivation with the wire codec; an
/// event that could not be encoded would panic there.
#[test]
fn every_event_encodes_for_the_trace_digest() {
    let mut seen = alloc::collections::BTreeSet::new();
    for e in every_event() {
        seen.insert(crate::trace::digest_outputs(&[Output::Event(e)]));
    }
    assert_eq!(
        seen.len(),
        every_event().len(),
        "distinct events digest apart"
    );
}

#[test]
fn event_names_are_the_serialized_tags() {
    for e in every_event() {
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["event"], e.name(), "{e:?}");
    }
}

/// The JSON form drivers emit as event lines (`docs/driver.md`).
#[test]
fn events_serialize_flat_with_stable_fields() {
    let e = Event::MemberSuspected {
        member: member("a", MemberState::Suspect),
        accuser: NodeName::new("b").unwrap(),
    };
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"event": "member_suspected", "node": "a", "addr": 7,
            "incarnation": 3, "state": "suspect", "meta": "zone=a", "accuser": "b"})
    );
    let all: Vec<_> = every_event()
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert_eq!(all[11]["reason"], "Decode(Truncated)");
    assert_eq!(
        all[12]["error"],
        CommandError::Keyring(KeyringError::UnknownKey).to_string()
    );
    assert_eq!(all[13]["type"], "t");
    assert_eq!(all[13]["new"]["value"], "v");
    assert_eq!(all[13]["cause"], "remote");
    assert_eq!(all[14]["checksum"], "00000000000000ab");
    assert_eq!(all[17]["keys"][0], "t/k");
    let out: Output<u32> = Output::TickAt(Instant::from_nanos(5));
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        serde_json::json!({"tick_at": 5})
    );
}
