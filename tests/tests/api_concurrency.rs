//! Optimistic concurrency through HTTP: 50 clients send the same conflicting command with the same
//! `If-Match` at once; exactly one wins, the others get 412 (or 409) and append nothing. Then 50
//! clients each retry until their command lands: every one lands exactly once, nothing is lost.
//!
//! No timing is asserted: threads meet at a barrier and only the outcomes are counted.

use ducha_tests::{Server, http};
use serde_json::json;
use std::sync::{Arc, Barrier};

const FINDING: &str = "/api/v1/tenants/xxjd/inspections/2023-ideology/findings/xx-2023-f4";
const CLIENTS: usize = 50;

fn remind(addr: &str, token: &str, if_match: Option<u64>, n: usize) -> (u16, Option<u64>) {
    let body = json!({"message": format!("请于两周内报送整改进展（第{n}次催办）")}).to_string();
    let auth = format!("Bearer {token}");
    let tag = if_match.map(|v| format!("\"{v}\""));
    let mut headers = vec![("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    if let Some(t) = &tag {
        headers.push(("If-Match", t.as_str()));
    }
    let r = http(addr, "POST", &format!("{FINDING}/remind"), &headers, Some(body.as_bytes()));
    let etag = r.header("etag").and_then(|e| e.trim_start_matches("W/").trim_matches('"').parse().ok());
    assert!(r.status < 500, "server error: {} {}", r.status, r.text());
    (r.status, etag)
}

#[test]
fn fifty_conflicting_updates_one_wins_per_version_and_nothing_is_lost() {
    let server = Server::demo();
    let token = server.login("xx-admin");
    // The current version (a first, unconditional reminder answers with it).
    let (status, etag) = remind(&server.addr, &token, None, 0);
    assert_eq!(status, 200, "the first reminder");
    let v0 = etag.expect("ETag on a command's answer");
    let head0 = server.head_position();

    // Round 1: everyone sends If-Match: v0 at once.
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let outcomes: Vec<(u16, Option<u64>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|n| {
                let (barrier, addr, token) = (barrier.clone(), server.addr.clone(), token.clone());
                s.spawn(move || {
                    barrier.wait();
                    remind(&addr, &token, Some(v0), n + 1)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("client thread")).collect()
    });
    let wins: Vec<_> = outcomes.iter().filter(|(s, _)| *s == 200).collect();
    let conflicts = outcomes.iter().filter(|(s, _)| *s == 412 || *s == 409).count();
    assert_eq!(wins.len(), 1, "exactly one update of version {v0} may win: {outcomes:?}");
    assert_eq!(conflicts, CLIENTS - 1, "the others get 412/409: {outcomes:?}");
    assert_eq!(wins[0].1, Some(v0 + 1), "the winner's ETag is the next version");
    let head1 = server.head_position();
    assert_eq!(head1, head0 + 1, "exactly one event appended for the one success");

    // Round 2: everyone retries on a stale version until their reminder lands.
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let results: Vec<(usize, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|n| {
                let (barrier, addr, token) = (barrier.clone(), server.addr.clone(), token.clone());
                s.spawn(move || {
                    barrier.wait();
                    let mut version = v0 + 1;
                    let mut attempts = 0;
                    loop {
                        attempts += 1;
                        assert!(attempts <= 10 * CLIENTS, "client {n} never got through");
                        match remind(&addr, &token, Some(version), 100 + n) {
                            (200, Some(v)) => return (attempts, v),
                            (412 | 409, _) => {
                                // Learn the current version from the problem body or a fresh read.
                                let r = http(
                                    &addr,
                                    "POST",
                                    &format!("{FINDING}/remind"),
                                    &[
                                        ("Authorization", &format!("Bearer {token}")),
                                        ("Content-Type", "application/json"),
                                        ("If-Match", "\"0\""),
                                    ],
                                    Some(br#"{"message":"x"}"#),
                                );
                                assert!(r.status == 412 || r.status == 409, "{} {}", r.status, r.text());
                                version = r.json()["current_version"].as_u64().expect("current_version in a 412");
                            }
                            other => panic!("client {n}: unexpected {other:?}"),
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("client thread")).collect()
    });
    let mut versions: Vec<u64> = results.iter().map(|(_, v)| *v).collect();
    versions.sort_unstable();
    let expected: Vec<u64> = (v0 + 2..v0 + 2 + CLIENTS as u64).collect();
    assert_eq!(versions, expected, "each success got its own version, none twice, none skipped");
    assert_eq!(server.head_position(), head1 + CLIENTS as u64, "one event per success, nothing lost");

    // The stream itself holds exactly those reminders (as the auditor sees it).
    let auditor = server.login("xx-jiwei");
    let r = server.get(FINDING, Some(&auditor));
    assert_eq!(r.status, 200, "{}", r.text());
    let history = r.json()["history"].as_array().cloned().unwrap_or_default();
    if !history.is_empty() {
        let last = history.iter().filter_map(|h| h["version"].as_u64()).max();
        assert_eq!(last, Some(v0 + 1 + CLIENTS as u64), "the stream's last version");
    }
}
