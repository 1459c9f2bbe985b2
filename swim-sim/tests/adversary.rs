//! Issue 13's table, row by row, against a simulated cluster: the adversary
//! (`swim_sim::adversary`) sends forged packets built with the core's codec from an address
//! no node holds. Each test prints its seed on failure.

use std::time::Duration;

use swim_proto::{Config, MemberState};
use swim_sim::adversary::Attack;
use swim_sim::{NetworkSpec, World};

const N: usize = 30;
const VICTIM: u32 = 7;

fn cluster(seed: u64) -> World {
    let mut w = World::new(N, Config::lan(), NetworkSpec::default(), seed);
    w.start_warm();
    w.run_for(Duration::from_secs(5));
    w
}

/// Live members some live node holds dead: (holder, member).
fn false_deaths(w: &World, crashed: &[u32]) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for v in (0..N as u32).filter(|v| !crashed.contains(v)) {
        let Some(node) = w.node(v) else { continue };
        for u in (0..N as u32).filter(|u| *u != v && !crashed.contains(u)) {
            if node
                .member(w.name(u).as_str())
                .is_some_and(|m| m.state == MemberState::Dead)
            {
                out.push((v, u));
            }
        }
    }
    out
}

/// Crashes `VICTIM` and returns how long until every live node holds it dead (checked every
/// 100 ms, at most 300 s), failing if a live member is ever held dead meanwhile.
fn detect_crash(w: &mut World, seed: u64) -> Duration {
    w.crash(VICTIM);
    let start = w.now();
    while w.now() < start + Duration::from_secs(300) {
        w.run_for(Duration::from_millis(100));
        let wrong = false_deaths(w, &[VICTIM]);
        assert!(
            wrong.is_empty(),
            "seed {seed}: live members held dead: {wrong:?}"
        );
        if w.all_hold(VICTIM, MemberState::Dead) {
            return w.now().saturating_duration_since(start);
        }
    }
    panic!("seed {seed}: the crash was not detected everywhere within 300 s");
}

/// Row "100,000 fake member names by gossip in 1.4 s": a real crash is still declared dead at
/// every live node within 2× the time without the flood, and no live member is declared dead.
#[test]
fn a_name_flood_does_not_blind_the_detector() {
    for seed in [1, 2] {
        let mut quiet = cluster(seed);
        let normal = detect_crash(&mut quiet, seed);

        let mut w = cluster(seed);
        let flood = Attack::Flood {
            target: 0,
            names: 100_000,
            per_packet: 50,
            within: Duration::from_millis(1_400),
        };
        w.attack(&flood);
        w.run_for(Duration::from_secs(2));
        let flooded = detect_crash(&mut w, seed);
        let health = (0..N as u32)
            .filter_map(|v| w.node(v))
            .map(|n| n.health_score())
            .max()
            .unwrap_or(0);
        let held = w.node(0).unwrap().members().count();
        println!(
            "seed {seed}: crash detected everywhere in {normal:?} normally, {flooded:?} after the flood; \
             node 0 holds {held} members, highest health score {health}"
        );
        assert!(
            flooded <= normal * 2,
            "seed {seed}: detection took {flooded:?} after the flood, {normal:?} without"
        );
        assert_eq!(w.violation(), None, "seed {seed}");
    }
}

/// Rows "one forged dead or suspect at 2⁶⁴−1" and "one forged dead at the current
/// incarnation": the victim is never held dead, and is alive everywhere soon after.
#[test]
fn forged_death_and_suspicion_do_not_evict() {
    let seed = 3;
    for attack in [
        Attack::ForgedDead {
            victim: VICTIM,
            incarnation: u64::MAX,
        },
        Attack::ForgedSuspect {
            victim: VICTIM,
            incarnation: u64::MAX,
        },
        Attack::ForgedDead {
            victim: VICTIM,
            incarnation: 0,
        },
    ] {
        let mut w = cluster(seed);
        w.attack(&attack);
        for _ in 0..100 {
            w.run_for(Duration::from_millis(100));
            assert!(
                false_deaths(&w, &[]).is_empty(),
                "seed {seed}: {attack:?} killed a member"
            );
        }
        assert!(
            w.all_hold(VICTIM, MemberState::Alive),
            "seed {seed}: {attack:?}: victim not alive everywhere after 10 s"
        );
    }
}

/// Row "one forged alive at 2⁶⁴−1 with the attacker's address" (takeover), also at the
/// next incarnation: no node routes the victim to the attacker.
#[test]
fn takeover_does_not_move_a_member() {
    let seed = 4;
    for incarnation in [u64::MAX, 1, 2] {
        let mut w = cluster(seed);
        let attacker = w.attacker();
        w.attack(&Attack::Takeover {
            victim: VICTIM,
            incarnation,
        });
        w.run_for(Duration::from_secs(10));
        let name = w.name(VICTIM).to_string();
        for v in (0..N as u32).filter(|&v| v != VICTIM) {
            let m = w.node(v).unwrap().member(&name).unwrap();
            assert_eq!(
                m.addr, VICTIM,
                "seed {seed}: node {v} moved the victim to {} (attacker {attacker}) at {incarnation}",
                m.addr
            );
        }
    }
}

/// Row "forged push-pull requests naming a reply address; acks reflect with 122×
/// amplification": what nodes send to the victim's address is no more than what the attacker
/// sent in pings, and join answers to it stay within the reply limit.
#[test]
fn reflection_is_not_amplified() {
    let seed = 5;
    let mut w = cluster(seed);
    let victim_addr = w.attacker() + 50_000;
    let before = w.outside_traffic();
    let sent = w.attack(&Attack::Reflect {
        target: 0,
        victim_addr,
        pings: 1_000,
        joins: 0,
    });
    w.run_for(Duration::from_millis(500));
    let after = w.outside_traffic();
    let reflected = after.datagram_bytes - before.datagram_bytes;
    println!(
        "seed {seed}: {} B of forged pings drew {reflected} B of replies",
        sent.bytes
    );
    assert!(
        reflected <= sent.bytes,
        "seed {seed}: {reflected} B > {} B",
        sent.bytes
    );
    let rate = Config::lan().unverified_reply_rate as u64;
    assert!(
        after.datagrams - before.datagrams <= 2 * rate + 1,
        "seed {seed}"
    );

    let before = w.outside_traffic();
    w.attack(&Attack::Reflect {
        target: 0,
        victim_addr: victim_addr + 1,
        pings: 0,
        joins: 200,
    });
    w.run_for(Duration::from_millis(500));
    let answers = w.outside_traffic().streams - before.streams;
    assert!(answers <= 2 * rate, "seed {seed}: {answers} join answers");
    assert_eq!(w.violation(), None, "seed {seed}");
}
