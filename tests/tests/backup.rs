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

/// Rewrites a tar archive with Python's tarfile (an independent reader and writer): each
/// `(name, Some(bytes))` replaces that member's content, `(name, None)` drops it; order is kept.
fn rewrite_archive(src: &Path, dst: &Path, changes: &[(&str, Option<&[u8]>)]) {
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = vec![src.display().to_string(), dst.display().to_string()];
    for (i, (name, bytes)) in changes.iter().enumerate() {
        args.push((*name).to_owned());
        match bytes {
            Some(b) => {
                let f = dir.path().join(format!("part{i}"));
                std::fs::write(&f, b).unwrap();
                args.push(f.display().to_string());
            }
            None => args.push("-".to_owned()),
        }
    }
    let script = r#"
import io, sys, tarfile
src, dst, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
changes = dict(zip(rest[0::2], rest[1::2]))
with tarfile.open(src) as t, tarfile.open(dst, "w", format=tarfile.GNU_FORMAT) as out:
    for m in t.getmembers():
        if m.name in changes:
            if changes[m.name] == "-":
                continue
            data = open(changes[m.name], "rb").read()
        else:
            data = t.extractfile(m).read()
        m.size = len(data)
        out.addfile(m, io.BytesIO(data))
"#;
    let out = std::process::Command::new("python3").arg("-c").arg(script).args(&args).output().expect("python3");
    assert!(out.status.success(), "rewriting the archive: {}", String::from_utf8_lossy(&out.stderr));
}

