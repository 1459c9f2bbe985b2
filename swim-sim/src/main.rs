//! `swim-sim`: run, swarm-test and replay simulated SWIM clusters.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use swim_sim::scenario::BUILT_IN;
use swim_sim::trace_file::{self, ReplayOptions};
use swim_sim::{Knobs, Progress, RunOptions, Scenario, derive_seed, run};

const USAGE: &str = "\
usage:
  swim-sim run --scenario NAME [--nodes N] [--seconds S] [--seed X] [--loss P]
               [--json] [--digest] [--without-state] [--record FILE] [--report FILE.html]
  swim-sim run --scenario-file FILE.toml [--seed X] [--json] [--record FILE] [--report FILE.html]
  swim-sim swarm [--runs R] [--seed X]
  swim-sim replay FILE [--node NAME] [--until T] [--verbose]
  swim-sim scenarios

scenarios: steady, crash, loss, slow, pause, partition, churn, join-storm, restart-all, state, swarm
defaults: --nodes 100 --seconds 120 --seed 1 --runs 100; --loss adds datagram loss (0.05 for `loss`
and `state`); --without-state drops a scenario's replicated-state writes (a baseline to compare)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => cmd_run(&args[1..]),
        Some("swarm") => cmd_swarm(&args[1..]),
        Some("replay") => cmd_replay(&args[1..]),
        Some("scenarios") => {
            println!("{}", BUILT_IN.join("\n"));
            Ok(ExitCode::SUCCESS)
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Some(other) => Err(format!("unknown command {other:?}")),
        None => Err("missing command".into()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Flags as `--name value` pairs plus positional arguments; every flag is checked.
struct Flags {
    pairs: Vec<(String, Option<String>)>,
    positional: Vec<String>,
}

impl Flags {
    fn parse(args: &[String], switches: &[&str], valued: &[&str]) -> Result<Flags, String> {
        let mut pairs = Vec::new();
        let mut positional = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if switches.contains(&a.as_str()) {
                pairs.push((a.clone(), None));
            } else if valued.contains(&a.as_str()) {
                let v = it.next().ok_or(format!("{a} needs a value"))?;
                pairs.push((a.clone(), Some(v.clone())));
            } else if a.starts_with("--") {
                return Err(format!("unknown option {a}"));
            } else {
                positional.push(a.clone());
            }
        }
        Ok(Flags { pairs, positional })
    }

    fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| format!("{name} {v:?}: {e}")),
        }
    }
}

fn progress_printer() -> Box<dyn FnMut(Progress)> {
    let start = std::time::Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut last = 0.0f64;
    Box::new(move |p: Progress| {
        let wall = start.elapsed().as_secs_f64();
        if wall < 2.0 || (!tty && wall - last < 10.0) || (tty && wall - last < 0.2) {
            return;
        }
        last = wall;
        let frac = (p.now.as_nanos() as f64 / p.end.as_nanos().max(1) as f64).min(1.0);
        let width = 30;
        let filled = (frac * width as f64) as usize;
        let bar: String = "=".repeat(filled) + &" ".repeat(width - filled);
        let line = format!(
            "[{bar}] {:>3.0}%  sim {:.0}/{:.0} s  {:.1}M events  {wall:.1} s wall",
            frac * 100.0,
            p.now.as_nanos() as f64 / 1e9,
            p.end.as_nanos() as f64 / 1e9,
            p.events as f64 / 1e6
        );
        if tty {
            eprint!("\r{line}");
        } else {
            eprintln!("{line}");
        }
    })
}

