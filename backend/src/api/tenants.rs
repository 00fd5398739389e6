//! A sub-district's own administration: its communities (社区), finding categories (问题类别) and
//! checklists (检查考核细则).
//!
//! - `GET /tenants/{tenant_id}`: name, district and everything below, from the directory;
//! - `GET|POST /tenants/{tenant_id}/communities`, `GET /tenants/{tenant_id}/communities/{community_id}`,
//!   `POST /tenants/{tenant_id}/communities/{community_id}/rename`;
//! - `GET|POST /tenants/{tenant_id}/categories`, `GET /tenants/{tenant_id}/categories/{code}`,
//!   `POST /tenants/{tenant_id}/categories/{code}/rename|retire`;
//! - `GET|POST /tenants/{tenant_id}/methods`, `GET /tenants/{tenant_id}/methods/{code}`,
//!   `POST /tenants/{tenant_id}/methods/{code}/rename|retire` (督查方式);
//! - `GET|POST /tenants/{tenant_id}/checklists`, `GET /tenants/{tenant_id}/checklists/{checklist_id}`.
//!
//! Writes go to the tenant aggregate (`{tenant}/tenant`), whose version is the `ETag` of the
//! answers here and what `If-Match` is checked against.

use crate::api::auth::Authenticated;
use crate::api::command::{Reply, Write};
use crate::api::dashboard::TenantPath;
use crate::api::error::ApiError;
use crate::api::extract::{AsOf, AsOfParams, etag};
use crate::api::inspections::{accepted, stream_version};
use crate::api::state::{AppState, ModelView};
use crate::commands;
use actix_web::{HttpResponse, get, post, web};
use ducha_events::api::{
    AddCommunityRequest, AddFindingCategoryRequest, AddMethodRequest, CommandAccepted, DefineChecklistRequest,
    RenameCommunityRequest, RenameTermRequest,
};
use ducha_events::authz::{Action, authorize};
use ducha_events::ids::{ChecklistId, CommunityId, DistrictId, TenantId, stream};
use ducha_events::projection::{CategoryEntry, ChecklistEntry, CommunityEntry, TenantEntry, TermEntry};
use ducha_events::tenant::TenantCommand;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_tenant)
        .service(list_communities)
        .service(get_community)
        .service(add_community)
        .service(rename_community)
        .service(list_categories)
        .service(get_category)
        .service(add_category)
        .service(rename_category)
        .service(retire_category)
        .service(list_methods)
        .service(get_method)
        .service(add_method)
        .service(rename_method)
        .service(retire_method)
        .service(list_checklists)
        .service(get_checklist)
        .service(define_checklist);
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CommunityPath {
    /// The sub-district (tenant) id, e.g. `xxjd`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub tenant_id: TenantId,
    /// The community (社区) id, e.g. `dongfeng`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub community_id: CommunityId,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CategoryPath {
    /// The sub-district (tenant) id, e.g. `xxjd`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub tenant_id: TenantId,
    /// The category code, e.g. `theory`.
    #[param(pattern = "^[a-z0-9_-]{1,32}$")]
    pub code: String,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MethodPath {
    /// The sub-district (tenant) id, e.g. `xxjd`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub tenant_id: TenantId,
    /// The method code, e.g. `meeting` (座谈交流).
    #[param(pattern = "^[a-z0-9_-]{1,32}$")]
    pub code: String,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ChecklistPath {
    /// The sub-district (tenant) id, e.g. `xxjd`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub tenant_id: TenantId,
    /// The checklist id, e.g. `ideology-2023`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub checklist_id: ChecklistId,
}

/// A sub-district with its communities, finding categories and checklists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TenantView {
    #[schema(value_type = String, example = "xxjd")]
    pub tenant_id: TenantId,
    #[schema(example = "XX街道")]
    pub name: String,
    #[schema(value_type = String, example = "xxq")]
    pub district_id: DistrictId,
    #[schema(example = "XX区")]
    pub district_name: String,
    /// In the order they were added.
    pub communities: Vec<CommunityEntry>,
    /// In the order they were added, retired ones included (marked).
    pub categories: Vec<CategoryEntry>,
    /// The inspection methods (督查方式), in the order they were added, retired ones included.
    pub methods: Vec<TermEntry>,
    pub checklists: Vec<ChecklistEntry>,
    /// The tenant aggregate's version (also the `ETag`): send it as `If-Match` to change the above.
    pub version: u64,
}

/// A read of one tenant's directory entry: authorized (`ReadDirectory` on the tenant, which refuses
/// community officers), as of the requested point; 404 when the tenant did not exist then.
async fn read_tenant<'a>(
    state: &'a AppState,
    who: &Authenticated,
    tenant: &TenantId,
    as_of: &AsOf,
) -> Result<ModelView<'a>, ApiError> {
    authorize(&who.actor, Action::ReadDirectory, &state.tenant_target(tenant)?)?;
    let view = state.view(as_of, Some(tenant)).await?;
    if view.directory().tenant(tenant).is_none() {
        return Err(ApiError::not_found("该街道", "tenant"));
    }
    Ok(view)
}

