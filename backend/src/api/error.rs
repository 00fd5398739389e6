//! Every error the API returns: RFC 9457 `application/problem+json` with a stable `code`, a Chinese
//! `title`/`detail` for people, `detail_en` for logs and integrators, and the `field` at fault.
//!
//! Handlers return `Result<_, ApiError>`; `?` converts domain, store and command errors. Extractor
//! failures (bad JSON, bad query, bad path) are turned into problems by the handlers installed in
//! [`extractor_configs`]; anything else that leaves the app as a bare 4xx/5xx (unknown route, wrong
//! method) is rewritten by the `observe` middleware (see [`ApiError::for_status`]). The table of
//! codes and statuses is in `docs/API.md`.

use crate::commands::CommandError;
use crate::store::StoreError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use ducha_events::DomainError;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:ducha:problem:invalid",
    "title": "请求内容有误",
    "status": 422,
    "detail": "字段“title”无效：不能为空",
    "code": "invalid",
    "field": "title",
    "detail_en": "invalid title: 不能为空"
}))]
pub struct Problem {
    /// `urn:ducha:problem:{code}`.
    #[serde(rename = "type")]
    pub type_: String,
    /// A short Chinese summary of the status.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, in Chinese, for people.
    pub detail: String,
    /// A stable machine-readable code (see docs/API.md).
    pub code: String,
    /// The request field at fault, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The same in English, for logs and integrators.
    pub detail_en: String,
    /// With 409/412 version conflicts: the aggregate's current version (send it as `If-Match`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
}

/// The one error type of the API (boxed: it travels in every `Result` of every handler).
#[derive(Debug, Clone)]
pub struct ApiError(Box<ApiErrorParts>);

/// What an [`ApiError`] says; reach the fields through the error (`err.status`, `err.code`, …).
#[derive(Debug, Clone)]
pub struct ApiErrorParts {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub detail: String,
    pub detail_en: String,
    pub field: Option<String>,
    pub current_version: Option<u64>,
    /// Seconds, sent as `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
    /// Adds `WWW-Authenticate: Bearer …` (401).
    pub bearer_error: Option<&'static str>,
}

/// The Chinese title of a status.
pub fn title_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "请求格式错误",
        401 => "未登录或登录已失效",
        403 => "没有权限",
        404 => "未找到",
        405 => "不支持的请求方法",
        406 => "无法提供所要求的格式",
        409 => "与当前状态冲突",
        412 => "数据已被他人修改",
        413 => "请求内容过大",
        415 => "不支持的内容类型",
        422 => "请求内容有误",
        429 => "请求过于频繁",
        503 => "服务暂不可用",
        s if s >= 500 => "服务器内部错误",
        _ => "请求失败",
    }
}

