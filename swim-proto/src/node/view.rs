//! Membership checksums, stable views and the leader (`docs/protocol.md` §11).
//!
//! The checksum is ringpop's: a hash over every non-tombstone member's name, incarnation and
//! state (here a sum of per-member hashes, kept up to date in O(1) per change). It rides on
//! pings and acks, where a persistent mismatch triggers a push-pull; and each node advertises
//! it in the replicated state (type `swim.view`), so every node can tell when all members of
//! its view see the same view.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{Address, Node};
use crate::config::VIEW_STATE_TYPE;
use crate::io::{Event, Output};
use crate::member::NodeName;
use crate::membership::view_hash;
use crate::time::Instant;

/// A node's view of the cluster, as [`Node::view`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct View {
    /// The membership checksum.
    pub checksum: u64,
    /// Alive and suspect members, this node included, in name order.
    pub members: Vec<NodeName>,
    /// Whether every member has advertised this checksum for `ViewConfig::settle`.
    pub stable: bool,
    /// The stable view's leader, if it is still a member.
    pub leader: Option<NodeName>,
}

/// View bookkeeping inside the node.
#[derive(Debug, Default)]
pub(super) struct ViewTracker {
    /// The checksum at the last evaluation.
    last: u64,
    /// Whether `last` was already the checksum at the evaluation before (debounce).
    settled_once: bool,
    /// The checksum last advertised in the state.
    advertised: Option<u64>,
    /// Since when every member has advertised `last`.
    agree_since: Option<Instant>,
    /// The checksum of the current stable view, if stable.
    stable: Option<u64>,
    /// The last stable view's leader.
    stable_leader: Option<NodeName>,
    /// The leader last reported.
    leader: Option<NodeName>,
    /// Changes to `swim.view` entries seen (agreement is re-evaluated when it moves).
    pub(super) records_changed: u64,
    /// What the last agreement evaluation saw: (checksum, records_changed).
    evaluated: Option<(u64, u64)>,
    /// Checksum mismatches on pings and acks: in this probe period (mismatches, matches), the
    /// consecutive periods of mismatch only, and the last peer that disagreed.
    period_mismatches: u32,
    period_matches: u32,
    mismatch_periods: u32,
    checksum_at_period: u64,
}

impl<A: Address> Node<A> {
    // ---------------------------------------------------------------- queries

    /// The membership checksum: a hash of the name, incarnation and state of every alive or
    /// suspect member, this node included (equal on nodes that see the same members).
    pub fn checksum(&self) -> u64 {
        let l = &self.local;
        let own = if l.state.is_active() {
            view_hash(l.name.as_bytes(), l.incarnation, l.state)
        } else {
            0
        };
        self.members.view_sum().wrapping_add(own)
    }

    /// This node's view: checksum, members, whether it is stable, and the leader.
    pub fn view(&self) -> View {
        View {
            checksum: self.checksum(),
            members: self.view_members(),
            stable: self.view.stable == Some(self.checksum()),
            leader: self.leader().cloned(),
        }
    }

    /// Whether every member of this node's view advertises this node's checksum right now (no
    /// settle time; see [`View::stable`]).
    pub fn cluster_consistent(&self) -> bool {
        let mine = self.checksum();
        self.node_versions().iter().all(|(_, c)| *c == Some(mine))
    }

    /// Each member of the view (this node included, name order) with the checksum it
    /// advertises, if any has arrived.
    pub fn node_versions(&self) -> Vec<(NodeName, Option<u64>)> {
        self.view_members()
            .into_iter()
            .map(|n| {
                let c = if n == self.local.name {
                    self.view.advertised
                } else {
                    self.advertised_view(n.as_str()).map(|(c, _)| c)
                };
                (n, c)
            })
            .collect()
    }

    /// The leader: the last stable view's member with the lowest `(rank, name)`, while it is
    /// still alive or suspect in this node's view. Not a lease: see `docs/protocol.md` §11.4.
    pub fn leader(&self) -> Option<&NodeName> {
        self.view.leader.as_ref()
    }

    /// Whether this node is the leader.
    pub fn is_leader(&self) -> bool {
        self.view.leader.as_ref() == Some(&self.local.name)
    }

    fn view_members(&self) -> Vec<NodeName> {
        let mut v: Vec<NodeName> = self
            .members
            .iter()
            .filter(|e| e.member.state.is_active())
            .map(|e| e.member.name.clone())
            .collect();
        if self.local.state.is_active() {
            v.push(self.local.name.clone());
        }
        v.sort();
        v
    }

    /// The `(checksum, rank)` member `name` advertises.
    fn advertised_view(&self, name: &str) -> Option<(u64, u64)> {
        let e = self.state.get(VIEW_STATE_TYPE, name)?;
        let v = e.value.as_deref()?;
        let checksum = u64::from_le_bytes(v.get(..8)?.try_into().ok()?);
        let rank = u64::from_le_bytes(v.get(8..16)?.try_into().ok()?);
        Some((checksum, rank))
    }

    // ---------------------------------------------------------------- checksums on pings