/// Answers `body` computed from the tenant's entry, with the tenant's version as `ETag`.
fn answer<T: Serialize>(
    view: ModelView<'_>,
    tenant: &TenantId,
    body: impl FnOnce(&TenantEntry, u64) -> Result<T, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let version = stream_version(&view, tenant, &stream::tenant(tenant));
    let position = view.position();
    let entry = view.directory().tenant(tenant).ok_or_else(|| ApiError::not_found("该街道", "tenant"))?;
    let body = body(entry, version)?;
    drop(view);
    Ok(HttpResponse::Ok().insert_header(etag(version)).insert_header(("x-ducha-position", position)).json(body))
}

/// Runs a tenant command and answers with its `CommandAccepted` (201 with `location`, else 200).
async fn run(
    state: &AppState,
    write: &Write,
    tenant: TenantId,
    request: &impl Serialize,
    cmd: TenantCommand,
    id: String,
    location: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let district = state.tenant_target(&tenant)?.district_id.ok_or_else(|| ApiError::not_found("该街道", "tenant"))?;
    let store = state.store.clone();
    let chain = tenant.clone();
    write
        .run(
            state,
            &chain,
            request,
            move |meta| async move { commands::tenant(&*store, &meta, &district, &tenant, cmd).await },
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

/// A sub-district: name, district, communities, finding categories and checklists.
#[utoipa::path(
    tag = "tenants",
    params(TenantPath, AsOfParams),
    responses(
        (status = 200, description = "街道信息 / the sub-district", body = TenantView,
         headers(("ETag" = String, description = "the tenant aggregate's version"))),
    )
)]
#[get("/tenants/{tenant_id}")]
pub async fn get_tenant(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let t = path.into_inner().tenant_id;
    let view = read_tenant(&state, &who, &t, &as_of).await?;
    let district_name = |d: &DistrictId| view.directory().district(d).map_or_else(|| d.to_string(), |e| e.name.clone());
    let district_id = view
        .directory()
        .tenant(&t)
        .and_then(|e| e.district_id.clone())
        .ok_or_else(|| ApiError::not_found("该街道", "tenant"))?;
    let district_name = district_name(&district_id);
    answer(view, &t, |e, version| {
        Ok(TenantView {
            tenant_id: t.clone(),
            name: e.name.clone(),
            district_id,
            district_name,
            communities: e.communities.clone(),
            categories: e.categories.clone(),
            methods: e.methods.clone(),
            checklists: e.checklists.clone(),
            version,
        })
    })
}

// ------------------------------------------------------------------ communities

/// The sub-district's communities (社区), in the order they were added.
#[utoipa::path(
    tag = "tenants",
    params(TenantPath, AsOfParams),
    responses((status = 200, description = "社区列表 / communities", body = Vec<CommunityEntry>,
               headers(("ETag" = String, description = "the tenant aggregate's version"))))
)]
#[get("/tenants/{tenant_id}/communities")]
pub async fn list_communities(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let t = path.into_inner().tenant_id;
    let view = read_tenant(&state, &who, &t, &as_of).await?;
    answer(view, &t, |e, _| Ok(e.communities.clone()))
}

