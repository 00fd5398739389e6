//! A finding's rectification (整改): `GET` the finding with its follow-up history, and one `POST` per
//! command — assign (交办), progress (进展), submit (提交销号), verify (销号), return (退回), extend
//! (延期), remind (催办), dismiss (撤销). Who may do which is the finding aggregate's `decide`; these
//! handlers only route. A progress report may only cite evidence uploaded to the same tenant
//! (see [`crate::api::evidence`]).

use crate::api::auth::Authenticated;
use crate::api::command::{Reply, Write};
use crate::api::error::ApiError;
use crate::api::evidence;
use crate::api::extract::{AsOf, AsOfParams, etag};
use crate::api::state::AppState;
use crate::commands::{self, Executed};
use crate::store::Upto;
use actix_web::{HttpResponse, get, post, web};
use ducha_events::api::{
    AssignRectificationRequest, CommandAccepted, DismissFindingRequest, ExtendDeadlineRequest, RemindRequest,
    ReportProgressRequest, ReturnRectificationRequest, SubmitRectificationRequest, VerifyRectificationRequest,
};
use ducha_events::authz::{Action, Role, Scope, authorize};
use ducha_events::envelope::RecordedEvent;
use ducha_events::finding::FindingCommand;
use ducha_events::ids::{FindingId, InspectionId, TenantId, UserId, stream};
use ducha_events::projection::{LedgerFilter, LedgerRow, LedgerSort, Page};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(finding)
        .service(assign)
        .service(progress)
        .service(submit)
        .service(verify)
        .service(return_)
        .service(extend)
        .service(remind)
        .service(dismiss);
}

#[derive(Debug, Clone, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct FindingPath {
    /// The sub-district (tenant) id, e.g. `xxjd`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub tenant_id: TenantId,
    /// The inspection the finding was recorded in, e.g. `2023-ideology`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub inspection_id: InspectionId,
    /// The finding, e.g. `xx-2023-f2`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub finding_id: FindingId,
}

/// One event of the finding's follow-up stream.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FindingHistoryEntry {
    /// Global log position.
    pub position: u64,
    /// The finding stream's version after this event.
    pub version: u64,
    /// e.g. `RectificationAssigned`, `ProgressReported`, `RectificationReturned`.
    pub event_type: String,
    /// When it was recorded (RFC 3339, UTC).
    pub occurred_at: String,
    pub user_id: UserId,
    /// The role the actor acted in.
    pub role: Role,
    /// The actor's display name (the user id when unknown).
    pub actor_name: String,
    /// The event's payload (progress text and evidence, reason, comment, new deadline, …).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// A finding with its rectification (the ledger row) and its follow-up history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FindingDetail {
    pub inspection_id: InspectionId,
    /// The finding as the 整改台账 shows it (status, deadline, warning level, evidence, …).
    pub finding: LedgerRow,
    /// The finding stream's version (also sent as `ETag`; send it as `If-Match` with a command).
    pub version: u64,
    /// Every follow-up event, oldest first.
    pub history: Vec<FindingHistoryEntry>,
}

