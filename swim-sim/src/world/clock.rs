//! A node's clock: global simulated time mapped to the node's local time, running fast or
//! slow by a skew in parts per million from the moment the skew was set.

use swim_proto::Instant;

/// Local time = `origin.1 + (global - origin.0) * (1 + ppm / 10^6)`.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Clock {
    ppm: i64,
    /// (global, local) at the last rate change.
    origin: (Instant, Instant),
}

impl Clock {
    /// From `now` on, the clock runs `ppm` parts per million fast (or slow, if negative).
    pub(super) fn set_rate(&mut self, now: Instant, ppm: i64) {
        assert!(
            (crate::scenario::MIN_SKEW_PPM..=crate::scenario::MAX_SKEW_PPM).contains(&ppm),
            "clock skew ppm {ppm} out of range: a clock must move forward (scenarios validate it)"
        );
        self.origin = (now, self.local(now));
        self.ppm = ppm;
    }

    /// The node's reading at global instant `g`.
    pub(super) fn local(&self, g: Instant) -> Instant {
        let (g0, l0) = self.origin;
        if self.ppm == 0 {
            return Instant::from_nanos(l0.as_nanos() + (g.as_nanos() - g0.as_nanos()));
        }
        let dg = i128::from(g.as_nanos() - g0.as_nanos());
        let dl = dg * (1_000_000 + i128::from(self.ppm)) / 1_000_000;
        Instant::from_nanos((i128::from(l0.as_nanos()) + dl).max(0) as u64)
    }

    /// The earliest global instant at which the clock reads `l` or later.
    pub(super) fn global(&self, l: Instant) -> Instant {
        if l == Instant::MAX {
            return Instant::MAX;
        }
        let (g0, l0) = self.origin;
        let dl = i128::from(l.as_nanos()) - i128::from(l0.as_nanos());
        let rate = 1_000_000 + i128::from(self.ppm);
        let dg = if dl <= 0 {
            dl * 1_000_000 / rate
        } else {
            (dl * 1_000_000 + rate - 1) / rate
        };
        let g = i128::from(g0.as_nanos()) + dg;
        Instant::from_nanos(g.clamp(0, i128::from(u64::MAX)) as u64)
    }
}
