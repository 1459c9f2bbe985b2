//! The suspicion phase per crash: first suspicion, first death and dead at every observer, as
//! a small timeline per crash (issue 12's chain).

use std::fmt::Write;

use super::*;
use crate::report::CrashChain;

/// Colors of the chain's stages: suspected somewhere, dead somewhere, dead everywhere.
const SUSPECT: &str = "#f59e0b";
const DEAD: &str = "#dc2626";
const EVERYWHERE: &str = "#111827";

/// Pixel width of one chain's timeline.
const BAR_W: f64 = 360.0;
/// At most this many crashes get a row.
const MAX_ROWS: usize = 100;

/// A table with one row per crash and a timeline from the crash to dead everywhere, all on
/// one time scale so that slow chains stand out.
pub(super) fn crash_chains(out: &mut String, r: &Report) {
    if r.crashes.is_empty() {
        return;
    }
    let end = |c: &CrashChain| {
        [c.dead_everywhere_ms, c.first_dead_ms, c.first_suspect_ms]
            .into_iter()
            .flatten()
            .find(|v| v.is_finite())
    };
    let longest = r.crashes.iter().filter_map(end).fold(1.0f64, f64::max);
    let x = |ms: f64| (ms.max(0.0) / longest * BAR_W).min(BAR_W);
    w!(
        out,
        "<details open><summary>Detection chain per crash ({})</summary><p class=\"caption\">From each crash: <span class=\"sw\" style=\"background:{SUSPECT}\"></span>suspected somewhere <span class=\"sw\" style=\"background:{DEAD}\"></span>dead somewhere <span class=\"sw\" style=\"background:{EVERYWHERE}\"></span>dead at every observer. Every bar runs from 0 to {}, one scale for all.</p><div class=\"scroll\"><table>\n",
        fmt_count(r.crashes.len() as u64),
        fmt_ms(Some(longest))
    );
    out.push_str("<thead><tr><th class=\"l\">node</th><th>crash at</th><th>first suspect</th><th>first dead</th><th>dead everywhere</th><th class=\"l\">timeline</th></tr></thead><tbody>\n");
    for c in r.crashes.iter().take(MAX_ROWS) {
        let mut svg = format!(
            "<svg width=\"{BAR_W}\" height=\"12\" role=\"img\"><rect x=\"0\" y=\"5\" width=\"{BAR_W}\" height=\"2\" fill=\"#e5e7eb\"/>"
        );
        // Each stage runs from its start to the next stage's start (or the chain's end).
        let stages = [
            (c.first_suspect_ms, SUSPECT),
            (c.first_dead_ms, DEAD),
            (c.dead_everywhere_ms, EVERYWHERE),
        ];
        let last = end(c).unwrap_or(0.0);
        for (i, (start, color)) in stages.iter().enumerate() {
            let Some(s) = start.filter(|v: &f64| v.is_finite()) else {
                continue;
            };
            let next = stages[i + 1..]
                .iter()
                .find_map(|(v, _)| v.filter(|v: &f64| v.is_finite()))
                .unwrap_or(last);
            let (x0, x1) = (x(s), x(next));
            w!(
                svg,
                "<rect x=\"{:.1}\" y=\"2\" width=\"{:.1}\" height=\"8\" fill=\"{color}\"/>",
                x0,
                (x1 - x0).max(2.0)
            );
        }
        svg.push_str("</svg>");
        let note = if c.restarted { " (restarted)" } else { "" };
        w!(
            out,
            "<tr><td class=\"l\">node-{}{note}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{svg}</td></tr>\n",
            c.node,
            fmt_secs(c.at_ms / 1000.0),
            fmt_ms(c.first_suspect_ms),
            fmt_ms(c.first_dead_ms),
            fmt_ms(c.dead_everywhere_ms)
        );
    }
    if r.crashes.len() > MAX_ROWS {
        w!(
            out,
            "<tr><td colspan=\"6\" class=\"l\">… and {} more</td></tr>\n",
            fmt_count((r.crashes.len() - MAX_ROWS) as u64)
        );
    }
    out.push_str("</tbody></table></div></details>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{FalseDeathCount, FalseDeaths};

    #[test]
    fn shows_false_deaths_by_kind_and_a_timeline_per_crash() {
        let chain = |node, suspect: Option<f64>, dead, everywhere| CrashChain {
            node,
            at_ms: 12_000.0,
            first_suspect_ms: suspect,
            first_dead_ms: dead,
            dead_everywhere_ms: everywhere,
            restarted: false,
        };
        let r = Report {
            false_deaths: FalseDeaths {
                reachable: FalseDeathCount {
                    events: 1281,
                    victims: 80,
                },
                ..FalseDeaths::default()
            },
            crashes: vec![
                chain(3, Some(1500.0), Some(9500.0), Some(10_200.0)),
                chain(7, Some(f64::NAN), None, None),
            ],
            ..Report::default()
        };
        let html = render(&r);
        assert!(html.contains("Deaths: expected and false"));
        assert!(
            html.contains("<td class=\"bad\">1,281</td>"),
            "(a) is red when not zero"
        );
        assert!(html.contains("Detection chain per crash (2)"));
        // One timeline per crash: the first with three stages, the second with none.
        assert_eq!(html.matches("<svg width=\"360\"").count(), 2);
        assert_eq!(html.matches(&format!("fill=\"{EVERYWHERE}\"")).count(), 1);
        assert!(!html.contains("NaN"));
    }
}
