//! 自查报告: a community submits its self-inspection report (`POST`), the sub-district lists them
//! (`GET`); community officers see only their own community's.

use crate::api::auth::Authenticated;
use crate::api::command::{Reply, Write};
use crate::api::dashboard::TenantPath;
use crate::api::documents::download;
use crate::api::error::ApiError;
use crate::api::extract::{AsOf, AsOfParams};
use crate::api::security::record_export;
use crate::api::state::AppState;
use crate::commands;
use crate::documents;
use crate::store::Upto;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::NaiveDate;
use ducha_events::Event;
use ducha_events::api::{CommandAccepted, SubmitSelfInspectionRequest};
use ducha_events::authz::{Action, Actor, Target, authorize};
use ducha_events::envelope::RecordedEvent;
use ducha_events::event::{DocumentFormat, ReportSection, SelfInspectionSubmitted};
use ducha_events::ids::{CommunityId, InspectionId, SelfInspectionId, TenantId, UserId, stream};
use ducha_events::projection::{CommunityRef, InspectionStatus, WHOLE_SUBDISTRICT};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(submit).service(list).service(one).service(self_inspection_document);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SelfInspectionPath {
    /// The sub-district (tenant) id, e.g. `xxjd`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub tenant_id: TenantId,
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub self_inspection_id: SelfInspectionId,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this community's reports.
    #[param(value_type = Option<String>)]
    pub community_id: Option<CommunityId>,
    /// Only this year's reports.
    pub year: Option<i32>,
}

/// One 自查报告 in a list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SelfInspectionView {
    pub self_inspection_id: SelfInspectionId,
    pub community: CommunityRef,
    pub year: i32,
    pub title: String,
    /// The inspection it answers, if any.
    pub inspection_id: Option<InspectionId>,
    /// The Asia/Shanghai date it was submitted.
    pub submitted_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SelfInspectionList {
    /// In the order they were submitted.
    pub items: Vec<SelfInspectionView>,
    /// The inspections under way or planned whose scope holds a community the caller may read:
    /// what a new 自查报告 can answer (`inspection_id`), with those communities.
    pub answerable: Vec<AnswerableInspection>,
}

/// An inspection a community can answer with its 自查报告.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AnswerableInspection {
    pub inspection_id: InspectionId,
    pub year: i32,
    pub title: String,
    /// The communities in its scope that the caller may read.
    pub communities: Vec<CommunityId>,
}

/// One 自查报告 in full.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SelfInspectionReport {
    pub self_inspection_id: SelfInspectionId,
    pub community: CommunityRef,
    pub year: i32,
    pub title: String,
    /// The report as free text, or, with `sections`, its opening paragraph(s).
    pub text: String,
    /// The report in the official form, in order (empty for a free-text report). Numbers are not
    /// stored: they follow from the levels (一、（一）1.), as the document prints them.
    pub sections: Vec<ReportSection>,
    pub inspection_id: Option<InspectionId>,
    /// When it was submitted (RFC 3339, UTC) and by whom.
    pub submitted_at: String,
    pub submitted_by: UserId,
}

/// Whether `actor` may read `community`'s documents in the tenant (tenant readers may read all).
fn may_read(actor: &Actor, tenant_target: &Target, community: &CommunityId) -> bool {
    let target = Target { community_id: Some(community.clone()), ..tenant_target.clone() };
    authorize(actor, Action::Read, &target).is_ok()
}

/// Refuses callers who may read neither the tenant nor any of its communities.
fn may_read_some(actor: &Actor, tenant: &TenantId, tenant_target: &Target) -> Result<(), ApiError> {
    let first = authorize(actor, Action::Read, tenant_target);
    let some_community = actor.grants.iter().any(|g| match &g.scope {
        ducha_events::authz::Scope::Community { tenant_id, community_id, .. } => {
            tenant_id == tenant && may_read(actor, tenant_target, community_id)
        }
        _ => false,
    });
    if first.is_ok() || some_community { Ok(()) } else { first.map(|_| ()).map_err(ApiError::from) }
}

