//! `GET /tenants/{tenant_id}/scorecards`: one scorecard per community of a sub-district (scores,
//! findings, overdue, verified, self-inspections), now or as of a past point.

use crate::api::auth::Authenticated;
use crate::api::dashboard::TenantPath;
use crate::api::error::ApiError;
use crate::api::extract::{AsOf, AsOfParams};
use crate::api::ledger::{own_communities, year_param};
use crate::api::state::AppState;
use actix_web::{HttpResponse, get, web};
use ducha_events::authz::{Action, authorize};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(scorecards);
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ScorecardParams {
    /// Only inspections planned for this year (self-inspections by their own year).
    #[param(value_type = Option<i32>, minimum = 1000, maximum = 9999, example = 2023)]
    pub year: Option<String>,
    /// Read by the `AsOf` extractor.
    #[param(ignore)]
    pub as_of: Option<String>,
    /// Read by the `AsOf` extractor.
    #[param(ignore)]
    pub at_position: Option<String>,
}

/// Community scorecards, in the tenant's order: inspections, the latest and the average score
/// (concluded inspections only), findings, open, overdue and verified rectifications, self-inspections.
///
/// A community officer gets their own community's card only. With `as_of` or `at_position` the
/// cards are those of that point, and "today" (for overdue counts) is that point's date.
#[utoipa::path(
    tag = "scorecards",
    params(TenantPath, ScorecardParams, AsOfParams),
    responses(
        (status = 200, description = "社区评分卡 / community scorecards", body = [ducha_events::projection::CommunityScorecard],
         headers(("X-Ducha-Position" = u64, description = "the log position the answer was computed at"))),
    )
)]
#[get("/tenants/{tenant_id}/scorecards")]
pub async fn scorecards(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
    query: web::Query<ScorecardParams>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner().tenant_id;
    let target = state.tenant_target(&tenant)?;
    let year = year_param(query.year.as_deref())?;
    // The whole tenant, or (a community officer) only their own communities.
    let only = match authorize(&who.actor, Action::Read, &target) {
        Ok(_) => None,
        Err(e) => {
            let own = own_communities(&who.actor, &target);
            if own.is_empty() {
                return Err(e.into());
            }
            Some(own)
        }
    };
    let view = state.view(&as_of, Some(&tenant)).await?;
    let mut body = view.scorecards(&tenant, year, as_of.today);
    let position = view.position();
    drop(view);
    if let Some(own) = only {
        body.retain(|card| card.community.community_id.as_ref().is_some_and(|c| own.contains(c)));
    }
    Ok(HttpResponse::Ok().insert_header(("x-ducha-position", position)).json(body))
}
