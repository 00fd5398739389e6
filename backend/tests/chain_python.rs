//! The auditor's independent script (tests/audit/verify_chain.py) agrees with the store, and catches
//! a single tampered payload byte, naming the event.

use ducha::store::conformance::{new_event, request, tenant};
use ducha::store::sqlite::{SqliteOptions, SqliteStore};
use ducha::store::{EventStore, ExpectedVersion, Upto};
use ducha_events::ids::TenantId;
use std::path::{Path, PathBuf};
use std::process::Command;

fn script() -> PathBuf {
    // The path as `cargo test` gives it now (a shared target directory may hold a build from another clone).
    let manifest =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest.join("../tests/audit/verify_chain.py")
}

fn python() -> Option<&'static str> {
    Command::new("python3").arg("--version").output().ok().filter(|o| o.status.success()).map(|_| "python3")
}

fn run_script(python: &str, db: &Path) -> (i32, serde_json::Value, String) {
    let out = Command::new(python).arg(script()).arg(db).output().expect("run verify_chain.py");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), json, stderr)
}

#[tokio::test]
async fn python_auditor_agrees_with_the_store_and_catches_tampering() {
    let Some(python) = python() else {
        eprintln!("SKIPPED: python3 is not installed, so tests/audit/verify_chain.py cannot be checked");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("audit.db");
    let store = SqliteStore::open(&db, SqliteOptions::default()).expect("open");
    let tenants = [tenant("jd-east"), tenant("jd-west"), TenantId::platform()];
    let payloads = [
        r#"{"title":"关于开展意识形态工作责任制落实情况督查的报告"}"#,
        "{\"note\":\"𠀀𠮷𪚥 街道𡈽社区 😀🀄\"}",
        r#"{"quote":"\"引号\" \\ 反斜杠 \n 换行"}"#,
    ];
    let mut tampered_id = String::new();
    for i in 0..30usize {
        let t = &tenants[i % tenants.len()];
        let mut e =
            new_event(payloads[i % payloads.len()], ducha_events::time::parse("2023-03-01T08:00:00+08:00").expect("t"));
        if i.is_multiple_of(4) {
            e.causation_id = Some(format!("cause-{i}"));
        }
        if i == 13 {
            tampered_id = e.event_id.clone();
        }
        let stream = format!("督查-{}", i % 4);
        store.append(request(t, &stream, ExpectedVersion::Any, vec![e])).await.expect("append");
    }
    let heads = store.tenants().await.expect("tenants");
    store.close().await;

    let (code, json, stderr) = run_script(python, &db);
    assert_eq!(code, 0, "the script verifies a good store: {json} {stderr}");
    assert_eq!(json["ok"], serde_json::Value::Bool(true));
    assert_eq!(json["tenants"].as_object().map(|m| m.len()), Some(heads.len()));
    for h in &heads {
        let t = &json["tenants"][h.tenant.as_str()];
        assert_eq!(t["events"].as_u64(), Some(h.events), "{}", h.tenant);
        assert_eq!(t["head"].as_str(), Some(h.head_hash.as_str()), "{}", h.tenant);
    }

    // Change one byte of one payload behind the store's back (the first letter of its first key).
    let conn = rusqlite::Connection::open(&db).expect("raw open");
    let payload: String =
        conn.query_row("SELECT payload FROM events WHERE event_id = ?1", [&tampered_id], |r| r.get(0)).expect("row");
    let mut bytes = payload.clone().into_bytes();
    let at = bytes.iter().position(|b| *b == b'"').expect("a quote") + 1;
    bytes[at] ^= 0x01;
    let tampered = String::from_utf8(bytes).expect("still UTF-8");
    assert_ne!(tampered, payload);
    conn.execute("UPDATE events SET payload = ?1 WHERE event_id = ?2", [&tampered, &tampered_id]).expect("tamper");
    drop(conn);

    let (code, json, stderr) = run_script(python, &db);
    assert_eq!(code, 1, "tampering is detected: {json}");
    assert_eq!(json["ok"], serde_json::Value::Bool(false));
    let error = json["error"].as_str().unwrap_or_default();
    assert!(error.contains(&tampered_id), "the first bad event is named: {error}");
    assert!(error.contains("hash does not match"), "{error}");
    assert!(stderr.contains(&tampered_id));

    // The store's own verifier agrees on which event is bad.
    let store = SqliteStore::open(&db, SqliteOptions { read_only: true, ..SqliteOptions::default() }).expect("ro");
    let mut verifiers = std::collections::BTreeMap::<String, ducha_events::chain::ChainVerifier>::new();
    let broken = store.for_each_event(0, Upto::Head, None, |e| {
        verifiers.entry(e.tenant.to_string()).or_default().check(&e).map_err(anyhow::Error::from)
    });
    let msg = broken.expect_err("the Rust verifier sees it too").to_string();
    assert!(msg.contains(&tampered_id), "{msg}");
}
