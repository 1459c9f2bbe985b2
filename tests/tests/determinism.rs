//! Same config, seed and inputs give the same outputs, byte for byte, over a long randomized
//! run with loss, crashes, restarts, leaves and metadata changes.

use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use swim_proto::{Command, Config, Input};
use swim_tests::Cluster;

fn chaotic_run(seed: u64) -> (u64, usize) {
    let mut c = Cluster::new(24, Config::lan(), seed);
    c.loss = 0.05;
    c.join_all_via(0, Duration::from_secs(2));
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xfeed);
    for _ in 0..60 {
        c.run_for(Duration::from_secs(5));
        let a = (rng.next_u64() % 24) as u32;
        match rng.next_u64() % 6 {
            0 => c.crash(a),
            1 => c.restart(a, (a + 1) % 24),
            2 => c.input(
                a,
                Input::Command(Command::UpdateMetadata(vec![rng.next_u64() as u8; 8])),
            ),
            3 => c.input(a, Input::Command(Command::Leave)),
            4 => c.isolate(a),
            _ => c.heal(),
        }
    }
    (c.output_hash(), c.log.len())
}

#[test]
fn same_seed_same_outputs_byte_for_byte() {
    let first = chaotic_run(42);
    let second = chaotic_run(42);
    assert_eq!(first, second, "seed 42: two runs diverged");
    assert!(
        first.1 > 100,
        "the run exercised the protocol ({} events)",
        first.1
    );
    let other = chaotic_run(43);
    assert_ne!(first.0, other.0, "different seeds should differ");
}

/// The output hash of `chaotic_run(42)`, pinned: a refactoring that must not change behaviour
/// (issue 11's restructuring of swim-proto) keeps it. Pinned before that restructuring (then
/// 0x4961_6116_f1b9_c2d0 with 3,090 events on the old harness; moving the harness onto
/// `swim_sim::World` changed the harness's own seeds and loss draws, so the value was re-taken
/// on the new harness with the old core, and the restructured core reproduces it); a
/// deliberate protocol change updates it in the same commit and says why (issue 12: death
/// claims heard from others became accusations, and suspicions sized before a join are
/// re-sized; was 0x4f47_eaa3_d881_c8cf with 3,040 events; then issue 13's admission rules
/// (incarnation window, claims merged at the held address, replies only to verified
/// addresses) and issue 14's messaging, each neutral on its own base, met the accusation rule
/// in one tree: was 0x380a_5b95_120f_ba1e with 3,131 events; then issue 13's reply limits:
/// acks and nacks to an address no member is held at (a restarted node at a new address, a
/// joiner not yet gossiped) go bare, without piggybacked gossip and with the checksum
/// zeroed, and such a ping's checksum no longer feeds the view tracker: was 0x2e3f_c725_87a1_1048 with 3,133 events; then issue
/// 13's hearsay rule: a failed probe of, or a missing nack from, a member that never answered
/// this node's probe raises no local health, so timeouts stretch less after restarts: was
/// 0x7be1_4cc2_732b_6020 with 3,092 events; then issue 14's lifecycle status added
/// `StatusChanged` events and nothing else (alone on its base it moved 0x2e3f_c725_87a1_1048 /
/// 3,133 to 0x557a_39c8_3f64_1c4f / 3,214): was 0xd9d8_a87a_8716_1745 with 3,003 events; then issue 12's bytes and heal work (periodic push-pull skipped while the
/// last checksum heard agreed; heal probes) and wire version 2 (one-byte header, 4-byte ping
/// tag and checksums, section flags): was 0xd779_fabe_7b06_c822 with 3,084 events).
/// The hash covers
/// packet bytes and the `Debug` text of events (`Cluster::output_hash`, a fixed-key SipHash).
#[test]
fn chaotic_run_output_is_pinned() {
    let got = chaotic_run(42);
    assert_eq!(
        got,
        (PINNED_HASH, PINNED_EVENTS),
        "seed 42: outputs moved (got ({:#018x}, {}))",
        got.0,
        got.1
    );
}

const PINNED_HASH: u64 = 0x7b10_e9b9_c210_e062;
const PINNED_EVENTS: usize = 3119;
