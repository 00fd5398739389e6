//! `GET /tenants/{tenant_id}/ledger`: the 整改台账 of a sub-district, filtered, sorted and paged, now or
//! as of a past point.
//!
//! A community officer may read the ledger of their own community: when the caller may not read the
//! whole tenant, the `community` filter is forced to the community they hold (see [`confine`]).
//!
//! Also home to the small query-parameter parsers the other read endpoints share, so that every bad
//! value is refused the same way: 400 problem+json naming the parameter.

use crate::api::auth::Authenticated;
use crate::api::dashboard::TenantPath;
use crate::api::error::ApiError;
use crate::api::extract::{AsOf, AsOfParams};
use crate::api::state::AppState;
use actix_web::{HttpResponse, get, web};
use ducha_events::DomainError;
use ducha_events::authz::{Action, Actor, Scope, Target, authorize, role_allows};
use ducha_events::ids::{CommunityId, InspectionId};
use ducha_events::projection::{LedgerFilter, LedgerSort, Page, RectificationStatus, WarningLevel};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::str::FromStr;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(ledger);
}

/// The largest page the ledger serves (the Excel export has no limit).
pub const MAX_PAGE_SIZE: u32 = 500;
/// The page size when none is given.
pub const DEFAULT_PAGE_SIZE: u32 = 50;

/// The ledger's filters, sort and page. Every filter is optional; all given ones must match.
/// Unknown parameters are refused (400), so a misspelt filter never silently matches everything.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LedgerParams {
    /// Only this community's findings (cross-cutting 全街道 findings have none, so never match). A
    /// community officer always gets their own community.
    #[param(value_type = Option<String>, pattern = "^[A-Za-z0-9_-]{1,64}$", example = "dongfeng")]
    pub community: Option<String>,
    /// A finding category code, e.g. `theory`.
    #[param(value_type = Option<String>, max_length = 64)]
    pub category: Option<String>,
    /// 完成情况: the rectification status.
    #[param(value_type = Option<RectificationStatus>, inline)]
    pub status: Option<String>,
    /// 预警: the warning level on the view's date (`red` = overdue).
    #[param(value_type = Option<WarningLevel>, inline)]
    pub warning: Option<String>,
    /// Only findings of this inspection.
    #[param(value_type = Option<String>, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub inspection: Option<String>,
    /// Only findings of inspections planned for this year.
    #[param(value_type = Option<i32>, minimum = 1000, maximum = 9999, example = 2023)]
    pub year: Option<String>,
    /// Row order (default `recorded`).
    #[param(value_type = Option<LedgerSort>, inline)]
    pub sort: Option<String>,
    /// The page, from 1 (default 1).
    #[param(value_type = Option<u32>, minimum = 1, example = 1)]
    pub page: Option<String>,
    /// Rows per page, 1 to 500 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500, example = 50)]
    pub page_size: Option<String>,
    /// Read by the `AsOf` extractor.
    #[param(ignore)]
    pub as_of: Option<String>,
    /// Read by the `AsOf` extractor.
    #[param(ignore)]
    pub at_position: Option<String>,
}

impl LedgerParams {
    /// The projection's filter, sort and page, or a 400 naming the first bad parameter.
    pub fn parse(&self) -> Result<(LedgerFilter, LedgerSort, Page), ApiError> {
        let filter = LedgerFilter {
            community: id_param(self.community.as_deref(), "community")?,
            category: text_param(self.category.as_deref(), "category", 64)?,
            status: enum_param(self.status.as_deref(), "status", STATUSES)?,
            warning: enum_param(self.warning.as_deref(), "warning", "red, yellow, blue, green")?,
            inspection: id_param::<InspectionId>(self.inspection.as_deref(), "inspection")?,
            year: year_param(self.year.as_deref())?,
        };
        let sort =
            enum_param(self.sort.as_deref(), "sort", "recorded, deadline, community, warning")?.unwrap_or_default();
        let page = Page {
            page: number_param(self.page.as_deref(), "page", 1, u32::MAX)?.unwrap_or(1),
            page_size: number_param(self.page_size.as_deref(), "page_size", 1, MAX_PAGE_SIZE)?
                .unwrap_or(DEFAULT_PAGE_SIZE),
        };
        Ok((filter, sort, page))
    }
}

const STATUSES: &str = "unassigned, assigned, in_progress, submitted, returned, verified, dismissed";

