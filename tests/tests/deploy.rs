//! deploy/ (issue 9): what of it can run on this machine.
//!
//! - `nginx -t` with Debian's nginx on the shipped `deploy/nginx/ducha.conf`, with the VM upstream
//!   (`deploy/nginx/upstream.conf`) and with the compose one, and the two upstreams agreeing;
//! - an end-to-end run through a real nginx to two `ducha serve` replicas on one PostgreSQL:
//!   login, an evidence upload and its download, the upload limit, the live stream carrying a write
//!   at once while it stays open, read-your-writes across the replicas with `X-Ducha-Min-Position`,
//!   TLS with HTTP/2 offered, the port-80 redirect;
//! - the compose files, Kubernetes manifests and Containerfile, which cannot run here (no container
//!   engine, no cluster), against their published schemas and the rules of
//!   `tests/deploy/check_deploy.py`, which must also reject broken copies;
//! - the systemd unit with `systemd-analyze verify`, and the Kubernetes placeholder key refused.
//!
//! The shipped nginx configuration is rendered with test ports and paths by exact, counted
//! substitutions (`replace_once`): a change to the shipped file fails the test instead of silently
//! testing something else. `cargo xtask test` installs nginx and the checkers and sets
//! `DUCHA_REQUIRE_POSTGRES`, which turns a missing tool into a failure; elsewhere each test prints
//! one `skipped:` line and returns.

use ducha::store::postgres::testing::TestDatabase;
use ducha_tests::{Response, Server, ducha_bin, http, read_until, repo_root, try_http};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const TENANT: &str = "/api/v1/tenants/xxjd";
/// The server name in the shipped ducha.conf (and the test certificate's).
const HOST: &str = "ducha.intranet";

/// Whether missing tools fail the tests: `cargo xtask test` (and so CI) sets DUCHA_REQUIRE_POSTGRES
/// after installing nginx, systemd-analyze and the Python checkers.
fn tools_required() -> bool {
    std::env::var_os("DUCHA_REQUIRE_POSTGRES").is_some()
}

/// Prints why a test is skipped, or fails it when the tools are required.
fn skip(test: &str, why: &str) {
    assert!(!tools_required(), "{test}: {why}, but DUCHA_REQUIRE_POSTGRES is set (cargo xtask test installs it)");
    eprintln!("skipped: {why} — {test}");
}

