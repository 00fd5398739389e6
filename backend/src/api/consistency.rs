//! Read-your-writes across replicas. A write answers `X-Ducha-Position: N`; a request to any replica
//! carrying `X-Ducha-Min-Position: N` (or the query parameter `min_position=N`) waits until that
//! replica's read model has applied position N — reading the shared log directly, not waiting for a
//! notification — for at most `min_position_timeout_ms`; then 503 `not_caught_up` with
//! `Retry-After`. A position beyond the shared log's head is a 400 at once (no replica ever answered
//! it). The parameter is taken off the query string here, so no endpoint sees it.

use crate::api::error::ApiError;
use crate::api::state::AppState;
use actix_web::ResponseError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::Uri;
use actix_web::middleware::Next;
use actix_web::web;
use std::time::Duration;

pub const MIN_POSITION_HEADER: &str = "x-ducha-min-position";
pub const MIN_POSITION_PARAM: &str = "min_position";

fn invalid(value: &str) -> ApiError {
    ApiError::bad_request(
        "invalid_min_position",
        format!("min_position 须为非负整数（日志位置）：{value:?}"),
        format!("min_position must be a non-negative integer log position, not {value:?}"),
    )
    .with_field("min_position")
}

/// The requested position (the larger of header and parameter) and the query string without the
/// parameter, or the 400 for a malformed value.
pub fn parse(header: Option<&str>, query: &str) -> Result<(Option<u64>, Option<String>), ApiError> {
    let mut wanted: Option<u64> = None;
    let mut take = |v: &str| -> Result<(), ApiError> {
        let n = v.trim().parse::<u64>().map_err(|_| invalid(v))?;
        wanted = Some(wanted.map_or(n, |w| w.max(n)));
        Ok(())
    };
    if let Some(h) = header {
        take(h)?;
    }
    let mut rest = Vec::new();
    let mut found = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((MIN_POSITION_PARAM, v)) => {
                found = true;
                take(v)?;
            }
            None if pair == MIN_POSITION_PARAM => return Err(invalid("")),
            _ => rest.push(pair),
        }
    }
    Ok((wanted, found.then(|| rest.join("&"))))
}

fn beyond_head(position: u64) -> ApiError {
    ApiError::bad_request(
        "invalid_min_position",
        format!("日志中还没有位置 {position}：min_position 应取自写操作响应的 X-Ducha-Position"),
        format!("the log has no position {position} yet: take min_position from a write's X-Ducha-Position"),
    )
    .with_field("min_position")
}

fn not_caught_up(position: u64, applied: u64) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_caught_up",
        format!("本服务节点尚未同步到位置 {position}（当前 {applied}），请稍后重试"),
        format!("this replica has not applied position {position} yet (at {applied}); retry"),
    );
    e.retry_after = Some(1);
    e
}

pub async fn wait_for_min_position(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    match wait(req).await {
        Ok(req) => next.call(req).await.map(ServiceResponse::map_into_boxed_body),
        // Answered here, as a problem, like any handler's error.
        Err((req, e)) => Ok(req.into_response(e.error_response())),
    }
}

/// Waits as the request asks; gives the request back (without the parameter) or its problem.
async fn wait(mut req: ServiceRequest) -> Result<ServiceRequest, (ServiceRequest, ApiError)> {
    let header = req.headers().get(MIN_POSITION_HEADER).map(|v| v.to_str().unwrap_or("\u{fffd}").to_owned());
    if header.is_some() || req.query_string().contains(MIN_POSITION_PARAM) {
        let (wanted, query) = match parse(header.as_deref(), req.query_string()) {
            Ok(parsed) => parsed,
            Err(e) => return Err((req, e)),
        };
        if let Some(query) = query {
            let path = req.path().to_owned();
            let uri = if query.is_empty() { path } else { format!("{path}?{query}") };
            if let Ok(uri) = uri.parse::<Uri>() {
                req.head_mut().uri = uri.clone();
                req.match_info_mut().get_mut().update(&uri);
            }
        }
        if let (Some(position), Some(state)) = (wanted, req.app_data::<web::Data<AppState>>().cloned())
            && position > state.live.position()
        {
            // A position beyond the shared log's head was never answered by any replica.
            match state.store.head().await {
                Ok(head) if position > head => return Err((req, beyond_head(position))),
                Ok(_) => {}
                Err(e) => return Err((req, e.into())),
            }
            let timeout = Duration::from_millis(state.config.min_position_timeout_ms);
            match state.live.wait_for(&*state.store, position, timeout).await {
                Ok(true) => {}
                Ok(false) => return Err((req, not_caught_up(position, state.live.position()))),
                Err(e) => return Err((req, e.into())),
            }
        }
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parameter_is_read_and_taken_off() {
        assert_eq!(parse(None, "page=2").unwrap(), (None, None));
        assert_eq!(parse(None, "min_position=7&page=2").unwrap(), (Some(7), Some("page=2".into())));
        assert_eq!(parse(Some("9"), "page=2&min_position=7").unwrap(), (Some(9), Some("page=2".into())));
        assert_eq!(parse(Some(" 3 "), "").unwrap(), (Some(3), None));
        assert_eq!(parse(None, "min_position=4").unwrap(), (Some(4), Some(String::new())));
        for bad in ["min_position=-1", "min_position=x", "min_position", "min_position=1e3"] {
            let e = parse(None, bad).unwrap_err();
            assert_eq!(e.code, "invalid_min_position", "{bad}");
        }
        assert!(parse(Some("abc"), "").is_err());
    }
}
