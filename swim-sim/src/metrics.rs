//! Measurements taken while a run goes: every node's view as a bitmap, the truth, detection,
//! false positives (and false deaths by kind, `false_deaths.rs`), dissemination, convergence
//! and load. (Just over 600 lines: the view bitmap and the measurements that read it on every
//! event live together; splitting `Views` into its own file is the next step if it grows.)

mod false_deaths;

pub(crate) use false_deaths::Classifier;

// issue 12: bytes per message kind (`bytes.rs`): every packet sent is classified by the world
// as it goes out; the report shows the kinds per node per second, in the table and the JSON.
mod bytes;

pub(crate) use bytes::KindBytes;
pub use bytes::KindLoad;

use std::collections::BTreeSet;

use swim_proto::{Event, Instant};

use crate::report::{
    CrashChain, Detection, Dissemination, FalsePositives, FaultWindow, Load, Series, Summary,
};
use crate::scenario::NodeId;
use crate::world::Traffic;

/// Each observer's view (members it holds alive or suspect) against the true set of up nodes,
/// kept incrementally: O(1) per view change, O(n) per change of the truth.
#[derive(Debug)]
pub(crate) struct Views {
    n: usize,
    words: usize,
    bits: Vec<u64>,
    up: Vec<bool>,
    live: u32,
    /// Up nodes other than the observer that it holds active.
    agree: Vec<u32>,
    /// Nodes that are not up that the observer holds active.
    extra: Vec<u32>,
    /// Per target: up observers (other than itself) that hold it active.
    holders: Vec<u32>,
    ok: Vec<bool>,
    /// Up observers whose view differs from the truth.
    bad: u32,
    /// Observers whose view became equal to the truth since the last drain.
    pub(crate) newly_ok: Vec<u32>,
}

impl Views {
    pub(crate) fn new(n: usize) -> Self {
        let words = n.div_ceil(64);
        Views {
            n,
            words,
            bits: vec![0; n * words],
            up: vec![false; n],
            live: 0,
            agree: vec![0; n],
            extra: vec![0; n],
            holders: vec![0; n],
            ok: vec![false; n],
            bad: 0,
            newly_ok: Vec::new(),
        }
    }

    fn get(&self, o: usize, t: usize) -> bool {
        self.bits[o * self.words + t / 64] >> (t % 64) & 1 == 1
    }

    fn put(&mut self, o: usize, t: usize, v: bool) {
        let w = &mut self.bits[o * self.words + t / 64];
        if v {
            *w |= 1 << (t % 64);
        } else {
            *w &= !(1 << (t % 64));
        }
    }

    fn correct(&self, o: usize) -> bool {
        self.agree[o] + 1 == self.live && self.extra[o] == 0
    }

    fn refresh(&mut self, o: usize) {
        if !self.up[o] {
            return;
        }
        let c = self.correct(o);
        if c != self.ok[o] {
            self.ok[o] = c;
            if c {
                self.bad -= 1;
                self.newly_ok.push(o as u32);
            } else {
                self.bad += 1;
            }
        }
    }

    fn recount(&mut self) {
        self.bad = 0;
        for o in 0..self.n {
            self.ok[o] = self.up[o] && self.correct(o);
            if self.up[o] && !self.ok[o] {
                self.bad += 1;
            }
        }
    }

    /// Observer `o` now holds `t` active (or not).
    pub(crate) fn flip(&mut self, o: usize, t: usize, active: bool) {
        if o == t || self.get(o, t) == active {
            return;
        }
        self.put(o, t, active);
        let (counter, holder) = (
            if self.up[t] {
                &mut self.agree
            } else {
                &mut self.extra
            },
            self.up[o],
        );
        if active {
            counter[o] += 1;
        } else {
            counter[o] -= 1;
        }
        if holder {
            if active {
                self.holders[t] += 1;
            } else {
                self.holders[t] -= 1;
            }
        }
        self.refresh(o);
    }

