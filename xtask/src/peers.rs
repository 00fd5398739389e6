//! `cargo xtask bench peers` (issue 11): Ducha next to two libraries a team might pick instead, on
//! the same workload, machine, disk and durability (SQLite, WAL, `synchronous=FULL`), interleaved
//! round by round, printing ours ÷ peer for each row:
//! - the Python `eventsourcing` library 9.x with its SQLite recorder, installed here into a virtual
//!   environment under the tools directory from PyPI (`bench/peers/eventsourcing/bench.py`);
//! - Rust `cqrs-es` + `sqlite-es` 0.5, a Cargo project of its own (`bench/peers/cqrs`, not a member
//!   of the workspace, built into its own target directory).
//!
//! Ducha's side is `backend/examples/bench_peers.rs`; each side prints `ROW name events seconds
//! peak_rss_kib` and its durability (`DEFAULT` / `FORCED synchronous=N`).

use super::{cargo, root, step, target_dir, tools_dir};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A measured row: events, seconds, peak RSS (KiB).
type Figure = (u64, f64, u64);

struct Sizes {
    single: u64,
    concurrent: u64,
    replay: u64,
    aggregate: u64,
    rounds: usize,
}

fn sizes(args: &[String]) -> Result<(Sizes, Option<PathBuf>), String> {
    let mut s = Sizes { single: 2_000, concurrent: 8_000, replay: 1_000_000, aggregate: 100_000, rounds: 3 };
    let mut dir = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let n = || value.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--single" => s.single = n()?,
            "--concurrent" => s.concurrent = n()?,
            "--replay" => s.replay = n()?,
            "--aggregate" => s.aggregate = n()?,
            "--rounds" => s.rounds = usize::try_from(n()?).unwrap_or(1).max(1),
            "--dir" => dir = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok((s, dir))
}

/// One implementation under test: how to run a mode of it.
struct Side {
    name: &'static str,
    program: PathBuf,
    prefix: Vec<String>,
    durability: Option<String>,
}

impl Side {
    /// Runs `MODE DIR [N]`; the ROW lines by name.
    fn run(&mut self, mode: &str, dir: &Path, n: Option<u64>) -> Result<BTreeMap<String, Figure>, String> {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.prefix).arg(mode).arg(dir);
        if let Some(n) = n {
            cmd.arg(n.to_string());
        }
        let out = cmd.output().map_err(|e| format!("{}: cannot start: {e}", self.name))?;
        if !out.status.success() {
            return Err(format!(
                "{} {mode} failed ({}): {}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut rows = BTreeMap::new();
        let (mut default, mut forced) = (String::new(), String::new());
        for line in text.lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["ROW", name, events, secs, rss] => {
                    let parse =
                        || -> Option<Figure> { Some((events.parse().ok()?, secs.parse().ok()?, rss.parse().ok()?)) };
                    rows.insert(
                        (*name).to_owned(),
                        parse().ok_or_else(|| format!("{}: bad line {line:?}", self.name))?,
                    );
                }
                ["DEFAULT", v] => default = v.trim_start_matches("synchronous=").to_owned(),
                ["FORCED", v] => forced = v.trim_start_matches("synchronous=").to_owned(),
                _ => {}
            }
        }
        if forced != "2" {
            return Err(format!("{} ran with synchronous={forced}, not FULL (2)", self.name));
        }
        self.durability = Some(format!("default synchronous={default}, run with {forced} (FULL)"));
        Ok(rows)
    }
}

