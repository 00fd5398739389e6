//! The browser harness of the web-app tests: a headless Debian Chromium (`/usr/bin/chromium`)
//! driven over the DevTools protocol by `chromiumoxide` — no chromedriver, no downloaded browser.
//!
//! The API is **blocking** on purpose, like the rest of this crate ([`crate::Server`] is blocking
//! too): a test is a plain `#[test] fn` and reads top to bottom. Each [`Browser`] owns its own
//! small tokio runtime (one worker thread) that runs the DevTools connection, and its own
//! Chromium process with a fresh temporary profile; dropping the `Browser` closes Chromium and
//! deletes the profile. Because nothing is shared, any number of browser tests can run in
//! parallel in one `cargo test` process (on 2 cores the default of two test threads means at
//! most two Chromiums at a time). One `Browser` is one signed-in person: for two users side by
//! side (an admin and a community officer), launch two.
//!
//! Every wait has a timeout ([`DEFAULT_TIMEOUT`], 30 s, see [`Page::set_timeout`]). When a wait
//! fails the panic message names what was awaited and shows the page's URL, its visible text, the
//! console errors and failed requests so far, and the path of a screenshot taken at that moment.
//!
//! ```no_run
//! use ducha_tests::{browser::Browser, Server};
//!
//! let server = Server::demo();
//! let browser = Browser::launch();
//! let page = browser.new_page();
//! page.login(&server.base_url(), "admin", "ducha-demo");
//! page.click("[data-testid=nav-ledger]");
//! page.wait_for("[data-testid=ledger-table]");
//! assert!(page.texts_of("[data-testid=ledger-row]").len() > 0);
//! page.screenshot("ledger");
//! page.assert_no_errors();
//! ```
//!
//! Screenshots are PNG files in [`screenshots_dir`]: `$DUCHA_ARTIFACTS_DIR/screenshots` when that
//! variable is set, else `<target dir>/test-artifacts/screenshots`; each saved path is printed.
//! Prefer `data-testid` selectors (`[data-testid=login-submit]`): they survive restyling.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::dom::SetFileInputFilesParams;
use chromiumoxide::cdp::browser_protocol::emulation::{
    SetDeviceMetricsOverrideParams, SetLocaleOverrideParams, SetTouchEmulationEnabledParams, SetUserAgentOverrideParams,
};
use chromiumoxide::cdp::browser_protocol::input::InsertTextParams;
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel};
use chromiumoxide::cdp::browser_protocol::network::{
    EventLoadingFailed, EventRequestWillBeSent, EventResponseReceived,
};
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EvaluateParams, EventConsoleApiCalled, EventExceptionThrown, RemoteObject,
};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::ScreenshotParams;
use futures_util::StreamExt;

/// How long every wait (selector, click target, navigation, script) may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The office screen the web app is designed for.
pub const DESKTOP: (u32, u32) = (1366, 768);

/// A phone (CSS pixels of a common 6.1-inch phone), emulated as mobile with touch.
pub const PHONE: (u32, u32) = (390, 844);

/// The browser binary: `$DUCHA_CHROMIUM` when set, else Debian's `/usr/bin/chromium`.
pub fn chromium_path() -> PathBuf {
    std::env::var_os("DUCHA_CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Where test artifacts go: `$DUCHA_ARTIFACTS_DIR`, else `<target dir>/test-artifacts`.
pub fn artifacts_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DUCHA_ARTIFACTS_DIR") {
        return PathBuf::from(dir);
    }
    // target/<profile>/deps/<test>-<hash> → target
    let exe = std::env::current_exe().unwrap_or_default();
    let target = exe.ancestors().nth(3).map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir);
    target.join("test-artifacts")
}

/// Where [`Page::screenshot`] saves: `artifacts_dir()/screenshots`.
pub fn screenshots_dir() -> PathBuf {
    artifacts_dir().join("screenshots")
}

