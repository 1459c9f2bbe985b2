//! False deaths by kind (issue 12): a `MemberFailed` about a node that was up, classified by
//! what the observer could know. Reachability comes from the world's network rules as they
//! were at each moment (partition groups, cut links, the time of each heal), recorded at every
//! change; node faults (pause, slow, flaky, clock skew) are recorded as they start.

use std::collections::BTreeSet;
use std::time::Duration;

use swim_proto::Instant;

use crate::net::{Network, Partition};
use crate::report::{FalseDeathCount, FalseDeaths, SideDeaths};
use crate::scenario::NodeId;

/// How long an observer must have been able to reach a running victim before a death of it
/// counts as unjustified (kinds (a) and (b)): about one probe period plus its timeouts at the
/// LAN preset, so a heal or a boot a moment ago does not count against the protocol.
pub(crate) const REACH_WINDOW: Duration = Duration::from_secs(2);

/// What kind of false death a `MemberFailed` about an up node is, checked in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// (c) The observer could not reach the victim at some moment of the last
    /// [`REACH_WINDOW`] (a partition or cut link separated them, or healed less than that
    /// ago): expected, shown separately.
    AcrossPartition,
    /// The victim itself is paused, slow, flaky or clock-skewed (since the fault started):
    /// expected.
    FaultyVictim,
    /// The victim's current instance has been up less than [`REACH_WINDOW`]: too soon to
    /// judge (claims about its previous life still in flight).
    Fresh,
    /// (b) The victim restarted and its new instance has been up and reachable for at least
    /// [`REACH_WINDOW`].
    Restarted,
    /// (d) A healthy victim in a run where some node is paused, slow, flaky or skewed.
    HealthyInFaultyRun,
    /// (a) A healthy victim the observer could reach for at least [`REACH_WINDOW`], in a run
    /// without node faults (loss does not make a node unreachable).
    Reachable,
}

/// The network's reachability rules from one moment until the next change.
#[derive(Debug)]
struct Rules {
    from: Instant,
    partitions: Vec<Partition>,
    cut: BTreeSet<(NodeId, NodeId)>,
}

impl Rules {
    fn separated(&self, a: NodeId, b: NodeId) -> bool {
        self.partitions
            .iter()
            .any(|p| p.blocks(a, b) || p.blocks(b, a))
            || self.cut.contains(&(a, b))
            || self.cut.contains(&(b, a))
    }
}

/// Classifies and counts false deaths.
#[derive(Debug)]
pub(crate) struct Classifier {
    /// Reachability rules in time order; the first starts at zero with none.
    history: Vec<Rules>,
    /// Per node: when its current instance booted.
    booted_at: Vec<Option<Instant>>,
    /// Per node: whether its current instance is a restart (it ran before).
    restarted: Vec<bool>,
    /// Per node: a node fault (pause, slow, flaky, skew) has started on it.
    faulty: Vec<bool>,
    any_faulty: bool,
    counts: [(u64, BTreeSet<NodeId>); 6],
    // issue 16: unexpected false deaths by side of the latest partition.
    /// Kinds (a), (b) and (d) after a partition started, by the victim's side (group) of the
    /// latest partition: events, victims, and the side's size.
    by_side: std::collections::BTreeMap<u16, (u64, BTreeSet<NodeId>, u32)>,
}

impl Classifier {
    pub(crate) fn new(n: usize) -> Self {
        Classifier {
            history: vec![Rules {
                from: Instant::ZERO,
                partitions: Vec::new(),
                cut: BTreeSet::new(),
            }],
            booted_at: vec![None; n],
            restarted: vec![false; n],
            faulty: vec![false; n],
            any_faulty: false,
            counts: Default::default(),
            by_side: Default::default(),
        }
    }

    /// The network's partitions and cut links may have changed at `now`: records them if so.
    pub(crate) fn network(&mut self, now: Instant, net: &Network) {
        let last = self.history.last().expect("history starts with one entry");
        let same = last.cut == net.cut
            && last.partitions.len() == net.partitions.len()
            && last
                .partitions
                .iter()
                .zip(&net.partitions)
                .all(|(a, b)| a.id == b.id);
        if !same {
            self.set_rules(now, net.partitions.clone(), net.cut.clone());
        }
    }

    fn set_rules(&mut self, now: Instant, partitions: Vec<Partition>, cut: BTreeSet<(u32, u32)>) {
        if self.history.last().is_some_and(|r| r.from == now) {
            self.history.pop();
        }
        self.history.push(Rules {
            from: now,
            partitions,
            cut,
        });
    }

    /// Node `v` booted a new instance at `now`.
    pub(crate) fn booted(&mut self, now: Instant, v: NodeId) {
        let v = v as usize;
        self.restarted[v] = self.booted_at[v].is_some();
        self.booted_at[v] = Some(now);
    }

