//! `swim-sim compare`: two runs' JSON reports (`run --json`) side by side with the change in
//! every figure, for example before and after a config change; as a terminal table and as an
//! HTML page ([`crate::html::render_comparison`]).
//!
//! It reads the JSON generically (any field a later version adds is compared too): objects
//! flatten to dotted paths, short arrays of objects to `[i]` paths, long ones to their length,
//! and the run's changed config fields (`run.config_changes`) to one row per field, the other
//! run's missing entry meaning the preset's value.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

/// Groups in the order a reader wants them; any others follow alphabetically. Top-level
/// numbers and flags gather in `summary`, and the run's identity (scenario, nodes, seconds,
/// seed) in `run`.
const ORDER: &[&str] = &[
    "run",
    "config",
    "detection",
    "false_deaths",
    "false_deaths_by_side",
    "false_positives",
    "stable_view_ms",
    "heal_nodes_ms",
    "summary",
    "dissemination",
    "state",
    "load",
    "crashes",
    "cost",
];

/// Top-level scalars that name the run rather than measure it.
const IDENTITY: &[&str] = &["scenario", "nodes", "seconds", "seed"];

/// Arrays of objects up to this long are compared element by element; longer ones by length.
const MAX_ELEMENTS: usize = 8;

/// One compared figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Its top-level group (`detection`, `config`...).
    pub group: String,
    /// Dotted path inside the group.
    pub path: String,
    /// Run A's value as text (`-` if absent).
    pub a: String,
    /// Run B's value as text (`-` if absent).
    pub b: String,
    /// B − A, when both are numbers.
    pub delta: Option<f64>,
    /// B / A, when both are numbers and A is not zero.
    pub ratio: Option<f64>,
}

impl Row {
    /// Whether the two runs differ here.
    pub fn changed(&self) -> bool {
        self.a != self.b
    }
}

/// Two runs compared.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    /// Names of the two inputs (file names).
    pub names: [String; 2],
    /// Every figure, in report order.
    pub rows: Vec<Row>,
}

/// Reads a `run --json` report.
pub fn load(path: &std::path::Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a swim-sim JSON report: {e}", path.display()))?;
    if !v.is_object() || v.get("scenario").is_none() {
        return Err(format!(
            "{}: not a swim-sim JSON report (no \"scenario\" field; write one with `swim-sim run --json`)",
            path.display()
        ));
    }
    Ok(v)
}

/// Compares two reports.
pub fn compare(names: [String; 2], a: &Value, b: &Value) -> Comparison {
    let (fa, fb) = (flatten(a), flatten(b));
    let mut groups: Vec<&str> = ORDER.to_vec();
    let mut extra: Vec<&str> = fa
        .keys()
        .chain(fb.keys())
        .map(|(g, _)| g.as_str())
        .filter(|g| !ORDER.contains(g) && *g != "config")
        .collect();
    extra.sort_unstable();
    extra.dedup();
    groups.extend(extra);
    groups.insert(
        groups.iter().position(|&g| g == "run").map_or(0, |i| i + 1),
        "config",
    );

    let mut rows = Vec::new();
    for g in groups {
        let mut paths: Vec<&String> = fa
            .keys()
            .chain(fb.keys())
            .filter(|(gg, _)| gg == g)
            .map(|(_, p)| p)
            .collect();
        paths.dedup();
        // Keep the first report's order, then the second's new paths, without repeats.
        let mut seen = std::collections::HashSet::new();
        paths.retain(|p| seen.insert(*p));
        // The run's identity first, in the order a person names a run.
        paths.sort_by_key(|p| {
            IDENTITY
                .iter()
                .position(|i| i == p)
                .unwrap_or(IDENTITY.len())
        });
        for p in paths {
            let key = (g.to_string(), p.clone());
            let (va, vb) = (fa.get(&key), fb.get(&key));
            let text = |v: Option<&Value>| match v {
                None | Some(Value::Null) => "-".to_string(),
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
            };
            let num = |v: Option<&Value>| v.and_then(Value::as_f64);
            let (na, nb) = (num(va), num(vb));
            let delta = na.zip(nb).map(|(x, y)| y - x);
            let ratio = na.zip(nb).filter(|(x, _)| *x != 0.0).map(|(x, y)| y / x);
            rows.push(Row {
                group: g.to_string(),
                path: p.clone(),
                a: text(va),
                b: text(vb),
                delta,
                ratio,
            });
        }
    }
    fill_presets(&mut rows, a, b);
    Comparison { names, rows }
}

