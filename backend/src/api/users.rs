//! User administration, recorded as events on the stream of the scope that owns the account:
//!
//! - a sub-district's users (admins, inspectors, community officers, auditors) under
//!   `/tenants/{tenant_id}/users`;
//! - a district's users (district officers, district auditors) under `/districts/{district_id}/users`;
//! - the platform's users (the platform admin, the three administrators, platform auditors) under
//!   `/platform/users`.
//!
//! 三员分立 (docs/SECURITY.md): accounts (create, disable, enable, unlock, reset password) are the
//! system administrator's (`ManageAccounts`), grants the security administrator's (`ManageGrants`);
//! a sub-district admin does both for its own business staff only (inspectors, community officers).
//!
//! Each has `GET` (list), `POST` (create, optionally with a first role), `GET /{user_id}`, and
//! `POST /{user_id}/disable`, `/enable`, `/password`, `/unlock`, `/roles` (grant) and
//! `/roles/revoke`. No answer ever carries a password or its hash. Usernames are unique across the
//! whole deployment, and so are user ids.

use crate::api::auth::{Authenticated, GrantView, scope_view};
use crate::api::command::{Reply, Write};
use crate::api::dashboard::TenantPath;
use crate::api::error::ApiError;
use crate::api::extract::{AsOf, AsOfParams};
use crate::api::inspections::{accepted, new_id};
use crate::api::platform::DistrictPath;
use crate::api::state::AppState;
use crate::commands::{self, CommandError, Executed, Meta};
use crate::security_log::{self, Entry};
use crate::store::AppendOutcome;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use ducha_events::DomainError;
use ducha_events::api::{CommandAccepted, CreateUserRequest, DisableUserRequest, ResetPasswordRequest, RoleRequest};
use ducha_events::authz::{Action, Role, Scope, Target, authorize};
use ducha_events::district::DistrictCommand;
use ducha_events::ids::{CommunityId, DistrictId, TenantId, UserId};
use ducha_events::platform::PlatformCommand;
use ducha_events::projection::{Directory, OwnerScope, UserEntry};
use ducha_events::tenant::TenantCommand;
use ducha_events::users::UserCommand;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_tenant_users)
        .service(get_tenant_user)
        .service(create_tenant_user)
        .service(disable_tenant_user)
        .service(enable_tenant_user)
        .service(reset_tenant_password)
        .service(set_tenant_contact)
        .service(set_district_contact)
        .service(set_platform_contact)
        .service(grant_tenant_role)
        .service(revoke_tenant_role)
        .service(list_district_users)
        .service(get_district_user)
        .service(create_district_user)
        .service(disable_district_user)
        .service(enable_district_user)
        .service(reset_district_password)
        .service(grant_district_role)
        .service(revoke_district_role)
        .service(unlock_tenant_user)
        .service(unlock_district_user)
        .service(list_platform_users)
        .service(get_platform_user)
        .service(create_platform_user)
        .service(disable_platform_user)
        .service(enable_platform_user)
        .service(reset_platform_password)
        .service(unlock_platform_user)
        .service(grant_platform_role)
        .service(revoke_platform_role)
        .service(reset_tenant_second_factor)
        .service(reset_district_second_factor)
        .service(reset_platform_second_factor);
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TenantUserPath {
    /// The sub-district (tenant) id, e.g. `xxjd`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub tenant_id: TenantId,
    /// The user id, e.g. `xx-duchazu1`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub user_id: UserId,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DistrictUserPath {
    /// The district (区) id, e.g. `xxq`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub district_id: DistrictId,
    /// The user id, e.g. `qu-xcb`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub user_id: UserId,
}

/// An account as administrators see it (never with its password hash).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    #[schema(value_type = String, example = "xx-duchazu1")]
    pub user_id: UserId,
    #[schema(example = "xx-duchazu1")]
    pub username: String,
    #[schema(example = "督查组 刘组长")]
    pub display_name: String,
    /// A disabled account cannot log in, and its tokens stop working.
    pub disabled: bool,
    /// Whether a password is set.
    pub has_password: bool,
    /// The mobile number: whole for the user and for whoever manages the account (the system
    /// administrator; a sub-district admin for its staff), masked (`138****1234`) for everyone else.
    #[schema(example = "138****1234")]
    pub phone: Option<String>,
    pub grants: Vec<GrantView>,
}

impl UserView {
    /// `manager`: the viewer manages the owner's accounts (sees phone numbers whole).
    fn of(u: &UserEntry, dir: &Directory, viewer: &Authenticated, manager: bool) -> UserView {
        let whole = manager || viewer.actor.user_id == u.user_id;
        UserView {
            user_id: u.user_id.clone(),
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            disabled: u.disabled,
            has_password: u.password_hash.is_some(),
            phone: u.phone.as_ref().map(|p| if whole { p.clone() } else { ducha_events::personal::mask_phone(p) }),
            grants: u
                .grants
                .iter()
                .map(|g| GrantView {
                    role: g.role.code().to_owned(),
                    role_name: g.role.name_zh().to_owned(),
                    scope: scope_view(&g.scope, dir),
                })
                .collect(),
        }
    }
}

// ------------------------------------------------------------------ the owner of the accounts

/// The scope that owns the accounts addressed (and whose stream records them).
#[derive(Debug, Clone)]
enum Owner {
    Tenant { district: DistrictId, tenant: TenantId },
    District(DistrictId),
    Platform,
}

