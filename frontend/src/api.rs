//! The one HTTP client of the app. Every request goes through [`Api`], which
//! - adds `Authorization: Bearer …` from the session (the token lives in sessionStorage),
//! - turns every non-2xx answer into an [`ApiError`] (problem+json: code, title, detail, field),
//! - appends `as_of=…` to every GET while the global "as of" is set ([`Api::get`]),
//! - forgets the token when the server says it is expired or revoked (the app then shows the login),
//! - remembers the log position of its last write (`X-Ducha-Position`) and sends it with every
//!   request (`X-Ducha-Min-Position`): behind a load balancer the next read may reach another
//!   replica, which then waits until it has applied that write.
//!
//! Use it from a page with a `LocalResource` so the page reloads when the "as of" changes:
//!
//! ```ignore
//! let st = expect_context::<AppState>();
//! let data = LocalResource::new(move || st.api.get::<TenantDashboard>(&format!("/tenants/{t}/dashboard")));
//! ```

use crate::format::as_of_param;
use crate::problem::{ApiError, MIN_POSITION_HEADER, POSITION_HEADER, later_position, with_query};
use chrono::NaiveDateTime;
use leptos::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::Cell;
use std::future::Future;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

const TOKEN_KEY: &str = "ducha.token";

thread_local! {
    /// The log position of this tab's last write (0: none yet).
    static LAST_WRITE: Cell<u64> = const { Cell::new(0) };
}

/// Adds `X-Ducha-Min-Position` once this tab has written something.
fn add_min_position(headers: &web_sys::Headers) -> Result<(), ApiError> {
    let position = LAST_WRITE.with(Cell::get);
    if position > 0 {
        headers.set(MIN_POSITION_HEADER, &position.to_string()).map_err(js_error)?;
    }
    Ok(())
}

/// Remembers a write's `X-Ducha-Position`.
fn note_position(response: &web_sys::Response) {
    let header = response.headers().get(POSITION_HEADER).ok().flatten();
    LAST_WRITE.with(|p| p.set(later_position(p.get(), header.as_deref())));
}
const BASE: &str = "/api/v1";

fn session_storage() -> Option<web_sys::Storage> {
    window().session_storage().ok().flatten()
}

/// The token kept from the last login in this browser tab.
pub fn stored_token() -> Option<String> {
    session_storage().and_then(|s| s.get_item(TOKEN_KEY).ok().flatten()).filter(|t| !t.is_empty())
}

fn store_token(token: Option<&str>) {
    if let Some(s) = session_storage() {
        let _ = match token {
            Some(t) => s.set_item(TOKEN_KEY, t),
            None => s.remove_item(TOKEN_KEY),
        };
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Api {
    /// The bearer token; `None` means logged out.
    pub token: RwSignal<Option<String>>,
    /// The global "as of" (a Shanghai wall-clock time); `None` means now.
    pub as_of: RwSignal<Option<NaiveDateTime>>,
}

impl Api {
    pub fn new() -> Api {
        Api { token: RwSignal::new(stored_token()), as_of: RwSignal::new(None) }
    }

    /// Keeps a new token (login) or forgets it (`None`: logout, expiry).
    pub fn set_token(&self, token: Option<String>) {
        store_token(token.as_deref());
        self.token.set(token);
    }

    /// `GET /api/v1{path}`, as of the global "as of" when it is set. The signals are read when
    /// this is called (not when the future runs), so a resource that calls it reloads when the
    /// "as of" changes.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> impl Future<Output = Result<T, ApiError>> + use<T> {
        let mut url = format!("{BASE}{path}");
        if let Some(at) = self.as_of.get() {
            url = with_query(&url, "as_of", &as_of_param(at));
        }
        let api = *self;
        async move { api.send("GET", &url, None).await.and_then(|body| parse(&body)) }
    }

    /// `GET /api/v1{path}` of the present, whatever the "as of" (e.g. `/me`).
    pub fn get_current<T: DeserializeOwned>(&self, path: &str) -> impl Future<Output = Result<T, ApiError>> + use<T> {
        let url = format!("{BASE}{path}");
        let api = *self;
        async move { api.send("GET", &url, None).await.and_then(|body| parse(&body)) }
    }

    /// `POST /api/v1{path}` with a JSON body; the answer's JSON body.
    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ApiError> {
        let json = serde_json::to_string(body).map_err(|e| ApiError::bad_response(&e.to_string()))?;
        let text = self.send("POST", &format!("{BASE}{path}"), Some(json)).await?;
        parse(&text)
    }

    /// `POST /api/v1{path}` with a JSON body and a login step's token (not the stored one: a step's
    /// token is good for the next step only, so it never becomes the session's).
    pub async fn post_step<B: Serialize, T: DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        let json = serde_json::to_string(body).map_err(|e| ApiError::bad_response(&e.to_string()))?;
        let (status, text) = fetch("POST", &format!("{BASE}{path}"), Some(token), Some(json)).await?;
        if (200..300).contains(&status) { parse(&text) } else { Err(ApiError::from_response(status, &text)) }
    }

    /// `POST /api/v1{path}` without a body, for answers without one (204).
    pub async fn post_empty(&self, path: &str) -> Result<(), ApiError> {
        self.send("POST", &format!("{BASE}{path}"), None).await.map(|_| ())
    }

    async fn send(&self, method: &str, url: &str, body: Option<String>) -> Result<String, ApiError> {
        let token = self.token.get_untracked();
        let (status, text) = fetch(method, url, token.as_deref(), body).await?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let error = ApiError::from_response(status, &text);
        if error.needs_login() && token.is_some() {
            self.set_token(None);
        }
        Err(error)
    }
}

