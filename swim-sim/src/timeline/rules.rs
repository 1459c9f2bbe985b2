//! Live fault rules (issue 14) in the simulator: a `rules` fault applies the agent's
//! [`FaultRule`] list as one node would to its own traffic (`docs/driver.md`, "Interposition
//! and live partitions"): a partition cuts both directions of each link between the node and
//! the members named (datagrams and streams), loss sets link loss on datagrams. Delay rules are
//! refused when the scenario is checked.

use swim_proto::fault_rule::FaultRule;

use crate::scenario::NodeId;
use crate::world::World;

/// What a `rules` fault changed: links cut, and link losses with the rate each had before.
#[derive(Clone, Debug, Default)]
pub(crate) struct Applied {
    cut: Vec<(NodeId, NodeId)>,
    loss: Vec<(NodeId, NodeId, f64)>,
}

/// The node a rule's member names: `node-N` or `N`, within `0..nodes`.
pub(crate) fn rule_member(m: &str, nodes: usize) -> Option<NodeId> {
    let id: NodeId = m.strip_prefix("node-").unwrap_or(m).parse().ok()?;
    ((id as usize) < nodes).then_some(id)
}

/// Applies `rules` at node `v`; returns what to undo.
pub(crate) fn apply(w: &mut World, v: NodeId, rules: &[FaultRule]) -> Applied {
    let n = w.len() as NodeId;
    let mut a = Applied::default();
    for rule in rules {
        for o in (0..n).filter(|&o| o != v) {
            let name = w.name(o).as_str().to_string();
            let addr = o.to_string();
            for (outgoing, from, to) in [(true, v, o), (false, o, v)] {
                if !rule.applies(Some(&name), &addr, outgoing) {
                    continue;
                }
                match rule {
                    FaultRule::Partition { .. } => {
                        w.cut(from, to);
                        a.cut.push((from, to));
                    }
                    FaultRule::Loss { rate, .. } => {
                        a.loss.push((from, to, w.link_loss(from, to)));
                        w.set_link_loss(from, to, *rate);
                    }
                    _ => {}
                }
            }
        }
    }
    a
}

/// Undoes [`apply`]: links uncut, link losses back to their earlier rates (latest first).
pub(crate) fn undo(w: &mut World, a: Applied) {
    for (from, to) in a.cut {
        w.uncut(from, to);
    }
    for (from, to, before) in a.loss.into_iter().rev() {
        w.set_link_loss(from, to, before);
    }
}
