//! Reminders (issue 14): 临期 (the deadline is near), 逾期 (past it), 待销号 (submitted, waiting for
//! verification too long) and the manual 催办 (`ReminderIssued`), derived from a tenant's facts on a
//! given day — never stored, like the warning levels. Who is told what ([`recipients`]) follows the
//! roles of [`crate::authz`]; the daily digest ([`digest`]) sums a tenant's open reminders.
//!
//! Each reminder has a stable [`Reminder::key`]: the same condition on another day gives the same
//! key, a new condition (an extended deadline, a second submission, another 催办) a new one. The
//! server keeps the keys it has notified (its server state), so each reaches each person once.

use super::directory::Directory;
use super::facts::{FindingFacts, RectificationStatus, TenantFacts};
use crate::authz::{Role, Scope};
use crate::ids::{CommunityId, FindingId, InspectionId, TenantId, UserId};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A tenant's reminder thresholds.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReminderPolicy {
    /// 临期: remind when the deadline is at most this many days away (0–60).
    pub due_soon_days: u32,
    /// 待销号: remind when a submitted rectification has waited this many days for verification (1–60).
    pub verify_wait_days: u32,
}

impl Default for ReminderPolicy {
    fn default() -> Self {
        ReminderPolicy { due_soon_days: 3, verify_wait_days: 5 }
    }
}

impl ReminderPolicy {
    /// The largest value either threshold may take.
    pub const MAX_DAYS: u32 = 60;

    /// The field at fault and why (Chinese), if any.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.due_soon_days > Self::MAX_DAYS {
            return Err(("due_soon_days", format!("临期提醒天数应在 0 至 {} 之间", Self::MAX_DAYS)));
        }
        if self.verify_wait_days == 0 || self.verify_wait_days > Self::MAX_DAYS {
            return Err(("verify_wait_days", format!("待销号提醒天数应在 1 至 {} 之间", Self::MAX_DAYS)));
        }
        Ok(())
    }
}

/// How long after a 催办 it is still worth notifying (a server started later does not replay old ones).
pub const MANUAL_WINDOW_DAYS: i64 = 7;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReminderKind {
    /// 临期.
    DueSoon,
    /// 逾期.
    Overdue,
    /// 待销号.
    AwaitingVerification,
    /// 催办 (issued by a sub-district admin).
    Manual,
}

impl ReminderKind {
    pub const ALL: [ReminderKind; 4] =
        [ReminderKind::Overdue, ReminderKind::DueSoon, ReminderKind::AwaitingVerification, ReminderKind::Manual];

    pub fn code(self) -> &'static str {
        match self {
            ReminderKind::DueSoon => "due_soon",
            ReminderKind::Overdue => "overdue",
            ReminderKind::AwaitingVerification => "awaiting_verification",
            ReminderKind::Manual => "manual",
        }
    }

    pub fn from_code(s: &str) -> Option<ReminderKind> {
        ReminderKind::ALL.into_iter().find(|k| k.code() == s)
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            ReminderKind::DueSoon => "临期提醒",
            ReminderKind::Overdue => "逾期催办",
            ReminderKind::AwaitingVerification => "待销号提醒",
            ReminderKind::Manual => "催办",
        }
    }

    /// Who is told (see [`recipients`]).
    pub fn audience(self) -> &'static [Audience] {
        match self {
            ReminderKind::DueSoon | ReminderKind::Manual => &[Audience::Responsible],
            ReminderKind::Overdue => &[Audience::Responsible, Audience::Admins, Audience::Team],
            ReminderKind::AwaitingVerification => &[Audience::Admins, Audience::Team],
        }
    }
}

/// A group of people a reminder goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Whoever reports the finding's progress: its community's officers, or the sub-district's
    /// admins for a cross-cutting (全街道) finding.
    Responsible,
    /// The sub-district's admins (they verify, return, extend and 催办).
    Admins,
    /// The 督查组 of the finding's inspection.
    Team,
}

/// One reminder due on a day.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    /// Stable across days while the condition holds: `{kind}/{finding}/{deadline | submitted date | position}`.
    pub key: String,
    pub kind: ReminderKind,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub finding_id: FindingId,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub community_id: Option<CommunityId>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub inspection_id: Option<InspectionId>,
    /// The finding's title.
    pub title: String,
    pub deadline: Option<NaiveDate>,
    /// 临期: days left (0 = today); 逾期: days past; 待销号: days waiting; 催办: 0.
    pub days: i64,
    /// 催办: the admin's words.
    pub message: Option<String>,
}

