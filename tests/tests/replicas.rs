//! A shared deployment: two `ducha serve` replicas on one PostgreSQL database, driven through HTTP
//! only. What one replica is told, the other knows: writes (read back with `X-Ducha-Min-Position`),
//! the live stream, logouts, lockouts, idempotency keys, evidence files; 50 racing writers across
//! both; a replica killed under load loses nothing that was acknowledged; one replica at a time
//! runs the deployment's maintenance.
//!
//! Needs `DUCHA_TEST_POSTGRES_URL` (`cargo xtask test` starts a cluster); skipped with one line
//! otherwise.

use ducha::store::postgres::testing::TestDatabase;
use ducha_tests::{Response, Server, http, read_until, try_http};
use serde_json::{Value, json};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

struct Deployment {
    db: TestDatabase,
    /// Holds the shared signing secret while the replicas run.
    _secret: tempfile::TempDir,
    a: Server,
    b: Server,
}

/// A (with the demo loaded) and B on one fresh database, sharing one signing secret.
fn deployment(test: &str, env: &[(&str, &str)]) -> Option<Deployment> {
    let db = TestDatabase::create_blocking(test)?;
    let secret = tempfile::tempdir().expect("dir");
    std::fs::write(secret.path().join("jwt.secret"), "共享签名密钥-shared-secret-of-the-deployment-0123456789")
        .expect("secret");
    let file = secret.path().join("jwt.secret");
    let a = Server::replica(&db.url, &file, true, env);
    let b = Server::replica(&db.url, &file, false, env);
    Some(Deployment { db, _secret: secret, a, b })
}

