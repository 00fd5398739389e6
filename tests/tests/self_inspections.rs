//! 自查报告 in the official form (issue 14), through HTTP against the real server: structured
//! sections in and out, the document in DOCX (read back by python-docx), HTML and text, the
//! 督查报告 citing it, bad sections refused with nothing written, and old free-text reports still
//! shown.

use ducha_tests::{Response, Server, repo_root};
use serde_json::{Value, json};
use std::process::Command;

const TENANT: &str = "/api/v1/tenants/xxjd";

fn ok(r: &Response, what: &str) -> Value {
    assert!((200..300).contains(&r.status), "{what}: {} {}", r.status, r.text());
    r.json()
}

fn sections() -> Value {
    json!([
        {"level": 1, "title": "一、工作开展情况", "text": ""},
        {"level": 2, "title": "（一）强化理论武装", "text": "开展理论宣讲会10场。\n覆盖居民600人次。"},
        {"level": 3, "title": "落实第一议题", "text": "全年学习24次。"},
        {"level": 1, "title": "存在的问题", "text": "台账不够完善。"},
        {"level": 1, "title": "下一步打算", "text": ""},
        {"level": 2, "title": "完善台账", "text": "对照细则补齐台账。"}
    ])
}

/// Reads a DOCX with python-docx (tests/documents/read_document.py); the paragraphs' texts and
/// the first run's East Asian font of each.
fn read_docx(bytes: &[u8]) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("自查报告.docx");
    std::fs::write(&file, bytes).unwrap();
    let out = Command::new("python3")
        .arg(repo_root().join("tests/documents/read_document.py"))
        .arg("docx")
        .arg(&file)
        .output()
        .expect("python3 with python-docx is installed by `cargo xtask test`");
    assert!(out.status.success(), "python-docx could not open it: {}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["paragraphs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let font = p["runs"][0]["east_asia"].as_str().unwrap_or_default().to_owned();
            (p["text"].as_str().unwrap().to_owned(), font)
        })
        .filter(|(t, _)| !t.is_empty())
        .collect()
}

#[test]
fn a_self_inspection_in_the_official_form_round_trips_and_prints() {
    let s = Server::start(true, &[]);
    let officer = s.login("xx-dongfeng");
    let path = format!("{TENANT}/self-inspections");
    let body = json!({
        "community_id": "dongfeng", "year": 2025, "title": "东风社区2025年度意识形态工作自查报告",
        "text": "根据街道党工委要求，现将自查情况报告如下：", "sections": sections(),
    });
    let r = s.post_json(&path, Some(&officer), &body);
    assert_eq!(r.status, 201, "{}", r.text());
    let location = r.header("location").unwrap().to_owned();

    // Kept as sections, numbers typed in front of titles dropped (the document numbers them).
    let one = ok(&s.get(&location, Some(&officer)), "one");
    let titles: Vec<(u64, &str)> = one["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["level"].as_u64().unwrap(), s["title"].as_str().unwrap()))
        .collect();
    assert_eq!(
        titles,
        [
            (1, "工作开展情况"),
            (2, "强化理论武装"),
            (3, "落实第一议题"),
            (1, "存在的问题"),
            (1, "下一步打算"),
            (2, "完善台账")
        ]
    );
    assert_eq!(one["text"], "根据街道党工委要求，现将自查情况报告如下：");

    // Text: numbered 一、（一）1., sub-headings run into their first paragraph, 署名 and date.
    let txt = s.get(&format!("{location}/document?format=txt"), Some(&officer));
    assert_eq!(txt.status, 200, "{}", txt.text());
    assert!(txt.header("content-type").unwrap().starts_with("text/plain"));
    let lines: Vec<&str> = std::str::from_utf8(&txt.body).unwrap().lines().collect();
    let today = chrono::Utc::now().with_timezone(&chrono_tz_shanghai()).date_naive();
    let expected = [
        "东风社区2025年度意识形态工作自查报告",
        "根据街道党工委要求，现将自查情况报告如下：",
        "一、工作开展情况",
        "（一）强化理论武装。开展理论宣讲会10场。",
        "覆盖居民600人次。",
        "1.落实第一议题。全年学习24次。",
        "二、存在的问题",
        "台账不够完善。",
        "三、下一步打算",
        "（一）完善台账。对照细则补齐台账。",
        "",
        "东风社区",
    ];
    assert_eq!(&lines[..expected.len()], &expected);
    assert_eq!(
        lines[expected.len()],
        format!("{}年{}月{}日", today.format("%Y"), today.format("%-m"), today.format("%-d"))
    );

    // DOCX, read by python-docx: the same paragraphs, headings in 黑体 and 楷体_GB2312.
    let docx = s.get(&format!("{location}/document"), Some(&officer));
    assert_eq!(docx.status, 200, "{}", docx.text());
    assert!(docx.header("content-disposition").unwrap().contains(".docx"));
    assert_eq!(
        docx.header("x-ducha-sha256").unwrap(),
        ducha::documents::sha256_hex(&docx.body),
        "the header names the bytes sent"
    );
    let paras = read_docx(&docx.body);
    let texts: Vec<&str> = paras.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(&texts[..expected.len() - 2], &expected[..expected.len() - 2]);
    let font_of = |t: &str| paras.iter().find(|(p, _)| p == t).map(|(_, f)| f.as_str()).unwrap();
    assert_eq!(font_of("一、工作开展情况"), "黑体");
    assert_eq!(font_of("（一）强化理论武装。开展理论宣讲会10场。"), "楷体_GB2312");
    // The same bytes every time (no clock in the document).
    assert_eq!(s.get(&format!("{location}/document"), Some(&officer)).body, docx.body);

    // HTML preview.
    let html = s.get(&format!("{location}/document?format=html"), Some(&officer));
    let html = std::str::from_utf8(&html.body).unwrap();
    assert!(html.contains("<span class=\"h1\">一、工作开展情况</span>"), "{html}");

    // Another community's officer may not read it; a bad format is refused.
    let other = s.login("xx-admin");
    assert_eq!(s.get(&format!("{location}/document?format=pdf"), Some(&other)).status, 400);
    assert_eq!(s.get(&format!("{TENANT}/self-inspections/nope/document"), Some(&other)).status, 404);
    assert_eq!(s.get(&format!("{location}/document"), Some(&s.login("yy-admin"))).status, 403);
}

/// Asia/Shanghai without a time-zone database: UTC+8, no daylight saving.
fn chrono_tz_shanghai() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).unwrap()
}

