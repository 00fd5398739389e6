//! The generated documents, checked from outside: the real `ducha` binary writes them, and
//! independent readers — python-docx and openpyxl from PyPI, through tests/documents/read_document.py
//! — read them back. The demo's 2023 inspection of XX街道 must come out structured like the sample
//! report (shared/domain/sample-inspection-report.txt).

use ducha::commands::{self, Meta};
use ducha::demo::{SAMPLE_FINDINGS, SAMPLE_MEASURES};
use ducha::projector;
use ducha::store::sqlite::{SqliteOptions, SqliteStore, Synchronous};
use ducha_events::authz::{Actor, Grant, Role, Scope};
use ducha_events::event::{Figure, InspectionMethod, Severity, TeamMember};
use ducha_events::ids::{DistrictId, InspectionId, TenantId, UserId};
use ducha_events::inspection::InspectionCommand;
use ducha_tests::{ducha, ducha_ok, repo_root};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const TITLE: &str = "XX街道党工委对下级社区督查2023年度意识形态工作情况的督查报告";
const REPORT: [&str; 5] = ["report", "--tenant", "xxjd", "--inspection", "2023-ideology"];

/// Reads a document with python-docx or openpyxl (installed by `cargo xtask test`).
fn read(kind: &str, path: &Path) -> Value {
    let script = repo_root().join("tests/documents/read_document.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(kind)
        .arg(path)
        .output()
        .expect("python3 with python-docx and openpyxl is installed by `cargo xtask test`");
    assert!(
        out.status.success(),
        "the independent reader could not open {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn texts(doc: &Value) -> Vec<String> {
    doc["paragraphs"].as_array().unwrap().iter().map(|p| p["text"].as_str().unwrap().to_owned()).collect()
}

fn index_of(lines: &[String], wanted: &str) -> usize {
    lines.iter().position(|l| l == wanted).unwrap_or_else(|| panic!("no line {wanted:?} in {lines:#?}"))
}

fn demo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    ducha_ok(dir.path(), &["demo"]);
    dir
}

fn report(dir: &Path, extra: &[&str], out: &Path) -> String {
    let mut args = REPORT.to_vec();
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    ducha_ok(dir, &args)
}

#[test]
fn the_demo_report_has_the_structure_fonts_and_page_of_the_sample() {
    let dir = demo();
    let file = dir.path().join("report.docx");
    report(dir.path(), &[], &file);
    let doc = read("docx", &file);
    let lines = texts(&doc);
    let paras = doc["paragraphs"].as_array().unwrap();

    // Title, in 2号方正小标宋简体, and the document's title property.
    assert_eq!(lines[0], TITLE);
    assert_eq!(doc["title"], TITLE);
    let title_run = &paras[0]["runs"][0];
    assert_eq!((title_run["east_asia"].as_str(), title_run["size_pt"].as_f64()), (Some("方正小标宋简体"), Some(22.0)));

    // The opening paragraph: purpose, 6 communities, both methods, the overall assessment.
    let opening = &lines[2];
    for needed in ["为全面掌握", "6个社区", "座谈交流", "查阅资料", "总体良好", "现将督查情况报告如下："]
    {
        assert!(opening.contains(needed), "opening lacks {needed}: {opening}");
    }

    // The three top headings in order, in 黑体.
    let h = ["一、主要工作开展情况", "二、存在主要问题", "三、下一步工作计划"].map(|t| index_of(&lines, t));
    assert!(h[0] < h[1] && h[1] < h[2], "{h:?}");
    for i in h {
        assert_eq!(paras[i]["runs"][0]["east_asia"], "黑体");
    }

    // 一: the introduction (the conclusion's summary), then the achievements with the figure of 10 lectures.
    assert!(lines[h[0] + 1].contains("从督查调研的情况看") && lines[h[0] + 1].contains("6个社区"));
    let achievements = &lines[h[0] + 2..h[1]];
    assert_eq!(achievements.len(), 3);
    assert!(achievements[0].starts_with("（一）加强理论武装，坚定理想信念。") && achievements[0].contains("10场"));

    // 二: the five findings in the sample's order, `（n）title。description`, headings in 楷体.
    let findings = &lines[h[1] + 1..h[2]];
    assert_eq!(findings.len(), 5, "{findings:#?}");
    let numbers = ["（一）", "（二）", "（三）", "（四）", "（五）"];
    for (n, (_, title, description)) in SAMPLE_FINDINGS.iter().enumerate() {
        assert_eq!(findings[n], format!("{}{title}。{description}", numbers[n]));
        let runs = &paras[h[1] + 1 + n]["runs"];
        assert_eq!(runs[0]["text"], format!("{}{title}。", numbers[n]));
        assert_eq!(runs[0]["east_asia"], "楷体_GB2312");
        assert_eq!(runs[1]["east_asia"], "仿宋_GB2312");
    }

    // 三: the three measures.
    let measures: Vec<&String> = lines[h[2] + 1..].iter().take_while(|l| !l.is_empty()).collect();
    assert_eq!(measures.len(), 3, "{measures:#?}");
    for (n, (_, title, measure)) in SAMPLE_MEASURES.iter().enumerate() {
        assert_eq!(*measures[n], format!("{}{title}。{measure}", numbers[n]));
    }
    // 署名 and 成文日期 (the conclusion's date), right-aligned.
    assert_eq!(&lines[lines.len() - 2..], ["XX街道党工委", "2023年11月30日"]);
    assert!(paras.last().unwrap()["alignment"].as_str().unwrap().starts_with("RIGHT"));

    // Every run: an East Asian font, Times New Roman for Latin text, 3号 body; fixed 28.95 pt lines.
    for p in paras {
        for r in p["runs"].as_array().unwrap() {
            assert_eq!(r["ascii"], "Times New Roman");
            let ea = r["east_asia"].as_str().unwrap();
            assert!(["方正小标宋简体", "仿宋_GB2312", "黑体", "楷体_GB2312"].contains(&ea), "{ea}");
            if ea != "方正小标宋简体" {
                assert_eq!(r["size_pt"], 16.0);
            }
        }
        assert_eq!(p["line_spacing_pt"], 28.95);
        assert!(p["line_spacing_rule"].as_str().unwrap().starts_with("EXACTLY"));
    }

    // A4, margins top 37 / binding 28 mm, text block 156 × 225 mm; page numbers `— 1 —` in 4号,
    // right on odd pages and left on even ones.
    assert_eq!(doc["odd_and_even_pages"], true);
    let s = &doc["sections"][0];
    assert_eq!((s["page_width_mm"].as_f64(), s["page_height_mm"].as_f64()), (Some(210.0), Some(297.0)));
    assert_eq!((s["top_mm"].as_f64(), s["left_mm"].as_f64()), (Some(37.0), Some(28.0)));
    let width = s["page_width_mm"].as_f64().unwrap() - s["left_mm"].as_f64().unwrap() - s["right_mm"].as_f64().unwrap();
    let height =
        s["page_height_mm"].as_f64().unwrap() - s["top_mm"].as_f64().unwrap() - s["bottom_mm"].as_f64().unwrap();
    assert!((width - 156.0).abs() < 0.2 && (height - 225.0).abs() < 0.2, "{width} × {height}");
    for (side, align) in [("odd_footer", "RIGHT"), ("even_footer", "LEFT")] {
        let f = &s[side];
        assert_eq!(f["text"], "— 1 —", "{side}");
        assert_eq!(f["page_field"], true, "{side}");
        assert_eq!(f["sizes"], serde_json::json!([14.0]), "{side}");
        assert!(f["alignment"][0].as_str().unwrap().starts_with(align), "{side}");
    }

    // The plain text says the same, and its findings and measures are the sample's own lines.
    let txt = dir.path().join("report.txt");
    report(dir.path(), &["--format", "txt"], &txt);
    let text = std::fs::read_to_string(&txt).unwrap();
    let text_lines: Vec<&str> = text.lines().collect();
    assert_eq!(text_lines[0], TITLE);
    let sample = repo_root().join("../shared/domain/sample-inspection-report.txt");
    if let Ok(sample) = std::fs::read_to_string(sample) {
        let sample_lines: Vec<&str> = sample.lines().map(str::trim).collect();
        for line in findings.iter().chain(measures.iter().copied()) {
            assert!(sample_lines.contains(&line.as_str()), "not a line of the sample: {line}");
        }
        for heading in ["一、主要工作开展情况", "二、存在主要问题", "三、下一步工作计划", TITLE]
        {
            assert!(sample_lines.contains(&heading));
        }
    }
    // And the HTML preview.
    let html = dir.path().join("report.html");
    report(dir.path(), &["--format", "html"], &html);
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(html.contains(&format!("<h1>{TITLE}</h1>")) && html.contains("<span class=\"h1\">二、存在主要问题</span>"));
}

#[test]
fn a_report_as_of_a_past_time_differs_exactly_as_the_events_between_say() {
    let dir = demo();
    let txt = |extra: &[&str]| -> Vec<String> {
        let out = dir.path().join("r.txt");
        report(dir.path(), &[&["--format", "txt"], extra].concat(), &out);
        std::fs::read_to_string(&out).unwrap().lines().map(str::to_owned).collect()
    };
    let now = txt(&[]);
    let section = |lines: &[String], from: &str, to: Option<&str>| -> Vec<String> {
        let a = index_of(lines, from) + 1;
        let b = to.map_or(lines.len(), |t| index_of(lines, t));
        lines[a..b].iter().filter(|l| !l.is_empty()).cloned().collect()
    };
    let measures_now = section(&now, "三、下一步工作计划", None);
    assert_eq!(measures_now.len(), 3 + 2, "three measures and the signature");

    // Concluded on 2023-11-30, rectifications assigned on 2023-12-08: before the assignment the
    // report is today's without the measures.
    let concluded = txt(&["--as-of", "2023-12-01T00:00:00+08:00"]);
    let mut expected = now.clone();
    let first = index_of(&expected, "三、下一步工作计划") + 1;
    expected.splice(first..first + 3, ["暂无。".to_owned()]);
    assert_eq!(concluded, expected);

    // Findings recorded on 2023-11-21, the conclusion on 2023-11-30: before the conclusion there is no
    // assessment, no summary and no signature, but the five findings.
    let before_conclusion = txt(&["--as-of", "2023-11-29T00:00:00+08:00"]);
    assert!(!before_conclusion.iter().any(|l| l.contains("总体良好")));
    assert_eq!(section(&before_conclusion, "二、存在主要问题", Some("三、下一步工作计划")).len(), 5);
    assert_eq!(section(&before_conclusion, "三、下一步工作计划", None), ["暂无。"]);
    assert!(before_conclusion[1].contains("自2023年11月6日起"), "{}", before_conclusion[1]);

    // Before the findings were recorded: the achievements but no findings.
    let before_findings = txt(&["--as-of", "2023-11-21T08:00:00+08:00"]);
    assert_eq!(section(&before_findings, "二、存在主要问题", Some("三、下一步工作计划")), ["暂无。"]);
    assert_eq!(section(&before_findings, "一、主要工作开展情况", Some("二、存在主要问题")).len(), 1 + 3);

    // Before the inspection was planned it does not exist.
    let out = ducha(
        dir.path(),
        &[&REPORT[..], &["--as-of", "2023-06-01T00:00:00+08:00", "--out", "/tmp/never.docx"]].concat(),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("未找到督查"));

    // As DOCX the past reports are valid documents too.
    let file = dir.path().join("past.docx");
    report(dir.path(), &["--as-of", "2023-11-21T08:00:00+08:00"], &file);
    assert!(texts(&read("docx", &file)).contains(&"暂无。".to_owned()));
}

fn field<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout.split_whitespace().skip_while(|w| *w != key).nth(1).unwrap_or_else(|| panic!("no {key} in {stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn issuing_records_hash_and_position_and_regenerating_gives_the_same_bytes() {
    let dir = demo();
    let issued = dir.path().join("issued.docx");
    let out = report(dir.path(), &["--issue", "--as", "xx-admin"], &issued);
    let (sha, position) = (field(&out, "sha256").to_owned(), field(&out, "position").parse::<u64>().unwrap());
    let bytes = std::fs::read(&issued).unwrap();
    assert_eq!(ducha::documents::sha256_hex(&bytes), sha);

    // The inspection's projection lists the issued report: hash, position, actor.
    let store = SqliteStore::open(
        &dir.path().join("ducha.db"),
        SqliteOptions { synchronous: Synchronous::Full, read_only: true, ..SqliteOptions::default() },
    )
    .unwrap();
    let model = projector::load_live(&store).await.unwrap();
    let detail = model
        .inspection_detail(&TenantId::parse("xxjd").unwrap(), &InspectionId::parse("2023-ideology").unwrap())
        .unwrap();
    assert_eq!(detail.issued_reports.len(), 1);
    let r = &detail.issued_reports[0];
    assert_eq!((r.sha256.as_str(), r.log_position, r.issued_by.as_str()), (sha.as_str(), position, "xx-admin"));
    assert_eq!(r.event_position, position + 1);
    store.close().await;

    // Regenerated from the recorded position: the same bytes, the same hash.
    let again = dir.path().join("again.docx");
    let out = report(dir.path(), &["--at-position", &position.to_string()], &again);
    assert_eq!(field(&out, "sha256"), sha);
    assert_eq!(std::fs::read(&again).unwrap(), bytes);
    // Issuing changed nothing the report is made of: today's report has the same bytes, at a later position.
    let now = dir.path().join("now.docx");
    let out = report(dir.path(), &[], &now);
    assert_eq!(field(&out, "sha256"), sha);
    assert_eq!(field(&out, "position").parse::<u64>().unwrap(), position + 1);

    // A report of a past state, issued and regenerated by its recorded position.
    let past = dir.path().join("past.txt");
    let out = report(
        dir.path(),
        &["--format", "txt", "--as-of", "2023-12-01T00:00:00+08:00", "--issue", "--as", "xx-admin"],
        &past,
    );
    let (past_sha, past_position) = (field(&out, "sha256").to_owned(), field(&out, "position").to_owned());
    let out = report(dir.path(), &["--format", "txt", "--at-position", &past_position], &past);
    assert_eq!(field(&out, "sha256"), past_sha);

    // Only a manager may issue; `--issue` names who issues.
    let refused =
        ducha(dir.path(), &[&REPORT[..], &["--issue", "--as", "xx-duchazu1", "--out", now.to_str().unwrap()]].concat());
    assert!(!refused.status.success());
    let missing = ducha(dir.path(), &[&REPORT[..], &["--issue", "--out", now.to_str().unwrap()]].concat());
    assert!(!missing.status.success());
}

#[test]
fn the_ledger_workbook_reads_back_with_openpyxl() {
    let dir = demo();
    let file = dir.path().join("ledger.xlsx");
    // The sample inspection's ledger (XX街道's 2024 rows are checked in api_documents.rs).
    ducha_ok(
        dir.path(),
        &["ledger", "--tenant", "xxjd", "--inspection", "2023-ideology", "--out", file.to_str().unwrap()],
    );
    let book = read("xlsx", &file);
    let sheet = &book["sheets"][0];
    assert_eq!(sheet["name"], "整改台账");
    let rows = sheet["rows"].as_array().unwrap();
    let title = rows[0][0].as_str().unwrap();
    assert!(title.starts_with("XX街道整改台账（截至") && title.contains('年'), "{title}");
    assert_eq!(sheet["merged"], serde_json::json!(["A1:Q1"]));
    let headers: Vec<&str> = rows[1].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(
        headers,
        [
            "序号",
            "来源",
            "社区",
            "问题类别",
            "存在问题",
            "整改措施",
            "责任领导",
            "责任单位",
            "责任人",
            "整改时限",
            "进展情况",
            "完成情况",
            "佐证材料",
            "销号日期",
            "预警",
            "发现日期",
            "交办日期"
        ]
    );
    assert_eq!(sheet["max_row"], 2 + 5, "title, header and the five findings");
    assert_eq!(sheet["freeze_panes"], "A3");
    assert_eq!(sheet["auto_filter"], "A2:Q7");
    assert!(sheet["widths"]["E"].as_f64().unwrap() >= 40.0, "存在问题 is wide enough for Chinese text");
    assert!(book["created"].as_str().is_some());
    let first = rows[2].as_array().unwrap();
    assert_eq!(first[0], 1.0);
    assert_eq!(first[3], "理论学习");
    assert!(first[4].as_str().unwrap().starts_with("理论学习走过场的情况仍有存在。"));
    assert_eq!(first[11], "已销号");
    // Every warning cell is filled with its colour; the demo has overdue (red) rectifications.
    let colors = [("红", "FFFF0000"), ("黄", "FFFFFF00"), ("蓝", "FF00B0F0"), ("绿", "FF00B050")];
    let mut red = 0;
    for (n, row) in rows.iter().enumerate().skip(2) {
        let level = row[14].as_str().unwrap();
        let fill = sheet["fills"][format!("O{}", n + 1)].as_str();
        match colors.iter().find(|(l, _)| *l == level) {
            Some((_, color)) => assert_eq!(fill, Some(*color), "row {n}"),
            None => assert_eq!(fill, None, "row {n}"),
        }
        red += usize::from(level == "红");
    }
    assert!(red >= 1);

    // Filtered like the ledger screen, and as of a past date.
    ducha_ok(
        dir.path(),
        &[
            "ledger",
            "--tenant",
            "xxjd",
            "--inspection",
            "2023-ideology",
            "--status",
            "verified",
            "--out",
            file.to_str().unwrap(),
        ],
    );
    let book = read("xlsx", &file);
    assert_eq!(book["sheets"][0]["max_row"], 3);
    assert!(book["sheets"][0]["rows"][0][0].as_str().unwrap().contains("完成情况：已销号"));
    ducha_ok(
        dir.path(),
        &["ledger", "--tenant", "xxjd", "--as-of", "2023-12-01T00:00:00+08:00", "--out", file.to_str().unwrap()],
    );
    let book = read("xlsx", &file);
    let rows = book["sheets"][0]["rows"].as_array().unwrap();
    assert!(rows[0][0].as_str().unwrap().contains("截至2023年12月1日"));
    assert!(rows.iter().skip(2).all(|r| r[11] == "待交办" && r[5] == ""), "nothing assigned yet on 2023-12-01");
    assert_eq!(book["created"].as_str().map(|c| &c[..10]), Some("2023-12-01"));

    let bad = ducha(dir.path(), &["ledger", "--tenant", "xxjd", "--warning", "purple", "--out", "x.xlsx"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("red, yellow, blue, green"));
}

#[test]
fn the_district_circular_ranks_the_subdistricts() {
    let dir = demo();
    let xlsx = dir.path().join("circular.xlsx");
    ducha_ok(dir.path(), &["circular", "--district", "xxq", "--format", "xlsx", "--out", xlsx.to_str().unwrap()]);
    let book = read("xlsx", &xlsx);
    let sheet = &book["sheets"][0];
    assert_eq!(sheet["name"], "通报");
    let rows = sheet["rows"].as_array().unwrap();
    let names: Vec<&str> = rows[2..].iter().map(|r| r[0].as_str().unwrap()).collect();
    assert_eq!(names, ["XX街道", "YY街道", "ZZ街道", "合计"]);
    assert_eq!(rows[1][11], "得分排名");
    let ranks: Vec<f64> = rows[2..5].iter().map(|r| r[11].as_f64().unwrap()).collect();
    assert!(ranks.contains(&1.0), "{ranks:?}");
    assert_eq!(rows[5][4], 33.0, "the district's findings, as `ducha rollup` counts them");
    assert_eq!(book["sheets"][1]["name"], "问题类别");

    let docx = dir.path().join("circular.docx");
    ducha_ok(
        dir.path(),
        &["circular", "--district", "xxq", "--year", "2023", "--format", "docx", "--out", docx.to_str().unwrap()],
    );
    let doc = read("docx", &docx);
    let lines = texts(&doc);
    assert_eq!(lines[0], "XX区关于2023年度各街道意识形态工作责任制督查及整改情况的通报");
    for h in ["一、总体情况", "二、检查考核得分排名", "三、整改完成情况排名", "四、整改按期销号情况排名"]
    {
        index_of(&lines, h);
    }
    let tables = doc["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 4);
    assert_eq!(tables[0][0][0], "名次");
    assert_eq!(tables[0].as_array().unwrap().len(), 1 + 3);
    assert_eq!(doc["sections"][0]["top_mm"], 37.0);

    let bad = ducha(dir.path(), &["circular", "--district", "nowhere", "--format", "docx", "--out", "x.docx"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("未找到区"));
}

#[test]
fn unknown_names_and_bad_paths_get_clear_errors() {
    let dir = demo();
    let err = |args: &[&str]| {
        let out = ducha(dir.path(), args);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let out = dir.path().join("r.docx");
    let out = out.to_str().unwrap();
    assert!(
        err(&["report", "--tenant", "nowhere", "--inspection", "2023-ideology", "--out", out]).contains("未找到街道")
    );
    assert!(err(&["report", "--tenant", "xxjd", "--inspection", "2099-none", "--out", out]).contains("未找到督查"));
    assert!(err(&["report", "--tenant", "xxjd", "--inspection", "2030-ideology", "--out", out]).contains("未找到督查"));
    assert!(err(&[&REPORT[..], &["--out", "/nonexistent-dir/r.docx"]].concat()).contains("无法写入文件"));
    assert!(err(&[&REPORT[..], &["--out", dir.path().to_str().unwrap()]].concat()).contains("是目录"));
    assert!(err(&[&REPORT[..], &["--at-position", "99999999", "--out", out]].concat()).contains("超出日志末尾"));
    assert!(err(&[&REPORT[..], &["--as-of", "yesterday", "--out", out]].concat()).contains("RFC 3339"));
    assert!(err(&["ledger", "--tenant", "nowhere", "--out", out]).contains("未找到街道"));
}

fn admin() -> Actor {
    Actor {
        user_id: UserId::parse("xx-admin").unwrap(),
        grants: vec![Grant {
            role: Role::SubdistrictAdmin,
            scope: Scope::Tenant {
                district_id: DistrictId::parse("xxq").unwrap(),
                tenant_id: TenantId::parse("xxjd").unwrap(),
            },
        }],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_inspections_long_texts_and_characters_outside_the_bmp_give_valid_documents() {
    let dir = demo();
    let store = SqliteStore::open(
        &dir.path().join("ducha.db"),
        SqliteOptions { synchronous: Synchronous::Full, read_only: false, ..SqliteOptions::default() },
    )
    .unwrap();
    let t = TenantId::parse("xxjd").unwrap();
    let meta = Meta::new(admin(), chrono::Utc::now());
    let today = ducha_events::time::local_date(&meta.at);
    let plan = |id: &str, title: &str| InspectionCommand::Plan {
        inspection_id: InspectionId::parse(id).unwrap(),
        year: 2026,
        title: title.to_owned(),
        subject: "意识形态工作".to_owned(),
        communities: vec![ducha_events::ids::CommunityId::parse("dongfeng").unwrap()],
        team: vec![TeamMember { user_id: UserId::parse("xx-admin").unwrap(), leader: true }],
        methods: vec![InspectionMethod::new("site_visit")],
        checklist_id: None,
        planned_start: today,
        planned_end: today,
    };
    // An inspection only planned: nothing recorded.
    let empty = InspectionId::parse("empty").unwrap();
    commands::inspection(&store, &meta, &t, &empty, plan("empty", "空督查")).await.unwrap();
    // One with very long texts and characters outside the BMP (and XML's special characters).
    let long = InspectionId::parse("long").unwrap();
    commands::inspection(&store, &meta, &t, &long, plan("long", "𠀀𠀁督查<&>")).await.unwrap();
    commands::inspection(&store, &meta, &t, &long, InspectionCommand::Start { started_on: today }).await.unwrap();
    let long_text = format!("{}𠀀尾", "很长的问题描述，含“引号”与<标签>&符号。".repeat(900));
    assert!(long_text.chars().count() > 18_000);
    commands::inspection(
        &store,
        &meta,
        &t,
        &long,
        InspectionCommand::RecordAchievement {
            achievement_id: "a1".to_owned().try_into().unwrap(),
            category: "𠀀类成效".to_owned(),
            text: long_text.clone(),
            figures: vec![Figure { label: "𠀀活动".to_owned(), value: 3, unit: "次".to_owned() }],
            community_id: None,
        },
    )
    .await
    .unwrap();
    for n in 0..3 {
        commands::inspection(
            &store,
            &meta,
            &t,
            &long,
            InspectionCommand::RecordFinding {
                finding_id: format!("long-f{n}").try_into().unwrap(),
                community_id: None,
                category: "theory".to_owned(),
                title: format!("𠀀问题{n}"),
                description: long_text.clone(),
                severity: Severity::General,
            },
        )
        .await
        .unwrap();
    }
    store.close().await;

    for (id, format) in [("empty", "docx"), ("long", "docx"), ("long", "html"), ("long", "txt")] {
        let file = dir.path().join(format!("{id}.{format}"));
        ducha_ok(
            dir.path(),
            &["report", "--tenant", "xxjd", "--inspection", id, "--format", format, "--out", file.to_str().unwrap()],
        );
        if format == "docx" {
            let lines = texts(&read("docx", &file));
            if id == "empty" {
                assert_eq!(lines.iter().filter(|l| *l == "暂无。").count(), 3, "{lines:#?}");
            } else {
                assert!(lines[0].contains("𠀀𠀁督查<&>"));
                // Three findings of one category: the category heading, then 1. 2. 3.
                assert!(lines.contains(&"（一）理论学习".to_owned()), "{lines:#?}");
                assert!(lines.iter().any(|l| l.starts_with("1.𠀀问题0。") && l.ends_with("𠀀尾")));
                assert!(lines.iter().any(|l| l.contains("（𠀀活动3次）")));
            }
        }
    }
    let ledger = dir.path().join("ledger.xlsx");
    ducha_ok(dir.path(), &["ledger", "--tenant", "xxjd", "--inspection", "long", "--out", ledger.to_str().unwrap()]);
    let book = read("xlsx", &ledger);
    let rows = book["sheets"][0]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2 + 3);
    assert!(rows[2][4].as_str().unwrap().ends_with("𠀀尾"));
}
