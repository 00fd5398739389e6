//! The directory: districts, tenants (with their communities, finding categories and checklists) and
//! the users of every scope. The API logs in and builds an [`Actor`] from it.

use super::{StreamKind, stream_kind};
use crate::authz::{Actor, Grant};
use crate::envelope::RecordedEvent;
use crate::event::{ChecklistItem, Event, Points};
use crate::ids::{ChecklistId, CommunityId, DistrictId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DistrictEntry {
    pub district_id: Option<DistrictId>,
    pub name: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunityEntry {
    pub community_id: CommunityId,
    pub name: String,
}

/// An entry of a tenant's vocabulary: a finding category or an inspection method. A retired entry
/// stays (what used it keeps its name) but new work cannot choose it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermEntry {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub retired: bool,
}

pub type CategoryEntry = TermEntry;

/// Adds (or brings back under a new name) an entry, keeping the order entries were first added in.
fn add_term(list: &mut Vec<TermEntry>, code: &str, name: &str) {
    match list.iter_mut().find(|x| x.code == code) {
        Some(x) => {
            x.name = name.to_owned();
            x.retired = false;
        }
        None => list.push(TermEntry { code: code.to_owned(), name: name.to_owned(), retired: false }),
    }
}

fn term_mut<'a>(list: &'a mut [TermEntry], code: &str) -> Option<&'a mut TermEntry> {
    list.iter_mut().find(|x| x.code == code)
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistEntry {
    pub checklist_id: ChecklistId,
    pub title: String,
    pub items: Vec<ChecklistItem>,
}

impl ChecklistEntry {
    /// The full marks: the sum of every item's `max_points`.
    pub fn total(&self) -> Points {
        Points(self.items.iter().map(|i| i.max_points.0).sum())
    }
}

/// A 街道 with its own data. Communities and categories keep the order they were added in.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TenantEntry {
    pub tenant_id: Option<TenantId>,
    pub district_id: Option<DistrictId>,
    pub name: String,
    pub communities: Vec<CommunityEntry>,
    pub categories: Vec<CategoryEntry>,
    /// The tenant's inspection methods (督查方式), retired ones included.
    #[serde(default)]
    pub methods: Vec<TermEntry>,
    pub checklists: Vec<ChecklistEntry>,
}

impl TenantEntry {
    pub fn community_name(&self, id: &CommunityId) -> Option<&str> {
        self.communities.iter().find(|c| &c.community_id == id).map(|c| c.name.as_str())
    }
    /// The category's name, or its code when the tenant never named it.
    pub fn category_name<'a>(&'a self, code: &'a str) -> &'a str {
        self.categories.iter().find(|c| c.code == code).map_or(code, |c| c.name.as_str())
    }
    /// The method's name, or its built-in name, or its code.
    pub fn method_name<'a>(&'a self, m: &'a crate::event::InspectionMethod) -> &'a str {
        self.methods
            .iter()
            .find(|x| x.code == m.code())
            .map(|x| x.name.as_str())
            .or(m.builtin_name())
            .unwrap_or(m.code())
    }
    pub fn checklist(&self, id: &ChecklistId) -> Option<&ChecklistEntry> {
        self.checklists.iter().find(|c| &c.checklist_id == id)
    }
}

/// Which scope's stream owns an account.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OwnerScope {
    Platform,
    District { district_id: DistrictId },
    Tenant { tenant_id: TenantId },
}

/// One account.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEntry {
    pub user_id: UserId,
    pub username: String,
    pub display_name: String,
    /// argon2id PHC string; `None` until a password is set.
    pub password_hash: Option<String>,
    pub disabled: bool,
    pub grants: Vec<Grant>,
    pub owner: OwnerScope,
    /// The password was set by an administrator (creation, reset): changed at the next login.
    #[serde(default)]
    pub password_temporary: bool,
    /// When the password was set (the event's time, RFC 3339): for expiry.
    #[serde(default)]
    pub password_set_at: Option<String>,
    /// The last password hashes, oldest first (the current one last): "not one of the last N".
    #[serde(default)]
    pub password_history: Vec<String>,
    /// A second factor (TOTP) is enrolled.
    #[serde(default)]
    pub second_factor: bool,
    /// The mobile number (personal data: shown whole only to the roles that need it).
    #[serde(default)]
    pub phone: Option<String>,
}

/// How many password hashes a user entry keeps (the policy's history is at most this).
pub const PASSWORD_HISTORY_KEPT: usize = 24;

