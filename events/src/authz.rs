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
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::PlatformAdmin,
        Role::DistrictOfficer,
        Role::SubdistrictAdmin,
        Role::Inspector,
        Role::CommunityOfficer,
        Role::Auditor,
    ];

    /// The code name, as in tokens, events and the API.
    pub fn code(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform_admin",
            Role::DistrictOfficer => "district_officer",
            Role::SubdistrictAdmin => "subdistrict_admin",
            Role::Inspector => "inspector",
            Role::CommunityOfficer => "community_officer",
            Role::Auditor => "auditor",
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
            (Role::PlatformAdmin, Scope::Platform)
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
    pub fn system() -> Actor {
        Actor {
            user_id: UserId::parse("_system").unwrap_or_else(|_| unreachable!("valid literal id")),
            grants: vec![Grant { role: Role::PlatformAdmin, scope: Scope::Platform }],
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
    /// Create users, grant and revoke roles, disable, reset passwords.
    ManageUsers,
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
pub fn role_allows(role: Role, action: Action) -> bool {
    use Action::*;
    match role {
        Role::PlatformAdmin => matches!(action, ManagePlatform | ManageTenant | ManageUsers | Read),
        Role::DistrictOfficer => matches!(action, Read),
        Role::SubdistrictAdmin => matches!(
            action,
            ManageTenant
                | ManageUsers
                | ManageInspection
                | RecordInspection
                | ManageRectification
                | ReportProgress
                | Read
        ),
        Role::Inspector => matches!(action, RecordInspection | Read),
        Role::CommunityOfficer => matches!(action, ReportProgress | SubmitSelfInspection | Read),
        Role::Auditor => matches!(action, Read | ReadAudit),
    }
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
    fn scopes_fit_roles() {
        assert!(Scope::Platform.fits(Role::PlatformAdmin));
        assert!(!Scope::Platform.fits(Role::Inspector));
        assert!(!Scope::District { district_id: d("d") }.fits(Role::SubdistrictAdmin));
        for r in Role::ALL {
            assert_eq!(Role::from_code(r.code()), Some(r));
        }
    }
}
