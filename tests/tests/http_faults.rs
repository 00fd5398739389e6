//! No acknowledged write is lost through HTTP, whatever happens to the process.
//!
//! - SIGKILL at random moments while four clients write through HTTP (reminders: one event; new
//!   users: three events in one append), every request with an `Idempotency-Key` and its own
//!   `X-Request-Id` (the events' correlation id). After each restart, read by an independent reader
//!   (Python's sqlite3): every acknowledged write is present exactly once, ending at the position
//!   its answer gave; no write is half-present (all of its events or none); a write answered 409 is
//!   absent. Then every unanswered write is retried with its key: each answers 2xx and is present
//!   exactly once (at most one append per key), and `ducha verify` passes.
//! - SIGTERM under load: requests in flight when the signal arrives — their bodies still being sent
//!   — finish with success, the process exits 0, and every acknowledged write is in the log. So
//!   does SIGTERM the moment the server reports it is listening.

use ducha_tests::{Response, Server, ducha_ok, read_until, try_http};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{Read, Write as _};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

const FINDING: &str = "/api/v1/tenants/xxjd/inspections/2023-ideology/findings/xx-2023-f4";
const USERS: &str = "/api/v1/tenants/xxjd/users";
const WRITERS: usize = 4;
const ROUNDS: usize = 10;

/// One write a client sends: its request id is also its `Idempotency-Key` and its events'
/// correlation id.
#[derive(Debug, Clone)]
struct Write {
    id: String,
    path: String,
    body: String,
    /// Events one successful append of it holds.
    events: usize,
}

fn write_for(client: usize, n: usize) -> Write {
    let id = format!("ft-{client}-{n}");
    if n % 4 == 3 {
        let body = json!({
            "username": id,
            "display_name": format!("故障测试用户{client}-{n}"),
            "password": "fault-test-password-1",
            "role": "inspector",
        });
        Write { id, path: USERS.to_owned(), body: body.to_string(), events: 3 }
    } else {
        let body = json!({ "message": format!("故障测试第{client}路第{n}次催办") });
        Write { id, path: format!("{FINDING}/remind"), body: body.to_string(), events: 1 }
    }
}

/// What became of a write.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// 2xx with this `X-Ducha-Position`.
    Acked(u64),
    /// Unanswered at first, then answered 2xx when retried with the same key.
    Retried,
    /// Answered 409: refused, so nothing may be in the log.
    Refused,
    /// No answer (the connection broke or was refused) or 503: it may or may not have happened.
    Unanswered,
}

fn send(addr: &str, token: &str, w: &Write) -> std::io::Result<Response> {
    let auth = format!("Bearer {token}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Idempotency-Key", w.id.as_str()),
        ("X-Request-Id", w.id.as_str()),
    ];
    try_http(addr, "POST", &w.path, &headers, Some(w.body.as_bytes()))
}

fn outcome_of(w: &Write, r: std::io::Result<Response>) -> Outcome {
    let Ok(r) = r else { return Outcome::Unanswered };
    match r.status {
        200 | 201 => {
            let p = r.header("x-ducha-position").unwrap_or_else(|| panic!("{}: no X-Ducha-Position", w.id));
            Outcome::Acked(p.parse().expect("position"))
        }
        409 => {
            assert_eq!(r.json()["code"], "version_mismatch", "{}: {}", w.id, r.text());
            Outcome::Refused
        }
        503 => Outcome::Unanswered,
        s => panic!("{}: unexpected answer {s}: {}", w.id, r.text()),
    }
}

/// Every event of XX街道's chain, as `correlation id → [(position, type)]`, read from the SQLite
/// file by Python's sqlite3 while the server runs.
fn log_by_correlation(s: &Server) -> HashMap<String, Vec<(u64, String)>> {
    let db = s.data_dir.path().join("ducha.db");
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys,json;c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro',uri=True);\
             print(json.dumps(c.execute(\"select position, correlation_id, event_type from events \
             where tenant='xxjd' order by position\").fetchall()))",
        ])
        .arg(&db)
        .output()
        .expect("python3");
    assert!(out.status.success(), "reading the log: {}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<(u64, String, String)> = serde_json::from_slice(&out.stdout).expect("rows");
    let mut by: HashMap<String, Vec<(u64, String)>> = HashMap::new();
    for (position, correlation, event_type) in rows {
        by.entry(correlation).or_default().push((position, event_type));
    }
    by
}

