//! Project tasks: `cargo xtask test | run | web | bench | fuzz | soak`. Only the standard library, so it builds fast.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod fuzz;
mod peers;
mod postgres;
mod soak;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("run") => run(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("web") => web(false).map(|_| ()),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("soak") => soak::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <test|run|web|bench|fuzz|soak>\n  test   format, lint, wasm check, the web app and every test\n  run    build the web app and the server, serve the demo (prints the URL and the demo logins)\n  web    build the web app (WASM) into target/web-dist\n  bench  run the benchmarks and print their figures (`bench peers`: only Ducha next to eventsourcing and cqrs-es)\n  fuzz   [--seconds N] [TARGET…] run the libFuzzer targets of fuzz/ (nightly, cargo-fuzz), N s each (default 60)\n  soak   [--minutes M] the release server under a mixed load for M minutes (default 10): memory, errors, SSE, p99"
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

/// The workspace root: from the variable cargo sets when it runs the xtask (a build shared between
/// clones in one target directory may carry another clone's compile-time path), else the path this
/// was compiled at.
fn root() -> PathBuf {
    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let dir = manifest_dir.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dir.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut c = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    c.current_dir(root());
    c
}

/// Runs one step, announcing it and, when it ends, how long it took (CI's log then shows where
/// the time of a run goes).
fn step(name: &str, cmd: &mut Command) -> Result<(), String> {
    eprintln!("==> {name}");
    let started = std::time::Instant::now();
    let status = cmd.status().map_err(|e| format!("{name}: cannot start: {e}"))?;
    eprintln!("<== {name}: {:.0} s", started.elapsed().as_secs_f64());
    if status.success() { Ok(()) } else { Err(format!("{name} failed ({status})")) }
}

/// Clippy inside the builds instead of beside them: `cargo clippy` checks every dependency a
/// second time (check mode, whose metadata a build cannot reuse: on a cold target directory that
/// was a third of CI's compiling). Cargo runs only the workspace's own crates through
/// `RUSTC_WORKSPACE_WRAPPER`, so clippy-driver lints them while it compiles them, with
/// `-D warnings` (`CLIPPY_ARGS`, the variable `cargo clippy` itself hands the driver); the
/// dependencies are compiled by rustc as in any build and stay shared. clippy-driver turns MIR
/// optimizations off for the crates it lints: the debug builds the tests run have none to speak
/// of; the web app CI builds this way is a few KB larger than the one `cargo xtask run` serves
/// (the size budget test therefore checks the larger one).
fn with_clippy(cmd: &mut Command) -> Result<&mut Command, String> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("{rustc} --print sysroot: {e}"))?;
    let driver = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim()).join("bin").join("clippy-driver");
    if !driver.exists() {
        step("rustup component add clippy", Command::new("rustup").args(["component", "add", "clippy"]))?;
    }
    if !driver.exists() {
        return Err(format!("clippy-driver not found at {}", driver.display()));
    }
    Ok(cmd.env("RUSTC_WORKSPACE_WRAPPER", driver).env("CLIPPY_ARGS", "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"))
}

fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

