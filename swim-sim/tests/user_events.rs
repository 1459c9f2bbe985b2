//! The user-event knob (issue 14): `Scenario::user_events` (`swim-sim run
//! --user-events-per-sec R`) broadcasts Serf user events during a run, and their cost shows in
//! the report's load.

use swim_sim::{RunOptions, Scenario, ScenarioBuilder, UserEvents, run};

fn steady(events: Option<f64>) -> Scenario {
    let mut s = ScenarioBuilder::new(50).seconds(60).build();
    s.user_events = events.map(|per_sec| UserEvents {
        per_sec,
        ..UserEvents::default()
    });
    s
}

#[test]
fn user_events_cost_bytes_and_leave_the_run_healthy() {
    let seed = 14;
    let quiet = run(&steady(None), seed, RunOptions::default());
    let busy = run(&steady(Some(2.0)), seed, RunOptions::default());
    assert!(
        busy.violation.is_none(),
        "seed {seed}: {:?}",
        busy.violation
    );
    assert!(busy.converged, "seed {seed}");
    let (q, b) = (quiet.load.bytes_per_node_s, busy.load.bytes_per_node_s);
    assert!(b > q * 2.0, "seed {seed}: {q:.0} vs {b:.0} B/node/s");
    // The report carries the core's protocol timings, merged over the nodes.
    let t = &busy.timings;
    assert!(t.probe_rtt_direct.count > 1_000, "{t:?}");
    assert!(
        (1_000.0..=1_130.0).contains(&t.protocol_period.p50_ms),
        "{t:?}"
    );
    assert!(busy.to_table().contains("timings: probe rtt p50"));
}

#[test]
fn a_bad_rate_is_refused_by_name() {
    let mut s = steady(Some(0.0));
    assert!(s.validate().unwrap_err().0.contains("user_events.per_sec"));
    s.user_events = Some(UserEvents {
        payload_size: 100_000,
        ..UserEvents::default()
    });
    assert!(s.validate().unwrap_err().0.contains("payload_size"));
}
