//! The district aggregate (a 区): its creation and its district-wide accounts (district officers,
//! district auditors). Stream: `_platform/district-{id}`.

use crate::DomainError;
use crate::aggregate::{Command, require_text};
use crate::authz::{self, Action, Scope, Target};
use crate::event::{DistrictCreated, Event};
use crate::ids::DistrictId;
use crate::users::{self, UserCommand, Users};
use serde::{Deserialize, Serialize};

pub const NAME_MAX: usize = 100;

/// State of `_platform/district-{id}`. `created` is false until `DistrictCreated`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DistrictState {
    pub created: bool,
    pub district_id: Option<DistrictId>,
    pub name: String,
    pub users: Users,
}

impl DistrictState {
    /// The authz target of this district, once created.
    pub fn target(&self) -> Option<Target> {
        self.district_id.as_ref().map(Target::district)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DistrictCommand {
    /// Platform admins create districts, once each.
    Create { district_id: DistrictId, name: String },
    /// District-wide accounts: district officers and auditors of this district.
    Users(UserCommand),
}

pub fn decide(state: &DistrictState, cmd: &Command<DistrictCommand>) -> Result<Vec<Event>, DomainError> {
    match &cmd.body {
        DistrictCommand::Create { district_id, name } => {
            authz::authorize(&cmd.actor, Action::ManagePlatform, &Target::platform())?;
            if state.created {
                return Err(DomainError::AlreadyExists { what: format!("区“{}”", state.name) });
            }
            if district_id.as_str().starts_with('_') {
                return Err(DomainError::invalid("district_id", "以“_”开头的标识为系统保留"));
            }
            require_text("name", name, NAME_MAX)?;
            Ok(vec![DistrictCreated { district_id: district_id.clone(), name: name.trim().to_owned() }.into()])
        }
        DistrictCommand::Users(c) => {
            let (Some(district_id), true) = (&state.district_id, state.created) else {
                return Err(DomainError::NotFound { what: "区".to_owned() });
            };
            let own_scope = |scope: &Scope| match scope {
                Scope::District { district_id: d } if d == district_id => Ok(()),
                _ => Err(DomainError::invalid("scope", "区账号只能授予本区范围的角色")),
            };
            users::decide(&state.users, &Target::district(district_id), own_scope, &cmd.actor, c)
        }
    }
}

pub fn evolve(mut state: DistrictState, e: &Event) -> DistrictState {
    match e {
        Event::DistrictCreated(e) => {
            state.created = true;
            state.district_id = Some(e.district_id.clone());
            state.name = e.name.clone();
        }
        other => users::evolve(&mut state.users, other),
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::{Actor, Role};
    use crate::ids::TenantId;
    use crate::users::fixtures::*;

    fn d(s: &str) -> DistrictId {
        DistrictId::parse(s).unwrap()
    }
    fn run(state: &DistrictState, a: &Actor, body: DistrictCommand) -> Result<Vec<Event>, DomainError> {
        decide(state, &cmd(a, body))
    }
    fn fold(mut state: DistrictState, events: Vec<Event>) -> DistrictState {
        for e in &events {
            state = evolve(state, e);
        }
        state
    }
    fn create(id: &str, name: &str) -> DistrictCommand {
        DistrictCommand::Create { district_id: d(id), name: name.into() }
    }
    fn created() -> DistrictState {
        let s = fold(
            DistrictState::default(),
            run(&DistrictState::default(), &platform_admin(), create("d1", "XX区")).unwrap(),
        );
        let c = UserCommand::CreateUser {
            user_id: uid("liu"),
            username: "liuqiang".into(),
            display_name: "刘强".into(),
            password_hash: HASH.into(),
        };
        let events = run(&s, &system_admin(), DistrictCommand::Users(c)).unwrap();
        fold(s, events)
    }
    fn grant(role: Role, scope: Scope) -> DistrictCommand {
        DistrictCommand::Users(UserCommand::GrantRole { user_id: uid("liu"), role, scope })
    }

    #[test]
    fn platform_admin_creates_a_district_once() {
        let s = created();
        assert!(s.created);
        assert_eq!(s.district_id, Some(d("d1")));
        assert_eq!(s.name, "XX区");
        assert_eq!(s.target(), Some(Target::district(&d("d1"))));
        assert_eq!(run(&s, &platform_admin(), create("d1", "XX区")).unwrap_err().code(), "already_exists");
    }

    #[test]
    fn creating_a_district_needs_manage_platform() {
        let officer = actor("liu", &[(Role::DistrictOfficer, Scope::District { district_id: d("d1") })]);
        assert_eq!(run(&DistrictState::default(), &officer, create("d1", "XX区")).unwrap_err().code(), "forbidden");
        let admin = actor(
            "admin",
            &[(
                Role::SubdistrictAdmin,
                Scope::Tenant { district_id: d("d1"), tenant_id: TenantId::parse("t").unwrap() },
            )],
        );
        assert_eq!(run(&DistrictState::default(), &admin, create("d1", "XX区")).unwrap_err().code(), "forbidden");
    }

    #[test]
    fn district_name_is_required_and_bounded_and_id_not_reserved() {
        let s = DistrictState::default();
        for bad in ["", "   ", &"区".repeat(101)] {
            let err = run(&s, &platform_admin(), create("d1", bad)).unwrap_err();
            assert_eq!((err.code(), err.field()), ("invalid", Some("name")));
        }
        assert!(run(&s, &platform_admin(), create("d1", &"区".repeat(100))).is_ok());
        let err = run(&s, &platform_admin(), create("_d", "XX区")).unwrap_err();
        assert_eq!((err.code(), err.field()), ("invalid", Some("district_id")));
    }

    #[test]
    fn users_need_the_district_to_exist() {
        let c = DistrictCommand::Users(UserCommand::EnableUser { user_id: uid("liu") });
        assert_eq!(run(&DistrictState::default(), &platform_admin(), c).unwrap_err().code(), "not_found");
    }

    #[test]
    fn district_users_are_managed_by_the_system_and_security_admins_only() {
        let s = created();
        let officer = actor("other", &[(Role::DistrictOfficer, Scope::District { district_id: d("d1") })]);
        let c = grant(Role::DistrictOfficer, Scope::District { district_id: d("d1") });
        assert_eq!(run(&s, &officer, c.clone()).unwrap_err().code(), "forbidden");
        assert_eq!(run(&s, &platform_admin(), c.clone()).unwrap_err().code(), "forbidden");
        assert_eq!(run(&s, &system_admin(), c.clone()).unwrap_err().code(), "forbidden");
        assert!(run(&s, &security_admin(), c).is_ok());
    }

    #[test]
    fn only_this_districts_officer_and_auditor_grants() {
        let s = created();
        let own = Scope::District { district_id: d("d1") };
        for role in [Role::DistrictOfficer, Role::Auditor] {
            let s = fold(s.clone(), run(&s, &security_admin(), grant(role, own.clone())).unwrap());
            assert_eq!(s.users.by_id[&uid("liu")].grants[0].role, role);
        }
        let refused = [
            (Role::DistrictOfficer, Scope::District { district_id: d("d2") }),
            (Role::Auditor, Scope::Platform),
            (Role::PlatformAdmin, Scope::Platform),
            (Role::Inspector, Scope::Tenant { district_id: d("d1"), tenant_id: TenantId::parse("t1").unwrap() }),
        ];
        for (role, scope) in refused {
            let err = run(&s, &security_admin(), grant(role, scope.clone())).unwrap_err();
            assert_eq!((err.code(), err.field()), ("invalid", Some("scope")), "{role:?} {scope:?}");
        }
    }
}
