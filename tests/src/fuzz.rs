//! The bodies of the fuzz targets, one function per target.
//!
//! The libFuzzer binaries in `fuzz/fuzz_targets/` are one-line calls to these functions, and
//! `tests/tests/fuzz_corpus.rs` replays every saved input (the seed corpora in
//! `fuzz/corpus/<target>/` and any crash reproducers in `fuzz/artifacts/<target>/`) through
//! them on stable, so `cargo test` keeps every input the fuzzers ever found interesting.
//!
//! Each function takes the fuzzer's raw bytes and panics only when a property fails; input
//! that runs out early simply ends the case. Structured targets read their input through
//! [`arbitrary::Unstructured`], so every byte string is a valid case.
//!
//! | function | feeds | checks |
//! | --- | --- | --- |
//! | [`decode`] | raw bytes to the datagram and stream decoders | no panic; what decodes re-encodes and decodes equal |
//! | [`roundtrip`] | an arbitrary message, stream header and updates, encoded | decodes equal; a cut or extended packet is rejected |
//! | [`node_inputs`] | up to [`MAX_STEPS`] inputs, raw and crafted, into one node (plaintext or encrypting) | no panic; node invariants after every step |
//! | [`node_inputs_wide`] | the same, into a node whose state store has the production bounds | the same |
//! | [`sim`] | a seed for a small simulated cluster with a random fault mix | no safety violation |

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use swim_proto::keyring::NONCE_LEN;
use swim_proto::wire::{self, Message, StreamHeader, StreamKind, Update};
use swim_proto::{
    Config, Identity, Input, Instant, Keyring, MAX_LABEL_LEN, MemberState, Node, NodeName, Output,
    SecretKey, StateTypeConfig,
};
use swim_sim::{RunOptions, Scenario};

/// Most steps one [`node_inputs`] case runs; the rest of the input is ignored.
pub const MAX_STEPS: usize = 256;

/// Longest simulated run of one [`sim`] case (keeps a case well under a second).
pub const SIM_MAX_DURATION: Duration = Duration::from_secs(600);

// ------------------------------------------------------------------------------------ decode

/// Arbitrary bytes into [`wire::decode_datagram`] and [`wire::decode_stream`] (empty cluster
/// label): neither panics, and whatever decodes re-encodes to bytes that decode equal.
pub fn decode(data: &[u8]) {
    if let Ok(dg) = wire::decode_datagram::<u32>(data, b"") {
        let again = wire::encode_datagram_with_state(b"", &dg.message, &dg.updates, &dg.state);
        let back = wire::decode_datagram::<u32>(&again, b"")
            .unwrap_or_else(|e| panic!("a re-encoded datagram does not decode: {e}"));
        assert_eq!(back, dg, "a datagram changed through re-encoding");
    }
    if let Ok(sm) = wire::decode_stream::<u32>(data, b"") {
        let again = wire::encode_stream_message(b"", &sm);
        let back = wire::decode_stream::<u32>(&again, b"")
            .unwrap_or_else(|e| panic!("a re-encoded stream message does not decode: {e}"));
        assert_eq!(back, sm, "a stream message changed through re-encoding");
    }
}

// --------------------------------------------------------------------------------- roundtrip

/// An arbitrary cluster label, datagram (message and updates) and stream message (header and
/// updates), built from `data`: each encodes and decodes to an equal value, a strict prefix
/// of each (cut where the data says) is rejected, and so is each with one byte appended.
pub fn roundtrip(data: &[u8]) {
    // Running out of input only ends the case early.
    let _ = roundtrip_case(&mut Unstructured::new(data));
}

fn roundtrip_case<'a>(u: &mut Unstructured<'a>) -> arbitrary::Result<()> {
    let label: &[u8] = u.arbitrary()?;
    let label = &label[..label.len().min(MAX_LABEL_LEN)];

    let message: Message<'a, u32> = u.arbitrary()?;
    let updates: Vec<Update<'a, u32>> = u.arbitrary()?;
    let state: Vec<wire::StateUpdate<'a>> = u.arbitrary()?;
    let bytes = wire::encode_datagram_with_state(label, &message, &updates, &state);
    let back = wire::decode_datagram::<u32>(&bytes, label)
        .unwrap_or_else(|e| panic!("an encoded datagram does not decode: {e}"));
    assert_eq!(back.message, message, "datagram message round trip");
    assert_eq!(back.updates, updates, "datagram updates round trip");
    assert_eq!(back.state, state, "datagram state entries round trip");
    assert_framed(&bytes, u, |b| {
        wire::decode_datagram::<u32>(b, label).is_ok()
    })?;

    let header: StreamHeader<'a, u32> = u.arbitrary()?;
    let updates: Vec<Update<'a, u32>> = u.arbitrary()?;
    let sync: wire::StateSync<'a> = u.arbitrary()?;
    let bytes = wire::encode_stream_with_state(label, &header, &updates, &sync);
    let back = wire::decode_stream::<u32>(&bytes, label)
        .unwrap_or_else(|e| panic!("an encoded stream message does not decode: {e}"));
    assert_eq!(back.header, header, "stream header round trip");
    assert_eq!(back.updates, updates, "stream updates round trip");
    let is_state = matches!(header.kind, wire::StreamKind::State { .. });
    assert_eq!(
        back.state,
        is_state.then_some(sync),
        "stream state body round trip"
    );
    assert_framed(&bytes, u, |b| wire::decode_stream::<u32>(b, label).is_ok())
}

