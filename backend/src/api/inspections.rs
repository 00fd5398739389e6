//! Inspections (督查): plan, scope, team, start, fieldwork (座谈交流、查阅资料…), deductions (扣分),
//! achievements (主要工作开展情况), findings (存在问题) and the conclusion.
//!
//! - `GET|POST /tenants/{tenant_id}/inspections`
//! - `GET /tenants/{tenant_id}/inspections/{inspection_id}` (the [`InspectionDetail`])
//! - `POST /tenants/{tenant_id}/inspections/{inspection_id}/{scope,team,start,fieldwork,deductions,
//!   achievements,findings,conclusion}`
//!
//! Every write goes to the inspection aggregate (`{tenant}/inspection-{id}`): its version is the
//! `ETag` of the detail and of every answer here, and what `If-Match` is checked against.

use crate::api::auth::Authenticated;
use crate::api::command::{Reply, Write};
use crate::api::dashboard::TenantPath;
use crate::api::error::ApiError;
use crate::api::extract::{AsOf, AsOfParams, etag};
use crate::api::state::AppState;
use crate::commands::{self, Executed};
use actix_web::{HttpResponse, get, post, web};
use chrono::NaiveDate;
use ducha_events::api::{
    ChangeScopeRequest, ChangeTeamRequest, CommandAccepted, ConcludeInspectionRequest, PlanInspectionRequest,
    RecordAchievementRequest, RecordDeductionRequest, RecordFieldworkRequest, RecordFindingRequest,
    StartInspectionRequest,
};
use ducha_events::authz::{Action, authorize};
use ducha_events::ids::{InspectionId, TenantId, stream};
use ducha_events::inspection::{InspectionCommand, InspectionStatus};
use ducha_events::projection::{InspectionDetail, ReadModel, RectificationStatus};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_inspections)
        .service(plan_inspection)
        .service(get_inspection)
        .service(change_scope)
        .service(change_team)
        .service(start_inspection)
        .service(record_fieldwork)
        .service(record_deduction)
        .service(record_achievement)
        .service(record_finding)
        .service(conclude_inspection);
}

// ------------------------------------------------------------------ helpers shared with the other admin resources

/// The answer to an accepted command about `id`.
pub fn accepted(id: &impl std::fmt::Display, done: &Executed) -> CommandAccepted {
    CommandAccepted {
        id: id.to_string(),
        version: done.outcome.stream_version,
        first_position: done.outcome.first_position,
        last_position: done.outcome.last_position,
        events: done.events,
        deduplicated: done.outcome.deduplicated,
    }
}

/// The version of `stream` in `model` (0 when it has no events): the `ETag` of a read, taken from
/// the same model as the body so the two always agree, also "as of" a past point.
pub fn stream_version(model: &ReadModel, tenant: &TenantId, stream: &str) -> u64 {
    model.stream_version(tenant, stream)
}

/// The id for something new the client did not name: derived from the `Idempotency-Key` when there
/// is one (so a retry that reaches the store again addresses the same stream and is deduplicated
/// there), else a fresh time-ordered UUID.
pub fn new_id(write: &Write, tenant: &TenantId, kind: &str) -> String {
    match &write.key.0 {
        Some(key) => {
            let mut h = Sha256::new();
            for part in [kind, tenant.as_str(), write.who.actor.user_id.as_str(), key] {
                h.update(part.as_bytes());
                h.update([0]);
            }
            let digest = h.finalize();
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            uuid::Builder::from_custom_bytes(bytes).into_uuid().to_string()
        }
        None => uuid::Uuid::now_v7().to_string(),
    }
}

/// Parses a generated id (always in the id alphabet).
fn parse_id<T: TryFrom<String>>(s: String) -> Result<T, ApiError> {
    T::try_from(s).map_err(|_| ApiError::internal("generated id rejected"))
}

