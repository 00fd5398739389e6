//! Ducha's web app (issue 4): a Leptos client-side app compiled to wasm32, served by the `ducha`
//! binary, talking only to the REST API under `/api/v1`. The map:
//!
//! | module | what | builds on |
//! | --- | --- | --- |
//! | [`format`] | times in Asia/Shanghai, the "as of" banner and parameter, numbers | host + wasm |
//! | [`chart`] | SVG charts as markup (scales, bars, `<title>` tooltips) | host + wasm |
//! | [`warning`] | 红黄蓝绿 badge classes and labels | host + wasm |
//! | [`route`] | the app's routes (path ⇄ [`route::Route`]) and the navigation per role | host + wasm |
//! | [`inspection_form`] | the inspection forms' browser-side checks, points, figures, the report preview's HTML | host + wasm |
//! | [`problem`] | RFC 9457 problem+json → [`problem::ApiError`]; query strings | host + wasm |
//! | [`sse`] | server-sent events parser (bytes of a `fetch()` body → frames) | host + wasm |
//! | [`validate`] | browser-side checks of the administration forms (ids, passwords, points) | host + wasm |
//! | [`rectify`] | 整改: the ledger's query, checks of the rectification forms, who may issue what | host + wasm |
//! | `api` | the one HTTP client: bearer token, problem+json errors, `as_of` on every GET | wasm |
//! | `state` | session (token in sessionStorage, `/me`), the global "as of", the router | wasm |
//! | `components` | header, nav, banner, loading / error / empty states, charts, links | wasm |
//! | `live` | live refresh: `use_live(tenant)` follows `/tenants/{t}/live`, bumps a revision | wasm |
//! | `pages` | one file per screen | wasm |
//!
//! The pure modules have unit tests that run on the host (`cargo test -p ducha-web`); the browser
//! modules are compiled and linted for `wasm32-unknown-unknown` only (`cargo xtask web`,
//! `cargo clippy -p ducha-web --target wasm32-unknown-unknown`), so host builds of the workspace
//! do not compile Leptos at all.

pub mod audit_text;
pub mod chart;
pub mod format;
pub mod import_mapping;
pub mod inspection_form;
pub mod problem;
pub mod rectify;
pub mod route;
pub mod sse;
pub mod validate;
pub mod warning;

#[cfg(target_arch = "wasm32")]
mod api;
#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod components;
#[cfg(target_arch = "wasm32")]
mod live;
#[cfg(target_arch = "wasm32")]
mod pages;
#[cfg(target_arch = "wasm32")]
mod state;

/// The module's entry point, called by the wasm-bindgen glue when `index.html` loads it.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    // A panic's message in the console (the release build aborts with a bare "unreachable").
    std::panic::set_hook(Box::new(|info| console_error(&info.to_string())));
    leptos::mount::mount_to_body(app::App);
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
}
