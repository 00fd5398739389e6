//! Ducha's side of the peers benchmark (`cargo xtask bench peers`, issue 11): the same workload as
//! `bench/peers/eventsourcing/bench.py` (Python `eventsourcing` 9.x, SQLite recorder) and
//! `bench/peers/cqrs` (`cqrs-es` + `sqlite-es` 0.5), on `SqliteStore` with `synchronous=FULL`.
//!
//! `cargo run --release -p ducha --example bench_peers -- MODE DIR [N]` prints
//! `ROW name events seconds peak_rss_kib` lines:
//! - `raw DIR N`: raw rusqlite, one row per durable transaction (WAL, synchronous=FULL): the disk's
//!   commit rate, the baseline of the append rows;
//! - `single DIR N`: one writer, N appends of one event each, round-robin over 100 streams
//!   (written first, not timed), each with the expected version it knows;
//! - `concurrent DIR N`: 8 writers (tasks), one append in flight each, N in all, each on its own
//!   100 streams;
//! - `generate DIR N`: N events over 1,000 streams, 1,000 events per append (not timed);
//! - `replay DIR`: every event in log order (pages of 5,000 read two at a time, as `ducha replay`
//!   reads), each payload decoded and folded into a count: events/s and peak RSS (VmHWM);
//! - `aggregate DIR N`: one stream of N events written (not timed), then folded from its events,
//!   whole and up to version N/2, best of 3 each.

// The same allocator as the `ducha` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use ducha::store::conformance::{new_event, request, tenant};
use ducha::store::sqlite::{SqliteOptions, SqliteStore, Synchronous};
use ducha::store::{EventStore, ExpectedVersion, Upto};
use futures_util::StreamExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const TEXT: &str = "整改通知：楼道堆放杂物，限期清理并拍照上传。整改通知：楼道堆放杂物，限期清理并拍照上传。";

#[derive(serde::Serialize, serde::Deserialize)]
struct Noted {
    seq: u64,
    text: String,
}

fn payload(seq: u64) -> String {
    serde_json::to_string(&Noted { seq, text: TEXT.to_owned() }).expect("json")
}

/// The fold: what each peer's aggregate or projection does with an event.
#[derive(Default)]
struct Ledger {
    count: u64,
    chars: usize,
}

impl Ledger {
    fn apply(&mut self, json: &str) {
        let e: Noted = serde_json::from_str(json).expect("payload");
        self.count += 1;
        self.chars += e.text.len();
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn row(name: &str, events: u64, secs: f64) {
    println!("ROW {name} {events} {secs:.6} {}", rss_kib());
}

fn open(dir: &Path) -> SqliteStore {
    std::fs::create_dir_all(dir).expect("dir");
    let opts = SqliteOptions { synchronous: Synchronous::Full, read_only: false, chain_hash: None };
    SqliteStore::open(&dir.join("ducha.db"), opts).expect("open store")
}

fn at() -> ducha_events::time::Timestamp {
    ducha_events::time::parse("2026-11-30T08:00:00Z").expect("time")
}

fn raw(dir: &Path, n: u64) {
    std::fs::create_dir_all(dir).expect("dir");
    let conn = rusqlite::Connection::open(dir.join("raw.db")).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; \
         CREATE TABLE t (id INTEGER PRIMARY KEY, stream TEXT NOT NULL, payload TEXT NOT NULL);",
    )
    .expect("schema");
    let level: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).expect("pragma");
    println!("DEFAULT synchronous=2");
    println!("FORCED synchronous={level}");
    let text = payload(0);
    let started = Instant::now();
    for i in 0..n {
        conn.execute(
            "INSERT INTO t (stream, payload) VALUES (?1, ?2)",
            rusqlite::params![format!("s{}", i % 100), text],
        )
        .expect("insert");
    }
    row("raw", n, started.elapsed().as_secs_f64());
}

