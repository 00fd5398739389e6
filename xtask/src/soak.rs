//! `cargo xtask soak [--minutes M] [--heap-profile] [-- EXTRA…]`: builds the release server and the
//! load generator (backend/examples/soak.rs) and runs it for M minutes (default 10): 1,000 live
//! streams, readers, writers and document downloads across three sub-districts; it prints memory
//! over time, errors, the live streams' check and p99 per request kind, and fails on growth, errors
//! or a missing frame. Not part of `cargo xtask test`.
//!
//! `--heap-profile` builds the server with glibc's malloc (feature `system-allocator`) and runs it
//! under `heaptrack` (installed with apt if missing), writing `soak-heap.<unix time>.zst` under the target
//! dir. The server is stopped with SIGKILL at the end, so what heaptrack reports as "leaked" is the
//! heap as it was at the end of the load, by allocation site; the sites holding the most are
//! printed. The profiler slows the server: its latencies are not the soak's figures.

use crate::{cargo, step, target_dir};
use std::process::Command;

pub fn run(args: &[String]) -> Result<(), String> {
    let mut minutes = "10".to_owned();
    let mut heap_profile = false;
    let mut extra = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--minutes" => {
                minutes = it
                    .next()
                    .filter(|m| m.parse::<f64>().is_ok_and(|m| m > 0.0))
                    .ok_or("--minutes wants a positive number")?
                    .clone();
            }
            "--heap-profile" => heap_profile = true,
            "--" => extra.extend(it.by_ref().cloned()),
            other => return Err(format!("soak: unknown option {other}")),
        }
    }
    let mut build = cargo();
    build.args(["build", "--release", "-p", "ducha", "--bin", "ducha", "--example", "soak"]);
    if heap_profile {
        build.args(["--features", "system-allocator"]);
        if Command::new("heaptrack").arg("--version").output().is_err() {
            step(
                "apt-get install heaptrack",
                Command::new("sh").args(["-c", "apt-get install -y heaptrack || sudo apt-get install -y heaptrack"]),
            )?;
        }
    }
    step("cargo build --release -p ducha --bin ducha --example soak", &mut build)?;
    let soak = target_dir().join("release").join("examples").join("soak");
    let profile = target_dir().join("soak-heap");
    // Every live stream is an open file on both sides: raise the soft limit to the hard one for the
    // load generator and the server it starts (the example checks that it is enough).
    let mut run = Command::new("sh");
    run.args(["-c", "ulimit -n \"$(ulimit -Hn)\" 2>/dev/null; exec \"$0\" \"$@\""])
        .arg(&soak)
        .args(["--minutes", &minutes])
        .args(&extra);
    if heap_profile {
        // A name of its own per run (this heaptrack does not expand `%p`): runs do not overwrite
        // each other, so two can be compared (`heaptrack_print -d OLD NEW`).
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        run.env("DUCHA_SOAK_SERVER_WRAPPER", format!("heaptrack -o {}.{stamp}", profile.display()))
            .env("DUCHA_SOAK_STOP_SIGNAL", "KILL");
    }
    let soaked = step(&format!("soak for {minutes} min"), &mut run);
    if heap_profile {
        let dir = profile.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
        let newest = std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("soak-heap.")))
            .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
            .ok_or("heaptrack wrote no profile")?;
        step(
            &format!("heaptrack_print {} (the sites holding the most at the end)", newest.display()),
            Command::new("heaptrack_print")
                .args(["--print-peaks", "0", "--print-allocators", "0", "--print-temporary", "0"])
                .args(["--print-leaks", "1", "--peak-limit", "20", "--sub-peak-limit", "4"])
                .arg(&newest),
        )?;
    }
    soaked
}
