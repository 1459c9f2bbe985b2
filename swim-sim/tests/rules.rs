//! Live fault rules in the simulator (issue 14): the rule list the agent's `POST /partitions`
//! takes, applied by one node to its own traffic through a scenario file's `rules` fault.

use swim_proto::fault_rule::FaultRule;
use swim_sim::{Fault, RunOptions, Scenario, run};

const SCRIPT: &str = r#"
name = "rules"
nodes = 10
duration = "120s"
[[faults]]
at = "20s"
kind = "rules"
node = 0
duration = "20s"
rules = [
    { kind = "partition", members = ["node-1", "node-2", "node-3", "node-4", "node-5",
                                     "node-6", "node-7", "node-8", "node-9"] },
]
[[faults]]
at = "60s"
kind = "rules"
node = 4
rules = [{ kind = "loss", members = ["5", "node-6"], rate = 0.3, direction = "outbound" }]
"#;

/// A partition rule at node 0 naming every other node isolates it: the others declare it dead
/// (and only it: it is the faulty node); after the rule's 20 s the cluster heals by itself.
#[test]
fn a_partition_rule_isolates_its_node_and_the_cluster_heals_after_it() {
    let s = Scenario::from_toml(SCRIPT).unwrap();
    let seed = 14;
    let r = run(&s, seed, RunOptions::default());
    assert!(r.violation.is_none(), "seed {seed}: {:?}", r.violation);
    assert!(
        r.false_positives.dead >= 1,
        "seed {seed}: {:?}",
        r.false_positives
    );
    assert_eq!(r.false_positives.healthy_victims, 0, "seed {seed}");
    assert!(r.converged, "seed {seed}: healed by the end");
}

/// The scenario's rule list is the agent's: the same JSON body `POST /partitions` takes.
#[test]
fn scenario_rules_are_the_agents_json_rules() {
    let s = Scenario::from_toml(SCRIPT).unwrap();
    let Fault::Rules { rules, .. } = &s.faults[1].fault else {
        panic!("{:?}", s.faults[1]);
    };
    let json: Vec<FaultRule> = serde_json::from_str(
        r#"[{"kind": "loss", "members": ["5", "node-6"], "rate": 0.3, "direction": "outbound"}]"#,
    )
    .unwrap();
    assert_eq!(rules, &json);
}

/// Rules the simulator cannot apply are refused when the scenario is read, naming them.
#[test]
fn delay_rules_and_unknown_members_are_refused() {
    let delay = SCRIPT.replace(
        r#"{ kind = "loss", members = ["5", "node-6"], rate = 0.3, direction = "outbound" }"#,
        r#"{ kind = "delay", delay = "50ms" }"#,
    );
    let e = Scenario::from_toml(&delay).unwrap_err();
    assert!(e.0.contains("delay rules are not simulated"), "{e}");
    let unknown = SCRIPT.replace(r#""node-6""#, r#""node-60""#);
    let e = Scenario::from_toml(&unknown).unwrap_err();
    assert!(e.0.contains("node-60"), "{e}");
    let bad = SCRIPT.replace("rate = 0.3", "rate = 3.0");
    let e = Scenario::from_toml(&bad).unwrap_err();
    assert!(e.0.contains("rate"), "{e}");
}
