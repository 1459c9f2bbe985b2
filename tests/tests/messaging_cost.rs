//! The cost of user events (`docs/protocol.md` §13.4): bytes sent per node per second in a
//! 1,000-node simulated cluster with one user event per second cluster-wide, against the same
//! run without events. Prints the figures; run with
//! `cargo test --release -p swim-tests --test messaging_cost -- --ignored --nocapture`.

use std::time::Duration;

use swim_proto::{Command, Config, Input};
use swim_tests::Cluster;

/// Bytes (datagrams and streams) sent by all nodes together.
fn bytes(c: &mut Cluster) -> u64 {
    c.world()
        .all_traffic()
        .iter()
        .map(|t| t.datagram_bytes + t.stream_bytes)
        .sum()
}

/// Runs `secs` seconds on a converged cluster, broadcasting `events_per_sec` 64-byte user
/// events per second from rotating origins; returns bytes per node per second.
fn measure(n: usize, seed: u64, secs: u64, events_per_sec: u64) -> f64 {
    let mut c = Cluster::new(n, Config::lan(), seed);
    c.join_all_via(0, Duration::from_secs(5));
    let ok = c.run_until_true(
        Duration::from_secs(300),
        Duration::from_secs(1),
        Cluster::converged,
    );
    assert!(ok, "seed {seed}: {n} nodes did not converge");
    c.run_for(Duration::from_secs(30));
    let before = bytes(&mut c);
    let mut k = 0u64;
    for _ in 0..secs {
        for _ in 0..events_per_sec {
            let origin = (k * 7919 % n as u64) as u32;
            let ev = Command::Broadcast {
                name: format!("ev-{k}"),
                payload: vec![0x42; 64],
            };
            c.input(origin, Input::Command(ev));
            k += 1;
        }
        c.run_for(Duration::from_secs(1));
    }
    let after = bytes(&mut c);
    (after - before) as f64 / n as f64 / secs as f64
}

#[test]
#[ignore = "a 1,000-node measurement: minutes of CPU; run explicitly with --ignored"]
fn thousand_nodes_one_user_event_per_second_cost() {
    let (n, seed, secs) = (1000, 21, 60);
    let quiet = measure(n, seed, secs, 0);
    let busy = measure(n, seed, secs, 1);
    eprintln!(
        "n={n} seed={seed} {secs}s: without events {quiet:.0} B/node/s, with 1 event/s \
         {busy:.0} B/node/s (+{:.0} B/node/s, +{:.1}%)",
        busy - quiet,
        (busy - quiet) / quiet * 100.0
    );
    assert!(busy > quiet);
}