/// A headless Chromium with its own profile and DevTools connection; closed on drop.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    inner: Option<chromiumoxide::Browser>,
    handler: tokio::task::JoinHandle<()>,
    user_agent: String,
    started_in: Duration,
    // Dropped after Chromium has exited (fields drop after `Drop::drop`).
    _profile: tempfile::TempDir,
}

impl fmt::Debug for Browser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Browser").field("started_in", &self.started_in).finish_non_exhaustive()
    }
}

impl Browser {
    /// A desktop browser: 1366×768 window and viewport, zh-CN.
    pub fn launch() -> Browser {
        Browser::launch_with(Viewport {
            width: DESKTOP.0,
            height: DESKTOP.1,
            device_scale_factor: Some(1.0),
            emulating_mobile: false,
            is_landscape: true,
            has_touch: false,
        })
    }

    /// A phone: 390×844 CSS pixels at device scale 2, mobile emulation (meta viewport honoured)
    /// and touch events.
    pub fn launch_mobile() -> Browser {
        Browser::launch_with(Viewport {
            width: PHONE.0,
            height: PHONE.1,
            device_scale_factor: Some(2.0),
            emulating_mobile: true,
            is_landscape: false,
            has_touch: true,
        })
    }

    /// Launches Chromium with the given viewport applied to every page it opens.
    pub fn launch_with(viewport: Viewport) -> Browser {
        let started = Instant::now();
        let exe = chromium_path();
        assert!(
            exe.exists(),
            "no browser at {}: run `cargo xtask test` (it installs Debian's chromium and fonts-wqy-zenhei) \
             or `apt-get install chromium fonts-wqy-zenhei`, or set DUCHA_CHROMIUM",
            exe.display()
        );
        let profile = tempfile::Builder::new().prefix("ducha-chromium-").tempdir().expect("temp profile dir");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("browser")
            .enable_all()
            .build()
            .expect("tokio runtime for the browser");
        let config = chromiumoxide::BrowserConfig::builder()
            .chrome_executable(&exe)
            // Our own argument list, not chromiumoxide's defaults (which say --lang=en_US).
            .disable_default_args()
            .no_sandbox()
            .user_data_dir(profile.path())
            .window_size(viewport.width, viewport.height)
            .viewport(viewport)
            .launch_timeout(DEFAULT_TIMEOUT)
            .request_timeout(DEFAULT_TIMEOUT)
            .args([
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-breakpad",
                "--disable-dev-shm-usage",
                "--disable-features=Translate,MediaRouter,OptimizationHints",
                "--password-store=basic",
                "--use-mock-keychain",
                "--metrics-recording-only",
                "--force-color-profile=srgb",
                "--lang=zh-CN",
                "--accept-lang=zh-CN,zh",
            ])
            // A UTF-8 C library locale (always present on Debian, unlike zh_CN.UTF-8): without
            // it Chromium cannot open files with Chinese names (set_file_input of 整改照片.jpg).
            .env("LC_ALL", "C.UTF-8")
            // The browser's own words (a file input's 选择文件, a date input's 年/月/日) in Chinese:
            // Chromium on Linux takes its interface language from LANGUAGE (with Debian's
            // chromium-l10n installed; `--lang` alone does not do it when headless).
            .env("LANGUAGE", "zh_CN")
            .build()
            .unwrap_or_else(|e| panic!("browser configuration: {e}"));
        let (inner, mut handler) = rt
            .block_on(chromiumoxide::Browser::launch(config))
            .unwrap_or_else(|e| panic!("launching {} failed: {e}", exe.display()));
        // The DevTools connection: every command and event goes through this task.
        let handler = rt.spawn(async move { while handler.next().await.is_some() {} });
        let user_agent = rt
            .block_on(async { tokio::time::timeout(DEFAULT_TIMEOUT, inner.user_agent()).await })
            .unwrap_or_else(|_| panic!("the browser did not answer within {DEFAULT_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("asking the browser for its user agent: {e}"))
            .replace("HeadlessChrome", "Chrome");
        let started_in = started.elapsed();
        println!("chromium started in {} ms", started_in.as_millis());
        Browser { rt, inner: Some(inner), handler, user_agent, started_in, _profile: profile }
    }

    /// How long [`Browser::launch`] took (process start to DevTools connection).
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The underlying `chromiumoxide` browser, for what this harness does not wrap.
    pub fn raw(&self) -> &chromiumoxide::Browser {
        self.inner.as_ref().expect("browser is open")
    }

    /// Runs a future on this browser's runtime (with `raw()` / [`Page::raw`]).
    pub fn block_on<F: std::future::Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }

    /// A new tab at `about:blank`, already recording console errors and failed requests, in
    /// Chinese: `navigator.language` is `zh-CN`, requests say `Accept-Language: zh-CN,zh`, and
    /// `Intl` formats for the `zh_CN` locale (headless Chromium ignores `--lang` for these).
    pub fn new_page(&self) -> Page<'_> {
        let page = self
            .block_on(async {
                tokio::time::timeout(DEFAULT_TIMEOUT, async {
                    let page = self.raw().new_page("about:blank").await?;
                    let mut agent = SetUserAgentOverrideParams::new(self.user_agent.clone());
                    agent.accept_language = Some("zh-CN,zh".into());
                    page.execute(agent).await?;
                    page.execute(SetLocaleOverrideParams { locale: Some("zh_CN".into()) }).await?;
                    Ok::<_, chromiumoxide::error::CdpError>(page)
                })
                .await
            })
            .unwrap_or_else(|_| panic!("opening a tab timed out"))
            .unwrap_or_else(|e| panic!("opening a tab: {e}"));
        let events = Arc::new(Mutex::new(Events::default()));
        self.block_on(record_events(&self.rt, &page, &events))
            .unwrap_or_else(|e| panic!("subscribing to the tab's events: {e}"));
        Page { browser: self, page, events, timeout: Mutex::new(DEFAULT_TIMEOUT) }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(mut browser) = self.inner.take() {
            self.rt.block_on(async {
                let closed = tokio::time::timeout(Duration::from_secs(5), browser.close()).await;
                let exited = tokio::time::timeout(Duration::from_secs(5), browser.wait()).await;
                if !matches!(closed, Ok(Ok(_))) || !matches!(exited, Ok(Ok(_))) {
                    let _ = browser.kill().await;
                }
            });
        }
        self.handler.abort();
    }
}