impl Owner {
    /// The tenant's owner, with its district from the directory (404 for an unknown tenant).
    fn tenant(state: &AppState, tenant: TenantId) -> Result<Owner, ApiError> {
        let target = state.tenant_target(&tenant)?;
        let district = target.district_id.ok_or_else(|| ApiError::not_found("该街道", "tenant"))?;
        Ok(Owner::Tenant { district, tenant })
    }

    /// A district's owner (404 for an unknown district).
    fn district(state: &AppState, district: DistrictId) -> Result<Owner, ApiError> {
        if state.live.read().directory().district(&district).is_none() {
            return Err(ApiError::not_found("该区", "district"));
        }
        Ok(Owner::District(district))
    }

    /// The chain the commands append to.
    fn chain(&self) -> TenantId {
        match self {
            Owner::Tenant { tenant, .. } => tenant.clone(),
            Owner::District(_) | Owner::Platform => TenantId::platform(),
        }
    }

    fn owner_scope(&self) -> OwnerScope {
        match self {
            Owner::Tenant { tenant, .. } => OwnerScope::Tenant { tenant_id: tenant.clone() },
            Owner::District(d) => OwnerScope::District { district_id: d.clone() },
            Owner::Platform => OwnerScope::Platform,
        }
    }

    fn target(&self) -> Target {
        match self {
            Owner::Tenant { district, tenant } => Target::tenant(district, tenant),
            Owner::District(d) => Target::district(d),
            Owner::Platform => Target::platform(),
        }
    }

    fn users_path(&self) -> String {
        match self {
            Owner::Tenant { tenant, .. } => format!("/api/v1/tenants/{tenant}/users"),
            Owner::District(d) => format!("/api/v1/districts/{d}/users"),
            Owner::Platform => "/api/v1/platform/users".to_owned(),
        }
    }

    /// The scope of a grant of `role`: a community officer is bound to `community_id` (required
    /// then, and only then); every other role gets the owner's own scope.
    fn scope(&self, role: Role, community: Option<&CommunityId>) -> Result<Scope, ApiError> {
        match (self, role, community) {
            (Owner::Tenant { district, tenant }, Role::CommunityOfficer, Some(c)) => Ok(Scope::Community {
                district_id: district.clone(),
                tenant_id: tenant.clone(),
                community_id: c.clone(),
            }),
            (Owner::Tenant { .. }, Role::CommunityOfficer, None) => {
                Err(DomainError::invalid("community_id", "社区联络员须指定所在社区").into())
            }
            (_, _, Some(_)) => Err(DomainError::invalid("community_id", "只有社区联络员需要指定社区").into()),
            (Owner::Tenant { district, tenant }, _, None) => {
                Ok(Scope::Tenant { district_id: district.clone(), tenant_id: tenant.clone() })
            }
            (Owner::District(d), _, None) => Ok(Scope::District { district_id: d.clone() }),
            (Owner::Platform, _, None) => Ok(Scope::Platform),
        }
    }

    /// Runs one account command on the owner's aggregate.
    async fn execute(
        &self,
        store: &Arc<dyn crate::store::EventStore>,
        meta: &Meta,
        cmd: UserCommand,
    ) -> Result<Executed, CommandError> {
        match self {
            Owner::Tenant { district, tenant } => {
                commands::tenant(&**store, meta, district, tenant, TenantCommand::Users(cmd)).await
            }
            Owner::District(d) => commands::district(&**store, meta, d, DistrictCommand::Users(cmd)).await,
            Owner::Platform => commands::platform(&**store, meta, PlatformCommand::Users(cmd)).await,
        }
    }

