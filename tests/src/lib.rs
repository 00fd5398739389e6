//! Helpers for the end-to-end tests in `tests/tests/`: find the real `ducha` binary and run it in a
//! fresh data directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod browser;

/// The `ducha` binary of this build (target/<profile>/ducha next to the test's deps folder).
pub fn ducha_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/debug/deps/<test>-<hash> → target/debug/ducha
    let profile_dir = exe.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
    let bin = profile_dir.join("ducha");
    if !bin.exists() {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "-p", "ducha"])
            .status()
            .expect("cargo build -p ducha");
        assert!(status.success(), "building the ducha binary failed");
    }
    assert!(bin.exists(), "ducha binary not found at {}", bin.display());
    bin
}

/// Runs `ducha --data-dir DIR ARGS…` and returns its output.
pub fn ducha(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(ducha_bin())
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("DUCHA_DATA_DIR")
        .output()
        .expect("run ducha")
}

/// Runs ducha and insists that it succeeded; returns stdout.
pub fn ducha_ok(data_dir: &Path, args: &[&str]) -> String {
    let out = ducha(data_dir, args);
    assert!(
        out.status.success(),
        "ducha {args:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The repository root (for scripts such as tests/audit/verify_chain.py).
///
/// From `CARGO_MANIFEST_DIR` as `cargo test` sets it when running the test, not as it was when
/// this crate was compiled: a target directory shared by clones in other places (CI's cache) may
/// hold this crate compiled in one of them, with that clone's path, which may be gone.
pub fn repo_root() -> PathBuf {
    let manifest =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest.parent().map(Path::to_path_buf).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Workbooks read and changed by openpyxl (an independent reader), for the ledger import tests.
// ---------------------------------------------------------------------------------------------

/// The data rows (from row 3) of a ledger workbook, as openpyxl reads them.
pub fn ledger_rows(bytes: &[u8]) -> Vec<Vec<serde_json::Value>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.xlsx");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("python3")
        .arg(repo_root().join("tests/documents/read_document.py"))
        .arg("xlsx")
        .arg(&path)
        .output()
        .expect("python3");
    assert!(out.status.success(), "reader: {}", String::from_utf8_lossy(&out.stderr));
    let book: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = book["sheets"][0]["rows"].as_array().cloned().unwrap_or_default();
    rows.into_iter().skip(2).map(|r| r.as_array().cloned().unwrap_or_default()).collect()
}

/// A copy of `bytes` with cells changed by openpyxl (`[(cell, value)]`, e.g. `("C3", "无此社区")`).
pub fn edit_xlsx(bytes: &[u8], edits: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("in.xlsx"), dir.path().join("out.xlsx"));
    std::fs::write(&src, bytes).unwrap();
    let script = "import json,sys,openpyxl\nwb=openpyxl.load_workbook(sys.argv[1])\nws=wb.active\n\
                  for c,v in json.loads(sys.argv[3]): ws[c]=v\nwb.save(sys.argv[2])\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&src)
        .arg(&dst)
        .arg(serde_json::to_string(edits).unwrap())
        .output()
        .expect("python3");
    assert!(out.status.success(), "openpyxl: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(&dst).unwrap()
}

// ---------------------------------------------------------------------------------------------
// A live `ducha serve` on a free loopback port, and a dependency-free HTTP/1.1 client for it.
// ---------------------------------------------------------------------------------------------

/// A running `ducha serve --listen 127.0.0.1:0` in its own data directory; killed on drop.
pub struct Server {
    child: std::process::Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub data_dir: tempfile::TempDir,
    /// `--store URL` (None: the data directory's SQLite store).
    store: Option<String>,
}

impl Server {
    /// Starts the server with the demo data loaded (durability off: tests do not need fsync).
    pub fn demo() -> Server {
        Server::start(true, &[])
    }

    /// Starts `ducha --data-dir TMP --synchronous off serve --listen 127.0.0.1:0 [--demo]` with
    /// extra `DUCHA_…` environment variables, and waits for its `listening on` line.
    pub fn start(demo: bool, env: &[(&str, &str)]) -> Server {
        let data_dir = tempfile::tempdir().expect("temp dir");
        Server::start_in(data_dir, demo, env)
    }

    /// Like [`Server::start`] in a given data directory (e.g. one with a key file written first).
    pub fn start_in(data_dir: tempfile::TempDir, demo: bool, env: &[(&str, &str)]) -> Server {
        Server::launch(data_dir, None, demo, env)
    }

    /// A replica of a shared deployment: `ducha --store URL serve`, with the signing secret in
    /// `secret_file` (the same for every replica). Its data directory only holds its log.
    pub fn replica(store_url: &str, secret_file: &Path, demo: bool, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let secret = secret_file.display().to_string();
        let mut all: Vec<(&str, &str)> = vec![("DUCHA_JWT_SECRET_FILE", secret.as_str())];
        all.extend_from_slice(env);
        Server::launch(dir, Some(store_url), demo, &all)
    }

    fn launch(data_dir: tempfile::TempDir, store: Option<&str>, demo: bool, env: &[(&str, &str)]) -> Server {
        let (child, addr) = spawn_serve(data_dir.path(), store, demo, env);
        Server { child, addr, data_dir, store: store.map(str::to_owned) }
    }

    /// Kills the server with SIGKILL (if it still runs) and starts `ducha serve` again in the same
    /// data directory (same store), without the demo, with `env`; `addr` is the new address.
    pub fn restart(&mut self, env: &[(&str, &str)]) {
        self.kill();
        let (child, addr) = spawn_serve(self.data_dir.path(), self.store.as_deref(), false, env);
        self.child = child;
        self.addr = addr;
    }

    /// Sends SIGTERM and waits (at most 60 s) for the process to exit; its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if std::time::Instant::now() > deadline {
                self.kill();
                panic!("ducha serve did not stop within 60 s of SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request("GET", path, token, &[], None)
    }

    pub fn post_json(&self, path: &str, token: Option<&str>, body: &serde_json::Value) -> Response {
        let bytes = body.to_string().into_bytes();
        self.request("POST", path, token, &[("Content-Type", "application/json")], Some(&bytes))
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(a) = &auth {
            all.push(("Authorization", a));
        }
        http(&self.addr, method, path, &all, body)
    }

    /// Logs in with the demo password and returns the access token.
    pub fn login(&self, username: &str) -> String {
        let r = self.post_json(
            "/api/v1/auth/login",
            None,
            &serde_json::json!({"username": username, "password": "ducha-demo"}),
        );
        assert_eq!(r.status, 200, "login {username}: {}", r.text());
        r.json()["access_token"].as_str().expect("access_token").to_owned()
    }

    /// How many business events the store holds — every chain but the security audit log's
    /// (`_security`, which records refusals too) and the anchors' (`_anchors`) — read from the SQLite file by an independent
    /// reader (Python's sqlite3) while the server runs. Positions are gap-free, so before the first
    /// security record this is the head's position.
    pub fn head_position(&self) -> u64 {
        self.count_events("tenant NOT IN ('_security', '_anchors')")
    }

    /// The log's head: `max(position)` over every chain, the security audit log's included.
    pub fn log_head(&self) -> u64 {
        let db = self.data_dir.path().join("ducha.db");
        let out = Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys;c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro',uri=True);\
                 print(c.execute('select coalesce(max(position),0) from events').fetchone()[0])",
            ])
            .arg(&db)
            .output()
            .expect("python3");
        assert!(out.status.success(), "reading the head: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().parse().expect("head position")
    }

    /// How many records the security audit log holds (read as [`Server::head_position`]).
    pub fn security_records(&self) -> u64 {
        self.count_events("tenant = '_security'")
    }

    fn count_events(&self, condition: &str) -> u64 {
        let db = self.data_dir.path().join("ducha.db");
        let sql = format!("select count(*) from events where {condition}");
        let out = Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys;c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro',uri=True);\
                 print(c.execute(sys.argv[2]).fetchone()[0])",
            ])
            .arg(&db)
            .arg(&sql)
            .output()
            .expect("python3");
        assert!(out.status.success(), "counting events: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().parse().expect("event count")
    }

    /// Plans an inspection of XX街道's 东风社区 as `xx-admin` (team: `xx-duchazu1` leading; a
    /// meeting; the 2023 checklist) planned from `day` for 30 days, and returns its id.
    pub fn plan_dongfeng_inspection(&self, title: &str, day: chrono::NaiveDate) -> String {
        let admin = self.login("xx-admin");
        let plan = serde_json::json!({
            "year": chrono::Datelike::year(&day),
            "title": title,
            "subject": "意识形态工作",
            "communities": ["dongfeng"],
            "team": [{"user_id": "xx-duchazu1", "leader": true}],
            "methods": ["meeting"],
            "checklist_id": "ideology-2023",
            "planned_start": day.to_string(),
            "planned_end": (day + chrono::Days::new(30)).to_string(),
        });
        let r = self.post_json("/api/v1/tenants/xxjd/inspections", Some(&admin), &plan);
        assert_eq!(r.status, 201, "plan: {}", r.text());
        r.json()["id"].as_str().expect("inspection id").to_owned()
    }

    /// Starts an inspection of XX街道 as `xx-admin` on `day`.
    pub fn start_inspection(&self, id: &str, day: chrono::NaiveDate) {
        let admin = self.login("xx-admin");
        let r = self.post_json(
            &format!("/api/v1/tenants/xxjd/inspections/{id}/start"),
            Some(&admin),
            &serde_json::json!({"started_on": day}),
        );
        assert_eq!(r.status, 200, "start: {}", r.text());
    }

    /// The process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Opens the server-sent-events stream of a tenant (`/api/v1/tenants/{tenant}/live`) on a raw
    /// connection and reads until the stream's first comment; returns the connection and what was
    /// read so far.
    pub fn open_live(&self, tenant: &str, token: &str, last_event_id: Option<u64>) -> (std::net::TcpStream, Vec<u8>) {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(&self.addr).expect("connect");
        stream.set_read_timeout(Some(std::time::Duration::from_millis(200))).expect("timeout");
        let resume = last_event_id.map(|id| format!("Last-Event-ID: {id}\r\n")).unwrap_or_default();
        write!(
            stream,
            "GET /api/v1/tenants/{tenant}/live HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Accept: text/event-stream\r\n{resume}\r\n",
            self.addr
        )
        .expect("send");
        let mut buf = Vec::new();
        assert!(
            read_until(&mut stream, &mut buf, ": live after", std::time::Duration::from_secs(10)),
            "{}",
            String::from_utf8_lossy(&buf)
        );
        let head = String::from_utf8_lossy(&buf).to_string();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.to_ascii_lowercase().contains("content-type: text/event-stream"), "{head}");
        (stream, buf)
    }

    /// The server's log so far (standard error).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("serve.log")).unwrap_or_default()
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ducha --data-dir DIR [--store URL] --synchronous off serve --listen 127.0.0.1:0 [--demo]`
/// (standard error appended to `DIR/serve.log`) and waits for its `listening on` line.
fn spawn_serve(dir: &Path, store: Option<&str>, demo: bool, env: &[(&str, &str)]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("serve.log")).expect("log file");
    let mut cmd = Command::new(ducha_bin());
    cmd.arg("--data-dir").arg(dir);
    if let Some(url) = store {
        cmd.arg("--store").arg(url);
    }
    cmd.args(["--synchronous", "off", "serve", "--listen", "127.0.0.1:0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(log);
    if demo {
        cmd.arg("--demo");
    }
    for (k, _) in std::env::vars() {
        if k.starts_with("DUCHA_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("DUCHA_LOG_LEVEL", "warn").env("DUCHA_WORKERS", "2");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start ducha serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut addr = None;
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        if let Some(a) = line.strip_prefix("listening on http://") {
            addr = Some(a.trim().to_owned());
            break;
        }
    }
    let Some(addr) = addr else {
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();
        panic!("ducha serve did not start:\n{log}");
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// Reads from a raw connection until `needle` shows up (or `within` passes); whether it did.
pub fn read_until(
    stream: &mut std::net::TcpStream,
    buf: &mut Vec<u8>,
    needle: &str,
    within: std::time::Duration,
) -> bool {
    use std::io::Read;
    let end = std::time::Instant::now() + within;
    let mut chunk = [0u8; 4096];
    while std::time::Instant::now() < end {
        if String::from_utf8_lossy(buf).contains(needle) {
            return true;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(buf).contains(needle)
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), read to the end.
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Response {
    try_http(addr, method, path, headers, body).unwrap_or_else(|e| panic!("{method} {path} to {addr}: {e}"))
}

/// [`http`] that reports a refused or broken connection (a server being killed) instead of panicking.
pub fn try_http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<Response> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(120)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or_default();
    if !body.is_empty() || !matches!(method, "GET" | "HEAD" | "DELETE") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("malformed response ({} bytes)", raw.len()))
    })
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).ok()?.split(';').next()?.trim(), 16)
                    .ok()?;
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(..size)?);
            rest = rest.get(size + 2..)?;
        }
        body = out;
    }
    Some(Response { status, headers, body })
}

/// A TOTP code (RFC 6238, SHA-1, 6 digits, 30 s) computed by Python's `pyotp` — an implementation
/// independent of the server's — for a base32 `secret` at now + `offset` seconds.
pub fn totp_code(secret: &str, offset: i64) -> String {
    let out = Command::new("python3")
        .args(["-c", "import pyotp,sys,time; print(pyotp.TOTP(sys.argv[1]).at(time.time() + int(sys.argv[2])))"])
        .arg(secret)
        .arg(offset.to_string())
        .output()
        .expect("python3 with pyotp (pip install pyotp)");
    assert!(out.status.success(), "pyotp: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
