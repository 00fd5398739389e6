//! The auditor's API (纪检 / 巡察, [`Action::ReadAudit`]): a tenant's raw event log and streams with
//! their full envelopes and hashes, the chain verification result, the audit counters, and what
//! changed between two points. Everything is bounded by `as_of` / `at_position` when given.
//!
//! The rule table gives `ReadAudit` to auditors only (a sub-district admin reads their dashboards and
//! ledger, not the raw log of their own actions); this module follows it.

use crate::api::auth::Authenticated;
use crate::api::dashboard::TenantPath;
use crate::api::error::ApiError;
use crate::api::extract::{AsOf, AsOfParams};
use crate::api::ledger::number_param;
use crate::api::security::record_export;
use crate::api::state::AppState;
use crate::store::Upto;
use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::NaiveDate;
use ducha_events::authz::{Action, authorize};
use ducha_events::chain::ChainBreak;
use ducha_events::envelope::RecordedEvent;
use ducha_events::ids::TenantId;
use ducha_events::projection::{
    ActorView, CommunityRef, LedgerFilter, LedgerRow, LedgerSort, Page, RectificationStatus, TenantDashboard,
    WarningLevel,
};
use ducha_events::time;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(tenant_events).service(stream_events).service(verify_chain).service(audit_summary).service(tenant_diff);
}

/// Events per page when no `limit` is given, and the most a page may hold.
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1_000;

/// One stored event with its whole envelope, as hashed into the tenant's chain (docs/AUDIT.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    /// Position in this store's global log (not hashed).
    pub position: u64,
    /// Position in the tenant's chain, from 1.
    pub tenant_seq: u64,
    pub event_id: String,
    #[schema(value_type = String)]
    pub tenant: TenantId,
    /// The stream, `{tenant}/…`.
    pub stream: String,
    /// The stream's version after this event.
    pub stream_version: u64,
    pub event_type: String,
    pub schema_version: u32,
    /// RFC 3339 UTC with six fractional digits, as stored and hashed.
    pub occurred_at: String,
    /// Who acted, under which role.
    pub actor: ActorView,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    /// The payload, parsed (as stored: not upcast to the current schema).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// The payload text exactly as stored and hashed (field 14 of the chain): recompute `hash`
    /// from this, not from a re-serialisation of `payload`.
    pub payload_text: String,
    /// Hex SHA-256 of the tenant's previous event (64 zeros for the first).
    pub prev_hash: String,
    /// Hex SHA-256 over `prev ‖ canonical(event)`.
    pub hash: String,
}