/// Debian's nginx (in /usr/sbin, which may not be on a user's PATH), or None after [`skip`].
fn nginx(test: &str) -> Option<PathBuf> {
    for candidate in ["/usr/sbin/nginx", "nginx"] {
        if Command::new(candidate).arg("-v").output().is_ok_and(|o| o.status.success()) {
            return Some(PathBuf::from(candidate));
        }
    }
    skip(test, "nginx is not installed (apt-get install nginx)");
    None
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn deploy_file(rel: &str) -> String {
    read(&repo_root().join("deploy").join(rel))
}

/// `text` with the single occurrence of `from` replaced; fails if `from` is not there exactly once.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "expected exactly one {from:?} in the shipped file");
    text.replacen(from, to, 1)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

// ---------------------------------------------------------------------------------------------
// A throw-away nginx prefix around the shipped configuration.
// ---------------------------------------------------------------------------------------------

struct Site {
    nginx: PathBuf,
    dir: tempfile::TempDir,
    /// The TLS server's own port for plain HTTP (added by the test), the TLS port, the redirect port.
    plain: u16,
    tls: u16,
    redirect: u16,
    child: Option<Child>,
}

impl Site {
    /// Writes a self-signed certificate for `ducha.intranet`, the shipped ducha.conf rendered with
    /// free loopback ports and those paths, `upstream` as the upstream file, and a minimal nginx.conf
    /// that includes both, with every path nginx writes inside the prefix.
    fn render(nginx: &Path, upstream: &str) -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        // Run as root, nginx's workers are `nobody`: they must reach the temporary-file paths below.
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        let p = dir.path();
        let (crt, key) = (p.join("ducha.crt"), p.join("ducha.key"));
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-days", "2", "-subj", "/CN=ducha.intranet", "-addext", "subjectAltName=DNS:ducha.intranet"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&crt)
            .output()
            .expect("openssl");
        assert!(made.status.success(), "openssl req: {}", text(&made));
        let (plain, tls, redirect) = (free_port(), free_port(), free_port());
        let mut conf = deploy_file("nginx/ducha.conf");
        conf = replace_once(&conf, "listen 80;", &format!("listen 127.0.0.1:{redirect};"));
        conf = replace_once(
            &conf,
            "listen 443 ssl http2;",
            &format!(
                "listen 127.0.0.1:{tls} ssl http2;\n    # Test only: the same server on plain HTTP as well, so that the \
                 test's own HTTP client\n    # drives every location through it; TLS is checked on the port above.\n    \
                 listen 127.0.0.1:{plain};"
            ),
        );
        conf = replace_once(&conf, "/etc/nginx/tls/ducha.crt", &crt.display().to_string());
        conf = replace_once(&conf, "/etc/nginx/tls/ducha.key", &key.display().to_string());
        write(&p.join("ducha.conf"), &conf);
        write(&p.join("upstream.conf"), upstream);
        let d = p.display();
        write(
            &p.join("nginx.conf"),
            &format!(
                "# Test wrapper around the shipped deploy/nginx/ducha.conf (tests/tests/deploy.rs).\n\
                 worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n    access_log {d}/access.log;\n    client_body_temp_path {d}/client_body;\n    \
                 proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    \
                 scgi_temp_path {d}/scgi;\n    include {d}/upstream.conf;\n    include {d}/ducha.conf;\n}}\n"
            ),
        );
        Site { nginx: nginx.to_owned(), dir, plain, tls, redirect, child: None }
    }

    fn command(&self) -> Command {
        let p = self.dir.path();
        let mut c = Command::new(&self.nginx);
        c.arg("-e").arg(p.join("error.log")).arg("-p").arg(p).arg("-c").arg(p.join("nginx.conf"));
        c
    }

    /// `nginx -t` on the rendered configuration.
    fn test_config(&self) -> Output {
        self.command().arg("-t").output().expect("nginx -t")
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Starts nginx in the foreground and waits until it accepts connections.
    fn start(&mut self) {
        let child = self
            .command()
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.plain)).is_err() {
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            assert!(exited.is_none(), "nginx exited at start ({exited:?}): {}", self.error_log());
            assert!(Instant::now() < deadline, "nginx did not listen: {}", self.error_log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `nginx -s stop` (the master ends its workers) and waits; whether it exited by itself.
    fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else { return true };
        let _ = self.command().args(["-s", "stop"]).output();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.plain)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The shipped VM upstream with the replicas' addresses in place of its documentation addresses.
fn upstream_for(a: &str, b: &str) -> String {
    let up = deploy_file("nginx/upstream.conf");
    let up = replace_once(&up, "192.0.2.11:8080", a);
    replace_once(&up, "192.0.2.12:8080", b)
}

// ---------------------------------------------------------------------------------------------
// nginx -t
// ---------------------------------------------------------------------------------------------

#[test]
fn nginx_accepts_the_shipped_configuration() {
    let Some(nginx) = nginx("nginx -t") else { return };
    // With the VM upstream exactly as shipped (nginx -t does not connect to the servers).
    let vm = Site::render(&nginx, &deploy_file("nginx/upstream.conf"));
    let out = vm.test_config();
    assert!(out.status.success(), "nginx -t with deploy/nginx/upstream.conf: {}", text(&out));
    assert!(text(&out).contains("test is successful"), "{}", text(&out));

    // With the compose upstream: its names resolve only inside compose's network, so they are mapped
    // to loopback here.
    let compose = deploy_file("compose/nginx-upstream.conf");
    let compose = replace_once(&compose, "server ducha-1:8080", "server 127.0.0.1:8080");
    let compose = replace_once(&compose, "server ducha-2:8080", "server 127.0.0.2:8080");
    let site = Site::render(&nginx, &compose);
    let out = site.test_config();
    assert!(out.status.success(), "nginx -t with deploy/compose/nginx-upstream.conf: {}", text(&out));

    // nginx -t can fail: the same configuration with one semicolon missing is refused.
    let conf = read(&vm.dir.path().join("ducha.conf"));
    write(
        &vm.dir.path().join("ducha.conf"),
        &replace_once(&conf, "client_max_body_size 21m;", "client_max_body_size 21m"),
    );
    let out = vm.test_config();
    assert!(!out.status.success(), "a broken configuration must fail nginx -t: {}", text(&out));
}

/// The VM and compose upstreams are one block with different addresses: nothing else may drift.
#[test]
fn the_vm_and_compose_upstreams_agree_apart_from_the_addresses() {
    let normalise = |text: &str| -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| match l.strip_prefix("server ") {
                Some(rest) => format!("server ADDRESS {}", rest.split_once(' ').map_or("", |(_, r)| r)),
                None => l.to_owned(),
            })
            .collect()
    };
    let vm = normalise(&deploy_file("nginx/upstream.conf"));
    let compose = normalise(&deploy_file("compose/nginx-upstream.conf"));
    assert!(vm.iter().filter(|l| l.starts_with("server ADDRESS")).count() == 2, "{vm:?}");
    assert_eq!(vm, compose, "deploy/nginx/upstream.conf and deploy/compose/nginx-upstream.conf differ");
}

