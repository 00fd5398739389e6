//! Soak (issue 12): the release server under a mixed load for a given time, looking for what only
//! time shows — memory that keeps growing, errors that come late, live streams that drop frames,
//! latency that creeps up.
//!
//! `cargo build --release -p ducha --examples && target/release/examples/soak [--minutes 10]
//!  [--sse 1000] [--readers 4] [--write-every-ms 1000] [--no-downloads] [--max-slope-kib 1024]
//!  [--sqlite-cache-mb 64]`, or
//!  `cargo xtask soak`.
//!
//! 1. Starts `target/release/ducha serve --demo` on a free port with a fresh temporary data
//!    directory (XX区: the sub-districts xxjd, yyjd and zzjd with their users).
//! 2. Opens `--sse` live streams (`GET /tenants/{t}/live`) spread over the three sub-districts, as
//!    their administrators and (one in ten in xxjd) as 东风社区's officer, who sees fewer events.
//!    Each stream drops its connection now and then (every 30–120 s) and resumes with
//!    `Last-Event-ID`.
//! 3. One writer per sub-district reports progress on its open rectifications (each acknowledged
//!    write's position recorded; every tenth sent twice with one `Idempotency-Key`, which must replay
//!    the first answer) and uploads a small evidence file every twentieth; `--readers` loops read the
//!    dashboard, a ledger page, the ledger as of a past position, the district roll-up, and download
//!    the ledger workbook and an inspection report (DOCX). Each download is a security audit record
//!    (an event); `--no-downloads` leaves them out, and with a long `--write-every-ms` the log then
//!    stays put, which tells memory that grows with the log from memory that grows with time.
//! 4. Samples the server's resident memory every 5 s (`VmRSS`, split into `RssAnon` and
//!    `RssFile` + `RssShmem`, from `/proc/<pid>/status`) and the log's head (`/readyz`), so growth
//!    can be set against the events written. `DUCHA_SOAK_SERVER_WRAPPER="prog args"` runs the server
//!    under a wrapper (a profiler); the samples and the final SIGTERM then go to the `ducha` process
//!    below it.
//! 5. At the end, stops the load, replays each view's whole stream (`Last-Event-ID: 0`) and checks
//!    that every stream received exactly the replay's frames after the position it started at, with
//!    nothing missing, repeated or out of order, across its reconnects.
//!
//! SQLite's page caches are growth that stops: each connection's fills as the log's new pages are
//! touched, up to its `cache_size`. With the server's default (`sqlite_cache_mb = 64`: up to 320 MiB
//! in all) they can still be filling after ten minutes, which the slope cannot tell from a leak
//! (BENCHMARKS.md "Soak", 2026-12-03). `--sqlite-cache-mb 2` (up to 10 MiB in all) runs the server
//! with caches that fill within the warm-up, so the slope after it is only what is left: the read
//! model, buffers, connections.
//!
//! Prints memory over time and its slope after the warm-up (the first fifth of the run), the errors,
//! the streams' check, and each request kind's p99 in the first and the last fifth of the run.
//! Exits non-zero on any error, any missing frame, or a slope above `--max-slope-kib` KiB/min.
//!
//! Every live stream is a connection on both sides: the open-files limit (`ulimit -n`) must allow
//! `2 × --sse` plus a few hundred; it is checked first.

// The same allocator as the `ducha` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TENANTS: [&str; 3] = ["xxjd", "yyjd", "zzjd"];
const DISTRICT: &str = "xxq";
const PASSWORD: &str = "ducha-demo";

struct Args {
    minutes: f64,
    sse: usize,
    readers: usize,
    write_every_ms: u64,
    /// Readers also download the workbook and the report (each download is a security audit
    /// record, so an event in the log).
    downloads: bool,
    max_slope_kib: f64,
    /// The server's `sqlite_cache_mb` (the writer's page cache; each reader keeps a quarter).
    sqlite_cache_mb: u64,
}

/// The soak's default `sqlite_cache_mb`: the server's own default.
const SOAK_SQLITE_CACHE_MB: u64 = 64;

/// The most SQLite's page caches hold with `mb` (as `ducha::store::sqlite` sizes them: the writer
/// `mb`, each of the 16 kept readers a quarter, at least 256 KiB), in MiB.
fn page_cache_caps(mb: u64) -> f64 {
    mb as f64 + 16.0 * (mb as f64 / 4.0).max(0.25)
}

