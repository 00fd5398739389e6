//! The 等保 screens in a real browser against the demo: the login's extra steps (a new password,
//! the second factor's enrolment by QR code with a code from pyotp, the recovery codes once, then
//! the two-step login), 账号安全, the audit administrator's search and export, the security
//! administrator's policy, and account management split between the system and security
//! administrators.

use ducha_tests::browser::{Browser, Page};
use ducha_tests::{Server, totp_code};
use serde_json::{Value, json};

fn api_login(s: &Server, user: &str) -> String {
    s.login(user)
}

/// Types the login form, without waiting for the app (a step may follow).
fn start_login(page: &Page<'_>, base: &str, user: &str, password: &str) {
    page.goto(base);
    page.type_into("[data-testid=login-username]", user);
    page.type_into("[data-testid=login-password]", password);
    page.click("[data-testid=login-submit]");
}

fn real_policy() -> Value {
    json!({
        "min_length": 8, "min_classes": 3, "history": 5, "max_age_days": 90,
        "lockout_after": 5, "lockout_minutes": 15, "idle_timeout_minutes": 30, "session_max_hours": 8,
        "second_factor": "administrators",
    })
}

#[test]
fn a_login_walks_password_change_enrolment_and_then_two_steps() {
    let s = Server::demo();
    let base = s.base_url();
    let sec = api_login(&s, "secadmin");
    let r = s.post_json("/api/v1/security/policy", Some(&sec), &real_policy());
    assert_eq!(r.status, 200, "{}", r.text());
    let browser = Browser::launch();
    let page = browser.new_page();

    // First login under the real policy: a new password first.
    start_login(&page, &base, "sysadmin", "ducha-demo");
    page.wait_for("[data-testid=login-step][data-step=password_change]");
    assert!(page.text_of("[data-testid=login-step-reason]").contains("修改密码"));
    // A weak one is refused with the rule named next to the field.
    page.type_into("[data-testid=field-password]", "abcdefgh");
    page.type_into("[data-testid=field-again]", "abcdefgh");
    page.click("[data-testid=action-change-password]");
    page.wait_for_text("[data-testid=field-error][data-field=password]", "至少 3 类");
    page.expect_failed_request(422, "/auth/password");
    page.set_value("[data-testid=field-password]", "");
    page.set_value("[data-testid=field-again]", "");
    page.type_into("[data-testid=field-password]", "Browser-Sys-2026");
    page.type_into("[data-testid=field-again]", "Browser-Sys-2026");
    page.click("[data-testid=action-change-password]");

    // Then the second factor: a QR code and the secret; a code from pyotp confirms it.
    page.wait_for("[data-testid=login-step][data-step=second_factor_enrol]");
    page.wait_for("[data-testid=second-factor-qr]");
    let src = page.attribute("[data-testid=second-factor-qr]", "src").unwrap_or_default();
    assert!(src.starts_with("data:image/svg+xml;base64,"), "{src:.40}");
    let loaded = page.eval("document.querySelector('[data-testid=second-factor-qr]').naturalWidth > 0");
    assert_eq!(loaded, json!(true), "the QR code renders as an image");
    page.screenshot("second-factor-enrol");
    let secret = page.text_of("[data-testid=second-factor-secret]");
    assert_eq!(secret.len(), 32, "{secret}");
    page.type_into("[data-testid=field-code]", &totp_code(&secret, 0));
    page.click("[data-testid=action-confirm-second-factor]");
    page.wait_for("[data-testid=recovery-codes]");
    let codes = page.texts_of("[data-testid=recovery-code]");
    assert_eq!(codes.len(), 10, "{codes:?}");
    page.click("[data-testid=action-recovery-saved]");
    page.wait_for("[data-testid=current-user]");
    page.wait_for("[data-page=accounts]");
    page.assert_no_errors();

    // Log out; from now on: the password, then a code.
    page.click("[data-testid=logout]");
    page.wait_for("[data-testid=login-username]");
    start_login(&page, &base, "sysadmin", "Browser-Sys-2026");
    page.wait_for("[data-testid=login-step][data-step=second_factor]");
    page.type_into("[data-testid=login-code]", "000000");
    page.click("[data-testid=login-code-submit]");
    page.wait_for("[data-testid=error][data-code=invalid_second_factor]");
    page.expect_failed_request(401, "/auth/login/second-factor");
    page.set_value("[data-testid=login-code]", "");
    page.type_into("[data-testid=login-code]", &totp_code(&secret, 30));
    page.click("[data-testid=login-code-submit]");
    page.wait_for("[data-testid=current-user]");
    page.wait_for("[data-page=accounts]");

    // The next login with a recovery code instead.
    page.click("[data-testid=logout]");
    page.wait_for("[data-testid=login-username]");
    start_login(&page, &base, "sysadmin", "Browser-Sys-2026");
    page.wait_for("[data-testid=login-step][data-step=second_factor]");
    page.type_into("[data-testid=login-code]", &codes[3]);
    page.click("[data-testid=login-code-submit]");
    page.wait_for("[data-testid=current-user]");
    // 账号安全 shows the second factor with one recovery code fewer.
    page.click("[data-testid=account-link]");
    page.wait_for_text("[data-testid=second-factor-status]", "剩余恢复码 9 个");
    page.assert_no_errors();
}

