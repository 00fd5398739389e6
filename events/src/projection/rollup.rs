//! The district roll-up (区委宣传部): every sub-district of a district side by side, with totals,
//! breakdowns and rankings. Only the tenants registered with the district are read.

use super::dashboard::{CategoryCount, StatusCount, WarningCounts, count_by_category, status_counts};
use super::facts::{FindingFacts, RectificationStatus, TenantFacts};
use super::inspection_detail::CommunityRef;
use super::scorecard::{average, final_score};
use super::warning::WarningPolicy;
use super::{Held, Rate, ReadModel, TenantEntry, TenantShare, month_key, month_label, round2};
use crate::event::Points;
use crate::ids::{CommunityId, DistrictId, TenantId};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RollupQuery {
    /// Only inspections of this year (and the findings they recorded).
    pub year: Option<i32>,
}

/// The numbers of one sub-district, or of the whole district.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollupMetrics {
    pub inspections: u64,
    /// Distinct communities in the scope of the inspections counted.
    pub communities_covered: u64,
    pub achievements: u64,
    pub findings: u64,
    pub findings_by_category: Vec<CategoryCount>,
    pub rectifications_by_status: Vec<StatusCount>,
    /// Verified ÷ assigned (dismissed excluded), percent with one decimal.
    pub completion_rate: Rate,
    pub overdue: u64,
    pub warnings: WarningCounts,
    /// Mean community score over concluded inspections with a checklist, two decimals.
    pub average_score: Option<f64>,
    /// How many community scores the average is over.
    pub scores_counted: u64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubdistrictRollup {
    pub tenant_id: TenantId,
    pub name: String,
    pub metrics: RollupMetrics,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct YearRollup {
    pub year: i32,
    pub inspections: u64,
    pub findings: u64,
    pub verified: u64,
    pub overdue: u64,
    pub completion_rate: Rate,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthRollup {
    /// `YYYY-MM` (Asia/Shanghai).
    pub month: String,
    pub findings_recorded: u64,
    pub rectifications_verified: u64,
}

/// Categories are tenant data: the roll-up merges them by code (named as the first tenant names it).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryRollup {
    pub code: String,
    pub name: String,
    pub findings: u64,
    pub open: u64,
    pub verified: u64,
    pub overdue: u64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommunityRollup {
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub community: CommunityRef,
    pub findings: u64,
    pub open: u64,
    pub overdue: u64,
    pub verified: u64,
    pub average_score: Option<f64>,
}

/// A place in a ranking. Ties share a rank (1, 1, 3); sub-districts without a value come last,
/// unranked.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankEntry {
    pub rank: Option<u32>,
    pub tenant_id: TenantId,
    pub name: String,
    pub value: Option<f64>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistrictRollup {
    pub district_id: DistrictId,
    pub district_name: String,
    pub year: Option<i32>,
    pub today: NaiveDate,
    /// One row per sub-district, by tenant id.
    pub rows: Vec<SubdistrictRollup>,
    pub totals: RollupMetrics,
    pub by_year: Vec<YearRollup>,
    pub by_month: Vec<MonthRollup>,
    pub by_category: Vec<CategoryRollup>,
    pub by_community: Vec<CommunityRollup>,
    /// By average score, highest first.
    pub ranking_by_score: Vec<RankEntry>,
    /// By completion rate, highest first.
    pub ranking_by_completion: Vec<RankEntry>,
}

/// Running sums for one sub-district (merged into the district's).
#[derive(Debug, Clone, PartialEq, Default)]
struct Acc {
    inspections: u64,
    covered: u64,
    achievements: u64,
    by_category: Vec<CategoryCount>,
    by_status: [u64; RectificationStatus::ALL.len()],
    assigned: u64,
    verified: u64,
    overdue: u64,
    warnings: WarningCounts,
    score_sum: u64,
    scores: u64,
}

impl Acc {
    fn merge(&mut self, o: &Acc) {
        self.inspections += o.inspections;
        self.covered += o.covered;
        self.achievements += o.achievements;
        for c in &o.by_category {
            match self.by_category.iter_mut().find(|x| x.code == c.code) {
                Some(x) => x.count += c.count,
                None => self.by_category.push(c.clone()),
            }
        }
        for (a, b) in self.by_status.iter_mut().zip(o.by_status) {
            *a += b;
        }
        self.assigned += o.assigned;
        self.verified += o.verified;
        self.overdue += o.overdue;
        let (w, v) = (&mut self.warnings, o.warnings);
        (w.red, w.yellow, w.blue, w.green) = (w.red + v.red, w.yellow + v.yellow, w.blue + v.blue, w.green + v.green);
        self.score_sum += o.score_sum;
        self.scores += o.scores;
    }

    fn metrics(&self) -> RollupMetrics {
        RollupMetrics {
            inspections: self.inspections,
            communities_covered: self.covered,
            achievements: self.achievements,
            findings: self.by_status.iter().sum(),
            findings_by_category: self.by_category.clone(),
            rectifications_by_status: status_counts(&self.by_status),
            completion_rate: Rate::new(self.verified, self.assigned),
            overdue: self.overdue,
            warnings: self.warnings,
            average_score: (self.scores > 0).then(|| round2(self.score_sum as f64 / self.scores as f64 / 100.0)),
            scores_counted: self.scores,
        }
    }
}

/// One sub-district's share of a district roll-up: its row and what it adds to every breakdown.
///
/// It depends only on the tenant's own facts and directory entry (and the query, the day and the
/// warning policy), so a caller can keep it while [`ReadModel::rollup_version`] of the tenant is
/// unchanged and rebuild only the parts of the sub-districts that changed
/// ([`ReadModel::rollup_from_parts`]); the result is the same as [`ReadModel::rollup`].
#[derive(Debug, Clone, PartialEq)]
pub struct TenantRollup {
    acc: Acc,
    row: SubdistrictRollup,
    /// year → (inspections, findings, verified, overdue, assigned)
    by_year: BTreeMap<i32, (u64, u64, u64, u64, u64)>,
    /// month key → (recorded, verified)
    by_month: BTreeMap<u32, (u64, u64)>,
    by_category: Vec<CategoryRollup>,
    by_community: Vec<CommunityRollup>,
}

impl ReadModel {
    /// The roll-up of one district on `today`. The caller has checked that the actor may read the
    /// district; tenants of other districts are never read.
    pub fn rollup(
        &self,
        district: &DistrictId,
        query: &RollupQuery,
        today: NaiveDate,
        policy: &WarningPolicy,
    ) -> DistrictRollup {
        let parts: Vec<TenantRollup> = self
            .directory()
            .tenants_in(district)
            .map(|(tenant_id, _)| self.rollup_part(tenant_id, query, today, policy))
            .collect();
        self.rollup_from_parts(district, query, today, parts.iter())
    }

    /// What a tenant's [`TenantRollup`] depends on, as a value that changes whenever it may: the
    /// positions of the tenant's last event and of the platform's (districts and tenants are
    /// registered there). Equal versions give equal parts (for the same query, day and policy).
    pub fn rollup_version(&self, tenant: &TenantId) -> (u64, u64) {
        (self.audit_log().last_position(tenant), self.audit_log().last_position(&TenantId::platform()))
    }

    /// The sub-districts of a district, in roll-up order.
    pub fn rollup_tenants<'a>(&'a self, district: &'a DistrictId) -> impl Iterator<Item = &'a TenantId> + 'a {
        self.directory().tenants_in(district).map(|(t, _)| t)
    }

    /// What [`Self::rollup_part`] reads of a sub-district, shared with the model (no copy of its
    /// facts), to compute the part without holding the model: a packed sub-district takes tens of
    /// milliseconds to read, a thousand of them seconds.
    pub fn rollup_source(&self, tenant_id: &TenantId) -> RollupSource {
        RollupSource {
            tenant_id: tenant_id.clone(),
            share: self.tenants.get(tenant_id).cloned(),
            entry: self.directory().tenant(tenant_id).cloned(),
        }
    }

    /// One sub-district's part of the roll-up (empty when the tenant is unknown).
    pub fn rollup_part(
        &self,
        tenant_id: &TenantId,
        query: &RollupQuery,
        today: NaiveDate,
        policy: &WarningPolicy,
    ) -> TenantRollup {
        // A packed tenant is read without being kept: a roll-up of a thousand sub-districts would
        // otherwise unpack them all at once.
        self.with_tenant_facts(tenant_id, |facts| {
            let empty = TenantFacts::default();
            rollup_part_of(facts.unwrap_or(&empty), self.directory().tenant(tenant_id), tenant_id, query, today, policy)
        })
    }

    /// The district's roll-up from its sub-districts' parts, in the order given (the order of
    /// [`Self::rollup_tenants`] gives the same answer as [`Self::rollup`]).
    pub fn rollup_from_parts<'p>(
        &self,
        district: &DistrictId,
        query: &RollupQuery,
        today: NaiveDate,
        parts: impl Iterator<Item = &'p TenantRollup>,
    ) -> DistrictRollup {
        let mut totals = Acc::default();
        let mut rows = Vec::new();
        let mut by_year: BTreeMap<i32, (u64, u64, u64, u64, u64)> = BTreeMap::new();
        let mut by_month: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
        let mut by_category: Vec<CategoryRollup> = Vec::new();
        let mut by_community = Vec::new();
        for part in parts {
            totals.merge(&part.acc);
            rows.push(part.row.clone());
            for (y, v) in &part.by_year {
                let e = by_year.entry(*y).or_default();
                (e.0, e.1, e.2, e.3, e.4) = (e.0 + v.0, e.1 + v.1, e.2 + v.2, e.3 + v.3, e.4 + v.4);
            }
            for (m, v) in &part.by_month {
                let e = by_month.entry(*m).or_default();
                (e.0, e.1) = (e.0 + v.0, e.1 + v.1);
            }
            // Categories merge by code, named as the first sub-district names them.
            for c in &part.by_category {
                let cat = category_row(&mut by_category, &c.code, || c.name.clone());
                cat.findings += c.findings;
                cat.open += c.open;
                cat.verified += c.verified;
                cat.overdue += c.overdue;
            }
            by_community.extend(part.by_community.iter().cloned());
        }

        let ranking_by_score = rank(&rows, |m| m.average_score);
        let ranking_by_completion = rank(&rows, |m| m.completion_rate.percent);
        DistrictRollup {
            district_id: district.clone(),
            district_name: self.directory().district(district).map(|d| d.name.clone()).unwrap_or_default(),
            year: query.year,
            today,
            totals: totals.metrics(),
            rows,
            by_year: by_year
                .into_iter()
                .map(|(year, (inspections, findings, verified, overdue, assigned))| YearRollup {
                    year,
                    inspections,
                    findings,
                    verified,
                    overdue,
                    completion_rate: Rate::new(verified, assigned),
                })
                .collect(),
            by_month: by_month
                .into_iter()
                .map(|(k, (recorded, verified))| MonthRollup {
                    month: month_label(k),
                    findings_recorded: recorded,
                    rectifications_verified: verified,
                })
                .collect(),
            by_category,
            by_community,
            ranking_by_score,
            ranking_by_completion,
        }
    }
}
/// See [`ReadModel::rollup_source`].
pub struct RollupSource {
    tenant_id: TenantId,
    share: Option<Held<TenantShare>>,
    entry: Option<TenantEntry>,
}

