//! Scenario files (TOML) and the checks every scenario passes before it runs.

use super::*;

impl Scenario {
    /// Parses a TOML scenario file's contents. Unknown fields are rejected by name.
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let mut s: Scenario =
            toml::from_str(text).map_err(|e| ScenarioError(format!("scenario file: {e}")))?;
        s.faults.sort_by_key(|f| f.at);
        s.validate()?;
        Ok(s)
    }

    /// Checks node indices, probabilities and the config; names what is wrong.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let err = |m: String| Err(ScenarioError(m));
        if !(1..=MAX_NODES).contains(&self.nodes) {
            return err(format!(
                "nodes must be within 1..={MAX_NODES} (the command line's bound), got {}",
                self.nodes
            ));
        }
        self.config
            .validate()
            .map_err(|e| ScenarioError(format!("config: {e}")))?;
        for (field, p) in [
            ("network.loss", self.network.loss),
            ("network.duplicate", self.network.duplicate),
            (
                "network.heavy_tail_probability",
                self.network.heavy_tail_probability,
            ),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return err(format!("{field} must be within 0..=1, got {p}"));
            }
        }
        if let Start::JoinStorm { within } = self.start
            && within.is_zero()
        {
            return err("start.within (the join window) must be greater than zero".into());
        }
        if self.sample_interval.is_zero() {
            return err("sample_interval must be greater than zero".into());
        }
        if let Some(w) = &self.workload {
            if !(w.writes_per_node_per_s > 0.0 && w.writes_per_node_per_s <= 1000.0) {
                return err(format!(
                    "workload.writes_per_node_per_s must be within (0, 1000], got {}",
                    w.writes_per_node_per_s
                ));
            }
            if w.keys_per_node == 0 {
                return err("workload.keys_per_node must be at least 1".into());
            }
            if w.value_size < 8 || w.value_size > self.config.state.max_value_size {
                return err(format!(
                    "workload.value_size must be within 8..={} (config.state.max_value_size), got {}",
                    self.config.state.max_value_size, w.value_size
                ));
            }
            if w.ty.is_empty() || !self.config.state.stores(&w.ty) {
                return err(format!(
                    "workload.ty {:?} must be a non-empty type the nodes store",
                    w.ty
                ));
            }
        }
        if let Some(u) = &self.user_events {
            if !(u.per_sec > 0.0 && u.per_sec <= 10_000.0) {
                return err(format!(
                    "user_events.per_sec must be within (0, 10000], got {}",
                    u.per_sec
                ));
            }
            if u.payload_size > self.config.messaging.max_event_payload {
                return err(format!(
                    "user_events.payload_size must be at most {} (config.messaging.max_event_payload), got {}",
                    self.config.messaging.max_event_payload, u.payload_size
                ));
            }
        }
        let n = self.nodes as NodeId;
        for &j in self.late_joiners.iter().chain(&self.seeds) {
            if j >= n {
                return err(format!("node {j} is out of range 0..{n}"));
            }
        }
        for (i, f) in self.faults.iter().enumerate() {
            let bad = |m: &str| {
                Err(ScenarioError(format!(
                    "faults[{i}] ({}): {m}",
                    f.fault.label()
                )))
            };
            let nodes: Vec<NodeId> = match &f.fault {
                Fault::Partition { groups, .. } => groups.iter().flatten().copied().collect(),
                Fault::LinkLoss { from, to, .. } => vec![*from, *to],
                other => fault_node(other).into_iter().collect(),
            };
            if let Some(&x) = nodes.iter().find(|&&x| x >= n) {
                return bad(&format!("node {x} is out of range 0..{n}"));
            }
            if let Fault::Loss { rate, .. }
            | Fault::LinkLoss { rate, .. }
            | Fault::Flaky { rate, .. } = f.fault
                && !(0.0..=1.0).contains(&rate)
            {
                return bad("rate must be within 0..=1");
            }
            if let Fault::ClockSkew { ppm, .. } = f.fault
                && !(MIN_SKEW_PPM..=MAX_SKEW_PPM).contains(&ppm)
            {
                return bad(&format!(
                    "ppm must be within {MIN_SKEW_PPM}..={MAX_SKEW_PPM} (a clock must move forward), got {ppm}"
                ));
            }
            if let Fault::Partition { duration, .. } = f.fault
                && duration.is_zero()
            {
                return bad("duration (the partition's length) must be greater than zero");
            }
            if let Fault::Join { node } = f.fault
                && !self.late_joiners.contains(&node)
            {
                return bad("a joining node must be listed in late_joiners");
            }
            if let Fault::Rules {
                rules, duration, ..
            } = &f.fault
            {
                if duration.is_some_and(|d| d.is_zero()) {
                    return bad("duration must be greater than zero (or absent)");
                }
                if rules.is_empty() {
                    return bad("rules: give at least one rule");
                }
                for (j, r) in rules.iter().enumerate() {
                    r.validate().or_else(|e| bad(&format!("rules[{j}]: {e}")))?;
                    if matches!(r, swim_proto::fault_rule::FaultRule::Delay { .. }) {
                        return bad(&format!(
                            "rules[{j}]: delay rules are not simulated (no per-link delay); \
                             use network.base_delay/jitter or a slow fault"
                        ));
                    }
                    for m in r.members() {
                        if crate::timeline::rule_member(m, self.nodes).is_none() {
                            return bad(&format!(
                                "rules[{j}]: member {m:?} is not node-N or N for a node in 0..{n}"
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_scenarios_parse_and_reject_unknown_fields() {
        let text = r#"
            name = "file"
            nodes = 20
            duration = "90s"
            [network]
            loss = 0.01
            jitter = "5ms"
            [config]
            probe_interval = "2s"
            [[faults]]
            at = "30s"
            kind = "crash"
            node = 4
            [[faults]]
            at = "40s"
            kind = "partition"
            groups = [[0, 1, 2]]
            duration = "10s"
        "#;
        let s = Scenario::from_toml(text).unwrap();
        assert_eq!(
            (s.nodes, s.duration, s.faults.len()),
            (20, Duration::from_secs(90), 2)
        );
        assert_eq!(s.config.probe_interval, Duration::from_secs(2));
        assert_eq!(s.network.jitter, Duration::from_millis(5));
        let bad = Scenario::from_toml("nodes = 3\nprobe = 1").unwrap_err();
        assert!(bad.0.contains("probe"), "{bad}");
        let bad =
            Scenario::from_toml("nodes = 3\n[[faults]]\nat = \"1s\"\nkind = \"crash\"\nnode = 9")
                .unwrap_err();
        assert!(bad.0.contains("out of range"), "{bad}");
        let bad =
            Scenario::from_toml("nodes = 3\n[[faults]]\nat = \"1s\"\nkind = \"crash\"\nnod = 1")
                .unwrap_err();
        assert!(bad.0.contains("nod"), "{bad}");
        let bad = Scenario::from_toml(
            "nodes = 3\n[[faults]]\nat = \"1s\"\nkind = \"flaky\"\nnode = 1\nrate = 1.5",
        )
        .unwrap_err();
        assert!(bad.0.contains("rate"), "{bad}");
        let bad = Scenario::from_toml(
            "nodes = 3\n[[faults]]\nat = \"1s\"\nkind = \"partition\"\ngroups = [[0]]\nduration = \"0s\"",
        )
        .unwrap_err();
        assert!(bad.0.contains("duration"), "{bad}");
        let bad = Scenario::from_toml("nodes = 3\n[start]\nmode = \"join-storm\"\nwithin = \"0s\"")
            .unwrap_err();
        assert!(bad.0.contains("start.within"), "{bad}");
        for ppm in ["-1000000", "-2000000", "9000000000000"] {
            let bad = Scenario::from_toml(&format!(
                "nodes = 3\n[[faults]]\nat = \"1s\"\nkind = \"clock-skew\"\nnode = 1\nppm = {ppm}"
            ))
            .unwrap_err();
            assert!(bad.0.contains("ppm must be within"), "{bad}");
        }
        let bad = Scenario::from_toml("nodes = 100001").unwrap_err();
        assert!(bad.0.contains("nodes must be within 1..=100000"), "{bad}");
        let bad = Scenario::from_toml("nodes = 3\n[config]\nprobe_interval = \"0s\"").unwrap_err();
        assert!(bad.0.contains("probe_interval"), "{bad}");
    }
}