#[test]
fn account_page_changes_the_password_and_enrols_a_second_factor() {
    let s = Server::demo();
    let base = s.base_url();
    let browser = Browser::launch();
    let page = browser.new_page();
    page.login(&base, "xx-duchazu1", "ducha-demo");
    page.click("[data-testid=account-link]");
    page.wait_for("[data-page=account]");
    page.wait_for("[data-testid=second-factor-status][data-enrolled=false]");
    // The wrong current password is named next to its field.
    page.type_into("[data-testid=field-current_password]", "not-my-password");
    page.type_into("[data-testid=field-password]", "Duchazu-2026-new");
    page.type_into("[data-testid=field-again]", "Duchazu-2026-new");
    page.click("[data-testid=action-change-password]");
    page.wait_for("[data-testid=field-error][data-field=current_password]");
    page.expect_failed_request(422, "/auth/password");
    page.set_value("[data-testid=field-current_password]", "");
    page.type_into("[data-testid=field-current_password]", "ducha-demo");
    page.click("[data-testid=action-change-password]");
    page.wait_for("[data-testid=password-changed]");
    // Still logged in (with the new session), and the new password logs in through the API.
    page.wait_for("[data-testid=current-user]");
    let r =
        s.post_json("/api/v1/auth/login", None, &json!({"username": "xx-duchazu1", "password": "Duchazu-2026-new"}));
    assert_eq!(r.status, 200, "{}", r.text());

    // Enrol a second factor voluntarily.
    page.click("[data-testid=action-enrol-second-factor]");
    page.wait_for("[data-testid=second-factor-secret]");
    let secret = page.text_of("[data-testid=second-factor-secret]");
    page.type_into("[data-testid=field-code]", &totp_code(&secret, 0));
    page.click("[data-testid=action-confirm-second-factor]");
    page.wait_for("[data-testid=recovery-codes]");
    assert_eq!(page.texts_of("[data-testid=recovery-code]").len(), 10);
    page.click("[data-testid=action-recovery-saved]");
    page.wait_for("[data-testid=second-factor-status][data-enrolled=true]");
    page.screenshot("account-security");
    page.assert_no_errors();
    // The next login needs the second step.
    let r =
        s.post_json("/api/v1/auth/login", None, &json!({"username": "xx-duchazu1", "password": "Duchazu-2026-new"}));
    assert_eq!(r.json()["next"], "second_factor");
}

