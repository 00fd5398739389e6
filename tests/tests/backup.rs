//! `ducha backup` and `ducha restore` with the real binary on real files: a backup taken while eight
//! clients write through HTTP holds every write acknowledged at or before its position, restores
//! into a fresh directory whose chains verify and end on the manifest's heads, and whose read model
//! is the one a full rebuild gives. A non-empty target and a tampered archive are refused; evidence
//! files come back byte for byte.

use ducha_tests::{Server, ducha, ducha_ok, http};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const TENANT: &str = "/api/v1/tenants/xxjd";
const FINDING: &str = "/api/v1/tenants/xxjd/inspections/2023-ideology/findings/xx-2023-f4";
const CLIENTS: usize = 8;

fn pdf(seed: u8) -> Vec<u8> {
    let mut b = b"%PDF-1.4\n% backup test\n".to_vec();
    b.extend((0..4000u32).map(|i| (i % 251) as u8 ^ seed));
    b.extend_from_slice(b"\n%%EOF\n");
    b
}

fn upload(s: &Server, token: &str, filename: &str, bytes: &[u8]) -> String {
    let boundary = "----ducha-backup-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: \
         application/pdf\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    let r = s.request("POST", &format!("{TENANT}/evidence"), Some(token), &[("Content-Type", &ct)], Some(&body));
    assert!((200..300).contains(&r.status), "upload: {} {}", r.status, r.text());
    r.json()["sha256"].as_str().expect("sha256").to_owned()
}

