//! Issue 12's figures on the page: false deaths by kind (a card), and each crash's detection
//! chain (first suspicion, first death, dead everywhere) as a small timeline per crash.

use std::fmt::Write;

use super::*;
use crate::report::{CrashChain, FalseDeathCount};

/// Colors of the chain's stages: suspected somewhere, dead somewhere, dead everywhere.
const SUSPECT: &str = "#f59e0b";
const DEAD: &str = "#dc2626";
const EVERYWHERE: &str = "#111827";

/// A card with the false deaths by kind; the kinds that must be zero show in red when not.
pub(super) fn false_deaths_card(out: &mut String, r: &Report) {
    let fd = &r.false_deaths;
    out.push_str("<div class=\"card wide\"><h3>False deaths by kind</h3><table>\n");
    out.push_str(
        "<thead><tr><th></th><th>events</th><th>victims</th><th class=\"l\">target</th></tr></thead><tbody>\n",
    );
    let rows: [(&str, FalseDeathCount, bool); 6] = [
        ("(a) reachable for 2 s", fd.reachable, true),
        ("(b) restarted, back up 2 s", fd.restarted, true),
        ("(c) across a partition", fd.across_partition, false),
        (
            "(d) healthy, in a faulty run",
            fd.healthy_in_faulty_run,
            true,
        ),
        ("faulty victim", fd.faulty_victim, false),
        ("fresh (up under 2 s)", fd.fresh, false),
    ];
    for (name, c, must_be_zero) in rows {
        let tone = if must_be_zero {
            Tone::nonzero(c.events, true)
        } else {
            Tone::Plain
        };
        w!(
            out,
            "<tr><th>{name}</th><td{}>{}</td><td{}>{}</td><td class=\"l\">{}</td></tr>\n",
            tone.attr(),
            fmt_count(c.events),
            tone.attr(),
            fmt_count(c.victims),
            if must_be_zero { "zero" } else { "expected" }
        );
    }
    out.push_str("</tbody></table></div>\n");
}

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
        "<details open><summary>Detection chain per crash ({}): <span class=\"sw\" style=\"background:{SUSPECT}\"></span>suspected somewhere <span class=\"sw\" style=\"background:{DEAD}\"></span>dead somewhere <span class=\"sw\" style=\"background:{EVERYWHERE}\"></span>dead everywhere (bar: 0 to {})</summary><table>\n",
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
    out.push_str("</tbody></table></details>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::FalseDeaths;

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
        assert!(html.contains("False deaths by kind"));
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