/// One community.
#[utoipa::path(
    tag = "tenants",
    params(CommunityPath, AsOfParams),
    responses((status = 200, description = "社区 / the community", body = CommunityEntry,
               headers(("ETag" = String, description = "the tenant aggregate's version"))))
)]
#[get("/tenants/{tenant_id}/communities/{community_id}")]
pub async fn get_community(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<CommunityPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let CommunityPath { tenant_id: t, community_id: c } = path.into_inner();
    let view = read_tenant(&state, &who, &t, &as_of).await?;
    answer(view, &t, |e, _| {
        e.communities
            .iter()
            .find(|x| x.community_id == c)
            .cloned()
            .ok_or_else(|| ApiError::not_found("该社区", "community"))
    })
}

/// 新增社区 (sub-district admins, platform admins).
#[utoipa::path(
    tag = "tenants",
    params(TenantPath),
    request_body = AddCommunityRequest,
    responses((status = 201, description = "社区已添加 / community added", body = CommandAccepted,
               headers(("Location" = String, description = "the new community"),
                       ("ETag" = String, description = "the tenant aggregate's version"))))
)]
#[post("/tenants/{tenant_id}/communities")]
pub async fn add_community(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<TenantPath>,
    body: web::Json<AddCommunityRequest>,
) -> Result<HttpResponse, ApiError> {
    let t = path.into_inner().tenant_id;
    let body = body.into_inner();
    let c = body.community_id.clone();
    let location = format!("/api/v1/tenants/{t}/communities/{c}");
    let cmd = TenantCommand::AddCommunity { community_id: c.clone(), name: body.name.clone() };
    run(&state, &write, t, &body, cmd, c.to_string(), Some(location)).await
}

/// 社区更名.
#[utoipa::path(
    tag = "tenants",
    params(CommunityPath),
    request_body = RenameCommunityRequest,
    responses((status = 200, description = "已更名 / renamed", body = CommandAccepted,
               headers(("ETag" = String, description = "the tenant aggregate's version"))))
)]
#[post("/tenants/{tenant_id}/communities/{community_id}/rename")]
pub async fn rename_community(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<CommunityPath>,
    body: web::Json<RenameCommunityRequest>,
) -> Result<HttpResponse, ApiError> {
    let CommunityPath { tenant_id: t, community_id: c } = path.into_inner();
    let body = body.into_inner();
    let cmd = TenantCommand::RenameCommunity { community_id: c.clone(), name: body.name.clone() };
    run(&state, &write, t, &body, cmd, c.to_string(), None).await
}

// ------------------------------------------------------------------ finding categories

/// The sub-district's finding categories (问题类别), in the order they were added.
#[utoipa::path(
    tag = "tenants",
    params(TenantPath, AsOfParams),
    responses((status = 200, description = "问题类别 / finding categories", body = Vec<CategoryEntry>,
               headers(("ETag" = String, description = "the tenant aggregate's version"))))
)]
#[get("/tenants/{tenant_id}/categories")]
pub async fn list_categories(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let t = path.into_inner().tenant_id;
    let view = read_tenant(&state, &who, &t, &as_of).await?;
    answer(view, &t, |e, _| Ok(e.categories.clone()))
}

/// One finding category.
#[utoipa::path(
    tag = "tenants",
    params(CategoryPath, AsOfParams),
    responses((status = 200, description = "问题类别 / the category", body = CategoryEntry,
               headers(("ETag" = String, description = "the tenant aggregate's version"))))
)]
#[get("/tenants/{tenant_id}/categories/{code}")]
pub async fn get_category(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<CategoryPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let CategoryPath { tenant_id: t, code } = path.into_inner();
    let view = read_tenant(&state, &who, &t, &as_of).await?;
    answer(view, &t, |e, _| {
        e.categories
            .iter()
            .find(|x| x.code == code)
            .cloned()
            .ok_or_else(|| ApiError::not_found("该问题类别", "category"))
    })
}

/// 新增问题类别 (code `[a-z0-9_-]{1,32}`, e.g. `theory` 理论学习).
#[utoipa::path(
    tag = "tenants",
    params(TenantPath),
    request_body = AddFindingCategoryRequest,
    responses((status = 201, description = "问题类别已添加 / category added", body = CommandAccepted,
               headers(("Location" = String, description = "the new category"),
                       ("ETag" = String, description = "the tenant aggregate's version"))))
)]
#[post("/tenants/{tenant_id}/categories")]
pub async fn add_category(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<TenantPath>,
    body: web::Json<AddFindingCategoryRequest>,
) -> Result<HttpResponse, ApiError> {
    let t = path.into_inner().tenant_id;
    let body = body.into_inner();
    let location = code_location(&t, "categories", &body.code);
    let cmd = TenantCommand::AddFindingCategory { code: body.code.clone(), name: body.name.clone() };
    run(&state, &write, t, &body, cmd, body.code.clone(), Some(location)).await
}

