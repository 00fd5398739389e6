//! 个人信息保护 in the web app (headless Chromium against the real server): the security
//! administrator sees how personal data is kept, erases a person named in a sub-district's records,
//! and the ledger screen then shows 「已删除的个人信息」 where the name was.

use ducha_tests::Server;
use ducha_tests::browser::Browser;
use serde_json::json;

#[test]
fn the_security_administrator_erases_a_person_and_the_ledger_screen_shows_it() {
    let server = Server::demo();
    let admin = server.login("xx-admin");
    let deadline = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive().to_string();
    let r = server.post_json(
        "/api/v1/tenants/xxjd/inspections/2023-ideology/findings/xx-2023-f2/assign",
        Some(&admin),
        &json!({"title": "抓好落实", "measure": "严格执行。", "responsible_unit": "街道党政办",
                "leader": "欧阳明", "person": "司马青", "deadline": deadline}),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    let browser = Browser::launch();
    let page = browser.new_page();
    let base = server.base_url();
    page.login(&base, "secadmin", "ducha-demo");
    page.click("[data-testid=nav-personal-data]");
    page.wait_for_text("[data-testid=personal-data-status]", "已加密保存（sm4-gcm");
    // Nothing happens without the confirmation; the form says why.
    page.select_option("[data-testid=field-kind]", "name");
    page.type_into("[data-testid=field-tenant_id]", "xxjd");
    page.type_into("[data-testid=field-name]", "司马青");
    page.type_into("[data-testid=field-reason]", "个人信息删除申请 2026-020");
    page.click("[data-testid=action-erase]");
    page.wait_for("[data-testid=field-error][data-field=confirm]");
    page.click("[data-testid=field-confirm]");
    page.click("[data-testid=action-erase]");
    page.wait_for("[data-testid=erasure-done]");
    page.wait_for_text("[data-testid=erasures]", "个人信息删除申请 2026-020");
    assert!(!page.text_of("[data-testid=erasures]").contains("司马青"), "the record names nobody");
    // Erasing the same person again (the sub-district stays filled in): the server's answer shows.
    page.type_into("[data-testid=field-name]", "司马青");
    page.type_into("[data-testid=field-reason]", "again");
    page.click("[data-testid=field-confirm]");
    page.click("[data-testid=action-erase]");
    page.wait_for_text("[data-page=personal-data]", "未找到");
    page.expect_failed_request(404, "/security/personal-data/erasures");
    page.assert_no_errors();

    // The sub-district's ledger screen.
    let ledger = browser.new_page();
    ledger.login(&base, "xx-admin", "ducha-demo");
    ledger.goto(&format!("{base}/tenants/xxjd/ledger"));
    ledger.wait_for_text("[data-page=ledger]", "街道党政办 / 已删除的个人信息");
    let text = ledger.text_of("[data-page=ledger]");
    assert!(!text.contains("司马青"), "{text}");
    ledger.assert_no_errors();
}