    /// Runs `cmd` through the write path, answering about `user`; `(action, detail)` is recorded in
    /// the security audit log before the events are appended.
    async fn run(
        self,
        state: &AppState,
        write: &Write,
        request: &impl Serialize,
        user: UserId,
        cmd: UserCommand,
        (action, detail): (&'static str, String),
    ) -> Result<HttpResponse, ApiError> {
        let store = state.store.clone();
        let chain = self.chain();
        let entry = audit_entry(state, write, action, &user, detail);
        write
            .run_audited(
                state,
                &chain,
                request,
                entry,
                move |meta| async move { self.execute(&store, &meta, cmd).await },
                |done| Reply::ok(accepted(&user, done)).version(done.outcome.stream_version),
            )
            .await
    }
}

/// The security audit record of an administrator's action on an account.
fn audit_entry(state: &AppState, write: &Write, action: &'static str, user: &UserId, detail: String) -> Entry {
    let who = &write.who;
    Entry::new(action, security_log::SUCCESS, &write.origin(state.config.trust_forwarded_for))
        .user(&who.actor.user_id, &who.username)
        .role(who.role())
        .object(format!("user:{user}"))
        .detail(detail)
}

/// Runs a user's command on their own account (password change, second-factor enrolment) on the
/// aggregate that owns it. The caller has written the audit record.
pub(crate) async fn run_own(
    state: &AppState,
    user: &UserEntry,
    meta: &Meta,
    cmd: UserCommand,
) -> Result<Executed, ApiError> {
    let owner = match &user.owner {
        OwnerScope::Platform => Owner::Platform,
        OwnerScope::District { district_id } => Owner::District(district_id.clone()),
        OwnerScope::Tenant { tenant_id } => Owner::tenant(state, tenant_id.clone())?,
    };
    owner.execute(&state.store, meta, cmd).await.map_err(ApiError::from)
}

/// Ends every session of a user after an administrator's action (best effort, logged: the action is
/// done; a session it could not end still expires).
async fn end_sessions(state: &AppState, user: &UserId, reason: &str) {
    if let Err(e) = state.auth.end_sessions(user.as_str(), reason).await {
        tracing::error!(error = %e, user = %user, "cannot end the user's sessions");
    }
}

/// A password an administrator sets (a new account's, a reset) meets the security policy too: it is
/// temporary, but it is still a password (422 `weak_password` naming the rule).
fn check_password(state: &AppState, username: &str, password: &str) -> Result<(), ApiError> {
    let policy = state.live.read().directory().security_policy();
    ducha_events::security::check_password(&policy, username, password).map_err(ApiError::from)
}

/// argon2id on a blocking thread (it takes tens of milliseconds on purpose).
async fn hash_password(password: String) -> Result<String, ApiError> {
    web::block(move || crate::password::hash(&password))
        .await?
        .map_err(|e| ApiError::internal(format!("cannot hash password: {e}")))
}

fn already_exists(what: String) -> ApiError {
    DomainError::AlreadyExists { what }.into()
}

// ------------------------------------------------------------------ the shared handlers

async fn list_users(
    state: &AppState,
    who: &Authenticated,
    owner: &Owner,
    as_of: &AsOf,
) -> Result<HttpResponse, ApiError> {
    authorize(&who.actor, Action::ReadDirectory, &owner.target())?;
    let view = state.view(as_of, Some(&owner.chain())).await?;
    let dir = view.directory();
    let owner_scope = owner.owner_scope();
    let manager = authorize(&who.actor, Action::ManageAccounts, &owner.target()).is_ok();
    let body: Vec<UserView> = dir.users_owned_by(&owner_scope).map(|u| UserView::of(u, dir, who, manager)).collect();
    drop(view);
    Ok(HttpResponse::Ok().json(body))
}

async fn get_user(
    state: &AppState,
    who: &Authenticated,
    owner: &Owner,
    user: &UserId,
    as_of: &AsOf,
) -> Result<HttpResponse, ApiError> {
    authorize(&who.actor, Action::ReadDirectory, &owner.target())?;
    let view = state.view(as_of, Some(&owner.chain())).await?;
    let dir = view.directory();
    let body = dir
        .user(user)
        .filter(|u| u.owner == owner.owner_scope())
        .map(|u| UserView::of(u, dir, who, authorize(&who.actor, Action::ManageAccounts, &owner.target()).is_ok()))
        .ok_or_else(|| ApiError::not_found("该用户", "user"))?;
    drop(view);
    Ok(HttpResponse::Ok().json(body))
}

/// What identifies a create request for idempotent retries: the body without the password (which
/// must never be stored, not even hashed without salt).
#[derive(Serialize)]
struct CreateFingerprint<'a> {
    user_id: &'a Option<UserId>,
    username: &'a str,
    display_name: &'a str,
    role: Option<Role>,
    community_id: &'a Option<CommunityId>,
}

async fn create_user(
    state: &AppState,
    write: &Write,
    owner: Owner,
    body: CreateUserRequest,
) -> Result<HttpResponse, ApiError> {
    // Checked here, before the checks below, so that no one outside the scope learns which
    // usernames exist, and before the (deliberately slow) hashing; `decide` checks it again. A first
    // role needs the right to grant it too.
    authorize(&write.who.actor, Action::ManageAccounts, &owner.target())?;
    let scope = match body.role {
        Some(role) => {
            authorize(&write.who.actor, Action::ManageGrants, &owner.target())?;
            let scope = owner.scope(role, body.community_id.as_ref())?;
            if !scope.fits(role) {
                return Err(DomainError::invalid("role", format!("此处不能授予“{}”角色", role.name_zh())).into());
            }
            Some((role, scope))
        }
        None if body.community_id.is_some() => {
            return Err(DomainError::invalid("community_id", "只有社区联络员需要指定社区").into());
        }
        None => None,
    };
    check_password(state, &body.username, &body.password)?;
    let user_id = {
        let model = state.live.read();
        let dir = model.directory();
        if let (Owner::Tenant { tenant, .. }, Some((_, Scope::Community { community_id, .. }))) = (&owner, &scope)
            && dir.tenant(tenant).and_then(|t| t.community_name(community_id)).is_none()
        {
            return Err(ApiError::not_found(&format!("社区“{community_id}”"), "community").with_field("community_id"));
        }
        let existing = dir.user_by_username(&body.username);
        // The id: the client's; else the username when it is an id and free (or already this
        // username's: a retry); else a generated one.
        let user_id = match &body.user_id {
            Some(id) => id.clone(),
            None => match UserId::parse(body.username.as_str()) {
                Ok(id)
                    if !id.as_str().starts_with('_') && dir.user(&id).is_none_or(|u| u.username == body.username) =>
                {
                    id
                }
                _ => UserId::parse(new_id(write, &owner.chain(), "user"))
                    .map_err(|_| ApiError::internal("generated id rejected"))?,
            },
        };
        // A retry with the same Idempotency-Key finds its own account: let it through to be answered
        // with the first reply.
        let retry =
            write.key.0.is_some() && existing.is_some_and(|u| u.user_id == user_id && u.owner == owner.owner_scope());
        // The directory keys accounts by id and username across every scope; an aggregate sees only
        // its own accounts, so global uniqueness is checked here.
        if !retry {
            if existing.is_some() {
                return Err(already_exists(format!("用户名“{}”", body.username)).with_field("username"));
            }
            if dir.user(&user_id).is_some() {
                return Err(already_exists(format!("用户“{user_id}”")).with_field("user_id"));
            }
        }
        user_id
    };
    let password_hash = hash_password(body.password.clone()).await?;
    let fingerprint = CreateFingerprint {
        user_id: &body.user_id,
        username: &body.username,
        display_name: &body.display_name,
        role: body.role,
        community_id: &body.community_id,
    };
    let create = UserCommand::CreateUser {
        user_id: user_id.clone(),
        username: body.username.clone(),
        display_name: body.display_name.clone(),
        password_hash,
    };
    let grant = scope.map(|(role, scope)| UserCommand::GrantRole { user_id: user_id.clone(), role, scope });
    let store = state.store.clone();
    let location = format!("{}/{user_id}", owner.users_path());
    let chain = owner.chain();
    let id = user_id.clone();
    let detail = match &grant {
        Some(UserCommand::GrantRole { role, scope, .. }) => {
            format!("username {}; role {} {}", body.username, role.code(), crate::auth::scope_descriptor(scope))
        }
        _ => format!("username {}", body.username),
    };
    let entry = audit_entry(state, write, "account_created", &user_id, detail);
    write
        .run_audited(
            state,
            &chain,
            &fingerprint,
            entry,
            move |meta| async move {
                let created = owner.execute(&store, &meta, create).await?;
                let Some(grant) = grant else { return Ok(created) };
                // The grant is a second command on the same stream: its own idempotency key (the
                // store would otherwise answer it with the creation's outcome) and, when the client
                // gave `If-Match`, the version the creation left.
                let mut then = meta.clone();
                then.idempotency_key = meta.idempotency_key.as_ref().map(|k| format!("{k}#grant"));
                then.expected_version = meta.expected_version.map(|_| created.outcome.stream_version);
                let granted = owner.execute(&store, &then, grant).await.map_err(|e| match e {
                    CommandError::Domain(e) => CommandError::Domain(DomainError::invalid(
                        "role",
                        format!("用户“{id}”已创建，但授予角色失败（{}），请通过 roles 接口重新授予", e.message_zh()),
                    )),
                    other => other,
                })?;
                Ok(Executed {
                    outcome: AppendOutcome {
                        first_position: if created.outcome.first_position > 0 {
                            created.outcome.first_position
                        } else {
                            granted.outcome.first_position
                        },
                        ..granted.outcome
                    },
                    events: created.events + granted.events,
                })
            },
            |done| Reply::created(accepted(&user_id, done), location).version(done.outcome.stream_version),
        )
        .await
}