fn cmd_run(args: &[String]) -> Result<ExitCode, String> {
    let f = Flags::parse(
        args,
        &["--json", "--digest", "--without-state"],
        &[
            "--scenario",
            "--scenario-file",
            "--nodes",
            "--seconds",
            "--seed",
            "--loss",
            "--record",
            "--report",
        ],
    )?;
    if let Some(p) = f.positional.first() {
        return Err(format!("unexpected argument {p:?}"));
    }
    let seed: u64 = f.num("--seed", 1)?;
    let scenario = match (f.get("--scenario"), f.get("--scenario-file")) {
        (Some(_), Some(_)) => return Err("give --scenario or --scenario-file, not both".into()),
        (None, None) => return Err("--scenario NAME or --scenario-file FILE is required".into()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--scenario-file {path}: {e}"))?;
            Scenario::from_toml(&text).map_err(|e| format!("--scenario-file {path}: {e}"))?
        }
        (Some(name), None) => {
            let nodes: usize = f.num("--nodes", 100)?;
            let seconds: f64 = f.num("--seconds", 120.0)?;
            if !(seconds.is_finite() && seconds > 0.0) {
                return Err(format!("--seconds must be positive, got {seconds}"));
            }
            if !(2..=100_000).contains(&nodes) {
                return Err(format!("--nodes must be within 2..=100000, got {nodes}"));
            }
            let loss = match f.get("--loss") {
                None => None,
                Some(v) => {
                    let p: f64 = v.parse().map_err(|e| format!("--loss {v:?}: {e}"))?;
                    if !(0.0..=1.0).contains(&p) {
                        return Err(format!("--loss must be within 0..=1, got {p}"));
                    }
                    Some(p)
                }
            };
            let knobs = Knobs {
                nodes,
                duration: Duration::from_secs_f64(seconds),
                loss,
            };
            Scenario::built_in(name, &knobs, seed).map_err(|e| format!("--scenario: {e}"))?
        }
    };
    let mut scenario = scenario;
    if f.has("--without-state") {
        // The same run without state traffic, to compare membership metrics against.
        scenario.workload = None;
    }
    let record = match f.get("--record") {
        Some(path) => Some(
            trace_file::create(&PathBuf::from(path))
                .map_err(|e| format!("--record {path}: {e}"))?,
        ),
        None => None,
    };
    let report_path = f.get("--report").map(PathBuf::from);
    let opts = RunOptions {
        record,
        progress: Some(progress_printer()),
        digest: f.has("--digest"),
        ..RunOptions::default()
    };
    let report = run(&scenario, seed, opts);
    if std::io::stderr().is_terminal() && report.wall_s >= 2.0 {
        eprintln!();
    }
    if let Some(path) = &report_path {
        std::fs::write(path, swim_sim::html::render(&report))
            .map_err(|e| format!("--report {}: {e}", path.display()))?;
    }
    if f.has("--json") {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
        if let Some(path) = &report_path {
            println!("report written to {}", path.display());
        }
    }
    if let Some(v) = &report.violation {
        eprintln!("invariant violated: {v}");
        eprintln!("reproduce: swim-sim run {}", reproduce_args(args));
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn reproduce_args(args: &[String]) -> String {
    args.iter()
        .filter(|a| *a != "--json")
        .cloned()
        .collect::<Vec<_>>()
        .join(" ")
}

fn cmd_swarm(args: &[String]) -> Result<ExitCode, String> {
    let f = Flags::parse(args, &[], &["--runs", "--seed"])?;
    if let Some(p) = f.positional.first() {
        return Err(format!("unexpected argument {p:?}"));
    }
    let runs: u64 = f.num("--runs", 100)?;
    let seed: u64 = f.num("--seed", 1)?;
    let start = std::time::Instant::now();
    let mut failures = Vec::new();
    let mut sim_seconds = 0.0;
    for i in 0..runs {
        let case = derive_seed(seed, 0x5a4a, i);
        let scenario = Scenario::swarm(case);
        let report = run(&scenario, case, RunOptions::default());
        sim_seconds += report.seconds;
        if let Some(v) = report.violation {
            eprintln!("FAIL run {i}: {v}");
            eprintln!("  reproduce: swim-sim run --scenario swarm --seed {case}");
            failures.push(case);
        }
        if std::io::stderr().is_terminal() {
            eprint!("\rswarm: {}/{runs} runs, {} failed", i + 1, failures.len());
        }
    }
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    println!(
        "swarm: {runs} runs from seed {seed}, {} failed, {sim_seconds:.0} simulated seconds in {:.1} s",
        failures.len(),
        start.elapsed().as_secs_f64()
    );
    for case in &failures {
        println!("failing seed {case}: swim-sim run --scenario swarm --seed {case}");
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn cmd_replay(args: &[String]) -> Result<ExitCode, String> {
    let f = Flags::parse(args, &["--verbose"], &["--node", "--until"])?;
    let [path] = f.positional.as_slice() else {
        return Err("replay needs exactly one trace FILE".into());
    };
    let until = match f.get("--until") {
        None => None,
        Some(v) => {
            let d = swim_proto::duration::parse(v)
                .or_else(|_| {
                    v.parse::<f64>()
                        .map(Duration::from_secs_f64)
                        .map_err(|_| "bad number")
                })
                .map_err(|e| format!("--until {v:?}: {e} (use seconds or a duration like 90s)"))?;
            Some(swim_proto::Instant::ZERO + d)
        }
    };
    let opts = ReplayOptions {
        node: f.get("--node").map(String::from),
        until,
        verbose: f.has("--verbose"),
    };
    let stdout = std::io::stdout();
    let mut log = std::io::BufWriter::new(stdout.lock());
    let summary = trace_file::replay(&PathBuf::from(path), &opts, &mut log)?;
    let _ = log.flush();
    drop(log);
    match summary.divergence {
        None => {
            println!(
                "replayed {} boots and {} steps: every output matches the recording",
                summary.boots, summary.steps
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(d) => {
            println!("DIVERGED after {} steps: {d}", summary.steps);
            Ok(ExitCode::FAILURE)
        }
    }
}
