//! Issue 14 in a real browser against `ducha serve --demo`, as XX街道's admin: the sub-district's
//! own inspection methods (add, retire, restore; the plan form offers exactly the usable ones) and
//! importing an existing 整改台账 (a broken file's problems by row and column, nothing imported; a
//! good file checked, then imported, then seen in the ledger).

use ducha_tests::browser::Browser;
use ducha_tests::{Server, edit_xlsx, ledger_rows};

#[test]
fn methods_and_ledger_import_in_the_browser() {
    let server = Server::demo();
    let browser = Browser::launch();
    let page = browser.new_page();
    page.login(&server.base_url(), "xx-admin", "ducha-demo");

    // Chart labels are readable at 1366×768: every text of every chart renders at 12 px or more
    // (its font size times the chart's scale).
    page.goto(&format!("{}/tenants/xxjd", server.base_url()));
    page.wait_for("svg.chart text.label");
    let smallest = page.eval(
        "Math.min(...Array.from(document.querySelectorAll('svg.chart')).flatMap(svg => { \
           const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width; \
           return Array.from(svg.querySelectorAll('text')).map(t => parseFloat(getComputedStyle(t).fontSize) * scale); }))",
    );
    let smallest = smallest.as_f64().expect("a number");
    assert!(smallest >= 12.0, "chart text renders at {smallest:.1} px");

    // 督查方式: the defaults are listed; add one, retire it, bring it back.
    page.goto(&format!("{}/tenants/xxjd/checklists", server.base_url()));
    page.wait_for("[data-testid=methods-row][data-code=meeting]");
    assert!(page.text_of("[data-testid=methods-table]").contains("听取汇报"));
    let mf = "[data-testid=methods-form]";
    page.type_into(&format!("{mf} [data-testid=field-code]"), "hearing");
    page.type_into(&format!("{mf} [data-testid=field-name]"), "听证会");
    page.click("[data-testid=action-add-method]");
    let row = "[data-testid=methods-row][data-code=hearing]";
    page.wait_for(row);
    assert_eq!(page.text_of(&format!("{row} [data-testid=term-status]")), "在用");
    page.click(&format!("{row} [data-testid=action-retire]"));
    page.wait_for_text(&format!("{row} [data-testid=term-status]"), "已停用");
    // A bad code is stopped in the browser with a Chinese message next to the field.
    page.type_into(&format!("{mf} [data-testid=field-code]"), "听证");
    page.type_into(&format!("{mf} [data-testid=field-name]"), "x");
    page.click("[data-testid=action-add-method]");
    page.wait_for_text(&format!("{mf} [data-testid=field-error]"), "小写英文字母");
    // The plan form offers the usable methods only.
    page.goto(&format!("{}/tenants/xxjd/inspections", server.base_url()));
    page.click("[data-testid=action-open-plan-form]");
    page.wait_for("[data-testid=inspections-plan-form] input[name=methods][value=listen_report]");
    assert!(!page.exists("[data-testid=inspections-plan-form] input[name=methods][value=hearing]"), "retired");
    page.goto(&format!("{}/tenants/xxjd/checklists", server.base_url()));
    page.click(&format!("{row} [data-testid=action-restore]"));
    page.wait_for_text(&format!("{row} [data-testid=term-status]"), "在用");
    page.screenshot("methods");

    // 导入整改台账: from the ledger page.
    let admin = server.login("xx-admin");
    let exported = server.get("/api/v1/tenants/xxjd/ledger.xlsx", Some(&admin)).body;
    let rows = ledger_rows(&exported);
    let open = rows.iter().position(|r| r[11] == "整改中" || r[11] == "已交办").expect("an open row");
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("坏台账.xlsx");
    std::fs::write(&broken, edit_xlsx(&exported, &[("C3", "无此社区"), ("J4", "下个月底")])).unwrap();
    let cell = format!("E{}", open + 3);
    let good = dir.path().join("补充台账.xlsx");
    std::fs::write(&good, edit_xlsx(&exported, &[(cell.as_str(), "宣传栏更新不及时。部分宣传栏内容仍为去年的。")]))
        .unwrap();

    page.goto(&format!("{}/tenants/xxjd/ledger", server.base_url()));
    page.click("[data-testid=action-import-ledger]");
    page.wait_for("[data-page=ledger-import]");
    let head = server.head_position();
    page.set_file_input("[data-testid=import-file]", &broken);
    page.click("[data-testid=action-check]");
    page.wait_for("[data-testid=import-problem][data-row=\"3\"][data-column=C]");
    assert!(page.text_of("[data-testid=import-problem][data-row=\"3\"][data-column=C]").contains("无此社区"));
    assert!(page.exists("[data-testid=import-problem][data-row=\"4\"][data-column=J]"));
    assert_eq!(page.attribute("[data-testid=action-import]", "disabled").as_deref(), Some(""), "cannot import");
    page.screenshot("ledger-import-problems");

    page.set_file_input("[data-testid=import-file]", &good);
    page.click("[data-testid=action-check]");
    page.wait_for("[data-testid=import-report][data-ok=true]");
    assert!(
        page.text_of("[data-testid=import-summary]").contains("将新增问题1条"),
        "{}",
        page.text_of("[data-testid=import-summary]")
    );
    assert_eq!(server.head_position(), head, "checking writes nothing");
    page.click("[data-testid=action-import]");
    page.wait_for_text("[data-testid=import-done]", "已导入：问题1条");
    assert!(server.head_position() > head);
    page.click("[data-testid=import-to-ledger]");
    page.wait_for("[data-page=ledger]");
    page.wait_until("document.body.innerText.includes('宣传栏更新不及时')", "the imported row in the ledger");
    page.assert_no_errors();
}