/// One reminder; returns the acknowledged position (None when not acknowledged).
fn remind(addr: &str, token: &str, message: &str) -> Option<u64> {
    let body = json!({ "message": message }).to_string();
    let auth = format!("Bearer {token}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let r = http(addr, "POST", &format!("{FINDING}/remind"), &headers, Some(body.as_bytes()));
    assert!(r.status < 500, "server error: {} {}", r.status, r.text());
    if r.status != 200 {
        return None;
    }
    Some(r.header("x-ducha-position").expect("X-Ducha-Position").parse().expect("position"))
}

fn manifest_of(archive: &Path) -> Value {
    let out = std::process::Command::new("tar").arg("-xOf").arg(archive).arg("manifest.json").output().expect("tar");
    assert!(out.status.success(), "tar: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("manifest JSON")
}

/// `(tenant, events, head)` of `ducha verify --json`.
fn verified_heads(dir: &Path) -> Vec<(String, u64, String)> {
    let out = ducha_ok(dir, &["verify", "--json"]);
    let v: Value = serde_json::from_str(&out).expect("verify JSON");
    assert_eq!(v["ok"], true, "{out}");
    let mut heads: Vec<_> = v["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tenant"].as_str().unwrap().to_owned(),
                t["events"].as_u64().unwrap(),
                t["head"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    heads.sort();
    heads
}

fn manifest_heads(m: &Value) -> Vec<(String, u64, String)> {
    let mut heads: Vec<_> = m["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tenant"].as_str().unwrap().to_owned(),
                t["sequence"].as_u64().unwrap(),
                t["hash"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    heads.sort();
    heads
}

fn restore(archive: &Path, target: &Path) -> std::process::Output {
    let to = format!("sqlite:{}", target.display());
    ducha(target, &["restore", archive.to_str().unwrap(), "--to", &to])
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn evidence_path(dir: &Path, sha: &str) -> PathBuf {
    dir.join("evidence").join("xxjd").join(&sha[..2]).join(&sha[2..])
}

/// The messages of every reminder in a store's XX街道 log.
fn reminders(dir: &Path) -> std::collections::BTreeSet<String> {
    let out = ducha_ok(dir, &["export", "--tenant", "xxjd"]);
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|e| e["payload"].as_str().and_then(|p| serde_json::from_str::<Value>(p).ok()))
        .filter_map(|p| p["message"].as_str().map(str::to_owned))
        .collect()
}

/// GET answers of a server, without the parts that are about the request rather than the model.
fn answers(s: &Server) -> Vec<Value> {
    let token = s.login("xx-admin");
    [
        FINDING.to_owned(),
        format!("{TENANT}/inspections"),
        format!("{TENANT}/dashboard"),
        format!("{TENANT}/ledger?inspection=2023-ideology&page_size=100"),
    ]
    .iter()
    .map(|p| {
        let r = s.get(p, Some(&token));
        assert_eq!(r.status, 200, "{p}: {}", r.text());
        r.json()
    })
    .collect()
}

#[test]
fn a_backup_under_load_restores_every_acknowledged_write() {
    let server = Server::demo();
    let token = server.login("xx-admin");
    let evidence = pdf(7);
    let sha = upload(&server, &token, "会议记录.pdf", &evidence);
    let out_dir = tempfile::tempdir().unwrap();
    let archive = out_dir.path().join("ducha-backup.tar");

    let stop = Arc::new(AtomicBool::new(false));
    let (acked, backup_out) = std::thread::scope(|s| {
        let writers: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (addr, token, stop) = (server.addr.clone(), token.clone(), stop.clone());
                s.spawn(move || {
                    let mut acked = Vec::new();
                    let mut n = 0;
                    // Keep writing until the backup is over, and a little after.
                    while !stop.load(Ordering::Relaxed) || n < 5 {
                        let message = format!("第{c}路第{n}次催办");
                        if let Some(p) = remind(&addr, &token, &message) {
                            acked.push((p, message));
                        }
                        n += 1;
                    }
                    acked
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(300));
        // The server holds the directory's lock: the backup reads beside it.
        let backup_out = ducha(server.data_dir.path(), &["backup", "--out", archive.to_str().unwrap()]);
        std::thread::sleep(std::time::Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        let acked: Vec<(u64, String)> = writers.into_iter().flat_map(|w| w.join().expect("writer")).collect();
        (acked, backup_out)
    });
    assert!(backup_out.status.success(), "backup failed: {}", stderr(&backup_out));
    let manifest = manifest_of(&archive);
    let head = manifest["head_position"].as_u64().unwrap();
    assert_eq!(manifest["format"], "ducha-backup/1");
    assert_eq!(manifest["store_kind"], "sqlite");
    let before: Vec<_> = acked.iter().filter(|(p, _)| *p <= head).collect();
    let after = acked.len() - before.len();
    assert!(
        !before.is_empty() && after > 0,
        "writes on both sides of the backup: {} before, {after} after",
        before.len()
    );
    for part in manifest["parts"].as_array().unwrap() {
        assert_eq!(part["sha256"].as_str().unwrap().len(), 64, "{part}");
    }

    // Restore into a fresh directory.
    let restored = tempfile::tempdir().unwrap();
    let out = restore(&archive, restored.path());
    assert!(out.status.success(), "restore failed: {}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        verified_heads(restored.path()),
        manifest_heads(&manifest),
        "the restored chains end on the manifest's heads"
    );
    for (_, _, hash) in manifest_heads(&manifest) {
        assert!(printed.contains(&hash), "restore prints the heads: {printed}");
    }
    let present = reminders(restored.path());
    for (p, message) in &before {
        assert!(present.contains(message), "the write acknowledged at {p} ≤ {head} is missing");
    }
    for (p, message) in acked.iter().filter(|(p, _)| *p > head) {
        assert!(!present.contains(message), "the write acknowledged at {p} > {head} cannot be in the backup");
    }
    // Evidence files come back byte for byte.
    assert_eq!(std::fs::read(evidence_path(restored.path(), &sha)).expect("restored evidence"), evidence);
    drop(server);

    // The restored read model equals a full rebuild of the same log.
    let rebuilt = tempfile::tempdir().unwrap();
    assert!(restore(&archive, rebuilt.path()).status.success());
    ducha_ok(rebuilt.path(), &["replay"]);
    let a = Server::start_in(restored, false, &[]);
    let b = Server::start_in(rebuilt, false, &[]);
    assert_eq!(answers(&a), answers(&b), "the restored read model is a full rebuild's");
}

#[test]
fn a_non_empty_target_and_a_tampered_archive_are_refused() {
    let server = Server::demo();
    let token = server.login("xx-admin");
    let evidence = pdf(3);
    let sha = upload(&server, &token, "整改照片.pdf", &evidence);
    let out_dir = tempfile::tempdir().unwrap();
    let archive = out_dir.path().join("b.tar");
    ducha_ok(server.data_dir.path(), &["backup", "--out", archive.to_str().unwrap()]);
    // Never overwritten.
    let again = ducha(server.data_dir.path(), &["backup", "--out", archive.to_str().unwrap()]);
    assert!(!again.status.success() && stderr(&again).contains("exists"), "{}", stderr(&again));

    // A non-empty target: refused, unchanged.
    let target = tempfile::tempdir().unwrap();
    std::fs::write(target.path().join("keep.txt"), b"mine").unwrap();
    let out = restore(&archive, target.path());
    assert!(!out.status.success());
    let msg = stderr(&out);
    assert!(msg.contains("不是空的") && msg.contains("not empty"), "{msg}");
    let names: Vec<_> = std::fs::read_dir(target.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("keep.txt")], "nothing written");
    // A restored store is not empty either.
    let first = tempfile::tempdir().unwrap();
    assert!(restore(&archive, first.path()).status.success());
    assert_eq!(std::fs::read(evidence_path(first.path(), &sha)).unwrap(), evidence, "evidence byte-identical");
    let out = restore(&archive, first.path());
    assert!(!out.status.success() && stderr(&out).contains("not empty"), "{}", stderr(&out));

    // Tampered: one byte of the evidence file, then one byte of the events.
    let bytes = std::fs::read(&archive).unwrap();
    let at = bytes.windows(evidence.len()).position(|w| w == evidence.as_slice()).expect("the file is in the archive");
    let mut tampered = bytes.clone();
    tampered[at + 100] ^= 0x55;
    let bad = out_dir.path().join("tampered.tar");
    std::fs::write(&bad, &tampered).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let out = restore(&bad, fresh.path());
    assert!(!out.status.success());
    let msg = stderr(&out);
    assert!(msg.contains(&format!("evidence/xxjd/{sha}")) && msg.contains("tampered"), "{msg}");
    assert!(std::fs::read_dir(fresh.path()).unwrap().next().is_none(), "nothing written");
    let db = bytes.windows(16).position(|w| w == b"SQLite format 3\0").expect("the database is in the archive");
    let mut tampered = bytes.clone();
    tampered[db + 5000] ^= 0x01;
    std::fs::write(&bad, &tampered).unwrap();
    let msg = stderr(&restore(&bad, fresh.path()));
    assert!(msg.contains("events.db") && msg.contains("SHA-256"), "{msg}");

    // Truncated and random files: clear errors, no panic.
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let out = restore(&bad, fresh.path());
    assert!(!out.status.success() && !stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert!(stderr(&out).contains("backup"), "{}", stderr(&out));
    let random: Vec<u8> = (0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    std::fs::write(&bad, &random).unwrap();
    let out = restore(&bad, fresh.path());
    assert!(!out.status.success() && !stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert!(std::fs::read_dir(fresh.path()).unwrap().next().is_none(), "nothing written");
}
