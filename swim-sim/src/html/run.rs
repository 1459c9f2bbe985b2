//! The run's configuration on the page: build version, command line, seed, the config preset
//! and every field changed from it, how the cluster started, the workload, and every fault of
//! the timeline with its kind.

use std::fmt::Write;

use super::*;
use crate::scenario::FaultKind;

/// At most this many faults are listed.
const MAX_FAULT_ROWS: usize = 200;
/// The fault list starts unfolded up to this many faults.
const OPEN_UP_TO: usize = 20;

/// The configuration section: what ran, enough to run it again.
pub(super) fn config_section(out: &mut String, r: &Report) {
    let run = &r.run;
    out.push_str("<section class=\"card config\" id=\"config\"><h2>Configuration</h2><div class=\"scroll\"><table><tbody>\n");
    let mut row = |k: &str, v_html: String| {
        w!(out, "<tr><th>{k}</th><td class=\"l\">{v_html}</td></tr>\n");
    };
    row("scenario", esc(scenario_name(r)));
    row(
        "cluster",
        format!(
            "{} nodes, {} simulated, seed {}",
            fmt_count(r.nodes as u64),
            fmt_secs(r.seconds),
            r.seed
        ),
    );
    if let Some(cmd) = &run.command_line {
        row("command line", format!("<code>{}</code>", esc(cmd)));
    }
    if !run.version.is_empty() {
        row(
            "swim-sim version",
            format!("<code>{}</code>", esc(&run.version)),
        );
    }
    if !run.config_preset.is_empty() {
        let changed = match run.config_changes.len() {
            0 => "no field changed".to_string(),
            1 => "1 field changed (below)".to_string(),
            n => format!("{n} fields changed (below)"),
        };
        row(
            "protocol config",
            format!(
                "<code>Config::{}()</code> preset, {changed}",
                esc(&run.config_preset)
            ),
        );
    }
    if !run.start.is_empty() {
        row("start", esc(&run.start));
    }
    if let Some(wl) = &run.workload {
        row("state workload", esc(wl));
    }
    out.push_str("</tbody></table></div>\n");

    if !run.config_changes.is_empty() {
        out.push_str("<h3>Changed from the preset and the default network</h3><div class=\"scroll\"><table>\n<thead><tr><th class=\"l\">field</th><th class=\"l\">this run</th><th class=\"l\">preset / default</th></tr></thead><tbody>\n");
        for c in &run.config_changes {
            w!(
                out,
                "<tr><td class=\"l\"><code>{}</code></td><td class=\"l\"><code>{}</code></td><td class=\"l muted\"><code>{}</code></td></tr>\n",
                esc(&c.field),
                esc(&truncate(&c.value, 120)),
                esc(&truncate(&c.preset, 120))
            );
        }
        out.push_str("</tbody></table></div>\n");
    }

    if run.faults.is_empty() {
        if r.faults.is_empty() {
            out.push_str("<p class=\"muted\">No faults.</p>\n");
        } else {
            fault_list(out, &r.faults);
        }
    } else {
        fault_table(out, r);
    }
    out.push_str("</section>\n");
}

/// Every fault of the timeline with its kind, start and duration.
fn fault_table(out: &mut String, r: &Report) {
    let faults = &r.run.faults;
    w!(
        out,
        "<details{}><summary>Faults ({})</summary><div class=\"scroll\"><table>\n<thead><tr><th>at</th><th class=\"l\">kind</th><th class=\"l\">fault</th><th>lasts</th></tr></thead><tbody>\n",
        if faults.len() <= OPEN_UP_TO {
            " open"
        } else {
            ""
        },
        fmt_count(faults.len() as u64)
    );
    for f in faults.iter().take(MAX_FAULT_ROWS) {
        let (name, color) = kind_style(f.kind);
        let lasts = match (f.duration_ms, f.kind) {
            (Some(d), _) => fmt_ms(Some(d)),
            (None, FaultKind::Crash) => "permanent".to_string(),
            (None, _) => "to the end, or instant".to_string(),
        };
        w!(
            out,
            "<tr><td>{}</td><td class=\"l\"><span class=\"sw\" style=\"background:{color};opacity:.45\"></span>{name}</td><td class=\"l\">{}</td><td>{}</td></tr>\n",
            fmt_secs(f.at_ms / 1000.0),
            esc(&f.label),
            esc(&lasts)
        );
    }
    if faults.len() > MAX_FAULT_ROWS {
        w!(
            out,
            "<tr><td colspan=\"4\" class=\"l\">… and {} more</td></tr>\n",
            fmt_count((faults.len() - MAX_FAULT_ROWS) as u64)
        );
    }
    out.push_str("</tbody></table></div></details>\n");
}
