//! The sample scenario's follow-up (整改) through HTTP only, against the real `ducha serve --demo`:
//! assign, upload evidence, report progress, submit, return, report again, resubmit, verify — with
//! the ledger and dashboard checked after each step and an "as of" view before the verification.
//! Also: a community officer cannot act on a cross-cutting finding; evidence limits, types, download
//! and tampering; self-inspections; the live event stream.

use ducha_tests::{Response, Server, read_until};
use serde_json::{Value, json};
use std::time::Duration;

const TENANT: &str = "/api/v1/tenants/xxjd";
const F2: &str = "/api/v1/tenants/xxjd/inspections/2023-ideology/findings/xx-2023-f2";
const F5: &str = "/api/v1/tenants/xxjd/inspections/2023-ideology/findings/xx-2023-f5";
/// Small enough to test 413 without sending megabytes.
const MAX_EVIDENCE: usize = 64 * 1024;

fn start() -> Server {
    Server::start(true, &[("DUCHA_EVIDENCE_MAX_BYTES", &MAX_EVIDENCE.to_string())])
}

fn pdf() -> Vec<u8> {
    let mut b =
        b"%PDF-1.4\n% \xe6\x95\xb4\xe6\x94\xb9\xe4\xbd\x90\xe8\xaf\x81\n1 0 obj << /Type /Catalog >> endobj\n".to_vec();
    b.extend((0..2000u32).map(|i| (i % 251) as u8));
    b.extend_from_slice(b"\n%%EOF\n");
    b
}

