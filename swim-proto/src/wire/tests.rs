//! Codec tests: round trips, bounds and hostile inputs.

use super::*;
use alloc::string::String;
use alloc::vec;
use proptest::prelude::*;

#[test]
fn header_rejects_version_and_label() {
    let pkt = encode_datagram::<u32>(
        b"prod",
        &Message::Ack {
            seq: 7,
            checksum: 0,
        },
        &[],
    );
    assert!(decode_datagram::<u32>(&pkt, b"prod").is_ok());
    assert_eq!(
        decode_datagram::<u32>(&pkt, b"test").unwrap_err(),
        DecodeError::LabelMismatch
    );
    let mut bad = pkt.clone();
    bad[0] = 9 << 4 | (bad[0] & 0x0f);
    assert_eq!(
        decode_datagram::<u32>(&bad, b"prod").unwrap_err(),
        DecodeError::UnsupportedVersion(9)
    );
    assert_eq!(
        decode_datagram::<u32>(&[], b"").unwrap_err(),
        DecodeError::Truncated
    );
    let mut trailing = pkt.clone();
    trailing.push(0);
    assert_eq!(
        decode_datagram::<u32>(&trailing, b"prod").unwrap_err(),
        DecodeError::TrailingBytes
    );
}

#[test]
fn huge_declared_count_is_rejected_before_allocating() {
    let mut pkt = Vec::new();
    write_header(&mut pkt, b"", 0);
    encode_into(&Message::<u32>::Gossip, &mut pkt);
    pkt[1] |= HAS_UPDATES;
    encode_count(u32::MAX as usize, &mut pkt);
    pkt.extend_from_slice(&[0; 16]);
    assert_eq!(
        decode_datagram::<u32>(&pkt, b"").unwrap_err(),
        DecodeError::TooManyUpdates
    );
}

#[derive(Debug, Clone)]
enum OwnedUpdate {
    Alive(String, u64, u32, Vec<u8>),
    Suspect(String, u64, u32, String),
    Dead(String, u64, u32),
    Left(String, u64, u32),
}

impl OwnedUpdate {
    fn borrow(&self) -> Update<'_, u32> {
        match self {
            OwnedUpdate::Alive(n, i, a, m) => Update::Alive {
                name: n,
                incarnation: *i,
                addr: *a,
                meta: m,
            },
            OwnedUpdate::Suspect(n, i, a, by) => Update::Suspect {
                name: n,
                incarnation: *i,
                addr: *a,
                accuser: by,
            },
            OwnedUpdate::Dead(n, i, a) => Update::Dead {
                name: n,
                incarnation: *i,
                addr: *a,
            },
            OwnedUpdate::Left(n, i, a) => Update::Left {
                name: n,
                incarnation: *i,
                addr: *a,
            },
        }
    }
}

fn owned_update() -> impl Strategy<Value = OwnedUpdate> {
    let name = "[a-z0-9-]{1,40}";
    prop_oneof![
        (
            name,
            any::<u64>(),
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(n, i, a, m)| OwnedUpdate::Alive(n, i, a, m)),
        (name, any::<u64>(), any::<u32>(), name)
            .prop_map(|(n, i, a, b)| OwnedUpdate::Suspect(n, i, a, b)),
        (name, any::<u64>(), any::<u32>()).prop_map(|(n, i, a)| OwnedUpdate::Dead(n, i, a)),
        (name, any::<u64>(), any::<u32>()).prop_map(|(n, i, a)| OwnedUpdate::Left(n, i, a)),
    ]
}

#[derive(Debug, Clone)]
enum OwnedMessage {
    Gossip,
    Ping(u32, u32, u32),
    PingReq(u32, String, u32, bool),
    Ack(u32, u32),
    Nack(u32),
}

fn owned_message() -> impl Strategy<Value = OwnedMessage> {
    prop_oneof![
        Just(OwnedMessage::Gossip),
        (any::<u32>(), any::<u32>(), any::<u32>())
            .prop_map(|(s, t, c)| OwnedMessage::Ping(s, t, c)),
        (any::<u32>(), "[a-z]{1,30}", any::<u32>(), any::<bool>())
            .prop_map(|(s, t, a, n)| OwnedMessage::PingReq(s, t, a, n)),
        (any::<u32>(), any::<u32>()).prop_map(|(s, c)| OwnedMessage::Ack(s, c)),
        any::<u32>().prop_map(OwnedMessage::Nack),
    ]
}

