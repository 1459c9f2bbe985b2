//! Fault windows on the page: each kind's name and color, the swatches in the plots'
//! captions, and the table of every window.

use std::fmt::Write;

use super::*;
use crate::scenario::FaultKind;

/// The distinct fault kinds as colored HTML swatches, for the time plots' captions.
pub(super) fn fault_kinds_html(faults: &[FaultWindow]) -> String {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for f in faults {
        let k = kind_style(f.kind);
        if !seen.contains(&k) {
            seen.push(k);
        }
    }
    let mut s = String::new();
    for (name, color) in seen {
        w!(
            s,
            "<span class=\"sw\" style=\"background:{color};opacity:.45\"></span>{name}"
        );
    }
    s
}

/// A collapsible table of every fault window (capped).
pub(super) fn fault_list(out: &mut String, faults: &[FaultWindow]) {
    const MAX_ROWS: usize = 200;
    if faults.is_empty() {
        return;
    }
    w!(
        out,
        "<details><summary>Fault windows ({})</summary><table>\n",
        fmt_count(faults.len() as u64)
    );
    out.push_str("<thead><tr><th>start</th><th>end</th><th>duration</th><th class=\"l\">fault</th></tr></thead><tbody>\n");
    for f in faults.iter().take(MAX_ROWS) {
        let (_, color) = kind_style(f.kind);
        w!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"l\"><span class=\"sw\" style=\"background:{color};opacity:.45\"></span>{}</td></tr>\n",
            fmt_secs(f.start_ms / 1000.0),
            fmt_secs(f.end_ms / 1000.0),
            fmt_ms(Some(f.end_ms - f.start_ms)),
            esc(&f.label)
        );
    }
    if faults.len() > MAX_ROWS {
        w!(
            out,
            "<tr><td colspan=\"4\" class=\"l\">… and {} more</td></tr>\n",
            fmt_count((faults.len() - MAX_ROWS) as u64)
        );
    }
    out.push_str("</tbody></table></details>\n");
}

/// How a fault kind shows on the page: a short name and a color.
pub(super) fn kind_style(kind: FaultKind) -> (&'static str, &'static str) {
    match kind {
        FaultKind::Crash => ("crash", "#dc2626"),
        FaultKind::Partition => ("partition", "#7c3aed"),
        FaultKind::Loss => ("loss", "#d97706"),
        FaultKind::Slow => ("delay / slow", "#0891b2"),
        FaultKind::Pause => ("pause", "#db2777"),
        FaultKind::Churn => ("churn", "#059669"),
        _ => ("other fault", "#64748b"),
    }
}
