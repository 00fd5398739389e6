//! One inspection in full: the plan, the fieldwork, the scores, the achievements and the findings —
//! what the 督查报告 is generated from.

use super::facts::{InspectionStatus, RectificationStatus};
use super::{ReadModel, TenantEntry};
use crate::event::{DocumentFormat, Figure, InspectionMethod, Points, Severity};
use crate::ids::{
    AchievementId, ChecklistId, CommunityId, FindingId, InspectionId, SelfInspectionId, TenantId, UserId,
};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A community by id and name (全街道 for a cross-cutting entry, with no id).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunityRef {
    pub community_id: Option<CommunityId>,
    pub name: String,
}

/// The name shown for cross-cutting findings and achievements.
pub const WHOLE_SUBDISTRICT: &str = "全街道";

impl CommunityRef {
    pub(crate) fn of(entry: Option<&TenantEntry>, id: Option<&CommunityId>) -> Self {
        match id {
            None => CommunityRef { community_id: None, name: WHOLE_SUBDISTRICT.to_owned() },
            Some(id) => CommunityRef {
                community_id: Some(id.clone()),
                name: entry.and_then(|t| t.community_name(id)).unwrap_or(id.as_str()).to_owned(),
            },
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamMemberView {
    pub user_id: UserId,
    pub display_name: String,
    /// 组长.
    pub leader: bool,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldworkView {
    pub method: InspectionMethod,
    /// 座谈交流, 查阅资料, …
    pub method_name: String,
    pub held_on: NaiveDate,
    pub participants: String,
    pub notes: String,
}

/// Fieldwork grouped by community, in the plan's community order.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunityFieldwork {
    pub community: CommunityRef,
    pub records: Vec<FieldworkView>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemScore {
    pub code: String,
    pub title: String,
    pub max_points: Points,
    pub deducted: Points,
    /// `max_points - deducted`, floored at 0.
    pub score: Points,
    pub reasons: Vec<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunityScore {
    pub community: CommunityRef,
    pub max_points: Points,
    pub score: Points,
    pub items: Vec<ItemScore>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AchievementView {
    pub achievement_id: AchievementId,
    /// The heading, e.g. 加强理论武装，坚定理想信念.
    pub category: String,
    pub text: String,
    pub figures: Vec<Figure>,
    pub community: CommunityRef,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingView {
    pub finding_id: FindingId,
    pub community: CommunityRef,
    pub category: String,
    pub category_name: String,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub severity_name: String,
    pub status: RectificationStatus,
    pub status_name: String,
    /// The rectification's title (下一步工作计划 heading), when assigned.
    pub rectification_title: Option<String>,
    /// The rectification's measure (整改措施), when assigned.
    pub rectification_measure: Option<String>,
    pub deadline: Option<NaiveDate>,
}

/// A 自查报告 submitted in answer to an inspection (the 督查报告 cites it).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelfInspectionRef {
    pub self_inspection_id: SelfInspectionId,
    pub community: CommunityRef,
    /// The title as shown: the report's own, or 「{社区}{年度}年度自查报告」 when it has none.
    pub title: String,
    pub submitted_on: Option<NaiveDate>,
}

/// A 督查报告 that was issued (`ReportIssued`): which bytes (hash), made from which log position,
/// when and by whom.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedReportView {
    pub sha256: String,
    /// Generated from the log up to and including this global position.
    pub log_position: u64,
    /// The "as of" time asked for, if the report was of a past state.
    pub as_of: Option<String>,
    pub format: DocumentFormat,
    /// When it was issued (UTC, as stored).
    pub issued_at: String,
    pub issued_by: UserId,
    pub issued_by_name: String,
    /// The global position of the `ReportIssued` event.
    pub event_position: u64,
    /// The server's signature over it (docs/AUDIT.md), when the deployment signs.
    pub signature: Option<crate::event::ReportSignature>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionDetail {
    pub inspection_id: InspectionId,
    pub year: i32,
    pub title: String,
    pub subject: String,
    pub methods: Vec<InspectionMethod>,
    pub method_names: Vec<String>,
    /// The communities in scope, in plan order.
    pub scope: Vec<CommunityRef>,
    pub team: Vec<TeamMemberView>,
    pub planned_start: NaiveDate,
    pub planned_end: NaiveDate,
    pub started_on: Option<NaiveDate>,
    pub status: InspectionStatus,
    pub status_name: String,
    pub fieldwork: Vec<CommunityFieldwork>,
    pub checklist_id: Option<ChecklistId>,
    pub checklist_title: Option<String>,
    /// Per community in scope; empty without a checklist. Final once the inspection is concluded.
    pub scores: Vec<CommunityScore>,
    pub achievements: Vec<AchievementView>,
    pub findings: Vec<FindingView>,
    /// 总体评价.
    pub assessment: Option<String>,
    pub summary: Option<String>,
    pub concluded_on: Option<NaiveDate>,
    /// Reports issued from this inspection, in order.
    pub issued_reports: Vec<IssuedReportView>,
    /// The 自查报告 submitted in answer to it, in the order they were submitted.
    pub self_inspections: Vec<SelfInspectionRef>,
}

impl ReadModel {
    /// One inspection of one tenant; `None` when the tenant has no such inspection.
    pub fn inspection_detail(&self, tenant: &TenantId, inspection_id: &InspectionId) -> Option<InspectionDetail> {
        let (facts, entry) = self.tenant_parts(tenant);
        let i = facts.inspection(inspection_id)?;
        let community = |id: Option<&CommunityId>| CommunityRef::of(entry, id);
        let checklist = i.checklist_id.as_ref().and_then(|id| entry.and_then(|t| t.checklist(id)));

        let mut fieldwork: Vec<CommunityFieldwork> = i
            .communities
            .iter()
            .map(|c| CommunityFieldwork { community: community(Some(c)), records: Vec::new() })
            .collect();
        for w in &i.fieldwork {
            let view = FieldworkView {
                method: w.method.clone(),
                method_name: entry.map_or(w.method.code(), |t| t.method_name(&w.method)).to_owned(),
                held_on: w.held_on,
                participants: w.participants.clone(),
                notes: w.notes.clone(),
            };
            match fieldwork.iter_mut().find(|g| g.community.community_id.as_ref() == Some(&w.community_id)) {
                Some(g) => g.records.push(view),
                // Fieldwork with a community that has since left the scope is still shown.
                None => fieldwork
                    .push(CommunityFieldwork { community: community(Some(&w.community_id)), records: vec![view] }),
            }
        }

        let scores = checklist
            .map(|cl| {
                i.communities
                    .iter()
                    .map(|c| {
                        let items: Vec<ItemScore> = cl
                            .items
                            .iter()
                            .map(|item| {
                                let ds =
                                    i.deductions.iter().filter(|d| &d.community_id == c && d.item_code == item.code);
                                let deducted: u32 = ds.clone().map(|d| d.points.0).sum();
                                ItemScore {
                                    code: item.code.clone(),
                                    title: item.title.clone(),
                                    max_points: item.max_points,
                                    deducted: Points(deducted),
                                    score: Points(item.max_points.0.saturating_sub(deducted)),
                                    reasons: ds.map(|d| d.reason.clone()).collect(),
                                }
                            })
                            .collect();
                        CommunityScore {
                            community: community(Some(c)),
                            max_points: cl.total(),
                            score: Points(items.iter().map(|s| s.score.0).sum()),
                            items,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();

        let achievements = i
            .achievements
            .iter()
            .map(|a| AchievementView {
                achievement_id: a.achievement_id.clone(),
                category: a.category.clone(),
                text: a.text.clone(),
                figures: a.figures.clone(),
                community: community(a.community_id.as_ref()),
            })
            .collect();

        let findings = i
            .findings
            .iter()
            .filter_map(|&idx| facts.findings.get(idx))
            .map(|f| FindingView {
                finding_id: f.finding_id.clone(),
                community: community(f.community_id.as_ref()),
                category: f.category.clone(),
                category_name: entry.map_or(f.category.as_str(), |t| t.category_name(&f.category)).to_owned(),
                title: f.title.clone(),
                description: f.description.clone(),
                severity: f.severity,
                severity_name: f.severity.name_zh().to_owned(),
                status: f.status,
                status_name: f.status.name_zh().to_owned(),
                rectification_title: f.rectification.as_ref().map(|r| r.title.clone()),
                rectification_measure: f.rectification.as_ref().map(|r| r.measure.clone()),
                deadline: f.rectification.as_ref().map(|r| r.deadline),
            })
            .collect();

        let status = i.status();
        Some(InspectionDetail {
            inspection_id: i.inspection_id.clone(),
            year: i.year,
            title: i.title.clone(),
            subject: i.subject.clone(),
            methods: i.methods.clone(),
            method_names: i.methods.iter().map(|m| entry.map_or(m.code(), |t| t.method_name(m)).to_owned()).collect(),
            scope: i.communities.iter().map(|c| community(Some(c))).collect(),
            team: i
                .team
                .iter()
                .map(|m| TeamMemberView {
                    user_id: m.user_id.clone(),
                    display_name: self.directory().display_name(&m.user_id).to_owned(),
                    leader: m.leader,
                })
                .collect(),
            planned_start: i.planned_start,
            planned_end: i.planned_end,
            started_on: i.started_on,
            status,
            status_name: status.name_zh().to_owned(),
            fieldwork,
            checklist_id: i.checklist_id.clone(),
            checklist_title: checklist.map(|c| c.title.clone()),
            scores,
            achievements,
            findings,
            assessment: i.conclusion.as_ref().map(|c| c.assessment.clone()),
            summary: i.conclusion.as_ref().map(|c| c.summary.clone()),
            concluded_on: i.conclusion.as_ref().and_then(|c| c.concluded_on),
            issued_reports: i
                .issued_reports
                .iter()
                .map(|r| IssuedReportView {
                    sha256: r.sha256.clone(),
                    log_position: r.log_position,
                    as_of: r.as_of.clone(),
                    format: r.format,
                    issued_at: r.issued_at.clone(),
                    issued_by: r.issued_by.user_id.clone(),
                    issued_by_name: self.directory().display_name(&r.issued_by.user_id).to_owned(),
                    event_position: r.event_position,
                    signature: r.signature.clone(),
                })
                .collect(),
            self_inspections: facts
                .self_inspections
                .iter()
                .filter(|s| s.inspection_id.as_ref() == Some(inspection_id))
                .map(|s| {
                    let community = community(Some(&s.community_id));
                    SelfInspectionRef {
                        self_inspection_id: s.self_inspection_id.clone(),
                        title: crate::self_inspection::display_title(&community.name, s.year, &s.title),
                        community,
                        submitted_on: s.submitted_on,
                    }
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn detail_of_the_sample_inspection() {
        let m = fold(&sample_log());
        let d = m.inspection_detail(&tid("t1"), &iid("i1")).unwrap();
        assert_eq!((d.year, d.title.as_str()), (2023, "对下级社区督查2023年度意识形态工作情况"));
        assert_eq!(d.subject, "意识形态工作");
        assert_eq!(d.method_names, vec!["座谈交流", "查阅资料"]);
        assert_eq!(d.scope.len(), 6);
        assert_eq!(d.scope[0].name, "东风社区");
        assert_eq!(d.team[0].display_name, "王督查");
        assert!(d.team[0].leader);
        assert_eq!(d.status, InspectionStatus::Concluded);
        assert_eq!(d.status_name, "已结束");
        assert_eq!(d.fieldwork.len(), 6);
        assert_eq!(d.fieldwork[0].records[0].method_name, "座谈交流");
        assert_eq!(d.fieldwork[1].records[0].method_name, "查阅资料");
        assert!(d.fieldwork[2].records.is_empty());

        let scores: Vec<_> = d.scores.iter().map(|s| (s.community.name.as_str(), s.score.to_string())).collect();
        assert_eq!(scores[0], ("东风社区", "70".to_owned()));
        assert_eq!(scores[1], ("红旗社区", "97.5".to_owned()));
        assert_eq!(scores[5], ("和平社区", "100".to_owned()));
        let a1 = &d.scores[0].items[0];
        assert_eq!((a1.deducted, a1.score, a1.reasons.len()), (Points::whole(35), Points(0), 2));

        assert_eq!(d.achievements.len(), 3);
        assert_eq!(d.achievements[0].category, "加强理论武装，坚定理想信念");
        assert_eq!(d.achievements[0].figures[0], Figure { label: "理论宣讲会".into(), value: 10, unit: "场".into() });
        assert_eq!(d.achievements[0].community.name, "全街道");

        let findings: Vec<_> =
            d.findings.iter().map(|f| (f.category_name.as_str(), f.community.name.as_str(), f.status.code())).collect();
        assert_eq!(
            findings,
            vec![
                ("理论学习", "全街道", "verified"),
                ("督查自查", "红旗社区", "in_progress"),
                ("主体责任", "新华社区", "assigned"),
                ("舆情研判", "光明社区", "unassigned"),
                ("队伍建设", "全街道", "unassigned"),
            ]
        );
        assert_eq!(d.assessment.as_deref(), Some("总体良好"));
        assert_eq!(d.concluded_on, Some(date("2023-12-01")));
    }

    #[test]
    fn issued_reports_are_listed_with_hash_position_and_actor() {
        use crate::event::ReportIssued;
        let mut log = sample_log();
        let n = log.len() as u64;
        log.push(ev(
            "t1",
            "t1/inspection-i1",
            "2024-04-16T02:00:00.000000Z",
            ReportIssued {
                sha256: "ab".repeat(32),
                log_position: n,
                as_of: None,
                format: DocumentFormat::Docx,
                signature: None,
            },
        ));
        let log = renumber(log);
        let before = fold(&log[..log.len() - 1]).inspection_detail(&tid("t1"), &iid("i1")).unwrap();
        assert!(before.issued_reports.is_empty());
        let d = fold(&log).inspection_detail(&tid("t1"), &iid("i1")).unwrap();
        assert_eq!(d.issued_reports.len(), 1);
        let r = &d.issued_reports[0];
        assert_eq!((r.sha256.len(), r.log_position, r.event_position), (64, n, n + 1));
        assert_eq!((r.issued_by.as_str(), r.issued_at.as_str()), ("admin1", "2024-04-16T02:00:00.000000Z"));
        assert_eq!(r.format, DocumentFormat::Docx);
        // Issuing changes nothing else the report is made from.
        assert_eq!(InspectionDetail { issued_reports: Vec::new(), ..d }, before);
    }

    #[test]
    fn unknown_or_foreign_inspection_is_none() {
        let m = fold(&sample_log());
        assert!(m.inspection_detail(&tid("t1"), &iid("nope")).is_none());
        assert!(m.inspection_detail(&tid("t2"), &iid("i1")).is_none());
        assert!(m.inspection_detail(&tid("t2"), &iid("j1")).is_some());
    }
}
