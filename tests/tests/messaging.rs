//! Application messaging on the in-memory harness (`docs/protocol.md` §13): direct messages,
//! Serf user events and queries. Each failure message carries the seed that reproduces it.

use std::collections::BTreeMap;
use std::time::Duration;

use swim_proto::{Command, CommandError, Config, Event, Input, QueryFilter};
use swim_tests::{Addr, Cluster};

fn joined(n: usize, seed: u64, loss: f64) -> Cluster {
    let mut c = Cluster::joined(n, Config::lan(), seed);
    c.loss = loss;
    c
}

fn send(to: &str, payload: Vec<u8>, reliable: bool) -> Input<Addr> {
    Input::Command(Command::Send {
        to: to.into(),
        channel: 7,
        payload,
        reliable,
    })
}

/// Runs for `d` in 20 ms steps; every node answers every query it is handed with its name.
/// `seen` is how much of the log has been scanned for queries already.
fn run_responding(c: &mut Cluster, d: Duration, seen: &mut usize) {
    let end = c.now() + d;
    while c.now() < end {
        c.run_for(Duration::from_millis(20));
        let new: Vec<_> = c.log[*seen..]
            .iter()
            .filter_map(|o| match &o.event {
                Event::Query { id, .. } => Some((o.observer, id.clone())),
                _ => None,
            })
            .collect();
        *seen = c.log.len();
        for (a, id) in new {
            let payload = c.name(a).as_bytes().to_vec();
            c.input(a, Input::Command(Command::Respond { query: id, payload }));
        }
    }
}