fn args() -> Args {
    let mut a = Args {
        minutes: 10.0,
        sse: 1000,
        readers: 4,
        write_every_ms: 1000,
        downloads: true,
        max_slope_kib: 1024.0,
        sqlite_cache_mb: SOAK_SQLITE_CACHE_MB,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--no-downloads" {
            a.downloads = false;
            continue;
        }
        let value = it.next().unwrap_or_default();
        let n = || value.replace('_', "").parse::<f64>().unwrap_or_else(|_| panic!("{flag} needs a number"));
        match flag.as_str() {
            "--minutes" => a.minutes = n(),
            "--sse" => a.sse = n() as usize,
            "--readers" => a.readers = n() as usize,
            "--write-every-ms" => a.write_every_ms = n() as u64,
            "--max-slope-kib" => a.max_slope_kib = n(),
            "--sqlite-cache-mb" => a.sqlite_cache_mb = n() as u64,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// A small deterministic generator (no `rand` in the tree).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What every task shares: the clock of the run, the latencies and the errors.
struct Shared {
    started: Instant,
    /// (seconds since start, latency ms) by request kind.
    latencies: Mutex<BTreeMap<&'static str, Vec<(f64, f64)>>>,
    errors: Mutex<Vec<String>>,
    error_count: AtomicU64,
    requests: AtomicU64,
    /// The load stops (readers, writers, reconnects).
    stopping: AtomicBool,
}

impl Shared {
    fn record(&self, kind: &'static str, since: Instant) {
        let t = since.duration_since(self.started).as_secs_f64();
        let ms = since.elapsed().as_secs_f64() * 1000.0;
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut l) = self.latencies.lock() {
            l.entry(kind).or_default().push((t, ms));
        }
    }
    fn error(&self, what: String) {
        if self.error_count.fetch_add(1, Ordering::Relaxed) < 20 {
            eprintln!("error: {what}");
            if let Ok(mut e) = self.errors.lock() {
                e.push(what);
            }
        }
    }
}

/// One view of a tenant's stream: the tenant and the user whose token reads it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct View {
    tenant: &'static str,
    user: &'static str,
}

/// What one live stream received: the position it started after and every frame's id.
#[derive(Debug, Default)]
struct Received {
    start: u64,
    ids: Vec<u64>,
    reconnects: u64,
}

/// Reads SSE frames from a response, calling `on_id` with each frame's `id`. Returns when the
/// response ends or `until` says so. The first comment `: live after N` sets `start`.
async fn read_frames(
    resp: &mut reqwest::Response,
    start: &mut Option<u64>,
    mut on_id: impl FnMut(u64) -> bool,
) -> Result<(), String> {
    let mut buf = String::new();
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => return Err("the stream ended".into()),
            Err(e) => return Err(format!("stream read: {e}")),
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            for line in frame.lines() {
                if let Some(n) = line.strip_prefix(": live after ") {
                    start.get_or_insert(n.trim().parse().map_err(|_| format!("bad start {line}"))?);
                } else if let Some(id) = line.strip_prefix("id: ") {
                    let id = id.trim().parse().map_err(|_| format!("bad id {line}"))?;
                    if !on_id(id) {
                        return Ok(());
                    }
                } else if line == "event: shutdown" {
                    return Err("the server shut the stream down".into());
                }
            }
        }
    }
}

