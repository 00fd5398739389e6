//! Who may do what, where: the role × scope rules of GUIDE §1, in one place.
//!
//! The domain's `decide` functions and the REST API both call [`authorize`]; nothing else decides
//! whether an actor may act. Finer rules that need an aggregate's state (an inspector must be on the
//! inspection's team) live in that aggregate's `decide`, after this check.

use crate::error::DomainError;
use crate::ids::{CommunityId, DistrictId, TenantId, UserId};
use serde::{Deserialize, Serialize};

/// A role a user can hold (GUIDE §1).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    PlatformAdmin,
    DistrictOfficer,
    SubdistrictAdmin,
    Inspector,
    CommunityOfficer,
    Auditor,
    /// 系统管理员 (等保 三员): accounts — create, disable, enable, unlock, reset passwords.
    SystemAdmin,
    /// 安全管理员 (等保 三员): role grants and the security policy.
    SecurityAdmin,
    /// 审计管理员 (等保 三员): reads, searches and exports the security audit log; nothing else.
    AuditAdmin,
}

impl Role {
    pub const ALL: [Role; 9] = [
        Role::PlatformAdmin,
        Role::DistrictOfficer,
        Role::SubdistrictAdmin,
        Role::Inspector,
        Role::CommunityOfficer,
        Role::Auditor,
        Role::SystemAdmin,
        Role::SecurityAdmin,
        Role::AuditAdmin,
    ];

    /// The three administrators of 等保 2.0 (三员分立): no account holds two of them, and none of
    /// them holds a business role.
    pub const THREE_ADMINS: [Role; 3] = [Role::SystemAdmin, Role::SecurityAdmin, Role::AuditAdmin];

    pub fn is_security_admin_role(self) -> bool {
        Role::THREE_ADMINS.contains(&self)
    }

    /// The code name, as in tokens, events and the API.
    pub fn code(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform_admin",
            Role::DistrictOfficer => "district_officer",
            Role::SubdistrictAdmin => "subdistrict_admin",
            Role::Inspector => "inspector",
            Role::CommunityOfficer => "community_officer",
            Role::Auditor => "auditor",
            Role::SystemAdmin => "system_admin",
            Role::SecurityAdmin => "security_admin",
            Role::AuditAdmin => "audit_admin",
        }
    }

    pub fn from_code(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == s)
    }

    /// The Chinese name shown to people.
    pub fn name_zh(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "平台管理员",
            Role::DistrictOfficer => "区委宣传部",
            Role::SubdistrictAdmin => "街道管理员",
            Role::Inspector => "督查组成员",
            Role::CommunityOfficer => "社区联络员",
            Role::Auditor => "审计（纪检）",
            Role::SystemAdmin => "系统管理员",
            Role::SecurityAdmin => "安全管理员",
            Role::AuditAdmin => "审计管理员",
        }
    }
}

/// Where a grant applies.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
    Platform,
    District { district_id: DistrictId },
    Tenant { district_id: DistrictId, tenant_id: TenantId },
    Community { district_id: DistrictId, tenant_id: TenantId, community_id: CommunityId },
}

impl Scope {
    /// Whether this scope contains the target.
    pub fn covers(&self, target: &Target) -> bool {
        match self {
            Scope::Platform => true,
            Scope::District { district_id } => target.district_id.as_ref() == Some(district_id),
            Scope::Tenant { tenant_id, .. } => target.tenant_id.as_ref() == Some(tenant_id),
            Scope::Community { tenant_id, community_id, .. } => {
                target.tenant_id.as_ref() == Some(tenant_id) && target.community_id.as_ref() == Some(community_id)
            }
        }
    }

    /// Which role may hold a grant of this scope.
    pub fn fits(&self, role: Role) -> bool {
        matches!(
            (role, self),
            (Role::PlatformAdmin | Role::SystemAdmin | Role::SecurityAdmin | Role::AuditAdmin, Scope::Platform)
                | (Role::DistrictOfficer, Scope::District { .. })
                | (Role::Auditor, Scope::Platform | Scope::District { .. } | Scope::Tenant { .. })
                | (Role::SubdistrictAdmin | Role::Inspector, Scope::Tenant { .. })
                | (Role::CommunityOfficer, Scope::Community { .. })
        )
    }
}

