//! A full disk: a write answers 503 `storage_full` (problem+json, Chinese, `Retry-After`) and
//! leaves nothing behind, reads keep working, `/readyz` says `degraded` with `storage: full`, and
//! writes work again once there is space.
//!
//! Two ways to fill it:
//! - SQLite's `max_page_count` (`DUCHA_SQLITE_MAX_PAGE_COUNT`): the database may not grow. Runs
//!   everywhere. Space "returns" by restarting without the cap (the setting is read at start).
//! - A real full filesystem: a small tmpfs mounted by the test (we run as root), holding the store
//!   and the evidence folder, filled up with a file; then the file is deleted and the same process
//!   writes again. Where `mount` is refused (an unprivileged CI), the test says why and stops.
//! - PostgreSQL: the test database moved into a tablespace on such a tmpfs, which is then filled:
//!   53100 `disk full` becomes the same 503, and the same process recovers once space returns.
//!
//! And a commit that fails inside PostgreSQL (an error raised at COMMIT by a deferred trigger the
//! test installs) is never acknowledged: an error answer, nothing in the store or the read model.

use ducha_tests::{Response, Server, ducha_ok, try_http};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const FINDING: &str = "/api/v1/tenants/xxjd/inspections/2023-ideology/findings/xx-2023-f4";
const USERS: &str = "/api/v1/tenants/xxjd/users";

fn post(addr: &str, token: &str, path: &str, key: &str, body: &Value) -> Response {
    let auth = format!("Bearer {token}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Idempotency-Key", key),
        ("X-Request-Id", key),
    ];
    try_http(addr, "POST", path, &headers, Some(body.to_string().as_bytes())).expect("answer")
}

fn remind(addr: &str, token: &str, key: &str) -> Response {
    post(addr, token, &format!("{FINDING}/remind"), key, &json!({ "message": format!("磁盘测试催办 {key}") }))
}

/// The answer is a 503 `storage_full` problem with a Chinese title and detail and `Retry-After`.
fn assert_storage_full(r: &Response, what: &str) {
    assert_eq!(r.status, 503, "{what}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"), "{what}");
    let p = r.json();
    assert_eq!(p["code"], "storage_full", "{what}: {p}");
    assert_eq!(p["type"], "urn:ducha:problem:storage_full", "{what}");
    assert_eq!(p["title"], "服务暂不可用", "{what}");
    assert!(p["detail"].as_str().is_some_and(|d| d.contains("存储空间已满")), "{what}: {p}");
    let retry: u64 = r.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!(retry > 0, "{what}");
}

/// Business events (not the security audit log's) of a correlation id (the request's
/// `X-Request-Id`) in a store file, read by Python's sqlite3.
fn events_of(db: &Path, correlation: &str) -> u64 {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys;c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro',uri=True);\
             print(c.execute(\"select count(*) from events where correlation_id=? and tenant not in ('_security','_anchors')\",(sys.argv[2],)).fetchone()[0])",
        ])
        .arg(db)
        .arg(correlation)
        .output()
        .expect("python3");
    assert!(out.status.success(), "reading {}: {}", db.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("count")
}

fn readyz(addr: &str) -> (u16, Value) {
    let r = try_http(addr, "GET", "/readyz", &[], None).expect("readyz");
    (r.status, r.json())
}

/// Writes reminders until one is refused for want of space; the keys of the accepted ones and the
/// refused answer. Panics if none is refused within `limit` writes.
fn fill(addr: &str, token: &str, prefix: &str, limit: usize) -> (Vec<String>, String, Response) {
    let mut accepted = Vec::new();
    for n in 0..limit {
        let key = format!("{prefix}-{n}");
        let r = remind(addr, token, &key);
        match r.status {
            200 => accepted.push(key),
            503 => return (accepted, key, r),
            s => panic!("{key}: unexpected {s}: {}", r.text()),
        }
    }
    panic!("no write was refused in {limit} attempts");
}

