//! An in-memory cluster harness for `swim-proto`: virtual time, network queues as data.
//!
//! Every node is a real [`Node`]; the "network" is a priority queue of deliveries ordered by
//! (time, sequence). One seed drives every random choice (latency, loss, node seeds), so a
//! run is reproducible from its seed. Faults are edits to that queue: loss, cut links,
//! crashed nodes. This is the test-tier harness; the full simulator is `swim-sim`.

pub mod fuzz;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use swim_proto::{
    Command, Config, Event, Identity, Input, Instant, MemberState, Node, NodeName, Output,
};

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

enum Action {
    Deliver { to: Addr, input: Input<Addr> },
    Tick { to: Addr },
}

struct Scheduled {
    at: Instant,
    seq: u64,
    action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest first.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

struct Slot {
    node: Option<Node<Addr>>,
    name: String,
    tick_at: Option<Instant>,
    incarnations: u64,
}

/// A cluster of nodes on a simulated network.
pub struct Cluster {
    config: Config,
    slots: Vec<Slot>,
    now: Instant,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    rng: ChaCha8Rng,
    seed: u64,
    /// Probability that a datagram is lost (streams are reliable).
    pub loss: f64,
    /// Minimum one-way delay.
    pub latency: Duration,
    /// Uniform extra delay on top of `latency`.
    pub jitter: Duration,
    cut: BTreeSet<(Addr, Addr)>,
    /// Everything every node reported, in order.
    pub log: Vec<Observed>,
    hasher: DefaultHasher,
    /// Datagrams sent, all nodes together.
    pub datagrams: u64,
    out: Vec<Output<Addr>>,
    /// Per-node configs that differ from the cluster's.
    overrides: BTreeMap<Addr, Config>,
}

impl Cluster {
    /// `n` nodes named `node-0..`, at addresses `0..n`, not yet joined, all from one seed.
    pub fn new(n: usize, config: Config, seed: u64) -> Self {
        let mut c = Cluster {
            config,
            slots: Vec::new(),
            now: Instant::ZERO,
            queue: BinaryHeap::new(),
            seq: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            loss: 0.0,
            latency: Duration::from_millis(1),
            jitter: Duration::from_millis(2),
            cut: BTreeSet::new(),
            log: Vec::new(),
            hasher: DefaultHasher::new(),
            datagrams: 0,
            out: Vec::new(),
            overrides: BTreeMap::new(),
        };
        for i in 0..n {
            c.slots.push(Slot {
                node: None,
                name: format!("node-{i}"),
                tick_at: None,
                incarnations: 0,
            });
            c.boot(i as Addr);
        }
        c
    }

    /// The seed this cluster was built from (print it when a test fails).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Gives node `addr` its own config and boots it afresh with it (before it joins).
    pub fn configure(&mut self, addr: Addr, config: Config) {
        self.overrides.insert(addr, config);
        self.boot(addr);
    }

    fn boot(&mut self, addr: Addr) {
        let seed = self.rng.next_u64();
        let config = self.overrides.get(&addr).unwrap_or(&self.config).clone();
        let slot = &mut self.slots[addr as usize];
        slot.incarnations += 1;
        let id = Identity::new(NodeName::new(&slot.name).unwrap(), addr);
        slot.node = Some(Node::new(config, id, seed).expect("valid config"));
        slot.tick_at = None;
        self.schedule(self.now, Action::Tick { to: addr });
    }