impl RollupSource {
    /// The sub-district's part, as [`ReadModel::rollup_part`] gives it at the source's position.
    pub fn part(&self, query: &RollupQuery, today: NaiveDate, policy: &WarningPolicy) -> TenantRollup {
        let empty = TenantFacts::default();
        let of = |facts: Option<&TenantFacts>| {
            rollup_part_of(facts.unwrap_or(&empty), self.entry.as_ref(), &self.tenant_id, query, today, policy)
        };
        match &self.share {
            Some(share) => share.peek(|s| of(s.facts())),
            None => of(None),
        }
    }
}

/// See [`ReadModel::rollup_part`].
fn rollup_part_of(
    facts: &TenantFacts,
    entry: Option<&TenantEntry>,
    tenant_id: &TenantId,
    query: &RollupQuery,
    today: NaiveDate,
    policy: &WarningPolicy,
) -> TenantRollup {
    let in_year = |y: i32| query.year.is_none_or(|want| want == y);
    let empty = TenantEntry::default();
    let entry = entry.unwrap_or(&empty);
    let mut acc = Acc::default();
    let mut by_year: BTreeMap<i32, (u64, u64, u64, u64, u64)> = BTreeMap::new();
    let mut by_month: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    let mut by_category: Vec<CategoryRollup> = Vec::new();
    let mut covered = BTreeSet::<&CommunityId>::new();
    let mut community_scores: BTreeMap<&CommunityId, Vec<Points>> = BTreeMap::new();
    for i in facts.inspections.iter().filter(|i| in_year(i.year)) {
        acc.inspections += 1;
        acc.achievements += i.achievements.len() as u64;
        covered.extend(i.communities.iter());
        by_year.entry(i.year).or_default().0 += 1;
        for c in &i.communities {
            if let Some((score, _)) = final_score(entry, i, c) {
                acc.score_sum += u64::from(score.0);
                acc.scores += 1;
                community_scores.entry(c).or_default().push(score);
            }
        }
    }
    acc.covered = covered.len() as u64;

    let findings: Vec<&FindingFacts> =
        facts.findings.iter().filter(|f| query.year.is_none() || facts.finding_year(f).is_some_and(in_year)).collect();
    acc.by_category = count_by_category(Some(entry), findings.iter().copied());
    let mut per_community: BTreeMap<Option<&CommunityId>, [u64; 4]> = BTreeMap::new();
    for f in &findings {
        let (verified, overdue, open) =
            (f.status == RectificationStatus::Verified, f.is_overdue(today), !f.status.is_closed());
        acc.by_status[f.status.index()] += 1;
        acc.assigned += u64::from(f.counts_as_assigned());
        acc.verified += u64::from(verified);
        acc.overdue += u64::from(overdue);
        acc.warnings.add(f.warning(today, policy));

        if let Some(y) = facts.finding_year(f) {
            let e = by_year.entry(y).or_default();
            (e.1, e.2, e.3) = (e.1 + 1, e.2 + u64::from(verified), e.3 + u64::from(overdue));
            e.4 += u64::from(f.counts_as_assigned());
        }
        if let Some(d) = f.recorded_on {
            by_month.entry(month_key(d)).or_default().0 += 1;
        }
        if let Some(d) = f.rectification.as_ref().and_then(|r| r.verified_on).filter(|_| verified) {
            by_month.entry(month_key(d)).or_default().1 += 1;
        }
        let cat = category_row(&mut by_category, &f.category, || entry.category_name(&f.category).to_owned());
        cat.findings += 1;
        cat.open += u64::from(open);
        cat.verified += u64::from(verified);
        cat.overdue += u64::from(overdue);
        let pc = per_community.entry(f.community_id.as_ref()).or_default();
        for (slot, v) in pc.iter_mut().zip([1, u64::from(open), u64::from(overdue), u64::from(verified)]) {
            *slot += v;
        }
    }
    let by_community = community_rows(tenant_id, entry, &per_community, &community_scores);
    let row = SubdistrictRollup { tenant_id: tenant_id.clone(), name: entry.name.clone(), metrics: acc.metrics() };
    TenantRollup { acc, row, by_year, by_month, by_category, by_community }
}