/// Installs what the tests need and is missing: the wasm32 target (the events crate must build for
/// the browser), python3 (the independent chain check) and the other checkers and tools below.
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
    // validator and schemathesis (tests/tests/api_contract_tools.rs), pyotp (the second factor's
    // codes, tests/tests/api_security.rs).
    // The independent chain and anchor checker (tests/audit/verify_chain.py): SM3 chains and SM2
    // anchors through gmssl; Ed25519 anchors through cryptography (installed just below).
    let gm = Command::new("python3").args(["-c", "import gmssl"]).output();
    if !gm.is_ok_and(|o| o.status.success()) {
        step(
            "pip install gmssl",
            Command::new("sh").args([
                "-c",
                "python3 -m pip install --quiet gmssl || (apt-get update -qq && apt-get install -y -qq python3-pip \
                 && python3 -m pip install --quiet --break-system-packages gmssl)",
            ]),
        )?;
    }
    let api_tools = Command::new("python3")
        .args(["-c", "import jwt, cryptography, openapi_spec_validator, schemathesis, pyotp"])
        .output();
    if !api_tools.is_ok_and(|o| o.status.success()) {
        step(
            "pip install PyJWT cryptography openapi-spec-validator schemathesis pyotp",
            Command::new("sh").args([
                "-c",
                "python3 -m pip install --quiet PyJWT cryptography openapi-spec-validator schemathesis pyotp || \
                 (apt-get update -qq && apt-get install -y -qq python3-pip && python3 -m pip install --quiet \
                 --break-system-packages PyJWT cryptography openapi-spec-validator schemathesis pyotp)",
            ]),
        )?;
    }
    // The deploy/ checks (tests/tests/deploy.rs): Debian's nginx for `nginx -t` and the end-to-end
    // run through a real proxy (installing it starts no service: the machines' policy-rc.d says
    // no, and the tests run their own nginx on free ports), systemd-analyze for the unit file.
    let nginx_missing = !Path::new("/usr/sbin/nginx").exists() && Command::new("nginx").arg("-v").output().is_err();
    let systemd_missing = Command::new("systemd-analyze").arg("--version").output().is_err();
    if nginx_missing || systemd_missing {
        step(
            "apt-get install nginx systemd",
            Command::new("sh")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["-c", "apt-get update -qq && apt-get install -y -qq nginx systemd"]),
        )?;
    }
    // ... and the checkers of what cannot run here (tests/deploy/check_deploy.py): the compose
    // specification's schema (check-jsonschema), Kubernetes' schemas (kubernetes-validate, which
    // brings PyYAML) and BuildKit's Dockerfile parser (dockerfile).
    let deploy_checkers =
        Command::new("python3").args(["-c", "import check_jsonschema, kubernetes_validate, dockerfile, yaml"]).output();
    if !deploy_checkers.is_ok_and(|o| o.status.success()) {
        step(
            "pip install check-jsonschema kubernetes-validate dockerfile",
            Command::new("sh").args([
                "-c",
                "python3 -m pip install --quiet check-jsonschema kubernetes-validate dockerfile || \
                 (apt-get update -qq && apt-get install -y -qq python3-pip && python3 -m pip install --quiet \
                 --break-system-packages check-jsonschema kubernetes-validate dockerfile)",
            ]),
        )?;
    }
    // The browser tests (tests/src/browser.rs): Debian's headless Chromium, driven over the
    // DevTools protocol (no chromedriver), and a CJK font so that Chinese text renders.
    let browser_missing = !Path::new("/usr/bin/chromium").exists();
    let font_missing = !Path::new("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc").exists();
    // chromium-l10n: the browser's own words (file and date inputs) in Chinese.
    let l10n_missing = !Path::new("/usr/lib/chromium/locales/zh-CN.pak").exists();
    if browser_missing || font_missing || l10n_missing {
        step(
            "apt-get install chromium chromium-l10n fonts-wqy-zenhei",
            Command::new("sh")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["-c", "apt-get update -qq && apt-get install -y -qq chromium chromium-l10n fonts-wqy-zenhei"]),
        )?;
    }
    Ok(())
}

fn test() -> Result<(), String> {
    ensure_tools()?;
    step("cargo fmt --check", cargo().args(["fmt", "--all", "--", "--check"]))?;
    // The web app once, first, linted as it compiles (`with_clippy`; its build for wasm32 is also
    // the proof that the events crate builds for the browser): every later cargo command gets the
    // same DUCHA_WEB_DIST, so the binary that the end-to-end and browser tests run has it
    // embedded and nothing builds twice.
    let dist = web(true)?;
    let cargo = || {
        let mut c = cargo();
        c.env("DUCHA_WEB_DIST", &dist);
        c
    };
    // What the test build below does not compile: the xtask outside its tests and the web app's
    // host helpers outside theirs. Small: only their few dependencies are checked.
    step(
        "cargo clippy -D warnings: xtask and the web app's host helpers",
        cargo().args(["clippy", "-p", "xtask", "-p", "ducha-web", "--all-targets", "--", "-D", "warnings"]),
    )?;
    // PostgreSQL for the shared-store suites: the one named by DUCHA_TEST_POSTGRES_URL, or a
    // throw-away cluster started here (installed from Debian's packages when missing) and stopped
    // when the tests end. Either way its suites must run: DUCHA_REQUIRE_POSTGRES turns a missing
    // server into a failure instead of a skip.
    let cluster = match env::var("DUCHA_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => {
            eprintln!("==> PostgreSQL from DUCHA_TEST_POSTGRES_URL");
            None
        }
        _ => Some(postgres::Cluster::start(false)?),
    };
    // Every target of every crate, linted as it compiles (clippy -D warnings); the end-to-end
    // tests run the real binary, which `cargo test` builds (for the backend's own end-to-end
    // tests) and leaves in target/debug before any test starts.
    let mut test = cargo();
    with_clippy(&mut test)?;
    test.args(["test", "--workspace", "--no-fail-fast"]).env("DUCHA_REQUIRE_POSTGRES", "1");
    if let Some(c) = &cluster {
        test.env("DUCHA_TEST_POSTGRES_URL", &c.url);
    }
    let result = step("cargo test (clippy -D warnings on the workspace's crates as they compile)", &mut test);
    drop(cluster);
    result
}