impl EventView {
    pub fn of(e: RecordedEvent) -> EventView {
        let payload = serde_json::from_str(&e.payload).unwrap_or_else(|_| serde_json::Value::String(e.payload.clone()));
        EventView {
            position: e.position,
            tenant_seq: e.tenant_seq,
            event_id: e.event_id,
            tenant: e.tenant,
            stream: e.stream,
            stream_version: e.stream_version,
            event_type: e.event_type,
            schema_version: e.schema_version,
            occurred_at: e.occurred_at,
            actor: actor_view(&e.actor),
            correlation_id: e.correlation_id,
            causation_id: e.causation_id,
            payload,
            payload_text: e.payload,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

fn actor_view(a: &ducha_events::envelope::ActorRef) -> ActorView {
    ActorView { user_id: a.user_id.clone(), role: a.role, role_name: a.role.name_zh().to_owned() }
}

/// A page of events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<EventView>,
    /// Pass as `after` for the next page (a global position for the tenant log, a stream version
    /// for a stream); absent on the last page.
    pub next_after: Option<u64>,
    /// The log position the page was read up to (`as_of` / `at_position`, else the head then).
    pub upto_position: u64,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsParams {
    /// Start after this point: a global position for the tenant log, a stream version for a stream
    /// (default 0, the beginning).
    #[param(value_type = Option<u64>, minimum = 0, example = 0)]
    pub after: Option<String>,
    /// Events per page, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000, example = 100)]
    pub limit: Option<String>,
    /// Read by the `AsOf` extractor.
    #[param(ignore)]
    pub as_of: Option<String>,
    /// Read by the `AsOf` extractor.
    #[param(ignore)]
    pub at_position: Option<String>,
}

impl EventsParams {
    fn parse(&self) -> Result<(u64, u32), ApiError> {
        Ok((
            number_param(self.after.as_deref(), "after", 0, u64::MAX)?.unwrap_or(0),
            number_param(self.limit.as_deref(), "limit", 1, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT),
        ))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct StreamPath {
    /// The sub-district (tenant) id, e.g. `xxjd`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub tenant_id: TenantId,
    /// The stream's name after `{tenant}/`, e.g. `inspection-2023-ideology` or `tenant`.
    #[param(pattern = "^[A-Za-z0-9_-]{1,128}$", example = "inspection-2023-ideology")]
    pub stream: String,
}

/// 403 unless the caller may read the tenant's raw history (auditors in scope).
fn audit_access(state: &AppState, who: &Authenticated, tenant: &TenantId) -> Result<(), ApiError> {
    authorize(&who.actor, Action::ReadAudit, &state.tenant_target(tenant)?)?;
    Ok(())
}

/// The position a read is bounded by: `as_of`/`at_position` (never past the head), else the head.
async fn bound(state: &AppState, as_of: &AsOf) -> Result<u64, ApiError> {
    let head = state.store.head().await?;
    Ok(match as_of.upto {
        Upto::Head => head,
        Upto::Position(p) => p.min(head),
    })
}

fn page(mut events: Vec<RecordedEvent>, limit: u32, upto: u64, key: fn(&RecordedEvent) -> u64) -> EventPage {
    let more = events.len() > limit as usize;
    events.truncate(limit as usize);
    let next_after = if more { events.last().map(key) } else { None };
    EventPage { events: events.into_iter().map(EventView::of).collect(), next_after, upto_position: upto }
}

fn ok_at(position: u64) -> actix_web::HttpResponseBuilder {
    let mut res = HttpResponse::Ok();
    res.insert_header(("x-ducha-position", position));
    res
}

/// The tenant's event log in chain order, with full envelopes and hashes, a page at a time.
///
/// With `as_of` or `at_position` only events up to that point are listed.
#[utoipa::path(
    tag = "audit",
    params(TenantPath, EventsParams, AsOfParams),
    responses(
        (status = 200, description = "事件日志 / the tenant's event log", body = EventPage,
         headers(("X-Ducha-Position" = u64, description = "the log position the page was read up to"))),
    )
)]
#[get("/tenants/{tenant_id}/events")]
pub async fn tenant_events(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    path: web::Path<TenantPath>,
    query: web::Query<EventsParams>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner().tenant_id;
    audit_access(&state, &who, &tenant)?;
    let (after, limit) = query.parse()?;
    let upto = bound(&state, &as_of).await?;
    let detail = format!("after {after}; limit {limit}; upto {upto}");
    record_export(&state, &req, &who, "events_exported", format!("events:{tenant}"), detail).await?;
    let events = state.store.read_tenant(&tenant, after, limit as usize + 1, Upto::Position(upto)).await?;
    Ok(ok_at(upto).json(page(events, limit, upto, |e| e.position)))
}

/// One stream's events (an inspection, a finding, the tenant's own settings…) in version order.
///
/// `after` is a stream version. With `as_of` or `at_position` only events up to that point are
/// listed.
#[utoipa::path(
    tag = "audit",
    params(StreamPath, EventsParams, AsOfParams),
    responses(
        (status = 200, description = "事件流 / one stream's events", body = EventPage,
         headers(("X-Ducha-Position" = u64, description = "the log position the page was read up to"))),
    )
)]
#[get("/tenants/{tenant_id}/streams/{stream}/events")]
pub async fn stream_events(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    path: web::Path<StreamPath>,
    query: web::Query<EventsParams>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let StreamPath { tenant_id: tenant, stream } = path.into_inner();
    audit_access(&state, &who, &tenant)?;
    if stream.is_empty()
        || stream.len() > 128
        || !stream.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::bad_request(
            "invalid_path",
            "事件流名称应为 1 到 128 个字母、数字、- 或 _",
            "the stream must be 1 to 128 characters from A-Z a-z 0-9 - _",
        )
        .with_field("stream"));
    }
    let (after, limit) = query.parse()?;
    let name = format!("{tenant}/{stream}");
    let detail = format!("after {after}; limit {limit}");
    record_export(&state, &req, &who, "events_exported", format!("stream:{name}"), detail).await?;
    if state.store.stream_version(&name).await? == 0 {
        return Err(ApiError::not_found("该事件流", "stream"));
    }
    let upto = bound(&state, &as_of).await?;
    let events = state.store.read_stream(&name, after, limit as usize + 1, Upto::Position(upto)).await?;
    Ok(ok_at(upto).json(page(events, limit, upto, |e| e.stream_version)))
}

