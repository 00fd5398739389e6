//! The finding aggregate: the follow-up (整改) of one finding recorded in an inspection — assignment,
//! progress with evidence, submission, verification (销号) or return (退回), deadline extension (延期),
//! reminders (催办) and dismissal. Stream: `{tenant}/finding-{id}`.
//!
//! The finding itself (its community and category) is recorded in the inspection's stream; `decide`
//! receives that inspection read-only. Follow-up stays allowed after the inspection is concluded.

use crate::aggregate::{Command, require_text};
use crate::authz::{self, Action};
use crate::error::DomainError;
use crate::event::{
    DeadlineExtended, Event, EvidenceRef, FindingDismissed, ProgressReported, RectificationAssigned,
    RectificationReturned, RectificationSubmitted, RectificationVerified, ReminderIssued,
};
use crate::ids::{FindingId, InspectionId};
use crate::inspection::{InspectionState, not_found, tenant_ids};
use crate::tenant::TenantState;
use crate::time::{self, Timestamp};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Most evidence files in one progress report.
pub const EVIDENCE_MAX: usize = 20;
/// Longest evidence file name.
pub const FILENAME_MAX: usize = 255;
/// Longest long text (measure, progress, summary).
pub const TEXT_MAX: usize = 20_000;
/// Longest short text (reason, comment, reminder, title, responsible unit).
pub const SHORT_TEXT_MAX: usize = 2_000;
/// Longest person name (leader, person in charge).
pub const NAME_MAX: usize = 100;

/// Where a rectification is in its life-cycle (GUIDE §2); the ledger's 完成情况.
///
/// A returned rectification stays `Returned` until the next progress report (then `InProgress`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RectificationStatus {
    /// Recorded, no rectification assigned yet.
    #[default]
    Unassigned,
    Assigned,
    InProgress,
    Submitted,
    Returned,
    /// 销号.
    Verified,
    Dismissed,
}

impl RectificationStatus {
    pub const ALL: [RectificationStatus; 7] = [
        RectificationStatus::Unassigned,
        RectificationStatus::Assigned,
        RectificationStatus::InProgress,
        RectificationStatus::Submitted,
        RectificationStatus::Returned,
        RectificationStatus::Verified,
        RectificationStatus::Dismissed,
    ];

    pub fn code(self) -> &'static str {
        match self {
            RectificationStatus::Unassigned => "unassigned",
            RectificationStatus::Assigned => "assigned",
            RectificationStatus::InProgress => "in_progress",
            RectificationStatus::Submitted => "submitted",
            RectificationStatus::Returned => "returned",
            RectificationStatus::Verified => "verified",
            RectificationStatus::Dismissed => "dismissed",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            RectificationStatus::Unassigned => "待交办",
            RectificationStatus::Assigned => "已交办",
            RectificationStatus::InProgress => "整改中",
            RectificationStatus::Submitted => "待销号",
            RectificationStatus::Returned => "已退回",
            RectificationStatus::Verified => "已销号",
            RectificationStatus::Dismissed => "已撤销",
        }
    }

    /// Verified (销号) or dismissed: nothing more happens.
    pub fn is_closed(self) -> bool {
        matches!(self, RectificationStatus::Verified | RectificationStatus::Dismissed)
    }

    /// Assigned and not closed: someone still owes work or a decision.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            RectificationStatus::Assigned
                | RectificationStatus::InProgress
                | RectificationStatus::Submitted
                | RectificationStatus::Returned
        )
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// State of `{tenant}/finding-{id}`.
///
/// Events carry no dates of their own (the envelope does): the `*_on` dates are filled only when the
/// stream is folded with [`evolve_at`]; [`evolve`] leaves them `None`. No decision depends on them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FindingState {
    pub status: RectificationStatus,
    /// The inspection the finding was recorded in (known once assigned).
    pub inspection_id: Option<InspectionId>,
    /// e.g. 狠抓理论学习强化思想武装
    pub title: String,
    pub measure: String,
    pub responsible_unit: String,
    pub leader: String,
    pub person: String,
    /// The current deadline (after any extension), a Shanghai date.
    pub deadline: Option<NaiveDate>,
    pub assigned_on: Option<NaiveDate>,
    pub progress_reports: u32,
    pub last_progress_on: Option<NaiveDate>,
    pub submitted_on: Option<NaiveDate>,
    pub verified_on: Option<NaiveDate>,
    pub returns: u32,
    pub extensions: u32,
    pub reminders: u32,
    pub dismissed_reason: Option<String>,
}