impl Reminder {
    /// The one-line Chinese text of a notification, e.g.
    /// `【临期提醒】东风社区「对督查工作不够重视」整改期限为2024-06-30，还剩3天`.
    pub fn text(&self, community_name: Option<&str>) -> String {
        let place = community_name.unwrap_or("全街道");
        let head = format!("【{}】{place}「{}」", self.kind.name_zh(), self.title);
        let deadline = self.deadline.map(|d| d.to_string()).unwrap_or_default();
        match self.kind {
            ReminderKind::DueSoon if self.days == 0 => format!("{head}整改期限为今天（{deadline}）"),
            ReminderKind::DueSoon => format!("{head}整改期限为{deadline}，还剩{}天", self.days),
            ReminderKind::Overdue => format!("{head}整改已逾期{}天（期限{deadline}）", self.days),
            ReminderKind::AwaitingVerification => format!("{head}整改已提交{}天，等待销号", self.days),
            ReminderKind::Manual => format!("{head}：{}", self.message.as_deref().unwrap_or("请抓紧整改")),
        }
    }
}

/// Every reminder of a tenant on `today`, in finding order (each finding: 逾期, 临期, 待销号, 催办).
pub fn reminders(facts: &TenantFacts, today: NaiveDate, policy: &ReminderPolicy) -> Vec<Reminder> {
    facts.findings.iter().flat_map(|f| finding_reminders(f, today, policy)).collect()
}

/// The reminders of one finding on `today`.
pub fn finding_reminders(f: &FindingFacts, today: NaiveDate, policy: &ReminderPolicy) -> Vec<Reminder> {
    use RectificationStatus::*;
    let mut out = Vec::new();
    let Some(r) = &f.rectification else { return out };
    let base = |kind: ReminderKind, key: String, days: i64| Reminder {
        key: format!("{}/{}/{key}", kind.code(), f.finding_id.as_str()),
        kind,
        finding_id: f.finding_id.clone(),
        community_id: f.community_id.clone(),
        inspection_id: f.inspection_id.clone(),
        title: f.title.clone(),
        deadline: Some(r.deadline),
        days,
        message: None,
    };
    let owes_work = matches!(f.status, Assigned | InProgress | Returned);
    let left = (r.deadline - today).num_days();
    if owes_work && left < 0 {
        out.push(base(ReminderKind::Overdue, r.deadline.to_string(), -left));
    } else if owes_work && left <= i64::from(policy.due_soon_days) {
        out.push(base(ReminderKind::DueSoon, r.deadline.to_string(), left));
    }
    if f.status == Submitted
        && let Some(on) = r.submitted_on
    {
        let waited = (today - on).num_days();
        if waited >= i64::from(policy.verify_wait_days) {
            out.push(base(ReminderKind::AwaitingVerification, on.to_string(), waited));
        }
    }
    if owes_work {
        for note in &r.reminder_notes {
            let recent = note.issued_on.is_some_and(|d| d <= today && (today - d).num_days() <= MANUAL_WINDOW_DAYS);
            if recent {
                let mut m = base(ReminderKind::Manual, note.position.to_string(), 0);
                m.message = Some(note.message.clone());
                out.push(m);
            }
        }
    }
    out
}

