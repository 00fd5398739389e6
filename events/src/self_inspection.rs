//! The self-inspection aggregate: a 自查报告 a community submits, once, optionally in answer to an
//! inspection. Stream: `{tenant}/self-inspection-{id}`.

use crate::DomainError;
use crate::aggregate::{Command, require_text};
use crate::authz::{self, Action};
use crate::event::{Event, SelfInspectionSubmitted};
use crate::ids::{CommunityId, InspectionId, SelfInspectionId};
use crate::tenant::TenantState;
use serde::{Deserialize, Serialize};

pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;
pub const TITLE_MAX: usize = 200;
pub const TEXT_MAX: usize = 50_000;

/// State of `{tenant}/self-inspection-{id}`: empty until submitted, then the report as submitted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SelfInspectionState {
    pub submitted: bool,
    pub report: Option<SelfInspectionSubmitted>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelfInspectionCommand {
    /// `title` may be empty (lists then show community and year); `text` is the report itself.
    Submit {
        self_inspection_id: SelfInspectionId,
        community_id: CommunityId,
        year: i32,
        title: String,
        text: String,
        inspection_id: Option<InspectionId>,
    },
}

/// `tenant` is the state of the tenant the stream belongs to (read-only context).
pub fn decide(
    tenant: &TenantState,
    state: &SelfInspectionState,
    cmd: &Command<SelfInspectionCommand>,
) -> Result<Vec<Event>, DomainError> {
    match &cmd.body {
        SelfInspectionCommand::Submit { self_inspection_id, community_id, year, title, text, inspection_id } => {
            let target = match tenant.community_target(Some(community_id)) {
                Some(t) if tenant.created => t,
                _ => return Err(DomainError::NotFound { what: "街道".to_owned() }),
            };
            authz::authorize(&cmd.actor, Action::SubmitSelfInspection, &target)?;
            if state.submitted {
                return Err(DomainError::AlreadyExists { what: format!("自查报告“{self_inspection_id}”") });
            }
            if !tenant.communities.contains_key(community_id) {
                return Err(DomainError::NotFound { what: format!("社区“{community_id}”") });
            }
            if !YEARS.contains(year) {
                return Err(DomainError::invalid("year", format!("年度应在{}至{}之间", YEARS.start(), YEARS.end())));
            }
            if title.chars().count() > TITLE_MAX {
                return Err(DomainError::invalid("title", format!("不能超过{TITLE_MAX}个字符")));
            }
            require_text("text", text, TEXT_MAX)?;
            Ok(vec![
                SelfInspectionSubmitted {
                    self_inspection_id: self_inspection_id.clone(),
                    community_id: community_id.clone(),
                    year: *year,
                    title: title.trim().to_owned(),
                    text: text.clone(),
                    inspection_id: inspection_id.clone(),
                }
                .into(),
            ])
        }
    }
}

