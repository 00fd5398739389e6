//! The inspection aggregate (督查): plan, scope, team, fieldwork, deductions (扣分), achievements,
//! findings and the conclusion. Stream: `{tenant}/inspection-{id}`.
//!
//! Facts about the tenant (communities, categories, checklists, users) come in read-only as
//! [`TenantState`]. Once an inspection is concluded its stream accepts nothing more but the record
//! that a report was issued (`ReportIssued`); the follow-up of its findings (整改) lives in each
//! finding's own stream (see [`crate::finding`]).

use crate::aggregate::{Command, require_text};
use crate::authz::{self, Action, Role, Scope};
use crate::error::DomainError;
use crate::event::{
    AchievementRecorded, DeductionRecorded, Event, FieldworkRecorded, Figure, FindingRecorded, InspectionConcluded,
    InspectionMethod, InspectionPlanned, InspectionScopeChanged, InspectionStarted, InspectionTeamChanged, Points,
    Severity, TeamMember,
};
use crate::event::{DocumentFormat, ReportIssued};
use crate::ids::{AchievementId, ChecklistId, CommunityId, DistrictId, FindingId, InspectionId, TenantId, UserId};
use crate::tenant::{Checklist, TenantState};
use crate::time;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Longest title (督查 title, finding title).
pub const TITLE_MAX: usize = 200;
/// Longest subject (意识形态工作).
pub const SUBJECT_MAX: usize = 100;
/// Longest long text (notes, descriptions, achievement text, summary).
pub const TEXT_MAX: usize = 20_000;
/// Longest overall assessment (总体良好).
pub const ASSESSMENT_MAX: usize = 50;
/// Longest short text (participants, deduction reason, category heading, figure label).
pub const SHORT_TEXT_MAX: usize = 1_000;
/// Longest figure unit (场, 次, 人).
pub const UNIT_MAX: usize = 20;

/// Where an inspection is in its life.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InspectionStatus {
    #[default]
    NotPlanned,
    Planned,
    /// Started: fieldwork and records are being made.
    InProgress,
    Concluded,
}

impl InspectionStatus {
    pub fn code(self) -> &'static str {
        match self {
            InspectionStatus::NotPlanned => "not_planned",
            InspectionStatus::Planned => "planned",
            InspectionStatus::InProgress => "in_progress",
            InspectionStatus::Concluded => "concluded",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            InspectionStatus::NotPlanned => "未计划",
            InspectionStatus::Planned => "已计划",
            InspectionStatus::InProgress => "进行中",
            InspectionStatus::Concluded => "已结束",
        }
    }
}

/// A finding as the inspection remembers it: enough for the finding aggregate to authorize and link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedFinding {
    pub finding_id: FindingId,
    /// `None`: a cross-cutting finding.
    pub community_id: Option<CommunityId>,
    /// A finding category code of the tenant.
    pub category: String,
    pub title: String,
    pub severity: Severity,
}

/// State of `{tenant}/inspection-{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InspectionState {
    pub status: InspectionStatus,
    pub inspection_id: Option<InspectionId>,
    pub year: i32,
    pub title: String,
    pub subject: String,
    /// The communities in scope, in the planned order.
    pub communities: Vec<CommunityId>,
    pub team: Vec<TeamMember>,
    pub methods: Vec<InspectionMethod>,
    pub checklist_id: Option<ChecklistId>,
    pub planned_start: Option<NaiveDate>,
    pub planned_end: Option<NaiveDate>,
    pub started_on: Option<NaiveDate>,
    pub fieldwork_count: u32,
    /// community → checklist item code → points deducted so far (never above the item's maximum).
    pub deductions: BTreeMap<CommunityId, BTreeMap<String, Points>>,
    /// Findings in the order they were recorded.
    pub findings: Vec<RecordedFinding>,
    /// Achievements in the order they were recorded.
    pub achievement_ids: Vec<AchievementId>,
    /// community → how many fieldwork, deduction, achievement and finding records name it (a
    /// community with records cannot be taken out of scope).
    pub records_by_community: BTreeMap<CommunityId, u32>,
    /// The overall assessment, once concluded.
    pub assessment: Option<String>,
}

impl InspectionState {
    pub fn in_scope(&self, community: &CommunityId) -> bool {
        self.communities.contains(community)
    }

    pub fn is_on_team(&self, user: &UserId) -> bool {
        self.team.iter().any(|m| &m.user_id == user)
    }

    /// A finding recorded in this inspection.
    pub fn finding(&self, id: &FindingId) -> Option<&RecordedFinding> {
        self.findings.iter().find(|f| &f.finding_id == id)
    }

    pub fn achievement_count(&self) -> usize {
        self.achievement_ids.len()
    }

    /// Points deducted so far from one checklist item for one community.
    pub fn deducted(&self, community: &CommunityId, item_code: &str) -> Points {
        self.deductions.get(community).and_then(|items| items.get(item_code)).copied().unwrap_or_default()
    }

    /// A community's score on a checklist: per item, its maximum minus the deductions, floored at 0.
    pub fn community_score(&self, checklist: &Checklist, community: &CommunityId) -> Points {
        let total = checklist
            .items
            .iter()
            .map(|item| item.max_points.hundredths().saturating_sub(self.deducted(community, &item.code).hundredths()))
            .fold(0u32, u32::saturating_add);
        Points::from_hundredths(total)
    }

    fn count_record(&mut self, community: &CommunityId) {
        *self.records_by_community.entry(community.clone()).or_default() += 1;
    }
}

/// What can be asked of an inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InspectionCommand {
    Plan {
        inspection_id: InspectionId,
        year: i32,
        title: String,
        subject: String,
        communities: Vec<CommunityId>,
        team: Vec<TeamMember>,
        methods: Vec<InspectionMethod>,
        checklist_id: Option<ChecklistId>,
        planned_start: NaiveDate,
        planned_end: NaiveDate,
    },
    ChangeScope {
        communities: Vec<CommunityId>,
    },
    ChangeTeam {
        team: Vec<TeamMember>,
    },
    Start {
        started_on: NaiveDate,
    },
    RecordFieldwork {
        community_id: CommunityId,
        method: InspectionMethod,
        held_on: NaiveDate,
        participants: String,
        notes: String,
    },
    RecordDeduction {
        community_id: CommunityId,
        item_code: String,
        points: Points,
        reason: String,
    },
    RecordAchievement {
        achievement_id: AchievementId,
        category: String,
        text: String,
        figures: Vec<Figure>,
        community_id: Option<CommunityId>,
    },
    RecordFinding {
        finding_id: FindingId,
        community_id: Option<CommunityId>,
        category: String,
        title: String,
        description: String,
        severity: Severity,
    },
    Conclude {
        assessment: String,
        summary: String,
    },
    /// Records that a 督查报告 generated from the log up to `log_position` was issued with this
    /// hash. Allowed in any status once planned, also after conclusion: it changes no fact.
    IssueReport {
        sha256: String,
        log_position: u64,
        as_of: Option<String>,
        format: DocumentFormat,
        signature: Option<crate::event::ReportSignature>,
    },
}

impl InspectionCommand {
    /// The action this command needs on the tenant.
    pub fn action(&self) -> Action {
        use InspectionCommand::*;
        match self {
            Plan { .. }
            | ChangeScope { .. }
            | ChangeTeam { .. }
            | Start { .. }
            | Conclude { .. }
            | IssueReport { .. } => Action::ManageInspection,
            RecordFieldwork { .. } | RecordDeduction { .. } | RecordAchievement { .. } | RecordFinding { .. } => {
                Action::RecordInspection
            }
        }
    }
}