/// The first bad event of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChainBreakView {
    /// `gap` (a tenant_seq is missing or repeated), `prev_mismatch` (prev_hash is not the previous
    /// event's hash) or `hash_mismatch` (the event was changed after it was written).
    #[schema(example = "hash_mismatch")]
    pub kind: String,
    pub event_id: String,
    pub tenant_seq: u64,
    pub position: u64,
    /// With `gap`: the tenant_seq that was expected.
    pub expected_tenant_seq: Option<u64>,
    /// 中文说明.
    pub message: String,
    pub message_en: String,
}

impl ChainBreakView {
    fn of(b: &ChainBreak) -> ChainBreakView {
        let (kind, event_id, tenant_seq, position, expected, zh) = match b {
            ChainBreak::Gap { tenant_seq, position, event_id, expected, .. } => {
                ("gap", event_id, *tenant_seq, *position, Some(*expected), "事件序号不连续（缺失或重复的事件）")
            }
            ChainBreak::PrevMismatch { tenant_seq, position, event_id, .. } => {
                ("prev_mismatch", event_id, *tenant_seq, *position, None, "前序哈希与上一事件的哈希不符")
            }
            ChainBreak::HashMismatch { tenant_seq, position, event_id, .. } => {
                ("hash_mismatch", event_id, *tenant_seq, *position, None, "事件内容与其存储的哈希不符（写入后被改动）")
            }
        };
        ChainBreakView {
            kind: kind.to_owned(),
            event_id: event_id.clone(),
            tenant_seq,
            position,
            expected_tenant_seq: expected,
            message: format!("第 {tenant_seq} 个事件（{event_id}）：{zh}"),
            message_en: b.to_string(),
        }
    }
}

/// The verification of one tenant's hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChainReport {
    #[schema(value_type = String)]
    pub tenant_id: TenantId,
    /// True when every event up to `upto_position` verifies.
    pub ok: bool,
    /// Events that verified (all of them when `ok`).
    pub events: u64,
    /// The hash of the last event that verified (64 zeros when none): keep it outside the system
    /// and compare it with a later verification.
    pub head_hash: String,
    /// The global log position the chain was verified up to.
    pub upto_position: u64,
    /// The first bad event, when the chain is broken.
    pub first_bad_event: Option<ChainBreakView>,
}

/// Verifies the tenant's hash chain from its first event (up to `as_of` / `at_position` when given)
/// and names the first bad event. A broken chain is still a 200 answer, with `ok: false`.
#[utoipa::path(
    tag = "audit",
    params(TenantPath, AsOfParams),
    responses(
        (status = 200, description = "哈希链校验结果 / the chain verification", body = ChainReport,
         headers(("X-Ducha-Position" = u64, description = "the log position the chain was verified up to"))),
    )
)]
#[get("/tenants/{tenant_id}/chain")]
pub async fn verify_chain(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner().tenant_id;
    audit_access(&state, &who, &tenant)?;
    let upto = bound(&state, &as_of).await?;
    let result = crate::verify::verify_tenant(&*state.store, &tenant, Upto::Position(upto)).await?;
    let body = ChainReport {
        tenant_id: tenant,
        ok: result.error.is_none(),
        events: result.events,
        head_hash: result.head_hash,
        upto_position: upto,
        first_bad_event: result.error.as_ref().map(ChainBreakView::of),
    };
    Ok(ok_at(upto).json(body))
}

/// The tenant's audit counters: events by type and by stream, first and last times, who acted
/// last. With `as_of` or `at_position`, as they stood then.
#[utoipa::path(
    tag = "audit",
    params(TenantPath, AsOfParams),
    responses(
        (status = 200, description = "审计汇总 / the audit summary", body = ducha_events::projection::AuditSummary,
         headers(("X-Ducha-Position" = u64, description = "the log position the answer was computed at"))),
    )
)]
#[get("/tenants/{tenant_id}/audit")]
pub async fn audit_summary(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner().tenant_id;
    audit_access(&state, &who, &tenant)?;
    let view = state.view(&as_of, Some(&tenant)).await?;
    let body = view.audit(&tenant);
    let position = view.position();
    drop(view);
    Ok(ok_at(position).json(body))
}

