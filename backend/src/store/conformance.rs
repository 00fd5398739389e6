//! The one conformance suite every [`EventStore`] backend must pass.
//!
//! Each case is a public `async fn(Arc<S>)` that panics on failure, so a backend's test file runs
//! them all with one line, one `#[tokio::test]` per case:
//!
//! ```ignore
//! // `fresh()` is an async fn returning `(store, guard)`; the guard (a temp dir, a container, ...)
//! // lives until the case ends.
//! ducha::event_store_conformance!(fresh());
//! ```
//!
//! The cases only use the trait, so PostgreSQL and KurrentDB backends run them unchanged.

use super::{AppendOutcome, AppendRequest, EventStore, ExpectedVersion, StoreError, Upto};
use ducha_events::authz::Role;
use ducha_events::chain::{ChainVerifier, GENESIS};
use ducha_events::envelope::{ActorRef, NewEvent, RecordedEvent};
use ducha_events::ids::{TenantId, UserId};
use ducha_events::time::{self, Timestamp};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// Generates one `#[tokio::test]` per conformance case. `$fresh` is an expression evaluating to a
/// future of `(store, guard)`; it is evaluated once per case.
#[macro_export]
macro_rules! event_store_conformance {
    // `$fresh` evaluates to a future of `Option<(store, guard)>`; `None` skips the case (the
    // backend's server is not there, and the fixture said so).
    (optional $fresh:expr) => {
        $crate::event_store_conformance!(@each cases_optional $fresh);
    };
    // KurrentDB: without a server named at build time (`cfg(ducha_kurrentdb_server)`, set by
    // build.rs from `DUCHA_TEST_KURRENTDB_URL`) every case is ignored, with the reason shown.
    (kurrentdb $fresh:expr) => {
        $crate::event_store_conformance!(@each cases_kurrentdb $fresh);
    };
    ($fresh:expr) => {
        $crate::event_store_conformance!(@each cases $fresh);
    };
    // The one list of cases, handed to the arm that generates the tests.
    (@each $arm:ident $fresh:expr) => {
        $crate::event_store_conformance!(@ $arm $fresh;
            ordering,
            paging_and_limits,
            expected_version_races,
            no_stream_and_any,
            idempotency,
            tenant_isolation,
            invalid_appends_change_nothing,
            text_round_trips,
            as_of_reads,
            occurred_at_never_goes_backwards,
            chain_continuity,
            subscribe_sees_new_head,
            checkpoints,
        );
    };
    (@cases_kurrentdb $fresh:expr; $($case:ident),* $(,)?) => {$(
        #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
        #[cfg_attr(not(ducha_kurrentdb_server), ignore = "skipped: no KurrentDB server (set DUCHA_TEST_KURRENTDB_URL)")]
        async fn $case() {
            let Some((store, _guard)) = $fresh.await else { return };
            $crate::store::conformance::$case(::std::sync::Arc::new(store)).await;
        }
    )*};
    (@cases_optional $fresh:expr; $($case:ident),* $(,)?) => {$(
        #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $case() {
            let Some((store, _guard)) = $fresh.await else { return };
            $crate::store::conformance::$case(::std::sync::Arc::new(store)).await;
        }
    )*};
    (@cases $fresh:expr; $($case:ident),* $(,)?) => {$(
        #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $case() {
            let (store, _guard) = $fresh.await;
            $crate::store::conformance::$case(::std::sync::Arc::new(store)).await;
        }
    )*};
}

/// Runs every case, each on a fresh store, for callers that prefer one test.
pub async fn run_all<S, G, F, Fut>(fresh: F)
where
    S: EventStore,
    F: Fn() -> Fut,
    Fut: Future<Output = (S, G)>,
{
    macro_rules! run {
        ($($case:ident),*) => {$({
            let (store, guard) = fresh().await;
            $case(Arc::new(store)).await;
            drop(guard);
        })*};
    }
    run!(
        ordering,
        paging_and_limits,
        expected_version_races,
        no_stream_and_any,
        idempotency,
        tenant_isolation,
        invalid_appends_change_nothing,
        text_round_trips,
        as_of_reads,
        occurred_at_never_goes_backwards,
        chain_continuity,
        subscribe_sees_new_head,
        checkpoints
    );
}

// ---------------------------------------------------------------------------------------------------
// Helpers.

