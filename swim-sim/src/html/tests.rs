//! Tests of the page, the plotting kit and the formatting.

use super::*;
use crate::report::{Detection, Series};
use crate::scenario::FaultKind;

/// A deterministic pseudo-random number in 0..1.
fn noise(i: usize) -> f64 {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// A plausible run: `samples` samples of a 1000-node cluster over 600 s, a crash, a
/// partition and loss, and `detections` detection latencies.
fn realistic(samples: usize, faults: usize, detections: usize) -> Report {
    let nodes = 1000u32;
    let dt = 600_000.0 / samples as f64;
    let mut s = Series::default();
    for i in 0..samples {
        let t = i as f64 * dt;
        let live = if t > 200_000.0 { nodes - 10 } else { nodes };
        let lag = if (200_000.0..215_000.0).contains(&t) {
            10
        } else {
            0
        };
        let split = (300_000.0..360_000.0).contains(&t);
        let p50 = if split { live / 2 } else { live + lag };
        s.t_ms.push(t);
        s.true_live.push(live);
        s.view_min
            .push(p50.saturating_sub(3 + (noise(i) * 5.0) as u32));
        s.view_p10.push(p50.saturating_sub(1));
        s.view_p50.push(p50);
        s.view_p90.push(p50 + u32::from(split) * 2);
        s.view_max.push(if split { live } else { p50 + 1 });
        let b = 900.0 + 200.0 * noise(i + 7) + if split { 400.0 } else { 0.0 };
        s.bytes_mean.push(b);
        s.bytes_max.push(b * (1.5 + noise(i + 13)));
    }
    let mut fault_windows = vec![
        FaultWindow {
            start_ms: 200_000.0,
            end_ms: 600_000.0,
            label: "crash 10 nodes".into(),
            kind: FaultKind::Crash,
        },
        FaultWindow {
            start_ms: 300_000.0,
            end_ms: 360_000.0,
            label: "partition 50/50".into(),
            kind: FaultKind::Partition,
        },
        FaultWindow {
            start_ms: 420_000.0,
            end_ms: 480_000.0,
            label: "loss 5% <all links>".into(),
            kind: FaultKind::Loss,
        },
    ];
    for i in 3..faults {
        let start = 1000.0 * (i as f64 * 7.0 % 590.0);
        fault_windows.push(FaultWindow {
            start_ms: start,
            end_ms: start + 3000.0,
            label: format!("pause node-{i}"),
            kind: FaultKind::Pause,
        });
    }
    let samples_ms: Vec<f64> = (0..detections)
        .map(|i| 1500.0 + 4000.0 * noise(i + 99).powi(2))
        .collect();
    Report {
        scenario: "crash & partition <demo>".into(),
        nodes: nodes as usize,
        seconds: 600.0,
        seed: 42,
        wall_s: 3.21,
        events: 12_345_678,
        detection: Detection {
            first_suspect_ms: Summary::of(&samples_ms[..detections.min(10)]),
            first_dead_ms: Summary::of(&samples_ms[..detections.min(10)]),
            all_dead_ms: Summary::of(&samples_ms),
            undetected: 2,
            dead_everywhere_ms: Summary::of(&samples_ms[..detections.min(10)]),
        },
        convergence_ms: Some(1234.0),
        faults: fault_windows,
        series: s,
        detection_samples_ms: samples_ms,
        ..Report::default()
    }
}

#[test]
fn renders_a_realistic_report() {
    let html = render(&realistic(600, 3, 100));
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 3);
    for title in [
        "View size over time",
        "Detection latency CDF",
        "Datagram bytes per node per second",
    ] {
        assert!(html.contains(title), "missing {title}");
    }
    assert!(html.contains("crash &amp; partition &lt;demo&gt;"));
    assert!(html.contains("loss 5% &lt;all links&gt;"));
    assert!(!html.contains("<demo>") && !html.contains("<all links>"));
    assert!(html.contains("all invariants held"));
    assert!(html.contains("12,345,678"));
    assert!(html.len() < 1 << 20, "{} bytes", html.len());
    assert!(!html.contains("NaN") && !html.contains("inf"));
    assert!(!html.contains("<script"));
}

