//! Benchmarks of the protocol core, with a small self-contained timing harness (no criterion).
//!
//! Run with `cargo bench -p swim-proto --bench core`. Each benchmark is warmed up, then timed
//! as `SAMPLES` samples, each a batch of iterations measured with `std::time::Instant`; the
//! per-operation median and 90th percentile over the samples are printed, then a summary table.
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
//!   lands in a few samples and shows in p90 and mean, not in the median.
//! - `gossip_stale/N`: the same node receives a gossip datagram carrying 10 alive updates about
//!   random known members at the incarnation it already holds (stale: nothing changes).
//! - `probe_period/N`: the node is ticked one probe interval (1 s) later each time, so every op
//!   is a full protocol period: a probe sent and acked, plus one gossip round. Periodic
//!   push-pull is disabled to isolate the per-probe cost.
//!
//! The message benchmarks keep `now` fixed (no timer is due), so they measure the message only.

// Benches measure wall-clock time with `std::time::Instant::now`, which the crate's clippy.toml
// forbids because the sans-IO core must never read a clock. This file is a measurement harness
// run by `cargo bench`, not part of the core, so the ban does not apply here.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::{Duration, Instant as WallClock};

use swim_proto::wire::{self, Message, StreamHeader, StreamKind, Update};
use swim_proto::{Config, Identity, Input, Instant, MemberState, Node, NodeName, Output};

/// Timed samples per benchmark.
const SAMPLES: usize = 30;
/// Untimed samples run first to warm caches, the allocator and the branch predictors.
const WARMUP_SAMPLES: usize = 5;
/// Target wall time of one sample for auto-calibrated (stateless) benchmarks.
const TARGET_SAMPLE: Duration = Duration::from_millis(10);
/// Cluster label of every packet (the `Config::lan()` default).
const LABEL: &[u8] = b"";
/// Metadata carried by every member: 16 bytes.
const META: &[u8] = b"role=web;v=1.2.3";
/// Simulated time between two ticks.
const TICK_STEP: Duration = Duration::from_millis(10);
/// Ticks per sample of the tick benchmarks: 10,000 ticks = 100 simulated seconds, i.e. ~100
/// probe periods and ~500 gossip rounds per sample.
const TICKS_PER_SAMPLE: u64 = 10_000;
/// Member counts for the scaling benchmarks.
const SIZES: [usize; 3] = [100, 1_000, 10_000];

// ------------------------------------------------------------------------------ harness

struct Measurement {
    name: String,
    batch: u64,
    median_ns: f64,
    p90_ns: f64,
    mean_ns: f64,
    min_ns: f64,
    note: String,
}

/// Iterations per sample so that one sample takes about `TARGET_SAMPLE`.
fn calibrate(op: &mut impl FnMut()) -> u64 {
    let mut n: u64 = 1;
    loop {
        let start = WallClock::now();
        for _ in 0..n {
            op();
        }
        let took = start.elapsed();
        if took >= TARGET_SAMPLE / 4 || n >= 1 << 30 {
            let per_op = took.as_nanos() as f64 / n as f64;
            return ((TARGET_SAMPLE.as_nanos() as f64 / per_op.max(0.1)) as u64).max(1);
        }
        n *= 2;
    }
}

/// Warms up, then times `SAMPLES` batches of `batch` calls of `op` (or a calibrated batch when
/// `batch` is `None`), and prints per-op median and p90.
fn bench(name: &str, batch: Option<u64>, mut op: impl FnMut()) -> Measurement {
    let batch = batch.unwrap_or_else(|| calibrate(&mut op));
    let mut per_op = Vec::with_capacity(SAMPLES);
    for i in 0..WARMUP_SAMPLES + SAMPLES {
        let start = WallClock::now();
        for _ in 0..batch {
            op();
        }
        let took = start.elapsed();
        if i >= WARMUP_SAMPLES {
            per_op.push(took.as_nanos() as f64 / batch as f64);
        }
    }
    per_op.sort_by(f64::total_cmp);
    let n = per_op.len();
    let median_ns = if n % 2 == 1 {
        per_op[n / 2]
    } else {
        (per_op[n / 2 - 1] + per_op[n / 2]) / 2.0
    };
    // Nearest-rank 90th percentile.
    let p90_ns = per_op[(n * 9).div_ceil(10) - 1];
    let r = Measurement {
        name: name.to_string(),
        batch,
        median_ns,
        p90_ns,
        mean_ns: per_op.iter().sum::<f64>() / n as f64,
        min_ns: per_op[0],
        note: String::new(),
    };
    println!(
        "{:<22} median {:>9} ns/op   p90 {:>9}   mean {:>9}   min {:>9}   ({} samples x {} iters)",
        r.name,
        fmt_ns(r.median_ns),
        fmt_ns(r.p90_ns),
        fmt_ns(r.mean_ns),
        fmt_ns(r.min_ns),
        SAMPLES,
        r.batch
    );
    r
}

fn fmt_ns(ns: f64) -> String {
    if ns < 100.0 {
        format!("{ns:.1}")
    } else {
        format!("{ns:.0}")
    }
}

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
        let checksum = self.node.checksum();
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

