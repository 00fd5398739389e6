//! Per-community scorecards of a sub-district.

use super::ReadModel;
use super::facts::{InspectionFacts, RectificationStatus, TenantFacts};
use super::inspection_detail::CommunityRef;
use super::round2;
use crate::event::Points;
use crate::ids::{CommunityId, TenantId};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommunityScorecard {
    pub community: CommunityRef,
    /// Inspections with the community in scope.
    pub inspections: u64,
    /// The score of the most recent concluded inspection with a checklist (by year, then planned start).
    pub latest_score: Option<Points>,
    /// That inspection's full marks.
    pub latest_max: Option<Points>,
    /// Mean over the concluded inspections with a checklist, two decimals.
    pub average_score: Option<f64>,
    pub findings: u64,
    pub open: u64,
    pub overdue: u64,
    pub verified: u64,
    pub self_inspections_submitted: u64,
}

impl ReadModel {
    /// One scorecard per community of the tenant (in the tenant's order), optionally for one
    /// inspection year (self-inspections by their own year). `today` decides what is overdue.
    ///
    /// Scores count only once an inspection is concluded: deductions recorded during fieldwork are
    /// provisional and would flatter an average.
    pub fn scorecards(&self, tenant: &TenantId, year: Option<i32>, today: NaiveDate) -> Vec<CommunityScorecard> {
        let (facts, entry) = self.tenant_parts(tenant);
        let Some(entry) = entry else { return Vec::new() };
        let in_year = |y: i32| year.is_none_or(|want| want == y);
        let inspections: Vec<&InspectionFacts> = facts.inspections.iter().filter(|i| in_year(i.year)).collect();
        entry
            .communities
            .iter()
            .map(|c| {
                let id = &c.community_id;
                let mut card = CommunityScorecard {
                    community: CommunityRef::of(Some(entry), Some(id)),
                    inspections: 0,
                    latest_score: None,
                    latest_max: None,
                    average_score: None,
                    findings: 0,
                    open: 0,
                    overdue: 0,
                    verified: 0,
                    self_inspections_submitted: 0,
                };
                let mut scores = Vec::new();
                let mut latest: Option<((i32, NaiveDate), Points, Points)> = None;
                for i in inspections.iter().filter(|i| i.communities.contains(id)) {
                    card.inspections += 1;
                    if let Some((score, max)) = final_score(entry, i, id) {
                        scores.push(score);
                        let key = (i.year, i.planned_start);
                        if latest.is_none_or(|(k, _, _)| key >= k) {
                            latest = Some((key, score, max));
                        }
                    }
                }
                card.latest_score = latest.map(|l| l.1);
                card.latest_max = latest.map(|l| l.2);
                card.average_score = average(&scores);
                count_findings(facts, id, &in_year, today, &mut card);
                card.self_inspections_submitted =
                    facts.self_inspections.iter().filter(|s| &s.community_id == id && in_year(s.year)).count() as u64;
                card
            })
            .collect()
    }
}

/// A community's score and full marks in a concluded inspection with a known checklist.
pub(crate) fn final_score(
    entry: &super::TenantEntry,
    i: &InspectionFacts,
    community: &CommunityId,
) -> Option<(Points, Points)> {
    if i.conclusion.is_none() || !i.communities.contains(community) {
        return None;
    }
    let checklist = entry.checklist(i.checklist_id.as_ref()?)?;
    Some((i.score(checklist, community), checklist.total()))
}

pub(crate) fn average(scores: &[Points]) -> Option<f64> {
    (!scores.is_empty())
        .then(|| round2(scores.iter().map(|p| f64::from(p.0)).sum::<f64>() / scores.len() as f64 / 100.0))
}

fn count_findings(
    facts: &TenantFacts,
    community: &CommunityId,
    in_year: &impl Fn(i32) -> bool,
    today: NaiveDate,
    card: &mut CommunityScorecard,
) {
    for f in facts.findings.iter().filter(|f| f.community_id.as_ref() == Some(community)) {
        if let Some(want) = facts.finding_year(f).map(in_year)
            && !want
        {
            continue;
        }
        card.findings += 1;
        card.open += u64::from(!f.status.is_closed());
        card.overdue += u64::from(f.is_overdue(today));
        card.verified += u64::from(f.status == RectificationStatus::Verified);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn scorecards_of_the_sample() {
        let m = fold(&sample_log());
        let cards = m.scorecards(&tid("t1"), None, today());
        assert_eq!(cards.len(), 6);
        let c1 = &cards[0];
        assert_eq!(c1.community.name, "东风社区");
        assert_eq!((c1.inspections, c1.latest_score, c1.average_score), (1, Some(Points::whole(70)), Some(70.0)));
        assert_eq!(c1.latest_max, Some(Points::whole(100)));
        assert_eq!((c1.findings, c1.self_inspections_submitted), (0, 1));
        let c2 = &cards[1];
        assert_eq!((c2.average_score, c2.findings, c2.open, c2.overdue, c2.verified), (Some(97.5), 1, 1, 0, 0));
        assert_eq!(c2.self_inspections_submitted, 1);
        let c3 = &cards[2];
        assert_eq!((c3.findings, c3.open, c3.overdue), (1, 1, 1));
        // f1 (verified) is cross-cutting: it belongs to no community's card.
        assert_eq!(cards.iter().map(|c| c.verified).sum::<u64>(), 0);

        let none = m.scorecards(&tid("t1"), Some(2024), today());
        assert!(none.iter().all(|c| c.inspections == 0 && c.findings == 0 && c.latest_score.is_none()));
        assert_eq!(m.scorecards(&tid("t1"), Some(2023), today()), cards);
    }

    #[test]
    fn scores_wait_for_the_conclusion() {
        let log = sample_log();
        let concluded_at = log.iter().position(|(e, _)| e.event_type == "InspectionConcluded").unwrap();
        let m = fold(&log[..concluded_at]);
        let cards = m.scorecards(&tid("t1"), None, today());
        assert_eq!((cards[0].inspections, cards[0].average_score), (1, None));
    }
}
