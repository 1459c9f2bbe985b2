//! Replays every saved fuzz input through the target's body in `swim_tests::fuzz`, on stable:
//! the seed corpus in `fuzz/corpus/<target>/` (which must not be empty) and, when present,
//! the crash reproducers libFuzzer leaves in `fuzz/artifacts/<target>/`.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use swim_tests::fuzz;

/// The files directly in `dir`, sorted; none if `dir` does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| {
            e.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
                .path()
        })
        .filter(|p| p.is_file() && !is_hidden(p))
        .collect();
    files.sort();
    files
}

/// libFuzzer's scratch files (and editors' swap files) start with a dot; they are not inputs.
fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// Runs `body` on every input of `target`, then fails naming each input that panicked.
fn replay(target: &str, body: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the swim-tests crate is inside the workspace");
    let fuzz_dir = root.join("fuzz");
    let corpus = inputs(&fuzz_dir.join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ has no inputs: every target keeps a seed corpus"
    );
    let artifacts = inputs(&fuzz_dir.join("artifacts").join(target));
    let mut failed = Vec::new();
    for path in corpus.iter().chain(&artifacts) {
        let data = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        if panic::catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
            eprintln!("  ^ while replaying {}", path.display());
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs failed (panic messages above); reproduce one with \
         `cargo +nightly fuzz run {target} <file>` in fuzz/:\n  {}",
        failed.len(),
        corpus.len() + artifacts.len(),
        failed.join("\n  ")
    );
}

#[test]
fn decode_corpus() {
    replay("decode", fuzz::decode);
}

#[test]
fn roundtrip_corpus() {
    replay("roundtrip", fuzz::roundtrip);
}

#[test]
fn node_inputs_corpus() {
    replay("node_inputs", fuzz::node_inputs);
}

#[test]
fn node_inputs_wide_corpus() {
    replay("node_inputs_wide", fuzz::node_inputs_wide);
}

#[test]
fn sim_corpus() {
    replay("sim", fuzz::sim);
}