fn multipart(filename: &str, content_type: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----ducha-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
             Content-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn upload(s: &Server, token: &str, filename: &str, content_type: &str, bytes: &[u8]) -> Response {
    let (ct, body) = multipart(filename, content_type, bytes);
    s.request("POST", &format!("{TENANT}/evidence"), Some(token), &[("Content-Type", &ct)], Some(&body))
}

fn post(s: &Server, token: &str, path: &str, body: Value) -> Response {
    s.post_json(path, Some(token), &body)
}

fn ok(r: &Response, what: &str) -> Value {
    assert!((200..300).contains(&r.status), "{what}: {} {}", r.status, r.text());
    r.json()
}

/// The finding's 整改台账 row (`query` starts with `&`). Before the ledger endpoint exists the
/// finding endpoint's copy of the row stands in (it is built by the same projection query).
fn ledger_row(s: &Server, token: &str, finding: &str, query: &str) -> Value {
    let r = s.get(&format!("{TENANT}/ledger?inspection=2023-ideology&page_size=100{query}"), Some(token));
    if r.status == 404 && r.json()["code"] == "route_not_found" {
        let path = format!("{TENANT}/inspections/2023-ideology/findings/{finding}?{}", query.trim_start_matches('&'));
        return ok(&s.get(&path, Some(token)), "finding")["finding"].clone();
    }
    let page = ok(&r, "ledger");
    page["rows"].as_array().unwrap().iter().find(|row| row["finding_id"] == finding).cloned().expect("ledger row")
}

fn status_count(dashboard: &Value, status: &str) -> u64 {
    dashboard["rectifications_by_status"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["status"] == status)
        .map_or(0, |s| s["count"].as_u64().unwrap())
}

fn dashboard(s: &Server, token: &str, query: &str) -> Value {
    ok(&s.get(&format!("{TENANT}/dashboard{query}"), Some(token)), "dashboard")
}

/// Checks the finding, its ledger row and the dashboard after a step.
fn expect_status(s: &Server, token: &str, status: &str, base: &Value, delta: &[(&str, i64)]) {
    let detail = ok(&s.get(F2, Some(token)), "finding");
    assert_eq!(detail["finding"]["status"], status, "{detail}");
    assert_eq!(ledger_row(s, token, "xx-2023-f2", "")["status"], status);
    let now = dashboard(s, token, "");
    for (st, d) in delta {
        assert_eq!(status_count(&now, st) as i64, status_count(base, st) as i64 + d, "{st} after → {status}");
    }
}

#[test]
fn rectification_follow_up_through_http() {
    let s = start();
    let admin = s.login("xx-admin");
    let officer = s.login("xx-dongfeng");
    let base = dashboard(&s, &admin, "");
    let before = ok(&s.get(F2, Some(&admin)), "finding before");
    assert_eq!(before["finding"]["status"], "unassigned");
    assert_eq!(before["finding"]["community"]["community_id"], Value::Null, "xx-2023-f2 is cross-cutting");

    // 交办 with a future deadline.
    let deadline = (chrono::Utc::now() + chrono::Duration::days(60)).date_naive().to_string();
    let r = post(
        &s,
        &admin,
        &format!("{F2}/assign"),
        json!({"title": "持续抓好意识形态责任制落实", "measure": "严格执行《实施办法》，把意识形态工作纳入党建考核。",
               "responsible_unit": "街道党政办", "leader": "张书记", "person": "刘干事", "deadline": deadline}),
    );
    let assigned = ok(&r, "assign");
    assert_eq!(r.header("etag"), Some(format!("\"{}\"", assigned["version"]).as_str()));
    expect_status(&s, &admin, "assigned", &base, &[("unassigned", -1), ("assigned", 1)]);

    // A community officer cannot act on the cross-cutting finding: 403 and nothing appended.
    let head = s.head_position();
    let r = post(&s, &officer, &format!("{F2}/progress"), json!({"text": "社区已开展学习"}));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let r = post(&s, &officer, &format!("{F2}/verify"), json!({}));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(s.head_position(), head, "a denied write appends nothing");

    // Evidence: upload a PDF, twice (same reference, nothing new stored).
    let bytes = pdf();
    let r = upload(&s, &admin, "整改台账佐证.pdf", "application/pdf", &bytes);
    assert_eq!(r.status, 201, "{}", r.text());
    let evidence = r.json();
    assert_eq!(evidence["size"], bytes.len());
    assert_eq!(evidence["content_type"], "application/pdf");
    assert_eq!(evidence["filename"], "整改台账佐证.pdf");
    let sha = evidence["sha256"].as_str().unwrap().to_owned();
    let again = upload(&s, &admin, "整改台账佐证.pdf", "application/pdf", &bytes);
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["sha256"], sha.as_str());

    // Progress citing it, with the version last seen.
    let r = s.request(
        "POST",
        &format!("{F2}/progress"),
        Some(&admin),
        &[("Content-Type", "application/json"), ("If-Match", &format!("\"{}\"", assigned["version"]))],
        Some(json!({"text": "已召开专题会议，制定责任清单。", "evidence": [evidence]}).to_string().as_bytes()),
    );
    let progressed = ok(&r, "progress");
    expect_status(&s, &admin, "in_progress", &base, &[("unassigned", -1), ("in_progress", 1)]);
    let row = ledger_row(&s, &admin, "xx-2023-f2", "");
    assert_eq!(row["evidence"][0]["sha256"], sha.as_str());
    assert_eq!(row["latest_progress"], "已召开专题会议，制定责任清单。");

    // A stale If-Match is refused (412 with the current version) and changes nothing.
    let r = s.request(
        "POST",
        &format!("{F2}/submit"),
        Some(&admin),
        &[("Content-Type", "application/json"), ("If-Match", &format!("\"{}\"", assigned["version"]))],
        Some(json!({"summary": "整改完成"}).to_string().as_bytes()),
    );
    assert_eq!(r.status, 412, "{}", r.text());
    assert_eq!(r.json()["current_version"], progressed["version"]);

    // Citing evidence never uploaded to this tenant is refused.
    let r = post(
        &s,
        &admin,
        &format!("{F2}/progress"),
        json!({"text": "补充材料", "evidence": [{"sha256": "0".repeat(64), "filename": "x.pdf",
               "content_type": "application/pdf", "size": 3}]}),
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["code"], "evidence_missing");

    // Submit, return with a reason, report again, resubmit.
    ok(&post(&s, &admin, &format!("{F2}/submit"), json!({"summary": "整改已完成，申请销号。"})), "submit");
    expect_status(&s, &admin, "submitted", &base, &[("unassigned", -1), ("submitted", 1)]);
    ok(&post(&s, &admin, &format!("{F2}/return"), json!({"reason": "佐证材料不全，请补充会议记录。"})), "return");
    expect_status(&s, &admin, "returned", &base, &[("unassigned", -1), ("returned", 1)]);
    ok(
        &post(&s, &admin, &format!("{F2}/progress"), json!({"text": "已补充会议记录。", "evidence": [evidence]})),
        "progress 2",
    );
    expect_status(&s, &admin, "in_progress", &base, &[("unassigned", -1), ("in_progress", 1)]);
    // An Idempotency-Key retry gets the first answer and appends nothing.
    let resubmit = |key: &str| {
        s.request(
            "POST",
            &format!("{F2}/submit"),
            Some(&admin),
            &[("Content-Type", "application/json"), ("Idempotency-Key", key)],
            Some(json!({"summary": "补充后再次申请销号。"}).to_string().as_bytes()),
        )
    };
    let first = resubmit("resubmit-xx-2023-f2");
    ok(&first, "resubmit");
    let head = s.head_position();
    let retry = resubmit("resubmit-xx-2023-f2");
    assert_eq!(retry.status, first.status);
    assert_eq!(retry.json(), first.json());
    assert_eq!(s.head_position(), head);
    expect_status(&s, &admin, "submitted", &base, &[("unassigned", -1), ("submitted", 1)]);

    // 销号; "as of" just before shows the state before it.
    std::thread::sleep(Duration::from_millis(20));
    let before_verify = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    std::thread::sleep(Duration::from_millis(20));
    ok(&post(&s, &admin, &format!("{F2}/verify"), json!({"comment": "材料齐全，同意销号。"})), "verify");
    expect_status(&s, &admin, "verified", &base, &[("unassigned", -1), ("verified", 1)]);
    let now = dashboard(&s, &admin, "");
    assert_eq!(now["completion_rate"]["done"].as_u64().unwrap(), base["completion_rate"]["done"].as_u64().unwrap() + 1);
    assert_eq!(now["completion_rate"]["of"].as_u64().unwrap(), base["completion_rate"]["of"].as_u64().unwrap() + 1);
    let then = dashboard(&s, &admin, &format!("?as_of={before_verify}"));
    assert_eq!(status_count(&then, "submitted"), status_count(&base, "submitted") + 1, "{then}");
    assert_eq!(status_count(&then, "verified"), status_count(&base, "verified"));
    assert_eq!(then["completion_rate"]["done"], base["completion_rate"]["done"]);
    let then = ok(&s.get(&format!("{F2}?as_of={before_verify}"), Some(&admin)), "finding as of");
    assert_eq!(then["finding"]["status"], "submitted");
    assert_eq!(ledger_row(&s, &admin, "xx-2023-f2", &format!("&as_of={before_verify}"))["status"], "submitted");

    // The history tells the whole story, each step attributed.
    let detail = ok(&s.get(F2, Some(&admin)), "finding");
    let types: Vec<&str> =
        detail["history"].as_array().unwrap().iter().map(|h| h["event_type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "RectificationAssigned",
            "ProgressReported",
            "RectificationSubmitted",
            "RectificationReturned",
            "ProgressReported",
            "RectificationSubmitted",
            "RectificationVerified"
        ]
    );
    assert_eq!(detail["history"][3]["data"]["reason"], "佐证材料不全，请补充会议记录。");
    assert_eq!(detail["version"], 7);
    assert_eq!(s.get(F2, Some(&admin)).header("etag"), Some("\"7\""));
    // The community officer cannot read the cross-cutting finding either.
    assert_eq!(s.get(F2, Some(&officer)).status, 403);
    // Another tenant learns nothing, not even whether a finding exists.
    let other = s.login("yy-admin");
    assert_eq!(s.get(F2, Some(&other)).status, 403);
    assert_eq!(s.get(&F2.replace("xx-2023-f2", "no-such-finding"), Some(&other)).status, 403);
    assert_eq!(s.get(&F2.replace("xx-2023-f2", "no-such-finding"), Some(&admin)).status, 404);
    // Nor act on a closed one, as admin.
    assert_eq!(post(&s, &admin, &format!("{F2}/progress"), json!({"text": "再报"})).status, 409);
}