async fn disable_user(
    state: &AppState,
    write: &Write,
    owner: Owner,
    user: UserId,
    body: DisableUserRequest,
) -> Result<HttpResponse, ApiError> {
    let cmd = UserCommand::DisableUser { user_id: user.clone(), reason: body.reason.clone() };
    let detail = body.reason.clone();
    let answer = owner.run(state, write, &body, user.clone(), cmd, ("account_disabled", detail)).await?;
    end_sessions(state, &user, "disabled").await;
    Ok(answer)
}

async fn enable_user(state: &AppState, write: &Write, owner: Owner, user: UserId) -> Result<HttpResponse, ApiError> {
    let cmd = UserCommand::EnableUser { user_id: user.clone() };
    owner.run(state, write, &(), user, cmd, ("account_enabled", String::new())).await
}

/// A mobile number for an account (empty: remove it).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactRequest {
    /// 5 to 20 characters: digits, `+`, `-`, spaces; `""` removes the number.
    #[schema(example = "13812341234")]
    pub phone: String,
}

async fn set_contact(
    state: &AppState,
    write: &Write,
    owner: Owner,
    user: UserId,
    body: ContactRequest,
) -> Result<HttpResponse, ApiError> {
    authorize(&write.who.actor, Action::ManageAccounts, &owner.target())?;
    let exists = state.live.read().directory().user(&user).is_some_and(|u| u.owner == owner.owner_scope());
    if !exists {
        return Err(ApiError::not_found("该用户", "user"));
    }
    let phone = body.phone.trim().to_owned();
    if !phone.is_empty() && ducha_events::personal::valid_phone(&phone).is_none() {
        return Err(DomainError::invalid("phone", "手机号应为 5 到 20 位数字（可含 +、- 和空格）").into());
    }
    // The record names the number masked: the security log is read by the audit administrator.
    let detail = if phone.is_empty() { "removed".to_owned() } else { ducha_events::personal::mask_phone(&phone) };
    let cmd = UserCommand::SetContact { user_id: user.clone(), phone };
    owner.run(state, write, &body, user, cmd, ("account_contact_changed", detail)).await
}

async fn reset_password(
    state: &AppState,
    write: &Write,
    owner: Owner,
    user: UserId,
    body: ResetPasswordRequest,
) -> Result<HttpResponse, ApiError> {
    authorize(&write.who.actor, Action::ManageAccounts, &owner.target())?;
    let username = state
        .live
        .read()
        .directory()
        .user(&user)
        .filter(|u| u.owner == owner.owner_scope())
        .map(|u| u.username.clone())
        .ok_or_else(|| ApiError::not_found("该用户", "user"))?;
    check_password(state, &username, &body.password)?;
    let password_hash = hash_password(body.password).await?;
    let cmd = UserCommand::SetPassword { user_id: user.clone(), password_hash };
    // Identified without the password (see `CreateFingerprint`).
    let detail = "temporary: changed at the next login".to_owned();
    let answer = owner.run(state, write, &"password", user.clone(), cmd, ("password_reset", detail)).await?;
    end_sessions(state, &user, "password_reset").await;
    Ok(answer)
}

async fn reset_second_factor(
    state: &AppState,
    write: &Write,
    owner: Owner,
    user: UserId,
    body: DisableUserRequest,
) -> Result<HttpResponse, ApiError> {
    let cmd = UserCommand::ResetSecondFactor { user_id: user.clone(), reason: body.reason.clone() };
    let detail = body.reason.clone();
    let answer = owner.run(state, write, &body, user.clone(), cmd, ("second_factor_reset", detail)).await?;
    state.server.second_factors.remove(user.as_str()).await?;
    end_sessions(state, &user, "second_factor_reset").await;
    Ok(answer)
}