/// A packet is exactly its bytes: a strict prefix does not decode, nor does the packet with
/// one more byte.
fn assert_framed(
    bytes: &[u8],
    u: &mut Unstructured<'_>,
    decodes: impl Fn(&[u8]) -> bool,
) -> arbitrary::Result<()> {
    let cut = u.choose_index(bytes.len())?;
    assert!(
        !decodes(&bytes[..cut]),
        "a packet cut to {cut} of its {} bytes still decodes",
        bytes.len()
    );
    let mut longer = bytes.to_vec();
    longer.push(u.arbitrary()?);
    assert!(!decodes(&longer), "a packet with a trailing byte decodes");
    Ok(())
}

// ------------------------------------------------------------------------------- node_inputs

/// Name of the node under test.
const SELF_NAME: &str = "fuzz";
/// Address of the node under test.
const SELF_ADDR: u8 = 0;
/// Names the crafted messages make claims about: the node itself, then a few peers, so that
/// claims collide and exercise the precedence rules.
const NAMES: [&str; 8] = [
    SELF_NAME, "peer-1", "peer-2", "peer-3", "peer-4", "peer-5", "peer-6", "peer-7",
];
/// Sends of the node remembered for [`Stimulus::Answer`], and sequence numbers for [`Seq`].
const RECENT: usize = 16;
/// Most members one [`Stimulus::Flood`] announces: enough to fill the member table at once.
const MAX_FLOOD: u8 = 64;
/// The key an encrypting node starts with.
const KEY: SecretKey = SecretKey::new([0x5a; 32]);

fn name(i: u8) -> &'static str {
    NAMES[usize::from(i) % NAMES.len()]
}

/// One step of a [`node_inputs`] case: time passes, then one input arrives.
#[derive(Debug, Arbitrary)]
struct Step<'a> {
    advance_ms: u16,
    stimulus: Stimulus<'a>,
}

/// What arrives. Raw inputs reach the decoder and the command paths; the crafted ones are
/// well-formed but hostile, so they get past decoding and validation to the membership,
/// refutation, probing and push-pull logic.
#[derive(Debug, Arbitrary)]
enum Stimulus<'a> {
    /// Any input: raw bytes as a datagram or stream, a tick, a command.
    Input(Input<u8>),
    /// A well-formed datagram: a primary message plus claims about [`NAMES`].
    Datagram {
        from: u8,
        message: Primary,
        claims: Vec<Claim<'a>>,
    },
    /// A well-formed push-pull stream message carrying claims about [`NAMES`].
    PushPull {
        from: u8,
        sender: u8,
        join: bool,
        reply: bool,
        claims: Vec<Claim<'a>>,
    },
    /// Up to [`MAX_FLOOD`] alive announcements of fresh names at once, in a gossip datagram
    /// or a push-pull: fills the member table and the broadcast queue past their caps.
    Flood {
        from: u8,
        first: u16,
        count: u8,
        incarnation: u64,
        stream: bool,
    },
    /// What a peer would answer to one of the node's recent sends: an ack (or a nack) for a
    /// ping or ping-req, a push-pull reply for a push-pull; anything else bounces back.
    Answer { pick: u8, nack: bool },
    /// Replicated-state entries about a few types, keys and origins (the node's own name
    /// included): piggybacked on a gossip datagram, or (`sync`) in an anti-entropy message
    /// with watermarks and resets.
    State {
        from: u8,
        entries: Vec<StateClaim<'a>>,
        sync: Option<SyncClaim>,
    },
    // State abuse (issue 13).
    /// An anti-entropy message from up to [`MAX_STATE_FLOOD`] fresh origins (`sflood-N`), each
    /// with one to four entries stamped just above the node's clock: enough, in a few steps, to
    /// pass `max_origins` and `max_entries` with the production bounds of
    /// [`node_inputs_wide`].
    StateFlood {
        from: u8,
        first: u16,
        origins: u16,
        per_origin: u8,
    },
}

