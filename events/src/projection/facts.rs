//! The facts of one tenant: its inspections, findings (with their 整改) and self-inspections, as
//! the log has told them so far. The queries derive everything else from these.
//!
//! Inspection events live on `{tenant}/inspection-{id}` (including `FindingRecorded`, whose
//! inspection is its stream's); follow-up events on `{tenant}/finding-{id}`; a finding recorded on
//! its own stream gets its inspection from `RectificationAssigned`.

use super::FxHashMap;
use super::warning::{Schedule, WarningLevel, WarningPolicy, warning_level};
use super::{StreamKind, local_date_of, stream_kind};
use crate::envelope::RecordedEvent;
use crate::event::*;
use crate::ids::{AchievementId, ChecklistId, CommunityId, FindingId, InspectionId, SelfInspectionId};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

pub use crate::finding::RectificationStatus;
pub use crate::inspection::InspectionStatus;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldworkFact {
    pub community_id: CommunityId,
    pub method: InspectionMethod,
    pub held_on: NaiveDate,
    pub participants: String,
    pub notes: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeductionFact {
    pub community_id: CommunityId,
    pub item_code: String,
    pub points: Points,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AchievementFact {
    pub achievement_id: AchievementId,
    pub category: String,
    pub text: String,
    pub figures: Vec<Figure>,
    pub community_id: Option<CommunityId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conclusion {
    pub assessment: String,
    pub summary: String,
    pub concluded_on: Option<NaiveDate>,
}

/// A 督查报告 issued from this inspection (`ReportIssued`), with who issued it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedReportFact {
    pub sha256: String,
    pub log_position: u64,
    pub as_of: Option<String>,
    pub format: DocumentFormat,
    /// The stored `occurred_at` of the `ReportIssued` event.
    pub issued_at: String,
    pub issued_by: crate::envelope::ActorRef,
    /// The global position of the `ReportIssued` event itself.
    pub event_position: u64,
    #[serde(default)]
    pub signature: Option<crate::event::ReportSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionFacts {
    pub inspection_id: InspectionId,
    pub year: i32,
    pub title: String,
    pub subject: String,
    pub communities: Vec<CommunityId>,
    pub team: Vec<TeamMember>,
    pub methods: Vec<InspectionMethod>,
    pub checklist_id: Option<ChecklistId>,
    pub planned_start: NaiveDate,
    pub planned_end: NaiveDate,
    pub started_on: Option<NaiveDate>,
    pub conclusion: Option<Conclusion>,
    pub fieldwork: Vec<FieldworkFact>,
    pub deductions: Vec<DeductionFact>,
    pub achievements: Vec<AchievementFact>,
    /// Indexes into [`TenantFacts::findings`], in recorded order.
    pub findings: Vec<usize>,
    /// Reports issued, in order. `default`: checkpoints written before reports existed had none.
    #[serde(default)]
    pub issued_reports: Vec<IssuedReportFact>,
    /// Set for the source of an imported 整改台账 (issue 14).
    #[serde(default)]
    pub imported: Option<ImportedFrom>,
}

impl InspectionFacts {
    pub fn status(&self) -> InspectionStatus {
        if self.conclusion.is_some() {
            InspectionStatus::Concluded
        } else if self.started_on.is_some() || !self.fieldwork.is_empty() {
            InspectionStatus::InProgress
        } else {
            InspectionStatus::Planned
        }
    }

    /// A community's score on `checklist`: per item, `max_points` minus its deductions, floored at 0,
    /// summed. Deductions against codes the checklist does not have are ignored.
    pub fn score(&self, checklist: &super::directory::ChecklistEntry, community: &CommunityId) -> Points {
        Points(
            checklist
                .items
                .iter()
                .map(|item| {
                    let deducted: u32 = self
                        .deductions
                        .iter()
                        .filter(|d| &d.community_id == community && d.item_code == item.code)
                        .map(|d| d.points.0)
                        .sum();
                    item.max_points.0.saturating_sub(deducted)
                })
                .sum(),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RectificationFacts {
    pub title: String,
    pub measure: String,
    pub responsible_unit: String,
    pub leader: String,
    pub person: String,
    pub assigned_on: NaiveDate,
    pub original_deadline: NaiveDate,
    /// The current deadline, after any extension.
    pub deadline: NaiveDate,
    pub extensions: u32,
    pub progress_count: u32,
    pub latest_progress: Option<String>,
    pub last_progress_on: Option<NaiveDate>,
    pub evidence: Vec<EvidenceRef>,
    pub submitted_on: Option<NaiveDate>,
    pub returns: u32,
    pub reminders: u32,
    /// 销号日期.
    pub verified_on: Option<NaiveDate>,
    /// Each 催办 (`ReminderIssued`), in order: what the notifications of a manual reminder say.
    #[serde(default)]
    pub reminder_notes: Vec<ReminderNote>,
}

/// One 催办 as the log told it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderNote {
    /// The global position of the `ReminderIssued` event (a stable key for its notifications).
    pub position: u64,
    pub message: String,
    /// The Shanghai date it was issued.
    pub issued_on: Option<NaiveDate>,
    pub issued_by: crate::ids::UserId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dismissal {
    pub reason: String,
    pub dismissed_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingFacts {
    pub finding_id: FindingId,
    pub inspection_id: Option<InspectionId>,
    /// `None`: cross-cutting (全街道).
    pub community_id: Option<CommunityId>,
    pub category: String,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub recorded_on: Option<NaiveDate>,
    pub status: RectificationStatus,
    pub rectification: Option<RectificationFacts>,
    pub dismissal: Option<Dismissal>,
    /// Set when the finding came from an imported 整改台账: which file, sheet and row.
    #[serde(default)]
    pub imported: Option<ImportedFrom>,
}

impl FindingFacts {
    fn placeholder(id: &str) -> Option<Self> {
        Some(FindingFacts {
            finding_id: FindingId::parse(id).ok()?,
            inspection_id: None,
            community_id: None,
            category: String::new(),
            title: String::new(),
            description: String::new(),
            severity: Severity::General,
            recorded_on: None,
            status: RectificationStatus::Unassigned,
            rectification: None,
            dismissal: None,
            imported: None,
        })
    }

    /// The warning level on `today` (see [`warning_level`]).
    pub fn warning(&self, today: NaiveDate, policy: &WarningPolicy) -> Option<WarningLevel> {
        let r = self.rectification.as_ref()?;
        let schedule =
            Schedule { assigned_on: r.assigned_on, deadline: r.deadline, progress_reported: r.progress_count > 0 };
        warning_level(self.status, &schedule, today, policy)
    }

    /// Open and past its deadline (red), independent of any policy.
    pub fn is_overdue(&self, today: NaiveDate) -> bool {
        !self.status.is_closed()
            && self.status != RectificationStatus::Unassigned
            && self.rectification.as_ref().is_some_and(|r| today > r.deadline)
    }

    /// Counted in the completion rate's denominator: a rectification was assigned and the finding
    /// was not dismissed.
    pub fn counts_as_assigned(&self) -> bool {
        self.rectification.is_some() && self.status != RectificationStatus::Dismissed
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelfInspectionFact {
    pub self_inspection_id: SelfInspectionId,
    pub community_id: CommunityId,
    pub year: i32,
    pub title: String,
    pub inspection_id: Option<InspectionId>,
    pub submitted_on: Option<NaiveDate>,
}

/// One tenant's facts. Inspections and findings are kept in recorded order, each with an index by id.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TenantFacts {
    pub inspections: Vec<InspectionFacts>,
    pub findings: Vec<FindingFacts>,
    pub self_inspections: Vec<SelfInspectionFact>,
    inspection_index: FxHashMap<String, usize>,
    finding_index: FxHashMap<String, usize>,
    self_inspection_index: FxHashMap<String, usize>,
}

impl TenantFacts {
    pub fn inspection(&self, id: &InspectionId) -> Option<&InspectionFacts> {
        self.inspection_index.get(id.as_str()).and_then(|&i| self.inspections.get(i))
    }

    pub fn finding(&self, id: &FindingId) -> Option<&FindingFacts> {
        self.finding_index.get(id.as_str()).and_then(|&i| self.findings.get(i))
    }

    /// The year of a finding's inspection, when known.
    pub fn finding_year(&self, f: &FindingFacts) -> Option<i32> {
        f.inspection_id.as_ref().and_then(|i| self.inspection(i)).map(|i| i.year)
    }

    /// Folds an inspection, finding or self-inspection event; returns false for any other.
    pub(crate) fn apply(&mut self, e: &RecordedEvent, event: &Event) -> bool {
        match event {
            Event::InspectionPlanned(p) => {
                let facts = InspectionFacts {
                    inspection_id: p.inspection_id.clone(),
                    year: p.year,
                    title: p.title.clone(),
                    subject: p.subject.clone(),
                    communities: p.communities.clone(),
                    team: p.team.clone(),
                    methods: p.methods.clone(),
                    checklist_id: p.checklist_id.clone(),
                    planned_start: p.planned_start,
                    planned_end: p.planned_end,
                    started_on: None,
                    conclusion: None,
                    fieldwork: Vec::new(),
                    deductions: Vec::new(),
                    achievements: Vec::new(),
                    findings: Vec::new(),
                    issued_reports: Vec::new(),
                    imported: None,
                };
                match self.inspection_index.get(p.inspection_id.as_str()) {
                    Some(&i) => {
                        // A re-plan keeps what was recorded against the inspection.
                        let old = std::mem::replace(&mut self.inspections[i], facts);
                        let new = &mut self.inspections[i];
                        (new.started_on, new.conclusion, new.fieldwork) =
                            (old.started_on, old.conclusion, old.fieldwork);
                        (new.deductions, new.achievements, new.findings) =
                            (old.deductions, old.achievements, old.findings);
                        new.issued_reports = old.issued_reports;
                    }
                    None => {
                        self.inspection_index.insert(p.inspection_id.as_str().to_owned(), self.inspections.len());
                        self.inspections.push(facts);
                    }
                }
            }
            Event::InspectionScopeChanged(c) => {
                if let Some(i) = self.inspection_mut(e) {
                    i.communities.clone_from(&c.communities);
                }
            }
            Event::InspectionTeamChanged(c) => {
                if let Some(i) = self.inspection_mut(e) {
                    i.team.clone_from(&c.team);
                }
            }
            Event::InspectionStarted(s) => {
                if let Some(i) = self.inspection_mut(e) {
                    i.started_on = Some(s.started_on);
                }
            }
            Event::FieldworkRecorded(f) => {
                if let Some(i) = self.inspection_mut(e) {
                    i.fieldwork.push(FieldworkFact {
                        community_id: f.community_id.clone(),
                        method: f.method.clone(),
                        held_on: f.held_on,
                        participants: f.participants.clone(),
                        notes: f.notes.clone(),
                    });
                }
            }
            Event::DeductionRecorded(d) => {
                if let Some(i) = self.inspection_mut(e) {
                    i.deductions.push(DeductionFact {
                        community_id: d.community_id.clone(),
                        item_code: d.item_code.clone(),
                        points: d.points,
                        reason: d.reason.clone(),
                    });
                }
            }
            Event::AchievementRecorded(a) => {
                if let Some(i) = self.inspection_mut(e) {
                    i.achievements.push(AchievementFact {
                        achievement_id: a.achievement_id.clone(),
                        category: a.category.clone(),
                        text: a.text.clone(),
                        figures: a.figures.clone(),
                        community_id: a.community_id.clone(),
                    });
                }
            }
            Event::InspectionConcluded(c) => {
                let on = local_date_of(&e.occurred_at);
                if let Some(i) = self.inspection_mut(e) {
                    i.conclusion = Some(Conclusion {
                        assessment: c.assessment.clone(),
                        summary: c.summary.clone(),
                        concluded_on: on,
                    });
                }
            }
            Event::ReportIssued(r) => {
                if let Some(i) = self.inspection_mut(e) {
                    i.issued_reports.push(IssuedReportFact {
                        sha256: r.sha256.clone(),
                        log_position: r.log_position,
                        as_of: r.as_of.clone(),
                        format: r.format,
                        issued_at: e.occurred_at.clone(),
                        issued_by: e.actor.clone(),
                        event_position: e.position,
                        signature: r.signature.clone(),
                    });
                }
            }
            Event::FindingRecorded(f) => self.record_finding(e, f),
            Event::InspectionImported(p) => {
                if self.inspection_index.contains_key(p.inspection_id.as_str()) {
                    return true;
                }
                let start = NaiveDate::from_ymd_opt(p.year, 1, 1).unwrap_or_default();
                self.inspection_index.insert(p.inspection_id.as_str().to_owned(), self.inspections.len());
                self.inspections.push(InspectionFacts {
                    inspection_id: p.inspection_id.clone(),
                    year: p.year,
                    title: p.title.clone(),
                    subject: String::new(),
                    communities: Vec::new(),
                    team: Vec::new(),
                    methods: Vec::new(),
                    checklist_id: None,
                    planned_start: start,
                    planned_end: start,
                    started_on: None,
                    conclusion: Some(Conclusion {
                        assessment: String::new(),
                        summary: String::new(),
                        concluded_on: None,
                    }),
                    fieldwork: Vec::new(),
                    deductions: Vec::new(),
                    achievements: Vec::new(),
                    findings: Vec::new(),
                    issued_reports: Vec::new(),
                    imported: Some(p.file.clone()),
                });
            }
            Event::FindingImported(f) => {
                let recorded = FindingRecorded {
                    finding_id: f.finding_id.clone(),
                    community_id: f.community_id.clone(),
                    category: f.category.clone(),
                    title: f.title.clone(),
                    description: f.description.clone(),
                    severity: Severity::General,
                };
                self.record_finding(e, &recorded);
                if let Some(&i) = self.finding_index.get(f.finding_id.as_str()) {
                    let facts = &mut self.findings[i];
                    facts.imported = Some(f.file.clone());
                    if f.found_on.is_some() {
                        facts.recorded_on = f.found_on;
                    }
                }
            }
            Event::RectificationImported(a) => {
                let today = local_date_of(&e.occurred_at);
                let mut newly_linked = false;
                if let Some(f) = self.finding_mut(e) {
                    if f.inspection_id.is_none() {
                        f.inspection_id = Some(a.inspection_id.clone());
                        newly_linked = true;
                    }
                    f.status = a.status;
                    if a.status == RectificationStatus::Dismissed {
                        f.dismissal = Some(Dismissal { reason: String::new(), dismissed_on: None });
                    }
                    f.rectification = a.deadline.map(|deadline| {
                        let assigned_on = a.assigned_on.or(f.recorded_on).or(today).unwrap_or(deadline).min(deadline);
                        RectificationFacts {
                            title: a.title.clone(),
                            measure: a.measure.clone(),
                            responsible_unit: a.responsible_unit.clone(),
                            leader: a.leader.clone(),
                            person: a.person.clone(),
                            assigned_on,
                            original_deadline: a.original_deadline.unwrap_or(deadline),
                            deadline,
                            extensions: u32::from(a.original_deadline.is_some_and(|o| o != deadline)),
                            progress_count: a.progress_count,
                            latest_progress: a.latest_progress.clone(),
                            last_progress_on: None,
                            evidence: a
                                .evidence_names
                                .iter()
                                .map(|n| EvidenceRef {
                                    sha256: String::new(),
                                    filename: n.clone(),
                                    content_type: String::new(),
                                    size: 0,
                                })
                                .collect(),
                            submitted_on: None,
                            returns: 0,
                            reminders: 0,
                            verified_on: a.verified_on,
                            reminder_notes: Vec::new(),
                        }
                    });
                    if f.imported.is_none() {
                        f.imported = Some(a.file.clone());
                    }
                }
                if newly_linked {
                    self.link_finding_to_inspection(e);
                }
            }
            Event::RectificationAssigned(a) => {
                let on = local_date_of(&e.occurred_at);
                let mut newly_linked = false;
                if let Some(f) = self.finding_mut(e) {
                    if f.inspection_id.is_none() {
                        f.inspection_id = Some(a.inspection_id.clone());
                        newly_linked = true;
                    }
                    let assigned_on = on.unwrap_or(a.deadline);
                    match &mut f.rectification {
                        // A re-assignment changes the measure; progress so far stays.
                        Some(r) => {
                            r.title.clone_from(&a.title);
                            r.measure.clone_from(&a.measure);
                            r.responsible_unit.clone_from(&a.responsible_unit);
                            r.leader.clone_from(&a.leader);
                            r.person.clone_from(&a.person);
                            r.deadline = a.deadline;
                        }
                        None => {
                            f.rectification = Some(RectificationFacts {
                                title: a.title.clone(),
                                measure: a.measure.clone(),
                                responsible_unit: a.responsible_unit.clone(),
                                leader: a.leader.clone(),
                                person: a.person.clone(),
                                assigned_on,
                                original_deadline: a.deadline,
                                deadline: a.deadline,
                                extensions: 0,
                                progress_count: 0,
                                latest_progress: None,
                                last_progress_on: None,
                                evidence: Vec::new(),
                                submitted_on: None,
                                returns: 0,
                                reminders: 0,
                                verified_on: None,
                                reminder_notes: Vec::new(),
                            });
                        }
                    }
                    if f.status == RectificationStatus::Unassigned {
                        f.status = RectificationStatus::Assigned;
                    }
                }
                if newly_linked {
                    self.link_finding_to_inspection(e);
                }
            }
            Event::ProgressReported(p) => {
                let on = local_date_of(&e.occurred_at);
                if let Some(f) = self.finding_mut(e)
                    && let Some(r) = &mut f.rectification
                {
                    r.progress_count += 1;
                    r.latest_progress = Some(p.text.clone());
                    r.last_progress_on = on;
                    r.evidence.extend(p.evidence.iter().cloned());
                    if matches!(f.status, RectificationStatus::Assigned | RectificationStatus::Returned) {
                        f.status = RectificationStatus::InProgress;
                    }
                }
            }
            Event::RectificationSubmitted(_) => {
                let on = local_date_of(&e.occurred_at);
                if let Some(f) = self.finding_mut(e)
                    && let Some(r) = &mut f.rectification
                {
                    r.submitted_on = on;
                    f.status = RectificationStatus::Submitted;
                }
            }
            Event::RectificationVerified(_) => {
                let on = local_date_of(&e.occurred_at);
                if let Some(f) = self.finding_mut(e)
                    && let Some(r) = &mut f.rectification
                {
                    r.verified_on = on;
                    f.status = RectificationStatus::Verified;
                }
            }
            Event::RectificationReturned(_) => {
                if let Some(f) = self.finding_mut(e)
                    && let Some(r) = &mut f.rectification
                {
                    r.returns += 1;
                    f.status = RectificationStatus::Returned;
                }
            }
            Event::DeadlineExtended(d) => {
                if let Some(f) = self.finding_mut(e)
                    && let Some(r) = &mut f.rectification
                {
                    r.extensions += 1;
                    r.deadline = d.new_deadline;
                }
            }
            Event::ReminderIssued(m) => {
                let on = local_date_of(&e.occurred_at);
                if let Some(f) = self.finding_mut(e)
                    && let Some(r) = &mut f.rectification
                {
                    r.reminders += 1;
                    r.reminder_notes.push(ReminderNote {
                        position: e.position,
                        message: m.message.clone(),
                        issued_on: on,
                        issued_by: e.actor.user_id.clone(),
                    });
                }
            }
            Event::FindingDismissed(d) => {
                let on = local_date_of(&e.occurred_at);
                if let Some(f) = self.finding_mut(e) {
                    f.dismissal = Some(Dismissal { reason: d.reason.clone(), dismissed_on: on });
                    f.status = RectificationStatus::Dismissed;
                }
            }
            Event::SelfInspectionSubmitted(s) => {
                let fact = SelfInspectionFact {
                    self_inspection_id: s.self_inspection_id.clone(),
                    community_id: s.community_id.clone(),
                    year: s.year,
                    title: s.title.clone(),
                    inspection_id: s.inspection_id.clone(),
                    submitted_on: local_date_of(&e.occurred_at),
                };
                match self.self_inspection_index.get(s.self_inspection_id.as_str()) {
                    Some(&i) => self.self_inspections[i] = fact,
                    None => {
                        self.self_inspection_index
                            .insert(s.self_inspection_id.as_str().to_owned(), self.self_inspections.len());
                        self.self_inspections.push(fact);
                    }
                }
            }
            _ => return false,
        }
        true
    }

    fn record_finding(&mut self, e: &RecordedEvent, f: &FindingRecorded) {
        let inspection_id = match stream_kind(&e.stream) {
            StreamKind::Inspection(id) => InspectionId::parse(id).ok(),
            _ => None,
        };
        let (idx, fresh) = match self.finding_index.get(f.finding_id.as_str()) {
            Some(&i) => (i, false),
            None => {
                let Some(placeholder) = FindingFacts::placeholder(f.finding_id.as_str()) else { return };
                self.finding_index.insert(f.finding_id.as_str().to_owned(), self.findings.len());
                self.findings.push(placeholder);
                (self.findings.len() - 1, true)
            }
        };
        let facts = &mut self.findings[idx];
        facts.community_id.clone_from(&f.community_id);
        facts.category.clone_from(&f.category);
        facts.title.clone_from(&f.title);
        facts.description.clone_from(&f.description);
        facts.severity = f.severity;
        facts.recorded_on = local_date_of(&e.occurred_at);
        if inspection_id.is_some() && facts.inspection_id != inspection_id {
            facts.inspection_id = inspection_id;
            self.link(idx, fresh);
        }
    }

    /// After `RectificationAssigned` may have named a finding's inspection for the first time.
    fn link_finding_to_inspection(&mut self, e: &RecordedEvent) {
        if let StreamKind::Finding(id) = stream_kind(&e.stream)
            && let Some(&idx) = self.finding_index.get(id)
        {
            self.link(idx, false);
        }
    }

    /// Lists finding `idx` under its inspection, once. A `fresh` finding cannot be listed yet; for
    /// others this runs only when their inspection becomes known (rare), so the check is no
    /// per-event scan.
    fn link(&mut self, idx: usize, fresh: bool) {
        let Some(inspection) = self.findings[idx].inspection_id.as_ref() else { return };
        let Some(&i) = self.inspection_index.get(inspection.as_str()) else { return };
        let list = &mut self.inspections[i].findings;
        if fresh || !list.contains(&idx) {
            list.push(idx);
        }
    }

    fn inspection_mut(&mut self, e: &RecordedEvent) -> Option<&mut InspectionFacts> {
        let StreamKind::Inspection(id) = stream_kind(&e.stream) else { return None };
        let &i = self.inspection_index.get(id)?;
        self.inspections.get_mut(i)
    }

    /// The finding of a `{tenant}/finding-{id}` stream; an event for a finding not recorded yet
    /// starts a placeholder that `FindingRecorded` fills in.
    fn finding_mut(&mut self, e: &RecordedEvent) -> Option<&mut FindingFacts> {
        let StreamKind::Finding(id) = stream_kind(&e.stream) else { return None };
        let i = match self.finding_index.get(id) {
            Some(&i) => i,
            None => {
                let placeholder = FindingFacts::placeholder(id)?;
                self.finding_index.insert(id.to_owned(), self.findings.len());
                self.findings.push(placeholder);
                self.findings.len() - 1
            }
        };
        self.findings.get_mut(i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn finding_follow_up_folds_into_status_and_dates() {
        let m = fold(&sample_log());
        let t = m.tenant_facts(&tid("t1")).unwrap();
        let f1 = t.finding(&fid("f1")).unwrap();
        assert_eq!(f1.status, RectificationStatus::Verified);
        let r = f1.rectification.as_ref().unwrap();
        assert_eq!(r.verified_on, Some(date("2024-03-20")));
        assert_eq!(r.progress_count, 1);
        assert_eq!(r.evidence.len(), 1);
        assert_eq!(f1.inspection_id, Some(iid("i1")));
        let f3 = t.finding(&fid("f3")).unwrap();
        assert_eq!(f3.status, RectificationStatus::Assigned);
        assert!(f3.is_overdue(date("2024-04-15")));
        assert!(!f3.is_overdue(date("2024-02-29")));
        assert_eq!(t.finding(&fid("f4")).unwrap().status, RectificationStatus::Unassigned);
        assert_eq!(t.inspection(&iid("i1")).unwrap().findings, vec![0, 1, 2, 3, 4]);
        assert_eq!(t.inspection(&iid("i1")).unwrap().status(), InspectionStatus::Concluded);
    }

    #[test]
    fn return_extension_and_dismissal() {
        let mut log = sample_log();
        let s = "t1/finding-f2";
        log.push(ev("t1", s, "2024-04-01T02:00:00.000000Z", RectificationSubmitted { summary: "已完成".into() }));
        log.push(ev("t1", s, "2024-04-02T02:00:00.000000Z", RectificationReturned { reason: "材料不全".into() }));
        log.push(ev(
            "t1",
            s,
            "2024-04-03T02:00:00.000000Z",
            DeadlineExtended { new_deadline: date("2024-09-30"), reason: "补充材料".into() },
        ));
        log.push(ev("t1", "t1/finding-f4", "2024-04-03T03:00:00.000000Z", FindingDismissed { reason: "重复".into() }));
        let m = fold(&renumber(log));
        let t = m.tenant_facts(&tid("t1")).unwrap();
        let f2 = t.finding(&fid("f2")).unwrap();
        assert_eq!(f2.status, RectificationStatus::Returned);
        let r = f2.rectification.as_ref().unwrap();
        assert_eq!(
            (r.original_deadline, r.deadline, r.extensions, r.returns),
            (date("2024-06-30"), date("2024-09-30"), 1, 1)
        );
        assert_eq!(f2.warning(date("2024-04-15"), &WarningPolicy::default()), Some(WarningLevel::Yellow));
        let f4 = t.finding(&fid("f4")).unwrap();
        assert_eq!(f4.status, RectificationStatus::Dismissed);
        assert_eq!(f4.dismissal.as_ref().unwrap().dismissed_on, Some(date("2024-04-03")));
    }

    #[test]
    fn scores_floor_each_item_at_zero() {
        let m = fold(&sample_log());
        let t = m.tenant_facts(&tid("t1")).unwrap();
        let i1 = t.inspection(&iid("i1")).unwrap();
        let cl = m.directory().tenant(&tid("t1")).unwrap().checklist(i1.checklist_id.as_ref().unwrap()).unwrap();
        // c1 lost 25 + 10 on A1 (30 points): floored to 0, not -5.
        assert_eq!(i1.score(cl, &cid("c1")), Points::whole(70));
        assert_eq!(i1.score(cl, &cid("c2")), Points(9750));
        assert_eq!(i1.score(cl, &cid("c6")), Points::whole(100));
    }
}
