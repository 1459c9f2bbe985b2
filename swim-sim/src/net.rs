//! The simulated network: delay, loss, duplication, MTU and partitions, all drawn from the
//! simulation's seeded RNG.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::RngCore;

use crate::scenario::{NetworkSpec, NodeId};

/// Uniform in [0, 1).
pub(crate) fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// An active partition: a group per node; traffic between different groups is cut (only from
/// group 0 to the others when one-way).
#[derive(Debug, Clone)]
pub(crate) struct Partition {
    pub id: usize,
    pub group: Vec<u16>,
    pub one_way: bool,
}

impl Partition {
    pub(crate) fn new(id: usize, nodes: usize, groups: &[Vec<NodeId>], one_way: bool) -> Self {
        let rest = groups.len() as u16;
        let mut group = vec![rest; nodes];
        for (g, members) in groups.iter().enumerate() {
            for &m in members {
                group[m as usize] = g as u16;
            }
        }
        Partition { id, group, one_way }
    }

    pub(crate) fn blocks(&self, from: NodeId, to: NodeId) -> bool {
        let (gf, gt) = (self.group[from as usize], self.group[to as usize]);
        if gf == gt {
            return false;
        }
        !self.one_way || gf == 0
    }
}

/// Network state during a run.
#[derive(Debug)]
pub(crate) struct Network {
    pub spec: NetworkSpec,
    /// Extra loss from `Loss` faults, by fault id.
    pub extra_loss: Vec<(usize, f64)>,
    pub link_loss: HashMap<(NodeId, NodeId), f64>,
    pub partitions: Vec<Partition>,
    /// Cut links (from, to): nothing passes.
    pub cut: BTreeSet<(NodeId, NodeId)>,
    /// Whether any loss, partition or link loss ever applied (for the zero-loss invariant).
    pub ever_lossy: bool,
}

/// What happens to one datagram.
pub(crate) enum Fate {
    Dropped,
    Delivered(Duration),
    Duplicated(Duration, Duration),
}

impl Network {
    pub(crate) fn new(spec: NetworkSpec) -> Self {
        let ever_lossy = spec.loss > 0.0;
        Network {
            spec,
            extra_loss: Vec::new(),
            link_loss: HashMap::new(),
            partitions: Vec::new(),
            cut: BTreeSet::new(),
            ever_lossy,
        }
    }

    pub(crate) fn blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.partitions.iter().any(|p| p.blocks(from, to)) || self.cut.contains(&(from, to))
    }

    pub(crate) fn delay(&self, rng: &mut ChaCha8Rng) -> Duration {
        let s = &self.spec;
        if s.heavy_tail_probability > 0.0 && unit(rng) < s.heavy_tail_probability {
            // Pareto(α = 1.5) with minimum `heavy_tail_scale`, capped at 100× the scale.
            let u = unit(rng).max(1e-9);
            let factor = u.powf(-1.0 / 1.5).min(100.0);
            return s.base_delay + s.heavy_tail_scale.mul_f64(factor);
        }
        let jitter = s.jitter.as_nanos() as u64;
        let extra = if jitter == 0 {
            0
        } else {
            rng.next_u64() % jitter
        };
        s.base_delay + Duration::from_nanos(extra)
    }

    /// Decides a datagram's fate.
    pub(crate) fn datagram(
        &self,
        from: NodeId,
        to: NodeId,
        len: usize,
        rng: &mut ChaCha8Rng,
    ) -> Fate {
        if len > self.spec.mtu || self.blocked(from, to) {
            return Fate::Dropped;
        }
        let mut loss = self.spec.loss + self.extra_loss.iter().map(|(_, l)| l).sum::<f64>();
        if let Some(l) = self.link_loss.get(&(from, to)) {
            loss += l;
        }
        if loss > 0.0 && unit(rng) < loss {
            return Fate::Dropped;
        }
        let d = self.delay(rng);
        if self.spec.duplicate > 0.0 && unit(rng) < self.spec.duplicate {
            return Fate::Duplicated(d, self.delay(rng));
        }
        Fate::Delivered(d)
    }

    /// Decides a stream message's fate: reliable unless a partition cuts it (a failed connect).
    pub(crate) fn stream(
        &self,
        from: NodeId,
        to: NodeId,
        rng: &mut ChaCha8Rng,
    ) -> Option<Duration> {
        (!self.blocked(from, to)).then(|| self.delay(rng))
    }

    pub(crate) fn now_lossy(&mut self) {
        self.ever_lossy = true;
    }
}
