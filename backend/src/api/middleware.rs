//! The one middleware around every request: request id (accepted from `X-Request-Id` or generated,
//! echoed back, on every log line of the request), one structured log line per request, metrics by
//! matched route, and the last line of defence of the error contract: any 4xx/5xx that leaves the app
//! without a problem+json body (unknown route, wrong method, a framework error) is rewritten into one.
//! It also sets the security headers of every answer and records every 403 in the security audit
//! log (等保 2.0: access refused is an auditable event).

use crate::api::error::{ApiError, PROBLEM_JSON};
use crate::api::extract::{REQUEST_ID, RequestId, is_visible_token};
use crate::api::state::AppState;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use std::time::Instant;
use tracing::Instrument;

/// Whether an error response needs rewriting: no body type, or a framework's plain-text one. JSON
/// answers (problems, and `/readyz`'s 503 with its JSON status) are left alone.
fn needs_problem_body(res: &ServiceResponse<BoxBody>) -> bool {
    match res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(v) => !(v.starts_with(PROBLEM_JSON) || v.starts_with("application/json")),
    }
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| is_visible_token(s))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(request_id.clone()));
    // Never clone the request before routing (actix needs it uniquely owned to route it).
    let metrics = req.app_data::<web::Data<AppState>>().map(|s| s.metrics.clone());
    let method = req.method().to_string();
    let span = tracing::info_span!("request", request_id = %request_id, method = %method, path = %req.path());

    let mut res = match next.call(req).instrument(span.clone()).await {
        Ok(res) => res.map_into_boxed_body(),
        Err(e) => {
            // Errors are normally turned into responses inside the app; one that escapes is
            // answered by the server from this error, so make it a problem.
            let status = e.as_response_error().status_code();
            if let Some(m) = &metrics {
                m.request(&method, "unmatched", status.as_u16(), started.elapsed());
            }
            span.in_scope(|| tracing::warn!(status = status.as_u16(), error = %e, "request failed outside the app"));
            return Err(ApiError::for_status(status).into());
        }
    };
    let status = res.status();
    if (status.is_client_error() || status.is_server_error()) && needs_problem_body(&res) {
        let (req, old) = res.into_parts();
        let mut new = ApiError::for_status(status).error_response();
        for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
            if let Some(v) = old.headers().get(&name) {
                new.headers_mut().insert(name, v.clone());
            }
        }
        res = ServiceResponse::new(req, new);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(HeaderName::from_static(REQUEST_ID), v);
    }
    let hsts = res.request().app_data::<web::Data<AppState>>().and_then(|s| s.config.hsts_max_age_seconds);
    security_headers(res.headers_mut(), hsts);
    if status == actix_web::http::StatusCode::FORBIDDEN {
        record_refusal(&res).await;
    }

    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let elapsed = started.elapsed();
    if let Some(m) = &metrics {
        m.request(&method, &route, status.as_u16(), elapsed);
    }
    let ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), route = %route, elapsed_ms = ms, "request failed");
        } else {
            tracing::info!(status = status.as_u16(), route = %route, elapsed_ms = ms, "request");
        }
    });
    Ok(res)
}

/// The headers every answer carries: no MIME sniffing, no referrer to other sites, never framed
/// (the web app's pages carry the full Content-Security-Policy; every other answer gets
/// `frame-ancestors 'none'`), and HSTS when the deployment says it is served over TLS.
fn security_headers(headers: &mut header::HeaderMap, hsts_max_age: Option<u64>) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("frame-ancestors 'none'"));
    }
    if let Some(age) = hsts_max_age
        && let Ok(v) = HeaderValue::from_str(&format!("max-age={age}; includeSubDomains"))
    {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, v);
    }
}

/// Records a refused request (403) with the caller the authentication left in the request's
/// extensions. The request was refused anyway, so a record that cannot be written is only logged.
async fn record_refusal(res: &ServiceResponse<BoxBody>) {
    let req = res.request();
    let Some(state) = req.app_data::<web::Data<AppState>>() else { return };
    let mut entry = crate::security_log::Entry::new(
        "access_denied",
        crate::security_log::REFUSED,
        &crate::api::extract::origin(req, state.config.trust_forwarded_for),
    )
    .object(format!("{} {}", req.method(), req.path()));
    let caller = req.extensions().get::<crate::api::auth::Caller>().cloned();
    if let Some(c) = caller {
        entry = entry.user(&c.user_id, &c.username).role(c.role);
    }
    crate::api::auth::audit_after(state, entry).await;
}
