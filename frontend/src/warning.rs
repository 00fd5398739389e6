//! The 红黄蓝绿 warning levels as badges: one CSS class and one Chinese label per level, so every
//! page colours them the same way (the colours are in `style.css`, `.badge-…`).

use ducha_events::projection::WarningLevel;

/// `badge badge-red` etc.; no level (closed or not assigned) is a neutral badge.
pub fn badge_class(level: Option<WarningLevel>) -> &'static str {
    match level {
        Some(WarningLevel::Red) => "badge badge-red",
        Some(WarningLevel::Yellow) => "badge badge-yellow",
        Some(WarningLevel::Blue) => "badge badge-blue",
        Some(WarningLevel::Green) => "badge badge-green",
        None => "badge badge-none",
    }
}

/// 红灯 / 黄灯 / 蓝灯 / 绿灯, or — for no level.
pub fn badge_label(level: Option<WarningLevel>) -> &'static str {
    match level {
        Some(WarningLevel::Red) => "红灯",
        Some(WarningLevel::Yellow) => "黄灯",
        Some(WarningLevel::Blue) => "蓝灯",
        Some(WarningLevel::Green) => "绿灯",
        None => "—",
    }
}

/// The class of a count on a dashboard card: red when anything is overdue, plain otherwise.
pub fn overdue_class(overdue: u64) -> &'static str {
    if overdue > 0 { "card card-alert" } else { "card" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_has_its_own_class_and_label() {
        let classes: Vec<_> = WarningLevel::ALL.iter().map(|&l| badge_class(Some(l))).collect();
        assert_eq!(classes, ["badge badge-red", "badge badge-yellow", "badge badge-blue", "badge badge-green"]);
        let labels: Vec<_> = WarningLevel::ALL.iter().map(|&l| badge_label(Some(l))).collect();
        assert_eq!(labels, ["红灯", "黄灯", "蓝灯", "绿灯"]);
        assert_eq!(badge_class(None), "badge badge-none");
        assert_eq!(badge_label(None), "—");
    }

    #[test]
    fn overdue_cards_are_red_only_when_something_is_overdue() {
        assert_eq!(overdue_class(0), "card");
        assert_eq!(overdue_class(3), "card card-alert");
    }
}
