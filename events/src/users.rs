//! User accounts and their role grants. Users are recorded on the stream of the scope that owns them
//! (the platform, a district, or a tenant); the same commands and rules serve all three.
//!
//! The owner aggregate passes in two things: the authz [`Target`] of the owner (who may manage its
//! users) and a check of which grant scopes the owner may hand out (a tenant grants only its own
//! scopes, a district only its own, the platform only platform-wide).

use crate::DomainError;
use crate::authz::{self, Action, Actor, Grant, Role, Scope, Target};
use crate::event::{
    Event, PasswordChanged, RoleGranted, RoleRevoked, SecondFactorEnrolled, SecondFactorReset, UserContactSet,
    UserCreated, UserDisabled, UserEnabled,
};
use crate::ids::UserId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One account as an aggregate sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UserRecord {
    pub username: String,
    pub display_name: String,
    pub password_hash: Option<String>,
    pub disabled: bool,
    pub grants: Vec<Grant>,
    #[serde(default)]
    pub second_factor: bool,
}

/// The accounts owned by one scope.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Users {
    pub by_id: BTreeMap<UserId, UserRecord>,
}

impl Users {
    /// The account with this username (exact match), if any.
    pub fn by_username(&self, username: &str) -> Option<(&UserId, &UserRecord)> {
        self.by_id.iter().find(|(_, u)| u.username == username)
    }
}

/// Commands on accounts (the password arrives already hashed: hashing is I/O-free but slow, and
/// belongs to the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    /// An administrator creates an account; its first password is temporary (changed at first login).
    CreateUser {
        user_id: UserId,
        username: String,
        display_name: String,
        password_hash: String,
    },
    /// An administrator resets a password; the new one is temporary.
    SetPassword {
        user_id: UserId,
        password_hash: String,
    },
    /// The user changes their own password (the API has checked the old one and the policy).
    ChangeOwnPassword {
        user_id: UserId,
        password_hash: String,
    },
    /// The user has enrolled a second factor (the API has checked a code of it).
    EnrollSecondFactor {
        user_id: UserId,
    },
    /// An administrator sets (or, with an empty `phone`, removes) an account's mobile number.
    SetContact {
        user_id: UserId,
        phone: String,
    },
    /// An administrator removes a user's second factor.
    ResetSecondFactor {
        user_id: UserId,
        reason: String,
    },
    GrantRole {
        user_id: UserId,
        role: Role,
        scope: Scope,
    },
    RevokeRole {
        user_id: UserId,
        role: Role,
        scope: Scope,
    },
    DisableUser {
        user_id: UserId,
        reason: String,
    },
    EnableUser {
        user_id: UserId,
    },
}

pub const USERNAME_MAX: usize = 64;
pub const DISPLAY_NAME_MAX: usize = 64;
pub const REASON_MAX: usize = 200;
const PASSWORD_HASH_MAX: usize = 512;

