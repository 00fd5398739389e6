//! Logging in and out, the caller's own account, and the [`Authenticated`] extractor that every
//! protected endpoint takes.
//!
//! A login is one to four steps (等保 2.0 level 3, 身份鉴别): the password (`POST /auth/login`);
//! then, as the account and the security policy need, a second-factor code
//! (`/auth/login/second-factor`), a new password (`/auth/password`: temporary or expired ones) and
//! the enrolment of a second factor (`/auth/second-factor/enrol` + `/confirm`). Each step's answer
//! carries a short-lived token good only for the next step (`next` says which); the last one an
//! access token with a server-side session. Every step is recorded in the security audit log first.

use crate::api::error::ApiError;
use crate::api::extract::{client_addr, origin};
use crate::api::state::AppState;
use crate::auth::second_factor;
use crate::auth::throttle::AccountLock;
use crate::auth::{AuthService, Claims, Issued, LoginStep, TokenFailure, TokenRejection};
use crate::commands::Meta;
use crate::security_log::{self, Entry, FAILURE, REFUSED, SUCCESS};
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, get, post, web};
use ducha_events::authz::{Actor, Role, Scope};
use ducha_events::projection::{Directory, UserEntry};
use ducha_events::security::SecurityPolicy;
use ducha_events::users::UserCommand;
// The bodies are shared with the web app, so they live in the events crate.
pub use ducha_events::api::{
    ChangePasswordRequest, GrantView, LoginRequest, LoginResponse, MeResponse, ScopeView, SecondFactorCodeRequest,
    SecondFactorEnrolled, SecondFactorEnrolment, SecondFactorStatus,
};
use std::future::Future;
use std::pin::Pin;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(login)
        .service(login_second_factor)
        .service(change_password)
        .service(second_factor_status)
        .service(enrol_second_factor)
        .service(confirm_second_factor)
        .service(logout)
        .service(me);
}

/// The caller, with the grants they hold *now* (from the live directory, not from the token).
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub actor: Actor,
    pub claims: Claims,
    pub username: String,
}

impl Authenticated {
    /// The first of the caller's roles (for the security audit log).
    pub fn role(&self) -> Option<Role> {
        self.actor.grants.iter().map(|g| g.role).min()
    }
}

/// Who made a request, kept in its extensions for the security audit log (a 403 is recorded with
/// the actor the middleware finds here).
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: ducha_events::ids::UserId,
    pub username: String,
    pub role: Option<Role>,
}

pub(crate) fn rejection(r: TokenRejection) -> ApiError {
    match r {
        TokenRejection::Expired => ApiError::unauthorized("token_expired", "登录已过期，请重新登录", "token expired"),
        TokenRejection::NotYetValid => {
            ApiError::unauthorized("token_not_yet_valid", "令牌尚未生效", "token not valid yet (nbf)")
        }
        TokenRejection::Revoked => {
            ApiError::unauthorized("token_revoked", "您已退出登录，请重新登录", "token revoked (logged out)")
        }
        TokenRejection::SessionIdle => ApiError::unauthorized(
            "session_expired",
            "长时间未操作，会话已结束，请重新登录",
            "the session ended after being idle too long",
        ),
        TokenRejection::SessionEnded => ApiError::unauthorized(
            "session_ended",
            "会话已被结束（账号被停用、密码被重置或由管理员结束），请重新登录",
            "the session was ended by an administrator's action",
        ),
        TokenRejection::WrongPurpose => ApiError::unauthorized(
            "token_wrong_purpose",
            "此令牌只能用于登录的下一步，不能访问其他功能",
            "this token is for a login step only",
        ),
        TokenRejection::Invalid => ApiError::unauthorized("token_invalid", "令牌无效，请重新登录", "invalid token"),
    }
}

/// The bearer token of a request, or the 401 for its absence or shape.
fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    bearer_token(req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))
}

