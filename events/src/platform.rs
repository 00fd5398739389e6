//! The platform aggregate: platform-wide accounts (platform admins, platform auditors).
//! Stream: `_platform/platform`.

use crate::DomainError;
use crate::aggregate::Command;
use crate::authz::{Scope, Target};
use crate::event::Event;
use crate::users::{self, UserCommand, Users};
use serde::{Deserialize, Serialize};

/// State of `_platform/platform` (platform-scoped users).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlatformState {
    pub users: Users,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformCommand {
    Users(UserCommand),
}

/// Platform users are managed by platform admins and hold only platform-wide grants.
pub fn decide(state: &PlatformState, cmd: &Command<PlatformCommand>) -> Result<Vec<Event>, DomainError> {
    match &cmd.body {
        PlatformCommand::Users(c) => users::decide(&state.users, &Target::platform(), platform_scope, &cmd.actor, c),
    }
}

pub fn evolve(mut state: PlatformState, e: &Event) -> PlatformState {
    users::evolve(&mut state.users, e);
    state
}

fn platform_scope(scope: &Scope) -> Result<(), DomainError> {
    match scope {
        Scope::Platform => Ok(()),
        _ => Err(DomainError::invalid("scope", "平台账号只能授予全平台范围的角色")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::{Actor, Role};
    use crate::ids::DistrictId;
    use crate::users::fixtures::*;

    fn run(state: &PlatformState, a: &Actor, c: UserCommand) -> Result<Vec<Event>, DomainError> {
        decide(state, &cmd(a, PlatformCommand::Users(c)))
    }
    fn create(id: &str) -> UserCommand {
        UserCommand::CreateUser {
            user_id: uid(id),
            username: id.into(),
            display_name: "平台管理员".into(),
            password_hash: HASH.into(),
        }
    }
    fn grant(id: &str, role: Role, scope: Scope) -> UserCommand {
        UserCommand::GrantRole { user_id: uid(id), role, scope }
    }

    #[test]
    fn the_system_actor_bootstraps_the_first_platform_admin() {
        let mut state = PlatformState::default();
        for c in [create("root"), grant("root", Role::PlatformAdmin, Scope::Platform)] {
            for e in run(&state, &Actor::system(), c).unwrap() {
                state = evolve(state, &e);
            }
        }
        let root = &state.users.by_id[&uid("root")];
        assert_eq!(root.grants.len(), 1);
        assert_eq!(root.grants[0].role, Role::PlatformAdmin);
        assert_eq!(root.password_hash.as_deref(), Some(HASH));
    }

    #[test]
    fn platform_accounts_are_the_system_admins_and_grants_the_security_admins() {
        let d1 = DistrictId::parse("d1").unwrap();
        let officer = actor("officer", &[(Role::DistrictOfficer, Scope::District { district_id: d1 })]);
        assert_eq!(run(&PlatformState::default(), &officer, create("x")).unwrap_err().code(), "forbidden");
        let auditor = actor("audit", &[(Role::Auditor, Scope::Platform)]);
        assert_eq!(run(&PlatformState::default(), &auditor, create("x")).unwrap_err().code(), "forbidden");
        assert_eq!(run(&PlatformState::default(), &platform_admin(), create("x")).unwrap_err().code(), "forbidden");
        assert_eq!(run(&PlatformState::default(), &security_admin(), create("x")).unwrap_err().code(), "forbidden");
        assert!(run(&PlatformState::default(), &system_admin(), create("x")).is_ok());
    }

    #[test]
    fn only_platform_scopes_are_granted() {
        let mut state = PlatformState::default();
        for e in run(&state, &system_admin(), create("audit")).unwrap() {
            state = evolve(state, &e);
        }
        let district = Scope::District { district_id: DistrictId::parse("d1").unwrap() };
        let err = run(&state, &security_admin(), grant("audit", Role::Auditor, district)).unwrap_err();
        assert_eq!((err.code(), err.field()), ("invalid", Some("scope")));
        assert_eq!(run(&state, &security_admin(), grant("audit", Role::Auditor, Scope::Platform)).unwrap().len(), 1);
        assert_eq!(
            run(&state, &system_admin(), grant("audit", Role::Auditor, Scope::Platform)).unwrap_err().code(),
            "forbidden",
            "a system admin cannot grant"
        );
    }
}
