//! Crash safety: a child process appends in a loop and prints each acknowledged event; the parent kills
//! it with SIGKILL mid-stream, reopens the file and checks that every acknowledged event is there,
//! that no event is partial, and that every chain verifies. Three rounds on the same file.

use ducha::store::conformance::{new_event, request, tenant};
use ducha::store::sqlite::{SqliteOptions, SqliteStore};
use ducha::store::{EventStore, ExpectedVersion, StoreError, Upto};
use ducha_events::chain::ChainVerifier;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

const DB_VAR: &str = "DUCHA_CRASH_TEST_DB";
const ACKS_BEFORE_KILL: usize = 300;
const ROUNDS: usize = 3;

/// The child: appends forever from several tasks over several tenants, printing `ack <position>
/// <event_id>` for each event once its append is acknowledged. Does nothing unless run by the parent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "run by crash_keeps_every_acknowledged_event as a child process"]
async fn crash_child() {
    let Some(path) = std::env::var_os(DB_VAR) else { return };
    let store = Arc::new(SqliteStore::open(path.as_ref(), SqliteOptions::default()).expect("child open"));
    let stdout = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let mut tasks = Vec::new();
    for worker in 0..6usize {
        let store = store.clone();
        let stdout = stdout.clone();
        tasks.push(tokio::spawn(async move {
            let t = tenant(&format!("jd-{}", worker % 3));
            for i in 0u64.. {
                let n = (i % 3 + 1) as usize;
                let events = (0..n)
                    .map(|k| {
                        let payload = format!(
                            r#"{{"worker":{worker},"i":{i},"k":{k},"text":"第{i}次督查：理论学习不够深入𠮷😀"}}"#
                        );
                        new_event(&payload, now())
                    })
                    .collect::<Vec<_>>();
                let ids = events.iter().map(|e| e.event_id.clone()).collect::<Vec<_>>();
                let stream = format!("w{worker}-{}", i % 5);
                match store.append(request(&t, &stream, ExpectedVersion::Any, events)).await {
                    Ok(o) => {
                        let mut out = stdout.lock().unwrap_or_else(|p| p.into_inner());
                        for (k, id) in ids.iter().enumerate() {
                            writeln!(out, "ack {} {id}", o.first_position + k as u64).expect("stdout");
                        }
                        out.flush().expect("flush");
                    }
                    Err(StoreError::Closed) => return,
                    Err(e) => panic!("child append failed: {e}"),
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[test]
fn crash_keeps_every_acknowledged_event() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crash.db");
    let exe = std::env::current_exe().expect("current exe");
    let mut acked: HashMap<String, u64> = HashMap::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--include-ignored", "--test-threads", "1"])
            .env(DB_VAR, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let mut this_round = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("read child");
            let mut parts = line.split_whitespace();
            if parts.next() != Some("ack") {
                continue;
            }
            let (Some(pos), Some(id)) = (parts.next(), parts.next()) else { panic!("bad ack line {line:?}") };
            acked.insert(id.to_owned(), pos.parse().expect("position"));
            this_round += 1;
            if this_round >= ACKS_BEFORE_KILL {
                break;
            }
        }
        assert!(this_round >= ACKS_BEFORE_KILL, "round {round}: the child stopped after {this_round} acks");
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait");
        assert!(!status.success(), "the child was killed");
        check(&path, &acked, round);
    }
}

fn check(path: &std::path::Path, acked: &HashMap<String, u64>, round: usize) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let store = SqliteStore::open(path, SqliteOptions::default()).expect("reopen after kill");
        let mut by_id: HashMap<String, u64> = HashMap::new();
        let mut verifiers: BTreeMap<String, ChainVerifier> = BTreeMap::new();
        let mut expected_position = 1;
        let n = store
            .for_each_event(0, Upto::Head, None, |e| {
                assert_eq!(e.position, expected_position, "positions are gap-free");
                expected_position += 1;
                let payload: serde_json::Value = serde_json::from_str(&e.payload)
                    .map_err(|err| StoreError::Corrupt(format!("event {} has a partial payload: {err}", e.event_id)))?;
                assert!(
                    payload["text"].as_str().is_some_and(|s| s.contains("次督查：理论学习") && s.ends_with("𠮷😀"))
                );
                verifiers
                    .entry(e.tenant.to_string())
                    .or_default()
                    .check(&e)
                    .map_err(|b| StoreError::Corrupt(b.to_string()))?;
                by_id.insert(e.event_id, e.position);
                Ok::<(), StoreError>(())
            })
            .expect("every row decodes and every chain verifies");
        for (id, pos) in acked {
            assert_eq!(by_id.get(id), Some(pos), "round {round}: acknowledged event {id} at {pos} is missing");
        }
        let heads = store.tenants().await.expect("tenants");
        for h in &heads {
            let v = &verifiers[h.tenant.as_str()];
            assert_eq!(h.events, v.checked, "tenant_seq counts match the rows");
            assert_eq!(h.head_hash, hex::encode(v.head()));
        }
        assert_eq!(heads.iter().map(|h| h.events).sum::<u64>(), n);
        // The store keeps appending on top of what survived.
        store
            .append(request(
                &tenant("jd-0"),
                "after-crash",
                ExpectedVersion::Any,
                vec![new_event(r#"{"text":"崩溃后继续次督查：理论学习𠮷😀"}"#, now())],
            ))
            .await
            .expect("append after crash");
        eprintln!("round {round}: {n} events survived, {} acknowledged so far", acked.len());
    });
}

fn now() -> ducha_events::time::Timestamp {
    std::time::SystemTime::now().into()
}
