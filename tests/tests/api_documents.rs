//! Documents over HTTP: the 督查报告 (DOCX / HTML), issuing it and regenerating the same bytes, the
//! 整改台账 workbook scoped to the caller, and the district 通报 — against the real server, with the
//! files opened by independent readers (python-docx, openpyxl).

use ducha_tests::{Server, repo_root};
use serde_json::{Value, json};
use std::process::Command;

const REPORT: &str = "/api/v1/tenants/xxjd/inspections/2023-ideology/report";

fn read(kind: &str, bytes: &[u8]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("doc.{kind}"));
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("python3")
        .arg(repo_root().join("tests/documents/read_document.py"))
        .arg(kind)
        .arg(&path)
        .output()
        .expect("python3");
    assert!(out.status.success(), "independent reader failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn report_download_preview_and_as_of() {
    let s = Server::demo();
    let admin = s.login("xx-admin");
    let docx = s.get(REPORT, Some(&admin));
    assert_eq!(docx.status, 200, "{}", docx.text());
    assert!(docx.header("content-type").unwrap().contains("wordprocessingml"));
    assert_eq!(docx.header("x-ducha-sha256"), Some(sha256(&docx.body).as_str()));
    let doc = read("docx", &docx.body);
    let lines: Vec<String> =
        doc["paragraphs"].as_array().unwrap().iter().map(|p| p["text"].as_str().unwrap().to_owned()).collect();
    assert!(lines.iter().any(|l| l == "XX街道党工委对下级社区督查2023年度意识形态工作情况的督查报告"));
    assert!(lines.iter().any(|l| l == "二、存在主要问题"));

    let html = s.get(&format!("{REPORT}?format=html"), Some(&admin));
    assert_eq!(html.status, 200);
    assert!(html.text().contains("理论学习走过场的情况仍有存在"));
    // Before the findings were recorded (2023-11-21) the report has none of them.
    let before = s.get(&format!("{REPORT}?format=html&as_of=2023-11-15T12:00:00%2B08:00"), Some(&admin));
    assert_eq!(before.status, 200, "{}", before.text());
    assert!(!before.text().contains("理论学习走过场的情况仍有存在"));
    // Before the inspection was planned it does not exist.
    let none = s.get(&format!("{REPORT}?as_of=2023-06-01T00:00:00%2B08:00"), Some(&admin));
    assert_eq!(none.status, 404, "{}", none.text());
    assert_eq!(none.json()["code"], "not_found");

    // Another tenant's admin may not read it; a bad format is a clear 400.
    let other = s.login("yy-admin");
    assert_eq!(s.get(REPORT, Some(&other)).status, 403);
    let bad = s.get(&format!("{REPORT}?format=pdf"), Some(&admin));
    assert_eq!(bad.status, 400, "{}", bad.text());
}

#[test]
fn issuing_records_the_hash_and_regenerating_gives_the_same_bytes() {
    let s = Server::demo();
    let admin = s.login("xx-admin");
    let head = s.log_head();
    let issued = s.post_json(&format!("{REPORT}/issue"), Some(&admin), &json!({"format": "docx"}));
    assert_eq!(issued.status, 201, "{}", issued.text());
    let body = issued.json();
    let position = body["log_position"].as_u64().unwrap();
    assert_eq!(position, head, "generated from the log as it stood");
    assert!(body["recorded_at_position"].as_u64().unwrap() > head);
    let again = s.get(&format!("{REPORT}?at_position={position}"), Some(&admin));
    assert_eq!(again.status, 200);
    assert_eq!(sha256(&again.body), body["sha256"].as_str().unwrap(), "same bytes from the same log position");

    // An inspector may not issue; nothing is appended.
    let inspector = s.login("xx-duchazu1");
    let before = s.head_position();
    let refused = s.post_json(&format!("{REPORT}/issue"), Some(&inspector), &json!({}));
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(s.head_position(), before);
    let unknown = s.post_json(&format!("{REPORT}/issue"), Some(&admin), &json!({"colour": "red"}));
    assert!(matches!(unknown.status, 400 | 422), "{}", unknown.text());
}

#[test]
fn ledger_workbook_is_scoped_to_the_caller() {
    let s = Server::demo();
    let admin = s.login("xx-admin");
    let all = s.get("/api/v1/tenants/xxjd/ledger.xlsx", Some(&admin));
    assert_eq!(all.status, 200, "{}", all.text());
    let book = read("xlsx", &all.body);
    let sheet = &book["sheets"][0];
    assert_eq!(sheet["rows"][1][0], "序号");
    assert_eq!(
        sheet["max_row"].as_u64().unwrap(),
        2 + 11,
        "title, header and the findings (the sample's five, the 2024 inspection's six)"
    );

    // A community officer gets their own community's rows only: 东风社区's four of 2024 (the
    // sample's findings are cross-cutting), none of 向阳社区's or 和平社区's.
    let officer = s.login("xx-dongfeng");
    let own = s.get("/api/v1/tenants/xxjd/ledger.xlsx", Some(&officer));
    assert_eq!(own.status, 200, "{}", own.text());
    let own = read("xlsx", &own.body);
    assert_eq!(own["sheets"][0]["max_row"].as_u64().unwrap(), 2 + 4);
    let text = own["sheets"][0]["rows"].to_string();
    assert!(text.contains("东风社区") && !text.contains("向阳社区") && !text.contains("和平社区"), "{text}");
    assert_eq!(s.get("/api/v1/tenants/xxjd/ledger.xlsx", Some(&s.login("yy-admin"))).status, 403);
    let bad = s.get("/api/v1/tenants/xxjd/ledger.xlsx?warning=purple", Some(&admin));
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["field"], "warning");
}

#[test]
fn district_circular_for_district_readers_only() {
    let s = Server::demo();
    let officer = s.login("qu-xcb");
    let xlsx = s.get("/api/v1/districts/xxq/circular", Some(&officer));
    assert_eq!(xlsx.status, 200, "{}", xlsx.text());
    let book = read("xlsx", &xlsx.body);
    let text = book.to_string();
    for name in ["XX街道", "YY街道", "ZZ街道"] {
        assert!(text.contains(name), "{name} in the circular");
    }
    let docx = s.get("/api/v1/districts/xxq/circular?format=docx", Some(&officer));
    assert_eq!(docx.status, 200);
    read("docx", &docx.body);
    assert_eq!(s.get("/api/v1/districts/xxq/circular", Some(&s.login("xx-admin"))).status, 403);
    assert_eq!(s.get("/api/v1/districts/xxq/circular?format=pdf", Some(&officer)).status, 400);
}
