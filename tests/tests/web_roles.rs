//! Roles, administration and live refresh in a real browser against the demo:
//! - every demo role gets exactly its menu (`nav-*`), and a page it may not use, opened by its
//!   address, says so plainly;
//! - the 街道 dashboard updates without a reload when another user records a finding through the
//!   API (server-sent events);
//! - the sub-district admin creates a community and a user (bound to it) through the forms, with
//!   the browser's own checks and the server's errors next to the field.

use std::time::Instant;

use ducha_tests::Server;
use ducha_tests::browser::{Browser, Page};
use serde_json::json;

fn menu(page: &Page<'_>) -> Vec<String> {
    let v = page.eval("Array.from(document.querySelectorAll('[data-testid^=nav-]'), a => a.dataset.testid.slice(4))");
    serde_json::from_value(v).expect("menu ids")
}

fn expect_forbidden(page: &Page<'_>, base: &str, path: &str) {
    page.goto(&format!("{base}{path}"));
    page.wait_for("[data-testid=error][data-code=forbidden]");
    let text = page.text_of("[data-testid=error][data-code=forbidden]");
    assert!(text.contains("权限"), "{path}: {text:?}");
}

#[test]
fn each_role_gets_exactly_its_menu_and_a_clear_refusal_elsewhere() {
    let t0 = Instant::now();
    let server = Server::demo();
    let base = server.base_url();
    let browser = Browser::launch();
    // (login, menu, a page the role may not use)
    let cases: [(&str, &[&str], Option<&str>); 10] = [
        ("admin", &["platform"], Some("/tenants/xxjd/users")),
        ("sysadmin", &["accounts"], Some("/security/policy")),
        ("secadmin", &["accounts", "security-policy", "personal-data"], Some("/security/audit")),
        ("audadmin", &["security-audit"], Some("/accounts")),
        ("qu-xcb", &["district"], Some("/tenants/xxjd/users")),
        ("qu-jjw", &["district", "audit"], Some("/platform")),
        (
            "xx-admin",
            &["dashboard", "inspections", "ledger", "self-inspections", "communities", "checklists", "users", "notify"],
            Some("/tenants/yyjd"),
        ),
        ("xx-duchazu1", &["dashboard", "inspections", "ledger", "self-inspections"], Some("/tenants/xxjd/users")),
        ("xx-dongfeng", &["my-findings", "self-inspections"], Some("/tenants/xxjd")),
        ("xx-jiwei", &["dashboard", "audit"], Some("/tenants/xxjd/communities")),
    ];
    for (user, want, forbidden) in cases {
        // A new tab: a new session (the token lives in sessionStorage).
        let page = browser.new_page();
        page.login(&base, user, "ducha-demo");
        page.wait_for("[data-testid^=nav-]");
        assert_eq!(menu(&page), want, "menu of {user}");
        // The first menu entry is the home page.
        page.wait_for(&format!("[data-page=\"{}\"]", want[0]));
        if user == "admin" {
            // The platform admin's home: districts listed, the create forms there.
            page.wait_for("[data-testid=platform-district][data-id=xxq]");
            page.wait_for("[data-testid=platform-tenant][data-id=xxjd]");
            assert!(page.exists("[data-testid=action-create-district]"));
            page.screenshot("platform");
            // …and from there the district overview of each district.
            page.click("[data-testid=platform-district][data-id=xxq] [data-testid=action-open-district]");
            page.wait_for("[data-page=district] [data-testid=district-row]");
            // The platform admin runs a sub-district's master data, but no longer its accounts
            // (三员分立: refused below).
            page.goto(&format!("{base}/tenants/xxjd/communities"));
            page.wait_for("[data-page=communities]");
        }
        page.assert_no_errors();
        if let Some(path) = forbidden {
            expect_forbidden(&page, &base, path);
            // The menu is still there to go on with.
            assert_eq!(menu(&page), want, "menu of {user} on a refused page");
        }
    }
    println!("web_roles: 10 roles in {:?}", t0.elapsed());
}

/// Today in Asia/Shanghai.
fn today() -> chrono::NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

fn card_value(page: &Page<'_>, card: &str) -> u64 {
    page.text_of(&format!("[data-testid=card-{card}] .card-value")).trim().parse().expect("card value")
}