impl UserEntry {
    fn set_password(&mut self, hash: &str, temporary: bool, at: &str) {
        self.password_hash = Some(hash.to_owned());
        self.password_temporary = temporary;
        self.password_set_at = Some(at.to_owned());
        self.password_history.push(hash.to_owned());
        if self.password_history.len() > PASSWORD_HISTORY_KEPT {
            self.password_history.remove(0);
        }
    }

    /// The actor for this account with every grant it holds now. Check `disabled` first.
    pub fn actor(&self) -> Actor {
        Actor { user_id: self.user_id.clone(), grants: self.grants.clone() }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Directory {
    districts: BTreeMap<DistrictId, DistrictEntry>,
    tenants: BTreeMap<TenantId, TenantEntry>,
    users: BTreeMap<UserId, UserEntry>,
    /// username → user id. The first account to claim a name keeps it (the domain refuses
    /// duplicates; this only makes a bad log deterministic).
    usernames: BTreeMap<String, UserId>,
    /// The security policy in force (`None`: none set yet, the defaults apply).
    #[serde(default)]
    security_policy: Option<crate::security::SecurityPolicy>,
}

impl Directory {
    pub fn district(&self, id: &DistrictId) -> Option<&DistrictEntry> {
        self.districts.get(id)
    }
    pub fn districts(&self) -> impl Iterator<Item = (&DistrictId, &DistrictEntry)> {
        self.districts.iter()
    }
    pub fn tenant(&self, id: &TenantId) -> Option<&TenantEntry> {
        self.tenants.get(id)
    }
    pub fn tenants(&self) -> impl Iterator<Item = (&TenantId, &TenantEntry)> {
        self.tenants.iter()
    }
    /// The sub-districts registered with a district, by tenant id.
    pub fn tenants_in<'a>(&'a self, district: &'a DistrictId) -> impl Iterator<Item = (&'a TenantId, &'a TenantEntry)> {
        self.tenants.iter().filter(move |(_, t)| t.district_id.as_ref() == Some(district))
    }
    pub fn user(&self, id: &UserId) -> Option<&UserEntry> {
        self.users.get(id)
    }
    /// Every account, by user id.
    pub fn users(&self) -> impl Iterator<Item = &UserEntry> {
        self.users.values()
    }
    /// For login: exact username match.
    pub fn user_by_username(&self, username: &str) -> Option<&UserEntry> {
        self.usernames.get(username).and_then(|id| self.users.get(id))
    }
    /// The accounts a scope owns (for user management), by user id.
    pub fn users_owned_by<'a>(&'a self, owner: &'a OwnerScope) -> impl Iterator<Item = &'a UserEntry> {
        self.users.values().filter(move |u| &u.owner == owner)
    }
    /// The security policy in force: the last one set, or the defaults.
    pub fn security_policy(&self) -> crate::security::SecurityPolicy {
        self.security_policy.clone().unwrap_or_default()
    }
    /// Whether a security administrator has set a policy (else the defaults apply).
    pub fn security_policy_set(&self) -> bool {
        self.security_policy.is_some()
    }
    /// A user's display name, or the id itself for an unknown user.
    pub fn display_name<'a>(&'a self, id: &'a UserId) -> &'a str {
        self.users.get(id).map_or(id.as_str(), |u| u.display_name.as_str())
    }

    /// Whether the event is about the directory (then it is folded here and not into a tenant's
    /// facts). Decided by the event's kind alone, so a tenant's share can be folded apart from the
    /// directory (the fold in two passes: `ReadModel::apply_head`, `TenantShare::apply`).
    pub fn handles(event: &Event) -> bool {
        matches!(
            event,
            Event::DistrictCreated(_)
                | Event::TenantCreated(_)
                | Event::CommunityAdded(_)
                | Event::CommunityRenamed(_)
                | Event::FindingCategoryAdded(_)
                | Event::FindingCategoryRenamed(_)
                | Event::FindingCategoryRetired(_)
                | Event::MethodAdded(_)
                | Event::MethodRenamed(_)
                | Event::MethodRetired(_)
                | Event::ChecklistDefined(_)
                | Event::UserCreated(_)
                | Event::UserContactSet(_)
                | Event::PasswordSet(_)
                | Event::PasswordChanged(_)
                | Event::SecondFactorEnrolled(_)
                | Event::SecondFactorReset(_)
                | Event::SecurityPolicySet(_)
                | Event::RoleGranted(_)
                | Event::RoleRevoked(_)
                | Event::UserDisabled(_)
                | Event::UserEnabled(_)
        )
    }

    /// Folds a directory event; returns false (and does nothing) when the event is not about the
    /// directory, as [`Self::handles`] says.
    pub(crate) fn apply(&mut self, e: &RecordedEvent, event: &Event) -> bool {
        if !Self::handles(event) {
            return false;
        }
        match event {
            Event::DistrictCreated(d) => {
                let entry = self.districts.entry(d.district_id.clone()).or_default();
                entry.district_id = Some(d.district_id.clone());
                entry.name.clone_from(&d.name);
            }
            Event::TenantCreated(t) => {
                let entry = self.tenants.entry(t.tenant_id.clone()).or_default();
                entry.tenant_id = Some(t.tenant_id.clone());
                entry.district_id = Some(t.district_id.clone());
                entry.name.clone_from(&t.name);
                for m in &t.methods {
                    add_term(&mut entry.methods, &m.code, &m.name);
                }
                for c in &t.categories {
                    add_term(&mut entry.categories, &c.code, &c.name);
                }
            }
            Event::CommunityAdded(c) => {
                let communities = &mut self.tenant_mut(e).communities;
                match communities.iter_mut().find(|x| x.community_id == c.community_id) {
                    Some(x) => x.name.clone_from(&c.name),
                    None => {
                        communities.push(CommunityEntry { community_id: c.community_id.clone(), name: c.name.clone() })
                    }
                }
            }
            Event::CommunityRenamed(c) => {
                if let Some(x) = self.tenant_mut(e).communities.iter_mut().find(|x| x.community_id == c.community_id) {
                    x.name.clone_from(&c.name);
                }
            }
            Event::FindingCategoryAdded(c) => add_term(&mut self.tenant_mut(e).categories, &c.code, &c.name),
            Event::FindingCategoryRenamed(c) => {
                if let Some(x) = term_mut(&mut self.tenant_mut(e).categories, &c.code) {
                    x.name.clone_from(&c.name);
                }
            }
            Event::FindingCategoryRetired(c) => {
                if let Some(x) = term_mut(&mut self.tenant_mut(e).categories, &c.code) {
                    x.retired = true;
                }
            }
            Event::MethodAdded(m) => add_term(&mut self.tenant_mut(e).methods, &m.code, &m.name),
            Event::MethodRenamed(m) => {
                if let Some(x) = term_mut(&mut self.tenant_mut(e).methods, &m.code) {
                    x.name.clone_from(&m.name);
                }
            }
            Event::MethodRetired(m) => {
                if let Some(x) = term_mut(&mut self.tenant_mut(e).methods, &m.code) {
                    x.retired = true;
                }
            }
            Event::ChecklistDefined(c) => {
                let entry = ChecklistEntry {
                    checklist_id: c.checklist_id.clone(),
                    title: c.title.clone(),
                    items: c.items.clone(),
                };
                let checklists = &mut self.tenant_mut(e).checklists;
                match checklists.iter_mut().find(|x| x.checklist_id == c.checklist_id) {
                    Some(x) => *x = entry,
                    None => checklists.push(entry),
                }
            }
            Event::UserCreated(u) => {
                let owner = owner_of(e);
                self.usernames.entry(u.username.clone()).or_insert_with(|| u.user_id.clone());
                self.users.insert(
                    u.user_id.clone(),
                    UserEntry {
                        user_id: u.user_id.clone(),
                        username: u.username.clone(),
                        display_name: u.display_name.clone(),
                        password_hash: None,
                        disabled: false,
                        grants: Vec::new(),
                        owner,
                        password_temporary: false,
                        password_set_at: None,
                        password_history: Vec::new(),
                        second_factor: false,
                        phone: None,
                    },
                );
            }
            Event::UserContactSet(c) => {
                if let Some(u) = self.users.get_mut(&c.user_id) {
                    u.phone = (!c.phone.is_empty()).then(|| c.phone.clone());
                }
            }
            Event::PasswordSet(p) => {
                // Schema of before the security policy: never temporary.
                if let Some(u) = self.users.get_mut(&p.user_id) {
                    u.set_password(&p.password_hash, false, &e.occurred_at);
                }
            }
            Event::PasswordChanged(p) => {
                if let Some(u) = self.users.get_mut(&p.user_id) {
                    u.set_password(&p.password_hash, p.temporary, &e.occurred_at);
                }
            }
            Event::SecondFactorEnrolled(s) => {
                if let Some(u) = self.users.get_mut(&s.user_id) {
                    u.second_factor = true;
                }
            }
            Event::SecondFactorReset(s) => {
                if let Some(u) = self.users.get_mut(&s.user_id) {
                    u.second_factor = false;
                }
            }
            Event::SecurityPolicySet(p) => {
                self.security_policy = Some(p.policy.clone());
            }
            Event::RoleGranted(g) => {
                if let Some(u) = self.users.get_mut(&g.user_id)
                    && !u.grants.iter().any(|x| x.role == g.role && x.scope == g.scope)
                {
                    u.grants.push(Grant { role: g.role, scope: g.scope.clone() });
                }
            }
            Event::RoleRevoked(g) => {
                if let Some(u) = self.users.get_mut(&g.user_id) {
                    u.grants.retain(|x| !(x.role == g.role && x.scope == g.scope));
                }
            }
            Event::UserDisabled(d) => {
                if let Some(u) = self.users.get_mut(&d.user_id) {
                    u.disabled = true;
                }
            }
            Event::UserEnabled(d) => {
                if let Some(u) = self.users.get_mut(&d.user_id) {
                    u.disabled = false;
                }
            }
            // Not about the directory: `handles` said so above.
            _ => return false,
        }
        true
    }

    fn tenant_mut(&mut self, e: &RecordedEvent) -> &mut TenantEntry {
        // Directory events are rare: the clone for `entry` costs nothing that matters.
        self.tenants
            .entry(e.tenant.clone())
            .or_insert_with(|| TenantEntry { tenant_id: Some(e.tenant.clone()), ..TenantEntry::default() })
    }
}

/// The scope whose stream recorded a user event.
fn owner_of(e: &RecordedEvent) -> OwnerScope {
    match stream_kind(&e.stream) {
        StreamKind::District(d) => match DistrictId::parse(d) {
            Ok(district_id) => OwnerScope::District { district_id },
            Err(_) => OwnerScope::Platform,
        },
        _ if e.tenant.is_platform() => OwnerScope::Platform,
        _ => OwnerScope::Tenant { tenant_id: e.tenant.clone() },
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::authz::{Role, Scope};

    #[test]
    fn directory_knows_districts_tenants_and_users() {
        let m = fold(&sample_log());
        let dir = m.directory();
        assert_eq!(dir.district(&did("d1")).unwrap().name, "XX区");
        let t1 = dir.tenant(&tid("t1")).unwrap();
        assert_eq!(t1.name, "XX街道");
        assert_eq!(t1.district_id, Some(did("d1")));
        assert_eq!(t1.communities.len(), 6);
        assert_eq!(t1.community_name(&cid("c1")), Some("东风社区"));
        assert_eq!(t1.category_name("theory"), "理论学习");
        assert_eq!(t1.category_name("unknown"), "unknown");
        assert_eq!(t1.checklist(&ChecklistId::parse("cl1").unwrap()).unwrap().total(), Points::whole(100));
        assert_eq!(dir.tenants_in(&did("d1")).count(), 2);

        let admin = dir.user_by_username("t1admin").unwrap();
        assert_eq!(admin.user_id, uid("admin1"));
        assert_eq!(admin.owner, OwnerScope::Tenant { tenant_id: tid("t1") });
        assert_eq!(admin.password_hash.as_deref(), Some("$argon2id$v=19$fake"));
        assert_eq!(admin.actor().grants[0].role, Role::SubdistrictAdmin);
        let root = dir.user_by_username("root").unwrap();
        assert_eq!(root.owner, OwnerScope::Platform);
        let officer = dir.user_by_username("qxb").unwrap();
        assert_eq!(officer.owner, OwnerScope::District { district_id: did("d1") });
        assert_eq!(dir.users_owned_by(&OwnerScope::Tenant { tenant_id: tid("t1") }).count(), 4);
        assert_eq!(dir.display_name(&uid("insp1")), "王督查");
        assert!(dir.user_by_username("nobody").is_none());
    }

    #[test]
    fn grants_revocations_and_disabling_fold() {
        let mut log = sample_log();
        let scope = Scope::Tenant { district_id: did("d1"), tenant_id: tid("t1") };
        log.push(ev(
            "t1",
            "t1/tenant",
            "2024-04-01T01:00:00.000000Z",
            crate::event::RoleGranted { user_id: uid("insp1"), role: Role::Auditor, scope: scope.clone() },
        ));
        log.push(ev(
            "t1",
            "t1/tenant",
            "2024-04-01T01:00:01.000000Z",
            crate::event::RoleRevoked { user_id: uid("insp1"), role: Role::Inspector, scope },
        ));
        log.push(ev(
            "t1",
            "t1/tenant",
            "2024-04-01T01:00:02.000000Z",
            crate::event::UserDisabled { user_id: uid("insp2"), reason: "调离".into() },
        ));
        let log = renumber(log);
        let m = fold(&log);
        let insp1 = m.directory().user(&uid("insp1")).unwrap();
        assert_eq!(insp1.grants.iter().map(|g| g.role).collect::<Vec<_>>(), vec![Role::Auditor]);
        assert!(m.directory().user(&uid("insp2")).unwrap().disabled);
        assert!(!insp1.disabled);
    }
}