/// A role held in a scope.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Grant {
    pub role: Role,
    pub scope: Scope,
}

/// Who is acting: the user and every grant they hold at the time of the command.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user_id: UserId,
    pub grants: Vec<Grant>,
}

impl Actor {
    /// The platform's own actor for bootstrap steps run from the command line.
    /// It creates accounts and grants roles (the operator at the command line has the store itself);
    /// it is not an account, so no rule about accounts' roles applies to it.
    pub fn system() -> Actor {
        Actor {
            user_id: UserId::parse("_system").unwrap_or_else(|_| unreachable!("valid literal id")),
            grants: vec![
                Grant { role: Role::PlatformAdmin, scope: Scope::Platform },
                Grant { role: Role::SystemAdmin, scope: Scope::Platform },
                Grant { role: Role::SecurityAdmin, scope: Scope::Platform },
            ],
        }
    }
}

/// What an action is aimed at. Missing parts mean "not about a particular one".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub district_id: Option<DistrictId>,
    pub tenant_id: Option<TenantId>,
    pub community_id: Option<CommunityId>,
}

impl Target {
    pub fn platform() -> Self {
        Target::default()
    }
    pub fn district(d: &DistrictId) -> Self {
        Target { district_id: Some(d.clone()), ..Target::default() }
    }
    pub fn tenant(d: &DistrictId, t: &TenantId) -> Self {
        Target { district_id: Some(d.clone()), tenant_id: Some(t.clone()), community_id: None }
    }
    pub fn community(d: &DistrictId, t: &TenantId, c: Option<&CommunityId>) -> Self {
        Target { district_id: Some(d.clone()), tenant_id: Some(t.clone()), community_id: c.cloned() }
    }
}

/// Every kind of action a role can be allowed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Create districts and register sub-districts.
    ManagePlatform,
    /// Communities, finding categories, checklists of a tenant.
    ManageTenant,
    /// Accounts: create, disable, enable, unlock, reset passwords (系统管理员; a sub-district admin
    /// for its own staff).
    ManageAccounts,
    /// Grant and revoke roles (安全管理员; a sub-district admin for its own business staff only).
    ManageGrants,
    /// The security policy: password rules, lockout, sessions, second factor (安全管理员).
    ManageSecurityPolicy,
    /// Read, search and export the security audit log (审计管理员).
    ReadSecurityAudit,
    /// Read the directory: districts, sub-districts and their accounts (not their business data).
    ReadDirectory,
    /// Plan, start, re-scope, re-team and conclude an inspection.
    ManageInspection,
    /// Record meetings, reviews, scores, achievements and findings (team members).
    RecordInspection,
    /// Assign, verify, return, extend, remind and dismiss.
    ManageRectification,
    /// Report progress and submit a rectification (the finding's own community; the sub-district
    /// itself for cross-cutting findings).
    ReportProgress,
    /// Submit a 自查报告 for a community.
    SubmitSelfInspection,
    /// Read the current and past state in scope.
    Read,
    /// Read the raw event history and chain verification.
    ReadAudit,
}

/// The rule table: which role may perform which action (scope is checked separately).
///
/// The platform administrator runs the business side of the deployment (districts, sub-districts);
/// security matters belong to the three administrators, each to one (docs/SECURITY.md). Whoever may
/// `Read` may also `ReadDirectory`.
pub fn role_allows(role: Role, action: Action) -> bool {
    use Action::*;
    let allowed = match role {
        Role::PlatformAdmin => matches!(action, ManagePlatform | ManageTenant | Read),
        Role::DistrictOfficer => matches!(action, Read),
        Role::SubdistrictAdmin => matches!(
            action,
            ManageTenant
                | ManageAccounts
                | ManageGrants
                | ManageInspection
                | RecordInspection
                | ManageRectification
                | ReportProgress
                | Read
        ),
        Role::Inspector => matches!(action, RecordInspection | Read),
        Role::CommunityOfficer => matches!(action, ReportProgress | SubmitSelfInspection | Read),
        Role::Auditor => matches!(action, Read | ReadAudit),
        Role::SystemAdmin => matches!(action, ManageAccounts | ReadDirectory),
        Role::SecurityAdmin => matches!(action, ManageGrants | ManageSecurityPolicy | ReadDirectory),
        Role::AuditAdmin => matches!(action, ReadSecurityAudit),
    };
    allowed || (action == ReadDirectory && role_allows(role, Read))
}

