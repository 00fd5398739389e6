//! The inspection screens' pure logic: browser-side checks of every inspection form (each
//! failing check names the API field it is about, so its message is shown where the server's
//! would be), points and figures as typed, the report preview's HTML, and the status badge
//! classes. Pure, tested on the host.

use chrono::NaiveDate;

/// A form error found in the browser: the API field at fault and the Chinese message.
pub type FieldError = (&'static str, String);

fn err<T>(field: &'static str, msg: impl Into<String>) -> Result<T, FieldError> {
    Err((field, msg.into()))
}

/// A required text of at most `max` characters, trimmed.
pub fn required(field: &'static str, label: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let v = value.trim();
    if v.is_empty() {
        return err(field, format!("请填写{label}"));
    }
    optional(field, label, v, max)
}

/// An optional text of at most `max` characters, trimmed.
pub fn optional(field: &'static str, label: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let v = value.trim();
    if v.chars().count() > max {
        return err(field, format!("{label}不能超过{max}个字"));
    }
    Ok(v.to_owned())
}

/// A year between 2000 and 2100 (what the server accepts).
pub fn year(value: &str) -> Result<i32, FieldError> {
    match value.trim().parse::<i32>() {
        Ok(y) if (2000..=2100).contains(&y) => Ok(y),
        _ => err("year", "年度须在2000至2100之间"),
    }
}

/// A date from an `<input type="date">` (`YYYY-MM-DD`).
pub fn date(field: &'static str, label: &str, value: &str) -> Result<NaiveDate, FieldError> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").or_else(|_| err(field, format!("请选择{label}")))
}

/// A date that may not be after `today` (fieldwork, the start of an inspection).
pub fn past_date(field: &'static str, label: &str, value: &str, today: NaiveDate) -> Result<NaiveDate, FieldError> {
    let d = date(field, label, value)?;
    if d > today {
        return err(field, format!("{label}不能晚于今天"));
    }
    Ok(d)
}

/// The planned period: both dates, the end not before the start.
pub fn period(start: &str, end: &str) -> Result<(NaiveDate, NaiveDate), FieldError> {
    let s = date("planned_start", "计划开始日期", start)?;
    let e = date("planned_end", "计划结束日期", end)?;
    if e < s {
        return err("planned_end", "计划结束日期不能早于开始日期");
    }
    Ok((s, e))
}

/// At least one of a multiple choice (communities, team, methods).
pub fn at_least_one<T: Clone>(field: &'static str, msg: &str, chosen: &[T]) -> Result<Vec<T>, FieldError> {
    if chosen.is_empty() { err(field, msg) } else { Ok(chosen.to_vec()) }
}

/// Deduction points as typed (`2` or `0.5`): more than 0, at most two decimals, at most
/// `remaining` hundredths (what is left of the item's points for that community). The result is in
/// hundredths.
pub fn deduction_points(value: &str, remaining: Option<u32>) -> Result<u32, FieldError> {
    let v = value.trim();
    let bad = || err("points", "扣分应为大于0的数，最多两位小数");
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if int.is_empty() || frac.len() > 2 || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return bad();
    }
    let Ok(whole) = int.parse::<u32>() else { return bad() };
    let Ok(frac) = format!("{frac:0<2}").parse::<u32>() else { return bad() };
    let Some(h) = whole.checked_mul(100).and_then(|w| w.checked_add(frac)) else { return bad() };
    if h == 0 {
        return err("points", "扣分须大于0");
    }
    if let Some(r) = remaining
        && h > r
    {
        return err("points", format!("扣分不能超过该项剩余分值{}分", points_text(r)));
    }
    Ok(h)
}

/// Hundredths of a point as shown (`5`, `2.5`, `0.25`).
pub fn points_text(hundredths: u32) -> String {
    let (w, r) = (hundredths / 100, hundredths % 100);
    match r {
        0 => w.to_string(),
        r if r % 10 == 0 => format!("{w}.{}", r / 10),
        r => format!("{w}.{r:02}"),
    }
}

/// Points as the API writes them (a JSON number with at most two decimals) → hundredths.
pub fn hundredths(points: f64) -> u32 {
    (points * 100.0).round().max(0.0) as u32
}

/// The figures of an achievement, one per line as `名称 数值 单位` (`理论宣讲会 10 场`; the unit
/// may be left out): (label, value, unit).
pub fn figures(text: &str) -> Result<Vec<(String, i64, String)>, FieldError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().map(str::trim).enumerate().filter(|(_, l)| !l.is_empty()) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let at = parts.iter().rposition(|p| p.parse::<i64>().is_ok());
        match at {
            Some(i) if i > 0 && parts.len() - i <= 2 => {
                let value = parts[i].parse::<i64>().unwrap_or_default();
                let unit = parts.get(i + 1).copied().unwrap_or("");
                if unit.chars().count() > 10 {
                    return err("figures", format!("第{}行：单位不能超过10个字", n + 1));
                }
                out.push((parts[..i].join(" "), value, unit.to_owned()));
            }
            _ => return err("figures", format!("第{}行应为“名称 数值 单位”，如“理论宣讲会 10 场”", n + 1)),
        }
    }
    Ok(out)
}