// ------------------------------------------------------------------ diff

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DiffParams {
    /// The earlier point: a global log position (digits, e.g. `120`: after the event at 120) or an
    /// RFC 3339 time (e.g. `2024-03-19T00:00:00+08:00`).
    #[param(required = true, example = "2024-03-19T00:00:00+08:00")]
    pub from: Option<String>,
    /// The later point, in the same forms (default: now, the head of the log).
    #[param(example = "2024-03-21T00:00:00+08:00")]
    pub to: Option<String>,
    /// At most this many events are listed, 1 to 1000 (default 500); `events_total` counts them all.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000, example = 500)]
    pub limit: Option<String>,
}

/// One end of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DiffPoint {
    /// The global log position the state was computed at.
    pub position: u64,
    /// The time asked for, when the point was given as a time (RFC 3339 UTC).
    pub at: Option<String>,
    /// The date warning levels were computed on (the time's date in Asia/Shanghai; today for a
    /// position).
    pub today: NaiveDate,
}

/// An event between the two points (the envelope without the payload; read it from `/events`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DiffEvent {
    pub position: u64,
    pub tenant_seq: u64,
    pub event_id: String,
    pub event_type: String,
    pub stream: String,
    pub occurred_at: String,
    pub actor: ActorView,
}

/// A dashboard number that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MetricChange {
    /// A stable key, e.g. `findings_open`, `warnings.red`, `status.verified`, `category.theory`.
    #[schema(example = "warnings.red")]
    pub metric: String,
    /// Its Chinese name, e.g. 红灯.
    pub name: String,
    pub before: i64,
    pub after: i64,
    pub delta: i64,
}

/// A ledger row that appeared, disappeared or changed between the two points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LedgerChange {
    #[schema(value_type = String)]
    pub finding_id: ducha_events::ids::FindingId,
    pub title: String,
    pub community: CommunityRef,
    /// `added`, `removed` or `changed`.
    #[schema(example = "changed")]
    pub change: String,
    /// Which of `status`, `warning`, `deadline`, `progress_count` changed (all present ones for
    /// `added`/`removed`).
    pub fields: Vec<String>,
    pub status_before: Option<RectificationStatus>,
    pub status_after: Option<RectificationStatus>,
    pub warning_before: Option<WarningLevel>,
    pub warning_after: Option<WarningLevel>,
    pub deadline_before: Option<NaiveDate>,
    pub deadline_after: Option<NaiveDate>,
    pub progress_count_before: Option<u32>,
    pub progress_count_after: Option<u32>,
}

/// What changed in a tenant between two points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TenantDiff {
    #[schema(value_type = String)]
    pub tenant_id: TenantId,
    pub from: DiffPoint,
    pub to: DiffPoint,
    /// The tenant's events after `from` up to and including `to`, in order (at most `limit`).
    pub events: Vec<DiffEvent>,
    /// How many such events there are in all.
    pub events_total: u64,
    /// True when `events` lists fewer than `events_total`.
    pub events_truncated: bool,
    /// The dashboard numbers that differ (unchanged ones are left out).
    pub changes: Vec<MetricChange>,
    /// The ledger rows that differ.
    pub ledger_changes: Vec<LedgerChange>,
    pub dashboard_before: TenantDashboard,
    pub dashboard_after: TenantDashboard,
}

/// A point given as a position or a time.
async fn point(state: &AppState, value: &str, field: &str, head: u64) -> Result<(u64, AsOf), ApiError> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let p: u64 = number_param(Some(value), field, 0, u64::MAX)?.unwrap_or(0);
        let p = p.min(head);
        return Ok((p, AsOf { upto: Upto::Position(p), ..AsOf::now() }));
    }
    let at = time::parse(value).map_err(|_| {
        ApiError::bad_request(
            "invalid_query",
            format!("参数 {field} 应为日志位置（整数）或 RFC 3339 时间，如 2024-03-19T00:00:00+08:00"),
            format!("{field} must be a log position (an integer) or an RFC 3339 time"),
        )
        .with_field(field)
    })?;
    let p = state.store.position_at(at).await?.min(head);
    Ok((p, AsOf { upto: Upto::Position(p), today: time::local_date(&at), at: Some(at) }))
}

