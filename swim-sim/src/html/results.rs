//! The summary cards: every figure the terminal table prints, grouped as a reader of an
//! incident review asks for them: detection, deaths (expected or false), views and leader,
//! replicated state, load and cost.

use std::fmt::Write;

use super::*;
use crate::report::{FalseDeathCount, StateReport};

/// Emphasis for a value in a summary table.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Tone {
    Plain,
    Good,
    Warn,
    Bad,
}

impl Tone {
    /// `Warn` (or `Bad` if `bad`) when `n` is nonzero.
    pub(super) fn nonzero(n: u64, bad: bool) -> Self {
        match (n, bad) {
            (0, _) => Tone::Plain,
            (_, false) => Tone::Warn,
            (_, true) => Tone::Bad,
        }
    }

    /// The `class` attribute for a cell, if any.
    pub(super) fn attr(self) -> &'static str {
        match self {
            Tone::Plain => "",
            Tone::Good => " class=\"good\"",
            Tone::Warn => " class=\"warn\"",
            Tone::Bad => " class=\"bad\"",
        }
    }
}

/// Writes a card holding a two-column table of `(name, value, tone)` rows.
pub(super) fn kv_card(out: &mut String, title: &str, rows: &[(&str, String, Tone)]) {
    w!(
        out,
        "<div class=\"card\"><h3>{}</h3><table><tbody>\n",
        esc(title)
    );
    for (k, v, tone) in rows {
        w!(
            out,
            "<tr><th>{}</th><td{}>{}</td></tr>\n",
            esc(k),
            tone.attr(),
            esc(v)
        );
    }
    out.push_str("</tbody></table></div>\n");
}

/// Writes a wide card of p50 / p99 / max rows, each saying what its samples are.
fn summary_card(out: &mut String, title: &str, rows: &[(&str, &Summary, &str)]) {
    w!(
        out,
        "<div class=\"card wide\"><h3>{}</h3><div class=\"scroll\"><table>\n<thead><tr><th></th><th>p50</th><th>p99</th><th>max</th><th class=\"l\">over</th></tr></thead><tbody>\n",
        esc(title)
    );
    for (name, s, of) in rows {
        summary_row(out, name, s, of);
    }
}

/// One p50 / p99 / max row of a summary card.
fn summary_row(out: &mut String, name: &str, s: &Summary, of: &str) {
    w!(
        out,
        "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{} {}</td></tr>\n",
        esc(name),
        fmt_ms(s.p50),
        fmt_ms(s.p99),
        fmt_ms(s.max),
        fmt_count(s.count as u64),
        esc(&if s.count == 1 {
            singular(of)
        } else {
            of.to_string()
        })
    );
}

/// "crashes (…)" → "crash (…)", "pairs" → "pair": the first word of a sample description in
/// the singular, for a count of one.
fn singular(of: &str) -> String {
    let (word, rest) = of.split_once(' ').map_or((of, ""), |(w, r)| (w, r));
    let one = match word {
        "crashes" => "crash",
        w => w.strip_suffix('s').unwrap_or(w),
    };
    if rest.is_empty() {
        one.to_string()
    } else {
        format!("{one} {rest}")
    }
}

/// Closes a [`summary_card`], after any extra full-width rows.
fn end_card(out: &mut String) {
    out.push_str("</tbody></table></div></div>\n");
}

/// A full-width row (name, value) in a summary card.
fn wide_row(out: &mut String, name: &str, value: &str, tone: Tone) {
    w!(
        out,
        "<tr><th>{}</th><td colspan=\"4\" class=\"l{}\">{}</td></tr>\n",
        esc(name),
        match tone {
            Tone::Plain => "",
            Tone::Good => " good",
            Tone::Warn => " warn",
            Tone::Bad => " bad",
        },
        esc(value)
    );
}

/// The key numbers, grouped in cards.
pub(super) fn summary_cards(out: &mut String, r: &Report) {
    out.push_str("<section class=\"cards\">\n");
    detection_card(out, r);
    deaths_card(out, r);
    views_card(out, r);
    if let Some(st) = &r.state {
        state_card(out, st);
    }
    load_cards(out, r);
    out.push_str("</section>\n");
}