fn member(archive: &Path, name: &str) -> Vec<u8> {
    let out = std::process::Command::new("tar").arg("-xOf").arg(archive).arg(name).output().expect("tar");
    assert!(out.status.success(), "tar {name}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn restore_with(archive: &Path, target: &Path, extra: &[&str]) -> std::process::Output {
    let to = format!("sqlite:{}", target.display());
    let mut args = vec!["restore", archive.to_str().unwrap(), "--to", &to];
    args.extend_from_slice(extra);
    ducha(target, &args)
}

/// The manifest is signed with the deployment's anchor key. An insider who rewrites an evidence
/// file and recomputes the manifest cannot make the old signature fit; re-signing with a key of
/// their own passes only where no key is pinned (and restore prints that key's id); an archive
/// with its signature removed is refused unless `--allow-unsigned`. A wrong or malformed pinned key
/// is refused. Nothing is written by a refused restore.
#[test]
fn a_backup_is_signed_and_a_rewritten_or_resigned_manifest_is_refused() {
    use ducha::anchors::AnchorKey;
    use ducha::backup::signature::{SIGNATURE, sign};
    let server = Server::demo();
    let token = server.login("xx-admin");
    let evidence = pdf(9);
    let sha = upload(&server, &token, "整改台账.pdf", &evidence);
    let out_dir = tempfile::tempdir().unwrap();
    let archive = out_dir.path().join("signed.tar");
    let printed = ducha_ok(server.data_dir.path(), &["backup", "--out", archive.to_str().unwrap()]);

    // The deployment's key, as `ducha anchors public-key` publishes it.
    let public: Value =
        serde_json::from_str(&ducha_ok(server.data_dir.path(), &["anchors", "public-key"])).expect("public key JSON");
    let key_id = public["key_id"].as_str().unwrap().to_owned();
    let pinned = format!("{}:{}", public["algorithm"].as_str().unwrap(), public["public_key"].as_str().unwrap());
    assert!(printed.contains(&key_id), "backup names the signing key: {printed}");
    let sig: Value = serde_json::from_slice(&member(&archive, SIGNATURE)).expect("signature JSON");
    assert_eq!(sig["signer"]["key_id"], key_id.as_str());
    let names = std::process::Command::new("tar").arg("-tf").arg(&archive).output().unwrap();
    let names = String::from_utf8_lossy(&names.stdout).into_owned();
    assert_eq!(names.lines().take(2).collect::<Vec<_>>(), ["manifest.json", SIGNATURE], "{names}");

    // Restored with the pinned key.
    let good = tempfile::tempdir().unwrap();
    let out = restore_with(&archive, good.path(), &["--public-key", &pinned]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&key_id) && said.contains("pinned key"), "{said}");

    // The insider's edit: another evidence file, with the manifest's hash and size made to fit.
    let manifest_bytes = member(&archive, "manifest.json");
    let mut manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    let forged_pdf = pdf(10);
    let forged_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&forged_pdf))
    };
    let part = format!("evidence/xxjd/{sha}");
    for p in manifest["parts"].as_array_mut().unwrap() {
        if p["name"] == part.as_str() {
            p["sha256"] = json!(forged_sha);
            p["size"] = json!(forged_pdf.len());
        }
    }
    let forged_manifest = serde_json::to_vec_pretty(&manifest).unwrap();
    let rewritten = out_dir.path().join("rewritten.tar");
    rewrite_archive(&archive, &rewritten, &[("manifest.json", Some(&forged_manifest)), (&part, Some(&forged_pdf))]);
    let fresh = tempfile::tempdir().unwrap();
    for extra in [&[][..], &["--public-key", &pinned][..]] {
        let out = restore_with(&rewritten, fresh.path(), extra);
        assert!(!out.status.success());
        let msg = stderr(&out);
        assert!(msg.contains("签名无效") && msg.contains("does not verify"), "{extra:?}: {msg}");
        assert!(std::fs::read_dir(fresh.path()).unwrap().next().is_none(), "nothing written");
    }

    // Re-signed with the insider's own key: self-consistent, so only the pinned key catches it.
    let insider = AnchorKey::generate(ducha::anchors::AnchorAlgorithm::Ed25519).unwrap();
    let resigned_sig = serde_json::to_vec_pretty(&sign(&insider, &forged_manifest)).unwrap();
    let resigned = out_dir.path().join("resigned.tar");
    rewrite_archive(&rewritten, &resigned, &[(SIGNATURE, Some(&resigned_sig))]);
    let out = restore_with(&resigned, fresh.path(), &["--public-key", &pinned]);
    assert!(!out.status.success());
    let msg = stderr(&out);
    let insider_id = insider.public_key().key_id;
    assert!(msg.contains(&insider_id) && msg.contains("not by the pinned key"), "{msg}");
    assert!(std::fs::read_dir(fresh.path()).unwrap().next().is_none(), "nothing written");
    let unpinned = tempfile::tempdir().unwrap();
    let out = restore_with(&resigned, unpinned.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&insider_id) && said.contains("--public-key") && !said.contains(&key_id), "{said}");

    // The signature removed: refused, unless explicitly allowed (never with a pinned key).
    let unsigned = out_dir.path().join("unsigned.tar");
    rewrite_archive(&archive, &unsigned, &[(SIGNATURE, None)]);
    let out = restore_with(&unsigned, fresh.path(), &[]);
    assert!(!out.status.success() && stderr(&out).contains("--allow-unsigned"), "{}", stderr(&out));
    let out = restore_with(&unsigned, fresh.path(), &["--public-key", &pinned]);
    assert!(!out.status.success() && stderr(&out).contains("not signed"), "{}", stderr(&out));
    assert!(std::fs::read_dir(fresh.path()).unwrap().next().is_none(), "nothing written");
    let out = restore_with(&unsigned, fresh.path(), &["--allow-unsigned"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--allow-unsigned"));

    // A wrong or malformed pinned key.
    let other = AnchorKey::generate(ducha::anchors::AnchorAlgorithm::Sm2).unwrap().public_key();
    let wrong = format!("sm2:{}", other.public_key);
    let target = tempfile::tempdir().unwrap();
    let out = restore_with(&archive, target.path(), &["--public-key", &wrong]);
    assert!(!out.status.success() && stderr(&out).contains("not by the pinned key"), "{}", stderr(&out));
    let out = restore_with(&archive, target.path(), &["--public-key", "ed25519:zz"]);
    assert!(!out.status.success() && stderr(&out).contains("公钥无效"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));
    assert!(std::fs::read_dir(target.path()).unwrap().next().is_none(), "nothing written");

    // `--unsigned` writes no signature.
    let plain = out_dir.path().join("plain.tar");
    let printed = ducha_ok(server.data_dir.path(), &["backup", "--out", plain.to_str().unwrap(), "--unsigned"]);
    assert!(printed.contains("--unsigned"), "{printed}");
    let names = std::process::Command::new("tar").arg("-tf").arg(&plain).output().unwrap();
    assert!(!String::from_utf8_lossy(&names.stdout).contains(SIGNATURE));
}