fn rejected(c: &Cluster, from: usize) -> Vec<CommandError> {
    c.log[from..]
        .iter()
        .filter_map(|o| match &o.event {
            Event::CommandRejected(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// §13.1: datagram and stream messages both arrive as `Event::Message` with sender and
/// channel; an unknown target and an oversize datagram payload are typed errors.
#[test]
fn direct_messages_arrive_and_misuse_is_refused() {
    let mut c = joined(5, 11, 0.0);
    let to = c.name(3).to_string();
    c.input(1, send(&to, b"fast".to_vec(), false));
    c.input(1, send(&to, vec![9; 20_000], true));
    c.run_for(Duration::from_secs(1));
    let mut got: Vec<_> = c
        .log
        .iter()
        .filter_map(|o| match &o.event {
            Event::Message {
                from,
                channel,
                payload,
            } => Some((o.observer, from.to_string(), *channel, payload.len())),
            _ => None,
        })
        .collect();
    got.sort();
    let from = c.name(1).to_string();
    assert_eq!(
        got,
        vec![(3, from.clone(), 7, 4), (3, from, 7, 20_000)],
        "seed 11"
    );
    let before = c.log.len();
    c.input(1, send("nobody", b"x".to_vec(), false));
    c.input(1, send(&to, vec![0; 1400], false));
    c.input(1, send(&to, vec![0; 65 * 1024], true));
    let errs = rejected(&c, before);
    assert!(
        matches!(errs[0], CommandError::UnknownMember { .. }),
        "{errs:?}"
    );
    assert!(
        matches!(errs[1], CommandError::PayloadTooLarge { .. }),
        "{errs:?}"
    );
    assert!(
        matches!(errs[2], CommandError::PayloadTooLarge { max: 65536, .. }),
        "{errs:?}"
    );
}

/// Serf user events: coalescing replaces a name's older still-queued event at its origin, and
/// every delivered event reaches each node once.
#[test]
fn user_events_coalesce_by_name_at_the_origin() {
    let mut c = joined(5, 12, 0.0);
    c.input(
        2,
        Input::Command(Command::Broadcast {
            name: "cfg".into(),
            payload: b"1".to_vec(),
        }),
    );
    c.input(
        2,
        Input::Command(Command::Broadcast {
            name: "cfg".into(),
            payload: b"2".to_vec(),
        }),
    );
    c.run_for(Duration::from_secs(5));
    let mut per: BTreeMap<(Addr, Vec<u8>), usize> = BTreeMap::new();
    for o in &c.log {
        if let Event::UserEvent { payload, .. } = &o.event {
            *per.entry((o.observer, payload.clone())).or_default() += 1;
        }
    }
    for a in 0..5 {
        assert_eq!(per.get(&(a, b"2".to_vec())), Some(&1), "seed 12: node {a}");
    }
    // The first was still queued when the second came: only its origin saw it.
    assert_eq!(per.get(&(2, b"1".to_vec())), Some(&1));
    assert_eq!(c.node(2).unwrap().stats().messaging.coalesced, 1);
}

/// Queries with a name filter: only the named members answer, the asker gets every answer and
/// a tally at the deadline.
#[test]
fn filtered_query_collects_answers_of_the_named_members() {
    let mut c = joined(6, 13, 0.0);
    let names: Vec<String> = [1, 4].iter().map(|&a| c.name(a).to_string()).collect();
    c.input(
        0,
        Input::Command(Command::Query {
            name: "load".into(),
            payload: b"?".to_vec(),
            filter: QueryFilter {
                names: names.clone(),
                meta: Vec::new(),
            },
            timeout: Duration::from_secs(3),
        }),
    );
    let mut seen = 0;
    run_responding(&mut c, Duration::from_secs(4), &mut seen);
    let mut responders: Vec<String> = c
        .log
        .iter()
        .filter_map(|o| match &o.event {
            Event::QueryResponse { from, .. } if o.observer == 0 => Some(from.to_string()),
            _ => None,
        })
        .collect();
    responders.sort();
    assert_eq!(responders, names, "seed 13");
    let done: Vec<_> = c
        .log
        .iter()
        .filter_map(|o| match &o.event {
            Event::QueryDone {
                acks, responses, ..
            } => Some((*acks, *responses)),
            _ => None,
        })
        .collect();
    assert_eq!(done, vec![(2, 2)], "seed 13");
}

/// The acceptance run: 200 nodes at 5% datagram loss. Every user event is delivered
/// exactly once to every live node; every query collects >= 99% of the answers before its
/// deadline; every reliable message arrives; >= 94% of unreliable ones do.
#[test]
fn two_hundred_nodes_at_five_percent_loss() {
    let seed = 14;
    let n = 200;
    let mut c = joined(n, seed, 0.05);
    let start = c.log.len();
    let mut seen = start;
    let (events, queries, msgs) = (20usize, 5usize, 200usize);
    for i in 0..events {
        let origin = (i * 37 % n) as Addr;
        let ev = Command::Broadcast {
            name: format!("ev-{i}"),
            payload: format!("{i}").into_bytes(),
        };
        c.input(origin, Input::Command(ev));
        run_responding(&mut c, Duration::from_millis(100), &mut seen);
    }
    for i in 0..queries {
        let q = Command::Query {
            name: "ping".into(),
            payload: Vec::new(),
            filter: QueryFilter::default(),
            timeout: Duration::from_secs(5),
        };
        c.input((i * 53 % n) as Addr, Input::Command(q));
        run_responding(&mut c, Duration::from_millis(200), &mut seen);
    }
    for i in 0..msgs {
        let (a, b) = ((i % n) as Addr, ((i * 7 + 3) % n) as Addr);
        let to = c.name(b).to_string();
        c.input(a, send(&to, format!("u{i}").into_bytes(), false));
        c.input(a, send(&to, format!("r{i}").into_bytes(), true));
    }
    run_responding(&mut c, Duration::from_secs(15), &mut seen);
    let log = &c.log[start..];
    // Events: exactly once per (node, event).
    let mut deliveries: BTreeMap<(Addr, String), usize> = BTreeMap::new();
    for o in log {
        if let Event::UserEvent { name, .. } = &o.event {
            *deliveries.entry((o.observer, name.clone())).or_default() += 1;
        }
    }
    let mut total = 0;
    for a in 0..n as Addr {
        for i in 0..events {
            let k = deliveries
                .get(&(a, format!("ev-{i}")))
                .copied()
                .unwrap_or(0);
            assert_eq!(k, 1, "seed {seed}: node {a} got event {i} {k} times");
            total += k;
        }
    }
    assert_eq!(total, n * events);
    // Queries: the tally at each deadline.
    let done: Vec<(usize, usize)> = log
        .iter()
        .filter_map(|o| match &o.event {
            Event::QueryDone {
                acks, responses, ..
            } => Some((*acks, *responses)),
            _ => None,
        })
        .collect();
    assert_eq!(done.len(), queries, "seed {seed}");
    for (acks, responses) in &done {
        assert!(
            *responses * 100 >= n * 99,
            "seed {seed}: {responses}/{n} answers"
        );
        assert!(*acks > 0, "seed {seed}");
    }
    // Messages.
    let (mut reliable, mut unreliable) = (0, 0);
    for o in log {
        if let Event::Message { payload, .. } = &o.event {
            match payload.first() {
                Some(b'r') => reliable += 1,
                Some(b'u') => unreliable += 1,
                _ => {}
            }
        }
    }
    assert_eq!(reliable, msgs, "seed {seed}: reliable messages lost");
    assert!(
        unreliable * 100 >= msgs * 94,
        "seed {seed}: {unreliable}/{msgs} unreliable messages arrived"
    );
    eprintln!(
        "seed {seed}: events {total}/{} deliveries, queries {done:?}, reliable {reliable}/{msgs}, unreliable {unreliable}/{msgs}",
        n * events
    );
}