async fn change_role(
    state: &AppState,
    write: &Write,
    owner: Owner,
    user: UserId,
    body: RoleRequest,
    grant: bool,
) -> Result<HttpResponse, ApiError> {
    let scope = owner.scope(body.role, body.community_id.as_ref())?;
    let detail = format!("{} {}", body.role.code(), crate::auth::scope_descriptor(&scope));
    let (cmd, action) = if grant {
        (UserCommand::GrantRole { user_id: user.clone(), role: body.role, scope }, "role_granted")
    } else {
        (UserCommand::RevokeRole { user_id: user.clone(), role: body.role, scope }, "role_revoked")
    };
    owner.run(state, write, &body, user, cmd, (action, detail)).await
}

// ------------------------------------------------------------------ sub-district users

/// A sub-district's accounts with their roles (no password hashes).
#[utoipa::path(
    tag = "users",
    params(TenantPath, AsOfParams),
    responses((status = 200, description = "街道用户 / the sub-district's users", body = Vec<UserView>))
)]
#[get("/tenants/{tenant_id}/users")]
pub async fn list_tenant_users(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let owner = Owner::tenant(&state, path.into_inner().tenant_id)?;
    list_users(&state, &who, &owner, &as_of).await
}

/// One account of a sub-district.
#[utoipa::path(
    tag = "users",
    params(TenantUserPath, AsOfParams),
    responses((status = 200, description = "用户 / the user", body = UserView))
)]
#[get("/tenants/{tenant_id}/users/{user_id}")]
pub async fn get_tenant_user(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantUserPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let TenantUserPath { tenant_id, user_id } = path.into_inner();
    let owner = Owner::tenant(&state, tenant_id)?;
    get_user(&state, &who, &owner, &user_id, &as_of).await
}

/// 新建用户 with one role (`community_id` binds a community officer). The username must be unused
/// anywhere in the deployment; the password needs at least 8 characters.
#[utoipa::path(
    tag = "users",
    params(TenantPath),
    request_body = CreateUserRequest,
    responses((status = 201, description = "用户已创建 / user created", body = CommandAccepted,
               headers(("Location" = String, description = "the new user"),
                       ("ETag" = String, description = "the sub-district aggregate's version"))))
)]
#[post("/tenants/{tenant_id}/users")]
pub async fn create_tenant_user(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<TenantPath>,
    body: web::Json<CreateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let owner = Owner::tenant(&state, path.into_inner().tenant_id)?;
    create_user(&state, &write, owner, body.into_inner()).await
}

/// 停用用户: they can no longer log in and their tokens stop working at once.
#[utoipa::path(
    tag = "users",
    params(TenantUserPath),
    request_body = DisableUserRequest,
    responses((status = 200, description = "已停用 / disabled", body = CommandAccepted))
)]
#[post("/tenants/{tenant_id}/users/{user_id}/disable")]
pub async fn disable_tenant_user(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<TenantUserPath>,
    body: web::Json<DisableUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let TenantUserPath { tenant_id, user_id } = path.into_inner();
    let owner = Owner::tenant(&state, tenant_id)?;
    disable_user(&state, &write, owner, user_id, body.into_inner()).await
}

/// 启用用户.
#[utoipa::path(
    tag = "users",
    params(TenantUserPath),
    responses((status = 200, description = "已启用 / enabled", body = CommandAccepted))
)]
#[post("/tenants/{tenant_id}/users/{user_id}/enable")]
pub async fn enable_tenant_user(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<TenantUserPath>,
) -> Result<HttpResponse, ApiError> {
    let TenantUserPath { tenant_id, user_id } = path.into_inner();
    let owner = Owner::tenant(&state, tenant_id)?;
    enable_user(&state, &write, owner, user_id).await
}

/// 重置密码 (at least 8 characters).
#[utoipa::path(
    tag = "users",
    params(TenantUserPath),
    request_body = ResetPasswordRequest,
    responses((status = 200, description = "密码已重置 / password reset", body = CommandAccepted))
)]
#[post("/tenants/{tenant_id}/users/{user_id}/password")]
pub async fn reset_tenant_password(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<TenantUserPath>,
    body: web::Json<ResetPasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let TenantUserPath { tenant_id, user_id } = path.into_inner();
    let owner = Owner::tenant(&state, tenant_id)?;
    reset_password(&state, &write, owner, user_id, body.into_inner()).await
}

/// 授予角色 in the sub-district (`community_id` binds a community officer to a community).
#[utoipa::path(
    tag = "users",
    params(TenantUserPath),
    request_body = RoleRequest,
    responses((status = 200, description = "已授予 / granted (or already held)", body = CommandAccepted))
)]
#[post("/tenants/{tenant_id}/users/{user_id}/roles")]
pub async fn grant_tenant_role(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<TenantUserPath>,
    body: web::Json<RoleRequest>,
) -> Result<HttpResponse, ApiError> {
    let TenantUserPath { tenant_id, user_id } = path.into_inner();
    let owner = Owner::tenant(&state, tenant_id)?;
    change_role(&state, &write, owner, user_id, body.into_inner(), true).await
}

