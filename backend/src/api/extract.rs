//! The contract's extractors: `If-Match`, `Idempotency-Key`, "as of" query parameters and the request
//! id, plus [`etag`] for responses that carry an aggregate version. Each refuses bad input with a
//! 400 problem naming the header or parameter.

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::store::Upto;
use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use chrono::NaiveDate;
use ducha_events::time::{self, Timestamp};
use serde::Deserialize;
use std::future::{Ready, ready};
use std::pin::Pin;
use utoipa::IntoParams;

/// The request id: the client's `X-Request-Id` when it is sane, else a fresh UUID. Echoed back,
/// logged with every line of the request, and used as the correlation id of the events it causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

pub const REQUEST_ID: &str = "x-request-id";

impl FromRequest for RequestId {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let id = req.extensions().get::<RequestId>().cloned();
        ready(Ok(id.unwrap_or_else(|| RequestId(uuid::Uuid::now_v7().to_string()))))
    }
}

/// 1..=128 visible ASCII characters (no spaces, no control characters).
pub fn is_visible_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// `If-Match: "3"` (or `W/"3"`): the aggregate version the client last saw. Absent or `*` = `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IfMatch(pub Option<u64>);

impl IfMatch {
    pub fn parse(value: &str) -> Result<IfMatch, ApiError> {
        let v = value.trim();
        if v == "*" {
            return Ok(IfMatch(None));
        }
        let inner = v.strip_prefix("W/").unwrap_or(v);
        let digits = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(inner);
        if !digits.is_empty()
            && digits.len() <= 19
            && digits.bytes().all(|b| b.is_ascii_digit())
            && let Ok(n) = digits.parse()
        {
            return Ok(IfMatch(Some(n)));
        }
        Err(ApiError::bad_request(
            "invalid_if_match",
            "If-Match 请求头应为版本号，如 \"3\"",
            "If-Match must be one version ETag such as \"3\"",
        )
        .with_field("If-Match"))
    }
}

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let mut values = req.headers().get_all(header::IF_MATCH);
        let result = match (values.next(), values.next()) {
            (None, _) => Ok(IfMatch(None)),
            (Some(v), None) => match v.to_str() {
                Ok(s) => IfMatch::parse(s),
                Err(_) => IfMatch::parse("\u{0}"),
            },
            (Some(_), Some(_)) => IfMatch::parse(","),
        };
        ready(result)
    }
}

/// `Idempotency-Key`: a retry with the same key gets the first answer and appends nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdempotencyKey(pub Option<String>);

impl IdempotencyKey {
    /// The header's value as bytes (untrusted): 1 to 128 visible ASCII characters.
    pub fn parse(value: &[u8]) -> Result<IdempotencyKey, ApiError> {
        match std::str::from_utf8(value) {
            Ok(s) if is_visible_token(s) => Ok(IdempotencyKey(Some(s.to_owned()))),
            _ => Err(ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key 应为 1 到 128 个可见 ASCII 字符",
                "Idempotency-Key must be 1 to 128 visible ASCII characters",
            )
            .with_field("Idempotency-Key")),
        }
    }
}

impl FromRequest for IdempotencyKey {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match req.headers().get("idempotency-key") {
            None => Ok(IdempotencyKey(None)),
            Some(v) => IdempotencyKey::parse(v.as_bytes()),
        };
        ready(result)
    }
}

/// `ETag: "N"` for a response that carries aggregate version `N`.
pub fn etag(version: u64) -> (header::HeaderName, HeaderValue) {
    (header::ETAG, HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\"")))
}

/// The query parameters of every read endpoint.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsOfParams {
    /// Answer as the system stood at this time (RFC 3339, e.g. `2024-01-01T00:00:00+08:00`).
    /// "Today" for warning levels is then that time's date in Asia/Shanghai.
    pub as_of: Option<String>,
    /// Answer as the system stood at this global log position (1-based). Not with `as_of`.
    pub at_position: Option<u64>,
}

/// A resolved "as of": where the log is cut and which date counts as today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsOf {
    pub upto: Upto,
    pub today: NaiveDate,
    /// The requested time, when `as_of` was given.
    pub at: Option<Timestamp>,
}