/// Most origins in one [`Stimulus::StateFlood`].
const MAX_STATE_FLOOD: u16 = 4_000;
/// [`Stimulus::StateFlood`]'s bound against `node_inputs`' small caps (16 origins).
const SMALL_STATE_FLOOD: u16 = 64;

/// A state entry about [`STATE_TYPES`], [`STATE_KEYS`] and [`NAMES`] as origins.
#[derive(Debug, Arbitrary)]
struct StateClaim<'a> {
    ty: u8,
    key: u8,
    origin: u8,
    version: Incarnation,
    seq: Incarnation,
    value: Option<&'a [u8]>,
}

/// The anti-entropy frame around crafted entries: phase, watermarks, reset types.
#[derive(Debug, Arbitrary)]
struct SyncClaim {
    phase: wire::SyncPhase,
    summary: Option<u64>,
    watermarks: Vec<(u8, u8, Incarnation)>,
    resets: Vec<(u8, Vec<u8>)>,
}

/// State types the crafted entries use.
const STATE_TYPES: [&str; 2] = ["t0", "t1"];
/// Keys the crafted entries use.
const STATE_KEYS: [&str; 4] = ["k0", "k1", "k2", "k3"];

/// The primary message of a crafted datagram.
#[derive(Debug, Arbitrary)]
enum Primary {
    Gossip,
    /// A ping for the node itself, or (`Some`) for another name, with the node's own checksum
    /// or another.
    Ping {
        seq: u32,
        other: Option<u8>,
        checksum: Checksum,
    },
    PingReq {
        seq: u32,
        target: u8,
        target_addr: u8,
        want_nack: bool,
    },
    Ack {
        seq: Seq,
        checksum: Checksum,
    },
    Nack {
        seq: Seq,
    },
}

/// A membership checksum on a crafted ping or ack: the node's own (views agree) or any.
#[derive(Debug, Arbitrary)]
enum Checksum {
    Same,
    Any(u64),
}

/// A sequence number: one the node recently put in a ping or ping-req (so it can match), or
/// any.
#[derive(Debug, Arbitrary)]
enum Seq {
    Recent(u8),
    Any(u32),
}

/// A claim about one of [`NAMES`].
#[derive(Debug, Arbitrary)]
struct Claim<'a> {
    about: u8,
    state: MemberState,
    incarnation: Incarnation,
    addr: u8,
    accuser: u8,
    meta: &'a [u8],
}

/// An incarnation relative to the one the node holds for the member (its own, for itself):
/// equal, one above or below, or any value.
#[derive(Debug, Arbitrary)]
enum Incarnation {
    Held,
    Next,
    Previous,
    Any(u64),
}

impl Incarnation {
    fn resolve(&self, held: u64) -> u64 {
        match self {
            Incarnation::Held => held,
            Incarnation::Next => held.saturating_add(1),
            Incarnation::Previous => held.saturating_sub(1),
            Incarnation::Any(i) => *i,
        }
    }
}

impl<'a> Claim<'a> {
    fn update(&self, node: &Node<u8>) -> Update<'a, u8> {
        let name = name(self.about);
        let held = node.member(name).map_or(0, |m| m.incarnation);
        let incarnation = self.incarnation.resolve(held);
        let addr = self.addr;
        match self.state {
            MemberState::Alive => Update::Alive {
                name,
                incarnation,
                addr,
                meta: self.meta,
            },
            MemberState::Suspect => Update::Suspect {
                name,
                incarnation,
                addr,
                accuser: self::name(self.accuser),
            },
            MemberState::Dead => Update::Dead {
                name,
                incarnation,
                addr,
            },
            // `Left`, and any state added later.
            _ => Update::Left {
                name,
                incarnation,
                addr,
            },
        }
    }
}

/// Something the node sent, kept for [`Stimulus::Answer`].
enum Sent {
    Datagram { to: u8, bytes: Vec<u8> },
    Stream { to: u8, bytes: Vec<u8> },
}

/// One node with small caps, its clock, and what it recently sent.
struct NodeCase {
    node: Node<u8>,
    label: Vec<u8>,
    now: Instant,
    incarnation: u64,
    out: Vec<Output<u8>>,
    sent: VecDeque<Sent>,
    seqs: VecDeque<u32>,
    /// Nonces for the crafted packets an encrypting node receives.
    nonces: u64,
    /// Most fresh origins in one [`Stimulus::StateFlood`]: [`MAX_STATE_FLOOD`] against the
    /// production bounds, [`SMALL_STATE_FLOOD`] against the small caps (whose 16 origins it
    /// passes several times over), so `node_inputs` keeps its speed.
    max_flood: u16,
}

