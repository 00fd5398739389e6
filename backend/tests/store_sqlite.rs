//! The SQLite backend: the shared conformance suite, plus what only SQLite has (files, pragmas, schema).

use ducha::store::conformance::{new_event, request, tenant, verify_chains};
use ducha::store::sqlite::{SCHEMA_VERSION, SqliteOptions, SqliteStore, Synchronous};
use ducha::store::{EventStore, ExpectedVersion, StoreError, Upto};
use ducha_events::time;
use std::path::{Path, PathBuf};

async fn fresh() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("events.db"), SqliteOptions::default()).expect("open");
    (store, dir)
}

ducha::event_store_conformance!(fresh());

fn db_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("events.db")
}

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, SqliteOptions::default()).expect("open")
}

fn t0() -> ducha_events::time::Timestamp {
    time::parse("2023-03-01T08:00:00Z").expect("time")
}

#[tokio::test]
async fn reopen_keeps_everything_and_continues_the_chain() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_in(&dir);
    let (a, b) = (tenant("ta"), tenant("tb"));
    let late = t0() + chrono::Duration::hours(1);
    {
        let store = open(&path);
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
    let store = open(&path);
    assert_eq!(store.head().await.expect("head"), 2);
    assert_eq!(*store.subscribe().borrow(), 2);
    assert_eq!(store.load_checkpoint("p").await.expect("load"), Some((2, vec![1, 2])));
    // The stream version, the chain head and the last time all survive.
    let o =
        store.append(request(&a, "s", ExpectedVersion::Exact(1), vec![new_event("{}", t0())])).await.expect("append");
    assert_eq!((o.first_position, o.stream_version), (3, 2));
    let events = store.read_all(0, usize::MAX, Upto::Head).await.expect("read");
    assert_eq!(events[2].tenant_seq, 2);
    assert_eq!(events[2].occurred_at, time::format(&late), "the last time survives a reopen");
    let counts = verify_chains(&events);
    assert_eq!(counts.get("ta"), Some(&2));
}

#[tokio::test]
async fn wal_and_synchronous_full_are_set() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_in(&dir);
    let store = open(&path);
    let p = store.writer_pragmas().await.expect("pragmas");
    assert_eq!(p.journal_mode.to_ascii_lowercase(), "wal");
    assert_eq!(p.synchronous, 2, "FULL");
    assert!(p.busy_timeout_ms >= 1000);
    assert_eq!(p.user_version, i64::from(SCHEMA_VERSION));
    drop(store);
    let store = SqliteStore::open(
        &path,
        SqliteOptions { synchronous: Synchronous::Normal, read_only: false, ..SqliteOptions::default() },
    )
    .expect("open");
    assert_eq!(store.writer_pragmas().await.expect("pragmas").synchronous, 1, "NORMAL");
    drop(store);
    // WAL is a property of the file: any other reader sees it.
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("pragma");
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn the_writer_page_cache_follows_the_setting() {
    // The only test in this binary that changes the setting; others opening stores meanwhile only
    // get a different cache size.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_in(&dir);
    let store = open(&path);
    assert_eq!(store.writer_pragmas().await.expect("pragmas").cache_size, -64 * 1024, "64 MiB by default");
    drop(store);
    ducha::store::sqlite::set_cache_mb(3);
    let store = open(&path);
    ducha::store::sqlite::set_cache_mb(ducha::store::sqlite::DEFAULT_CACHE_MB);
    assert_eq!(store.writer_pragmas().await.expect("pragmas").cache_size, -3 * 1024, "3 MiB");
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_in(&dir);
    drop(open(&path));
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).expect("bump");
    drop(conn);
    match SqliteStore::open(&path, SqliteOptions::default()) {
        Err(StoreError::NewerSchema { found, known }) => {
            assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION))
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    match SqliteStore::open(&path, SqliteOptions { read_only: true, ..SqliteOptions::default() }) {
        Err(StoreError::NewerSchema { .. }) => {}
        other => panic!("expected NewerSchema read-only, got {other:?}"),
    }
}