/// The tenant's district and id, or `NotFound` while the tenant does not exist.
pub(crate) fn tenant_ids(tenant: &TenantState) -> Result<(&DistrictId, &TenantId), DomainError> {
    match (tenant.created, &tenant.district_id, &tenant.tenant_id) {
        (true, Some(d), Some(t)) => Ok((d, t)),
        _ => Err(not_found("街道")),
    }
}

pub(crate) fn not_found(what: impl Into<String>) -> DomainError {
    DomainError::NotFound { what: what.into() }
}

/// Decides a command on an inspection.
pub fn decide(
    tenant: &TenantState,
    state: &InspectionState,
    cmd: &Command<InspectionCommand>,
) -> Result<Vec<Event>, DomainError> {
    let (district_id, tenant_id) = tenant_ids(tenant)?;
    let target = tenant.target().ok_or_else(|| not_found("街道"))?;
    let role = authz::authorize(&cmd.actor, cmd.body.action(), &target)?;
    let today = time::local_date(&cmd.at);
    let tenant_scope = Scope::Tenant { district_id: district_id.clone(), tenant_id: tenant_id.clone() };

    let event: Event = match &cmd.body {
        InspectionCommand::Plan {
            inspection_id,
            year,
            title,
            subject,
            communities,
            team,
            methods,
            checklist_id,
            planned_start,
            planned_end,
        } => {
            if state.status != InspectionStatus::NotPlanned {
                return Err(DomainError::AlreadyExists { what: format!("督查“{inspection_id}”") });
            }
            if !(2000..=2100).contains(year) {
                return Err(DomainError::invalid("year", "年度须在2000至2100之间"));
            }
            require_text("title", title, TITLE_MAX)?;
            require_text("subject", subject, SUBJECT_MAX)?;
            check_communities(tenant, communities)?;
            check_team(tenant, &tenant_scope, team)?;
            check_methods(tenant, methods)?;
            if let Some(id) = checklist_id
                && !tenant.checklists.contains_key(id)
            {
                return Err(not_found(format!("评分表“{id}”")));
            }
            if planned_end < planned_start {
                return Err(DomainError::invalid("planned_end", "计划结束日期不能早于开始日期"));
            }
            InspectionPlanned {
                inspection_id: inspection_id.clone(),
                year: *year,
                title: title.trim().to_owned(),
                subject: subject.trim().to_owned(),
                communities: communities.clone(),
                team: team.clone(),
                methods: methods.clone(),
                checklist_id: checklist_id.clone(),
                planned_start: *planned_start,
                planned_end: *planned_end,
            }
            .into()
        }
        InspectionCommand::ChangeScope { communities } => {
            require_status(state, &[InspectionStatus::Planned, InspectionStatus::InProgress])?;
            check_communities(tenant, communities)?;
            if let Some(dropped) =
                state.records_by_community.keys().find(|c| state.in_scope(c) && !communities.contains(c))
            {
                return Err(DomainError::invalid(
                    "communities",
                    format!("社区“{dropped}”已有督查记录，不能移出督查范围"),
                ));
            }
            InspectionScopeChanged { communities: communities.clone() }.into()
        }
        InspectionCommand::ChangeTeam { team } => {
            require_status(state, &[InspectionStatus::Planned, InspectionStatus::InProgress])?;
            check_team(tenant, &tenant_scope, team)?;
            InspectionTeamChanged { team: team.clone() }.into()
        }
        InspectionCommand::Start { started_on } => {
            require_status(state, &[InspectionStatus::Planned])?;
            if *started_on > today {
                return Err(DomainError::invalid("started_on", "开始日期不能晚于今天"));
            }
            InspectionStarted { started_on: *started_on }.into()
        }
        InspectionCommand::RecordFieldwork { community_id, method, held_on, participants, notes } => {
            require_recording(state, role, &cmd.actor.user_id)?;
            require_in_scope(state, community_id)?;
            if !state.methods.contains(method) {
                return Err(DomainError::invalid(
                    "method",
                    format!("“{}”不是本次督查计划的方式", method_name(tenant, method)),
                ));
            }
            if *held_on > today {
                return Err(DomainError::invalid("held_on", "日期不能晚于今天"));
            }
            max_len("participants", participants, SHORT_TEXT_MAX)?;
            max_len("notes", notes, TEXT_MAX)?;
            FieldworkRecorded {
                community_id: community_id.clone(),
                method: method.clone(),
                held_on: *held_on,
                participants: participants.trim().to_owned(),
                notes: notes.trim().to_owned(),
            }
            .into()
        }
        InspectionCommand::RecordDeduction { community_id, item_code, points, reason } => {
            require_recording(state, role, &cmd.actor.user_id)?;
            require_in_scope(state, community_id)?;
            let checklist_id =
                state.checklist_id.as_ref().ok_or_else(|| DomainError::invalid("item_code", "本次督查未设置评分表"))?;
            let checklist =
                tenant.checklists.get(checklist_id).ok_or_else(|| not_found(format!("评分表“{checklist_id}”")))?;
            let item = checklist
                .items
                .iter()
                .find(|i| &i.code == item_code)
                .ok_or_else(|| not_found(format!("评分项“{item_code}”")))?;
            if points.hundredths() == 0 {
                return Err(DomainError::invalid("points", "扣分须大于0"));
            }
            let remaining =
                item.max_points.hundredths().saturating_sub(state.deducted(community_id, item_code).hundredths());
            if points.hundredths() > remaining {
                return Err(DomainError::DeductionExceedsItem {
                    item: item_code.clone(),
                    requested: points.to_string(),
                    remaining: Points::from_hundredths(remaining).to_string(),
                });
            }
            require_text("reason", reason, SHORT_TEXT_MAX)?;
            DeductionRecorded {
                community_id: community_id.clone(),
                item_code: item_code.clone(),
                points: *points,
                reason: reason.trim().to_owned(),
            }
            .into()
        }
        InspectionCommand::RecordAchievement { achievement_id, category, text, figures, community_id } => {
            require_recording(state, role, &cmd.actor.user_id)?;
            if state.achievement_ids.contains(achievement_id) {
                return Err(DomainError::AlreadyExists { what: format!("工作情况“{achievement_id}”") });
            }
            if let Some(c) = community_id {
                require_in_scope(state, c)?;
            }
            require_text("category", category, SHORT_TEXT_MAX)?;
            require_text("text", text, TEXT_MAX)?;
            for f in figures {
                require_text("figures", &f.label, SHORT_TEXT_MAX)?;
                max_len("figures", &f.unit, UNIT_MAX)?;
            }
            AchievementRecorded {
                achievement_id: achievement_id.clone(),
                category: category.trim().to_owned(),
                text: text.trim().to_owned(),
                figures: figures.clone(),
                community_id: community_id.clone(),
            }
            .into()
        }
        InspectionCommand::RecordFinding { finding_id, community_id, category, title, description, severity } => {
            require_recording(state, role, &cmd.actor.user_id)?;
            if state.finding(finding_id).is_some() {
                return Err(DomainError::AlreadyExists { what: format!("问题“{finding_id}”") });
            }
            if let Some(c) = community_id {
                require_in_scope(state, c)?;
            }
            match tenant.categories.get(category) {
                None => return Err(not_found(format!("问题类别“{category}”"))),
                Some(c) if c.retired => {
                    return Err(DomainError::invalid("category", format!("问题类别“{}”已停用", c.name)));
                }
                Some(_) => {}
            }
            require_text("title", title, TITLE_MAX)?;
            require_text("description", description, TEXT_MAX)?;
            FindingRecorded {
                finding_id: finding_id.clone(),
                community_id: community_id.clone(),
                category: category.clone(),
                title: title.trim().to_owned(),
                description: description.trim().to_owned(),
                severity: *severity,
            }
            .into()
        }
        InspectionCommand::Conclude { assessment, summary } => {
            require_status(state, &[InspectionStatus::InProgress])?;
            require_text("assessment", assessment, ASSESSMENT_MAX)?;
            max_len("summary", summary, TEXT_MAX)?;
            InspectionConcluded { assessment: assessment.trim().to_owned(), summary: summary.trim().to_owned() }.into()
        }
        InspectionCommand::IssueReport { sha256, log_position, as_of, format, signature } => {
            require_status(
                state,
                &[InspectionStatus::Planned, InspectionStatus::InProgress, InspectionStatus::Concluded],
            )?;
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return Err(DomainError::invalid("sha256", "须为64位小写十六进制SHA-256摘要"));
            }
            if *log_position == 0 {
                return Err(DomainError::invalid("log_position", "日志位置须大于0"));
            }
            if let Some(t) = as_of
                && time::parse(t).is_err()
            {
                return Err(DomainError::invalid("as_of", "时间格式无效，应为 RFC 3339"));
            }
            ReportIssued {
                sha256: sha256.clone(),
                log_position: *log_position,
                as_of: as_of.clone(),
                format: *format,
                signature: signature.clone(),
            }
            .into()
        }
    };
    Ok(vec![event])
}

