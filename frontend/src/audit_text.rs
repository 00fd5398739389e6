//! Words for the auditor's and the district screens: event types in Chinese, short hashes, stream
//! names, the points of a diff, the year choices. Pure, tested on the host.

use crate::format;

/// The Chinese name of a stored event type (the type itself when it is not known here).
pub fn event_type_zh(event_type: &str) -> &str {
    match event_type {
        "DistrictCreated" => "创建区",
        "TenantCreated" => "创建街道",
        "CommunityAdded" => "新增社区",
        "CommunityRenamed" => "社区更名",
        "FindingCategoryAdded" => "新增问题类别",
        "FindingCategoryRenamed" => "问题类别更名",
        "FindingCategoryRetired" => "停用问题类别",
        "MethodAdded" => "新增督查方式",
        "MethodRenamed" => "督查方式更名",
        "MethodRetired" => "停用督查方式",
        "ChecklistDefined" => "制定考核细则",
        "UserCreated" => "创建用户",
        "PasswordSet" => "设置密码",
        "RoleGranted" => "授予角色",
        "RoleRevoked" => "撤销角色",
        "UserDisabled" => "停用用户",
        "UserEnabled" => "启用用户",
        "UserContactSet" => "设置手机号",
        "PersonalDataErased" => "删除个人信息",
        "InspectionPlanned" => "制定督查计划",
        "InspectionScopeChanged" => "调整督查范围",
        "InspectionTeamChanged" => "调整督查组",
        "InspectionStarted" => "开始督查",
        "FieldworkRecorded" => "记录座谈/查阅",
        "DeductionRecorded" => "记录扣分",
        "AchievementRecorded" => "记录工作成效",
        "FindingRecorded" => "记录问题",
        "InspectionConcluded" => "督查结束",
        "ReportIssued" => "印发督查报告",
        "RectificationAssigned" => "交办整改",
        "ProgressReported" => "报告整改进展",
        "RectificationSubmitted" => "提交销号",
        "RectificationVerified" => "整改销号",
        "RectificationReturned" => "退回整改",
        "DeadlineExtended" => "整改延期",
        "ReminderIssued" => "催办",
        "FindingDismissed" => "撤销问题",
        "SelfInspectionSubmitted" => "提交自查报告",
        "InspectionImported" => "导入台账来源",
        "FindingImported" => "导入问题",
        "RectificationImported" => "导入整改情况",
        other => other,
    }
}

/// For an imported event (its payload has `file`): `导入自 台账.xlsx（SHA-256 0123456789…）第3行`.
pub fn imported_from(payload_text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(payload_text).ok()?;
    let f = v.get("file")?;
    let name = f.get("file_name")?.as_str()?;
    let sha = f.get("file_sha256")?.as_str()?;
    let row = f.get("row").and_then(|r| r.as_u64()).filter(|r| *r > 0);
    let at = row.map(|r| format!("第{r}行")).unwrap_or_default();
    Some(format!("导入自 {name}（SHA-256 {}）{at}", short_hash(sha)))
}

/// The first 10 hex digits of a hash, then `…` (the full one goes in a `title`).
pub fn short_hash(hash: &str) -> String {
    if hash.len() <= 10 { hash.to_owned() } else { format!("{}…", &hash[..10]) }
}

/// A stream's name without its tenant prefix: `xxjd/finding-xx-2023-f1` → `finding-xx-2023-f1`.
pub fn stream_name(stream: &str) -> &str {
    stream.split_once('/').map_or(stream, |(_, rest)| rest)
}

/// A stream for people: `督查 2023-ideology`, `问题 xx-2023-f1`, `街道设置`, `自查报告 2023-dongfeng`.
pub fn stream_label(stream: &str) -> String {
    let name = stream_name(stream);
    for (prefix, zh) in [
        ("inspection-", "督查"),
        ("finding-", "问题"),
        ("self-inspection-", "自查报告"),
        ("document-", "文书"),
        ("user-", "用户"),
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            return format!("{zh} {rest}");
        }
    }
    match name {
        "tenant" => "街道设置".to_owned(),
        _ => name.to_owned(),
    }
}

/// One end of a diff as the API takes it: digits are a log position, a `datetime-local` value a
/// Shanghai time (sent as RFC 3339 with `+08:00`); anything else is refused with a Chinese message.
pub fn diff_point(input: &str) -> Result<String, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("请填写时间或日志位置".to_owned());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return if s.len() > 18 { Err("日志位置过大".to_owned()) } else { Ok(s.to_owned()) };
    }
    format::parse_local_input(s)
        .map(format::as_of_param)
        .ok_or_else(|| "应为时间（如 2024-03-19 08:00）或日志位置（整数）".to_owned())
}

/// Whether the two points of a diff are in order (`to` empty means now; mixed forms are left to
/// the server).
pub fn diff_in_order(from: &str, to: &str) -> bool {
    let (from, to) = (from.trim(), to.trim());
    if let (Ok(a), Ok(b)) = (from.parse::<u64>(), to.parse::<u64>()) {
        return a <= b;
    }
    match (format::parse_local_input(from), format::parse_local_input(to)) {
        (Some(a), Some(b)) => a <= b,
        _ => true,
    }
}