pub fn evolve(mut state: SelfInspectionState, e: &Event) -> SelfInspectionState {
    if let Event::SelfInspectionSubmitted(e) = e {
        state.submitted = true;
        state.report = Some(e.clone());
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::{Actor, Role, Scope};
    use crate::event::{CommunityAdded, InspectionMethod, TenantCreated};
    use crate::ids::{DistrictId, TenantId};
    use crate::users::fixtures::*;

    const TEXT: &str = "2023年以来，本社区高度重视意识形态工作，把落实“第一议题制度”与“学习强国”学习平台推广应用有机结合起来，开展理论宣讲会等10场。";

    fn d1() -> DistrictId {
        DistrictId::parse("d1").unwrap()
    }
    fn t1() -> TenantId {
        TenantId::parse("t1").unwrap()
    }
    fn c(s: &str) -> CommunityId {
        CommunityId::parse(s).unwrap()
    }
    /// XX街道 with 东风社区 (c1) and 西山社区 (c2).
    fn tenant() -> TenantState {
        let events: Vec<Event> = vec![
            TenantCreated {
                tenant_id: t1(),
                district_id: d1(),
                name: "XX街道".into(),
                methods: InspectionMethod::builtin_terms(),
                categories: vec![],
            }
            .into(),
            CommunityAdded { community_id: c("c1"), name: "东风社区".into() }.into(),
            CommunityAdded { community_id: c("c2"), name: "西山社区".into() }.into(),
        ];
        events.iter().fold(TenantState::default(), crate::tenant::evolve)
    }
    fn officer_of(community: &str) -> Actor {
        let scope = Scope::Community { district_id: d1(), tenant_id: t1(), community_id: c(community) };
        actor("secretary", &[(Role::CommunityOfficer, scope)])
    }
    fn submit(community: &str, year: i32, title: &str, text: &str) -> SelfInspectionCommand {
        SelfInspectionCommand::Submit {
            self_inspection_id: SelfInspectionId::parse("s1").unwrap(),
            community_id: c(community),
            year,
            title: title.into(),
            text: text.into(),
            inspection_id: Some(InspectionId::parse("i2023").unwrap()),
        }
    }
    fn ok_submit() -> SelfInspectionCommand {
        submit("c1", 2023, "东风社区2023年度意识形态工作自查报告", TEXT)
    }
    fn run(
        t: &TenantState,
        s: &SelfInspectionState,
        a: &Actor,
        body: SelfInspectionCommand,
    ) -> Result<Vec<Event>, DomainError> {
        decide(t, s, &cmd(a, body))
    }
    fn err(r: Result<Vec<Event>, DomainError>) -> (&'static str, Option<String>) {
        let e = r.unwrap_err();
        (e.code(), e.field().map(str::to_owned))
    }

    #[test]
    fn a_community_officer_submits_for_their_community() {
        let events = run(&tenant(), &SelfInspectionState::default(), &officer_of("c1"), ok_submit()).unwrap();
        assert_eq!(events.len(), 1);
        let state = events.iter().fold(SelfInspectionState::default(), evolve);
        assert!(state.submitted);
        let report = state.report.unwrap();
        assert_eq!((report.community_id, report.year, report.text.as_str()), (c("c1"), 2023, TEXT));
        assert_eq!(report.inspection_id, Some(InspectionId::parse("i2023").unwrap()));
    }

    #[test]
    fn only_once_per_stream() {
        let events = run(&tenant(), &SelfInspectionState::default(), &officer_of("c1"), ok_submit()).unwrap();
        let state = events.iter().fold(SelfInspectionState::default(), evolve);
        assert_eq!(err(run(&tenant(), &state, &officer_of("c1"), ok_submit())).0, "already_exists");
    }

    #[test]
    fn needs_submit_self_inspection_on_that_community() {
        let s = SelfInspectionState::default();
        // Another community's officer.
        assert_eq!(err(run(&tenant(), &s, &officer_of("c2"), ok_submit())).0, "forbidden");
        // Sub-district admins, inspectors and platform admins do not submit 自查报告.
        let tenant_scope = Scope::Tenant { district_id: d1(), tenant_id: t1() };
        for a in [
            actor("admin", &[(Role::SubdistrictAdmin, tenant_scope.clone())]),
            actor("zhang", &[(Role::Inspector, tenant_scope)]),
            platform_admin(),
        ] {
            assert_eq!(err(run(&tenant(), &s, &a, ok_submit())).0, "forbidden", "{a:?}");
        }
        // The same community id in another tenant does not count.
        let elsewhere =
            Scope::Community { district_id: d1(), tenant_id: TenantId::parse("t2").unwrap(), community_id: c("c1") };
        let a = actor("secretary", &[(Role::CommunityOfficer, elsewhere)]);
        assert_eq!(err(run(&tenant(), &s, &a, ok_submit())).0, "forbidden");
    }

    #[test]
    fn the_tenant_and_the_community_must_exist() {
        let s = SelfInspectionState::default();
        assert_eq!(err(run(&TenantState::default(), &s, &officer_of("c1"), ok_submit())).0, "not_found");
        // An officer whose grant names a community the tenant does not (or no longer) know.
        let r = run(&tenant(), &s, &officer_of("c9"), submit("c9", 2023, "", TEXT));
        assert_eq!(err(r).0, "not_found");
    }

    #[test]
    fn year_is_2000_to_2100() {
        let s = SelfInspectionState::default();
        for bad in [1999, 2101, 0, -2023] {
            assert_eq!(
                err(run(&tenant(), &s, &officer_of("c1"), submit("c1", bad, "", TEXT))),
                ("invalid", Some("year".into()))
            );
        }
        for good in [2000, 2100] {
            assert!(run(&tenant(), &s, &officer_of("c1"), submit("c1", good, "", TEXT)).is_ok());
        }
    }

    #[test]
    fn title_is_optional_but_bounded() {
        let s = SelfInspectionState::default();
        let r = run(&tenant(), &s, &officer_of("c1"), submit("c1", 2023, &"题".repeat(201), TEXT));
        assert_eq!(err(r), ("invalid", Some("title".into())));
        assert!(run(&tenant(), &s, &officer_of("c1"), submit("c1", 2023, &"题".repeat(200), TEXT)).is_ok());
        assert!(run(&tenant(), &s, &officer_of("c1"), submit("c1", 2023, "", TEXT)).is_ok());
    }

    #[test]
    fn text_is_required_and_bounded() {
        let s = SelfInspectionState::default();
        for bad in ["", " \n ", &"字".repeat(50_001)] {
            let r = run(&tenant(), &s, &officer_of("c1"), submit("c1", 2023, "自查报告", bad));
            assert_eq!(err(r), ("invalid", Some("text".into())));
        }
        assert!(run(&tenant(), &s, &officer_of("c1"), submit("c1", 2023, "自查报告", &"字".repeat(50_000))).is_ok());
    }
}