/// 撤销角色.
#[utoipa::path(
    tag = "users",
    params(TenantUserPath),
    request_body = RoleRequest,
    responses((status = 200, description = "已撤销 / revoked", body = CommandAccepted))
)]
#[post("/tenants/{tenant_id}/users/{user_id}/roles/revoke")]
pub async fn revoke_tenant_role(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<TenantUserPath>,
    body: web::Json<RoleRequest>,
) -> Result<HttpResponse, ApiError> {
    let TenantUserPath { tenant_id, user_id } = path.into_inner();
    let owner = Owner::tenant(&state, tenant_id)?;
    change_role(&state, &write, owner, user_id, body.into_inner(), false).await
}

// ------------------------------------------------------------------ district users

/// A district's accounts (district officers, district auditors) with their roles.
#[utoipa::path(
    tag = "users",
    params(DistrictPath, AsOfParams),
    responses((status = 200, description = "区用户 / the district's users", body = Vec<UserView>))
)]
#[get("/districts/{district_id}/users")]
pub async fn list_district_users(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<DistrictPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let owner = Owner::district(&state, path.into_inner().district_id)?;
    list_users(&state, &who, &owner, &as_of).await
}

/// One account of a district.
#[utoipa::path(
    tag = "users",
    params(DistrictUserPath, AsOfParams),
    responses((status = 200, description = "用户 / the user", body = UserView))
)]
#[get("/districts/{district_id}/users/{user_id}")]
pub async fn get_district_user(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<DistrictUserPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    let DistrictUserPath { district_id, user_id } = path.into_inner();
    let owner = Owner::district(&state, district_id)?;
    get_user(&state, &who, &owner, &user_id, &as_of).await
}

/// 新建区用户 (platform admins): a district officer or auditor of this district.
#[utoipa::path(
    tag = "users",
    params(DistrictPath),
    request_body = CreateUserRequest,
    responses((status = 201, description = "用户已创建 / user created", body = CommandAccepted,
               headers(("Location" = String, description = "the new user"),
                       ("ETag" = String, description = "the district aggregate's version"))))
)]
#[post("/districts/{district_id}/users")]
pub async fn create_district_user(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<DistrictPath>,
    body: web::Json<CreateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let owner = Owner::district(&state, path.into_inner().district_id)?;
    create_user(&state, &write, owner, body.into_inner()).await
}

/// 停用区用户.
#[utoipa::path(
    tag = "users",
    params(DistrictUserPath),
    request_body = DisableUserRequest,
    responses((status = 200, description = "已停用 / disabled", body = CommandAccepted))
)]
#[post("/districts/{district_id}/users/{user_id}/disable")]
pub async fn disable_district_user(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<DistrictUserPath>,
    body: web::Json<DisableUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let DistrictUserPath { district_id, user_id } = path.into_inner();
    let owner = Owner::district(&state, district_id)?;
    disable_user(&state, &write, owner, user_id, body.into_inner()).await
}

/// 启用区用户.
#[utoipa::path(
    tag = "users",
    params(DistrictUserPath),
    responses((status = 200, description = "已启用 / enabled", body = CommandAccepted))
)]
#[post("/districts/{district_id}/users/{user_id}/enable")]
pub async fn enable_district_user(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<DistrictUserPath>,
) -> Result<HttpResponse, ApiError> {
    let DistrictUserPath { district_id, user_id } = path.into_inner();
    let owner = Owner::district(&state, district_id)?;
    enable_user(&state, &write, owner, user_id).await
}

/// 重置区用户密码.
#[utoipa::path(
    tag = "users",
    params(DistrictUserPath),
    request_body = ResetPasswordRequest,
    responses((status = 200, description = "密码已重置 / password reset", body = CommandAccepted))
)]
#[post("/districts/{district_id}/users/{user_id}/password")]
pub async fn reset_district_password(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<DistrictUserPath>,
    body: web::Json<ResetPasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let DistrictUserPath { district_id, user_id } = path.into_inner();
    let owner = Owner::district(&state, district_id)?;
    reset_password(&state, &write, owner, user_id, body.into_inner()).await
}

/// 授予区范围角色 (district officer, auditor).
#[utoipa::path(
    tag = "users",
    params(DistrictUserPath),
    request_body = RoleRequest,
    responses((status = 200, description = "已授予 / granted (or already held)", body = CommandAccepted))
)]
#[post("/districts/{district_id}/users/{user_id}/roles")]
pub async fn grant_district_role(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<DistrictUserPath>,
    body: web::Json<RoleRequest>,
) -> Result<HttpResponse, ApiError> {
    let DistrictUserPath { district_id, user_id } = path.into_inner();
    let owner = Owner::district(&state, district_id)?;
    change_role(&state, &write, owner, user_id, body.into_inner(), true).await
}

/// 撤销区范围角色.
#[utoipa::path(
    tag = "users",
    params(DistrictUserPath),
    request_body = RoleRequest,
    responses((status = 200, description = "已撤销 / revoked", body = CommandAccepted))
)]
#[post("/districts/{district_id}/users/{user_id}/roles/revoke")]
pub async fn revoke_district_role(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<DistrictUserPath>,
    body: web::Json<RoleRequest>,
) -> Result<HttpResponse, ApiError> {
    let DistrictUserPath { district_id, user_id } = path.into_inner();
    let owner = Owner::district(&state, district_id)?;
    change_role(&state, &write, owner, user_id, body.into_inner(), false).await
}

// ------------------------------------------------------------------ unlocking

