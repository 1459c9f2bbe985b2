//! `deploy/` is consistent: the Kubernetes manifests parse and agree with each other and with
//! the agent's ports, the Dockerfile builds and runs `swim-agent` in two stages, the systemd
//! unit runs it hardened with the config as a credential, and the example config parses with
//! the agent's own parser. No container or cluster tool runs here (none installs from the
//! package registries this project uses: see docs/deploy.md, "Checks").

use std::path::PathBuf;

use serde_norway::Value;

/// Gossip port (UDP and TCP) and the read-only HTTP port used throughout `deploy/`.
const GOSSIP: u64 = 7946;
const METRICS: u64 = 7947;

fn deploy_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn manifest(name: &str) -> Value {
    serde_norway::from_str(&deploy_file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `v[a][b]...`, panicking with the path when a key is missing.
fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, key| {
        v.get(*key)
            .unwrap_or_else(|| panic!("missing `{}` in {v:?}", path.join(".")))
    })
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("`{}` is not a string", path.join(".")))
}

/// `(port, protocol)` of each entry of a ports list, with `key` naming the port field.
fn ports(list: &Value, key: &str) -> Vec<(u64, String)> {
    let mut out: Vec<(u64, String)> = list
        .as_sequence()
        .expect("ports is a list")
        .iter()
        .map(|p| {
            let port = at(p, &[key]).as_u64().expect("numeric port");
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            (port, proto.to_string())
        })
        .collect();
    out.sort();
    out
}

fn expected_ports() -> Vec<(u64, String)> {
    vec![
        (GOSSIP, "TCP".into()),
        (GOSSIP, "UDP".into()),
        (METRICS, "TCP".into()),
    ]
}

#[test]
fn headless_service_publishes_every_pod_for_dns_seeds() {
    let svc = manifest("k8s/service.yaml");
    assert_eq!(str_at(&svc, &["apiVersion"]), "v1");
    assert_eq!(str_at(&svc, &["kind"]), "Service");
    assert_eq!(str_at(&svc, &["spec", "clusterIP"]), "None", "headless");
    assert_eq!(
        at(&svc, &["spec", "publishNotReadyAddresses"]).as_bool(),
        Some(true),
        "starting pods must find each other before they are ready"
    );
    assert_eq!(
        ports(at(&svc, &["spec", "ports"]), "port"),
        expected_ports()
    );
}

#[test]
fn statefulset_runs_the_agent_on_the_pod_ip_and_joins_through_the_service() {
    let svc = manifest("k8s/service.yaml");
    let sts = manifest("k8s/statefulset.yaml");
    assert_eq!(str_at(&sts, &["apiVersion"]), "apps/v1");
    assert_eq!(str_at(&sts, &["kind"]), "StatefulSet");
    let service = str_at(&svc, &["metadata", "name"]);
    assert_eq!(str_at(&sts, &["spec", "serviceName"]), service);

    // The selector, the pod labels and the Service's selector agree.
    let selector = at(&sts, &["spec", "selector", "matchLabels"]);
    assert_eq!(
        at(&sts, &["spec", "template", "metadata", "labels"]),
        selector
    );
    assert_eq!(at(&svc, &["spec", "selector"]), selector);

    let pod = at(&sts, &["spec", "template", "spec"]);
    let containers = at(pod, &["containers"]).as_sequence().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(ports(at(c, &["ports"]), "containerPort"), expected_ports());

    let args: Vec<&str> = at(c, &["args"])
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().expect("string args"))
        .collect();
    let flag = |name: &str| {
        let i = args
            .iter()
            .position(|a| *a == name)
            .unwrap_or_else(|| panic!("{name} missing from {args:?}"));
        args[i + 1]
    };
    assert_eq!(args[0], "run");
    assert_eq!(flag("--bind"), format!("$(POD_IP):{GOSSIP}"));
    assert_eq!(flag("--metrics"), format!("$(POD_IP):{METRICS}"));
    assert_eq!(flag("--name"), "$(POD_NAME)");
    assert_eq!(
        flag("--join"),
        format!("{service}.$(POD_NAMESPACE).svc.cluster.local:{GOSSIP}")
    );
    let mount = str_at(&at(c, &["volumeMounts"])[0], &["mountPath"]);
    assert_eq!(flag("--config"), format!("{mount}/agent.toml"));

    // Every $(VAR) in the args comes from the downward API.
    let env = at(c, &["env"]).as_sequence().unwrap();
    for (var, field) in [
        ("POD_IP", "status.podIP"),
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        let e = env
            .iter()
            .find(|e| str_at(e, &["name"]) == var)
            .unwrap_or_else(|| panic!("env {var} missing"));
        assert_eq!(str_at(e, &["valueFrom", "fieldRef", "fieldPath"]), field);
    }

    // Probes hit the read-only HTTP interface; the keyring comes from a Secret.
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(str_at(c, &[probe, "httpGet", "path"]), "/health");
        assert_eq!(str_at(c, &[probe, "httpGet", "port"]), "metrics");
    }
    let volume = &at(pod, &["volumes"])[0];
    assert_eq!(str_at(volume, &["secret", "secretName"]), "swim-agent");
    assert_eq!(
        at(pod, &["securityContext", "runAsNonRoot"]).as_bool(),
        Some(true)
    );
    // Longer than the agent's default leave_timeout (5 s), so a leave completes.
    assert!(
        at(pod, &["terminationGracePeriodSeconds"])
            .as_u64()
            .unwrap()
            > 5
    );
}