/// 问题类别更名.
#[utoipa::path(
    tag = "tenants",
    params(CategoryPath),
    request_body = RenameTermRequest,
    responses((status = 200, description = "已更名 / renamed", body = CommandAccepted,
               headers(("ETag" = String, description = "the tenant aggregate's version"))))
)]
#[post("/tenants/{tenant_id}/categories/{code}/rename")]
pub async fn rename_category(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<CategoryPath>,
    body: web::Json<RenameTermRequest>,
) -> Result<HttpResponse, ApiError> {
    let CategoryPath { tenant_id: t, code } = path.into_inner();
    let body = body.into_inner();
    let cmd = TenantCommand::RenameFindingCategory { code: code.clone(), name: body.name.clone() };
    run(&state, &write, t, &body, cmd, code, None).await
}

/// 停用问题类别: findings filed under it keep it; new findings cannot use it. Adding the code again
/// brings it back.
#[utoipa::path(
    tag = "tenants",
    params(CategoryPath),
    responses((status = 200, description = "已停用 / retired", body = CommandAccepted,
               headers(("ETag" = String, description = "the tenant aggregate's version"))))
)]
#[post("/tenants/{tenant_id}/categories/{code}/retire")]
pub async fn retire_category(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<CategoryPath>,
) -> Result<HttpResponse, ApiError> {
    let CategoryPath { tenant_id: t, code } = path.into_inner();
    let cmd = TenantCommand::RetireFindingCategory { code: code.clone() };
    run(&state, &write, t, &(), cmd, code, None).await
}

// ------------------------------------------------------------------ inspection methods

/// The sub-district's inspection methods (督查方式), in the order they were added; retired ones are
/// marked (plans and fieldwork that used them still show their names).
#[utoipa::path(
    tag = "tenants",
    params(TenantPath, AsOfParams),
    responses((status = 200, description = "督查方式 / inspection methods", body = Vec<TermEntry>,
               headers(("ETag" = String, description = "the tenant aggregate's version"))))
)]
#[get("/tenants/{tenant_id}/methods")]
pub async fn list_methods(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let t = path.into_inner().tenant_id;
    let view = read_tenant(&state, &who, &t, &as_of).await?;
    answer(view, &t, |e, _| Ok(e.methods.clone()))
}

/// One inspection method.
#[utoipa::path(
    tag = "tenants",
    params(MethodPath, AsOfParams),
    responses((status = 200, description = "督查方式 / the method", body = TermEntry,
               headers(("ETag" = String, description = "the tenant aggregate's version"))))
)]
#[get("/tenants/{tenant_id}/methods/{code}")]
pub async fn get_method(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<MethodPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let MethodPath { tenant_id: t, code } = path.into_inner();
    let view = read_tenant(&state, &who, &t, &as_of).await?;
    answer(view, &t, |e, _| {
        e.methods.iter().find(|x| x.code == code).cloned().ok_or_else(|| ApiError::not_found("该督查方式", "method"))
    })
}

/// 新增督查方式 (code `[a-z0-9_-]{1,32}`, e.g. `letters_visits` 受理来信来访).
#[utoipa::path(
    tag = "tenants",
    params(TenantPath),
    request_body = AddMethodRequest,
    responses((status = 201, description = "督查方式已添加 / method added", body = CommandAccepted,
               headers(("Location" = String, description = "the new method"),
                       ("ETag" = String, description = "the tenant aggregate's version"))))
)]
#[post("/tenants/{tenant_id}/methods")]
pub async fn add_method(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<TenantPath>,
    body: web::Json<AddMethodRequest>,
) -> Result<HttpResponse, ApiError> {
    let t = path.into_inner().tenant_id;
    let body = body.into_inner();
    let location = code_location(&t, "methods", &body.code);
    let cmd = TenantCommand::AddMethod { code: body.code.clone(), name: body.name.clone() };
    run(&state, &write, t, &body, cmd, body.code.clone(), Some(location)).await
}