fn parse<T: DeserializeOwned>(body: &str) -> Result<T, ApiError> {
    serde_json::from_str(body).map_err(|e| ApiError::bad_response(&e.to_string()))
}

fn js_error(e: JsValue) -> ApiError {
    ApiError::network(&e.as_string().unwrap_or_else(|| format!("{e:?}")))
}

/// One request with the browser's `fetch`: the status and the body as text.
async fn fetch(method: &str, url: &str, token: Option<&str>, body: Option<String>) -> Result<(u16, String), ApiError> {
    let headers = web_sys::Headers::new().map_err(js_error)?;
    headers.set("Accept", "application/json, application/problem+json").map_err(js_error)?;
    if let Some(token) = token {
        headers.set("Authorization", &format!("Bearer {token}")).map_err(js_error)?;
    }
    add_min_position(&headers)?;
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    if let Some(body) = body {
        headers.set("Content-Type", "application/json").map_err(js_error)?;
        init.set_body(&JsValue::from_str(&body));
    }
    init.set_headers(&headers);
    let request = web_sys::Request::new_with_str_and_init(url, &init).map_err(js_error)?;
    let response: web_sys::Response =
        JsFuture::from(window().fetch_with_request(&request)).await.map_err(js_error)?.dyn_into().map_err(js_error)?;
    note_position(&response);
    let text = JsFuture::from(response.text().map_err(js_error)?).await.map_err(js_error)?;
    Ok((response.status(), text.as_string().unwrap_or_default()))
}

// ------------------------------------------------------------------ versions, downloads, uploads
// (added for the rectification screens: If-Match writes, blob downloads, multipart evidence uploads)

impl Api {
    /// Like [`Api::get`], also giving the `ETag` version of the answer (`"N"` → `N`), to send back
    /// as `If-Match` with a write.
    pub fn get_versioned<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(T, Option<u64>), ApiError>> + use<T> {
        let mut url = format!("{BASE}{path}");
        if let Some(at) = self.as_of.get() {
            url = with_query(&url, "as_of", &as_of_param(at));
        }
        let api = *self;
        async move {
            let response = api.raw("GET", &url, &[], None).await?;
            let version = response.headers().get("ETag").ok().flatten().and_then(|e| parse_etag(&e));
            let text = JsFuture::from(response.text().map_err(js_error)?).await.map_err(js_error)?;
            Ok((parse(&text.as_string().unwrap_or_default())?, version))
        }
    }