impl std::ops::Deref for ApiError {
    type Target = ApiErrorParts;
    fn deref(&self) -> &ApiErrorParts {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ApiErrorParts {
        &mut self.0
    }
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<String>,
        detail_en: impl Into<String>,
    ) -> Self {
        ApiError(Box::new(ApiErrorParts {
            status,
            code: code.into(),
            detail: detail.into(),
            detail_en: detail_en.into(),
            field: None,
            current_version: None,
            retry_after: None,
            bearer_error: None,
        }))
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>, detail_en: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail, detail_en)
    }

    /// 401 with `WWW-Authenticate: Bearer` (`error="invalid_token"` unless the token was missing).
    pub fn unauthorized(code: &'static str, detail: impl Into<String>, detail_en: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, code, detail, detail_en);
        e.bearer_error = Some(if code == "token_missing" { "" } else { "invalid_token" });
        e
    }

    pub fn not_found(what_zh: &str, what_en: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("未找到{what_zh}"), format!("{what_en} not found"))
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!("尝试次数过多，请 {retry_after} 秒后再试"),
            format!("too many attempts, retry after {retry_after} s"),
        );
        e.retry_after = Some(retry_after.max(1));
        e
    }

    pub fn internal(detail_en: impl Into<String>) -> Self {
        let detail_en = detail_en.into();
        tracing::error!(error = %detail_en, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "服务器内部错误，请稍后再试或联系管理员",
            "internal server error",
        )
    }

    /// The security audit record of an action could not be written, so the action did not happen.
    pub fn audit_unavailable() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_unavailable",
            "安全审计记录无法写入，操作未执行，请稍后再试或联系管理员",
            "the security audit record could not be written; the action was not performed",
        );
        e.retry_after = Some(5);
        e
    }

    pub fn unavailable(detail_en: impl Into<String>) -> Self {
        let detail_en = detail_en.into();
        tracing::warn!(error = %detail_en, "service unavailable");
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "服务暂不可用，请稍后再试",
            "service unavailable",
        );
        e.retry_after = Some(5);
        e
    }

    /// The storage cannot grow (a full disk, volume or quota, or SQLite's `max_page_count`): 503
    /// `storage_full`. Nothing of the request was written; reads keep working.
    pub fn storage_full(detail_en: impl Into<String>) -> Self {
        let detail_en = detail_en.into();
        tracing::error!(error = %detail_en, "storage full: a write was refused");
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_full",
            "存储空间已满，本次操作未保存；查询不受影响，请稍后再试或联系管理员清理磁盘空间",
            "storage full: nothing was saved; reads still work; retry once space is freed",
        );
        e.retry_after = Some(60);
        e
    }

    /// The generic problem for a bare error status produced outside our handlers (unknown route,
    /// wrong method, a payload error of a plain extractor).
    pub fn for_status(status: StatusCode) -> Self {
        let (code, zh, en) = match status.as_u16() {
            400 => ("bad_request", "请求格式错误", "bad request"),
            401 => ("token_missing", "请先登录", "authentication required"),
            403 => ("forbidden", "您没有执行此操作的权限", "forbidden"),
            404 => ("route_not_found", "请求的地址不存在", "no such route"),
            405 => ("method_not_allowed", "该地址不支持此请求方法", "method not allowed"),
            406 => ("not_acceptable", "无法提供所要求的格式", "not acceptable"),
            408 => ("request_timeout", "请求超时", "request timeout"),
            411 => ("length_required", "请求缺少内容长度", "length required"),
            413 => ("payload_too_large", "请求内容超过大小限制", "payload too large"),
            414 => ("uri_too_long", "请求地址过长", "URI too long"),
            415 => ("unsupported_media_type", "不支持的内容类型", "unsupported media type"),
            431 => ("headers_too_large", "请求头过大", "request header fields too large"),
            s if s >= 500 => ("internal", "服务器内部错误，请稍后再试或联系管理员", "internal server error"),
            _ => ("bad_request", "请求失败", "request failed"),
        };
        Self::new(status, code, zh, en)
    }

    /// A command's error, where `if_match_sent` says whether the client gave `If-Match` (a version
    /// conflict is then 412 "precondition failed", otherwise 409).
    pub fn from_command(err: CommandError, if_match_sent: bool) -> Self {
        match err {
            CommandError::Domain(e) => e.into(),
            CommandError::Store(e) => Self::from_store(e, if_match_sent),
            CommandError::Decode(e) => Self::internal(format!("stored event cannot be decoded: {e}")),
            CommandError::Gate(e) => {
                tracing::error!(error = %e, "the audit record of a command could not be written");
                Self::audit_unavailable()
            }
        }
    }

    pub fn from_store(err: StoreError, if_match_sent: bool) -> Self {
        match err {
            StoreError::WrongExpectedVersion { actual, .. } => {
                let mut e = if if_match_sent {
                    Self::new(
                        StatusCode::PRECONDITION_FAILED,
                        "version_mismatch",
                        format!("数据已被他人修改（当前版本 {actual}），请刷新后重试"),
                        format!("the resource has changed (current version {actual}); reload and retry"),
                    )
                } else {
                    Self::new(
                        StatusCode::CONFLICT,
                        "concurrent_update",
                        "数据正被他人同时修改，请稍后重试",
                        "concurrent update; retry",
                    )
                };
                e.current_version = Some(actual);
                e
            }
            StoreError::IdempotencyKeyReused { .. } => Self::idempotency_key_reused(),
            StoreError::Locked | StoreError::Closed | StoreError::ReadOnly | StoreError::Unavailable(_) => {
                Self::unavailable(err.to_string())
            }
            StoreError::StorageFull(m) => Self::storage_full(m),
            StoreError::InvalidAppend(_)
            | StoreError::Corrupt(_)
            | StoreError::NewerSchema { .. }
            | StoreError::ChainHashMismatch { .. }
            | StoreError::Io(_) => Self::internal(err.to_string()),
        }
    }

    pub fn idempotency_key_reused() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "该 Idempotency-Key 已用于另一个请求，请换一个新的键",
            "this Idempotency-Key was used for a different request",
        )
        .with_field("Idempotency-Key")
    }

    pub fn problem(&self) -> Problem {
        Problem {
            type_: format!("urn:ducha:problem:{}", self.code),
            title: title_of(self.status).to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_string(),
            field: self.field.clone(),
            detail_en: self.detail_en.clone(),
            current_version: self.current_version,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail_en)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut res = HttpResponse::build(self.status);
        res.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if let Some(err) = self.bearer_error {
            let value = if err.is_empty() {
                "Bearer realm=\"ducha\"".to_owned()
            } else {
                format!("Bearer realm=\"ducha\", error=\"{err}\"")
            };
            res.insert_header((header::WWW_AUTHENTICATE, value));
        }
        res.body(body)
    }
}