    /// The truth changes: node `v` is now up (running, not left) or not.
    pub(crate) fn set_up(&mut self, v: usize, up: bool) {
        if self.up[v] == up {
            return;
        }
        for o in 0..self.n {
            if o != v && self.get(o, v) {
                if up {
                    self.extra[o] -= 1;
                    self.agree[o] += 1;
                } else {
                    self.agree[o] -= 1;
                    self.extra[o] += 1;
                }
            }
        }
        for t in 0..self.n {
            if t != v && self.get(v, t) {
                if up {
                    self.holders[t] += 1;
                } else {
                    self.holders[t] -= 1;
                }
            }
        }
        self.up[v] = up;
        if up {
            self.live += 1;
        } else {
            self.live -= 1;
        }
        self.recount();
    }

    /// Forgets everything observer `v` held (it restarted with fresh state).
    pub(crate) fn reset(&mut self, v: usize) {
        for t in 0..self.n {
            if self.get(v, t) {
                self.flip(v, t, false);
            }
        }
    }

    /// Up observers whose view differs from the truth.
    pub(crate) fn unconverged(&self) -> u32 {
        self.bad
    }

    /// (missing, extra) members in observer `o`'s view, for diagnostics.
    pub(crate) fn diff(&self, o: usize) -> (u32, u32) {
        (self.live - 1 - self.agree[o], self.extra[o])
    }

    pub(crate) fn converged(&self) -> bool {
        self.bad == 0 && self.live > 0
    }

    pub(crate) fn holds(&self, o: usize, t: usize) -> bool {
        self.get(o, t)
    }

    pub(crate) fn view_size(&self, o: usize) -> u32 {
        self.agree[o] + self.extra[o] + 1
    }
}

#[derive(Debug)]
struct Crash {
    victim: NodeId,
    at: Instant,
    first_suspect: Option<Instant>,
    first_dead: Option<Instant>,
    dead_at: Vec<Instant>,
    /// When no up observer held it alive or suspect any more.
    dead_everywhere: Option<Instant>,
    ended: bool,
    permanent: bool,
}