async fn open_live(
    client: &reqwest::Client,
    base: &str,
    view: &View,
    token: &str,
    last: Option<u64>,
) -> Result<reqwest::Response, String> {
    let mut req = client.get(format!("{base}/api/v1/tenants/{}/live", view.tenant)).bearer_auth(token);
    if let Some(id) = last {
        req = req.header("Last-Event-ID", id.to_string());
    }
    let resp = req.send().await.map_err(|e| format!("live connect: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("live connect: {}", resp.status()));
    }
    Ok(resp)
}

/// One live stream for the whole run: reconnects with `Last-Event-ID` every 30–120 s; once the
/// load has stopped and the view's last frame is known (`target`), reads on until it has it or the
/// drain time (`drain_until`) has passed.
#[allow(clippy::too_many_arguments)]
async fn live_stream(
    client: reqwest::Client,
    base: String,
    view: View,
    token: String,
    shared: Arc<Shared>,
    mut target: tokio::sync::watch::Receiver<Option<u64>>,
    drain_until: Arc<Mutex<Option<Instant>>>,
    seed: u64,
) -> Received {
    let mut rng = Rng(seed | 1);
    let mut got = Received::default();
    let mut start = None;
    let mut connects = 0u64;
    let drained = |d: &Arc<Mutex<Option<Instant>>>| d.lock().ok().and_then(|d| *d).is_some_and(|d| Instant::now() > d);
    loop {
        let last = got.ids.last().copied().or(start);
        let goal = *target.borrow();
        if let Some(t) = goal
            && (last.is_some_and(|l| l >= t) || drained(&drain_until))
        {
            break;
        }
        let mut resp = match open_live(&client, &base, &view, &token, last).await {
            Ok(r) => r,
            Err(e) => {
                shared.error(format!("{view:?}: {e}"));
                if drained(&drain_until) {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        connects += 1;
        // Reconnect after a while during the load; after it, at most a minute more.
        let stay = if shared.stopping.load(Ordering::Relaxed) { 60 } else { 30 + rng.below(90) };
        let until = tokio::time::Instant::now() + Duration::from_secs(stay);
        let goal_seen = target.clone();
        let ids = &mut got.ids;
        let mut bad = None;
        let read = read_frames(&mut resp, &mut start, |id| {
            if ids.last().is_some_and(|l| id <= *l) {
                bad = Some(format!("{view:?}: frame {id} after {:?}", ids.last()));
            }
            ids.push(id);
            !goal_seen.borrow().is_some_and(|t| id >= t)
        });
        tokio::select! {
            r = read => if let Err(e) = r { shared.error(format!("{view:?}: {e}")) },
            _ = tokio::time::sleep_until(until) => {}
            // The target was just set: check whether this stream already has it.
            _ = target.changed(), if goal.is_none() => {}
        }
        if let Some(b) = bad.take() {
            shared.error(b);
        }
    }
    got.start = start.unwrap_or(0);
    got.reconnects = connects.saturating_sub(1);
    got
}

/// The whole stream of a view from the start of the log (`Last-Event-ID: 0`), read until it has
/// `last_write` and then has been quiet for 3 s (at most two minutes).
async fn replay(
    client: &reqwest::Client,
    base: &str,
    view: &View,
    token: &str,
    last_write: u64,
) -> Result<Vec<u64>, String> {
    let mut resp = open_live(client, base, view, token, Some(0)).await?;
    let ids = Arc::new(Mutex::new(Vec::new()));
    let sink = ids.clone();
    let reading = tokio::spawn(async move {
        let mut start = None;
        read_frames(&mut resp, &mut start, |id| sink.lock().map(|mut s| s.push(id)).is_ok()).await
    });
    let began = Instant::now();
    let (mut seen, mut quiet_since) = (0, Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (n, last) = ids.lock().map(|i| (i.len(), i.last().copied())).unwrap_or((0, None));
        if n != seen {
            (seen, quiet_since) = (n, Instant::now());
        }
        let complete = last.is_some_and(|l| l >= last_write) || last_write == 0;
        if (complete && quiet_since.elapsed() > Duration::from_secs(3)) || began.elapsed() > Duration::from_secs(120) {
            break;
        }
        if reading.is_finished() {
            break;
        }
    }
    reading.abort();
    let out = ids.lock().map(|i| i.clone()).unwrap_or_default();
    Ok(out)
}

async fn login(client: &reqwest::Client, base: &str, user: &str) -> String {
    let body = format!(r#"{{"username":"{user}","password":"{PASSWORD}"}}"#);
    let resp = client
        .post(format!("{base}/api/v1/auth/login"))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("login {user}: {e}"));
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "login {user}: {status} {text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("login json");
    v["access_token"].as_str().expect("access_token").to_owned()
}

/// A GET whose body is read whole; `None` (and an error recorded) unless it answers 2xx.
async fn get(shared: &Shared, client: &reqwest::Client, kind: &'static str, url: &str, token: &str) -> Option<Vec<u8>> {
    let t = Instant::now();
    let result: Result<Vec<u8>, String> = async {
        let resp = client.get(url).bearer_auth(token).send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(body.to_vec())
        } else {
            Err(format!("{status} {}", String::from_utf8_lossy(&body)))
        }
    }
    .await;
    match result {
        Ok(b) => {
            shared.record(kind, t);
            Some(b)
        }
        Err(e) => {
            shared.error(format!("{kind} {url}: {e}"));
            None
        }
    }
}

/// An open rectification: (inspection, finding).
type Open = (String, String);

async fn open_rectifications(client: &reqwest::Client, base: &str, tenant: &str, token: &str) -> Vec<Open> {
    let mut open = Vec::new();
    for status in ["assigned", "in_progress", "returned"] {
        let url = format!("{base}/api/v1/tenants/{tenant}/ledger?status={status}&page_size=500");
        let text = client.get(&url).bearer_auth(token).send().await.expect("ledger").text().await.expect("ledger");
        let v: serde_json::Value = serde_json::from_str(&text).expect("ledger json");
        for row in v["rows"].as_array().into_iter().flatten() {
            if let (Some(i), Some(f)) = (row["source"]["inspection_id"].as_str(), row["finding_id"].as_str()) {
                open.push((i.to_owned(), f.to_owned()));
            }
        }
    }
    open
}

/// One sub-district's writer: progress reports round the open rectifications, an idempotent retry
/// every tenth, an evidence upload every twentieth. Returns the highest acknowledged position.
async fn writer(
    shared: Arc<Shared>,
    client: reqwest::Client,
    base: String,
    tenant: &'static str,
    token: String,
    open: Vec<Open>,
    every: Duration,
) -> u64 {
    let mut highest = 0;
    let mut n: u64 = 0;
    let mut tick = tokio::time::interval(every);
    while !shared.stopping.load(Ordering::Relaxed) && !open.is_empty() {
        // The next tick, or the end of the load (a long interval must not hold up the report).
        let ticked = loop {
            tokio::select! {
                _ = tick.tick() => break true,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    if shared.stopping.load(Ordering::Relaxed) {
                        break false;
                    }
                }
            }
        };
        if !ticked {
            break;
        }
        n += 1;
        let (inspection, finding) = &open[(n as usize) % open.len()];
        let url = format!("{base}/api/v1/tenants/{tenant}/inspections/{inspection}/findings/{finding}/progress");
        let key = format!("soak-{tenant}-{n}");
        let body = format!(r#"{{"text":"第{n}次进展：已召开专题会议部署整改，完善学习记录。","evidence":[]}}"#);
        let send = || {
            client
                .post(&url)
                .bearer_auth(&token)
                .header("Content-Type", "application/json")
                .header("Idempotency-Key", &key)
                .body(body.clone())
                .send()
        };
        let t = Instant::now();
        let first = match send().await {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                let status = r.status();
                shared.error(format!("progress {url}: {status} {}", r.text().await.unwrap_or_default()));
                continue;
            }
            Err(e) => {
                shared.error(format!("progress {url}: {e}"));
                continue;
            }
        };
        let position = |r: &reqwest::Response| {
            r.headers().get("x-ducha-position").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok())
        };
        let Some(p) = position(&first) else {
            shared.error(format!("progress {url}: no X-Ducha-Position"));
            continue;
        };
        let _ = first.bytes().await;
        shared.record("POST progress", t);
        highest = highest.max(p);
        if n.is_multiple_of(10) {
            let t = Instant::now();
            match send().await {
                Ok(r) if r.status().is_success() => {
                    let replayed = r.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
                    // A replayed answer carries the head at the time of the retry: at least the
                    // first answer's position (read-your-writes), not necessarily equal to it.
                    if !replayed || position(&r).is_none_or(|q| q < p) {
                        shared.error(format!("retry of {key}: replayed {replayed}, position {:?} < {p}", position(&r)));
                    }
                    let _ = r.bytes().await;
                    shared.record("POST progress (retry)", t);
                }
                Ok(r) => shared.error(format!("retry of {key}: {}", r.status())),
                Err(e) => shared.error(format!("retry of {key}: {e}")),
            }
        }
        if n.is_multiple_of(20) {
            let boundary = "soak-boundary-5b1f";
            let body = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"整改说明-{n}.txt\"\r\nContent-Type: text/plain\r\n\r\n{tenant} 第{n}次整改说明。\r\n--{boundary}--\r\n"
            );
            let t = Instant::now();
            let r = client
                .post(format!("{base}/api/v1/tenants/{tenant}/evidence"))
                .bearer_auth(&token)
                .header("Content-Type", format!("multipart/form-data; boundary={boundary}"))
                .body(body)
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => {
                    let _ = r.bytes().await;
                    shared.record("POST evidence", t);
                }
                Ok(r) => shared.error(format!("evidence: {} {}", r.status(), r.text().await.unwrap_or_default())),
                Err(e) => shared.error(format!("evidence: {e}")),
            }
        }
    }
    highest
}