#[test]
fn long_runs_stay_small() {
    let html = render(&realistic(10_000, 500, 50_000));
    assert!(html.len() < 1 << 20, "{} bytes", html.len());
    // Labels are capped, the rest is only shaded.
    let view = &html
        [html.find("View size over time").unwrap()..html.find("Detection latency CDF").unwrap()];
    assert!(view.matches("font-size=\"10.5\"").count() <= MAX_FAULT_LABELS);
    assert!(html.contains("… and 300 more"));
}

#[test]
fn renders_an_empty_report() {
    let html = render(&Report::default());
    assert!(html.contains("no crashes detected in this run"));
    assert!(html.contains("no samples"));
    assert!(html.contains("—"));
    assert!(html.contains("all invariants held"));
    assert!(!html.contains("NaN") && !html.contains("inf"));
}

#[test]
fn escapes_the_scenario_name() {
    let r = Report {
        scenario: "a<b>&\"c\"".into(),
        ..Report::default()
    };
    let html = render(&r);
    assert!(html.contains("a&lt;b&gt;&amp;&quot;c&quot;"));
    assert!(!html.contains("a<b>"));
}

#[test]
fn shows_a_violation() {
    let r = Report {
        invariant_violations: 1,
        violation: Some("seed 7 at 12 ms: <node-1> dead twice".into()),
        ..Report::default()
    };
    let html = render(&r);
    assert!(html.contains("status bad"));
    assert!(html.contains("&lt;node-1&gt; dead twice"));
    assert!(!html.contains("all invariants held"));
}

#[test]
fn survives_degenerate_series() {
    // One sample.
    let mut r = realistic(1, 1, 1);
    let html = render(&r);
    assert_eq!(html.matches("<svg").count(), 3);
    // All equal, with non-finite values and mismatched lengths.
    r = realistic(50, 2, 5);
    r.series.bytes_mean = vec![f64::NAN, f64::INFINITY, 5.0, 5.0, f64::NEG_INFINITY];
    r.series.bytes_max = vec![5.0; 50];
    r.series.view_p50 = vec![7; 10];
    r.detection_samples_ms = vec![f64::NAN, 3.0, 3.0, f64::INFINITY];
    r.faults.push(FaultWindow {
        start_ms: f64::NAN,
        end_ms: 1.0,
        label: "bad".into(),
        kind: FaultKind::Other,
    });
    r.faults.push(FaultWindow {
        start_ms: 5.0,
        end_ms: f64::INFINITY,
        label: "open".into(),
        kind: FaultKind::Other,
    });
    r.faults.push(FaultWindow {
        start_ms: 1e12,
        end_ms: 2e12,
        label: "later".into(),
        kind: FaultKind::Other,
    });
    r.seconds = f64::NAN;
    let html = render(&r);
    assert_eq!(html.matches("<svg").count(), 3);
    assert!(!html.contains("NaN") && !html.contains("inf"));
}

