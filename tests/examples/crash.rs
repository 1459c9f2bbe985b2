//! Runs an in-memory cluster, crashes one node, and reports what every other node saw.
//!
//! ```text
//! cargo run --release -p swim-tests --example crash -- [--nodes N] [--seed X] [--loss P]
//! ```

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use swim_proto::{Config, Event, Instant, MemberState};
use swim_tests::Cluster;

struct Args {
    nodes: usize,
    seed: u64,
    loss: f64,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        nodes: 32,
        seed: 1,
        loss: 0.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--nodes" => {
                args.nodes = value("--nodes")?
                    .parse()
                    .map_err(|e| format!("--nodes: {e}"))?;
                if !(2..=2000).contains(&args.nodes) {
                    return Err(format!(
                        "--nodes must be within 2..=2000, got {}",
                        args.nodes
                    ));
                }
            }
            "--seed" => {
                args.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "--loss" => {
                args.loss = value("--loss")?
                    .parse()
                    .map_err(|e| format!("--loss: {e}"))?;
                if !(0.0..1.0).contains(&args.loss) {
                    return Err(format!("--loss must be within [0, 1), got {}", args.loss));
                }
            }
            "-h" | "--help" => {
                println!("usage: crash [--nodes N (32)] [--seed X (1)] [--loss P (0.0)]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

fn ms(d: Duration) -> String {
    format!("{:>8.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let wall = std::time::Instant::now();
    let n = args.nodes;
    let mut c = Cluster::new(n, Config::lan(), args.seed);
    c.loss = args.loss;
    println!(
        "swim in-memory cluster: {n} nodes, LAN config, seed {}, loss {:.1}%",
        args.seed,
        args.loss * 100.0
    );
    c.join_all_via(0, Duration::from_secs(1));
    let converged = c.run_until_true(
        Duration::from_secs(300),
        Duration::from_millis(100),
        Cluster::converged,
    );
    let joined_at = c.now();
    if !converged {
        eprintln!(
            "error: cluster did not converge within 300 s (seed {})",
            args.seed
        );
        return ExitCode::FAILURE;
    }
    println!("joined through node-0: every node sees all {n} members after {joined_at}");

    c.run_for(Duration::from_secs(10));
    let victim = (n as u32) / 2;
    let name = c.name(victim).to_string();
    let crash_at = c.now();
    let log_start = c.log.len();
    c.crash(victim);
    println!("crashed {name} at {crash_at}");
    c.run_until_true(Duration::from_secs(300), Duration::from_millis(100), |c| {
        c.states_of(&name)
            .values()
            .all(|s| *s == Some(MemberState::Dead))
    });
    c.run_for(Duration::from_secs(5));

    let mut seen: BTreeMap<u32, (Option<Instant>, Option<Instant>)> = BTreeMap::new();
    for o in &c.log[log_start..] {
        let e = seen.entry(o.observer).or_default();
        match &o.event {
            Event::MemberSuspected { member, .. } if member.name.as_str() == name => {
                e.0.get_or_insert(o.at);
            }
            Event::MemberFailed(m) if m.name.as_str() == name => {
                e.1.get_or_insert(o.at);
            }
            _ => {}
        }
    }
    println!(
        "\n{:<10} {:>11} {:>11}  view",
        "observer", "suspected", "dead"
    );
    let mut dead_times = Vec::new();
    for a in c.running() {
        let (s, d) = seen.get(&a).copied().unwrap_or_default();
        let show = |t: Option<Instant>| t.map_or("       never".into(), |t| ms(t - crash_at));
        let node = c.node(a).unwrap();
        println!(
            "{:<10} {} {}  {} alive, {} suspect, {} dead",
            c.name(a),
            show(s),
            show(d),
            node.count(MemberState::Alive) + 1,
            node.count(MemberState::Suspect),
            node.count(MemberState::Dead)
        );
        if let Some(d) = d {
            dead_times.push(d - crash_at);
        }
    }
    dead_times.sort();
    let pct = |p: f64| dead_times[((dead_times.len() - 1) as f64 * p) as usize];
    let false_deaths =
        c.count_events(|o| matches!(&o.event, Event::MemberFailed(m) if m.name.as_str() != name));
    let sent: u64 = c
        .running()
        .iter()
        .map(|&a| c.node(a).unwrap().stats().datagram_bytes_sent)
        .sum();
    let secs = c.now().as_nanos() as f64 / 1e9;
    println!("\nsummary");
    println!(
        "  observers that declared {name} dead: {}/{}",
        dead_times.len(),
        n - 1
    );
    if !dead_times.is_empty() {
        println!(
            "  time to dead: p50 {}  p99 {}  max {}",
            ms(pct(0.5)),
            ms(pct(0.99)),
            ms(pct(1.0))
        );
    }
    println!("  false deaths: {false_deaths}");
    println!(
        "  datagram bytes per node per second: {:.0}",
        sent as f64 / (n as f64 - 1.0) / secs
    );
    println!(
        "  simulated {secs:.0} s in {:.2} s of wall time",
        wall.elapsed().as_secs_f64()
    );
    if dead_times.len() == n - 1 && false_deaths == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
