//! `ducha demo`, `rollup`, `verify` and `replay` on a real data directory, through the real binary.

use ducha_tests::{ducha, ducha_ok};
use serde_json::Value;

fn rollup_json(dir: &std::path::Path, extra: &[&str]) -> Value {
    let mut args = vec!["rollup", "--district", "xxq", "--json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&ducha_ok(dir, &args)).expect("rollup --json is JSON")
}

fn row<'a>(rollup: &'a Value, tenant: &str) -> &'a Value {
    rollup["rows"].as_array().unwrap().iter().find(|r| r["tenant_id"] == tenant).expect("tenant row")
}

fn status(metrics: &Value, status: &str) -> u64 {
    metrics["rectifications_by_status"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == status)
        .map(|s| s["count"].as_u64().unwrap())
        .sum()
}

fn total_events(dir: &std::path::Path) -> u64 {
    let v: Value = serde_json::from_str(&ducha_ok(dir, &["verify", "--json"])).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    v["tenants"].as_array().unwrap().iter().map(|t| t["events"].as_u64().unwrap()).sum()
}

#[test]
fn demo_loads_the_sample_once_and_the_rollup_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = ducha_ok(dir.path(), &["demo"]);
    assert!(out.contains("xx-admin") && out.contains("ducha-demo"), "demo prints logins: {out}");
    let events = total_events(dir.path());
    assert!(events > 200, "demo wrote {events} events");

    // Loading twice adds nothing.
    let again = ducha_ok(dir.path(), &["demo"]);
    assert!(again.contains("未重复加载"), "{again}");
    assert_eq!(total_events(dir.path()), events);

    // The sample's year (XX街道's 2024 inspection is checked in tests/tests/self_inspections.rs and
    // api_reads.rs).
    let r = rollup_json(dir.path(), &["--year", "2023"]);
    assert_eq!(r["district_name"], "XX区");
    assert_eq!(r["rows"].as_array().unwrap().len(), 3, "three sub-districts");
    let xx = &row(&r, "xxjd")["metrics"];
    assert_eq!(xx["inspections"], 1);
    assert_eq!(xx["communities_covered"], 6);
    assert_eq!(xx["achievements"], 3);
    assert_eq!(xx["findings"], 5);
    let categories: Vec<&str> =
        xx["findings_by_category"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    for c in ["理论学习", "督查自查", "主体责任", "舆情研判", "队伍建设"] {
        assert!(categories.contains(&c), "category {c} in {categories:?}");
    }
    // The three measures: one verified, one open (returned, then extended), one overdue.
    assert_eq!(status(xx, "verified"), 1);
    assert_eq!(status(xx, "unassigned"), 2);
    assert_eq!(xx["overdue"], 1);
    assert_eq!(xx["completion_rate"]["done"], 1);
    assert_eq!(xx["completion_rate"]["of"], 3);

    // Totals are the sum of the rows.
    let sum: u64 = r["rows"].as_array().unwrap().iter().map(|r| r["metrics"]["findings"].as_u64().unwrap()).sum();
    assert_eq!(r["totals"]["findings"].as_u64().unwrap(), sum);

    // The table form names the sub-districts.
    let table = ducha_ok(dir.path(), &["rollup", "--district", "xxq"]);
    assert!(table.contains("XX街道") && table.contains("YY街道") && table.contains("合计"), "{table}");
}

#[test]
fn rollup_as_of_shows_the_state_before_a_step() {
    let dir = tempfile::tempdir().unwrap();
    ducha_ok(dir.path(), &["demo"]);
    // The first measure was verified on 2024-03-20 (Asia/Shanghai).
    let before = rollup_json(dir.path(), &["--as-of", "2024-03-19T12:00:00+08:00"]);
    let after = rollup_json(dir.path(), &["--as-of", "2024-03-21T12:00:00+08:00"]);
    assert_eq!(status(&row(&before, "xxjd")["metrics"], "verified"), 0);
    assert_eq!(status(&row(&after, "xxjd")["metrics"], "verified"), 1);
    assert_eq!(before["today"], "2024-03-19");
    // Before the inspection was planned, XX街道 had no inspection at all.
    let early = rollup_json(dir.path(), &["--as-of", "2023-06-01T00:00:00+08:00"]);
    assert_eq!(row(&early, "xxjd")["metrics"]["inspections"], 0);
    // By position: position 1 is the first platform event; no district exists yet.
    let out = ducha(dir.path(), &["rollup", "--district", "xxq", "--at-position", "1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("未找到区"));
}

#[test]
fn replay_rebuilds_and_reports_a_rate() {
    let dir = tempfile::tempdir().unwrap();
    ducha_ok(dir.path(), &["demo"]);
    let before = ducha_ok(dir.path(), &["rollup", "--district", "xxq", "--json"]);
    let out = ducha_ok(dir.path(), &["replay"]);
    assert!(out.contains("事件/秒") && out.contains("events/s"), "{out}");
    let after = ducha_ok(dir.path(), &["rollup", "--district", "xxq", "--json"]);
    // `today` may move across midnight between the two calls; compare everything else.
    let strip = |s: &str| {
        let mut v: Value = serde_json::from_str(s).unwrap();
        v["today"] = Value::Null;
        v
    };
    assert_eq!(strip(&before), strip(&after));
}