/// A reader: random reads and downloads with a short pause.
#[allow(clippy::too_many_arguments)]
async fn reader(
    shared: Arc<Shared>,
    client: reqwest::Client,
    base: String,
    tokens: Arc<BTreeMap<&'static str, String>>,
    district_token: String,
    inspections: Arc<BTreeMap<&'static str, String>>,
    seed: u64,
    downloads: bool,
) {
    let mut rng = Rng(seed | 1);
    while !shared.stopping.load(Ordering::Relaxed) {
        let tenant = TENANTS[rng.below(3) as usize];
        let token = &tokens[tenant];
        match rng.below(if downloads { 10 } else { 8 }) {
            0..=2 => {
                get(&shared, &client, "GET dashboard", &format!("{base}/api/v1/tenants/{tenant}/dashboard"), token)
                    .await;
            }
            3..=4 => {
                let url = format!("{base}/api/v1/tenants/{tenant}/ledger?page=1&page_size=50");
                get(&shared, &client, "GET ledger", &url, token).await;
            }
            5 => {
                let url = format!("{base}/api/v1/tenants/{tenant}/ledger?at_position={}", 50 + rng.below(100));
                get(&shared, &client, "GET ledger as of", &url, token).await;
            }
            6..=7 => {
                let url = format!("{base}/api/v1/districts/{DISTRICT}/rollup?group_by=subdistrict");
                get(&shared, &client, "GET rollup", &url, &district_token).await;
            }
            8 => {
                let url = format!("{base}/api/v1/tenants/{tenant}/ledger.xlsx");
                if let Some(b) = get(&shared, &client, "GET ledger.xlsx", &url, token).await
                    && !b.starts_with(b"PK")
                {
                    shared.error(format!("{url}: not a workbook"));
                }
            }
            _ => {
                if let Some(i) = inspections.get(tenant) {
                    let url = format!("{base}/api/v1/tenants/{tenant}/inspections/{i}/report");
                    if let Some(b) = get(&shared, &client, "GET report.docx", &url, token).await
                        && !b.starts_with(b"PK")
                    {
                        shared.error(format!("{url}: not a DOCX"));
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20 + rng.below(60))).await;
    }
}

/// The `ducha` process at or below `pid` (a wrapper such as heaptrack starts it as a child).
fn server_under(pid: u32) -> Option<u32> {
    let comm = |p: u32| std::fs::read_to_string(format!("/proc/{p}/comm")).ok().map(|c| c.trim().to_owned());
    if comm(pid).as_deref() == Some("ducha") {
        return Some(pid);
    }
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children.split_whitespace().filter_map(|c| c.parse().ok()).find_map(server_under)
}

/// One reading of the server: resident memory (bytes) split into anonymous memory (the heap: the
/// read model, caches, buffers) and mapped files and shared memory (SQLite's WAL index), threads,
/// and the log's head (events in the log).
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    t: f64,
    rss: u64,
    anon: u64,
    file: u64,
    threads: u64,
    /// Open file descriptors: the listener, the database files and every client connection (a
    /// live stream whose client has gone and that the server still holds shows here).
    fds: u64,
    head: u64,
}

fn sample_of(pid: u32) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status.lines().find(|l| l.starts_with(name))?.split_whitespace().nth(1)?.parse().ok()
    };
    Some(Sample {
        rss: field("VmRSS:")? * 1024,
        anon: field("RssAnon:").unwrap_or(0) * 1024,
        file: (field("RssFile:").unwrap_or(0) + field("RssShmem:").unwrap_or(0)) * 1024,
        threads: field("Threads:")?,
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64),
        ..Sample::default()
    })
}

