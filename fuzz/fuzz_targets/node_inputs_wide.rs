//! Up to 256 raw and crafted inputs, state floods included, into one node whose state store
//! has the production bounds: no panic, and its invariants hold after every step.
//! The body is `swim_tests::fuzz::node_inputs_wide`, which `cargo test` also runs on the saved
//! corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| swim_tests::fuzz::node_inputs_wide(data));