#[test]
fn a_database_that_cannot_grow_refuses_writes_with_storage_full_and_keeps_reading() {
    let mut server = Server::demo();
    let token = server.login("xx-admin");
    let db = server.data_dir.path().join("ducha.db");
    assert_eq!(remind(&server.addr, &token, "before-cap").status, 200);

    // The database may not grow beyond its current size (SQLite raises a cap of 1 to that).
    server.restart(&[("DUCHA_SQLITE_MAX_PAGE_COUNT", "1")]);
    let (accepted, refused_key, refused) = fill(&server.addr, &token, "cap", 5000);
    println!("{} writes fitted in the file's free space before one was refused", accepted.len());
    assert_storage_full(&refused, "a reminder");
    assert_eq!(events_of(&db, &refused_key), 0, "nothing of the refused write is in the store");
    // A write of three events (and its security audit record) is refused the same way, whole.
    let user = json!({"username": "disk-full-user", "display_name": "磁盘测试", "password": "disk-full-pass-1", "role": "inspector"});
    let r = post(&server.addr, &token, USERS, "cap-user", &user);
    assert_storage_full(&r, "a new user");
    assert_eq!(events_of(&db, "cap-user"), 0, "no half-written user");

    // Reads keep working; /readyz says why writes fail, and stays 200 (degraded).
    assert_eq!(server.get(FINDING, Some(&token)).status, 200);
    assert_eq!(server.get("/api/v1/tenants/xxjd/inspections", Some(&token)).status, 200);
    let (status, ready) = readyz(&server.addr);
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["storage"], "full", "{ready}");
    assert!(ready["storage_detail"].as_str().is_some_and(|d| d.contains("full")), "{ready}");
    let metrics = server.get("/metrics", None).text();
    assert!(metrics.contains("status=\"503\""), "the refusals are counted: {metrics}");
    assert!(metrics.contains("\nducha_storage_full 1\n"), "{metrics}");
    // The chains verify while it is full.
    ducha_ok(server.data_dir.path(), &["verify"]);

    // Space returns (the cap is lifted; it is read at start): the refused writes, retried with
    // their keys, succeed once, and /readyz is ready again.
    server.restart(&[]);
    let r = remind(&server.addr, &token, &refused_key);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(&server.addr, &token, USERS, "cap-user", &user);
    assert_eq!(r.status, 201, "{}", r.text());
    let (status, ready) = readyz(&server.addr);
    assert_eq!((status, &ready["status"], &ready["storage"]), (200, &json!("ready"), &json!("ok")), "{ready}");
    assert_eq!(events_of(&db, &refused_key), 1);
    assert_eq!(events_of(&db, "cap-user"), 3, "created, password set, role granted");
    for key in &accepted {
        assert_eq!(events_of(&db, key), 1, "{key} accepted while the disk filled is there once");
    }
    ducha_ok(server.data_dir.path(), &["verify"]);
}