/// The 整改台账: one row per finding with its rectification (measure, responsible leader, unit and
/// person, deadline, progress, status, evidence, verification date) and its warning level
/// (红黄蓝绿).
///
/// With `as_of` or `at_position` the rows are those the system showed at that point, and "today"
/// (for warning levels) is that point's date in Asia/Shanghai. Sub-district staff, district officers
/// and auditors read the whole ledger; a community officer reads their own community's rows.
#[utoipa::path(
    tag = "ledger",
    params(TenantPath, LedgerParams, AsOfParams),
    responses(
        (status = 200, description = "整改台账 / the rectification ledger", body = ducha_events::projection::LedgerPage,
         headers(("X-Ducha-Position" = u64, description = "the log position the answer was computed at"))),
    )
)]
#[get("/tenants/{tenant_id}/ledger")]
pub async fn ledger(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
    query: web::Query<LedgerParams>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner().tenant_id;
    let target = state.tenant_target(&tenant)?;
    let (mut filter, sort, page) = query.parse()?;
    filter.community = confine(&who.actor, &target, filter.community)?;
    let view = state.view(&as_of, Some(&tenant)).await?;
    let body = view.ledger(&tenant, as_of.today, &state.policy, &filter, sort, page);
    let position = view.position();
    drop(view);
    Ok(HttpResponse::Ok().insert_header(("x-ducha-position", position)).json(body))
}

// ------------------------------------------------------------------ community scope

/// The community a tenant read is confined to.
///
/// - A caller who may read the whole tenant gets what they asked for (`None` = every community).
/// - Otherwise a caller who may read communities of the tenant (a community officer) must ask for
///   one of theirs, or, asking for none, gets their only one; with several they must choose (400).
/// - Anyone else: 403.
pub fn confine(actor: &Actor, tenant: &Target, asked: Option<CommunityId>) -> Result<Option<CommunityId>, ApiError> {
    let whole = authorize(actor, Action::Read, tenant);
    if whole.is_ok() {
        return Ok(asked);
    }
    if let Some(c) = asked {
        let target = Target { community_id: Some(c.clone()), ..tenant.clone() };
        authorize(actor, Action::Read, &target)?;
        return Ok(Some(c));
    }
    match own_communities(actor, tenant).as_slice() {
        [] => Err(whole.err().unwrap_or(DomainError::Forbidden { action: Action::Read }).into()),
        [one] => Ok(Some(one.clone())),
        _ => Err(ApiError::bad_request(
            "community_required",
            "您负责多个社区，请用 community 参数指定一个",
            "you hold several communities of this tenant: choose one with the community parameter",
        )
        .with_field("community")),
    }
}

/// The communities of `tenant` the actor may read through a community-scoped grant.
pub fn own_communities(actor: &Actor, tenant: &Target) -> Vec<CommunityId> {
    let mut out: Vec<CommunityId> = actor
        .grants
        .iter()
        .filter(|g| role_allows(g.role, Action::Read))
        .filter_map(|g| match &g.scope {
            Scope::Community { tenant_id, community_id, .. } if tenant.tenant_id.as_ref() == Some(tenant_id) => {
                Some(community_id.clone())
            }
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

// ------------------------------------------------------------------ query parameters

fn invalid(field: &str, zh: String, en: String) -> ApiError {
    ApiError::bad_request("invalid_query", zh, en).with_field(field)
}

/// An id parameter (`[A-Za-z0-9_-]{1,64}`).
pub fn id_param<T: TryFrom<String>>(value: Option<&str>, field: &str) -> Result<Option<T>, ApiError> {
    value
        .map(|v| {
            T::try_from(v.to_owned()).map_err(|_| {
                invalid(
                    field,
                    format!("参数 {field} 应为 1 到 64 个字母、数字、- 或 _"),
                    format!("{field} must be 1 to 64 characters from A-Z a-z 0-9 - _"),
                )
            })
        })
        .transpose()
}

/// A free-text parameter of at most `max` characters (not empty).
pub fn text_param(value: Option<&str>, field: &str, max: usize) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) => Err(invalid(
            field,
            format!("参数 {field} 应为 1 到 {max} 个字符"),
            format!("{field} must be 1 to {max} characters"),
        )),
        v => Ok(v.map(str::to_owned)),
    }
}

/// A snake_case enum parameter (`expected` lists the accepted values for the message).
pub fn enum_param<T: DeserializeOwned>(
    value: Option<&str>,
    field: &str,
    expected: &str,
) -> Result<Option<T>, ApiError> {
    value
        .map(|v| {
            serde_json::from_value(serde_json::Value::String(v.to_owned())).map_err(|_| {
                invalid(
                    field,
                    format!("参数 {field} 应为以下之一：{expected}"),
                    format!("{field} must be one of: {expected}"),
                )
            })
        })
        .transpose()
}

