//! Moving a deployment between stores with the real binary: `ducha copy` SQLite → PostgreSQL →
//! SQLite gives the same chains, hashes and read models; `export`/`import` of one tenant from SQLite
//! into PostgreSQL keeps every hash; `copy` refuses a non-empty target; every command takes
//! `--store`. Needs `DUCHA_TEST_POSTGRES_URL` (skipped with one line otherwise).

use ducha::store::postgres::testing::TestDatabase;
use ducha_tests::{Server, ducha_bin, http};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(ducha_bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("DUCHA_") && k != "DUCHA_TEST_POSTGRES_URL" {
            cmd.env_remove(k);
        }
    }
    cmd.args(args).output().expect("run ducha")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "ducha {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sqlite(dir: &Path) -> String {
    format!("sqlite:{}", dir.display())
}

/// Tenant → (events, head hash), from `ducha verify --json`, which must pass.
fn heads(store: &str) -> BTreeMap<String, (u64, String)> {
    let v: Value = serde_json::from_str(&ok(&["--store", store, "verify", "--json"])).expect("json");
    assert_eq!(v["ok"], true, "{store}: {v}");
    v["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .map(|t| {
            (
                t["tenant"].as_str().expect("tenant").to_owned(),
                (t["events"].as_u64().expect("events"), t["head"].as_str().expect("head").to_owned()),
            )
        })
        .collect()
}

/// The read models, as the district roll-up and the ledger workbook's rows show them.
fn rollup(store: &str) -> Value {
    let mut v: Value =
        serde_json::from_str(&ok(&["--store", store, "rollup", "--district", "xxq", "--json"])).expect("json");
    // "Today" is the day it runs: the same for all three, but strip it anyway.
    if let Some(o) = v.as_object_mut() {
        o.remove("today");
    }
    v
}

