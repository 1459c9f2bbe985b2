//! Arbitrary messages, stream headers and updates, encoded: each decodes equal, and a cut or
//! extended packet is rejected.
//! The body is `swim_tests::fuzz::roundtrip`, which `cargo test` also runs on the saved corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| swim_tests::fuzz::roundtrip(data));
