//! The plotting kit: one SVG plot (`Plot`) with axes, data layers (lines and min/max bands),
//! markers, shaded fault windows and a legend. It knows nothing about SWIM beyond drawing a
//! fault window in its kind's color, and a permanent crash as a point in time.
//!
//! Labels never cover the data: fault and marker labels sit in a lane of rows above the plot
//! area (the plot grows by the rows used), each with a tick down to the time it names.
//!
//! Slightly over 600 lines: it is one type whose drawing steps share the plot's scales and
//! label lane, and splitting it would pass those around for no reader's gain.

use std::fmt::Write;

use super::*;
use crate::report::FaultWindow;
use crate::scenario::FaultKind;

/// SVG width, px.
pub(super) const SVG_W: f64 = 900.0;
/// SVG height, px.
pub(super) const SVG_H: f64 = 300.0;
/// Plot area margins, px.
pub(super) const LEFT: f64 = 64.0;
pub(super) const RIGHT: f64 = 18.0;
pub(super) const TOP: f64 = 38.0;
pub(super) const BOTTOM: f64 = 42.0;
/// Series up to this many points are drawn as they are; longer ones are downsampled to a
/// min/max pair per pixel column.
pub(super) const MAX_RAW_POINTS: usize = 2000;
/// At most this many fault labels are drawn on a plot.
pub(super) const MAX_FAULT_LABELS: usize = 12;
/// With more fault windows than labels, only windows at least this wide (px) get one.
pub(super) const MIN_LABELLED_WIDTH: f64 = 40.0;
/// Rows of the label lane above the plot area.
pub(super) const LABEL_ROWS: usize = 3;
/// Height of one row of the label lane, px.
pub(super) const LANE_ROW_H: f64 = 13.0;
/// With more fault windows than this, overlapping windows of one kind merge into one band.
pub(super) const MERGE_FAULTS_ABOVE: usize = 40;
/// Rough width of one character of 11 px text, for layout.
pub(super) const CHAR_W: f64 = 6.2;

/// How a line is drawn.
#[derive(Clone, Copy)]
pub(super) struct Stroke {
    pub(super) color: &'static str,
    pub(super) width: f64,
    pub(super) dash: Option<&'static str>,
    pub(super) opacity: f64,
}

impl Stroke {
    /// A solid line.
    pub(super) fn solid(color: &'static str, width: f64, opacity: f64) -> Self {
        Stroke {
            color,
            width,
            dash: None,
            opacity,
        }
    }

    /// The SVG presentation attributes.
    pub(super) fn attrs(&self) -> String {
        let mut s = format!(
            "fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"",
            self.color, self.width
        );
        if let Some(d) = self.dash {
            w!(s, " stroke-dasharray=\"{d}\"");
        }
        if self.opacity < 1.0 {
            w!(s, " stroke-opacity=\"{}\"", self.opacity);
        }
        s
    }
}

