//! The API's contract through the real binary: problem+json for every kind of bad request, the
//! OpenAPI document, the offline Swagger UI, health, readiness, metrics, request ids and "as of".

use ducha_tests::{Response, Server};
use serde_json::{Value, json};
use std::io::{Read, Write};

fn assert_problem(r: &Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert!(
        r.header("content-type").is_some_and(|c| c.starts_with("application/problem+json")),
        "not problem+json: {:?} {}",
        r.headers,
        r.text()
    );
    let p = r.json();
    assert_eq!(p["status"], status, "{p}");
    assert_eq!(p["code"], code, "{p}");
    assert_eq!(p["type"], format!("urn:ducha:problem:{code}"));
    for key in ["title", "detail", "detail_en"] {
        assert!(p[key].as_str().is_some_and(|s| !s.is_empty()), "{key} missing: {p}");
    }
    // People get Chinese.
    assert!(p["title"].as_str().unwrap().chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{p}");
    p
}

/// Sends a request without insisting that the whole body is accepted (the server may answer and
/// close before reading an oversized body).
fn send_lossy(addr: &str, head: &str, body: &[u8]) -> Response {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    Response { status, headers, body: body.as_bytes().to_vec() }
}

#[test]
fn bad_requests_get_problem_json_with_stable_codes() {
    let s = Server::start(true, &[("DUCHA_MAX_BODY_BYTES", "2048")]);
    let login = "/api/v1/auth/login";
    let json_ct = [("Content-Type", "application/json")];

    // Malformed JSON → 400.
    let r = s.request("POST", login, None, &json_ct, Some(b"{\"username\": \"xx-admin\", "));
    assert_problem(&r, 400, "malformed_json");

    // Unknown field → 422 naming it; missing field too.
    let body = json!({"username": "xx-admin", "password": "ducha-demo", "remember_me": true});
    let p = assert_problem(&s.post_json(login, None, &body), 422, "invalid_body");
    assert_eq!(p["field"], "remember_me");
    let p = assert_problem(&s.post_json(login, None, &json!({"username": "xx-admin"})), 422, "invalid_body");
    assert_eq!(p["field"], "password");

    // Wrong content type → 415.
    let r = s.request("POST", login, None, &[("Content-Type", "text/plain")], Some(b"username=xx-admin"));
    assert_problem(&r, 415, "unsupported_media_type");

    // Oversized body → 413 (limit configured to 2 KiB here).
    let big = format!("{{\"username\":\"{}\",\"password\":\"x\"}}", "a".repeat(64 * 1024));
    let head = format!(
        "POST {login} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        s.addr,
        big.len()
    );
    assert_problem(&send_lossy(&s.addr, &head, big.as_bytes()), 413, "payload_too_large");

    // Unknown route → 404; known route, other method → 405 with Allow.
    assert_problem(&s.get("/api/v1/no-such-thing", None), 404, "route_not_found");
    // Outside /api a path without an extension is the web app's own route (its page says 页面不存在);
    // a missing file is a 404 problem.
    assert_problem(&s.get("/nope.js", None), 404, "route_not_found");
    let app = s.get("/nope", None);
    assert_eq!(app.status, 200, "{}", app.text());
    assert!(app.header("content-type").is_some_and(|c| c.starts_with("text/html")), "{:?}", app.headers);
    let r = s.get(login, None);
    assert_problem(&r, 405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("POST"));

    // No token → 401 with a Bearer challenge.
    let r = s.get("/api/v1/me", None);
    assert_problem(&r, 401, "token_missing");
    assert!(r.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
    let r = s.request("GET", "/api/v1/me", None, &[("Authorization", "Basic eDp5")], None);
    assert_problem(&r, 401, "token_invalid");

    // Bad path and query parameters → 400.
    let token = s.login("xx-admin");
    let r = s.get("/api/v1/tenants/bad%20id/dashboard", Some(&token));
    assert_problem(&r, 400, "invalid_path");
    let r = s.get("/api/v1/tenants/xxjd/dashboard?at_position=abc", Some(&token));
    assert_problem(&r, 400, "invalid_as_of");
    let r = s.get("/api/v1/tenants/xxjd/dashboard?as_of=yesterday", Some(&token));
    assert_eq!(assert_problem(&r, 400, "invalid_as_of")["field"], "as_of");
    let r = s.get("/api/v1/tenants/xxjd/dashboard?as_of=2024-01-01T00:00:00Z&at_position=3", Some(&token));
    assert_problem(&r, 400, "invalid_as_of");
    // Unknown tenant → 404; another tenant → 403.
    assert_problem(&s.get("/api/v1/tenants/nowhere/dashboard", Some(&token)), 404, "not_found");
    assert_problem(&s.get("/api/v1/tenants/yyjd/dashboard", Some(&token)), 403, "forbidden");

    // Nothing above crashed the server.
    assert_eq!(s.get("/healthz", None).status, 200);
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

#[test]
fn the_dashboard_answers_now_and_as_of_a_past_point() {
    let s = Server::demo();
    let token = s.login("xx-admin");
    let now = s.get("/api/v1/tenants/xxjd/dashboard", Some(&token));
    assert_eq!(now.status, 200, "{}", now.text());
    let d = now.json();
    assert_eq!(d["tenant_name"], "XX街道");
    // The sample report's five findings (2023) and the 2024 inspection's six.
    assert_eq!(d["findings_total"], 11);
    assert_eq!(d["communities_total"], 6);
    let position: u64 = now.header("x-ducha-position").unwrap().parse().unwrap();
    assert!(position > 200);

    // Before the 2023 inspection: no findings yet; "today" is that date in Shanghai.
    let before = s.get("/api/v1/tenants/xxjd/dashboard?as_of=2023-03-01T00:00:00%2B08:00", Some(&token));
    assert_eq!(before.status, 200, "{}", before.text());
    assert_eq!(before.json()["findings_total"], 0);
    assert_eq!(before.json()["today"], "2023-03-01");
    let early: u64 = before.header("x-ducha-position").unwrap().parse().unwrap();
    assert!(early < position);

    // The same point by position gives the same numbers (today aside).
    let by_pos = s.get(&format!("/api/v1/tenants/xxjd/dashboard?at_position={early}"), Some(&token));
    assert_eq!(by_pos.json()["findings_total"], before.json()["findings_total"]);
    assert_eq!(by_pos.json()["communities_total"], before.json()["communities_total"]);

    // A district officer reads the tenants of their district.
    let officer = s.login("qu-xcb");
    assert_eq!(s.get("/api/v1/tenants/yyjd/dashboard", Some(&officer)).status, 200);
    // A community officer may not read the tenant-wide dashboard.
    let community = s.login("xx-dongfeng");
    assert_eq!(s.get("/api/v1/tenants/xxjd/dashboard", Some(&community)).status, 403);
}

#[test]
fn openapi_document_and_offline_swagger_ui() {
    let s = Server::demo();
    let r = s.get("/api/v1/openapi.json", None);
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let bearer = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    let paths = doc["paths"].as_object().unwrap();
    for p in ["/api/v1/auth/login", "/api/v1/auth/logout", "/api/v1/me", "/api/v1/tenants/{tenant_id}/dashboard"] {
        assert!(paths.contains_key(p), "{p} missing from the document");
    }
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for status in ["400", "500"] {
                assert!(responses.contains_key(status), "{method} {path} lacks {status}");
            }
            let public = op["security"].as_array().is_some_and(|s| s.iter().all(|r| r.as_object().unwrap().is_empty()));
            if !public {
                assert!(responses.contains_key("401"), "{method} {path} lacks 401");
                assert_eq!(op["security"][0]["bearer"], json!([]), "{method} {path}");
            }
            // The deliberate exceptions: logging in, and the anchors' public key (published, like
            // a certificate: anyone must be able to check a kept anchors file against it).
            if path.starts_with("/api/v1/") && path != "/api/v1/auth/login" && path != "/api/v1/anchors/public-key" {
                assert!(!public, "{method} {path} must require a token");
            }
        }
    }
    // The same document from the command line.
    let out = ducha_tests::ducha(s.data_dir.path(), &["openapi"]);
    assert!(out.status.success());
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["paths"].as_object().unwrap().len(), paths.len());

    // Swagger UI: served by the binary, nothing from a CDN.
    let r = s.get("/api/docs", None);
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("/api/docs/"));
    let index = s.get("/api/docs/", None);
    assert_eq!(index.status, 200);
    assert!(index.header("content-type").unwrap().starts_with("text/html"));
    let html = index.text();
    assert!(html.contains("swagger-ui"), "{html}");
    let init = s.get("/api/docs/swagger-initializer.js", None).text();
    assert!(init.contains("/api/v1/openapi.json"), "{init}");
    for text in [&html, &init] {
        assert!(
            !text.contains("http://")
                && !text.contains("https://")
                && !text.contains("//unpkg")
                && !text.contains("cdn"),
            "external URL in: {text}"
        );
    }
    // Every asset the page loads is served locally.
    for asset in html.split(['"', '\'']).filter(|a| a.ends_with(".js") || a.ends_with(".css") || a.ends_with(".png")) {
        let path = format!("/api/docs/{}", asset.trim_start_matches("./"));
        assert_eq!(s.get(&path, None).status, 200, "{path}");
    }
}