/// Checks every recorded write against the log; `settled`: every write must now be present.
fn check(s: &Server, records: &[(Write, Outcome)], settled: bool) -> (usize, usize) {
    let log = log_by_correlation(s);
    let (mut acked, mut present_unanswered) = (0, 0);
    for (w, outcome) in records {
        let events = log.get(&w.id).map(Vec::as_slice).unwrap_or_default();
        match outcome {
            Outcome::Acked(position) => {
                acked += 1;
                assert_eq!(events.len(), w.events, "acknowledged {} is present exactly once: {events:?}", w.id);
                let last = events.iter().map(|(p, _)| *p).max().unwrap_or_default();
                assert_eq!(last, *position, "{}: the answer's X-Ducha-Position is the write's last event", w.id);
            }
            Outcome::Retried => {
                assert_eq!(events.len(), w.events, "retried {} is present exactly once: {events:?}", w.id);
            }
            Outcome::Refused => assert!(events.is_empty(), "refused {} left events: {events:?}", w.id),
            Outcome::Unanswered => {
                assert!(
                    events.is_empty() || events.len() == w.events,
                    "unanswered {} is half-present: {} of {} events {events:?}",
                    w.id,
                    events.len(),
                    w.events
                );
                if !events.is_empty() {
                    present_unanswered += 1;
                }
                assert!(!settled, "{} was left unanswered", w.id);
            }
        }
    }
    (acked, present_unanswered)
}

/// A small deterministic random source (the seed is printed, so a failure can be replayed).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[derive(Default)]
struct Shared {
    addr: RwLock<String>,
    stop: AtomicBool,
    records: Mutex<Vec<(Write, Outcome)>>,
    /// Writes sent more than once (their first attempts unanswered).
    retried: AtomicUsize,
    /// Answers marked `Idempotent-Replayed`: a retry of a write that had happened.
    replayed: AtomicUsize,
}

/// Writes until told to stop. A write left unanswered (the server died under it) is sent again
/// with the same key, as a client would, until it is answered: `Retried` (or `Refused`) then.
fn writer(shared: &Shared, token: &str, client: usize) {
    let mut n = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        let w = write_for(client, n);
        n += 1;
        let mut attempts = 0;
        let outcome = loop {
            let addr = shared.addr.read().unwrap_or_else(|p| p.into_inner()).clone();
            let r = send(&addr, token, &w);
            if r.as_ref().is_ok_and(|r| r.header("idempotent-replayed") == Some("true")) {
                shared.replayed.fetch_add(1, Ordering::Relaxed);
            }
            match (outcome_of(&w, r), attempts) {
                (Outcome::Unanswered, _) if shared.stop.load(Ordering::Relaxed) => break Outcome::Unanswered,
                (Outcome::Unanswered, _) => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                (Outcome::Acked(_), a) if a > 0 => break Outcome::Retried,
                (o, _) => break o,
            }
        };
        if attempts > 0 {
            shared.retried.fetch_add(1, Ordering::Relaxed);
        }
        shared.records.lock().unwrap_or_else(|p| p.into_inner()).push((w, outcome));
    }
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_write() {
    let mut server = Server::demo();
    let token = server.login("xx-admin");
    let initial_reminders = reminders(&server, &token);
    let seed = std::env::var("DUCHA_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    println!("seed {seed} (DUCHA_FAULT_SEED={seed} replays the kill times)");
    let mut rng = Lcg(seed);
    let shared = Arc::new(Shared { addr: RwLock::new(server.addr.clone()), ..Shared::default() });

    let mut per_round = Vec::new();
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|c| {
                let (shared, token) = (shared.clone(), token.clone());
                scope.spawn(move || writer(&shared, &token, c))
            })
            .collect();
        for round in 0..ROUNDS {
            // Let some writes through, then kill at a random moment.
            let before = shared.records.lock().unwrap().len();
            std::thread::sleep(Duration::from_millis(150 + rng.next(600)));
            while shared.records.lock().unwrap().len() < before + 3 {
                std::thread::sleep(Duration::from_millis(10));
            }
            server.kill();
            server.restart(&[]);
            *shared.addr.write().unwrap() = server.addr.clone();
            let snapshot = shared.records.lock().unwrap().clone();
            let (acked, present) = check(&server, &snapshot, false);
            println!(
                "round {round}: {} writes done, {acked} acknowledged at once, {} sent again after a kill, {} of \
                 those answered as replays, {present} unanswered but present",
                snapshot.len(),
                shared.retried.load(Ordering::Relaxed),
                shared.replayed.load(Ordering::Relaxed)
            );
            per_round.push(acked);
        }
        shared.stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().expect("writer");
        }
    });
    let mut records = shared.records.lock().unwrap().clone();
    let (acked, _) = check(&server, &records, false);
    let retried = shared.retried.load(Ordering::Relaxed);
    let unanswered: Vec<usize> =
        records.iter().enumerate().filter(|(_, (_, o))| *o == Outcome::Unanswered).map(|(i, _)| i).collect();
    println!(
        "{} writes, {acked} acknowledged at once, {retried} sent again after a kill, {} left unanswered at the end",
        records.len(),
        unanswered.len()
    );
    assert!(acked > ROUNDS, "writes got through between the kills: {per_round:?}");
    assert!(retried > 0, "the kills cut some writes");

    // Retry every write still unanswered with its key: each is answered now, appended at most once.
    for i in unanswered {
        let w = records[i].0.clone();
        let r = send(&server.addr, &token, &w).expect("retry");
        assert!(matches!(r.status, 200 | 201), "retry of {}: {} {}", w.id, r.status, r.text());
        if r.header("idempotent-replayed") == Some("true") {
            shared.replayed.fetch_add(1, Ordering::Relaxed);
        }
        records[i].1 = Outcome::Retried;
    }
    let replayed = shared.replayed.load(Ordering::Relaxed);
    check(&server, &records, true);
    println!("{replayed} retries were answered as replays of a write that had happened before the kill");
    let verified = ducha_ok(server.data_dir.path(), &["verify"]);
    println!("{verified}");
    // The read model after the crashes counts every reminder the log holds, once.
    let reminded = records.iter().filter(|(w, o)| w.events == 1 && *o != Outcome::Refused).count() as u64;
    assert_eq!(reminders(&server, &token), initial_reminders + reminded, "the read model counts each reminder once");
}