/// Submit a community's 自查报告. Community officers for their own community (and sub-district admins
/// for any); a report is submitted once and never changed.
#[utoipa::path(
    tag = "self-inspections",
    operation_id = "submit_self_inspection",
    params(TenantPath),
    request_body = SubmitSelfInspectionRequest,
    responses((status = 201, description = "已提交 / submitted", body = CommandAccepted,
               headers(("Location" = String, description = "the new report"),
                       ("ETag" = String, description = "the report stream's version")))),
)]
#[post("/tenants/{tenant_id}/self-inspections")]
pub async fn submit(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<TenantPath>,
    body: web::Json<SubmitSelfInspectionRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner().tenant_id;
    let body = body.into_inner();
    let id = match &body.self_inspection_id {
        Some(id) => id.clone(),
        None => SelfInspectionId::parse(uuid::Uuid::now_v7().to_string())
            .map_err(|_| ApiError::internal("a generated id is invalid"))?,
    };
    let store = state.store.clone();
    let (t, s, cmd) = (tenant.clone(), id.clone(), body.clone().into_command(id.clone()));
    let location = format!("/api/v1/tenants/{tenant}/self-inspections/{id}");
    write
        .run(
            &state,
            &tenant,
            &body,
            |meta| async move { commands::self_inspection(&*store, &meta, &t, &s, cmd).await },
            |done| {
                let accepted = CommandAccepted {
                    id: id.to_string(),
                    version: done.outcome.stream_version,
                    first_position: done.outcome.first_position,
                    last_position: done.outcome.last_position,
                    events: done.events,
                    deduplicated: done.outcome.deduplicated,
                };
                Reply::created(accepted, location).version(done.outcome.stream_version)
            },
        )
        .await
}