/// A request that failed: a network error (`error`), or an HTTP status ≥ 400 (`status`).
#[derive(Debug, Clone, PartialEq)]
pub struct FailedRequest {
    pub method: String,
    pub url: String,
    pub status: Option<i64>,
    pub error: Option<String>,
}

impl fmt::Display for FailedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} → ", self.method, self.url)?;
        match (&self.status, &self.error) {
            (Some(s), _) => write!(f, "HTTP {s}"),
            (None, Some(e)) => write!(f, "{e}"),
            (None, None) => write!(f, "failed"),
        }
    }
}

#[derive(Default)]
struct Events {
    console_errors: Vec<String>,
    /// request id → (method, url), to name the requests of `loadingFailed` events.
    requests: HashMap<String, (String, String)>,
    /// (request id, status, error), resolved against `requests` when read: the events arrive on
    /// separate streams, so a failure may be seen before its request.
    failures: Vec<(String, Option<i64>, Option<String>)>,
}

fn describe(arg: &RemoteObject) -> String {
    match (&arg.value, &arg.description) {
        (Some(serde_json::Value::String(s)), _) => s.clone(),
        (Some(v), _) => v.to_string(),
        (None, Some(d)) => d.clone(),
        (None, None) => format!("{:?}", arg.r#type),
    }
}

/// Subscribes to the tab's console, exceptions, log and network events, recorded into `events`.
async fn record_events(
    rt: &tokio::runtime::Runtime,
    page: &chromiumoxide::Page,
    events: &Arc<Mutex<Events>>,
) -> chromiumoxide::Result<()> {
    let mut console = page.event_listener::<EventConsoleApiCalled>().await?;
    let mut exceptions = page.event_listener::<EventExceptionThrown>().await?;
    let mut log = page.event_listener::<EventEntryAdded>().await?;
    let mut sent = page.event_listener::<EventRequestWillBeSent>().await?;
    let mut responses = page.event_listener::<EventResponseReceived>().await?;
    let mut failed = page.event_listener::<EventLoadingFailed>().await?;
    let ev = Arc::clone(events);
    rt.spawn(async move {
        while let Some(e) = console.next().await {
            if matches!(e.r#type, ConsoleApiCalledType::Error | ConsoleApiCalledType::Assert) {
                let text: Vec<String> = e.args.iter().map(describe).collect();
                ev.lock().unwrap().console_errors.push(format!("console.error: {}", text.join(" ")));
            }
        }
    });
    let ev = Arc::clone(events);
    rt.spawn(async move {
        while let Some(e) = exceptions.next().await {
            let d = &e.exception_details;
            let what = d.exception.as_ref().and_then(|x| x.description.clone()).unwrap_or_else(|| d.text.clone());
            let at = d.url.clone().unwrap_or_default();
            ev.lock().unwrap().console_errors.push(format!("uncaught: {what} ({at}:{})", d.line_number + 1));
        }
    });
    let ev = Arc::clone(events);
    rt.spawn(async move {
        while let Some(e) = log.next().await {
            if e.entry.level == LogEntryLevel::Error {
                let url = e.entry.url.as_deref().map(|u| format!(" ({u})")).unwrap_or_default();
                ev.lock().unwrap().console_errors.push(format!("{:?}: {}{url}", e.entry.source, e.entry.text));
            }
        }
    });
    let ev = Arc::clone(events);
    rt.spawn(async move {
        while let Some(e) = sent.next().await {
            let id = e.request_id.inner().clone();
            ev.lock().unwrap().requests.insert(id, (e.request.method.clone(), e.request.url.clone()));
        }
    });
    let ev = Arc::clone(events);
    rt.spawn(async move {
        while let Some(e) = responses.next().await {
            if e.response.status >= 400 {
                let mut ev = ev.lock().unwrap();
                let id = e.request_id.inner().clone();
                ev.requests.entry(id.clone()).or_insert_with(|| (String::new(), e.response.url.clone()));
                ev.failures.push((id, Some(e.response.status), None));
            }
        }
    });
    let ev = Arc::clone(events);
    rt.spawn(async move {
        while let Some(e) = failed.next().await {
            // Requests the page itself abandoned (navigation away, an aborted fetch, a closed
            // event stream) are not failures.
            if e.canceled == Some(true) || e.error_text == "net::ERR_ABORTED" {
                continue;
            }
            ev.lock().unwrap().failures.push((e.request_id.inner().clone(), None, Some(e.error_text.clone())));
        }
    });
    Ok(())
}

/// JavaScript string literal for `s`.
fn js_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// One tab of a [`Browser`]. Every method panics with a clear message on failure.
pub struct Page<'b> {
    browser: &'b Browser,
    page: chromiumoxide::Page,
    events: Arc<Mutex<Events>>,
    timeout: Mutex<Duration>,
}