/// Builds the release binary and runs the product on its embedded default: SQLite in `./data`,
/// the demo loaded when the store is empty, the URL and the demo logins printed. Extra arguments
/// go to `ducha serve` (e.g. `--listen 0.0.0.0:8080`).
fn run(args: &[String]) -> Result<(), String> {
    let dist = web(false)?;
    step(
        "cargo build --release -p ducha (web app embedded)",
        cargo().env("DUCHA_WEB_DIST", &dist).args(["build", "--release", "-p", "ducha"]),
    )?;
    let bin = target_dir().join("release").join("ducha");
    let data = env::var("DUCHA_DATA_DIR").unwrap_or_else(|_| root().join("data").display().to_string());
    let mut serve = Command::new(&bin);
    serve.args(["--data-dir", &data, "serve", "--demo"]).args(args);
    step("ducha serve --demo", &mut serve)
}

/// Runs every benchmark; their output is the table to copy into BENCHMARKS.md. Extra arguments go
/// to both (e.g. `--dir /path/on/the/disk/to/measure`).
fn bench(args: &[String]) -> Result<(), String> {
    // `cargo xtask bench peers [--single N …]`: only Ducha next to the two peer libraries.
    if args.first().map(String::as_str) == Some("peers") {
        return peers::run(&args[1..]);
    }
    step(
        "event store: appends and bulk reads (bench_store)",
        cargo().args(["run", "--release", "-p", "ducha", "--example", "bench_store", "--"]).args(args),
    )?;
    step(
        "projections: full rebuild and as-of fold (bench_projection)",
        cargo().args(["run", "--release", "-p", "ducha", "--example", "bench_projection", "--"]).args(args),
    )?;
    // PostgreSQL (issue 8): a throw-away cluster with fsync on (the durability being measured),
    // unless DUCHA_BENCH_POSTGRES_URL names one.
    let cluster = match env::var("DUCHA_BENCH_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => None,
        _ => Some(postgres::Cluster::start(true)?),
    };
    let pg_url = cluster.as_ref().map(|c| c.url.clone()).or_else(|| env::var("DUCHA_BENCH_POSTGRES_URL").ok());
    let pg_url = pg_url.unwrap_or_default();
    step(
        "PostgreSQL store: appends (1 and 8 writers, 2 replicas, bulk) next to raw INSERT commits (bench_postgres)",
        cargo().args(["run", "--release", "-p", "ducha", "--example", "bench_postgres", "--", "--postgres", &pg_url]),
    )?;
    step(
        "PostgreSQL store: full rebuild and as-of fold (bench_projection --postgres)",
        cargo().args(["run", "--release", "-p", "ducha", "--example", "bench_projection", "--", "--postgres", &pg_url]),
    )?;
    // Its own flags (--findings, --ledger) differ from the others': run with its defaults.
    step(
        "documents: report of 500 findings and ledger of 10,000 rows (bench_documents)",
        cargo().args(["run", "--release", "-p", "ducha", "--example", "bench_documents"]),
    )?;
    // Issue 11: the same workload on two peer libraries, interleaved with ours.
    eprintln!("==> peers: Ducha next to eventsourcing (Python) and cqrs-es + sqlite-es (Rust)");
    peers::run(&[])?;
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
    )?;
    // The web app (issue 4): download size and time to a usable dashboard in headless Chromium,
    // against the debug binary the browser tests use (with the web app embedded).
    let dist = web(false)?;
    step(
        "cargo build -p ducha (web app embedded)",
        cargo().env("DUCHA_WEB_DIST", &dist).args(["build", "-p", "ducha"]),
    )?;
    step(
        "web app: gzipped download and time to a usable dashboard (web_bench)",
        cargo().env("DUCHA_WEB_DIST", &dist).args([
            "test",
            "-p",
            "ducha-tests",
            "--test",
            "web_bench",
            "--",
            "--ignored",
            "--nocapture",
        ]),
    )
}