/// The "as of" (a Shanghai wall-clock time, whole seconds) that first includes an event stored at
/// `occurred_at` (RFC 3339): its second, or the next one when it has a fraction.
pub fn as_of_after(occurred_at: &str) -> Option<chrono::NaiveDateTime> {
    use chrono::Timelike;
    let t = chrono::DateTime::parse_from_rfc3339(occurred_at).ok()?.with_timezone(&format::shanghai()).naive_local();
    let whole = t.with_nanosecond(0)?;
    Some(if t.nanosecond() > 0 { whole + chrono::TimeDelta::seconds(1) } else { whole })
}

/// A rectification status code (`verified`, …) in Chinese.
pub fn status_zh(code: &str) -> &str {
    match code {
        "unassigned" => "待交办",
        "assigned" => "已交办",
        "in_progress" => "整改中",
        "submitted" => "待销号",
        "returned" => "已退回",
        "verified" => "已销号",
        "dismissed" => "已撤销",
        other => other,
    }
}

/// A warning level code (`red`, …) in Chinese.
pub fn warning_zh(code: &str) -> &str {
    match code {
        "red" => "红灯",
        "yellow" => "黄灯",
        "blue" => "蓝灯",
        "green" => "绿灯",
        other => other,
    }
}

/// `before → after` of an optional value, `—` for none.
pub fn before_after(before: Option<&str>, after: Option<&str>) -> String {
    format!("{} → {}", before.unwrap_or("—"), after.unwrap_or("—"))
}

/// The years a district dashboard offers: this year back to `first`, newest first (at least this
/// year, at most 10).
pub fn year_choices(this_year: i32, first: Option<i32>) -> Vec<i32> {
    let first = first.unwrap_or(this_year).clamp(this_year - 9, this_year);
    (first..=this_year).rev().collect()
}

/// A score with two decimals, or "—" when there is none.
pub fn score(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v:.2}"))
}

/// The file name of a circular download: `XX区督查通报（2023年）.xlsx`.
pub fn circular_file_name(district_name: &str, year: Option<i32>, ext: &str) -> String {
    match year {
        Some(y) => format!("{district_name}督查通报（{y}年）.{ext}"),
        None => format!("{district_name}督查通报.{ext}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imported_events_name_their_file() {
        let p = r#"{"status":"assigned","file":{"file_sha256":"0123456789abcdef","file_name":"台账.xlsx","sheet":"整改台账","row":3}}"#;
        assert_eq!(imported_from(p).as_deref(), Some("导入自 台账.xlsx（SHA-256 0123456789…）第3行"));
        assert_eq!(imported_from(r#"{"text":"x"}"#), None);
        assert_eq!(event_type_zh("RectificationImported"), "导入整改情况");
    }

    #[test]
    fn events_and_streams_read_in_chinese() {
        assert_eq!(event_type_zh("RectificationVerified"), "整改销号");
        assert_eq!(event_type_zh("SomethingNew"), "SomethingNew");
        assert_eq!(stream_name("xxjd/finding-xx-2023-f1"), "finding-xx-2023-f1");
        assert_eq!(stream_name("tenant"), "tenant");
        assert_eq!(stream_label("xxjd/finding-xx-2023-f1"), "问题 xx-2023-f1");
        assert_eq!(stream_label("xxjd/inspection-2023-ideology"), "督查 2023-ideology");
        assert_eq!(stream_label("xxjd/self-inspection-2023-dongfeng"), "自查报告 2023-dongfeng");
        assert_eq!(stream_label("xxjd/tenant"), "街道设置");
        assert_eq!(stream_label("xxjd/other"), "other");
    }

    #[test]
    fn hashes_are_shortened() {
        assert_eq!(short_hash("feaabf52528e573db9a04b992af093185dec"), "feaabf5252…");
        assert_eq!(short_hash("abc"), "abc");
    }

    #[test]
    fn diff_points_are_positions_or_shanghai_times() {
        assert_eq!(diff_point(" 120 "), Ok("120".to_owned()));
        assert_eq!(diff_point("2024-03-19T08:00"), Ok("2024-03-19T08:00:00+08:00".to_owned()));
        assert!(diff_point("").is_err());
        assert!(diff_point("yesterday").is_err());
        assert!(diff_point("99999999999999999999").is_err());
        assert!(diff_in_order("2024-03-01T08:00", "2024-03-02T08:00"));
        assert!(!diff_in_order("2024-03-02T08:00", "2024-03-01T08:00"));
        assert!(diff_in_order("120", "130") && !diff_in_order("130", "120"));
        assert!(diff_in_order("120", ""));
        let at = |s: &str| format::parse_local_input(s);
        assert_eq!(as_of_after("2024-03-20T01:00:00.000000Z"), at("2024-03-20T09:00:00"));
        assert_eq!(as_of_after("2024-03-20T01:00:00.250000Z"), at("2024-03-20T09:00:01"));
        assert_eq!(as_of_after("nonsense"), None);
    }

    #[test]
    fn years_scores_and_file_names() {
        assert_eq!(year_choices(2026, Some(2023)), [2026, 2025, 2024, 2023]);
        assert_eq!(year_choices(2026, None), [2026]);
        assert_eq!(year_choices(2026, Some(1990)).len(), 10);
        assert_eq!(score(Some(95.333)), "95.33");
        assert_eq!(score(None), "—");
        assert_eq!(circular_file_name("XX区", Some(2023), "xlsx"), "XX区督查通报（2023年）.xlsx");
        assert_eq!(circular_file_name("XX区", None, "docx"), "XX区督查通报.docx");
    }
}
