//! Live refresh: a page calls [`use_live`] with its tenant, and while it is shown (and no "as of"
//! is set) the app follows `GET /api/v1/tenants/{t}/live` (server-sent events). Every batch of
//! events bumps `AppState.live.revision`; a `LocalResource` that reads that signal refetches:
//!
//! ```ignore
//! let st = use_app();
//! use_live(&tenant);
//! let data = LocalResource::new(move || {
//!     let _ = st.live.revision.get();          // refetch on every change of the tenant
//!     st.api.get::<TenantDashboard>(&path)
//! });
//! view! { <LiveIndicator/> … }                 // "● 实时" and "已更新 HH:mm:ss"
//! ```
//!
//! `EventSource` cannot send the `Authorization` header, so this reads the stream with `fetch()`
//! and a `ReadableStream` reader ([`crate::sse`] parses the frames). After a dropped connection or
//! the server's `event: shutdown` it reconnects (1 s, doubling up to 30 s) with `Last-Event-ID`, so
//! nothing is missed; 401/403/404 stop it. Setting the global "as of" aborts the stream (a past
//! state does not change); clearing it reconnects and refetches.

use crate::format;
use crate::sse::SseParser;
use crate::state::{AppState, use_app};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveStatus {
    Off,
    Connecting,
    Connected,
}

impl LiveStatus {
    pub fn code(self) -> &'static str {
        match self {
            LiveStatus::Off => "off",
            LiveStatus::Connecting => "connecting",
            LiveStatus::Connected => "connected",
        }
    }
}

/// The shared live state (part of `AppState`).
#[derive(Debug, Clone, Copy)]
pub struct LiveState {
    /// Goes up by one on every batch of events received; depend on it to refetch.
    pub revision: RwSignal<u64>,
    pub status: RwSignal<LiveStatus>,
    /// When the last change arrived (北京时间 `HH:mm:ss`), for the "已更新" indicator.
    pub updated: RwSignal<Option<String>>,
}

impl LiveState {
    pub fn new() -> LiveState {
        LiveState { revision: RwSignal::new(0), status: RwSignal::new(LiveStatus::Off), updated: RwSignal::new(None) }
    }

    fn bump(&self) {
        let now = format::from_epoch_millis(js_sys::Date::now()).map(|t| t.format("%H:%M:%S").to_string());
        self.updated.set(now);
        self.revision.update(|r| *r += 1);
    }
}

/// Follows the tenant's live events while the calling component is mounted and no "as of" is set.
pub fn use_live(tenant: &str) {
    let st = use_app();
    let url = format!("/api/v1/tenants/{tenant}/live");
    let current: StoredValue<Option<web_sys::AbortController>, LocalStorage> = StoredValue::new_local(None);
    let stop = move || {
        if let Some(Some(c)) = current.try_update_value(Option::take) {
            c.abort();
        }
    };
    Effect::new(move |_| {
        let historical = st.api.as_of.get().is_some();
        let logged_in = st.api.token.get().is_some();
        stop();
        if historical || !logged_in {
            st.live.status.set(LiveStatus::Off);
            return;
        }
        let Ok(ctl) = web_sys::AbortController::new() else { return };
        let signal = ctl.signal();
        current.set_value(Some(ctl));
        spawn_local(follow(st, url.clone(), signal));
    });
    on_cleanup(move || {
        stop();
        st.live.status.set(LiveStatus::Off);
    });
}

enum End {
    /// Not allowed or not there: do not try again.
    Fatal,
    /// Dropped, failed or shut down: reconnect.
    Retry,
}

async fn follow(st: AppState, url: String, signal: web_sys::AbortSignal) {
    let mut last_id: Option<String> = None;
    let mut delay = 1000;
    while !signal.aborted() {
        st.live.status.set(LiveStatus::Connecting);
        let end = stream_once(st, &url, &signal, &mut last_id, &mut delay).await;
        if signal.aborted() {
            return;
        }
        if let End::Fatal = end {
            st.live.status.set(LiveStatus::Off);
            return;
        }
        st.live.status.set(LiveStatus::Connecting);
        sleep(delay).await;
        delay = (delay * 2).min(30_000);
    }
}

async fn stream_once(
    st: AppState,
    url: &str,
    signal: &web_sys::AbortSignal,
    last_id: &mut Option<String>,
    delay: &mut i32,
) -> End {
    let Some(token) = st.api.token.get_untracked() else { return End::Fatal };
    let Ok(headers) = web_sys::Headers::new() else { return End::Fatal };
    let _ = headers.set("Accept", "text/event-stream");
    let _ = headers.set("Authorization", &format!("Bearer {token}"));
    if let Some(id) = last_id.as_deref() {
        let _ = headers.set("Last-Event-ID", id);
    }
    let init = web_sys::RequestInit::new();
    init.set_method("GET");
    init.set_headers(&headers);
    init.set_signal(Some(signal));
    let Ok(request) = web_sys::Request::new_with_str_and_init(url, &init) else { return End::Fatal };
    let response: web_sys::Response = match JsFuture::from(window().fetch_with_request(&request)).await {
        Ok(r) => r.unchecked_into(),
        Err(_) => return End::Retry,
    };
    match response.status() {
        200 => {}
        401 | 403 | 404 => return End::Fatal,
        _ => return End::Retry,
    }
    let Some(body) = response.body() else { return End::Retry };
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    st.live.status.set(LiveStatus::Connected);
    *delay = 1000;
    let mut parser = SseParser::new();
    loop {
        let Ok(chunk) = JsFuture::from(reader.read()).await else { return End::Retry };
        let done = js_sys::Reflect::get(&chunk, &JsValue::from_str("done")).ok().and_then(|d| d.as_bool());
        if done != Some(false) {
            return End::Retry;
        }
        let Ok(value) = js_sys::Reflect::get(&chunk, &JsValue::from_str("value")) else { return End::Retry };
        let bytes = js_sys::Uint8Array::new(&value).to_vec();
        let mut changed = false;
        for frame in parser.push(&bytes) {
            if frame.event.as_deref() == Some("shutdown") {
                let _ = reader.cancel();
                return End::Retry;
            }
            if let Some(id) = frame.id {
                *last_id = Some(id);
                changed = true;
            }
        }
        if changed {
            st.live.bump();
        }
    }
}

async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}

/// `● 实时` while connected (`data-testid="live-status"`, `data-state="connected|connecting|off"`)
/// and `已更新 HH:mm:ss` after a change arrived (`data-testid="live-updated"`).
#[component]
pub fn LiveIndicator() -> impl IntoView {
    let live = use_app().live;
    let label = move || match live.status.get() {
        LiveStatus::Connected => "● 实时",
        LiveStatus::Connecting => "○ 连接中…",
        LiveStatus::Off => "",
    };
    view! {
        <span class="live" data-testid="live-status" data-state=move || live.status.get().code()
            title="有新的督查记录时自动刷新">
            {label}
            {move || live.updated.get().map(|t| view! {
                <span class="live-updated" data-testid="live-updated" role="status">{format!("已更新 {t}")}</span>
            })}
        </span>
    }
}
