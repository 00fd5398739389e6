//! Helpers for the end-to-end tests in `tests/tests/`: find the real `ducha` binary and run it in a
//! fresh data directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `ducha` binary of this build (target/<profile>/ducha next to the test's deps folder).
pub fn ducha_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/debug/deps/<test>-<hash> → target/debug/ducha
    let profile_dir = exe.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
    let bin = profile_dir.join("ducha");
    if !bin.exists() {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "-p", "ducha"])
            .status()
            .expect("cargo build -p ducha");
        assert!(status.success(), "building the ducha binary failed");
    }
    assert!(bin.exists(), "ducha binary not found at {}", bin.display());
    bin
}

/// Runs `ducha --data-dir DIR ARGS…` and returns its output.
pub fn ducha(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(ducha_bin())
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("DUCHA_DATA_DIR")
        .output()
        .expect("run ducha")
}

/// Runs ducha and insists that it succeeded; returns stdout.
pub fn ducha_ok(data_dir: &Path, args: &[&str]) -> String {
    let out = ducha(data_dir, args);
    assert!(
        out.status.success(),
        "ducha {args:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The repository root (for scripts such as tests/audit/verify_chain.py).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}
