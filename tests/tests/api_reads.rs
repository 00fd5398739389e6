//! The read endpoints through the real binary on the demo data: the 整改台账 (filters, sort, pages,
//! "as of"), community scorecards, the district roll-up and rankings (JSON and CSV), and the auditor's
//! event log, chain verification, audit summary and diff — and who may read what.

use ducha_events::chain::{ChainFields, parse_hash};
use ducha_tests::{Response, Server};
use serde_json::Value;

const BOM: &str = "\u{feff}";

fn ok(r: Response) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("x-ducha-position").is_some_and(|p| p.parse::<u64>().is_ok()), "{:?}", r.headers);
    r.json()
}

fn problem(r: &Response, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/problem+json")), "{:?}", r.headers);
    r.json()
}

fn ids(page: &Value) -> Vec<String> {
    page["rows"].as_array().unwrap().iter().map(|r| r["finding_id"].as_str().unwrap().to_owned()).collect()
}

fn count(page: &Value, key: &str, value: &str) -> usize {
    page["rows"].as_array().unwrap().iter().filter(|r| r[key] == value).count()
}

#[test]
fn the_ledger_filters_sorts_pages_and_travels_in_time() {
    let s = Server::demo();
    let admin = s.login("xx-admin");
    // The whole ledger: the sample's five findings and the 2024 inspection's six; 东风社区's officer
    // sees their four.
    let whole = |token: &str| ok(s.get("/api/v1/tenants/xxjd/ledger", Some(token)))["total"].as_u64();
    assert_eq!(whole(&admin), Some(11));
    assert_eq!(whole(&s.login("xx-dongfeng")), Some(4));
    // From here on, the sample inspection's ledger (the filter in front of every query).
    let ledger = |query: &str, token: &str| {
        let q = query.strip_prefix('?').unwrap_or(query);
        let sep = if q.is_empty() { "" } else { "&" };
        s.get(&format!("/api/v1/tenants/xxjd/ledger?inspection=2023-ideology{sep}{q}"), Some(token))
    };

    // The sample: five findings, one verified (销号), one overdue (red).
    let all = ok(ledger("", &admin));
    assert_eq!((all["total"].as_u64(), all["page"].as_u64(), all["page_size"].as_u64()), (Some(5), Some(1), Some(50)));
    assert_eq!(ids(&all), ["xx-2023-f1", "xx-2023-f2", "xx-2023-f3", "xx-2023-f4", "xx-2023-f5"]);
    assert_eq!(count(&all, "status", "verified"), 1);
    assert_eq!(count(&all, "warning", "red"), 1);
    let f1 = &all["rows"][0];
    assert_eq!((f1["status_name"].as_str(), f1["verified_on"].as_str()), (Some("已销号"), Some("2024-03-20")));
    assert_eq!(f1["source"]["year"], 2023);
    assert_eq!(f1["community"]["name"], "全街道");

    // Filters.
    assert_eq!(ids(&ok(ledger("?warning=red", &admin))), ["xx-2023-f4"]);
    assert_eq!(ids(&ok(ledger("?status=verified", &admin))), ["xx-2023-f1"]);
    assert_eq!(ids(&ok(ledger("?status=unassigned", &admin))), ["xx-2023-f2", "xx-2023-f5"]);
    assert_eq!(ok(ledger("?year=2023", &admin))["total"], 5);
    assert_eq!(ok(ledger("?year=2024", &admin))["total"], 0);
    assert_eq!(ok(ledger("?category=theory", &admin))["total"], 1);
    assert_eq!(ok(ledger("?community=dongfeng", &admin))["total"], 0, "the sample's findings are cross-cutting");

    // Sorts: deadline (none last), warning (red first).
    let by_deadline = ids(&ok(ledger("?sort=deadline", &admin)));
    assert_eq!(by_deadline, ["xx-2023-f1", "xx-2023-f4", "xx-2023-f3", "xx-2023-f2", "xx-2023-f5"]);
    assert_eq!(ids(&ok(ledger("?sort=warning", &admin)))[0], "xx-2023-f4");

    // Pages: 序号 counts over the whole result.
    let p2 = ok(ledger("?sort=deadline&page=2&page_size=2", &admin));
    assert_eq!((p2["total"].as_u64(), ids(&p2)), (Some(5), vec!["xx-2023-f3".to_owned(), "xx-2023-f2".to_owned()]));
    assert_eq!((p2["rows"][0]["seq"].as_u64(), p2["page_size"].as_u64()), (Some(3), Some(2)));
    assert_eq!(ok(ledger("?page=9", &admin))["rows"], Value::Array(vec![]));
    assert_eq!(ok(ledger("?page_size=500", &admin))["total"], 5);

    // Bad values: 400 naming the parameter.
    for (query, field) in [
        ("?page_size=501", "page_size"),
        ("?page_size=0", "page_size"),
        ("?page_size=abc", "page_size"),
        ("?page=0", "page"),
        ("?status=done", "status"),
        ("?warning=purple", "warning"),
        ("?sort=random", "sort"),
        ("?year=23", "year"),
        ("?community=a%2Fb", "community"),
        ("?pagesize=10", "pagesize"),
    ] {
        assert_eq!(problem(&ledger(query, &admin), 400)["field"], field, "{query}");
    }
    assert_eq!(problem(&ledger("?as_of=yesterday", &admin), 400)["field"], "as_of");

    // As of the day before the first verification (2024-03-20): submitted, not yet verified.
    let before = ok(ledger("?as_of=2024-03-19T12:00:00%2B08:00", &admin));
    assert_eq!(before["total"], 5);
    assert_eq!(before["rows"][0]["status"], "submitted");
    assert_eq!(before["rows"][0]["verified_on"], Value::Null);
    assert_eq!(count(&before, "status", "verified"), 0);
    let after = ok(ledger("?as_of=2024-03-21T12:00:00%2B08:00", &admin));
    assert_eq!(after["rows"][0]["status"], "verified");
    // Before the inspection recorded anything, an empty ledger.
    assert_eq!(ok(ledger("?as_of=2023-06-01T00:00:00%2B08:00", &admin))["total"], 0);

    // Who may read it: the district and the tenant's auditor yes; a community officer only their own
    // community; another sub-district never.
    assert_eq!(ok(ledger("", &s.login("qu-xcb")))["total"], 5);
    assert_eq!(ok(ledger("", &s.login("xx-jiwei")))["total"], 5);
    let officer = s.login("xx-dongfeng");
    assert_eq!(ok(ledger("", &officer))["total"], 0, "forced to 东风社区, which has no finding in 2023");
    assert_eq!(ok(ledger("?community=dongfeng", &officer))["total"], 0);
    problem(&ledger("?community=heping", &officer), 403);
    let yy = s.login("yy-admin");
    problem(&ledger("", &yy), 403);
    problem(&s.get("/api/v1/tenants/xxjd/ledger", None), 401);
    problem(&ledger("", &s.login("yy-chaoyang")), 403);

    // Community scorecards.
    let cards = ok(s.get("/api/v1/tenants/xxjd/scorecards", Some(&admin)));
    let names: Vec<&str> = cards.as_array().unwrap().iter().map(|c| c["community"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["东风社区", "向阳社区", "和平社区", "建设社区", "友谊社区", "光明社区"]);
    // Every community was inspected in 2023 (the sample) and 2024.
    assert!(cards.as_array().unwrap().iter().all(|c| c["inspections"] == 2 && c["latest_max"] == 100), "{cards}");
    let y2023 = ok(s.get("/api/v1/tenants/xxjd/scorecards?year=2023", Some(&admin)));
    assert!(y2023.as_array().unwrap().iter().all(|c| c["inspections"] == 1 && c["latest_max"] == 100), "{y2023}");
    let none = ok(s.get("/api/v1/tenants/xxjd/scorecards?year=2022", Some(&admin)));
    assert!(none.as_array().unwrap().iter().all(|c| c["inspections"] == 0));
    let early = ok(s.get("/api/v1/tenants/xxjd/scorecards?as_of=2023-11-01T00:00:00%2B08:00", Some(&admin)));
    assert!(early.as_array().unwrap().iter().all(|c| c["latest_score"].is_null()), "scores wait for the conclusion");
    let own = ok(s.get("/api/v1/tenants/xxjd/scorecards", Some(&officer)));
    assert_eq!(own.as_array().unwrap().len(), 1);
    assert_eq!(own[0]["community"]["community_id"], "dongfeng");
    assert_eq!(problem(&s.get("/api/v1/tenants/xxjd/scorecards?year=abc", Some(&admin)), 400)["field"], "year");
    problem(&s.get("/api/v1/tenants/xxjd/scorecards", Some(&yy)), 403);
}

/// A CSV answer: BOM, CRLF lines, split on commas (the demo's names contain no comma or quote).
fn csv_rows(r: &Response) -> Vec<Vec<String>> {
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/csv")), "{:?}", r.headers);
    assert!(r.header("content-disposition").is_some_and(|c| c.contains(".csv")), "{:?}", r.headers);
    let text = String::from_utf8(r.body.clone()).expect("UTF-8");
    let body = text.strip_prefix(BOM).expect("a UTF-8 byte-order mark for Excel");
    assert!(body.ends_with("\r\n"));
    body.split("\r\n").filter(|l| !l.is_empty()).map(|l| l.split(',').map(str::to_owned).collect()).collect()
}

#[test]
fn the_district_rollup_and_rankings_as_json_and_csv() {
    let s = Server::demo();
    let officer = s.login("qu-xcb");
    let get = |path: &str, token: &str| s.get(path, Some(token));
    let csv = |path: &str, token: &str| s.request("GET", path, Some(token), &[("Accept", "text/csv")], None);

    let r = ok(get("/api/v1/districts/xxq/rollup", &officer));
    assert_eq!(r["district_name"], "XX区");
    let rows = r["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["XX街道", "YY街道", "ZZ街道"]);
    let xx = &rows[0]["metrics"];
    assert_eq!(
        (xx["inspections"].as_u64(), xx["findings"].as_u64(), xx["overdue"].as_u64()),
        // 2023's sample and 2024's inspection: 5 + 6 findings; overdue: the sample's (三) and
        // three of 2024's (one waits for verification past its deadline).
        (Some(2), Some(11), Some(4))
    );
    assert_eq!(xx["completion_rate"]["done"], 2);
    let total: u64 = rows.iter().map(|r| r["metrics"]["findings"].as_u64().unwrap()).sum();
    assert_eq!(r["totals"]["findings"].as_u64(), Some(total));
    assert_eq!(r["ranking_by_score"].as_array().unwrap().len(), 3);

    // The same as CSV: a Chinese header, one row per sub-district and the total.
    let table = csv_rows(&csv("/api/v1/districts/xxq/rollup?group_by=subdistrict", &officer));
    assert_eq!(&table[0][..6], ["街道编号", "街道", "督查次数", "覆盖社区数", "主要工作成效", "问题总数"]);
    assert!(table[0].iter().any(|h| h == "整改完成率(%)") && table[0].iter().any(|h| h == "已销号"));
    assert_eq!(table.len(), 1 + 3 + 1);
    assert_eq!(&table[1][..2], ["xxjd", "XX街道"]);
    assert_eq!(table[1][5], "11");
    assert_eq!(table[4][1], "合计");
    assert_eq!(table[4][5], total.to_string());
    assert!(table.iter().all(|row| row.len() == table[0].len()));
    // Without group_by the CSV is the same table.
    assert_eq!(csv_rows(&csv("/api/v1/districts/xxq/rollup", &officer)), table);

    let by_community = csv_rows(&csv("/api/v1/districts/xxq/rollup?group_by=community", &officer));
    assert_eq!(by_community[0][3], "社区");
    assert_eq!(by_community.len(), 1 + r["by_community"].as_array().unwrap().len());
    let by_month = csv_rows(&csv("/api/v1/districts/xxq/rollup?group_by=month&year=2023", &officer));
    assert_eq!(by_month[0], ["月份", "新增问题", "销号"]);
    let by_category = csv_rows(&csv("/api/v1/districts/xxq/rollup?group_by=category", &officer));
    assert_eq!(by_category[0][1], "问题类别");

    let bad = problem(&get("/api/v1/districts/xxq/rollup?group_by=street", &officer), 400);
    assert_eq!(bad["field"], "group_by");
    assert_eq!(problem(&get("/api/v1/districts/xxq/rollup?year=twenty", &officer), 400)["field"], "year");
    let png = s.request("GET", "/api/v1/districts/xxq/rollup", Some(&officer), &[("Accept", "image/png")], None);
    problem(&png, 406);

    // As of mid-2023 nothing had been inspected yet.
    let early = ok(get("/api/v1/districts/xxq/rollup?as_of=2023-06-01T00:00:00%2B08:00", &officer));
    assert_eq!((early["totals"]["findings"].as_u64(), early["totals"]["inspections"].as_u64()), (Some(0), Some(0)));

    // Rankings.
    let ranks = ok(get("/api/v1/districts/xxq/rankings", &officer));
    for key in ["by_score", "by_completion"] {
        let entries = ranks[key].as_array().unwrap();
        assert_eq!(entries.len(), 3, "{key}");
        assert_eq!(entries[0]["rank"], 1, "{key}");
    }
    assert_eq!(ranks["by_score"], r["ranking_by_score"]);
    let table = csv_rows(&csv("/api/v1/districts/xxq/rankings", &officer));
    assert_eq!(table[0], ["排名依据", "名次", "街道编号", "街道", "数值"]);
    assert_eq!(table.len(), 1 + 6);

    // Scope: the district's officer and auditor only; sub-district users (even auditors) never.
    ok(get("/api/v1/districts/xxq/rollup", &s.login("qu-jjw")));
    for user in ["xx-admin", "xx-jiwei", "xx-dongfeng", "yy-admin"] {
        let token = s.login(user);
        problem(&get("/api/v1/districts/xxq/rollup", &token), 403);
        problem(&get("/api/v1/districts/xxq/rankings", &token), 403);
    }
    problem(&get("/api/v1/districts/wwq/rollup", &officer), 403);
    problem(&get("/api/v1/districts/wwq/rankings", &officer), 403);
    problem(&get("/api/v1/districts/wwq/rollup", &s.login("admin")), 404);
}

fn events_page(s: &Server, token: &str, query: &str) -> Value {
    ok(s.get(&format!("/api/v1/tenants/xxjd/events{query}"), Some(token)))
}

/// Every event of xxjd, page by page.
fn all_events(s: &Server, token: &str, extra: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = events_page(s, token, &format!("?after={after}&limit=17{extra}"));
        out.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["next_after"].as_u64() {
            Some(next) => after = next,
            None => return out,
        }
    }
}

#[test]
fn auditors_read_the_log_verify_the_chain_and_diff_two_points() {
    let s = Server::demo();
    let auditor = s.login("qu-jjw");

    // The log, with envelopes and hashes; one hash recomputed here from the documented fields.
    let first = events_page(&s, &auditor, "?limit=5");
    let events = first["events"].as_array().unwrap();
    assert_eq!(events.len(), 5);
    assert_eq!(first["next_after"], events[4]["position"]);
    let seqs: Vec<u64> = events.iter().map(|e| e["tenant_seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(events[0]["prev_hash"], "0".repeat(64));
    for pair in events.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
    }
    let e = &events[1];
    for key in ["event_id", "stream", "event_type", "occurred_at", "correlation_id", "payload_text", "hash"] {
        assert!(e[key].as_str().is_some_and(|v| !v.is_empty()), "{key}: {e}");
    }
    assert!(e["payload"].is_object());
    assert_eq!(serde_json::from_str::<Value>(e["payload_text"].as_str().unwrap()).unwrap(), e["payload"]);
    let text = |k: &str| e[k].as_str().unwrap();
    let fields = ChainFields {
        tenant: text("tenant"),
        tenant_seq: e["tenant_seq"].as_u64().unwrap(),
        event_id: text("event_id"),
        stream: text("stream"),
        stream_version: e["stream_version"].as_u64().unwrap(),
        event_type: text("event_type"),
        schema_version: e["schema_version"].as_u64().unwrap() as u32,
        occurred_at: text("occurred_at"),
        actor_user: e["actor"]["user_id"].as_str().unwrap(),
        actor_role: e["actor"]["role"].as_str().unwrap(),
        correlation_id: text("correlation_id"),
        causation_id: e["causation_id"].as_str().unwrap_or(""),
        payload: text("payload_text"),
    };
    let prev = parse_hash(text("prev_hash")).unwrap();
    assert_eq!(hex(&fields.hash(&prev)), text("hash"));

    // All of it, page by page: a gap-free chain.
    let log = all_events(&s, &auditor, "");
    let n = log.len() as u64;
    assert!(n > 50, "{n}");
    assert!(log.iter().enumerate().all(|(i, e)| e["tenant_seq"] == i as u64 + 1 && e["tenant"] == "xxjd"));
    problem(&s.get("/api/v1/tenants/xxjd/events?limit=1001", Some(&auditor)), 400);
    assert_eq!(problem(&s.get("/api/v1/tenants/xxjd/events?after=-1", Some(&auditor)), 400)["field"], "after");

    // as_of / at_position bound the log.
    let cut = log[29]["position"].as_u64().unwrap();
    let bounded = all_events(&s, &auditor, &format!("&at_position={cut}"));
    assert_eq!(bounded.len(), 30);
    assert_eq!(bounded, log[..30]);
    let before_2024 = all_events(&s, &auditor, "&as_of=2024-01-01T00:00:00%2B08:00");
    assert!(before_2024.iter().all(|e| e["occurred_at"].as_str().unwrap() <= "2023-12-31T16:00:00.000000Z"));
    assert!(before_2024.len() < log.len());

    // One stream.
    let stream = ok(s.get("/api/v1/tenants/xxjd/streams/finding-xx-2023-f1/events", Some(&auditor)));
    let types: Vec<&str> =
        stream["events"].as_array().unwrap().iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"RectificationAssigned"));
    assert_eq!(types.last(), Some(&"RectificationVerified"));
    assert!(stream["events"].as_array().unwrap().iter().all(|e| e["stream"] == "xxjd/finding-xx-2023-f1"));
    let paged = ok(s.get("/api/v1/tenants/xxjd/streams/finding-xx-2023-f1/events?limit=1&after=1", Some(&auditor)));
    assert_eq!((paged["events"][0]["stream_version"].as_u64(), paged["next_after"].as_u64()), (Some(2), Some(2)));
    let then = ok(s.get(
        "/api/v1/tenants/xxjd/streams/finding-xx-2023-f1/events?as_of=2024-03-19T00:00:00%2B08:00",
        Some(&auditor),
    ));
    assert!(then["events"].as_array().unwrap().iter().all(|e| e["event_type"] != "RectificationVerified"));
    problem(&s.get("/api/v1/tenants/xxjd/streams/finding-nope/events", Some(&auditor)), 404);
    problem(&s.get("/api/v1/tenants/xxjd/streams/a.b/events", Some(&auditor)), 400);

    // The chain verifies; with at_position, up to there.
    let chain = ok(s.get("/api/v1/tenants/xxjd/chain", Some(&auditor)));
    assert_eq!(chain["ok"], true);
    assert_eq!(chain["events"].as_u64(), Some(n));
    assert_eq!(chain["head_hash"], log[log.len() - 1]["hash"]);
    assert_eq!(chain["first_bad_event"], Value::Null);
    let part = ok(s.get(&format!("/api/v1/tenants/xxjd/chain?at_position={cut}"), Some(&auditor)));
    assert_eq!((part["ok"].as_bool(), part["events"].as_u64()), (Some(true), Some(30)));
    assert_eq!(part["head_hash"], log[29]["hash"]);

    // The audit summary.
    let summary = ok(s.get("/api/v1/tenants/xxjd/audit", Some(&auditor)));
    assert_eq!((summary["events"].as_u64(), summary["last_tenant_seq"].as_u64()), (Some(n), Some(n)));
    let by_type: u64 = summary["by_type"].as_array().unwrap().iter().map(|t| t["count"].as_u64().unwrap()).sum();
    assert_eq!(by_type, n);
    let early = ok(s.get(&format!("/api/v1/tenants/xxjd/audit?at_position={cut}"), Some(&auditor)));
    assert_eq!(early["events"], 30);

    // The diff between two positions lists exactly the tenant's events in between.
    let (from, to) = (log[9]["position"].as_u64().unwrap(), log[24]["position"].as_u64().unwrap());
    let d = ok(s.get(&format!("/api/v1/tenants/xxjd/diff?from={from}&to={to}"), Some(&auditor)));
    let listed: Vec<&Value> = d["events"].as_array().unwrap().iter().map(|e| &e["event_id"]).collect();
    let expected: Vec<&Value> = log[10..25].iter().map(|e| &e["event_id"]).collect();
    assert_eq!(listed, expected);
    assert_eq!((d["events_total"].as_u64(), d["events_truncated"].as_bool()), (Some(15), Some(false)));
    assert_eq!((d["from"]["position"].as_u64(), d["to"]["position"].as_u64()), (Some(from), Some(to)));
    assert_eq!(d["events"][0]["actor"], log[10]["actor"]);
    let d = ok(s.get(&format!("/api/v1/tenants/xxjd/diff?from={from}&to={to}&limit=4"), Some(&auditor)));
    assert_eq!((d["events"].as_array().unwrap().len(), d["events_truncated"].as_bool()), (4, Some(true)));

    // Across the first verification, by time: the event, the numbers and the ledger row that changed.
    let d = ok(s.get(
        "/api/v1/tenants/xxjd/diff?from=2024-03-19T00:00:00%2B08:00&to=2024-03-21T00:00:00%2B08:00",
        Some(&auditor),
    ));
    let types: Vec<&str> = d["events"].as_array().unwrap().iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(types, ["RectificationVerified"]);
    assert_eq!(d["events"][0]["stream"], "xxjd/finding-xx-2023-f1");
    let change = |metric: &str| {
        d["changes"].as_array().unwrap().iter().find(|c| c["metric"] == metric).cloned().unwrap_or(Value::Null)
    };
    assert_eq!(
        (change("status.verified")["before"].as_i64(), change("status.verified")["after"].as_i64()),
        (Some(0), Some(1))
    );
    assert_eq!(change("findings_open")["delta"], -1);
    assert_eq!(change("findings_total"), Value::Null, "unchanged numbers are left out");
    let rows = d["ledger_changes"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0]["finding_id"].as_str(), rows[0]["change"].as_str()), (Some("xx-2023-f1"), Some("changed")));
    assert_eq!(
        (rows[0]["status_before"].as_str(), rows[0]["status_after"].as_str()),
        (Some("submitted"), Some("verified"))
    );
    assert_eq!(d["dashboard_before"]["tenant_id"], "xxjd");
    assert_eq!(problem(&s.get("/api/v1/tenants/xxjd/diff", Some(&auditor)), 400)["field"], "from");
    assert_eq!(
        problem(&s.get(&format!("/api/v1/tenants/xxjd/diff?from={to}&to={from}"), Some(&auditor)), 400)["field"],
        "from"
    );
    assert_eq!(problem(&s.get("/api/v1/tenants/xxjd/diff?from=last-week", Some(&auditor)), 400)["field"], "from");

    // The tenant's own auditor reads its log, not another's; nobody else reads raw history (the rule
    // table gives ReadAudit to auditors only).
    let jiwei = s.login("xx-jiwei");
    ok(s.get("/api/v1/tenants/xxjd/chain", Some(&jiwei)));
    problem(&s.get("/api/v1/tenants/yyjd/chain", Some(&jiwei)), 403);
    for user in ["xx-admin", "xx-dongfeng", "qu-xcb", "yy-admin"] {
        let token = s.login(user);
        for path in [
            "/api/v1/tenants/xxjd/events",
            "/api/v1/tenants/xxjd/streams/tenant/events",
            "/api/v1/tenants/xxjd/chain",
            "/api/v1/tenants/xxjd/audit",
            "/api/v1/tenants/xxjd/diff?from=1",
        ] {
            problem(&s.get(path, Some(&token)), 403);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `gzip -dc`: an independent reader of what the server compressed.
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("gzip")
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip is installed");
    child.stdin.take().expect("stdin").write_all(bytes).expect("to gzip");
    let out = child.wait_with_output().expect("gzip ran");
    assert!(out.status.success(), "gzip -dc failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// The live roll-up keeps each sub-district's part until that sub-district changes (issue 11): after
/// a write to one sub-district the live answer must still equal a fresh fold of the log at the same
/// position, for every year filter; and it is sent gzipped to clients that accept gzip.
#[test]
fn the_live_rollup_follows_writes_and_is_gzipped_on_request() {
    let s = Server::demo();
    let officer = s.login("qu-xcb");
    let day = chrono::Utc::now().date_naive().pred_opt().expect("a date");
    let year = chrono::Datelike::year(&day);
    let live_and_fresh = |query: &str| {
        let live = s.get(&format!("/api/v1/districts/xxq/rollup{query}"), Some(&officer));
        let position = live.header("x-ducha-position").expect("X-Ducha-Position").to_owned();
        let sep = if query.is_empty() { "?" } else { "&" };
        let fresh =
            ok(s.get(&format!("/api/v1/districts/xxq/rollup{query}{sep}at_position={position}"), Some(&officer)));
        (ok(live), fresh)
    };
    let inspections = |r: &Value, row: usize| r["rows"][row]["metrics"]["inspections"].as_u64();
    let queries = [String::new(), format!("?year={year}"), "?year=2023".to_owned()];
    // Warm the kept parts of every sub-district, for each query.
    let mut before = Vec::new();
    for q in &queries {
        let (live, fresh) = live_and_fresh(q);
        assert_eq!(live, fresh, "before the write, {q:?}");
        before.push(live);
    }

    // A new inspection in XX街道 only.
    s.plan_dongfeng_inspection("对下级社区督查意识形态工作情况（汇总测试）", day);

    for (q, before) in queries.iter().zip(&before) {
        let (live, fresh) = live_and_fresh(q);
        assert_eq!(live, fresh, "after the write, {q:?}");
        let grew = q != "?year=2023";
        let (xx_before, xx_after) = (inspections(before, 0).unwrap(), inspections(&live, 0).unwrap());
        assert_eq!(xx_after, xx_before + u64::from(grew), "XX街道, {q:?}");
        assert_eq!(live["rows"][1], before["rows"][1], "YY街道 did not change, {q:?}");
    }

    // gzip when accepted: the same JSON, smaller; Vary names both negotiated headers.
    let plain = s.request("GET", "/api/v1/districts/xxq/rollup", Some(&officer), &[], None);
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), None);
    for accept in ["gzip", "gzip, deflate, br", "br;q=1, gzip;q=0.5", "*"] {
        let gz = s.request("GET", "/api/v1/districts/xxq/rollup", Some(&officer), &[("Accept-Encoding", accept)], None);
        assert_eq!(gz.status, 200, "{accept}");
        assert_eq!(gz.header("content-encoding"), Some("gzip"), "{accept}");
        let vary = gz.header("vary").unwrap_or_default().to_ascii_lowercase();
        assert!(vary.contains("accept-encoding") && vary.contains("accept"), "{vary}");
        assert!(gz.body.len() < plain.body.len(), "{accept}: {} ≥ {}", gz.body.len(), plain.body.len());
        assert_eq!(gunzip(&gz.body), plain.body, "{accept}");
    }
    for accept in ["identity", "br", "gzip;q=0", "gzip;q=0, *", "*;q=0", "gzip;q=zero"] {
        let r = s.request("GET", "/api/v1/districts/xxq/rollup", Some(&officer), &[("Accept-Encoding", accept)], None);
        assert_eq!(r.status, 200, "{accept}");
        assert_eq!(r.header("content-encoding"), None, "{accept}");
        assert_eq!(r.body, plain.body, "{accept}");
    }
}
