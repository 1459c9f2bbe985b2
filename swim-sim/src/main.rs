//! `swim-sim`: run, swarm-test and replay simulated SWIM clusters.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::PossibleValuesParser;
use clap::{Args, Parser, Subcommand};
use std::time::Duration;

use swim_sim::scenario::BUILT_IN;
use swim_sim::trace_file::{self, ReplayOptions};
use swim_sim::{Knobs, Progress, RestartMode, RunOptions, Scenario, derive_seed, run};

/// Run, swarm-test and replay simulated SWIM clusters.
#[derive(Parser, Debug)]
#[command(name = "swim-sim", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run one scenario (built-in or from a file) and print its report.
    #[command(after_help = scenarios_help())]
    Run(RunArgs),
    /// Run many seeded random scenarios (swarm testing) and report the failing seeds.
    Swarm {
        /// Number of runs.
        #[arg(long, default_value_t = 100)]
        runs: u64,
        /// Seed the runs' seeds derive from.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print no progress line.
        #[arg(long)]
        quiet: bool,
    },
    /// Re-execute a trace recorded with `run --record` or `swim-agent --record` and check that
    /// every output matches.
    Replay {
        /// The trace file.
        file: PathBuf,
        /// Replay only this node's inputs. [default: every node]
        #[arg(long)]
        node: Option<String>,
        /// Stop at this simulated time (seconds, or a duration such as 90s). [default: the end]
        #[arg(long, value_parser = parse_until)]
        until: Option<Duration>,
        /// Print every step.
        #[arg(long)]
        verbose: bool,
    },
    /// List every built-in scenario.
    Scenarios,
    /// Compare two runs' JSON reports (`run --json > a.json`): every figure side by side with
    /// its change, for example before and after a config change.
    Compare {
        /// Run A's report (the baseline).
        a: PathBuf,
        /// Run B's report.
        b: PathBuf,
        /// Also write the comparison as an HTML page. [default: none]
        #[arg(long, value_name = "FILE.html")]
        report: Option<PathBuf>,
        /// Print every figure, not only those that differ.
        #[arg(long)]
        all: bool,
    },
}

/// `run`'s flags. With --scenario-file, --nodes, --seconds and --loss given on the command
/// line override the file's values (and the result is validated again).
#[derive(Args, Debug)]
struct RunArgs {
    /// A built-in scenario (see `swim-sim scenarios`).
    #[arg(long, value_parser = PossibleValuesParser::new(BUILT_IN.iter().copied()),
          required_unless_present = "scenario_file", conflicts_with = "scenario_file")]
    scenario: Option<String>,
    /// A TOML scenario file; --nodes, --seconds and --loss override its values when given.
    #[arg(long, value_name = "FILE")]
    scenario_file: Option<PathBuf>,
    /// Number of nodes (2..=100000). [default: 100, or the file's]
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..=swim_sim::scenario::MAX_NODES as u64))]
    nodes: Option<u64>,
    /// Simulated seconds. [default: 120, or the file's]
    #[arg(long, value_parser = parse_seconds)]
    seconds: Option<f64>,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Datagram loss probability (0..=1). [default: 0.05 for `loss` and `state`, else none]
    #[arg(long, value_parser = parse_loss)]
    loss: Option<f64>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Compute a digest of every output (a determinism check).
    #[arg(long)]
    digest: bool,
    /// Drop the scenario's replicated-state writes (a baseline to compare).
    #[arg(long)]
    without_state: bool,
    /// Write a trace for `swim-sim replay`. [default: none]
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Write an HTML report. [default: none]
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
    // issue 12: scenario knobs of the built-in scenarios.
    /// Length of the `partition` scenario's split, in seconds. [default: 60, at most a third of
    /// the run]
    #[arg(long, value_parser = parse_seconds, value_name = "SECS")]
    partition_secs: Option<f64>,
    /// How `restart-all` replaces each node: `down-then-up` (the old instance dies at once, the
    /// new one starts 0.1-1 s later) or `overlap` (the old one runs until the new one takes
    /// over: no downtime). [default: down-then-up]
    #[arg(long, value_parser = parse_restart_mode, value_name = "MODE")]
    restart_mode: Option<RestartMode>,
    /// Window in which `join-storm`'s nodes join, in seconds. [default: 1]
    #[arg(long, value_parser = parse_seconds, value_name = "SECS")]
    join_window_secs: Option<f64>,
    // issue 14: user events.
    /// Serf user events per second, cluster-wide, each from the next node in a fixed stride
    /// with a 64-byte payload, for the whole run (overrides a file's `user_events.per_sec`).
    /// Their cost shows in the report's load. [default: none]
    #[arg(long, value_name = "R")]
    user_events_per_sec: Option<f64>,
    /// Print no progress (by default a long run shows a progress line on a terminal, and a
    /// line every 5 s of wall time otherwise, on stderr).
    #[arg(long)]
    quiet: bool,
}

