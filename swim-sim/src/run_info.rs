//! What ran (issue 16): the build version and the scenario's configuration in words, for the
//! report page and `swim-sim compare`: the config preset and every field changed from it,
//! how the cluster started, the workload and every fault with its kind.

use serde::Serialize;
use serde_json::Value;
use swim_proto::Config;

use crate::report::{ConfigChange, FaultRecord, RunInfo};
use crate::scenario::{Fault, NetworkSpec, Scenario, Start};

/// The simulator's version: the crate version, then `git describe` of the checkout it was
/// built from, when there was one.
pub fn version() -> String {
    let crate_version = env!("CARGO_PKG_VERSION");
    match option_env!("SWIM_SIM_GIT_DESCRIBE") {
        Some(git) => format!("{crate_version} ({git})"),
        None => crate_version.to_string(),
    }
}

/// What `scenario` runs, without the command line (the binary adds it).
pub(crate) fn of(scenario: &Scenario) -> RunInfo {
    let (config_preset, mut config_changes) = preset_of(&scenario.config);
    config_changes.extend(changes(
        "network.",
        &json(&scenario.network),
        &json(&NetworkSpec::default()),
    ));
    let start = match &scenario.start {
        Start::Warm => "warm (every node starts knowing every other)".to_string(),
        Start::JoinStorm { within } => {
            format!(
                "join storm through node 0 within {:.1} s",
                within.as_secs_f64()
            )
        }
    };
    let workload = scenario.workload.as_ref().map(|w| {
        format!(
            "{} writes per node per s of type {:?}, {} keys per node, {} B values, from {:.0} s to {:.0} s",
            w.writes_per_node_per_s,
            w.ty,
            w.keys_per_node,
            w.value_size,
            w.start.as_secs_f64(),
            w.stop.as_secs_f64()
        )
    });
    let faults = scenario
        .faults
        .iter()
        .map(|f| FaultRecord {
            at_ms: f.at.as_secs_f64() * 1e3,
            kind: f.fault.kind(),
            label: label(&f.fault, scenario.nodes),
            duration_ms: f.fault.duration().map(|d| d.as_secs_f64() * 1e3),
        })
        .collect();
    RunInfo {
        version: version(),
        command_line: None,
        config_preset,
        config_changes,
        start,
        workload,
        faults,
    }
}

/// A fault's label; a partition's names every side, the unlisted nodes' too.
fn label(fault: &Fault, nodes: usize) -> String {
    match fault {
        Fault::Partition {
            groups, one_way, ..
        } => {
            let listed: usize = groups.iter().map(Vec::len).sum();
            let mut sizes: Vec<String> = groups.iter().map(|g| g.len().to_string()).collect();
            if nodes > listed {
                sizes.push((nodes - listed).to_string());
            }
            let dir = if *one_way { " one-way" } else { "" };
            format!("partition {}{dir} (nodes per side)", sizes.join("/"))
        }
        f => f.label(),
    }
}

/// The preset (`lan`, `wan`, `local`) with the fewest differing fields, and those fields.
fn preset_of(config: &Config) -> (String, Vec<ConfigChange>) {
    let have = json(config);
    [
        ("lan", Config::lan()),
        ("wan", Config::wan()),
        ("local", Config::local()),
    ]
    .into_iter()
    .map(|(name, preset)| (name.to_string(), changes("", &have, &json(&preset))))
    .min_by_key(|(_, c)| c.len())
    .expect("three presets")
}

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("config serializes")
}

/// Leaf fields of `have` that differ from `want`, with dotted names under `prefix`.
fn changes(prefix: &str, have: &Value, want: &Value) -> Vec<ConfigChange> {
    let mut out = Vec::new();
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => {
            for (k, hv) in h {
                let wv = w.get(k).unwrap_or(&Value::Null);
                out.extend(changes(&format!("{prefix}{k}."), hv, wv));
            }
        }
        _ if have != want => {
            let field = prefix.trim_end_matches('.').to_string();
            // Key material never leaves the run: a report is shared.
            let secret = |v: &Value| {
                if field.starts_with("keyring") && !v.is_null() {
                    "\"(set, not shown)\"".to_string()
                } else {
                    v.to_string()
                }
            };
            out.push(ConfigChange {
                value: secret(have),
                preset: secret(want),
                field,
            });
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScenarioBuilder;

    #[test]
    fn names_the_closest_preset_and_the_changed_fields() {
        let mut c = Config::wan();
        c.probe_interval = std::time::Duration::from_millis(1234);
        let s = ScenarioBuilder::new(10)
            .config(c)
            .loss(0.1)
            .crash(3.0, 2)
            .build();
        let info = of(&s);
        assert_eq!(info.config_preset, "wan");
        let fields: Vec<&str> = info
            .config_changes
            .iter()
            .map(|c| c.field.as_str())
            .collect();
        assert_eq!(fields, ["probe_interval", "network.loss"]);
        assert_eq!(info.config_changes[0].value, "\"1234ms\"");
        assert_eq!(info.faults.len(), 1);
        assert_eq!(info.faults[0].label, "crash node-2");
        assert_eq!(info.faults[0].duration_ms, None);
        assert!(info.version.starts_with(env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn a_partitions_label_names_every_side() {
        let split = Fault::Partition {
            groups: vec![(0..4).collect()],
            one_way: false,
            duration: std::time::Duration::from_secs(5),
        };
        let info = of(&ScenarioBuilder::new(10).fault(2.0, split).build());
        assert_eq!(info.faults[0].label, "partition 4/6 (nodes per side)");
        assert_eq!(info.faults[0].duration_ms, Some(5000.0));
    }

    #[test]
    fn an_unchanged_lan_config_has_no_changes() {
        let info = of(&ScenarioBuilder::new(5).build());
        assert_eq!(info.config_preset, "lan");
        assert!(info.config_changes.is_empty());
    }
}
