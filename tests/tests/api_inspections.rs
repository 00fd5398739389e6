//! Inspections through the REST API only, against the real `ducha serve --demo`: plan, start, record
//! fieldwork, a deduction, an achievement with figures and a finding, conclude; the detail shows
//! each step; `If-Match`, `Idempotency-Key`, tenant isolation and the error contract.

use ducha_tests::{Response, Server};
use serde_json::{Value, json};

const T: &str = "/api/v1/tenants/xxjd";

/// A POST with a JSON body and extra headers.
fn post(s: &Server, path: &str, token: &str, headers: &[(&str, &str)], body: &Value) -> Response {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    s.request("POST", path, Some(token), &all, Some(body.to_string().as_bytes()))
}

fn expect(r: &Response, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    r.json()
}

fn etag(r: &Response) -> String {
    r.header("etag").unwrap_or_else(|| panic!("no ETag: {r:?}")).to_owned()
}

/// The problem's code, after checking it is problem+json with a Chinese title.
fn problem(r: &Response, status: u16) -> Value {
    let p = expect(r, status);
    assert_eq!(r.header("content-type"), Some("application/problem+json"), "{}", r.text());
    let title = p["title"].as_str().unwrap_or_default();
    assert!(title.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "a Chinese title: {p}");
    assert_eq!(p["status"], status);
    p
}

/// A day that is "today or earlier" wherever the server's Asia/Shanghai "today" is.
fn yesterday() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive().pred_opt().expect("a date")
}

