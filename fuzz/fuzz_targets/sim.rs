//! A seed picks a small simulated cluster and its fault mix: the run ends without a violation.
//! The body is `swim_tests::fuzz::sim`, which `cargo test` also runs on the saved corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| swim_tests::fuzz::sim(data));
