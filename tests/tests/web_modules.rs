//! The web app in modules (issue 11: ≤ 400 KB gzipped before the dashboard is usable): the first
//! module holds login, the shell and the home pages; every other group of screens is a module of
//! its own (frontend/src/app.rs, split by `cargo xtask web`), fetched the first time one of its
//! screens opens. Measured here in a real browser from what it actually fetched from the server.

use ducha_tests::Server;
use ducha_tests::browser::{Browser, Page};

/// The first module's budget, gzipped bytes on the wire (issue 11).
const FIRST_LOAD_BUDGET: u64 = 400 * 1024;

/// The paths of the app's own WASM and JS files the page has fetched so far, with the gzipped
/// bytes each took on the wire (`encodedBodySize` of the Resource Timing entry).
fn fetched(page: &Page<'_>) -> Vec<(String, u64)> {
    let v = page.eval(
        "performance.getEntriesByType('resource')
           .map(e => [new URL(e.name).pathname, e.encodedBodySize])
           .filter(([p]) => p.endsWith('.wasm') || p.endsWith('.js'))",
    );
    serde_json::from_value(v).expect("resource entries")
}

fn modules_of(files: &[(String, u64)], prefix: &str) -> Vec<String> {
    files.iter().filter(|(p, _)| p.starts_with(prefix)).map(|(p, _)| p.clone()).collect()
}

/// Logs in as the sub-district's administrator and waits for 街道首页's cards.
fn open_dashboard(page: &Page<'_>, server: &Server) {
    page.login(&server.base_url(), "xx-admin", "ducha-demo");
    page.wait_for("[data-page=dashboard] [data-testid=card-findings-open]");
}

#[test]
fn the_dashboard_needs_only_the_first_module_and_each_screen_group_fetches_its_own() {
    let server = Server::demo();
    let browser = Browser::launch();
    let page = browser.new_page();
    open_dashboard(&page, &server);

    // Usable dashboard: the first module only, within the budget, gzipped as the server sent it.
    let first = fetched(&page);
    let wasm: Vec<_> = first.iter().filter(|(p, _)| p.ends_with(".wasm")).map(|(p, _)| p.as_str()).collect();
    assert_eq!(wasm, ["/ducha_bg.wasm"], "before any other screen, only the first module: {first:?}");
    let bytes: u64 = first.iter().map(|(_, b)| b).sum();
    println!("first load: {} KB gzipped ({first:?})", bytes / 1024);
    assert!(bytes > 0, "the sizes are reported: {first:?}");
    assert!(bytes <= FIRST_LOAD_BUDGET, "first load {bytes} B > {FIRST_LOAD_BUDGET} B: {first:?}");

    // 整改台账: its group's module (and the chunks it shares) arrive when the screen opens.
    page.click("[data-testid=nav-ledger]");
    page.wait_for("[data-page=ledger]");
    let now = fetched(&page);
    assert_eq!(modules_of(&now, "/split_ledger_screens.").len(), 1, "{now:?}");
    assert!(modules_of(&now, "/split_admin_screens.").is_empty(), "no other group's module yet: {now:?}");

    // The administration screens: another group, another module; back to the ledger: nothing new.
    page.click("[data-testid=nav-communities]");
    page.wait_for("[data-page=communities]");
    page.click("[data-testid=nav-ledger]");
    page.wait_for("[data-page=ledger]");
    let later = fetched(&page);
    assert_eq!(modules_of(&later, "/split_admin_screens.").len(), 1, "{later:?}");
    assert_eq!(modules_of(&later, "/split_ledger_screens.").len(), 1, "fetched once: {later:?}");
    page.assert_no_errors();
}

#[test]
fn a_module_that_cannot_be_fetched_is_a_clear_error_and_retry_loads_it() {
    let server = Server::demo();
    let browser = Browser::launch();
    let page = browser.new_page();
    open_dashboard(&page, &server);

    // The network fails for the inspections' module (as a dropped connection fails a fetch).
    page.eval(
        "window.__blocked = 'split_inspection_screens.';
         const realFetch = window.fetch;
         window.fetch = (input, init) => String(input instanceof Request ? input.url : input).includes(window.__blocked)
           ? Promise.reject(new TypeError('Failed to fetch (blocked by the test)'))
           : realFetch(input, init);
         true",
    );
    page.click("[data-testid=nav-inspections]");
    page.wait_for("[data-testid=error][data-code=module_unavailable]");
    let text = page.text_of("[data-testid=error][data-code=module_unavailable]");
    assert!(text.contains("页面加载失败") && text.contains("重试"), "{text}");

    // The app keeps running: the menu still works, the dashboard draws again.
    page.click("[data-testid=nav-dashboard]");
    page.wait_for("[data-page=dashboard] [data-testid=card-findings-open]");

    // Still failing: the error again (a failed load is not remembered as done).
    page.click("[data-testid=nav-inspections]");
    page.wait_for("[data-testid=retry-module]");
    // The network is back: 重试 fetches the module and draws the screen.
    page.eval("window.__blocked = '\\u0000never'; true");
    page.click("[data-testid=retry-module]");
    page.wait_for("[data-page=inspections]");
    assert!(!page.exists("[data-testid=error][data-code=module_unavailable]"));
    assert_eq!(modules_of(&fetched(&page), "/split_inspection_screens.").len(), 1);
    // The loader logged each failed attempt to the console; nothing else went wrong.
    let errors = page.console_errors();
    assert!(errors.iter().all(|e| e.contains("blocked by the test")), "{errors:?}");
    page.clear_errors();
    page.assert_no_errors();
}