/// The log's head, from `/readyz`.
async fn log_head(client: &reqwest::Client, base: &str) -> Option<u64> {
    let r = client.get(format!("{base}/readyz")).send().await.ok()?;
    let v: serde_json::Value = serde_json::from_str(&r.text().await.ok()?).ok()?;
    v["head"].as_u64()
}

fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Least-squares slope of (minutes, bytes): bytes per minute.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let num: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = points.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    if den == 0.0 { 0.0 } else { num / den }
}

fn p99(samples: &mut [f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_by(f64::total_cmp);
    let i = ((samples.len() as f64 * 0.99).ceil() as usize).clamp(1, samples.len()) - 1;
    Some(samples[i])
}

fn main() {
    let a = args();
    let needed = 2 * a.sse as u64 + 512;
    match open_files_limit() {
        Some(l) if l < needed => {
            eprintln!(
                "soak: the open-files limit is {l}, {needed} are needed for {} live streams: `ulimit -n {needed}` first",
                a.sse
            );
            std::process::exit(2);
        }
        _ => {}
    }
    let exe = std::env::current_exe().expect("exe");
    let bin = exe.parent().and_then(Path::parent).map(|p| p.join("ducha")).expect("target dir");
    assert!(bin.exists(), "build the server first: cargo build --release -p ducha ({})", bin.display());
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir: PathBuf = tmp.path().to_path_buf();
    let log_path = dir.join("server.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    // `DUCHA_SOAK_SERVER_WRAPPER="heaptrack -o FILE"` runs the server under a profiler.
    let wrapper: Vec<String> =
        std::env::var("DUCHA_SOAK_SERVER_WRAPPER").unwrap_or_default().split_whitespace().map(str::to_owned).collect();
    let mut server = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    let mut server = server
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .env("DUCHA_LOG_LEVEL", "warn")
        .env("DUCHA_SQLITE_CACHE_MB", a.sqlite_cache_mb.to_string())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start ducha serve");
    let pid = server.id();
    let mut out = server.stdout.take().expect("stdout");
    let mut seen = String::new();
    let addr = loop {
        let mut buf = [0u8; 256];
        let n = out.read(&mut buf).expect("read stdout");
        assert!(n > 0, "server exited: {seen}\n{}", std::fs::read_to_string(&log_path).unwrap_or_default());
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if let Some(rest) = seen.split("listening on http://").nth(1)
            && let Some(addr) = rest.split_whitespace().next()
            && rest.contains('\n')
        {
            break addr.to_owned();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    // Under a wrapper, the server is its descendant: measure and stop that process.
    let pid = if wrapper.is_empty() { pid } else { server_under(pid).unwrap_or(pid) };
    let base = format!("http://{addr}");
    let run = Duration::from_secs_f64(a.minutes * 60.0);
    eprintln!(
        "soak: server pid {pid} on {addr}, data in {}; {} live streams, {} readers, 3 writers (one every {} ms each) for {:.1} min",
        dir.display(),
        a.sse,
        a.readers,
        a.write_every_ms,
        a.minutes
    );

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let outcome = rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(4096)
            // Below the server's keep-alive (5 s): a pooled connection is never reused just as the
            // server closes it (which would be the client's error, not the server's).
            .pool_idle_timeout(Duration::from_secs(2))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let mut tokens: BTreeMap<&'static str, String> = BTreeMap::new();
        for (t, user) in TENANTS.iter().zip(["xx-admin", "yy-admin", "zz-admin"]) {
            tokens.insert(*t, login(&client, &base, user).await);
        }
        let officer = login(&client, &base, "xx-dongfeng").await;
        let district = login(&client, &base, "qu-xcb").await;
        let mut inspections = BTreeMap::new();
        let mut open = BTreeMap::new();
        for t in TENANTS {
            let o = open_rectifications(&client, &base, t, &tokens[t]).await;
            assert!(!o.is_empty(), "{t} has no open rectification to report progress on");
            inspections.insert(t, o[0].0.clone());
            open.insert(t, o);
        }
        let shared = Arc::new(Shared {
            started: Instant::now(),
            latencies: Mutex::new(BTreeMap::new()),
            errors: Mutex::new(Vec::new()),
            error_count: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
        });

        // The live streams, opened a hundred at a time.
        let mut views: BTreeMap<View, tokio::sync::watch::Sender<Option<u64>>> = BTreeMap::new();
        let drain_until = Arc::new(Mutex::new(None));
        let mut streams = Vec::new();
        for i in 0..a.sse {
            let tenant = TENANTS[i % 3];
            let (user, token) = if tenant == "xxjd" && i % 10 == 0 {
                ("xx-dongfeng", officer.clone())
            } else {
                (["xx-admin", "yy-admin", "zz-admin"][i % 3], tokens[tenant].clone())
            };
            let view = View { tenant, user };
            let target = views.entry(view.clone()).or_insert_with(|| tokio::sync::watch::channel(None).0).subscribe();
            streams.push((
                view.clone(),
                tokio::spawn(live_stream(
                    client.clone(),
                    base.clone(),
                    view,
                    token,
                    shared.clone(),
                    target,
                    drain_until.clone(),
                    0x9E37_79B9_7F4A_7C15 ^ i as u64,
                )),
            ));
            if i % 100 == 99 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        eprintln!("soak: {} live streams opening", streams.len());

        let every = Duration::from_millis(a.write_every_ms.max(1));
        let writers: Vec<_> = TENANTS
            .iter()
            .map(|t| {
                tokio::spawn(writer(
                    shared.clone(),
                    client.clone(),
                    base.clone(),
                    t,
                    tokens[t].clone(),
                    open[t].clone(),
                    every,
                ))
            })
            .collect();
        let tokens = Arc::new(tokens);
        let inspections = Arc::new(inspections);
        let readers: Vec<_> = (0..a.readers)
            .map(|i| {
                tokio::spawn(reader(
                    shared.clone(),
                    client.clone(),
                    base.clone(),
                    tokens.clone(),
                    district.clone(),
                    inspections.clone(),
                    0xD1B5_4A32_D192_ED03 ^ i as u64,
                    a.downloads,
                ))
            })
            .collect();

        // Memory, every 5 s, until the end of the run.
        let mut memory: Vec<Sample> = Vec::new();
        let mut next_report = 60.0;
        while shared.started.elapsed() < run {
            if let Some(mut sample) = sample_of(pid) {
                sample.t = shared.started.elapsed().as_secs_f64();
                sample.head = log_head(&client, &base).await.or(memory.last().map(|m| m.head)).unwrap_or(0);
                memory.push(sample);
            } else {
                shared.error("the server is gone".into());
                break;
            }
            let t = shared.started.elapsed().as_secs_f64();
            if t >= next_report {
                next_report += 60.0;
                eprintln!(
                    "soak: {:.0} s, RSS {:.1} MiB, {} requests, {} errors",
                    t,
                    memory.last().map_or(0.0, |m| m.rss as f64 / 1048576.0),
                    shared.requests.load(Ordering::Relaxed),
                    shared.error_count.load(Ordering::Relaxed)
                );
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        let elapsed = shared.started.elapsed().as_secs_f64();
        shared.stopping.store(true, Ordering::Relaxed);
        let mut highest: BTreeMap<&str, u64> = BTreeMap::new();
        for (t, w) in TENANTS.iter().zip(writers) {
            highest.insert(t, w.await.unwrap_or(0));
        }
        for r in readers {
            let _ = r.await;
        }

        // The replay of each view: every frame from the start of the log.
        let mut replays: BTreeMap<View, Vec<u64>> = BTreeMap::new();
        for view in views.keys() {
            let token = if view.user == "xx-dongfeng" { officer.clone() } else { tokens[view.tenant].clone() };
            // The officer's view has only some of the tenant's events: it may end before the last write.
            let last_write = if view.user == "xx-dongfeng" { 0 } else { highest[view.tenant] };
            match replay(&client, &base, view, &token, last_write).await {
                Ok(ids) => {
                    replays.insert(view.clone(), ids);
                }
                Err(e) => shared.error(format!("replay {view:?}: {e}")),
            }
        }
        if let Ok(mut d) = drain_until.lock() {
            *d = Some(Instant::now() + Duration::from_secs(60));
        }
        for (view, tx) in &views {
            let _ = tx.send(Some(replays.get(view).and_then(|r| r.last().copied()).unwrap_or(0)));
        }
        let mut missing = 0usize;
        let mut extra = 0usize;
        let mut frames = 0usize;
        let mut reconnects = 0u64;
        let mut checked = 0usize;
        for (view, handle) in streams {
            let Ok(got) = handle.await else {
                shared.error(format!("{view:?}: the stream's task failed"));
                continue;
            };
            let Some(replay) = replays.get(&view) else { continue };
            let expected: Vec<u64> = replay.iter().copied().filter(|id| *id > got.start).collect();
            frames += got.ids.len();
            reconnects += got.reconnects;
            checked += 1;
            if got.ids != expected {
                let want: std::collections::BTreeSet<u64> = expected.iter().copied().collect();
                let have: std::collections::BTreeSet<u64> = got.ids.iter().copied().collect();
                let m = want.difference(&have).count();
                let x = got.ids.len() - have.len() + have.difference(&want).count();
                if missing + extra == 0 {
                    eprintln!(
                        "soak: {view:?} started after {}: {} frames, the replay has {} after it ({m} missing, {x} extra)",
                        got.start,
                        got.ids.len(),
                        expected.len()
                    );
                }
                missing += m;
                extra += x;
                if m + x == 0 {
                    missing += 1;
                }
            }
        }
        Outcome {
            elapsed,
            memory,
            latencies: std::mem::take(&mut *shared.latencies.lock().expect("latencies")),
            errors: std::mem::take(&mut *shared.errors.lock().expect("errors")),
            error_count: shared.error_count.load(Ordering::Relaxed),
            requests: shared.requests.load(Ordering::Relaxed),
            streams: checked,
            frames,
            reconnects,
            missing,
            extra,
            replay_lengths: replays.iter().map(|(v, r)| (format!("{}/{}", v.tenant, v.user), r.len())).collect(),
        }
    });
    // `DUCHA_SOAK_STOP_SIGNAL=KILL` (the heap profile's run) leaves the heap as it was at the end,
    // not as a graceful stop (which saves a checkpoint and frees the model) leaves it.
    let signal = std::env::var("DUCHA_SOAK_STOP_SIGNAL").unwrap_or_else(|_| "TERM".to_owned());
    let _ = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
    let _ = server.wait();
    let failed = report(&a, &outcome);
    if failed {
        eprintln!(
            "soak: server log: {}",
            std::fs::read_to_string(&log_path)
                .unwrap_or_default()
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::process::exit(1);
    }
}

struct Outcome {
    elapsed: f64,
    /// (seconds, RSS bytes, threads).
    memory: Vec<Sample>,
    latencies: BTreeMap<&'static str, Vec<(f64, f64)>>,
    errors: Vec<String>,
    error_count: u64,
    requests: u64,
    streams: usize,
    frames: usize,
    reconnects: u64,
    missing: usize,
    extra: usize,
    replay_lengths: Vec<(String, usize)>,
}

/// Prints the figures; true when the soak failed.
fn report(a: &Args, o: &Outcome) -> bool {
    let fifth = o.elapsed / 5.0;
    println!(
        "\n## Soak: {:.1} min, {} live streams, {} readers, 3 writers; SQLite page caches: {} MiB for the writer, up to {:.1} MiB in all (`sqlite_cache_mb`; the production default 64: up to {:.0} MiB)\n",
        o.elapsed / 60.0,
        a.sse,
        a.readers,
        a.sqlite_cache_mb,
        page_cache_caps(a.sqlite_cache_mb),
        page_cache_caps(64)
    );
    // Every 30 s for short runs, every minute for long ones.
    let step = if o.elapsed < 600.0 { 30.0 } else { 60.0 };
    println!(
        "Memory (server RSS: anonymous, and mapped files + shared memory), threads and the log's head, every {step:.0} s:\n"
    );
    println!("| minute | RSS MiB | anon MiB | files+shm MiB | threads | open files | events in the log |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let row = |m: &Sample, last: &str| {
        let mb = |b: u64| b as f64 / 1048576.0;
        println!(
            "| {:.1}{last} | {:.1} | {:.1} | {:.1} | {} | {} | {} |",
            m.t / 60.0,
            mb(m.rss),
            mb(m.anon),
            mb(m.file),
            m.threads,
            m.fds,
            m.head
        );
    };
    let mut next = 0.0;
    for m in &o.memory {
        if m.t >= next {
            row(m, "");
            next += step;
        }
    }
    if let Some(m) = o.memory.last() {
        row(m, " (last)");
    }
    let after: Vec<&Sample> = o.memory.iter().filter(|m| m.t >= fifth).collect();
    let series = |f: fn(&Sample) -> f64| -> Vec<(f64, f64)> { after.iter().map(|m| (m.t / 60.0, f(m))).collect() };
    let s = slope(&series(|m| m.rss as f64));
    let anon = slope(&series(|m| m.anon as f64));
    let events = slope(&series(|m| m.head as f64));
    println!(
        "\nAfter the warm-up: anonymous memory {:+.1} KiB/min, the log {:+.0} events/min{}",
        anon / 1024.0,
        events,
        if events >= 1.0 {
            format!(" ({:+.2} KiB of anonymous memory per event written)", anon / 1024.0 / events)
        } else {
            String::new()
        }
    );
    let growing = s / 1024.0 > a.max_slope_kib;
    println!(
        "\nSlope after the warm-up (the first {:.0} s), least squares over {} samples: {:+.0} bytes/min ({:+.1} KiB/min; limit {} KiB/min){}",
        fifth,
        after.len(),
        s,
        s / 1024.0,
        a.max_slope_kib,
        if growing { " — GROWING" } else { "" }
    );
    println!("\nRequests: {} answered, {} errors", o.requests, o.error_count);
    for e in &o.errors {
        println!("  - {e}");
    }
    println!(
        "\nLive streams: {} checked, {} frames received, {} reconnects with Last-Event-ID; against the replay: {} missing, {} extra or repeated",
        o.streams, o.frames, o.reconnects, o.missing, o.extra
    );
    for (v, n) in &o.replay_lengths {
        println!("  replay {v}: {n} frames");
    }
    println!("\n| request | n | p99 ms, first fifth | p99 ms, last fifth |");
    println!("| --- | ---: | ---: | ---: |");
    for (kind, samples) in &o.latencies {
        let mut first: Vec<f64> = samples.iter().filter(|(t, _)| *t < fifth).map(|s| s.1).collect();
        let mut last: Vec<f64> = samples.iter().filter(|(t, _)| *t >= o.elapsed - fifth).map(|s| s.1).collect();
        let show = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.1}"));
        println!("| {kind} | {} | {} | {} |", samples.len(), show(p99(&mut first)), show(p99(&mut last)));
    }
    let failed = growing || o.error_count > 0 || o.missing > 0 || o.extra > 0 || o.streams < a.sse;
    println!("\n{}", if failed { "SOAK FAILED" } else { "soak passed: flat memory, no errors, no frame missing" });
    failed
}
