//! Issue 14 in a real browser against `ducha serve --demo`: the community officer's day (我的问题
//! with findings in several states, 自查报告 written as numbered sections and submitted), and the
//! sub-district admin's smaller gaps (ledger filters in the address, a report issued as of a past
//! time, the cited 自查报告 on the inspection page).

use ducha_tests::Server;
use ducha_tests::browser::Browser;
use std::collections::BTreeSet;

#[test]
fn a_community_officer_has_work_and_writes_a_self_inspection() {
    let server = Server::demo();
    let base = server.base_url();
    let browser = Browser::launch();
    let page = browser.new_page();
    page.login(&base, "xx-dongfeng", "ducha-demo");

    // The menu: 我的问题 and 自查报告; 我的问题 holds 东风社区's findings in several states.
    page.wait_for("[data-testid=nav-self-inspections]");
    page.goto(&format!("{base}/tenants/xxjd/my-findings"));
    page.wait_for("[data-testid=my-findings-item]");
    let states: BTreeSet<String> =
        (0..page.eval("document.querySelectorAll('[data-testid=my-findings-item]').length").as_u64().unwrap_or(0))
            .filter_map(|i| {
                page.eval(&format!("document.querySelectorAll('[data-testid=my-findings-item]')[{i}].dataset.status"))
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
    for s in ["in_progress", "returned", "verified"] {
        assert!(states.contains(s), "东风社区 has a finding {s}: {states:?}");
    }
    assert!(states.len() >= 4, "several states: {states:?}");
    assert!(page.exists("[data-testid=warning-red]"), "an overdue one shows red");

    // 自查报告: the 2023 free-text report and the 2024 one in the official form are listed.
    page.click("[data-testid=nav-self-inspections]");
    page.wait_for("[data-page=self-inspections] [data-testid=self-inspection-row]");
    assert_eq!(page.texts_of("[data-testid=self-inspection-row]").len(), 2);
    page.click("[data-testid=self-inspection-row][data-id='2024-dongfeng'] [data-testid=self-inspection-view]");
    page.wait_for("[data-testid=self-inspection-preview]");
    page.wait_until(
        "document.querySelector('[data-testid=self-inspection-preview]').contentDocument.body.innerText.includes('一、工作开展情况')",
        "the preview shows the numbered report",
    );

    // Writing one: the common outline, a sub-part, the numbers shown as they will print.
    page.click("[data-testid=self-inspection-new]");
    let form = "[data-testid=self-inspection-form]";
    page.wait_for(form);
    page.click("[data-testid=section-fill]");
    page.click("[data-testid=section-add-2]");
    assert_eq!(page.texts_of("[data-testid=section-number]"), ["一、", "二、", "三、", "（一）"]);
    // An empty title is stopped in the browser, next to that section, by the server's own rule.
    page.click("[data-testid=self-inspection-submit]");
    page.wait_for_text("[data-testid=field-error][data-field='sections[3].title']", "不能为空");
    page.type_into("[data-testid=self-inspection-title-input]", "东风社区2025年度意识形态工作自查报告");
    page.set_value("[data-testid=self-inspection-year]", "2025");
    page.type_into("[data-testid=self-inspection-opening]", "现将自查情况报告如下：");
    page.eval(
        "(() => { const t = document.querySelectorAll('[data-testid=section-text]'); \
           const s = document.querySelectorAll('[data-testid=section-title]'); \
           const set = (el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }; \
           set(t[0], '开展理论宣讲12场。'); set(t[1], '台账不够完善。'); set(s[3], '完善台账'); set(t[3], '逐项补齐。'); })()",
    );
    page.click("[data-testid=self-inspection-submit]");
    page.wait_for_text("[data-testid=self-inspection-submitted]", "东风社区2025年度意识形态工作自查报告");
    page.wait_until(
        "document.querySelectorAll('[data-testid=self-inspection-row]').length === 3",
        "the new report is listed",
    );
    // It opens at once, printed in the official form.
    page.wait_until(
        "(() => { const f = document.querySelector('[data-testid=self-inspection-preview]'); \
           const t = f && f.contentDocument && f.contentDocument.body ? f.contentDocument.body.innerText : ''; \
           return t.includes('三、下一步打算') && t.includes('（一）完善台账。逐项补齐。'); })()",
        "the new report's preview",
    );
    page.screenshot("self-inspection");

    // Stored as sections through the API.
    let officer = server.login("xx-dongfeng");
    let list = server.get("/api/v1/tenants/xxjd/self-inspections?year=2025", Some(&officer)).json();
    let id = list["items"][0]["self_inspection_id"].as_str().expect("the new report").to_owned();
    let one = server.get(&format!("/api/v1/tenants/xxjd/self-inspections/{id}"), Some(&officer)).json();
    let titles: Vec<&str> = one["sections"].as_array().unwrap().iter().map(|s| s["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["工作开展情况", "存在的问题", "下一步打算", "完善台账"]);
    page.assert_no_errors();
}

#[test]
fn ledger_filters_live_in_the_address_and_a_report_is_issued_as_of_a_past_time() {
    let server = Server::demo();
    let base = server.base_url();
    let browser = Browser::launch();
    let page = browser.new_page();
    page.login(&base, "xx-admin", "ducha-demo");

    // A link with filters opens that view, its selects showing them.
    page.goto(&format!("{base}/tenants/xxjd/ledger?status=returned"));
    page.wait_for("[data-testid=ledger-row]");
    let statuses =
        page.eval("Array.from(document.querySelectorAll('[data-testid=ledger-row]')).map(r => r.dataset.status)");
    let statuses: Vec<&str> = statuses.as_array().unwrap().iter().filter_map(|s| s.as_str()).collect();
    assert!(!statuses.is_empty() && statuses.iter().all(|s| *s == "returned"), "{statuses:?}");
    assert_eq!(page.eval("document.querySelector('[data-testid=ledger-filter-status]').value"), "returned");
    // Changing a filter writes it into the address; that address reproduces the view.
    page.select_option("[data-testid=ledger-filter-status]", "verified");
    page.wait_until("location.search.includes('status=verified')", "the filter in the address");
    page.select_option("[data-testid=ledger-filter-community]", "dongfeng");
    page.wait_until("location.search.includes('community=dongfeng')", "both filters in the address");
    let url = page.url();
    page.goto(&url);
    page.wait_for("[data-testid=ledger-row]");
    assert_eq!(page.eval("document.querySelector('[data-testid=ledger-filter-status]').value"), "verified");
    page.wait_until(
        "document.querySelector('[data-testid=ledger-filter-community]').value === 'dongfeng'",
        "the community select shows the address's filter",
    );
    let rows = page.eval(
        "Array.from(document.querySelectorAll('[data-testid=ledger-row]')).map(r => r.dataset.status + ':' + r.dataset.finding)",
    );
    let rows: Vec<&str> = rows.as_array().unwrap().iter().filter_map(|s| s.as_str()).collect();
    assert_eq!(rows, ["verified:xx-2024-f3"], "东风社区's closed finding only");

    // The 2024 inspection: the cited 自查报告, and the report issued as of a past time.
    page.goto(&format!("{base}/tenants/xxjd/inspections/2024-ideology"));
    page.wait_for_text(
        "[data-testid=inspection-self-inspections]",
        "东风社区2024年度意识形态工作责任制落实情况自查报告",
    );
    page.set_value("[data-testid=report-as-of]", "2024-10-01T12:00");
    page.wait_for_text("[data-testid=report-as-of-note]", "2024-10-01 12:00");
    page.click("[data-testid=action-issue-report]");
    page.wait_for_text("[data-testid=inspection-report-issued]", "时点");
    let admin = server.login("xx-admin");
    let detail = server.get("/api/v1/tenants/xxjd/inspections/2024-ideology", Some(&admin)).json();
    let issued = detail["issued_reports"].as_array().unwrap().last().expect("an issued report").clone();
    assert_eq!(issued["as_of"], "2024-10-01T04:00:00.000000Z", "12:00 in Beijing: {issued}");
    // The bytes issued are the report of that time: regenerated at its position, the same hash.
    let at = issued["log_position"].as_u64().unwrap();
    let again = server.get(
        &format!(
            "/api/v1/tenants/xxjd/inspections/2024-ideology/report?format={}&at_position={at}",
            issued["format"].as_str().unwrap()
        ),
        Some(&admin),
    );
    assert_eq!(again.header("x-ducha-sha256"), issued["sha256"].as_str());
    page.assert_no_errors();
}
