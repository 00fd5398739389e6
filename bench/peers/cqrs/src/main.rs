//! The peers benchmark's workload on `cqrs-es` 0.5 with `sqlite-es` 0.5 (sqlx), the same as
//! `backend/examples/bench_peers.rs` and `bench/peers/eventsourcing/bench.py`:
//! `ducha-peer-cqrs MODE DB [N]`, printing `ROW name events seconds peak_rss_kib` lines.
//!
//! Durability: `sqlite_es::default_sqlite_pool` opens WAL with `synchronous=NORMAL` (printed as
//! `DEFAULT`); this benchmark opens the same pool with `synchronous=FULL`, as Ducha's store runs, and
//! reads the setting back (`FORCED`).
//!
//! Appends go through the framework (`CqrsFramework::execute`: load the aggregate from its events,
//! handle the command, commit its one event in one transaction); generation writes through the
//! repository in batches of 1,000 events per transaction (not timed). cqrs-es has no "as of" read:
//! the half rebuild loads every event of the aggregate and folds the first half.

use cqrs_es::persist::{PersistedEventRepository, PersistedEventStore, SerializedEvent};
use cqrs_es::{Aggregate, CqrsFramework, DomainEvent, EventStore};
use serde::{Deserialize, Serialize};
use sqlite_es::SqliteEventRepository;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

const TEXT: &str = "整改通知：楼道堆放杂物，限期清理并拍照上传。整改通知：楼道堆放杂物，限期清理并拍照上传。";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum LedgerEvent {
    Noted { seq: u64, text: String },
}

impl DomainEvent for LedgerEvent {
    fn event_type(&self) -> String {
        "Noted".into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug)]
struct Never;
impl std::fmt::Display for Never {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("never")
    }
}
impl std::error::Error for Never {}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Ledger {
    count: u64,
    chars: usize,
}

impl Aggregate for Ledger {
    const TYPE: &'static str = "ledger";
    type Command = u64;
    type Event = LedgerEvent;
    type Error = Never;
    type Services = ();

    async fn handle(&mut self, seq: u64, _: &(), sink: &cqrs_es::event_sink::EventSink<Self>) -> Result<(), Never> {
        sink.write(LedgerEvent::Noted { seq, text: TEXT.to_owned() }, self).await;
        Ok(())
    }

    fn apply(&mut self, event: LedgerEvent) {
        let LedgerEvent::Noted { text, .. } = event;
        self.count += 1;
        self.chars += text.len();
    }
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS events (
  aggregate_type text NOT NULL, aggregate_id text NOT NULL, sequence integer CHECK (sequence >= 0) NOT NULL,
  event_type text NOT NULL, event_version text NOT NULL, payload text NOT NULL, metadata text NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, sequence)) STRICT;
CREATE TABLE IF NOT EXISTS snapshots (
  aggregate_type text NOT NULL, aggregate_id text NOT NULL, last_sequence integer CHECK (last_sequence >= 0) NOT NULL,
  current_snapshot integer CHECK (current_snapshot >= 0) NOT NULL, payload text NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)) STRICT;";

/// `sqlite_es::default_sqlite_pool` with `synchronous=FULL` instead of its `NORMAL`.
async fn pool(db: &str) -> Pool<Sqlite> {
    let url = format!("sqlite://{db}");
    let default = sqlite_es::default_sqlite_pool(&url).await;
    let level: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&default).await.expect("pragma");
    println!("DEFAULT synchronous={level}");
    default.close().await;
    let options = SqliteConnectOptions::from_str(&url)
        .expect("url")
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new().max_connections(10).connect_with(options).await.expect("pool");
    sqlx::raw_sql(SCHEMA).execute(&pool).await.expect("schema");
    let level: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&pool).await.expect("pragma");
    println!("FORCED synchronous={level}");
    pool
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

type Cqrs = CqrsFramework<Ledger, PersistedEventStore<SqliteEventRepository, Ledger>>;