/// Decides a command on the accounts of one owner.
///
/// `owner` is the owner's authz target (the actor needs [`Action::ManageAccounts`] on it for
/// accounts, [`Action::ManageGrants`] for grants, and may grant only what [`authz::may_grant`]
/// allows through the role it acts in);
/// `scope_allowed` says whether the owner may hand out a grant of a scope (its error is returned
/// as is, so an owner can say *which* part is wrong, e.g. an unknown community).
///
/// Granting a grant the user already holds, disabling a disabled user and enabling an enabled one
/// change nothing and return no events (retries are harmless).
pub fn decide(
    users: &Users,
    owner: &Target,
    scope_allowed: impl Fn(&Scope) -> Result<(), DomainError>,
    actor: &Actor,
    cmd: &UserCommand,
) -> Result<Vec<Event>, DomainError> {
    // What users do to their own account needs no role: only that it is theirs and enabled.
    if let UserCommand::ChangeOwnPassword { user_id, password_hash } = cmd {
        own(users, actor, user_id)?;
        check_password_hash(password_hash)?;
        return Ok(vec![
            PasswordChanged { user_id: user_id.clone(), password_hash: password_hash.clone(), temporary: false }.into(),
        ]);
    }
    if let UserCommand::EnrollSecondFactor { user_id } = cmd {
        let user = own(users, actor, user_id)?;
        if user.second_factor {
            return Ok(vec![]);
        }
        return Ok(vec![SecondFactorEnrolled { user_id: user_id.clone() }.into()]);
    }
    let action = match cmd {
        UserCommand::GrantRole { .. } | UserCommand::RevokeRole { .. } => Action::ManageGrants,
        // An administrator's second factor is reset by the security administrator, not by the
        // system administrator who resets passwords: neither can take over an administrator alone.
        UserCommand::ResetSecondFactor { user_id, .. } if privileged(users, user_id) => Action::ManageSecurityPolicy,
        _ => Action::ManageAccounts,
    };
    let via = authz::authorize(actor, action, owner)?;
    // A sub-district administrator manages the accounts of its business staff only (those holding
    // no role it could not grant): never a fellow administrator's or an auditor's password.
    if via == Role::SubdistrictAdmin
        && let Some(target) = managed_user(cmd)
        && let Some(user) = users.by_id.get(target)
        && let Some(g) = user.grants.iter().find(|g| !authz::may_grant(via, g.role))
    {
        return Err(DomainError::RoleNotGrantable { role: g.role.name_zh().to_owned() });
    }
    match cmd {
        UserCommand::CreateUser { user_id, username, display_name, password_hash } => {
            if user_id.as_str().starts_with('_') {
                return Err(DomainError::invalid("user_id", "以“_”开头的标识为系统保留"));
            }
            if users.by_id.contains_key(user_id) {
                return Err(DomainError::AlreadyExists { what: format!("用户“{user_id}”") });
            }
            check_username(username)?;
            if users.by_username(username).is_some() {
                return Err(DomainError::AlreadyExists { what: format!("用户名“{username}”") });
            }
            crate::aggregate::require_text("display_name", display_name, DISPLAY_NAME_MAX)?;
            check_password_hash(password_hash)?;
            Ok(vec![
                UserCreated {
                    user_id: user_id.clone(),
                    username: username.clone(),
                    display_name: display_name.trim().to_owned(),
                }
                .into(),
                PasswordChanged { user_id: user_id.clone(), password_hash: password_hash.clone(), temporary: true }
                    .into(),
            ])
        }
        UserCommand::SetPassword { user_id, password_hash } => {
            existing(users, user_id)?;
            check_password_hash(password_hash)?;
            Ok(vec![
                PasswordChanged { user_id: user_id.clone(), password_hash: password_hash.clone(), temporary: true }
                    .into(),
            ])
        }
        UserCommand::SetContact { user_id, phone } => {
            existing(users, user_id)?;
            let phone = if phone.trim().is_empty() {
                String::new()
            } else {
                crate::personal::valid_phone(phone)
                    .ok_or_else(|| DomainError::invalid("phone", "手机号应为 5 到 20 位数字（可含 +、- 和空格）"))?
            };
            Ok(vec![UserContactSet { user_id: user_id.clone(), phone }.into()])
        }
        UserCommand::ResetSecondFactor { user_id, reason } => {
            let user = existing(users, user_id)?;
            crate::aggregate::require_text("reason", reason, REASON_MAX)?;
            if !user.second_factor {
                return Ok(vec![]);
            }
            Ok(vec![SecondFactorReset { user_id: user_id.clone(), reason: reason.trim().to_owned() }.into()])
        }
        // Answered above.
        UserCommand::ChangeOwnPassword { .. } | UserCommand::EnrollSecondFactor { .. } => Ok(vec![]),
        UserCommand::GrantRole { user_id, role, scope } => {
            let user = existing(users, user_id)?;
            if !authz::may_grant(via, *role) {
                return Err(DomainError::RoleNotGrantable { role: role.name_zh().to_owned() });
            }
            if !scope.fits(*role) {
                return Err(DomainError::invalid("scope", format!("角色“{}”不能授予此范围", role.name_zh())));
            }
            scope_allowed(scope)?;
            if user.grants.iter().any(|g| g.role == *role && g.scope == *scope) {
                return Ok(vec![]);
            }
            let held: Vec<Role> = user.grants.iter().map(|g| g.role).collect();
            if let Err(h) = authz::compatible(&held, *role) {
                return Err(DomainError::RoleConflict {
                    role: role.name_zh().to_owned(),
                    held: h.name_zh().to_owned(),
                });
            }
            Ok(vec![RoleGranted { user_id: user_id.clone(), role: *role, scope: scope.clone() }.into()])
        }
        UserCommand::RevokeRole { user_id, role, scope } => {
            let user = existing(users, user_id)?;
            if !authz::may_grant(via, *role) {
                return Err(DomainError::RoleNotGrantable { role: role.name_zh().to_owned() });
            }
            if !user.grants.iter().any(|g| g.role == *role && g.scope == *scope) {
                return Err(DomainError::NotFound {
                    what: format!("用户“{user_id}”的“{}”授权", role.name_zh())
                });
            }
            Ok(vec![RoleRevoked { user_id: user_id.clone(), role: *role, scope: scope.clone() }.into()])
        }
        UserCommand::DisableUser { user_id, reason } => {
            let user = existing(users, user_id)?;
            if *user_id == actor.user_id {
                return Err(DomainError::invalid("user_id", "不能停用自己的账号"));
            }
            crate::aggregate::require_text("reason", reason, REASON_MAX)?;
            if user.disabled {
                return Ok(vec![]);
            }
            Ok(vec![UserDisabled { user_id: user_id.clone(), reason: reason.trim().to_owned() }.into()])
        }
        UserCommand::EnableUser { user_id } => {
            let user = existing(users, user_id)?;
            if !user.disabled {
                return Ok(vec![]);
            }
            Ok(vec![UserEnabled { user_id: user_id.clone() }.into()])
        }
    }
}