/// Everything measured during a run.
#[derive(Debug)]
pub(crate) struct Metrics {
    pub views: Views,
    crashes: Vec<Crash>,
    active_crash: Vec<Option<usize>>,
    /// Incarnation a node had when it last crashed: later "dead" claims at or below it are
    /// about that earlier life.
    crashed_incarnation: Vec<Option<u64>>,
    fp_dead: u64,
    fp_suspect: u64,
    victims: BTreeSet<NodeId>,
    healthy_victims: BTreeSet<NodeId>,
    pending_join: Vec<Option<Instant>>,
    /// Whether a node's arrival is a change to measure (not the warm start's bootstrap).
    track_join: Vec<bool>,
    pending_gone: Vec<Option<Instant>>,
    dissemination: Vec<f64>,
    pub first_convergence: Option<Instant>,
    /// When views last became equal to the truth, if they are now.
    pub converged_since: Option<Instant>,
    heal_start: Option<Instant>,
    pub heal_ms: Option<f64>,
    /// When the last partition ended, and which nodes' views have not yet healed since.
    heal_anchor: Option<Instant>,
    heal_waiting: Vec<bool>,
    /// Per node: the last partition's end to its view first equalling the truth, ms.
    pub heal_node_ms: Vec<f64>,
    /// Per node: datagram bytes sent up to the last sample.
    bytes_at_sample: Vec<u64>,
    pub series: Series,
    pub faults: Vec<FaultWindow>,
    /// False deaths by kind.
    pub deaths: Classifier,
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Metrics {
    pub(crate) fn new(n: usize) -> Self {
        Metrics {
            views: Views::new(n),
            crashes: Vec::new(),
            active_crash: vec![None; n],
            crashed_incarnation: vec![None; n],
            fp_dead: 0,
            fp_suspect: 0,
            victims: BTreeSet::new(),
            healthy_victims: BTreeSet::new(),
            pending_join: vec![None; n],
            track_join: vec![false; n],
            pending_gone: vec![None; n],
            dissemination: Vec::new(),
            first_convergence: None,
            converged_since: None,
            heal_start: None,
            heal_ms: None,
            heal_anchor: None,
            heal_waiting: vec![false; n],
            heal_node_ms: Vec::new(),
            bytes_at_sample: vec![0; n],
            series: Series::default(),
            faults: Vec::new(),
            deaths: Classifier::new(n),
        }
    }

    /// Re-evaluates convergence and pending dissemination for `target` after a change.
    fn after_change(&mut self, now: Instant, target: Option<usize>) {
        for o in std::mem::take(&mut self.views.newly_ok) {
            if let Some(anchor) = self.heal_anchor
                && std::mem::take(&mut self.heal_waiting[o as usize])
            {
                self.heal_node_ms.push(ms(now - anchor));
            }
        }
        if let Some(t) = target {
            let live_others = self.views.live.saturating_sub(u32::from(self.views.up[t]));
            if let Some(start) = self.pending_join[t]
                && self.views.up[t]
                && self.views.holders[t] >= live_others
            {
                self.dissemination.push(ms(now - start));
                self.pending_join[t] = None;
            }
            if let Some(start) = self.pending_gone[t]
                && !self.views.up[t]
                && self.views.holders[t] == 0
            {
                self.dissemination.push(ms(now - start));
                self.pending_gone[t] = None;
            }
        }
        if self.views.converged() {
            if self.converged_since.is_none() {
                self.converged_since = Some(now);
                self.first_convergence.get_or_insert(now);
                if let Some(start) = self.heal_start.take() {
                    self.heal_ms = Some(ms(now - start));
                }
            }
        } else {
            self.converged_since = None;
        }
    }

    /// Node `v` starts with fresh state; `measure_join` if its arrival is a change to measure.
    pub(crate) fn node_up(&mut self, now: Instant, v: NodeId, measure_join: bool) {
        self.deaths.booted(now, v);
        let v = v as usize;
        self.track_join[v] = measure_join;
        self.views.reset(v);
        self.views.set_up(v, true);
        if let Some(c) = self.active_crash[v].take() {
            self.crashes[c].ended = true;
            self.crashes[c].permanent = false;
        }
        self.pending_gone[v] = None;
        self.pending_join[v] = None;
        self.after_change(now, Some(v));
    }

    pub(crate) fn node_down(
        &mut self,
        now: Instant,
        v: NodeId,
        crashed_at_incarnation: Option<u64>,
    ) {
        let vi = v as usize;
        self.views.set_up(vi, false);
        self.pending_join[vi] = None;
        if let Some(inc) = crashed_at_incarnation {
            self.crashed_incarnation[vi] = Some(inc);
            self.active_crash[vi] = Some(self.crashes.len());
            self.crashes.push(Crash {
                victim: v,
                at: now,
                first_suspect: None,
                first_dead: None,
                dead_at: Vec::new(),
                dead_everywhere: None,
                ended: false,
                permanent: true,
            });
        }
        self.after_change(now, Some(vi));
    }

    pub(crate) fn partition_healed(&mut self, now: Instant) {
        self.heal_start = Some(now);
        self.heal_ms = None;
        self.heal_anchor = Some(now);
        self.heal_node_ms.clear();
        self.views.newly_ok.clear();
        for o in 0..self.views.n {
            // Nodes whose view already equals the truth never lost the other side.
            self.heal_waiting[o] = self.views.up[o] && !self.views.ok[o];
        }
        self.after_change(now, None);
    }

    /// Records an event reported by observer `o`. Returns a description if it is a "dead"
    /// declaration about a node that was up (a false positive), with whether the victim was
    /// healthy.
    pub(crate) fn on_event(
        &mut self,
        now: Instant,
        o: NodeId,
        e: &Event<NodeId>,
        victim_faulty: impl Fn(NodeId) -> bool,
    ) -> Option<(NodeId, bool)> {
        let o = o as usize;
        let (t, active) = match e {
            Event::MemberJoined(m) | Event::MemberAlive(m) | Event::MemberUpdated(m) => {
                (m.addr, true)
            }
            Event::MemberSuspected { member, .. } => (member.addr, true),
            Event::MemberFailed(m) | Event::MemberLeft(m) | Event::MemberRemoved(m) => {
                (m.addr, false)
            }
            _ => return None,
        };
        let ti = t as usize;
        if ti >= self.views.n {
            return None;
        }
        let mut false_dead = None;
        match e {
            Event::MemberJoined(_)
                if self.track_join[ti]
                    && self.views.up[ti]
                    && self.pending_join[ti].is_none()
                    && !self.views.holders_all(ti) =>
            {
                self.track_join[ti] = false;
                self.pending_join[ti] = Some(now);
            }
            Event::MemberSuspected { .. } => {
                if let Some(c) = self.active_crash[ti] {
                    self.crashes[c].first_suspect.get_or_insert(now);
                } else if self.views.up[ti] {
                    self.fp_suspect += 1;
                }
            }
            Event::MemberFailed(m) => {
                if let Some(c) = self.active_crash[ti] {
                    let c = &mut self.crashes[c];
                    c.first_suspect.get_or_insert(now);
                    c.first_dead.get_or_insert(now);
                    c.dead_at.push(now);
                    if self.pending_gone[ti].is_none() {
                        self.pending_gone[ti] = Some(now);
                    }
                } else if self.views.up[ti] {
                    self.deaths.record(now, o as NodeId, t);
                }
                if self.active_crash[ti].is_none()
                    && self.views.up[ti]
                    && self.crashed_incarnation[ti].is_none_or(|inc| m.incarnation > inc)
                {
                    self.fp_dead += 1;
                    self.victims.insert(t);
                    let healthy = !victim_faulty(t);
                    if healthy {
                        self.healthy_victims.insert(t);
                    }
                    false_dead = Some((t, healthy));
                }
            }
            Event::MemberLeft(_) if !self.views.up[ti] && self.pending_gone[ti].is_none() => {
                self.pending_gone[ti] = Some(now);
            }
            _ => {}
        }
        self.views.flip(o, ti, active);
        if !active
            && self.views.holders[ti] == 0
            && let Some(c) = self.active_crash[ti]
        {
            self.crashes[c].dead_everywhere.get_or_insert(now);
        }
        self.after_change(now, Some(ti));
        false_dead
    }

    /// Appends one sample to the series; `traffic` is what each node sent so far.
    pub(crate) fn sample(&mut self, now: Instant, interval_s: f64, traffic: &[Traffic]) {
        let mut sizes: Vec<u32> = (0..self.views.n)
            .filter(|&o| self.views.up[o])
            .map(|o| self.views.view_size(o))
            .collect();
        sizes.sort_unstable();
        let pct = |p: f64| {
            sizes
                .get(((sizes.len().max(1) - 1) as f64 * p).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        let s = &mut self.series;
        s.t_ms.push(now.as_nanos() as f64 / 1e6);
        s.true_live.push(self.views.live);
        s.view_min.push(pct(0.0));
        s.view_p10.push(pct(0.1));
        s.view_p50.push(pct(0.5));
        s.view_p90.push(pct(0.9));
        s.view_max.push(pct(1.0));
        let mut total = 0u64;
        let mut max = 0u64;
        let mut up = 0u64;
        for (o, t) in traffic.iter().enumerate().take(self.views.n) {
            let bytes = t.datagram_bytes;
            let interval = bytes - std::mem::replace(&mut self.bytes_at_sample[o], bytes);
            if self.views.up[o] {
                up += 1;
                total += interval;
                max = max.max(interval);
            }
        }
        s.bytes_mean
            .push(total as f64 / up.max(1) as f64 / interval_s);
        s.bytes_max.push(max as f64 / interval_s);
    }

    pub(crate) fn detection(&self) -> (Detection, Vec<f64>) {
        let mut first_suspect = Vec::new();
        let mut first_dead = Vec::new();
        let mut all_dead = Vec::new();
        let mut everywhere = Vec::new();
        let mut undetected = 0;
        for c in &self.crashes {
            if let Some(t) = c.dead_everywhere {
                everywhere.push(ms(t - c.at));
            }
            if let Some(t) = c.first_suspect {
                first_suspect.push(ms(t - c.at));
            }
            if let Some(t) = c.first_dead {
                first_dead.push(ms(t - c.at));
            }
            all_dead.extend(c.dead_at.iter().map(|&t| ms(t - c.at)));
            if c.permanent && !c.ended {
                let v = c.victim as usize;
                undetected += (0..self.views.n)
                    .filter(|&o| self.views.up[o] && self.views.holds(o, v))
                    .count() as u64;
            }
        }
        let d = Detection {
            first_suspect_ms: Summary::of(&first_suspect),
            first_dead_ms: Summary::of(&first_dead),
            all_dead_ms: Summary::of(&all_dead),
            undetected,
            dead_everywhere_ms: Summary::of(&everywhere),
        };
        (d, all_dead)
    }

    /// Each crash's detection chain, in time order.
    pub(crate) fn crash_chains(&self) -> Vec<CrashChain> {
        let since = |c: &Crash, t: Option<Instant>| t.map(|t| ms(t - c.at));
        self.crashes
            .iter()
            .map(|c| CrashChain {
                node: c.victim,
                at_ms: ms(c.at - Instant::ZERO),
                first_suspect_ms: since(c, c.first_suspect),
                first_dead_ms: since(c, c.first_dead),
                dead_everywhere_ms: since(c, c.dead_everywhere),
                restarted: c.ended,
            })
            .collect()
    }

    pub(crate) fn false_positives(&self) -> FalsePositives {
        FalsePositives {
            dead: self.fp_dead,
            suspect: self.fp_suspect,
            victims: self.victims.len() as u64,
            healthy_victims: self.healthy_victims.len() as u64,
        }
    }

    /// Load per node per second over a run of `seconds`, from what each node sent.
    pub(crate) fn load(traffic: &[Traffic], seconds: f64) -> Load {
        let n = traffic.len().max(1) as f64;
        let secs = seconds.max(1e-9);
        let sum = |f: fn(&Traffic) -> u64| traffic.iter().map(f).sum::<u64>() as f64;
        Load {
            datagrams_per_node_s: sum(|t| t.datagrams) / n / secs,
            bytes_per_node_s: sum(|t| t.datagram_bytes) / n / secs,
            max_bytes_per_node_s: traffic.iter().map(|t| t.datagram_bytes).max().unwrap_or(0)
                as f64
                / secs,
            streams_per_node_s: sum(|t| t.streams) / n / secs,
            stream_bytes_per_node_s: sum(|t| t.stream_bytes) / n / secs,
        }
    }

    pub(crate) fn dissemination(&self) -> Dissemination {
        let s = Summary::of(&self.dissemination);
        Dissemination {
            p50_ms: s.p50,
            p99_ms: s.p99,
            count: s.count,
        }
    }
}

impl Views {
    fn holders_all(&self, t: usize) -> bool {
        self.holders[t] + u32::from(self.up[t]) >= self.live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_track_convergence_incrementally() {
        let mut v = Views::new(3);
        for i in 0..3 {
            v.set_up(i, true);
        }
        assert!(!v.converged());
        for o in 0..3 {
            for t in 0..3 {
                v.flip(o, t, true);
            }
        }
        assert!(v.converged());
        v.set_up(2, false); // node 2 crashes; 0 and 1 still hold it
        assert!(!v.converged());
        v.flip(0, 2, false);
        assert!(!v.converged());
        v.flip(1, 2, false);
        assert!(v.converged());
        assert_eq!(v.holders[2], 0);
        v.reset(2);
        v.set_up(2, true); // restarts fresh: knows nobody, nobody holds it
        assert!(!v.converged());
        assert_eq!(v.view_size(2), 1);
    }
}