// ---------------------------------------------------------------------------------------------
// Through a real nginx to two replicas
// ---------------------------------------------------------------------------------------------

fn send(addr: &str, method: &str, path: &str, token: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Response {
    let auth = format!("Bearer {token}");
    let mut all = vec![("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    let bytes = body.map(|b| b.to_string().into_bytes());
    http(addr, method, path, &all, bytes.as_deref())
}

fn login(addr: &str, username: &str) -> String {
    let body = json!({"username": username, "password": "ducha-demo"}).to_string();
    let r = http(addr, "POST", "/api/v1/auth/login", &[("Content-Type", "application/json")], Some(body.as_bytes()));
    assert_eq!(r.status, 200, "login {username} through {addr}: {}", r.text());
    r.json()["access_token"].as_str().expect("access_token").to_owned()
}

fn position(r: &Response) -> u64 {
    r.header("x-ducha-position")
        .unwrap_or_else(|| panic!("a write answers X-Ducha-Position: {} {}", r.status, r.text()))
        .parse()
        .expect("position")
}

/// Opens the live stream of XX街道 on a raw connection through `addr`; returns it with what was
/// read up to the end of the response head.
fn open_stream(addr: &str, token: &str) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    write!(
        stream,
        "GET {TENANT}/live HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("send");
    let mut buf = Vec::new();
    assert!(read_until(&mut stream, &mut buf, "\r\n\r\n", Duration::from_secs(10)), "no response head");
    let head = String::from_utf8_lossy(&buf).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/event-stream"), "{head}");
    (stream, buf)
}

/// Whether the connection is still open: a short read times out (or brings data) rather than
/// reaching the end of the response.
fn still_open(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
    let mut byte = [0u8; 512];
    match stream.read(&mut byte) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

/// `ducha_http_requests_total` of one replica for a method, route and status (read from it directly).
fn served(replica: &Server, method: &str, route: &str, status: u16) -> u64 {
    let metrics = replica.get("/metrics", None).text();
    let wanted = format!("method=\"{method}\",route=\"{route}\",status=\"{status}\"}}");
    metrics
        .lines()
        .filter(|l| l.starts_with("ducha_http_requests_total{") && l.contains(&wanted))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Which of the two replicas counted one more request between two readings: 0 (a) or 1 (b).
fn which(before: (u64, u64), after: (u64, u64)) -> usize {
    match (after.0 - before.0, after.1 - before.1) {
        (1, 0) => 0,
        (0, 1) => 1,
        other => panic!("expected exactly one replica to serve the request, got {other:?}"),
    }
}

fn multipart(boundary: &str, filename: &str, content_type: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

/// The TLS port through Python's ssl module (trusting only the test certificate, checking the
/// name): the ALPN protocol nginx picks when offered h2, and a GET /readyz over HTTP/1.1.
fn tls_probe(port: u16, ca: &Path) -> Value {
    let script = r#"
import json, socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
def ctx(alpn):
    c = ssl.create_default_context(cafile=ca)
    c.set_alpn_protocols(alpn)
    return c
with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
    with ctx(["h2", "http/1.1"]).wrap_socket(s, server_hostname="ducha.intranet") as t:
        alpn = t.selected_alpn_protocol()
with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
    with ctx(["http/1.1"]).wrap_socket(s, server_hostname="ducha.intranet") as t:
        t.sendall(b"GET /readyz HTTP/1.1\r\nHost: ducha.intranet\r\nConnection: close\r\n\r\n")
        raw = b""
        while chunk := t.recv(65536):
            raw += chunk
head = raw.split(b"\r\n\r\n", 1)[0].decode()
print(json.dumps({"alpn": alpn, "status": int(head.split()[1]),
                  "hsts": "strict-transport-security" in head.lower()}))
"#;
    let out = Command::new("python3").arg("-c").arg(script).arg(port.to_string()).arg(ca).output().expect("python3");
    assert!(out.status.success(), "TLS probe: {}", text(&out));
    serde_json::from_slice(&out.stdout).expect("TLS probe output")
}

#[test]
fn through_nginx_to_two_replicas_uploads_the_live_stream_and_read_your_writes() {
    let test = "deploy: nginx in front of two replicas";
    let Some(db) = TestDatabase::create_blocking(test) else { return };
    let Some(nginx) = nginx(test) else { return };
    let secret = tempfile::tempdir().expect("dir");
    let key = secret.path().join("jwt.secret");
    write(&key, "共享签名密钥-the-deployment's-shared-signing-secret-0123456789");
    let env = [("DUCHA_TRUST_FORWARDED_FOR", "true")];
    let a = Server::replica(&db.url, &key, true, &env);
    let b = Server::replica(&db.url, &key, false, &env);
    let mut site = Site::render(&nginx, &upstream_for(&a.addr, &b.addr));
    let out = site.test_config();
    assert!(out.status.success(), "nginx -t: {}", text(&out));
    site.start();
    let lb = site.addr();

    // Both replicas answer through the balancer (least_conn, no stickiness).
    let mut replicas = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let r = http(&lb, "GET", "/readyz", &[], None);
        assert_eq!(r.status, 200, "{}", r.text());
        replicas.insert(r.json()["replica"].as_str().expect("replica id").to_owned());
    }
    assert_eq!(replicas.len(), 2, "requests through nginx reach both replicas: {replicas:?}");

    let admin = login(&lb, "xx-admin");

    // Read-your-writes through the balancer: each write is read back at once with its position.
    // Which replica served what is read from each replica's own counters. Before the live stream
    // is opened: least_conn sends every request to the replica without an open stream while one
    // is open (idle keep-alive connections do not count), so nothing would cross; with no stream
    // the two replicas tie and nginx takes them in turn.
    let route = "/api/v1/tenants/{tenant_id}/communities";
    let mut crossed = 0;
    for i in 0..8 {
        let counts = |method, status| (served(&a, method, route, status), served(&b, method, route, status));
        let (posts, gets) = (counts("POST", 201), counts("GET", 200));
        let id = format!("rw-{i}");
        let w = send(
            &lb,
            "POST",
            &format!("{TENANT}/communities"),
            &admin,
            &[],
            Some(&json!({"community_id": id, "name": format!("读写社区{i}")})),
        );
        assert_eq!(w.status, 201, "{}", w.text());
        let p = position(&w).to_string();
        let r =
            send(&lb, "GET", &format!("{TENANT}/communities"), &admin, &[("X-Ducha-Min-Position", p.as_str())], None);
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains(&format!("\"{id}\"")), "the read after write {i} sees it: {}", r.text());
        if which(posts, counts("POST", 201)) != which(gets, counts("GET", 200)) {
            crossed += 1;
        }
    }
    assert!(crossed > 0, "at least one write was read back through the other replica");
    let beyond = send(&lb, "GET", &format!("{TENANT}/dashboard?min_position=999999999"), &admin, &[], None);
    assert_eq!(beyond.status, 400, "the query form passes through nginx too: {}", beyond.text());
    assert_eq!(beyond.json()["code"], "invalid_min_position");

    // The live stream through nginx carries a write made through nginx, while it stays open.
    let (mut live, mut buf) = open_stream(&lb, &admin);
    assert!(
        read_until(&mut live, &mut buf, ": live after", Duration::from_secs(10)),
        "the stream's first frame comes through nginx at once: {}",
        String::from_utf8_lossy(&buf)
    );
    let added = send(
        &lb,
        "POST",
        &format!("{TENANT}/communities"),
        &admin,
        &[],
        Some(&json!({"community_id": "xinhua", "name": "新华社区"})),
    );
    assert_eq!(added.status, 201, "{}", added.text());
    let p = position(&added);
    let answered = Instant::now();
    assert!(
        read_until(&mut live, &mut buf, &format!("id: {p}\n"), Duration::from_secs(10)),
        "the write's event arrives on the stream through nginx: {}",
        String::from_utf8_lossy(&buf)
    );
    // Pushed, not collected: the replica sends a frame once its read model has the event (tens of
    // milliseconds); the keep-alive comments come every 15 s, so a proxy that held frames back
    // until more data came would miss this by far.
    let waited = answered.elapsed();
    assert!(waited < Duration::from_secs(3), "the event took {waited:?} to come through nginx");
    assert!(still_open(&mut live), "the stream is still open after the event: nginx did not buffer it to the end");

    // An evidence upload larger than nginx's default limit (1 MiB): 201, the same bytes back through
    // nginx and from each replica directly.
    let officer = login(&lb, "xx-dongfeng");
    let mut pdf = b"%PDF-1.7\n".to_vec();
    let mut n = 0u32;
    while pdf.len() < 1_500_000 {
        pdf.extend_from_slice(format!("% 整改佐证材料 filler line {n:08}\n").as_bytes());
        n += 1;
    }
    pdf.extend_from_slice(b"%%EOF\n");
    let boundary = "----ducha-deploy-boundary";
    let body = multipart(boundary, "整改佐证.pdf", "application/pdf", &pdf);
    let auth = format!("Bearer {officer}");
    let ct = format!("multipart/form-data; boundary={boundary}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", ct.as_str())];
    let up = http(&lb, "POST", &format!("{TENANT}/evidence"), &headers, Some(&body));
    assert_eq!(up.status, 201, "{}", up.text());
    let sha = up.json()["sha256"].as_str().expect("sha256").to_owned();
    assert_eq!(sha, hex::encode(Sha256::digest(&pdf)));
    // Downloaded as the tenant's admin: an officer may not read evidence that no finding of their
    // community cites yet (tests/tests/api_rectification.rs).
    let admin_auth = format!("Bearer {admin}");
    for (path, addr) in [("nginx", lb.as_str()), ("replica A", a.addr.as_str()), ("replica B", b.addr.as_str())] {
        let down =
            http(addr, "GET", &format!("{TENANT}/evidence/{sha}"), &[("Authorization", admin_auth.as_str())], None);
        assert_eq!(down.status, 200, "download through {path}: {}", down.status);
        assert!(down.body == pdf, "download through {path}: {} bytes, not the {} uploaded", down.body.len(), pdf.len());
    }

    // Larger than client_max_body_size (21m): nginx itself answers 413 from the declared length.
    let mut raw = TcpStream::connect(&lb).expect("connect");
    raw.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    write!(
        raw,
        "POST {TENANT}/evidence HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: {auth}\r\nContent-Type: {ct}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        22 * 1024 * 1024
    )
    .expect("send");
    let mut answer = Vec::new();
    // nginx answers at once, then waits a little for the body it will discard: read the page only.
    read_until(&mut raw, &mut answer, "</html>", Duration::from_secs(10));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("nginx"), "nginx answered, not a replica: {answer}");

    // TLS on the shipped `listen … ssl http2` port, with HSTS; the port-80 server redirects there.
    let probe = tls_probe(site.tls, &site.dir.path().join("ducha.crt"));
    assert_eq!(probe["alpn"], "h2", "HTTP/2 offered over TLS: {probe}");
    assert_eq!(probe["status"], 200, "{probe}");
    assert_eq!(probe["hsts"], true, "{probe}");
    // (The test client sends `Host: 127.0.0.1:PORT`, so `$host` is 127.0.0.1.)
    let redirect = http(&format!("127.0.0.1:{}", site.redirect), "GET", "/dashboard", &[], None);
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("location"), Some("https://127.0.0.1/dashboard"));

    drop(live);
    assert!(site.stop(), "nginx stopped on `nginx -s stop`: {}", site.error_log());
    assert!(try_http(&lb, "GET", "/readyz", &[], None).is_err(), "nothing listens on nginx's port any more");
}

// ---------------------------------------------------------------------------------------------
// What cannot run here: schemas and rules
// ---------------------------------------------------------------------------------------------

/// Runs tests/deploy/check_deploy.py on `root`; None after [`skip`] when a checker is missing.
fn check_deploy(root: &Path, test: &str) -> Option<Output> {
    let script = repo_root().join("tests/deploy/check_deploy.py");
    let out = Command::new("python3").arg(script).arg(root).output().expect("python3");
    if out.status.code() == Some(3) {
        skip(test, &format!("a deploy checker is missing ({})", text(&out).trim()));
        return None;
    }
    Some(out)
}

#[test]
fn the_deploy_files_pass_their_schemas_and_rules() {
    let Some(out) = check_deploy(&repo_root(), "deploy checks") else { return };
    let report = text(&out);
    assert!(out.status.success(), "tests/deploy/check_deploy.py:\n{report}");
    assert!(report.contains("\"failures\": 0"), "{report}");
    // The checks that matter most did run.
    for line in [
        "ok: compose: every file validates against the compose specification's schema",
        "resources validate strictly against the schemas of Kubernetes 1.30.0",
        "ok: Containerfile: BuildKit's parser reads",
        "ok: kubernetes: readinessProbe asks /readyz",
    ] {
        assert!(report.contains(line), "missing {line:?} in:\n{report}");
    }
}

/// Copies what the checker reads (deploy/, docs/CONFIGURATION.md, Cargo.toml, .dockerignore).
fn copy_tree(to: &Path) {
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read dir").flatten() {
            let (src, dst) = (entry.path(), to.join(entry.file_name()));
            if src.is_dir() {
                copy_dir(&src, &dst);
            } else {
                std::fs::copy(&src, &dst).expect("copy");
            }
        }
    }
    let root = repo_root();
    copy_dir(&root.join("deploy"), &to.join("deploy"));
    std::fs::create_dir_all(to.join("docs")).expect("mkdir");
    for file in ["docs/CONFIGURATION.md", "Cargo.toml", ".dockerignore"] {
        std::fs::copy(root.join(file), to.join(file)).expect("copy");
    }
}

