//! Replicated state under abuse (issue 13, `docs/security.md`): floods of junk entries from
//! forged origins, one origin trying to fill the store, and stamps from the future. Entries
//! are built with the core's own codec and injected into the in-memory harness. Every failure
//! message carries the seed that reproduces it.

use std::time::Duration;

use swim_proto::wire::{self, DeltaGroup, StateSync, StreamHeader, StreamKind, SyncPhase};
use swim_proto::{Command, Config, Input, StateWrite};
use swim_tests::{Addr, Cluster};

/// Where the attacker sends from: no member's address.
const ATTACKER: Addr = 9_999;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn config() -> Config {
    let mut c = Config::local();
    c.state.tombstone_ttl = secs(30);
    c.state.non_member_ttl = secs(20);
    // A store ten times smaller than the default, so a flood of 200,000 entries is twenty
    // times what it holds, and the harness's check of every invariant after every step (O(store))
    // stays quick.
    c.state.max_entries = 10_000;
    c.state.max_origins = 8_192;
    c
}

/// A state stream carrying `groups` (the last phase of an exchange: nothing is answered).
fn deltas(groups: Vec<DeltaGroup<'_>>) -> Vec<u8> {
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
    wire::encode_stream_with_state(b"", &header, &[], &sync)
}

/// Sends `n` junk entries to `at`, each from its own forged origin (`forged-0`, ...).
fn flood_forged_origins(c: &mut Cluster, at: Addr, n: usize) {
    let names: Vec<String> = (0..n).map(|i| format!("forged-{i}")).collect();
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
        let bytes = deltas(groups);
        c.input(
            at,
            Input::Stream {
                from: ATTACKER,
                bytes,
            },
        );
    }
}

/// Sends `n` junk entries to `at`, all from one origin (`origin`).
fn flood_one_origin(c: &mut Cluster, at: Addr, origin: &str, n: usize) {
    let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
    for (chunk_no, chunk) in keys.chunks(2_000).enumerate() {
        let base = (chunk_no * 2_000) as u64;
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let seq = base + i as u64 + 1;
                (k.as_str(), seq, seq, Some(&b"junk"[..]))
            })
            .collect();
        let group = DeltaGroup {
            ty: "junk",
            origin,
            watermark: base + chunk.len() as u64,
            entries,
        };
        c.input(
            at,
            Input::Stream {
                from: ATTACKER,
                bytes: deltas(vec![group]),
            },
        );
    }
}

fn publish(c: &mut Cluster, at: Addr, key: &str, value: &[u8]) {
    c.input(
        at,
        Input::Command(Command::Publish(StateWrite::new("real", key, value))),
    );
}

fn everyone_has(c: &Cluster, key: &str, value: &[u8]) -> bool {
    c.running().iter().all(|&a| {
        c.node(a)
            .and_then(|n| n.state_get("real", key))
            .is_some_and(|e| e.value.as_deref() == Some(value))
    })
}

fn junk_held(c: &Cluster, at: Addr) -> usize {
    c.node(at).map_or(0, |n| n.state_iter("junk").count())
}

fn rejections(c: &Cluster) -> bool {
    c.running()
        .iter()
        .any(|&a| c.node(a).unwrap().stats().state.rejected_future > 0)
}

