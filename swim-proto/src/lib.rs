//! A sans-IO, deterministic SWIM membership protocol core with Lifeguard's extensions.
//!
//! [`Node`] is a pure state machine: it never reads a clock, touches OS randomness, opens a
//! socket, spawns a thread or opens a file (the crate is `no_std` + `alloc`, and a
//! `clippy.toml` `disallowed-methods` list guards the rest). Time comes in as the `now` of each
//! call, randomness from one `rand_chacha` RNG seeded by the caller, bytes in as [`Input`]s and
//! out as [`Output`]s. The same config, seed and inputs produce the same outputs, byte for byte,
//! so a recorded trace of `(now, input)` replays exactly.
//!
//! # Run loop
//!
//! A driver feeds inputs and carries out outputs. Here two nodes talk over in-memory queues:
//!
//! ```
//! use swim_proto::{Command, Config, Event, Identity, Input, Instant, Node, NodeName, Output};
//!
//! let id = |n: &str, a: u32| Identity::new(NodeName::new(n).unwrap(), a);
//! let mut a = Node::new(Config::local(), id("a", 1), 1).unwrap();
//! let mut b = Node::new(Config::local(), id("b", 2), 2).unwrap();
//! let mut nodes = [&mut a, &mut b];
//!
//! // b joins through a; then both run for five simulated seconds.
//! let mut inbox: Vec<(u32, Input<u32>)> = vec![(2, Input::Command(Command::Join { seeds: vec![1] }))];
//! let mut now = Instant::ZERO;
//! while now < Instant::from_secs(5) {
//!     let mut next = Vec::new();
//!     for (to, input) in inbox.drain(..).chain([(1, Input::Tick), (2, Input::Tick)]) {
//!         let node = &mut nodes[to as usize - 1];
//!         let from = node.local().addr;
//!         for output in node.handle(input, now) {
//!             match output {
//!                 Output::SendDatagram { to, bytes } => next.push((to, Input::Datagram { from, bytes })),
//!                 Output::SendStream { to, bytes } => next.push((to, Input::Stream { from, bytes })),
//!                 Output::Event(Event::MemberJoined(m)) => println!("{from} sees {} join", m.name),
//!                 Output::TickAt(_) | Output::Event(_) => {}
//!                 _ => {}
//!             }
//!         }
//!     }
//!     inbox = next;
//!     now = now + core::time::Duration::from_millis(10);
//! }
//! assert_eq!(nodes[0].cluster_size(), 2);
//! assert_eq!(nodes[1].cluster_size(), 2);
//! ```
//!
//! # Time
//!
//! [`Instant`] is nanoseconds since an epoch the driver picks. Timers live inside the node: it
//! reports the earliest deadline as [`Output::TickAt`] (and [`Node::next_deadline`]); any input
//! at or after it fires what is due, earliest first. A tick at any `now` is idempotent and an
//! early tick is harmless, so no driver can deliver timers out of order.
//!
//! # Errors vs panics
//!
//! - Garbage from the network is never an error: a packet that fails to decode or validate is
//!   dropped whole, counted in [`Stats::dropped`] and reported as [`Event::PacketDropped`]. A
//!   well-formed announcement refused because the member table is full is counted
//!   (`dropped.member_table_full`) without an event.
//! - Misuse of the API returns a typed error: [`ConfigError`] from [`Node::new`],
//!   [`CommandError`] from [`Node::command`] (also reported as [`Event::CommandRejected`] when a
//!   command comes through [`Node::handle`]). A rejected command changes nothing; timers that
//!   were already due still fire first, as on any input.
//! - A broken internal invariant panics, with a message naming it.
//!
//! The error types implement `Display` and `core::error::Error` by hand rather than with
//! `thiserror` (which the drivers use): five small impls do not justify a proc-macro
//! dependency in a `no_std` core whose dependency set is kept small on purpose.
//!
//! # Public surface
//!
//! A driver needs the crate root: [`Node`], [`Config`], [`Input`], [`Output`], [`Event`],
//! [`Command`], [`Instant`] and the types they carry. Three modules are public on purpose, for
//! tools rather than drivers:
//!
//! - [`wire`]: the message codec, for the simulator, tests and fuzz targets that craft and
//!   inspect packets (packet framing and encryption stay inside the crate, `packet`);
//! - [`trace`]: the trace format and output digests, for recording and replaying runs;
//! - [`keyring`]: keys and their rotation, and sealing packets built outside a node.
//!
//! [`duration`] is the serde helper for `"1.5s"`-style durations, public for drivers' own
//! config files. [`fnv1a64`] is the stable hash behind every digest and checksum.
//!
//! # Protocol
//!
//! SWIM (Das, Gupta, Motivala, 2002) with the Lifeguard extensions (Dadgar et al., 2018):
//! randomized round-robin probing (§4.3), ping and ping-req with nacks, suspicion with
//! incarnation numbers and refutation (§4.2) and Lifeguard's dynamic suspicion timeout, local
//! health awareness, piggybacked dissemination (§4.1), push-pull anti-entropy, graceful leave,
//! tombstones. `docs/protocol.md` in the repository has every rule, message and formula.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;
// Tests, and the fuzzing-only `arbitrary` feature (whose derives name `std`), link std.
#[cfg(any(test, feature = "arbitrary"))]
extern crate std;

mod config;
mod decode_error;
mod hash;
mod health;
pub mod histogram;
mod io;
pub mod keyring;
mod member;
mod membership;
mod node;
mod packet;
mod state;
mod stats;
mod time;
pub mod trace;
pub mod wire;
// Live fault injection (issue 14): the rule vocabulary shared by drivers and the simulator.
pub mod fault_rule;

pub use config::{
    Config, ConfigError, JoinConfig, MessagingConfig, StateConfig, StateTypeConfig,
    VIEW_STATE_TYPE, ViewConfig, duration,
};
pub use hash::{Fnv1a64, fnv1a64};
pub use io::{
    Command, CommandError, Event, Identity, Input, JoinFailure, Output, QueryFilter, QueryId,
    StateWrite,
};
pub use keyring::{Keyring, KeyringError, SecretKey};
pub use member::{Member, MemberState, Metadata, NameError, NodeName, overrides};
pub use node::{Address, Node, Status, View};
pub use packet::{
    MAX_DATAGRAM_SIZE, MAX_LABEL_LEN, MAX_NAME_LEN, MAX_STATE_TYPE_LEN, MIN_DATAGRAM_SIZE,
};
pub use state::{ChangeCause, StateEntry, StateError, StateKey, stamp_cmp};
pub use stats::{DropReason, Drops, MessagingStats, PerKind, StateStats, Stats, Timings};
pub use time::Instant;
pub use wire::{DecodeError, MessageKind};

/// Hash map with a hasher seeded from the node's RNG: deterministic for a given seed, not
/// predictable by peers choosing names.
pub(crate) type Map<K, V> = hashbrown::HashMap<K, V, foldhash::fast::FixedState>;
