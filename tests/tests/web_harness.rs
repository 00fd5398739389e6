//! The browser harness (tests/src/browser.rs) proven on what the binary already serves: the offline
//! Swagger UI at /api/docs/, and a hand-made form for the input helpers. Each test launches its own
//! Chromium, so they run in parallel.

use std::time::Instant;

use ducha_tests::Server;
use ducha_tests::browser::{Browser, PHONE};

/// Draws two different CJK characters with the element's font on a canvas and tells whether the
/// pictures differ: with no CJK font both come out as the same empty box ("tofu").
const CJK_GLYPHS_DIFFER: &str = r#"(() => {
  const el = document.querySelector('.swagger-ui .info .title');
  const font = getComputedStyle(el).font;
  const draw = ch => {
    const c = document.createElement('canvas'); c.width = 64; c.height = 64;
    const g = c.getContext('2d'); g.font = font.replace(/\d+(\.\d+)?px/, '48px');
    g.fillStyle = '#000'; g.textBaseline = 'top'; g.fillText(ch, 4, 4);
    const px = g.getImageData(0, 0, 64, 64).data;
    let ink = 0; for (let i = 3; i < px.length; i += 4) if (px[i] > 0) ink++;
    return [c.toDataURL(), ink];
  };
  const [a, inkA] = draw('督'), [b, inkB] = draw('查');
  return { differ: a !== b, inkA, inkB };
})()"#;

#[test]
fn swagger_ui_renders_the_chinese_api_title() {
    let t0 = Instant::now();
    let server = Server::demo();
    let server_up = t0.elapsed();
    let base = server.base_url();
    let browser = Browser::launch();
    let page = browser.new_page();
    let t1 = Instant::now();
    page.goto(&format!("{base}/api/docs/"));
    page.wait_for(".swagger-ui .info .title");
    let rendered = t1.elapsed();
    let title = page.text_of(".swagger-ui .info .title");
    assert!(title.contains("Ducha 督查 API"), "title: {title:?}");
    // The operations are listed too (the spec was fetched from our server and rendered).
    page.wait_for(".opblock");
    assert!(page.texts_of(".opblock-summary-path").iter().any(|p| p.starts_with("/api/v1/")));

    // zh-CN browser, a 1366×768 office screen.
    assert_eq!(page.eval("navigator.language"), "zh-CN");
    assert_eq!(page.eval("new Intl.NumberFormat().resolvedOptions().locale"), "zh-CN");
    assert_eq!(page.eval("[innerWidth, innerHeight]"), serde_json::json!([1366, 768]));

    // The Chinese characters render as real glyphs: non-zero width on the page, ink on a canvas,
    // and two different characters look different (a missing font draws identical boxes).
    let width = page.eval(
        "(() => { const el = document.querySelector('.swagger-ui .info .title'); \
         const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT); \
         for (let n; (n = walker.nextNode());) { const i = n.data.indexOf('督查'); \
           if (i >= 0) { const r = document.createRange(); r.setStart(n, i); r.setEnd(n, i + 2); \
             return r.getBoundingClientRect().width; } } return 0; })()",
    );
    assert!(width.as_f64().unwrap_or(0.0) > 10.0, "width of 督查: {width}");
    let glyphs = page.eval(CJK_GLYPHS_DIFFER);
    assert_eq!(glyphs["differ"], true, "CJK glyphs: {glyphs}");
    assert!(glyphs["inkA"].as_u64().unwrap_or(0) > 50, "CJK glyphs: {glyphs}");

    let shot = page.screenshot("web-harness-api-docs");
    let png = std::fs::read(&shot).expect("screenshot file");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 20_000, "a screenshot of a rendered page is not {} bytes", png.len());

    // Nothing the page loaded from our server failed, and no script errors.
    let ours: Vec<_> = page.failed_requests().into_iter().filter(|r| r.url.starts_with(&base)).collect();
    assert!(ours.is_empty(), "failed requests to the server: {ours:?}");
    page.assert_no_errors();

    // The recorder does see a failure when there is one.
    let status = page.eval("fetch('/api/v1/no-such-thing').then(r => r.status)");
    assert!(status.as_i64().is_some_and(|s| s >= 400), "status {status}");
    page.wait_until("true", "the event to arrive");
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while page.failed_requests().is_empty() && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let failed = page.failed_requests();
    assert!(
        failed.iter().any(|r| r.url == format!("{base}/api/v1/no-such-thing") && r.status == status.as_i64()),
        "{failed:?}"
    );
    page.clear_errors();
    assert!(page.failed_requests().is_empty());
    println!(
        "demo server up in {} ms, browser started in {} ms, Swagger UI rendered in {} ms; test took {} ms",
        server_up.as_millis(),
        browser.started_in().as_millis(),
        rendered.as_millis(),
        t0.elapsed().as_millis()
    );
}

