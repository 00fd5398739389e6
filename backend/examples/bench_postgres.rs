//! Append and read throughput of the PostgreSQL store against a raw tokio-postgres baseline, same
//! server, same durability (`synchronous_commit = on`, the server's `fsync = on`), interleaved.
//!
//! `cargo run --release -p ducha --example bench_postgres -- --postgres ADMIN_URL [--single N]
//! [--events N] [--bulk N]` (or `DUCHA_BENCH_POSTGRES_URL`; `cargo xtask bench` starts a durable
//! throw-away cluster and passes it). Each run creates its own databases and drops them.
//!
//! - raw:       N one-row `INSERT` statements, each its own durable transaction (autocommit), on one
//!   connection, into the same `events` table;
//! - 1 writer:  N single-event appends through `PostgresStore`, one at a time;
//! - 8 writers: 8 tasks appending single events over 64 tenants, one in flight each (group commit);
//! - 2 replicas × 8 writers: the same on two stores (two writers, one advisory lock);
//! - bulk:      appends of 10 events, 200 at a time;
//! - read:      `read_all` pages of 5,000 over everything written, events/s.

// The same allocator as the `ducha` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use ducha::store::conformance::{new_event, request, tenant};
use ducha::store::postgres::testing::with_database;
use ducha::store::postgres::{PgOptions, PostgresStore};
use ducha::store::{EventStore, ExpectedVersion, Upto};
use ducha_events::ids::TenantId;
use ducha_events::time::Timestamp;
use std::sync::Arc;
use std::time::Instant;
use tokio_postgres::NoTls;

const PAYLOAD: &str = r#"{"community_id":"c-07","category":"理论学习","description":"理论学习中心组学习不够深入，学习记录不完整","severity":"medium"}"#;

struct Args {
    admin: String,
    single: usize,
    events: usize,
    bulk: u64,
}