/// Ends a lockout (login failures of the username), answering `{"unlocked": true}`.
async fn unlock_user(
    state: &AppState,
    who: &Authenticated,
    req: &HttpRequest,
    owner: Owner,
    user: UserId,
) -> Result<HttpResponse, ApiError> {
    authorize(&who.actor, Action::ManageAccounts, &owner.target())?;
    let username = {
        let model = state.live.read();
        model
            .directory()
            .user(&user)
            .filter(|u| u.owner == owner.owner_scope())
            .map(|u| u.username.clone())
            .ok_or_else(|| ApiError::not_found("该用户", "user"))?
    };
    let from = crate::api::extract::origin(req, state.config.trust_forwarded_for);
    let entry = Entry::new("unlock", security_log::SUCCESS, &from)
        .user(&who.actor.user_id, &who.username)
        .role(who.role())
        .object(format!("user:{user}"));
    crate::api::auth::audit(state, entry).await?;
    state.server.logins.clear(crate::server_state::FailureKind::Username, &username).await?;
    Ok(HttpResponse::Ok().json(Unlocked { user_id: user, unlocked: true }))
}

/// The answer to an unlock.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Unlocked {
    #[schema(value_type = String)]
    pub user_id: UserId,
    pub unlocked: bool,
}

/// 解除锁定 (系统管理员, or the sub-district admin for its staff): the username's login failures are
/// forgotten, so the account can log in again at once. The per-address throttling stays.
#[utoipa::path(
    tag = "users",
    params(TenantUserPath),
    responses((status = 200, description = "已解除锁定 / unlocked", body = Unlocked))
)]
#[post("/tenants/{tenant_id}/users/{user_id}/unlock")]
pub async fn unlock_tenant_user(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    path: web::Path<TenantUserPath>,
) -> Result<HttpResponse, ApiError> {
    let TenantUserPath { tenant_id, user_id } = path.into_inner();
    let owner = Owner::tenant(&state, tenant_id)?;
    unlock_user(&state, &who, &req, owner, user_id).await
}

/// 解除区用户锁定.
#[utoipa::path(
    tag = "users",
    params(DistrictUserPath),
    responses((status = 200, description = "已解除锁定 / unlocked", body = Unlocked))
)]
#[post("/districts/{district_id}/users/{user_id}/unlock")]
pub async fn unlock_district_user(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    path: web::Path<DistrictUserPath>,
) -> Result<HttpResponse, ApiError> {
    let DistrictUserPath { district_id, user_id } = path.into_inner();
    let owner = Owner::district(&state, district_id)?;
    unlock_user(&state, &who, &req, owner, user_id).await
}

// ------------------------------------------------------------------ platform users

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PlatformUserPath {
    /// The user id, e.g. `sysadmin`.
    #[param(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub user_id: UserId,
}

/// The platform's accounts (the platform admin, the three administrators, platform auditors).
#[utoipa::path(
    tag = "users",
    params(AsOfParams),
    responses((status = 200, description = "平台用户 / the platform's users", body = Vec<UserView>))
)]
#[get("/platform/users")]
pub async fn list_platform_users(
    state: web::Data<AppState>,
    who: Authenticated,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    list_users(&state, &who, &Owner::Platform, &as_of).await
}

/// One platform account.
#[utoipa::path(
    tag = "users",
    params(PlatformUserPath, AsOfParams),
    responses((status = 200, description = "用户 / the user", body = UserView))
)]
#[get("/platform/users/{user_id}")]
pub async fn get_platform_user(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<PlatformUserPath>,
    as_of: AsOf,
) -> Result<HttpResponse, ApiError> {
    get_user(&state, &who, &Owner::Platform, &path.into_inner().user_id, &as_of).await
}

/// 新建平台账号 (系统管理员). A first `role` needs the right to grant it (安全管理员): the system
/// administrator creates the account without one.
#[utoipa::path(
    tag = "users",
    request_body = CreateUserRequest,
    responses((status = 201, description = "用户已创建 / user created", body = CommandAccepted,
               headers(("Location" = String, description = "the new user"),
                       ("ETag" = String, description = "the platform aggregate's version"))))
)]
#[post("/platform/users")]
pub async fn create_platform_user(
    state: web::Data<AppState>,
    write: Write,
    body: web::Json<CreateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    create_user(&state, &write, Owner::Platform, body.into_inner()).await
}

/// 停用平台账号.
#[utoipa::path(
    tag = "users",
    params(PlatformUserPath),
    request_body = DisableUserRequest,
    responses((status = 200, description = "已停用 / disabled", body = CommandAccepted))
)]
#[post("/platform/users/{user_id}/disable")]
pub async fn disable_platform_user(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<PlatformUserPath>,
    body: web::Json<DisableUserRequest>,
) -> Result<HttpResponse, ApiError> {
    disable_user(&state, &write, Owner::Platform, path.into_inner().user_id, body.into_inner()).await
}

/// 启用平台账号.
#[utoipa::path(
    tag = "users",
    params(PlatformUserPath),
    responses((status = 200, description = "已启用 / enabled", body = CommandAccepted))
)]
#[post("/platform/users/{user_id}/enable")]
pub async fn enable_platform_user(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<PlatformUserPath>,
) -> Result<HttpResponse, ApiError> {
    enable_user(&state, &write, Owner::Platform, path.into_inner().user_id).await
}

/// 重置平台账号密码.
#[utoipa::path(
    tag = "users",
    params(PlatformUserPath),
    request_body = ResetPasswordRequest,
    responses((status = 200, description = "密码已重置 / password reset", body = CommandAccepted))
)]
#[post("/platform/users/{user_id}/password")]
pub async fn reset_platform_password(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<PlatformUserPath>,
    body: web::Json<ResetPasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    reset_password(&state, &write, Owner::Platform, path.into_inner().user_id, body.into_inner()).await
}