/// The row of category `code` (added, zeroed and named by `name`, when missing).
fn category_row<'a>(
    rows: &'a mut Vec<CategoryRollup>,
    code: &str,
    name: impl FnOnce() -> String,
) -> &'a mut CategoryRollup {
    let n = match rows.iter().position(|c| c.code == code) {
        Some(n) => n,
        None => {
            rows.push(CategoryRollup {
                code: code.to_owned(),
                name: name(),
                findings: 0,
                open: 0,
                verified: 0,
                overdue: 0,
            });
            rows.len() - 1
        }
    };
    &mut rows[n]
}

/// The tenant's communities in its order (cross-cutting findings as a 全街道 row first, if any).
fn community_rows(
    tenant_id: &TenantId,
    entry: &TenantEntry,
    per_community: &BTreeMap<Option<&CommunityId>, [u64; 4]>,
    scores: &BTreeMap<&CommunityId, Vec<Points>>,
) -> Vec<CommunityRollup> {
    let row = |id: Option<&CommunityId>| {
        let [findings, open, overdue, verified] = per_community.get(&id).copied().unwrap_or_default();
        CommunityRollup {
            tenant_id: tenant_id.clone(),
            tenant_name: entry.name.clone(),
            community: CommunityRef::of(Some(entry), id),
            findings,
            open,
            overdue,
            verified,
            average_score: id.and_then(|c| scores.get(c)).and_then(|s| average(s)),
        }
    };
    let cross = per_community.contains_key(&None).then(|| row(None));
    cross.into_iter().chain(entry.communities.iter().map(|c| row(Some(&c.community_id)))).collect()
}