#[test]
fn the_checker_rejects_broken_copies() {
    // (file under the copy, text, replacement, what the checker must report)
    let breakages: &[(&str, &str, &str, &str)] = &[
        (
            "deploy/compose/postgres.yaml",
            "condition: service_healthy",
            "condition: service_happy",
            "compose specification's schema",
        ),
        ("deploy/kubernetes/deployment.yaml", "readinessProbe:", "readinesProbe:", "invalid for Kubernetes"),
        ("deploy/kubernetes/pdb.yaml", "apiVersion: policy/v1", "apiVersion: policy/v2", "no schema for it"),
        (
            "deploy/kubernetes/service.yaml",
            "  selector:\n    app.kubernetes.io/name: ducha",
            "  selector:\n    app.kubernetes.io/name: duch",
            "FAIL: kubernetes: Service ducha selects the pods",
        ),
        (
            "deploy/kubernetes/deployment.yaml",
            "path: /readyz",
            "path: /healthz",
            "FAIL: kubernetes: readinessProbe asks /readyz",
        ),
        (
            "deploy/kubernetes/secret.yaml",
            "jwt.secret: REPLACE-ME",
            "jwt.secret: a-forty-byte-secret-someone-might-forget-0000",
            "FAIL: kubernetes: the shipped signing key is a placeholder",
        ),
        (
            "deploy/compose/postgres.yaml",
            "DUCHA_TRUST_FORWARDED_FOR",
            "DUCHA_TRUST_FORWARDED",
            "(not: DUCHA_TRUST_FORWARDED)",
        ),
        (
            "deploy/compose/nginx-upstream.conf",
            "server ducha-2:8080",
            "server ducha-3:8080",
            "FAIL: compose postgres.yaml: the upstream lists exactly the replicas",
        ),
        (
            "deploy/compose/kurrentdb.yaml",
            "@postgres:5432/ducha",
            "@state-db:5432/ducha",
            "FAIL: compose kurrentdb.yaml: DUCHA_SERVER_STATE is postgres:// on the file's own service",
        ),
        (
            "deploy/container/Containerfile",
            "CMD [\"/usr/local/bin/wget\", \"-q\", \"-T\", \"3\", \"-O\", \"/dev/null\", \"http://127.0.0.1:8080/healthz\"]",
            "CMD /usr/local/bin/wget -q -T 3 -O /dev/null http://127.0.0.1:8080/healthz",
            "FAIL: Containerfile: HEALTHCHECK in exec (JSON) form",
        ),
        (".dockerignore", "target/\n", "target/\n.cargo/\n", "FAIL: /.dockerignore keeps every workspace member"),
    ];
    for (file, from, to, expected) in breakages {
        let dir = tempfile::tempdir().expect("dir");
        copy_tree(dir.path());
        let path = dir.path().join(file);
        let original = read(&path);
        assert!(original.contains(from), "{file} no longer contains {from:?}: update this test");
        write(&path, &original.replace(from, to));
        let Some(out) = check_deploy(dir.path(), "deploy checks on broken copies") else { return };
        let report = text(&out);
        assert_eq!(out.status.code(), Some(1), "{file} with {to:?} must fail the checks:\n{report}");
        assert!(report.contains(expected), "{file} with {to:?}: expected {expected:?} in:\n{report}");
    }
}

