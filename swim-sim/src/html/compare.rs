//! The comparison page (`swim-sim compare a.json b.json --report diff.html`): the two runs'
//! identity and config differences, the headline figures with A and B drawn as bars, then
//! every figure by group with its change (groups without a change are folded).

use std::fmt::Write;

use super::*;
use crate::compare::{Comparison, Row};

/// The figures a reader looks at first, as (group, path, what it is).
const HEADLINE: &[(&str, &str, &str)] = &[
    (
        "detection",
        "first_suspect_ms.p50",
        "first suspicion of a crash, p50 (ms)",
    ),
    ("detection", "first_dead_ms.p50", "first dead, p50 (ms)"),
    (
        "detection",
        "all_dead_ms.p99",
        "dead at each observer, p99 (ms)",
    ),
    (
        "detection",
        "dead_everywhere_ms.p99",
        "dead at every observer, p99 (ms)",
    ),
    (
        "detection",
        "undetected",
        "never-detected (crash, observer) pairs",
    ),
    (
        "false_deaths",
        "reachable.events",
        "false deaths (a): reachable nodes",
    ),
    (
        "false_deaths",
        "restarted.events",
        "false deaths (b): restarted nodes",
    ),
    (
        "false_deaths",
        "healthy_in_faulty_run.events",
        "false deaths (d): healthy, faulty run",
    ),
    (
        "false_deaths",
        "across_partition.events",
        "deaths across a partition (expected)",
    ),
    ("false_positives", "suspect", "suspicions of up nodes"),
    ("stable_view_ms", "p50", "stable view and leader, p50 (ms)"),
    ("summary", "heal_ms", "heal after partition (ms)"),
    ("summary", "convergence_ms", "first convergence (ms)"),
    ("dissemination", "p99_ms", "dissemination p99 (ms)"),
    (
        "state",
        "p99_ms",
        "state write reaches every node, p99 (ms)",
    ),
    ("load", "bytes_per_node_s", "datagram bytes per node per s"),
    ("load", "max_bytes_per_node_s", "busiest node's bytes per s"),
    ("load", "datagrams_per_node_s", "datagrams per node per s"),
];