#[test]
fn an_inspection_from_plan_to_conclusion() {
    let s = Server::demo();
    let admin = s.login("xx-admin");
    let day = yesterday();
    let year = chrono::Datelike::year(&day);

    // Plan: 201 + Location + ETag "1"; the server names it.
    let plan = json!({
        "year": year,
        "title": "对下级社区督查意识形态工作情况（接口测试）",
        "subject": "意识形态工作",
        "communities": ["dongfeng", "xiangyang"],
        "team": [{"user_id": "xx-duchazu1", "leader": true}],
        "methods": ["meeting", "document_review"],
        "checklist_id": "ideology-2023",
        "planned_start": day.to_string(),
        "planned_end": (day + chrono::Days::new(30)).to_string(),
    });
    let r = post(&s, &format!("{T}/inspections"), &admin, &[], &plan);
    let planned = expect(&r, 201);
    let id = planned["id"].as_str().expect("id").to_owned();
    let base = format!("{T}/inspections/{id}");
    assert_eq!(r.header("location"), Some(base.as_str()));
    assert_eq!(etag(&r), "\"1\"");
    assert_eq!((planned["version"].as_u64(), planned["events"].as_u64()), (Some(1), Some(1)));
    let after_plan = planned["last_position"].as_u64().expect("position");

    let r = s.get(&base, Some(&admin));
    let d = expect(&r, 200);
    assert_eq!(etag(&r), "\"1\"");
    assert_eq!(d["status"], "planned");
    assert_eq!(d["scope"].as_array().map(Vec::len), Some(2));
    assert_eq!(d["scope"][0]["name"], "东风社区");

    // Start with the version just read.
    let r = post(&s, &format!("{base}/start"), &admin, &[("If-Match", "\"1\"")], &json!({"started_on": day}));
    assert_eq!(expect(&r, 200)["version"], 2);
    assert_eq!(etag(&r), "\"2\"");

    // The team's inspector records the fieldwork; an inspector not on the team may not.
    let inspector = s.login("xx-duchazu1");
    let fieldwork = json!({
        "community_id": "dongfeng",
        "method": "meeting",
        "held_on": day,
        "participants": "社区党委书记、宣传委员",
        "notes": "座谈交流，了解理论学习开展情况",
    });
    expect(&post(&s, &format!("{base}/fieldwork"), &inspector, &[], &fieldwork), 200);
    let outsider = s.login("xx-duchazu2");
    let head = s.head_position();
    let p = problem(&post(&s, &format!("{base}/fieldwork"), &outsider, &[], &fieldwork), 403);
    assert_eq!(p["code"], "not_on_team");
    assert_eq!(s.head_position(), head, "a refused write appends nothing");

    let deduction = json!({"community_id": "dongfeng", "item_code": "A4", "points": 2.5, "reason": "舆情研判记录不全"});
    expect(&post(&s, &format!("{base}/deductions"), &admin, &[], &deduction), 200);

    // An achievement with figures, sent with an Idempotency-Key and retried.
    let achievement = json!({
        "category": "加强理论武装，坚定理想信念",
        "text": "开展理论宣讲会等10场",
        "figures": [{"label": "理论宣讲会", "value": 10, "unit": "场"}],
        "community_id": "dongfeng",
    });
    let key = [("Idempotency-Key", "achievement-0001")];
    let first = post(&s, &format!("{base}/achievements"), &admin, &key, &achievement);
    let first_body = expect(&first, 200);
    let head = s.head_position();
    let retry = post(&s, &format!("{base}/achievements"), &admin, &key, &achievement);
    assert_eq!(expect(&retry, 200), first_body, "a retry gets the first answer");
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(s.head_position(), head, "a retry appends nothing");
    // The same key for another request is refused.
    let other = json!({"category": "x", "text": "另一条"});
    let p = problem(&post(&s, &format!("{base}/achievements"), &admin, &key, &other), 422);
    assert_eq!(p["code"], "idempotency_key_reused");

    // A finding: 201, its id and where its rectification lives.
    let finding = json!({
        "community_id": "dongfeng",
        "category": "theory",
        "title": "理论学习联系实际不够",
        "description": "学习记录泛泛而谈，联系社区工作实际不够。",
    });
    let r = post(&s, &format!("{base}/findings"), &inspector, &[], &finding);
    let f = expect(&r, 201);
    let finding_id = f["id"].as_str().expect("finding id").to_owned();
    assert_eq!(r.header("location"), Some(format!("{base}/findings/{finding_id}").as_str()));
    let version = f["version"].as_u64().expect("version");

    // A stale If-Match: 412 with the current version, nothing appended.
    let head = s.head_position();
    let p = problem(&post(&s, &format!("{base}/fieldwork"), &admin, &[("If-Match", "\"2\"")], &fieldwork), 412);
    assert_eq!((p["code"].as_str(), p["current_version"].as_u64()), (Some("version_mismatch"), Some(version)));
    assert_eq!(s.head_position(), head);

    // Another sub-district's admin: 403 on writes and reads, nothing appended.
    let other_admin = s.login("yy-admin");
    let p = problem(&post(&s, &format!("{base}/fieldwork"), &other_admin, &[], &fieldwork), 403);
    assert_eq!(p["code"], "forbidden");
    problem(&post(&s, &format!("{T}/inspections"), &other_admin, &[], &plan), 403);
    problem(&s.get(&base, Some(&other_admin)), 403);
    problem(&s.get(&format!("{T}/inspections"), Some(&other_admin)), 403);
    assert_eq!(s.head_position(), head);

    // A community officer does not read tenant-wide inspections.
    let officer = s.login("xx-dongfeng");
    problem(&s.get(&base, Some(&officer)), 403);

    // Unknown fields are refused with the field named.
    let mut bad = fieldwork.clone();
    bad["colour"] = json!("red");
    let p = problem(&post(&s, &format!("{base}/fieldwork"), &admin, &[], &bad), 422);
    assert_eq!((p["code"].as_str(), p["field"].as_str()), (Some("invalid_body"), Some("colour")));
    // A community outside the inspection's scope breaks a domain rule.
    let mut outside = fieldwork.clone();
    outside["community_id"] = json!("heping");
    let p = problem(&post(&s, &format!("{base}/fieldwork"), &admin, &[], &outside), 422);
    assert_eq!(p["code"], "community_out_of_scope");
    assert_eq!(s.head_position(), head);

    // Conclude; then nothing more can be recorded.
    let conclusion = json!({"assessment": "总体较好", "summary": "各社区能够认真落实意识形态工作责任制。"});
    expect(&post(&s, &format!("{base}/conclusion"), &admin, &[], &conclusion), 200);
    let p = problem(&post(&s, &format!("{base}/fieldwork"), &admin, &[], &fieldwork), 409);
    assert_eq!(p["code"], "inspection_concluded");
    assert!(p["detail"].as_str().is_some_and(|d| d.contains("督查")), "{p}");

    // The detail shows every step.
    let r = s.get(&base, Some(&inspector));
    let d = expect(&r, 200);
    assert_eq!(d["status"], "concluded");
    assert_eq!(d["started_on"], json!(day));
    let dongfeng =
        d["fieldwork"].as_array().and_then(|g| g.iter().find(|g| g["community"]["community_id"] == "dongfeng"));
    assert_eq!(dongfeng.map(|g| g["records"].as_array().map(Vec::len)), Some(Some(1)), "{d}");
    let score = d["scores"].as_array().and_then(|s| s.iter().find(|s| s["community"]["community_id"] == "dongfeng"));
    let a4 = score.and_then(|s| s["items"].as_array()).and_then(|i| i.iter().find(|i| i["code"] == "A4"));
    assert_eq!(a4.map(|i| (i["deducted"].as_f64(), i["score"].as_f64())), Some((Some(2.5), Some(12.5))), "{d}");
    assert_eq!(score.map(|s| s["score"].as_f64()), Some(Some(97.5)));
    assert_eq!(d["achievements"].as_array().map(Vec::len), Some(1), "the retry added nothing");
    assert_eq!(d["achievements"][0]["figures"][0], json!({"label": "理论宣讲会", "value": 10, "unit": "场"}));
    assert_eq!(d["findings"].as_array().map(Vec::len), Some(1));
    assert_eq!(d["findings"][0]["finding_id"], json!(finding_id));
    assert_eq!(d["findings"][0]["category_name"], "理论学习");
    assert_eq!(d["assessment"], "总体较好");
    let final_version = etag(&r);

    // The list has it with its counts; filters work.
    let list = expect(&s.get(&format!("{T}/inspections?year={year}&status=concluded"), Some(&admin)), 200);
    let item = list.as_array().and_then(|l| l.iter().find(|i| i["inspection_id"] == json!(id))).cloned();
    let item = item.unwrap_or_else(|| panic!("listed: {list}"));
    assert_eq!(
        (&item["fieldwork"], &item["deductions"], &item["achievements"], &item["findings"], &item["communities"]),
        (&json!(1), &json!(1), &json!(1), &json!(1), &json!(2))
    );
    assert_eq!(item["status_name"], "已结束");
    let all = expect(&s.get(&format!("{T}/inspections"), Some(&admin)), 200);
    assert!(all.as_array().is_some_and(|l| l.iter().any(|i| i["inspection_id"] == "2023-ideology")));

    // As of just after planning: planned, nothing recorded, version 1.
    let r = s.get(&format!("{base}?at_position={after_plan}"), Some(&admin));
    let then = expect(&r, 200);
    assert_eq!((then["status"].as_str(), etag(&r)), (Some("planned"), "\"1\"".to_owned()));
    assert!(then["achievements"].as_array().is_some_and(Vec::is_empty));
    let before = expect(&s.get(&format!("{T}/inspections?at_position={}", after_plan - 1), Some(&admin)), 200);
    assert!(!before.as_array().is_some_and(|l| l.iter().any(|i| i["inspection_id"] == json!(id))));
    assert_ne!(final_version, "\"1\"");

    // Unknown inspection and tenant: 404.
    problem(&s.get(&format!("{T}/inspections/no-such-thing"), Some(&admin)), 404);
    problem(&post(&s, &format!("{T}/inspections/no-such-thing/start"), &admin, &[], &json!({"started_on": day})), 404);
    problem(&s.get("/api/v1/tenants/nojd/inspections", Some(&admin)), 404);
}