/// The token of an `Authorization: Bearer …` header value, or the 401 for its absence or shape.
pub fn bearer_token(value: Option<&str>) -> Result<String, ApiError> {
    let token = match value.map(str::trim) {
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

fn policy(state: &AppState) -> SecurityPolicy {
    state.live.read().directory().security_policy()
}

/// The idle timeout in force: the policy's, or the configuration's when that is shorter.
fn idle_ms(state: &AppState) -> i64 {
    let policy = i64::from(policy(state).idle_timeout_minutes) * 60_000;
    match state.config.session_idle_seconds {
        Some(s) => policy.min(i64::try_from(s).unwrap_or(i64::MAX / 1000).saturating_mul(1000)),
        None => policy,
    }
}

async fn authenticate(state: web::Data<AppState>, token: Result<String, ApiError>) -> Result<Authenticated, ApiError> {
    let idle = idle_ms(&state);
    let claims = state.auth.validate(&token?, idle).await.map_err(|f| match f {
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
    Ok(Authenticated { actor: user.actor(), claims, username: user.username.clone() })
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        let req = req.clone();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("AppState missing"))?;
            let who = authenticate(state, token).await?;
            req.extensions_mut().insert(Caller {
                user_id: who.actor.user_id.clone(),
                username: who.username.clone(),
                role: who.role(),
            });
            Ok(who)
        })
    }
}

fn bad_credentials() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "用户名或密码错误", "wrong username or password")
}

/// Writes a security audit record; when it cannot be written, the action does not happen.
pub(crate) async fn audit(state: &AppState, entry: Entry) -> Result<(), ApiError> {
    match security_log::record(&*state.store, entry).await {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::error!(error = %e, "cannot write the security audit record: the action is refused");
            Err(ApiError::audit_unavailable())
        }
    }
}

/// A record written after the fact (the action did not happen anyway): a failure is only logged.
pub(crate) async fn audit_after(state: &AppState, entry: Entry) {
    if let Err(e) = security_log::record(&*state.store, entry).await {
        tracing::error!(error = %e, "cannot write the security audit record");
    }
}

fn roles_of(user: &UserEntry) -> Vec<Role> {
    user.grants.iter().map(|g| g.role).collect()
}