fn args() -> Args {
    let mut a = Args {
        admin: std::env::var("DUCHA_BENCH_POSTGRES_URL").unwrap_or_default(),
        single: 2_000,
        events: 20_000,
        bulk: 200_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        let n = || value.replace('_', "").parse::<u64>().unwrap_or_else(|_| panic!("{flag} needs a number"));
        match flag.as_str() {
            "--postgres" => a.admin = value.clone(),
            "--single" => a.single = n() as usize,
            "--events" => a.events = n() as usize,
            "--bulk" => a.bulk = n(),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!a.admin.is_empty(), "give --postgres ADMIN_URL (or DUCHA_BENCH_POSTGRES_URL)");
    a
}

fn now() -> Timestamp {
    std::time::SystemTime::now().into()
}

async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

/// A fresh database; its URL.
async fn database(admin_url: &str, names: &mut Vec<String>) -> String {
    let name = format!("ducha_bench_{}", uuid::Uuid::now_v7().simple());
    admin(admin_url)
        .await
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'"))
        .await
        .expect("create database");
    names.push(name.clone());
    with_database(admin_url, &name)
}

/// `n` one-row autocommit inserts (each a durable transaction); seconds taken.
async fn raw(url: &str, from: usize, n: usize) -> f64 {
    let client = admin(url).await;
    client.batch_execute("SET synchronous_commit = on").await.expect("sync");
    let stmt = client
        .prepare(
            "INSERT INTO events (position, tenant, tenant_seq, event_id, stream, stream_version, event_type, \
             schema_version, occurred_at, actor_user, actor_role, correlation_id, causation_id, payload, prev_hash, hash) \
             VALUES ($1, 'raw', $1, $2, 'raw/s', $1, 'FindingRecorded', 1, '2023-03-01T00:00:00.000000Z', 'u', \
             'inspector', 'c', NULL, $3, $4, $4)",
        )
        .await
        .expect("prepare");
    let hash = "0".repeat(64);
    let start = Instant::now();
    for i in from..from + n {
        let id = uuid::Uuid::now_v7().to_string();
        client.execute(&stmt, &[&(i as i64), &id, &PAYLOAD, &hash]).await.expect("insert");
    }
    start.elapsed().as_secs_f64()
}

async fn one_writer(store: &PostgresStore, n: usize) -> f64 {
    let t = tenant("single");
    let start = Instant::now();
    for i in 0..n {
        let req = request(&t, &format!("s{}", i % 100), ExpectedVersion::Any, vec![new_event(PAYLOAD, now())]);
        store.append(req).await.expect("append");
    }
    start.elapsed().as_secs_f64()
}

/// Events per second with `writers` tasks spread over `stores`, one append in flight each.
async fn many_writers(stores: &[Arc<PostgresStore>], writers: usize, n: usize) -> f64 {
    let tenants: Arc<Vec<TenantId>> = Arc::new((0..64).map(|i| tenant(&format!("jd-{i}"))).collect());
    let per_task = n / writers;
    let before = stores[0].head().await.expect("head");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = stores[w % stores.len()].clone();
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
    (stores[0].head().await.expect("head") - before) as f64 / secs
}

async fn bulk(store: &PostgresStore, target: u64) -> f64 {
    let tenants: Vec<TenantId> = (0..64).map(|i| tenant(&format!("bulk-{i}"))).collect();
    let start_head = store.head().await.expect("head");
    let start = Instant::now();
    let mut i = 0usize;
    while store.head().await.expect("head") < start_head + target {
        let reqs: Vec<_> = (0..200)
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
        for r in futures_util::future::join_all(reqs.into_iter().map(|r| store.append(r))).await {
            r.expect("bulk append");
        }
    }
    (store.head().await.expect("head") - start_head) as f64 / start.elapsed().as_secs_f64()
}

async fn read_all(store: &PostgresStore) -> (f64, u64) {
    let start = Instant::now();
    let (mut after, mut n, mut bytes) = (0u64, 0u64, 0usize);
    loop {
        let page = store.read_all(after, 5_000, Upto::Head).await.expect("read");
        let Some(last) = page.last() else { break };
        after = last.position;
        n += page.len() as u64;
        bytes += page.iter().map(|e| e.payload.len()).sum::<usize>();
    }
    std::hint::black_box(bytes);
    (n as f64 / start.elapsed().as_secs_f64(), n)
}

#[tokio::main]
async fn main() {
    let a = args();
    let mut names = Vec::new();
    let server = admin(&a.admin).await;
    let fsync: String = server.query_one("SHOW fsync", &[]).await.expect("show").get(0);
    let version: String = server.query_one("SHOW server_version", &[]).await.expect("show").get(0);
    println!("PostgreSQL {version}, fsync = {fsync}, synchronous_commit = on (every connection)");

    let url = database(&a.admin, &mut names).await;
    let store = Arc::new(PostgresStore::open(&url, PgOptions::default()).await.expect("open"));
    // Warm-up, then raw and store interleaved, best of three each.
    one_writer(&store, 200).await;
    let raw_url = database(&a.admin, &mut names).await;
    drop(PostgresStore::open(&raw_url, PgOptions::default()).await.expect("schema for the raw table"));
    let mut raw_best = f64::MAX;
    let mut one_best = f64::MAX;
    for round in 0..3 {
        raw_best = raw_best.min(raw(&raw_url, 1 + round * a.single, a.single).await);
        one_best = one_best.min(one_writer(&store, a.single).await);
    }
    let raw_rate = a.single as f64 / raw_best;
    let one_rate = a.single as f64 / one_best;
    println!("| raw one-row INSERT, autocommit | {:.0} commits/s | 1.00 |", raw_rate);
    println!("| 1 writer, single-event appends | {:.0} events/s | {:.2} of raw |", one_rate, one_rate / raw_rate);
    let stats = |s: &PostgresStore| {
        use std::sync::atomic::Ordering::Relaxed;
        let w = s.writer_stats();
        format!(
            "batches {} requests {} fast {} careful {} retries {}, {} µs per fast statement",
            w.batches.load(Relaxed),
            w.requests.load(Relaxed),
            w.fast.load(Relaxed),
            w.careful.load(Relaxed),
            w.retries.load(Relaxed),
            w.fast_micros.load(Relaxed) / w.fast.load(Relaxed).max(1)
        )
    };
    println!("  (writer so far: {})", stats(&store));
    let eight = many_writers(std::slice::from_ref(&store), 8, a.events).await;
    println!("  (writer so far: {})", stats(&store));
    println!("| 8 writers, 1 in flight each | {:.0} events/s | {:.2}× raw |", eight, eight / raw_rate);
    let second = Arc::new(PostgresStore::open(&url, PgOptions::default()).await.expect("open"));
    let two = many_writers(&[store.clone(), second.clone()], 8, a.events).await;
    println!("| 2 replicas × 4 writers, 1 in flight each | {:.0} events/s | {:.2}× raw |", two, two / raw_rate);
    println!("  (replica 1: {}; replica 2: {})", stats(&store), stats(&second));
    let bulk_rate = bulk(&store, a.bulk).await;
    println!("| bulk: appends of 10 events, 200 at a time | {:.0} events/s | |", bulk_rate);
    let (read_rate, n) = read_all(&store).await;
    println!("| read_all, pages of 5,000 | {n} events | {:.0} events/s |", read_rate);
    store.close().await;
    second.close().await;
    drop(store);
    drop(second);
    for name in names {
        let _ = server.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    }
}