#[test]
fn evidence_limits_types_download_and_tampering() {
    let s = start();
    let admin = s.login("xx-admin");
    let other = s.login("yy-admin");

    // Wrong type → 415 (declared type, and content that does not match its declared type).
    let r = upload(&s, &admin, "tool.exe", "application/x-msdownload", b"MZ\x90\x00");
    assert_eq!(r.status, 415, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let r = upload(&s, &admin, "fake.pdf", "application/pdf", b"MZ\x90\x00 not a pdf");
    assert_eq!(r.status, 415, "{}", r.text());
    // Not multipart at all → 415.
    let r = s.post_json(&format!("{TENANT}/evidence"), Some(&admin), &json!({"file": "x"}));
    assert_eq!(r.status, 415, "{}", r.text());
    // Too large → 413 (declared length), and just over the limit (counted bytes).
    let mut big = pdf();
    big.resize(MAX_EVIDENCE * 3, b'x');
    let r = upload(&s, &admin, "big.pdf", "application/pdf", &big);
    assert_eq!(r.status, 413, "{}", r.text());
    big.truncate(MAX_EVIDENCE + 1);
    let r = upload(&s, &admin, "big.pdf", "application/pdf", &big);
    assert_eq!(r.status, 413, "{}", r.text());
    // Not signed in → 401.
    let (ct, body) = multipart("a.txt", "text/plain", b"hello");
    let r = s.request("POST", &format!("{TENANT}/evidence"), None, &[("Content-Type", &ct)], Some(&body));
    assert_eq!(r.status, 401);

    // Types by extension when the part says octet-stream; download gives identical bytes.
    let text = "整改说明：已完成。\n".repeat(50).into_bytes();
    let r = upload(&s, &admin, "说明.txt", "application/octet-stream", &text);
    assert_eq!(r.status, 201, "{}", r.text());
    let sha = r.json()["sha256"].as_str().unwrap().to_owned();
    let location = r.header("location").unwrap().to_owned();
    assert_eq!(location, format!("{TENANT}/evidence/{sha}"));
    let d = s.get(&location, Some(&admin));
    assert_eq!(d.status, 200, "{}", d.text());
    assert_eq!(d.body, text);
    assert_eq!(d.header("content-type"), Some("text/plain"));
    assert!(d.header("content-disposition").unwrap().contains("filename*=UTF-8''"));
    // Auditors of the tenant may read it; another tenant may not, not even with its own path.
    let auditor = s.login("xx-jiwei");
    assert_eq!(s.get(&location, Some(&auditor)).status, 200);
    assert_eq!(s.get(&location, Some(&other)).status, 403);
    assert_eq!(s.get(&format!("/api/v1/tenants/yyjd/evidence/{sha}"), Some(&other)).status, 404);
    // A community officer may not download evidence their community's findings do not cite.
    let officer = s.login("xx-dongfeng");
    assert_eq!(s.get(&location, Some(&officer)).status, 403);
    // Bad hash → 400; unknown hash → 404.
    assert_eq!(s.get(&format!("{TENANT}/evidence/not-a-hash"), Some(&admin)).status, 400);
    assert_eq!(s.get(&format!("{TENANT}/evidence/{}", "a".repeat(64)), Some(&admin)).status, 404);

    // Tampered on disk → a clear 409, never the changed bytes.
    let file = s.data_dir.path().join("evidence").join("xxjd").join(&sha[..2]).join(&sha[2..]);
    assert!(file.is_file(), "stored at {}", file.display());
    std::fs::write(&file, b"changed behind our back").unwrap();
    let r = s.get(&location, Some(&admin));
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["code"], "evidence_corrupt");
    // Uploading the original again repairs it.
    assert_eq!(upload(&s, &admin, "说明.txt", "text/plain", &text).status, 201);
    assert_eq!(s.get(&location, Some(&admin)).body, text);
}