/// Applies an account event; other events leave the accounts unchanged.
pub fn evolve(users: &mut Users, e: &Event) {
    match e {
        Event::UserCreated(e) => {
            users.by_id.insert(
                e.user_id.clone(),
                UserRecord { username: e.username.clone(), display_name: e.display_name.clone(), ..Default::default() },
            );
        }
        Event::PasswordSet(e) => {
            if let Some(u) = users.by_id.get_mut(&e.user_id) {
                u.password_hash = Some(e.password_hash.clone());
            }
        }
        Event::PasswordChanged(e) => {
            if let Some(u) = users.by_id.get_mut(&e.user_id) {
                u.password_hash = Some(e.password_hash.clone());
            }
        }
        Event::SecondFactorEnrolled(e) => {
            if let Some(u) = users.by_id.get_mut(&e.user_id) {
                u.second_factor = true;
            }
        }
        Event::SecondFactorReset(e) => {
            if let Some(u) = users.by_id.get_mut(&e.user_id) {
                u.second_factor = false;
            }
        }
        Event::RoleGranted(e) => {
            if let Some(u) = users.by_id.get_mut(&e.user_id) {
                let grant = Grant { role: e.role, scope: e.scope.clone() };
                if !u.grants.contains(&grant) {
                    u.grants.push(grant);
                }
            }
        }
        Event::RoleRevoked(e) => {
            if let Some(u) = users.by_id.get_mut(&e.user_id) {
                u.grants.retain(|g| !(g.role == e.role && g.scope == e.scope));
            }
        }
        Event::UserDisabled(e) => {
            if let Some(u) = users.by_id.get_mut(&e.user_id) {
                u.disabled = true;
            }
        }
        Event::UserEnabled(e) => {
            if let Some(u) = users.by_id.get_mut(&e.user_id) {
                u.disabled = false;
            }
        }
        _ => {}
    }
}

/// Whether an account holds a platform administrator's role or one of the three administrators'.
fn privileged(users: &Users, user_id: &UserId) -> bool {
    users
        .by_id
        .get(user_id)
        .is_some_and(|u| u.grants.iter().any(|g| g.role == Role::PlatformAdmin || g.role.is_security_admin_role()))
}

/// The account an administrator's account command (not a grant) acts on.
fn managed_user(cmd: &UserCommand) -> Option<&UserId> {
    match cmd {
        UserCommand::SetPassword { user_id, .. }
        | UserCommand::ResetSecondFactor { user_id, .. }
        | UserCommand::SetContact { user_id, .. }
        | UserCommand::DisableUser { user_id, .. }
        | UserCommand::EnableUser { user_id } => Some(user_id),
        _ => None,
    }
}

