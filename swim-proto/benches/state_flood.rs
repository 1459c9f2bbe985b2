//! What a flood of state origins costs each input (issue 13), on criterion.
//!
//! Run with `cargo bench -p swim-proto --bench state_flood` (add `-- --quick` for a short run).
//! A node with the default bounds (`Config::lan()`: 100,000 entries, 65,536 origins) is first
//! flooded, by anti-entropy streams built with the core's codec, with one junk entry from each
//! of `N` forged origins (`N` = 0 for the quiet baseline, 150,000 for the flood). Then:
//! - `member_write/N`: a gossip datagram carrying one state entry from a member (rewriting one
//!   of 1,000 keys at a fresh version: the store does not grow while timed);
//! - `junk_write/N`: a datagram carrying one more entry from a new forged origin.
//!
//! The target: with the flood, each input costs no more than twice the quiet figure.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use swim_proto::wire::{
    self, DeltaGroup, Message, StateSync, StateUpdate, StreamHeader, StreamKind, SyncPhase, Update,
};
use swim_proto::{Config, Identity, Input, Instant, Node, NodeName, Output};

const PEER: &str = "peer";
const PEER_ADDR: u32 = 2;
const ATTACKER: u32 = 9_999;

/// A node that knows `peer` and has been sent one junk entry from each of `origins` forged
/// origins.
fn flooded(origins: usize) -> Node<u32> {
    let id = Identity::new(NodeName::new("me").unwrap(), 1);
    let mut n = Node::new(Config::lan(), id, 7).unwrap();
    let alive = Update::Alive {
        name: PEER,
        incarnation: 1,
        addr: PEER_ADDR,
        meta: b"",
    };
    n.handle(
        Input::Datagram {
            from: PEER_ADDR,
            bytes: wire::encode_datagram(b"", &Message::Gossip, &[alive]),
        },
        Instant::ZERO,
    );
    let names: Vec<String> = (0..origins).map(|i| format!("forged-{i:06}")).collect();
    for chunk in names.chunks(2_000) {
        let groups = chunk
            .iter()
            .map(|o| DeltaGroup {
                ty: "junk",
                origin: o,
                watermark: 1,
                entries: vec![(o.as_str(), 1, 1, Some(&b"junk"[..]))],
            })
            .collect();
        let header = StreamHeader {
            kind: StreamKind::State {
                phase: SyncPhase::Deltas,
            },
            sender: "mallory",
            sender_addr: ATTACKER,
        };
        let sync = StateSync {
            groups,
            ..StateSync::default()
        };
        let bytes = wire::encode_stream_with_state(b"", &header, &[], &sync);
        n.handle(
            Input::Stream {
                from: ATTACKER,
                bytes,
            },
            Instant::ZERO,
        );
    }
    n
}

fn datagram(origin: &str, key: &str, version: u64, seq: u64) -> Vec<u8> {
    let e = StateUpdate {
        ty: "real",
        key,
        version,
        seq,
        origin,
        value: Some(b"value"),
    };
    wire::encode_datagram_with_state::<u32>(b"", &Message::Gossip, &[], &[e])
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("state_flood");
    for origins in [0usize, 150_000] {
        let mut n = flooded(origins);
        eprintln!(
            "state_flood/{origins}: {} entries, {} origins held after the flood",
            n.stats().state.entries,
            n.stats().state.origins
        );
        let mut out: Vec<Output<u32>> = Vec::new();
        let mut seq = 0u64;
        let keys: Vec<String> = (0..1_000).map(|i| format!("key-{i}")).collect();
        g.bench_function(BenchmarkId::new("member_write", origins), |b| {
            b.iter(|| {
                seq += 1;
                let version = n.state_clock() + 1;
                let key = &keys[(seq % 1_000) as usize];
                let bytes = datagram(PEER, key, version, seq);
                out.clear();
                n.handle_into(
                    Input::Datagram {
                        from: PEER_ADDR,
                        bytes,
                    },
                    Instant::ZERO,
                    &mut out,
                );
                black_box(&out);
            })
        });
        let mut i = 0u64;
        g.bench_function(BenchmarkId::new("junk_write", origins), |b| {
            b.iter(|| {
                i += 1;
                let origin = format!("late-{i}");
                let bytes = datagram(&origin, "k", n.state_clock() + 1, 1);
                out.clear();
                n.handle_into(
                    Input::Datagram {
                        from: ATTACKER,
                        bytes,
                    },
                    Instant::ZERO,
                    &mut out,
                );
                black_box(&out);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