// ---------------------------------------------------------------------------------------------
// The web app: frontend/ (ducha-web) → WASM → wasm-bindgen → wasm-opt → target/web-dist, which
// backend/build.rs embeds into the `ducha` binary when DUCHA_WEB_DIST names it.
// ---------------------------------------------------------------------------------------------

const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The one binaryen release we shrink with (npm `binaryen`; never Debian's, whose version varies).
const BINARYEN_NPM: &str = "binaryen@132";

/// Where the build tools live: `DUCHA_TOOLS_DIR`, default `<repo>/.tools` (CI keeps one across runs).
fn tools_dir() -> PathBuf {
    env::var_os("DUCHA_TOOLS_DIR").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| root().join(".tools"))
}

fn ensure_wasm_target() -> Result<(), String> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    if installed.as_ref().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(WASM_TARGET)) {
        return Ok(());
    }
    step("rustup target add wasm32-unknown-unknown", Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

/// The version of a package in Cargo.lock.
fn locked_version(package: &str) -> Result<String, String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).map_err(|e| format!("Cargo.lock: {e}"))?;
    let name = format!("name = \"{package}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == name
            && let Some(v) = lines.next().and_then(|l| l.trim().strip_prefix("version = \""))
        {
            return Ok(v.trim_end_matches('"').to_owned());
        }
    }
    Err(format!("{package} is not in Cargo.lock"))
}

/// `wasm-bindgen` of exactly the version in Cargo.lock (the CLI and the library must match),
/// installed into the tools folder when it is not there yet.
fn ensure_wasm_bindgen(tools: &Path) -> Result<PathBuf, String> {
    let version = locked_version("wasm-bindgen")?;
    let bin = tools.join("bin").join("wasm-bindgen");
    let current = Command::new(&bin).arg("--version").output();
    if current.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().nth(1) == Some(version.as_str())) {
        return Ok(bin);
    }
    // Not `--locked`: the registry mirror may lack a pinned version of one of the CLI's own
    // dependencies; the CLI's version is what must match.
    step(
        &format!("cargo install wasm-bindgen-cli {version} into {}", tools.display()),
        cargo().arg("install").arg("--root").arg(tools).args(["wasm-bindgen-cli", "--version", &version, "--force"]),
    )?;
    Ok(bin)
}

/// `wasm-opt` from npm `binaryen@132` in the tools folder, installed when npm is there; `None`
/// (the build goes on unshrunk) when it cannot be had.
fn ensure_wasm_opt(tools: &Path) -> Option<PathBuf> {
    let prefix = tools.join("binaryen");
    let bin = prefix.join("node_modules").join("binaryen").join("bin").join("wasm-opt");
    let package = prefix.join("node_modules").join("binaryen").join("package.json");
    let has_132 = std::fs::read_to_string(&package).is_ok_and(|p| p.contains("\"version\": \"132."));
    if !has_132 {
        let installed = step(
            &format!("npm install {BINARYEN_NPM} into {}", prefix.display()),
            Command::new("npm").arg("install").arg("--prefix").arg(&prefix).args([
                "--no-audit",
                "--no-fund",
                BINARYEN_NPM,
            ]),
        );
        if let Err(e) = installed {
            eprintln!("xtask: wasm-opt unavailable ({e}); the WASM is not shrunk");
            return None;
        }
    }
    bin.exists().then_some(bin)
}

/// The wasm-split tool (`wasm_split_cli` of the crate `wasm_split_cli_support`, the splitter
/// cargo-leptos uses for Leptos's `#[lazy]`), of exactly this version, installed into the tools
/// folder when it is not there yet.
const WASM_SPLIT_VERSION: &str = "0.2.4";

fn ensure_wasm_split(tools: &Path) -> Result<PathBuf, String> {
    let bin = tools.join("bin").join("wasm-split-cli");
    let installed = std::fs::read_to_string(tools.join(".crates.toml"))
        .is_ok_and(|t| t.contains(&format!("\"wasm_split_cli_support {WASM_SPLIT_VERSION} ")));
    if installed && bin.exists() {
        return Ok(bin);
    }
    step(
        &format!("cargo install wasm_split_cli_support {WASM_SPLIT_VERSION} (wasm-split-cli) into {}", tools.display()),
        cargo().arg("install").arg("--root").arg(tools).args([
            "wasm_split_cli_support",
            "--version",
            WASM_SPLIT_VERSION,
            "--features",
            "build-binary",
            "--force",
        ]),
    )?;
    Ok(bin)
}