// ------------------------------------------------------------------ paths, queries, views

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct InspectionPath {
    /// The sub-district (tenant) id, e.g. `xxjd`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub tenant_id: TenantId,
    /// The inspection id, e.g. `2023-ideology`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub inspection_id: InspectionId,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InspectionListQuery {
    /// Only this year's inspections.
    pub year: Option<i32>,
    /// Only inspections in this status.
    #[param(value_type = Option<String>, pattern = "^(planned|in_progress|concluded)$")]
    pub status: Option<InspectionStatus>,
}

/// One inspection in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InspectionSummary {
    #[schema(value_type = String, example = "2023-ideology")]
    pub inspection_id: InspectionId,
    pub year: i32,
    pub title: String,
    pub subject: String,
    pub status: InspectionStatus,
    /// 已计划, 进行中, 已结束.
    pub status_name: String,
    pub planned_start: NaiveDate,
    pub planned_end: NaiveDate,
    pub started_on: Option<NaiveDate>,
    pub concluded_on: Option<NaiveDate>,
    /// Communities in scope.
    pub communities: usize,
    pub team: usize,
    pub fieldwork: usize,
    pub deductions: usize,
    pub achievements: usize,
    pub findings: usize,
    /// Findings verified (销号) or dismissed.
    pub findings_closed: usize,
}

// ------------------------------------------------------------------ reads

/// The sub-district's inspections, newest first.
#[utoipa::path(
    tag = "inspections",
    params(TenantPath, InspectionListQuery, AsOfParams),
    responses((status = 200, description = "督查列表 / inspections", body = Vec<InspectionSummary>,
               headers(("X-Ducha-Position" = u64, description = "the log position the answer was computed at"))))
)]
#[get("/tenants/{tenant_id}/inspections")]
pub async fn list_inspections(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
    query: web::Query<InspectionListQuery>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner().tenant_id;
    let query = query.into_inner();
    authorize(&who.actor, Action::Read, &state.tenant_target(&tenant)?)?;
    let view = state.view(&as_of, Some(&tenant)).await?;
    let mut body: Vec<InspectionSummary> = match view.tenant_facts(&tenant) {
        None => Vec::new(),
        Some(facts) => facts
            .inspections
            .iter()
            .filter(|i| query.year.is_none_or(|y| i.year == y))
            .filter(|i| query.status.is_none_or(|s| i.status() == s))
            .map(|i| {
                let findings = i.findings.iter().filter_map(|n| facts.findings.get(*n));
                let closed = findings
                    .clone()
                    .filter(|f| matches!(f.status, RectificationStatus::Verified | RectificationStatus::Dismissed))
                    .count();
                InspectionSummary {
                    inspection_id: i.inspection_id.clone(),
                    year: i.year,
                    title: i.title.clone(),
                    subject: i.subject.clone(),
                    status: i.status(),
                    status_name: i.status().name_zh().to_owned(),
                    planned_start: i.planned_start,
                    planned_end: i.planned_end,
                    started_on: i.started_on,
                    concluded_on: i.conclusion.as_ref().and_then(|c| c.concluded_on),
                    communities: i.communities.len(),
                    team: i.team.len(),
                    fieldwork: i.fieldwork.len(),
                    deductions: i.deductions.len(),
                    achievements: i.achievements.len(),
                    findings: i.findings.len(),
                    findings_closed: closed,
                }
            })
            .collect(),
    };
    let position = view.position();
    drop(view);
    body.sort_by_key(|i| std::cmp::Reverse((i.year, i.planned_start)));
    Ok(HttpResponse::Ok().insert_header(("x-ducha-position", position)).json(body))
}

/// One inspection in full: plan, team, fieldwork by community, scores, achievements, findings and
/// conclusion. `ETag` is the inspection's version (send it as `If-Match` with the next write).
#[utoipa::path(
    tag = "inspections",
    params(InspectionPath, AsOfParams),
    responses(
        (status = 200, description = "督查详情 / the inspection", body = InspectionDetail,
         headers(("ETag" = String, description = "the inspection's version"),
                 ("X-Ducha-Position" = u64, description = "the log position the answer was computed at"))),
    )
)]
#[get("/tenants/{tenant_id}/inspections/{inspection_id}")]
pub async fn get_inspection(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<InspectionPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let InspectionPath { tenant_id: tenant, inspection_id } = path.into_inner();
    authorize(&who.actor, Action::Read, &state.tenant_target(&tenant)?)?;
    let view = state.view(&as_of, Some(&tenant)).await?;
    let body =
        view.inspection_detail(&tenant, &inspection_id).ok_or_else(|| ApiError::not_found("该督查", "inspection"))?;
    let version = stream_version(&view, &tenant, &stream::inspection(&tenant, &inspection_id));
    let position = view.position();
    drop(view);
    Ok(HttpResponse::Ok().insert_header(etag(version)).insert_header(("x-ducha-position", position)).json(body))
}