/// What changed in a tenant between two points (`from` and `to`, each a log position or an RFC 3339
/// time): the events in between (type, actor, time, stream), the dashboard at both points with the
/// numbers that differ, and the ledger rows whose status, warning level, deadline or progress changed.
#[utoipa::path(
    tag = "audit",
    params(TenantPath, DiffParams),
    responses(
        (status = 200, description = "两个时点之间的变化 / what changed between two points", body = TenantDiff,
         headers(("X-Ducha-Position" = u64, description = "the position of the later point"))),
    )
)]
#[get("/tenants/{tenant_id}/diff")]
pub async fn tenant_diff(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
    query: web::Query<DiffParams>,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner().tenant_id;
    audit_access(&state, &who, &tenant)?;
    let q = query.into_inner();
    let limit = number_param(q.limit.as_deref(), "limit", 1, MAX_LIMIT)?.unwrap_or(500);
    let from = q.from.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::bad_request("invalid_query", "缺少参数 from", "the from parameter is required").with_field("from")
    })?;
    let head = state.store.head().await?;
    let (from_pos, from_at) = point(&state, from, "from", head).await?;
    let (to_pos, to_at) = match q.to.as_deref() {
        Some(to) => point(&state, to, "to", head).await?,
        None => (head, AsOf { upto: Upto::Position(head), ..AsOf::now() }),
    };
    if from_pos > to_pos {
        return Err(ApiError::bad_request("invalid_query", "from 应早于或等于 to", "from must not be after to")
            .with_field("from"));
    }

    let listed = state.store.read_tenant(&tenant, from_pos, limit as usize, Upto::Position(to_pos)).await?;
    let (before, before_audit, before_rows) = snapshot(&state, &tenant, &from_at).await?;
    let (after, after_audit, after_rows) = snapshot(&state, &tenant, &to_at).await?;
    let events_total = after_audit.saturating_sub(before_audit);
    let events: Vec<DiffEvent> = listed
        .into_iter()
        .map(|e| DiffEvent {
            position: e.position,
            tenant_seq: e.tenant_seq,
            actor: actor_view(&e.actor),
            event_id: e.event_id,
            event_type: e.event_type,
            stream: e.stream,
            occurred_at: e.occurred_at,
        })
        .collect();
    let body = TenantDiff {
        tenant_id: tenant,
        from: DiffPoint { position: from_pos, at: from_at.at.map(|t| time::format(&t)), today: from_at.today },
        to: DiffPoint { position: to_pos, at: to_at.at.map(|t| time::format(&t)), today: to_at.today },
        events_truncated: (events.len() as u64) < events_total,
        events,
        events_total,
        changes: metric_changes(&before, &after),
        ledger_changes: ledger_changes(&before_rows, &after_rows),
        dashboard_before: before,
        dashboard_after: after,
    };
    Ok(ok_at(to_pos).json(body))
}

/// The dashboard, the tenant's event count and the ledger rows at one point.
async fn snapshot(
    state: &AppState,
    tenant: &TenantId,
    at: &AsOf,
) -> Result<(TenantDashboard, u64, Vec<LedgerRow>), ApiError> {
    let view = state.view(at, Some(tenant)).await?;
    let dashboard = view.dashboard(tenant, at.today, &state.policy);
    let events = view.audit(tenant).events;
    let rows =
        view.ledger(tenant, at.today, &state.policy, &LedgerFilter::default(), LedgerSort::Recorded, Page::all()).rows;
    Ok((dashboard, events, rows))
}