/// The finding's reminder count in the live read model.
fn reminders(s: &Server, token: &str) -> u64 {
    let r = s.get(FINDING, Some(token));
    assert_eq!(r.status, 200, "{}", r.text());
    let history = r.json()["history"].as_array().cloned().unwrap_or_else(|| panic!("no history: {}", r.text()));
    history.iter().filter(|e| e["event_type"] == "ReminderIssued").count() as u64
}

/// Sends a request's head and the first half of its body; the rest is sent by [`finish`].
fn start_slow(addr: &str, token: &str, w: &Write) -> std::net::TcpStream {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nIdempotency-Key: {id}\r\nX-Request-Id: {id}\r\nContent-Length: {}\r\n\r\n",
        w.path,
        w.body.len(),
        id = w.id,
    );
    stream.write_all(head.as_bytes()).expect("send head");
    let half = w.body.len() / 2;
    stream.write_all(&w.body.as_bytes()[..half]).expect("send half");
    stream.flush().expect("flush");
    stream
}

fn finish(mut stream: std::net::TcpStream, w: &Write) -> (u16, String, Option<u64>) {
    let half = w.body.len() / 2;
    stream.write_all(&w.body.as_bytes()[half..]).expect("send the rest");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let position = text
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("x-ducha-position:").map(|v| v.trim().to_owned()))
        .and_then(|v| v.parse().ok());
    (status, text, position)
}

#[test]
fn sigterm_under_load_lets_in_flight_requests_finish() {
    // At `info`, the shutdown's steps are logged.
    let mut server = Server::start(true, &[("DUCHA_LOG_LEVEL", "info")]);
    let token = server.login("xx-admin");
    let shared = Arc::new(Shared { addr: RwLock::new(server.addr.clone()), ..Shared::default() });
    let slow: Vec<Write> = (0..3).map(|i| write_for(90 + i, 0)).chain([write_for(93, 3)]).collect();

    let (status, finished) = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|c| {
                let (shared, token) = (shared.clone(), token.clone());
                scope.spawn(move || {
                    // Write until the server is gone.
                    let mut n = 0;
                    loop {
                        let w = write_for(c, n);
                        n += 1;
                        let addr = shared.addr.read().unwrap().clone();
                        let r = send(&addr, &token, &w);
                        let gone = r.is_err();
                        let outcome = outcome_of(&w, r);
                        shared.records.lock().unwrap().push((w, outcome));
                        if gone && shared.stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(400));
        // Requests in flight: their bodies are half sent when SIGTERM arrives.
        let streams: Vec<_> = slow.iter().map(|w| start_slow(&server.addr, &token, w)).collect();
        std::thread::sleep(Duration::from_millis(200));
        let signalled = Arc::new(AtomicBool::new(false));
        let finishers: Vec<_> = streams
            .into_iter()
            .zip(slow.iter())
            .map(|(stream, w)| {
                let signalled = signalled.clone();
                scope.spawn(move || {
                    while !signalled.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    // The signal is delivered and the server is shutting down; now the rest.
                    std::thread::sleep(Duration::from_millis(300));
                    finish(stream, w)
                })
            })
            .collect();
        shared.stop.store(true, Ordering::Relaxed);
        let terminator = {
            let signalled = signalled.clone();
            scope.spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                signalled.store(true, Ordering::Relaxed);
            })
        };
        let status = server.terminate();
        terminator.join().unwrap();
        let finished: Vec<_> = finishers.into_iter().map(|f| f.join().expect("finisher")).collect();
        for w in writers {
            w.join().expect("writer");
        }
        (status, finished)
    });
    let log = server.log();
    assert!(status.success(), "exit status after SIGTERM: {status:?}\n{log}");
    assert!(log.contains("SIGTERM received") && log.contains("stopped"), "{log}");
    assert!(!log.contains("panicked"), "{log}");

    let mut records = shared.records.lock().unwrap().clone();
    for ((status, text, position), w) in finished.into_iter().zip(slow.iter()) {
        assert!(matches!(status, 200 | 201), "in-flight {} was cut by the shutdown: {text:?}", w.id);
        records.push((w.clone(), Outcome::Acked(position.expect("X-Ducha-Position"))));
    }
    let acked = records.iter().filter(|(_, o)| matches!(o, Outcome::Acked(_))).count();
    println!("{} writes under load, {acked} acknowledged (the 4 in flight among them)", records.len());
    // Every acknowledged write is in the log the stopped server left.
    server.restart(&[]);
    check(&server, &records, false);
    let verified = ducha_ok(server.data_dir.path(), &["verify"]);
    println!("{verified}");
    let ready: Value = server.get("/readyz", None).json();
    assert_eq!(ready["status"], "ready", "{ready}");
}

