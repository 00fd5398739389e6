//! Browser-side checks of the administration forms, before anything is sent: each returns the
//! Chinese message to show next to the field, or `None`. The server checks again (its `detail`
//! is shown next to the field it names); these only spare a round trip. Pure, tested on the host.

/// Ids of communities, users, checklists, districts, sub-districts: `^[A-Za-z0-9_-]{1,64}$`.
pub fn id(value: &str) -> Option<&'static str> {
    let v = value.trim();
    if v.is_empty() {
        Some("请填写编号")
    } else if v.len() > 64 || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        Some("编号只能包含英文字母、数字、“-”和“_”，最多 64 个字符")
    } else {
        None
    }
}

/// A method or category code: the domain's `[a-z0-9_-]{1,32}`.
pub fn term_code(value: &str) -> Option<&'static str> {
    let v = value.trim();
    if v.is_empty() {
        Some("请填写代码")
    } else if v.len() > 32 || !v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        Some("代码只能包含小写英文字母、数字、“-”和“_”，最多 32 个字符")
    } else {
        None
    }
}

/// A name shown to people (社区名称, 姓名, 标题…).
pub fn name(value: &str) -> Option<&'static str> {
    let v = value.trim();
    if v.is_empty() {
        Some("请填写名称")
    } else if v.chars().count() > 100 {
        Some("名称不能超过 100 个字")
    } else {
        None
    }
}

/// A new password: at least 8 characters (as the server requires).
pub fn password(value: &str) -> Option<&'static str> {
    if value.chars().count() < 8 { Some("密码至少 8 位") } else { None }
}

/// Checklist points: a number from 0 to 100 with at most two decimals; its hundredths.
pub fn points(value: &str) -> Result<u32, &'static str> {
    let v = value.trim();
    let bad = "分值应为 0–100 之间的数，最多两位小数";
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if int.is_empty() || frac.len() > 2 || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    let whole: u32 = int.parse().map_err(|_| bad)?;
    let hundredths = whole.checked_mul(100).ok_or(bad)? + format!("{frac:0<2}").parse::<u32>().map_err(|_| bad)?;
    if hundredths > 10_000 { Err(bad) } else { Ok(hundredths) }
}

/// The lines of a checklist's items as typed, one per line: `编号 标题 分值`
/// (e.g. `1.1 理论学习制度健全 5`) → (code, title, hundredths), or the first line's error.
pub fn checklist_items(text: &str) -> Result<Vec<(String, String, u32)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().map(str::trim).enumerate().filter(|(_, l)| !l.is_empty()) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() < 3 {
            return Err(format!("第 {} 行应为“编号 标题 分值”", n + 1));
        }
        let pts = points(parts[parts.len() - 1]).map_err(|e| format!("第 {} 行：{e}", n + 1))?;
        let title = parts[1..parts.len() - 1].join(" ");
        out.push((parts[0].to_owned(), title, pts));
    }
    if out.is_empty() {
        return Err("请至少填写一条细则".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_codes_are_the_domains() {
        assert_eq!(term_code("letters_visits"), None);
        assert_eq!(term_code("self-check"), None);
        assert!(term_code("").is_some());
        assert!(term_code("Theory").is_some());
        assert!(term_code("来访").is_some());
        assert!(term_code(&"x".repeat(33)).is_some());
    }

    #[test]
    fn ids_and_names() {
        assert_eq!(id("dongfeng"), None);
        assert_eq!(id("xx-2023_1"), None);
        assert!(id("").is_some());
        assert!(id("东风").is_some());
        assert!(id("a b").is_some());
        assert!(id(&"a".repeat(65)).is_some());
        assert_eq!(name("东风社区"), None);
        assert!(name("  ").is_some());
        assert_eq!(password("12345678"), None);
        assert!(password("1234567").is_some());
    }

    #[test]
    fn points_are_exact_hundredths() {
        assert_eq!(points("5"), Ok(500));
        assert_eq!(points("2.5"), Ok(250));
        assert_eq!(points("0.05"), Ok(5));
        assert_eq!(points("100"), Ok(10_000));
        for bad in ["", "-1", "1.234", "abc", "100.01", ".5", "1e2"] {
            assert!(points(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checklist_lines() {
        let items = checklist_items("1.1 理论学习 制度健全 5\n\n1.2 台账 2.5\n").unwrap();
        assert_eq!(items, [("1.1".into(), "理论学习 制度健全".into(), 500), ("1.2".into(), "台账".into(), 250)]);
        assert_eq!(checklist_items("1.1 理论学习").unwrap_err(), "第 1 行应为“编号 标题 分值”");
        assert!(checklist_items("1.1 台账 x").unwrap_err().contains("第 1 行"));
        assert!(checklist_items("  ").is_err());
    }
}