#[tokio::test]
async fn a_garbage_file_is_corrupt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_in(&dir);
    std::fs::write(&path, "这不是数据库 this is not a database at all ".repeat(200)).expect("write");
    match SqliteStore::open(&path, SqliteOptions::default()) {
        Err(StoreError::Corrupt(msg)) => {
            assert!(msg.contains("not a database"), "{msg}");
            assert!(msg.contains("events.db"), "the message names the file: {msg}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Another application's SQLite database is not ours either.
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other).expect("raw").execute_batch("CREATE TABLE t (x)").expect("create");
    assert!(matches!(SqliteStore::open(&other, SqliteOptions::default()), Err(StoreError::Corrupt(_))));
}

#[tokio::test]
async fn a_second_writer_is_locked_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_in(&dir);
    let store = open(&path);
    assert!(matches!(SqliteStore::open(&path, SqliteOptions::default()), Err(StoreError::Locked)));
    // A read-only open is allowed alongside and sees committed events.
    store.append(request(&tenant("t"), "s", ExpectedVersion::Any, vec![new_event("{}", t0())])).await.expect("append");
    let reader = SqliteStore::open(&path, SqliteOptions { read_only: true, ..SqliteOptions::default() }).expect("ro");
    assert_eq!(reader.head().await.expect("head"), 1);
    assert!(matches!(
        reader.append(request(&tenant("t"), "s", ExpectedVersion::Any, vec![new_event("{}", t0())])).await,
        Err(StoreError::ReadOnly)
    ));
    assert!(matches!(reader.save_checkpoint("x", 1, vec![]).await, Err(StoreError::ReadOnly)));
    drop(store);
    drop(open(&path));
}

#[tokio::test]
async fn a_failed_request_in_a_batch_does_not_affect_the_others() {
    let (store, _dir) = fresh().await;
    let t = tenant("t1");
    let first =
        store.append(request(&t, "a", ExpectedVersion::Any, vec![new_event("{}", t0())])).await.expect("append");
    let existing_id = store.read_all(0, 1, Upto::Head).await.expect("read")[0].event_id.clone();
    let mut dup = new_event("{}", t0());
    dup.event_id = existing_id;
    let mut keyed = request(&t, "c", ExpectedVersion::Any, vec![new_event("{}", t0())]);
    keyed.idempotency_key = Some("k".into());
    let reqs = vec![
        request(&t, "a", ExpectedVersion::Exact(1), vec![new_event("{}", t0()), new_event("{}", t0())]),
        // Fails inside the database (duplicate event id) after writing its first event.
        request(&t, "b", ExpectedVersion::Any, vec![new_event("{}", t0()), dup]),
        // Fails its version check: the first request already moved the stream.
        request(&t, "a", ExpectedVersion::Exact(1), vec![new_event("{}", t0())]),
        keyed.clone(),
        request(&t, "a", ExpectedVersion::Exact(3), vec![new_event("{}", t0())]),
        // Fails validation.
        request(&t, "a", ExpectedVersion::Any, vec![]),
        // A retry inside the same batch sees the first outcome.
        keyed,
    ];
    let out = store.append_many(reqs).await;
    assert_eq!(out.len(), 7);
    assert_eq!(out[0].as_ref().map(|o| (o.first_position, o.last_position)).ok(), Some((2, 3)));
    assert!(matches!(&out[1], Err(StoreError::InvalidAppend(m)) if m.contains("already")), "{:?}", out[1]);
    assert!(matches!(out[2], Err(StoreError::WrongExpectedVersion { actual: 3, .. })), "{:?}", out[2]);
    assert_eq!(out[3].as_ref().map(|o| o.first_position).ok(), Some(4));
    assert_eq!(out[4].as_ref().map(|o| (o.first_position, o.stream_version)).ok(), Some((5, 4)));
    assert!(matches!(out[5], Err(StoreError::InvalidAppend(_))));
    assert_eq!(out[6].as_ref().ok().map(|o| (o.first_position, o.deduplicated)), Some((4, true)));
    let events = store.read_all(0, usize::MAX, Upto::Head).await.expect("read");
    assert_eq!(events.len(), 5, "positions stay gap-free: {first:?}");
    assert!(events.iter().enumerate().all(|(i, e)| e.position == i as u64 + 1));
    assert_eq!(store.stream_version("t1/b").await.expect("version"), 0, "the failed request left nothing");
    verify_chains(&events);
}

#[tokio::test]
async fn for_each_event_streams_in_order_and_stops_on_error() {
    let (store, _dir) = fresh().await;
    let (a, b) = (tenant("ta"), tenant("tb"));
    for i in 0..20usize {
        let t = if i.is_multiple_of(4) { &b } else { &a };
        store.append(request(t, "s", ExpectedVersion::Any, vec![new_event("{}", t0())])).await.expect("append");
    }
    let mut seen = Vec::new();
    let n = store
        .for_each_event(5, Upto::Position(15), None, |e| {
            seen.push(e.position);
            Ok::<(), StoreError>(())
        })
        .expect("scan");
    assert_eq!(n, 10);
    assert_eq!(seen, (6..=15).collect::<Vec<_>>());
    let mut of_b = Vec::new();
    store
        .for_each_event(0, Upto::Head, Some(&b), |e| {
            of_b.push(e);
            Ok::<(), StoreError>(())
        })
        .expect("scan");
    assert_eq!(of_b.iter().map(|e| e.position).collect::<Vec<_>>(), vec![1, 5, 9, 13, 17]);
    verify_chains(&of_b);
    let stopped = store.for_each_event(0, Upto::Head, None, |e| {
        if e.position == 3 { Err(StoreError::Io("stop".into())) } else { Ok(()) }
    });
    assert_eq!(stopped, Err(StoreError::Io("stop".into())));
}