/// What can be asked of a finding's rectification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingCommand {
    Assign {
        title: String,
        measure: String,
        responsible_unit: String,
        leader: String,
        person: String,
        deadline: NaiveDate,
    },
    ReportProgress {
        text: String,
        evidence: Vec<EvidenceRef>,
    },
    Submit {
        summary: String,
    },
    Verify {
        comment: String,
    },
    Return {
        reason: String,
    },
    ExtendDeadline {
        new_deadline: NaiveDate,
        reason: String,
    },
    Remind {
        message: String,
    },
    Dismiss {
        reason: String,
    },
}

impl FindingCommand {
    /// The action this command needs: progress and submission on the finding's community, the rest
    /// on the tenant.
    pub fn action(&self) -> Action {
        match self {
            FindingCommand::ReportProgress { .. } | FindingCommand::Submit { .. } => Action::ReportProgress,
            _ => Action::ManageRectification,
        }
    }
}

/// Decides a command on the rectification of `finding_id`, recorded in `inspection`.
pub fn decide(
    tenant: &TenantState,
    inspection: &InspectionState,
    finding_id: &FindingId,
    state: &FindingState,
    cmd: &Command<FindingCommand>,
) -> Result<Vec<Event>, DomainError> {
    tenant_ids(tenant)?;
    let missing = || not_found(format!("问题“{finding_id}”"));
    let recorded = inspection.finding(finding_id).ok_or_else(missing)?;
    let inspection_id = inspection.inspection_id.as_ref().ok_or_else(missing)?;
    if state.inspection_id.as_ref().is_some_and(|linked| linked != inspection_id) {
        return Err(missing());
    }
    let action = cmd.body.action();
    let target = match action {
        // A cross-cutting finding (no community) is covered by tenant-scoped grants only.
        Action::ReportProgress => tenant.community_target(recorded.community_id.as_ref()),
        _ => tenant.target(),
    }
    .ok_or_else(|| not_found("街道"))?;
    authz::authorize(&cmd.actor, action, &target)?;
    let today = time::local_date(&cmd.at);

    use RectificationStatus::*;
    let event: Event = match &cmd.body {
        FindingCommand::Assign { title, measure, responsible_unit, leader, person, deadline } => {
            require(state, &[Unassigned])?;
            max_len("title", title, SHORT_TEXT_MAX)?;
            require_text("measure", measure, TEXT_MAX)?;
            require_text("responsible_unit", responsible_unit, SHORT_TEXT_MAX)?;
            require_text("leader", leader, NAME_MAX)?;
            require_text("person", person, NAME_MAX)?;
            if *deadline < today {
                return Err(DomainError::DeadlineBeforeAssignment {
                    deadline: deadline.to_string(),
                    assigned_on: today.to_string(),
                });
            }
            RectificationAssigned {
                inspection_id: inspection_id.clone(),
                title: title.trim().to_owned(),
                measure: measure.trim().to_owned(),
                responsible_unit: responsible_unit.trim().to_owned(),
                leader: leader.trim().to_owned(),
                person: person.trim().to_owned(),
                deadline: *deadline,
            }
            .into()
        }
        FindingCommand::ReportProgress { text, evidence } => {
            require_not_closed(state)?;
            require(state, &[Assigned, InProgress, Returned])?;
            require_text("text", text, TEXT_MAX)?;
            check_evidence(evidence)?;
            ProgressReported { text: text.trim().to_owned(), evidence: evidence.clone() }.into()
        }
        FindingCommand::Submit { summary } => {
            require_not_closed(state)?;
            // InProgress means at least one progress report since assignment or the last return.
            require(state, &[InProgress])?;
            require_text("summary", summary, TEXT_MAX)?;
            RectificationSubmitted { summary: summary.trim().to_owned() }.into()
        }
        FindingCommand::Verify { comment } => {
            require(state, &[Submitted])?;
            max_len("comment", comment, SHORT_TEXT_MAX)?;
            RectificationVerified { comment: comment.trim().to_owned() }.into()
        }
        FindingCommand::Return { reason } => {
            require(state, &[Submitted])?;
            require_text("reason", reason, SHORT_TEXT_MAX)?;
            RectificationReturned { reason: reason.trim().to_owned() }.into()
        }
        FindingCommand::ExtendDeadline { new_deadline, reason } => {
            require(state, &[Assigned, InProgress, Submitted, Returned])?;
            require_text("reason", reason, SHORT_TEXT_MAX)?;
            if let Some(current) = state.deadline
                && *new_deadline <= current
            {
                return Err(DomainError::invalid("new_deadline", format!("须晚于原整改时限{current}")));
            }
            if *new_deadline < today {
                return Err(DomainError::invalid("new_deadline", "不能早于今天"));
            }
            DeadlineExtended { new_deadline: *new_deadline, reason: reason.trim().to_owned() }.into()
        }
        FindingCommand::Remind { message } => {
            // Only while the rectifying side owes work; a submitted one awaits the manager.
            require(state, &[Assigned, InProgress, Returned])?;
            require_text("message", message, SHORT_TEXT_MAX)?;
            ReminderIssued { message: message.trim().to_owned() }.into()
        }
        FindingCommand::Dismiss { reason } => {
            require(state, &[Unassigned, Assigned, InProgress, Submitted, Returned])?;
            require_text("reason", reason, SHORT_TEXT_MAX)?;
            FindingDismissed { reason: reason.trim().to_owned() }.into()
        }
    };
    Ok(vec![event])
}

