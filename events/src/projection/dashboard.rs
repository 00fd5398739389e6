//! A sub-district's dashboard: the numbers on its home page.

use super::facts::{FindingFacts, RectificationStatus};
use super::warning::{WarningLevel, WarningPolicy};
use super::{Rate, ReadModel, month_key, month_label};
use crate::ids::{CommunityId, TenantId};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// How many findings (with a category name) or rectifications (with a status name) there are.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryCount {
    pub code: String,
    pub name: String,
    pub count: u64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCount {
    pub status: RectificationStatus,
    /// 完成情况, e.g. 整改中.
    pub name: String,
    pub count: u64,
}

/// Open rectifications per warning level (红黄蓝绿).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WarningCounts {
    pub red: u64,
    pub yellow: u64,
    pub blue: u64,
    pub green: u64,
}

impl WarningCounts {
    pub(crate) fn add(&mut self, level: Option<WarningLevel>) {
        match level {
            Some(WarningLevel::Red) => self.red += 1,
            Some(WarningLevel::Yellow) => self.yellow += 1,
            Some(WarningLevel::Blue) => self.blue += 1,
            Some(WarningLevel::Green) => self.green += 1,
            None => {}
        }
    }
}

/// One month (Asia/Shanghai) of the trend.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthTrend {
    /// `YYYY-MM`.
    pub month: String,
    pub findings_recorded: u64,
    pub rectifications_verified: u64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantDashboard {
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub today: NaiveDate,
    /// Inspections whose plan year is `today`'s year.
    pub inspections_this_year: u64,
    pub inspections_total: u64,
    pub communities_total: u64,
    /// Distinct communities in the scope of any inspection.
    pub communities_covered: u64,
    pub achievements: u64,
    pub findings_total: u64,
    /// Not verified nor dismissed (unassigned findings are open).
    pub findings_open: u64,
    /// Verified (销号) or dismissed.
    pub findings_closed: u64,
    /// Every category of the tenant in its order (zeros included), then codes it never named.
    pub findings_by_category: Vec<CategoryCount>,
    /// Every status in life-cycle order, zeros included.
    pub rectifications_by_status: Vec<StatusCount>,
    /// Open and past the deadline (= `warnings.red`).
    pub overdue: u64,
    pub warnings: WarningCounts,
    /// Verified ÷ assigned (rectifications assigned, dismissed findings excluded).
    pub completion_rate: Rate,
    /// The twelve months ending with `today`'s month, oldest first.
    pub monthly: Vec<MonthTrend>,
}

impl ReadModel {
    /// The dashboard of one tenant on `today`. An unknown tenant gets an all-zero dashboard.
    pub fn dashboard(&self, tenant: &TenantId, today: NaiveDate, policy: &WarningPolicy) -> TenantDashboard {
        let (facts, entry) = self.tenant_parts(tenant);
        let mut covered = BTreeSet::<&CommunityId>::new();
        let mut achievements = 0;
        for i in &facts.inspections {
            covered.extend(i.communities.iter());
            achievements += i.achievements.len() as u64;
        }
        let (mut open, mut overdue, mut warnings) = (0, 0, WarningCounts::default());
        let mut by_status = [0u64; RectificationStatus::ALL.len()];
        for f in &facts.findings {
            by_status[f.status.index()] += 1;
            open += u64::from(!f.status.is_closed());
            overdue += u64::from(f.is_overdue(today));
            warnings.add(f.warning(today, policy));
        }
        let findings_total = facts.findings.len() as u64;
        TenantDashboard {
            tenant_id: tenant.clone(),
            tenant_name: entry.map(|t| t.name.clone()).unwrap_or_default(),
            today,
            inspections_this_year: facts.inspections.iter().filter(|i| i.year == today.year()).count() as u64,
            inspections_total: facts.inspections.len() as u64,
            communities_total: entry.map_or(0, |t| t.communities.len() as u64),
            communities_covered: covered.len() as u64,
            achievements,
            findings_total,
            findings_open: open,
            findings_closed: findings_total - open,
            findings_by_category: count_by_category(entry, facts.findings.iter()),
            rectifications_by_status: status_counts(&by_status),
            overdue,
            warnings,
            completion_rate: completion(facts.findings.iter()),
            monthly: monthly_trend(facts.findings.iter(), today, 12),
        }
    }
}

pub(crate) fn status_counts(by_status: &[u64; RectificationStatus::ALL.len()]) -> Vec<StatusCount> {
    RectificationStatus::ALL
        .iter()
        .map(|&s| StatusCount { status: s, name: s.name_zh().to_owned(), count: by_status[s.index()] })
        .collect()
}

/// Verified ÷ assigned: the findings that got a rectification, dismissed ones excluded.
pub(crate) fn completion<'a>(findings: impl Iterator<Item = &'a FindingFacts>) -> Rate {
    let (mut done, mut of) = (0, 0);
    for f in findings {
        if f.counts_as_assigned() {
            of += 1;
            done += u64::from(f.status == RectificationStatus::Verified);
        }
    }
    Rate::new(done, of)
}

