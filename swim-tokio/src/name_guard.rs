//! Refusing a duplicate node name (issue 15): a node that, while joining, receives a join
//! answer (a push-pull reply) holding its own name alive at another address stops before the core sees it, so it never
//! refutes (which would fight the running owner of the name for it), and
//! [`Cluster::stopped`] reports [`Error::NameTaken`]. The agent exits with that error.
//!
//! Only push-pull replies received after contacting seeds and before the first join completes
//! are inspected (one decode each); afterwards the core's address-conflict rule (`docs/security.md`) protects the
//! cluster. A restart at the same address is not a conflict. No protocol logic lives here.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use swim_proto::wire::{self, StreamKind, Update};

use crate::driver::Driver;
use crate::error::Error;
use crate::handle::Cluster;

/// Where the node task records that its name is taken (shared with the handles).
pub(crate) type Taken = Arc<Mutex<Option<SocketAddr>>>;

/// The guard's state on the node task.
#[derive(Default)]
pub(crate) struct NameGuard {
    /// Set at `JoinCompleted`: the guard is off from then on.
    pub joined: bool,
    pub taken: Taken,
}

impl Driver {
    /// Whether a received stream message shows this node's name alive at another address
    /// while the node is joining; if so the conflict is recorded and logged.
    pub(crate) fn name_taken(&mut self, bytes: &[u8]) -> bool {
        // Only a node that is joining (it contacted seeds, no join completed yet) checks.
        if self.name_guard.joined || self.node.stats().join_attempts == 0 {
            return false;
        }
        let label = self.node.config().cluster_label.as_bytes();
        let plain;
        let m = match self.node.keyring() {
            Some(k) => match k.decrypt_packet(bytes, label) {
                Ok(p) => {
                    plain = p;
                    wire::decode_stream_payload::<SocketAddr>(&plain)
                }
                Err(_) => return false,
            },
            None => wire::decode_stream::<SocketAddr>(bytes, label),
        };
        let Ok(m) = m else { return false };
        // The answer to our join; a join request from another node carries its own claims.
        if !matches!(m.header.kind, StreamKind::PushPull { reply: true, .. }) {
            return false;
        }
        let local = self.node.local();
        let other = m.updates.iter().find_map(|u| match u {
            Update::Alive { name, addr, .. }
                if *name == local.name.as_str() && *addr != local.addr =>
            {
                Some(*addr)
            }
            _ => None,
        });
        let Some(other) = other else { return false };
        tracing::error!(
            name = local.name.as_str(),
            %other,
            "node name already alive at another address; stopping (choose another name)"
        );
        *self.name_guard.taken.lock().expect("name guard lock") = Some(other);
        true
    }
}

impl Cluster {
    /// Waits until the node task has stopped and says why: [`Error::NameTaken`] when it
    /// refused to join under a name already alive at another address, [`Error::Shutdown`]
    /// otherwise (after [`Cluster::shutdown`], or the runtime is gone).
    pub async fn stopped(&self) -> Error {
        let mut events = self.subscribe();
        while events.recv().await.is_some() {}
        match *self.name_taken_slot().lock().expect("name guard lock") {
            Some(addr) => Error::NameTaken {
                name: self.name().to_string(),
                addr,
            },
            None => Error::Shutdown,
        }
    }
}