/// Every number of the dashboard under a stable key, with its Chinese name.
fn dashboard_numbers(d: &TenantDashboard) -> BTreeMap<String, (String, i64)> {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let mut out = BTreeMap::new();
    let mut put = |key: String, name: &str, v: u64| {
        out.insert(key, (name.to_owned(), n(v)));
    };
    put("inspections_total".into(), "督查总数", d.inspections_total);
    put("inspections_this_year".into(), "本年督查", d.inspections_this_year);
    put("communities_total".into(), "社区数", d.communities_total);
    put("communities_covered".into(), "督查覆盖社区", d.communities_covered);
    put("achievements".into(), "主要工作成效", d.achievements);
    put("findings_total".into(), "问题总数", d.findings_total);
    put("findings_open".into(), "未办结问题", d.findings_open);
    put("findings_closed".into(), "已办结问题", d.findings_closed);
    put("overdue".into(), "超期", d.overdue);
    put("warnings.red".into(), "红灯", d.warnings.red);
    put("warnings.yellow".into(), "黄灯", d.warnings.yellow);
    put("warnings.blue".into(), "蓝灯", d.warnings.blue);
    put("warnings.green".into(), "绿灯", d.warnings.green);
    put("completion.done".into(), "已销号整改", d.completion_rate.done);
    put("completion.of".into(), "应整改", d.completion_rate.of);
    for s in &d.rectifications_by_status {
        put(format!("status.{}", s.status.code()), &s.name, s.count);
    }
    for c in &d.findings_by_category {
        put(format!("category.{}", c.code), &c.name, c.count);
    }
    out
}

fn metric_changes(before: &TenantDashboard, after: &TenantDashboard) -> Vec<MetricChange> {
    let (b, a) = (dashboard_numbers(before), dashboard_numbers(after));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let old = b.get(k).map_or(0, |(_, v)| *v);
            let new = a.get(k).map_or(0, |(_, v)| *v);
            let name = a.get(k).or(b.get(k)).map(|(n, _)| n.clone()).unwrap_or_default();
            (old != new).then(|| MetricChange {
                metric: k.clone(),
                name,
                before: old,
                after: new,
                delta: new.saturating_sub(old),
            })
        })
        .collect()
}

fn ledger_changes(before: &[LedgerRow], after: &[LedgerRow]) -> Vec<LedgerChange> {
    let old: BTreeMap<&str, &LedgerRow> = before.iter().map(|r| (r.finding_id.as_str(), r)).collect();
    let new_ids: std::collections::BTreeSet<&str> = after.iter().map(|r| r.finding_id.as_str()).collect();
    let mut out = Vec::new();
    for r in after {
        match old.get(r.finding_id.as_str()) {
            None => out.push(change(r, None, Some(r), "added", present_fields(r))),
            Some(p) => {
                let fields: Vec<String> = [
                    ("status", p.status != r.status),
                    ("warning", p.warning != r.warning),
                    ("deadline", p.deadline != r.deadline),
                    ("progress_count", p.progress_count != r.progress_count),
                ]
                .into_iter()
                .filter(|(_, changed)| *changed)
                .map(|(f, _)| f.to_owned())
                .collect();
                if !fields.is_empty() {
                    out.push(change(r, Some(p), Some(r), "changed", fields));
                }
            }
        }
    }
    for r in before.iter().filter(|r| !new_ids.contains(r.finding_id.as_str())) {
        out.push(change(r, Some(r), None, "removed", present_fields(r)));
    }
    out
}

/// The fields a row has a value for (an added or removed row "changes" all of them).
fn present_fields(r: &LedgerRow) -> Vec<String> {
    [
        ("status", true),
        ("warning", r.warning.is_some()),
        ("deadline", r.deadline.is_some()),
        ("progress_count", r.progress_count > 0),
    ]
    .into_iter()
    .filter(|(_, present)| *present)
    .map(|(f, _)| f.to_owned())
    .collect()
}

fn change(
    row: &LedgerRow,
    before: Option<&LedgerRow>,
    after: Option<&LedgerRow>,
    kind: &str,
    fields: Vec<String>,
) -> LedgerChange {
    LedgerChange {
        finding_id: row.finding_id.clone(),
        title: row.title.clone(),
        community: row.community.clone(),
        change: kind.to_owned(),
        fields,
        status_before: before.map(|r| r.status),
        status_after: after.map(|r| r.status),
        warning_before: before.and_then(|r| r.warning),
        warning_after: after.and_then(|r| r.warning),
        deadline_before: before.and_then(|r| r.deadline),
        deadline_after: after.and_then(|r| r.deadline),
        progress_count_before: before.map(|r| r.progress_count),
        progress_count_after: after.map(|r| r.progress_count),
    }
}
