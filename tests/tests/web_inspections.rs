//! The inspection screens in a real browser against `ducha serve --demo`: 督查列表 and its
//! 制定督查计划 form, 督查详情 with its command forms (scope, team, start, finding, deduction),
//! the dashboard's numbers following along, browser-side and server-side form errors next to their
//! field, and the 督查报告 (HTML preview, DOCX download with the bearer token, 签发 with SHA-256).

use ducha_tests::Server;
use ducha_tests::browser::{Browser, Page};
use std::time::Instant;

fn js(s: &str) -> String {
    serde_json::to_string(s).expect("json string")
}

/// The number on a dashboard card.
fn card(page: &Page<'_>, name: &str) -> u64 {
    let text = page.text_of(&format!("[data-testid=card-{name}] .card-value"));
    text.trim().parse().unwrap_or_else(|_| page.fail(&format!("card {name}: {text:?}")))
}

fn count(page: &Page<'_>, selector: &str) -> usize {
    page.texts_of(selector).len()
}

/// Waits until exactly `n` elements match `selector`.
fn wait_count(page: &Page<'_>, selector: &str, n: usize) {
    page.wait_until(
        &format!("document.querySelectorAll({}).length === {n}", js(selector)),
        &format!("{n} × {selector}"),
    );
}

#[test]
fn admin_plans_scopes_staffs_starts_and_records_through_the_ui() {
    let t0 = Instant::now();
    let server = Server::demo();
    let base = server.base_url();
    let browser = Browser::launch();
    let page = browser.new_page();
    page.login(&base, "xx-admin", "ducha-demo");
    page.wait_for("[data-testid=card-inspections]");
    let (inspections_before, open_before) = (card(&page, "inspections"), card(&page, "findings-open"));

    // The dashboard's button leads to the list; the list has the demo's 2023 inspection.
    page.click("[data-testid=action-plan-inspection]");
    page.wait_for("[data-page=inspections] [data-testid=inspections-row]");
    let before_rows = count(&page, "[data-testid=inspections-row]");
    assert!(page.texts_of("[data-testid=inspections-row]").iter().any(|r| r.contains("2023")));

    // 制定督查计划: an empty title is caught in the browser, next to the title field.
    page.click("[data-testid=action-open-plan-form]");
    let form = "[data-testid=inspections-plan-form]";
    page.wait_for(&format!("{form} [data-testid=field-title]"));
    page.click("[data-testid=action-plan-inspection]");
    let title_error = format!("{form} [data-testid=field-error][data-field=title]");
    assert_eq!(page.text_of(&title_error), "请填写督查标题");
    assert_eq!(page.attribute(&title_error, "data-code").as_deref(), Some("client_validation"));

    page.type_into(&format!("{form} [data-testid=field-title]"), "浏览器测试督查");
    let today = chrono::Utc::now().date_naive();
    page.set_value(&format!("{form} [data-testid=field-planned_start]"), &today.to_string());
    page.set_value(&format!("{form} [data-testid=field-planned_end]"), &(today + chrono::Days::new(30)).to_string());
    page.click(&format!("{form} [data-testid=field-leader][value=xx-duchazu1]"));
    page.click("[data-testid=action-plan-inspection]");

    // The new inspection opens: planned, the whole sub-district in scope, one team member.
    page.wait_for("[data-page=inspection] [data-testid=inspection-status][data-status=planned]");
    assert_eq!(page.text_of("[data-testid=inspection-title]"), "浏览器测试督查");
    let nav = page.attribute("[data-testid=nav-inspections]", "class").unwrap_or_default();
    assert!(nav.contains("active"), "the menu's 督查 entry is lit on the detail page: {nav:?}");
    let scope = count(&page, "[data-testid=inspection-scope-community]");
    assert!(scope >= 2, "scope {scope}");
    assert_eq!(count(&page, "[data-testid=inspection-team-member]"), 1);

    // 调整督查范围: drop the last community.
    page.click("[data-testid=action-open-scope-form]");
    let last = page.eval(
        "(() => { const l = document.querySelectorAll('[data-testid=form-scope] [data-testid=field-communities]'); \
         return l[l.length - 1].value; })()",
    );
    page.click(&format!("[data-testid=form-scope] [data-testid=field-communities][value={}]", last.as_str().unwrap()));
    page.click("[data-testid=action-change-scope]");
    wait_count(&page, "[data-testid=inspection-scope-community]", scope - 1);

    // 调整督查组: add the second inspector.
    page.click("[data-testid=action-open-team-form]");
    page.click("[data-testid=form-team] [data-testid=field-team][value=xx-duchazu2]");
    page.click("[data-testid=action-change-team]");
    wait_count(&page, "[data-testid=inspection-team-member]", 2);

    // 启动督查 (today), then the recording forms appear.
    page.click("[data-testid=action-start-inspection]");
    page.wait_for("[data-testid=inspection-status][data-status=in_progress]");
    page.wait_for("[data-testid=form-finding]");

    // Someone else writes meanwhile (the team leader, through the API): the page's ETag is stale,
    // so its next command is refused (412, nothing written) and the form says to reload.
    let id = page.url().rsplit('/').next().expect("inspection id").to_owned();
    let leader = server.login("xx-duchazu1");
    let r = server.post_json(
        &format!("/api/v1/tenants/xxjd/inspections/{id}/achievements"),
        Some(&leader),
        &serde_json::json!({"category": "宣传思想工作", "text": "督查组另行录入。"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    page.type_into("[data-testid=form-finding] [data-testid=field-title]", "过期版本的问题");
    page.type_into("[data-testid=form-finding] [data-testid=field-description]", "不应写入。");
    page.click("[data-testid=action-record-finding]");
    let stale = "[data-testid=form-finding] [data-testid=error]";
    assert_eq!(page.attribute(stale, "data-code").as_deref(), Some("version_mismatch"));
    assert!(page.text_of(stale).contains("请载入最新内容"), "{}", page.text_of(stale));
    assert!(!page.exists("[data-testid=inspection-finding]"));
    page.clear_errors();
    // 载入最新内容: the other writer's achievement shows, and the form starts afresh.
    page.click("[data-testid=form-finding] [data-testid=action-reload-inspection]");
    page.wait_for_text("[data-testid=inspection-achievement]", "督查组另行录入");
    page.wait_gone("[data-testid=form-finding] [data-testid=error]");

    // 记录存在问题.
    page.type_into("[data-testid=form-finding] [data-testid=field-title]", "理论学习记录不完整");
    page.type_into("[data-testid=form-finding] [data-testid=field-description]", "部分月份缺少学习记录。");
    page.click("[data-testid=action-record-finding]");
    page.wait_for_text("[data-testid=inspection-finding]", "理论学习记录不完整");
    assert_eq!(page.text_of("[data-testid=inspection-finding-status]"), "待交办");

    // 记录扣分 above what the item has: the server's Chinese error, next to the points field.
    page.type_into("[data-testid=form-deduction] [data-testid=field-points]", "999");
    page.type_into("[data-testid=form-deduction] [data-testid=field-reason]", "测试超额扣分");
    page.click("[data-testid=action-record-deduction]");
    let points_error = "[data-testid=form-deduction] [data-testid=field-error][data-field=points]";
    page.wait_for(points_error);
    assert_eq!(page.attribute(points_error, "data-code").as_deref(), Some("deduction_exceeds_item"));
    assert!(page.text_of(points_error).contains("超过评分项"), "{}", page.text_of(points_error));
    assert_clean_but_the_refused_deduction(&page);
    // A valid deduction goes through and shows in the scores.
    page.type_into("[data-testid=form-deduction] [data-testid=field-points]", "1");
    page.click("[data-testid=action-record-deduction]");
    page.wait_for_text("[data-testid=inspection-deduction]", "测试超额扣分");

    // 座谈交流 in the first community of the scope.
    page.type_into("[data-testid=form-fieldwork] [data-testid=field-participants]", "社区党委书记、宣传委员");
    page.type_into("[data-testid=form-fieldwork] [data-testid=field-notes]", "听取社区意识形态工作汇报。");
    page.click("[data-testid=action-record-fieldwork]");
    page.wait_for_text("[data-testid=inspection-fieldwork-record]", "听取社区意识形态工作汇报");

    // 主要工作开展情况 with figures; a figure line without a number is caught in the browser.
    let a = "[data-testid=form-achievement]";
    page.type_into(&format!("{a} [data-testid=field-category]"), "加强理论武装，坚定理想信念");
    page.type_into(&format!("{a} [data-testid=field-text]"), "开展理论宣讲活动。");
    page.type_into(&format!("{a} [data-testid=field-figures]"), "理论宣讲会 十 场");
    page.click("[data-testid=action-record-achievement]");
    page.wait_for(&format!("{a} [data-testid=field-error][data-field=figures]"));
    page.type_into(&format!("{a} [data-testid=field-figures]"), "理论宣讲会 10 场");
    page.click("[data-testid=action-record-achievement]");
    assert_eq!(page.text_of("[data-testid=inspection-figure]"), "理论宣讲会 10场");

    page.eval("window.scrollTo(0, 0) || true");
    page.screenshot("inspection-detail");
    page.screenshot_full_page("inspection-detail-full");

    // The dashboard follows: one more inspection this year, one more open finding.
    page.click("[data-testid=nav-dashboard]");
    page.wait_for("[data-testid=card-inspections]");
    page.wait_until(
        &format!(
            "document.querySelector('[data-testid=card-inspections] .card-value').innerText.trim() === '{}'",
            inspections_before + 1
        ),
        "the inspections card to count the new inspection",
    );
    assert_eq!(card(&page, "findings-open"), open_before + 1);

    // The list shows it: planned → in progress, its communities and its finding.
    page.click("[data-testid=nav-inspections]");
    wait_count(&page, "[data-testid=inspections-row]", before_rows + 1);
    let row =
        page.texts_of("[data-testid=inspections-row]").into_iter().find(|r| r.contains("浏览器测试督查")).unwrap();
    assert!(row.contains("进行中"), "{row}");
    page.screenshot("inspections-list");

    // 督查结论 ends it: no more recording forms.
    page.click("[data-testid=inspections-row] [data-testid=inspections-open]");
    page.type_into("[data-testid=form-conclusion] [data-testid=field-assessment]", "总体良好");
    page.click("[data-testid=action-conclude-inspection]");
    page.wait_for("[data-testid=inspection-status][data-status=concluded]");
    assert!(!page.exists("[data-testid=form-finding]"));
    assert!(page.text_of("[data-testid=inspection-conclusion]").contains("总体良好"));
    page.assert_no_errors();
    println!("web_inspections plan→record: {:?}", t0.elapsed());
}

#[test]
fn the_2023_report_previews_downloads_and_issues() {
    let t0 = Instant::now();
    let server = Server::demo();
    let base = server.base_url();
    let browser = Browser::launch();
    let page = browser.new_page();
    page.login(&base, "xx-admin", "ducha-demo");
    page.goto(&format!("{base}/tenants/xxjd/inspections/2023-ideology"));
    page.wait_for("[data-testid=inspection-status][data-status=concluded]");
    // The sample's findings, with status badges, and no recording forms on a concluded inspection.
    assert_eq!(count(&page, "[data-testid=inspection-finding]"), 5);
    assert!(page.texts_of("[data-testid=inspection-finding-status]").iter().any(|s| s == "已销号"));
    assert!(!page.exists("[data-testid=form-finding]"));

    // HTML preview in a sandboxed frame: the sample's headings.
    page.click("[data-testid=action-preview-report]");
    page.wait_for("[data-testid=inspection-report-preview]");
    assert_eq!(
        page.attribute("[data-testid=inspection-report-preview]", "sandbox").as_deref(),
        Some("allow-same-origin")
    );
    let body =
        "document.querySelector('[data-testid=inspection-report-preview]').contentDocument?.body?.innerText || ''";
    page.wait_until(&format!("({body}).includes('一、主要工作开展情况')"), "the report preview");
    let text = page.eval(body).as_str().unwrap_or_default().to_owned();
    for h in ["二、存在主要问题", "三、下一步工作计划"] {
        assert!(text.contains(h), "{h} missing from the preview");
    }

    // DOCX download through fetch with the bearer token: a blob becomes an object URL.
    page.eval(
        "(() => { window.__blobs = []; const orig = URL.createObjectURL; \
         URL.createObjectURL = b => { window.__blobs.push([b.size, b.type]); return orig.call(URL, b); }; \
         return true; })()",
    );
    page.click("[data-testid=action-download-report]");
    page.wait_until("window.__blobs.length === 1", "the report download");
    let blob = page.eval("window.__blobs[0]");
    assert!(blob[0].as_u64().unwrap_or(0) > 2_000, "{blob}");
    assert!(blob[1].as_str().unwrap_or("").contains("wordprocessingml"), "{blob}");

    // 签发报告: the SHA-256 is shown and the issued report is listed.
    page.click("[data-testid=action-issue-report]");
    let sha = page.text_of("[data-testid=inspection-report-sha256]");
    assert!(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()), "{sha:?}");
    page.wait_for_text("[data-testid=inspection-issued-report]", &sha);
    page.assert_no_errors();

    // An inspector sees the report but neither 签发 nor the admin's commands.
    let other = browser.new_page();
    other.login(&base, "xx-duchazu2", "ducha-demo");
    other.goto(&format!("{base}/tenants/xxjd/inspections/2023-ideology"));
    other.wait_for("[data-testid=action-preview-report]");
    assert!(!other.exists("[data-testid=action-issue-report]"));
    other.goto(&format!("{base}/tenants/xxjd/inspections"));
    other.wait_for("[data-testid=inspections-row]");
    assert!(!other.exists("[data-testid=action-open-plan-form]"));

    // On a phone the detail fits the width (tables scroll inside their own box).
    other.set_viewport(390, 844, true);
    other.goto(&format!("{base}/tenants/xxjd/inspections/2023-ideology"));
    other.wait_for("[data-testid=inspection-finding]");
    let overflow = other.eval("document.documentElement.scrollWidth - window.innerWidth");
    assert!(overflow.as_i64().unwrap_or(1) <= 0, "horizontal overflow {overflow}");
    other.screenshot("inspection-detail-phone");
    println!("web_inspections report: {:?}", t0.elapsed());
}

/// Until now, the only failed request is the refused deduction (422); then starts afresh.
fn assert_clean_but_the_refused_deduction(page: &Page<'_>) {
    let failed = page.failed_requests();
    assert!(failed.len() == 1 && failed[0].url.ends_with("/deductions"), "{failed:?}");
    page.clear_errors();
}