#[test]
fn bad_sections_are_refused_with_their_field_and_write_nothing() {
    let s = Server::start(true, &[]);
    let officer = s.login("xx-dongfeng");
    let path = format!("{TENANT}/self-inspections");
    let head = s.head_position();
    let cases = [
        (json!([{"level": 2, "title": "强化理论武装", "text": "x"}]), "sections[0].level"),
        (
            json!([{"level": 1, "title": "工作", "text": ""}, {"level": 3, "title": "学习", "text": "x"}]),
            "sections[1].level",
        ),
        (json!([{"level": 1, "title": "  一、 ", "text": "x"}]), "sections[0].title"),
        (json!([{"level": 9, "title": "工作", "text": "x"}]), "sections[0].level"),
    ];
    for (sections, field) in cases {
        let body = json!({"community_id": "dongfeng", "year": 2025, "sections": sections});
        let r = s.post_json(&path, Some(&officer), &body);
        assert_eq!(r.status, 422, "{sections}: {}", r.text());
        let problem = r.json();
        assert_eq!(problem["code"], "invalid", "{problem}");
        assert_eq!(problem["field"], field, "{problem}");
    }
    // Neither text nor sections; an unknown field in a section; a level that is not a number.
    for body in [
        json!({"community_id": "dongfeng", "year": 2025}),
        json!({"community_id": "dongfeng", "year": 2025, "sections": [{"level": 1, "title": "工作", "page": 3}]}),
        json!({"community_id": "dongfeng", "year": 2025, "sections": [{"level": "一", "title": "工作"}]}),
    ] {
        let r = s.post_json(&path, Some(&officer), &body);
        assert_eq!(r.status, 422, "{body}: {}", r.text());
    }
    assert_eq!(s.head_position(), head, "nothing was written");
}

#[test]
fn the_report_cites_the_self_inspections_that_answer_it_and_old_free_text_still_shows() {
    let s = Server::start(true, &[]);
    let admin = s.login("xx-admin");
    // The demo's 2024 inspection was answered by 东风社区's report in the official form.
    let detail = ok(&s.get(&format!("{TENANT}/inspections/2024-ideology"), Some(&admin)), "detail");
    let cited = detail["self_inspections"].as_array().unwrap();
    assert_eq!(cited.len(), 1, "{detail}");
    assert_eq!(cited[0]["community"]["name"], "东风社区");
    let report = s.get(&format!("{TENANT}/inspections/2024-ideology/report?format=txt"), Some(&admin));
    let report = String::from_utf8(report.body).unwrap();
    assert!(
        report.contains("督查前，1个社区报送了自查报告：《东风社区2024年度意识形态工作责任制落实情况自查报告》。"),
        "{report}"
    );
    // The 2023 inspection was answered by none: its report says nothing of it.
    let report = s.get(&format!("{TENANT}/inspections/2023-ideology/report?format=txt"), Some(&admin));
    assert!(!String::from_utf8(report.body).unwrap().contains("自查报告："));

    // The 2023 report of 东风社区 is free text (the first version): shown and printed as written.
    let old = ok(&s.get(&format!("{TENANT}/self-inspections/2023-dongfeng"), Some(&admin)), "old");
    assert_eq!(old["sections"], json!([]));
    assert!(old["text"].as_str().unwrap().starts_with("按照街道党工委部署"));
    let txt = s.get(&format!("{TENANT}/self-inspections/2023-dongfeng/document?format=txt"), Some(&admin));
    let txt = String::from_utf8(txt.body).unwrap();
    let lines: Vec<&str> = txt.lines().collect();
    assert_eq!(lines[0], "东风社区2023年度意识形态工作责任制落实情况自查报告");
    assert!(lines[1].starts_with("按照街道党工委部署"), "{txt}");

    // A new answer to the 2024 inspection is cited too, in the order submitted.
    let officer = s.login("xx-dongfeng");
    let body = json!({"community_id": "dongfeng", "year": 2024, "title": "补充自查报告", "text": "补充说明。",
                      "inspection_id": "2024-ideology"});
    ok(&s.post_json(&format!("{TENANT}/self-inspections"), Some(&officer), &body), "submit");
    let report = s.get(&format!("{TENANT}/inspections/2024-ideology/report?format=txt"), Some(&admin));
    assert!(String::from_utf8(report.body).unwrap().contains("、东风社区《补充自查报告》。"));
}