/// An arbitrary node seed and whether the node encrypts (a keyring with one key), then up to
/// [`MAX_STEPS`] steps of (milliseconds to advance, input) into one node with small caps (64
/// members, 32 queued broadcasts, 8 pending relays). An input is either any [`Input`] (raw
/// bytes, ticks, commands, key rotations included) or, as the data decides, a well-formed but
/// hostile one: claims about the node itself (suspect, dead, left, alive elsewhere) at chosen
/// incarnations, claims about a few peers, floods of alive announcements, push-pulls, and
/// acks, nacks and push-pull replies to what the node actually sent. An encrypting node gets
/// the crafted inputs sealed with its current primary key, raw bytes as they are.
///
/// After every step: no panic, [`Node::check_invariants`] holds, the node never holds itself
/// dead, its incarnation never decreases, every datagram and stream it sent decrypts (with one
/// of its keys, when it encrypts) and decodes, and the outputs end with exactly one `TickAt`,
/// later than `now`.
pub fn node_inputs(data: &[u8]) {
    run_node_inputs(data, false);
}

/// [`node_inputs`] with the production bounds of the replicated state (`StateConfig`'s
/// defaults: 100,000 entries, 65,536 origins, 8,192 queued entries), so floods of state
/// origins ([`Stimulus::StateFlood`]) reach the paths where the store is at its bounds
/// (issue 13). Same checks.
pub fn node_inputs_wide(data: &[u8]) {
    run_node_inputs(data, true);
}

fn run_node_inputs(data: &[u8], wide: bool) {
    let mut u = Unstructured::new(data);
    let (Ok(seed), Ok(encrypted)) = (u64::arbitrary(&mut u), bool::arbitrary(&mut u)) else {
        return;
    };
    let mut case = NodeCase::new(seed, encrypted, wide);
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let Ok(step) = Step::arbitrary(&mut u) else {
            break;
        };
        case.step(step);
    }
}

impl NodeCase {
    /// A node with small caps; with `wide`, the state store keeps its production bounds.
    fn new(seed: u64, encrypted: bool, wide: bool) -> Self {
        let mut config = Config::local();
        config.max_members = 64;
        config.max_broadcast_queue = 32;
        config.max_pending_relays = 8;
        if !wide {
            config.state.max_entries = 6;
            config.state.max_queue = 16;
            config.state.max_origins = 16;
        }
        config.state.tombstone_ttl = Duration::from_secs(5);
        config.state.types =
            vec![StateTypeConfig::new("t1").expire_after_origin_failure(Duration::from_secs(2))];
        config.keyring = encrypted.then(|| Keyring::new(KEY));
        let label = config.cluster_label.as_bytes().to_vec();
        let id = Identity::new(NodeName::new(SELF_NAME).expect("valid name"), SELF_ADDR);
        let node = Node::new(config, id, seed).expect("valid config");
        NodeCase {
            incarnation: node.local().incarnation,
            node,
            label,
            now: Instant::ZERO,
            out: Vec::new(),
            sent: VecDeque::new(),
            seqs: VecDeque::new(),
            nonces: 0,
            max_flood: if wide {
                MAX_STATE_FLOOD
            } else {
                SMALL_STATE_FLOOD
            },
        }
    }

    fn step(&mut self, step: Step<'_>) {
        self.now = self.now + Duration::from_millis(u64::from(step.advance_ms));
        let input = self.input(step.stimulus);
        self.out.clear();
        self.node.handle_into(input, self.now, &mut self.out);
        self.check();
        self.remember_sends();
    }

    fn input(&mut self, stimulus: Stimulus<'_>) -> Input<u8> {
        match stimulus {
            Stimulus::Input(input) => input,
            Stimulus::Datagram {
                from,
                message,
                claims,
            } => {
                let message = self.message(&message);
                let updates: Vec<_> = claims.iter().map(|c| c.update(&self.node)).collect();
                let bytes = wire::encode_datagram(&self.label, &message, &updates);
                let bytes = self.seal(bytes);
                Input::Datagram { from, bytes }
            }
            Stimulus::PushPull {
                from,
                sender,
                join,
                reply,
                claims,
            } => {
                let header = StreamHeader {
                    kind: StreamKind::PushPull { join, reply },
                    sender: name(sender),
                    sender_addr: from,
                };
                let updates: Vec<_> = claims.iter().map(|c| c.update(&self.node)).collect();
                let bytes = wire::encode_stream(&self.label, &header, &updates);
                let bytes = self.seal(bytes);
                Input::Stream { from, bytes }
            }
            Stimulus::Flood {
                from,
                first,
                count,
                incarnation,
                stream,
            } => {
                let names: Vec<String> = (0..u16::from(count % (MAX_FLOOD + 1)))
                    .map(|i| format!("flood-{}", first.wrapping_add(i)))
                    .collect();
                let updates: Vec<_> = names
                    .iter()
                    .zip(0u8..)
                    .map(|(name, addr)| Update::Alive {
                        name,
                        incarnation,
                        addr,
                        meta: b"",
                    })
                    .collect();
                if stream {
                    let header = StreamHeader {
                        kind: StreamKind::PushPull {
                            join: false,
                            reply: false,
                        },
                        sender: names.first().map_or("flood", String::as_str),
                        sender_addr: from,
                    };
                    let bytes = wire::encode_stream(&self.label, &header, &updates);
                    let bytes = self.seal(bytes);
                    Input::Stream { from, bytes }
                } else {
                    let bytes = wire::encode_datagram(&self.label, &Message::Gossip, &updates);
                    let bytes = self.seal(bytes);
                    Input::Datagram { from, bytes }
                }
            }
            Stimulus::Answer { pick, nack } => self.answer(pick, nack).unwrap_or(Input::Tick),
            Stimulus::State {
                from,
                entries,
                sync,
            } => self.state_input(from, &entries, sync.as_ref()),
            Stimulus::StateFlood {
                from,
                first,
                origins,
                per_origin,
            } => self.state_flood(
                from,
                first,
                origins % (self.max_flood + 1),
                per_origin % 4 + 1,
            ),
        }
    }