/// The finding with its rectification and follow-up history (progress reports with evidence,
/// returns, extensions, reminders), now or as of a past point.
///
/// Community officers see only their own community's findings; cross-cutting findings (全街道) are
/// for the sub-district's readers.
#[utoipa::path(
    tag = "findings",
    params(FindingPath, AsOfParams),
    responses(
        (status = 200, description = "问题及整改情况 / the finding with its rectification", body = FindingDetail,
         headers(("ETag" = String, description = "the finding stream's version, for If-Match"),
                 ("X-Ducha-Position" = u64, description = "the log position the answer was computed at"))),
    )
)]
#[get("/tenants/{tenant_id}/inspections/{inspection_id}/findings/{finding_id}")]
pub async fn finding(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<FindingPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let FindingPath { tenant_id, inspection_id, finding_id } = path.into_inner();
    let not_found = || ApiError::not_found("该问题", "finding");
    let tenant_target = state.tenant_target(&tenant_id)?;
    // Callers with no read grant in this tenant learn nothing, not even whether the finding exists.
    if let Err(e) = authorize(&who.actor, Action::Read, &tenant_target)
        && !who
            .actor
            .grants
            .iter()
            .any(|g| matches!(&g.scope, Scope::Community { tenant_id: t, .. } if t == &tenant_id))
    {
        return Err(e.into());
    }
    let events = read_stream(&state, &stream::finding(&tenant_id, &finding_id), as_of.upto).await?;
    let view = state.view(&as_of, Some(&tenant_id)).await?;
    let facts = view.tenant_facts(&tenant_id).ok_or_else(not_found)?;
    let f = facts.finding(&finding_id).ok_or_else(not_found)?;
    if f.inspection_id.as_ref() != Some(&inspection_id) {
        return Err(not_found());
    }
    let target = ducha_events::authz::Target { community_id: f.community_id.clone(), ..tenant_target };
    authorize(&who.actor, Action::Read, &target)?;
    let filter = LedgerFilter { inspection: Some(inspection_id.clone()), ..LedgerFilter::default() };
    let ledger = view.ledger(&tenant_id, as_of.today, &state.policy, &filter, LedgerSort::Recorded, Page::all());
    let row = ledger.rows.into_iter().find(|r| r.finding_id == finding_id).ok_or_else(not_found)?;
    let dir = view.directory();
    let history: Vec<FindingHistoryEntry> = events
        .into_iter()
        .map(|e| FindingHistoryEntry {
            position: e.position,
            version: e.stream_version,
            actor_name: dir.display_name(&e.actor.user_id).to_owned(),
            data: serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null),
            event_type: e.event_type,
            occurred_at: e.occurred_at,
            user_id: e.actor.user_id,
            role: e.actor.role,
        })
        .collect();
    let position = view.position();
    drop(view);
    let version = history.last().map_or(0, |h| h.version);
    let body = FindingDetail { inspection_id, finding: row, version, history };
    Ok(HttpResponse::Ok().insert_header(etag(version)).insert_header(("x-ducha-position", position)).json(body))
}

/// Every event of one stream up to `upto`.
async fn read_stream(state: &AppState, name: &str, upto: Upto) -> Result<Vec<RecordedEvent>, ApiError> {
    let mut out: Vec<RecordedEvent> = Vec::new();
    loop {
        let after = out.last().map_or(0, |e| e.stream_version);
        let mut batch = state.store.read_stream(name, after, 500, upto).await?;
        if batch.is_empty() {
            return Ok(out);
        }
        state.store.open_personal(&mut batch).await?;
        out.extend(batch);
    }
}

/// The answer to an accepted finding command.
pub fn accepted(id: &FindingId, done: &Executed) -> CommandAccepted {
    CommandAccepted {
        id: id.to_string(),
        version: done.outcome.stream_version,
        first_position: done.outcome.first_position,
        last_position: done.outcome.last_position,
        events: done.events,
        deduplicated: done.outcome.deduplicated,
    }
}

/// Runs one finding command through the write path and answers 200 with `CommandAccepted`.
async fn run(
    state: &AppState,
    write: &Write,
    path: FindingPath,
    request: &impl Serialize,
    cmd: FindingCommand,
) -> Result<HttpResponse, ApiError> {
    let FindingPath { tenant_id, inspection_id, finding_id } = path;
    let store = state.store.clone();
    let (t, i, f) = (tenant_id.clone(), inspection_id, finding_id.clone());
    write
        .run(
            state,
            &tenant_id,
            request,
            |meta| async move { commands::finding(&*store, &meta, &t, &i, &f, cmd).await },
            |done| Reply::ok(accepted(&finding_id, done)).version(done.outcome.stream_version),
        )
        .await
}

/// 交办整改: assign the rectification (measure, responsible unit, leader, person, deadline).
/// Sub-district admins; the deadline may not be in the past.
#[utoipa::path(
    tag = "findings",
    params(FindingPath),
    request_body = AssignRectificationRequest,
    responses((status = 200, description = "已交办 / assigned", body = CommandAccepted,
               headers(("ETag" = String, description = "the finding stream's new version")))),
)]
#[post("/tenants/{tenant_id}/inspections/{inspection_id}/findings/{finding_id}/assign")]
pub async fn assign(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<FindingPath>,
    body: web::Json<AssignRectificationRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    run(&state, &write, path.into_inner(), &body, body.clone().into()).await
}