#[test]
fn copy_sqlite_to_postgres_and_back_keeps_every_hash_and_read_model() {
    let Some(db) = TestDatabase::create_blocking("ducha copy round trip") else { return };
    // A pilot on SQLite: the demo, and one evidence file uploaded through the API.
    let pilot = Server::demo();
    let officer = pilot.login("xx-dongfeng");
    let pdf = b"%PDF-1.7\n% pilot evidence\n%%EOF\n";
    let boundary = "b0undary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"佐证.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(pdf);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    let auth = format!("Bearer {officer}");
    let up = http(
        &pilot.addr,
        "POST",
        "/api/v1/tenants/xxjd/evidence",
        &[("Authorization", &auth), ("Content-Type", &ct)],
        Some(&body),
    );
    assert_eq!(up.status, 201, "{}", up.text());
    let sha = up.json()["sha256"].as_str().expect("sha").to_owned();
    let pilot_dir = pilot.data_dir.path().to_owned();
    let mut pilot = pilot;
    pilot.kill();

    let from = sqlite(&pilot_dir);
    let expected = heads(&from);
    let expected_rollup = rollup(&from);

    let out = ok(&["copy", "--from", &from, "--to", &db.url]);
    assert!(out.contains("哈希链校验通过"), "{out}");
    assert!(out.contains("1 个佐证文件"), "{out}");
    assert_eq!(heads(&db.url), expected, "the same chains in PostgreSQL");
    assert_eq!(rollup(&db.url), expected_rollup, "the same read model in PostgreSQL");

    // A second copy into the now non-empty database is refused and changes nothing.
    let again = run(&["copy", "--from", &from, "--to", &db.url]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("目标存储不是空的"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(heads(&db.url), expected);

    // And back into a fresh SQLite directory.
    let back = tempfile::tempdir().expect("dir");
    let back_store = sqlite(&back.path().join("data"));
    ok(&["copy", "--from", &db.url, "--to", &back_store]);
    assert_eq!(heads(&back_store), expected, "the same chains back in SQLite");
    assert_eq!(rollup(&back_store), expected_rollup, "the same read model back in SQLite");
    let copied = back.path().join("data/evidence/xxjd").join(&sha[..2]).join(&sha[2..]);
    assert_eq!(std::fs::read(&copied).expect("evidence copied back"), pdf);
    // Every tenant's export is the same file in all three stores (positions included: the copy
    // keeps the log's order).
    for tenant in expected.keys() {
        let a = ok(&["--store", &from, "export", "--tenant", tenant]);
        let b = ok(&["--store", &db.url, "export", "--tenant", tenant]);
        let c = ok(&["--store", &back_store, "export", "--tenant", tenant]);
        assert_eq!(a, b, "{tenant}: SQLite and PostgreSQL exports");
        assert_eq!(a, c, "{tenant}: the round trip");
    }
}

#[test]
fn a_tenant_exported_from_sqlite_imports_into_postgres_with_the_same_hashes() {
    let Some(db) = TestDatabase::create_blocking("export/import into PostgreSQL") else { return };
    let dir = tempfile::tempdir().expect("dir");
    let store = sqlite(dir.path());
    ok(&["--store", &store, "demo"]);
    let file = dir.path().join("yyjd.jsonl");
    ok(&["--store", &store, "export", "--tenant", "yyjd", "--out", &file.display().to_string()]);
    ok(&["--store", &db.url, "import", &file.display().to_string()]);
    let hashes = |text: &str| -> Vec<(String, String)> {
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("event"))
            .map(|e| (e["event_id"].as_str().unwrap_or("").to_owned(), e["hash"].as_str().unwrap_or("").to_owned()))
            .collect()
    };
    let original = hashes(&std::fs::read_to_string(&file).expect("export"));
    let imported = hashes(&ok(&["--store", &db.url, "export", "--tenant", "yyjd"]));
    assert!(original.len() > 10);
    assert_eq!(imported, original, "byte-identical hashes, event by event");
}

#[test]
fn every_command_takes_the_postgres_store() {
    let Some(db) = TestDatabase::create_blocking("commands on --store postgres") else { return };
    let s = db.url.as_str();
    let demo = ok(&["--store", s, "demo"]);
    assert!(demo.contains("已加载演示数据") && demo.contains("postgres://"), "{demo}");
    assert!(ok(&["--store", s, "demo"]).contains("演示数据已存在"));
    assert!(ok(&["--store", s, "verify"]).contains("哈希链完整"));
    assert!(ok(&["--store", s, "replay"]).contains("rebuilt all projections"));
    assert!(ok(&["--store", s, "rollup", "--district", "xxq"]).contains("XX街道"));
    let dir = tempfile::tempdir().expect("dir");
    let report = dir.path().join("report.docx");
    ok(&[
        "--store",
        s,
        "report",
        "--tenant",
        "xxjd",
        "--inspection",
        "2023-ideology",
        "--out",
        &report.display().to_string(),
    ]);
    assert!(std::fs::metadata(&report).expect("report").len() > 1000);
    let ledger = dir.path().join("ledger.xlsx");
    ok(&["--store", s, "ledger", "--tenant", "xxjd", "--out", &ledger.display().to_string()]);
    assert!(ledger.exists());
    let circular = dir.path().join("circular.xlsx");
    ok(&["--store", s, "circular", "--district", "xxq", "--format", "xlsx", "--out", &circular.display().to_string()]);
    assert!(circular.exists());
    // `admin create` reads the password from standard input.
    let mut child = Command::new(ducha_bin())
        .args(["--store", s, "admin", "create", "ops-admin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("admin create");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), b"A-long-enough-password-1\n").expect("password");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The DUCHA_STORE variable works like the flag; a bad URL is a clear error, without the password.
    let bad = Command::new(ducha_bin())
        .args(["verify"])
        .env("DUCHA_STORE", "postgresql://u:hunter2@127.0.0.1:1/x?ducha_pool=0")
        .output()
        .expect("run");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("ducha_pool") && !err.contains("hunter2"), "{err}");
    let unreachable = Command::new(ducha_bin())
        .args(["verify"])
        .env("DUCHA_STORE", "postgresql://u:hunter2@127.0.0.1:1/x")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&unreachable.stderr);
    assert!(!unreachable.status.success() && err.contains("无法连接事件存储") && !err.contains("hunter2"), "{err}");
}

/// `ducha backup` of a PostgreSQL store (a logical backup through the store API, evidence rows
/// included), restored into another PostgreSQL database and into SQLite: the manifest's heads are
/// the source's, both targets verify with those heads and give the same read model, and a
/// non-empty PostgreSQL target is refused, unchanged.
#[test]
fn a_postgres_backup_restores_into_postgres_and_sqlite_with_the_same_heads() {
    let Some(source) = TestDatabase::create_blocking("ducha backup of PostgreSQL") else { return };
    let Some(target) = TestDatabase::create_blocking("ducha restore into PostgreSQL") else { return };
    ok(&["--store", &source.url, "demo"]);
    let expected = heads(&source.url);
    let expected_rollup = rollup(&source.url);

    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("pg.tar");
    // A shared store has no data directory to keep a key in: without the replicas' anchor key the
    // backup is refused rather than silently unsigned.
    let refused = run(&["--store", &source.url, "backup", "--out", archive.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && err.contains("anchor_key_file") && err.contains("--unsigned"), "{err}");
    assert!(!archive.exists());
    let key = ducha::anchors::AnchorKey::generate(ducha::anchors::AnchorAlgorithm::Sm2).unwrap();
    let key_file = dir.path().join("anchor.key");
    std::fs::write(&key_file, key.to_text()).unwrap();
    let config = dir.path().join("ducha.toml");
    std::fs::write(&config, format!("anchor_key_file = {:?}\n", key_file.display().to_string())).unwrap();
    let config = config.to_str().unwrap();
    let out = ok(&["--store", &source.url, "backup", "--out", archive.to_str().unwrap(), "--config", config]);
    let public = key.public_key();
    assert!(out.contains(&public.key_id), "{out}");
    let pinned = format!("sm2:{}", public.public_key);
    let manifest = Command::new("tar").arg("-xOf").arg(&archive).arg("manifest.json").output().expect("tar");
    let manifest: Value = serde_json::from_slice(&manifest.stdout).expect("manifest JSON");
    assert_eq!(manifest["store_kind"], "postgres", "{manifest}");
    let in_manifest: BTreeMap<String, (u64, String)> = manifest["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tenant"].as_str().unwrap().to_owned(),
                (t["sequence"].as_u64().unwrap(), t["hash"].as_str().unwrap().to_owned()),
            )
        })
        .collect();
    assert_eq!(in_manifest, expected, "the manifest holds the source's heads");

    ok(&["restore", archive.to_str().unwrap(), "--to", &target.url, "--public-key", &pinned]);
    assert_eq!(heads(&target.url), expected, "restored into PostgreSQL with the same heads");
    assert_eq!(rollup(&target.url), expected_rollup, "and the same read model");
    let sqlite_dir = tempfile::tempdir().unwrap();
    let to_sqlite = sqlite(sqlite_dir.path());
    ok(&["restore", archive.to_str().unwrap(), "--to", &to_sqlite, "--public-key", &pinned]);
    assert_eq!(heads(&to_sqlite), expected, "restored into SQLite with the same heads");
    assert_eq!(rollup(&to_sqlite), expected_rollup);

    // The PostgreSQL target is no longer empty: refused, and still the same.
    let again = run(&["restore", archive.to_str().unwrap(), "--to", &target.url]);
    assert!(!again.status.success(), "a second restore into the same database is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(heads(&target.url), expected);
}
