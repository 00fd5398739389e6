//! A clock that jumps backwards: the server is restarted with its clock three days behind
//! (`DUCHA_TEST_CLOCK_OFFSET_SECONDS`, test-only). The log's times still never go backwards (a
//! later event is stamped no earlier than the one before it), and "as of" a time is still a prefix
//! of the log: as of two days ago shows none of the new writes, as of a moment between the first
//! writes shows exactly the ones before it.

use ducha_tests::{Server, ducha_ok, http};
use serde_json::json;

const FINDING: &str = "/api/v1/tenants/xxjd/inspections/2023-ideology/findings/xx-2023-f4";
const BACK: i64 = 3 * 24 * 3600;

fn remind(s: &Server, token: &str, message: &str) -> u64 {
    let r = s.post_json(&format!("{FINDING}/remind"), Some(token), &json!({ "message": message }));
    assert_eq!(r.status, 200, "{}", r.text());
    r.header("x-ducha-position").expect("X-Ducha-Position").parse().expect("position")
}

/// `(position, occurred_at)` of every event, in position order, read by Python's sqlite3.
fn times(s: &Server) -> Vec<(u64, String)> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys,json;c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro',uri=True);\
             print(json.dumps(c.execute('select position, occurred_at from events order by position').fetchall()))",
        ])
        .arg(s.data_dir.path().join("ducha.db"))
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("rows")
}

fn time_of(all: &[(u64, String)], position: u64) -> String {
    all.iter().find(|(p, _)| *p == position).map(|(_, t)| t.clone()).expect("event at position")
}

/// The finding's reminder count as of `at` (RFC 3339), or now.
fn reminders(s: &Server, token: &str, at: Option<&str>) -> u64 {
    let path = match at {
        Some(t) => format!("{FINDING}?as_of={}", t.replace('+', "%2B")),
        None => FINDING.to_owned(),
    };
    let auth = format!("Bearer {token}");
    let r = http(&s.addr, "GET", &path, &[("Authorization", &auth)], None);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    let history = r.json()["history"].as_array().cloned().unwrap_or_else(|| panic!("no history: {}", r.text()));
    history.iter().filter(|e| e["event_type"] == "ReminderIssued").count() as u64
}

#[test]
fn a_clock_jumping_back_neither_reorders_the_log_nor_breaks_as_of() {
    let mut server = Server::demo();
    let token = server.login("xx-admin");
    let initial = reminders(&server, &token, None);
    let before: Vec<u64> = (0..3).map(|i| remind(&server, &token, &format!("时钟正常时的催办{i}"))).collect();

    // The clock jumps three days back.
    let offset = (-BACK).to_string();
    server.restart(&[("DUCHA_TEST_CLOCK_OFFSET_SECONDS", offset.as_str())]);
    assert!(server.log().contains("DUCHA_TEST_CLOCK_OFFSET_SECONDS is set"), "the shifted clock is logged");
    let after: Vec<u64> = (0..3).map(|i| remind(&server, &token, &format!("时钟回拨后的催办{i}"))).collect();
    assert!(after[0] > before[2]);

    let all = times(&server);
    for pair in all.windows(2) {
        assert!(pair[1].1 >= pair[0].1, "the log's times go backwards at position {}: {pair:?}", pair[1].0);
    }
    let last_good = time_of(&all, before[2]);
    for p in &after {
        assert!(time_of(&all, *p) >= last_good, "written with the clock behind, stamped no earlier than before");
    }

    // "As of" is a prefix of the log.
    let two_days_ago = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    assert_eq!(reminders(&server, &token, Some(&two_days_ago)), initial, "as of two days ago: none of today's");
    let between = time_of(&all, before[1]);
    let at_between = reminders(&server, &token, Some(&between));
    assert_eq!(at_between, initial + 2, "as of the second write's time: the first two writes");
    assert_eq!(reminders(&server, &token, None), initial + 6, "now: all six");
    ducha_ok(server.data_dir.path(), &["verify"]);
}
