//! `server_state` (`DUCHA_SERVER_STATE`): the replicas' shared state in a home of its own, apart
//! from the events — what `ducha serve` on a KurrentDB store (events only) needs.
//!
//! Runs here: events in SQLite with the state in a real PostgreSQL (needs
//! `DUCHA_TEST_POSTGRES_URL`; skipped with one line otherwise), and `serve` on a KurrentDB URL
//! refused or failing with a clear message. No KurrentDB server exists on this machine, so a
//! replica serving from a real one has not been run (see docs/ARCHITECTURE.md).

use ducha::store::postgres::testing::TestDatabase;
use ducha_tests::{Server, ducha_bin};
use std::process::Command;

/// The state in PostgreSQL, the events in the data directory: nothing of the state is written
/// beside the events, sessions and evidence live in the database, and a restarted server (or
/// another one with the same `server_state`) finds them there.
#[test]
fn a_sqlite_store_with_its_state_in_postgres() {
    let Some(db) = TestDatabase::create_blocking("server_state: sqlite events, postgres state") else { return };
    let secret = tempfile::tempdir().expect("dir");
    let secret_file = secret.path().join("jwt.secret");
    std::fs::write(&secret_file, "共享签名密钥-state-home-test-0123456789-abcdefghij").expect("secret");
    let secret_path = secret_file.display().to_string();
    let env = [("DUCHA_SERVER_STATE", db.url.as_str()), ("DUCHA_JWT_SECRET_FILE", secret_path.as_str())];
    let mut s = Server::start(true, &env);
    let token = s.login("xx-admin");
    assert!(!s.data_dir.path().join("api.db").exists(), "no state beside the events");
    // An evidence file goes to the database, not the data directory.
    let body = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n\xe4\xbd\x90\xe8\xaf\x81\r\n--b--\r\n";
    let auth = format!("Bearer {token}");
    let r = ducha_tests::http(
        &s.addr,
        "POST",
        "/api/v1/tenants/xxjd/evidence",
        &[("Authorization", auth.as_str()), ("Content-Type", "multipart/form-data; boundary=b")],
        Some(body),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(!s.data_dir.path().join("evidence").exists(), "no evidence beside the events");

    // A restart on the same data directory and state: the session is still known (a session
    // kept in a file beside the events would be too, so: the data directory has none, above),
    // and a logout ends it.
    let dir = {
        s.kill();
        std::mem::replace(&mut s.data_dir, tempfile::tempdir().expect("dir"))
    };
    let s = Server::start_in(dir, false, &env);
    assert_eq!(s.get("/api/v1/me", Some(&token)).status, 200, "the session survived the restart");
    let r = ducha_tests::http(&s.addr, "POST", "/api/v1/auth/logout", &[("Authorization", auth.as_str())], None);
    assert!(r.status < 300, "{} {}", r.status, r.text());
    assert_eq!(s.get("/api/v1/me", Some(&token)).status, 401);
    // And /readyz names where the state is.
    let ready = s.get("/readyz", None).json();
    assert_eq!(ready["server_state"], "postgres", "{ready}");
}

fn serve_on(store: &str, env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().expect("dir");
    let mut cmd = Command::new(ducha_bin());
    cmd.arg("--data-dir").arg(dir.path()).args(["--store", store, "serve", "--listen", "127.0.0.1:0", "--demo"]);
    for (k, _) in std::env::vars() {
        if k.starts_with("DUCHA_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run ducha serve")
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Without `server_state`, `serve` on a KurrentDB store stops before it connects or writes, and
/// says what to set; with a KurrentDB URL as the state, it says why not.
#[test]
fn serve_on_kurrentdb_needs_a_home_for_the_state() {
    let url = format!("kurrentdb://admin:changeit@127.0.0.1:{}?tls=false", closed_port());
    let out = serve_on(&url, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("DUCHA_SERVER_STATE") && !err.contains("changeit"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("演示"), "no demo was loaded");

    let out = serve_on(&url, &[("DUCHA_SERVER_STATE", &url)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("cannot be KurrentDB") && !err.contains("changeit"), "{err}");
}

/// With a home for the state, `serve` goes on to the KurrentDB server, and an unreachable one is
/// named (without the password) — the farthest this machine can take it.
#[test]
fn serve_on_an_unreachable_kurrentdb_names_the_server() {
    let port = closed_port();
    let url = format!("kurrentdb://admin:changeit@127.0.0.1:{port}?tls=false&maxDiscoverAttempts=1");
    let state = tempfile::tempdir().expect("dir");
    let home = format!("sqlite:{}", state.path().display());
    let out = serve_on(&url, &[("DUCHA_SERVER_STATE", &home)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("127.0.0.1:{port}")) && !err.contains("changeit"), "{err}");
    eprintln!("not run here: a replica serving from a real KurrentDB server (none on this machine)");
}