/// The actor's own, enabled account.
fn own<'a>(users: &'a Users, actor: &Actor, user_id: &UserId) -> Result<&'a UserRecord, DomainError> {
    let user = existing(users, user_id)?;
    if actor.user_id != *user_id {
        return Err(DomainError::Forbidden { action: Action::ManageAccounts });
    }
    if user.disabled {
        return Err(DomainError::UserDisabled);
    }
    Ok(user)
}

fn existing<'a>(users: &'a Users, user_id: &UserId) -> Result<&'a UserRecord, DomainError> {
    users.by_id.get(user_id).ok_or_else(|| DomainError::NotFound { what: format!("用户“{user_id}”") })
}

/// A username: 1..=64 characters, none of them whitespace or control characters.
fn check_username(username: &str) -> Result<(), DomainError> {
    let n = username.chars().count();
    if n == 0 {
        return Err(DomainError::invalid("username", "不能为空"));
    }
    if n > USERNAME_MAX {
        return Err(DomainError::invalid("username", format!("不能超过{USERNAME_MAX}个字符")));
    }
    if username.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DomainError::invalid("username", "不能包含空白字符"));
    }
    Ok(())
}

/// A password hash must look like a PHC string (`$argon2id$v=19$…`): the plain password must never
/// reach an event by mistake.
fn check_password_hash(hash: &str) -> Result<(), DomainError> {
    let looks_phc = hash.len() > 1
        && hash.len() <= PASSWORD_HASH_MAX
        && hash.starts_with('$')
        && !hash.chars().any(|c| c.is_whitespace() || c.is_control());
    if looks_phc {
        Ok(())
    } else {
        Err(DomainError::invalid("password_hash", "不是有效的密码摘要（PHC 格式）"))
    }
}