/// Domain refusals. Statuses (also in docs/API.md):
/// - `forbidden` and `not_on_team` → 403: the actor may not do this (the team rule is an
///   authorization rule that happens to need the inspection's state);
/// - `not_found` → 404; `already_exists` → 409;
/// - the resource's *state* forbids it now → 409: `inspection_state`, `inspection_concluded`,
///   `rectification_state`, `finding_closed`, `user_disabled`;
/// - the request's *content* breaks a rule → 422: `invalid`, `deadline_before_assignment`,
///   `deduction_exceeds_item`, `community_out_of_scope`.
impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let status = match &e {
            DomainError::Forbidden { .. } | DomainError::NotOnTeam | DomainError::RoleNotGrantable { .. } => {
                StatusCode::FORBIDDEN
            }
            DomainError::NotFound { .. } => StatusCode::NOT_FOUND,
            DomainError::AlreadyExists { .. }
            | DomainError::InspectionState { .. }
            | DomainError::InspectionConcluded
            | DomainError::RectificationState { .. }
            | DomainError::FindingClosed { .. }
            | DomainError::UserDisabled
            | DomainError::RoleConflict { .. } => StatusCode::CONFLICT,
            DomainError::Invalid { .. }
            | DomainError::DeadlineBeforeAssignment { .. }
            | DomainError::DeductionExceedsItem { .. }
            | DomainError::CommunityOutOfScope { .. }
            | DomainError::WeakPassword { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let mut api = ApiError::new(status, e.code(), e.message_zh(), e.to_string());
        api.field = e.field().map(str::to_owned);
        api
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::from_store(e, false)
    }
}

impl From<crate::server_state::StateError> for ApiError {
    fn from(e: crate::server_state::StateError) -> Self {
        match e {
            crate::server_state::StateError::Unavailable(m) => Self::unavailable(m),
            crate::server_state::StateError::Full(m) => Self::storage_full(m),
            crate::server_state::StateError::Io(m) => Self::internal(m),
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        Self::from_command(e, false)
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Self::internal(format!("blocking task failed: {e}"))
    }
}

// ------------------------------------------------------------------ extractor failures

/// The name in serde's "unknown field `x`" / "missing field `x`" messages.
fn field_in_message(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(msg[start..start + len].to_owned())
}

/// Bad JSON bodies: 413 too large, 415 not JSON, 400 unreadable, 422 readable but wrong shape.
pub fn json_error(err: actix_web::error::JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    use actix_web::error::{JsonPayloadError as J, PayloadError as P};
    let e = match err {
        J::OverflowKnownLength { limit, .. } | J::Overflow { limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("请求内容超过大小限制（{limit} 字节）"),
            format!("request body exceeds the limit of {limit} bytes"),
        ),
        J::Payload(P::Overflow) => ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE),
        J::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "请求内容类型应为 application/json",
            "Content-Type must be application/json",
        ),
        J::Deserialize(e) if e.is_data() => {
            let msg = e.to_string();
            let field = field_in_message(&msg);
            let zh = if msg.starts_with("unknown field") {
                format!("请求中含有不认识的字段“{}”", field.as_deref().unwrap_or("?"))
            } else if msg.starts_with("missing field") {
                format!("缺少必填字段“{}”", field.as_deref().unwrap_or("?"))
            } else {
                format!("请求内容不符合要求：{msg}")
            };
            let mut api = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", zh, msg);
            api.field = field;
            api
        }
        J::Deserialize(e) => ApiError::bad_request(
            "malformed_json",
            "请求内容不是有效的 JSON",
            format!("the request body is not valid JSON: {e}"),
        ),
        other => ApiError::bad_request("bad_request", "无法读取请求内容", other.to_string()),
    };
    e.into()
}