/// The login's next step for a user who has (or has not yet) given their second factor, under
/// `policy` at `now`; `None`: the login is complete.
fn next_step(
    user: &UserEntry,
    policy: &SecurityPolicy,
    gave_second_factor: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<(LoginStep, &'static str)> {
    if user.second_factor && !gave_second_factor {
        return Some((LoginStep::SecondFactor, "请输入动态验证码（两步验证）"));
    }
    if !policy.demo {
        if user.password_temporary {
            return Some((LoginStep::PasswordChange, "首次登录或密码被重置后，须先修改密码"));
        }
        let expired = user
            .password_set_at
            .as_deref()
            .and_then(|t| ducha_events::time::parse(t).ok())
            .is_some_and(|set| now - set > chrono::Duration::days(i64::from(policy.max_age_days)));
        if expired {
            return Some((LoginStep::PasswordChange, "密码已过期，须先修改密码"));
        }
        if !user.second_factor && policy.second_factor_required(&roles_of(user)) {
            return Some((LoginStep::SecondFactorEnrol, "安全策略要求此账号启用两步验证，请先绑定身份验证器"));
        }
    }
    None
}

fn login_body(issued: Issued, next: Option<(LoginStep, &'static str)>) -> LoginResponse {
    LoginResponse {
        access_token: issued.token,
        token_type: "Bearer".into(),
        expires_in: issued.expires_in,
        next: next.map(|(s, _)| s.code().to_owned()),
        next_reason: next.map(|(_, r)| r.to_owned()),
    }
}

fn login_answer(issued: Issued, next: Option<(LoginStep, &'static str)>) -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(login_body(issued, next))
}

/// Moves the login on: the next step's token, or an access token with a session. The record is
/// written first.
async fn advance(
    state: &AppState,
    user: &UserEntry,
    gave_second_factor: bool,
    entry: Entry,
) -> Result<HttpResponse, ApiError> {
    let policy = policy(state);
    let next = next_step(user, &policy, gave_second_factor, chrono::Utc::now());
    let step = next.map_or("access", |(s, _)| s.code());
    audit(state, entry.detail(format!("next: {step}"))).await?;
    let issued = match next {
        Some((step, _)) => state.auth.issue_step(user, step),
        None => state.auth.issue(user, policy.session_max_hours).await,
    }
    .map_err(|e| ApiError::internal(e.to_string()))?;
    state.metrics.login(next.is_none());
    Ok(login_answer(issued, next))
}

/// Log in with a username and password (step one).
///
/// Answers a token: an access token, or — when `next` is set — a token good only for that next
/// step (a second-factor code, a password change, a second-factor enrolment). Consecutive failures
/// lock the account (the security policy's `lockout_after`, for `lockout_minutes`, 429 with
/// `Retry-After`); many failures from one address lock that address.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    security(()),
    responses(
        (status = 200, description = "登录成功或进入下一步 / logged in, or the next step's token", body = LoginResponse),
        (status = 401, description = "用户名或密码错误，或用户已停用 / wrong credentials or disabled user",
         body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "尝试次数过多 / locked for a while; see Retry-After",
         body = crate::api::error::Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u64, description = "seconds until the lock ends"))),
        (status = 503, description = "安全审计记录无法写入，登录未进行 / the audit record could not be written",
         body = crate::api::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest { username, password } = body.into_inner();
    let from = origin(&req, state.config.trust_forwarded_for);
    if username.is_empty() || username.chars().count() > 64 || password.is_empty() || password.len() > 1024 {
        return Err(bad_credentials());
    }
    let addr = client_addr(&req, state.config.trust_forwarded_for);
    let lock = AccountLock::from(&policy(&state));
    if let Some(wait) = state.auth.throttle.locked(&username, &addr).await? {
        audit(&state, Entry::new("login_failed", REFUSED, &from).username(&username).detail("locked")).await?;
        return Err(ApiError::too_many_requests(wait.as_secs() + 1));
    }
    let user = state.live.read().directory().user_by_username(&username).cloned();
    let checked = user.clone();
    let matches = web::block(move || AuthService::password_matches(checked.as_ref(), &password)).await?;
    let user = match user {
        Some(u) if matches => u,
        found => {
            state.metrics.login(false);
            let failed = state.auth.throttle.failed(&username, &addr, Some(lock)).await?;
            let mut entry = Entry::new("login_failed", FAILURE, &from).username(&username).detail("wrong password");
            if let Some(u) = &found {
                entry = entry.user(&u.user_id, &u.username).role(roles_of(u).into_iter().min());
            }
            audit(&state, entry).await?;
            if failed.locked {
                let mut locked = Entry::new("locked_out", SUCCESS, &from).username(&username).detail(format!(
                    "{} consecutive failures: locked for {} minutes",
                    lock.after,
                    lock.lock.as_secs() / 60
                ));
                if let Some(u) = &found {
                    locked = locked.user(&u.user_id, &u.username);
                }
                audit(&state, locked).await?;
            }
            if !failed.delay.is_zero() {
                tokio::time::sleep(failed.delay).await;
            }
            return Err(bad_credentials());
        }
    };
    if user.disabled {
        state.metrics.login(false);
        let entry =
            Entry::new("login_failed", REFUSED, &from).user(&user.user_id, &user.username).detail("user disabled");
        audit(&state, entry).await?;
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "user_disabled",
            "该用户已停用，请联系管理员",
            "user is disabled",
        ));
    }
    state.auth.throttle.succeeded(&username).await?;
    let entry = Entry::new("login", SUCCESS, &from)
        .user(&user.user_id, &user.username)
        .role(roles_of(&user).into_iter().min())
        .object("password");
    advance(&state, &user, false, entry).await
}

/// The user of a login step's token (its step checked), from the live directory.
fn step_user(state: &AppState, req: &HttpRequest, step: LoginStep) -> Result<UserEntry, ApiError> {
    let claims = state.auth.validate_step(&bearer(req)?, step).map_err(rejection)?;
    let model = state.live.read();
    let user = ducha_events::ids::UserId::parse(claims.sub.as_str())
        .ok()
        .and_then(|id| model.directory().user(&id).cloned())
        .ok_or_else(|| ApiError::unauthorized("token_invalid", "令牌对应的用户不存在", "no such user"))?;
    if user.disabled {
        return Err(ApiError::unauthorized("user_disabled", "该用户已停用", "user is disabled"));
    }
    Ok(user)
}