/// Failure detection of crashed nodes: the three stages of the suspicion phase.
fn detection_card(out: &mut String, r: &Report) {
    let d = &r.detection;
    summary_card(
        out,
        "Failure detection (time from the crash)",
        &[
            ("first suspicion anywhere", &d.first_suspect_ms, "crashes"),
            ("first dead anywhere", &d.first_dead_ms, "crashes"),
            (
                "dead at each observer",
                &d.all_dead_ms,
                "pairs (crash, observer)",
            ),
            ("dead at every observer", &d.dead_everywhere_ms, "crashes"),
        ],
    );
    wide_row(
        out,
        "never detected",
        &format!(
            "{} (crash, observer) pairs: a live observer still held a crashed node alive at the end",
            fmt_count(d.undetected)
        ),
        Tone::nonzero(d.undetected, true),
    );
    end_card(out);
}

/// Deaths of nodes: the expected ones (crashed, across a partition, faulty victims) apart from
/// the false ones (reachable, healthy nodes), which split by side of a partition.
fn deaths_card(out: &mut String, r: &Report) {
    let fd = &r.false_deaths;
    out.push_str("<div class=\"card wide\"><h3>Deaths: expected and false</h3><div class=\"scroll\"><table>\n");
    out.push_str(
        "<thead><tr><th></th><th>events</th><th>nodes</th><th class=\"l\">verdict</th></tr></thead><tbody>\n",
    );
    let row = |out: &mut String, name: &str, c: FalseDeathCount, verdict: &str, tone: Tone| {
        w!(
            out,
            "<tr><th>{}</th><td{}>{}</td><td{}>{}</td><td class=\"l\">{}</td></tr>\n",
            esc(name),
            tone.attr(),
            fmt_count(c.events),
            tone.attr(),
            fmt_count(c.victims),
            esc(verdict)
        );
    };
    out.push_str("<tr class=\"group\"><th colspan=\"4\">expected</th></tr>\n");
    let crashed = FalseDeathCount {
        events: r.detection.all_dead_ms.count as u64,
        victims: r.crashes.len() as u64,
    };
    row(
        out,
        "of crashed nodes",
        crashed,
        "expected: detection",
        Tone::Plain,
    );
    let expected: [(&str, FalseDeathCount, &str); 3] = [
        (
            "(c) across a partition",
            fd.across_partition,
            "expected: unreachable",
        ),
        (
            "of paused, slow, flaky or skewed nodes",
            fd.faulty_victim,
            "expected: faulty",
        ),
        (
            "of nodes up under 2 s",
            fd.fresh,
            "not judged: claim may be about the previous instance",
        ),
    ];
    for (name, c, verdict) in expected {
        row(out, name, c, verdict, Tone::Plain);
    }
    out.push_str("<tr class=\"group\"><th colspan=\"4\">false: of reachable, healthy nodes (target zero)</th></tr>\n");
    let false_ones: [(&str, FalseDeathCount); 3] = [
        ("(a) reachable for 2 s", fd.reachable),
        ("(b) restarted, back up 2 s", fd.restarted),
        (
            "(d) healthy, in a run with faulty nodes",
            fd.healthy_in_faulty_run,
        ),
    ];
    for (name, c) in false_ones {
        let tone = Tone::nonzero(c.events, true);
        row(
            out,
            name,
            c,
            if c.events == 0 { "ok" } else { "false" },
            tone,
        );
    }
    for s in &r.false_deaths_by_side {
        let tone = Tone::nonzero(s.deaths.events, true);
        row(
            out,
            &format!(
                "  of those, side {} of the partition ({} nodes)",
                s.side + 1,
                fmt_count(u64::from(s.nodes))
            ),
            s.deaths,
            "false",
            tone,
        );
    }
    let fp = &r.false_positives;
    w!(
        out,
        "<tr class=\"group\"><th colspan=\"4\">all declarations about nodes that were up</th></tr>\n<tr><th>suspicions</th><td>{}</td><td></td><td class=\"l\"></td></tr>\n<tr><th>dead declarations</th><td>{}</td><td>{}</td><td class=\"l\">{} of these nodes healthy (never paused, slowed or cut off)</td></tr>\n",
        fmt_count(fp.suspect),
        fmt_count(fp.dead),
        fmt_count(fp.victims),
        fmt_count(fp.healthy_victims)
    );
    out.push_str("</tbody></table></div></div>\n");
}