fn bench_ping_to_ack() -> Measurement {
    let mut d = Driver::with_members(4, Config::lan());
    assert_eq!(d.node.pending_broadcasts(), 0);
    let local = d.node.local().name.clone();
    let seq = 12_345;
    let checksum = d.node.checksum();
    let ping = wire::encode_datagram::<u32>(
        LABEL,
        &Message::Ping {
            seq,
            target: local.as_str(),
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

    let node = &mut d.node;
    let mut r = bench("ping_to_ack", None, || {
        out.clear();
        node.handle_datagram(black_box(&from), black_box(&ping), now, &mut out);
        black_box(&out);
    });
    r.note = format!("{} B ping in, {} B ack out", ping.len(), acks[0].1.len());
    r
}

fn bench_full_packet() -> (Measurement, Measurement) {
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
        target,
        checksum: 0x0123_4567_89ab_cdef,
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

    let note = format!("{} B, ping + {} alive updates", bytes.len(), count);
    let mut enc = bench("encode_full_packet", None, || {
        black_box(wire::encode_datagram(
            black_box(LABEL),
            black_box(&msg),
            black_box(updates),
        ));
    });
    enc.note = note.clone();
    let mut dec = bench("decode_full_packet", None, || {
        let dg = wire::decode_datagram::<u32>(black_box(&bytes), black_box(LABEL));
        black_box(dg.unwrap());
    });
    dec.note = note;
    (enc, dec)
}

fn bench_scaling(n: usize) -> (Measurement, Measurement, Measurement) {
    let mut d = Driver::with_members(n, Config::lan());
    let probes_before = d.node.stats().probes;
    let push_pulls_before = d.node.stats().streams_sent;
    let mut tick = bench(&format!("tick/{n}"), Some(TICKS_PER_SAMPLE), || d.step());
    d.assert_steady(n);
    let sim_secs = ((WARMUP_SAMPLES + SAMPLES) as u64 * TICKS_PER_SAMPLE) as u128
        * TICK_STEP.as_millis()
        / 1000;
    tick.note = format!(
        "{sim_secs} s simulated: {} probes, {} push-pulls",
        d.node.stats().probes - probes_before,
        d.node.stats().streams_sent - push_pulls_before,
    );

    // 64 different gossip datagrams, each with 10 stale alive updates about random members,
    // cycled through so table lookups do not keep hitting the same few cached entries.
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

    let mut next = 0;
    let mut gossip = bench(&format!("gossip_stale/{n}"), None, || {
        out.clear();
        node.handle_datagram(black_box(&from), black_box(&packets[next]), now, out);
        black_box(&*out);
        next = (next + 1) % packets.len();
    });
    gossip.note = format!("{} B, 10 stale alive updates", packets[0].len());
    d.assert_steady(n);

    // One whole protocol period per op: tick one probe interval later, so the probe timer (and
    // one gossip round) fires every time, and ack the probe. Periodic push-pull is disabled
    // here to isolate the per-probe cost; `tick/N` above includes it.
    let mut config = Config::lan();
    config.push_pull_interval = Duration::ZERO;
    let mut d = Driver::with_members(n, config);
    d.step_by = d.node.config().probe_interval;
    let probes_before = d.node.stats().probes;
    let mut period = bench(&format!("probe_period/{n}"), None, || d.step());
    d.assert_steady(n);
    assert_eq!(d.node.stats().streams_sent, 0, "no push-pull");
    period.note = format!(
        "{} periods, each probe acked; push-pull off",
        d.node.stats().probes - probes_before
    );
    (tick, gossip, period)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported by this harness.
    let started = WallClock::now();
    println!(
        "swim-proto core benchmarks: {SAMPLES} samples after {WARMUP_SAMPLES} warm-up samples; \
         per-op median and p90 over samples"
    );
    println!();

    let mut results = vec![bench_ping_to_ack()];
    let (enc, dec) = bench_full_packet();
    results.push(enc);
    results.push(dec);
    let mut ticks = Vec::new();
    let mut gossips = Vec::new();
    let mut periods = Vec::new();
    for n in SIZES {
        let (t, g, p) = bench_scaling(n);
        ticks.push((t.median_ns, t.p90_ns, t.mean_ns));
        gossips.push((g.median_ns, g.p90_ns, g.mean_ns));
        periods.push((p.median_ns, p.p90_ns, p.mean_ns));
        results.push(t);
        results.push(g);
        results.push(p);
    }

    println!();
    println!(
        "{:<22} {:>10} {:>10} {:>10}  notes",
        "benchmark", "median ns", "p90 ns", "mean ns"
    );
    println!("{}", "-".repeat(100));
    for r in &results {
        println!(
            "{:<22} {:>10} {:>10} {:>10}  {}",
            r.name,
            fmt_ns(r.median_ns),
            fmt_ns(r.p90_ns),
            fmt_ns(r.mean_ns),
            r.note
        );
    }
    println!();
    let (first, last) = (SIZES[0], SIZES[SIZES.len() - 1]);
    let ratio = |v: &[(f64, f64, f64)]| {
        let (a, b) = (v[0], v[v.len() - 1]);
        format!(
            "median x{:.2}, p90 x{:.2}, mean x{:.2}",
            b.0 / a.0,
            b.1 / a.1,
            b.2 / a.2
        )
    };
    println!(
        "cost ratio N={last} / N={first} ({}x the members):",
        last / first
    );
    println!("  tick          {}", ratio(&ticks));
    println!("  gossip_stale  {}", ratio(&gossips));
    println!("  probe_period  {}", ratio(&periods));
    println!("total wall time {:.1} s", started.elapsed().as_secs_f64());
}