impl fmt::Debug for Page<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Page").finish_non_exhaustive()
    }
}

impl<'b> Page<'b> {
    /// The underlying `chromiumoxide` page (run its futures with [`Browser::block_on`]).
    pub fn raw(&self) -> &chromiumoxide::Page {
        &self.page
    }

    /// Changes how long this page's waits may take (default [`DEFAULT_TIMEOUT`]).
    pub fn set_timeout(&self, timeout: Duration) {
        *self.timeout.lock().unwrap() = timeout;
    }

    fn timeout(&self) -> Duration {
        *self.timeout.lock().unwrap()
    }

    /// Runs a DevTools future with this page's timeout.
    fn run<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = chromiumoxide::Result<T>>,
    ) -> Result<T, String> {
        let timeout = self.timeout();
        match self.browser.block_on(async { tokio::time::timeout(timeout, fut).await }) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(format!("{what}: {e}")),
            Err(_) => Err(format!("{what}: no answer within {timeout:?}")),
        }
    }

    /// Navigates to `url` and waits for its `load` event.
    pub fn goto(&self, url: &str) -> &Self {
        if let Err(e) = self.run(&format!("goto {url}"), self.page.goto(url)) {
            self.fail(&e);
        }
        self
    }

    /// Replaces the document with `html` (for testing the harness or a component on its own).
    pub fn set_content(&self, html: &str) -> &Self {
        if let Err(e) = self.run("set_content", self.page.set_content(html)) {
            self.fail(&e);
        }
        self
    }

    /// The text the browser itself draws inside `selector`'s element (its user-agent shadow tree:
    /// a file input's button and label, a date input's 年/月/日 fields), which scripts cannot
    /// read: text nodes, `value` and `aria-placeholder`/`aria-label` attributes, read over
    /// DevTools with shadow roots pierced.
    pub fn browser_drawn_text(&self, selector: &str) -> String {
        use chromiumoxide::cdp::browser_protocol::dom::{
            DescribeNodeParams, GetDocumentParams, Node, QuerySelectorParams,
        };
        fn collect(n: &Node, out: &mut String) {
            if n.node_type == 3 {
                out.push_str(&n.node_value);
            }
            if let Some(attrs) = &n.attributes {
                for pair in attrs.chunks(2) {
                    if let [name, value] = pair
                        && matches!(name.as_str(), "value" | "aria-placeholder" | "aria-label")
                    {
                        out.push_str(value);
                    }
                }
            }
            for child in n.shadow_roots.iter().flatten().chain(n.children.iter().flatten()) {
                collect(child, out);
            }
        }
        let found = self.run(&format!("browser-drawn text of {selector}"), async {
            let doc = self.page.execute(GetDocumentParams::builder().depth(0).build()).await?;
            let q = QuerySelectorParams::new(doc.result.root.node_id, selector);
            let node = self.page.execute(q).await?.result.node_id;
            let d = DescribeNodeParams::builder().node_id(node).depth(-1).pierce(true).build();
            Ok(self.page.execute(d).await?.result.node)
        });
        match found {
            Ok(node) => {
                let mut out = String::new();
                collect(&node, &mut out);
                out
            }
            Err(e) => self.fail(&e),
        }
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.eval("location.href").as_str().unwrap_or_default().to_owned()
    }

    /// Evaluates a JavaScript expression (promises are awaited) and returns its JSON value
    /// (`null` for `undefined` and for values that are not JSON). Panics on a JavaScript error.
    pub fn eval(&self, js: &str) -> serde_json::Value {
        self.try_eval(js).unwrap_or_else(|e| self.fail(&format!("eval `{js}`: {e}")))
    }

    /// Like [`Page::eval`], with the JavaScript error (or a timeout) as `Err`.
    pub fn try_eval(&self, js: &str) -> Result<serde_json::Value, String> {
        let params = EvaluateParams::builder()
            .expression(js)
            .await_promise(true)
            .return_by_value(true)
            .build()
            .map_err(|e| format!("bad eval parameters: {e}"))?;
        let result = self.run("eval", self.page.evaluate_expression(params))?;
        Ok(result.value().cloned().unwrap_or(serde_json::Value::Null))
    }

    /// Waits until the JavaScript expression `js` is truthy; `what` names it in the panic message.
    pub fn wait_until(&self, js: &str, what: &str) -> &Self {
        let deadline = Instant::now() + self.timeout();
        let check = format!("!!({js})");
        let mut last_error = String::new();
        loop {
            match self.try_eval(&check) {
                Ok(serde_json::Value::Bool(true)) => return self,
                Ok(_) => {}
                // e.g. the execution context went away during a navigation: try again.
                Err(e) => last_error = e,
            }
            if Instant::now() >= deadline {
                let detail = if last_error.is_empty() { String::new() } else { format!(" (last error: {last_error})") };
                self.fail(&format!("timed out after {:?} waiting for {what}{detail}", self.timeout()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until an element matches `selector`.
    pub fn wait_for(&self, selector: &str) -> &Self {
        self.wait_until(&format!("document.querySelector({})", js_str(selector)), &format!("`{selector}`"))
    }

    /// Waits until no element matches `selector` (a spinner, a dialog that closes).
    pub fn wait_gone(&self, selector: &str) -> &Self {
        self.wait_until(
            &format!("!document.querySelector({})", js_str(selector)),
            &format!("`{selector}` to disappear"),
        )
    }

    /// Waits until the element matching `selector` exists and its text contains `needle`.
    pub fn wait_for_text(&self, selector: &str, needle: &str) -> &Self {
        self.wait_until(
            &format!(
                "(document.querySelector({s})?.innerText ?? '').includes({n})",
                s = js_str(selector),
                n = js_str(needle)
            ),
            &format!("`{selector}` to contain {needle:?}"),
        )
    }

    /// Whether an element matches `selector` now (no waiting).
    pub fn exists(&self, selector: &str) -> bool {
        self.eval(&format!("document.querySelector({}) !== null", js_str(selector))) == serde_json::Value::Bool(true)
    }

    /// The visible text (`innerText`, trimmed) of the first element matching `selector`, after
    /// waiting for it.
    pub fn text_of(&self, selector: &str) -> String {
        self.wait_for(selector);
        let v = self.eval(&format!("document.querySelector({})?.innerText", js_str(selector)));
        v.as_str().unwrap_or_default().trim().to_owned()
    }

    /// The texts of all elements matching `selector` now, in document order (no waiting: an
    /// empty list is an answer; wait for the first row with [`Page::wait_for`] when it matters).
    pub fn texts_of(&self, selector: &str) -> Vec<String> {
        let v = self.eval(&format!(
            "Array.from(document.querySelectorAll({}), e => (e.innerText ?? e.textContent ?? '').trim())",
            js_str(selector)
        ));
        v.as_array().map(|a| a.iter().map(|t| t.as_str().unwrap_or_default().to_owned()).collect()).unwrap_or_default()
    }

    /// The value of attribute `name` of the first element matching `selector` (after waiting).
    pub fn attribute(&self, selector: &str, name: &str) -> Option<String> {
        self.wait_for(selector);
        let v = self.eval(&format!("document.querySelector({})?.getAttribute({})", js_str(selector), js_str(name)));
        v.as_str().map(str::to_owned)
    }

    /// Clicks the element matching `selector` like a person: scrolled into view, a real mouse
    /// press and release at its centre. Retries until it is there and clickable.
    pub fn click(&self, selector: &str) -> &Self {
        let deadline = Instant::now() + self.timeout();
        loop {
            let attempt = self.run(&format!("click `{selector}`"), async {
                self.page.find_element(selector).await?.click().await?;
                Ok(())
            });
            match attempt {
                Ok(()) => return self,
                Err(e) if Instant::now() >= deadline => self.fail(&format!("timed out clicking `{selector}`: {e}")),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Replaces the content of the input or textarea matching `selector` with `text`, as a
    /// keyboard would: focus, select all, then insert the text (`input` events fire; `change`
    /// fires when focus leaves, e.g. on the next click). Chinese text works.
    pub fn type_into(&self, selector: &str, text: &str) -> &Self {
        self.wait_for(selector);
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({}); e.focus(); \
             if (typeof e.select === 'function') e.select(); \
             else {{ const r = document.createRange(); r.selectNodeContents(e); \
             const s = getSelection(); s.removeAllRanges(); s.addRange(r); }} return true; }})()",
            js_str(selector)
        ));
        let result = if text.is_empty() {
            self.run("clear", async {
                self.page.find_element(selector).await?.press_key("Backspace").await?;
                Ok(())
            })
        } else {
            self.run(&format!("type into `{selector}`"), async {
                self.page.execute(InsertTextParams::new(text)).await?;
                Ok(())
            })
        };
        if let Err(e) = result {
            self.fail(&e);
        }
        self
    }

    /// Sets the value of the input matching `selector` as a date picker would (fires `input` and
    /// `change`); for controls that cannot be typed into, such as `<input type=date>`.
    pub fn set_value(&self, selector: &str, value: &str) -> &Self {
        self.wait_for(selector);
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({}); e.value = {}; \
             e.dispatchEvent(new Event('input', {{bubbles: true}})); \
             e.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})()",
            js_str(selector),
            js_str(value)
        ));
        self
    }

    /// Chooses the option with value `value` in the `<select>` matching `selector` and fires
    /// `input` and `change` as a person's choice would.
    pub fn select_option(&self, selector: &str, value: &str) -> &Self {
        self.wait_for(selector);
        let ok = self.eval(&format!(
            "(() => {{ const e = document.querySelector({}); \
             if (![...e.options].some(o => o.value === {v})) return false; \
             e.value = {v}; e.dispatchEvent(new Event('input', {{bubbles: true}})); \
             e.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})()",
            js_str(selector),
            v = js_str(value)
        ));
        if ok != serde_json::Value::Bool(true) {
            self.fail(&format!("`{selector}` has no option with value {value:?}"));
        }
        self
    }

    /// Puts the file at `path` into the `<input type=file>` matching `selector` (DevTools
    /// `DOM.setFileInputFiles`; the browser fires `input` and `change`).
    pub fn set_file_input(&self, selector: &str, path: &Path) -> &Self {
        let path = path.canonicalize().unwrap_or_else(|e| panic!("file for `{selector}`: {}: {e}", path.display()));
        self.wait_for(selector);
        let result = self.run(&format!("set file of `{selector}`"), async {
            let element = self.page.find_element(selector).await?;
            let mut params = SetFileInputFilesParams::new(vec![path.display().to_string()]);
            params.object_id = Some(element.remote_object_id.clone());
            self.page.execute(params).await?;
            Ok(())
        });
        if let Err(e) = result {
            self.fail(&e);
        }
        self
    }

    /// Resizes this page's viewport (CSS pixels); `mobile` also emulates a phone (meta
    /// viewport, touch). See [`Browser::launch_mobile`] for a phone from the start.
    pub fn set_viewport(&self, width: u32, height: u32, mobile: bool) -> &Self {
        let scale = if mobile { 2.0 } else { 1.0 };
        let result = self.run("set viewport", async {
            self.page.execute(SetDeviceMetricsOverrideParams::new(width, height, scale, mobile)).await?;
            self.page.execute(SetTouchEmulationEnabledParams::new(mobile)).await?;
            Ok(())
        });
        if let Err(e) = result {
            self.fail(&e);
        }
        self
    }

    /// Saves a PNG of the viewport as `screenshots_dir()/NAME.png`, prints and returns the path.
    /// Name screenshots after the test (`ledger-filtered`, not `1`): parallel tests share the folder.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        self.try_screenshot(name, false).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Page::screenshot`], of the whole scrollable page.
    pub fn screenshot_full_page(&self, name: &str) -> PathBuf {
        self.try_screenshot(name, true).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_screenshot(&self, name: &str, full_page: bool) -> Result<PathBuf, String> {
        let params = ScreenshotParams::builder().format(CaptureScreenshotFormat::Png).full_page(full_page).build();
        let png = self.run(&format!("screenshot {name}"), self.page.screenshot(params))?;
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let file: String =
            name.chars().map(|c| if c.is_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
        let path = dir.join(format!("{file}.png"));
        std::fs::write(&path, png).map_err(|e| format!("writing {}: {e}", path.display()))?;
        println!("screenshot: {}", path.display());
        Ok(path)
    }

    /// Logs in through the web app's login form at `base_url` (`http://127.0.0.1:PORT`) and waits
    /// until the current user is shown; returns that text. Uses the hooks
    /// `[data-testid=login-username]`, `[data-testid=login-password]`,
    /// `[data-testid=login-submit]` and `[data-testid=current-user]`.
    pub fn login(&self, base_url: &str, username: &str, password: &str) -> String {
        self.goto(base_url);
        self.type_into("[data-testid=login-username]", username);
        self.type_into("[data-testid=login-password]", password);
        self.click("[data-testid=login-submit]");
        self.text_of("[data-testid=current-user]")
    }

    /// Console errors, uncaught exceptions and browser log errors seen so far.
    pub fn console_errors(&self) -> Vec<String> {
        self.events.lock().unwrap().console_errors.clone()
    }

    /// Requests that failed so far: network errors and HTTP statuses ≥ 400 (requests the page
    /// abandoned itself are not counted).
    pub fn failed_requests(&self) -> Vec<FailedRequest> {
        let ev = self.events.lock().unwrap();
        ev.failures
            .iter()
            .map(|(id, status, error)| {
                let (method, url) = ev.requests.get(id).cloned().unwrap_or_else(|| (String::new(), format!("<{id}>")));
                FailedRequest { method, url, status: *status, error: error.clone() }
            })
            .collect()
    }

    /// Forgets the errors and failed requests seen so far (e.g. after provoking one on purpose).
    pub fn clear_errors(&self) {
        let mut ev = self.events.lock().unwrap();
        ev.console_errors.clear();
        ev.failures.clear();
    }

    /// Waits until a request the test provoked is recorded as failed with `status` (the browser may
    /// report it a moment after the page has shown the error), then clears the errors.
    pub fn expect_failed_request(&self, status: i64, url_contains: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let seen = self.failed_requests().iter().any(|f| f.status == Some(status) && f.url.contains(url_contains));
            if seen {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no failed request {status} to {url_contains}; failed: {:?}",
                self.failed_requests().iter().map(ToString::to_string).collect::<Vec<_>>()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Its console line comes with it; give it the same moment.
        std::thread::sleep(std::time::Duration::from_millis(100));
        self.clear_errors();
    }

    /// Panics unless there were no console errors and no failed requests.
    pub fn assert_no_errors(&self) {
        let (errors, failed) = (self.console_errors(), self.failed_requests());
        assert!(
            errors.is_empty() && failed.is_empty(),
            "the page had errors\nconsole errors:\n  {}\nfailed requests:\n  {}",
            errors.join("\n  "),
            failed.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  ")
        );
    }

    /// Panics with `message` and what the page shows now: URL, text, errors, a screenshot.
    pub fn fail(&self, message: &str) -> ! {
        const MAX: usize = 3000;
        let probe = self.browser.block_on(async {
            let eval = self.page.evaluate_expression(
                "JSON.stringify([location.href, document.body ? document.body.innerText : '(no body)'])",
            );
            tokio::time::timeout(Duration::from_secs(5), eval).await
        });
        let (url, text) = match probe {
            Ok(Ok(r)) => r
                .value()
                .and_then(serde_json::Value::as_str)
                .and_then(|s| serde_json::from_str::<(String, String)>(s).ok())
                .unwrap_or_default(),
            _ => ("(page not answering)".into(), String::new()),
        };
        let text = if text.chars().count() > MAX {
            format!("{}… ({} characters)", text.chars().take(MAX).collect::<String>(), text.chars().count())
        } else {
            text
        };
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
        let test = std::thread::current().name().unwrap_or("test").to_owned();
        let shot = match self.try_screenshot(&format!("failure-{test}-{stamp}"), false) {
            Ok(p) => p.display().to_string(),
            Err(e) => format!("(none: {e})"),
        };
        let failed: Vec<String> = self.failed_requests().iter().map(ToString::to_string).collect();
        panic!(
            "{message}\npage: {url}\nscreenshot: {shot}\nconsole errors: {:?}\nfailed requests: {failed:?}\n\
             page text:\n{text}",
            self.console_errors()
        );
    }
}
