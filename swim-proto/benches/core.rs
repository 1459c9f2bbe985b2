//! Benchmarks of the protocol core, on criterion.
//!
//! Run with `cargo bench -p swim-proto --bench core` (add `-- --quick` for a short run, or a
//! name filter such as `-- tick/`). Criterion warms each benchmark up, picks iteration counts,
//! and reports a confidence interval of the time per operation (and the change since the last
//! run in `target/criterion/`). `docs/benchmarks.md` has a baseline table.
//!
//! Benchmarks:
//! - `ping_to_ack`: a node that knows a few members (empty broadcast queue) decodes a Ping
//!   datagram addressed to it and emits its Ack (`handle_datagram`, reused output buffer).
//! - `encode_full_packet` / `decode_full_packet`: a Ping plus as many alive updates (20-byte
//!   names, 16-byte metadata) as fit in 1400 bytes.
//! - `tick/N`: a node with N members in steady state (all members alive, broadcast queue
//!   drained) is ticked every 10 simulated ms, so probes (1 s), gossip rounds (200 ms) and
//!   push-pull (30 s, stretched with N) fire as they would in real life. Each probe's ping is
//!   answered with an ack straight away (inside the timed loop, as in life the ack arrives),
//!   so the membership stays stable instead of decaying into suspicions. The timed loop also
//!   holds the harness's own work for that: decoding each outgoing ping and encoding its ack.
//!   Most ticks fire nothing; a push-pull (a full O(N) state snapshot, every 300 s at N=10,000)
//!   is amortized over the ticks between two of them.
//! - `gossip_stale/N`: the same node receives a gossip datagram carrying 10 alive updates about
//!   random known members at the incarnation it already holds (stale: nothing changes).
//! - `probe_period/N`: the node is ticked one probe interval (1 s) later each time, so every op
//!   is a full protocol period: a probe sent and acked, plus one gossip round. Periodic
//!   push-pull is disabled to isolate the per-probe cost.
//!
//! The message benchmarks keep `now` fixed (no timer is due), so they measure the message only.
//! Each fixture is checked once before timing (the expected ack, a stale update changes
//! nothing, the membership stays steady), and a one-line note on what was measured is printed.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use swim_proto::wire::{self, Message, StreamHeader, StreamKind, Update};
use swim_proto::{Config, Identity, Input, Instant, MemberState, Node, NodeName, Output};

/// Cluster label of every packet (the `Config::lan()` default).
const LABEL: &[u8] = b"";
/// Metadata carried by every member: 16 bytes.
const META: &[u8] = b"role=web;v=1.2.3";
/// Simulated time between two ticks.
const TICK_STEP: Duration = Duration::from_millis(10);
/// Member counts for the scaling benchmarks.
const SIZES: [usize; 3] = [100, 1_000, 10_000];

// ------------------------------------------------------------------------------ fixtures

/// A 20-byte member name.
fn member_name(i: usize) -> String {
    let n = format!("node-{i:05}-az1.local");
    debug_assert_eq!(n.len(), 20);
    n
}

fn member_addr(i: usize) -> u32 {
    1 + i as u32
}

fn alive(name: &str, addr: u32) -> Update<'_, u32> {
    Update::Alive {
        name,
        incarnation: 0,
        addr,
        meta: META,
    }
}

/// Deterministic xorshift, so fixtures do not depend on an RNG crate.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// A node and its simulated clock; `step` advances time by one tick and answers every probe.
struct Driver {
    node: Node<u32>,
    now: Instant,
    step_by: Duration,
    out: Vec<Output<u32>>,
    acks: Vec<(u32, u32)>,
}

impl Driver {
    /// A node that learned `n` members (20-byte names, 16-byte metadata) from one push-pull
    /// snapshot, then ran until its broadcast queue drained: the steady state.
    fn with_members(n: usize, config: Config) -> Driver {
        assert!(config.max_stream_message_size >= n * 64);
        let local = Identity::new(NodeName::new("bench-local-node-000").unwrap(), 0u32);
        let mut node = Node::new(config, local, 7).unwrap();
        let names: Vec<String> = (0..n).map(member_name).collect();
        let updates: Vec<Update<'_, u32>> = names
            .iter()
            .enumerate()
            .map(|(i, name)| alive(name, member_addr(i)))
            .collect();
        let header = StreamHeader {
            kind: StreamKind::PushPull {
                join: false,
                reply: true,
            },
            sender: names[0].as_str(),
            sender_addr: member_addr(0),
        };
        let bytes = wire::encode_stream(LABEL, &header, &updates);
        let now = Instant::from_secs(1);
        let mut out = Vec::new();
        node.handle_into(
            Input::Stream {
                from: member_addr(0),
                bytes,
            },
            now,
            &mut out,
        );
        assert_eq!(node.cluster_size(), n + 1, "every member learned");
        let mut d = Driver {
            node,
            now,
            step_by: TICK_STEP,
            out,
            acks: Vec::new(),
        };
        let mut steps = 0;
        while d.node.pending_broadcasts() > 0 {
            d.step();
            steps += 1;
            assert!(steps < 1_000_000, "broadcast queue never drained");
        }
        // Settle a little more past the drain.
        for _ in 0..1_000 {
            d.step();
        }
        d.assert_steady(n);
        d
    }