    /// A node fault (pause, slow, flaky, skew) starts on `v`.
    pub(crate) fn node_fault(&mut self, v: NodeId) {
        self.faulty[v as usize] = true;
        self.any_faulty = true;
    }

    /// Whether `a` and `b` were separated at any moment of `[now - REACH_WINDOW, now]`.
    fn separated_within(&self, now: Instant, a: NodeId, b: NodeId) -> bool {
        let since = Instant::from_nanos(
            now.as_nanos()
                .saturating_sub(REACH_WINDOW.as_nanos() as u64),
        );
        for (i, r) in self.history.iter().enumerate().rev() {
            let until = self
                .history
                .get(i + 1)
                .map_or(Instant::MAX, |next| next.from);
            if until <= since {
                break; // this and every earlier rule ended before the window
            }
            if r.from <= now && r.separated(a, b) {
                return true;
            }
        }
        false
    }

    /// The kind of a death of up node `victim` declared by `observer` at `now`.
    pub(crate) fn classify(&self, now: Instant, observer: NodeId, victim: NodeId) -> Kind {
        let v = victim as usize;
        if self.separated_within(now, observer, victim) {
            Kind::AcrossPartition
        } else if self.faulty[v] {
            Kind::FaultyVictim
        } else if self.booted_at[v].is_none_or(|b| now < b.saturating_add(REACH_WINDOW)) {
            Kind::Fresh
        } else if self.restarted[v] {
            Kind::Restarted
        } else if self.any_faulty {
            Kind::HealthyInFaultyRun
        } else {
            Kind::Reachable
        }
    }

    /// Classifies and counts one false death.
    pub(crate) fn record(&mut self, now: Instant, observer: NodeId, victim: NodeId) -> Kind {
        let kind = self.classify(now, observer, victim);
        let (events, victims) = &mut self.counts[kind as usize];
        *events += 1;
        victims.insert(victim);
        if matches!(
            kind,
            Kind::Reachable | Kind::Restarted | Kind::HealthyInFaultyRun
        ) {
            self.count_side(now, victim);
        }
        kind
    }

    /// The latest partition started at or before `now` (active or healed), if any.
    fn latest_partition(&self, now: Instant) -> Option<&Partition> {
        self.history
            .iter()
            .rev()
            .filter(|r| r.from <= now)
            .find_map(|r| r.partitions.last())
    }

    /// Counts an unexpected false death of `victim` under its side of the latest partition.
    fn count_side(&mut self, now: Instant, victim: NodeId) {
        let Some(p) = self.latest_partition(now) else {
            return;
        };
        let side = p.group[victim as usize];
        let size = p.group.iter().filter(|&&g| g == side).count() as u32;
        let (events, victims, nodes) = self.by_side.entry(side).or_default();
        *events += 1;
        victims.insert(victim);
        *nodes = size;
    }

    /// Unexpected false deaths by side of the latest partition, sides in order.
    pub(crate) fn by_side(&self) -> Vec<SideDeaths> {
        self.by_side
            .iter()
            .map(|(&side, (events, victims, nodes))| SideDeaths {
                side: u32::from(side),
                nodes: *nodes,
                deaths: FalseDeathCount {
                    events: *events,
                    victims: victims.len() as u64,
                },
            })
            .collect()
    }

