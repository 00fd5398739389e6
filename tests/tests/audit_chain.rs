//! The chain, checked from outside: Python's standard `sqlite3` and `hashlib` recompute every chain
//! of a demo database (tests/audit/verify_chain.py, no project code) and must agree with `ducha
//! verify`; after tampering, both name the same first bad event.

use ducha_tests::{ducha, ducha_ok, repo_root};
use serde_json::Value;
use std::process::Command;

fn python(args: &[&str]) -> std::process::Output {
    Command::new("python3").args(args).output().expect("python3 is installed by `cargo xtask test`")
}

fn script() -> String {
    repo_root().join("tests/audit/verify_chain.py").display().to_string()
}

#[test]
fn python_recomputes_every_chain_and_agrees() {
    let dir = tempfile::tempdir().unwrap();
    ducha_ok(dir.path(), &["demo"]);
    let db = dir.path().join("ducha.db");
    let out = python(&[&script(), db.to_str().unwrap()]);
    assert!(out.status.success(), "python verifier failed: {}", String::from_utf8_lossy(&out.stdout));
    let py: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(py["ok"], true);

    let ours: Value = serde_json::from_str(&ducha_ok(dir.path(), &["verify", "--json"])).unwrap();
    let ours = ours["tenants"].as_array().unwrap();
    assert_eq!(ours.len(), py["tenants"].as_object().unwrap().len());
    for t in ours {
        let name = t["tenant"].as_str().unwrap();
        assert_eq!(py["tenants"][name]["events"], t["events"], "{name}");
        assert_eq!(py["tenants"][name]["head"], t["head"], "{name}");
    }
}

#[test]
fn tampering_is_found_by_both_and_the_first_bad_event_is_named() {
    let dir = tempfile::tempdir().unwrap();
    ducha_ok(dir.path(), &["demo"]);
    let db = dir.path().join("ducha.db");
    // Rewrite history with an independent tool: rename a community in its stored event.
    let tamper = r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
row = c.execute("SELECT event_id FROM events WHERE event_type='CommunityAdded' AND payload LIKE '%东风社区%'").fetchone()
c.execute("UPDATE events SET payload = replace(payload, '东风社区', '西风社区') WHERE event_id = ?", row)
c.commit()
print(row[0])
"#;
    let out = python(&["-c", tamper, db.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let event_id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!event_id.is_empty());

    let ours = ducha(dir.path(), &["verify"]);
    assert_eq!(ours.status.code(), Some(2), "verify must fail after tampering");
    let text = String::from_utf8_lossy(&ours.stdout);
    assert!(text.contains(&event_id) && text.contains("篡改"), "{text}");

    let py = python(&[&script(), db.to_str().unwrap()]);
    assert_eq!(py.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&py.stdout).contains(&event_id), "{}", String::from_utf8_lossy(&py.stdout));
}
