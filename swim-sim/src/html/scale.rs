//! Scales, round axis ticks and downsampling for the plotting kit: data to pixels, a few
//! readable tick values per axis, and at most one min/max pair per pixel column.

use std::fmt::{self, Display};
use std::ops::Range;

use super::*;

/// A pixel coordinate, printed with one decimal.
#[derive(Clone, Copy)]
pub(super) struct Px(pub(super) f64);

impl Display for Px {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1}", self.0)
    }
}

/// A linear map from a data domain `d0..d1` to a pixel range `r0..r1`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Scale {
    pub(super) d0: f64,
    pub(super) d1: f64,
    pub(super) r0: f64,
    pub(super) r1: f64,
}

impl Scale {
    /// Maps `v` to pixels. Values far outside the domain are clamped to a little beyond the
    /// range (the plot clips them) so coordinates stay short; an empty domain maps to the
    /// middle.
    pub(super) fn map(self, v: f64) -> f64 {
        let span = self.d1 - self.d0;
        let (lo, hi) = (self.r0.min(self.r1), self.r0.max(self.r1));
        if !(span > 0.0 && span.is_finite() && v.is_finite()) {
            return (self.r0 + self.r1) / 2.0;
        }
        (self.r0 + (v - self.d0) / span * (self.r1 - self.r0)).clamp(lo - 100.0, hi + 100.0)
    }
}

/// How tick values are printed.
#[derive(Clone, Copy)]
pub(super) enum TickFmt {
    /// Plain decimals.
    Plain,
    /// With a k/M/G suffix when the values are large.
    Si,
    /// A fraction as a percentage.
    Percent,
}

/// Round tick values on an axis and the axis's domain.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Ticks {
    /// Domain start.
    pub(super) lo: f64,
    /// Domain end (> `lo`).
    pub(super) hi: f64,
    /// Distance between ticks: 1, 2 or 5 times a power of ten.
    pub(super) step: f64,
    /// The tick values, inside `lo..=hi`.
    pub(super) values: Vec<f64>,
}

/// Never more ticks than this, whatever the input.
pub(super) const MAX_TICKS: usize = 50;

impl Ticks {
    /// About `target` ticks on a domain widened to multiples of the step (for value axes).
    pub(super) fn nice(lo: f64, hi: f64, target: usize) -> Self {
        let (lo, hi) = sanitize(lo, hi);
        let step = nice_step((hi - lo) / target.max(1) as f64);
        let k0 = (lo / step + 1e-9).floor();
        let k1 = (hi / step - 1e-9).ceil().max(k0 + 1.0);
        Self::from_range(k0 * step, k1 * step, step, k0, k1)
    }

    /// Like [`Ticks::nice`], for counts: the step is a whole number (at least 1), so no tick
    /// sits between two integers.
    pub(super) fn nice_int(lo: f64, hi: f64, target: usize) -> Self {
        let (lo, hi) = sanitize(lo, hi);
        let step = nice_step((hi - lo) / target.max(1) as f64).max(1.0);
        let k0 = (lo / step + 1e-9).floor();
        let k1 = (hi / step - 1e-9).ceil().max(k0 + 1.0);
        Self::from_range(k0 * step, k1 * step, step, k0, k1)
    }

    /// About `target` round ticks inside a fixed domain (for the time axis).
    pub(super) fn within(lo: f64, hi: f64, target: usize) -> Self {
        let (lo, hi) = sanitize(lo, hi);
        let step = nice_step((hi - lo) / target.max(1) as f64);
        let k0 = (lo / step - 1e-9).ceil();
        let k1 = (hi / step + 1e-9).floor();
        Self::from_range(lo, hi, step, k0, k1)
    }

    /// Ticks at `k * step` for `k` in `k0..=k1`, capped at [`MAX_TICKS`].
    pub(super) fn from_range(lo: f64, hi: f64, step: f64, k0: f64, k1: f64) -> Self {
        let count = if k1 >= k0 {
            ((k1 - k0) as usize + 1).min(MAX_TICKS)
        } else {
            0
        };
        let values = (0..count)
            .map(|i| {
                let v = (k0 + i as f64) * step;
                if v.abs() < step * 1e-9 { 0.0 } else { v }
            })
            .collect();
        Ticks {
            lo,
            hi,
            step,
            values,
        }
    }