fn send(s: &Server, method: &str, path: &str, token: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Response {
    let auth = format!("Bearer {token}");
    let mut all = vec![("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    let bytes = body.map(|b| b.to_string().into_bytes());
    http(&s.addr, method, path, &all, bytes.as_deref())
}

fn position(r: &Response) -> u64 {
    r.header("x-ducha-position")
        .unwrap_or_else(|| panic!("a write answers X-Ducha-Position: {} {}", r.status, r.text()))
        .parse()
        .expect("position")
}

fn head(s: &Server) -> u64 {
    s.get("/readyz", None).json()["head"].as_u64().expect("readyz head")
}

const TENANT: &str = "/api/v1/tenants/xxjd";

#[test]
fn the_sample_scenario_split_across_two_replicas() {
    let Some(d) = deployment("replicas: sample scenario", &[]) else { return };
    let (a, b) = (&d.a, &d.b);
    let admin_a = a.login("xx-admin");
    let admin_b = b.login("xx-admin");
    let (mut live_b, mut buf) = b.open_live("xxjd", &admin_b, None);

    // Write on A: a new community.
    let r = send(
        a,
        "POST",
        &format!("{TENANT}/communities"),
        &admin_a,
        &[],
        Some(&json!({"community_id": "xinhua", "name": "新华社区"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let p1 = position(&r);

    // Read on B at once, asking for that position: it is there.
    let p1s = p1.to_string();
    let read =
        send(b, "GET", &format!("{TENANT}/communities"), &admin_b, &[("X-Ducha-Min-Position", p1s.as_str())], None);
    assert_eq!(read.status, 200, "{}", read.text());
    assert!(read.text().contains("新华社区"), "B reads A's write: {}", read.text());
    // B's live stream carried A's write.
    assert!(
        read_until(&mut live_b, &mut buf, &format!("id: {p1}\n"), Duration::from_secs(10)),
        "B's SSE stream shows A's write: {}",
        String::from_utf8_lossy(&buf)
    );

    // Then a write on B, read on A with the query parameter.
    let plan = json!({
        "year": 2026, "title": "2026年东风社区意识形态工作督查", "subject": "意识形态工作",
        "communities": ["dongfeng", "xinhua"], "team": [{"user_id": "xx-duchazu1", "leader": true}],
        "methods": ["meeting", "document_review"], "checklist_id": "ideology-2023",
        "planned_start": "2026-03-01", "planned_end": "2026-03-31",
    });
    let r = send(b, "POST", &format!("{TENANT}/inspections"), &admin_b, &[], Some(&plan));
    assert_eq!(r.status, 201, "{}", r.text());
    let p2 = position(&r);
    assert!(p2 > p1);
    let id = r.json()["id"].as_str().expect("id").to_owned();
    let detail = send(a, "GET", &format!("{TENANT}/inspections/{id}?min_position={p2}"), &admin_a, &[], None);
    assert_eq!(detail.status, 200, "{}", detail.text());
    assert_eq!(detail.json()["title"], "2026年东风社区意识形态工作督查");

    // Start on A (If-Match from B's answer), report a finding on B, conclude on A.
    let etag = r.header("etag").expect("etag").to_owned();
    let p2s = p2.to_string();
    let start = send(
        a,
        "POST",
        &format!("{TENANT}/inspections/{id}/start"),
        &admin_a,
        &[("If-Match", etag.as_str()), ("X-Ducha-Min-Position", p2s.as_str())],
        Some(&json!({"started_on": "2026-03-02"})),
    );
    assert_eq!(start.status, 200, "{}", start.text());
    let p3 = position(&start);
    let lead = b.login("xx-duchazu1");
    let p3s = p3.to_string();
    let finding = send(
        b,
        "POST",
        &format!("{TENANT}/inspections/{id}/findings"),
        &lead,
        &[("X-Ducha-Min-Position", p3s.as_str())],
        Some(&json!({"finding_id": "xh-2026-f1", "category": "theory", "community_id": "xinhua",
                     "title": "理论学习不够深入", "description": "理论学习中心组学习不够深入"})),
    );
    assert_eq!(finding.status, 201, "{}", finding.text());
    let p4 = position(&finding);
    let ledger = send(a, "GET", &format!("{TENANT}/ledger?community=xinhua&min_position={p4}"), &admin_a, &[], None);
    assert_eq!(ledger.status, 200, "{}", ledger.text());
    assert!(ledger.text().contains("理论学习中心组学习不够深入"), "{}", ledger.text());

    // A position the log does not have yet is refused at once; a malformed one too.
    let beyond = send(a, "GET", &format!("{TENANT}/dashboard?min_position={}", p4 + 1_000_000), &admin_a, &[], None);
    assert_eq!(beyond.status, 400, "{}", beyond.text());
    assert_eq!(beyond.json()["code"], "invalid_min_position");
    let bad = send(a, "GET", &format!("{TENANT}/dashboard"), &admin_a, &[("X-Ducha-Min-Position", "soon")], None);
    assert_eq!(bad.status, 400);

    // Both replicas report themselves ready, with no lag once caught up.
    for s in [a, b] {
        let r = s.get(&format!("/readyz?min_position={p4}"), None);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["store_kind"], "postgres");
    }
    assert_ne!(a.get("/readyz", None).json()["replica"], b.get("/readyz", None).json()["replica"]);
}

#[test]
fn a_logout_and_a_lockout_on_one_replica_hold_on_the_other() {
    let env = [("DUCHA_LOGIN_LOCK_AFTER", "3"), ("DUCHA_LOGIN_SLOW_AFTER", "10")];
    let Some(d) = deployment("replicas: logout and lockout", &env) else { return };
    let (a, b) = (&d.a, &d.b);
    let token = a.login("xx-admin");
    assert_eq!(b.get("/api/v1/me", Some(&token)).status, 200, "a token from A works on B");
    let out = http(&a.addr, "POST", "/api/v1/auth/logout", &[("Authorization", &format!("Bearer {token}"))], None);
    assert_eq!(out.status, 204);
    let refused = b.get("/api/v1/me", Some(&token));
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json()["code"], "token_revoked");

    let wrong = json!({"username": "xx-duchazu2", "password": "wrong password"});
    for _ in 0..3 {
        assert_eq!(a.post_json("/api/v1/auth/login", None, &wrong).status, 401);
    }
    let right = json!({"username": "xx-duchazu2", "password": "ducha-demo"});
    let locked = b.post_json("/api/v1/auth/login", None, &right);
    assert_eq!(locked.status, 429, "the lockout made on A holds on B: {}", locked.text());
    assert!(locked.header("retry-after").is_some());
}

#[test]
fn an_idempotency_key_used_on_both_replicas_appends_once() {
    let Some(d) = deployment("replicas: idempotency", &[]) else { return };
    let (a, b) = (&d.a, &d.b);
    let (ta, tb) = (a.login("xx-admin"), b.login("xx-admin"));
    let body = json!({"community_id": "shengli", "name": "胜利社区"});
    let key = [("Idempotency-Key", "add-shengli-once")];
    let first = send(a, "POST", &format!("{TENANT}/communities"), &ta, &key, Some(&body));
    assert_eq!(first.status, 201, "{}", first.text());
    let after_first = head(a);
    let again = send(b, "POST", &format!("{TENANT}/communities"), &tb, &key, Some(&body));
    assert_eq!(again.status, 201, "{}", again.text());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), first.json());
    assert_eq!(head(b), after_first, "nothing appended by the retry on B");
    assert!(position(&again) >= position(&first));
}

#[test]
fn fifty_racing_writers_across_both_replicas_one_wins_per_version() {
    let Some(d) = deployment("replicas: racing writers", &[]) else { return };
    let finding = format!("{TENANT}/inspections/2023-ideology/findings/xx-2023-f4");
    let token = d.a.login("xx-admin");
    let first =
        send(&d.a, "POST", &format!("{finding}/remind"), &token, &[], Some(&json!({"message": "请报送整改进展"})));
    assert_eq!(first.status, 200, "{}", first.text());
    let etag = first.header("etag").expect("etag").to_owned();
    let before = head(&d.a);
    let barrier = Arc::new(Barrier::new(50));
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|n| {
                let (barrier, token, etag, finding) = (barrier.clone(), token.clone(), etag.clone(), finding.clone());
                let server = if n % 2 == 0 { &d.a } else { &d.b };
                s.spawn(move || {
                    barrier.wait();
                    let body = json!({"message": format!("第{n}次催办")});
                    send(
                        server,
                        "POST",
                        &format!("{finding}/remind"),
                        &token,
                        &[("If-Match", etag.as_str())],
                        Some(&body),
                    )
                    .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("client")).collect()
    });
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "exactly one wins: {statuses:?}");
    assert!(statuses.iter().all(|s| matches!(s, 200 | 409 | 412)), "{statuses:?}");
    assert_eq!(head(&d.b), before + 1, "exactly one event appended");
}

/// Each replica keeps the aggregate states its commands folded (issue 11). Writes that alternate
/// between the replicas, each with `If-Match` from the other replica's answer, only succeed if a
/// replica folds what the other appended after the state it kept: a kept state read as the latest
/// would answer 412 with a stale version.
#[test]
fn alternating_writes_on_one_finding_see_the_other_replicas_appends() {
    let Some(d) = deployment("replicas: kept states", &[]) else { return };
    let finding = format!("{TENANT}/inspections/2023-ideology/findings/xx-2023-f4");
    let (token_a, token_b) = (d.a.login("xx-admin"), d.b.login("xx-admin"));
    // Both replicas fold the finding once (and keep it).
    let mut etag = String::new();
    for (server, token) in [(&d.a, &token_a), (&d.b, &token_b)] {
        let r =
            send(server, "POST", &format!("{finding}/remind"), token, &[], Some(&json!({"message": "请报送整改进展"})));
        assert_eq!(r.status, 200, "{}", r.text());
        etag = r.header("etag").expect("etag").to_owned();
    }
    for round in 0..8 {
        let (server, token) = if round % 2 == 0 { (&d.a, &token_a) } else { (&d.b, &token_b) };
        let body = json!({"message": format!("第{round}轮催办")});
        let r = send(server, "POST", &format!("{finding}/remind"), token, &[("If-Match", etag.as_str())], Some(&body));
        assert_eq!(r.status, 200, "round {round}: {}", r.text());
        let next = r.header("etag").expect("etag").to_owned();
        assert_ne!(next, etag, "round {round}: the version moved");
        etag = next;
    }
    // A stale version is still refused on both.
    for (server, token) in [(&d.a, &token_a), (&d.b, &token_b)] {
        let body = json!({"message": "过时的版本"});
        let r = send(server, "POST", &format!("{finding}/remind"), token, &[("If-Match", "\"1\"")], Some(&body));
        assert_eq!(r.status, 412, "{}", r.text());
    }
}

#[test]
fn evidence_uploaded_on_one_replica_downloads_on_the_other() {
    let Some(d) = deployment("replicas: evidence", &[]) else { return };
    let officer_a = d.a.login("xx-dongfeng");
    let pdf = b"%PDF-1.7\n% evidence of rectification\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n";
    let boundary = "----ducha-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"整改佐证.pdf\"\r\n\
         Content-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(pdf);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let auth = format!("Bearer {officer_a}");
    let ct = format!("multipart/form-data; boundary={boundary}");
    let up = http(
        &d.a.addr,
        "POST",
        &format!("{TENANT}/evidence"),
        &[("Authorization", &auth), ("Content-Type", &ct)],
        Some(&body),
    );
    assert_eq!(up.status, 201, "{}", up.text());
    let sha = up.json()["sha256"].as_str().expect("sha256").to_owned();
    let officer_b = d.b.login("xx-admin");
    let down = d.b.get(&format!("{TENANT}/evidence/{sha}"), Some(&officer_b));
    assert_eq!(down.status, 200, "{}", down.text());
    assert_eq!(down.body, pdf);
    assert!(down.header("content-disposition").is_some_and(|c| c.contains("filename*=UTF-8''")));
    // Cited in a progress report made through B: the evidence is known there.
    let again = http(
        &d.b.addr,
        "POST",
        &format!("{TENANT}/evidence"),
        &[("Authorization", &auth), ("Content-Type", &ct)],
        Some(&body),
    );
    assert_eq!(again.status, 200, "the same bytes on the other replica are not new: {}", again.text());
}

/// Writers spread over both replicas; A is killed with SIGKILL in the middle. B keeps answering,
/// and every write either replica acknowledged is in the log (read back through B).
#[test]
fn a_replica_killed_under_load_loses_no_acknowledged_write() {
    let Some(mut d) = deployment("replicas: kill -9", &[]) else { return };
    let token = d.a.login("xx-admin");
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let b_failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (a_addr, b_addr) = (d.a.addr.clone(), d.b.addr.clone());
    let handles: Vec<_> = (0..6)
        .map(|w| {
            let (acked, b_failures, stop, token) = (acked.clone(), b_failures.clone(), stop.clone(), token.clone());
            let addr = if w % 2 == 0 { a_addr.clone() } else { b_addr.clone() };
            let on_b = w % 2 == 1;
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Acquire) {
                    i += 1;
                    let id = format!("c{w}-{i}");
                    let body = json!({"community_id": id, "name": format!("第{w}组第{i}社区")}).to_string();
                    let auth = format!("Bearer {token}");
                    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
                    let sent =
                        try_http(&addr, "POST", &format!("{TENANT}/communities"), &headers, Some(body.as_bytes()));
                    match sent {
                        Ok(r) if r.status == 201 => acked.lock().expect("lock").push(id),
                        // Six writers on one stream: losing a race (409 after the server's retries)
                        // is an answer, not a failure to serve.
                        Ok(r) if r.status == 409 => {}
                        Ok(r) if on_b => b_failures.lock().expect("lock").push(format!("{} {}", r.status, r.text())),
                        Ok(_) => {}
                        Err(e) if on_b => b_failures.lock().expect("lock").push(format!("connection failed: {e}")),
                        // A's connection breaks when it is killed: not acknowledged.
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    d.a.kill();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, std::sync::atomic::Ordering::Release);
    for h in handles {
        h.join().expect("writer");
    }
    assert!(b_failures.lock().expect("lock").is_empty(), "B kept serving: {:?}", b_failures.lock().expect("lock"));
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() > 20, "enough writes happened to mean something: {}", acked.len());
    let admin = d.b.login("xx-admin");
    let list = send(&d.b, "GET", &format!("{TENANT}/communities?min_position={}", head(&d.b)), &admin, &[], None);
    assert_eq!(list.status, 200);
    let text = list.text();
    let missing: Vec<_> = acked.iter().filter(|id| !text.contains(&format!("\"{id}\""))).collect();
    assert!(missing.is_empty(), "acknowledged but missing: {missing:?}");
    // And the shared log still verifies, by Ducha and by the independent script.
    let (ok, _) = verify_both(&d.db.url);
    assert!(ok);
}

/// `ducha verify` and the independent Python check read the PostgreSQL store and agree, before and
/// after someone changes a payload in the database.
fn verify_both(url: &str) -> (bool, Value) {
    let out = std::process::Command::new(ducha_tests::ducha_bin())
        .args(["--store", url, "verify", "--json"])
        .output()
        .expect("ducha verify");
    let ours: Value = serde_json::from_slice(&out.stdout).expect("verify --json");
    let script = ducha_tests::repo_root().join("tests/audit/verify_chain.py");
    let py = std::process::Command::new("python3").arg(script).args(["--postgres", url]).output().expect("python3");
    let theirs: Value = serde_json::from_slice(&py.stdout)
        .unwrap_or_else(|e| panic!("python output ({e}): {}", String::from_utf8_lossy(&py.stderr)));
    assert_eq!(ours["ok"], theirs["ok"], "ducha: {ours}\npython: {theirs}");
    if ours["ok"] == true {
        for t in ours["tenants"].as_array().expect("tenants") {
            let name = t["tenant"].as_str().expect("tenant");
            assert_eq!(theirs["tenants"][name]["head"], t["head"], "tenant {name}");
            assert_eq!(theirs["tenants"][name]["events"], t["events"], "tenant {name}");
        }
    }
    (ours["ok"] == true, json!({"ducha": ours, "python": theirs}))
}

#[test]
fn ducha_verify_and_the_python_check_agree_on_postgres() {
    let Some(d) = deployment("replicas: verify", &[]) else { return };
    let (ok, _) = verify_both(&d.db.url);
    assert!(ok, "the demo's chains verify");
    d.db.execute_blocking(
        "UPDATE events SET payload = replace(payload, '理论学习', '理论学习（已改）') \
         WHERE position = (SELECT min(position) FROM events WHERE tenant = 'xxjd' AND payload LIKE '%理论学习%')",
    );
    let (ok, both) = verify_both(&d.db.url);
    assert!(!ok, "tampering is found");
    let ours = both["ducha"]["first_bad_event"].as_str().expect("first bad event").to_owned();
    let theirs = both["python"]["error"].as_str().expect("python error").to_owned();
    let event_id = theirs.split_whitespace().nth(1).expect("event id");
    assert!(ours.contains(event_id), "both name the same event: {ours} / {theirs}");
}

#[test]
fn one_replica_runs_maintenance_and_another_takes_over_when_it_dies() {
    let env = [("DUCHA_MAINTENANCE_INTERVAL_SECONDS", "1")];
    let Some(mut d) = deployment("replicas: maintenance lease", &env) else { return };
    let holders = |d: &Deployment| -> Vec<String> {
        [&d.a, &d.b]
            .iter()
            .filter(|s| {
                s.get("/readyz", None).json()["leases"].as_array().is_some_and(|l| l.contains(&json!("maintenance")))
            })
            .map(|s| s.addr.clone())
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut held = holders(&d);
    while held.len() != 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        held = holders(&d);
    }
    assert_eq!(held.len(), 1, "exactly one replica holds the maintenance lease: {held:?}");
    // Kill the holder; the other takes over once the lease expires (three intervals).
    let (dead, survivor) =
        if held[0] == d.a.addr { (&mut d.a, d.b.addr.clone()) } else { (&mut d.b, d.a.addr.clone()) };
    dead.kill();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = http(&survivor, "GET", "/readyz", &[], None);
        if r.json()["leases"].as_array().is_some_and(|l| l.contains(&json!("maintenance"))) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the survivor never took the lease over: {}", r.text());
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_replica_on_postgres_without_a_signing_key_refuses_to_start() {
    let Some(db) = TestDatabase::create_blocking("replicas: no key") else { return };
    let out = std::process::Command::new(ducha_tests::ducha_bin())
        .args(["--store", &db.url, "serve", "--listen", "127.0.0.1:0"])
        .env_remove("DUCHA_JWT_SECRET_FILE")
        .output()
        .expect("ducha serve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("共享部署") && err.contains("jwt_secret_file"), "{err}");
}
