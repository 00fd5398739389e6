//! `POST /auth/login`, `POST /auth/logout`, `GET /me`, and the [`Authenticated`] extractor that every
//! protected endpoint takes.

use crate::api::error::ApiError;
use crate::api::extract::client_addr;
use crate::api::state::AppState;
use crate::auth::{AuthService, Claims, TokenFailure, TokenRejection};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, get, post, web};
use ducha_events::authz::{Actor, Scope};
use ducha_events::projection::Directory;
// The bodies are shared with the web app, so they live in the events crate.
pub use ducha_events::api::{GrantView, LoginRequest, LoginResponse, MeResponse, ScopeView};
use std::future::Future;
use std::pin::Pin;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(login).service(logout).service(me);
}

/// The caller, with the grants they hold *now* (from the live directory, not from the token).
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub actor: Actor,
    pub claims: Claims,
}

fn rejection(r: TokenRejection) -> ApiError {
    match r {
        TokenRejection::Expired => ApiError::unauthorized("token_expired", "登录已过期，请重新登录", "token expired"),
        TokenRejection::NotYetValid => {
            ApiError::unauthorized("token_not_yet_valid", "令牌尚未生效", "token not valid yet (nbf)")
        }
        TokenRejection::Revoked => {
            ApiError::unauthorized("token_revoked", "您已退出登录，请重新登录", "token revoked (logged out)")
        }
        TokenRejection::Invalid => ApiError::unauthorized("token_invalid", "令牌无效，请重新登录", "invalid token"),
    }
}

/// The bearer token of a request, or the 401 for its absence or shape.
fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::trim);
    let token = match value {
        None => return Err(ApiError::unauthorized("token_missing", "请先登录", "missing bearer token")),
        Some(v) => match v.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => token.trim(),
            _ => {
                return Err(ApiError::unauthorized(
                    "token_invalid",
                    "Authorization 请求头应为 Bearer 令牌",
                    "Authorization must be a Bearer token",
                ));
            }
        },
    };
    Ok(token.to_owned())
}

async fn authenticate(state: web::Data<AppState>, token: Result<String, ApiError>) -> Result<Authenticated, ApiError> {
    let claims = state.auth.validate(&token?).await.map_err(|f| match f {
        TokenFailure::Rejected(r) => rejection(r),
        TokenFailure::Unavailable(e) => ApiError::from(e),
    })?;
    let model = state.live.read();
    let user = ducha_events::ids::UserId::parse(claims.sub.as_str())
        .ok()
        .and_then(|id| model.directory().user(&id))
        .ok_or_else(|| ApiError::unauthorized("token_invalid", "令牌对应的用户不存在", "no such user"))?;
    if user.disabled {
        return Err(ApiError::unauthorized("user_disabled", "该用户已停用", "user is disabled"));
    }
    Ok(Authenticated { actor: user.actor(), claims })
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("AppState missing"))?;
            authenticate(state, token).await
        })
    }
}

fn bad_credentials() -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "用户名或密码错误",
        "wrong username or password",
    )
}

/// Log in with a username and password.
///
/// Repeated failures for one username or from one address are answered more slowly and then
/// locked for a while (429 with `Retry-After`).
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    security(()),
    responses(
        (status = 200, description = "登录成功 / logged in", body = LoginResponse),
        (status = 401, description = "用户名或密码错误，或用户已停用 / wrong credentials or disabled user",
         body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "尝试次数过多 / locked for a while; see Retry-After",
         body = crate::api::error::Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u64, description = "seconds until the lock ends"))),
    )
)]
#[post("/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest { username, password } = body.into_inner();
    if username.is_empty() || username.chars().count() > 64 || password.is_empty() || password.len() > 1024 {
        return Err(bad_credentials());
    }
    let addr = client_addr(&req, state.config.trust_forwarded_for);
    if let Some(wait) = state.auth.throttle.locked(&username, &addr).await? {
        return Err(ApiError::too_many_requests(wait.as_secs() + 1));
    }
    let user = state.live.read().directory().user_by_username(&username).cloned();
    let checked = user.clone();
    let matches = web::block(move || AuthService::password_matches(checked.as_ref(), &password)).await?;
    let user = match user {
        Some(u) if matches => u,
        _ => {
            state.metrics.login(false);
            let delay = state.auth.throttle.failed(&username, &addr).await?;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            return Err(bad_credentials());
        }
    };
    if user.disabled {
        state.metrics.login(false);
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNAUTHORIZED,
            "user_disabled",
            "该用户已停用，请联系管理员",
            "user is disabled",
        ));
    }
    state.auth.throttle.succeeded(&username).await?;
    state.metrics.login(true);
    let issued = state.auth.issue(&user).map_err(|e| ApiError::internal(e.to_string()))?;
    tracing::info!(user = %user.user_id, jti = %issued.claims.jti, "login");
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(LoginResponse {
        access_token: issued.token,
        token_type: "Bearer".into(),
        expires_in: issued.expires_in,
    }))
}

/// Log out: the token is revoked (for good, also across restarts) and cannot be used again.
#[utoipa::path(tag = "auth", responses((status = 204, description = "已退出 / token revoked")))]
#[post("/auth/logout")]
pub async fn logout(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    state.auth.revoke(&who.claims).await?;
    tracing::info!(user = %who.actor.user_id, jti = %who.claims.jti, "logout");
    Ok(HttpResponse::NoContent().finish())
}