    pub(crate) fn report(&self) -> FalseDeaths {
        let c = |k: Kind| {
            let (events, victims) = &self.counts[k as usize];
            FalseDeathCount {
                events: *events,
                victims: victims.len() as u64,
            }
        };
        FalseDeaths {
            reachable: c(Kind::Reachable),
            restarted: c(Kind::Restarted),
            across_partition: c(Kind::AcrossPartition),
            healthy_in_faulty_run: c(Kind::HealthyInFaultyRun),
            faulty_victim: c(Kind::FaultyVictim),
            fresh: c(Kind::Fresh),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: f64) -> Instant {
        Instant::ZERO + Duration::from_secs_f64(s)
    }

    /// Ten nodes warm-started at zero; nodes 0-4 split from 5-9 from 10 s to 40 s.
    fn split_timeline() -> Classifier {
        let mut c = Classifier::new(10);
        for v in 0..10 {
            c.booted(Instant::ZERO, v);
        }
        let split = Partition::new(0, 10, &[(0..5).collect()], false);
        c.set_rules(at(10.0), vec![split], BTreeSet::new());
        c.set_rules(at(40.0), Vec::new(), BTreeSet::new());
        c
    }

    #[test]
    fn a_death_across_a_partition_is_expected() {
        let c = split_timeline();
        assert_eq!(c.classify(at(25.0), 1, 7), Kind::AcrossPartition);
        assert_eq!(c.classify(at(25.0), 7, 1), Kind::AcrossPartition);
        // Within REACH_WINDOW of the heal the observer could not yet reach the victim.
        assert_eq!(c.classify(at(41.9), 1, 7), Kind::AcrossPartition);
    }

    #[test]
    fn the_same_death_two_seconds_after_the_heal_is_reachable() {
        let c = split_timeline();
        assert_eq!(c.classify(at(42.0), 1, 7), Kind::Reachable);
        assert_eq!(c.classify(at(60.0), 7, 1), Kind::Reachable);
    }

    #[test]
    fn a_death_on_the_same_side_during_the_split_is_reachable() {
        let c = split_timeline();
        assert_eq!(c.classify(at(25.0), 1, 3), Kind::Reachable);
        assert_eq!(c.classify(at(25.0), 8, 6), Kind::Reachable);
    }

    #[test]
    fn a_one_way_partition_separates_both_ways() {
        let mut c = split_timeline();
        let one_way = Partition::new(1, 10, &[vec![2]], true);
        c.set_rules(at(50.0), vec![one_way], BTreeSet::new());
        assert_eq!(c.classify(at(51.0), 4, 2), Kind::AcrossPartition);
        assert_eq!(c.classify(at(51.0), 2, 4), Kind::AcrossPartition);
    }

    #[test]
    fn a_cut_link_separates_its_two_ends_only() {
        let mut c = split_timeline();
        c.set_rules(at(50.0), Vec::new(), BTreeSet::from([(3, 4)]));
        c.set_rules(at(55.0), Vec::new(), BTreeSet::new());
        assert_eq!(c.classify(at(52.0), 4, 3), Kind::AcrossPartition);
        assert_eq!(c.classify(at(56.0), 4, 3), Kind::AcrossPartition);
        assert_eq!(c.classify(at(57.5), 4, 3), Kind::Reachable);
        assert_eq!(c.classify(at(52.0), 4, 2), Kind::Reachable);
    }

    #[test]
    fn a_death_of_a_restarted_nodes_new_instance_is_restarted() {
        let mut c = split_timeline();
        c.booted(at(70.0), 3); // node 3 crashed earlier and is back
        assert_eq!(c.classify(at(71.0), 0, 3), Kind::Fresh);
        assert_eq!(c.classify(at(72.5), 0, 3), Kind::Restarted);
        // A late joiner's first instance is not a restart.
        let mut fresh = Classifier::new(3);
        fresh.booted(at(5.0), 2);
        assert_eq!(fresh.classify(at(9.0), 0, 2), Kind::Reachable);
    }

    #[test]
    fn node_faults_make_the_victim_faulty_and_others_healthy_in_a_faulty_run() {
        let mut c = split_timeline();
        assert_eq!(c.classify(at(60.0), 0, 3), Kind::Reachable);
        c.node_fault(9);
        assert_eq!(c.classify(at(60.0), 0, 9), Kind::FaultyVictim);
        assert_eq!(c.classify(at(60.0), 9, 3), Kind::HealthyInFaultyRun);
        // Reachability still comes first.
        assert_eq!(c.classify(at(30.0), 0, 9), Kind::AcrossPartition);
    }

    #[test]
    fn counts_events_and_distinct_victims() {
        let mut c = split_timeline();
        c.record(at(25.0), 1, 7);
        c.record(at(26.0), 2, 7);
        c.record(at(60.0), 2, 7);
        c.record(at(61.0), 2, 8);
        let r = c.report();
        assert_eq!(
            (r.across_partition.events, r.across_partition.victims),
            (2, 1)
        );
        assert_eq!((r.reachable.events, r.reachable.victims), (2, 2));
        assert_eq!(r.restarted.events, 0);
    }

    #[test]
    fn unexpected_deaths_are_split_by_the_victims_side_of_the_latest_partition() {
        let mut c = split_timeline();
        c.record(at(5.0), 1, 3); // before any partition: no side
        c.record(at(25.0), 1, 3); // same side, during the split: side 0
        c.record(at(25.0), 8, 6); // side 1
        c.record(at(26.0), 9, 6);
        c.record(at(25.0), 1, 7); // across: expected, not counted by side
        let sides = c.by_side();
        assert_eq!(sides.len(), 2);
        assert_eq!((sides[0].side, sides[0].nodes), (0, 5));
        assert_eq!((sides[0].deaths.events, sides[0].deaths.victims), (1, 1));
        assert_eq!(
            (
                sides[1].side,
                sides[1].deaths.events,
                sides[1].deaths.victims
            ),
            (1, 2, 1)
        );
    }
}
