//! An arbitrary sequence of inputs at non-decreasing times into one node: no panic, and the
//! node's invariants hold after every step (it never holds itself dead, incarnations never
//! decrease, tables stay within their caps).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use swim_proto::{Config, Identity, Input, Instant, Node, NodeName};

#[derive(Debug, Arbitrary)]
struct Step {
    advance_ms: u16,
    input: Input<u8>,
}

fuzz_target!(|case: (u64, Vec<Step>)| {
    let (seed, steps) = case;
    let mut config = Config::local();
    config.max_members = 64;
    config.max_broadcast_queue = 32;
    config.max_pending_relays = 8;
    let id = Identity::new(NodeName::new("fuzz").unwrap(), 0u8);
    let mut node = Node::new(config, id, seed).unwrap();
    let mut now = Instant::ZERO;
    let mut incarnation = 0;
    let mut out = Vec::new();
    for step in steps.into_iter().take(256) {
        now = now + std::time::Duration::from_millis(u64::from(step.advance_ms));
        out.clear();
        node.handle_into(step.input, now, &mut out);
        node.check_invariants();
        assert!(node.local().incarnation >= incarnation, "incarnation never decreases");
        incarnation = node.local().incarnation;
    }
});
