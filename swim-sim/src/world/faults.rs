//! Faults as calls on the world: crash, restart, leave, pause and resume, slow nodes and
//! skewed clocks; partitions, cut links and loss.

use std::time::Duration;

use swim_proto::{Command, Input, MemberState};

use super::{Happening, Life, LossId, PartitionId, World};
use crate::net::Partition;
use crate::scenario::NodeId;

impl World {
    // ---- node faults -----------------------------------------------------------------------

    /// Stops node `v` abruptly (no leave, state lost); nothing if it is not up.
    pub fn crash(&mut self, v: NodeId) {
        let n = &mut self.nodes[v as usize];
        if n.life != Life::Up {
            return;
        }
        n.node = None;
        n.life = Life::Crashed;
        n.paused = false;
        n.backlog.clear();
        n.tick_at = None;
        let incarnation = n.incarnation;
        self.observe(v, Happening::Crashed { incarnation });
    }

    /// Starts node `v` afresh (same name and address, new state) and joins it through
    /// `seeds`.
    pub fn restart(&mut self, v: NodeId, seeds: Vec<NodeId>) {
        self.join(v, seeds);
    }

    /// Node `v` leaves gracefully: it gets `Command::Leave`, stops counting as up, and its
    /// process exits once its leave is out. Nothing if it is not up.
    pub fn leave(&mut self, v: NodeId) {
        if self.nodes[v as usize].life != Life::Up {
            return;
        }
        self.deliver(v, Input::Command(Command::Leave));
        let n = &mut self.nodes[v as usize];
        if n.life == Life::Up {
            n.life = Life::Left;
            if n.node
                .as_ref()
                .is_some_and(|x| x.local().state == MemberState::Left && x.cluster_size() == 0)
            {
                n.node = None;
            }
            self.observe(v, Happening::Left);
        }
    }

    /// Node `v` stops processing (a long GC pause): inputs queue up until [`World::resume`].
    /// Returns whether it was up to pause.
    pub fn pause(&mut self, v: NodeId) -> bool {
        let n = &mut self.nodes[v as usize];
        if n.life == Life::Up {
            n.paused = true;
        }
        n.life == Life::Up
    }

    /// A paused node ticks, then handles its backlog in order.
    pub fn resume(&mut self, v: NodeId) {
        let n = &mut self.nodes[v as usize];
        if n.paused {
            n.paused = false;
            let backlog = std::mem::take(&mut n.backlog);
            self.deliver(v, Input::Tick);
            for input in backlog {
                self.deliver(v, input);
            }
        }
    }

    /// Every inbound message to node `v` is handled `delay` late (`None`: on time again).
    pub fn set_slow(&mut self, v: NodeId, delay: Option<Duration>) {
        self.nodes[v as usize].slow = delay;
    }

    /// Node `v`'s clock runs `ppm` parts per million fast (positive) or slow from now.
    ///
    /// # Panics
    /// If `ppm` is outside `scenario::MIN_SKEW_PPM..=MAX_SKEW_PPM` (the clock would stop or
    /// run backwards, and the run never end).
    pub fn skew_clock(&mut self, v: NodeId, ppm: i64) {
        self.nodes[v as usize].clock.set_rate(self.now, ppm);
    }

    // ---- network faults --------------------------------------------------------------------

    /// Cuts traffic between groups (only from group 0 to the others when `one_way`); nodes
    /// in no group form one more group.
    pub fn partition(&mut self, groups: &[Vec<NodeId>], one_way: bool) -> PartitionId {
        let id = self.next_id;
        self.next_id += 1;
        let p = Partition::new(id, self.nodes.len(), groups, one_way);
        self.net.partitions.push(p);
        self.net.now_lossy();
        PartitionId(id)
    }

    /// Ends one partition.
    pub fn repair(&mut self, id: PartitionId) {
        self.net.partitions.retain(|p| p.id != id.0);
    }

    /// Whether any partition or cut link is in force.
    pub fn is_partitioned(&self) -> bool {
        !self.net.partitions.is_empty()
    }

    /// Cuts one direction of one link.
    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        self.net.cut.insert((from, to));
        self.net.now_lossy();
    }

    /// Cuts both directions between `v` and every other node.
    pub fn isolate(&mut self, v: NodeId) {
        for o in (0..self.nodes.len() as NodeId).filter(|&o| o != v) {
            self.cut(v, o);
            self.cut(o, v);
        }
    }

    /// Restores every cut link and ends every partition.
    pub fn repair_all(&mut self) {
        self.net.cut.clear();
        self.net.partitions.clear();
    }

    /// Sets the network's own datagram loss probability.
    pub fn set_loss(&mut self, rate: f64) {
        self.net.spec.loss = rate;
        if rate > 0.0 {
            self.net.now_lossy();
        }
    }

    /// Sets the network's delay: `base` plus uniform jitter below `jitter`.
    pub fn set_delay(&mut self, base: Duration, jitter: Duration) {
        self.net.spec.base_delay = base;
        self.net.spec.jitter = jitter;
    }

    /// Adds datagram loss on top of the network's, until removed.
    pub fn add_loss(&mut self, rate: f64) -> LossId {
        let id = self.next_id;
        self.next_id += 1;
        self.net.extra_loss.push((id, rate));
        if rate > 0.0 {
            self.net.now_lossy();
        }
        LossId(id)
    }

    /// Removes loss added by [`World::add_loss`].
    pub fn remove_loss(&mut self, id: LossId) {
        self.net.extra_loss.retain(|(i, _)| *i != id.0);
    }

    /// Restores one direction of one link cut by [`World::cut`].
    pub fn uncut(&mut self, from: NodeId, to: NodeId) {
        self.net.cut.remove(&(from, to));
    }

    /// The loss set on the link `from → to` by [`World::set_link_loss`] (0 if none).
    pub fn link_loss(&self, from: NodeId, to: NodeId) -> f64 {
        self.net.link_loss.get(&(from, to)).copied().unwrap_or(0.0)
    }

    /// Loss `rate` on the link `from → to`.
    pub fn set_link_loss(&mut self, from: NodeId, to: NodeId, rate: f64) {
        self.net.link_loss.insert((from, to), rate);
        if rate > 0.0 {
            self.net.now_lossy();
        }
    }
}
