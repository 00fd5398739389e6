//! The fuzz targets' seed corpora (`fuzz/corpus/<target>/`), replayed in the ordinary `cargo test`
//! through the very entry points the fuzzer runs (`fuzz/src/lib.rs`, compiled here too): no seed
//! may panic, every seed must still be accepted (so the corpora keep reaching past the first
//! checks as the code changes); inputs named `invalid-*` (e.g. a ledger of another sub-district's
//! communities) must be refused, and those named `crash-*` (what the fuzzer once crashed on, kept as
//! regression inputs) must only not panic. The fuzzing itself is `cargo xtask fuzz`, not part of the tests.

#[path = "../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod entries;

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    // The path as `cargo test` gives it now (a shared target directory may hold a build from another clone).
    let manifest =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let dir = manifest.join("../fuzz/corpus").join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("a directory entry").path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            (name, std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        })
        .collect();
    files.sort();
    files
}

fn replay(target: &str, entry: fn(&[u8]) -> bool) {
    let files = corpus(target);
    let valid = files.iter().filter(|(n, _)| !n.starts_with("crash-") && !n.starts_with("invalid-")).count();
    assert!(valid > 0, "{target}: the corpus has no valid seed");
    for (name, bytes) in &files {
        let accepted = entry(bytes);
        if name.starts_with("invalid-") {
            assert!(!accepted, "{target}/{name}: an input that must be refused was accepted");
        } else if !name.starts_with("crash-") {
            assert!(accepted, "{target}/{name}: a valid seed was refused");
        }
    }
}

#[test]
fn event_decode_seeds() {
    replay("event_decode", entries::event_decode);
}

#[test]
fn jsonl_import_seeds() {
    replay("jsonl_import", entries::jsonl_import);
}

#[test]
fn ledger_xlsx_seeds() {
    replay("ledger_xlsx", entries::ledger_xlsx);
}

#[test]
fn ledger_plan_seeds() {
    replay("ledger_plan", entries::ledger_plan);
}

#[test]
fn evidence_multipart_seeds() {
    replay("evidence_multipart", entries::evidence_multipart);
}

#[test]
fn query_params_seeds() {
    replay("query_params", entries::query_params);
}

#[test]
fn headers_seeds() {
    replay("headers", entries::headers);
}

#[test]
fn jwt_seeds() {
    replay("jwt", entries::jwt);
}