#[test]
fn plans_are_checked_and_ids_can_be_chosen() {
    let s = Server::demo();
    let admin = s.login("xx-admin");
    let day = yesterday();
    let plan = |id: &str, communities: Value| {
        json!({
            "inspection_id": id,
            "year": chrono::Datelike::year(&day),
            "title": "专项督查",
            "subject": "意识形态工作",
            "communities": communities,
            "team": [{"user_id": "xx-duchazu2"}],
            "methods": ["site_visit"],
            "planned_start": day,
            "planned_end": day,
        })
    };
    let r = post(&s, &format!("{T}/inspections"), &admin, &[], &plan("special-1", json!(["heping"])));
    assert_eq!(expect(&r, 201)["id"], "special-1");
    assert_eq!(r.header("location"), Some(format!("{T}/inspections/special-1").as_str()));
    // The same id again: 409.
    let p = problem(&post(&s, &format!("{T}/inspections"), &admin, &[], &plan("special-1", json!(["heping"]))), 409);
    assert_eq!(p["code"], "already_exists");
    // An unknown community: 404 naming it; nothing appended.
    let head = s.head_position();
    problem(&post(&s, &format!("{T}/inspections"), &admin, &[], &plan("special-2", json!(["nowhere"]))), 404);
    assert_eq!(s.head_position(), head);
    // An inspector may not plan.
    let inspector = s.login("xx-duchazu1");
    problem(&post(&s, &format!("{T}/inspections"), &inspector, &[], &plan("special-3", json!(["heping"]))), 403);
    // Scope and team changes with If-Match.
    let base = format!("{T}/inspections/special-1");
    let r = post(
        &s,
        &format!("{base}/scope"),
        &admin,
        &[("If-Match", "\"1\"")],
        &json!({"communities": ["heping", "jianshe"]}),
    );
    assert_eq!(etag(&r), "\"2\"");
    let team = json!({"team": [{"user_id": "xx-duchazu1", "leader": true}, {"user_id": "xx-duchazu2"}]});
    expect(&post(&s, &format!("{base}/team"), &admin, &[("If-Match", "\"2\"")], &team), 200);
    let d = expect(&s.get(&base, Some(&admin)), 200);
    assert_eq!(d["scope"].as_array().map(Vec::len), Some(2));
    assert_eq!(d["team"].as_array().map(Vec::len), Some(2));
    // Malformed If-Match: 400 naming the header.
    let p = problem(&post(&s, &format!("{base}/team"), &admin, &[("If-Match", "soon")], &team), 400);
    assert_eq!(p["field"], "If-Match");
}