/// 督查方式更名 (plans, fieldwork and reports show the new name).
#[utoipa::path(
    tag = "tenants",
    params(MethodPath),
    request_body = RenameTermRequest,
    responses((status = 200, description = "已更名 / renamed", body = CommandAccepted,
               headers(("ETag" = String, description = "the tenant aggregate's version"))))
)]
#[post("/tenants/{tenant_id}/methods/{code}/rename")]
pub async fn rename_method(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<MethodPath>,
    body: web::Json<RenameTermRequest>,
) -> Result<HttpResponse, ApiError> {
    let MethodPath { tenant_id: t, code } = path.into_inner();
    let body = body.into_inner();
    let cmd = TenantCommand::RenameMethod { code: code.clone(), name: body.name.clone() };
    run(&state, &write, t, &body, cmd, code, None).await
}

/// 停用督查方式: plans that chose it keep it; new plans cannot. At least one method stays usable.
#[utoipa::path(
    tag = "tenants",
    params(MethodPath),
    responses((status = 200, description = "已停用 / retired", body = CommandAccepted,
               headers(("ETag" = String, description = "the tenant aggregate's version"))))
)]
#[post("/tenants/{tenant_id}/methods/{code}/retire")]
pub async fn retire_method(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<MethodPath>,
) -> Result<HttpResponse, ApiError> {
    let MethodPath { tenant_id: t, code } = path.into_inner();
    let cmd = TenantCommand::RetireMethod { code: code.clone() };
    run(&state, &write, t, &(), cmd, code, None).await
}

/// The Location of a new category or method: the code goes into the path only when it is one the
/// domain accepts (otherwise the command is refused anyway).
fn code_location(t: &TenantId, kind: &str, code: &str) -> String {
    let ok = !code.is_empty()
        && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok { format!("/api/v1/tenants/{t}/{kind}/{code}") } else { format!("/api/v1/tenants/{t}/{kind}") }
}

// ------------------------------------------------------------------ checklists

/// The sub-district's checklists (检查考核细则) with their items.
#[utoipa::path(
    tag = "tenants",
    params(TenantPath, AsOfParams),
    responses((status = 200, description = "评分表 / checklists", body = Vec<ChecklistEntry>,
               headers(("ETag" = String, description = "the tenant aggregate's version"))))
)]
#[get("/tenants/{tenant_id}/checklists")]
pub async fn list_checklists(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let t = path.into_inner().tenant_id;
    let view = read_tenant(&state, &who, &t, &as_of).await?;
    answer(view, &t, |e, _| Ok(e.checklists.clone()))
}

/// One checklist with its items.
#[utoipa::path(
    tag = "tenants",
    params(ChecklistPath, AsOfParams),
    responses((status = 200, description = "评分表 / the checklist", body = ChecklistEntry,
               headers(("ETag" = String, description = "the tenant aggregate's version"))))
)]
#[get("/tenants/{tenant_id}/checklists/{checklist_id}")]
pub async fn get_checklist(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<ChecklistPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let ChecklistPath { tenant_id: t, checklist_id: c } = path.into_inner();
    let view = read_tenant(&state, &who, &t, &as_of).await?;
    answer(view, &t, |e, _| e.checklist(&c).cloned().ok_or_else(|| ApiError::not_found("该评分表", "checklist")))
}

/// 定义检查考核细则. Checklists are immutable: a new version gets a new id.
#[utoipa::path(
    tag = "tenants",
    params(TenantPath),
    request_body = DefineChecklistRequest,
    responses((status = 201, description = "评分表已定义 / checklist defined", body = CommandAccepted,
               headers(("Location" = String, description = "the new checklist"),
                       ("ETag" = String, description = "the tenant aggregate's version"))))
)]
#[post("/tenants/{tenant_id}/checklists")]
pub async fn define_checklist(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<TenantPath>,
    body: web::Json<DefineChecklistRequest>,
) -> Result<HttpResponse, ApiError> {
    let t = path.into_inner().tenant_id;
    let body = body.into_inner();
    let c = body.checklist_id.clone();
    let location = format!("/api/v1/tenants/{t}/checklists/{c}");
    let cmd = TenantCommand::DefineChecklist {
        checklist_id: c.clone(),
        title: body.title.clone(),
        items: body.items.clone(),
    };
    run(&state, &write, t, &body, cmd, c.to_string(), Some(location)).await
}
