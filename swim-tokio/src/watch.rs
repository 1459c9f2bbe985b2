//! Per-member watches on the [`Cluster`] handle (Partisan's `on_up` / `on_down`): a stream of
//! one member's transitions between up (alive or suspect) and down (failed, left or removed),
//! each reported once. Built on the event stream; no protocol logic lives here.

use std::net::SocketAddr;

use swim_proto::{Event, Member};

use crate::error::Error;
use crate::events::{ClusterEvent, Events};
use crate::handle::Cluster;

/// One transition of a watched member.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transition {
    /// The member became reachable: it joined, came back after a failure, or rejoined after
    /// leaving (a suspicion that is refuted is not a transition: a suspect is still up).
    Up(Member<SocketAddr>),
    /// The member went down: declared failed, left, or was removed by an operator.
    Down(Member<SocketAddr>),
}

/// The transitions of one member, from [`Cluster::watch`]. Ends when the node stops.
pub struct MemberWatch {
    cluster: Cluster,
    events: Events,
    name: String,
    up: bool,
}

impl std::fmt::Debug for MemberWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberWatch")
            .field("name", &self.name)
            .field("up", &self.up)
            .finish_non_exhaustive()
    }
}

impl MemberWatch {
    /// Whether the member is up as far as this watch has reported.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// The next transition, or `None` once the node has stopped. A watch that fell more than
    /// `event_buffer` events behind re-reads the member table and reports the transition it
    /// missed, if the member's state differs from the last one reported.
    pub async fn recv(&mut self) -> Option<Transition> {
        loop {
            let event = match self.events.recv().await? {
                ClusterEvent::Event(e) => e.event,
                ClusterEvent::Lagged(_) => {
                    let name = self.name.clone();
                    let now = self
                        .cluster
                        .inspect(move |n| n.member(&name).cloned())
                        .await
                        .ok()?;
                    match now {
                        Some(m) if m.state.is_active() != self.up => return Some(self.flip(m)),
                        _ => continue,
                    }
                }
            };
            let (m, up) = match event {
                Event::MemberJoined(m) | Event::MemberAlive(m) | Event::MemberUpdated(m) => {
                    (m, true)
                }
                Event::MemberSuspected { member, .. } => (member, true),
                Event::MemberFailed(m) | Event::MemberLeft(m) | Event::MemberRemoved(m) => {
                    (m, false)
                }
                _ => continue,
            };
            if m.name.as_str() == self.name && up != self.up {
                return Some(self.flip(m));
            }
        }
    }

    fn flip(&mut self, m: Member<SocketAddr>) -> Transition {
        self.up = m.state.is_active();
        if self.up {
            Transition::Up(m)
        } else {
            Transition::Down(m)
        }
    }
}

impl Cluster {
    /// Watches one member by name: each transition between up and down is reported once
    /// ([`Transition`]); the member's state when the watch starts is the baseline (not
    /// reported; see [`MemberWatch::is_up`]). Watching a name not known yet reports its
    /// join as `Up`.
    pub async fn watch(&self, name: impl Into<String>) -> Result<MemberWatch, Error> {
        let name = name.into();
        let events = self.subscribe();
        let n = name.clone();
        let up = self
            .inspect(move |node| node.member(&n).is_some_and(|m| m.state.is_active()))
            .await?;
        Ok(MemberWatch {
            cluster: self.clone(),
            events,
            name,
            up,
        })
    }
}