// ------------------------------------------------------------------ writes

/// Runs an inspection command and answers with its `CommandAccepted` about `id` (201 with
/// `location`, else 200), the inspection's version as `ETag`.
async fn run(
    state: &AppState,
    write: &Write,
    path: InspectionPath,
    request: &impl Serialize,
    cmd: InspectionCommand,
    id: String,
    location: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let InspectionPath { tenant_id: tenant, inspection_id } = path;
    if !matches!(cmd, InspectionCommand::Plan { .. }) {
        // An inspection that was never planned is "not found" (the aggregate would say "not
        // planned yet"). The live model may lag a moment behind another client's plan: the store
        // has the last word.
        let known = state.live.read().tenant_facts(&tenant).is_some_and(|f| f.inspection(&inspection_id).is_some());
        if !known && state.store.stream_version(&stream::inspection(&tenant, &inspection_id)).await? == 0 {
            // Only those who may see the tenant learn that it has no such inspection.
            authorize(&write.who.actor, Action::Read, &state.tenant_target(&tenant)?)?;
            return Err(ApiError::not_found("该督查", "inspection"));
        }
    }
    let store = state.store.clone();
    let chain = tenant.clone();
    write
        .run(
            state,
            &chain,
            request,
            move |meta| async move { commands::inspection(&*store, &meta, &tenant, &inspection_id, cmd).await },
            |done| {
                let body = accepted(&id, done);
                match location {
                    Some(l) => Reply::created(body, l),
                    None => Reply::ok(body),
                }
                .version(done.outcome.stream_version)
            },
        )
        .await
}

/// 制定督查计划 (sub-district admins). Without `inspection_id` the server makes one.
#[utoipa::path(
    tag = "inspections",
    params(TenantPath),
    request_body = PlanInspectionRequest,
    responses((status = 201, description = "督查已计划 / planned", body = CommandAccepted,
               headers(("Location" = String, description = "the new inspection"),
                       ("ETag" = String, description = "the inspection's version"))))
)]
#[post("/tenants/{tenant_id}/inspections")]
pub async fn plan_inspection(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<TenantPath>,
    body: web::Json<PlanInspectionRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = path.into_inner().tenant_id;
    let body = body.into_inner();
    let inspection_id = match &body.inspection_id {
        Some(id) => id.clone(),
        None => parse_id(new_id(&write, &tenant_id, "inspection"))?,
    };
    let location = format!("/api/v1/tenants/{tenant_id}/inspections/{inspection_id}");
    let cmd = body.clone().into_command(inspection_id.clone());
    let path = InspectionPath { tenant_id, inspection_id: inspection_id.clone() };
    run(&state, &write, path, &body, cmd, inspection_id.to_string(), Some(location)).await
}

/// The answer of the commands that change the inspection itself: about the inspection.
macro_rules! inspection_command {
    ($(#[$doc:meta])* $name:ident, $route:literal, $request:ty, $what:literal) => {
        $(#[$doc])*
        #[utoipa::path(
            tag = "inspections",
            params(InspectionPath),
            request_body = $request,
            responses((status = 200, description = $what, body = CommandAccepted,
                       headers(("ETag" = String, description = "the inspection's version"))))
        )]
        #[post($route)]
        pub async fn $name(
            state: web::Data<AppState>,
            write: Write,
            path: web::Path<InspectionPath>,
            body: web::Json<$request>,
        ) -> Result<HttpResponse, ApiError> {
            let path = path.into_inner();
            let body = body.into_inner();
            let id = path.inspection_id.to_string();
            run(&state, &write, path, &body, body.clone().into(), id, None).await
        }
    };
}