/// A legend entry's symbol.
pub(super) enum Swatch {
    /// A line sample.
    Line(Stroke),
    /// A filled area: color and opacity.
    Area(&'static str, f64),
}

/// One axis of a plot.
pub(super) struct Axis {
    pub(super) ticks: Ticks,
    pub(super) label: &'static str,
    pub(super) fmt: TickFmt,
}

/// What [`Plot::faults`] drew, for the caption.
pub(super) struct Shaded {
    /// Windows overlapping the plot.
    pub(super) shown: usize,
    /// Of those, how many got a label.
    pub(super) labelled: usize,
    /// Whether overlapping windows were merged.
    pub(super) merged: bool,
}

impl Shaded {
    /// A caption sentence (HTML) about the shading; `kinds` is the kinds' swatches.
    pub(super) fn caption(&self, kinds: &str) -> String {
        if self.shown == 0 {
            return String::new();
        }
        let s = if self.shown == 1 { "" } else { "s" };
        let mut c = format!(
            "Faults: {kinds} ({} fault window{s}",
            fmt_count(self.shown as u64)
        );
        if self.labelled < self.shown {
            w!(c, ", {} labelled", self.labelled);
        }
        if self.merged {
            c.push_str(", overlapping windows merged");
        }
        c.push_str("; full list below).");
        c
    }
}

/// One SVG plot being built: a plot area with axes, data layers, annotations and a legend.
pub(super) struct Plot {
    /// Prefix for element ids, unique in the page.
    pub(super) id: &'static str,
    pub(super) title: &'static str,
    pub(super) x: Scale,
    pub(super) y: Scale,
    pub(super) x_axis: Axis,
    pub(super) y_axis: Axis,
    /// Data layers, clipped to the plot area, in drawing order.
    pub(super) data: String,
    /// Annotations drawn over the data and axes.
    pub(super) over: String,
    pub(super) legend: Vec<(String, Swatch)>,
    /// Labels placed in the lane above the plot area: x (px), row, text, color, and the x
    /// (px) their tick points at.
    pub(super) lane: Vec<(f64, usize, String, &'static str, f64)>,
    /// Per lane row, the right end (px) of its last label.
    pub(super) lane_end: [f64; LABEL_ROWS],
}

impl Plot {
    /// A plot with the given axes; each axis's domain is its ticks' domain.
    pub(super) fn new(id: &'static str, title: &'static str, x_axis: Axis, y_axis: Axis) -> Self {
        let x = Scale {
            d0: x_axis.ticks.lo,
            d1: x_axis.ticks.hi,
            r0: LEFT,
            r1: SVG_W - RIGHT,
        };
        let y = Scale {
            d0: y_axis.ticks.lo,
            d1: y_axis.ticks.hi,
            r0: SVG_H - BOTTOM,
            r1: TOP,
        };
        Plot {
            id,
            title,
            x,
            y,
            x_axis,
            y_axis,
            data: String::new(),
            over: String::new(),
            legend: Vec::new(),
            lane: Vec::new(),
            lane_end: [f64::NEG_INFINITY; LABEL_ROWS],
        }
    }

    /// Places `text` in the label lane starting near pixel `at` (pointing at `tick`), in the
    /// first row where it overlaps nothing; `false` if no row has room.
    pub(super) fn lane_label(
        &mut self,
        at: f64,
        tick: f64,
        text: &str,
        color: &'static str,
    ) -> bool {
        let (left, right) = (LEFT, SVG_W - RIGHT);
        let w = text.chars().count() as f64 * CHAR_W;
        let x = at.min(right - w).max(left);
        let Some(row) = self.lane_end.iter().position(|&end| end + 8.0 <= x) else {
            return false;
        };
        self.lane_end[row] = x + w;
        self.lane.push((x, row, text.to_string(), color, tick));
        true
    }

    /// Adds a legend entry.
    pub(super) fn legend(&mut self, label: &str, swatch: Swatch) {
        self.legend.push((label.to_string(), swatch));
    }

    /// Draws a raw path `d` (pixel coordinates) in the data layer.
    pub(super) fn path(&mut self, d: &str, stroke: &Stroke, round: bool) {
        if d.is_empty() {
            return;
        }
        let caps = if round {
            " stroke-linecap=\"round\" stroke-linejoin=\"round\""
        } else {
            " stroke-linejoin=\"round\""
        };
        w!(self.data, "<path d=\"{d}\" {}{caps}/>\n", stroke.attrs());
    }

    /// Draws a line through `(xs[i], ys[i])`, downsampled if long, broken at non-finite values.
    /// A lone point shows as a dot.
    pub(super) fn line(&mut self, xs: &[f64], ys: &[f64], stroke: &Stroke) {
        let n = xs.len().min(ys.len());
        let pts = line_points(xs, ys, bucket_count(n));
        let mut d = String::new();
        let mut run = 0usize;
        for p in pts.iter().chain(std::iter::once(&None)) {
            match p {
                Some((x, y)) => {
                    let (px, py) = (Px(self.x.map(*x)), Px(self.y.map(*y)));
                    match run {
                        0 => w!(d, "M{px},{py}"),
                        1 => w!(d, "L{px},{py}"),
                        _ => w!(d, " {px},{py}"),
                    }
                    run += 1;
                }
                None => {
                    if run == 1 {
                        d.push_str("h0");
                    }
                    run = 0;
                }
            }
        }
        self.path(&d, stroke, true);
    }

