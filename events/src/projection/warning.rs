//! The 红黄蓝绿灯 rule: a rectification's warning level, derived at query time and never stored.

use super::facts::RectificationStatus;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The thresholds of the warning rule (a tenant may tune them; these are the defaults).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WarningPolicy {
    /// Blue when the deadline is at most this many days away.
    pub near_days: u32,
    /// "Behind" (yellow) when no progress has been reported after more than this share of the
    /// assigned → deadline span has elapsed.
    pub behind_ratio_percent: u32,
}

impl Default for WarningPolicy {
    fn default() -> Self {
        WarningPolicy { near_days: 7, behind_ratio_percent: 50 }
    }
}

/// Ordered by urgency: `Green < Blue < Yellow < Red`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningLevel {
    Green,
    Blue,
    Yellow,
    Red,
}

impl WarningLevel {
    pub const ALL: [WarningLevel; 4] =
        [WarningLevel::Red, WarningLevel::Yellow, WarningLevel::Blue, WarningLevel::Green];

    pub fn code(self) -> &'static str {
        match self {
            WarningLevel::Green => "green",
            WarningLevel::Blue => "blue",
            WarningLevel::Yellow => "yellow",
            WarningLevel::Red => "red",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            WarningLevel::Green => "绿",
            WarningLevel::Blue => "蓝",
            WarningLevel::Yellow => "黄",
            WarningLevel::Red => "红",
        }
    }
}

/// The dates the rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// The Shanghai date of the assignment.
    pub assigned_on: NaiveDate,
    /// The current deadline (after any extension).
    pub deadline: NaiveDate,
    /// Whether any progress has been reported.
    pub progress_reported: bool,
}

/// The warning level of a rectification on `today`; `None` when there is nothing to warn about
/// (verified, dismissed, or not assigned yet).
///
/// In order, the first that holds:
/// - red: open (assigned, in progress, returned or submitted) and `today` is after the deadline;
/// - yellow: returned, or behind — still no progress after more than `behind_ratio_percent` of the
///   days from assignment to deadline have elapsed (a submitted rectification is never behind);
/// - blue: the deadline is `near_days` days away or less;
/// - green: otherwise.
pub fn warning_level(
    status: RectificationStatus,
    schedule: &Schedule,
    today: NaiveDate,
    policy: &WarningPolicy,
) -> Option<WarningLevel> {
    use RectificationStatus::*;
    if !matches!(status, Assigned | InProgress | Returned | Submitted) {
        return None;
    }
    if today > schedule.deadline {
        return Some(WarningLevel::Red);
    }
    let span = (schedule.deadline - schedule.assigned_on).num_days().max(0);
    let elapsed = (today - schedule.assigned_on).num_days().max(0);
    let behind = !schedule.progress_reported
        && matches!(status, Assigned)
        && elapsed * 100 > span * i64::from(policy.behind_ratio_percent);
    if status == Returned || behind {
        return Some(WarningLevel::Yellow);
    }
    if (schedule.deadline - today).num_days() <= i64::from(policy.near_days) {
        return Some(WarningLevel::Blue);
    }
    Some(WarningLevel::Green)
}

#[cfg(test)]
mod tests {
    use super::*;
    use RectificationStatus::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// Assigned 2024-01-01, deadline 2024-03-01 (60 days: half is 30 days, 2024-01-31).
    fn level(status: RectificationStatus, progress: bool, today: &str) -> Option<WarningLevel> {
        let s = Schedule { assigned_on: date("2024-01-01"), deadline: date("2024-03-01"), progress_reported: progress };
        warning_level(status, &s, date(today), &WarningPolicy::default())
    }

    #[test]
    fn closed_and_unassigned_have_no_level() {
        for status in [Verified, Dismissed, Unassigned] {
            assert_eq!(level(status, false, "2025-01-01"), None, "{status:?}");
        }
    }

    #[test]
    fn red_after_the_deadline_for_every_open_status() {
        for status in [Assigned, InProgress, Returned, Submitted] {
            let on_the_day = if status == Returned { WarningLevel::Yellow } else { WarningLevel::Blue };
            assert_eq!(level(status, true, "2024-03-01"), Some(on_the_day), "{status:?} on the deadline day");
            assert_eq!(level(status, true, "2024-03-02"), Some(WarningLevel::Red), "{status:?}");
        }
    }

    #[test]
    fn yellow_when_returned_even_far_from_the_deadline() {
        assert_eq!(level(Returned, true, "2024-01-02"), Some(WarningLevel::Yellow));
    }

    #[test]
    fn behind_boundary_is_strictly_more_than_the_ratio() {
        // 30 of 60 days is exactly 50 %: not behind yet.
        assert_eq!(level(Assigned, false, "2024-01-31"), Some(WarningLevel::Green));
        assert_eq!(level(Assigned, false, "2024-02-01"), Some(WarningLevel::Yellow));
        // Any progress report clears "behind"; so does submitting.
        assert_eq!(level(InProgress, true, "2024-02-01"), Some(WarningLevel::Green));
        assert_eq!(level(Submitted, false, "2024-02-01"), Some(WarningLevel::Green));
        // Behind outranks blue.
        assert_eq!(level(Assigned, false, "2024-02-28"), Some(WarningLevel::Yellow));
    }

    #[test]
    fn blue_within_near_days_inclusive() {
        // 2024 is a leap year: 2024-02-23 is 7 days before 2024-03-01.
        assert_eq!(level(InProgress, true, "2024-02-22"), Some(WarningLevel::Green));
        assert_eq!(level(InProgress, true, "2024-02-23"), Some(WarningLevel::Blue));
        assert_eq!(level(InProgress, true, "2024-03-01"), Some(WarningLevel::Blue));
    }

    #[test]
    fn policy_changes_the_thresholds() {
        let s = Schedule { assigned_on: date("2024-01-01"), deadline: date("2024-03-01"), progress_reported: false };
        let strict = WarningPolicy { near_days: 30, behind_ratio_percent: 10 };
        assert_eq!(warning_level(Assigned, &s, date("2024-01-07"), &strict), Some(WarningLevel::Green));
        assert_eq!(warning_level(Assigned, &s, date("2024-01-08"), &strict), Some(WarningLevel::Yellow));
        let s = Schedule { progress_reported: true, ..s };
        assert_eq!(warning_level(InProgress, &s, date("2024-01-31"), &strict), Some(WarningLevel::Blue));
        assert_eq!(warning_level(InProgress, &s, date("2024-01-30"), &strict), Some(WarningLevel::Green));
    }

    #[test]
    fn same_day_deadline_is_blue_not_behind() {
        let s = Schedule { assigned_on: date("2024-01-01"), deadline: date("2024-01-01"), progress_reported: false };
        assert_eq!(
            warning_level(Assigned, &s, date("2024-01-01"), &WarningPolicy::default()),
            Some(WarningLevel::Blue)
        );
    }

    #[test]
    fn names_and_codes() {
        let names: Vec<_> = WarningLevel::ALL.iter().map(|l| (l.code(), l.name_zh())).collect();
        assert_eq!(names, vec![("red", "红"), ("yellow", "黄"), ("blue", "蓝"), ("green", "绿")]);
        assert_eq!(serde_json::to_string(&WarningLevel::Red).unwrap(), "\"red\"");
        let p: WarningPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(p, WarningPolicy { near_days: 7, behind_ratio_percent: 50 });
    }
}