/// Renders a comparison of two runs as one self-contained HTML page.
#[must_use]
pub fn render_comparison(c: &Comparison) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    w!(
        out,
        "<title>swim-sim: {} vs {}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<main>\n",
        esc(&c.names[0]),
        esc(&c.names[1])
    );
    let changed = c.rows.iter().filter(|r| r.changed()).count();
    w!(
        out,
        "<header>\n<h1><span class=\"muted\">swim-sim · compare</span> A vs B</h1>\n<ul class=\"meta\"><li><span>A</span> <b>{}</b></li><li><span>B</span> <b>{}</b></li><li><span>figures that differ</span> <b>{} of {}</b></li></ul>\n</header>\n",
        esc(&c.names[0]),
        esc(&c.names[1]),
        fmt_count(changed as u64),
        fmt_count(c.rows.len() as u64)
    );

    // The runs' identity and configuration, always open.
    let ident: Vec<&Row> = c
        .rows
        .iter()
        .filter(|r| {
            matches!(
                r.group.as_str(),
                "scenario" | "nodes" | "seconds" | "seed" | "run" | "config"
            )
        })
        .collect();
    out.push_str("<section class=\"card config\"><h2>The two runs</h2><div class=\"scroll\"><table>\n<thead><tr><th class=\"l\"></th><th class=\"l\">A</th><th class=\"l\">B</th></tr></thead><tbody>\n");
    for r in ident {
        let name = match r.group.as_str() {
            "config" => format!("config <code>{}</code>", esc(&r.path)),
            _ => esc(&r.path.replace('_', " ")),
        };
        let tone = if r.changed() {
            " class=\"l warn\""
        } else {
            " class=\"l\""
        };
        w!(
            out,
            "<tr><th>{name}</th><td{tone}>{}</td><td{tone}>{}</td></tr>\n",
            esc(&truncate(&r.a, 400)),
            esc(&truncate(&r.b, 400))
        );
    }
    out.push_str("</tbody></table></div></section>\n");

    headline(&mut out, c);

    // Every figure, by group.
    let mut groups: Vec<&str> = Vec::new();
    for r in &c.rows {
        if !groups.contains(&r.group.as_str()) {
            groups.push(&r.group);
        }
    }
    for g in groups {
        if matches!(
            g,
            "scenario" | "nodes" | "seconds" | "seed" | "run" | "config"
        ) {
            continue;
        }
        let rows: Vec<&Row> = c.rows.iter().filter(|r| r.group == g).collect();
        let n = rows.iter().filter(|r| r.changed()).count();
        w!(
            out,
            "<details{}><summary>{} <span class=\"muted\">({} of {} differ)</span></summary><div class=\"scroll\"><table>\n<thead><tr><th class=\"l\"></th><th>A</th><th>B</th><th>B − A (B / A)</th></tr></thead><tbody>\n",
            if n > 0 { " open" } else { "" },
            esc(g),
            n,
            rows.len()
        );
        for r in rows {
            let class = if r.changed() { "" } else { " class=\"muted\"" };
            w!(
                out,
                "<tr{class}><th>{}</th><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                esc(&r.path),
                esc(&truncate(&Row::cell(&r.a), 60)),
                esc(&truncate(&Row::cell(&r.b), 60)),
                esc(&r.change())
            );
        }
        out.push_str("</tbody></table></div></details>\n");
    }
    out.push_str("<footer>Generated by swim-sim compare from two <code>swim-sim run --json</code> reports. Wall time and cost depend on the machine and its load.</footer>\n</main>\n</body>\n</html>\n");
    out
}

/// Pixel width of a headline bar at its longest.
const BAR: f64 = 150.0;

/// The headline figures present in either run, A and B as bars on one scale per row.
fn headline(out: &mut String, c: &Comparison) {
    let rows: Vec<(&Row, &str)> = HEADLINE
        .iter()
        .filter_map(|(g, p, what)| {
            c.rows
                .iter()
                .find(|r| r.group == *g && r.path == *p)
                .filter(|r| r.a != "-" || r.b != "-")
                .map(|r| (r, *what))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    out.push_str("<section class=\"card config\"><h2>Headline figures</h2><p class=\"caption\"><span class=\"sw\" style=\"background:#94a3b8\"></span>A <span class=\"sw\" style=\"background:#2563eb\"></span>B, each row on its own scale.</p><div class=\"scroll\"><table>\n<thead><tr><th class=\"l\"></th><th>A</th><th>B</th><th>B − A (B / A)</th><th class=\"l\"></th></tr></thead><tbody>\n");
    for (r, what) in rows {
        let num = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0);
        let (a, b) = (num(&r.a), num(&r.b));
        let top = a.unwrap_or(0.0).max(b.unwrap_or(0.0));
        let bar = |v: Option<f64>, y: f64, color: &str| match v {
            Some(v) if top > 0.0 => format!(
                "<rect x=\"0\" y=\"{y}\" width=\"{:.1}\" height=\"6\" fill=\"{color}\"/>",
                (v / top * BAR).max(1.0)
            ),
            _ => String::new(),
        };
        let class = if r.changed() { "" } else { " class=\"muted\"" };
        w!(
            out,
            "<tr{class}><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td class=\"l\"><svg width=\"{BAR}\" height=\"16\" role=\"img\" aria-label=\"A and B\">{}{}</svg></td></tr>\n",
            esc(what),
            esc(&Row::cell(&r.a)),
            esc(&Row::cell(&r.b)),
            esc(&r.change()),
            bar(a, 1.0, "#94a3b8"),
            bar(b, 9.0, "#2563eb")
        );
    }
    out.push_str("</tbody></table></div></section>\n");
}