/// Applies one event of this stream; events of other streams leave the state unchanged.
pub fn evolve(mut state: InspectionState, e: &Event) -> InspectionState {
    match e {
        Event::InspectionPlanned(p) => {
            state.status = InspectionStatus::Planned;
            state.inspection_id = Some(p.inspection_id.clone());
            state.year = p.year;
            state.title = p.title.clone();
            state.subject = p.subject.clone();
            state.communities = p.communities.clone();
            state.team = p.team.clone();
            state.methods = p.methods.clone();
            state.checklist_id = p.checklist_id.clone();
            state.planned_start = Some(p.planned_start);
            state.planned_end = Some(p.planned_end);
        }
        Event::InspectionScopeChanged(p) => state.communities = p.communities.clone(),
        Event::InspectionTeamChanged(p) => state.team = p.team.clone(),
        Event::InspectionStarted(p) => {
            state.status = InspectionStatus::InProgress;
            state.started_on = Some(p.started_on);
        }
        Event::FieldworkRecorded(p) => {
            state.fieldwork_count += 1;
            state.count_record(&p.community_id);
        }
        Event::DeductionRecorded(p) => {
            let sum =
                state.deductions.entry(p.community_id.clone()).or_default().entry(p.item_code.clone()).or_default();
            *sum = Points::from_hundredths(sum.hundredths().saturating_add(p.points.hundredths()));
            state.count_record(&p.community_id);
        }
        Event::AchievementRecorded(p) => {
            state.achievement_ids.push(p.achievement_id.clone());
            if let Some(c) = &p.community_id {
                state.count_record(c);
            }
        }
        Event::FindingRecorded(p) => {
            state.findings.push(RecordedFinding {
                finding_id: p.finding_id.clone(),
                community_id: p.community_id.clone(),
                category: p.category.clone(),
                title: p.title.clone(),
                severity: p.severity,
            });
            if let Some(c) = &p.community_id {
                state.count_record(c);
            }
        }
        Event::InspectionConcluded(p) => {
            state.status = InspectionStatus::Concluded;
            state.assessment = Some(p.assessment.clone());
        }
        // An imported source: concluded outside Ducha (its findings can still be followed up).
        Event::InspectionImported(p) => {
            state.status = InspectionStatus::Concluded;
            state.inspection_id = Some(p.inspection_id.clone());
            state.year = p.year;
            state.title = p.title.clone();
            state.assessment = Some(String::new());
        }
        Event::FindingImported(p) => {
            state.findings.push(RecordedFinding {
                finding_id: p.finding_id.clone(),
                community_id: p.community_id.clone(),
                category: p.category.clone(),
                title: p.title.clone(),
                severity: Severity::General,
            });
            if let Some(c) = &p.community_id {
                state.count_record(c);
            }
        }
        _ => {}
    }
    state
}

/// Refuses unless the inspection is in one of `allowed` (the error names the current status).
fn require_status(state: &InspectionState, allowed: &[InspectionStatus]) -> Result<(), DomainError> {
    if allowed.contains(&state.status) {
        Ok(())
    } else {
        Err(DomainError::InspectionState { state: state.status.name_zh().to_owned() })
    }
}

/// Records are taken only while the inspection is under way, and from an inspector only when they
/// are on its team (sub-district admins may record in any inspection of their tenant).
fn require_recording(state: &InspectionState, role: Role, user: &UserId) -> Result<(), DomainError> {
    match state.status {
        InspectionStatus::InProgress => {}
        InspectionStatus::Concluded => return Err(DomainError::InspectionConcluded),
        other => return Err(DomainError::InspectionState { state: other.name_zh().to_owned() }),
    }
    if role == Role::Inspector && !state.is_on_team(user) {
        return Err(DomainError::NotOnTeam);
    }
    Ok(())
}

fn require_in_scope(state: &InspectionState, community: &CommunityId) -> Result<(), DomainError> {
    if state.in_scope(community) {
        Ok(())
    } else {
        Err(DomainError::CommunityOutOfScope { community: community.to_string() })
    }
}

/// An optional text: at most `max` characters.
fn max_len(field: &str, value: &str, max: usize) -> Result<(), DomainError> {
    if value.chars().count() > max {
        return Err(DomainError::invalid(field, format!("不能超过{max}个字符")));
    }
    Ok(())
}

fn check_communities(tenant: &TenantState, communities: &[CommunityId]) -> Result<(), DomainError> {
    if communities.is_empty() {
        return Err(DomainError::invalid("communities", "至少选择一个社区"));
    }
    let mut seen = BTreeSet::new();
    for c in communities {
        if !seen.insert(c) {
            return Err(DomainError::invalid("communities", format!("社区“{c}”重复")));
        }
        if !tenant.communities.contains_key(c) {
            return Err(not_found(format!("社区“{c}”")));
        }
    }
    Ok(())
}

/// Every member is an enabled user of the tenant holding Inspector or SubdistrictAdmin there.
fn check_team(tenant: &TenantState, tenant_scope: &Scope, team: &[TeamMember]) -> Result<(), DomainError> {
    if team.is_empty() {
        return Err(DomainError::invalid("team", "督查组至少需要一名成员"));
    }
    let mut seen = BTreeSet::new();
    for m in team {
        if !seen.insert(&m.user_id) {
            return Err(DomainError::invalid("team", format!("成员“{}”重复", m.user_id)));
        }
        let user = tenant.users.by_id.get(&m.user_id).ok_or_else(|| not_found(format!("用户“{}”", m.user_id)))?;
        if user.disabled {
            return Err(DomainError::UserDisabled);
        }
        let eligible = user
            .grants
            .iter()
            .any(|g| matches!(g.role, Role::Inspector | Role::SubdistrictAdmin) && &g.scope == tenant_scope);
        if !eligible {
            return Err(DomainError::invalid(
                "team",
                format!("用户“{}”不是本街道的督查组成员或街道管理员", user.display_name),
            ));
        }
    }
    Ok(())
}

