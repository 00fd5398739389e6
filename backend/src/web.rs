//! The web app (`frontend/`, issue 4), served by the binary itself so one file is the whole product
//! on an intranet: its files are embedded at build time by `backend/build.rs` from the folder named
//! by `DUCHA_WEB_DIST` (set by `cargo xtask web | run | test`).
//!
//! Every GET outside `/api` is the app's: a known file is served with its content type, or else
//! the path is one of the app's own routes (client-side routing) and gets `index.html`. Every
//! answer carries a strict Content-Security-Policy (only our own scripts, plus
//! `'wasm-unsafe-eval'` to compile the WASM module) and `Cache-Control: no-cache` with an ETag:
//! the file names do not change between builds, so the browser revalidates (a cheap 304).

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};

/// One embedded file of the web app.
#[derive(Debug)]
pub struct Asset {
    /// Relative to the dist folder, with `/` (e.g. `index.html`, `ducha_bg.wasm`).
    pub path: &'static str,
    pub bytes: &'static [u8],
    /// A quoted hash of the bytes.
    pub etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// The policy of every web-app answer. `'wasm-unsafe-eval'` lets the browser compile our WASM and
/// nothing else; no inline script or style, nothing from another origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; \
     base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// Whether the web app is embedded in this binary.
pub fn embedded() -> bool {
    !ASSETS.is_empty()
}

fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// The content type of a file name.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The answer to a request the API did not route, if it is the web app's: GET or HEAD outside
/// `/api`. `None` lets the caller answer 404/405 as problem+json.
pub fn respond(req: &HttpRequest) -> Option<HttpResponse> {
    let path = req.path();
    if path == "/api" || path.starts_with("/api/") || !(req.method() == Method::GET || req.method() == Method::HEAD) {
        return None;
    }
    if !embedded() {
        return Some(not_built());
    }
    let rel = path.trim_start_matches('/');
    if let Some(a) = asset(rel).filter(|_| !rel.is_empty()) {
        return Some(serve(req, a));
    }
    // A missing file (a name with an extension) is a 404; any other path is a route of the app.
    let last = rel.rsplit('/').next().unwrap_or("");
    if last.contains('.') {
        return None;
    }
    asset("index.html").map(|a| serve(req, a))
}

fn secure(builder: &mut HttpResponseBuilder) -> &mut HttpResponseBuilder {
    builder
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
}

fn serve(req: &HttpRequest, a: &'static Asset) -> HttpResponse {
    let accepts_gzip = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.split(';').next().is_some_and(|e| e.trim() == "gzip")));
    // `cargo xtask web` writes a gzipped copy of the big files (`X.gz`) next to them.
    let gz = asset(&format!("{}.gz", a.path)).filter(|_| accepts_gzip && !a.path.ends_with(".gz"));
    let (body, etag) = match gz {
        Some(g) => (g.bytes, g.etag),
        None => (a.bytes, a.etag),
    };
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = if not_modified { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    secure(&mut res)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::ETAG, HeaderValue::from_static(etag)))
        .insert_header((header::VARY, "Accept-Encoding"));
    if not_modified {
        return res.finish();
    }
    res.insert_header((header::CONTENT_TYPE, content_type(a.path)));
    if gz.is_some() {
        res.insert_header((header::CONTENT_ENCODING, "gzip"));
    }
    res.body(body)
}

/// The page of a binary built without the web app (a plain `cargo build` on a fresh clone).
fn not_built() -> HttpResponse {
    const PAGE: &str = "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><title>督查 · 网页应用未构建</title>\
        <body style=\"font-family:'PingFang SC','Microsoft YaHei','WenQuanYi Zen Hei',sans-serif;max-width:40em;margin:3em auto;padding:0 1em\">\
        <h1>网页应用未构建</h1><p>这个 <code>ducha</code> 程序在构建时没有嵌入网页应用；REST API 照常可用（文档见 \
        <a href=\"/api/docs/\">/api/docs/</a>）。</p><p>The web app was not built into this binary; the REST API works \
        (docs at <a href=\"/api/docs/\">/api/docs/</a>). Build everything and serve the demo with:</p>\
        <pre>cargo xtask run</pre><p>or build the app with <code>cargo xtask web</code> and then the binary with \
        <code>DUCHA_WEB_DIST=target/web-dist cargo build -p ducha</code>.</p></body></html>";
    // The page's one inline style is allowed by its hash-free policy below (no script at all).
    HttpResponse::build(StatusCode::OK)
        .insert_header((header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(PAGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("ducha_bg.wasm"), "application/wasm");
        assert_eq!(content_type("ducha.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("style.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("x"), "application/octet-stream");
    }

    #[test]
    fn the_api_and_writes_are_not_the_web_apps() {
        for (method, path) in [(Method::GET, "/api/v1/nope"), (Method::GET, "/api"), (Method::POST, "/tenants/xxjd")] {
            let req = TestRequest::default().method(method).uri(path).to_http_request();
            assert!(respond(&req).is_none(), "{path}");
        }
    }

    #[actix_web::test]
    async fn app_routes_get_index_html_or_the_page_that_says_how_to_build_it() {
        let req = TestRequest::get().uri("/tenants/xxjd/ledger").to_http_request();
        let res = respond(&req).expect("a page");
        assert_eq!(res.status(), 200);
        let header = |name| res.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok()).unwrap_or("");
        assert_eq!(header(header::CONTENT_TYPE), "text/html; charset=utf-8");
        let csp = header(header::CONTENT_SECURITY_POLICY).to_owned();
        let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        let body = String::from_utf8_lossy(&body);
        if embedded() {
            assert!(csp.contains("script-src 'self' 'wasm-unsafe-eval'"), "{csp}");
            assert!(body.contains("<html"));
            // A missing file is not the app's page.
            assert!(respond(&TestRequest::get().uri("/missing.js").to_http_request()).is_none());
        } else {
            assert!(body.contains("cargo xtask run"), "{body}");
            assert!(!csp.contains("script-src"));
        }
    }
}