/// A tmpfs mounted for the test, unmounted (and its mount point removed) on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        // One mount point per mount: the tests of this file run in parallel in one process, and a
        // second tmpfs on the same directory would hide the first (and be unmounted in its place).
        static MOUNTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = MOUNTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ducha-full-disk-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            let _ = std::fs::remove_dir(&dir);
            return Err(format!("mount -t tmpfs refused: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Tmpfs { dir })
    }

    /// [`Tmpfs::mount`], or `None` after printing why the test is skipped and what covers it.
    fn mount_or_skip(size: &str, covered_by: &str) -> Option<Tmpfs> {
        match Tmpfs::mount(size) {
            Ok(fs) => Some(fs),
            Err(why) => {
                println!("skipped: cannot make a small filesystem here ({why}); {covered_by}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Fills a filesystem with one file until it is full; the file.
fn fill_up(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0usize;
    // Large pieces, then small ones to the last byte.
    for size in [chunk.len(), 512] {
        loop {
            match f.write(&chunk[..size]) {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling up: {e}"),
            }
        }
    }
    println!("filled the filesystem with {written} bytes");
    let _ = f.sync_all();
    path
}

fn pdf(seed: u8, len: usize) -> Vec<u8> {
    let mut b = b"%PDF-1.4\n% full disk test\n".to_vec();
    b.extend((0..len).map(|i| (i % 251) as u8 ^ seed));
    b.extend_from_slice(b"\n%%EOF\n");
    b
}

fn upload(addr: &str, token: &str, bytes: &[u8]) -> Response {
    let boundary = "----ducha-full-disk-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"记录.pdf\"\r\nContent-Type: \
         application/pdf\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    let auth = format!("Bearer {token}");
    try_http(
        addr,
        "POST",
        "/api/v1/tenants/xxjd/evidence",
        &[("Authorization", &auth), ("Content-Type", &ct)],
        Some(&body),
    )
    .expect("upload answer")
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_full_filesystem_refuses_writes_and_uploads_then_recovers_without_a_restart() {
    let Some(fs) = Tmpfs::mount_or_skip("48m", "the max_page_count test covers the API") else { return };
    // The store (ducha.db, api.db, evidence/) on the small filesystem; the server's log elsewhere.
    let store_dir = fs.dir.join("store");
    std::fs::create_dir_all(&store_dir).unwrap();
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("jwt.secret");
    std::fs::write(&secret, "a-full-disk-test-secret-of-at-least-32-bytes").unwrap();
    let url = format!("sqlite:{}", store_dir.display());
    let server = Server::replica(&url, &secret, true, &[]);
    let token = server.login("xx-admin");
    let db = store_dir.join("ducha.db");
    assert_eq!(remind(&server.addr, &token, "fs-before").status, 200);
    let evidence_before = upload(&server.addr, &token, &pdf(1, 20_000));
    assert_eq!(evidence_before.status, 201, "{}", evidence_before.text());

    let filler = fill_up(&fs.dir);
    let (accepted, refused_key, refused) = fill(&server.addr, &token, "fs", 5000);
    println!("{} writes fitted after the filesystem was filled", accepted.len());
    assert_storage_full(&refused, "a reminder on a full filesystem");
    assert_eq!(events_of(&db, &refused_key), 0, "nothing of the refused write is in the store");
    assert_eq!(server.get(FINDING, Some(&token)).status, 200, "reads keep working");
    let (status, ready) = readyz(&server.addr);
    assert_eq!((status, &ready["status"], &ready["storage"]), (200, &json!("degraded"), &json!("full")), "{ready}");

    // An upload to the full evidence folder: 503 storage_full and no half file.
    let big = pdf(2, 200_000);
    let r = upload(&server.addr, &token, &big);
    assert_storage_full(&r, "an evidence upload");
    let leftovers: Vec<_> = files_under(&store_dir.join("evidence"))
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
    let evidence_files = files_under(&store_dir.join("evidence")).len();
    assert_eq!(evidence_files, 2, "only the first upload and its description are there");

    // Space returns: the same process writes again, the refused writes retried with their keys
    // succeed once, /readyz is ready.
    std::fs::remove_file(&filler).unwrap();
    let r = remind(&server.addr, &token, &refused_key);
    assert_eq!(r.status, 200, "{}", r.text());
    let (_, ready) = readyz(&server.addr);
    assert_eq!(ready["storage"], "full", "the evidence folder has not been written to yet: {ready}");
    let r = upload(&server.addr, &token, &big);
    assert_eq!(r.status, 201, "{}", r.text());
    let (status, ready) = readyz(&server.addr);
    assert_eq!((status, &ready["status"], &ready["storage"]), (200, &json!("ready"), &json!("ok")), "{ready}");
    assert_eq!(events_of(&db, &refused_key), 1);
    for key in &accepted {
        assert_eq!(events_of(&db, key), 1, "{key}");
    }
    let data_dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(ducha_tests::ducha_bin())
        .arg("--store")
        .arg(&url)
        .arg("--data-dir")
        .arg(data_dir.path())
        .arg("verify")
        .output()
        .unwrap();
    assert!(out.status.success(), "verify: {}", String::from_utf8_lossy(&out.stderr));
    drop(server);
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: a full tablespace (53100) and a commit that fails.
// ---------------------------------------------------------------------------------------------

/// `psql -c SQL` on a database URL; its trimmed output.
fn psql(url: &str, sql: &str) -> Result<String, String> {
    let out = std::process::Command::new("psql")
        .args(["--no-psqlrc", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if !out.status.success() {
        return Err(format!("psql `{sql}`: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn psql_ok(url: &str, sql: &str) -> String {
    psql(url, sql).unwrap_or_else(|e| panic!("{e}"))
}

/// Business events of a correlation id in a PostgreSQL store, read by `psql`.
fn pg_events_of(url: &str, correlation: &str) -> u64 {
    let sql = format!(
        "SELECT count(*) FROM events WHERE correlation_id = '{correlation}' AND tenant NOT IN ('_security', '_anchors')"
    );
    psql_ok(url, &sql).parse().expect("count")
}

/// `ducha --store URL verify` in a scratch data directory.
fn verify_store(url: &str) {
    let data_dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(ducha_tests::ducha_bin())
        .arg("--store")
        .arg(url)
        .arg("--data-dir")
        .arg(data_dir.path())
        .arg("verify")
        .output()
        .unwrap();
    assert!(out.status.success(), "verify: {}", String::from_utf8_lossy(&out.stderr));
}

/// A PostgreSQL tablespace on a filesystem of this machine: created by the test server's
/// superuser, dropped (after the databases in it) on drop.
struct Tablespace {
    admin: String,
    name: String,
}

impl Drop for Tablespace {
    fn drop(&mut self) {
        let _ = psql(&self.admin, &format!("DROP TABLESPACE IF EXISTS {}", self.name));
    }
}

/// The shared signing secret of a replica started by a test.
fn replica_secret() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwt.secret");
    std::fs::write(&file, "a-postgres-fault-test-secret-of-at-least-32-bytes").unwrap();
    (dir, file)
}

#[test]
fn a_full_postgres_tablespace_refuses_writes_with_storage_full_then_recovers() {
    use ducha::store::postgres::testing::{TestDatabase, server_url};
    const TEST: &str = "storage_full: PostgreSQL tablespace";
    let Some(admin) = server_url(TEST) else { return };
    // The tablespace must be on this machine's filesystem: only a server running here can use it.
    let data_directory = psql_ok(&admin, "SHOW data_directory");
    if !Path::new(&data_directory).exists() {
        println!("skipped: the test PostgreSQL server is not on this machine ({data_directory}); cannot fill its disk");
        return;
    }
    let Some(fs) = Tmpfs::mount_or_skip("64m", "SQLite's full-disk tests cover the API") else { return };
    // PostgreSQL (user postgres) writes the tablespace: let it in.
    let location = fs.dir.join("tablespace");
    std::fs::create_dir_all(&location).unwrap();
    let chmod = std::process::Command::new("chmod").arg("0755").arg(&fs.dir).status().unwrap();
    let chown = std::process::Command::new("chown").arg("postgres:postgres").arg(&location).status().unwrap();
    assert!(chmod.success() && chown.success(), "giving the tablespace folder to postgres");
    let name = format!("ducha_full_{}", std::process::id());
    psql_ok(&admin, &format!("CREATE TABLESPACE {name} LOCATION '{}'", location.display()));
    let _tablespace = Tablespace { admin: admin.clone(), name: name.clone() };
    let db = TestDatabase::create_blocking(TEST).expect("a test database");
    let db_name = db.url.rsplit('/').next().unwrap_or_default().split('?').next().unwrap_or_default().to_owned();
    psql_ok(&admin, &format!("ALTER DATABASE {db_name} SET TABLESPACE {name}"));

    let (_secret_dir, secret) = replica_secret();
    let server = Server::replica(&db.url, &secret, true, &[]);
    let token = server.login("xx-admin");
    assert_eq!(remind(&server.addr, &token, "pg-before").status, 200);

    let filler = fill_up(&fs.dir);
    let (accepted, refused_key, refused) = fill(&server.addr, &token, "pg", 5000);
    println!("{} writes fitted in PostgreSQL's free pages after the filesystem was filled", accepted.len());
    assert_storage_full(&refused, "a reminder on a full tablespace");
    assert_eq!(pg_events_of(&db.url, &refused_key), 0, "nothing of the refused write is in the store");
    assert!(server.log().contains("53100") || server.log().contains("disk full"), "the log says why");
    // Reads keep working; /readyz and the metrics say why writes fail.
    assert_eq!(server.get(FINDING, Some(&token)).status, 200, "reads keep working");
    let (status, ready) = readyz(&server.addr);
    assert_eq!((status, &ready["status"], &ready["storage"]), (200, &json!("degraded"), &json!("full")), "{ready}");
    assert!(server.get("/metrics", None).text().contains("\nducha_storage_full 1\n"));

    // Space returns: the same process writes again; the refused write retried with its key
    // appends once; every accepted write is there once; the chains verify.
    std::fs::remove_file(&filler).unwrap();
    let r = remind(&server.addr, &token, &refused_key);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = remind(&server.addr, &token, &refused_key);
    assert_eq!((r.status, r.header("idempotent-replayed")), (200, Some("true")), "{}", r.text());
    let (status, ready) = readyz(&server.addr);
    assert_eq!((status, &ready["status"], &ready["storage"]), (200, &json!("ready"), &json!("ok")), "{ready}");
    assert_eq!(pg_events_of(&db.url, &refused_key), 1);
    for key in &accepted {
        assert_eq!(pg_events_of(&db.url, key), 1, "{key}");
    }
    drop(server);
    verify_store(&db.url);
}

/// A write whose COMMIT fails inside PostgreSQL (an I/O error raised by a deferred trigger, the
/// last thing a commit runs) is answered with an error, never acknowledged: nothing of it is in
/// the store or the read model, the head does not move, and once commits work again the same
/// request with its key appends once and the chains verify. Both write paths: with an
/// `Idempotency-Key` (the careful path, one transaction) and without (the one-statement path).
#[test]
fn a_commit_that_fails_in_postgres_is_never_acknowledged() {
    use ducha::store::postgres::testing::TestDatabase;
    let Some(db) = TestDatabase::create_blocking("storage_full: PostgreSQL commit error") else { return };
    let (_secret_dir, secret) = replica_secret();
    let mut server = Server::replica(&db.url, &secret, true, &[]);
    let token = server.login("xx-admin");
    assert_eq!(remind(&server.addr, &token, "commit-before").status, 200);
    db.execute_blocking(
        "CREATE TABLE test_fail_commit (reason text);
         CREATE FUNCTION test_fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF EXISTS (SELECT 1 FROM test_fail_commit) THEN
             RAISE EXCEPTION 'injected I/O error at commit' USING ERRCODE = '58030';
           END IF;
           RETURN NULL;
         END $$;
         CREATE CONSTRAINT TRIGGER test_fail_commit AFTER INSERT ON events
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_fail_commit();
         INSERT INTO test_fail_commit VALUES ('on');",
    );
    let head = |s: &Server| readyz(&s.addr).1["head"].as_u64().expect("head");
    let before_head = head(&server);
    let before_finding = server.get(FINDING, Some(&token)).text();
    let before_events = psql_ok(&db.url, "SELECT count(*) FROM events");

    // With a key (careful path) and without (one statement, autocommit).
    let auth = format!("Bearer {token}");
    let keyless = |id: &str| {
        let body = json!({ "message": "提交失败测试催办（无键）" }).to_string();
        let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json"), ("X-Request-Id", id)];
        try_http(&server.addr, "POST", &format!("{FINDING}/remind"), &headers, Some(body.as_bytes())).expect("answer")
    };
    for r in [remind(&server.addr, &token, "commit-failed"), keyless("commit-failed-keyless")] {
        assert!(r.status >= 500, "a failed commit is not acknowledged: {} {}", r.status, r.text());
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        assert!(r.header("x-ducha-position").is_none(), "no position is promised");
        let p = r.json();
        assert!(p["title"].as_str().is_some_and(|t| !t.is_ascii()), "a Chinese title: {p}");
    }
    assert_eq!(pg_events_of(&db.url, "commit-failed"), 0);
    assert_eq!(pg_events_of(&db.url, "commit-failed-keyless"), 0);
    assert_eq!(psql_ok(&db.url, "SELECT count(*) FROM events"), before_events, "not a row more");
    assert_eq!(head(&server), before_head, "the head did not move");
    assert_eq!(server.get(FINDING, Some(&token)).text(), before_finding, "the read model did not take it");
    assert!(server.log().contains("injected I/O error at commit"), "the log says why");

    // Commits work again: the retry with the key appends once, and a replica started now from the
    // store (a full rebuild) sees exactly what the running one does.
    psql_ok(&db.url, "DELETE FROM test_fail_commit");
    let r = remind(&server.addr, &token, "commit-failed");
    assert_eq!((r.status, r.header("idempotent-replayed")), (200, None), "{}", r.text());
    let r = remind(&server.addr, &token, "commit-failed");
    assert_eq!((r.status, r.header("idempotent-replayed")), (200, Some("true")), "{}", r.text());
    assert_eq!(pg_events_of(&db.url, "commit-failed"), 1);
    let live = server.get(FINDING, Some(&token)).text();
    assert_ne!(live, before_finding);
    server.restart(&[("DUCHA_JWT_SECRET_FILE", secret.to_str().unwrap())]);
    assert_eq!(server.get(FINDING, Some(&token)).text(), live, "a rebuild from the store agrees");
    drop(server);
    verify_store(&db.url);
}