#[test]
fn nice_ticks() {
    let t = Ticks::nice(0.0, 97.0, 5);
    assert_eq!((t.lo, t.hi, t.step), (0.0, 100.0, 20.0));
    assert_eq!(t.values, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
    let t = Ticks::nice(990.0, 1000.0, 5);
    assert_eq!((t.lo, t.hi, t.step), (990.0, 1000.0, 2.0));
    let t = Ticks::nice(0.0, 1.0, 5);
    assert_eq!(
        t.labels(TickFmt::Percent),
        ["0", "20%", "40%", "60%", "80%", "100%"]
    );
    let t = Ticks::within(0.0, 600.0, 10);
    assert_eq!((t.lo, t.hi, t.values.len()), (0.0, 600.0, 13));
    let t = Ticks::nice(0.0, 0.73, 5);
    assert_eq!(t.labels(TickFmt::Plain), ["0", "0.2", "0.4", "0.6", "0.8"]);
    let t = Ticks::nice(0.0, 120_000.0, 5);
    assert_eq!(
        t.labels(TickFmt::Si),
        ["0", "20k", "40k", "60k", "80k", "100k", "120k"]
    );
    // Degenerate domains.
    assert_eq!(sanitize(5.0, 5.0), (4.5, 5.5));
    assert_eq!(sanitize(0.0, 0.0), (0.0, 1.0));
    assert_eq!(sanitize(f64::NAN, 1.0), (0.0, 1.0));
    assert!(Ticks::nice(-1e308, 1e308, 5).values.len() <= MAX_TICKS);
}

#[test]
fn downsampling_keeps_extremes() {
    let xs: Vec<f64> = (0..10_000).map(f64::from).collect();
    let mut ys = vec![1.0; 10_000];
    ys[5_000] = 100.0;
    ys[7_000] = f64::NAN;
    let pts = line_points(&xs, &ys, 800);
    assert!(pts.len() <= 1_600);
    assert!(pts.iter().flatten().any(|&(_, y)| y == 100.0));
    let band = band_points(&xs, &ys, &ys, 800);
    assert!(band.len() <= 1_600);
}

#[test]
fn formats_numbers() {
    assert_eq!(fmt_count(1_234_567), "1,234,567");
    assert_eq!(fmt_count(12), "12");
    assert_eq!(fmt_ms(None), "—");
    assert_eq!(fmt_ms(Some(250.0)), "250 ms");
    assert_eq!(fmt_ms(Some(2500.0)), "2.50 s");
    assert_eq!(fmt_sig(123_456.0, "B"), "123 kB");
    assert_eq!(fmt_sig(12.345, ""), "12.3");
    assert_eq!(fmt_mem(Some(3 << 20)), "3.0 MiB");
    assert_eq!(
        esc("<a href='x'>&</a>"),
        "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
    );
}

/// Writes a sample page for eyeballing: `cargo test -p swim-sim html -- --ignored`.
#[test]
#[ignore = "writes sample pages to /tmp"]
fn write_sample_page() {
    let mut r = realistic(3000, 8, 400);
    r.false_positives.suspect = 3;
    r.false_positives.dead = 1;
    r.false_positives.victims = 1;
    r.heal_ms = Some(2345.0);
    r.load.datagrams_per_node_s = 3.2;
    r.load.bytes_per_node_s = 1050.0;
    r.load.max_bytes_per_node_s = 2300.0;
    r.cost.peak_memory_bytes = Some(180 << 20);
    std::fs::write("/tmp/report-sample.html", render(&r)).unwrap();
    let mut many = realistic(10_000, 400, 20_000);
    many.violation = Some("seed 42 at 123456 ms: node-7 holds <node-9> alive after it left".into());
    many.invariant_violations = 1;
    std::fs::write("/tmp/report-sample-many.html", render(&many)).unwrap();
    std::fs::write("/tmp/report-sample-empty.html", render(&Report::default())).unwrap();
}

/// Checks that `html` is well-formed and self-contained: every element closed in order (void
/// elements excepted), attributes quoted, no script, no external resource or URL.
pub(super) fn check_page(html: &str) -> Result<(), String> {
    const VOID: &[&str] = &["meta", "br", "hr", "img", "input", "link", "wbr"];
    for bad in [
        "http://", "https://", "//cdn", "<script", "<link", "<img", "url(http", "@import",
    ] {
        if let Some(i) = html.find(bad) {
            return Err(format!("external or scripted content {bad:?} at byte {i}"));
        }
    }
    if !html.starts_with("<!DOCTYPE html>") {
        return Err("no doctype".into());
    }
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    let mut offset = 0;
    while let Some(i) = rest.find('<') {
        let at = offset + i;
        let tail = &rest[i..];
        let end = tail
            .find('>')
            .ok_or_else(|| format!("unterminated tag at byte {at}"))?;
        let tag = &tail[1..end];
        let step = i + end + 1;
        offset += step;
        rest = &rest[step..];
        if tag.starts_with('!') {
            continue;
        }
        // In <style>, skip to its end tag (CSS holds '>' characters).
        if tag == "style" {
            let close = rest.find("</style>").ok_or("unclosed <style>")?;
            offset += close + "</style>".len();
            rest = &rest[close + "</style>".len()..];
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            match stack.pop() {
                Some(open) if open == name => {}
                other => return Err(format!("</{name}> at byte {at} closes {other:?}")),
            }
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if name.is_empty() {
            return Err(format!("bad tag {tag:?} at byte {at}"));
        }
        if !tag.matches('"').count().is_multiple_of(2) {
            return Err(format!("unbalanced quotes in <{tag}> at byte {at}"));
        }
        let attrs = &tag[name.len()..];
        if attrs.contains("='") || attrs.split('"').step_by(2).any(|s| s.contains("= ")) {
            return Err(format!("unquoted attribute in <{tag}> at byte {at}"));
        }
        if !(tag.ends_with('/') || VOID.contains(&name.as_str())) {
            stack.push(name);
        }
    }
    if let Some(open) = stack.pop() {
        return Err(format!("<{open}> never closed"));
    }
    if html.contains("NaN") || html.contains("inf<") || html.contains("=\"inf") {
        return Err("a non-finite number is printed".into());
    }
    Ok(())
}

#[test]
fn the_checker_finds_broken_pages() {
    let page = |body: &str| format!("<!DOCTYPE html>\n<html><body>{body}</body></html>");
    assert_eq!(check_page(&page("<p>a<br>b</p><svg><rect/></svg>")), Ok(()));
    assert!(check_page(&page("<p>a<b>b</p></b>")).is_err());
    assert!(check_page(&page("<div>")).is_err());
    assert!(check_page(&page("<img src=\"https://x/y.png\">")).is_err());
    assert!(check_page(&page("<a href=\"x>y</a>")).is_err());
}

/// Every built-in scenario's page, from a short run of a small cluster, is well-formed and
/// self-contained, and shows every section the run has figures for.
#[test]
fn every_built_in_scenario_renders_a_well_formed_self_contained_page() {
    use crate::scenario::{BUILT_IN, Knobs};
    use crate::{RunOptions, Scenario, run};
    for (i, name) in BUILT_IN.iter().enumerate() {
        let seed = 5 + i as u64;
        let knobs = Knobs {
            nodes: 12,
            duration: std::time::Duration::from_secs(40),
            ..Knobs::default()
        };
        let scenario = Scenario::built_in(name, &knobs, seed)
            .unwrap_or_else(|e| panic!("scenario {name}: {e}"));
        let report = run(&scenario, seed, RunOptions::default());
        let html = render(&report);
        if let Err(e) = check_page(&html) {
            panic!("scenario {name}, seed {seed}: {e}");
        }
        for section in [
            "Failure detection",
            "Deaths: expected and false",
            "Views and leader",
            "Configuration",
            "View size over time",
        ] {
            assert!(
                html.contains(section),
                "scenario {name}, seed {seed}: no {section}"
            );
        }
        assert_eq!(
            html.contains("Replicated state"),
            report.state.is_some(),
            "scenario {name}, seed {seed}"
        );
        assert!(
            html.contains(&format!("Config::{}()", report.run.config_preset)),
            "scenario {name}, seed {seed}: no preset"
        );
    }
}

/// The comparison page is well-formed and self-contained too.
#[test]
fn the_comparison_page_is_well_formed() {
    use crate::compare::compare;
    let mut a = realistic(50, 3, 20);
    a.run.config_preset = "lan".into();
    let mut b = a.clone();
    b.detection.first_dead_ms.p50 = Some(9000.0);
    b.run.config_changes.push(crate::report::ConfigChange {
        field: "probe_interval".into(),
        value: "\"700ms\"".into(),
        preset: "\"1s\"".into(),
    });
    let json = |r: &Report| serde_json::from_str::<serde_json::Value>(&r.to_json()).unwrap();
    let c = compare(["a <1>.json".into(), "b.json".into()], &json(&a), &json(&b));
    let html = render_comparison(&c);
    check_page(&html).unwrap();
    assert!(html.contains("a &lt;1&gt;.json"));
    assert!(html.contains("Headline figures"));
    assert!(html.contains("probe_interval") && html.contains("(preset)"));
}