    fn schedule(&mut self, at: Instant, action: Action) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            action,
        });
    }

    /// Current simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Number of slots (running or not).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The node at `addr`, if running.
    pub fn node(&self, addr: Addr) -> Option<&Node<Addr>> {
        self.slots[addr as usize].node.as_ref()
    }

    /// Name of the node at `addr`.
    pub fn name(&self, addr: Addr) -> &str {
        &self.slots[addr as usize].name
    }

    /// Addresses of running nodes that have not left.
    pub fn running(&self) -> Vec<Addr> {
        (0..self.slots.len() as Addr)
            .filter(|&a| {
                self.node(a)
                    .is_some_and(|n| n.local().state == MemberState::Alive)
            })
            .collect()
    }

    /// Feeds an input to a node now, as the driver would.
    pub fn input(&mut self, addr: Addr, input: Input<Addr>) {
        self.deliver(addr, input);
    }

    /// Every node but `seed` joins through `seed`, each at a random moment within `spread`.
    pub fn join_all_via(&mut self, seed: Addr, spread: Duration) {
        for a in 0..self.slots.len() as Addr {
            if a != seed {
                let at = self.now + random_duration(&mut self.rng, spread);
                let input = Input::Command(Command::Join { seeds: vec![seed] });
                self.schedule(at, Action::Deliver { to: a, input });
            }
        }
    }

    /// Stops a node abruptly: no leave, no more packets.
    pub fn crash(&mut self, addr: Addr) {
        self.slots[addr as usize].node = None;
    }

    /// Starts a crashed (or running) node afresh under the same name and address, and joins
    /// it through `seed`.
    pub fn restart(&mut self, addr: Addr, seed: Addr) {
        self.boot(addr);
        let input = Input::Command(Command::Join { seeds: vec![seed] });
        self.schedule(self.now, Action::Deliver { to: addr, input });
    }

    /// Cuts both directions between `addr` and every other node.
    pub fn isolate(&mut self, addr: Addr) {
        for b in 0..self.slots.len() as Addr {
            if b != addr {
                self.cut.insert((addr, b));
                self.cut.insert((b, addr));
            }
        }
    }

    /// Cuts one direction of one link.
    pub fn cut(&mut self, from: Addr, to: Addr) {
        self.cut.insert((from, to));
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Runs until `deadline`.
    pub fn run_until(&mut self, deadline: Instant) {
        while let Some(next) = self.queue.peek() {
            if next.at > deadline {
                break;
            }
            let s = self.queue.pop().expect("peeked");
            self.now = s.at;
            match s.action {
                Action::Deliver { to, input } => self.deliver(to, input),
                Action::Tick { to } => {
                    if self.slots[to as usize].tick_at == Some(s.at) {
                        self.slots[to as usize].tick_at = None;
                    }
                    self.deliver(to, Input::Tick);
                }
            }
        }
        self.now = deadline;
    }

    /// Runs for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs in steps of `step` until `done` holds or `limit` passes; returns whether it held.
    pub fn run_until_true(
        &mut self,
        limit: Duration,
        step: Duration,
        mut done: impl FnMut(&Cluster) -> bool,
    ) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.run_for(step);
        }
        done(self)
    }

    fn deliver(&mut self, to: Addr, input: Input<Addr>) {
        let now = self.now;
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        {
            let Some(node) = self.slots[to as usize].node.as_mut() else {
                return;
            };
            node.handle_into(input, now, &mut out);
            node.check_invariants();
        }
        for o in out.drain(..) {
            match o {
                Output::SendDatagram { to: dst, bytes } => {
                    self.datagrams += 1;
                    bytes.hash(&mut self.hasher);
                    if self.rng.next_u64() as f64 / u64::MAX as f64 >= self.loss {
                        self.send(to, dst, Input::Datagram { from: to, bytes });
                    }
                }
                Output::SendStream { to: dst, bytes } => {
                    bytes.hash(&mut self.hasher);
                    self.send(to, dst, Input::Stream { from: to, bytes });
                }
                Output::TickAt(at) => {
                    let slot = &mut self.slots[to as usize];
                    if slot.tick_at.is_none_or(|t| at < t) {
                        slot.tick_at = Some(at);
                        self.schedule(at.max(now), Action::Tick { to });
                    }
                }
                Output::Event(event) => {
                    format!("{event:?}").hash(&mut self.hasher);
                    self.log.push(Observed {
                        at: now,
                        observer: to,
                        event,
                    });
                }
                other => panic!("unexpected output {other:?}"),
            }
        }
        self.out = out;
    }

    fn send(&mut self, from: Addr, to: Addr, input: Input<Addr>) {
        if to as usize >= self.slots.len() || self.cut.contains(&(from, to)) {
            return;
        }
        let delay = self.latency + random_duration(&mut self.rng, self.jitter);
        self.schedule(self.now + delay, Action::Deliver { to, input });
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

    /// Hash of every datagram, stream message and event emitted so far, in order.
    pub fn output_hash(&self) -> u64 {
        self.hasher.clone().finish()
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