    /// Shades the area between `lo` and `hi` over `xs`, downsampled if long, broken at
    /// non-finite values.
    pub(super) fn band(&mut self, xs: &[f64], lo: &[f64], hi: &[f64], color: &str, opacity: f64) {
        let n = xs.len().min(lo.len()).min(hi.len());
        let pts = band_points(xs, lo, hi, bucket_count(n));
        let mut d = String::new();
        for run in pts.split(Option::is_none) {
            let run: Vec<(f64, f64, f64)> = run.iter().flatten().copied().collect();
            if run.len() < 2 {
                continue;
            }
            for (i, (x, _, h)) in run.iter().enumerate() {
                w!(
                    d,
                    "{}{},{}",
                    if i == 0 { "M" } else { " " },
                    Px(self.x.map(*x)),
                    Px(self.y.map(*h))
                );
            }
            for (x, l, _) in run.iter().rev() {
                w!(d, " {},{}", Px(self.x.map(*x)), Px(self.y.map(*l)));
            }
            d.push('Z');
        }
        if !d.is_empty() {
            w!(
                self.data,
                "<path d=\"{d}\" fill=\"{color}\" fill-opacity=\"{opacity}\" stroke=\"none\"/>\n"
            );
        }
    }

    /// A vertical marker line at data `x` with a label in the lane above the plot area.
    pub(super) fn marker(&mut self, x: f64, label: &str, stroke: &Stroke) {
        let px = self.x.map(x);
        w!(
            self.over,
            "<line x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\" {3}/>\n",
            Px(px),
            Px(TOP),
            Px(SVG_H - BOTTOM),
            stroke.attrs()
        );
        self.lane_label(px - 3.0, px, label, "#374151");
    }

    /// A note in the middle of the plot area.
    pub(super) fn note(&mut self, text: &str) {
        w!(
            self.over,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#9aa5b1\" font-size=\"13\" font-style=\"italic\">{}</text>\n",
            Px((LEFT + SVG_W - RIGHT) / 2.0),
            Px((TOP + SVG_H - BOTTOM) / 2.0),
            esc(text)
        );
    }

    /// Shades fault windows (x in ms) as translucent vertical bands colored by kind, with up to
    /// [`MAX_FAULT_LABELS`] labels in the lane above the plot. A permanent crash is a point in
    /// time, drawn as a line at its moment rather than a band to the end. Hovering a band shows
    /// its label. With many windows, overlapping ones of a kind are merged to keep the SVG
    /// small. Call before drawing data, so the data is drawn over the shading.
    pub(super) fn faults(&mut self, faults: &[FaultWindow]) -> Shaded {
        /// A band in pixels.
        struct Band {
            x0: f64,
            x1: f64,
            color: &'static str,
            labels: Vec<usize>,
            /// A permanent crash: a moment, not a window.
            point: bool,
        }
        let (left, right) = (LEFT, SVG_W - RIGHT);
        let mut bands: Vec<Band> = faults
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                if !f.start_ms.is_finite() || f.end_ms.is_nan() {
                    return None;
                }
                let point = f.kind == FaultKind::Crash;
                let x0 = self.x.map(f.start_ms / 1000.0).max(left);
                let x1 = if point {
                    x0
                } else if f.end_ms == f64::INFINITY {
                    right
                } else {
                    self.x.map(f.end_ms / 1000.0).min(right)
                };
                if x1 < left || x0 > right || x1 < x0 {
                    return None;
                }
                // Instantaneous faults still show as a sliver.
                let (x0, x1) = if x1 - x0 < 1.5 && !point {
                    ((x0 - 0.75).max(left), (x0 + 0.75).min(right))
                } else {
                    (x0, x1)
                };
                Some(Band {
                    x0,
                    x1,
                    color: kind_style(f.kind).1,
                    labels: vec![i],
                    point,
                })
            })
            .collect();
        let shown = bands.len();
        bands.sort_by(|a, b| a.x0.total_cmp(&b.x0));