#[test]
fn self_inspections_by_community() {
    let s = start();
    let officer = s.login("xx-dongfeng");
    let admin = s.login("xx-admin");
    let path = format!("{TENANT}/self-inspections");
    let r = post(
        &s,
        &officer,
        &path,
        json!({"community_id": "dongfeng", "year": 2024, "title": "东风社区2024年度自查报告", "text": "对照细则逐项自查。"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let location = r.header("location").unwrap().to_owned();
    let one = ok(&s.get(&location, Some(&officer)), "one");
    assert_eq!(one["text"], "对照细则逐项自查。");
    // Not for another community.
    let head = s.head_position();
    let r = post(&s, &officer, &path, json!({"community_id": "xiangyang", "year": 2024, "text": "代报"}));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(s.head_position(), head);
    // The officer sees only their community's; the admin sees all; year filter.
    let mine = ok(&s.get(&path, Some(&officer)), "list");
    assert!(mine["items"].as_array().unwrap().iter().all(|i| i["community"]["community_id"] == "dongfeng"));
    assert_eq!(mine["items"].as_array().unwrap().len(), 3, "{mine}");
    // The demo's 2024 report in the official form and this one.
    let all = ok(&s.get(&format!("{path}?year=2024"), Some(&admin)), "list");
    assert_eq!(all["items"].as_array().unwrap().len(), 2, "{all}");
    assert_eq!(s.get(&path, Some(&s.login("yy-admin"))).status, 403);
}

fn open_live(s: &Server, token: &str, last_event_id: Option<u64>) -> (std::net::TcpStream, Vec<u8>) {
    s.open_live("xxjd", token, last_event_id)
}

#[test]
fn live_stream_sends_new_events_and_resumes() {
    let s = start();
    let admin = s.login("xx-admin");
    let (mut stream, mut buf) = open_live(&s, &admin, None);

    let deadline = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive().to_string();
    let r = post(
        &s,
        &admin,
        &format!("{F5}/assign"),
        json!({"measure": "健全舆情研判机制。", "responsible_unit": "街道宣传办", "leader": "王主任", "person": "李干事",
               "deadline": deadline}),
    );
    let done = ok(&r, "assign f5");
    let position = done["last_position"].as_u64().unwrap();
    let frame = format!("id: {position}\nevent: RectificationAssigned\ndata: ");
    assert!(read_until(&mut stream, &mut buf, &frame, Duration::from_secs(10)), "{}", String::from_utf8_lossy(&buf));
    let text = String::from_utf8_lossy(&buf).to_string();
    let data = text[text.find(&frame).unwrap() + frame.len()..].lines().next().unwrap().to_owned();
    let data: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(data["position"], position);
    assert_eq!(data["stream"], "xxjd/finding-xx-2023-f5");
    assert_eq!(data["actor"]["role"], "subdistrict_admin");
    drop(stream);

    // Resuming after an earlier position replays what came after it.
    let (mut again, mut buf) = open_live(&s, &admin, Some(position - 1));
    assert!(read_until(&mut again, &mut buf, &format!("id: {position}\n"), Duration::from_secs(10)));

    // A community officer is scoped: the cross-cutting finding's events are not theirs.
    let officer = s.login("xx-dongfeng");
    let (mut scoped, mut buf) = open_live(&s, &officer, Some(position - 1));
    assert!(!read_until(&mut scoped, &mut buf, "event: RectificationAssigned", Duration::from_millis(800)));
    // Another tenant's admin may not listen at all.
    let other = s.login("yy-admin");
    assert_eq!(s.get(&format!("{TENANT}/live"), Some(&other)).status, 403);
}