#[test]
fn the_three_administrators_screens() {
    let s = Server::demo();
    let base = s.base_url();
    let browser = Browser::launch();

    // Some records to find: a failed login.
    let r = s.post_json("/api/v1/auth/login", None, &json!({"username": "xx-admin", "password": "wrong-one"}));
    assert_eq!(r.status, 401);

    // The audit administrator searches and exports.
    let page = browser.new_page();
    page.login(&base, "audadmin", "ducha-demo");
    page.wait_for("[data-page=security-audit]");
    page.wait_for("[data-testid=audit-record]");
    page.select_option("[data-testid=filter-action]", "login_failed");
    page.click("[data-testid=action-audit-search]");
    page.wait_until(
        "(() => { const r = document.querySelectorAll('[data-testid=audit-record]'); \
         return r.length > 0 && Array.from(r).every(x => x.dataset.action === 'login_failed'); })()",
        "only failed logins listed",
    );
    assert!(page.text_of("[data-testid=audit-table]").contains("xx-admin"));
    page.screenshot("security-audit");
    page.click("[data-testid=action-audit-export]");
    // The export is recorded (and so it happened).
    let aud = api_login(&s, "audadmin");
    let mut exported = false;
    for _ in 0..50 {
        let r = s.get("/api/v1/security/audit?action=audit_exported", Some(&aud));
        if r.json()["total"].as_u64().unwrap_or(0) > 0 {
            exported = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(exported, "the export was recorded");
    page.assert_no_errors();

    // The system administrator creates an account (no role to give) …
    let sys = browser.new_page();
    sys.login(&base, "sysadmin", "ducha-demo");
    sys.wait_for("[data-page=users] [data-testid=users-row]");
    assert!(sys.text_of("[data-testid=users-table]").contains("audadmin"), "the platform's accounts");
    sys.click("[data-testid=accounts-district][data-id=xxq] [data-testid=link-tenant-users]");
    sys.wait_for("[data-page=users] [data-testid=users-form]");
    assert!(!sys.exists("[data-testid=field-role]"), "the system administrator grants nothing");
    sys.type_into("[data-testid=field-username]", "xx-web-new");
    sys.type_into("[data-testid=field-display_name]", "督查组 新成员");
    sys.type_into("[data-testid=field-password]", "Web-new-2026");
    sys.click("[data-testid=action-create-user]");
    sys.wait_for("[data-testid=users-row][data-id=xx-web-new]");
    sys.click("[data-testid=users-row][data-id=xx-web-new] [data-testid=action-manage-user]");
    sys.wait_for("[data-testid=users-manage]");
    assert!(!sys.exists("[data-testid=action-grant-role]"));
    assert!(sys.exists("[data-testid=action-reset-password]") && sys.exists("[data-testid=action-unlock-user]"));
    sys.assert_no_errors();

    // The security administrator sets the policy (after the system administrator's login: a real
    // policy would ask the demo's administrators for a new password and a second factor).
    let page = browser.new_page();
    page.login(&base, "secadmin", "ducha-demo");
    page.click("[data-testid=nav-security-policy]");
    page.wait_for("[data-page=security-policy] [data-testid=policy-state]");
    page.wait_until("document.querySelector('[data-testid=field-max_age_days]').value === '90'", "the policy loaded");
    page.set_value("[data-testid=field-max_age_days]", "");
    page.type_into("[data-testid=field-max_age_days]", "365");
    page.click("[data-testid=action-save-policy]");
    page.wait_for("[data-testid=field-error][data-field=max_age_days]");
    page.set_value("[data-testid=field-max_age_days]", "");
    page.type_into("[data-testid=field-max_age_days]", "60");
    page.click("[data-testid=action-save-policy]");
    page.wait_for("[data-testid=policy-saved]");
    let policy = s.get("/api/v1/security/policy", Some(&aud)).json();
    assert_eq!(
        (policy["policy"]["max_age_days"].as_u64(), policy["policy"]["demo"].as_bool()),
        (Some(60), Some(false))
    );
    page.assert_no_errors();

    // … which the security administrator grants a role (and who creates none).
    page.goto(&format!("{base}/tenants/xxjd/users"));
    page.wait_for("[data-testid=users-row][data-id=xx-web-new]");
    assert!(!page.exists("[data-testid=users-form]"), "the security administrator creates no account");
    page.click("[data-testid=users-row][data-id=xx-web-new] [data-testid=action-manage-user]");
    page.wait_for("[data-testid=users-manage]");
    assert!(!page.exists("[data-testid=action-reset-password]"));
    page.select_option("[data-testid=field-grant-role]", "inspector");
    page.click("[data-testid=action-grant-role]");
    page.wait_for_text("[data-testid=users-row][data-id=xx-web-new]", "督查组成员");
    page.screenshot("accounts-security-admin");
    page.assert_no_errors();
}