    /// The tick labels, in the order of `values`.
    pub(super) fn labels(&self, fmt: TickFmt) -> Vec<String> {
        let biggest = self.values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let (scale, suffix) = match fmt {
            TickFmt::Plain => (1.0, ""),
            TickFmt::Percent => (0.01, "%"),
            TickFmt::Si if biggest >= 1e10 => (1e9, "G"),
            TickFmt::Si if biggest >= 1e7 => (1e6, "M"),
            TickFmt::Si if biggest >= 1e4 => (1e3, "k"),
            TickFmt::Si => (1.0, ""),
        };
        let step = self.step / scale;
        let decimals = if step >= 1.0 || !step.is_finite() || step <= 0.0 {
            0
        } else {
            ((-step.log10() - 1e-9).ceil() as usize).min(9)
        };
        self.values
            .iter()
            .map(|&v| {
                if v == 0.0 {
                    return "0".to_string();
                }
                format!("{:.decimals$}{suffix}", v / scale)
            })
            .collect()
    }
}

/// A finite, non-empty domain from `lo..hi`: swapped if reversed, padded if (nearly) empty
/// (not below zero for non-negative data), `0..1` if not finite.
pub(super) fn sanitize(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite() && (hi - lo).is_finite()) {
        return (0.0, 1.0);
    }
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    let mag = lo.abs().max(hi.abs());
    if hi - lo > mag * 1e-9 {
        return (lo, hi);
    }
    let pad = if mag == 0.0 { 1.0 } else { mag * 0.1 };
    let lo2 = if lo >= 0.0 {
        (lo - pad).max(0.0)
    } else {
        lo - pad
    };
    (lo2, hi + pad)
}

/// The 1, 2 or 5 times a power of ten nearest to `raw` (on a log scale).
pub(super) fn nice_step(raw: f64) -> f64 {
    if !(raw > 0.0 && raw.is_finite()) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    // Boundaries at the geometric means of neighbouring steps: √2, √10, √50.
    let nice = if f < std::f64::consts::SQRT_2 {
        1.0
    } else if f < 10f64.sqrt() {
        2.0
    } else if f < 50f64.sqrt() {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// The smallest and largest finite values, if any.
pub(super) fn extent(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Splits `0..n` into at most `max` contiguous ranges of (nearly) equal length.
pub(super) fn buckets(n: usize, max: usize) -> impl Iterator<Item = Range<usize>> {
    let k = n.div_ceil(max.max(1)).max(1);
    (0..n).step_by(k).map(move |s| s..(s + k).min(n))
}

/// How many buckets to draw `n` samples with: all of them if few, else one per pixel column.
pub(super) fn bucket_count(n: usize) -> usize {
    if n <= MAX_RAW_POINTS {
        n
    } else {
        (SVG_W - LEFT - RIGHT) as usize
    }
}

/// Points of a line through `(xs[i], ys[i])`, downsampled to the lowest and highest point of
/// each of at most `max_buckets` buckets (in their original order). `None` marks a gap: a
/// bucket without finite points.
pub(super) fn line_points(xs: &[f64], ys: &[f64], max_buckets: usize) -> Vec<Option<(f64, f64)>> {
    let n = xs.len().min(ys.len());
    let mut out = Vec::with_capacity(max_buckets.min(n) * 2);
    for r in buckets(n, max_buckets) {
        let (mut lo, mut hi): (Option<usize>, Option<usize>) = (None, None);
        for i in r {
            if !(xs[i].is_finite() && ys[i].is_finite()) {
                continue;
            }
            if lo.is_none_or(|j| ys[i] < ys[j]) {
                lo = Some(i);
            }
            if hi.is_none_or(|j| ys[i] > ys[j]) {
                hi = Some(i);
            }
        }
        match (lo, hi) {
            (Some(a), Some(b)) => {
                let (a, b) = (a.min(b), a.max(b));
                out.push(Some((xs[a], ys[a])));
                if b != a {
                    out.push(Some((xs[b], ys[b])));
                }
            }
            _ => out.push(None),
        }
    }
    out
}

/// Points `(x, low, high)` of a band between two series, downsampled to the lowest low and
/// highest high of each of at most `max_buckets` buckets (at the bucket's first and last
/// time). `None` marks a gap.
pub(super) fn band_points(
    xs: &[f64],
    lo: &[f64],
    hi: &[f64],
    max_buckets: usize,
) -> Vec<Option<(f64, f64, f64)>> {
    let n = xs.len().min(lo.len()).min(hi.len());
    let mut out = Vec::with_capacity(max_buckets.min(n) * 2);
    for r in buckets(n, max_buckets) {
        let mut acc: Option<(usize, usize, f64, f64)> = None;
        for i in r {
            if !(xs[i].is_finite() && lo[i].is_finite() && hi[i].is_finite()) {
                continue;
            }
            acc = Some(match acc {
                None => (i, i, lo[i], hi[i]),
                Some((first, _, l, h)) => (first, i, l.min(lo[i]), h.max(hi[i])),
            });
        }
        match acc {
            Some((first, last, l, h)) => {
                out.push(Some((xs[first], l, h)));
                if last != first {
                    out.push(Some((xs[last], l, h)));
                }
            }
            None => out.push(None),
        }
    }
    out
}