impl OwnedMessage {
    fn borrow(&self) -> Message<'_, u32> {
        match self {
            OwnedMessage::Gossip => Message::Gossip,
            OwnedMessage::Ping(seq, t, c) => Message::Ping {
                seq: *seq,
                target: *t,
                checksum: *c,
            },
            OwnedMessage::PingReq(seq, t, a, n) => Message::PingReq {
                seq: *seq,
                target: t,
                target_addr: *a,
                want_nack: *n,
            },
            OwnedMessage::Ack(seq, c) => Message::Ack {
                seq: *seq,
                checksum: *c,
            },
            OwnedMessage::Nack(seq) => Message::Nack { seq: *seq },
        }
    }
}

proptest! {
    #[test]
    fn datagram_round_trips(
        label in "[a-z]{0,12}",
        msg in owned_message(),
        ups in proptest::collection::vec(owned_update(), 0..20),
    ) {
        let updates: Vec<_> = ups.iter().map(OwnedUpdate::borrow).collect();
        let bytes = encode_datagram(label.as_bytes(), &msg.borrow(), &updates);
        let back = decode_datagram::<u32>(&bytes, label.as_bytes()).unwrap();
        prop_assert_eq!(back.message, msg.borrow());
        prop_assert_eq!(back.updates, updates);
    }

    #[test]
    fn stream_round_trips(
        join in any::<bool>(), reply in any::<bool>(),
        ups in proptest::collection::vec(owned_update(), 0..50),
    ) {
        let updates: Vec<_> = ups.iter().map(OwnedUpdate::borrow).collect();
        let header = StreamHeader { kind: StreamKind::PushPull { join, reply }, sender: "n1", sender_addr: 9u32 };
        let bytes = encode_stream(b"", &header, &updates);
        let back = decode_stream::<u32>(&bytes, b"").unwrap();
        prop_assert_eq!(back.header, header);
        prop_assert_eq!(back.updates, updates);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_datagram::<u32>(&bytes, b"");
        let _ = decode_stream::<u32>(&bytes, b"");
        let mut framed = vec![PROTOCOL_VERSION << 4];
        framed.extend_from_slice(&bytes);
        let _ = decode_datagram::<u32>(&framed, b"");
        let _ = decode_stream::<u32>(&framed, b"");
    }

    #[test]
    fn truncated_packets_are_errors(
        msg in owned_message(),
        ups in proptest::collection::vec(owned_update(), 1..5),
        cut in any::<prop::sample::Index>(),
    ) {
        let updates: Vec<_> = ups.iter().map(OwnedUpdate::borrow).collect();
        let bytes = encode_datagram(b"", &msg.borrow(), &updates);
        let cut = cut.index(bytes.len());
        prop_assert!(decode_datagram::<u32>(&bytes[..cut], b"").is_err());
    }
}

#[test]
fn an_unlabeled_plaintext_ping_and_ack_are_small() {
    let ping = encode_datagram::<u32>(
        b"",
        &Message::Ping {
            seq: 200,
            target: name_tag("node-1"),
            checksum: 7,
        },
        &[],
    );
    // header 1, variant 1, seq 2, tag 4, checksum 4; no section counts.
    assert_eq!(ping.len(), 12);
    let ack = encode_datagram::<u32>(
        b"",
        &Message::Ack {
            seq: 200,
            checksum: 7,
        },
        &[],
    );
    assert_eq!(ack.len(), 8);
    assert!(decode_datagram::<u32>(&ping, b"").is_ok());
}

#[test]
fn a_section_flag_with_an_empty_section_is_malformed() {
    let mut pkt = encode_datagram::<u32>(b"", &Message::Nack { seq: 1 }, &[]);
    pkt[1] |= HAS_UPDATES;
    pkt.push(0);
    assert_eq!(
        decode_datagram::<u32>(&pkt, b"").unwrap_err(),
        DecodeError::Malformed
    );
}

#[test]
fn a_version_1_packet_is_unsupported() {
    let pkt = [1u8, 0, 0, 0, 0, 0];
    assert_eq!(
        decode_datagram::<u32>(&pkt, b"").unwrap_err(),
        DecodeError::UnsupportedVersion(1)
    );
}
