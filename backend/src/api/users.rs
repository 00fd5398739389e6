//! User administration, recorded as events on the stream of the scope that owns the account:
//!
//! - a sub-district's users (admins, inspectors, community officers, auditors) under
//!   `/tenants/{tenant_id}/users`, managed by its admins and the platform;
//! - a district's users (district officers, district auditors) under `/districts/{district_id}/users`,
//!   managed by platform admins.
//!
//! Each has `GET` (list), `POST` (create with one role), `GET /{user_id}`, and `POST /{user_id}/disable`,
//! `/enable`, `/password`, `/roles` (grant) and `/roles/revoke`. No answer ever carries a password
//! or its hash. Usernames are unique across the whole deployment, and so are user ids.

use crate::api::auth::{Authenticated, GrantView, scope_view};
use crate::api::command::{Reply, Write};
use crate::api::dashboard::TenantPath;
use crate::api::error::ApiError;
use crate::api::extract::{AsOf, AsOfParams};
use crate::api::inspections::{accepted, new_id};
use crate::api::platform::DistrictPath;
use crate::api::state::AppState;
use crate::commands::{self, CommandError, Executed, Meta};
use crate::store::AppendOutcome;
use actix_web::{HttpResponse, get, post, web};
use ducha_events::DomainError;
use ducha_events::api::{CommandAccepted, CreateUserRequest, DisableUserRequest, ResetPasswordRequest, RoleRequest};
use ducha_events::authz::{Action, Role, Scope, Target, authorize};
use ducha_events::district::DistrictCommand;
use ducha_events::ids::{CommunityId, DistrictId, TenantId, UserId};
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
        .service(grant_tenant_role)
        .service(revoke_tenant_role)
        .service(list_district_users)
        .service(get_district_user)
        .service(create_district_user)
        .service(disable_district_user)
        .service(enable_district_user)
        .service(reset_district_password)
        .service(grant_district_role)
        .service(revoke_district_role);
}

/// Passwords: at least this many characters.
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Passwords: at most this many bytes (login refuses longer ones).
pub const PASSWORD_MAX_BYTES: usize = 1024;

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
    pub grants: Vec<GrantView>,
}

impl UserView {
    fn of(u: &UserEntry, dir: &Directory) -> UserView {
        UserView {
            user_id: u.user_id.clone(),
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            disabled: u.disabled,
            has_password: u.password_hash.is_some(),
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
            Owner::District(_) => TenantId::platform(),
        }
    }

    fn owner_scope(&self) -> OwnerScope {
        match self {
            Owner::Tenant { tenant, .. } => OwnerScope::Tenant { tenant_id: tenant.clone() },
            Owner::District(d) => OwnerScope::District { district_id: d.clone() },
        }
    }

    fn target(&self) -> Target {
        match self {
            Owner::Tenant { district, tenant } => Target::tenant(district, tenant),
            Owner::District(d) => Target::district(d),
        }
    }

    fn users_path(&self) -> String {
        match self {
            Owner::Tenant { tenant, .. } => format!("/api/v1/tenants/{tenant}/users"),
            Owner::District(d) => format!("/api/v1/districts/{d}/users"),
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
        }
    }

    /// Runs `cmd` through the write path, answering about `user`.
    async fn run(
        self,
        state: &AppState,
        write: &Write,
        request: &impl Serialize,
        user: UserId,
        cmd: UserCommand,
    ) -> Result<HttpResponse, ApiError> {
        let store = state.store.clone();
        let chain = self.chain();
        write
            .run(
                state,
                &chain,
                request,
                move |meta| async move { self.execute(&store, &meta, cmd).await },
                |done| Reply::ok(accepted(&user, done)).version(done.outcome.stream_version),
            )
            .await
    }
}

fn check_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(DomainError::invalid("password", format!("密码至少{PASSWORD_MIN_CHARS}个字符")).into());
    }
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(DomainError::invalid("password", format!("密码不能超过{PASSWORD_MAX_BYTES}字节")).into());
    }
    Ok(())
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
    authorize(&who.actor, Action::Read, &owner.target())?;
    let view = state.view(as_of, Some(&owner.chain())).await?;
    let dir = view.directory();
    let owner_scope = owner.owner_scope();
    let body: Vec<UserView> = dir.users_owned_by(&owner_scope).map(|u| UserView::of(u, dir)).collect();
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
    authorize(&who.actor, Action::Read, &owner.target())?;
    let view = state.view(as_of, Some(&owner.chain())).await?;
    let dir = view.directory();
    let body = dir
        .user(user)
        .filter(|u| u.owner == owner.owner_scope())
        .map(|u| UserView::of(u, dir))
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
    role: Role,
    community_id: &'a Option<CommunityId>,
}

async fn create_user(
    state: &AppState,
    write: &Write,
    owner: Owner,
    body: CreateUserRequest,
) -> Result<HttpResponse, ApiError> {
    // Checked here, before the checks below, so that no one outside the scope learns which
    // usernames exist, and before the (deliberately slow) hashing; `decide` checks it again.
    authorize(&write.who.actor, Action::ManageUsers, &owner.target())?;
    let scope = owner.scope(body.role, body.community_id.as_ref())?;
    if !scope.fits(body.role) {
        return Err(DomainError::invalid("role", format!("此处不能授予“{}”角色", body.role.name_zh())).into());
    }
    check_password(&body.password)?;
    let user_id = {
        let model = state.live.read();
        let dir = model.directory();
        if let (Owner::Tenant { tenant, .. }, Scope::Community { community_id, .. }) = (&owner, &scope)
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
    let grant = UserCommand::GrantRole { user_id: user_id.clone(), role: body.role, scope };
    let store = state.store.clone();
    let location = format!("{}/{user_id}", owner.users_path());
    let chain = owner.chain();
    let id = user_id.clone();
    write
        .run(
            state,
            &chain,
            &fingerprint,
            move |meta| async move {
                let created = owner.execute(&store, &meta, create).await?;
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
    owner.run(state, write, &body, user, cmd).await
}

async fn enable_user(state: &AppState, write: &Write, owner: Owner, user: UserId) -> Result<HttpResponse, ApiError> {
    let cmd = UserCommand::EnableUser { user_id: user.clone() };
    owner.run(state, write, &(), user, cmd).await
}

async fn reset_password(
    state: &AppState,
    write: &Write,
    owner: Owner,
    user: UserId,
    body: ResetPasswordRequest,
) -> Result<HttpResponse, ApiError> {
    authorize(&write.who.actor, Action::ManageUsers, &owner.target())?;
    check_password(&body.password)?;
    let password_hash = hash_password(body.password).await?;
    let cmd = UserCommand::SetPassword { user_id: user.clone(), password_hash };
    // Identified without the password (see `CreateFingerprint`).
    owner.run(state, write, &"password", user, cmd).await
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
    let cmd = if grant {
        UserCommand::GrantRole { user_id: user.clone(), role: body.role, scope }
    } else {
        UserCommand::RevokeRole { user_id: user.clone(), role: body.role, scope }
    };
    owner.run(state, write, &body, user, cmd).await
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