#[test]
fn health_readiness_metrics_and_request_ids() {
    let s = Server::demo();
    let r = s.get("/healthz", None);
    assert_eq!((r.status, r.json()["status"].clone()), (200, json!("ok")));
    let id = r.header("x-request-id").expect("a generated request id");
    assert!(!id.is_empty());
    let r = s.request("GET", "/healthz", None, &[("X-Request-Id", "trace-abc-123")], None);
    assert_eq!(r.header("x-request-id"), Some("trace-abc-123"));
    // A request id with spaces is replaced, not echoed.
    let r = s.request("GET", "/healthz", None, &[("X-Request-Id", "bad id")], None);
    assert_ne!(r.header("x-request-id"), Some("bad id"));

    let r = s.get("/readyz", None);
    assert_eq!(r.status, 200, "{}", r.text());
    let ready = r.json();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["lag"], 0);
    assert_eq!(ready["head"], ready["projected"]);

    let token = s.login("xx-admin");
    assert_eq!(s.get("/api/v1/tenants/xxjd/dashboard", Some(&token)).status, 200);
    // The login's security record reaches the read model a moment after it is appended: the lag
    // is 0 once it has (within a few seconds on a loaded machine).
    let mut m = s.get("/metrics", None);
    for _ in 0..100 {
        if m.text().contains("ducha_projection_lag_events 0") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        m = s.get("/metrics", None);
    }
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    let text = m.text();
    for needle in [
        "ducha_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 3",
        "ducha_http_requests_total{method=\"GET\",route=\"/api/v1/tenants/{tenant_id}/dashboard\",status=\"200\"} 1",
        "ducha_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/auth/login\",le=\"+Inf\"} 1",
        "ducha_logins_total{outcome=\"ok\"} 1",
        "ducha_projection_lag_events 0",
        "ducha_events_appended_total",
        "ducha_store_head_position",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
}