    /// An anti-entropy message with `per_origin` entries from each of `origins` fresh origins.
    fn state_flood(&mut self, from: u8, first: u16, origins: u16, per_origin: u8) -> Input<u8> {
        let clock = self.node.state_clock();
        let names: Vec<String> = (0..origins)
            .map(|i| format!("sflood-{}", first.wrapping_add(i)))
            .collect();
        let per = usize::from(per_origin);
        let keys: Vec<String> = names
            .iter()
            .flat_map(|o| (1..=per).map(move |j| format!("{o}/{j}")))
            .collect();
        let groups = names
            .iter()
            .zip(keys.chunks(per))
            .map(|(o, keys)| wire::DeltaGroup {
                ty: STATE_TYPES[0],
                origin: o,
                watermark: u64::from(per_origin),
                entries: (1..=u64::from(per_origin))
                    .zip(keys)
                    .map(|(j, k)| (k.as_str(), clock + j, j, Some(&b"f"[..])))
                    .collect(),
            })
            .collect();
        let body = wire::StateSync {
            groups,
            ..wire::StateSync::default()
        };
        let header = StreamHeader {
            kind: StreamKind::State {
                phase: wire::SyncPhase::Deltas,
            },
            sender: name(from),
            sender_addr: from,
        };
        let bytes = wire::encode_stream_with_state(&self.label, &header, &[], &body);
        let bytes = self.seal(bytes);
        Input::Stream { from, bytes }
    }

    /// A datagram or anti-entropy message with crafted state entries; versions are relative to
    /// the node's Lamport clock.
    fn state_input(
        &mut self,
        from: u8,
        entries: &[StateClaim<'_>],
        sync: Option<&SyncClaim>,
    ) -> Input<u8> {
        let clock = self.node.state_clock();
        let ty = |i: u8| STATE_TYPES[usize::from(i) % STATE_TYPES.len()];
        let key = |i: u8| STATE_KEYS[usize::from(i) % STATE_KEYS.len()];
        let updates: Vec<wire::StateUpdate<'_>> = entries
            .iter()
            .map(|e| wire::StateUpdate {
                ty: ty(e.ty),
                key: key(e.key),
                version: e.version.resolve(clock),
                seq: e
                    .seq
                    .resolve(self.node.state_watermark(ty(e.ty), name(e.origin))),
                origin: name(e.origin),
                value: e.value,
            })
            .collect();
        let Some(sync) = sync else {
            let bytes = wire::encode_datagram_with_state::<u8>(
                &self.label,
                &Message::Gossip,
                &[],
                &updates,
            );
            let bytes = self.seal(bytes);
            return Input::Datagram { from, bytes };
        };
        let digest = STATE_TYPES
            .iter()
            .map(|t| wire::TypeDigest {
                ty: t,
                origins: sync
                    .watermarks
                    .iter()
                    .filter(|(i, _, _)| ty(*i) == *t)
                    .map(|(_, o, v)| (name(*o), v.resolve(clock)))
                    .collect(),
            })
            .collect();
        let groups = updates
            .iter()
            .map(|u| wire::DeltaGroup {
                ty: u.ty,
                origin: u.origin,
                watermark: u.version,
                entries: vec![(u.key, u.version, u.seq, u.value)],
            })
            .collect();
        let resets = sync
            .resets
            .iter()
            .map(|(t, keys)| wire::Reset {
                ty: ty(*t),
                keys: keys.iter().map(|k| key(*k)).collect(),
            })
            .collect();
        let body = wire::StateSync {
            summary: sync.summary,
            digest,
            groups,
            resets,
        };
        let header = StreamHeader {
            kind: StreamKind::State { phase: sync.phase },
            sender: name(from),
            sender_addr: from,
        };
        let bytes = wire::encode_stream_with_state(&self.label, &header, &[], &body);
        let bytes = self.seal(bytes);
        Input::Stream { from, bytes }
    }

    fn message(&self, primary: &Primary) -> Message<'static, u8> {
        let pick_seq = |s: &Seq| match *s {
            Seq::Recent(i) if !self.seqs.is_empty() => self.seqs[usize::from(i) % self.seqs.len()],
            Seq::Recent(i) => u32::from(i),
            Seq::Any(seq) => seq,
        };
        let checksum = |c: &Checksum| match *c {
            Checksum::Same => wire::short_checksum(self.node.checksum()),
            Checksum::Any(c) => wire::short_checksum(c),
        };
        match *primary {
            Primary::Gossip => Message::Gossip,
            Primary::Ping {
                seq,
                other,
                checksum: ref c,
            } => Message::Ping {
                seq,
                target: wire::name_tag(other.map_or(SELF_NAME, name)),
                checksum: checksum(c),
            },
            Primary::PingReq {
                seq,
                target,
                target_addr,
                want_nack,
            } => Message::PingReq {
                seq,
                target: name(target),
                target_addr,
                want_nack,
            },
            Primary::Ack {
                ref seq,
                checksum: ref c,
            } => Message::Ack {
                seq: pick_seq(seq),
                checksum: checksum(c),
            },
            Primary::Nack { ref seq } => Message::Nack { seq: pick_seq(seq) },
        }
    }