/// Issue 13: under a flood of 200,000 junk entries from forged origins (and 200,000 more from
/// one origin), real publishes still succeed and reach every node; non-members hold at most
/// their share of every store, and their entries expire once `non_member_ttl` has passed.
#[test]
fn real_publishes_reach_every_node_under_a_flood_of_junk() {
    let seed = 13;
    let mut c = Cluster::joined(5, config(), seed);
    flood_forged_origins(&mut c, 0, 200_000);
    flood_one_origin(&mut c, 1, "forged-greedy", 200_000);
    let cfg = config();
    let (share, _, share_origins) = cfg.state.non_member_quota();
    for a in c.running() {
        let s = &c.node(a).unwrap().stats().state;
        assert!(
            junk_held(&c, a) <= share,
            "seed {seed}: node {a} holds {} junk entries, share {share}",
            junk_held(&c, a)
        );
        assert!(
            s.origins as usize <= cfg.state.max_origins,
            "seed {seed}: node {a} keeps {} origins",
            s.origins
        );
        let _ = share_origins;
    }
    let s0 = c.node(0).unwrap().stats().state;
    assert!(
        s0.rejected_non_member > 0,
        "seed {seed}: the flood was refused and counted: {s0:?}"
    );
    // Publishes on the flooded nodes and elsewhere succeed and reach everyone.
    for (i, at) in [0, 1, 2].into_iter().enumerate() {
        publish(&mut c, at, &format!("r{i}"), b"real");
    }
    let rejected = c.log.iter().any(|o| {
        matches!(
            o.event,
            swim_proto::Event::CommandRejected(swim_proto::CommandError::State { .. })
        )
    });
    assert!(!rejected, "seed {seed}: a real publish was refused");
    let ok = c.run_until_true(secs(15), Duration::from_millis(100), |c| {
        (0..3).all(|i| everyone_has(c, &format!("r{i}"), b"real"))
    });
    assert!(ok, "seed {seed}: real publishes did not reach every node");
    // The forged origins never become members: their entries expire everywhere.
    let ok = c.run_until_true(secs(120), Duration::from_millis(500), |c| {
        c.running().iter().all(|&a| junk_held(c, a) == 0)
    });
    assert!(ok, "seed {seed}: junk of non-members did not expire");
    assert!(
        (0..3).all(|i| everyone_has(&c, &format!("r{i}"), b"real")),
        "seed {seed}: real entries stay"
    );
    assert!(
        !rejections(&c),
        "seed {seed}: nothing honest was taken for a future stamp"
    );
}

/// Issue 13: an entry stamped `u64::MAX` is refused and counted everywhere; later honest writes
/// of that key win, and replicas agree.
#[test]
fn a_stamp_from_the_future_cannot_pin_a_key() {
    let seed = 14;
    let mut c = Cluster::joined(4, config(), seed);
    publish(&mut c, 1, "k", b"v1");
    assert!(c.run_until_true(secs(10), Duration::from_millis(100), |c| {
        everyone_has(c, "k", b"v1")
    }));
    let origin = c.name(1).to_string();
    for at in c.running() {
        let group = DeltaGroup {
            ty: "real",
            origin: &origin,
            watermark: 0,
            entries: vec![("k", u64::MAX, 2, Some(&b"forged"[..]))],
        };
        c.input(
            at,
            Input::Stream {
                from: ATTACKER,
                bytes: deltas(vec![group]),
            },
        );
    }
    for at in c.running() {
        let n = c.node(at).unwrap();
        assert_eq!(n.stats().state.rejected_future, 1, "seed {seed}: node {at}");
        assert!(
            n.state_clock() < 1 << 20,
            "seed {seed}: the clock did not jump"
        );
    }
    publish(&mut c, 2, "k", b"v2");
    let ok = c.run_until_true(secs(10), Duration::from_millis(100), |c| {
        everyone_has(c, "k", b"v2")
    });
    assert!(ok, "seed {seed}: the later honest write was lost");
}

// ---------------------------------------------------------------- hostile stamps, by proptest

use proptest::prelude::*;

/// One step of a proptest run.
#[derive(Clone, Debug)]
enum Op {
    /// Node `node` publishes `value` under its own key `k{key}` (keys are per node, so the
    /// last write of a key is well defined: its origin's clock only grows).
    Honest { node: usize, key: u8, value: u8 },
    /// A forged entry stamped far in the future (`version` or `seq` beyond
    /// `max_version_jump`), under a member's name or a forged one, on an honest key or not.
    Future {
        at: usize,
        origin: usize,
        key: u8,
        version: u64,
        seq: u64,
        watermark: u64,
    },
    /// Junk from a forged origin with a plausible stamp, on keys no honest node writes.
    Junk { at: usize, origin: u16, n: u16 },
    /// Time passes.
    Wait { ms: u16 },
}

const NODES: usize = 3;

fn far() -> impl Strategy<Value = u64> {
    prop_oneof![Just(u64::MAX), Just(u64::MAX - 1), (1u64 << 33)..u64::MAX]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..NODES, 0..4u8, any::<u8>())
            .prop_map(|(node, key, value)| Op::Honest { node, key, value }),
        2 => (0..NODES, 0..NODES + 1, 0..4u8, far(), prop_oneof![Just(1u64), far()], prop_oneof![Just(0u64), far()])
            .prop_map(|(at, origin, key, version, seq, watermark)| {
                // At least one of the stamps is from the future.
                let (version, seq) = if seq == 1 { (version, 1) } else { (1, seq) };
                Op::Future { at, origin, key, version, seq, watermark }
            }),
        1 => (0..NODES, any::<u16>(), 1..400u16).prop_map(|(at, origin, n)| Op::Junk { at, origin, n }),
        2 => (0..2_000u16).prop_map(|ms| Op::Wait { ms }),
    ]
}