/// A config field changed in one run only: the other run has the preset's value.
fn fill_presets(rows: &mut [Row], a: &Value, b: &Value) {
    let presets = |v: &Value| -> BTreeMap<String, String> {
        v.pointer("/run/config_changes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| {
                Some((
                    c.get("field")?.as_str()?.to_string(),
                    unquote(c.get("preset")?.as_str()?),
                ))
            })
            .collect()
    };
    let (pa, pb) = (presets(a), presets(b));
    let same_preset = a.pointer("/run/config_preset") == b.pointer("/run/config_preset");
    for r in rows.iter_mut().filter(|r| r.group == "config") {
        if !same_preset {
            continue;
        }
        if r.a == "-"
            && let Some(p) = pb.get(&r.path)
        {
            r.a = format!("{p} (preset)");
        }
        if r.b == "-"
            && let Some(p) = pa.get(&r.path)
        {
            r.b = format!("{p} (preset)");
        }
    }
}

/// A config value's JSON text, without the quotes of a JSON string (`"1s"` → `1s`).
fn unquote(json: &str) -> String {
    match serde_json::from_str::<Value>(json) {
        Ok(Value::String(s)) => s,
        _ => json.to_string(),
    }
}

/// Leaves of a report keyed by (group, dotted path), in document order within a group.
fn flatten(v: &Value) -> indexmap_lite::Ordered {
    let mut out = indexmap_lite::Ordered::default();
    if let Value::Object(m) = v {
        for (k, v) in m {
            if k == "run" {
                flatten_run(v, &mut out);
            } else {
                walk(k, "", v, &mut out);
            }
        }
    }
    out
}

/// The `run` object: version, command line, preset, start, workload and fault count in the
/// `run` group; each changed config field as a row of the `config` group.
fn flatten_run(v: &Value, out: &mut indexmap_lite::Ordered) {
    let Value::Object(m) = v else { return };
    for (k, v) in m {
        match (k.as_str(), v) {
            ("config_changes", Value::Array(changes)) => {
                for c in changes {
                    if let (Some(f), Some(val)) = (
                        c.get("field").and_then(Value::as_str),
                        c.get("value").and_then(Value::as_str),
                    ) {
                        out.insert(
                            ("config".into(), f.to_string()),
                            Value::String(unquote(val)),
                        );
                    }
                }
            }
            ("faults", Value::Array(f)) => {
                out.insert(("run".into(), "faults".into()), Value::from(f.len()));
                let labels: Vec<&str> = f
                    .iter()
                    .filter_map(|f| f.get("label").and_then(Value::as_str))
                    .take(6)
                    .collect();
                let more = if f.len() > 6 { ", …" } else { "" };
                out.insert(
                    ("run".into(), "first faults".into()),
                    Value::String(format!("{}{more}", labels.join(", "))),
                );
            }
            _ => walk("run", k, v, out),
        }
    }
}

fn walk(group: &str, path: &str, v: &Value, out: &mut indexmap_lite::Ordered) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                walk(group, &join(k), v, out);
            }
        }
        Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
            if items.len() <= MAX_ELEMENTS {
                for (i, item) in items.iter().enumerate() {
                    walk(group, &format!("{path}[{i}]"), item, out);
                }
            } else {
                out.insert((group.into(), join("(entries)")), Value::from(items.len()));
            }
        }
        Value::Array(items) => {
            out.insert((group.into(), join("(entries)")), Value::from(items.len()));
        }
        leaf if path.is_empty() => {
            // A top-level scalar: the run's identity, or a figure of the summary.
            let g = if IDENTITY.contains(&group) {
                "run"
            } else {
                "summary"
            };
            out.insert((g.into(), group.to_string()), leaf.clone());
        }
        leaf => {
            out.insert((group.into(), path.to_string()), leaf.clone());
        }
    }
}

/// A small insertion-ordered map (serde_json's own map sorts its keys; groups keep the order
/// [`ORDER`] gives, paths inside a group the JSON's, which is alphabetical).
mod indexmap_lite {
    use serde_json::Value;
    use std::collections::HashMap;

    /// Keys in insertion order, with their values.
    #[derive(Default)]
    pub(super) struct Ordered {
        order: Vec<(String, String)>,
        values: HashMap<(String, String), Value>,
    }

    impl Ordered {
        pub(super) fn insert(&mut self, k: (String, String), v: Value) {
            if self.values.insert(k.clone(), v).is_none() {
                self.order.push(k);
            }
        }
        pub(super) fn get(&self, k: &(String, String)) -> Option<&Value> {
            self.values.get(k)
        }
        pub(super) fn keys(&self) -> impl Iterator<Item = &(String, String)> {
            self.order.iter()
        }
    }
}