#[test]
fn form_helpers_type_click_select_and_upload() {
    let browser = Browser::launch();
    let page = browser.new_page();
    page.set_content(
        r#"<!doctype html><html lang="zh-CN"><body>
        <form id="f" onsubmit="event.preventDefault(); show()">
          <input data-testid="name" value="旧值" oninput="window.inputs = (window.inputs || 0) + 1">
          <textarea data-testid="note"></textarea>
          <select data-testid="level" onchange="window.changed = this.value">
            <option value="green">绿</option><option value="red">红</option>
          </select>
          <input type="file" data-testid="evidence" onchange="window.file = this.files[0].name + ':' + this.files[0].size">
          <button data-testid="submit">提交</button>
        </form>
        <ul id="out"></ul>
        <div data-testid="spinner">加载中</div>
        <script>
          function show() {
            const f = document.getElementById('f'), out = document.getElementById('out');
            for (const v of [f.querySelector('[data-testid=name]').value,
                             f.querySelector('[data-testid=note]').value,
                             window.changed, window.file]) {
              const li = document.createElement('li'); li.dataset.testid = 'row'; li.textContent = v; out.append(li);
            }
            setTimeout(() => document.querySelector('[data-testid=spinner]').remove(), 200);
          }
        </script></body></html>"#,
    );
    // The browser's own chrome speaks Chinese too (the file button, the date fields).
    let file_chrome = page.browser_drawn_text("[data-testid=evidence]");
    assert!(file_chrome.contains("选择文件"), "file input draws {file_chrome:?}");
    page.eval("document.body.insertAdjacentHTML('beforeend', '<input type=date data-testid=day>')");
    // The date field's inner parts are drawn after the element is inserted, not with it: on a busy
    // machine (CI, tests in parallel) the first look can find none yet.
    let mut date_chrome = String::new();
    for _ in 0..50 {
        date_chrome = page.browser_drawn_text("[data-testid=day]");
        if !date_chrome.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(date_chrome.contains('年') && date_chrome.contains('日'), "date input draws {date_chrome:?}");
    page.type_into("[data-testid=name]", "东湖社区 2024");
    assert!(page.eval("window.inputs").as_i64().unwrap_or(0) >= 1, "typing fires input events");
    page.type_into("[data-testid=note]", "理论学习不够深入");
    page.select_option("[data-testid=level]", "red");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("整改照片.txt");
    std::fs::write(&file, "evidence").expect("write evidence");
    page.set_file_input("[data-testid=evidence]", &file);
    assert!(!page.exists("[data-testid=row]"));
    page.click("[data-testid=submit]");
    page.wait_for("[data-testid=row]");
    page.wait_gone("[data-testid=spinner]");
    assert_eq!(page.texts_of("[data-testid=row]"), ["东湖社区 2024", "理论学习不够深入", "red", "整改照片.txt:8"]);
    page.type_into("[data-testid=name]", "");
    assert_eq!(page.eval("document.querySelector('[data-testid=name]').value"), "");
    page.assert_no_errors();

    // Script errors are recorded.
    page.eval("console.error('坏了', 42); setTimeout(() => { throw new Error('boom') }, 0); 1");
    page.wait_until("true", "a turn of the event loop");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let errors = page.console_errors();
    assert!(errors.iter().any(|e| e.contains("坏了 42")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("boom")), "{errors:?}");
}

#[test]
fn phone_viewport() {
    let server = Server::demo();
    let browser = Browser::launch_mobile();
    let page = browser.new_page();
    page.goto(&format!("{}/api/docs/", server.base_url()));
    page.wait_for(".swagger-ui .info .title");
    // Swagger UI has no `<meta name=viewport>`, so its layout is 980 px wide, scaled down to the
    // phone's screen; the web app must declare one.
    assert_eq!(page.eval("screen.width"), PHONE.0);
    assert_eq!(page.eval("'ontouchstart' in window"), true);
    page.screenshot("web-harness-api-docs-phone");
    // The same page can be switched to the desktop size.
    page.set_viewport(1366, 768, false);
    assert_eq!(page.eval("innerWidth"), 1366);
}

#[test]
#[should_panic(expected = "timed out after 1s waiting for `[data-testid=missing]`")]
fn a_failed_wait_names_the_selector_and_shows_the_page() {
    let browser = Browser::launch();
    let page = browser.new_page();
    page.set_content("<p>只有这一段</p>");
    page.set_timeout(std::time::Duration::from_secs(1));
    page.wait_for("[data-testid=missing]");
}