    /// Ticks `step_by` (default `TICK_STEP`) later, then answers each ping the node sent with an ack from its
    /// target, as a healthy cluster would.
    fn step(&mut self) {
        self.now = self.now + self.step_by;
        self.out.clear();
        self.node.handle_into(Input::Tick, self.now, &mut self.out);
        self.acks.clear();
        for o in &self.out {
            if let Output::SendDatagram { to, bytes } = o
                && let Ok(dg) = wire::decode_datagram::<u32>(bytes, LABEL)
                && let Message::Ping { seq, .. } = dg.message
            {
                self.acks.push((*to, seq));
            }
        }
        // Peers that agree on the membership answer with the same checksum.
        let checksum = wire::short_checksum(self.node.checksum());
        for i in 0..self.acks.len() {
            let (from, seq) = self.acks[i];
            let ack = wire::encode_datagram::<u32>(LABEL, &Message::Ack { seq, checksum }, &[]);
            self.node
                .handle_datagram(&from, &ack, self.now, &mut self.out);
        }
    }

    fn assert_steady(&self, n: usize) {
        let node = &self.node;
        assert_eq!(node.count(MemberState::Alive), n, "all members alive");
        assert_eq!(node.stats().probes_failed, 0, "every probe acked");
        assert_eq!(node.health_score(), 0, "local health perfect");
    }
}

// ------------------------------------------------------------------------------ benchmarks

