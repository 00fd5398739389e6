//! `GET /tenants/{tenant_id}/dashboard`: a sub-district's home-page numbers, now or as of a past point.
//! The worked example of a read endpoint (see the map in `api/mod.rs`).

use crate::api::auth::Authenticated;
use crate::api::error::ApiError;
use crate::api::extract::{AsOf, AsOfParams};
use crate::api::state::AppState;
use actix_web::{HttpResponse, get, web};
use ducha_events::authz::{Action, authorize};
use ducha_events::ids::TenantId;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(dashboard);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TenantPath {
    /// The sub-district (tenant) id, e.g. `xxjd`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub tenant_id: TenantId,
}

/// The tenant dashboard: inspections, communities covered, findings by category, rectifications by
/// status, warning levels (红黄蓝绿), completion rate and the twelve-month trend.
///
/// With `as_of` or `at_position` the numbers are those the system showed at that point, and
/// "today" (for warning levels and overdue counts) is that point's date in Asia/Shanghai.
#[utoipa::path(
    tag = "dashboard",
    params(TenantPath, AsOfParams),
    responses(
        (status = 200, description = "街道首页统计 / the tenant dashboard", body = ducha_events::projection::TenantDashboard,
         headers(("X-Ducha-Position" = u64, description = "the log position the answer was computed at"))),
    )
)]
#[get("/tenants/{tenant_id}/dashboard")]
pub async fn dashboard(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner().tenant_id;
    authorize(&who.actor, Action::Read, &state.tenant_target(&tenant)?)?;
    let view = state.view(&as_of, Some(&tenant)).await?;
    let body = view.dashboard(&tenant, as_of.today, &state.policy);
    let position = view.position();
    drop(view);
    Ok(HttpResponse::Ok().insert_header(("x-ducha-position", position)).json(body))
}