pub fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).unwrap_or_else(|e| panic!("test tenant: {e}"))
}

fn actor() -> ActorRef {
    ActorRef { user_id: UserId::parse("u-1").unwrap_or_else(|e| panic!("{e}")), role: Role::Inspector }
}

fn t0() -> Timestamp {
    time::parse("2023-03-01T08:00:00Z").unwrap_or_else(|e| panic!("{e}"))
}

/// A fresh event with a JSON payload and a unique id.
pub fn new_event(payload: &str, occurred_at: Timestamp) -> NewEvent {
    NewEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        event_type: "TestEvent".into(),
        schema_version: 1,
        payload: payload.into(),
        occurred_at,
        actor: actor(),
        correlation_id: uuid::Uuid::now_v7().to_string(),
        causation_id: None,
    }
}

pub fn request(tenant_id: &TenantId, stream: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest {
        tenant: tenant_id.clone(),
        stream: format!("{tenant_id}/{stream}"),
        expected,
        events,
        idempotency_key: None,
    }
}

fn json(n: usize) -> String {
    format!(r#"{{"n":{n}}}"#)
}

async fn ok<S: EventStore>(store: &S, req: AppendRequest) -> AppendOutcome {
    match store.append(req).await {
        Ok(o) => o,
        Err(e) => panic!("append failed: {e}"),
    }
}

async fn all<S: EventStore>(store: &S) -> Vec<RecordedEvent> {
    store.read_all(0, usize::MAX, Upto::Head).await.unwrap_or_else(|e| panic!("read_all: {e}"))
}

/// Verifies every tenant's chain in the global log; returns each tenant's event count.
pub fn verify_chains(events: &[RecordedEvent]) -> BTreeMap<String, u64> {
    let mut verifiers: BTreeMap<String, ChainVerifier> = BTreeMap::new();
    for e in events {
        let v = verifiers.entry(e.tenant.to_string()).or_default();
        if let Err(b) = v.check(e) {
            panic!("chain broken: {b}");
        }
    }
    verifiers.into_iter().map(|(t, v)| (t, v.checked)).collect()
}

// ---------------------------------------------------------------------------------------------------
// Cases.

/// Positions are gap-free and increasing; stream versions run 1..n; tenant_seq runs 1..n per tenant.
pub async fn ordering<S: EventStore>(store: Arc<S>) {
    assert_eq!(store.head().await.ok(), Some(0));
    let (a, b) = (tenant("ta"), tenant("tb"));
    let mut expected_positions = 1u64;
    for round in 0..5usize {
        for (t, s) in [(&a, "s1"), (&b, "s1"), (&a, "s2")] {
            let events = (0..round + 1).map(|i| new_event(&json(i), t0())).collect::<Vec<_>>();
            let n = events.len() as u64;
            let o = ok(&*store, request(t, s, ExpectedVersion::Any, events)).await;
            assert_eq!(o.first_position, expected_positions);
            assert_eq!(o.last_position, expected_positions + n - 1);
            assert!(!o.deduplicated);
            expected_positions += n;
        }
    }
    let events = all(&*store).await;
    assert_eq!(events.len() as u64, expected_positions - 1);
    assert_eq!(store.head().await.ok(), Some(expected_positions - 1));
    let mut streams: BTreeMap<&str, u64> = BTreeMap::new();
    let mut seqs: BTreeMap<&str, u64> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.position, i as u64 + 1, "positions are gap-free");
        let v = streams.entry(&e.stream).or_default();
        *v += 1;
        assert_eq!(e.stream_version, *v, "stream versions run 1..n");
        let s = seqs.entry(e.tenant.as_str()).or_default();
        *s += 1;
        assert_eq!(e.tenant_seq, *s, "tenant_seq runs 1..n");
        assert!(e.stream.starts_with(&format!("{}/", e.tenant)));
    }
    assert_eq!(store.stream_version("ta/s1").await.ok(), Some(streams["ta/s1"]));
    assert_eq!(store.stream_version("ta/none").await.ok(), Some(0));
    let stream = store.read_stream("ta/s2", 0, usize::MAX, Upto::Head).await.unwrap_or_default();
    assert_eq!(stream.len() as u64, streams["ta/s2"]);
    assert!(stream.windows(2).all(|w| w[0].position < w[1].position));
    let heads = store.tenants().await.unwrap_or_default();
    assert_eq!(heads.iter().map(|h| (h.tenant.to_string(), h.events)).collect::<BTreeMap<_, _>>(), seqs_owned(&seqs));
}