/// Counts per category: the tenant's categories in order (zeros included), then unknown codes.
pub(crate) fn count_by_category<'a>(
    entry: Option<&super::TenantEntry>,
    findings: impl Iterator<Item = &'a FindingFacts>,
) -> Vec<CategoryCount> {
    let mut out: Vec<CategoryCount> = entry
        .map(|t| {
            t.categories
                .iter()
                .map(|c| CategoryCount { code: c.code.clone(), name: c.name.clone(), count: 0 })
                .collect()
        })
        .unwrap_or_default();
    for f in findings {
        match out.iter_mut().find(|c| c.code == f.category) {
            Some(c) => c.count += 1,
            None => out.push(CategoryCount { code: f.category.clone(), name: f.category.clone(), count: 1 }),
        }
    }
    out
}

/// Findings recorded and rectifications verified per month, for the `months` months ending with
/// `today`'s month.
fn monthly_trend<'a>(
    findings: impl Iterator<Item = &'a FindingFacts>,
    today: NaiveDate,
    months: u32,
) -> Vec<MonthTrend> {
    let keys: Vec<u32> = (0..months)
        .rev()
        .filter_map(|back| today.with_day(1).and_then(|d| d.checked_sub_months(chrono::Months::new(back))))
        .map(month_key)
        .collect();
    let mut out: Vec<MonthTrend> = keys
        .iter()
        .map(|&k| MonthTrend { month: month_label(k), findings_recorded: 0, rectifications_verified: 0 })
        .collect();
    let slot = |d: NaiveDate| keys.binary_search(&month_key(d)).ok();
    for f in findings {
        if let Some(i) = f.recorded_on.and_then(slot) {
            out[i].findings_recorded += 1;
        }
        if let Some(i) = f.rectification.as_ref().and_then(|r| r.verified_on).and_then(slot)
            && f.status == RectificationStatus::Verified
        {
            out[i].rectifications_verified += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn dashboard_numbers_of_the_sample() {
        let m = fold(&sample_log());
        let d = m.dashboard(&tid("t1"), today(), &WarningPolicy::default());
        assert_eq!(d.tenant_name, "XX街道");
        assert_eq!((d.inspections_this_year, d.inspections_total), (0, 1));
        assert_eq!((d.communities_total, d.communities_covered), (6, 6));
        assert_eq!(d.achievements, 3);
        assert_eq!((d.findings_total, d.findings_open, d.findings_closed), (5, 4, 1));
        let cats: Vec<_> = d.findings_by_category.iter().map(|c| (c.name.as_str(), c.count)).collect();
        assert_eq!(cats, vec![("理论学习", 1), ("督查自查", 1), ("主体责任", 1), ("舆情研判", 1), ("队伍建设", 1)]);
        let statuses: Vec<_> = d.rectifications_by_status.iter().map(|s| (s.status.code(), s.count)).collect();
        assert_eq!(
            statuses,
            vec![
                ("unassigned", 2),
                ("assigned", 1),
                ("in_progress", 1),
                ("submitted", 0),
                ("returned", 0),
                ("verified", 1),
                ("dismissed", 0)
            ]
        );
        assert_eq!(d.rectifications_by_status[2].name, "整改中");
        assert_eq!(d.overdue, 1);
        assert_eq!(d.warnings, WarningCounts { red: 1, yellow: 0, blue: 0, green: 1 });
        assert_eq!(d.completion_rate, Rate { done: 1, of: 3, percent: Some(33.3) });
        assert_eq!(d.monthly.len(), 12);
        assert_eq!(d.monthly[0].month, "2023-05");
        assert_eq!(d.monthly[11].month, "2024-04");
        let nov = d.monthly.iter().find(|m| m.month == "2023-11").unwrap();
        assert_eq!(nov.findings_recorded, 5);
        let mar = d.monthly.iter().find(|m| m.month == "2024-03").unwrap();
        assert_eq!(mar.rectifications_verified, 1);
        assert_eq!(d.monthly.iter().map(|m| m.rectifications_verified).sum::<u64>(), 1);

        // In the inspection's own year it counts as this year's.
        let d = m.dashboard(&tid("t1"), date("2023-12-31"), &WarningPolicy::default());
        assert_eq!(d.inspections_this_year, 1);
    }

    #[test]
    fn tenant_isolation() {
        let log = sample_log();
        let only_t1: Vec<_> = log.iter().filter(|(e, _)| e.tenant.as_str() != "t2").cloned().collect();
        let (both, alone) = (fold(&log), fold(&only_t1));
        let p = WarningPolicy::default();
        assert_eq!(both.dashboard(&tid("t1"), today(), &p), alone.dashboard(&tid("t1"), today(), &p));
        let d2 = both.dashboard(&tid("t2"), today(), &p);
        assert_eq!((d2.findings_total, d2.inspections_this_year, d2.communities_total), (1, 1, 1));
        assert_eq!(d2.warnings.yellow, 1, "assigned 2024-02-21, no progress by 04-15 of a 04-20 deadline");
        let none = both.dashboard(&tid("nope"), today(), &p);
        assert_eq!((none.findings_total, none.inspections_total), (0, 0));
    }

    #[test]
    fn as_of_a_prefix_shows_the_earlier_state() {
        let log = sample_log();
        let verify_at = log.iter().position(|(e, _)| e.event_type == "RectificationVerified").unwrap();
        let before = fold(&log[..verify_at]);
        let d = before.dashboard(&tid("t1"), date("2024-03-19"), &WarningPolicy::default());
        assert_eq!((d.findings_open, d.findings_closed), (5, 0));
        assert_eq!(d.completion_rate.done, 0);
        let f1 = before.tenant_facts(&tid("t1")).unwrap().finding(&fid("f1")).unwrap();
        assert_eq!(f1.status, RectificationStatus::Submitted);
    }
}