fn invalid_code() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_second_factor",
        "动态验证码或恢复码不正确，或已使用过",
        "wrong, used or expired second-factor code",
    )
    .with_field("code")
}

/// A user's second factor with its secret opened (stored sealed under the master key, or in clear
/// where there is none).
async fn stored_second_factor(
    state: &AppState,
    user: &UserEntry,
) -> Result<Option<crate::server_state::SecondFactor>, ApiError> {
    let Some(mut sf) = state.server.second_factors.get(user.user_id.as_str()).await? else { return Ok(None) };
    if let Some(k) = &state.keys {
        sf.secret = k
            .open_secret(user.user_id.as_str(), &sf.secret)
            .ok_or_else(|| ApiError::internal("a second factor's secret does not open with this master key"))?;
    }
    Ok(Some(sf))
}

/// Checks a TOTP code (each time step once) or a recovery code (each once) of `user`; what kind
/// it was, when good.
async fn second_factor_ok(state: &AppState, user: &UserEntry, code: &str) -> Result<Option<&'static str>, ApiError> {
    let Some(sf) = stored_second_factor(state, user).await? else { return Ok(None) };
    if !sf.confirmed {
        return Ok(None);
    }
    if second_factor::looks_like_recovery_code(code) {
        let hash = second_factor::recovery_hash(code);
        let used = state.server.second_factors.use_recovery_code(user.user_id.as_str(), &hash).await?;
        return Ok(used.then_some("recovery code"));
    }
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    let step = second_factor::matching_step(&sf.secret, &user.username, code, now)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    match step {
        Some(step) if state.server.second_factors.use_step(user.user_id.as_str(), step).await? => Ok(Some("totp")),
        _ => Ok(None),
    }
}