/// SIGTERM the moment the server says it is listening (a supervisor stopping a replica that has
/// just started) is a graceful stop too: the handler is in place before "listening on" is printed,
/// so the process logs the signal, saves its checkpoint and exits 0 — not killed by the signal's
/// default action. Several rounds, as the window was a few microseconds wide.
#[test]
fn sigterm_right_after_listening_is_a_graceful_stop() {
    for round in 0..8 {
        let mut server = Server::start(false, &[("DUCHA_LOG_LEVEL", "info")]);
        let status = server.terminate();
        let log = server.log();
        assert!(status.success(), "round {round}: exit status after SIGTERM: {status:?}\n{log}");
        assert!(log.contains("SIGTERM received") && log.contains("stopped"), "round {round}: {log}");
    }
}

/// The answer to a write is lost after its commit (here: the stored answers, `api.db`, are gone,
/// as when the process dies between the commit and saving its answer). The retry with the same key
/// is answered as that write — 201 again, `Idempotent-Replayed` — and appends nothing; it is not
/// decided again on the state it produced (which would refuse the user as "already exists").
#[test]
fn a_retry_whose_answer_was_lost_is_answered_as_the_write_it_was() {
    let mut server = Server::demo();
    let token = server.login("xx-admin");
    let w = write_for(7, 3);
    assert_eq!(w.events, 3);
    let first = send(&server.addr, &token, &w).expect("answer");
    assert_eq!(first.status, 201, "{}", first.text());
    let position: u64 = first.header("x-ducha-position").unwrap().parse().unwrap();
    server.kill();
    for f in ["api.db", "api.db-wal", "api.db-shm"] {
        let _ = std::fs::remove_file(server.data_dir.path().join(f));
    }
    server.restart(&[]);
    let token = server.login("xx-admin");
    let again = send(&server.addr, &token, &w).expect("answer");
    assert_eq!(again.status, 201, "the retry is answered as the write: {}", again.text());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.header("x-ducha-position"), Some(position.to_string().as_str()), "at the write's position");
    assert_eq!(again.json()["id"], first.json()["id"]);
    let log = log_by_correlation(&server);
    assert_eq!(log.get(&w.id).map(Vec::len), Some(3), "appended once: {:?}", log.get(&w.id));
    // The same key for a write to another stream is still refused.
    let other = Write { id: w.id.clone(), ..write_for(7, 0) };
    let r = send(&server.addr, &token, &other).expect("answer");
    assert_eq!((r.status, r.json()["code"].as_str()), (422, Some("idempotency_key_reused")), "{}", r.text());
}

/// SIGTERM with live streams open: every stream gets `event: shutdown` and ends at once (the
/// streams watch the server's own stop, which begins when the signal is caught), so the graceful
/// stop does not wait out its timeout — set here to 10 minutes, longer than `terminate` waits.
#[test]
fn sigterm_ends_the_live_streams_at_once() {
    let mut server = Server::start(true, &[("DUCHA_SHUTDOWN_TIMEOUT_SECONDS", "600"), ("DUCHA_LOG_LEVEL", "info")]);
    let admin = server.login("xx-admin");
    let other = server.login("yy-admin");
    let mut streams = [server.open_live("xxjd", &admin, None), server.open_live("yyjd", &other, None)];
    let status = server.terminate();
    let log = server.log();
    assert!(status.success(), "exit status after SIGTERM: {status:?}\n{log}");
    for (n, (stream, buf)) in streams.iter_mut().enumerate() {
        assert!(
            read_until(stream, buf, "event: shutdown", std::time::Duration::from_secs(10)),
            "stream {n} got no shutdown frame: {}",
            String::from_utf8_lossy(buf)
        );
    }
    assert!(log.contains("SIGTERM received") && log.contains("stopped"), "{log}");
}