/// Which roles an actor acting as `via` may grant or revoke: the security administrator any role; a
/// sub-district admin only the business staff of its sub-district (inspectors, community
/// officers) — never an admin or an auditor, so a sub-district admin can never raise anyone to its
/// own level or above.
pub fn may_grant(via: Role, role: Role) -> bool {
    match via {
        Role::SecurityAdmin => true,
        Role::SubdistrictAdmin => matches!(role, Role::Inspector | Role::CommunityOfficer),
        _ => false,
    }
}

/// Whether an account holding `held` may also be granted `role`: no two of the three
/// administrators, and none of them with a business role.
pub fn compatible(held: &[Role], role: Role) -> Result<(), Role> {
    for h in held.iter().copied().filter(|h| *h != role) {
        if h.is_security_admin_role() || role.is_security_admin_role() {
            return Err(h);
        }
    }
    Ok(())
}

/// Returns the role under which `actor` may perform `action` on `target`, or a typed refusal.
///
/// When several grants allow it, the first in a fixed role order wins, so the recorded role is
/// stable. A community officer reading a tenant-wide target (no community) is refused: they see
/// their own community only.
pub fn authorize(actor: &Actor, action: Action, target: &Target) -> Result<Role, DomainError> {
    let mut allowed: Vec<Role> =
        actor.grants.iter().filter(|g| role_allows(g.role, action) && g.scope.covers(target)).map(|g| g.role).collect();
    allowed.sort();
    allowed.first().copied().ok_or(DomainError::Forbidden { action })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> DistrictId {
        DistrictId::parse(s).unwrap()
    }
    fn t(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }
    fn c(s: &str) -> CommunityId {
        CommunityId::parse(s).unwrap()
    }
    fn actor(role: Role, scope: Scope) -> Actor {
        Actor { user_id: UserId::parse("u").unwrap(), grants: vec![Grant { role, scope }] }
    }

    #[test]
    fn auditor_reads_but_never_writes() {
        let a = actor(Role::Auditor, Scope::District { district_id: d("d1") });
        let target = Target::tenant(&d("d1"), &t("t1"));
        assert_eq!(authorize(&a, Action::Read, &target), Ok(Role::Auditor));
        assert_eq!(authorize(&a, Action::ReadAudit, &target), Ok(Role::Auditor));
        for action in
            [Action::ManageTenant, Action::RecordInspection, Action::ManageRectification, Action::ReportProgress]
        {
            assert!(authorize(&a, action, &target).is_err(), "{action:?}");
        }
    }

    #[test]
    fn tenant_scope_does_not_leak() {
        let a = actor(Role::SubdistrictAdmin, Scope::Tenant { district_id: d("d1"), tenant_id: t("t1") });
        assert!(authorize(&a, Action::ManageInspection, &Target::tenant(&d("d1"), &t("t1"))).is_ok());
        assert_eq!(
            authorize(&a, Action::ManageInspection, &Target::tenant(&d("d1"), &t("t2"))),
            Err(DomainError::Forbidden { action: Action::ManageInspection })
        );
        let officer = actor(Role::DistrictOfficer, Scope::District { district_id: d("d1") });
        assert!(authorize(&officer, Action::Read, &Target::tenant(&d("d1"), &t("t9"))).is_ok());
        assert!(authorize(&officer, Action::Read, &Target::tenant(&d("d2"), &t("t9"))).is_err());
    }

    #[test]
    fn community_officer_sees_only_their_community() {
        let a = actor(
            Role::CommunityOfficer,
            Scope::Community { district_id: d("d1"), tenant_id: t("t1"), community_id: c("c1") },
        );
        assert!(authorize(&a, Action::ReportProgress, &Target::community(&d("d1"), &t("t1"), Some(&c("c1")))).is_ok());
        assert!(authorize(&a, Action::ReportProgress, &Target::community(&d("d1"), &t("t1"), Some(&c("c2")))).is_err());
        assert!(authorize(&a, Action::Read, &Target::tenant(&d("d1"), &t("t1"))).is_err());
    }

    #[test]
    fn three_administrators_each_do_only_their_part() {
        let target = Target::tenant(&d("d1"), &t("t1"));
        let sys = actor(Role::SystemAdmin, Scope::Platform);
        let sec = actor(Role::SecurityAdmin, Scope::Platform);
        let aud = actor(Role::AuditAdmin, Scope::Platform);
        assert!(authorize(&sys, Action::ManageAccounts, &target).is_ok());
        assert!(authorize(&sys, Action::ManageGrants, &target).is_err(), "a system admin cannot grant");
        assert!(authorize(&sec, Action::ManageGrants, &target).is_ok());
        assert!(authorize(&sec, Action::ManageAccounts, &target).is_err(), "a security admin cannot create accounts");
        assert!(authorize(&sec, Action::ManageSecurityPolicy, &Target::platform()).is_ok());
        assert!(authorize(&aud, Action::ReadSecurityAudit, &Target::platform()).is_ok());
        for action in [
            Action::ManageAccounts,
            Action::ManageGrants,
            Action::ManageSecurityPolicy,
            Action::ManagePlatform,
            Action::Read,
            Action::ReadDirectory,
        ] {
            assert!(authorize(&aud, action, &target).is_err(), "the audit admin only reads the audit log: {action:?}");
        }
        for a in [&sys, &sec] {
            assert!(authorize(a, Action::ReadDirectory, &target).is_ok());
            assert!(authorize(a, Action::Read, &target).is_err(), "no business data for the admins");
        }
        // The platform admin no longer manages accounts or grants.
        let root = actor(Role::PlatformAdmin, Scope::Platform);
        assert!(authorize(&root, Action::ManageAccounts, &target).is_err());
        assert!(authorize(&root, Action::ManageGrants, &target).is_err());
        assert!(authorize(&root, Action::ManagePlatform, &Target::platform()).is_ok());
    }

    #[test]
    fn what_may_be_granted_and_held_together() {
        assert!(may_grant(Role::SecurityAdmin, Role::SubdistrictAdmin));
        assert!(may_grant(Role::SubdistrictAdmin, Role::Inspector));
        assert!(!may_grant(Role::SubdistrictAdmin, Role::SubdistrictAdmin));
        assert!(!may_grant(Role::SubdistrictAdmin, Role::Auditor));
        assert!(!may_grant(Role::SystemAdmin, Role::Inspector));
        assert_eq!(compatible(&[Role::SystemAdmin], Role::SecurityAdmin), Err(Role::SystemAdmin));
        assert_eq!(compatible(&[Role::Inspector], Role::AuditAdmin), Err(Role::Inspector));
        assert_eq!(compatible(&[Role::AuditAdmin], Role::Auditor), Err(Role::AuditAdmin));
        assert_eq!(compatible(&[Role::Inspector, Role::SubdistrictAdmin], Role::CommunityOfficer), Ok(()));
        assert_eq!(compatible(&[Role::SystemAdmin], Role::SystemAdmin), Ok(()), "holding it again is no conflict");
    }

    #[test]
    fn scopes_fit_roles() {
        assert!(Scope::Platform.fits(Role::PlatformAdmin));
        assert!(!Scope::Platform.fits(Role::Inspector));
        assert!(!Scope::District { district_id: d("d") }.fits(Role::SubdistrictAdmin));
        for r in Role::THREE_ADMINS {
            assert!(Scope::Platform.fits(r));
            assert!(!Scope::District { district_id: d("d") }.fits(r));
        }
        for r in Role::ALL {
            assert_eq!(Role::from_code(r.code()), Some(r));
        }
    }
}