/// The people a reminder goes to: accounts of `tenant` that are not disabled, by the kind's
/// [`ReminderKind::audience`]. Sorted, without duplicates.
pub fn recipients(dir: &Directory, tenant: &TenantId, facts: &TenantFacts, r: &Reminder) -> Vec<UserId> {
    let holds = |u: &super::directory::UserEntry, role: Role, community: Option<&CommunityId>| {
        u.grants.iter().any(|g| {
            g.role == role
                && match (&g.scope, community) {
                    (Scope::Tenant { tenant_id, .. }, None) => tenant_id == tenant,
                    (Scope::Community { tenant_id, community_id, .. }, Some(c)) => {
                        tenant_id == tenant && community_id == c
                    }
                    _ => false,
                }
        })
    };
    let admins = || dir.users().filter(|u| !u.disabled && holds(u, Role::SubdistrictAdmin, None));
    let mut out: Vec<UserId> = Vec::new();
    for audience in r.kind.audience() {
        match audience {
            Audience::Responsible => match &r.community_id {
                Some(c) => out.extend(
                    dir.users()
                        .filter(|u| !u.disabled && holds(u, Role::CommunityOfficer, Some(c)))
                        .map(|u| u.user_id.clone()),
                ),
                None => out.extend(admins().map(|u| u.user_id.clone())),
            },
            Audience::Admins => out.extend(admins().map(|u| u.user_id.clone())),
            Audience::Team => {
                let team = r.inspection_id.as_ref().and_then(|i| facts.inspection(i)).map(|i| i.team.as_slice());
                for member in team.unwrap_or_default() {
                    let still_here = dir.user(&member.user_id).is_some_and(|u| {
                        !u.disabled && (holds(u, Role::Inspector, None) || holds(u, Role::SubdistrictAdmin, None))
                    });
                    if still_here {
                        out.push(member.user_id.clone());
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A tenant's daily digest (每日汇总).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub date: NaiveDate,
    pub tenant_name: String,
    pub overdue: Vec<Reminder>,
    pub due_soon: Vec<Reminder>,
    pub awaiting_verification: Vec<Reminder>,
}

impl Digest {
    pub fn is_empty(&self) -> bool {
        self.overdue.is_empty() && self.due_soon.is_empty() && self.awaiting_verification.is_empty()
    }

    /// The digest as lines of text: a heading, the three counts, then at most `per_kind` items of
    /// each kind (the rest as "等N项").
    pub fn lines(&self, dir_names: &dyn Fn(&CommunityId) -> Option<String>, per_kind: usize) -> Vec<String> {
        let mut out = vec![
            format!("{} 整改提醒汇总（{}）", self.tenant_name, self.date),
            format!(
                "逾期 {} 项，临期 {} 项，待销号 {} 项",
                self.overdue.len(),
                self.due_soon.len(),
                self.awaiting_verification.len()
            ),
        ];
        for list in [&self.overdue, &self.due_soon, &self.awaiting_verification] {
            for r in list.iter().take(per_kind) {
                let name = r.community_id.as_ref().and_then(dir_names);
                out.push(r.text(name.as_deref()));
            }
            if list.len() > per_kind {
                out.push(format!("……等{}项", list.len()));
            }
        }
        out
    }
}

/// The digest of a tenant on `today`: its overdue, due-soon and awaiting-verification reminders.
pub fn digest(tenant_name: &str, facts: &TenantFacts, today: NaiveDate, policy: &ReminderPolicy) -> Digest {
    let all = reminders(facts, today, policy);
    let of = |k: ReminderKind| all.iter().filter(|r| r.kind == k).cloned().collect::<Vec<_>>();
    Digest {
        date: today,
        tenant_name: tenant_name.to_owned(),
        overdue: of(ReminderKind::Overdue),
        due_soon: of(ReminderKind::DueSoon),
        awaiting_verification: of(ReminderKind::AwaitingVerification),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::Role;
    use crate::event::*;
    use crate::projection::testkit::*;

    fn model_with(extra: Vec<(crate::envelope::RecordedEvent, Event)>) -> crate::projection::ReadModel {
        let mut log = sample_log();
        log.extend(extra);
        fold(&renumber(log))
    }

    fn kinds(rs: &[Reminder]) -> Vec<(&'static str, String, i64)> {
        rs.iter().map(|r| (r.kind.code(), r.finding_id.as_str().to_owned(), r.days)).collect()
    }

    fn k(kind: &'static str, f: &str, days: i64) -> (&'static str, String, i64) {
        (kind, f.to_owned(), days)
    }

    #[test]
    fn overdue_due_soon_and_nothing_for_closed_or_unassigned() {
        let m = fold(&sample_log());
        let facts = m.tenant_facts(&tid("t1")).unwrap();
        let p = ReminderPolicy::default();
        // f2 due 2024-06-30 (in progress), f3 due 2024-02-29 (assigned), f1 verified, f4/f5 unassigned.
        assert_eq!(kinds(&reminders(facts, date("2024-04-15"), &p)), vec![k("overdue", "f3", 46)]);
        assert_eq!(
            kinds(&reminders(facts, date("2024-06-27"), &p)),
            vec![k("due_soon", "f2", 3), k("overdue", "f3", 119)]
        );
        assert_eq!(kinds(&reminders(facts, date("2024-06-26"), &p)), vec![k("overdue", "f3", 118)]);
        let today = reminders(facts, date("2024-06-30"), &p);
        assert_eq!(today[0].key, "due_soon/f2/2024-06-30");
        assert!(today[0].text(Some("红旗社区")).contains("整改期限为今天"), "{}", today[0].text(None));
        assert_eq!(kinds(&reminders(facts, date("2024-07-01"), &p))[0], k("overdue", "f2", 1));
        // The threshold is the tenant's.
        let wide = ReminderPolicy { due_soon_days: 80, ..p };
        assert_eq!(kinds(&reminders(facts, date("2024-04-15"), &wide))[0], k("due_soon", "f2", 76));
    }

    #[test]
    fn an_extension_gives_a_new_key() {
        let m = model_with(vec![ev(
            "t1",
            "t1/finding-f3",
            "2024-04-01T02:00:00.000000Z",
            DeadlineExtended { new_deadline: date("2024-04-17"), reason: "需协调".into() },
        )]);
        let facts = m.tenant_facts(&tid("t1")).unwrap();
        let rs = reminders(facts, date("2024-04-15"), &ReminderPolicy::default());
        assert_eq!(kinds(&rs), vec![k("due_soon", "f3", 2)]);
        assert_eq!(rs[0].key, "due_soon/f3/2024-04-17");
    }

    #[test]
    fn awaiting_verification_after_the_wait_and_manual_reminders_while_work_is_owed() {
        let m = model_with(vec![
            ev_by(
                "t1",
                "t1/finding-f2",
                "2024-04-01T02:00:00.000000Z",
                "admin1",
                Role::SubdistrictAdmin,
                ReminderIssued { message: "请于月底前报送整改进展".into() },
            ),
            ev(
                "t1",
                "t1/finding-f3",
                "2024-04-10T02:00:00.000000Z",
                RectificationSubmitted { summary: "已完成".into() },
            ),
        ]);
        let facts = m.tenant_facts(&tid("t1")).unwrap();
        let p = ReminderPolicy::default();
        let on = |d: &str| kinds(&reminders(facts, date(d), &p));
        assert_eq!(on("2024-04-02"), vec![k("manual", "f2", 0)]);
        assert_eq!(on("2024-04-14"), Vec::new(), "the 催办 is a week old; f3 waits 4 days");
        assert_eq!(on("2024-04-15"), vec![k("awaiting_verification", "f3", 5)]);
        let manual = &reminders(facts, date("2024-04-02"), &p)[0];
        assert!(manual.key.starts_with("manual/f2/"));
        assert_eq!(manual.text(Some("红旗社区")), "【催办】红旗社区「对督查工作不够重视」：请于月底前报送整改进展");
        assert_eq!(on("2024-03-31"), Vec::new(), "not before it was issued");
    }

    #[test]
    fn recipients_follow_the_roles() {
        let m = model_with(vec![ev(
            "t1",
            "t1/finding-f2",
            "2024-04-01T02:00:00.000000Z",
            ReminderIssued { message: "请抓紧".into() },
        )]);
        let (dir, t1) = (m.directory(), tid("t1"));
        let facts = m.tenant_facts(&t1).unwrap();
        let p = ReminderPolicy::default();
        let who =
            |r: &Reminder| recipients(dir, &t1, facts, r).iter().map(|u| u.as_str().to_owned()).collect::<Vec<_>>();
        // f3 is c3's (no officer there) and overdue: admins and the team.
        let overdue = &reminders(facts, date("2024-04-15"), &p)[0];
        assert_eq!(who(overdue), vec!["admin1", "insp1", "insp2"]);
        // A 催办 of c2's finding: c2 has no officer; c1's officer is never told.
        let manual = reminders(facts, date("2024-04-02"), &p).into_iter().find(|r| r.kind == ReminderKind::Manual);
        assert_eq!(who(&manual.unwrap()), Vec::<String>::new());
        // Re-homed to c1: its officer.
        let mut r = overdue.clone();
        r.kind = ReminderKind::DueSoon;
        r.community_id = Some(cid("c1"));
        assert_eq!(who(&r), vec!["off1"]);
        // Cross-cutting: the admins report progress.
        r.community_id = None;
        assert_eq!(who(&r), vec!["admin1"]);
        // Never another tenant's people.
        assert!(recipients(dir, &tid("t2"), facts, overdue).iter().all(|u| u.as_str() != "admin1"));
    }

    #[test]
    fn digest_counts_and_lines() {
        let m = fold(&sample_log());
        let facts = m.tenant_facts(&tid("t1")).unwrap();
        let d = digest("XX街道", facts, date("2024-06-28"), &ReminderPolicy::default());
        assert_eq!((d.overdue.len(), d.due_soon.len(), d.awaiting_verification.len()), (1, 1, 0));
        let names = |c: &CommunityId| COMMUNITIES.iter().find(|(id, _)| *id == c.as_str()).map(|(_, n)| n.to_string());
        let lines = d.lines(&names, 10);
        assert_eq!(lines[0], "XX街道 整改提醒汇总（2024-06-28）");
        assert_eq!(lines[1], "逾期 1 项，临期 1 项，待销号 0 项");
        assert_eq!(lines[2], "【逾期催办】新华社区「主体责任意识有待增强」整改已逾期120天（期限2024-02-29）");
        assert_eq!(lines[3], "【临期提醒】红旗社区「对督查工作不够重视」整改期限为2024-06-30，还剩2天");
        assert!(digest("XX街道", facts, date("2024-01-01"), &ReminderPolicy::default()).is_empty());
    }

    #[test]
    fn policy_bounds() {
        assert!(ReminderPolicy::default().check().is_ok());
        assert_eq!(ReminderPolicy { due_soon_days: 61, verify_wait_days: 5 }.check().unwrap_err().0, "due_soon_days");
        assert_eq!(ReminderPolicy { due_soon_days: 3, verify_wait_days: 0 }.check().unwrap_err().0, "verify_wait_days");
    }
}