fn parse_restart_mode(v: &str) -> Result<RestartMode, String> {
    v.parse().map_err(|e| format!("{e}"))
}

fn scenarios_help() -> String {
    format!("Built-in scenarios: {}", BUILT_IN.join(", "))
}

fn parse_seconds(v: &str) -> Result<f64, String> {
    let s: f64 = v.parse().map_err(|e| format!("{e}"))?;
    if !(s.is_finite() && s > 0.0) {
        return Err(format!("must be positive, got {s}"));
    }
    Ok(s)
}

fn parse_loss(v: &str) -> Result<f64, String> {
    let p: f64 = v.parse().map_err(|e| format!("{e}"))?;
    if !(0.0..=1.0).contains(&p) {
        return Err(format!("must be within 0..=1, got {p}"));
    }
    Ok(p)
}

fn parse_until(v: &str) -> Result<Duration, String> {
    swim_proto::duration::parse(v)
        .or_else(|_| {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .ok_or("bad number")
        })
        .map_err(|e| format!("{e} (use seconds or a duration like 90s)"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(args) => cmd_run(args),
        Cmd::Swarm { runs, seed, quiet } => cmd_swarm(runs, seed, quiet),
        Cmd::Replay {
            file,
            node,
            until,
            verbose,
        } => cmd_replay(&file, node, until, verbose),
        Cmd::Scenarios => {
            println!("{}", BUILT_IN.join("\n"));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Compare { a, b, report, all } => cmd_compare(&a, &b, report.as_deref(), all),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn progress_printer() -> Box<dyn FnMut(Progress)> {
    let start = std::time::Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut last = 0.0f64;
    Box::new(move |p: Progress| {
        let wall = start.elapsed().as_secs_f64();
        if wall < 2.0 || (!tty && wall - last < 5.0) || (tty && wall - last < 0.2) {
            return;
        }
        last = wall;
        let frac = (p.now.as_nanos() as f64 / p.end.as_nanos().max(1) as f64).min(1.0);
        let width = 30;
        let filled = (frac * width as f64) as usize;
        let bar: String = "=".repeat(filled) + &" ".repeat(width - filled);
        let line = format!(
            "[{bar}] {:>3.0}%  simulated {:.0} of {:.0} s, {:.1} million events processed, {wall:.1} s wall time",
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

/// The scenario `run` asks for: a built-in one with the knobs, or the file's with the flags
/// given on the command line over it.
fn scenario_of(f: &RunArgs) -> Result<Scenario, String> {
    let seed = f.seed;
    Ok(match (&f.scenario, &f.scenario_file) {
        (Some(_), Some(_)) => return Err("give --scenario or --scenario-file, not both".into()),
        (None, None) => return Err("--scenario NAME or --scenario-file FILE is required".into()),
        (None, Some(path)) => {
            let at = format!("--scenario-file {}", path.display());
            let knob = [
                (
                    f.partition_secs.is_some(),
                    "--partition-secs",
                    "a partition fault's duration",
                ),
                (
                    f.restart_mode.is_some(),
                    "--restart-mode",
                    "a crash-restart's downtime",
                ),
                (
                    f.join_window_secs.is_some(),
                    "--join-window-secs",
                    "start.within",
                ),
            ];
            if let Some((_, flag, field)) = knob.iter().find(|k| k.0) {
                return Err(format!(
                    "{flag} shapes built-in scenarios; in a scenario file set {field}"
                ));
            }
            let text = std::fs::read_to_string(path).map_err(|e| format!("{at}: {e}"))?;
            let mut s = Scenario::from_toml(&text).map_err(|e| format!("{at}: {e}"))?;
            // Flags given on the command line override the file.
            if let Some(n) = f.nodes {
                s.nodes = n as usize;
            }
            if let Some(secs) = f.seconds {
                s.duration = Duration::from_secs_f64(secs);
            }
            if let Some(p) = f.loss {
                s.network.loss = p;
            }
            s.validate()
                .map_err(|e| format!("{at} with the command line's overrides: {e}"))?;
            s
        }
        (Some(name), None) => {
            let knobs = Knobs {
                nodes: f.nodes.map_or(100, |n| n as usize),
                duration: Duration::from_secs_f64(f.seconds.unwrap_or(120.0)),
                loss: f.loss,
                partition: f.partition_secs.map(Duration::from_secs_f64),
                restart_mode: f.restart_mode,
                join_window: f.join_window_secs.map(Duration::from_secs_f64),
            };
            Scenario::built_in(name, &knobs, seed).map_err(|e| format!("--scenario: {e}"))?
        }
    })
}

/// Refuses a run whose estimated memory (n² member entries) exceeds what the machine has
/// available (`MemAvailable` in /proc/meminfo; no check where that cannot be read).
fn check_memory(nodes: usize) -> Result<(), String> {
    let need = swim_sim::scenario::memory_estimate(nodes);
    let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    });
    match available {
        Some(have) if need > have => Err(format!(
            "{nodes} nodes need about {:.1} GB ({nodes}² member entries × ~{} B), more than the \
             {:.1} GB available: use fewer nodes",
            need as f64 / 1e9,
            swim_sim::scenario::BYTES_PER_MEMBER_ENTRY,
            have as f64 / 1e9
        )),
        _ => Ok(()),
    }
}

fn cmd_run(f: RunArgs) -> Result<ExitCode, String> {
    let seed = f.seed;
    let scenario = scenario_of(&f)?;
    check_memory(scenario.nodes)?;
    let mut scenario = scenario;
    if f.without_state {
        // The same run without state traffic, to compare membership metrics against.
        scenario.workload = None;
    }
    if let Some(r) = f.user_events_per_sec {
        let u = scenario.user_events.get_or_insert_with(Default::default);
        u.per_sec = r;
        scenario
            .validate()
            .map_err(|e| format!("--user-events-per-sec: {e}"))?;
    }
    let record = match &f.record {
        Some(path) => Some(
            trace_file::create(path).map_err(|e| format!("--record {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let report_path = f.report.clone();
    let opts = RunOptions {
        record,
        progress: (!f.quiet).then(progress_printer),
        digest: f.digest,
        ..RunOptions::default()
    };
    let mut report = run(&scenario, seed, opts);
    report.run.command_line = Some(command_line());
    if !f.quiet && std::io::stderr().is_terminal() && report.wall_s >= 2.0 {
        eprintln!();
    }
    if let Some(path) = &report_path {
        std::fs::write(path, swim_sim::html::render(&report))
            .map_err(|e| format!("--report {}: {e}", path.display()))?;
    }
    if f.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
        if let Some(path) = &report_path {
            println!("report written to {}", path.display());
        }
    }
    if let Some(v) = &report.violation {
        eprintln!("invariant violated: {v}");
        eprintln!("reproduce: swim-sim run {}", reproduce_args());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The whole command line, each argument quoted for a POSIX shell where it needs it.
fn command_line() -> String {
    std::env::args()
        .enumerate()
        .map(|(i, a)| {
            let a = if i == 0 {
                // The program as the user would type it, without the build's directory.
                std::path::Path::new(&a)
                    .file_name()
                    .map_or(a.clone(), |f| f.to_string_lossy().into_owned())
            } else {
                a
            };
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                a
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The command line after `run`, without `--json`.
fn reproduce_args() -> String {
    std::env::args()
        .skip_while(|a| a != "run")
        .skip(1)
        .filter(|a| a != "--json")
        .collect::<Vec<_>>()
        .join(" ")
}

/// One swarm run's outcome: its seed, simulated seconds and violation (if any).
type SwarmResult = (u64, f64, Option<String>);

/// Runs the swarm on every core (rayon; `RAYON_NUM_THREADS` caps it). Each run is
/// independent and seeded by its index, and results come back in index order, so the summary
/// is the same on any number of threads.
fn swarm_results(runs: u64, seed: u64, progress: bool) -> Vec<SwarmResult> {
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    let done = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    (0..runs)
        .into_par_iter()
        .map(|i| {
            let case = derive_seed(seed, 0x5a4a, i);
            let scenario = Scenario::swarm(case);
            let report = run(&scenario, case, RunOptions::default());
            let violation = report.violation.map(|v| v.to_string());
            if violation.is_some() {
                failed.fetch_add(1, Ordering::Relaxed);
            }
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            if progress {
                let f = failed.load(Ordering::Relaxed);
                eprint!("\rswarm: {d}/{runs} runs done, {f} failed");
            }
            (case, report.seconds, violation)
        })
        .collect()
}

fn cmd_swarm(runs: u64, seed: u64, quiet: bool) -> Result<ExitCode, String> {
    let start = std::time::Instant::now();
    let progress = !quiet && std::io::stderr().is_terminal();
    let results = swarm_results(runs, seed, progress);
    if progress {
        eprintln!();
    }
    let mut failures = Vec::new();
    let mut sim_seconds = 0.0;
    for (i, (case, seconds, violation)) in results.into_iter().enumerate() {
        sim_seconds += seconds;
        if let Some(v) = violation {
            eprintln!("FAIL run {i}: {v}");
            eprintln!("  reproduce: swim-sim run --scenario swarm --seed {case}");
            failures.push(case);
        }
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

fn cmd_compare(
    a: &std::path::Path,
    b: &std::path::Path,
    report: Option<&std::path::Path>,
    all: bool,
) -> Result<ExitCode, String> {
    use swim_sim::compare;
    let (va, vb) = (compare::load(a)?, compare::load(b)?);
    let names = [a.display().to_string(), b.display().to_string()];
    let c = compare::compare(names, &va, &vb);
    print!("{}", c.to_table(all));
    if let Some(path) = report {
        std::fs::write(path, swim_sim::html::render_comparison(&c))
            .map_err(|e| format!("--report {}: {e}", path.display()))?;
        println!("\ncomparison written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_replay(
    path: &std::path::Path,
    node: Option<String>,
    until: Option<Duration>,
    verbose: bool,
) -> Result<ExitCode, String> {
    let opts = ReplayOptions {
        node,
        until: until.map(|d| swim_proto::Instant::ZERO + d),
        verbose,
    };
    let stdout = std::io::stdout();
    let mut log = std::io::BufWriter::new(stdout.lock());
    let summary = trace_file::replay(path, &opts, &mut log)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("swim-sim").chain(args.iter().copied()))
    }

    /// The swarm's results do not depend on how many threads run it.
    #[test]
    fn swarm_results_are_the_same_on_one_and_two_threads() {
        let on = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| swarm_results(6, 11, false))
        };
        let one = on(1);
        assert_eq!(one.len(), 6);
        assert_eq!(one, on(2));
    }

    #[test]
    fn help_and_version_on_every_subcommand() {
        for sub in [
            &[][..],
            &["run"],
            &["swarm"],
            &["replay"],
            &["scenarios"],
            &["compare"],
        ] {
            let mut args = sub.to_vec();
            args.push("--help");
            let e = parse(&args).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::DisplayHelp, "{args:?}");
            assert_eq!(e.exit_code(), 0);
        }
        let help = parse(&["run", "--help"]).unwrap_err().to_string();
        for name in BUILT_IN {
            assert!(help.contains(name), "run --help lacks scenario {name}");
        }
        assert!(help.contains("[default: 1]") && help.contains("[default: 120, or the file's]"));
        assert_eq!(
            parse(&["--version"]).unwrap_err().kind(),
            ErrorKind::DisplayVersion
        );
    }

    /// `compare` reads two reports, prints the changed figures and writes the page.
    #[test]
    fn compare_writes_a_table_and_a_page() {
        let dir = std::env::temp_dir();
        let id = std::process::id();
        let path = |n: &str| dir.join(format!("swim-sim-cli-cmp-{id}-{n}"));
        let report = |seed| {
            let s = swim_sim::ScenarioBuilder::new(8)
                .seconds(20)
                .crash(5.0, 3)
                .build();
            run(&s, seed, RunOptions::default()).to_json()
        };
        std::fs::write(path("a.json"), report(1)).unwrap();
        std::fs::write(path("b.json"), report(2)).unwrap();
        let args = [
            "compare",
            path("a.json").to_str().unwrap(),
            path("b.json").to_str().unwrap(),
            "--report",
            path("d.html").to_str().unwrap(),
        ]
        .map(String::from);
        let Cmd::Compare { a, b, report, all } =
            parse(&args.iter().map(String::as_str).collect::<Vec<_>>())
                .unwrap()
                .command
        else {
            panic!("not compare");
        };
        assert!(!all);
        assert_eq!(
            cmd_compare(&a, &b, report.as_deref(), all),
            Ok(ExitCode::SUCCESS)
        );
        let page = std::fs::read_to_string(path("d.html")).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>") && page.contains("Headline figures"));
        let missing = cmd_compare(&path("none.json"), &b, None, false).unwrap_err();
        assert!(missing.contains("none.json"), "{missing}");
        for n in ["a.json", "b.json", "d.html"] {
            std::fs::remove_file(path(n)).ok();
        }
    }

    #[test]
    fn unknown_flags_and_bad_values_are_named() {
        let e = parse(&["run", "--scenario", "crash", "--sede", "3"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownArgument);
        let text = e.to_string();
        assert!(
            text.contains("'--sede'") && text.contains("--seed"),
            "{text}"
        );
        let e = parse(&["run", "--scenario", "crash", "--nodes=1"]).unwrap_err();
        assert!(e.to_string().contains("--nodes"), "{e}");
        let e = parse(&["run", "--scenario", "crash", "--loss", "2"]).unwrap_err();
        assert!(e.to_string().contains("--loss"), "{e}");
        let e = parse(&["run", "--scenario", "stedy"]).unwrap_err();
        assert!(e.to_string().contains("steady"), "{e}");
        let e = parse(&["run", "--scenario", "crash", "--scenario-file", "f.toml"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ArgumentConflict);
        assert_eq!(
            parse(&["run"]).unwrap_err().kind(),
            ErrorKind::MissingRequiredArgument
        );
    }

    #[test]
    fn flags_override_a_scenario_file_and_are_validated_again() {
        let path = std::env::temp_dir().join(format!("swim-sim-cli-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "name = \"t\"\nnodes = 20\nduration = \"30s\"\n[[faults]]\nat = \"5s\"\nkind = \"crash\"\nnode = 15\n",
        )
        .unwrap();
        let file = path.to_str().unwrap();
        let run_args = |extra: &[&str]| {
            let mut args = vec!["run", "--scenario-file", file];
            args.extend_from_slice(extra);
            match parse(&args).unwrap().command {
                Cmd::Run(r) => r,
                other => panic!("{other:?}"),
            }
        };
        let s = scenario_of(&run_args(&[])).unwrap();
        assert_eq!((s.nodes, s.duration), (20, Duration::from_secs(30)));
        let s = scenario_of(&run_args(&[
            "--nodes",
            "16",
            "--seconds",
            "9",
            "--loss",
            "0.1",
        ]))
        .unwrap();
        assert_eq!((s.nodes, s.duration), (16, Duration::from_secs(9)));
        assert_eq!(s.network.loss, 0.1);
        // Node 15 crashes: 10 nodes cannot hold it, and the error says the override caused it.
        let e = scenario_of(&run_args(&["--nodes", "10"])).unwrap_err();
        assert!(e.contains("overrides"), "{e}");
        std::fs::remove_file(&path).ok();
    }
}
