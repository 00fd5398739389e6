//! Project tasks: `cargo xtask test | run | bench`. Only the standard library, so it builds fast.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("run") => run(&args[1..]),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <test|run|bench>\n  test   format, lint, wasm check and every test\n  run    build and serve the demo (prints the URL and the demo logins)\n  bench  run the benchmarks and print their figures"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::from(1)
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut c = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    c.current_dir(root());
    c
}

fn step(name: &str, cmd: &mut Command) -> Result<(), String> {
    eprintln!("==> {name}");
    let status = cmd.status().map_err(|e| format!("{name}: cannot start: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{name} failed ({status})")) }
}

fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

/// Installs what the tests need and is missing: the wasm32 target (the events crate must build for
/// the browser) and python3 (the independent chain check).
fn ensure_tools() -> Result<(), String> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    let has_wasm =
        installed.as_ref().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-unknown-unknown"));
    if !has_wasm {
        step(
            "rustup target add wasm32-unknown-unknown",
            Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]),
        )?;
    }
    if Command::new("python3").arg("--version").output().is_err() {
        step(
            "apt-get install python3",
            Command::new("sh").args(["-c", "apt-get update -qq && apt-get install -y -qq python3"]),
        )?;
    }
    // RSA keys for the token tests are made with the openssl command-line tool.
    if Command::new("openssl").arg("version").output().is_err() {
        step(
            "apt-get install openssl",
            Command::new("sh").args(["-c", "apt-get update -qq && apt-get install -y -qq openssl"]),
        )?;
    }
    // The independent readers of the generated documents (tests/documents/read_document.py).
    let readers = Command::new("python3").args(["-c", "import docx, openpyxl"]).output();
    if !readers.is_ok_and(|o| o.status.success()) {
        step(
            "pip install python-docx openpyxl",
            Command::new("sh").args([
                "-c",
                "python3 -m pip install --quiet python-docx openpyxl || (apt-get update -qq && \
                 apt-get install -y -qq python3-pip && \
                 python3 -m pip install --quiet --break-system-packages python-docx openpyxl)",
            ]),
        )?;
    }
    // The independent checkers of the REST API: PyJWT (tests/api/jwt_tokens.py), the OpenAPI
    // validator and schemathesis (tests/tests/api_contract_tools.rs).
    let api_tools =
        Command::new("python3").args(["-c", "import jwt, cryptography, openapi_spec_validator, schemathesis"]).output();
    if !api_tools.is_ok_and(|o| o.status.success()) {
        step(
            "pip install PyJWT cryptography openapi-spec-validator schemathesis",
            Command::new("sh").args([
                "-c",
                "python3 -m pip install --quiet PyJWT cryptography openapi-spec-validator schemathesis || \
                 (apt-get update -qq && apt-get install -y -qq python3-pip && python3 -m pip install --quiet \
                 --break-system-packages PyJWT cryptography openapi-spec-validator schemathesis)",
            ]),
        )?;
    }
    // The browser tests (tests/src/browser.rs): Debian's headless Chromium, driven over the
    // DevTools protocol (no chromedriver), and a CJK font so that Chinese text renders.
    let browser_missing = !Path::new("/usr/bin/chromium").exists();
    let font_missing = !Path::new("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc").exists();
    if browser_missing || font_missing {
        step(
            "apt-get install chromium fonts-wqy-zenhei",
            Command::new("sh").env("DEBIAN_FRONTEND", "noninteractive").args([
                "-c",
                "apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-zenhei",
            ]),
        )?;
    }
    Ok(())
}

fn test() -> Result<(), String> {
    ensure_tools()?;
    step("cargo fmt --check", cargo().args(["fmt", "--all", "--", "--check"]))?;
    step("cargo clippy -D warnings", cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    step(
        "events crate builds for wasm32",
        cargo().args(["build", "-p", "ducha-events", "--target", "wasm32-unknown-unknown"]),
    )?;
    // The end-to-end tests run the real binary; build it first so they find it.
    step("cargo build -p ducha", cargo().args(["build", "-p", "ducha"]))?;
    step("cargo test", cargo().args(["test", "--workspace", "--no-fail-fast"]))?;
    Ok(())
}

/// Builds the release binary and runs the product on its embedded default: SQLite in `./data`,
/// the demo loaded when the store is empty, the URL and the demo logins printed. Extra arguments
/// go to `ducha serve` (e.g. `--listen 0.0.0.0:8080`).
fn run(args: &[String]) -> Result<(), String> {
    step("cargo build --release -p ducha", cargo().args(["build", "--release", "-p", "ducha"]))?;
    let bin = target_dir().join("release").join("ducha");
    let data = env::var("DUCHA_DATA_DIR").unwrap_or_else(|_| root().join("data").display().to_string());
    let mut serve = Command::new(&bin);
    serve.args(["--data-dir", &data, "serve", "--demo"]).args(args);
    step("ducha serve --demo", &mut serve)
}

/// Runs every benchmark; their output is the table to copy into BENCHMARKS.md. Extra arguments go
/// to both (e.g. `--dir /path/on/the/disk/to/measure`).
fn bench(args: &[String]) -> Result<(), String> {
    step(
        "event store: appends and bulk reads (bench_store)",
        cargo().args(["run", "--release", "-p", "ducha", "--example", "bench_store", "--"]).args(args),
    )?;
    step(
        "projections: full rebuild and as-of fold (bench_projection)",
        cargo().args(["run", "--release", "-p", "ducha", "--example", "bench_projection", "--"]).args(args),
    )?;
    // Its own flags (--findings, --ledger) differ from the others': run with its defaults.
    step(
        "documents: report of 500 findings and ledger of 10,000 rows (bench_documents)",
        cargo().args(["run", "--release", "-p", "ducha", "--example", "bench_documents"]),
    )?;
    // The REST API under wrk (a second process on loopback); wrk from Debian's packages.
    if Command::new("wrk").arg("--version").output().is_err() {
        step(
            "apt-get install wrk",
            Command::new("sh").args(["-c", "apt-get update -qq && apt-get install -y -qq wrk"]),
        )?;
    }
    step("cargo build --release -p ducha", cargo().args(["build", "--release", "-p", "ducha"]))?;
    step(
        "REST API: 100 sub-districts × 1,000 findings under wrk, 64 connections (bench_api)",
        cargo().args(["run", "--release", "-p", "ducha", "--example", "bench_api"]),
    )
}