fn run_ops(seed: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut cfg = config();
    cfg.state.max_entries = 1_000;
    cfg.state.max_origins = 256;
    let mut c = Cluster::joined(NODES, cfg.clone(), seed);
    let names: Vec<String> = (0..NODES as Addr).map(|a| c.name(a).to_string()).collect();
    let mut last: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    let mut futures = 0u64;
    for op in ops {
        match *op {
            Op::Honest { node, key, value } => {
                let k = format!("n{node}-k{key}");
                publish(&mut c, node as Addr, &k, &[value]);
                last.insert(k, vec![value]);
            }
            Op::Future {
                at,
                origin,
                key,
                version,
                seq,
                watermark,
            } => {
                let origin = names
                    .get(origin)
                    .cloned()
                    .unwrap_or_else(|| "forged".into());
                let k = format!("n{}-k{key}", at);
                let group = DeltaGroup {
                    ty: "real",
                    origin: &origin,
                    watermark,
                    entries: vec![(k.as_str(), version, seq, Some(&b"forged"[..]))],
                };
                c.input(
                    at as Addr,
                    Input::Stream {
                        from: ATTACKER,
                        bytes: deltas(vec![group]),
                    },
                );
                futures += 1;
            }
            Op::Junk { at, origin, n } => {
                let origin = format!("forged-{origin}");
                let keys: Vec<String> = (0..n).map(|i| format!("{origin}-{i}")).collect();
                let entries = keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (k.as_str(), i as u64 + 1, i as u64 + 1, Some(&b"junk"[..])))
                    .collect();
                let group = DeltaGroup {
                    ty: "junk",
                    origin: &origin,
                    watermark: n.into(),
                    entries,
                };
                c.input(
                    at as Addr,
                    Input::Stream {
                        from: ATTACKER,
                        bytes: deltas(vec![group]),
                    },
                );
            }
            Op::Wait { ms } => c.run_for(Duration::from_millis(ms.into())),
        }
    }
    let settled = c.run_until_true(secs(30), Duration::from_millis(250), |c| {
        last.iter().all(|(k, v)| everyone_has(c, k, v))
    });
    let views: Vec<Vec<(String, Option<Vec<u8>>)>> = c
        .running()
        .iter()
        .map(|&a| {
            c.node(a)
                .unwrap()
                .state_iter("real")
                .map(|(k, e)| (k.key().to_string(), e.value.as_deref().map(<[u8]>::to_vec)))
                .collect()
        })
        .collect();
    prop_assert!(
        settled,
        "seed {seed}: an honest write was lost or never arrived: {views:?}"
    );
    prop_assert!(
        views.windows(2).all(|w| w[0] == w[1]),
        "seed {seed}: honest replicas differ: {views:?}"
    );
    let (share, _, _) = cfg.state.non_member_quota();
    let mut refused = 0;
    for a in c.running() {
        let n = c.node(a).unwrap();
        let s = n.stats().state;
        refused += s.rejected_future;
        prop_assert!(
            s.entries as usize <= cfg.state.max_entries,
            "seed {seed}: entries bound"
        );
        prop_assert!(junk_held(&c, a) <= share, "seed {seed}: non-member share");
        prop_assert!(
            n.state_clock() < 1 << 32,
            "seed {seed}: the clock did not jump"
        );
        n.check_invariants();
    }
    prop_assert!(
        refused >= futures,
        "seed {seed}: every future stamp refused and counted"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Issue 13: under hostile stamps (from the future, under members' names or forged ones)
    /// and junk from forged origins, honest replicas converge, no honest write is lost, and
    /// every bound holds.
    #[test]
    fn honest_replicas_converge_under_hostile_stamps(
        seed in 1u64..1_000,
        ops in prop::collection::vec(op(), 1..40),
    ) {
        run_ops(seed, &ops)?;
    }
}