/// The tenant's 自查报告, now or as of a past point. Community officers see only their community's.
#[utoipa::path(
    tag = "self-inspections",
    params(TenantPath, ListQuery, AsOfParams),
    responses((status = 200, description = "自查报告列表 / the reports", body = SelfInspectionList)),
)]
#[get("/tenants/{tenant_id}/self-inspections")]
pub async fn list(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
    query: web::Query<ListQuery>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner().tenant_id;
    let query = query.into_inner();
    let target = state.tenant_target(&tenant)?;
    may_read_some(&who.actor, &tenant, &target)?;
    let view = state.view(&as_of, Some(&tenant)).await?;
    let entry = view.directory().tenant(&tenant);
    let items = view
        .tenant_facts(&tenant)
        .map(|facts| {
            facts
                .self_inspections
                .iter()
                .filter(|s| query.community_id.as_ref().is_none_or(|c| &s.community_id == c))
                .filter(|s| query.year.is_none_or(|y| s.year == y))
                .filter(|s| may_read(&who.actor, &target, &s.community_id))
                .map(|s| SelfInspectionView {
                    self_inspection_id: s.self_inspection_id.clone(),
                    community: community_ref(entry, &s.community_id),
                    year: s.year,
                    title: s.title.clone(),
                    inspection_id: s.inspection_id.clone(),
                    submitted_on: s.submitted_on,
                })
                .collect()
        })
        .unwrap_or_default();
    let answerable = view
        .tenant_facts(&tenant)
        .map(|facts| {
            facts
                .inspections
                .iter()
                .filter(|i| i.status() != InspectionStatus::Concluded)
                .filter_map(|i| {
                    let communities: Vec<CommunityId> =
                        i.communities.iter().filter(|c| may_read(&who.actor, &target, c)).cloned().collect();
                    (!communities.is_empty()).then(|| AnswerableInspection {
                        inspection_id: i.inspection_id.clone(),
                        year: i.year,
                        title: i.title.clone(),
                        communities,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let position = view.position();
    drop(view);
    Ok(HttpResponse::Ok().insert_header(("x-ducha-position", position)).json(SelfInspectionList { items, answerable }))
}

fn community_ref(entry: Option<&ducha_events::projection::TenantEntry>, id: &CommunityId) -> CommunityRef {
    let name = entry.and_then(|t| t.community_name(id)).unwrap_or(id.as_str());
    CommunityRef { community_id: Some(id.clone()), name: if name.is_empty() { WHOLE_SUBDISTRICT } else { name }.into() }
}

/// The submitted report of `path` as of `as_of`, if the caller may read it, with its record and
/// its community.
async fn load(
    state: &AppState,
    who: &Authenticated,
    tenant_id: &TenantId,
    id: &SelfInspectionId,
    as_of: &AsOf,
) -> Result<(RecordedEvent, SelfInspectionSubmitted, CommunityRef), ApiError> {
    let target = state.tenant_target(tenant_id)?;
    may_read_some(&who.actor, tenant_id, &target)?;
    let not_found = || ApiError::not_found("该自查报告", "self-inspection");
    let upto = if as_of.is_now() { Upto::Head } else { as_of.upto };
    let events = state.store.read_stream(&stream::self_inspection(tenant_id, id), 0, 10, upto).await?;
    let first = events.into_iter().next().ok_or_else(not_found)?;
    let Ok(Event::SelfInspectionSubmitted(report)) = first.decode() else { return Err(not_found()) };
    if !may_read(&who.actor, &target, &report.community_id) {
        return Err(ApiError::from(ducha_events::DomainError::Forbidden { action: Action::Read }));
    }
    let community = {
        let model = state.live.read();
        community_ref(model.directory().tenant(tenant_id), &report.community_id)
    };
    Ok((first, report, community))
}

/// One 自查报告 with its text.
#[utoipa::path(
    tag = "self-inspections",
    params(SelfInspectionPath, AsOfParams),
    responses((status = 200, description = "自查报告 / the report", body = SelfInspectionReport)),
)]
#[get("/tenants/{tenant_id}/self-inspections/{self_inspection_id}")]
pub async fn one(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<SelfInspectionPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let SelfInspectionPath { tenant_id, self_inspection_id } = path.into_inner();
    let (first, report, community) = load(&state, &who, &tenant_id, &self_inspection_id, &as_of).await?;
    Ok(HttpResponse::Ok().json(SelfInspectionReport {
        self_inspection_id,
        community,
        year: report.year,
        title: report.title,
        text: report.text,
        sections: report.sections,
        inspection_id: report.inspection_id,
        submitted_at: first.occurred_at.clone(),
        submitted_by: first.actor.user_id.clone(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DocumentQuery {
    /// `docx` (default), `html` (the preview the web app shows) or `txt`.
    #[param(value_type = Option<String>)]
    pub format: Option<DocumentFormat>,
}

/// 自查报告 as a document in the official form (DOCX, as the 督查报告), or its HTML preview or text.
#[utoipa::path(
    tag = "self-inspections",
    params(SelfInspectionPath, DocumentQuery, AsOfParams),
    responses(
        (status = 200, description = "自查报告 / the report; `X-Ducha-Sha256` names the exact bytes",
         content(
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            (String = "text/html"),
            (String = "text/plain"),
         )),
    )
)]
#[get("/tenants/{tenant_id}/self-inspections/{self_inspection_id}/document")]
pub async fn self_inspection_document(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    path: web::Path<SelfInspectionPath>,
    query: web::Query<DocumentQuery>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let SelfInspectionPath { tenant_id, self_inspection_id } = path.into_inner();
    let (first, report, community) = load(&state, &who, &tenant_id, &self_inspection_id, &as_of).await?;
    let format = query.format.unwrap_or(DocumentFormat::Docx);
    let submitted_on = ducha_events::time::parse(&first.occurred_at).ok().map(|t| ducha_events::time::local_date(&t));
    let doc = documents::self_inspection::build(&community.name, &report, submitted_on);
    let bytes = documents::render(&doc, format)?;
    let object = format!("self-inspection:{tenant_id}/{self_inspection_id}");
    let detail = format!("format {}; sha256 {}", format.code(), documents::sha256_hex(&bytes));
    record_export(&state, &req, &who, "document_downloaded", object, detail).await?;
    let filename = (format == DocumentFormat::Docx).then(|| format!("{}.docx", doc.title));
    Ok(download(bytes, documents::content_type(format), filename, first.position))
}