        // Labels: greedy rows in the lane above the plot, left to right, skipping any that
        // would overlap. When windows outnumber the labels, only windows wide enough to stand
        // out get one.
        let crowded = bands.len() > MAX_FAULT_LABELS;
        let mut labelled = 0;
        for b in &bands {
            if labelled == MAX_FAULT_LABELS {
                break;
            }
            if crowded && b.x1 - b.x0 < MIN_LABELLED_WIDTH {
                continue;
            }
            let text = truncate(&faults[b.labels[0]].label, 28);
            if self.lane_label(b.x0 - 3.0, b.x0, &text, b.color) {
                labelled += 1;
            }
        }

        let merged = bands.len() > MERGE_FAULTS_ABOVE;
        if merged {
            let mut out: Vec<Band> = Vec::new();
            for b in bands {
                if let Some(m) = out
                    .iter_mut()
                    .rev()
                    .find(|m| m.color == b.color && m.point == b.point)
                    && b.x0 <= m.x1 + 1.0
                {
                    m.x1 = m.x1.max(b.x1);
                    m.labels.extend(b.labels);
                    continue;
                }
                out.push(b);
            }
            bands = out;
        }

        let mut rects = String::new();
        let mut points = String::new();
        for b in &bands {
            let title = match b.labels.as_slice() {
                [one] => faults[*one].label.clone(),
                many => {
                    let names: Vec<&str> = many
                        .iter()
                        .take(3)
                        .map(|&i| faults[i].label.as_str())
                        .collect();
                    let more = if many.len() > 3 { ", …" } else { "" };
                    format!("{} faults: {}{more}", many.len(), names.join(", "))
                }
            };
            if b.point {
                w!(
                    points,
                    "<line x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\" stroke=\"{3}\"><title>{4}</title></line>\n",
                    Px((b.x0 + b.x1) / 2.0),
                    Px(TOP),
                    Px(SVG_H - BOTTOM),
                    b.color,
                    esc(&truncate(&title, 200))
                );
                continue;
            }
            w!(
                rects,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}</title></rect>\n",
                Px(b.x0),
                Px(TOP),
                Px(b.x1 - b.x0),
                Px(SVG_H - TOP - BOTTOM),
                b.color,
                esc(&truncate(&title, 200))
            );
        }
        if !rects.is_empty() {
            w!(self.data, "<g fill-opacity=\"0.12\">\n{rects}</g>\n");
        }
        if !points.is_empty() {
            w!(
                self.data,
                "<g stroke-width=\"1.6\" stroke-opacity=\"0.7\" stroke-dasharray=\"5 3\">\n{points}</g>\n"
            );
        }
        Shaded {
            shown,
            labelled,
            merged,
        }
    }

    /// The finished SVG element.
    pub(super) fn finish(self) -> String {
        let (left, right, top, bottom) = (LEFT, SVG_W - RIGHT, TOP, SVG_H - BOTTOM);
        let mut s = String::with_capacity(self.data.len() + self.over.len() + 8 * 1024);
        // The label lane: as many rows as used, between the title and the plot area, which
        // moves down by the lane's height.
        let rows = self.lane.iter().map(|l| l.1 + 1).max().unwrap_or(0);
        let lane_h = if rows == 0 {
            0.0
        } else {
            rows as f64 * LANE_ROW_H + 2.0
        };
        let height = SVG_H + lane_h;
        w!(
            s,
            "<svg viewBox=\"0 0 {SVG_W} {height}\" width=\"{SVG_W}\" height=\"{height}\" role=\"img\" aria-label=\"{0}\" font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif\" font-size=\"11\">\n<title>{0}</title>\n",
            esc(self.title)
        );
        for (x, row, text, color, tick) in &self.lane {
            let y = TOP + *row as f64 * LANE_ROW_H;
            w!(
                s,
                "<text x=\"{}\" y=\"{}\" fill=\"{color}\" font-size=\"10.5\">{}</text>\n<line x1=\"{3}\" x2=\"{3}\" y1=\"{4}\" y2=\"{5}\" stroke=\"{color}\" stroke-opacity=\"0.5\"/>\n",
                Px(*x),
                Px(y),
                esc(text),
                Px(*tick),
                Px(y + 2.5),
                Px(TOP + lane_h)
            );
        }
        if lane_h > 0.0 {
            w!(s, "<g transform=\"translate(0 {lane_h})\">\n");
        } else {
            s.push_str("<g>\n");
        }
        w!(
            s,
            "<defs><clipPath id=\"{}-clip\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/></clipPath></defs>\n",
            self.id,
            Px(left),
            Px(top),
            Px(right - left),
            Px(bottom - top)
        );

        // Grid.
        s.push_str("<g stroke=\"#eceef1\" stroke-width=\"1\">\n");
        for &v in &self.y_axis.ticks.values {
            let py = self.y.map(v);
            w!(
                s,
                "<line x1=\"{}\" x2=\"{}\" y1=\"{2}\" y2=\"{2}\"/>\n",
                Px(left),
                Px(right),
                Px(py)
            );
        }
        for &v in &self.x_axis.ticks.values {
            let px = self.x.map(v);
            w!(
                s,
                "<line x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\"/>\n",
                Px(px),
                Px(top),
                Px(bottom)
            );
        }
        s.push_str("</g>\n");

        // Data.
        w!(
            s,
            "<g clip-path=\"url(#{}-clip)\">\n{}</g>\n",
            self.id,
            self.data
        );

        // Axes, ticks and labels.
        w!(
            s,
            "<path d=\"M{},{}V{}H{}\" fill=\"none\" stroke=\"#9aa5b1\"/>\n",
            Px(left),
            Px(top),
            Px(bottom),
            Px(right)
        );
        s.push_str("<g fill=\"#52606d\">\n");
        for (&v, label) in self
            .y_axis
            .ticks
            .values
            .iter()
            .zip(self.y_axis.ticks.labels(self.y_axis.fmt))
        {
            let py = self.y.map(v);
            w!(
                s,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
                Px(left - 6.0),
                Px(py + 3.5),
                esc(&label)
            );
        }
        for (&v, label) in self
            .x_axis
            .ticks
            .values
            .iter()
            .zip(self.x_axis.ticks.labels(self.x_axis.fmt))
        {
            let px = self.x.map(v);
            w!(
                s,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                Px(px),
                Px(bottom + 15.0),
                esc(&label)
            );
        }
        w!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#7b8794\">{}</text>\n",
            Px((left + right) / 2.0),
            Px(SVG_H - 8.0),
            esc(self.x_axis.label)
        );
        w!(
            s,
            "<text transform=\"translate(16 {}) rotate(-90)\" text-anchor=\"middle\" fill=\"#7b8794\">{}</text>\n",
            Px((top + bottom) / 2.0),
            esc(self.y_axis.label)
        );
        s.push_str("</g>\n");
        s.push_str(&self.over);
        s.push_str("</g>\n");

        // Title and legend (right-aligned, in the top margin).
        w!(
            s,
            "<text x=\"{}\" y=\"22\" font-size=\"14\" font-weight=\"600\" fill=\"#1f2933\">{}</text>\n",
            Px(left),
            esc(self.title)
        );
        let widths: Vec<f64> = self
            .legend
            .iter()
            .map(|(l, _)| 26.0 + l.chars().count() as f64 * CHAR_W + 14.0)
            .collect();
        let mut x = right - widths.iter().sum::<f64>() + 14.0;
        for ((label, swatch), w) in self.legend.iter().zip(&widths) {
            match swatch {
                Swatch::Line(st) => {
                    w!(
                        s,
                        "<line x1=\"{}\" x2=\"{}\" y1=\"18\" y2=\"18\" {}/>\n",
                        Px(x),
                        Px(x + 20.0),
                        st.attrs()
                    );
                }
                Swatch::Area(color, opacity) => {
                    w!(
                        s,
                        "<rect x=\"{}\" y=\"12\" width=\"20\" height=\"12\" fill=\"{color}\" fill-opacity=\"{opacity}\"/>\n",
                        Px(x)
                    );
                }
            }
            w!(
                s,
                "<text x=\"{}\" y=\"22\" fill=\"#374151\">{}</text>\n",
                Px(x + 26.0),
                esc(label)
            );
            x += w;
        }
        s.push_str("</svg>\n");
        s
    }
}