/// What wasm-opt is given besides the module: the size goal and the features rustc's wasm32
/// target uses by default (binaryen must accept them).
const WASM_OPT_FLAGS: [&str; 7] = [
    "-Oz",
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// wasm-opt on every module, as many at once as there are cores (each run is single-threaded),
/// skipping a module that is byte for byte the one shrunk last time: its input and output are
/// kept in `cache`, so a run whose web app did not change spends no time here (it was two minutes
/// of every CI run). The cache is emptied when the tool or its flags change.
fn shrink_all(opt: &Path, modules: &[(String, PathBuf)], cache: &Path) -> Result<Vec<(String, Vec<u8>)>, String> {
    let key = format!("{BINARYEN_NPM} {}", WASM_OPT_FLAGS.join(" "));
    let key_file = cache.join("key");
    if std::fs::read_to_string(&key_file).ok().as_deref() != Some(key.as_str()) {
        let _ = std::fs::remove_dir_all(cache);
        std::fs::create_dir_all(cache).map_err(|e| format!("{}: {e}", cache.display()))?;
        std::fs::write(&key_file, &key).map_err(|e| format!("{}: {e}", key_file.display()))?;
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, modules.len().max(1));
    let mut done: Vec<(usize, Result<Vec<u8>, String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((name, path)) = modules.get(i) else { break mine };
                        mine.push((i, shrink_one(opt, name, path, cache)));
                    }
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    if done.len() != modules.len() {
        return Err("wasm-opt: a worker stopped before its modules were done".to_owned());
    }
    done.sort_by_key(|(i, _)| *i);
    modules.iter().zip(done).map(|((name, _), (_, shrunk))| Ok((name.clone(), shrunk?))).collect()
}

/// One module through wasm-opt, or its output from the last run when the input is the same.
fn shrink_one(opt: &Path, name: &str, path: &Path, cache: &Path) -> Result<Vec<u8>, String> {
    let input = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let (kept_in, kept_out) = (cache.join(format!("{name}.in")), cache.join(format!("{name}.out")));
    if std::fs::read(&kept_in).is_ok_and(|k| k == input)
        && let Ok(out) = std::fs::read(&kept_out)
    {
        return Ok(out);
    }
    let shrunk = cache.join(format!("{name}.tmp"));
    step(
        &format!("web app: wasm-opt {name}"),
        Command::new(opt).arg(path).arg("-o").arg(&shrunk).args(WASM_OPT_FLAGS),
    )?;
    let out = std::fs::read(&shrunk).map_err(|e| format!("read {}: {e}", shrunk.display()))?;
    // The input last, so that an interrupted run never pairs an input with another's output.
    let _ = std::fs::remove_file(&kept_in);
    std::fs::rename(&shrunk, &kept_out).map_err(|e| format!("{}: {e}", kept_out.display()))?;
    std::fs::write(&kept_in, &input).map_err(|e| format!("{}: {e}", kept_in.display()))?;
    Ok(out)
}

/// Writes `bytes` to `path` unless it already holds them (an unchanged file keeps its time, so
/// the `ducha` binary that embeds the folder is not rebuilt for nothing).
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    std::fs::write(path, bytes).map_err(|e| format!("write {}: {e}", path.display()))
}

/// A gzipped copy (`gzip -9 -n`, deterministic) next to a big file: the server sends it to
/// browsers that accept gzip. Skipped when gzip is missing. Returns the gzipped size.
fn gzip_copy(path: &Path) -> Option<usize> {
    let out = Command::new("gzip").args(["-9", "-n", "-c"]).arg(path).output().ok().filter(|o| o.status.success())?;
    let mut gz = path.as_os_str().to_owned();
    gz.push(".gz");
    write_if_changed(Path::new(&gz), &out.stdout).ok()?;
    Some(out.stdout.len())
}

