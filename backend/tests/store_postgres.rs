//! The PostgreSQL backend: the shared conformance suite, unchanged, plus what its design needs —
//! several writers (replicas) on one database, positions a reader can never skip, durability
//! settings, schema versions, and the replicas' shared server state.
//!
//! Needs `DUCHA_TEST_POSTGRES_URL` (`cargo xtask test` starts a throw-away cluster and sets it);
//! without it every test here prints why it was skipped.

use ducha::server_state::ServerState;
use ducha::store::conformance::{new_event, request, tenant, verify_chains};
use ducha::store::postgres::testing::TestDatabase;
use ducha::store::postgres::{PgOptions, PostgresStore, SCHEMA_VERSION};
use ducha::store::{EventStore, ExpectedVersion, StoreError, Upto};
use ducha_events::time;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

async fn open(url: &str) -> PostgresStore {
    PostgresStore::open(url, PgOptions::default()).await.expect("open")
}

async fn fresh() -> Option<(PostgresStore, TestDatabase)> {
    let db = TestDatabase::create("store_postgres conformance").await?;
    Some((open(&db.url).await, db))
}

ducha::event_store_conformance!(optional fresh());

fn t0() -> ducha_events::time::Timestamp {
    time::parse("2023-03-01T08:00:00Z").expect("time")
}

#[tokio::test]
async fn reopen_keeps_everything_and_continues_the_chain() {
    let Some(db) = TestDatabase::create("reopen").await else { return };
    let (a, b) = (tenant("ta"), tenant("tb"));
    let late = t0() + chrono::Duration::hours(1);
    {
        let store = open(&db.url).await;
        store.append(request(&a, "s", ExpectedVersion::NoStream, vec![new_event("{}", late)])).await.expect("append");
        store
            .append(request(&b, "s", ExpectedVersion::Any, vec![new_event("{\"x\":\"督查\"}", t0())]))
            .await
            .expect("append");
        store.save_checkpoint("p", 2, vec![1, 2]).await.expect("checkpoint");
        store.close().await;
        assert!(matches!(
            store.append(request(&a, "s", ExpectedVersion::Any, vec![new_event("{}", t0())])).await,
            Err(StoreError::Closed)
        ));
    }
    let store = open(&db.url).await;
    assert_eq!(store.head().await.expect("head"), 2);
    assert_eq!(*store.subscribe().borrow(), 2);
    assert_eq!(store.load_checkpoint("p").await.expect("load"), Some((2, vec![1, 2])));
    let o =
        store.append(request(&a, "s", ExpectedVersion::Exact(1), vec![new_event("{}", t0())])).await.expect("append");
    assert_eq!((o.first_position, o.stream_version), (3, 2));
    let events = store.read_all(0, usize::MAX, Upto::Head).await.expect("read");
    assert_eq!(events[2].tenant_seq, 2);
    assert_eq!(events[2].occurred_at, time::format(&late), "the last time survives a reopen");
    assert_eq!(verify_chains(&events).get("ta"), Some(&2));
}

/// Two stores on one database are two replicas: each has its own writer and cache. Appends through
/// both interleave on the same tenant and streams; the chain stays one chain, versions stay exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_share_one_chain() {
    let Some(db) = TestDatabase::create("two writers").await else { return };
    let (a, b) = (Arc::new(open(&db.url).await), Arc::new(open(&db.url).await));
    let t = tenant("jd");
    for i in 0..40u64 {
        let store = if i % 3 == 0 { &a } else { &b };
        let o = store
            .append(request(&t, "shared", ExpectedVersion::Exact(i), vec![new_event(&format!("{{\"i\":{i}}}"), t0())]))
            .await
            .expect("append through either replica");
        assert_eq!((o.first_position, o.stream_version), (i + 1, i + 1));
    }
    // A stale expected version is refused whichever replica gets it.
    let stale = a.append(request(&t, "shared", ExpectedVersion::Exact(5), vec![new_event("{}", t0())])).await;
    assert!(matches!(stale, Err(StoreError::WrongExpectedVersion { actual: 40, .. })), "{stale:?}");
    // "No stream" on a stream the other replica created is refused too.
    b.append(request(&t, "made-by-b", ExpectedVersion::NoStream, vec![new_event("{}", t0())])).await.expect("append");
    let dup = a.append(request(&t, "made-by-b", ExpectedVersion::NoStream, vec![new_event("{}", t0())])).await;
    assert!(matches!(dup, Err(StoreError::WrongExpectedVersion { actual: 1, .. })), "{dup:?}");
    // An idempotency key used through one replica deduplicates through the other.
    let mut keyed = request(&t, "k", ExpectedVersion::Any, vec![new_event("{}", t0())]);
    keyed.idempotency_key = Some("same-key".into());
    let first = a.append(keyed.clone()).await.expect("first");
    let again = b.append(keyed).await.expect("retry");
    assert!(again.deduplicated);
    assert_eq!(again.first_position, first.first_position);
    let events = a.read_all(0, usize::MAX, Upto::Head).await.expect("read");
    assert_eq!(events.len(), 42);
    assert!(events.iter().enumerate().all(|(i, e)| e.position == i as u64 + 1), "gap-free");
    assert_eq!(verify_chains(&events).get("jd"), Some(&42));
}

