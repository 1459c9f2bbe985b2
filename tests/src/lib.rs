//! An in-memory cluster harness for `swim-proto`: a thin layer over [`swim_sim::World`]
//! (virtual time, network queues as data, one event loop for the whole workspace).
//!
//! Every node is a real [`Node`]; one seed drives every random choice (latency, loss, node
//! seeds), so a run is reproducible from its seed. Faults are calls on the world: loss, cut
//! links, crashed nodes. Every node's `check_invariants` and the world's per-step invariants
//! run after every step; a broken one panics with the seed. This is the test-tier harness;
//! `swim-sim` runs whole scenarios on the same world.

pub mod fuzz;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use swim_proto::{Command, Config, Event, Input, Instant, MemberState, Node};
use swim_sim::{Happening, NetworkSpec, World};

/// Node addresses in the harness are indices.
pub type Addr = u32;

/// One thing a node reported, with when and who.
#[derive(Clone, Debug)]
pub struct Observed {
    /// Simulated time of the report.
    pub at: Instant,
    /// The node that reported it.
    pub observer: Addr,
    /// What it reported.
    pub event: Event<Addr>,
}

/// A cluster of nodes on a simulated network.
pub struct Cluster {
    world: World,
    /// Draws the join moments of [`Cluster::join_all_via`].
    rng: ChaCha8Rng,
    /// Probability that a datagram is lost (streams are reliable).
    pub loss: f64,
    /// Minimum one-way delay.
    pub latency: Duration,
    /// Uniform extra delay on top of `latency`.
    pub jitter: Duration,
    /// Everything every node reported, in order.
    pub log: Vec<Observed>,
}

impl Cluster {
    /// `n` nodes with `config`, joined through node 0 over one second and run until every node
    /// knows every other (at most 120 simulated seconds; panics naming the seed otherwise).
    pub fn joined(n: usize, config: Config, seed: u64) -> Self {
        let mut c = Cluster::new(n, config, seed);
        c.join_all_via(0, Duration::from_secs(1));
        let ok = c.run_until_true(
            Duration::from_secs(120),
            Duration::from_millis(500),
            Cluster::converged,
        );
        assert!(ok, "seed {seed}: {n} nodes did not converge within 120 s");
        c
    }

    /// `n` nodes named `node-0..`, at addresses `0..n`, not yet joined, all from one seed.
    pub fn new(n: usize, config: Config, seed: u64) -> Self {
        // No MTU: the nodes' own `max_packet_size` is the only size limit here.
        let spec = NetworkSpec {
            mtu: usize::MAX,
            ..NetworkSpec::default()
        };
        let mut world = World::new(n, config, spec.clone(), seed);
        world.check_every_step(true);
        world.enable_digest();
        for v in 0..n as Addr {
            world.boot(v);
        }
        let mut c = Cluster {
            world,
            rng: ChaCha8Rng::seed_from_u64(seed),
            loss: spec.loss,
            latency: spec.base_delay,
            jitter: spec.jitter,
            log: Vec::new(),
        };
        c.collect();
        c
    }

    /// The seed this cluster was built from (print it when a test fails).
    pub fn seed(&self) -> u64 {
        self.world.seed()
    }

    /// The world underneath, for faults and queries the harness does not wrap.
    pub fn world(&mut self) -> &mut World {
        &mut self.world
    }

    /// Gives node `addr` its own config and boots it afresh with it (before it joins).
    pub fn configure(&mut self, addr: Addr, config: Config) {
        self.world.set_config(addr, config);
        self.world.boot(addr);
        self.collect();
    }

    /// Current simulated time.
    pub fn now(&self) -> Instant {
        self.world.now()
    }

    /// Number of slots (running or not).
    pub fn len(&self) -> usize {
        self.world.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.world.is_empty()
    }

    /// The node at `addr`, if running.
    pub fn node(&self, addr: Addr) -> Option<&Node<Addr>> {
        self.world.node(addr)
    }

    /// Name of the node at `addr`.
    pub fn name(&self, addr: Addr) -> &str {
        self.world.name(addr).as_str()
    }

    /// Addresses of running nodes that have not left.
    pub fn running(&self) -> Vec<Addr> {
        (0..self.len() as Addr)
            .filter(|&a| {
                self.node(a)
                    .is_some_and(|n| n.local().state == MemberState::Alive)
            })
            .collect()
    }

    /// Datagrams sent, all nodes together.
    pub fn datagrams(&self) -> u64 {
        self.world.all_traffic().iter().map(|t| t.datagrams).sum()
    }

    /// Feeds an input to a node now, as the driver would.
    pub fn input(&mut self, addr: Addr, input: Input<Addr>) {
        self.sync_network();
        self.world.input(addr, input);
        self.collect();
    }