/// The virtual environment with `eventsourcing` 9.x (created and filled from PyPI when missing).
fn python() -> Result<PathBuf, String> {
    let venv = tools_dir().join("peers-venv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        if Command::new("python3").args(["-c", "import venv, ensurepip"]).output().map_or(true, |o| !o.status.success())
        {
            step(
                "apt-get install python3-venv",
                Command::new("sh").args(["-c", "apt-get update -qq && apt-get install -y -qq python3 python3-venv"]),
            )?;
        }
        step("python3 -m venv (peers)", Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    let has = Command::new(&python)
        .args(["-c", "import sys, importlib.metadata as m; sys.exit(m.version('eventsourcing').split('.')[0] != '9')"])
        .output();
    if !has.is_ok_and(|o| o.status.success()) {
        step(
            "pip install 'eventsourcing>=9.5,<10' (peers)",
            Command::new(&python).args(["-m", "pip", "install", "-q", "eventsourcing>=9.5,<10"]),
        )?;
    }
    Ok(python)
}

fn rate(f: &Figure) -> f64 {
    f.0 as f64 / f.1.max(1e-9)
}

/// Keeps the faster of two runs of a row.
fn keep_best(best: &mut BTreeMap<(String, &'static str), Figure>, side: &'static str, rows: BTreeMap<String, Figure>) {
    for (name, f) in rows {
        let slot = best.entry((name, side)).or_insert(f);
        if f.1 < slot.1 {
            *slot = f;
        }
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let (sizes, dir) = sizes(args)?;
    let scratch = dir.unwrap_or_else(|| target_dir().join("bench-peers"));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;

    step(
        "cargo build --release -p ducha --example bench_peers",
        cargo().args(["build", "--release", "-p", "ducha", "--example", "bench_peers"]),
    )?;
    let peer_target = target_dir().join("peers-cqrs");
    step(
        "cargo build --release (bench/peers/cqrs: cqrs-es + sqlite-es 0.5, not a workspace member)",
        cargo()
            .env("CARGO_TARGET_DIR", &peer_target)
            .args(["build", "--release", "--locked", "--manifest-path"])
            .arg(root().join("bench/peers/cqrs/Cargo.toml")),
    )?;
    let python = python()?;
    let mut sides = [
        Side {
            name: "Ducha",
            program: target_dir().join("release/examples/bench_peers"),
            prefix: vec![],
            durability: None,
        },
        Side {
            name: "eventsourcing",
            program: python,
            prefix: vec![root().join("bench/peers/eventsourcing/bench.py").display().to_string()],
            durability: None,
        },
        Side {
            name: "cqrs-es",
            program: peer_target.join("release/ducha-peer-cqrs"),
            prefix: vec![],
            durability: None,
        },
    ];
    let names: Vec<&'static str> = sides.iter().map(|s| s.name).collect();
    let mut best: BTreeMap<(String, &'static str), Figure> = BTreeMap::new();
    let fresh = |name: &str| -> Result<PathBuf, String> {
        let d = scratch.join(name);
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        Ok(d)
    };
    let db = |side: &Side, d: &Path| if side.name == "Ducha" { d.to_path_buf() } else { d.join("peer.db") };

    // Appends: every round runs each side once, in turn, on a fresh database.
    for round in 1..=sizes.rounds {
        eprintln!("==> peers: appends, round {round} of {}", sizes.rounds);
        let d = fresh("raw")?;
        let raw = sides[0].run("raw", &d, Some(sizes.single))?;
        keep_best(&mut best, "raw", raw);
        for (mode, n) in [("single", sizes.single), ("concurrent", sizes.concurrent)] {
            for side in sides.iter_mut() {
                let d = fresh(&format!("{mode}-{}", side.name))?;
                let rows = side.run(mode, &db(side, &d), Some(n))?;
                keep_best(&mut best, side.name, rows);
            }
        }
    }
    // Replay: each side generates its log once (not timed), then rounds of replays in turn.
    eprintln!("==> peers: generating {} events per side (not timed)", sizes.replay);
    let mut logs = Vec::new();
    for side in sides.iter_mut() {
        let d = fresh(&format!("replay-{}", side.name))?;
        side.run("generate", &db(side, &d), Some(sizes.replay))?;
        logs.push(d);
    }
    for round in 1..=sizes.rounds {
        eprintln!("==> peers: replay, round {round} of {}", sizes.rounds);
        for (side, d) in sides.iter_mut().zip(&logs) {
            let rows = side.run("replay", &db(side, d), None)?;
            keep_best(&mut best, side.name, rows);
        }
    }
    for d in &logs {
        let _ = std::fs::remove_dir_all(d);
    }
    // One aggregate: each side writes it and folds it 3 times (best of 3 inside).
    eprintln!("==> peers: one aggregate of {} events", sizes.aggregate);
    for side in sides.iter_mut() {
        let d = fresh(&format!("aggregate-{}", side.name))?;
        let rows = side.run("aggregate", &db(side, &d), Some(sizes.aggregate))?;
        keep_best(&mut best, side.name, rows);
        let _ = std::fs::remove_dir_all(&d);
    }

    println!();
    println!(
        "Durability: {}",
        sides
            .iter()
            .map(|s| format!("{}: {}", s.name, s.durability.as_deref().unwrap_or("?")))
            .collect::<Vec<_>>()
            .join("; ")
    );
    println!();
    println!("| row | {} | {} | {} | Ducha ÷ {} | Ducha ÷ {} |", names[0], names[1], names[2], names[1], names[2]);
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let get = |row: &str, side: &str| best.get(&(row.to_owned(), side)).copied();
    if let Some(raw) = get("raw", "raw") {
        println!("| raw SQLite, 1 row per durable transaction (baseline) | {:.0}/s | | | | |", rate(&raw));
    }
    let rows = [
        ("single", "1 writer, 1 event per durable transaction, events/s", false),
        ("concurrent", "8 concurrent writers, events/s", false),
        ("replay", "full replay, events/s", false),
        ("aggregate-full", "one aggregate of N events, full rebuild, ms", true),
        ("aggregate-half", "the same as of its midpoint, ms", true),
    ];
    for (row, label, timed) in rows {
        let figures: Vec<Option<Figure>> = names.iter().map(|s| get(row, s)).collect();
        let cell = |f: &Option<Figure>| match f {
            Some(f) if timed => format!("{:.1} ms", f.1 * 1000.0),
            Some(f) => format!("{:.0}", rate(f)),
            None => "—".to_owned(),
        };
        let ratio = |i: usize| match (&figures[0], &figures[i]) {
            // For times, ours ÷ peer is speed: the peer's time ÷ ours.
            (Some(o), Some(p)) if timed => format!("{:.2}×", p.1 / o.1.max(1e-9)),
            (Some(o), Some(p)) => format!("{:.2}×", rate(o) / rate(p)),
            _ => "—".to_owned(),
        };
        let events = figures[0].map_or(0, |f| f.0);
        println!(
            "| {label} ({events} events) | {} | {} | {} | {} | {} |",
            cell(&figures[0]),
            cell(&figures[1]),
            cell(&figures[2]),
            ratio(1),
            ratio(2)
        );
        if row == "single"
            && let (Some(o), Some(raw)) = (figures[0], get("raw", "raw"))
        {
            println!("| Ducha single writer ÷ raw SQLite | {:.2} | | | | |", rate(&o) / rate(&raw));
        }
        if row == "replay" {
            let rss = |f: &Option<Figure>| f.map_or("—".to_owned(), |f| format!("{} MiB", f.2 / 1024));
            println!(
                "| full replay, peak RSS | {} | {} | {} | | |",
                rss(&figures[0]),
                rss(&figures[1]),
                rss(&figures[2])
            );
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}