/// The ordering argument (docs/ARCHITECTURE.md), tested: many concurrent writers on two replicas
/// while a reader pages `read_all(after)` as fast as it can. The reader must see every committed
/// event exactly once and in position order — a reader that skipped a late-committing position
/// would miss it for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_never_skips_a_committed_position() {
    let Some(db) = TestDatabase::create("reader never skips").await else { return };
    let replicas = [Arc::new(open(&db.url).await), Arc::new(open(&db.url).await)];
    let reader = Arc::new(open(&db.url).await);
    let writers = 16usize;
    let per_writer = 60usize;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let read = {
        let (reader, done) = (reader.clone(), done.clone());
        tokio::spawn(async move {
            let mut after = 0u64;
            let mut seen = Vec::new();
            loop {
                let finished = done.load(std::sync::atomic::Ordering::Acquire);
                let page = reader.read_all(after, 37, Upto::Head).await.expect("read");
                for e in &page {
                    assert_eq!(e.position, after + 1, "the reader saw {} right after {after}", e.position);
                    after = e.position;
                    seen.push(e.event_id.clone());
                }
                if page.is_empty() {
                    if finished {
                        return seen;
                    }
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = replicas[w % 2].clone();
        tasks.push(tokio::spawn(async move {
            let t = tenant(&format!("jd-{}", w % 4));
            let mut ids = Vec::new();
            for i in 0..per_writer {
                let events: Vec<_> = (0..=(i % 3)).map(|_| new_event("{}", t0())).collect();
                ids.extend(events.iter().map(|e| e.event_id.clone()));
                store
                    .append(request(&t, &format!("w{w}-{}", i % 4), ExpectedVersion::Any, events))
                    .await
                    .expect("append");
            }
            ids
        }));
    }
    let mut written = HashSet::new();
    for t in tasks {
        written.extend(t.await.expect("writer"));
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let seen = read.await.expect("reader");
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no event seen twice");
    assert_eq!(unique, written, "every committed event seen");
    verify_chains(&reader.read_all(0, usize::MAX, Upto::Head).await.expect("read"));
}

#[tokio::test]
async fn appends_commit_synchronously_whatever_the_server_default() {
    let Some(db) = TestDatabase::create("synchronous_commit").await else { return };
    db.execute_blocking(&format!(
        "ALTER DATABASE {} SET synchronous_commit = off",
        db.url.rsplit('/').next().unwrap_or_default()
    ));
    let store = open(&db.url).await;
    let client = store.pool().get().await.expect("pooled connection");
    let row = client.query_one("SHOW synchronous_commit", &[]).await.expect("show");
    assert_eq!(row.get::<_, String>(0), "on");
}

#[tokio::test]
async fn a_newer_schema_or_a_foreign_database_is_refused() {
    let Some(db) = TestDatabase::create("schema versions").await else { return };
    let store = open(&db.url).await;
    let client = store.pool().get().await.expect("client");
    ducha::store::postgres::schema::set_version_for_tests(&client, SCHEMA_VERSION + 1).await.expect("bump");
    drop(client);
    drop(store);
    for read_only in [false, true] {
        match PostgresStore::open(&db.url, PgOptions { read_only, ..PgOptions::default() }).await {
            Err(StoreError::NewerSchema { found, known }) => {
                assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION))
            }
            other => panic!("expected NewerSchema (read_only {read_only}), got {other:?}"),
        }
    }
    let Some(other) = TestDatabase::create("foreign database").await else { return };
    other.execute_blocking("CREATE TABLE events (id int)");
    match PostgresStore::open(&other.url, PgOptions::default()).await {
        Err(StoreError::Corrupt(msg)) => assert!(msg.contains("not a Ducha event store"), "{msg}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let Some(empty) = TestDatabase::create("empty, read-only").await else { return };
    assert!(matches!(
        PostgresStore::open(&empty.url, PgOptions { read_only: true, ..PgOptions::default() }).await,
        Err(StoreError::Io(_))
    ));
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_with_a_clear_message() {
    // A port nothing listens on (bound then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let url = format!("postgres://ducha:secret@127.0.0.1:{port}/ducha");
    match PostgresStore::open(&url, PgOptions::default()).await {
        Err(StoreError::Unavailable(msg)) => {
            assert!(msg.contains(&format!("127.0.0.1:{port}")), "names the server: {msg}");
            assert!(!msg.contains("secret"), "never the password: {msg}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_read_only_store_refuses_writes_and_reads_committed_events() {
    let Some(db) = TestDatabase::create("read-only").await else { return };
    let writer = open(&db.url).await;
    writer.append(request(&tenant("t"), "s", ExpectedVersion::Any, vec![new_event("{}", t0())])).await.expect("append");
    let reader =
        PostgresStore::open(&db.url, PgOptions { read_only: true, ..PgOptions::default() }).await.expect("read-only");
    assert_eq!(reader.head().await.expect("head"), 1);
    assert!(matches!(
        reader.append(request(&tenant("t"), "s", ExpectedVersion::Any, vec![new_event("{}", t0())])).await,
        Err(StoreError::ReadOnly)
    ));
    assert!(matches!(reader.save_checkpoint("x", 1, vec![]).await, Err(StoreError::ReadOnly)));
}

/// Another replica's append reaches this one's subscribers, with NOTIFY and by polling alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_hear_of_other_replicas_appends() {
    let Some(db) = TestDatabase::create("subscribe across replicas").await else { return };
    for notify in [true, false] {
        let opts =
            PgOptions { notify: Some(notify), poll_interval: Duration::from_millis(100), ..PgOptions::default() };
        let listener = PostgresStore::open(&db.url, opts.clone()).await.expect("open");
        let writer = PostgresStore::open(&db.url, opts).await.expect("open");
        let mut rx = listener.subscribe();
        let before = *rx.borrow_and_update();
        let o = writer
            .append(request(&tenant("t"), "s", ExpectedVersion::Any, vec![new_event("{}", t0())]))
            .await
            .expect("append");
        assert!(o.last_position > before);
        let seen = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|h| *h >= o.last_position)).await;
        assert!(matches!(seen, Ok(Ok(_))), "notify {notify}: the other replica's append was heard");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shared_server_state_conformance() {
    let Some(db) = TestDatabase::create("server state").await else { return };
    let (a, b) = (open(&db.url).await, open(&db.url).await);
    let (sa, sb) = (ServerState::postgres(a.pool().clone(), None), ServerState::postgres(b.pool().clone(), None));
    let dir = tempfile::tempdir().expect("dir");
    ducha::server_state::conformance::run_all(&sa, &sb, dir.path()).await;
    // Evidence in a configured shared directory instead of the database.
    let shared = tempfile::tempdir().expect("dir");
    let (fa, fb) = (
        ServerState::postgres(a.pool().clone(), Some(shared.path())),
        ServerState::postgres(b.pool().clone(), Some(shared.path())),
    );
    ducha::server_state::conformance::evidence(&fa, &fb, dir.path()).await;
}

#[tokio::test]
async fn the_chain_hash_is_chosen_at_creation_recorded_and_kept() {
    use ducha_events::chain::{ChainHash, ChainVerifier};
    let Some(db) = TestDatabase::create("chain hash").await else { return };
    let with = |chain_hash, read_only| PgOptions { chain_hash, read_only, ..PgOptions::default() };
    let a = tenant("ta");
    {
        let store = PostgresStore::open(&db.url, with(Some(ChainHash::Sm3), false)).await.expect("create with SM3");
        assert_eq!(store.chain_hash(), ChainHash::Sm3);
        store
            .append(request(&a, "s", ExpectedVersion::Any, vec![new_event("{}", t0()), new_event("{}", t0())]))
            .await
            .expect("append");
        store.close().await;
    }
    let store = PostgresStore::open(&db.url, with(None, true)).await.expect("read-only");
    assert_eq!(store.chain_hash(), ChainHash::Sm3);
    let events = store.read_all(0, usize::MAX, Upto::Head).await.expect("read");
    let mut sm3 = ChainVerifier::new(ChainHash::Sm3);
    assert!(events.iter().all(|e| sm3.check(e).is_ok()));
    assert!(ChainVerifier::new(ChainHash::Sha256).check(&events[0]).is_err());
    drop(store);
    for read_only in [false, true] {
        match PostgresStore::open(&db.url, with(Some(ChainHash::Sha256), read_only)).await {
            Err(StoreError::ChainHashMismatch { stored: ChainHash::Sm3, configured: ChainHash::Sha256 }) => {}
            other => panic!("expected a refusal (read_only {read_only}), got {other:?}"),
        }
    }
}