/// A plan's methods: at least one, each once, each one of the tenant's usable methods.
fn check_methods(tenant: &TenantState, methods: &[InspectionMethod]) -> Result<(), DomainError> {
    if methods.is_empty() {
        return Err(DomainError::invalid("methods", "至少选择一种督查方式"));
    }
    let mut seen = BTreeSet::new();
    for m in methods {
        match tenant.methods.get(m.code()) {
            None => return Err(DomainError::invalid("methods", format!("本街道没有督查方式“{m}”"))),
            Some(t) if t.retired => {
                return Err(DomainError::invalid("methods", format!("督查方式“{}”已停用", t.name)));
            }
            Some(_) => {}
        }
        if !seen.insert(m) {
            return Err(DomainError::invalid("methods", format!("督查方式“{}”重复", method_name(tenant, m))));
        }
    }
    Ok(())
}

/// A method's name in this tenant (its code when the tenant never named it).
fn method_name<'a>(tenant: &'a TenantState, m: &'a InspectionMethod) -> &'a str {
    tenant.methods.get(m.code()).map_or(m.code(), |t| t.name.as_str())
}

/// A tenant like the sample report's (six communities, five finding categories, one checklist, a
/// team), built by folding real events; shared by this module's and [`crate::finding`]'s tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::authz::Actor;
    use crate::event::{
        ChecklistDefined, ChecklistItem, CommunityAdded, FindingCategoryAdded, RoleGranted, TenantCreated, UserCreated,
        UserDisabled,
    };
    use crate::time::Timestamp;

    /// 2024-03-15 10:00 in Shanghai.
    pub const NOW: &str = "2024-03-15T02:00:00Z";

    pub fn d() -> DistrictId {
        DistrictId::parse("xx-qu").unwrap()
    }
    pub fn t() -> TenantId {
        TenantId::parse("xx-jiedao").unwrap()
    }
    pub fn c(s: &str) -> CommunityId {
        CommunityId::parse(s).unwrap()
    }
    pub fn u(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }
    pub fn f(s: &str) -> FindingId {
        FindingId::parse(s).unwrap()
    }
    pub fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }
    pub fn at(s: &str) -> Timestamp {
        time::parse(s).unwrap()
    }
    pub fn tenant_scope() -> Scope {
        Scope::Tenant { district_id: d(), tenant_id: t() }
    }

    pub const COMMUNITIES: [(&str, &str); 6] = [
        ("dongfeng", "东风社区"),
        ("xinhua", "新华社区"),
        ("chaoyang", "朝阳社区"),
        ("hongqi", "红旗社区"),
        ("minzhu", "民主社区"),
        ("heping", "和平社区"),
    ];

    pub const CATEGORIES: [(&str, &str); 5] = [
        ("theory", "理论学习"),
        ("self_check", "督查自查"),
        ("responsibility", "主体责任"),
        ("opinion", "舆情研判"),
        ("staffing", "队伍建设"),
    ];

    /// The five 存在主要问题 of the sample report: (id, community, category, title, description).
    pub const FINDINGS: [(&str, Option<&str>, &str, &str, &str); 5] = [
        (
            "f1",
            Some("dongfeng"),
            "theory",
            "理论学习走过场的情况仍有存在",
            "督查发现，有些社区对政治理论学习的重要性认识不足，理论联系实际、指导实践不够，在开展政治理论学习时，没有认真联系实际学，大多泛泛而谈，存在走过场的现象。",
        ),
        (
            "f2",
            None,
            "self_check",
            "对督查工作不够重视",
            "部分社区对意识形态督查工作的重要性认识不足，没有进行认真自查，提交的自查报告质量不高，没有真实反映本部门落实意识形态主体责任情况，意识形态工作台账不够完善，多为不符合要求的内容。",
        ),
        (
            "f3",
            Some("xinhua"),
            "responsibility",
            "主体责任意识有待增强",
            "个别社区“重业务轻思想教育”问题比较突出，对理论学习尤其是对《中国共产党宣传工作条例》的落实不够全面，对意识形态工作重视不够，导致意识形态领域规范管理的难度加大，意识形态宣传工作停留在表面功夫，不能够持续走向深入。",
        ),
        (
            "f4",
            Some("chaoyang"),
            "opinion",
            "舆情分析研判预警工作不够充分",
            "个别社区舆情分析研判机制不健全，平时对各级新闻媒体的舆情动态了解不够深入，重大决策及项目的舆情风险评估制度、政务舆情回应制度、澄清虚假或不完整信息制度等工作机制不健全，对可能引发群体性事件和社会动荡的言论，搜集、研判、处置不够及时。",
        ),
        (
            "f5",
            None,
            "staffing",
            "意识形态队伍建设有待强化",
            "由于人员流动频率快，加上部分社区负责意识形态工作人员身兼数职，对本职工作思考不多、研究不深、汇报不够、履职不到位。",
        ),
    ];

    /// The tenant aggregate's own fold.
    pub fn fold_tenant(events: Vec<Event>) -> TenantState {
        events.iter().fold(TenantState::default(), crate::tenant::evolve)
    }

    fn user(events: &mut Vec<Event>, id: &str, name: &str, grant: Option<(Role, Scope)>) {
        events.push(UserCreated { user_id: u(id), username: id.to_owned(), display_name: name.to_owned() }.into());
        if let Some((role, scope)) = grant {
            events.push(RoleGranted { user_id: u(id), role, scope }.into());
        }
    }

    /// Users: `admin` (街道管理员), `zhang` and `li` (inspectors on the planned team), `wang`
    /// (inspector, not on the team), `chen` (inspector, disabled), `liu` (community officer of
    /// 东风社区), `zhou` (community officer of 新华社区), `zhao` (no role), `other-admin` (admin of
    /// another sub-district).
    pub fn tenant() -> TenantState {
        let mut events: Vec<Event> = vec![
            TenantCreated {
                tenant_id: t(),
                district_id: d(),
                name: "XX街道".to_owned(),
                methods: InspectionMethod::builtin_terms(),
                categories: vec![],
            }
            .into(),
        ];
        for (id, name) in COMMUNITIES {
            events.push(CommunityAdded { community_id: c(id), name: name.to_owned() }.into());
        }
        for (code, name) in CATEGORIES {
            events.push(FindingCategoryAdded { code: code.to_owned(), name: name.to_owned() }.into());
        }
        let item = |code: &str, title: &str, max: u32| ChecklistItem {
            code: code.to_owned(),
            title: title.to_owned(),
            max_points: Points::whole(max),
        };
        events.push(
            ChecklistDefined {
                checklist_id: ChecklistId::parse("cl2023").unwrap(),
                title: "2023年度意识形态工作责任制检查考核细则".to_owned(),
                items: vec![item("A1", "理论学习", 10), item("A2", "阵地建设", 10), item("A3", "网络意识形态", 5)],
            }
            .into(),
        );
        let ts = tenant_scope();
        let community_scope = |cid: &str| Scope::Community { district_id: d(), tenant_id: t(), community_id: c(cid) };
        user(&mut events, "admin", "街道管理员", Some((Role::SubdistrictAdmin, ts.clone())));
        user(&mut events, "zhang", "张组长", Some((Role::Inspector, ts.clone())));
        user(&mut events, "li", "李督查", Some((Role::Inspector, ts.clone())));
        user(&mut events, "wang", "王督查", Some((Role::Inspector, ts.clone())));
        user(&mut events, "chen", "陈督查", Some((Role::Inspector, ts.clone())));
        events.push(UserDisabled { user_id: u("chen"), reason: "调离".to_owned() }.into());
        user(&mut events, "liu", "刘书记", Some((Role::CommunityOfficer, community_scope("dongfeng"))));
        user(&mut events, "zhou", "周书记", Some((Role::CommunityOfficer, community_scope("xinhua"))));
        user(&mut events, "zhao", "赵某", None);
        let other = Scope::Tenant { district_id: d(), tenant_id: TenantId::parse("yy-jiedao").unwrap() };
        user(&mut events, "other-admin", "外街道管理员", Some((Role::SubdistrictAdmin, other)));
        fold_tenant(events)
    }

    /// The actor for a fixture user, with the grants the tenant records for them.
    pub fn actor(tenant: &TenantState, user: &str) -> Actor {
        let grants = tenant.users.by_id.get(&u(user)).map(|r| r.grants.clone()).unwrap_or_default();
        Actor { user_id: u(user), grants }
    }

    pub fn cmd<C>(tenant: &TenantState, user: &str, body: C) -> Command<C> {
        Command::new(actor(tenant, user), at(NOW), body)
    }

    pub fn member(id: &str, leader: bool) -> TeamMember {
        TeamMember { user_id: u(id), leader }
    }

    /// 对下辖6个社区……通过座谈交流、查阅资料等方式进行.
    pub fn plan() -> InspectionCommand {
        InspectionCommand::Plan {
            inspection_id: InspectionId::parse("2023-ideology").unwrap(),
            year: 2023,
            title: "对下级社区督查2023年度意识形态工作情况".to_owned(),
            subject: "意识形态工作".to_owned(),
            communities: COMMUNITIES.iter().map(|(id, _)| c(id)).collect(),
            team: vec![member("zhang", true), member("li", false)],
            methods: vec![InspectionMethod::new("meeting"), InspectionMethod::new("document_review")],
            checklist_id: Some(ChecklistId::parse("cl2023").unwrap()),
            planned_start: date("2024-03-01"),
            planned_end: date("2024-03-31"),
        }
    }

    pub fn record_finding(i: usize) -> InspectionCommand {
        let (id, community, category, title, description) = FINDINGS[i];
        InspectionCommand::RecordFinding {
            finding_id: f(id),
            community_id: community.map(c),
            category: category.to_owned(),
            title: title.to_owned(),
            description: description.to_owned(),
            severity: Severity::General,
        }
    }

    /// Decides as `user` and folds the resulting events into the state.
    pub fn apply(
        tenant: &TenantState,
        state: InspectionState,
        user: &str,
        body: InspectionCommand,
    ) -> Result<InspectionState, DomainError> {
        let events = decide(tenant, &state, &cmd(tenant, user, body))?;
        Ok(events.iter().fold(state, evolve))
    }

    pub fn planned(tenant: &TenantState) -> InspectionState {
        apply(tenant, InspectionState::default(), "admin", plan()).unwrap()
    }

    pub fn started(tenant: &TenantState) -> InspectionState {
        let state = planned(tenant);
        apply(tenant, state, "admin", InspectionCommand::Start { started_on: date("2024-03-04") }).unwrap()
    }

    /// Started, with the sample's five findings recorded by the team leader.
    pub fn with_findings(tenant: &TenantState) -> InspectionState {
        (0..FINDINGS.len()).fold(started(tenant), |s, i| apply(tenant, s, "zhang", record_finding(i)).unwrap())
    }

    pub fn concluded(tenant: &TenantState) -> InspectionState {
        let body = InspectionCommand::Conclude {
            assessment: "总体良好".to_owned(),
            summary: "各社区对意识形态工作比较重视，意识形态主体责任落实情况总体良好，辖区没有发生意识形态安全事故。"
                .to_owned(),
        };
        apply(tenant, with_findings(tenant), "admin", body).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    fn code(r: Result<InspectionState, DomainError>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    /// Plans the sample inspection as the admin after editing some of its fields:
    /// `plan_with!(&tenant, |year| *year = 1999)`.
    macro_rules! plan_with {
        ($tenant:expr, |$($field:ident),+| $edit:expr) => {{
            let mut body = plan();
            if let InspectionCommand::Plan { $($field),+, .. } = &mut body {
                $edit;
            }
            apply($tenant, InspectionState::default(), "admin", body)
        }};
    }

    fn fieldwork(community: &str, method: InspectionMethod, held_on: &str) -> InspectionCommand {
        InspectionCommand::RecordFieldwork {
            community_id: c(community),
            method,
            held_on: date(held_on),
            participants: "社区党支部书记、委员".to_owned(),
            notes: "座谈交流意识形态工作责任制落实情况".to_owned(),
        }
    }

    fn deduction(community: &str, item: &str, hundredths: u32) -> InspectionCommand {
        InspectionCommand::RecordDeduction {
            community_id: c(community),
            item_code: item.to_owned(),
            points: Points::from_hundredths(hundredths),
            reason: "理论学习走过场，未联系实际".to_owned(),
        }
    }

    fn achievement(id: &str, community: Option<&str>) -> InspectionCommand {
        InspectionCommand::RecordAchievement {
            achievement_id: AchievementId::parse(id).unwrap(),
            category: "加强理论武装，坚定理想信念".to_owned(),
            text: "充分发挥新时代文明实践站的阵地引领作用，2023年以来，开展理论宣讲会等10场。".to_owned(),
            figures: vec![Figure { label: "理论宣讲会".to_owned(), value: 10, unit: "场".to_owned() }],
            community_id: community.map(c),
        }
    }

    fn conclude(assessment: &str, summary: &str) -> InspectionCommand {
        InspectionCommand::Conclude { assessment: assessment.to_owned(), summary: summary.to_owned() }
    }

    fn every_command() -> Vec<InspectionCommand> {
        vec![
            plan(),
            InspectionCommand::ChangeScope { communities: vec![c("dongfeng"), c("xinhua"), c("chaoyang")] },
            InspectionCommand::ChangeTeam { team: vec![member("zhang", true)] },
            InspectionCommand::Start { started_on: date("2024-03-04") },
            fieldwork("dongfeng", InspectionMethod::new("meeting"), "2024-03-05"),
            deduction("dongfeng", "A1", 100),
            achievement("a9", None),
            InspectionCommand::RecordFinding {
                finding_id: f("f9"),
                community_id: None,
                category: "theory".to_owned(),
                title: "理论学习走过场".to_owned(),
                description: "有些社区大多泛泛而谈。".to_owned(),
                severity: Severity::General,
            },
            conclude("总体良好", ""),
        ]
    }

    // ------------------------------------------------------------------ plan

    #[test]
    fn plan_records_the_sample_inspection() {
        let tenant = tenant();
        let events = decide(&tenant, &InspectionState::default(), &cmd(&tenant, "admin", plan())).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type(), "InspectionPlanned");
        let state = events.iter().fold(InspectionState::default(), evolve);
        assert_eq!(state.status, InspectionStatus::Planned);
        assert_eq!(state.year, 2023);
        assert_eq!(state.title, "对下级社区督查2023年度意识形态工作情况");
        assert_eq!(state.communities.len(), 6);
        assert!(state.is_on_team(&u("zhang")) && !state.is_on_team(&u("wang")));
        assert_eq!(state.planned_end, Some(date("2024-03-31")));
    }

    #[test]
    fn plan_needs_manage_inspection_on_this_tenant() {
        let tenant = tenant();
        for user in ["zhang", "liu", "zhao", "other-admin"] {
            let r = apply(&tenant, InspectionState::default(), user, plan());
            assert_eq!(code(r), "forbidden", "{user}");
        }
    }

    #[test]
    fn plan_needs_an_existing_tenant() {
        let tenant = tenant();
        let missing = TenantState::default();
        let command = cmd(&tenant, "admin", plan());
        assert_eq!(decide(&missing, &InspectionState::default(), &command).unwrap_err().code(), "not_found");
    }

    #[test]
    fn plan_only_once() {
        let tenant = tenant();
        let state = planned(&tenant);
        assert_eq!(code(apply(&tenant, state, "admin", plan())), "already_exists");
    }

    #[test]
    fn plan_year_is_2000_to_2100() {
        let tenant = tenant();
        for (y, expected) in [(1999, "invalid"), (2000, "ok"), (2100, "ok"), (2101, "invalid")] {
            assert_eq!(code(plan_with!(&tenant, |year| *year = y)), expected, "{y}");
        }
    }

    #[test]
    fn plan_title_and_subject_are_required_and_bounded() {
        let tenant = tenant();
        assert_eq!(code(plan_with!(&tenant, |title| *title = "  ".to_owned())), "invalid");
        assert_eq!(code(plan_with!(&tenant, |title| *title = "督".repeat(TITLE_MAX))), "ok");
        assert_eq!(code(plan_with!(&tenant, |title| *title = "督".repeat(TITLE_MAX + 1))), "invalid");
        assert_eq!(code(plan_with!(&tenant, |subject| subject.clear())), "invalid");
        assert_eq!(code(plan_with!(&tenant, |subject| *subject = "意".repeat(SUBJECT_MAX + 1))), "invalid");
    }

    #[test]
    fn plan_communities_are_non_empty_distinct_and_known() {
        let tenant = tenant();
        assert_eq!(code(plan_with!(&tenant, |communities| communities.clear())), "invalid");
        assert_eq!(code(plan_with!(&tenant, |communities| communities.push(c("dongfeng")))), "invalid");
        assert_eq!(code(plan_with!(&tenant, |communities| communities.push(c("nowhere")))), "not_found");
        assert_eq!(code(plan_with!(&tenant, |communities| *communities = vec![c("hongqi")])), "ok");
    }

    #[test]
    fn plan_team_members_are_enabled_inspectors_or_admins_of_the_tenant() {
        let tenant = tenant();
        assert_eq!(code(plan_with!(&tenant, |team| team.clear())), "invalid");
        assert_eq!(code(plan_with!(&tenant, |team| team.push(member("zhang", false)))), "invalid");
        assert_eq!(code(plan_with!(&tenant, |team| team.push(member("ghost", false)))), "not_found");
        assert_eq!(code(plan_with!(&tenant, |team| team.push(member("zhao", false)))), "invalid");
        assert_eq!(code(plan_with!(&tenant, |team| team.push(member("liu", false)))), "invalid");
        assert_eq!(code(plan_with!(&tenant, |team| team.push(member("chen", false)))), "user_disabled");
        // an admin of another sub-district only
        assert_eq!(code(plan_with!(&tenant, |team| team.push(member("other-admin", false)))), "invalid");
        assert_eq!(code(plan_with!(&tenant, |team| team.push(member("admin", false)))), "ok");
    }

    #[test]
    fn plan_methods_are_non_empty_and_distinct() {
        let tenant = tenant();
        assert_eq!(code(plan_with!(&tenant, |methods| methods.clear())), "invalid");
        assert_eq!(code(plan_with!(&tenant, |methods| methods.push(InspectionMethod::new("meeting")))), "invalid");
        assert_eq!(
            code(plan_with!(&tenant, |methods| *methods =
                InspectionMethod::BUILTIN.iter().map(|(c, _)| InspectionMethod::new(c)).collect())),
            "ok"
        );
    }

    #[test]
    fn plan_methods_come_from_the_tenants_own_list() {
        let mut tenant = tenant();
        let custom = InspectionMethod::new("letters_visits");
        assert_eq!(code(plan_with!(&tenant, |methods| methods.push(custom.clone()))), "invalid", "not defined yet");
        tenant = crate::tenant::evolve(
            tenant,
            &crate::event::MethodAdded { code: "letters_visits".into(), name: "受理来信来访".into() }.into(),
        );
        assert_eq!(code(plan_with!(&tenant, |methods| methods.push(custom.clone()))), "ok");
        tenant = crate::tenant::evolve(tenant, &crate::event::MethodRetired { code: "letters_visits".into() }.into());
        let r = plan_with!(&tenant, |methods| methods.push(custom.clone()));
        assert!(
            matches!(&r, Err(DomainError::Invalid { field, reason }) if field == "methods" && reason.contains("已停用")),
            "{r:?}"
        );
    }

    #[test]
    fn findings_cannot_use_a_retired_category() {
        let tenant = tenant();
        let started = started(&tenant);
        let InspectionCommand::RecordFinding { category, .. } = record_finding(0) else { unreachable!() };
        let tenant = crate::tenant::evolve(tenant, &crate::event::FindingCategoryRetired { code: category }.into());
        let r = apply(&tenant, started, "zhang", record_finding(0));
        assert!(matches!(&r, Err(DomainError::Invalid { field, .. }) if field == "category"), "{r:?}");
    }

    #[test]
    fn plan_checklist_must_exist_if_given() {
        let tenant = tenant();
        let unknown = ChecklistId::parse("cl1999").unwrap();
        assert_eq!(code(plan_with!(&tenant, |checklist_id| *checklist_id = Some(unknown))), "not_found");
        assert_eq!(code(plan_with!(&tenant, |checklist_id| *checklist_id = None)), "ok");
    }

    #[test]
    fn plan_end_is_not_before_start() {
        let tenant = tenant();
        assert_eq!(code(plan_with!(&tenant, |planned_end| *planned_end = date("2024-02-29"))), "invalid");
        assert_eq!(code(plan_with!(&tenant, |planned_start| *planned_start = date("2024-03-31"))), "ok");
    }

    // ------------------------------------------------------------------ scope and team

    #[test]
    fn change_scope_while_planned_or_started() {
        let tenant = tenant();
        let three = || InspectionCommand::ChangeScope { communities: vec![c("dongfeng"), c("xinhua"), c("chaoyang")] };
        let state = apply(&tenant, planned(&tenant), "admin", three()).unwrap();
        assert_eq!(state.communities, vec![c("dongfeng"), c("xinhua"), c("chaoyang")]);
        assert_eq!(code(apply(&tenant, started(&tenant), "admin", three())), "ok");
        assert_eq!(code(apply(&tenant, InspectionState::default(), "admin", three())), "inspection_state");
        assert_eq!(code(apply(&tenant, concluded(&tenant), "admin", three())), "inspection_state");
        assert_eq!(code(apply(&tenant, planned(&tenant), "zhang", three())), "forbidden");
    }

    #[test]
    fn change_scope_validates_communities() {
        let tenant = tenant();
        let scope = |ids: &[&str]| InspectionCommand::ChangeScope { communities: ids.iter().map(|s| c(s)).collect() };
        assert_eq!(code(apply(&tenant, planned(&tenant), "admin", scope(&[]))), "invalid");
        assert_eq!(code(apply(&tenant, planned(&tenant), "admin", scope(&["hongqi", "hongqi"]))), "invalid");
        assert_eq!(code(apply(&tenant, planned(&tenant), "admin", scope(&["hongqi", "nowhere"]))), "not_found");
    }

    #[test]
    fn change_scope_keeps_communities_with_records() {
        let tenant = tenant();
        // f1 names 东风社区, f3 新华社区, f4 朝阳社区
        let state = with_findings(&tenant);
        let drop_dongfeng = InspectionCommand::ChangeScope { communities: vec![c("xinhua"), c("chaoyang")] };
        assert_eq!(code(apply(&tenant, state.clone(), "admin", drop_dongfeng)), "invalid");
        let drop_quiet_ones =
            InspectionCommand::ChangeScope { communities: vec![c("dongfeng"), c("xinhua"), c("chaoyang")] };
        assert_eq!(code(apply(&tenant, state, "admin", drop_quiet_ones)), "ok");
    }

    #[test]
    fn change_team_while_open_and_validated() {
        let tenant = tenant();
        let team =
            |ids: &[&str]| InspectionCommand::ChangeTeam { team: ids.iter().map(|s| member(s, false)).collect() };
        let state = apply(&tenant, started(&tenant), "admin", team(&["wang"])).unwrap();
        assert!(state.is_on_team(&u("wang")) && !state.is_on_team(&u("zhang")));
        assert_eq!(code(apply(&tenant, planned(&tenant), "admin", team(&["chen"]))), "user_disabled");
        assert_eq!(code(apply(&tenant, planned(&tenant), "admin", team(&[]))), "invalid");
        assert_eq!(code(apply(&tenant, concluded(&tenant), "admin", team(&["wang"]))), "inspection_state");
        assert_eq!(code(apply(&tenant, planned(&tenant), "zhang", team(&["wang"]))), "forbidden");
    }

    // ------------------------------------------------------------------ start

    #[test]
    fn start_only_when_planned_naming_the_state() {
        let tenant = tenant();
        let start = || InspectionCommand::Start { started_on: date("2024-03-04") };
        let state = apply(&tenant, planned(&tenant), "admin", start()).unwrap();
        assert_eq!(state.status, InspectionStatus::InProgress);
        assert_eq!(state.started_on, Some(date("2024-03-04")));
        for (state, name) in
            [(InspectionState::default(), "未计划"), (started(&tenant), "进行中"), (concluded(&tenant), "已结束")]
        {
            let err = apply(&tenant, state, "admin", start()).unwrap_err();
            assert_eq!(err.code(), "inspection_state");
            assert!(err.message_zh().contains(name), "{}", err.message_zh());
        }
        assert_eq!(code(apply(&tenant, planned(&tenant), "zhang", start())), "forbidden");
    }

    #[test]
    fn start_date_is_not_in_the_future() {
        let tenant = tenant();
        let on = |d: &str| InspectionCommand::Start { started_on: date(d) };
        assert_eq!(code(apply(&tenant, planned(&tenant), "admin", on("2024-03-16"))), "invalid");
        assert_eq!(code(apply(&tenant, planned(&tenant), "admin", on("2024-03-15"))), "ok");
    }

    // ------------------------------------------------------------------ recording

    #[test]
    fn records_only_while_started() {
        let tenant = tenant();
        let records = &every_command()[4..8];
        for body in records {
            assert_eq!(code(apply(&tenant, planned(&tenant), "zhang", body.clone())), "inspection_state", "{body:?}");
            assert_eq!(code(apply(&tenant, started(&tenant), "zhang", body.clone())), "ok", "{body:?}");
            assert_eq!(
                code(apply(&tenant, concluded(&tenant), "zhang", body.clone())),
                "inspection_concluded",
                "{body:?}"
            );
        }
    }

    #[test]
    fn inspectors_record_only_on_their_team_admins_anywhere() {
        let tenant = tenant();
        let body = fieldwork("dongfeng", InspectionMethod::new("meeting"), "2024-03-05");
        assert_eq!(code(apply(&tenant, started(&tenant), "li", body.clone())), "ok");
        assert_eq!(code(apply(&tenant, started(&tenant), "wang", body.clone())), "not_on_team");
        assert_eq!(code(apply(&tenant, started(&tenant), "admin", body.clone())), "ok");
        assert_eq!(code(apply(&tenant, started(&tenant), "liu", body.clone())), "forbidden");
        assert_eq!(code(apply(&tenant, started(&tenant), "other-admin", body)), "forbidden");
    }

    #[test]
    fn fieldwork_in_scope_with_a_planned_method_not_in_the_future() {
        let tenant = tenant();
        let scoped = apply(
            &tenant,
            started(&tenant),
            "admin",
            InspectionCommand::ChangeScope { communities: vec![c("dongfeng"), c("xinhua")] },
        )
        .unwrap();
        let ok = apply(
            &tenant,
            scoped.clone(),
            "zhang",
            fieldwork("xinhua", InspectionMethod::new("document_review"), NOW_DATE),
        )
        .unwrap();
        assert_eq!(ok.fieldwork_count, 1);
        assert_eq!(ok.records_by_community.get(&c("xinhua")), Some(&1));
        let out = fieldwork("hongqi", InspectionMethod::new("meeting"), "2024-03-05");
        assert_eq!(code(apply(&tenant, scoped.clone(), "zhang", out)), "community_out_of_scope");
        let unplanned = fieldwork("dongfeng", InspectionMethod::new("site_visit"), "2024-03-05");
        assert_eq!(code(apply(&tenant, scoped.clone(), "zhang", unplanned)), "invalid");
        let future = fieldwork("dongfeng", InspectionMethod::new("meeting"), "2024-03-16");
        assert_eq!(code(apply(&tenant, scoped, "zhang", future)), "invalid");
    }

    const NOW_DATE: &str = "2024-03-15";

    #[test]
    fn deductions_need_a_checklist_item_and_positive_points() {
        let tenant = tenant();
        let no_checklist = {
            let s = plan_with!(&tenant, |checklist_id| *checklist_id = None).unwrap();
            apply(&tenant, s, "admin", InspectionCommand::Start { started_on: date("2024-03-04") }).unwrap()
        };
        assert_eq!(code(apply(&tenant, no_checklist, "zhang", deduction("dongfeng", "A1", 100))), "invalid");
        assert_eq!(code(apply(&tenant, started(&tenant), "zhang", deduction("dongfeng", "Z9", 100))), "not_found");
        assert_eq!(code(apply(&tenant, started(&tenant), "zhang", deduction("dongfeng", "A1", 0))), "invalid");
        assert_eq!(
            code(apply(&tenant, started(&tenant), "zhang", deduction("nowhere", "A1", 100))),
            "community_out_of_scope"
        );
        let no_reason = InspectionCommand::RecordDeduction {
            community_id: c("dongfeng"),
            item_code: "A1".to_owned(),
            points: Points::whole(1),
            reason: " ".to_owned(),
        };
        assert_eq!(code(apply(&tenant, started(&tenant), "zhang", no_reason)), "invalid");
    }

    #[test]
    fn deductions_stay_within_the_item_and_score_is_floored() {
        let tenant = tenant();
        let checklist = &tenant.checklists[&ChecklistId::parse("cl2023").unwrap()];
        let s = started(&tenant);
        assert_eq!(s.community_score(checklist, &c("dongfeng")), Points::whole(25));
        let s = apply(&tenant, s, "zhang", deduction("dongfeng", "A3", 250)).unwrap();
        let s = apply(&tenant, s, "zhang", deduction("dongfeng", "A3", 200)).unwrap();
        assert_eq!(s.deducted(&c("dongfeng"), "A3"), Points::from_hundredths(450));
        let err = apply(&tenant, s.clone(), "zhang", deduction("dongfeng", "A3", 100)).unwrap_err();
        assert_eq!(err.code(), "deduction_exceeds_item");
        assert_eq!(
            err,
            DomainError::DeductionExceedsItem {
                item: "A3".to_owned(),
                requested: "1".to_owned(),
                remaining: "0.5".to_owned()
            }
        );
        let s = apply(&tenant, s, "zhang", deduction("dongfeng", "A3", 50)).unwrap();
        assert_eq!(s.deducted(&c("dongfeng"), "A3"), Points::whole(5));
        assert_eq!(s.community_score(checklist, &c("dongfeng")), Points::whole(20));
        // other communities are scored apart
        assert_eq!(s.community_score(checklist, &c("xinhua")), Points::whole(25));
        // a deduction recorded against a later, smaller checklist still floors at 0 per item
        let smaller = Checklist {
            title: "x".to_owned(),
            items: vec![crate::event::ChecklistItem {
                code: "A3".to_owned(),
                title: "网络意识形态".to_owned(),
                max_points: Points::whole(2),
            }],
        };
        assert_eq!(s.community_score(&smaller, &c("dongfeng")), Points::whole(0));
    }

    #[test]
    fn achievements_need_category_text_and_labelled_figures() {
        let tenant = tenant();
        let s = apply(&tenant, started(&tenant), "zhang", achievement("a1", Some("dongfeng"))).unwrap();
        assert_eq!(s.achievement_count(), 1);
        assert_eq!(code(apply(&tenant, s.clone(), "zhang", achievement("a1", None))), "already_exists");
        assert_eq!(code(apply(&tenant, s, "zhang", achievement("a2", Some("nowhere")))), "community_out_of_scope");
        let edit = |f: &dyn Fn(&mut String, &mut String, &mut Vec<Figure>)| {
            let mut body = achievement("a3", None);
            if let InspectionCommand::RecordAchievement { category, text, figures, .. } = &mut body {
                f(category, text, figures);
            }
            apply(&tenant, started(&tenant), "zhang", body)
        };
        assert_eq!(code(edit(&|cat, _, _| cat.clear())), "invalid");
        assert_eq!(code(edit(&|_, text, _| *text = " ".to_owned())), "invalid");
        assert_eq!(code(edit(&|_, _, figs| figs[0].label.clear())), "invalid");
        assert_eq!(code(edit(&|_, _, figs| figs.clear())), "ok");
    }

    #[test]
    fn findings_of_the_sample_are_recorded_in_order() {
        let tenant = tenant();
        let s = with_findings(&tenant);
        let ids: Vec<&str> = s.findings.iter().map(|f| f.finding_id.as_str()).collect();
        assert_eq!(ids, ["f1", "f2", "f3", "f4", "f5"]);
        let f1 = s.finding(&f("f1")).unwrap();
        assert_eq!(f1.community_id, Some(c("dongfeng")));
        assert_eq!(f1.category, "theory");
        assert_eq!(f1.title, "理论学习走过场的情况仍有存在");
        assert_eq!(s.finding(&f("f2")).unwrap().community_id, None);
        assert!(s.finding(&f("f9")).is_none());
    }

    #[test]
    fn findings_need_a_known_category_title_description_and_fresh_id() {
        let tenant = tenant();
        let s = with_findings(&tenant);
        assert_eq!(code(apply(&tenant, s.clone(), "zhang", record_finding(0))), "already_exists");
        let (_, community, category, title, description) = FINDINGS[0];
        let finding = |community: Option<&str>, category: &str, title: &str, description: &str| {
            let body = InspectionCommand::RecordFinding {
                finding_id: f("f6"),
                community_id: community.map(c),
                category: category.to_owned(),
                title: title.to_owned(),
                description: description.to_owned(),
                severity: Severity::Major,
            };
            apply(&tenant, started(&tenant), "zhang", body)
        };
        assert_eq!(code(finding(community, "weather", title, description)), "not_found");
        assert_eq!(code(finding(community, category, "", description)), "invalid");
        assert_eq!(code(finding(community, category, &"问".repeat(TITLE_MAX + 1), description)), "invalid");
        assert_eq!(code(finding(community, category, &"问".repeat(TITLE_MAX), description)), "ok");
        assert_eq!(code(finding(community, category, title, " ")), "invalid");
        assert_eq!(code(finding(community, category, title, &"问".repeat(TEXT_MAX + 1))), "invalid");
        assert_eq!(code(finding(community, category, title, &"问".repeat(TEXT_MAX))), "ok");
        assert_eq!(code(finding(Some("nowhere"), category, title, description)), "community_out_of_scope");
        assert_eq!(code(finding(None, category, title, description)), "ok");
    }

    // ------------------------------------------------------------------ conclusion

    #[test]
    fn conclude_when_started_with_an_assessment() {
        let tenant = tenant();
        let s = concluded(&tenant);
        assert_eq!(s.status, InspectionStatus::Concluded);
        assert_eq!(s.assessment.as_deref(), Some("总体良好"));
        let c = |a: &str, s: &str| conclude(a, s);
        assert_eq!(code(apply(&tenant, started(&tenant), "admin", c("", ""))), "invalid");
        assert_eq!(code(apply(&tenant, started(&tenant), "admin", c(&"好".repeat(51), ""))), "invalid");
        assert_eq!(code(apply(&tenant, started(&tenant), "admin", c(&"好".repeat(50), ""))), "ok");
        assert_eq!(
            code(apply(&tenant, started(&tenant), "admin", c("总体良好", &"好".repeat(TEXT_MAX + 1)))),
            "invalid"
        );
        assert_eq!(code(apply(&tenant, planned(&tenant), "admin", c("总体良好", ""))), "inspection_state");
        assert_eq!(code(apply(&tenant, started(&tenant), "zhang", c("总体良好", ""))), "forbidden");
    }

    #[test]
    fn a_concluded_inspection_accepts_nothing() {
        let tenant = tenant();
        let s = concluded(&tenant);
        for body in every_command() {
            let err = apply(&tenant, s.clone(), "admin", body.clone()).unwrap_err();
            assert!(
                matches!(err.code(), "inspection_concluded" | "inspection_state" | "already_exists"),
                "{body:?}: {err:?}"
            );
        }
        let err = apply(&tenant, s, "zhang", record_finding(0)).unwrap_err();
        assert_eq!(err, DomainError::InspectionConcluded);
        assert!(err.message_zh().contains("督查已结束"));
    }

    #[test]
    fn reports_are_issued_by_managers_also_after_conclusion() {
        let tenant = tenant();
        let issue = |sha: &str, position: u64, as_of: Option<&str>| InspectionCommand::IssueReport {
            sha256: sha.to_owned(),
            log_position: position,
            as_of: as_of.map(str::to_owned),
            format: DocumentFormat::Docx,
            signature: None,
        };
        let sha = "a".repeat(64);
        let s = apply(&tenant, concluded(&tenant), "admin", issue(&sha, 42, None)).unwrap();
        assert_eq!(s.status, InspectionStatus::Concluded, "issuing changes no fact of the inspection");
        assert_eq!(
            code(apply(&tenant, started(&tenant), "admin", issue(&sha, 7, Some("2024-01-01T00:00:00+08:00")))),
            "ok"
        );
        assert_eq!(code(apply(&tenant, concluded(&tenant), "zhang", issue(&sha, 42, None))), "forbidden");
        assert_eq!(code(apply(&tenant, concluded(&tenant), "admin", issue(&"A".repeat(64), 42, None))), "invalid");
        assert_eq!(code(apply(&tenant, concluded(&tenant), "admin", issue("abc", 42, None))), "invalid");
        assert_eq!(code(apply(&tenant, concluded(&tenant), "admin", issue(&sha, 0, None))), "invalid");
        assert_eq!(code(apply(&tenant, concluded(&tenant), "admin", issue(&sha, 1, Some("yesterday")))), "invalid");
        assert_eq!(code(apply(&tenant, InspectionState::default(), "admin", issue(&sha, 1, None))), "inspection_state");
    }

    #[test]
    fn state_round_trips_as_json() {
        let tenant = tenant();
        let s = apply(&tenant, with_findings(&tenant), "zhang", deduction("dongfeng", "A1", 150)).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<InspectionState>(&json).unwrap(), s);
    }

    #[test]
    fn other_streams_events_leave_the_state_alone() {
        let s = started(&tenant());
        let e: Event = crate::event::ReminderIssued { message: "请抓紧整改".to_owned() }.into();
        assert_eq!(evolve(s.clone(), &e), s);
    }
}
