//! Append and bulk-read throughput of the SQLite store against a raw rusqlite baseline, same disk.
//!
//! `cargo run --release -p ducha --example bench_store -- --events N [--single N] [--read-events N] [--dir D]`
//!
//! - raw:       N one-row durable transactions (WAL, synchronous=FULL) with plain rusqlite, same schema;
//! - 1 writer:  N single-event appends through `SqliteStore`, one at a time;
//! - 8 writers: 8 tasks appending single events over 64 tenants (group commit), one in flight each,
//!   then with 32 in flight each;
//! - bulk load: `append_many` batches up to `--read-events`, then the streaming reader over all of it.

// The same allocator as the `ducha` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use ducha::store::conformance::{new_event, request, tenant};
use ducha::store::sqlite::{SCHEMA_V1, SqliteOptions, SqliteStore};
use ducha::store::{EventStore, ExpectedVersion, StoreError, Upto};
use ducha_events::ids::TenantId;
use ducha_events::time::Timestamp;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const PAYLOAD: &str = r#"{"community_id":"c-07","category":"理论学习","description":"理论学习中心组学习不够深入，学习记录不完整","severity":"medium"}"#;

struct Args {
    events: usize,
    single: usize,
    read_events: usize,
    dir: Option<String>,
}

fn args() -> Args {
    let mut a = Args { events: 100_000, single: 2_000, read_events: 1_000_000, dir: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        let n = || value.replace('_', "").parse::<usize>().unwrap_or_else(|_| panic!("{flag} needs a number"));
        match flag.as_str() {
            "--events" => a.events = n(),
            "--single" => a.single = n(),
            "--read-events" => a.read_events = n(),
            "--dir" => a.dir = Some(value),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn now() -> Timestamp {
    std::time::SystemTime::now().into()
}

fn rss_mib() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |key: &str| {
        status.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)).unwrap_or("?").to_owned()
    };
    format!("RSS {} KiB (anonymous {} KiB, file-backed/mmap {} KiB)", get("VmRSS:"), get("RssAnon:"), get("RssFile:"))
}

fn raw_connection(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)).expect("wal");
    conn.execute_batch("PRAGMA synchronous = FULL;").expect("sync");
    conn.execute_batch(SCHEMA_V1).expect("schema");
    conn
}

/// `n` one-row durable transactions starting at position `from`; returns the seconds taken.
fn raw_baseline(conn: &rusqlite::Connection, from: usize, n: usize) -> f64 {
    let mut stmt = conn
        .prepare(
            "INSERT INTO events (position, tenant, tenant_seq, event_id, stream, stream_version, event_type, \
             schema_version, occurred_at, actor_user, actor_role, correlation_id, causation_id, payload, prev_hash, hash) \
             VALUES (?1, 't', ?1, ?2, 't/s', ?1, 'FindingRecorded', 1, '2023-03-01T00:00:00.000000Z', 'u', 'inspector', \
             'c', NULL, ?3, ?4, ?4)",
        )
        .expect("prepare");
    let hash = "0".repeat(64);
    let start = Instant::now();
    for i in from..from + n {
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        stmt.execute(rusqlite::params![i as i64, uuid::Uuid::now_v7().to_string(), PAYLOAD, hash]).expect("insert");
        conn.execute_batch("COMMIT").expect("commit");
    }
    start.elapsed().as_secs_f64()
}

/// `n` single-event appends, one at a time; returns the seconds taken.
async fn one_writer(store: &SqliteStore, n: usize) -> f64 {
    let t = tenant("single");
    let start = Instant::now();
    for i in 0..n {
        let req = request(&t, &format!("s{}", i % 100), ExpectedVersion::Any, vec![new_event(PAYLOAD, now())]);
        store.append(req).await.expect("append");
    }
    start.elapsed().as_secs_f64()
}