/// Log in, step two: a second-factor code (TOTP, or one of the recovery codes, each good once).
/// Needs the `second_factor` token of step one; wrong codes count as login failures.
#[utoipa::path(
    tag = "auth",
    request_body = SecondFactorCodeRequest,
    responses(
        (status = 200, description = "进入下一步或登录成功 / the next step's token, or logged in", body = LoginResponse),
        (status = 401, description = "验证码错误或令牌无效 / wrong code, or not a second-factor step token",
         body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "尝试次数过多 / locked for a while",
         body = crate::api::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/login/second-factor")]
pub async fn login_second_factor(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<SecondFactorCodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let user = step_user(&state, &req, LoginStep::SecondFactor)?;
    let from = origin(&req, state.config.trust_forwarded_for);
    let addr = client_addr(&req, state.config.trust_forwarded_for);
    if let Some(wait) = state.auth.throttle.locked(&user.username, &addr).await? {
        return Err(ApiError::too_many_requests(wait.as_secs() + 1));
    }
    let code = body.into_inner().code;
    if code.len() > 32 {
        return Err(invalid_code());
    }
    match second_factor_ok(&state, &user, &code).await? {
        Some(kind) => {
            state.auth.throttle.succeeded(&user.username).await?;
            let entry = Entry::new("second_factor_used", SUCCESS, &from)
                .user(&user.user_id, &user.username)
                .role(roles_of(&user).into_iter().min())
                .object(kind);
            advance(&state, &user, true, entry).await
        }
        None => {
            let lock = AccountLock::from(&policy(&state));
            let failed = state.auth.throttle.failed(&user.username, &addr, Some(lock)).await?;
            let entry = Entry::new("second_factor_used", FAILURE, &from).user(&user.user_id, &user.username);
            audit(&state, entry.detail("wrong or used code")).await?;
            if failed.locked {
                audit(&state, Entry::new("locked_out", SUCCESS, &from).user(&user.user_id, &user.username)).await?;
            }
            Err(invalid_code())
        }
    }
}

/// The caller of a step that a login step's token of `step` or an access token may take: the user,
/// and whether it came as a login step.
async fn caller_or_step(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    step: LoginStep,
) -> Result<(UserEntry, bool), ApiError> {
    let token = bearer(req)?;
    if state.auth.validate_step(&token, step).is_ok() {
        return Ok((step_user(state, req, step)?, true));
    }
    let who = authenticate(state.clone(), Ok(token)).await?;
    let user = state
        .live
        .read()
        .directory()
        .user(&who.actor.user_id)
        .cloned()
        .ok_or_else(|| ApiError::unauthorized("token_invalid", "令牌对应的用户不存在", "no such user"))?;
    Ok((user, false))
}

/// Change one's own password: the current one, and a new one that meets the security policy (length,
/// three of four character classes, not the username, not one of the last passwords). Every session
/// of the account ends; the answer is a new token (or the login's next step).
#[utoipa::path(
    tag = "auth",
    request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "密码已修改 / changed; a new token", body = LoginResponse),
        (status = 422, description = "当前密码错误 / wrong_current_password; 新密码不符合安全策略 / weak_password",
         body = crate::api::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/password")]
pub async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let (user, as_step) = caller_or_step(&state, &req, LoginStep::PasswordChange).await?;
    let from = origin(&req, state.config.trust_forwarded_for);
    let ChangePasswordRequest { current_password, new_password } = body.into_inner();
    if current_password.len() > 1024 || new_password.len() > 1024 {
        return Err(ApiError::from(ducha_events::DomainError::WeakPassword {
            rule: "不能超过 1024 字节".into()
        }));
    }
    let policy = policy(&state);
    let checked = user.clone();
    let current_ok = web::block(move || AuthService::password_matches(Some(&checked), &current_password)).await?;
    if !current_ok {
        let entry = Entry::new("password_changed", FAILURE, &from).user(&user.user_id, &user.username);
        audit(&state, entry.detail("wrong current password")).await?;
        // 422, not 401: the caller is authenticated; the field is wrong.
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_current_password",
            "当前密码不正确",
            "wrong current password",
        )
        .with_field("current_password"));
    }
    ducha_events::security::check_password(&policy, &user.username, &new_password)?;
    // Not one of the last `history` passwords (an argon2 verification each: on a blocking thread).
    let history: Vec<String> = user.password_history.iter().rev().take(policy.history as usize).cloned().collect();
    let candidate = new_password.clone();
    let reused = web::block(move || history.iter().any(|h| crate::password::verify(&candidate, h))).await?;
    if reused {
        return Err(ApiError::from(ducha_events::DomainError::WeakPassword {
            rule: format!("不能与最近 {} 次使用过的密码相同", policy.history),
        }));
    }
    let hash = web::block(move || crate::password::hash(&new_password))
        .await?
        .map_err(|e| ApiError::internal(format!("cannot hash password: {e}")))?;
    let entry = Entry::new("password_changed", SUCCESS, &from)
        .user(&user.user_id, &user.username)
        .role(roles_of(&user).into_iter().min());
    audit(&state, entry).await?;
    let cmd = UserCommand::ChangeOwnPassword { user_id: user.user_id.clone(), password_hash: hash };
    let meta = Meta::new(user.actor(), chrono::Utc::now());
    let done = crate::api::users::run_own(&state, &user, &meta, cmd).await?;
    state.live.catch_up_to(&*state.store, Some(done.outcome.last_position)).await?;
    state.auth.end_sessions(user.user_id.as_str(), "password_changed").await?;
    let fresh = state.live.read().directory().user(&user.user_id).cloned().unwrap_or(user);
    // A voluntary change stays logged in; a login step goes on to what is still needed.
    let next = next_step(&fresh, &policy, true, chrono::Utc::now()).filter(|_| as_step);
    let issued = match next {
        Some((step, _)) => state.auth.issue_step(&fresh, step),
        None => state.auth.issue(&fresh, policy.session_max_hours).await,
    }
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(login_answer(issued, next))
}