    /// Every node but `seed` joins through `seed`, each at a random moment within `spread`.
    pub fn join_all_via(&mut self, seed: Addr, spread: Duration) {
        for a in 0..self.len() as Addr {
            if a != seed {
                let at = self.now() + random_duration(&mut self.rng, spread);
                let input = Input::Command(Command::Join { seeds: vec![seed] });
                self.world.input_at(at, a, input);
            }
        }
    }

    /// Stops a node abruptly: no leave, no more packets.
    pub fn crash(&mut self, addr: Addr) {
        self.world.crash(addr);
        self.collect();
    }

    /// Starts a crashed (or running) node afresh under the same name and address, and joins
    /// it through `seed`.
    pub fn restart(&mut self, addr: Addr, seed: Addr) {
        self.world.boot(addr);
        let input = Input::Command(Command::Join { seeds: vec![seed] });
        self.world.input_at(self.now(), addr, input);
        self.collect();
    }

    /// Cuts both directions between `addr` and every other node.
    pub fn isolate(&mut self, addr: Addr) {
        self.world.isolate(addr);
    }

    /// Cuts one direction of one link.
    pub fn cut(&mut self, from: Addr, to: Addr) {
        self.world.cut(from, to);
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.world.repair_all();
    }

    /// Runs until `deadline`.
    pub fn run_until(&mut self, deadline: Instant) {
        self.sync_network();
        self.world.run_until(deadline);
        self.collect();
    }

    /// Runs for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now() + d);
    }

    /// Runs in steps of `step` until `done` holds or `limit` passes; returns whether it held.
    pub fn run_until_true(
        &mut self,
        limit: Duration,
        step: Duration,
        mut done: impl FnMut(&Cluster) -> bool,
    ) -> bool {
        let end = self.now() + limit;
        while self.now() < end {
            if done(self) {
                return true;
            }
            self.run_for(step);
        }
        done(self)
    }

    /// Hands the public network knobs to the world.
    fn sync_network(&mut self) {
        self.world.set_loss(self.loss);
        self.world.set_delay(self.latency, self.jitter);
    }

    /// Moves the world's observations into the log; panics on a broken invariant.
    fn collect(&mut self) {
        for o in self.world.drain_observed() {
            if let Happening::Event(event) = o.what {
                self.log.push(Observed {
                    at: o.at,
                    observer: o.node,
                    event,
                });
            }
        }
        if let Some((at, v)) = self.world.violation() {
            panic!("seed {} at {at}: invariant violated: {v}", self.seed());
        }
    }

    /// Names of the members `addr` holds alive or suspect, itself included.
    pub fn live_view(&self, addr: Addr) -> BTreeSet<String> {
        let Some(n) = self.node(addr) else {
            return BTreeSet::new();
        };
        let mut v: BTreeSet<String> = n
            .members()
            .filter(|m| m.state.is_active())
            .map(|m| m.name.to_string())
            .collect();
        if n.local().state == MemberState::Alive {
            v.insert(n.local().name.to_string());
        }
        v
    }

    /// Names of running nodes that have not left.
    pub fn true_live_set(&self) -> BTreeSet<String> {
        self.running()
            .iter()
            .map(|&a| self.name(a).to_string())
            .collect()
    }

    /// Whether every running node's live view equals the true live set.
    pub fn converged(&self) -> bool {
        let truth = self.true_live_set();
        self.running().iter().all(|&a| self.live_view(a) == truth)
    }

    /// State each running node holds about `name`.
    pub fn states_of(&self, name: &str) -> BTreeMap<Addr, Option<MemberState>> {
        self.running()
            .into_iter()
            .filter(|&a| self.name(a) != name)
            .map(|a| {
                (
                    a,
                    self.node(a).and_then(|n| n.member(name)).map(|m| m.state),
                )
            })
            .collect()
    }

    /// Count of logged events matching `pred`.
    pub fn count_events(&self, pred: impl Fn(&Observed) -> bool) -> usize {
        self.log.iter().filter(|o| pred(o)).count()
    }

    /// Hash of every output (datagrams, stream messages, events, ticks) of every node so far,
    /// in order.
    pub fn output_hash(&self) -> u64 {
        self.world
            .output_digest()
            .expect("the harness enables the digest")
    }
}

fn random_duration(rng: &mut ChaCha8Rng, max: Duration) -> Duration {
    let nanos = max.as_nanos() as u64;
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rng.next_u64() % nanos)
}

/// Names of the members in events of one kind about `name`.
pub fn is_failed_about(o: &Observed, name: &str) -> bool {
    matches!(&o.event, Event::MemberFailed(m) if m.name.as_str() == name)
}

/// Whether an event is a suspicion about `name`.
pub fn is_suspected_about(o: &Observed, name: &str) -> bool {
    matches!(&o.event, Event::MemberSuspected { member, .. } if member.name.as_str() == name)
}
