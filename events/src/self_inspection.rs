//! The self-inspection aggregate: a 自查报告 a community submits, once, optionally in answer to an
//! inspection. Stream: `{tenant}/self-inspection-{id}`.

use crate::DomainError;
use crate::aggregate::{Command, require_text};
use crate::authz::{self, Action};
use crate::event::{Event, ReportSection, SelfInspectionSubmitted};
use crate::ids::{CommunityId, InspectionId, SelfInspectionId};
use crate::tenant::TenantState;
use serde::{Deserialize, Serialize};

pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;
pub const TITLE_MAX: usize = 200;
pub const TEXT_MAX: usize = 50_000;
/// At most this many sections, and headings down to this level (一、 （一） 1.).
pub const SECTIONS_MAX: usize = 200;
pub const LEVEL_MAX: u8 = 3;

/// State of `{tenant}/self-inspection-{id}`: empty until submitted, then the report as submitted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SelfInspectionState {
    pub submitted: bool,
    pub report: Option<SelfInspectionSubmitted>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelfInspectionCommand {
    /// `title` may be empty (lists then show community and year). Either `text` is the report
    /// itself (free text), or `sections` are its numbered parts and `text` the optional opening.
    Submit {
        self_inspection_id: SelfInspectionId,
        community_id: CommunityId,
        year: i32,
        title: String,
        text: String,
        inspection_id: Option<InspectionId>,
        sections: Vec<ReportSection>,
    },
}

/// `tenant` is the state of the tenant the stream belongs to (read-only context).
pub fn decide(
    tenant: &TenantState,
    state: &SelfInspectionState,
    cmd: &Command<SelfInspectionCommand>,
) -> Result<Vec<Event>, DomainError> {
    match &cmd.body {
        SelfInspectionCommand::Submit {
            self_inspection_id,
            community_id,
            year,
            title,
            text,
            inspection_id,
            sections,
        } => {
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
            let sections = check_sections(text, sections)?;
            Ok(vec![
                SelfInspectionSubmitted {
                    self_inspection_id: self_inspection_id.clone(),
                    community_id: community_id.clone(),
                    year: *year,
                    title: title.trim().to_owned(),
                    text: text.clone(),
                    inspection_id: inspection_id.clone(),
                    sections,
                }
                .into(),
            ])
        }
    }
}

/// The title a report is shown and cited by: its own, or 「{社区}{年度}年度自查报告」.
pub fn display_title(community_name: &str, year: i32, title: &str) -> String {
    match title.trim() {
        "" => format!("{community_name}{year}年度自查报告"),
        t => t.to_owned(),
    }
}

/// Checks a report's opening `text` and `sections`, and returns the sections as stored: titles
/// trimmed and without a number typed in front (`一、`, `（二）`, `3.` … are given by position).
pub fn check_sections(text: &str, sections: &[ReportSection]) -> Result<Vec<ReportSection>, DomainError> {
    if sections.is_empty() {
        require_text("text", text, TEXT_MAX)?;
        return Ok(Vec::new());
    }
    if sections.len() > SECTIONS_MAX {
        return Err(DomainError::invalid("sections", format!("不能超过{SECTIONS_MAX}个部分")));
    }
    let mut total = text.chars().count();
    let mut previous = 0u8;
    let mut out = Vec::with_capacity(sections.len());
    for (i, s) in sections.iter().enumerate() {
        let field = |name: &str| format!("sections[{i}].{name}");
        if !(1..=LEVEL_MAX).contains(&s.level) {
            return Err(DomainError::invalid(&field("level"), format!("层级应为1至{LEVEL_MAX}（一、（一）1.）")));
        }
        if s.level > previous + 1 {
            let why = if i == 0 {
                "第一部分应为一级标题（一、）".to_owned()
            } else {
                format!("{}级标题前应有上一级标题", s.level)
            };
            return Err(DomainError::invalid(&field("level"), why));
        }
        previous = s.level;
        let title = strip_heading_number(s.title.trim());
        if title.is_empty() {
            return Err(DomainError::invalid(&field("title"), "不能为空"));
        }
        if title.chars().count() > TITLE_MAX {
            return Err(DomainError::invalid(&field("title"), format!("不能超过{TITLE_MAX}个字符")));
        }
        total += title.chars().count() + s.text.chars().count();
        out.push(ReportSection { level: s.level, title: title.to_owned(), text: s.text.trim().to_owned() });
    }
    if total > TEXT_MAX {
        return Err(DomainError::invalid("sections", format!("全文不能超过{TEXT_MAX}个字符")));
    }
    Ok(out)
}