/// Membership views, the stable view and leader, and their healing.
fn views_card(out: &mut String, r: &Report) {
    summary_card(
        out,
        "Views and leader",
        &[
            (
                "stable view and leader",
                &r.stable_view_ms,
                "changes of membership (time until every live node reports the same view and leader)",
            ),
            (
                "heal per node",
                &r.heal_nodes_ms,
                "nodes (time from the last partition's end until the node's view is right)",
            ),
        ],
    );
    w!(
        out,
        "<tr><th>dissemination</th><td>{}</td><td>{}</td><td>—</td><td class=\"l\">{} membership changes (first node that knew to the last)</td></tr>\n",
        fmt_ms(r.dissemination.p50_ms),
        fmt_ms(r.dissemination.p99_ms),
        fmt_count(r.dissemination.count as u64)
    );
    wide_row(
        out,
        "first convergence",
        &match r.convergence_ms {
            Some(_) => format!(
                "{} from the start until every live view equalled the live set",
                fmt_ms(r.convergence_ms)
            ),
            None => "never".into(),
        },
        if r.convergence_ms.is_some() {
            Tone::Plain
        } else {
            Tone::Warn
        },
    );
    wide_row(
        out,
        "heal after partition",
        &match r.heal_ms {
            Some(_) => format!(
                "{} from the last partition's end until every view was right",
                fmt_ms(r.heal_ms)
            ),
            None => "— (no partition, or views never healed)".into(),
        },
        Tone::Plain,
    );
    let (end, tone) = if r.converged {
        (
            "converged: every live view equals the live set".to_string(),
            Tone::Good,
        )
    } else {
        (
            format!(
                "NOT converged: {} live nodes' views differ from the live set",
                fmt_count(u64::from(r.unconverged_nodes))
            ),
            Tone::Bad,
        )
    };
    wide_row(out, "views at the end", &end, tone);
    wide_row(
        out,
        "packets dropped",
        &format!(
            "{} by running nodes (undecodable, wrong key or label, over a bound)",
            fmt_count(r.packets_dropped)
        ),
        Tone::Plain,
    );
    end_card(out);
}

/// Replicated state: reach times of writes and whether the stores converged.
fn state_card(out: &mut String, st: &StateReport) {
    let s = Summary {
        p50: st.p50_ms,
        p99: st.p99_ms,
        max: st.max_ms,
        count: st.reached_all as usize,
    };
    summary_card(
        out,
        "Replicated state",
        &[(
            "write reached every live node",
            &s,
            "writes (time from the write)",
        )],
    );
    wide_row(out, "writes made", &fmt_count(st.updates), Tone::Plain);
    wide_row(
        out,
        "not everywhere by the end",
        &fmt_count(st.never_reached_all),
        Tone::nonzero(st.never_reached_all, false),
    );
    let (text, tone) = if st.converged {
        (
            format!(
                "identical: equal fingerprints of every type, key, version and origin across {} live nodes",
                fmt_count(st.live_nodes_checked as u64)
            ),
            Tone::Good,
        )
    } else {
        (
            format!(
                "DIFFER: fingerprints not equal across {} live nodes",
                fmt_count(st.live_nodes_checked as u64)
            ),
            Tone::Bad,
        )
    };
    wide_row(out, "stores at the end", &text, tone);
    end_card(out);
}

/// Traffic and what the run cost the machine.
fn load_cards(out: &mut String, r: &Report) {
    let l = &r.load;
    kv_card(
        out,
        "Load per node per simulated second",
        &[
            (
                "datagrams sent",
                fmt_sig(l.datagrams_per_node_s, ""),
                Tone::Plain,
            ),
            (
                "datagram bytes sent",
                fmt_sig(l.bytes_per_node_s, "B"),
                Tone::Plain,
            ),
            (
                "busiest node's bytes",
                fmt_sig(l.max_bytes_per_node_s, "B"),
                Tone::Plain,
            ),
            (
                "stream messages",
                fmt_sig(l.streams_per_node_s, ""),
                Tone::Plain,
            ),
            (
                "stream bytes",
                fmt_sig(l.stream_bytes_per_node_s, "B"),
                Tone::Plain,
            ),
        ],
    );
    let c = &r.cost;
    kv_card(
        out,
        "Cost on this machine",
        &[
            ("wall time", fmt_secs(r.wall_s), Tone::Plain),
            ("events processed", fmt_count(r.events), Tone::Plain),
            (
                "simulated node-seconds per wall second",
                fmt_sig(c.node_seconds_per_wall_s, ""),
                Tone::Plain,
            ),
            (
                "events per wall second",
                fmt_sig(c.events_per_wall_s, ""),
                Tone::Plain,
            ),
            ("peak memory", fmt_mem(c.peak_memory_bytes), Tone::Plain),
            (
                "peak memory per node",
                fmt_mem(c.memory_per_node_bytes),
                Tone::Plain,
            ),
        ],
    );
}