    /// A checksum heard on a ping or ack from `peer`.
    pub(super) fn observe_checksum(&mut self, peer: A, checksum: u32) {
        let agreed = checksum == crate::wire::short_checksum(self.checksum());
        self.sync.last_checksum_agreed = Some(agreed); // issue 12: push-pull checksum first
        if agreed {
            self.view.period_matches += 1;
        } else {
            self.view.period_mismatches += 1;
            self.checksum_peer = Some(peer);
        }
    }

    /// End of a probe period: a view that disagreed with every peer heard for
    /// `checksum_sync_periods` periods while it did not change itself is repaired by a
    /// push-pull with the last peer that disagreed.
    fn check_checksum_mismatch(&mut self, out: &mut Vec<Output<A>>) {
        let k = self.config.view.checksum_sync_periods;
        let mine = self.checksum();
        let t = &mut self.view;
        let persistent =
            t.period_mismatches > 0 && t.period_matches == 0 && mine == t.checksum_at_period;
        t.mismatch_periods = if persistent {
            t.mismatch_periods.saturating_add(1)
        } else {
            0
        };
        t.period_mismatches = 0;
        t.period_matches = 0;
        t.checksum_at_period = mine;
        if k == 0 || t.mismatch_periods < k {
            return;
        }
        t.mismatch_periods = 0;
        if let Some(peer) = self.checksum_peer.take() {
            self.stats.checksum_syncs += 1;
            self.send_push_pull(peer, false, false, out);
        }
    }

    // ---------------------------------------------------------------- stability and leader

    /// Once per probe period: checksum mismatches, `ViewChanged`, advertising, stability and
    /// the leader.
    pub(super) fn on_view_period(&mut self, out: &mut Vec<Output<A>>) {
        self.check_checksum_mismatch(out);
        let now = self.now;
        let cs = self.checksum();
        if cs != self.view.last {
            self.view.last = cs;
            self.view.settled_once = false;
            self.view.agree_since = None;
            self.view.stable = None;
            let members = self.members.active() + usize::from(self.local.state.is_active());
            out.push(Output::Event(Event::ViewChanged {
                checksum: cs,
                members,
            }));
        } else if !self.view.settled_once {
            self.view.settled_once = true;
        } else if self.config.view.advertise
            && self.view.advertised != Some(cs)
            && self.local.state.is_active()
        {
            self.advertise_view(cs, out);
        }
        self.refresh_leader(out);
        if !self.config.view.advertise || self.view.stable == Some(cs) {
            return;
        }
        let stamp = (cs, self.view.records_changed);
        if self.view.evaluated != Some(stamp) {
            self.view.evaluated = Some(stamp);
            let agree = self.view.advertised == Some(cs) && self.cluster_consistent();
            self.view.agree_since = if agree {
                self.view.agree_since.or(Some(now))
            } else {
                None
            };
        }
        if let Some(since) = self.view.agree_since
            && now.saturating_duration_since(since) >= self.config.view.settle
        {
            self.view.stable = Some(cs);
            let members = self.view_members();
            let leader = members
                .iter()
                .map(|n| {
                    let rank = if *n == self.local.name {
                        self.config.view.rank
                    } else {
                        self.advertised_view(n.as_str())
                            .map_or(u64::MAX, |(_, r)| r)
                    };
                    (rank, n)
                })
                .min()
                .map(|(_, n)| n.clone());
            self.view.stable_leader = leader;
            out.push(Output::Event(Event::ViewStable {
                checksum: cs,
                members,
            }));
            self.refresh_leader(out);
        }
    }

    /// The leader is the last stable view's, while it is still a member here.
    fn refresh_leader(&mut self, out: &mut Vec<Output<A>>) {
        let leader = self.view.stable_leader.clone().filter(|l| {
            *l == self.local.name && self.local.state.is_active()
                || self
                    .members
                    .get(l.as_str())
                    .is_some_and(|e| e.member.state.is_active())
        });
        if leader != self.view.leader {
            self.view.leader = leader.clone();
            out.push(Output::Event(Event::LeaderChanged { leader }));
        }
    }

    /// Writes this node's `(checksum, rank)` under `swim.view/<name>`.
    fn advertise_view(&mut self, cs: u64, out: &mut Vec<Output<A>>) {
        let mut value = Vec::with_capacity(16);
        value.extend_from_slice(&cs.to_le_bytes());
        value.extend_from_slice(&self.config.view.rank.to_le_bytes());
        let name = self.local.name.clone();
        let cfg = &self.config.state;
        if self
            .state
            .check_room(cfg, VIEW_STATE_TYPE, name.as_str(), value.len())
            .is_err()
        {
            self.stats.state.rejected_full += 1;
            return;
        }
        let ttl = cfg.tombstone_ttl;
        let value: Arc<[u8]> = value.into();
        self.state.write_local(
            &name,
            VIEW_STATE_TYPE,
            name.as_str(),
            Some(value),
            self.now,
            ttl,
        );
        self.view.advertised = Some(cs);
        self.view.records_changed += 1;
        self.spread_entry(
            crate::state::StateKey::new(VIEW_STATE_TYPE, name.as_str()),
            out,
        );
    }
}