fn seqs_owned(m: &BTreeMap<&str, u64>) -> BTreeMap<String, u64> {
    m.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// `after`, `limit` and `upto` bound every read the same way.
pub async fn paging_and_limits<S: EventStore>(store: Arc<S>) {
    let a = tenant("ta");
    let b = tenant("tb");
    for i in 0..10usize {
        let t = if i.is_multiple_of(2) { &a } else { &b };
        ok(&*store, request(t, "s", ExpectedVersion::Any, vec![new_event(&json(i), t0())])).await;
    }
    let page = store.read_all(3, 4, Upto::Head).await.unwrap_or_default();
    assert_eq!(page.iter().map(|e| e.position).collect::<Vec<_>>(), vec![4, 5, 6, 7]);
    assert!(store.read_all(0, 0, Upto::Head).await.unwrap_or_default().is_empty());
    assert!(store.read_all(10, 5, Upto::Head).await.unwrap_or_default().is_empty());
    let page = store.read_tenant(&a, 2, 2, Upto::Head).await.unwrap_or_default();
    assert_eq!(page.iter().map(|e| e.position).collect::<Vec<_>>(), vec![3, 5]);
    let page = store.read_tenant(&b, 0, 100, Upto::Position(6)).await.unwrap_or_default();
    assert_eq!(page.iter().map(|e| e.position).collect::<Vec<_>>(), vec![2, 4, 6]);
    let page = store.read_stream("ta/s", 1, 2, Upto::Head).await.unwrap_or_default();
    assert_eq!(page.iter().map(|e| e.stream_version).collect::<Vec<_>>(), vec![2, 3]);
    let page = store.read_stream("ta/s", 0, 100, Upto::Position(5)).await.unwrap_or_default();
    assert_eq!(page.iter().map(|e| e.stream_version).collect::<Vec<_>>(), vec![1, 2, 3]);
}

/// 48 tasks race on one stream with `Exact(v)`: exactly one wins each version, losers learn the
/// actual version, and after retrying every task's event is present exactly once.
pub async fn expected_version_races<S: EventStore>(store: Arc<S>) {
    const TASKS: usize = 48;
    let t = tenant("race");
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        let t = t.clone();
        handles.push(tokio::spawn(async move {
            let event = new_event(&format!(r#"{{"task":{task}}}"#), t0());
            let id = event.event_id.clone();
            let mut expected = 0u64;
            let mut conflicts = 0u32;
            loop {
                let req = request(&t, "counter", ExpectedVersion::Exact(expected), vec![event.clone()]);
                match store.append(req).await {
                    Ok(o) => {
                        assert_eq!(o.stream_version, expected + 1, "a win moves the stream by one");
                        return (id, o.stream_version, conflicts);
                    }
                    Err(StoreError::WrongExpectedVersion { actual, expected: ExpectedVersion::Exact(e), .. }) => {
                        assert_eq!(e, expected);
                        assert_ne!(actual, expected, "a loser learns a different actual version");
                        expected = actual;
                        conflicts += 1;
                    }
                    Err(e) => panic!("unexpected error in a race: {e}"),
                }
            }
        }));
    }
    let mut versions = HashSet::new();
    let mut ids = HashSet::new();
    let mut total_conflicts = 0;
    for h in handles {
        let (id, version, conflicts) = h.await.unwrap_or_else(|e| panic!("task panicked: {e}"));
        assert!(versions.insert(version), "version {version} won twice");
        ids.insert(id);
        total_conflicts += conflicts;
    }
    assert_eq!(versions, (1..=TASKS as u64).collect::<HashSet<_>>());
    let events = store.read_stream("race/counter", 0, usize::MAX, Upto::Head).await.unwrap_or_default();
    assert_eq!(events.len(), TASKS, "every task's event exactly once");
    assert_eq!(events.iter().map(|e| e.event_id.clone()).collect::<HashSet<_>>(), ids);
    assert_eq!(store.stream_version("race/counter").await.ok(), Some(TASKS as u64));
    // With 48 tasks racing, some must have lost at least once (not a proof of anything, a sanity check
    // that the race happened at all is too timing-dependent to assert).
    let _ = total_conflicts;
    verify_chains(&all(&*store).await);
}

/// `NoStream` only creates, `Any` always appends, `Exact(0)` means "does not exist".
pub async fn no_stream_and_any<S: EventStore>(store: Arc<S>) {
    let t = tenant("t1");
    let o = ok(&*store, request(&t, "a", ExpectedVersion::NoStream, vec![new_event("{}", t0())])).await;
    assert_eq!(o.stream_version, 1);
    match store.append(request(&t, "a", ExpectedVersion::NoStream, vec![new_event("{}", t0())])).await {
        Err(StoreError::WrongExpectedVersion { actual: 1, expected: ExpectedVersion::NoStream, stream }) => {
            assert_eq!(stream, "t1/a")
        }
        other => panic!("NoStream on an existing stream: {other:?}"),
    }
    let o =
        ok(&*store, request(&t, "a", ExpectedVersion::Any, vec![new_event("{}", t0()), new_event("{}", t0())])).await;
    assert_eq!(o.stream_version, 3);
    let o = ok(&*store, request(&t, "b", ExpectedVersion::Any, vec![new_event("{}", t0())])).await;
    assert_eq!(o.stream_version, 1);
    let o = ok(&*store, request(&t, "c", ExpectedVersion::Exact(0), vec![new_event("{}", t0())])).await;
    assert_eq!(o.stream_version, 1);
    match store.append(request(&t, "a", ExpectedVersion::Exact(2), vec![new_event("{}", t0())])).await {
        Err(StoreError::WrongExpectedVersion { actual: 3, .. }) => {}
        other => panic!("Exact(2) on a stream at 3: {other:?}"),
    }
    match store.append(request(&t, "d", ExpectedVersion::Exact(1), vec![new_event("{}", t0())])).await {
        Err(StoreError::WrongExpectedVersion { actual: 0, .. }) => {}
        other => panic!("Exact(1) on a missing stream: {other:?}"),
    }
    assert_eq!(store.stream_version("t1/a").await.ok(), Some(3));
    assert_eq!(store.head().await.ok(), Some(5));
}

/// A repeated key returns the first outcome and appends nothing; the same key on another stream fails.
pub async fn idempotency<S: EventStore>(store: Arc<S>) {
    let t = tenant("t1");
    let u = tenant("t2");
    ok(&*store, request(&t, "other", ExpectedVersion::Any, vec![new_event("{}", t0())])).await;
    let mut req = request(&t, "s", ExpectedVersion::NoStream, vec![new_event("{}", t0()), new_event("{}", t0())]);
    req.idempotency_key = Some("cmd-1".into());
    let first = ok(&*store, req.clone()).await;
    assert!(!first.deduplicated);
    assert_eq!((first.first_position, first.last_position, first.stream_version), (2, 3, 2));
    // A retry, even with a stale expected version and fresh event ids, answers the first outcome.
    let mut retry = req.clone();
    retry.events = vec![new_event("{}", t0())];
    let again = ok(&*store, retry).await;
    assert_eq!(again, AppendOutcome { deduplicated: true, ..first });
    assert_eq!(store.head().await.ok(), Some(3), "a repeated key appends nothing");
    let mut elsewhere = request(&t, "s2", ExpectedVersion::Any, vec![new_event("{}", t0())]);
    elsewhere.idempotency_key = Some("cmd-1".into());
    match store.append(elsewhere).await {
        Err(StoreError::IdempotencyKeyReused { key, stream }) => {
            assert_eq!(key, "cmd-1");
            assert_eq!(stream, "t1/s");
        }
        other => panic!("key reused on another stream: {other:?}"),
    }
    // Keys are scoped by tenant.
    let mut other_tenant = request(&u, "s", ExpectedVersion::Any, vec![new_event("{}", t0())]);
    other_tenant.idempotency_key = Some("cmd-1".into());
    assert!(!ok(&*store, other_tenant).await.deduplicated);
    // A failed request does not claim its key.
    let mut failing = request(&t, "s3", ExpectedVersion::Exact(7), vec![new_event("{}", t0())]);
    failing.idempotency_key = Some("cmd-2".into());
    assert!(matches!(store.append(failing.clone()).await, Err(StoreError::WrongExpectedVersion { .. })));
    failing.expected = ExpectedVersion::NoStream;
    assert!(!ok(&*store, failing).await.deduplicated);
    assert_eq!(store.head().await.ok(), Some(5));
}

/// A tenant's reads never show another tenant's events; a stream of A cannot be appended under B.
pub async fn tenant_isolation<S: EventStore>(store: Arc<S>) {
    let (a, b) = (tenant("alpha"), tenant("beta"));
    for i in 0..6usize {
        let t = if i.is_multiple_of(3) { &b } else { &a };
        ok(&*store, request(t, "s", ExpectedVersion::Any, vec![new_event(&json(i), t0())])).await;
    }
    let mut smuggle = request(&b, "s", ExpectedVersion::Any, vec![new_event("{}", t0())]);
    smuggle.stream = "alpha/s".into();
    assert!(matches!(store.append(smuggle).await, Err(StoreError::InvalidAppend(_))));
    let mut prefix = request(&a, "s", ExpectedVersion::Any, vec![new_event("{}", t0())]);
    prefix.stream = "alphabet/s".into();
    assert!(matches!(store.append(prefix).await, Err(StoreError::InvalidAppend(_))));
    let mut bare = request(&a, "s", ExpectedVersion::Any, vec![new_event("{}", t0())]);
    bare.stream = "alpha/".into();
    assert!(matches!(store.append(bare).await, Err(StoreError::InvalidAppend(_))));
    let ra = store.read_tenant(&a, 0, usize::MAX, Upto::Head).await.unwrap_or_default();
    let rb = store.read_tenant(&b, 0, usize::MAX, Upto::Head).await.unwrap_or_default();
    assert_eq!((ra.len(), rb.len()), (4, 2));
    assert!(ra.iter().all(|e| e.tenant == a && e.stream.starts_with("alpha/")));
    assert!(rb.iter().all(|e| e.tenant == b && e.stream.starts_with("beta/")));
    assert!(store.read_tenant(&tenant("gamma"), 0, 100, Upto::Head).await.unwrap_or_default().is_empty());
    assert_eq!(store.head().await.ok(), Some(6));
}

/// Bad requests get `InvalidAppend` and change nothing.
pub async fn invalid_appends_change_nothing<S: EventStore>(store: Arc<S>) {
    let t = tenant("t1");
    let first = new_event("{}", t0());
    ok(&*store, request(&t, "s", ExpectedVersion::Any, vec![first.clone()])).await;
    let mut bad_id = new_event("{}", t0());
    bad_id.event_id = "has space".into();
    let mut empty_id = new_event("{}", t0());
    empty_id.event_id = String::new();
    let twice = new_event("{}", t0());
    let cases = vec![
        request(&t, "s", ExpectedVersion::Any, vec![]),
        request(&t, "s", ExpectedVersion::Any, vec![bad_id]),
        request(&t, "s", ExpectedVersion::Any, vec![new_event("{}", t0()), empty_id]),
        request(&t, "s", ExpectedVersion::Any, vec![twice.clone(), twice]),
        // An event id already in the store: the second event fails after the first was written.
        request(&t, "s", ExpectedVersion::Any, vec![new_event("{}", t0()), first]),
    ];
    for req in cases {
        match store.append(req.clone()).await {
            Err(StoreError::InvalidAppend(_)) => {}
            other => panic!("invalid request {req:?} gave {other:?}"),
        }
    }
    assert_eq!(store.head().await.ok(), Some(1));
    assert_eq!(store.stream_version("t1/s").await.ok(), Some(1));
    // And the store still works, continuing the chain where it was.
    let o = ok(&*store, request(&t, "s", ExpectedVersion::Exact(1), vec![new_event("{}", t0())])).await;
    assert_eq!((o.first_position, o.stream_version), (2, 2));
    verify_chains(&all(&*store).await);
}

/// Chinese text, characters outside the BMP and a 1 MiB payload round-trip byte for byte.
pub async fn text_round_trips<S: EventStore>(store: Arc<S>) {
    let t = tenant("t1");
    let chinese = r#"{"title":"关于开展意识形态工作责任制落实情况督查的报告","note":"座谈交流、查阅资料"}"#;
    let astral = "{\"emoji\":\"😀🀄\",\"ext_b\":\"𠀀𠮷𪚥\",\"mixed\":\"街道𡈽社区\"}";
    let filler = "督查𠮷x".repeat((1 << 20) / "督查𠮷x".len() + 1);
    let large = format!(r#"{{"big":"{filler}"}}"#);
    assert!(large.len() >= 1 << 20);
    let mut e1 = new_event(chinese, t0());
    e1.event_type = "整改措施已登记".into();
    e1.causation_id = Some("cause-1".into());
    let e2 = new_event(astral, t0());
    let e3 = new_event(&large, t0());
    ok(&*store, request(&t, "文字", ExpectedVersion::NoStream, vec![e1.clone(), e2.clone()])).await;
    ok(&*store, request(&t, "large", ExpectedVersion::NoStream, vec![e3.clone()])).await;
    let events = all(&*store).await;
    assert_eq!(events.len(), 3);
    for (got, sent) in events.iter().zip([&e1, &e2, &e3]) {
        assert_eq!(got.payload.as_bytes(), sent.payload.as_bytes());
        assert_eq!(got.event_type, sent.event_type);
        assert_eq!(got.event_id, sent.event_id);
        assert_eq!(got.correlation_id, sent.correlation_id);
        assert_eq!(got.causation_id, sent.causation_id);
        assert_eq!(got.actor, sent.actor);
        assert_eq!(got.schema_version, sent.schema_version);
    }
    assert_eq!(events[0].stream, "t1/文字");
    let stream = store.read_stream("t1/文字", 0, 10, Upto::Head).await.unwrap_or_default();
    assert_eq!(stream.len(), 2);
    verify_chains(&events);
}

/// "As of" reads: `Upto::Position` bounds every read; `position_at` finds the last event at a time.
pub async fn as_of_reads<S: EventStore>(store: Arc<S>) {
    let t = tenant("t1");
    let at = |m: i64| t0() + chrono::Duration::minutes(m);
    for m in [0, 10, 10, 20, 30] {
        ok(&*store, request(&t, "s", ExpectedVersion::Any, vec![new_event(&json(m as usize), at(m))])).await;
    }
    assert_eq!(store.position_at(at(-1)).await.ok(), Some(0), "before the first event");
    assert_eq!(store.position_at(at(0)).await.ok(), Some(1));
    assert_eq!(store.position_at(at(5)).await.ok(), Some(1));
    assert_eq!(store.position_at(at(10)).await.ok(), Some(3), "the last of equal times");
    assert_eq!(store.position_at(at(10) + chrono::Duration::microseconds(1)).await.ok(), Some(3));
    assert_eq!(store.position_at(at(25)).await.ok(), Some(4));
    assert_eq!(store.position_at(at(1000)).await.ok(), Some(5));
    let p = store.position_at(at(15)).await.unwrap_or_default();
    let prefix = store.read_all(0, usize::MAX, Upto::Position(p)).await.unwrap_or_default();
    assert_eq!(prefix.iter().map(|e| e.position).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(prefix.iter().all(|e| e.occurred_at <= time::format(&at(15))));
    let tenant_prefix = store.read_tenant(&t, 0, usize::MAX, Upto::Position(2)).await.unwrap_or_default();
    assert_eq!(tenant_prefix.len(), 2);
    assert_eq!(store.read_stream("t1/s", 0, usize::MAX, Upto::Position(4)).await.unwrap_or_default().len(), 4);
    // Stored times use the one fixed format.
    let events = all(&*store).await;
    assert_eq!(events[1].occurred_at, "2023-03-01T08:10:00.000000Z");
    assert!(events.iter().all(|e| e.occurred_at() == time::parse(&e.occurred_at).ok()));
}

/// An event whose time would go backwards is raised to the previous event's time, so the global
/// log's times never decrease and "as of a time" is a prefix of the log.
pub async fn occurred_at_never_goes_backwards<S: EventStore>(store: Arc<S>) {
    let (a, b) = (tenant("ta"), tenant("tb"));
    let at = |m: i64| t0() + chrono::Duration::minutes(m);
    ok(&*store, request(&a, "s", ExpectedVersion::Any, vec![new_event("{}", at(10))])).await;
    // Another tenant's late clock still cannot go below the global log.
    ok(&*store, request(&b, "s", ExpectedVersion::Any, vec![new_event("{}", at(5)), new_event("{}", at(20))])).await;
    ok(&*store, request(&a, "s", ExpectedVersion::Any, vec![new_event("{}", at(15))])).await;
    let events = all(&*store).await;
    let times = events.iter().map(|e| e.occurred_at.clone()).collect::<Vec<_>>();
    assert_eq!(times[1], time::format(&at(10)), "raised to the previous event's time");
    assert_eq!(times[3], time::format(&at(20)));
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "times never decrease: {times:?}");
    assert_eq!(store.position_at(at(10)).await.ok(), Some(2));
    assert_eq!(store.position_at(at(19)).await.ok(), Some(2));
    // The chain hashes the raised time.
    verify_chains(&events);
}

/// Every tenant's chain verifies; prev_hash links each event to the previous one of its tenant.
pub async fn chain_continuity<S: EventStore>(store: Arc<S>) {
    let tenants = [tenant("ta"), tenant("tb"), tenant("tc"), TenantId::platform()];
    for i in 0..40usize {
        let t = &tenants[i * 7 % tenants.len()];
        let n = i % 3 + 1;
        let mut events = (0..n).map(|k| new_event(&json(k), t0())).collect::<Vec<_>>();
        if i.is_multiple_of(5) {
            events[0].causation_id = Some(format!("cause-{i}"));
        }
        ok(&*store, request(t, &format!("s{}", i % 4), ExpectedVersion::Any, events)).await;
    }
    let events = all(&*store).await;
    let counts = verify_chains(&events);
    let mut last: BTreeMap<&str, &str> = BTreeMap::new();
    let genesis = hex::encode(GENESIS);
    for e in &events {
        let prev = last.get(e.tenant.as_str()).copied().unwrap_or(genesis.as_str());
        assert_eq!(e.prev_hash, prev, "prev_hash links to the tenant's previous event");
        last.insert(e.tenant.as_str(), &e.hash);
    }
    let heads = store.tenants().await.unwrap_or_default();
    assert_eq!(heads.len(), tenants.len());
    for h in &heads {
        assert_eq!(Some(&h.events), counts.get(h.tenant.as_str()));
        assert_eq!(Some(h.head_hash.as_str()), last.get(h.tenant.as_str()).copied());
        let last_pos = events.iter().filter(|e| e.tenant == h.tenant).map(|e| e.position).max();
        assert_eq!(Some(h.last_position), last_pos);
        // A tenant read alone verifies too.
        let own = store.read_tenant(&h.tenant, 0, usize::MAX, Upto::Head).await.unwrap_or_default();
        let mut v = ChainVerifier::default();
        for e in &own {
            v.check(e).unwrap_or_else(|b| panic!("{b}"));
        }
        assert_eq!(hex::encode(v.head()), h.head_hash);
    }
}

/// A subscriber sees the head move after an append.
pub async fn subscribe_sees_new_head<S: EventStore>(store: Arc<S>) {
    let t = tenant("t1");
    let mut rx = store.subscribe();
    assert_eq!(*rx.borrow_and_update(), 0);
    let o =
        ok(&*store, request(&t, "s", ExpectedVersion::Any, vec![new_event("{}", t0()), new_event("{}", t0())])).await;
    let seen = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|h| *h >= o.last_position))
        .await
        .map(|r| r.map(|h| *h));
    assert!(matches!(seen, Ok(Ok(_))), "the subscriber saw the new head");
    assert_eq!(*rx.borrow(), 2);
    let late = store.subscribe();
    assert_eq!(*late.borrow(), 2, "a new subscriber starts at the current head");
}

/// Checkpoints save, load and replace.
pub async fn checkpoints<S: EventStore>(store: Arc<S>) {
    assert_eq!(store.load_checkpoint("ledger").await.ok(), Some(None));
    store.save_checkpoint("ledger", 5, b"state-1".to_vec()).await.unwrap_or_else(|e| panic!("{e}"));
    store.save_checkpoint("其他", 7, vec![0, 255, 1]).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.load_checkpoint("ledger").await.ok(), Some(Some((5, b"state-1".to_vec()))));
    store.save_checkpoint("ledger", 9, Vec::new()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.load_checkpoint("ledger").await.ok(), Some(Some((9, Vec::new()))));
    assert_eq!(store.load_checkpoint("其他").await.ok(), Some(Some((7, vec![0, 255, 1]))));
}
