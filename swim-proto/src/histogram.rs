//! Fixed-bucket log-linear histograms for protocol timings (ringpop's ProtocolStats): p50, p95,
//! p99 and p99.9 in bounded memory, with no allocation and no floating point on record.
//!
//! Buckets are HDR-style: values below 8 have a bucket each; above, every power of two is split
//! into 8 equal sub-buckets, so a bucket's width is at most 1/8 of its lower bound and a
//! reported quantile (the upper bound of the bucket it falls in, capped at the largest value
//! seen) is at most 12.5% above the true value. Values up to 2^40 − 1 are kept exactly to
//! that precision (2^40 ns is about 18 minutes; 2^40 µs about 12 days); larger values are
//! counted in the last bucket and still raise `max`. Memory is fixed: [`BUCKETS`] `u64`
//! counters (about 2.4 KiB) plus four totals.

use core::fmt;

/// Sub-buckets per power of two, as a bit count (8 sub-buckets).
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// The largest power of two tracked with full precision: values below `2^MAX_EXP`.
const MAX_EXP: u32 = 40;
/// Number of buckets: `SUB` exact ones, then `SUB` per power of two from `2^SUB_BITS` up to
/// `2^MAX_EXP`, then one for everything above.
pub const BUCKETS: usize = SUB + (MAX_EXP - SUB_BITS) as usize * SUB + 1;

/// A histogram of `u64` values (the unit is the caller's: the core records nanoseconds).
#[derive(Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: [u64; BUCKETS],
    count: u64,
    sum: u64,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [0; BUCKETS],
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min", &self.min())
            .field("max", &self.max)
            .field("p50", &self.quantile(0.5))
            .field("p99", &self.quantile(0.99))
            .finish()
    }
}

/// The bucket a value falls in.
fn bucket_of(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // ≥ SUB_BITS
    if exp >= MAX_EXP {
        return BUCKETS - 1;
    }
    let sub = ((v >> (exp - SUB_BITS)) as usize) & (SUB - 1);
    SUB + (exp - SUB_BITS) as usize * SUB + sub
}

/// The smallest value of bucket `i`.
fn lower_bound(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let exp = (i - SUB) / SUB + SUB_BITS as usize;
    let sub = ((i - SUB) % SUB) as u64;
    (SUB as u64 + sub) << (exp - SUB_BITS as usize)
}

/// The largest value of bucket `i` (the last bucket also holds everything above its range).
pub fn upper_bound(i: usize) -> u64 {
    if i + 1 >= BUCKETS {
        return u64::MAX;
    }
    lower_bound(i + 1) - 1
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one value.
    pub fn record(&mut self, v: u64) {
        self.counts[bucket_of(v)] += 1;
        self.count += 1;
        self.sum = self.sum.saturating_add(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the values recorded (saturating).
    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// The smallest value recorded, 0 when empty.
    pub fn min(&self) -> u64 {
        if self.count == 0 { 0 } else { self.min }
    }

    /// The largest value recorded, 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0.0 to 1.0; clamped): the upper bound of the bucket holding
    /// the `⌈q·count⌉`-th smallest value, capped at [`Histogram::max`], so at most 12.5% above
    /// the true value (the smallest value exactly). 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let q = if q.is_nan() { 1.0 } else { q.clamp(0.0, 1.0) };
        // ⌈q·count⌉ without `ceil` (unavailable in core): truncate, then round up.
        let exact = q * self.count as f64;
        let mut rank = exact as u64;
        if (rank as f64) < exact {
            rank += 1;
        }
        if rank <= 1 {
            return self.min;
        }
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper_bound(i).min(self.max).max(self.min());
            }
        }
        self.max
    }

    /// p50, p95, p99 and p99.9, in that order.
    pub fn percentiles(&self) -> [u64; 4] {
        [0.5, 0.95, 0.99, 0.999].map(|q| self.quantile(q))
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.sum = self.sum.saturating_add(other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The non-empty buckets as `(upper bound, count)`, ascending: the raw data for an
    /// exporter (Prometheus buckets are these made cumulative).
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c > 0)
            .map(|(i, &c)| (upper_bound(i), c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_range_without_gaps() {
        assert_eq!(lower_bound(0), 0);
        for i in 0..BUCKETS - 1 {
            assert_eq!(upper_bound(i) + 1, lower_bound(i + 1), "bucket {i}");
            assert_eq!(bucket_of(lower_bound(i)), i);
            assert_eq!(bucket_of(upper_bound(i)), i);
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_of((1 << MAX_EXP) - 1), BUCKETS - 2);
    }

    #[test]
    fn bucket_width_is_at_most_an_eighth_of_its_values() {
        for i in SUB..BUCKETS - 1 {
            let (lo, hi) = (lower_bound(i), upper_bound(i));
            assert!((hi - lo + 1) * 8 <= lo, "bucket {i}: {lo}..={hi}");
        }
    }

    #[test]
    fn quantiles_are_within_an_eighth_above_the_truth() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v * 1_000);
        }
        for (q, truth) in [(0.5, 5_000_000u64), (0.95, 9_500_000), (0.99, 9_900_000)] {
            let got = h.quantile(q);
            assert!(
                got >= truth && got <= truth + truth / 8,
                "q {q}: {got} vs {truth}"
            );
        }
        assert_eq!(h.quantile(1.0), 10_000_000);
        assert_eq!(h.quantile(0.0), 1_000);
        assert_eq!((h.count(), h.min(), h.max()), (10_000, 1_000, 10_000_000));
    }

    #[test]
    fn empty_single_and_huge_values() {
        let mut h = Histogram::new();
        assert_eq!(h.percentiles(), [0; 4]);
        h.record(5);
        assert_eq!(h.percentiles(), [5; 4]);
        h.record(u64::MAX);
        assert_eq!(h.quantile(1.0), u64::MAX);
        assert_eq!(h.sum(), u64::MAX);
    }

    #[test]
    fn merge_equals_recording_both() {
        let (mut a, mut b, mut both) = (Histogram::new(), Histogram::new(), Histogram::new());
        for v in 0..500u64 {
            a.record(v * 7);
            both.record(v * 7);
            b.record(v * 13 + 1);
            both.record(v * 13 + 1);
        }
        a.merge(&b);
        assert_eq!(a, both);
        let total: u64 = a.buckets().map(|(_, c)| c).sum();
        assert_eq!(total, 1_000);
    }
}
