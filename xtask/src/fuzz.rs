//! `cargo xtask fuzz [--seconds N] [TARGET…]`: runs the libFuzzer targets of `fuzz/` (issue 12)
//! one after another for N seconds each (default 60) with nightly and cargo-fuzz, both installed
//! when missing, and prints runs per second, new coverage and any crash for each. Not part of
//! `cargo xtask test`: the seed corpora are replayed there (backend/tests/fuzz_seeds.rs), the
//! fuzzing itself is this command.
//!
//! The corpora the fuzzer grows are kept outside the repository (`<fuzz target dir>/corpus/<t>`),
//! seeded from `fuzz/corpus/<t>` which it only reads; a crash is written to `fuzz/artifacts/<t>/`
//! (ignored by git) and makes the command fail: turn it into a regression test (docs/FUZZING.md).

use crate::{root, step, target_dir, tools_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const DEFAULT_SECONDS: u64 = 60;

/// The fuzz build's own target directory: `DUCHA_FUZZ_TARGET_DIR`, default `<target>/fuzz` (its
/// instrumented builds would otherwise evict the ordinary ones).
fn fuzz_target_dir() -> PathBuf {
    std::env::var_os("DUCHA_FUZZ_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("fuzz"))
}

/// Every target: the files of `fuzz/fuzz_targets/`.
fn all_targets(fuzz: &Path) -> Result<Vec<String>, String> {
    let dir = fuzz.join("fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".rs")).map(str::to_owned))
        .collect();
    names.sort();
    Ok(names)
}

/// `cargo` of the nightly toolchain with cargo-fuzz on the PATH, free of what the outer cargo set.
fn nightly_cargo(tools: &Path) -> Command {
    let mut c = Command::new("cargo");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![tools.join("bin")];
    paths.extend(std::env::split_paths(&path));
    if let Ok(joined) = std::env::join_paths(paths) {
        c.env("PATH", joined);
    }
    c.env("RUSTUP_TOOLCHAIN", "nightly")
        .env("CARGO_TARGET_DIR", fuzz_target_dir())
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .env_remove("RUSTC_WRAPPER")
        .current_dir(root());
    c
}

fn ensure_nightly_and_cargo_fuzz(tools: &Path) -> Result<(), String> {
    let toolchains = Command::new("rustup").args(["toolchain", "list"]).output();
    if !toolchains.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.starts_with("nightly"))) {
        step(
            "rustup toolchain install nightly",
            Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]),
        )?;
    }
    if !tools.join("bin").join("cargo-fuzz").exists() {
        step(
            &format!("cargo install cargo-fuzz into {}", tools.display()),
            Command::new("cargo")
                .arg("install")
                .arg("--root")
                .arg(tools)
                .arg("cargo-fuzz")
                .env_remove("CARGO_TARGET_DIR"),
        )?;
    }
    Ok(())
}

/// What one run reported.
#[derive(Debug, Default)]
struct Outcome {
    target: String,
    runs: u64,
    per_second: u64,
    new_units: u64,
    peak_rss_mb: u64,
    crashed: Option<String>,
}

/// libFuzzer's `-print_final_stats=1` lines (`stat::name: value`).
fn stat(log: &str, name: &str) -> u64 {
    log.lines()
        .filter_map(|l| l.trim().strip_prefix(&format!("stat::{name}:")))
        .filter_map(|v| v.trim().parse().ok())
        .next_back()
        .unwrap_or(0)
}

fn run_one(tools: &Path, fuzz: &Path, target: &str, seconds: u64) -> Result<Outcome, String> {
    let grown = fuzz_target_dir().join("corpus").join(target);
    std::fs::create_dir_all(&grown).map_err(|e| format!("{}: {e}", grown.display()))?;
    let artifacts = fuzz.join("artifacts").join(target);
    std::fs::create_dir_all(&artifacts).map_err(|e| format!("{}: {e}", artifacts.display()))?;
    eprintln!("==> fuzz {target} for {seconds} s");
    let started = Instant::now();
    let out = nightly_cargo(tools)
        .args(["fuzz", "run", "--fuzz-dir"])
        .arg(fuzz)
        .arg(target)
        .arg(&grown)
        .arg(fuzz.join("corpus").join(target))
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .args(["-print_final_stats=1", "-timeout=10", "-rss_limit_mb=2048", "-max_len=262144"])
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cargo fuzz run {target}: {e}"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    let crashed = (!out.status.success()).then(|| {
        let reason = log
            .lines()
            .find(|l| l.contains("ERROR: libFuzzer") || l.contains("panicked at") || l.contains("SUMMARY:"))
            .unwrap_or("the fuzzer failed")
            .trim()
            .to_owned();
        let artifact = log
            .lines()
            .find_map(|l| l.split("Test unit written to ").nth(1))
            .map(|a| format!(" → {}", a.trim()))
            .unwrap_or_default();
        eprintln!("{log}");
        format!("{reason}{artifact}")
    });
    let runs = stat(&log, "number_of_executed_units");
    let elapsed = started.elapsed().as_secs().max(1);
    Ok(Outcome {
        target: target.to_owned(),
        runs,
        per_second: match stat(&log, "average_exec_per_sec") {
            0 => runs / elapsed,
            n => n,
        },
        new_units: stat(&log, "new_units_added"),
        peak_rss_mb: stat(&log, "peak_rss_mb"),
        crashed,
    })
}

pub fn run(args: &[String]) -> Result<(), String> {
    let mut seconds = DEFAULT_SECONDS;
    let mut chosen = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|s| *s > 0)
                    .ok_or("--seconds wants a positive whole number")?;
            }
            other if other.starts_with('-') => return Err(format!("fuzz: unknown option {other}")),
            other => chosen.push(other.to_owned()),
        }
    }
    let fuzz = root().join("fuzz");
    let all = all_targets(&fuzz)?;
    if let Some(unknown) = chosen.iter().find(|t| !all.contains(t)) {
        return Err(format!("fuzz: no target {unknown} (targets: {})", all.join(", ")));
    }
    let targets = if chosen.is_empty() { all } else { chosen };
    let tools = tools_dir();
    ensure_nightly_and_cargo_fuzz(&tools)?;
    step(
        &format!("cargo +nightly fuzz build (target dir {})", fuzz_target_dir().display()),
        nightly_cargo(&tools).args(["fuzz", "build", "--fuzz-dir"]).arg(&fuzz),
    )?;
    let mut outcomes = Vec::new();
    for t in &targets {
        outcomes.push(run_one(&tools, &fuzz, t, seconds)?);
    }
    eprintln!("\n{:<20} {:>12} {:>10} {:>10} {:>8}  result", "target", "runs", "runs/s", "new units", "RSS MB");
    for o in &outcomes {
        eprintln!(
            "{:<20} {:>12} {:>10} {:>10} {:>8}  {}",
            o.target,
            o.runs,
            o.per_second,
            o.new_units,
            o.peak_rss_mb,
            o.crashed.as_deref().unwrap_or("no crash")
        );
    }
    let crashed: Vec<&str> = outcomes.iter().filter(|o| o.crashed.is_some()).map(|o| o.target.as_str()).collect();
    if crashed.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzz: crashes in {} (inputs under fuzz/artifacts/)", crashed.join(", ")))
    }
}