fn serialized(id: &str, sequence: usize, seq: u64) -> SerializedEvent {
    let event = LedgerEvent::Noted { seq, text: TEXT.to_owned() };
    SerializedEvent::new(
        id.to_owned(),
        sequence,
        Ledger::TYPE.to_owned(),
        event.event_type(),
        event.event_version(),
        serde_json::to_value(&event).expect("json"),
        serde_json::json!({}),
    )
}

/// Writes `events` events to aggregate `id` through the repository, 1,000 per transaction.
async fn write(repo: &SqliteEventRepository, id: &str, events: u64) {
    let mut sequence = 1usize;
    while (sequence as u64) <= events {
        let end = (sequence as u64 + 1000).min(events + 1);
        let batch: Vec<SerializedEvent> = (sequence as u64..end).map(|s| serialized(id, s as usize, s)).collect();
        repo.persist::<Ledger>(&batch, None).await.expect("persist");
        sequence = end as usize;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, db) = (args[0].as_str(), args[1].as_str());
    let n: u64 = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(0);
    let pool = pool(db).await;
    match mode {
        "single" | "concurrent" => {
            let writers: u64 = if mode == "single" { 1 } else { 8 };
            let cqrs: Arc<Cqrs> = Arc::new(sqlite_es::sqlite_cqrs(pool.clone(), vec![], ()));
            for w in 0..writers {
                for a in 0..100 {
                    cqrs.execute(&format!("w{w}-{a}"), 0).await.expect("setup");
                }
            }
            let per = n / writers;
            let started = Instant::now();
            let tasks: Vec<_> = (0..writers)
                .map(|w| {
                    let cqrs = cqrs.clone();
                    tokio::spawn(async move {
                        for i in 0..per {
                            cqrs.execute(&format!("w{w}-{}", i % 100), i).await.expect("execute");
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("task");
            }
            row(mode, per * writers, started.elapsed().as_secs_f64());
        }
        "generate" => {
            let repo = SqliteEventRepository::new(pool.clone());
            let mut made = 0;
            let mut a = 0;
            while made < n {
                let k = (n - made).min(1000);
                write(&repo, &format!("g{a}"), k).await;
                made += k;
                a += 1;
            }
            row("generate", made, 0.0);
        }
        "replay" => {
            let repo = SqliteEventRepository::new(pool.clone());
            let started = Instant::now();
            let mut stream = repo.stream_all_events::<Ledger>().await.expect("stream");
            let (mut count, mut chars) = (0u64, 0usize);
            while let Some(e) = stream.next::<Ledger>(&[]).await {
                let LedgerEvent::Noted { text, .. } = e.expect("event").payload;
                count += 1;
                chars += text.len();
            }
            std::hint::black_box(chars);
            row("replay", count, started.elapsed().as_secs_f64());
        }
        "aggregate" => {
            let repo = SqliteEventRepository::new(pool.clone());
            write(&repo, "big", n).await;
            let store = PersistedEventStore::<SqliteEventRepository, Ledger>::new_event_store(
                SqliteEventRepository::new(pool.clone()),
            );
            let (mut full, mut half) = (f64::MAX, f64::MAX);
            for _ in 0..3 {
                let started = Instant::now();
                let mut ctx = store.load_aggregate("big").await.expect("load");
                full = full.min(started.elapsed().as_secs_f64());
                assert_eq!(cqrs_es::AggregateContext::aggregate(&mut ctx).count, n);
                let started = Instant::now();
                let events = store.load_events("big").await.expect("events");
                let mut ledger = Ledger::default();
                for e in events.into_iter().take((n / 2) as usize) {
                    ledger.apply(e.payload);
                }
                half = half.min(started.elapsed().as_secs_f64());
                assert_eq!(ledger.count, n / 2);
            }
            row("aggregate-full", n, full);
            row("aggregate-half", n / 2, half);
        }
        other => panic!("unknown mode {other}"),
    }
    pool.close().await;
}