/// Applies one event of this stream (without dates; see [`evolve_at`]).
pub fn evolve(state: FindingState, e: &Event) -> FindingState {
    apply(state, e, None)
}

/// Applies one event recorded at `occurred_at` (the envelope's time), also keeping the Shanghai
/// dates of assignment, progress, submission and verification.
pub fn evolve_at(state: FindingState, e: &Event, occurred_at: &Timestamp) -> FindingState {
    apply(state, e, Some(time::local_date(occurred_at)))
}

fn apply(mut state: FindingState, e: &Event, on: Option<NaiveDate>) -> FindingState {
    match e {
        // The state the imported ledger row states, with its own business dates.
        Event::RectificationImported(p) => {
            state.status = p.status;
            state.inspection_id = Some(p.inspection_id.clone());
            state.title = p.title.clone();
            state.measure = p.measure.clone();
            state.responsible_unit = p.responsible_unit.clone();
            state.leader = p.leader.clone();
            state.person = p.person.clone();
            state.deadline = p.deadline;
            state.assigned_on = p.assigned_on;
            state.progress_reports = p.progress_count;
            state.verified_on = p.verified_on;
            state.extensions = u32::from(p.original_deadline.is_some_and(|o| Some(o) != p.deadline));
        }
        Event::RectificationAssigned(p) => {
            state.status = RectificationStatus::Assigned;
            state.inspection_id = Some(p.inspection_id.clone());
            state.title = p.title.clone();
            state.measure = p.measure.clone();
            state.responsible_unit = p.responsible_unit.clone();
            state.leader = p.leader.clone();
            state.person = p.person.clone();
            state.deadline = Some(p.deadline);
            state.assigned_on = on;
        }
        Event::ProgressReported(_) => {
            state.status = RectificationStatus::InProgress;
            state.progress_reports += 1;
            state.last_progress_on = on.or(state.last_progress_on);
        }
        Event::RectificationSubmitted(_) => {
            state.status = RectificationStatus::Submitted;
            state.submitted_on = on.or(state.submitted_on);
        }
        Event::RectificationVerified(_) => {
            state.status = RectificationStatus::Verified;
            state.verified_on = on;
        }
        Event::RectificationReturned(_) => {
            state.status = RectificationStatus::Returned;
            state.returns += 1;
        }
        Event::DeadlineExtended(p) => {
            state.deadline = Some(p.new_deadline);
            state.extensions += 1;
        }
        Event::ReminderIssued(_) => state.reminders += 1,
        Event::FindingDismissed(p) => {
            state.status = RectificationStatus::Dismissed;
            state.dismissed_reason = Some(p.reason.clone());
        }
        _ => {}
    }
    state
}

/// Whether an open, assigned rectification is past its deadline on `today` (a Shanghai date).
pub fn is_overdue(state: &FindingState, today: NaiveDate) -> bool {
    state.status.is_open() && state.deadline.is_some_and(|deadline| today > deadline)
}

/// Refuses unless the rectification is in one of `allowed`, naming the current and needed status.
fn require(state: &FindingState, allowed: &[RectificationStatus]) -> Result<(), DomainError> {
    if allowed.contains(&state.status) {
        return Ok(());
    }
    Err(DomainError::RectificationState {
        status: state.status.name_zh().to_owned(),
        needed: allowed.iter().map(|s| s.name_zh()).collect::<Vec<_>>().join("、"),
    })
}

/// A verified or dismissed finding accepts no progress.
fn require_not_closed(state: &FindingState) -> Result<(), DomainError> {
    if state.status.is_closed() {
        // The message reads 问题已{status}: 销号 / 撤销.
        let status = state.status.name_zh().trim_start_matches('已').to_owned();
        return Err(DomainError::FindingClosed { status });
    }
    Ok(())
}