    /// `POST /api/v1{path}` with a JSON body and, when `version` is given, `If-Match: "version"`.
    pub async fn post_if_match<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        version: Option<u64>,
    ) -> Result<T, ApiError> {
        let json = serde_json::to_string(body).map_err(|e| ApiError::bad_response(&e.to_string()))?;
        let if_match = version.map(|v| format!("\"{v}\""));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(m) = &if_match {
            headers.push(("If-Match", m.as_str()));
        }
        let response = self.raw("POST", &format!("{BASE}{path}"), &headers, Some(JsValue::from_str(&json))).await?;
        let text = JsFuture::from(response.text().map_err(js_error)?).await.map_err(js_error)?;
        parse(&text.as_string().unwrap_or_default())
    }

    /// `POST /api/v1{path}` as `multipart/form-data` with one part named `file` (the browser sets
    /// the boundary); the answer's JSON body.
    pub async fn upload<T: DeserializeOwned>(&self, path: &str, file: &web_sys::File) -> Result<T, ApiError> {
        self.upload_with(path, file, &[]).await
    }

    /// Like [`Api::upload`], with more (text) parts after the file.
    pub async fn upload_with<T: DeserializeOwned>(
        &self,
        path: &str,
        file: &web_sys::File,
        parts: &[(&str, &str)],
    ) -> Result<T, ApiError> {
        let form = web_sys::FormData::new().map_err(js_error)?;
        form.append_with_blob_and_filename("file", file, &file.name()).map_err(js_error)?;
        for (name, value) in parts {
            form.append_with_str(name, value).map_err(js_error)?;
        }
        let response = self.raw("POST", &format!("{BASE}{path}"), &[], Some(form.into())).await?;
        let text = JsFuture::from(response.text().map_err(js_error)?).await.map_err(js_error)?;
        parse(&text.as_string().unwrap_or_default())
    }

    /// Fetches `GET /api/v1{path}` (as of the global "as of") with the bearer token as a blob and
    /// saves it as `filename` (a plain link could not carry the `Authorization` header).
    pub async fn download(&self, path: &str, filename: &str) -> Result<(), ApiError> {
        let mut url = format!("{BASE}{path}");
        if let Some(at) = self.as_of.get_untracked() {
            url = with_query(&url, "as_of", &as_of_param(at));
        }
        let response = self.raw("GET", &url, &[], None).await?;
        let blob: web_sys::Blob =
            JsFuture::from(response.blob().map_err(js_error)?).await.map_err(js_error)?.dyn_into().map_err(js_error)?;
        let href = web_sys::Url::create_object_url_with_blob(&blob).map_err(js_error)?;
        let a: web_sys::HtmlAnchorElement = document().create_element("a").map_err(js_error)?.unchecked_into();
        a.set_href(&href);
        a.set_download(filename);
        a.set_attribute("hidden", "").map_err(js_error)?;
        let body = document().body().ok_or_else(|| ApiError::network("no body"))?;
        body.append_child(&a).map_err(js_error)?;
        a.click();
        a.remove();
        // Revoke later: the download has started from the object URL by then.
        set_timeout(move || drop(web_sys::Url::revoke_object_url(&href)), std::time::Duration::from_secs(10));
        Ok(())
    }

    /// One request with the token and the given headers; a non-2xx answer becomes an [`ApiError`].
    async fn raw(
        &self,
        method: &str,
        url: &str,
        extra: &[(&str, &str)],
        body: Option<JsValue>,
    ) -> Result<web_sys::Response, ApiError> {
        let token = self.token.get_untracked();
        let headers = web_sys::Headers::new().map_err(js_error)?;
        headers.set("Accept", "application/json, application/problem+json, */*").map_err(js_error)?;
        if let Some(token) = &token {
            headers.set("Authorization", &format!("Bearer {token}")).map_err(js_error)?;
        }
        for (name, value) in extra {
            headers.set(name, value).map_err(js_error)?;
        }
        add_min_position(&headers)?;
        let init = web_sys::RequestInit::new();
        init.set_method(method);
        if let Some(body) = &body {
            init.set_body(body);
        }
        init.set_headers(&headers);
        let request = web_sys::Request::new_with_str_and_init(url, &init).map_err(js_error)?;
        let response: web_sys::Response = JsFuture::from(window().fetch_with_request(&request))
            .await
            .map_err(js_error)?
            .dyn_into()
            .map_err(js_error)?;
        note_position(&response);
        let status = response.status();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let text = JsFuture::from(response.text().map_err(js_error)?).await.map_err(js_error)?;
        let error = ApiError::from_response(status, &text.as_string().unwrap_or_default());
        if error.needs_login() && token.is_some() {
            self.set_token(None);
        }
        Err(error)
    }
}

impl Api {
    /// `GET /api/v1{path}` (as of the global "as of") as text, e.g. a report's HTML preview.
    pub fn get_text(&self, path: &str) -> impl Future<Output = Result<String, ApiError>> + use<> {
        let mut url = format!("{BASE}{path}");
        if let Some(at) = self.as_of.get() {
            url = with_query(&url, "as_of", &as_of_param(at));
        }
        let api = *self;
        async move {
            let response = api.raw("GET", &url, &[], None).await?;
            let text = JsFuture::from(response.text().map_err(js_error)?).await.map_err(js_error)?;
            Ok(text.as_string().unwrap_or_default())
        }
    }
}

/// `"7"` or `W/"7"` → 7.
fn parse_etag(etag: &str) -> Option<u64> {
    etag.trim().trim_start_matches("W/").trim_matches('"').parse().ok()
}