inspection_command!(
    /// 调整督查范围 (planned or in progress; communities with records stay).
    change_scope, "/tenants/{tenant_id}/inspections/{inspection_id}/scope", ChangeScopeRequest,
    "范围已调整 / scope changed"
);
inspection_command!(
    /// 调整督查组 (members must be inspectors or admins of the sub-district).
    change_team, "/tenants/{tenant_id}/inspections/{inspection_id}/team", ChangeTeamRequest,
    "督查组已调整 / team changed"
);
inspection_command!(
    /// 启动督查.
    start_inspection, "/tenants/{tenant_id}/inspections/{inspection_id}/start", StartInspectionRequest,
    "督查已启动 / started"
);
inspection_command!(
    /// 记录座谈交流、查阅资料等 (team members and sub-district admins).
    record_fieldwork, "/tenants/{tenant_id}/inspections/{inspection_id}/fieldwork", RecordFieldworkRequest,
    "已记录 / recorded"
);
inspection_command!(
    /// 记录扣分 against an item of the inspection's checklist (floored at the item's points).
    record_deduction, "/tenants/{tenant_id}/inspections/{inspection_id}/deductions", RecordDeductionRequest,
    "已记录扣分 / deduction recorded"
);
inspection_command!(
    /// 督查结论: concludes the inspection; nothing more can be recorded after it.
    conclude_inspection, "/tenants/{tenant_id}/inspections/{inspection_id}/conclusion", ConcludeInspectionRequest,
    "督查已结束 / concluded"
);

/// 记录主要工作开展情况 (with figures such as 开展理论宣讲会等10场). Answers the achievement's id.
#[utoipa::path(
    tag = "inspections",
    params(InspectionPath),
    request_body = RecordAchievementRequest,
    responses((status = 200, description = "已记录工作情况 / achievement recorded; `id` is the achievement's",
               body = CommandAccepted, headers(("ETag" = String, description = "the inspection's version"))))
)]
#[post("/tenants/{tenant_id}/inspections/{inspection_id}/achievements")]
pub async fn record_achievement(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<InspectionPath>,
    body: web::Json<RecordAchievementRequest>,
) -> Result<HttpResponse, ApiError> {
    let path = path.into_inner();
    let body = body.into_inner();
    let id = match &body.achievement_id {
        Some(id) => id.clone(),
        None => parse_id(new_id(&write, &path.tenant_id, "achievement"))?,
    };
    let cmd = body.clone().into_command(id.clone());
    run(&state, &write, path, &body, cmd, id.to_string(), None).await
}

/// 记录存在问题. Without `community_id` the finding is cross-cutting (全街道). Answers the finding's
/// id; its rectification is then managed under its `Location`
/// (`/tenants/{tenant_id}/inspections/{inspection_id}/findings/{finding_id}`).
#[utoipa::path(
    tag = "inspections",
    params(InspectionPath),
    request_body = RecordFindingRequest,
    responses((status = 201, description = "已记录问题 / finding recorded; `id` is the finding's", body = CommandAccepted,
               headers(("Location" = String, description = "the new finding"),
                       ("ETag" = String, description = "the inspection's version"))))
)]
#[post("/tenants/{tenant_id}/inspections/{inspection_id}/findings")]
pub async fn record_finding(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<InspectionPath>,
    body: web::Json<RecordFindingRequest>,
) -> Result<HttpResponse, ApiError> {
    let path = path.into_inner();
    let body = body.into_inner();
    let id = match &body.finding_id {
        Some(id) => id.clone(),
        None => parse_id(new_id(&write, &path.tenant_id, "finding"))?,
    };
    let location = format!("/api/v1/tenants/{}/inspections/{}/findings/{id}", path.tenant_id, path.inspection_id);
    let cmd = body.clone().into_command(id.clone());
    run(&state, &write, path, &body, cmd, id.to_string(), Some(location)).await
}
