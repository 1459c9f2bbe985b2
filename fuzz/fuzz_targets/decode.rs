//! Arbitrary bytes into the datagram and stream decoders: no panic, and whatever decodes
//! re-encodes and decodes equal.
//! The body is `swim_tests::fuzz::decode`, which `cargo test` also runs on the saved corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| swim_tests::fuzz::decode(data));