fn ping_to_ack(c: &mut Criterion) {
    let mut d = Driver::with_members(4, Config::lan());
    assert_eq!(d.node.pending_broadcasts(), 0);
    let local = d.node.local().name.clone();
    let seq = 12_345;
    let checksum = wire::short_checksum(d.node.checksum());
    let ping = wire::encode_datagram::<u32>(
        LABEL,
        &Message::Ping {
            seq,
            target: wire::name_tag(local.as_str()),
            checksum,
        },
        &[],
    );
    let from = member_addr(2);
    let now = d.now; // fixed: no timer is due, so only the message is measured
    let mut out = Vec::new();

    // Check once that the node answers with exactly the expected ack.
    d.node.handle_datagram(&from, &ping, now, &mut out);
    let acks: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::SendDatagram { to, bytes } => Some((*to, bytes.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(acks.len(), 1, "one datagram out: {out:?}");
    assert_eq!(acks[0].0, from);
    let dg = wire::decode_datagram::<u32>(&acks[0].1, LABEL).unwrap();
    assert_eq!(dg.message, Message::Ack { seq, checksum });
    assert!(dg.updates.is_empty(), "nothing to piggyback");
    println!(
        "ping_to_ack: {} B ping in, {} B ack out",
        ping.len(),
        acks[0].1.len()
    );

    let node = &mut d.node;
    c.bench_function("ping_to_ack", |b| {
        b.iter(|| {
            out.clear();
            node.handle_datagram(black_box(&from), black_box(&ping), now, &mut out);
            black_box(&out);
        })
    });
}

fn full_packet(c: &mut Criterion) {
    let names: Vec<String> = (0..200).map(member_name).collect();
    let all: Vec<Update<'_, u32>> = names
        .iter()
        .enumerate()
        // Addresses of a realistic size (a 4-byte u32 varint) rather than tiny ones.
        .map(|(i, n)| alive(n, 0x1000_0000 + i as u32))
        .collect();
    let target = "node-99999-az1.local";
    let msg = Message::Ping {
        seq: 987_654,
        target: wire::name_tag(target),
        checksum: 0x89ab_cdef,
    };
    let budget = Config::lan().max_packet_size;
    let mut count = 0;
    while count < all.len() && wire::encode_datagram(LABEL, &msg, &all[..count + 1]).len() <= budget
    {
        count += 1;
    }
    let updates = &all[..count];
    let bytes = wire::encode_datagram(LABEL, &msg, updates);
    assert!(bytes.len() <= budget && bytes.len() > budget - 64);
    let back = wire::decode_datagram::<u32>(&bytes, LABEL).unwrap();
    assert_eq!(back.message, msg);
    assert_eq!(back.updates, updates);
    println!(
        "encode_full_packet, decode_full_packet: {} B, ping + {count} alive updates",
        bytes.len()
    );

    c.bench_function("encode_full_packet", |b| {
        b.iter(|| {
            black_box(wire::encode_datagram(
                black_box(LABEL),
                black_box(&msg),
                black_box(updates),
            ))
        })
    });
    c.bench_function("decode_full_packet", |b| {
        b.iter(|| {
            let dg = wire::decode_datagram::<u32>(black_box(&bytes), black_box(LABEL));
            black_box(dg.unwrap());
        })
    });
}

fn tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("tick");
    for n in SIZES {
        let mut d = Driver::with_members(n, Config::lan());
        let probes_before = d.node.stats().probes;
        let push_pulls_before = d.node.stats().streams_sent;
        let now_before = d.now;
        group.bench_function(BenchmarkId::from_parameter(n), |b| b.iter(|| d.step()));
        d.assert_steady(n);
        println!(
            "tick/{n}: {} s simulated: {} probes, {} push-pulls",
            d.now.saturating_duration_since(now_before).as_secs(),
            d.node.stats().probes - probes_before,
            d.node.stats().streams_sent - push_pulls_before,
        );
    }
    group.finish();
}

fn gossip_stale(c: &mut Criterion) {
    let mut group = c.benchmark_group("gossip_stale");
    for n in SIZES {
        let mut d = Driver::with_members(n, Config::lan());
        // 64 different gossip datagrams, each with 10 stale alive updates about random
        // members, cycled through so table lookups do not keep hitting the same few cached
        // entries.
        let names: Vec<String> = (0..n).map(member_name).collect();
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let packets: Vec<Vec<u8>> = (0..64)
            .map(|_| {
                let ups: Vec<Update<'_, u32>> = (0..10)
                    .map(|_| {
                        let i = rng.below(n);
                        alive(&names[i], member_addr(i))
                    })
                    .collect();
                wire::encode_datagram(LABEL, &Message::Gossip, &ups)
            })
            .collect();
        let from = member_addr(0);
        let now = d.now; // fixed: no timer is due, so only the message is measured
        let node = &mut d.node;
        let out = &mut d.out;

        // Check once: all ten are stale, nothing is sent or reported.
        let stale_before = node.stats().updates_stale;
        out.clear();
        node.handle_datagram(&from, &packets[0], now, out);
        assert_eq!(node.stats().updates_stale - stale_before, 10);
        assert!(
            out.iter().all(|o| matches!(o, Output::TickAt(_))),
            "{out:?}"
        );
        assert_eq!(node.pending_broadcasts(), 0);
        println!(
            "gossip_stale/{n}: {} B, 10 stale alive updates",
            packets[0].len()
        );

        let mut next = 0;
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                out.clear();
                node.handle_datagram(black_box(&from), black_box(&packets[next]), now, out);
                black_box(&*out);
                next = (next + 1) % packets.len();
            })
        });
        d.assert_steady(n);
    }
    group.finish();
}

fn probe_period(c: &mut Criterion) {
    let mut group = c.benchmark_group("probe_period");
    for n in SIZES {
        // One whole protocol period per op: tick one probe interval later, so the probe timer
        // (and one gossip round) fires every time, and ack the probe. Periodic push-pull is
        // disabled here to isolate the per-probe cost; `tick/N` includes it.
        let mut config = Config::lan();
        config.push_pull_interval = Duration::ZERO;
        let mut d = Driver::with_members(n, config);
        d.step_by = d.node.config().probe_interval;
        let probes_before = d.node.stats().probes;
        group.bench_function(BenchmarkId::from_parameter(n), |b| b.iter(|| d.step()));
        d.assert_steady(n);
        assert_eq!(d.node.stats().streams_sent, 0, "no push-pull");
        println!(
            "probe_period/{n}: {} periods, each probe acked; push-pull off",
            d.node.stats().probes - probes_before
        );
    }
    group.finish();
}

/// Shorter than criterion's defaults (3 s warm-up, 5 s measurement, 100 samples) so the whole
/// suite, fixtures of 10,000 members included, runs in about a minute; the intervals stay
/// within a few percent on an idle machine.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = ping_to_ack, full_packet, tick, gossip_stale, probe_period
}
criterion_main!(benches);