/// The caller's second factor: enrolled, required by the policy, recovery codes left.
#[utoipa::path(
    tag = "auth",
    responses((status = 200, description = "两步验证状态 / second-factor status", body = SecondFactorStatus))
)]
#[get("/auth/second-factor")]
pub async fn second_factor_status(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    let (enrolled, required) = {
        let model = state.live.read();
        let dir = model.directory();
        let user = dir.user(&who.actor.user_id).ok_or_else(|| ApiError::not_found("用户", "user"))?;
        let roles: Vec<Role> = user.grants.iter().map(|g| g.role).collect();
        (user.second_factor, dir.security_policy().second_factor_required(&roles))
    };
    let left = state.server.second_factors.recovery_codes_left(who.actor.user_id.as_str()).await?;
    Ok(HttpResponse::Ok().json(SecondFactorStatus { enrolled, required, recovery_codes_left: left }))
}

/// Start enrolling a second factor (TOTP): a new secret, its `otpauth://` URI and QR code. Scan it
/// with an authenticator app, then confirm with a code. Starting again replaces an unconfirmed secret.
#[utoipa::path(
    tag = "auth",
    responses(
        (status = 200, description = "绑定信息 / what the authenticator app needs", body = SecondFactorEnrolment),
        (status = 409, description = "已绑定 / already enrolled",
         body = crate::api::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/second-factor/enrol")]
pub async fn enrol_second_factor(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (user, _) = caller_or_step(&state, &req, LoginStep::SecondFactorEnrol).await?;
    if user.second_factor {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_enrolled",
            "已绑定两步验证；如需更换，请联系系统管理员重置",
            "a second factor is enrolled already",
        ));
    }
    let secret = second_factor::new_secret().map_err(|e| ApiError::internal(e.to_string()))?;
    let (uri, svg) =
        second_factor::enrolment(&secret, &user.username).map_err(|e| ApiError::internal(e.to_string()))?;
    let stored = match &state.keys {
        Some(k) => k.seal_secret(user.user_id.as_str(), &secret).map_err(ApiError::internal)?,
        None => secret.clone(),
    };
    state.server.second_factors.begin(user.user_id.as_str(), &stored).await?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(SecondFactorEnrolment {
        secret,
        otpauth_uri: uri,
        qr_svg: svg,
    }))
}

/// Confirm the enrolment with a code from the app. Answers the recovery codes (shown once: keep
/// them offline) and, when the enrolment was a login step, the access token.
#[utoipa::path(
    tag = "auth",
    request_body = SecondFactorCodeRequest,
    responses(
        (status = 200, description = "已绑定 / enrolled", body = SecondFactorEnrolled),
        (status = 422, description = "验证码错误 / wrong code",
         body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "尚未开始绑定 / no enrolment started",
         body = crate::api::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/second-factor/confirm")]
pub async fn confirm_second_factor(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<SecondFactorCodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let (user, as_step) = caller_or_step(&state, &req, LoginStep::SecondFactorEnrol).await?;
    let from = origin(&req, state.config.trust_forwarded_for);
    let code = body.into_inner().code;
    let pending = stored_second_factor(&state, &user).await?;
    let Some(pending) = pending.filter(|p| !p.confirmed) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_enrolment",
            "请先开始绑定（获取二维码），再输入验证码",
            "start an enrolment first",
        ));
    };
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    let step = second_factor::matching_step(&pending.secret, &user.username, code.trim(), now)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let Some(step) = step else {
        audit(&state, Entry::new("second_factor_enrolled", FAILURE, &from).user(&user.user_id, &user.username)).await?;
        // 422, not 401: the caller is authenticated; the code they typed is wrong.
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_second_factor",
            "验证码不正确，请核对身份验证器上的当前验证码",
            "wrong code",
        )
        .with_field("code"));
    };
    let codes = second_factor::new_recovery_codes().map_err(|e| ApiError::internal(e.to_string()))?;
    let hashes: Vec<String> = codes.iter().map(|c| second_factor::recovery_hash(c)).collect();
    let entry = Entry::new("second_factor_enrolled", SUCCESS, &from)
        .user(&user.user_id, &user.username)
        .role(roles_of(&user).into_iter().min())
        .object("totp");
    audit(&state, entry).await?;
    let cmd = UserCommand::EnrollSecondFactor { user_id: user.user_id.clone() };
    let meta = Meta::new(user.actor(), chrono::Utc::now());
    let done = crate::api::users::run_own(&state, &user, &meta, cmd).await?;
    state.server.second_factors.confirm(user.user_id.as_str(), &hashes).await?;
    state.server.second_factors.use_step(user.user_id.as_str(), step).await?;
    state.live.catch_up_to(&*state.store, Some(done.outcome.last_position)).await?;
    let login_answer = if as_step {
        let fresh = state.live.read().directory().user(&user.user_id).cloned().unwrap_or(user);
        let issued = state
            .auth
            .issue(&fresh, policy(&state).session_max_hours)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        Some(login_body(issued, None))
    } else {
        None
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(SecondFactorEnrolled { recovery_codes: codes, login: login_answer }))
}