async fn appends(dir: &Path, n: u64, writers: u64) {
    let store = Arc::new(open(dir));
    let t = tenant("t1");
    // The streams exist first (not timed), as the peers create their aggregates first.
    let setup = (0..writers)
        .flat_map(|w| (0..100).map(move |a| (w, a)))
        .map(|(w, a)| request(&t, &format!("w{w}-{a}"), ExpectedVersion::NoStream, vec![new_event(&payload(0), at())]))
        .collect();
    assert!(store.append_many(setup).await.iter().all(Result::is_ok));
    let per = n / writers;
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (store, t) = (store.clone(), t.clone());
            tokio::spawn(async move {
                let mut versions = [1u64; 100];
                for i in 0..per {
                    let a = (i % 100) as usize;
                    let req = request(
                        &t,
                        &format!("w{w}-{a}"),
                        ExpectedVersion::Exact(versions[a]),
                        vec![new_event(&payload(i), at())],
                    );
                    versions[a] = store.append(req).await.expect("append").stream_version;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    row(if writers == 1 { "single" } else { "concurrent" }, per * writers, started.elapsed().as_secs_f64());
    store.close().await;
}

/// Writes `events` events to one stream, 1,000 per append.
async fn write_stream(store: &SqliteStore, stream: &str, events: u64) {
    let t = tenant("t1");
    let mut written = 0;
    let mut reqs = Vec::new();
    while written < events {
        let k = (events - written).min(1000);
        let batch = (written..written + k).map(|s| new_event(&payload(s), at())).collect();
        reqs.push(request(&t, stream, ExpectedVersion::Exact(written), batch));
        written += k;
        if reqs.len() == 16 || written == events {
            assert!(store.append_many(std::mem::take(&mut reqs)).await.iter().all(Result::is_ok));
        }
    }
}

async fn generate(dir: &Path, n: u64) {
    let store = open(dir);
    let mut made = 0;
    let mut a = 0;
    while made < n {
        let k = (n - made).min(1000);
        write_stream(&store, &format!("g{a}"), k).await;
        made += k;
        a += 1;
    }
    row("generate", made, 0.0);
    store.close().await;
}

async fn replay(dir: &Path) {
    let store = open(dir);
    let started = Instant::now();
    let head = store.head().await.expect("head");
    let store = &store;
    let ranges = (0..head).step_by(5000).map(|a| (a, (a + 5000).min(head)));
    let mut pages = futures_util::stream::iter(ranges)
        .map(|(a, b)| async move { store.read_for_fold(None, a, 5000, Upto::Position(b)).await })
        .buffered(2);
    let mut ledger = Ledger::default();
    while let Some(page) = pages.next().await {
        for e in page.expect("read") {
            ledger.apply(&e.payload);
        }
    }
    std::hint::black_box(ledger.chars);
    row("replay", ledger.count, started.elapsed().as_secs_f64());
}

async fn fold_stream(store: &SqliteStore, stream: &str, upto_version: u64) -> Ledger {
    let mut ledger = Ledger::default();
    let mut after = 0;
    while after < upto_version {
        let limit = (upto_version - after).min(10_000) as usize;
        let page = store.read_stream(stream, after, limit, Upto::Head).await.expect("read");
        let Some(last) = page.last() else { break };
        after = last.stream_version;
        for e in &page {
            ledger.apply(&e.payload);
        }
    }
    ledger
}

async fn aggregate(dir: &Path, n: u64) {
    let store = open(dir);
    write_stream(&store, "big", n).await;
    let (mut full, mut half) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        let started = Instant::now();
        let all = fold_stream(&store, "t1/big", u64::MAX).await;
        full = full.min(started.elapsed().as_secs_f64());
        assert_eq!(all.count, n);
        let started = Instant::now();
        let mid = fold_stream(&store, "t1/big", n / 2).await;
        half = half.min(started.elapsed().as_secs_f64());
        assert_eq!(mid.count, n / 2);
    }
    row("aggregate-full", n, full);
    row("aggregate-half", n / 2, half);
    store.close().await;
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, dir) = (args[0].as_str(), Path::new(&args[1]));
    let n: u64 = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(0);
    if mode != "raw" {
        // Ducha's own default is FULL (`--synchronous full`); read back what the writer runs with.
        let store = open(dir);
        let level = store.writer_pragmas().await.expect("pragmas").synchronous;
        println!("DEFAULT synchronous=2");
        println!("FORCED synchronous={level}");
        store.close().await;
    }
    match mode {
        "raw" => raw(dir, n),
        "single" => appends(dir, n, 1).await,
        "concurrent" => appends(dir, n, 8).await,
        "generate" => generate(dir, n).await,
        "replay" => replay(dir).await,
        "aggregate" => aggregate(dir, n).await,
        other => panic!("unknown mode {other}"),
    }
}
