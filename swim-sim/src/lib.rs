//! A seeded discrete-event simulator for `swim-proto` clusters of 1,000 to 10,000 nodes.
//!
//! It drives real [`swim_proto::Node`]s (no protocol logic here) over a simulated network with
//! delay, loss, duplication, reordering, an MTU and partitions, and injects node faults:
//! crashes, restarts, pauses, slow nodes, clock skew, leaves and late joins. One `u64` seed
//! derives every random choice, so a seed reproduces a run exactly. Safety invariants are
//! checked after every step and liveness (convergence) after the faults stop; the first
//! violation stops the run and names the seed and time.
//!
//! A [`World`] is the event loop (nodes, network, virtual clock) that you can step and hit
//! with faults; a scenario run is a timeline driving one:
//!
//! ```
//! use swim_sim::{RunOptions, ScenarioBuilder, run};
//!
//! let scenario = ScenarioBuilder::new(20).seconds(90).crash(30.0, 7).build();
//! let report = run(&scenario, 42, RunOptions::default());
//! assert_eq!(report.violation, None);
//! assert_eq!(report.detection.undetected, 0);
//! assert_eq!(report.detection.all_dead_ms.count, 19);
//! ```

pub mod adversary;
pub mod compare;
pub mod html;
pub mod invariants;
mod metrics;
mod net;
pub mod report;
pub mod run_info;
pub mod scenario;
mod timeline;
pub mod trace_file;
mod workload;
mod world;

pub use invariants::Violation;
pub use report::Report;
pub use scenario::{
    Fault, FaultKind, Knobs, NetworkSpec, RestartMode, Scenario, ScenarioBuilder, Start,
    StateWorkload, TimedFault, UserEvents,
};
pub use timeline::{Progress, RunOptions, run};
pub use world::{Happening, Life, LossId, Observed, PartitionId, Traffic, World, derive_seed};