/// Log out: the session ends at once on every replica, for good.
#[utoipa::path(tag = "auth", responses((status = 204, description = "已退出 / session ended")))]
#[post("/auth/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let from = origin(&req, state.config.trust_forwarded_for);
    let entry = Entry::new("logout", SUCCESS, &from).user(&who.actor.user_id, &who.username).role(who.role());
    audit(&state, entry).await?;
    state.auth.revoke(&who.claims).await?;
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
        let bearer = demo.bearer("xx-duchazu1").await;
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

#[cfg(test)]
mod step_tests {
    use super::*;

    /// The login's next step under a real policy: a second factor first (when enrolled), then a
    /// temporary or expired password, then the enrolment the policy requires; under the demo's
    /// policy none of the last three.
    #[test]
    fn the_next_step_follows_the_policy() {
        use ducha_events::authz::{Grant, Scope};
        use ducha_events::projection::OwnerScope;
        let now = chrono::Utc::now();
        let days_ago = |d: i64| Some(ducha_events::time::format(&(now - chrono::Duration::days(d))));
        let user = |role: Role, temporary: bool, set_days_ago: i64, second_factor: bool| UserEntry {
            user_id: ducha_events::ids::UserId::parse("u1").unwrap(),
            username: "u1".into(),
            display_name: "用户".into(),
            password_hash: None,
            disabled: false,
            grants: vec![Grant { role, scope: Scope::Platform }],
            owner: OwnerScope::Platform,
            password_temporary: temporary,
            password_set_at: days_ago(set_days_ago),
            password_history: vec![],
            second_factor,
            phone: None,
        };
        let real = SecurityPolicy::default();
        let step = |u: &UserEntry, p: &SecurityPolicy, gave: bool| next_step(u, p, gave, now).map(|(s, _)| s);
        let inspector = Role::Inspector;
        assert_eq!(step(&user(inspector, false, 10, false), &real, false), None);
        assert_eq!(step(&user(inspector, true, 0, false), &real, false), Some(LoginStep::PasswordChange));
        // Expiry: 90 days by default; 60 when the policy says so.
        assert_eq!(step(&user(inspector, false, 91, false), &real, false), Some(LoginStep::PasswordChange));
        assert_eq!(step(&user(inspector, false, 89, false), &real, false), None);
        let sixty = SecurityPolicy { max_age_days: 60, ..SecurityPolicy::default() };
        assert_eq!(step(&user(inspector, false, 61, false), &sixty, false), Some(LoginStep::PasswordChange));
        // The second factor comes first, then the password.
        assert_eq!(step(&user(inspector, true, 0, true), &real, false), Some(LoginStep::SecondFactor));
        assert_eq!(step(&user(inspector, true, 0, true), &real, true), Some(LoginStep::PasswordChange));
        // Administrators must enrol one.
        assert_eq!(step(&user(Role::AuditAdmin, false, 1, false), &real, false), Some(LoginStep::SecondFactorEnrol));
        // The demo's policy: nothing of that, but an enrolled second factor is still asked for.
        let demo = SecurityPolicy::demo();
        assert_eq!(step(&user(Role::AuditAdmin, true, 400, false), &demo, false), None);
        assert_eq!(step(&user(Role::AuditAdmin, true, 400, true), &demo, false), Some(LoginStep::SecondFactor));
    }
}