/// Bad query strings: 400 with the offending parameter when serde names it.
pub fn query_error(err: actix_web::error::QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let msg = err.to_string();
    let mut e = ApiError::bad_request("invalid_query", format!("查询参数无效：{msg}"), msg.clone());
    e.field = field_in_message(&msg);
    e.into()
}

/// Bad path segments (an id with characters outside the id alphabet): 400.
pub fn path_error(err: actix_web::error::PathError, _req: &HttpRequest) -> actix_web::Error {
    let msg = err.to_string();
    ApiError::bad_request("invalid_path", format!("地址中的参数无效：{msg}"), msg).into()
}

/// The extractor configurations every app installs (JSON size cap, problem+json on failure).
pub fn extractor_configs(
    max_body_bytes: usize,
) -> (web::JsonConfig, web::QueryConfig, web::PathConfig, web::PayloadConfig) {
    (
        web::JsonConfig::default().limit(max_body_bytes).error_handler(json_error),
        web::QueryConfig::default().error_handler(query_error),
        web::PathConfig::default().error_handler(path_error),
        web::PayloadConfig::default().limit(max_body_bytes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_errors_map_to_statuses_with_codes_and_fields() {
        let e: ApiError = DomainError::invalid("title", "不能为空").into();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        let p = e.problem();
        assert_eq!((p.code.as_str(), p.field.as_deref()), ("invalid", Some("title")));
        assert_eq!(p.type_, "urn:ducha:problem:invalid");
        assert!(p.detail.contains("不能为空"));
        let e: ApiError = DomainError::InspectionConcluded.into();
        assert_eq!(e.status, StatusCode::CONFLICT);
        let e: ApiError = DomainError::NotOnTeam.into();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        let e: ApiError = DomainError::NotFound { what: "督查".into() }.into();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn version_conflicts_are_412_with_if_match_and_409_without() {
        let err = || StoreError::WrongExpectedVersion {
            stream: "t/tenant".into(),
            expected: crate::store::ExpectedVersion::Exact(2),
            actual: 5,
        };
        let e = ApiError::from_store(err(), true);
        assert_eq!((e.status, e.current_version), (StatusCode::PRECONDITION_FAILED, Some(5)));
        let e = ApiError::from_store(err(), false);
        assert_eq!((e.status, e.current_version), (StatusCode::CONFLICT, Some(5)));
        let e = ApiError::from_store(StoreError::Io("disk on fire at /secret/path".into()), false);
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.problem().detail_en.contains("secret"));
        let e = ApiError::from_store(StoreError::StorageFull("database or disk is full at /secret".into()), false);
        assert_eq!(
            (e.status, e.code.as_ref(), e.retry_after),
            (StatusCode::SERVICE_UNAVAILABLE, "storage_full", Some(60))
        );
        assert!(e.problem().detail.contains("存储空间已满") && !e.problem().detail_en.contains("secret"));
    }

    #[test]
    fn serde_field_names_are_found() {
        assert_eq!(field_in_message("unknown field `foo`, expected `bar`").as_deref(), Some("foo"));
        assert_eq!(field_in_message("missing field `title` at line 1").as_deref(), Some("title"));
        assert_eq!(field_in_message("nothing here"), None);
    }
}
