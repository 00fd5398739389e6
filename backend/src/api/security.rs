//! The security administrator's policy and the audit administrator's log (等保 2.0 level 3):
//!
//! - `GET /security/policy` (any user: the web app shows the password rules), `POST
//!   /security/policy` (the security administrator; recorded as `policy_changed`).
//! - `GET /security/audit` and `GET /security/audit.xlsx` (the audit administrator only): search
//!   the security audit log by time, user, action, result and client address, newest first, or
//!   export the matches. Each search and export is itself recorded (`audit_searched`,
//!   `audit_exported`) before it is answered.
//!
//! Nothing here (or anywhere) changes or deletes a record: the log is append-only, its own chain.
//! [`record_export`] is what every download endpoint calls before it answers.

use crate::api::auth::{Authenticated, audit};
use crate::api::command::{Reply, Write};
use crate::api::error::ApiError;
use crate::api::extract::origin;
use crate::api::inspections::accepted;
use crate::api::state::AppState;
use crate::commands;
use crate::security_log::{self, AuditRecord, Entry, SUCCESS, Search};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use ducha_events::api::CommandAccepted;
use ducha_events::authz::{Action, Target, authorize};
use ducha_events::ids::TenantId;
use ducha_events::security::{SecurityPolicy, SecurityPolicyCommand};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_policy).service(set_policy).service(search_audit).service(export_audit);
}

/// Records a download or export in the security audit log before it is served; when the record
/// cannot be written, the download does not happen (503).
pub(crate) async fn record_export(
    state: &AppState,
    req: &HttpRequest,
    who: &Authenticated,
    action: &'static str,
    object: String,
    detail: String,
) -> Result<(), ApiError> {
    let entry = Entry::new(action, SUCCESS, &origin(req, state.config.trust_forwarded_for))
        .user(&who.actor.user_id, &who.username)
        .role(who.role())
        .object(object)
        .detail(detail);
    audit(state, entry).await
}

/// The security policy in force.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SecurityPolicyView {
    pub policy: SecurityPolicy,
    /// Whether a policy was ever set (false: the built-in defaults apply).
    pub set: bool,
}

/// The security policy in force: password rules, lockout, sessions, second factor.
#[utoipa::path(tag = "security", responses((status = 200, description = "安全策略 / the policy", body = SecurityPolicyView)))]
#[get("/security/policy")]
pub async fn get_policy(state: web::Data<AppState>, _who: Authenticated) -> Result<HttpResponse, ApiError> {
    let model = state.live.read();
    let dir = model.directory();
    let body = SecurityPolicyView { policy: dir.security_policy(), set: dir.security_policy_set() };
    drop(model);
    Ok(HttpResponse::Ok().json(body))
}

/// Set the security policy (the security administrator only). Every number must lie within its safe
/// bounds (422 naming the field); the change is recorded in the security audit log first.
#[utoipa::path(
    tag = "security",
    request_body = SecurityPolicy,
    responses((status = 200, description = "已设置 / set", body = CommandAccepted))
)]
#[post("/security/policy")]
pub async fn set_policy(
    state: web::Data<AppState>,
    write: Write,
    req: HttpRequest,
    body: web::Json<SecurityPolicy>,
) -> Result<HttpResponse, ApiError> {
    let policy = body.into_inner();
    // Checked before the record so that a refused change is recorded as refused.
    authorize(&write.who.actor, Action::ManageSecurityPolicy, &Target::platform())?;
    let detail = serde_json::to_string(&policy).unwrap_or_default();
    let entry = Entry::new("policy_changed", SUCCESS, &origin(&req, state.config.trust_forwarded_for))
        .user(&write.who.actor.user_id, &write.who.username)
        .role(write.who.role())
        .object("security-policy")
        .detail(detail);
    let store = state.store.clone();
    let cmd = SecurityPolicyCommand::Set(policy.clone());
    write
        .run_audited(
            &state,
            &TenantId::platform(),
            &policy,
            entry,
            |meta| async move { commands::security_policy(&*store, &meta, cmd).await },
            |done| Reply::ok(accepted(&"security-policy", done)).version(done.outcome.stream_version),
        )
        .await
}

/// The filters of a search (all optional; every given one must match).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Recorded at or after this time (RFC 3339), e.g. `2026-11-01T00:00:00+08:00`.
    pub from: Option<String>,
    /// Recorded before this time (RFC 3339).
    pub to: Option<String>,
    /// The username or user id contains this.
    pub user: Option<String>,
    /// The action, e.g. `login`, `login_failed`, `role_granted`, `access_denied`, `document_downloaded`.
    pub action: Option<String>,
    /// `success`, `failure` or `refused`.
    pub result: Option<String>,
    /// The client address starts with this.
    pub addr: Option<String>,
    /// How many records at most (1–1000; default 100; the export: up to 100,000).
    pub limit: Option<usize>,
}