#[test]
fn dockerfile_builds_swim_agent_in_a_builder_stage_and_runs_it_in_a_small_one() {
    let text = deploy_file("Dockerfile");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let stages: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .copied()
        .collect();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(stages[0].starts_with("FROM rust:") && stages[0].ends_with(" AS builder"));
    assert!(stages[1].contains("distroless") && stages[1].ends_with(" AS runtime"));
    assert!(text.contains("cargo build --release --locked -p swim-tokio --bin swim-agent"));
    assert!(lines.iter().any(
        |l| l.starts_with("COPY --from=builder ") && l.ends_with(" /usr/local/bin/swim-agent")
    ));
    assert!(lines.contains(&r#"ENTRYPOINT ["/usr/local/bin/swim-agent"]"#));
    // The distroless `nonroot` user, numerically (what the StatefulSet's runAsUser says too).
    assert!(lines.contains(&"USER 65532:65532"));
    let expose = lines.iter().find(|l| l.starts_with("EXPOSE ")).unwrap();
    for port in [
        format!("{GOSSIP}/udp"),
        format!("{GOSSIP}/tcp"),
        format!("{METRICS}/tcp"),
    ] {
        assert!(expose.split_whitespace().any(|p| p == port), "{expose}");
    }
}

#[test]
fn systemd_unit_runs_the_agent_hardened_with_the_config_as_a_credential() {
    let text = deploy_file("swim-agent.service");
    let mut section = "";
    let mut keys: Vec<(String, String, String)> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            section = line;
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {line}"));
        keys.push((section.to_string(), k.to_string(), v.to_string()));
    }
    let get = |s: &str, k: &str| {
        keys.iter()
            .find(|(sec, key, _)| sec == s && key == k)
            .map(|(_, _, v)| v.as_str())
            .unwrap_or_else(|| panic!("{s} {k}= missing"))
    };
    let exec = get("[Service]", "ExecStart");
    assert!(exec.starts_with("/usr/local/bin/swim-agent run --config %d/agent.toml "));
    assert_eq!(
        get("[Service]", "LoadCredential"),
        "agent.toml:/etc/swim-agent/agent.toml"
    );
    assert_eq!(
        get("[Service]", "EnvironmentFile"),
        "/etc/swim-agent/agent.env"
    );
    for (k, v) in [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("KillSignal", "SIGTERM"),
    ] {
        assert_eq!(get("[Service]", k), v, "{k}");
    }
    assert_eq!(get("[Install]", "WantedBy"), "multi-user.target");
}

#[test]
fn example_config_parses_with_the_agents_parser_once_a_key_is_filled_in() {
    let text = deploy_file("agent.example.toml");
    // As shipped, the placeholder is rejected by name instead of starting without encryption.
    let err = swim_tokio::DriverConfig::from_toml(&text).unwrap_err();
    assert!(err.to_string().contains("core.keyring"), "{err}");
    let key = "3b".repeat(32);
    let filled = text.replace("REPLACE-WITH-64-HEX-DIGITS", &key);
    let config = swim_tokio::DriverConfig::from_toml(&filled).expect("example config parses");
    assert!(config.core.keyring.is_some(), "encryption on");
    assert_eq!(config.core.cluster_label, "prod");
}
