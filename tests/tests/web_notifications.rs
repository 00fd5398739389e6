//! Issue 14's notification centre in a real browser against `ducha serve --demo`: the 东风社区
//! officer's bell shows the unread count of a 临期 reminder and a 催办, the 消息中心 lists them, one
//! opens its finding (and is read), "全部标为已读" empties the bell; XX街道's admin adds a channel on
//! 「提醒与推送」.

use ducha_tests::Server;
use ducha_tests::browser::Browser;
use serde_json::json;

fn today() -> chrono::NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

#[test]
fn the_bell_and_the_notification_centre() {
    let server = Server::start(true, &[("DUCHA_NOTIFY_INTERVAL_SECONDS", "1")]);
    // A 东风社区 finding due in two days, and a 催办 on it.
    let inspection = server.plan_dongfeng_inspection("消息中心浏览器测试", today());
    server.start_inspection(&inspection, today());
    let inspector = server.login("xx-duchazu1");
    let base = format!("/api/v1/tenants/xxjd/inspections/{inspection}/findings");
    let r = server.post_json(
        &base,
        Some(&inspector),
        &json!({"community_id": "dongfeng", "category": "theory", "title": "宣传栏更新不及时（浏览器）",
                "description": "部分宣传栏内容仍为去年的。"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let finding = r.json()["id"].as_str().unwrap().to_owned();
    let admin = server.login("xx-admin");
    let deadline = (today() + chrono::Duration::days(2)).to_string();
    let r = server.post_json(
        &format!("{base}/{finding}/assign"),
        Some(&admin),
        &json!({"title": "整改", "measure": "更新宣传栏", "responsible_unit": "东风社区", "leader": "赵书记",
                "person": "钱干事", "deadline": deadline}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = server.post_json(&format!("{base}/{finding}/remind"), Some(&admin), &json!({"message": "请本周内完成"}));
    assert_eq!(r.status, 200, "{}", r.text());
    // Wait until the notifier has put both in the officer's list.
    let officer = server.login("xx-dongfeng");
    let deadline_at = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let unread = loop {
        let n = server.get("/api/v1/me/notifications/unread-count", Some(&officer)).json()["unread"].as_u64().unwrap();
        if n >= 2 || std::time::Instant::now() > deadline_at {
            break n;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    assert!(unread >= 2, "{unread}");

    let browser = Browser::launch();
    let page = browser.new_page();
    page.login(&server.base_url(), "xx-dongfeng", "ducha-demo");
    page.wait_for_text("[data-testid=bell-count]", &unread.to_string());
    page.click("[data-testid=bell]");
    page.wait_for("[data-page=notifications] [data-testid=notification][data-kind=due_soon]");
    let texts = page.texts_of("[data-testid=notification]");
    assert!(texts.iter().any(|t| t.contains("【临期提醒】东风社区「宣传栏更新不及时（浏览器）」")), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("请本周内完成")), "{texts:?}");
    page.screenshot("notifications");
    // Opening one goes to its finding and reads it.
    page.click("[data-testid=notification][data-kind=due_soon][data-unread=true] [data-testid=notification-open]");
    page.wait_for("[data-page=finding]");
    assert!(page.url().ends_with(&format!("/findings/{finding}")), "{}", page.url());
    page.wait_for_text("[data-testid=bell-count]", &(unread - 1).to_string());
    page.click("[data-testid=bell]");
    page.wait_for("[data-testid=notifications-read-all]");
    page.click("[data-testid=notifications-read-all]");
    page.wait_gone("[data-testid=bell-count]");
    assert!(!page.exists("[data-testid=notification][data-unread=true]"));
    page.assert_no_errors();

    // The admin's 提醒与推送: add a webhook channel; the URL's query is not shown.
    let admin_page = browser.new_page();
    admin_page.login(&server.base_url(), "xx-admin", "ducha-demo");
    admin_page.click("[data-testid=nav-notify]");
    admin_page.wait_for("[data-page=notify] [data-testid=notify-settings]");
    admin_page.wait_until(
        "document.querySelector('[data-testid=notify-due_soon_days]').value === '3'",
        "the default settings",
    );
    admin_page.select_option("[data-testid=channel-kind]", "webhook");
    admin_page.type_into("[data-testid=channel-name]", "OA 系统");
    admin_page.type_into("[data-testid=channel-url]", "http://127.0.0.1:9/hook?token=secret-token");
    admin_page.type_into("[data-testid=channel-secret]", "hook-secret");
    admin_page.click("[data-testid=channel-add]");
    admin_page.wait_for("[data-testid=channels-row]");
    let row = admin_page.text_of("[data-testid=channels-row]");
    assert!(
        row.contains("OA 系统") && row.contains("http://127.0.0.1:9/hook?…") && !row.contains("secret-token"),
        "{row}"
    );
    // A bad address: the server's Chinese message.
    admin_page.type_into("[data-testid=channel-name]", "坏地址");
    admin_page.type_into("[data-testid=channel-url]", "ftp://x");
    admin_page.click("[data-testid=channel-add]");
    admin_page.wait_for_text("[data-testid=error]", "https://");
    admin_page.screenshot("notify-settings");
    admin_page.clear_errors();
}