#[test]
fn the_dashboard_updates_live_when_another_user_records_a_finding() {
    let t0 = Instant::now();
    let server = Server::demo();
    let base = server.base_url();
    let browser = Browser::launch();
    let page = browser.new_page();
    page.login(&base, "xx-admin", "ducha-demo");
    page.wait_for("[data-page=dashboard] [data-testid=card-findings-open]");
    page.wait_for("[data-testid=live-status][data-state=connected]");
    assert!(!page.exists("[data-testid=live-updated]"));
    // The four charts of the 街道首页, with Chinese labels.
    for chart in ["findings-by-category", "rectifications-by-status", "monthly-trend", "progress-by-community"] {
        page.wait_for(&format!("[data-testid=chart-{chart}] svg"));
    }
    let progress = page.text_of("[data-testid=chart-progress-by-community]");
    assert!(progress.contains("东风社区"), "community progress chart: {progress}");
    assert!(page.text_of("[data-testid=chart-monthly-trend]").contains('月'));
    let open_before = card_value(&page, "findings-open");
    let inspections_before = card_value(&page, "inspections");
    // Anything that survives only as long as the page is not reloaded.
    page.eval("window.__notReloaded = true");

    // Another session (through the API): plan and start an inspection, the inspector records a finding.
    let day = today();
    let id = server.plan_dongfeng_inspection("实时刷新测试督查", day);
    let base_path = format!("/api/v1/tenants/xxjd/inspections/{id}");
    server.start_inspection(&id, day);
    // The planned inspection already shows, without a reload.
    page.wait_until(
        &format!(
            "document.querySelector('[data-testid=card-inspections] .card-value')?.innerText.trim() === '{}'",
            inspections_before + 1
        ),
        "the inspections card counts the new inspection",
    );
    page.wait_for("[data-testid=live-updated]");

    let inspector = server.login("xx-duchazu1");
    let finding = json!({
        "community_id": "dongfeng",
        "category": "theory",
        "title": "理论学习联系实际不够（实时）",
        "description": "学习记录泛泛而谈。",
    });
    let t_write = Instant::now();
    let r = server.post_json(&format!("{base_path}/findings"), Some(&inspector), &finding);
    assert_eq!(r.status, 201, "{}", r.text());
    page.wait_until(
        &format!(
            "document.querySelector('[data-testid=card-findings-open] .card-value')?.innerText.trim() === '{}'",
            open_before + 1
        ),
        "the open-findings card counts the new finding",
    );
    println!("web_roles: finding on screen {:?} after the write", t_write.elapsed());
    assert_eq!(page.eval("window.__notReloaded === true"), true, "updated in place, not reloaded");
    assert!(page.text_of("[data-testid=live-updated]").contains("已更新"));
    page.screenshot("dashboard-live");
    page.assert_no_errors();

    // An auditor's dashboard follows too, but not in a historical view: the stream stops while
    // "as of" is set (a past state does not change) and resumes when it is cleared.
    let audit = browser.new_page();
    audit.login(&base, "xx-jiwei", "ducha-demo");
    audit.wait_for("[data-page=dashboard] [data-testid=live-status][data-state=connected]");
    audit.eval(
        "(() => { const i = document.querySelector('[data-testid=asof-input]'); i.value = '2024-03-15T12:00'; \
         i.dispatchEvent(new Event('change', { bubbles: true })); return true; })()",
    );
    audit.wait_for("[data-testid=asof-banner]");
    audit.wait_for("[data-testid=live-status][data-state=off]");
    // On 2024-03-15 the sample's five findings were all open (2024's inspection was yet to come).
    audit.wait_until(
        "document.querySelector('[data-testid=card-findings-open] .card-value')?.innerText.trim() === '5'",
        "the historical view's open findings",
    );
    let closed = card_value(&audit, "findings-open");
    let r = server.post_json(
        &format!("{base_path}/findings"),
        Some(&inspector),
        &json!({
            "community_id": "dongfeng", "category": "theory", "title": "历史视图中不应出现", "description": "—",
        }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(card_value(&audit, "findings-open"), closed, "the historical view does not change");
    assert!(!audit.exists("[data-testid=live-updated]"));
    audit.click("[data-testid=asof-clear]");
    audit.wait_for("[data-testid=live-status][data-state=connected]");
    audit.wait_until(
        &format!(
            "document.querySelector('[data-testid=card-findings-open] .card-value')?.innerText.trim() === '{}'",
            open_before + 2
        ),
        "the present again, with both new findings",
    );
    println!("web_roles: live test in {:?}", t0.elapsed());
}

#[test]
fn the_admin_creates_a_community_and_a_user_through_the_forms() {
    let t0 = Instant::now();
    let server = Server::demo();
    let base = server.base_url();
    let browser = Browser::launch();
    let page = browser.new_page();
    page.login(&base, "xx-admin", "ducha-demo");

    // 社区: the sample's six, then a bad id is stopped in the browser, a taken id by the server.
    page.click("[data-testid=nav-communities]");
    page.wait_for("[data-testid=communities-row][data-id=dongfeng]");
    let rows = || page.eval("document.querySelectorAll('[data-testid=communities-row]').length");
    assert_eq!(rows(), 6);
    let form = "[data-testid=communities-form]";
    page.type_into(&format!("{form} [data-testid=field-community_id]"), "新 华");
    page.type_into(&format!("{form} [data-testid=field-name]"), "新华社区");
    page.click("[data-testid=action-add-community]");
    page.wait_for(&format!("{form} [data-testid=field-error][data-field=community_id]"));
    page.type_into(&format!("{form} [data-testid=field-community_id]"), "dongfeng");
    page.click("[data-testid=action-add-community]");
    page.wait_until(
        "(() => { const e = document.querySelector('[data-testid=communities-form] [data-testid=field-error], \
         [data-testid=communities-form] [data-testid=error]'); return e && !e.innerText.includes('英文字母'); })()",
        "the server's error for a taken id",
    );
    let server_error = page.eval(
        "document.querySelector('[data-testid=communities-form] [data-testid=field-error], \
         [data-testid=communities-form] [data-testid=error]').innerText",
    );
    println!("taken id: {server_error}");
    // The refused POST was the only failed request so far.
    let failed: Vec<String> = page.failed_requests().iter().map(|f| f.url.clone()).collect();
    assert!(failed.iter().all(|u| u.ends_with("/api/v1/tenants/xxjd/communities")), "{failed:?}");
    page.clear_errors();
    assert_eq!(rows(), 6, "nothing added");
    page.type_into(&format!("{form} [data-testid=field-community_id]"), "xinhua");
    page.click("[data-testid=action-add-community]");
    page.wait_for("[data-testid=communities-row][data-id=xinhua]");
    assert_eq!(rows(), 7);
    assert!(!page.exists(&format!("{form} [data-testid=field-error]")));
    page.screenshot("admin-communities");
    let admin = server.login("xx-admin");
    let listed = server.get("/api/v1/tenants/xxjd/communities", Some(&admin)).json();
    assert!(listed.as_array().unwrap().iter().any(|c| c["community_id"] == "xinhua" && c["name"] == "新华社区"));

    // 考核细则: items typed one per line; a line without points is stopped in the browser.
    page.click("[data-testid=nav-checklists]");
    page.wait_for("[data-testid=categories-row]");
    page.wait_for("[data-testid=checklists-item]");
    // The page read the tenant's version; someone else writes first: If-Match makes the server
    // refuse (412, shown), the list reloads, and the second try goes through.
    let r =
        server.post_json("/api/v1/tenants/xxjd/categories", Some(&admin), &json!({"code": "other", "name": "其他"}));
    assert_eq!(r.status, 201, "{}", r.text());
    let gf = "[data-testid=categories-form]";
    page.type_into(&format!("{gf} [data-testid=field-code]"), "party");
    page.type_into(&format!("{gf} [data-testid=field-name]"), "党建引领");
    page.click("[data-testid=action-add-category]");
    page.wait_for(&format!("{gf} [data-testid=error][data-code=version_mismatch]"));
    page.wait_until(
        "Array.from(document.querySelectorAll('[data-testid=categories-row]')).some(r => r.innerText.includes('其他'))",
        "the list reloaded with the other write",
    );
    page.click("[data-testid=action-add-category]");
    page.wait_until(
        "Array.from(document.querySelectorAll('[data-testid=categories-row]')).some(r => r.innerText.includes('党建引领'))",
        "the category added on the second try",
    );
    page.clear_errors();
    let cf = "[data-testid=checklists-form]";
    let set_items = |text: &str| {
        page.eval(&format!(
            "(() => {{ const t = document.querySelector('{cf} [data-testid=field-items]'); t.value = {}; \
             t.dispatchEvent(new Event('input', {{ bubbles: true }})); return true; }})()",
            serde_json::Value::from(text)
        ));
    };
    page.type_into(&format!("{cf} [data-testid=field-checklist_id]"), "test-2025");
    page.type_into(&format!("{cf} [data-testid=field-title]"), "2025年意识形态工作检查考核细则（测试）");
    set_items("1.1 理论学习中心组学习制度健全 5\n1.2 意识形态工作台账");
    page.click("[data-testid=action-define-checklist]");
    page.wait_for_text(&format!("{cf} [data-testid=field-error][data-field=items]"), "第 2 行");
    set_items("1.1 理论学习中心组学习制度健全 5\n1.2 意识形态工作台账 2.5");
    page.click("[data-testid=action-define-checklist]");
    page.wait_for("[data-testid=checklists-item][data-id=test-2025]");
    assert!(page.text_of("[data-testid=checklists-item][data-id=test-2025] summary").contains("满分 7.5"));
    page.screenshot("admin-checklists");
    let cl = server.get("/api/v1/tenants/xxjd/checklists/test-2025", Some(&admin)).json();
    assert_eq!(cl["items"][1]["max_points"], 2.5);

    // 用户: a community officer bound to the new community.
    page.click("[data-testid=nav-users]");
    page.wait_for("[data-testid=users-row]");
    let uf = "[data-testid=users-form]";
    page.type_into(&format!("{uf} [data-testid=field-username]"), "xx-xinhua");
    page.type_into(&format!("{uf} [data-testid=field-display_name]"), "新华社区 联络员");
    page.type_into(&format!("{uf} [data-testid=field-password]"), "short");
    page.select_option(&format!("{uf} [data-testid=field-role]"), "community_officer");
    page.click("[data-testid=action-create-user]");
    page.wait_for(&format!("{uf} [data-testid=field-error][data-field=password]"));
    page.type_into(&format!("{uf} [data-testid=field-password]"), "xinhua-2025");
    page.click("[data-testid=action-create-user]");
    page.wait_for(&format!("{uf} [data-testid=field-error][data-field=community_id]"));
    page.select_option(&format!("{uf} [data-testid=field-community_id]"), "xinhua");
    page.click("[data-testid=action-create-user]");
    let row =
        "Array.from(document.querySelectorAll('[data-testid=users-row]')).find(r => r.innerText.includes('xx-xinhua'))";
    page.wait_until(&format!("{row}?.innerText.includes('新华社区')"), "the new user with their community");
    page.screenshot("admin-users");
    // On a phone the page does not scroll sideways (the table scrolls inside its box).
    page.set_viewport(390, 844, true);
    page.wait_until("document.documentElement.scrollWidth <= innerWidth + 1", "no sideways scrolling on a phone");
    page.screenshot("admin-users-phone");
    page.set_viewport(1366, 768, false);
    // The new account logs in with the password given, as a community officer of 新华社区.
    let r = server.post_json("/api/v1/auth/login", None, &json!({"username": "xx-xinhua", "password": "xinhua-2025"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let me = server.get("/api/v1/me", Some(&token)).json();
    assert_eq!(me["grants"][0]["role"], "community_officer");
    assert_eq!(me["grants"][0]["scope"]["community_id"], "xinhua");

    // Disable it from the user's panel: the row says so, and the login is refused.
    page.eval(&format!("{row}.querySelector('[data-testid=action-manage-user]').click()"));
    page.wait_for("[data-testid=users-manage] [data-testid=action-disable-user]");
    page.click("[data-testid=action-disable-user]");
    page.wait_until(&format!("{row}?.querySelector('[data-testid=users-status]').innerText === '已停用'"), "disabled");
    let r = server.post_json("/api/v1/auth/login", None, &json!({"username": "xx-xinhua", "password": "xinhua-2025"}));
    assert_ne!(r.status, 200);
    // Enable again, a new password, and a second role (inspector of the whole sub-district).
    page.click("[data-testid=action-enable-user]");
    page.wait_until(&format!("{row}?.querySelector('[data-testid=users-status]').innerText === '正常'"), "enabled");
    page.type_into("[data-testid=users-manage] [data-testid=field-password]", "xinhua-2026");
    page.click("[data-testid=action-reset-password]");
    page.wait_until(
        "document.querySelector('[data-testid=users-manage] [data-testid=field-password]').value === ''",
        "reset",
    );
    page.select_option("[data-testid=field-grant-role]", "inspector");
    page.click("[data-testid=action-grant-role]");
    page.wait_until(&format!("{row}?.innerText.includes('督查组成员')"), "the granted role listed");
    assert_eq!(
        page.eval("document.querySelectorAll('[data-testid=users-manage] [data-testid=users-grant]').length"),
        2
    );
    let r = server.post_json("/api/v1/auth/login", None, &json!({"username": "xx-xinhua", "password": "xinhua-2026"}));
    assert_eq!(r.status, 200, "the new password: {}", r.text());
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let roles = server.get("/api/v1/me", Some(&token)).json()["grants"].as_array().unwrap().len();
    assert_eq!(roles, 2);
    page.assert_no_errors();
    println!("web_roles: admin test in {:?}", t0.elapsed());
}