fn max_len(field: &str, value: &str, max: usize) -> Result<(), DomainError> {
    if value.chars().count() > max {
        return Err(DomainError::invalid(field, format!("不能超过{max}个字符")));
    }
    Ok(())
}

fn check_evidence(evidence: &[EvidenceRef]) -> Result<(), DomainError> {
    if evidence.len() > EVIDENCE_MAX {
        return Err(DomainError::invalid("evidence", format!("附件不能超过{EVIDENCE_MAX}个")));
    }
    for e in evidence {
        let hex = e.sha256.len() == 64 && e.sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex {
            return Err(DomainError::invalid("evidence", "附件摘要须为64位小写十六进制SHA-256"));
        }
        if e.filename.trim().is_empty() {
            return Err(DomainError::invalid("evidence", "附件文件名不能为空"));
        }
        if e.filename.chars().count() > FILENAME_MAX {
            return Err(DomainError::invalid("evidence", format!("附件文件名不能超过{FILENAME_MAX}个字符")));
        }
        max_len("evidence", &e.content_type, FILENAME_MAX)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspection::fixtures::{self, NOW, at, date, f, tenant, with_findings};

    /// The sample's three 下一步工作计划 measures: (title, measure).
    const MEASURES: [(&str, &str); 3] = [
        (
            "狠抓理论学习强化思想武装",
            "结合学习宣传贯彻党的XX大精神，积极推动党的创新理论通俗化大众化，持续做好“学习强国”学习平台的推广使用，进一步加强新时代文明实践站等平台建设。",
        ),
        (
            "持续抓好意识形态责任制落实",
            "严格执行《党委（党组）意识形态工作责任制实施办法》，把意识形态工作纳入党组织工作、纪律检查、干部考核。严格落实“第一责任人”责任。",
        ),
        (
            "加强意识形态阵地建设",
            "一是加强新时代文明实践站的建设和管理；二是加强对政务新媒体的管理，健全规范运营的规章制度；三是充分利用好各类平台，不断扩大意识形态阵地。",
        ),
    ];

    struct World {
        tenant: TenantState,
        inspection: InspectionState,
    }

    fn world() -> World {
        let tenant = tenant();
        let inspection = with_findings(&tenant);
        World { tenant, inspection }
    }

    impl World {
        fn decide_at(
            &self,
            finding: &str,
            state: &FindingState,
            user: &str,
            when: &str,
            body: FindingCommand,
        ) -> Result<FindingState, DomainError> {
            let cmd = Command::new(fixtures::actor(&self.tenant, user), at(when), body);
            let events = decide(&self.tenant, &self.inspection, &f(finding), state, &cmd)?;
            assert_eq!(events.len(), 1);
            Ok(events.iter().fold(state.clone(), |s, e| evolve_at(s, e, &cmd.at)))
        }

        fn run(&self, state: &FindingState, user: &str, body: FindingCommand) -> Result<FindingState, DomainError> {
            self.decide_at("f1", state, user, NOW, body)
        }

        fn ok(&self, state: &FindingState, user: &str, body: FindingCommand) -> FindingState {
            self.run(state, user, body).unwrap()
        }

        fn assigned(&self) -> FindingState {
            self.ok(&FindingState::default(), "admin", assign(0, "2024-06-30"))
        }
        fn in_progress(&self) -> FindingState {
            self.ok(&self.assigned(), "liu", progress("已组织理论学习2次，联系实际开展讨论。"))
        }
        fn submitted(&self) -> FindingState {
            self.ok(&self.in_progress(), "liu", submit())
        }
        fn returned(&self) -> FindingState {
            self.ok(&self.submitted(), "admin", FindingCommand::Return { reason: "学习记录不完整，请补充".to_owned() })
        }
        fn verified(&self) -> FindingState {
            self.ok(&self.submitted(), "admin", FindingCommand::Verify { comment: "整改到位，同意销号".to_owned() })
        }
        fn dismissed(&self) -> FindingState {
            self.ok(&FindingState::default(), "admin", dismiss("与问题（三）重复"))
        }
    }

    fn assign(measure: usize, deadline: &str) -> FindingCommand {
        let (title, text) = MEASURES[measure];
        FindingCommand::Assign {
            title: title.to_owned(),
            measure: text.to_owned(),
            responsible_unit: "东风社区党支部".to_owned(),
            leader: "刘书记".to_owned(),
            person: "社区宣传委员".to_owned(),
            deadline: date(deadline),
        }
    }

    fn progress(text: &str) -> FindingCommand {
        FindingCommand::ReportProgress { text: text.to_owned(), evidence: vec![evidence("学习记录.pdf")] }
    }

    fn evidence(filename: &str) -> EvidenceRef {
        EvidenceRef {
            sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_owned(),
            filename: filename.to_owned(),
            content_type: "application/pdf".to_owned(),
            size: 1024,
        }
    }

    fn submit() -> FindingCommand {
        FindingCommand::Submit {
            summary: "已按整改措施完成理论学习整改，形成学习台账。".to_owned()
        }
    }

    fn dismiss(reason: &str) -> FindingCommand {
        FindingCommand::Dismiss { reason: reason.to_owned() }
    }

    fn extend(new_deadline: &str, reason: &str) -> FindingCommand {
        FindingCommand::ExtendDeadline { new_deadline: date(new_deadline), reason: reason.to_owned() }
    }

    fn remind(message: &str) -> FindingCommand {
        FindingCommand::Remind { message: message.to_owned() }
    }

    fn code(r: Result<FindingState, DomainError>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    // ------------------------------------------------------------------ the finding and who acts

    #[test]
    fn the_finding_must_be_recorded_in_that_inspection() {
        let w = world();
        let fresh = FindingState::default();
        assert_eq!(code(w.decide_at("f9", &fresh, "admin", NOW, assign(0, "2024-06-30"))), "not_found");
        assert_eq!(code(w.decide_at("f3", &fresh, "admin", NOW, assign(1, "2024-06-30"))), "ok");
        // a stream already linked to another inspection
        let elsewhere = FindingState { inspection_id: Some(InspectionId::parse("2022").unwrap()), ..w.assigned() };
        assert_eq!(code(w.run(&elsewhere, "admin", remind("请抓紧整改"))), "not_found");
        // and the tenant must exist
        let cmd = Command::new(fixtures::actor(&w.tenant, "admin"), at(NOW), assign(0, "2024-06-30"));
        let err = decide(&TenantState::default(), &w.inspection, &f("f1"), &fresh, &cmd).unwrap_err();
        assert_eq!(err.code(), "not_found");
    }

    #[test]
    fn managing_needs_manage_rectification_on_the_tenant() {
        let w = world();
        let cases: [(FindingState, FindingCommand); 6] = [
            (FindingState::default(), assign(0, "2024-06-30")),
            (w.submitted(), FindingCommand::Verify { comment: String::new() }),
            (w.submitted(), FindingCommand::Return { reason: "材料不全".to_owned() }),
            (w.assigned(), extend("2024-07-31", "需协调场地")),
            (w.assigned(), remind("请抓紧整改")),
            (w.assigned(), dismiss("重复问题")),
        ];
        for (state, body) in cases {
            for user in ["zhang", "liu", "zhao", "other-admin"] {
                assert_eq!(code(w.run(&state, user, body.clone())), "forbidden", "{user} {body:?}");
            }
            assert_eq!(code(w.run(&state, "admin", body.clone())), "ok", "{body:?}");
        }
    }

    #[test]
    fn progress_is_reported_from_the_findings_own_community() {
        let w = world();
        // f1 is about 东风社区 (liu); zhou is the officer of 新华社区
        assert_eq!(code(w.run(&w.assigned(), "liu", progress("已开展学习"))), "ok");
        assert_eq!(code(w.run(&w.assigned(), "zhou", progress("已开展学习"))), "forbidden");
        assert_eq!(code(w.run(&w.assigned(), "zhang", progress("已开展学习"))), "forbidden");
        assert_eq!(code(w.run(&w.in_progress(), "liu", submit())), "ok");
        assert_eq!(code(w.run(&w.in_progress(), "zhou", submit())), "forbidden");
        // f3 is about 新华社区
        let f3 = w.decide_at("f3", &FindingState::default(), "admin", NOW, assign(1, "2024-06-30")).unwrap();
        assert_eq!(code(w.decide_at("f3", &f3, "zhou", NOW, progress("已召开专题会议"))), "ok");
        assert_eq!(code(w.decide_at("f3", &f3, "liu", NOW, progress("已召开专题会议"))), "forbidden");
    }

    #[test]
    fn a_cross_cutting_finding_is_not_any_one_communitys() {
        let w = world();
        // f2 (对督查工作不够重视) names no community: no community-scoped grant covers it
        let f2 = w.decide_at("f2", &FindingState::default(), "admin", NOW, assign(1, "2024-06-30")).unwrap();
        assert_eq!(code(w.decide_at("f2", &f2, "liu", NOW, progress("已认真自查"))), "forbidden");
        assert_eq!(code(w.decide_at("f2", &f2, "zhou", NOW, progress("已认真自查"))), "forbidden");
    }

    #[test]
    fn follow_up_stays_allowed_after_the_inspection_concludes() {
        let tenant = tenant();
        let w = World { inspection: fixtures::concluded(&tenant), tenant };
        let s = w.assigned();
        assert_eq!(s.status, RectificationStatus::Assigned);
        assert_eq!(code(w.run(&s, "liu", progress("已开展学习"))), "ok");
    }

    // ------------------------------------------------------------------ assign

    #[test]
    fn assign_records_the_measure() {
        let w = world();
        let s = w.assigned();
        assert_eq!(s.status, RectificationStatus::Assigned);
        assert_eq!(s.inspection_id, Some(InspectionId::parse("2023-ideology").unwrap()));
        assert_eq!(s.title, "狠抓理论学习强化思想武装");
        assert_eq!(s.deadline, Some(date("2024-06-30")));
        assert_eq!(s.assigned_on, Some(date("2024-03-15")));
    }

    #[test]
    fn deadline_is_not_before_the_assignment_date_in_shanghai() {
        let w = world();
        let fresh = FindingState::default();
        let err = w.run(&fresh, "admin", assign(0, "2024-03-14")).unwrap_err();
        assert_eq!(err.code(), "deadline_before_assignment");
        assert_eq!(
            err,
            DomainError::DeadlineBeforeAssignment {
                deadline: "2024-03-14".to_owned(),
                assigned_on: "2024-03-15".to_owned()
            }
        );
        assert_eq!(code(w.run(&fresh, "admin", assign(0, "2024-03-15"))), "ok");
        // 2024-03-31T17:00Z is already 1 April in Shanghai
        let late = w.decide_at("f1", &fresh, "admin", "2024-03-31T17:00:00Z", assign(0, "2024-03-31"));
        assert_eq!(code(late), "deadline_before_assignment");
        let same_day = w.decide_at("f1", &fresh, "admin", "2024-03-31T15:59:59Z", assign(0, "2024-03-31"));
        assert_eq!(code(same_day), "ok");
    }

    #[test]
    fn assign_only_when_unassigned() {
        let w = world();
        let err = w.run(&w.assigned(), "admin", assign(0, "2024-06-30")).unwrap_err();
        assert_eq!(err.code(), "rectification_state");
        let zh = err.message_zh();
        assert!(zh.contains("已交办") && zh.contains("待交办"), "{zh}");
        assert_eq!(code(w.run(&w.dismissed(), "admin", assign(0, "2024-06-30"))), "rectification_state");
    }

    #[test]
    fn assign_requires_measure_unit_leader_and_person() {
        let w = world();
        for field in ["measure", "responsible_unit", "leader", "person"] {
            let mut body = assign(0, "2024-06-30");
            if let FindingCommand::Assign { measure, responsible_unit, leader, person, .. } = &mut body {
                let target = match field {
                    "measure" => measure,
                    "responsible_unit" => responsible_unit,
                    "leader" => leader,
                    _ => person,
                };
                *target = "  ".to_owned();
            }
            let err = w.run(&FindingState::default(), "admin", body).unwrap_err();
            assert_eq!((err.code(), err.field()), ("invalid", Some(field)));
        }
    }

    // ------------------------------------------------------------------ progress

    #[test]
    fn progress_moves_an_open_rectification_in_progress() {
        let w = world();
        for state in [w.assigned(), w.in_progress(), w.returned()] {
            let s = w.ok(&state, "liu", progress("已联系实际开展专题学习"));
            assert_eq!(s.status, RectificationStatus::InProgress);
            assert_eq!(s.progress_reports, state.progress_reports + 1);
            assert_eq!(s.last_progress_on, Some(date("2024-03-15")));
        }
    }

    #[test]
    fn progress_is_refused_before_assignment_while_submitted_and_once_closed() {
        let w = world();
        assert_eq!(code(w.run(&FindingState::default(), "liu", progress("x"))), "rectification_state");
        assert_eq!(code(w.run(&w.submitted(), "liu", progress("x"))), "rectification_state");
        let err = w.run(&w.verified(), "liu", progress("x")).unwrap_err();
        assert_eq!(err.code(), "finding_closed");
        assert_eq!(err.message_zh(), "问题已销号，不能再报送进展");
        let dismissed = w.ok(&w.assigned(), "admin", dismiss("与问题（三）重复"));
        assert_eq!(code(w.run(&dismissed, "liu", progress("x"))), "finding_closed");
    }

    #[test]
    fn progress_needs_text() {
        let w = world();
        assert_eq!(code(w.run(&w.assigned(), "liu", progress(" "))), "invalid");
        assert_eq!(code(w.run(&w.assigned(), "liu", progress(&"学".repeat(TEXT_MAX + 1)))), "invalid");
    }

    #[test]
    fn evidence_is_hashed_named_and_limited() {
        let w = world();
        let with = |evidence: Vec<EvidenceRef>| {
            w.run(&w.assigned(), "liu", FindingCommand::ReportProgress { text: "已整改".to_owned(), evidence })
        };
        assert_eq!(code(with(vec![])), "ok");
        assert_eq!(code(with(vec![evidence("学习记录.pdf"); EVIDENCE_MAX])), "ok");
        assert_eq!(code(with(vec![evidence("学习记录.pdf"); EVIDENCE_MAX + 1])), "invalid");
        let mut upper = evidence("a.pdf");
        upper.sha256 = upper.sha256.to_uppercase();
        assert_eq!(code(with(vec![upper])), "invalid");
        let mut short = evidence("a.pdf");
        short.sha256.pop();
        assert_eq!(code(with(vec![short])), "invalid");
        let mut not_hex = evidence("a.pdf");
        not_hex.sha256.replace_range(0..1, "g");
        assert_eq!(code(with(vec![not_hex])), "invalid");
        assert_eq!(code(with(vec![evidence(" ")])), "invalid");
        assert_eq!(code(with(vec![evidence(&"档".repeat(FILENAME_MAX))])), "ok");
        assert_eq!(code(with(vec![evidence(&"档".repeat(FILENAME_MAX + 1))])), "invalid");
    }

    // ------------------------------------------------------------------ submit, verify, return

    #[test]
    fn submit_only_after_progress() {
        let w = world();
        let s = w.submitted();
        assert_eq!(s.status, RectificationStatus::Submitted);
        assert_eq!(s.submitted_on, Some(date("2024-03-15")));
        assert_eq!(code(w.run(&w.assigned(), "liu", submit())), "rectification_state");
        // after a return, a new progress report is needed first
        assert_eq!(code(w.run(&w.returned(), "liu", submit())), "rectification_state");
        assert_eq!(code(w.run(&s, "liu", submit())), "rectification_state");
        assert_eq!(code(w.run(&w.verified(), "liu", submit())), "finding_closed");
        let blank = FindingCommand::Submit { summary: String::new() };
        assert_eq!(code(w.run(&w.in_progress(), "liu", blank)), "invalid");
    }

    #[test]
    fn only_a_submitted_rectification_is_verified() {
        let w = world();
        let s = w.verified();
        assert_eq!(s.status, RectificationStatus::Verified);
        assert!(s.status.is_closed());
        assert_eq!(s.verified_on, Some(date("2024-03-15")));
        let verify = || FindingCommand::Verify { comment: String::new() };
        for state in [FindingState::default(), w.assigned(), w.in_progress(), w.returned(), w.verified()] {
            let err = w.run(&state, "admin", verify()).unwrap_err();
            assert_eq!(err.code(), "rectification_state");
            assert!(err.message_zh().contains("待销号"));
        }
    }

    #[test]
    fn return_needs_a_submission_and_a_reason_then_progress_resumes() {
        let w = world();
        let back = |reason: &str| FindingCommand::Return { reason: reason.to_owned() };
        assert_eq!(code(w.run(&w.in_progress(), "admin", back("材料不全"))), "rectification_state");
        assert_eq!(code(w.run(&w.submitted(), "admin", back(" "))), "invalid");
        let s = w.returned();
        assert_eq!((s.status, s.returns), (RectificationStatus::Returned, 1));
        let s = w.ok(&s, "liu", progress("已补充学习记录"));
        assert_eq!(s.status, RectificationStatus::InProgress);
        let s = w.ok(&s, "liu", submit());
        let s = w.ok(&s, "admin", FindingCommand::Verify { comment: "同意销号".to_owned() });
        assert_eq!((s.status, s.progress_reports, s.returns), (RectificationStatus::Verified, 2, 1));
    }

    // ------------------------------------------------------------------ extend, remind, dismiss

    #[test]
    fn extend_deadline_of_an_open_rectification_with_a_reason() {
        let w = world();
        for state in [w.assigned(), w.in_progress(), w.submitted(), w.returned()] {
            let s = w.ok(&state, "admin", extend("2024-07-31", "需协调上级部门"));
            assert_eq!((s.deadline, s.extensions), (Some(date("2024-07-31")), 1));
        }
        for state in [FindingState::default(), w.verified(), w.dismissed()] {
            assert_eq!(code(w.run(&state, "admin", extend("2024-07-31", "需协调"))), "rectification_state");
        }
        assert_eq!(code(w.run(&w.assigned(), "admin", extend("2024-07-31", ""))), "invalid");
    }

    #[test]
    fn extended_deadline_is_later_and_not_in_the_past() {
        let w = world();
        let s = w.assigned();
        // not later than the current 2024-06-30
        assert_eq!(code(w.run(&s, "admin", extend("2024-06-30", "需协调"))), "invalid");
        assert_eq!(code(w.run(&s, "admin", extend("2024-07-01", "需协调"))), "ok");
        // once overdue, the new deadline must not be before today either
        let overdue = FindingState { deadline: Some(date("2024-03-01")), ..s };
        assert_eq!(code(w.run(&overdue, "admin", extend("2024-03-14", "需协调"))), "invalid");
        assert_eq!(code(w.run(&overdue, "admin", extend("2024-03-15", "需协调"))), "ok");
    }

    #[test]
    fn remind_only_while_the_rectification_owes_work() {
        let w = world();
        for state in [w.assigned(), w.in_progress(), w.returned()] {
            let s = w.ok(&state, "admin", remind("请于月底前报送整改进展"));
            assert_eq!(s.reminders, 1);
            assert_eq!(s.status, state.status);
        }
        for state in [FindingState::default(), w.submitted(), w.verified(), w.dismissed()] {
            assert_eq!(code(w.run(&state, "admin", remind("请抓紧"))), "rectification_state");
        }
        assert_eq!(code(w.run(&w.assigned(), "admin", remind(""))), "invalid");
    }

    #[test]
    fn dismiss_with_a_reason_unless_verified_or_dismissed() {
        let w = world();
        for state in [FindingState::default(), w.assigned(), w.in_progress(), w.submitted(), w.returned()] {
            let s = w.ok(&state, "admin", dismiss("与问题（三）重复"));
            assert_eq!(s.status, RectificationStatus::Dismissed);
            assert_eq!(s.dismissed_reason.as_deref(), Some("与问题（三）重复"));
        }
        assert_eq!(code(w.run(&w.verified(), "admin", dismiss("重复"))), "rectification_state");
        assert_eq!(code(w.run(&w.dismissed(), "admin", dismiss("重复"))), "rectification_state");
        assert_eq!(code(w.run(&FindingState::default(), "admin", dismiss(" "))), "invalid");
    }

    // ------------------------------------------------------------------ derived facts

    #[test]
    fn overdue_means_open_assigned_and_past_the_deadline() {
        let w = world();
        let on = |d: &str| date(d);
        assert!(!is_overdue(&w.assigned(), on("2024-06-30")));
        assert!(is_overdue(&w.assigned(), on("2024-07-01")));
        assert!(is_overdue(&w.submitted(), on("2024-07-01")));
        assert!(!is_overdue(&FindingState::default(), on("2030-01-01")));
        assert!(!is_overdue(&w.verified(), on("2030-01-01")));
        let extended = w.ok(&w.assigned(), "admin", extend("2024-07-31", "需协调"));
        assert!(!is_overdue(&extended, on("2024-07-01")));
    }

    #[test]
    fn status_names_are_chinese_and_closed_ones_are_final() {
        use RectificationStatus::*;
        let names: Vec<&str> =
            [Unassigned, Assigned, InProgress, Submitted, Returned, Verified, Dismissed].map(|s| s.name_zh()).to_vec();
        assert_eq!(names, ["待交办", "已交办", "整改中", "待销号", "已退回", "已销号", "已撤销"]);
        assert!(Verified.is_closed() && Dismissed.is_closed() && !Submitted.is_closed());
        assert!(!Unassigned.is_open() && Returned.is_open());
    }

    #[test]
    fn evolve_without_dates_keeps_them_unknown() {
        let w = world();
        let cmd = Command::new(fixtures::actor(&w.tenant, "admin"), at(NOW), assign(2, "2024-06-30"));
        let events = decide(&w.tenant, &w.inspection, &f("f4"), &FindingState::default(), &cmd).unwrap();
        let s = events.iter().fold(FindingState::default(), evolve);
        assert_eq!((s.status, s.assigned_on), (RectificationStatus::Assigned, None));
        assert_eq!(s.title, "加强意识形态阵地建设");
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<FindingState>(&json).unwrap(), s);
    }
}