/// A number as the table prints it: integers plainly, others with 4 significant digits.
pub fn fmt_num(v: f64) -> String {
    if (v.fract() == 0.0 && v.abs() < 1e15) || v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

impl Row {
    /// The change as text: `+12 (×1.05)`, or `changed` for text, or empty.
    pub fn change(&self) -> String {
        match (self.delta, self.ratio) {
            (Some(0.0), _) => String::new(),
            (Some(d), Some(r)) => {
                format!("{}{} (×{r:.3})", if d > 0.0 { "+" } else { "" }, fmt_num(d))
            }
            (Some(d), None) => format!("{}{}", if d > 0.0 { "+" } else { "" }, fmt_num(d)),
            (None, _) if self.changed() => "changed".into(),
            _ => String::new(),
        }
    }

    /// A value cell: numbers as [`fmt_num`] prints them, text as is.
    pub fn cell(text: &str) -> String {
        match text.parse::<f64>() {
            Ok(v)
                if text
                    .chars()
                    .all(|c| c.is_ascii_digit() || ".-+eE".contains(c)) =>
            {
                fmt_num(v)
            }
            _ => text.to_string(),
        }
    }
}

impl Comparison {
    /// The terminal table: the figures that changed (all of them with `all`), grouped.
    pub fn to_table(&self, all: bool) -> String {
        const CELL: usize = 22;
        let mut t = String::new();
        let _ = writeln!(t, "A = {}\nB = {}", self.names[0], self.names[1]);
        let changed = self.rows.iter().filter(|r| r.changed()).count();
        let _ = writeln!(
            t,
            "{changed} of {} figures differ{}",
            self.rows.len(),
            if all {
                ""
            } else {
                " (only those are shown; --all shows every figure)"
            }
        );
        let width = self
            .rows
            .iter()
            .map(|r| r.path.chars().count())
            .max()
            .unwrap_or(10)
            .clamp(10, 40);
        let _ = writeln!(
            t,
            "\n  {:<width$}  {:>CELL$}  {:>CELL$}  B − A (B / A)",
            "", "A", "B"
        );
        let mut group = "";
        for r in self.rows.iter().filter(|r| all || r.changed()) {
            if r.group != group {
                group = &r.group;
                let _ = writeln!(t, "{group}");
            }
            let (a, b) = (Row::cell(&r.a), Row::cell(&r.b));
            if a.chars().count() > CELL || b.chars().count() > CELL {
                // Long text (a command line, a fault list): one line each.
                let _ = writeln!(t, "  {}\n    A: {a}\n    B: {b}", r.path);
                continue;
            }
            let _ = writeln!(
                t,
                "  {:<width$}  {a:>CELL$}  {b:>CELL$}  {}",
                r.path,
                r.change()
            );
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ScenarioBuilder, run};

    fn report(probe_ms: Option<u64>) -> Value {
        let mut c = swim_proto::Config::lan();
        if let Some(ms) = probe_ms {
            c.probe_interval = std::time::Duration::from_millis(ms);
        }
        let s = ScenarioBuilder::new(12)
            .name("cmp")
            .seconds(30)
            .config(c)
            .crash(10.0, 5)
            .build();
        serde_json::from_str(&run(&s, 3, crate::RunOptions::default()).to_json()).unwrap()
    }

    #[test]
    fn a_config_change_shows_as_a_config_row_and_moves_the_detection_figures() {
        let (a, b) = (report(None), report(Some(700)));
        let c = compare(["a.json".into(), "b.json".into()], &a, &b);
        let cfg = c
            .rows
            .iter()
            .find(|r| r.group == "config" && r.path == "probe_interval")
            .expect("a config row for the changed field");
        assert_eq!((cfg.a.as_str(), cfg.b.as_str()), ("1s (preset)", "700ms"));
        let d = c
            .rows
            .iter()
            .find(|r| r.group == "detection" && r.path == "first_dead_ms.p50")
            .unwrap();
        assert!(d.changed() && d.delta.is_some_and(|d| d < 0.0), "{d:?}");
        // Report order: the run's identity first, then config, then detection.
        let first = |g: &str| c.rows.iter().position(|r| r.group == g).unwrap();
        assert!(first("run") < first("config") && first("config") < first("detection"));
        assert_eq!(c.rows[first("run")].path, "scenario");
        let table = c.to_table(false);
        assert!(table.contains("probe_interval") && table.contains("first_dead_ms.p50"));
        assert!(
            !table.contains("\nrun\n"),
            "unchanged groups are left out:\n{table}"
        );
        assert!(c.to_table(true).contains("\nrun\n"));
    }

    #[test]
    fn a_report_compared_with_itself_differs_nowhere() {
        let a = report(None);
        let c = compare(["a".into(), "a".into()], &a, &a);
        assert!(c.rows.iter().all(|r| !r.changed()));
        assert!(c.rows.len() > 40, "{} rows", c.rows.len());
    }

    #[test]
    fn rejects_what_is_not_a_report() {
        let path = std::env::temp_dir().join(format!("swim-sim-cmp-{}.json", std::process::id()));
        std::fs::write(&path, "{\"x\": 1}").unwrap();
        assert!(
            load(&path)
                .unwrap_err()
                .contains("not a swim-sim JSON report")
        );
        std::fs::write(&path, "nope").unwrap();
        assert!(load(&path).is_err());
        std::fs::remove_file(&path).ok();
    }
}