/// Small builders shared by the aggregates' tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::aggregate::Command;
    use crate::authz::{Actor, Grant, Role, Scope};
    use crate::ids::UserId;
    use crate::time::{self, Timestamp};

    pub const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

    pub fn at() -> Timestamp {
        time::parse("2024-01-15T09:00:00+08:00").unwrap()
    }
    pub fn uid(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }
    pub fn actor(user: &str, grants: &[(Role, Scope)]) -> Actor {
        Actor {
            user_id: uid(user),
            grants: grants.iter().map(|(role, scope)| Grant { role: *role, scope: scope.clone() }).collect(),
        }
    }
    pub fn platform_admin() -> Actor {
        actor("root", &[(Role::PlatformAdmin, Scope::Platform)])
    }
    /// 系统管理员: accounts everywhere.
    pub fn system_admin() -> Actor {
        actor("sysadmin", &[(Role::SystemAdmin, Scope::Platform)])
    }
    /// 安全管理员: grants everywhere.
    pub fn security_admin() -> Actor {
        actor("secadmin", &[(Role::SecurityAdmin, Scope::Platform)])
    }
    pub fn cmd<C>(actor: &Actor, body: C) -> Command<C> {
        Command::new(actor.clone(), at(), body)
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::ids::{DistrictId, TenantId};

    fn d1() -> DistrictId {
        DistrictId::parse("d1").unwrap()
    }
    fn t1() -> TenantId {
        TenantId::parse("t1").unwrap()
    }
    fn owner() -> Target {
        Target::tenant(&d1(), &t1())
    }
    fn tenant_scope() -> Scope {
        Scope::Tenant { district_id: d1(), tenant_id: t1() }
    }
    /// The owner may hand out only its own tenant scope.
    fn only_tenant(s: &Scope) -> Result<(), DomainError> {
        if *s == tenant_scope() { Ok(()) } else { Err(DomainError::invalid("scope", "不属于本街道")) }
    }
    fn admin() -> Actor {
        actor("admin", &[(Role::SubdistrictAdmin, tenant_scope())])
    }
    fn run(users: &Users, a: &Actor, c: UserCommand) -> Result<Vec<Event>, DomainError> {
        decide(users, &owner(), only_tenant, a, &c)
    }
    fn apply(mut users: Users, events: &[Event]) -> Users {
        for e in events {
            evolve(&mut users, e);
        }
        users
    }
    fn create(id: &str, username: &str) -> UserCommand {
        UserCommand::CreateUser {
            user_id: uid(id),
            username: username.into(),
            display_name: "张晓红".into(),
            password_hash: HASH.into(),
        }
    }
    /// Users with `zhang` (an inspector) and `admin` itself.
    fn seeded() -> Users {
        let mut users = Users::default();
        for (id, name) in [("zhang", "zhangxh"), ("admin", "admin")] {
            let events = run(&users, &admin(), create(id, name)).unwrap();
            users = apply(users, &events);
        }
        let events = run(
            &users,
            &admin(),
            UserCommand::GrantRole { user_id: uid("zhang"), role: Role::Inspector, scope: tenant_scope() },
        )
        .unwrap();
        apply(users, &events)
    }
    fn code(r: Result<Vec<Event>, DomainError>) -> &'static str {
        r.unwrap_err().code()
    }

    #[test]
    fn create_user_emits_created_then_a_temporary_password() {
        let events = run(&Users::default(), &admin(), create("zhang", "zhangxh")).unwrap();
        assert_eq!(events.len(), 2);
        assert!(matches!(&events[0], Event::UserCreated(e) if e.username == "zhangxh" && e.display_name == "张晓红"));
        assert!(matches!(&events[1], Event::PasswordChanged(e) if e.password_hash == HASH && e.temporary));
        let users = apply(Users::default(), &events);
        let u = &users.by_id[&uid("zhang")];
        assert_eq!(u.password_hash.as_deref(), Some(HASH));
        assert!(!u.disabled && u.grants.is_empty());
        assert_eq!(users.by_username("zhangxh").map(|(id, _)| id.clone()), Some(uid("zhang")));
    }

    #[test]
    fn managing_users_needs_manage_users_on_the_owner() {
        let inspector = actor("li", &[(Role::Inspector, tenant_scope())]);
        assert_eq!(code(run(&Users::default(), &inspector, create("x", "x"))), "forbidden");
        let other_tenant = actor(
            "admin2",
            &[(Role::SubdistrictAdmin, Scope::Tenant { district_id: d1(), tenant_id: TenantId::parse("t2").unwrap() })],
        );
        assert_eq!(code(run(&Users::default(), &other_tenant, create("x", "x"))), "forbidden");
        let auditor = actor("audit", &[(Role::Auditor, Scope::Platform)]);
        assert_eq!(code(run(&seeded(), &auditor, UserCommand::EnableUser { user_id: uid("zhang") })), "forbidden");
        // 三员分立: accounts are the system admin's, grants the security admin's; the platform admin
        // has neither.
        assert!(run(&Users::default(), &system_admin(), create("x", "x")).is_ok());
        assert_eq!(code(run(&Users::default(), &security_admin(), create("x", "x"))), "forbidden");
        assert_eq!(code(run(&Users::default(), &platform_admin(), create("x", "x"))), "forbidden");
        let grant = UserCommand::GrantRole { user_id: uid("zhang"), role: Role::Auditor, scope: tenant_scope() };
        assert!(run(&seeded(), &security_admin(), grant.clone()).is_ok());
        assert_eq!(code(run(&seeded(), &system_admin(), grant)), "forbidden");
    }

    #[test]
    fn user_ids_are_unique_and_not_reserved() {
        let users = seeded();
        assert_eq!(code(run(&users, &admin(), create("zhang", "other"))), "already_exists");
        assert_eq!(code(run(&users, &admin(), create("_system", "sys"))), "invalid");
    }

    #[test]
    fn usernames_are_unique_short_and_without_whitespace() {
        let users = seeded();
        assert_eq!(code(run(&users, &admin(), create("wang", "zhangxh"))), "already_exists");
        for bad in ["", "zhang xh", "tab\tname", "line\n", "全角\u{3000}空格", &"x".repeat(65)] {
            let err = run(&users, &admin(), create("wang", bad)).unwrap_err();
            assert_eq!((err.code(), err.field()), ("invalid", Some("username")), "{bad:?}");
        }
        assert!(run(&users, &admin(), create("wang", &"王".repeat(64))).is_ok());
        assert!(run(&users, &admin(), create("wang", "王芳")).is_ok());
    }

    #[test]
    fn display_name_is_required() {
        let c = UserCommand::CreateUser {
            user_id: uid("wang"),
            username: "wangf".into(),
            display_name: "  ".into(),
            password_hash: HASH.into(),
        };
        assert_eq!(run(&Users::default(), &admin(), c).unwrap_err().field(), Some("display_name"));
    }

    #[test]
    fn password_hash_must_look_like_phc() {
        for bad in ["", "$", "hunter2", "argon2id$v=19", "$argon2id$ with space"] {
            let c = UserCommand::SetPassword { user_id: uid("zhang"), password_hash: bad.into() };
            let err = run(&seeded(), &admin(), c).unwrap_err();
            assert_eq!((err.code(), err.field()), ("invalid", Some("password_hash")), "{bad:?}");
            let c = UserCommand::CreateUser {
                user_id: uid("wang"),
                username: "wangf".into(),
                display_name: "王芳".into(),
                password_hash: bad.into(),
            };
            assert_eq!(run(&seeded(), &admin(), c).unwrap_err().field(), Some("password_hash"));
        }
        let ok = UserCommand::SetPassword { user_id: uid("zhang"), password_hash: "$argon2id$new".into() };
        let users = apply(seeded(), &run(&seeded(), &admin(), ok).unwrap());
        assert_eq!(users.by_id[&uid("zhang")].password_hash.as_deref(), Some("$argon2id$new"));
    }

    #[test]
    fn commands_on_unknown_users_are_not_found() {
        let nobody = uid("nobody");
        for c in [
            UserCommand::SetPassword { user_id: nobody.clone(), password_hash: HASH.into() },
            UserCommand::GrantRole { user_id: nobody.clone(), role: Role::Inspector, scope: tenant_scope() },
            UserCommand::RevokeRole { user_id: nobody.clone(), role: Role::Inspector, scope: tenant_scope() },
            UserCommand::DisableUser { user_id: nobody.clone(), reason: "离职".into() },
            UserCommand::EnableUser { user_id: nobody.clone() },
        ] {
            assert_eq!(code(run(&seeded(), &admin(), c.clone())), "not_found", "{c:?}");
        }
    }

    #[test]
    fn grants_must_fit_the_role_and_the_owner() {
        let users = seeded();
        let grant = |role, scope| UserCommand::GrantRole { user_id: uid("zhang"), role, scope };
        // The scope does not fit the role.
        let err = run(&users, &security_admin(), grant(Role::DistrictOfficer, tenant_scope())).unwrap_err();
        assert_eq!((err.code(), err.field()), ("invalid", Some("scope")));
        // The role fits but the owner may not hand out that scope.
        let other = Scope::Tenant { district_id: d1(), tenant_id: TenantId::parse("t2").unwrap() };
        assert_eq!(code(run(&users, &admin(), grant(Role::Inspector, other))), "invalid");
        assert_eq!(code(run(&users, &security_admin(), grant(Role::PlatformAdmin, Scope::Platform))), "invalid");
        // A sub-district admin grants business staff only: no admins, no auditors.
        for role in [Role::SubdistrictAdmin, Role::Auditor, Role::PlatformAdmin, Role::SecurityAdmin] {
            let err = run(&users, &admin(), grant(role, tenant_scope())).unwrap_err();
            assert_eq!((err.code(), err.field()), ("role_not_grantable", Some("role")), "{role:?}");
        }
        // Allowed.
        let events = run(&users, &security_admin(), grant(Role::Auditor, tenant_scope())).unwrap();
        assert_eq!(events.len(), 1);
        let users = apply(users, &events);
        assert_eq!(users.by_id[&uid("zhang")].grants.len(), 2);
    }

    #[test]
    fn a_subdistrict_admin_manages_only_its_business_staff() {
        let mut users = seeded();
        // `admin` is also granted the sub-district admin role (by the security administrator).
        let grant =
            UserCommand::GrantRole { user_id: uid("admin"), role: Role::SubdistrictAdmin, scope: tenant_scope() };
        users = apply(users.clone(), &run(&users, &security_admin(), grant).unwrap());
        let other_admin = actor("admin2", &[(Role::SubdistrictAdmin, tenant_scope())]);
        let reset = |id: &str| UserCommand::SetPassword { user_id: uid(id), password_hash: HASH.into() };
        assert_eq!(run(&users, &other_admin, reset("zhang")).unwrap().len(), 1, "an inspector: yes");
        assert_eq!(code(run(&users, &other_admin, reset("admin"))), "role_not_grantable", "a fellow admin: no");
        let disable = UserCommand::DisableUser { user_id: uid("admin"), reason: "调离".into() };
        assert_eq!(code(run(&users, &other_admin, disable.clone())), "role_not_grantable");
        // The system administrator manages every account.
        assert_eq!(run(&users, &system_admin(), reset("admin")).unwrap().len(), 1);
        assert_eq!(run(&users, &system_admin(), disable).unwrap().len(), 1);
    }

    #[test]
    fn an_administrators_second_factor_is_reset_by_the_security_admin_only() {
        let mut users = Users::default();
        let owner = Target::platform();
        let any = |_: &Scope| Ok(());
        let on = |users: &Users, a: &Actor, c: UserCommand| decide(users, &owner, any, a, &c);
        for (id, role) in [("ops", Role::SystemAdmin), ("clerk", Role::Inspector)] {
            let create = UserCommand::CreateUser {
                user_id: uid(id),
                username: id.into(),
                display_name: "账号".into(),
                password_hash: HASH.into(),
            };
            users = apply(users.clone(), &on(&users, &system_admin(), create).unwrap());
            let scope = if role == Role::Inspector { tenant_scope() } else { Scope::Platform };
            if role != Role::Inspector {
                let grant = UserCommand::GrantRole { user_id: uid(id), role, scope };
                users = apply(users.clone(), &on(&users, &security_admin(), grant).unwrap());
            }
            users = apply(users.clone(), &[SecondFactorEnrolled { user_id: uid(id) }.into()]);
        }
        let reset = |id: &str| UserCommand::ResetSecondFactor { user_id: uid(id), reason: "手机丢失".into() };
        assert_eq!(code(on(&users, &system_admin(), reset("ops"))), "forbidden", "not by the one who resets passwords");
        assert_eq!(on(&users, &security_admin(), reset("ops")).unwrap().len(), 1);
        assert_eq!(
            on(&users, &system_admin(), reset("clerk")).unwrap().len(),
            1,
            "a business account: the system admin"
        );
    }

    #[test]
    fn no_account_holds_two_of_the_three_or_one_of_them_with_a_business_role() {
        let mut users = Users::default();
        let platform = |id: &str| UserCommand::CreateUser {
            user_id: uid(id),
            username: id.into(),
            display_name: "管理员".into(),
            password_hash: HASH.into(),
        };
        let created = run(&users, &system_admin(), platform("ops")).unwrap();
        users = apply(users, &created);
        let owner = Target::platform();
        let any = |_: &Scope| Ok(());
        let grant = |users: &Users, role| {
            decide(
                users,
                &owner,
                any,
                &security_admin(),
                &UserCommand::GrantRole { user_id: uid("ops"), role, scope: Scope::Platform },
            )
        };
        users = apply(users.clone(), &grant(&users, Role::SystemAdmin).unwrap());
        for other in [Role::SecurityAdmin, Role::AuditAdmin, Role::PlatformAdmin, Role::Auditor] {
            let err = grant(&users, other).unwrap_err();
            assert_eq!(err.code(), "role_conflict", "{other:?}");
            assert!(err.message_zh().contains("系统管理员"), "{}", err.message_zh());
        }
        assert_eq!(grant(&users, Role::SystemAdmin), Ok(vec![]), "holding it again changes nothing");
        // And the other way round: a business role first excludes the three.
        let zhang = seeded();
        let err = decide(
            &zhang,
            &owner,
            any,
            &security_admin(),
            &UserCommand::GrantRole { user_id: uid("zhang"), role: Role::AuditAdmin, scope: Scope::Platform },
        )
        .unwrap_err();
        assert_eq!(err.code(), "role_conflict");
    }

    #[test]
    fn users_change_their_own_password_and_enroll_their_own_second_factor() {
        let users = seeded();
        let zhang = actor("zhang", &[(Role::Inspector, tenant_scope())]);
        let change = UserCommand::ChangeOwnPassword { user_id: uid("zhang"), password_hash: "$argon2id$mine".into() };
        let events = run(&users, &zhang, change.clone()).unwrap();
        assert!(matches!(&events[0], Event::PasswordChanged(e) if !e.temporary));
        // Not someone else's, even as an admin.
        assert_eq!(code(run(&users, &admin(), change)), "forbidden");
        let enroll = UserCommand::EnrollSecondFactor { user_id: uid("zhang") };
        let enrolled = run(&users, &zhang, enroll.clone()).unwrap();
        let users = apply(users, &enrolled);
        assert!(users.by_id[&uid("zhang")].second_factor);
        assert_eq!(run(&users, &zhang, enroll), Ok(vec![]), "enrolled already");
        // A reset is an administrator's, with a reason.
        let reset = |reason: &str| UserCommand::ResetSecondFactor { user_id: uid("zhang"), reason: reason.into() };
        assert_eq!(code(run(&users, &zhang, reset("丢失手机"))), "forbidden");
        assert_eq!(run(&users, &admin(), reset(" ")).unwrap_err().field(), Some("reason"));
        let users = apply(users.clone(), &run(&users, &admin(), reset("丢失手机")).unwrap());
        assert!(!users.by_id[&uid("zhang")].second_factor);
        // The admin's reset password is temporary.
        let reset_pw = UserCommand::SetPassword { user_id: uid("zhang"), password_hash: HASH.into() };
        assert!(matches!(&run(&users, &admin(), reset_pw).unwrap()[0], Event::PasswordChanged(e) if e.temporary));
    }

    #[test]
    fn granting_a_held_grant_is_a_no_op() {
        let users = seeded();
        let c = UserCommand::GrantRole { user_id: uid("zhang"), role: Role::Inspector, scope: tenant_scope() };
        assert_eq!(run(&users, &admin(), c), Ok(vec![]));
    }

    #[test]
    fn revoking_needs_a_held_grant() {
        let users = seeded();
        let revoke = |role| UserCommand::RevokeRole { user_id: uid("zhang"), role, scope: tenant_scope() };
        assert_eq!(code(run(&users, &admin(), revoke(Role::CommunityOfficer))), "not_found");
        assert_eq!(code(run(&users, &admin(), revoke(Role::Auditor))), "role_not_grantable");
        let events = run(&users, &admin(), revoke(Role::Inspector)).unwrap();
        let users = apply(users, &events);
        assert!(users.by_id[&uid("zhang")].grants.is_empty());
        assert_eq!(code(run(&users, &admin(), revoke(Role::Inspector))), "not_found");
    }

    #[test]
    fn disable_and_enable() {
        let users = seeded();
        let disable = |id: &str, reason: &str| UserCommand::DisableUser { user_id: uid(id), reason: reason.into() };
        // Not oneself.
        let err = run(&users, &admin(), disable("admin", "测试")).unwrap_err();
        assert_eq!((err.code(), err.field()), ("invalid", Some("user_id")));
        // A reason is required.
        assert_eq!(run(&users, &admin(), disable("zhang", " ")).unwrap_err().field(), Some("reason"));
        let events = run(&users, &admin(), disable("zhang", "人员流动，已调离")).unwrap();
        let users = apply(users, &events);
        assert!(users.by_id[&uid("zhang")].disabled);
        assert_eq!(run(&users, &admin(), disable("zhang", "再次停用")), Ok(vec![]));
        let enable = UserCommand::EnableUser { user_id: uid("zhang") };
        let events = run(&users, &admin(), enable.clone()).unwrap();
        let users = apply(users, &events);
        assert!(!users.by_id[&uid("zhang")].disabled);
        assert_eq!(run(&users, &admin(), enable), Ok(vec![]));
    }

    #[test]
    fn evolve_ignores_events_of_unknown_users_and_other_kinds() {
        let before = seeded();
        let after = apply(
            before.clone(),
            &[
                crate::event::PasswordSet { user_id: uid("ghost"), password_hash: HASH.into() }.into(),
                UserEnabled { user_id: uid("ghost") }.into(),
                crate::event::DistrictCreated { district_id: d1(), name: "XX区".into() }.into(),
            ],
        );
        assert_eq!(before, after);
    }
}