    /// A peer's answer to one of the node's recent sends, if it sent anything yet.
    fn answer(&mut self, pick: u8, nack: bool) -> Option<Input<u8>> {
        if self.sent.is_empty() {
            return None;
        }
        let reply = match &self.sent[usize::from(pick) % self.sent.len()] {
            Sent::Datagram { to, bytes } => {
                let payload = self.payload(bytes).ok()?;
                let dg = wire::decode_datagram_payload::<u8>(&payload).ok()?;
                let reply: Message<'_, u8> = match dg.message {
                    Message::Ping { seq, .. } | Message::PingReq { seq, .. } if nack => {
                        Message::Nack { seq }
                    }
                    Message::Ping { seq, .. } | Message::PingReq { seq, .. } => Message::Ack {
                        seq,
                        checksum: wire::short_checksum(self.node.checksum()),
                    },
                    // Gossip, acks and nacks come back as they were sent.
                    _ => {
                        return Some(Input::Datagram {
                            from: *to,
                            bytes: bytes.clone(),
                        });
                    }
                };
                let bytes = wire::encode_datagram(&self.label, &reply, &[]);
                Input::Datagram { from: *to, bytes }
            }
            // A push-pull bounced back unchanged: the node hears its own name as the sender.
            Sent::Stream { to, bytes } if nack => {
                return Some(Input::Stream {
                    from: *to,
                    bytes: bytes.clone(),
                });
            }
            Sent::Stream { to, bytes } => {
                let payload = self.payload(bytes).ok()?;
                let sm = wire::decode_stream_payload::<u8>(&payload).ok()?;
                let join = match sm.header.kind {
                    StreamKind::PushPull { join, .. } => join,
                    _ => false,
                };
                // Answer as the member the node knows at that address, or as a new one.
                let (sender, incarnation) =
                    self.node.members().find(|m| m.addr == *to).map_or_else(
                        || (format!("peer-at-{to}"), 0),
                        |m| (m.name.to_string(), m.incarnation),
                    );
                let header = StreamHeader {
                    kind: StreamKind::PushPull { join, reply: true },
                    sender: &sender,
                    sender_addr: *to,
                };
                // The peer's view: the node's own (itself included) and the peer, alive.
                let mut updates = sm.updates;
                updates.push(Update::Alive {
                    name: &sender,
                    incarnation,
                    addr: *to,
                    meta: b"",
                });
                let bytes = wire::encode_stream(&self.label, &header, &updates);
                Input::Stream { from: *to, bytes }
            }
        };
        // Bounced packets above are returned as they were; built replies are sealed here.
        Some(match reply {
            Input::Datagram { from, bytes } => Input::Datagram {
                from,
                bytes: self.seal(bytes),
            },
            Input::Stream { from, bytes } => Input::Stream {
                from,
                bytes: self.seal(bytes),
            },
            other => other,
        })
    }

    /// A crafted plaintext packet as the node expects it: sealed with its current primary key
    /// when it encrypts.
    fn seal(&mut self, packet: Vec<u8>) -> Vec<u8> {
        let Some(ring) = self.node.keyring() else {
            return packet;
        };
        self.nonces += 1;
        let mut nonce = [0; NONCE_LEN];
        nonce[..8].copy_from_slice(&self.nonces.to_le_bytes());
        ring.encrypt_packet(&packet, nonce)
            .expect("a crafted packet has a plaintext header")
    }

    /// The plaintext payload (what follows the header) of a packet the node sent, decrypted
    /// with one of its keys when it encrypts.
    fn payload<'b>(&self, packet: &'b [u8]) -> Result<Cow<'b, [u8]>, String> {
        let header = wire::read_header(packet, &self.label).map_err(|e| e.to_string())?;
        let body = &packet[header.len..];
        let encrypted = header.flags & wire::FLAG_ENCRYPTED != 0;
        match self.node.keyring() {
            None if !encrypted => Ok(Cow::Borrowed(body)),
            Some(ring) if encrypted => ring
                .decrypt_packet(packet, &self.label)
                .map(Cow::Owned)
                .map_err(|e| format!("no installed key opens it: {e}")),
            ring => Err(format!(
                "encrypted flag {encrypted} from a node {} a keyring",
                if ring.is_some() { "with" } else { "without" }
            )),
        }
    }

    fn check(&mut self) {
        self.node.check_invariants();
        let local = self.node.local();
        assert_ne!(local.state, MemberState::Dead, "the node holds itself dead");
        assert!(
            local.incarnation >= self.incarnation,
            "the local incarnation decreased from {} to {}",
            self.incarnation,
            local.incarnation
        );
        self.incarnation = local.incarnation;
        let ticks = self
            .out
            .iter()
            .filter(|o| matches!(o, Output::TickAt(_)))
            .count();
        assert!(
            ticks == 1 && matches!(self.out.last(), Some(Output::TickAt(at)) if *at > self.now),
            "an input's outputs must end with exactly one TickAt after now ({}): {:?}",
            self.now,
            self.out.last()
        );
    }

    /// Checks that every datagram and stream the node sent decrypts and decodes, and keeps
    /// the latest ones (and the sequence numbers of its pings and ping-reqs) for answers.
    fn remember_sends(&mut self) {
        for output in std::mem::take(&mut self.out) {
            let sent = match output {
                Output::SendDatagram { to, bytes } => {
                    let payload = self
                        .payload(&bytes)
                        .unwrap_or_else(|e| panic!("the node sent an unreadable datagram: {e}"));
                    let dg = wire::decode_datagram_payload::<u8>(&payload)
                        .unwrap_or_else(|e| panic!("the node sent an undecodable datagram: {e}"));
                    if let Message::Ping { seq, .. } | Message::PingReq { seq, .. } = dg.message {
                        if self.seqs.len() == RECENT {
                            self.seqs.pop_front();
                        }
                        self.seqs.push_back(seq);
                    }
                    Sent::Datagram { to, bytes }
                }
                Output::SendStream { to, bytes } => {
                    let payload = self.payload(&bytes).unwrap_or_else(|e| {
                        panic!("the node sent an unreadable stream message: {e}")
                    });
                    if let Err(e) = wire::decode_stream_payload::<u8>(&payload) {
                        panic!("the node sent an undecodable stream message: {e}");
                    }
                    Sent::Stream { to, bytes }
                }
                _ => continue,
            };
            if self.sent.len() == RECENT {
                self.sent.pop_front();
            }
            self.sent.push_back(sent);
        }
    }
}