/// The report's HTML page made fit for the preview frame under the app's CSP, which forbids
/// inline style (and script): its `<style>` blocks are dropped and the app's own stylesheet, which
/// carries the report's rules (scoped to its `.gw` article), is linked instead.
pub fn preview_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len() + 64);
    let mut rest = html;
    loop {
        let lower = rest.to_ascii_lowercase();
        match lower.find("<style") {
            None => {
                out.push_str(rest);
                break;
            }
            Some(start) => {
                out.push_str(&rest[..start]);
                match lower[start..].find("</style>") {
                    Some(end) => rest = &rest[start + end + "</style>".len()..],
                    None => break,
                }
            }
        }
    }
    let link = r#"<link rel="stylesheet" href="/style.css">"#;
    match out.to_ascii_lowercase().find("</head>") {
        Some(at) => out.insert_str(at, link),
        None => out.insert_str(0, link),
    }
    out
}

/// The badge class of an inspection status (`planned`, `in_progress`, `concluded`).
pub fn status_class(status: &str) -> &'static str {
    match status {
        "planned" => "status status-planned",
        "in_progress" => "status status-active",
        "concluded" => "status status-done",
        _ => "status",
    }
}

/// The badge class of a finding's rectification status.
pub fn finding_status_class(status: &str) -> &'static str {
    match status {
        "verified" | "dismissed" => "status status-done",
        "returned" => "status status-warn",
        "unassigned" => "status status-planned",
        _ => "status status-active",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn texts_years_and_dates() {
        assert_eq!(required("title", "标题", "  2024年督查 ", 100), Ok("2024年督查".into()));
        assert_eq!(required("title", "标题", "  ", 100), Err(("title", "请填写标题".into())));
        assert_eq!(optional("notes", "记录", &"字".repeat(11), 10).unwrap_err().0, "notes");
        assert_eq!(year("2024"), Ok(2024));
        assert_eq!(year("1999").unwrap_err().0, "year");
        assert_eq!(year("abc").unwrap_err().0, "year");
        assert_eq!(period("2024-03-01", "2024-03-31"), Ok((d("2024-03-01"), d("2024-03-31"))));
        assert_eq!(period("2024-03-31", "2024-03-01").unwrap_err().0, "planned_end");
        assert_eq!(period("", "2024-03-01").unwrap_err().0, "planned_start");
        assert_eq!(past_date("held_on", "日期", "2024-03-02", d("2024-03-01")).unwrap_err().1, "日期不能晚于今天");
        assert!(past_date("held_on", "日期", "2024-03-01", d("2024-03-01")).is_ok());
        assert_eq!(at_least_one::<u8>("team", "至少一人", &[]).unwrap_err().0, "team");
    }

    #[test]
    fn deduction_points_are_checked_against_what_is_left() {
        assert_eq!(deduction_points("2", None), Ok(200));
        assert_eq!(deduction_points("0.5", Some(100)), Ok(50));
        assert_eq!(deduction_points("1.25", None), Ok(125));
        assert_eq!(deduction_points("0", None).unwrap_err().1, "扣分须大于0");
        assert_eq!(deduction_points("-1", None).unwrap_err().0, "points");
        assert_eq!(deduction_points("1.234", None).unwrap_err().0, "points");
        assert_eq!(deduction_points("6", Some(500)).unwrap_err().1, "扣分不能超过该项剩余分值5分");
        assert_eq!(points_text(250), "2.5");
        assert_eq!(points_text(25), "0.25");
        assert_eq!(points_text(1000), "10");
        assert_eq!(hundredths(2.5), 250);
    }

    #[test]
    fn figures_are_read_line_by_line() {
        assert_eq!(
            figures("理论宣讲会 10 场\n\n 志愿服务 活动 3\n"),
            Ok(vec![("理论宣讲会".into(), 10, "场".into()), ("志愿服务 活动".into(), 3, String::new())])
        );
        assert_eq!(figures("").unwrap(), vec![]);
        assert_eq!(figures("十场").unwrap_err().0, "figures");
        assert_eq!(figures("10 场").unwrap_err().0, "figures");
    }

    #[test]
    fn the_preview_loses_inline_style_and_links_ours() {
        let html =
            "<html><head><title>t</title><STYLE>.gw{x:1}</style></head><body><p>一、主要工作开展情况</p></body></html>";
        let p = preview_html(html);
        assert!(!p.to_lowercase().contains("<style"), "{p}");
        assert!(p.contains(r#"<link rel="stylesheet" href="/style.css"></head>"#), "{p}");
        assert!(p.contains("一、主要工作开展情况"));
        assert!(preview_html("<p>x</p>").starts_with("<link"));
    }

    #[test]
    fn badges() {
        assert_eq!(status_class("concluded"), "status status-done");
        assert_eq!(finding_status_class("returned"), "status status-warn");
    }
}