async fn many_writers(store: &Arc<SqliteStore>, writers: usize, inflight: usize, n: usize) -> (f64, f64) {
    let tenants: Arc<Vec<TenantId>> = Arc::new((0..64).map(|i| tenant(&format!("jd-{i}"))).collect());
    let per_task = n / (writers * inflight);
    let before = store.head().await.expect("head");
    let (commits_before, requests_before) = store.group_commits();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers * inflight {
        let store = store.clone();
        let tenants = tenants.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                let t = &tenants[(w * 7 + i) % tenants.len()];
                let req =
                    request(t, &format!("w{w}-{}", i % 10), ExpectedVersion::Any, vec![new_event(PAYLOAD, now())]);
                store.append(req).await.expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let secs = start.elapsed().as_secs_f64();
    let appended = store.head().await.expect("head") - before;
    let (commits, requests) = store.group_commits();
    let group = (requests - requests_before) as f64 / (commits - commits_before).max(1) as f64;
    (appended as f64 / secs, group)
}

async fn bulk_load(store: &SqliteStore, target: u64) -> f64 {
    let tenants: Vec<TenantId> = (0..64).map(|i| tenant(&format!("bulk-{i}"))).collect();
    let start_head = store.head().await.expect("head");
    let start = Instant::now();
    let mut i = 0usize;
    while store.head().await.expect("head") < target {
        let reqs = (0..200)
            .map(|k| {
                i += 1;
                let t = &tenants[(i + k) % tenants.len()];
                request(
                    t,
                    &format!("s{}", i % 1000),
                    ExpectedVersion::Any,
                    (0..10).map(|_| new_event(PAYLOAD, now())).collect(),
                )
            })
            .collect();
        for r in store.append_many(reqs).await {
            r.expect("bulk append");
        }
    }
    (store.head().await.expect("head") - start_head) as f64 / start.elapsed().as_secs_f64()
}

fn bulk_read(store: &SqliteStore) -> (f64, u64) {
    let start = Instant::now();
    let mut bytes = 0usize;
    let n = store
        .for_each_event(0, Upto::Head, None, |e| {
            bytes += e.payload.len();
            Ok::<(), StoreError>(())
        })
        .expect("scan");
    std::hint::black_box(bytes);
    (n as f64 / start.elapsed().as_secs_f64(), n)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let a = args();
    let base = match &a.dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir_in(std::env::current_dir().expect("cwd")),
    }
    .expect("temp dir");
    println!("bench in {} (same disk for every row)", base.path().display());

    // fsync latency on shared disks drifts: interleave the baseline and the single writer in rounds.
    let raw_conn = raw_connection(&base.path().join("raw.db"));
    let store = Arc::new(SqliteStore::open(&base.path().join("store.db"), SqliteOptions::default()).expect("open"));
    let rounds = 5;
    let chunk = (a.single / rounds).max(1);
    let (mut raw_secs, mut single_secs) = (0.0, 0.0);
    for r in 0..rounds {
        raw_secs += raw_baseline(&raw_conn, 1 + r * chunk, chunk);
        single_secs += one_writer(&store, chunk).await;
    }
    let raw = (rounds * chunk) as f64 / raw_secs;
    let single = (rounds * chunk) as f64 / single_secs;
    let (eight, eight_group) = many_writers(&store, 8, 1, a.events).await;
    let (eight_deep, deep_group) = many_writers(&store, 8, 32, a.events).await;
    let load = bulk_load(&store, a.read_events as u64).await;
    let rss_before = rss_mib();
    let reader = store.clone();
    let (read, read_n) = tokio::task::spawn_blocking(move || bulk_read(&reader)).await.expect("read");
    let rss_after = rss_mib();

    println!();
    println!("| run | events | events/s | ratio |");
    println!("| --- | ---: | ---: | --- |");
    println!("| raw rusqlite, 1 row per durable txn (WAL, FULL) | {} | {raw:.0} | 1.00 (baseline) |", a.single);
    println!(
        "| SqliteStore, 1 writer, single-event appends | {} | {single:.0} | {:.2} of raw |",
        a.single,
        single / raw
    );
    println!(
        "| SqliteStore, 8 writers, 1 in flight each | {} | {eight:.0} | {:.1}x raw ({eight_group:.1} appends a commit) |",
        a.events,
        eight / raw
    );
    println!(
        "| SqliteStore, 8 writers x 32 in flight | {} | {eight_deep:.0} | {:.1}x raw ({deep_group:.1} appends a commit) |",
        a.events,
        eight_deep / raw
    );
    println!("| SqliteStore, bulk load (append_many 200 req x 10 events) | {} | {load:.0} | |", a.read_events);
    println!("| streaming reader (for_each_event), full scan | {read_n} | {read:.0} | |");
    println!();
    println!("memory before the scan: {rss_before}; after: {rss_after}");
    let size = std::fs::metadata(base.path().join("store.db")).map(|m| m.len()).unwrap_or(0);
    println!("store file: {:.1} MiB", size as f64 / (1 << 20) as f64);
}
