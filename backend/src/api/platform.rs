//! Platform administration: districts (区) and the sub-districts (街道, tenants) registered in them.
//!
//! - `POST /districts`, `GET /districts`
//! - `POST /districts/{district_id}/tenants`, `GET /districts/{district_id}/tenants`
//!
//! Creating is for platform admins (the aggregates' `decide` says so); the lists show what the
//! caller may read: a whole district to its officers, auditors and the platform, and to a
//! sub-district's own users just their sub-district.

use crate::api::auth::Authenticated;
use crate::api::command::{Reply, Write};
use crate::api::error::ApiError;
use crate::api::extract::{AsOf, AsOfParams};
use crate::api::inspections::accepted;
use crate::api::state::AppState;
use crate::commands;
use actix_web::{HttpResponse, get, post, web};
use ducha_events::api::{CommandAccepted, CreateDistrictRequest, CreateTenantRequest};
use ducha_events::authz::{Action, Actor, Target, authorize};
use ducha_events::district::DistrictCommand;
use ducha_events::ids::{DistrictId, TenantId};
use ducha_events::projection::{Directory, TenantEntry};
use ducha_events::tenant::TenantCommand;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_district).service(list_districts).service(create_tenant).service(list_tenants);
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DistrictPath {
    /// The district (区) id, e.g. `xxq`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub district_id: DistrictId,
}

/// A district as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DistrictView {
    #[schema(value_type = String, example = "xxq")]
    pub district_id: DistrictId,
    #[schema(example = "XX区")]
    pub name: String,
    /// How many of its sub-districts the caller may see.
    pub tenants: usize,
}

/// A sub-district (tenant) as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TenantSummary {
    #[schema(value_type = String, example = "xxjd")]
    pub tenant_id: TenantId,
    #[schema(value_type = String, example = "xxq")]
    pub district_id: DistrictId,
    #[schema(example = "XX街道")]
    pub name: String,
    /// Number of communities (社区).
    pub communities: usize,
}

/// Whether the actor may see this part of the directory (districts and sub-districts; the three
/// administrators see it without seeing business data).
fn can_read(actor: &Actor, target: &Target) -> bool {
    authorize(actor, Action::ReadDirectory, target).is_ok()
}

/// The tenants of `district` the actor may read (all of them when it may read the district).
fn visible_tenants<'a>(
    dir: &'a Directory,
    actor: &'a Actor,
    district: &'a DistrictId,
) -> impl Iterator<Item = (&'a TenantId, &'a TenantEntry)> {
    let whole = can_read(actor, &Target::district(district));
    dir.tenants_in(district).filter(move |(t, _)| whole || can_read(actor, &Target::tenant(district, t)))
}

fn summary(id: &TenantId, district: &DistrictId, t: &TenantEntry) -> TenantSummary {
    TenantSummary {
        tenant_id: id.clone(),
        district_id: district.clone(),
        name: t.name.clone(),
        communities: t.communities.len(),
    }
}

/// 新建区: register a district (platform admins).
#[utoipa::path(
    tag = "platform",
    request_body = CreateDistrictRequest,
    responses(
        (status = 201, description = "区已创建 / district created", body = CommandAccepted,
         headers(("Location" = String, description = "the district's tenants"),
                 ("ETag" = String, description = "the district's version"))),
    )
)]
#[post("/districts")]
pub async fn create_district(
    state: web::Data<AppState>,
    write: Write,
    body: web::Json<CreateDistrictRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let store = state.store.clone();
    let d = body.district_id.clone();
    let cmd = DistrictCommand::Create { district_id: d.clone(), name: body.name.clone() };
    let location = format!("/api/v1/districts/{d}/tenants");
    write
        .run(
            &state,
            &TenantId::platform(),
            &body,
            move |meta| async move { commands::district(&*store, &meta, &d, cmd).await },
            |done| Reply::created(accepted(&body.district_id, done), location).version(done.outcome.stream_version),
        )
        .await
}

/// The districts the caller may see: every district for the platform, their own for district
/// officers and auditors, and the district of their sub-district for sub-district users.
#[utoipa::path(
    tag = "platform",
    params(AsOfParams),
    responses((status = 200, description = "区列表 / the districts", body = Vec<DistrictView>))
)]
#[get("/districts")]
pub async fn list_districts(
    state: web::Data<AppState>,
    who: Authenticated,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let view = state.view(&as_of, None).await?;
    let dir = view.directory();
    let body: Vec<DistrictView> = dir
        .districts()
        .filter_map(|(id, d)| {
            let tenants = visible_tenants(dir, &who.actor, id).count();
            (can_read(&who.actor, &Target::district(id)) || tenants > 0).then(|| DistrictView {
                district_id: id.clone(),
                name: d.name.clone(),
                tenants,
            })
        })
        .collect();
    drop(view);
    Ok(HttpResponse::Ok().json(body))
}

/// 新建街道: register a sub-district (tenant) in a district (platform admins).
#[utoipa::path(
    tag = "platform",
    params(DistrictPath),
    request_body = CreateTenantRequest,
    responses(
        (status = 201, description = "街道已创建 / sub-district created", body = CommandAccepted,
         headers(("Location" = String, description = "the new sub-district"),
                 ("ETag" = String, description = "the sub-district's version"))),
    )
)]
#[post("/districts/{district_id}/tenants")]
pub async fn create_tenant(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<DistrictPath>,
    body: web::Json<CreateTenantRequest>,
) -> Result<HttpResponse, ApiError> {
    let d = path.into_inner().district_id;
    let body = body.into_inner();
    let store = state.store.clone();
    let t = body.tenant_id.clone();
    let cmd = TenantCommand::Create { tenant_id: t.clone(), name: body.name.clone() };
    let location = format!("/api/v1/tenants/{t}");
    let chain = t.clone();
    write
        .run(
            &state,
            &chain,
            &body,
            move |meta| async move { commands::tenant(&*store, &meta, &d, &t, cmd).await },
            |done| Reply::created(accepted(&body.tenant_id, done), location).version(done.outcome.stream_version),
        )
        .await
}

/// The sub-districts of a district that the caller may see (403 when none).
#[utoipa::path(
    tag = "platform",
    params(DistrictPath, AsOfParams),
    responses((status = 200, description = "街道列表 / the district's sub-districts", body = Vec<TenantSummary>))
)]
#[get("/districts/{district_id}/tenants")]
pub async fn list_tenants(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<DistrictPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let d = path.into_inner().district_id;
    if state.live.read().directory().district(&d).is_none() {
        return Err(ApiError::not_found("该区", "district"));
    }
    let view = state.view(&as_of, None).await?;
    let body: Vec<TenantSummary> =
        visible_tenants(view.directory(), &who.actor, &d).map(|(id, t)| summary(id, &d, t)).collect();
    let whole = can_read(&who.actor, &Target::district(&d));
    drop(view);
    if body.is_empty() && !whole {
        // Nothing of this district is in the caller's scope: the same refusal as reading it.
        authorize(&who.actor, Action::ReadDirectory, &Target::district(&d))?;
    }
    Ok(HttpResponse::Ok().json(body))
}