impl AsOf {
    pub fn now() -> AsOf {
        AsOf { upto: Upto::Head, today: time::local_date(&chrono::Utc::now()), at: None }
    }

    pub fn is_now(&self) -> bool {
        self.upto == Upto::Head
    }
}

fn as_of_error(zh: &str, en: &str, field: &str) -> ApiError {
    ApiError::bad_request("invalid_as_of", zh.to_owned(), en.to_owned()).with_field(field)
}

impl FromRequest for AsOf {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<AsOf, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Only our two parameters are read here; the endpoint's own query struct reads the rest.
        let asked = AsOfQuery::parse(req.query_string());
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            match asked? {
                AsOfQuery::Time(at) => {
                    let state = state.ok_or_else(|| ApiError::internal("AppState missing"))?;
                    let position = state.store.position_at(at).await?;
                    Ok(AsOf { upto: Upto::Position(position), today: time::local_date(&at), at: Some(at) })
                }
                AsOfQuery::Position(p) => Ok(AsOf { upto: Upto::Position(p), ..AsOf::now() }),
                AsOfQuery::Now => Ok(AsOf::now()),
            }
        })
    }
}

/// What a query string asks "as of", before the store turns a time into a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOfQuery {
    Now,
    Time(Timestamp),
    Position(u64),
}

impl AsOfQuery {
    /// Reads `as_of` and `at_position` from a raw query string (untrusted); the endpoint's own query
    /// struct reads the rest.
    pub fn parse(query: &str) -> Result<AsOfQuery, ApiError> {
        let params = web::Query::<AsOfParams>::from_query(query)
            .map(web::Query::into_inner)
            .map_err(|e| as_of_error(&format!("查询参数无效：{e}"), &format!("invalid query: {e}"), "at_position"))?;
        match (params.as_of, params.at_position) {
            (Some(_), Some(_)) => Err(as_of_error(
                "as_of 与 at_position 只能给出一个",
                "give either as_of or at_position, not both",
                "as_of",
            )),
            (Some(t), None) => time::parse(&t).map(AsOfQuery::Time).map_err(|_| {
                as_of_error(
                    "as_of 应为 RFC 3339 时间，如 2024-01-01T00:00:00+08:00",
                    "as_of must be an RFC 3339 time",
                    "as_of",
                )
            }),
            (None, Some(p)) => Ok(AsOfQuery::Position(p)),
            (None, None) => Ok(AsOfQuery::Now),
        }
    }
}

/// The client's address for throttling: the peer, or the first `X-Forwarded-For` entry when the
/// configuration trusts a proxy.
pub fn client_addr(req: &HttpRequest, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for
        && let Some(first) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    {
        return first.to_owned();
    }
    req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_else(|| "unknown".to_owned())
}

/// Where a request came from, for the security audit log: the client address (as for login
/// throttling), the user agent and the request id.
pub fn origin(req: &HttpRequest, trust_forwarded_for: bool) -> crate::security_log::Origin {
    use actix_web::HttpMessage;
    crate::security_log::Origin {
        client_addr: client_addr(req, trust_forwarded_for),
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_accepts_strong_weak_and_bare_versions() {
        assert_eq!(IfMatch::parse("\"3\"").unwrap(), IfMatch(Some(3)));
        assert_eq!(IfMatch::parse("W/\"12\"").unwrap(), IfMatch(Some(12)));
        assert_eq!(IfMatch::parse("7").unwrap(), IfMatch(Some(7)));
        assert_eq!(IfMatch::parse("*").unwrap(), IfMatch(None));
        for bad in ["", "\"\"", "\"x\"", "\"3\", \"4\"", "-1", "\"99999999999999999999\"", "W/3x"] {
            assert!(IfMatch::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert!(is_visible_token("abc-123_!~"));
        assert!(!is_visible_token(""));
        assert!(!is_visible_token("has space"));
        assert!(!is_visible_token("中文"));
        assert!(!is_visible_token(&"x".repeat(129)));
        assert!(is_visible_token(&"x".repeat(128)));
    }
}