/// 解除平台账号锁定.
#[utoipa::path(
    tag = "users",
    params(PlatformUserPath),
    responses((status = 200, description = "已解除锁定 / unlocked", body = Unlocked))
)]
#[post("/platform/users/{user_id}/unlock")]
pub async fn unlock_platform_user(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    path: web::Path<PlatformUserPath>,
) -> Result<HttpResponse, ApiError> {
    unlock_user(&state, &who, &req, Owner::Platform, path.into_inner().user_id).await
}

/// 授予平台范围角色 (安全管理员): the platform admin, the three administrators, a platform auditor.
#[utoipa::path(
    tag = "users",
    params(PlatformUserPath),
    request_body = RoleRequest,
    responses((status = 200, description = "已授予 / granted (or already held)", body = CommandAccepted))
)]
#[post("/platform/users/{user_id}/roles")]
pub async fn grant_platform_role(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<PlatformUserPath>,
    body: web::Json<RoleRequest>,
) -> Result<HttpResponse, ApiError> {
    change_role(&state, &write, Owner::Platform, path.into_inner().user_id, body.into_inner(), true).await
}

/// 撤销平台范围角色.
#[utoipa::path(
    tag = "users",
    params(PlatformUserPath),
    request_body = RoleRequest,
    responses((status = 200, description = "已撤销 / revoked", body = CommandAccepted))
)]
#[post("/platform/users/{user_id}/roles/revoke")]
pub async fn revoke_platform_role(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<PlatformUserPath>,
    body: web::Json<RoleRequest>,
) -> Result<HttpResponse, ApiError> {
    change_role(&state, &write, Owner::Platform, path.into_inner().user_id, body.into_inner(), false).await
}

// ------------------------------------------------------------------ second factors

/// 重置两步验证 (系统管理员, or the sub-district admin for its staff): the user lost their phone. The
/// second factor is removed and every session of the user ends; they enrol again at the next login.
#[utoipa::path(
    tag = "users",
    params(TenantUserPath),
    request_body = DisableUserRequest,
    responses((status = 200, description = "已重置 / reset", body = CommandAccepted))
)]
#[post("/tenants/{tenant_id}/users/{user_id}/second-factor/reset")]
pub async fn reset_tenant_second_factor(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<TenantUserPath>,
    body: web::Json<DisableUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let TenantUserPath { tenant_id, user_id } = path.into_inner();
    let owner = Owner::tenant(&state, tenant_id)?;
    reset_second_factor(&state, &write, owner, user_id, body.into_inner()).await
}

/// 重置区用户两步验证.
#[utoipa::path(
    tag = "users",
    params(DistrictUserPath),
    request_body = DisableUserRequest,
    responses((status = 200, description = "已重置 / reset", body = CommandAccepted))
)]
#[post("/districts/{district_id}/users/{user_id}/second-factor/reset")]
pub async fn reset_district_second_factor(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<DistrictUserPath>,
    body: web::Json<DisableUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let DistrictUserPath { district_id, user_id } = path.into_inner();
    let owner = Owner::district(&state, district_id)?;
    reset_second_factor(&state, &write, owner, user_id, body.into_inner()).await
}

/// 重置平台账号两步验证.
#[utoipa::path(
    tag = "users",
    params(PlatformUserPath),
    request_body = DisableUserRequest,
    responses((status = 200, description = "已重置 / reset", body = CommandAccepted))
)]
#[post("/platform/users/{user_id}/second-factor/reset")]
pub async fn reset_platform_second_factor(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<PlatformUserPath>,
    body: web::Json<DisableUserRequest>,
) -> Result<HttpResponse, ApiError> {
    reset_second_factor(&state, &write, Owner::Platform, path.into_inner().user_id, body.into_inner()).await
}

/// 设置手机号 of a sub-district account (personal data: sealed in the log, masked for most viewers).
#[utoipa::path(
    tag = "users",
    params(TenantUserPath),
    request_body = ContactRequest,
    responses((status = 200, description = "已设置 / set", body = CommandAccepted))
)]
#[post("/tenants/{tenant_id}/users/{user_id}/contact")]
pub async fn set_tenant_contact(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<TenantUserPath>,
    body: web::Json<ContactRequest>,
) -> Result<HttpResponse, ApiError> {
    let TenantUserPath { tenant_id, user_id } = path.into_inner();
    let owner = Owner::tenant(&state, tenant_id)?;
    set_contact(&state, &write, owner, user_id, body.into_inner()).await
}

/// 设置手机号 of a district account.
#[utoipa::path(
    tag = "users",
    params(DistrictUserPath),
    request_body = ContactRequest,
    responses((status = 200, description = "已设置 / set", body = CommandAccepted))
)]
#[post("/districts/{district_id}/users/{user_id}/contact")]
pub async fn set_district_contact(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<DistrictUserPath>,
    body: web::Json<ContactRequest>,
) -> Result<HttpResponse, ApiError> {
    let DistrictUserPath { district_id, user_id } = path.into_inner();
    let owner = Owner::district(&state, district_id)?;
    set_contact(&state, &write, owner, user_id, body.into_inner()).await
}

/// 设置手机号 of a platform account.
#[utoipa::path(
    tag = "users",
    params(PlatformUserPath),
    request_body = ContactRequest,
    responses((status = 200, description = "已设置 / set", body = CommandAccepted))
)]
#[post("/platform/users/{user_id}/contact")]
pub async fn set_platform_contact(
    state: web::Data<AppState>,
    write: Write,
    path: web::Path<PlatformUserPath>,
    body: web::Json<ContactRequest>,
) -> Result<HttpResponse, ApiError> {
    set_contact(&state, &write, Owner::Platform, path.into_inner().user_id, body.into_inner()).await
}