/// A heading without the number someone typed in front of it: `一、`, `（一）`/`(一)`, `1.`/`1．`/`1、`,
/// `（1）`. Anything else is left alone (`2023年以来` keeps its digits).
pub fn strip_heading_number(title: &str) -> &str {
    const CHINESE: &str = "一二三四五六七八九十百零〇";
    let numeral = |s: &str, chinese: bool| -> usize {
        s.char_indices()
            .take_while(|(_, c)| if chinese { CHINESE.contains(*c) } else { c.is_ascii_digit() })
            .map(|(i, c)| i + c.len_utf8())
            .last()
            .unwrap_or(0)
    };
    for chinese in [true, false] {
        // （一） (一) （1） (1)
        for (open, close) in [("（", "）"), ("(", ")")] {
            if let Some(rest) = title.strip_prefix(open) {
                let n = numeral(rest, chinese);
                if n > 0
                    && let Some(after) = rest[n..].strip_prefix(close)
                {
                    return after.trim_start();
                }
            }
        }
        // 一、 1. 1． 1、 (a bare `1.5万` is a figure, not a number: a digit after the dot stays)
        let n = numeral(title, chinese);
        if n > 0 {
            let rest = &title[n..];
            for sep in ["、", "．", "."] {
                if let Some(after) = rest.strip_prefix(sep)
                    && !after.starts_with(|c: char| c.is_ascii_digit())
                {
                    return after.trim_start();
                }
            }
        }
    }
    title
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
            sections: vec![],
        }
    }
    fn sec(level: u8, title: &str, text: &str) -> ReportSection {
        ReportSection { level, title: title.into(), text: text.into() }
    }
    fn with_sections(text: &str, sections: Vec<ReportSection>) -> SelfInspectionCommand {
        match submit("c1", 2023, "东风社区2023年度意识形态工作自查报告", text) {
            SelfInspectionCommand::Submit {
                self_inspection_id,
                community_id,
                year,
                title,
                text,
                inspection_id,
                ..
            } => SelfInspectionCommand::Submit {
                self_inspection_id,
                community_id,
                year,
                title,
                text,
                inspection_id,
                sections,
            },
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

    #[test]
    fn sections_in_the_official_form_are_kept_in_order_without_typed_numbers() {
        let sections = vec![
            sec(1, "一、工作开展情况", ""),
            sec(2, "（一）强化理论武装", "开展理论宣讲会等10场。"),
            sec(3, "1. 第一议题", "  落实第一议题制度12次。 "),
            sec(2, "(二)阵地管理", "排查宣传栏8处。"),
            sec(1, "二、存在的问题", "台账不够完善。"),
            sec(1, "三、下一步打算", "继续抓好学习。"),
        ];
        let events =
            run(&tenant(), &SelfInspectionState::default(), &officer_of("c1"), with_sections("", sections)).unwrap();
        let Event::SelfInspectionSubmitted(e) = &events[0] else { panic!("{events:?}") };
        let titles: Vec<(u8, &str)> = e.sections.iter().map(|s| (s.level, s.title.as_str())).collect();
        assert_eq!(
            titles,
            vec![
                (1, "工作开展情况"),
                (2, "强化理论武装"),
                (3, "第一议题"),
                (2, "阵地管理"),
                (1, "存在的问题"),
                (1, "下一步打算")
            ]
        );
        assert_eq!(e.sections[2].text, "落实第一议题制度12次。");
        assert_eq!(e.text, "", "the opening may be empty when there are sections");
    }

    #[test]
    fn sections_are_checked_each_with_its_field() {
        let s = SelfInspectionState::default();
        let bad =
            |sections: Vec<ReportSection>| err(run(&tenant(), &s, &officer_of("c1"), with_sections("", sections)));
        let field = |f: &str| ("invalid", Some(f.to_owned()));
        assert_eq!(bad(vec![sec(2, "强化理论武装", "x")]), field("sections[0].level"));
        assert_eq!(bad(vec![sec(1, "工作开展情况", ""), sec(3, "第一议题", "x")]), field("sections[1].level"));
        assert_eq!(bad(vec![sec(0, "工作开展情况", "x")]), field("sections[0].level"));
        assert_eq!(bad(vec![sec(4, "工作开展情况", "x")]), field("sections[0].level"));
        assert_eq!(bad(vec![sec(1, "工作开展情况", ""), sec(1, "  二、 ", "x")]), field("sections[1].title"));
        assert_eq!(bad(vec![sec(1, &"题".repeat(201), "x")]), field("sections[0].title"));
        assert_eq!(bad(vec![sec(1, "工作", "x"); SECTIONS_MAX + 1]), field("sections"));
        assert_eq!(
            bad(vec![sec(1, "工作", &"字".repeat(30_000)), sec(1, "问题", &"字".repeat(30_000))]),
            field("sections")
        );
        // Without sections the text is the report and is required.
        assert_eq!(bad(vec![]), field("text"));
    }

    #[test]
    fn typed_heading_numbers_are_recognised_and_figures_are_not() {
        for (typed, kept) in [
            ("一、工作开展情况", "工作开展情况"),
            ("十二、其他", "其他"),
            ("（三）阵地管理", "阵地管理"),
            ("(1) 学习", "学习"),
            ("2．台账", "台账"),
            ("3、宣讲", "宣讲"),
            ("1.5万人次参与", "1.5万人次参与"),
            ("2023年以来的工作", "2023年以来的工作"),
            ("一把手负总责", "一把手负总责"),
            ("工作开展情况", "工作开展情况"),
        ] {
            assert_eq!(strip_heading_number(typed), kept, "{typed}");
        }
    }

    #[test]
    fn a_free_text_report_of_version_1_still_reads() {
        let v1 = r#"{"self_inspection_id":"s1","community_id":"c1","year":2023,"title":"自查报告","text":"全文","inspection_id":null}"#;
        let Event::SelfInspectionSubmitted(e) = Event::decode("SelfInspectionSubmitted", 1, v1).unwrap() else {
            panic!("not a self-inspection")
        };
        assert_eq!((e.text.as_str(), e.sections.len()), ("全文", 0));
    }
}