/// A grant's scope with names for display (the type is shared with the web app).
pub fn scope_view(scope: &Scope, dir: &Directory) -> ScopeView {
    let district =
        |d: &ducha_events::ids::DistrictId| dir.district(d).map_or_else(|| d.to_string(), |e| e.name.clone());
    let tenant = |t: &ducha_events::ids::TenantId| dir.tenant(t).map_or_else(|| t.to_string(), |e| e.name.clone());
    let s = |v: &dyn std::fmt::Display| Some(v.to_string());
    match scope {
        Scope::Platform => ScopeView {
            kind: "platform".into(),
            district_id: None,
            tenant_id: None,
            community_id: None,
            name: "全平台".into(),
        },
        Scope::District { district_id } => ScopeView {
            kind: "district".into(),
            district_id: s(district_id),
            tenant_id: None,
            community_id: None,
            name: district(district_id),
        },
        Scope::Tenant { district_id, tenant_id } => ScopeView {
            kind: "tenant".into(),
            district_id: s(district_id),
            tenant_id: s(tenant_id),
            community_id: None,
            name: format!("{} / {}", district(district_id), tenant(tenant_id)),
        },
        Scope::Community { district_id, tenant_id, community_id } => {
            let community = dir
                .tenant(tenant_id)
                .and_then(|t| t.community_name(community_id))
                .map_or_else(|| community_id.to_string(), str::to_owned);
            ScopeView {
                kind: "community".into(),
                district_id: s(district_id),
                tenant_id: s(tenant_id),
                community_id: s(community_id),
                name: format!("{} / {} / {community}", district(district_id), tenant(tenant_id)),
            }
        }
    }
}

/// Who am I: the account behind the token and the grants it holds now.
#[utoipa::path(tag = "auth", responses((status = 200, description = "当前用户 / the current user", body = MeResponse)))]
#[get("/me")]
pub async fn me(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    let model = state.live.read();
    let dir = model.directory();
    let user = dir.user(&who.actor.user_id).ok_or_else(|| ApiError::not_found("用户", "user"))?;
    let body = MeResponse {
        user_id: user.user_id.to_string(),
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        grants: user
            .grants
            .iter()
            .map(|g| GrantView {
                role: g.role.code().to_owned(),
                role_name: g.role.name_zh().to_owned(),
                scope: scope_view(&g.scope, dir),
            })
            .collect(),
    };
    Ok(HttpResponse::Ok().json(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::{self, Meta};
    use actix_web::{App, test};
    use ducha_events::ids::{DistrictId, TenantId, UserId};
    use ducha_events::tenant::TenantCommand;
    use ducha_events::users::UserCommand;

    /// Grants are read from the directory on every request: a revoked role or a disabled account
    /// takes effect at once, whatever the token says.
    #[actix_web::test]
    async fn current_grants_not_token_claims_decide() {
        let dir = tempfile::tempdir().unwrap();
        let demo = crate::api::testkit::Demo::load(dir.path()).await;
        let bearer = demo.bearer("xx-duchazu1");
        let state = demo.state.clone();
        let app = test::init_service(
            App::new().app_data(web::Data::new(state.clone())).service(me).service(crate::api::dashboard::dashboard),
        )
        .await;
        let get =
            |uri: &str| test::TestRequest::get().uri(uri).insert_header(("authorization", bearer.clone())).to_request();
        let res = test::call_service(&app, get("/me")).await;
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = test::read_body_json(res).await;
        let grants = body["grants"].as_array().unwrap().clone();
        assert_eq!(grants[0]["role"], "inspector");
        assert_eq!(test::call_service(&app, get("/tenants/xxjd/dashboard")).await.status(), 200);

        // The sub-district admin revokes the inspector role: the same token now reads nothing.
        let admin = state.live.read().directory().user_by_username("xx-admin").unwrap().actor();
        let (d, t, u) = (
            DistrictId::parse("xxq").unwrap(),
            TenantId::parse("xxjd").unwrap(),
            UserId::parse("xx-duchazu1").unwrap(),
        );
        let scope = ducha_events::authz::Scope::Tenant { district_id: d.clone(), tenant_id: t.clone() };
        let revoke = TenantCommand::Users(UserCommand::RevokeRole {
            user_id: u.clone(),
            role: ducha_events::authz::Role::Inspector,
            scope,
        });
        commands::tenant(&*state.store, &Meta::new(admin.clone(), chrono::Utc::now()), &d, &t, revoke).await.unwrap();
        state.live.catch_up_to(&*state.store, None).await.unwrap();
        assert_eq!(test::call_service(&app, get("/tenants/xxjd/dashboard")).await.status(), 403);
        let body: serde_json::Value = test::read_body_json(test::call_service(&app, get("/me")).await).await;
        assert_eq!(body["grants"], serde_json::json!([]));

        // Disabled: the token stops working.
        let disable = TenantCommand::Users(UserCommand::DisableUser { user_id: u, reason: "调离".into() });
        commands::tenant(&*state.store, &Meta::new(admin, chrono::Utc::now()), &d, &t, disable).await.unwrap();
        state.live.catch_up_to(&*state.store, None).await.unwrap();
        let res = test::call_service(&app, get("/me")).await;
        assert_eq!(res.status(), 401);
        let problem: serde_json::Value = test::read_body_json(res).await;
        assert_eq!(problem["code"], "user_disabled");
        demo.store.close().await;
    }
}