fn rank(rows: &[SubdistrictRollup], value: impl Fn(&RollupMetrics) -> Option<f64>) -> Vec<RankEntry> {
    let mut out: Vec<RankEntry> = rows
        .iter()
        .map(|r| RankEntry {
            rank: None,
            tenant_id: r.tenant_id.clone(),
            name: r.name.clone(),
            value: value(&r.metrics),
        })
        .collect();
    // Highest first; `None` last; ties keep tenant order (the sort is stable).
    out.sort_by(|a, b| match (a.value, b.value) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (a, b) => b.is_some().cmp(&a.is_some()),
    });
    let mut previous: Option<(f64, u32)> = None;
    for (n, e) in out.iter_mut().enumerate() {
        if let Some(v) = e.value {
            let rank = match previous {
                Some((pv, pr)) if pv == v => pr,
                _ => n as u32 + 1,
            };
            e.rank = Some(rank);
            previous = Some((v, rank));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn rollup_of_the_district() {
        let m = fold(&sample_log());
        let r = m.rollup(&did("d1"), &RollupQuery::default(), today(), &WarningPolicy::default());
        assert_eq!(r.district_name, "XX区");
        assert_eq!(r.rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), vec!["XX街道", "YY街道"]);
        let t1 = &r.rows[0].metrics;
        assert_eq!((t1.inspections, t1.communities_covered, t1.achievements, t1.findings), (1, 6, 3, 5));
        assert_eq!(t1.completion_rate, Rate { done: 1, of: 3, percent: Some(33.3) });
        assert_eq!(t1.overdue, 1);
        // (70 + 97.5 + 4 × 100) / 6 = 94.58
        assert_eq!((t1.average_score, t1.scores_counted), (Some(94.58), 6));
        let t2 = &r.rows[1].metrics;
        assert_eq!((t2.findings, t2.average_score, t2.completion_rate.percent), (1, Some(90.0), Some(0.0)));
        assert_eq!(t2.warnings.yellow, 1);

        let tot = &r.totals;
        assert_eq!((tot.inspections, tot.communities_covered, tot.achievements, tot.findings), (2, 7, 3, 6));
        assert_eq!(tot.completion_rate, Rate { done: 1, of: 4, percent: Some(25.0) });
        // (567.5 + 90) / 7 = 93.93
        assert_eq!(tot.average_score, Some(93.93));
        let theory = tot.findings_by_category.iter().find(|c| c.code == "theory").unwrap();
        assert_eq!((theory.name.as_str(), theory.count), ("理论学习", 2));
        assert_eq!(tot.rectifications_by_status[1].count, 2, "assigned: f3 and g1");

        let years: Vec<_> = r.by_year.iter().map(|y| (y.year, y.inspections, y.findings, y.verified)).collect();
        assert_eq!(years, vec![(2023, 1, 5, 1), (2024, 1, 1, 0)]);
        let months: Vec<_> =
            r.by_month.iter().map(|m| (m.month.as_str(), m.findings_recorded, m.rectifications_verified)).collect();
        assert_eq!(months, vec![("2023-11", 5, 0), ("2024-02", 1, 0), ("2024-03", 0, 1)]);
        let cat: Vec<_> = r.by_category.iter().map(|c| (c.name.as_str(), c.findings, c.open)).collect();
        assert_eq!(cat[0], ("理论学习", 2, 1));
        assert_eq!(cat.len(), 5);
        assert_eq!(r.by_community.len(), 1 + 6 + 1);
        assert_eq!(r.by_community[0].community.name, "全街道");
        assert_eq!(r.by_community[0].findings, 2);
        assert_eq!(r.by_community[1].average_score, Some(70.0));

        assert_eq!(
            r.ranking_by_score.iter().map(|e| (e.name.as_str(), e.rank)).collect::<Vec<_>>(),
            vec![("XX街道", Some(1)), ("YY街道", Some(2))]
        );
        assert_eq!(r.ranking_by_completion[0].name, "XX街道");
        assert_eq!(r.ranking_by_completion[1].value, Some(0.0));
    }

    #[test]
    fn rollup_by_year_and_other_districts() {
        let m = fold(&sample_log());
        let p = WarningPolicy::default();
        let r = m.rollup(&did("d1"), &RollupQuery { year: Some(2024) }, today(), &p);
        assert_eq!((r.rows[0].metrics.inspections, r.rows[0].metrics.findings), (0, 0));
        assert_eq!((r.totals.inspections, r.totals.findings, r.totals.communities_covered), (1, 1, 1));
        assert_eq!(r.ranking_by_score[0].name, "YY街道");
        assert_eq!(r.ranking_by_score[1].rank, None);
        let other = m.rollup(&did("d9"), &RollupQuery::default(), today(), &p);
        assert!(other.rows.is_empty());
        assert_eq!(other.totals.findings, 0);
    }

    /// What the server does: keep each sub-district's part while its version stands, rebuild the
    /// others. At every cut of the log the result equals a fresh roll-up.
    #[test]
    fn parts_kept_while_their_version_stands_give_the_fresh_rollup() {
        let log = sample_log();
        let (p, d) = (WarningPolicy::default(), did("d1"));
        for query in [RollupQuery::default(), RollupQuery { year: Some(2023) }] {
            let mut kept: BTreeMap<TenantId, ((u64, u64), TenantRollup)> = BTreeMap::new();
            let (mut reused, mut rebuilt) = (0, 0);
            let mut m = ReadModel::default();
            for (e, ev) in &log {
                m.apply(e, ev);
                let tenants: Vec<TenantId> = m.rollup_tenants(&d).cloned().collect();
                let mut parts = Vec::new();
                for t in &tenants {
                    let version = m.rollup_version(t);
                    match kept.get(t) {
                        Some((v, part)) if *v == version => {
                            reused += 1;
                            parts.push(part.clone());
                        }
                        _ => {
                            rebuilt += 1;
                            let part = m.rollup_part(t, &query, today(), &p);
                            kept.insert(t.clone(), (version, part.clone()));
                            parts.push(part);
                        }
                    }
                }
                let fresh = m.rollup(&d, &query, today(), &p);
                assert_eq!(m.rollup_from_parts(&d, &query, today(), parts.iter()), fresh, "at {}", e.position);
            }
            assert!(reused > 0 && rebuilt > 0, "{reused} reused, {rebuilt} rebuilt");
        }
    }

    /// A part computed from its source, taken before the model moved on, is the part at that point.
    #[test]
    fn a_part_from_its_source_is_the_models_part_even_after_the_model_moves_on() {
        let log = sample_log();
        let (d, q, p) = (did("d1"), RollupQuery::default(), WarningPolicy::default());
        let day = NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();
        for cut in [log.len() / 2, log.len()] {
            let mut model = fold(&log[..cut]);
            let tenants: Vec<TenantId> = model.rollup_tenants(&d).cloned().collect();
            assert!(!tenants.is_empty());
            let sources: Vec<RollupSource> = tenants.iter().map(|t| model.rollup_source(t)).collect();
            let parts: Vec<TenantRollup> = tenants.iter().map(|t| model.rollup_part(t, &q, day, &p)).collect();
            for (e, ev) in &log[cut..] {
                model.apply(e, ev);
            }
            for (source, part) in sources.iter().zip(&parts) {
                assert_eq!(&source.part(&q, day, &p), part, "cut {cut}: as it was when taken");
            }
        }
        let model = fold(&log);
        assert_eq!(
            model.rollup_source(&TenantId::parse("nope").unwrap()).part(&q, day, &p),
            model.rollup_part(&TenantId::parse("nope").unwrap(), &q, day, &p)
        );
    }

    /// A part is a function of its version: an event of one sub-district moves only its version.
    #[test]
    fn an_event_moves_only_its_own_tenants_version() {
        let log = sample_log();
        let mut m = ReadModel::default();
        for (e, ev) in &log {
            let before: BTreeMap<TenantId, (u64, u64)> =
                m.directory().tenants().map(|(t, _)| (t.clone(), m.rollup_version(t))).collect();
            m.apply(e, ev);
            for (t, v) in before {
                let moved = m.rollup_version(&t) != v;
                let should = e.tenant == t || e.tenant == TenantId::platform();
                assert_eq!(moved, should, "{} at {} for {t}", e.event_type, e.position);
            }
        }
    }

    #[test]
    fn ties_share_a_rank() {
        let row = |id: &str, v: Option<f64>| {
            let mut acc = Acc::default();
            if let Some(v) = v {
                acc.score_sum = (v * 100.0) as u64;
                acc.scores = 1;
            }
            SubdistrictRollup { tenant_id: tid(id), name: id.into(), metrics: acc.metrics() }
        };
        let rows = vec![row("a", Some(90.0)), row("b", None), row("c", Some(95.0)), row("d", Some(90.0))];
        let ranked: Vec<_> =
            rank(&rows, |m| m.average_score).into_iter().map(|e| (e.tenant_id.to_string(), e.rank)).collect();
        assert_eq!(
            ranked,
            vec![("c".into(), Some(1)), ("a".into(), Some(2)), ("d".into(), Some(2)), ("b".into(), None)]
        );
    }
}
