//! `cargo xtask soak [--minutes M] [-- EXTRA…]`: builds the release server and the load generator
//! (backend/examples/soak.rs) and runs it for M minutes (default 10): 1,000 live streams, readers,
//! writers and document downloads across three sub-districts; it prints memory over time, errors,
//! the live streams' check and p99 per request kind, and fails on growth, errors or a missing frame.
//! Not part of `cargo xtask test`.

use crate::{cargo, step, target_dir};
use std::process::Command;

pub fn run(args: &[String]) -> Result<(), String> {
    let mut minutes = "10".to_owned();
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
            "--" => extra.extend(it.by_ref().cloned()),
            other => return Err(format!("soak: unknown option {other}")),
        }
    }
    step(
        "cargo build --release -p ducha --bin ducha --example soak",
        cargo().args(["build", "--release", "-p", "ducha", "--bin", "ducha", "--example", "soak"]),
    )?;
    let soak = target_dir().join("release").join("examples").join("soak");
    // Every live stream is an open file on both sides: raise the soft limit to the hard one for the
    // load generator and the server it starts (the example checks that it is enough).
    step(
        &format!("soak for {minutes} min"),
        Command::new("sh")
            .args(["-c", "ulimit -n \"$(ulimit -Hn)\" 2>/dev/null; exec \"$0\" \"$@\""])
            .arg(&soak)
            .args(["--minutes", &minutes])
            .args(&extra),
    )
}