/// A decimal integer parameter within `min..=max`.
pub fn number_param<T: FromStr + PartialOrd + std::fmt::Display + Copy>(
    value: Option<&str>,
    field: &str,
    min: T,
    max: T,
) -> Result<Option<T>, ApiError> {
    value
        .map(|v| match v.parse::<T>() {
            Ok(n) if n >= min && n <= max && v.bytes().all(|b| b.is_ascii_digit() || b == b'-') => Ok(n),
            _ => Err(invalid(
                field,
                format!("参数 {field} 应为 {min} 到 {max} 之间的整数"),
                format!("{field} must be an integer from {min} to {max}"),
            )),
        })
        .transpose()
}

/// A `year` parameter (four digits).
pub fn year_param(value: Option<&str>) -> Result<Option<i32>, ApiError> {
    number_param(value, "year", 1000, 9999)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ducha_events::authz::{Grant, Role};
    use ducha_events::ids::{DistrictId, TenantId, UserId};

    fn params(pairs: &[(&str, &str)]) -> Result<LedgerParams, String> {
        let qs: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        web::Query::<LedgerParams>::from_query(&qs.join("&")).map(web::Query::into_inner).map_err(|e| e.to_string())
    }

    fn field_of(p: &LedgerParams) -> Option<String> {
        p.parse().err().and_then(|e| e.field.clone())
    }

    #[test]
    fn ledger_parameters_parse_with_defaults() {
        let (filter, sort, page) = params(&[]).unwrap().parse().unwrap();
        assert_eq!(
            (filter, sort, page),
            (LedgerFilter::default(), LedgerSort::Recorded, Page { page: 1, page_size: 50 })
        );
        let p = params(&[
            ("community", "dongfeng"),
            ("status", "in_progress"),
            ("warning", "red"),
            ("year", "2023"),
            ("sort", "deadline"),
            ("page", "2"),
            ("page_size", "500"),
            ("as_of", "2024-01-01T00:00:00Z"),
        ])
        .unwrap();
        let (filter, sort, page) = p.parse().unwrap();
        assert_eq!(filter.community.as_ref().map(CommunityId::as_str), Some("dongfeng"));
        assert_eq!((filter.status, filter.warning), (Some(RectificationStatus::InProgress), Some(WarningLevel::Red)));
        assert_eq!((filter.year, sort, page.page, page.page_size), (Some(2023), LedgerSort::Deadline, 2, 500));
    }

    #[test]
    fn bad_ledger_parameters_name_the_field() {
        for (k, v) in [
            ("page_size", "0"),
            ("page_size", "501"),
            ("page_size", "abc"),
            ("page_size", "+5"),
            ("page", "0"),
            ("page", "-1"),
            ("year", "23"),
            ("status", "done"),
            ("warning", "purple"),
            ("sort", "random"),
            ("community", "东风"),
            ("inspection", "a/b"),
            ("category", ""),
        ] {
            assert_eq!(field_of(&params(&[(k, v)]).unwrap()).as_deref(), Some(k), "{k}={v}");
        }
        assert!(params(&[("pagesize", "5")]).unwrap_err().contains("pagesize"));
    }

    #[test]
    fn community_officers_are_confined_to_their_community() {
        let d = DistrictId::parse("xxq").unwrap();
        let t = TenantId::parse("xxjd").unwrap();
        let c = |s: &str| CommunityId::parse(s).unwrap();
        let actor = |grants: Vec<Grant>| Actor { user_id: UserId::parse("u").unwrap(), grants };
        let officer = |cs: &[&str]| {
            actor(
                cs.iter()
                    .map(|x| Grant {
                        role: Role::CommunityOfficer,
                        scope: Scope::Community { district_id: d.clone(), tenant_id: t.clone(), community_id: c(x) },
                    })
                    .collect(),
            )
        };
        let target = Target::tenant(&d, &t);
        let admin = actor(vec![Grant {
            role: Role::SubdistrictAdmin,
            scope: Scope::Tenant { district_id: d.clone(), tenant_id: t.clone() },
        }]);
        assert_eq!(confine(&admin, &target, None).unwrap(), None);
        assert_eq!(confine(&admin, &target, Some(c("heping"))).unwrap(), Some(c("heping")));

        let one = officer(&["dongfeng"]);
        assert_eq!(confine(&one, &target, None).unwrap(), Some(c("dongfeng")));
        assert_eq!(confine(&one, &target, Some(c("dongfeng"))).unwrap(), Some(c("dongfeng")));
        assert_eq!(confine(&one, &target, Some(c("heping"))).unwrap_err().status.as_u16(), 403);
        let elsewhere = Target::tenant(&d, &TenantId::parse("yyjd").unwrap());
        assert_eq!(confine(&one, &elsewhere, None).unwrap_err().status.as_u16(), 403);

        let two = officer(&["dongfeng", "heping"]);
        assert_eq!(confine(&two, &target, None).unwrap_err().field.as_deref(), Some("community"));
        assert_eq!(confine(&two, &target, Some(c("heping"))).unwrap(), Some(c("heping")));
    }
}
