//! Local health awareness (Lifeguard §IV-A): a node that misses acks, nacks or has to refute
//! suspicions about itself is probably the slow one, so it probes less eagerly.

use core::time::Duration;

/// Health score in `0..max`; 0 is healthy. Probe interval and probe timeout are multiplied
/// by `score + 1`, so a starved node stops accusing healthy members.
#[derive(Clone, Debug)]
pub(crate) struct LocalHealth {
    score: u32,
    max: u32,
}

impl LocalHealth {
    pub(crate) fn new(max: u32) -> Self {
        LocalHealth {
            score: 0,
            max: max.max(1),
        }
    }

    /// Raises (`delta > 0`) or lowers the score, clamped to `0..max`.
    pub(crate) fn apply(&mut self, delta: i64) {
        let s = (i64::from(self.score) + delta).clamp(0, i64::from(self.max) - 1);
        self.score = s as u32;
    }

    pub(crate) fn score(&self) -> u32 {
        self.score
    }

    /// Changes the bound (runtime reconfiguration); a score above the new bound is lowered to
    /// its top, `max − 1`.
    pub(crate) fn set_max(&mut self, max: u32) {
        self.max = max.max(1);
        self.score = self.score.min(self.max - 1);
    }

    /// `d · (score + 1)`.
    pub(crate) fn scale(&self, d: Duration) -> Duration {
        d.saturating_mul(self.score + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_clamped_and_scales_timeouts() {
        let mut h = LocalHealth::new(8);
        h.apply(-3);
        assert_eq!(h.score(), 0);
        h.apply(3);
        assert_eq!(h.scale(Duration::from_millis(500)), Duration::from_secs(2));
        h.apply(100);
        assert_eq!(h.score(), 7);
        assert_eq!(h.scale(Duration::from_secs(1)), Duration::from_secs(8));
    }
}