/// 报送整改进展: a progress report, optionally citing evidence uploaded with
/// `POST /tenants/{tenant_id}/evidence`. The finding's community officer, or the sub-district.
#[utoipa::path(
    tag = "findings",
    params(FindingPath),
    request_body = ReportProgressRequest,
    responses((status = 200, description = "已报送 / progress recorded", body = CommandAccepted,
               headers(("ETag" = String, description = "the finding stream's new version")))),
)]
#[post("/tenants/{tenant_id}/inspections/{inspection_id}/findings/{finding_id}/progress")]
pub async fn progress(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<FindingPath>,
    body: web::Json<ReportProgressRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let path = path.into_inner();
    evidence::check_uploaded(&state, &path.tenant_id, &body.evidence).await?;
    run(&state, &write, path, &body, body.clone().into()).await
}

/// 提交销号申请: submit the rectification for verification (after at least one progress report).
#[utoipa::path(
    tag = "findings",
    params(FindingPath),
    request_body = SubmitRectificationRequest,
    responses((status = 200, description = "已提交 / submitted", body = CommandAccepted,
               headers(("ETag" = String, description = "the finding stream's new version")))),
)]
#[post("/tenants/{tenant_id}/inspections/{inspection_id}/findings/{finding_id}/submit")]
pub async fn submit(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<FindingPath>,
    body: web::Json<SubmitRectificationRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    run(&state, &write, path.into_inner(), &body, body.clone().into()).await
}

/// 销号: verify a submitted rectification, which closes it.
#[utoipa::path(
    tag = "findings",
    params(FindingPath),
    request_body = VerifyRectificationRequest,
    responses((status = 200, description = "已销号 / verified", body = CommandAccepted,
               headers(("ETag" = String, description = "the finding stream's new version")))),
)]
#[post("/tenants/{tenant_id}/inspections/{inspection_id}/findings/{finding_id}/verify")]
pub async fn verify(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<FindingPath>,
    body: web::Json<VerifyRectificationRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    run(&state, &write, path.into_inner(), &body, body.clone().into()).await
}

/// 退回: return a submitted rectification for rework, with a reason.
#[utoipa::path(
    tag = "findings",
    params(FindingPath),
    request_body = ReturnRectificationRequest,
    responses((status = 200, description = "已退回 / returned", body = CommandAccepted,
               headers(("ETag" = String, description = "the finding stream's new version")))),
)]
#[post("/tenants/{tenant_id}/inspections/{inspection_id}/findings/{finding_id}/return")]
pub async fn return_(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<FindingPath>,
    body: web::Json<ReturnRectificationRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    run(&state, &write, path.into_inner(), &body, body.clone().into()).await
}

/// 延期: move the deadline later, with a reason.
#[utoipa::path(
    tag = "findings",
    params(FindingPath),
    request_body = ExtendDeadlineRequest,
    responses((status = 200, description = "已延期 / deadline extended", body = CommandAccepted,
               headers(("ETag" = String, description = "the finding stream's new version")))),
)]
#[post("/tenants/{tenant_id}/inspections/{inspection_id}/findings/{finding_id}/extend")]
pub async fn extend(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<FindingPath>,
    body: web::Json<ExtendDeadlineRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    run(&state, &write, path.into_inner(), &body, body.clone().into()).await
}

/// 催办: remind the rectifying side (while it owes work).
#[utoipa::path(
    tag = "findings",
    params(FindingPath),
    request_body = RemindRequest,
    responses((status = 200, description = "已催办 / reminder recorded", body = CommandAccepted,
               headers(("ETag" = String, description = "the finding stream's new version")))),
)]
#[post("/tenants/{tenant_id}/inspections/{inspection_id}/findings/{finding_id}/remind")]
pub async fn remind(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<FindingPath>,
    body: web::Json<RemindRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    run(&state, &write, path.into_inner(), &body, body.clone().into()).await
}

/// 撤销问题: dismiss the finding, with a reason.
#[utoipa::path(
    tag = "findings",
    params(FindingPath),
    request_body = DismissFindingRequest,
    responses((status = 200, description = "已撤销 / dismissed", body = CommandAccepted,
               headers(("ETag" = String, description = "the finding stream's new version")))),
)]
#[post("/tenants/{tenant_id}/inspections/{inspection_id}/findings/{finding_id}/dismiss")]
pub async fn dismiss(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<FindingPath>,
    body: web::Json<DismissFindingRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    run(&state, &write, path.into_inner(), &body, body.clone().into()).await
}