// --------------------------------------------------------------------------------------- sim

/// The scenario [`sim`] runs for `seed`: [`Scenario::swarm`] (a cluster of 4 to 32 nodes and
/// a fault mix, both derived from the seed), cut to at most [`SIM_MAX_DURATION`]. A cut run
/// no longer has the quiet tail the liveness check needs, so that check is off for it; the
/// safety invariants are checked either way.
pub fn sim_scenario(seed: u64) -> Scenario {
    let mut scenario = Scenario::swarm(seed);
    if scenario.duration > SIM_MAX_DURATION {
        scenario.duration = SIM_MAX_DURATION;
        scenario.check_liveness = false;
    }
    scenario
}

/// A seed from the data (its first 8 bytes; zeros if shorter) picks a small simulated cluster
/// and its faults ([`sim_scenario`]); the run must end without a violation. The fault indices
/// come from the seed, never straight from the data, so every case is a valid scenario.
pub fn sim(data: &[u8]) {
    let seed = u64::arbitrary(&mut Unstructured::new(data)).unwrap_or_default();
    let scenario = sim_scenario(seed);
    let report = swim_sim::run(&scenario, seed, RunOptions::default());
    if let Some(violation) = report.violation {
        let secs = scenario.duration.as_secs();
        panic!("swarm scenario for seed {seed}, {secs} s: {violation}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(case: &mut NodeCase, advance_ms: u16, stimulus: Stimulus<'_>) {
        case.step(Step {
            advance_ms,
            stimulus,
        });
    }

    /// The crafted inputs get past decoding, decryption and validation: a flood fills the
    /// table, a claim that the node is dead is refuted, and answers to its pings count as
    /// acks, whether or not the node encrypts. (A harness whose crafted packets were all
    /// dropped would still "pass" every fuzz run.)
    #[test]
    fn crafted_inputs_reach_the_protocol() {
        for encrypted in [false, true] {
            let mut case = NodeCase::new(7, encrypted, false);
            let flood = Stimulus::Flood {
                from: 9,
                first: 0,
                count: 10,
                incarnation: 1,
                stream: false,
            };
            step(&mut case, 0, flood);
            assert_eq!(case.node.members().count(), 10, "encrypted: {encrypted}");

            let dead = Claim {
                about: 0,
                state: MemberState::Dead,
                incarnation: Incarnation::Held,
                addr: SELF_ADDR,
                accuser: 1,
                meta: b"",
            };
            let gossip = Stimulus::Datagram {
                from: 9,
                message: Primary::Gossip,
                claims: vec![dead],
            };
            step(&mut case, 1, gossip);
            assert_eq!(case.node.stats().local_refutations, 1);
            assert_eq!(case.node.local().incarnation, 1);

            for _ in 0..50 {
                step(&mut case, 100, Stimulus::Input(Input::Tick));
                let ping = case.sent.iter().rposition(|s| match s {
                    Sent::Datagram { bytes, .. } => {
                        let payload = case.payload(bytes).unwrap();
                        let dg = wire::decode_datagram_payload::<u8>(&payload).unwrap();
                        matches!(dg.message, Message::Ping { .. })
                    }
                    Sent::Stream { .. } => false,
                });
                if let Some(i) = ping {
                    let pick = u8::try_from(i).unwrap();
                    step(&mut case, 1, Stimulus::Answer { pick, nack: false });
                }
            }
            let stats = case.node.stats();
            assert!(stats.probes >= 4, "{stats:?}");
            assert!(stats.received.ack >= 4, "{stats:?}");
            assert_eq!(stats.probes_failed, 0, "{stats:?}");
            assert_eq!(stats.dropped.total(), 0, "{stats:?}");
        }
    }

    /// The node answers a join push-pull; the harness's reply completes the join.
    #[test]
    fn answers_complete_a_join() {
        for encrypted in [false, true] {
            let mut case = NodeCase::new(3, encrypted, false);
            let join = Input::Command(swim_proto::Command::Join { seeds: vec![5] });
            step(&mut case, 0, Stimulus::Input(join));
            let i = case
                .sent
                .iter()
                .rposition(|s| matches!(s, Sent::Stream { to: 5, .. }))
                .expect("a push-pull to the seed");
            let pick = u8::try_from(i).unwrap();
            let reply = case.answer(pick, false).expect("an answer");
            case.node.handle_into(reply, case.now, &mut case.out);
            let joined = case.out.iter().any(|o| {
                matches!(
                    o,
                    Output::Event(swim_proto::Event::JoinCompleted { via: 5 })
                )
            });
            assert!(joined, "encrypted {encrypted}: {:?}", case.out);
            let peer = case.node.member("peer-at-5").expect("the seed is a member");
            assert_eq!((peer.addr, peer.state), (5, MemberState::Alive));
        }
    }

    /// With the production bounds, a few state floods pass `max_origins` and fill the
    /// non-members' share; the store stays within its bounds (checked after every step).
    #[test]
    fn state_floods_reach_the_production_bounds() {
        let mut case = NodeCase::new(11, false, true);
        for k in 0..3u16 {
            let flood = Stimulus::StateFlood {
                from: 9,
                first: k * MAX_STATE_FLOOD,
                origins: MAX_STATE_FLOOD,
                per_origin: 1,
            };
            step(&mut case, 10, flood);
        }
        let s = case.node.stats().state;
        assert!(s.rejected_non_member > 0, "{s:?}");
        assert!(
            s.applied >= 6_000,
            "the flood got in up to its share: {s:?}"
        );
        assert!(s.origins <= 65_536, "{s:?}");
    }

    #[test]
    fn every_input_is_a_valid_case() {
        for data in [&[][..], &[0], &[0xff; 64], b"arbitrary bytes, any length"] {
            decode(data);
            roundtrip(data);
            node_inputs(data);
            node_inputs_wide(data);
        }
        sim(&[]);
    }

    #[test]
    fn sim_scenarios_are_cut_to_the_cap() {
        for seed in 0..20 {
            let s = sim_scenario(seed);
            assert!(s.duration <= SIM_MAX_DURATION);
            s.validate().unwrap();
            let full = Scenario::swarm(seed);
            assert_eq!(s.check_liveness, full.duration <= SIM_MAX_DURATION);
        }
    }
}