/// A page of the security audit log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// The newest matching records, newest first.
    pub records: Vec<AuditRecord>,
    /// How many records matched in all.
    pub total: u64,
}

const EXPORT_MAX: usize = 100_000;

impl AuditQuery {
    fn search(&self) -> Result<Search, ApiError> {
        let time = |field: &'static str, v: &Option<String>| {
            v.as_deref()
                .map(|s| {
                    ducha_events::time::parse(s).map_err(|_| {
                        ApiError::bad_request(
                            "invalid_query",
                            format!("参数“{field}”应为 RFC 3339 时间，如 2026-11-01T00:00:00+08:00"),
                            format!("{field} is not RFC 3339"),
                        )
                        .with_field(field)
                    })
                })
                .transpose()
        };
        let text = |field: &'static str, v: &Option<String>| -> Result<Option<String>, ApiError> {
            match v.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(s) if s.chars().count() > 128 || s.chars().any(char::is_control) => Err(ApiError::bad_request(
                    "invalid_query",
                    format!("参数“{field}”过长或含控制字符"),
                    format!("{field} is too long"),
                )
                .with_field(field)),
                Some(s) => Ok(Some(s.to_owned())),
            }
        };
        let result = text("result", &self.result)?;
        if let Some(r) = &result
            && ![security_log::SUCCESS, security_log::FAILURE, security_log::REFUSED].contains(&r.as_str())
        {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("参数“result”的值“{r}”无效，可选：success、failure、refused"),
                "invalid result",
            )
            .with_field("result"));
        }
        Ok(Search {
            user: text("user", &self.user)?,
            action: text("action", &self.action)?,
            result,
            addr: text("addr", &self.addr)?,
            from: time("from", &self.from)?,
            to: time("to", &self.to)?,
            ..Search::default()
        })
    }

    fn limit(&self, max: usize, default: usize) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(default),
            Some(n) if (1..=max).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::bad_request(
                "invalid_query",
                format!("参数“limit”须在 1 到 {max} 之间，不能为 {n}"),
                "limit out of range",
            )
            .with_field("limit")),
        }
    }

    /// The filter as recorded with the search (what was looked for is itself audit data).
    fn describe(&self) -> String {
        let parts = [
            ("from", &self.from),
            ("to", &self.to),
            ("user", &self.user),
            ("action", &self.action),
            ("result", &self.result),
            ("addr", &self.addr),
        ];
        parts.iter().filter_map(|(k, v)| v.as_deref().map(|v| format!("{k}={v}"))).collect::<Vec<_>>().join("; ")
    }
}

/// Searches as the audit administrator, recording the search first.
async fn run_search(
    state: &AppState,
    req: &HttpRequest,
    who: &Authenticated,
    query: &AuditQuery,
    limit: usize,
    action: &'static str,
) -> Result<(Vec<AuditRecord>, u64), ApiError> {
    authorize(&who.actor, Action::ReadSecurityAudit, &Target::platform())?;
    let search = query.search()?;
    record_export(state, req, who, action, "security-audit-log".to_owned(), query.describe()).await?;
    Ok(security_log::search(&*state.store, &search, limit).await?)
}

/// Search the security audit log (the audit administrator only), newest first.
#[utoipa::path(
    tag = "security",
    params(AuditQuery),
    responses((status = 200, description = "安全审计记录 / the matching records", body = AuditPage))
)]
#[get("/security/audit")]
pub async fn search_audit(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let limit = query.limit(1000, 100)?;
    let (records, total) = run_search(&state, &req, &who, &query, limit, "audit_searched").await?;
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(AuditPage { records, total }))
}

/// Export the matching records of the security audit log as an Excel workbook (the audit
/// administrator only; recorded as `audit_exported`).
#[utoipa::path(
    tag = "security",
    params(AuditQuery),
    responses((status = 200, description = "安全审计日志 / the workbook",
               content((Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))))
)]
#[get("/security/audit.xlsx")]
pub async fn export_audit(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let limit = query.limit(EXPORT_MAX, EXPORT_MAX)?;
    let (records, total) = run_search(&state, &req, &who, &query, limit, "audit_exported").await?;
    let today = ducha_events::time::local_date(&chrono::Utc::now());
    let filter = query.describe();
    let title = if filter.is_empty() {
        format!("安全审计日志（共 {total} 条，导出 {} 条）", records.len())
    } else {
        format!("安全审计日志（{filter}；共 {total} 条，导出 {} 条）", records.len())
    };
    let bytes = crate::documents::security_audit::xlsx(&records, &title, today)?;
    let position = state.store.head().await?;
    Ok(crate::api::documents::download(
        bytes,
        crate::documents::XLSX_CONTENT_TYPE,
        Some(format!("安全审计日志-{today}.xlsx")),
        position,
    ))
}