#[test]
fn the_systemd_unit_verifies() {
    let test = "systemd-analyze verify";
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        skip(test, "systemd-analyze is not installed (apt-get install systemd)");
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    // The unit's binary path, pointed at this build's binary (verify checks that it is executable).
    let unit = replace_once(
        &deploy_file("systemd/ducha.service"),
        "ExecStart=/usr/local/bin/ducha serve",
        &format!("ExecStart={} serve", ducha_bin().display()),
    );
    let verify = |unit: &str| -> Output {
        let path = dir.path().join("ducha.service");
        write(&path, unit);
        Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("systemd-analyze")
    };
    let out = verify(&unit);
    assert!(out.status.success() && text(&out).trim().is_empty(), "systemd-analyze verify: {}", text(&out));
    // It can fail: a misspelt directive is reported (systemd ignores it with a warning).
    let out = verify(&replace_once(&unit, "ProtectSystem=strict", "ProtectSystm=strict"));
    assert!(text(&out).contains("Unknown key"), "a misspelt directive must be reported: {}", text(&out));
}

/// The Kubernetes secret's placeholder key cannot run: Ducha refuses it at start.
#[test]
fn the_kubernetes_placeholder_signing_key_is_refused() {
    let secret = deploy_file("kubernetes/secret.yaml");
    let placeholder = secret
        .lines()
        .find_map(|l| l.trim().strip_prefix("jwt.secret: "))
        .expect("secret.yaml has a jwt.secret")
        .trim()
        .to_owned();
    let dir = tempfile::tempdir().expect("dir");
    let key = dir.path().join("jwt.secret");
    write(&key, &placeholder);
    let mut child = Command::new(ducha_bin())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DUCHA_JWT_SECRET_FILE", &key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ducha serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ducha serve started with the placeholder key {placeholder:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
    assert!(!status.success(), "ducha serve must refuse the placeholder key");
    assert!(err.contains("too short"), "the error names the key: {err}");
}