#[tokio::test]
async fn dropping_the_store_keeps_appends_and_releases_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_in(&dir);
    let store = std::sync::Arc::new(open(&path));
    let t = tenant("t1");
    let mut handles = Vec::new();
    for i in 0..50 {
        let store = store.clone();
        let t = t.clone();
        handles.push(tokio::spawn(async move {
            store.append(request(&t, &format!("s{i}"), ExpectedVersion::NoStream, vec![new_event("{}", t0())])).await
        }));
    }
    for h in handles {
        h.await.expect("join").expect("append");
    }
    drop(store);
    let store = open(&path);
    assert_eq!(store.head().await.expect("head"), 50);
}

/// The replicas' shared state on SQLite (`api.db` and an evidence folder): the same suite as on
/// PostgreSQL, with one handle twice (one replica).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_state_conformance() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = ducha::server_state::ServerState::sqlite(dir.path(), &dir.path().join("evidence")).expect("api.db");
    ducha::server_state::conformance::run_all(&state, &state.clone(), dir.path()).await;
}

#[tokio::test]
async fn the_chain_hash_is_chosen_at_creation_recorded_and_kept() {
    use ducha_events::chain::{ChainHash, ChainVerifier};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_in(&dir);
    let with = |chain_hash: Option<ChainHash>, read_only: bool| SqliteOptions {
        synchronous: Synchronous::Off,
        read_only,
        chain_hash,
    };
    let a = tenant("ta");
    {
        let store = SqliteStore::open(&path, with(Some(ChainHash::Sm3), false)).expect("create with SM3");
        assert_eq!(store.chain_hash(), ChainHash::Sm3);
        store
            .append(request(&a, "s", ExpectedVersion::Any, vec![new_event("{}", t0()), new_event("{}", t0())]))
            .await
            .expect("append");
        store.close().await;
    }
    // Reopened without a choice: the recorded hash; the chain verifies with SM3 only.
    let store = SqliteStore::open(&path, with(None, true)).expect("read-only");
    assert_eq!(store.chain_hash(), ChainHash::Sm3);
    let events = store.read_all(0, usize::MAX, Upto::Head).await.expect("read");
    let mut sm3 = ChainVerifier::new(ChainHash::Sm3);
    assert!(events.iter().all(|e| sm3.check(e).is_ok()));
    assert!(ChainVerifier::new(ChainHash::Sha256).check(&events[0]).is_err());
    drop(store);
    // Another hash asked for: refused, read-write and read-only.
    for read_only in [false, true] {
        match SqliteStore::open(&path, with(Some(ChainHash::Sha256), read_only)) {
            Err(StoreError::ChainHashMismatch { stored: ChainHash::Sm3, configured: ChainHash::Sha256 }) => {}
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    // A store of schema 1 (before the record): its chains were SHA-256, and that is recorded.
    let old = tempfile::tempdir().expect("temp dir");
    let old_path = db_in(&old);
    {
        let store = SqliteStore::open(&old_path, with(None, false)).expect("create");
        store.append(request(&a, "s", ExpectedVersion::Any, vec![new_event("{}", t0())])).await.expect("append");
        store.close().await;
    }
    {
        let conn = rusqlite::Connection::open(&old_path).expect("open");
        conn.execute_batch("DROP TABLE meta; PRAGMA user_version = 1;").expect("back to schema 1");
    }
    match SqliteStore::open(&old_path, with(Some(ChainHash::Sm3), false)) {
        Err(StoreError::ChainHashMismatch { stored: ChainHash::Sha256, .. }) => {}
        other => panic!("a schema-1 store with events is SHA-256: {other:?}"),
    }
    let store = SqliteStore::open(&old_path, with(None, false)).expect("upgrade");
    assert_eq!(store.chain_hash(), ChainHash::Sha256);
    let events = store.read_all(0, usize::MAX, Upto::Head).await.expect("read");
    assert!(ChainVerifier::new(ChainHash::Sha256).check(&events[0]).is_ok());
}