/// Builds the web app into `<target>/web-dist` and returns that folder: the WASM in the
/// `wasm-release` profile, split by wasm-split at the `#[lazy]` screens (frontend/src/app.rs) into
/// the first module and the modules loaded on demand, wasm-bindgen (`--target web`) on the first,
/// wasm-opt -Oz on every module, then our own assets (index.html, boot.js, style.css), with
/// gzipped copies of the JS and the WASM. With `lint`, the web app's crates are linted as they
/// compile (`with_clippy`, for CI).
fn web(lint: bool) -> Result<PathBuf, String> {
    ensure_wasm_target()?;
    let tools = tools_dir();
    let bindgen = ensure_wasm_bindgen(&tools)?;
    let splitter = ensure_wasm_split(&tools)?;
    let mut build = cargo();
    build.args(["build", "-p", "ducha-web", "--target", WASM_TARGET, "--profile", "wasm-release"]);
    if lint {
        with_clippy(&mut build)?;
    }
    let name = if lint {
        "web app: cargo build -p ducha-web (wasm32, wasm-release; clippy -D warnings on its crates)"
    } else {
        "web app: cargo build -p ducha-web (wasm32, wasm-release)"
    };
    step(name, &mut build)?;
    let target = target_dir();
    let wasm = target.join(WASM_TARGET).join("wasm-release").join("ducha_web.wasm");
    // wasm-split: `ducha.wasm` (for wasm-bindgen), one module per group of screens (and chunks of
    // code shared by several groups), and `__wasm_split.js`, which fetches them on demand and
    // imports the wasm-bindgen glue as `./ducha.js`.
    let split = target.join("web-split");
    let _ = std::fs::remove_dir_all(&split);
    step(
        "web app: wasm-split at the #[lazy] screens",
        Command::new(&splitter).arg(&wasm).arg(&split).args(["--target", "web", "--out-name", "ducha"]),
    )?;
    let staging = target.join("web-bindgen");
    let _ = std::fs::remove_dir_all(&staging);
    step(
        "web app: wasm-bindgen --target web",
        Command::new(&bindgen)
            .arg(split.join("ducha.wasm"))
            // As cargo-leptos does for a split module: the split modules call the first one's
            // exports by their linker names.
            .args(["--target", "web", "--no-typescript", "--keep-lld-exports", "--no-demangle", "--out-name", "ducha"])
            .arg("--out-dir")
            .arg(&staging),
    )?;
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("read {}: {e}", p.display()));
    // (name in the folder, file to read): the first module, then the modules loaded on demand.
    let mut modules = vec![("ducha_bg.wasm".to_owned(), staging.join("ducha_bg.wasm"))];
    let mut on_demand: Vec<_> = std::fs::read_dir(&split)
        .map_err(|e| format!("{}: {e}", split.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wasm") && n != "ducha.wasm")
        .collect();
    on_demand.sort();
    modules.extend(on_demand.iter().map(|n| (n.clone(), split.join(n))));
    let mut files = match ensure_wasm_opt(&tools) {
        Some(opt) => shrink_all(&opt, &modules, &target.join("web-opt-cache"))?,
        None => modules.iter().map(|(name, path)| Ok((name.clone(), read(path)?))).collect::<Result<_, String>>()?,
    };
    let frontend = root().join("frontend");
    for (name, path) in [
        ("ducha.js", staging.join("ducha.js")),
        ("__wasm_split.js", split.join("__wasm_split.js")),
        ("index.html", frontend.join("index.html")),
        ("boot.js", frontend.join("boot.js")),
        ("style.css", frontend.join("style.css")),
        ("favicon.svg", frontend.join("favicon.svg")),
    ] {
        files.push((name.to_owned(), read(&path)?));
    }
    let dist = target.join("web-dist");
    std::fs::create_dir_all(&dist).map_err(|e| format!("{}: {e}", dist.display()))?;
    // Only these files (and their .gz) belong in the folder: drop leftovers of older builds.
    if let Ok(entries) = std::fs::read_dir(&dist) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !files.iter().any(|(f, _)| name == *f || name == format!("{f}.gz")) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    // What the browser fetches before the dashboard can draw, and what only some screens need.
    let (mut first, mut later) = (0, 0);
    for (name, bytes) in &files {
        let path = dist.join(name);
        write_if_changed(&path, bytes)?;
        if name.ends_with(".wasm") || name.ends_with(".js") {
            let gz = gzip_copy(&path).unwrap_or(bytes.len());
            if on_demand.contains(name) { later += gz } else { first += gz }
        }
    }
    eprintln!(
        "web app: {} (first load, gzipped: {} KB of WASM and JS; {} modules loaded on demand: {} KB)",
        dist.display(),
        first / 1024,
        on_demand.len(),
        later / 1024
    );
    Ok(dist)
}
