//! The rectification screens' pure logic (整改台账, a finding's 整改, 我的问题): the ledger's query
//! string, the browser-side checks of the rectification forms, who may issue which command, and
//! the Chinese names of the follow-up events. Tested on the host.

use chrono::NaiveDate;
use ducha_events::api::GrantView;

/// The largest page the ledger API serves.
pub const MAX_PAGE_SIZE: u32 = 500;

/// The ledger's filters, sort and page, as the page keeps them and the API reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerQuery {
    pub community: String,
    pub category: String,
    pub status: String,
    pub warning: String,
    /// `recorded` (default), `deadline`, `community`, `warning`.
    pub sort: String,
    pub page: u32,
    pub page_size: u32,
}

impl Default for LedgerQuery {
    fn default() -> Self {
        LedgerQuery {
            community: String::new(),
            category: String::new(),
            status: String::new(),
            warning: String::new(),
            sort: "recorded".into(),
            page: 1,
            page_size: 50,
        }
    }
}

impl LedgerQuery {
    /// The filters only (what the Excel export takes), e.g. `community=dongfeng&status=returned`.
    pub fn filters(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        for (name, value) in [
            ("community", &self.community),
            ("category", &self.category),
            ("status", &self.status),
            ("warning", &self.warning),
        ] {
            if !value.is_empty() {
                out.push(format!("{name}={}", crate::problem::encode_query_value(value)));
            }
        }
        if !self.sort.is_empty() && self.sort != "recorded" {
            out.push(format!("sort={}", crate::problem::encode_query_value(&self.sort)));
        }
        out.join("&")
    }

    /// Filters, sort and page for `GET /tenants/{t}/ledger`.
    pub fn query(&self) -> String {
        let size = self.page_size.clamp(1, MAX_PAGE_SIZE);
        let f = self.filters();
        let page = format!("page={}&page_size={size}", self.page.max(1));
        if f.is_empty() { page } else { format!("{f}&{page}") }
    }

    /// The view as the page's address keeps it (`?community=dongfeng&status=returned&page=2`):
    /// filters, sort, and page and page size when not the defaults. A link reproduces the view.
    pub fn search(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let f = self.filters();
        if !f.is_empty() {
            parts.push(f);
        }
        if self.page > 1 {
            parts.push(format!("page={}", self.page));
        }
        if self.page_size != LedgerQuery::default().page_size {
            parts.push(format!("page_size={}", self.page_size.clamp(1, MAX_PAGE_SIZE)));
        }
        parts.join("&")
    }

    /// The view of an address's query (`?` optional); unknown names and bad numbers are ignored,
    /// so an old or hand-edited link still opens the ledger.
    pub fn from_search(search: &str) -> LedgerQuery {
        let mut q = LedgerQuery::default();
        for pair in search.trim_start_matches('?').split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = crate::problem::decode_query_value(value);
            match name {
                "community" => q.community = value,
                "category" => q.category = value,
                "status" => q.status = value,
                "warning" => q.warning = value,
                "sort" if !value.is_empty() => q.sort = value,
                "page" => q.page = value.parse().unwrap_or(1).max(1),
                "page_size" => q.page_size = value.parse().unwrap_or(q.page_size).clamp(1, MAX_PAGE_SIZE),
                _ => {}
            }
        }
        q
    }

    /// The number of pages for `total` rows (at least 1).
    pub fn pages(&self, total: u64) -> u32 {
        let size = u64::from(self.page_size.clamp(1, MAX_PAGE_SIZE));
        (total.div_ceil(size)).max(1).min(u64::from(u32::MAX)) as u32
    }
}

/// A form's problems: (API field name, Chinese message), in form order.
pub type Problems = Vec<(&'static str, String)>;

fn required(out: &mut Problems, field: &'static str, label: &str, value: &str, max: usize) {
    let v = value.trim();
    if v.is_empty() {
        out.push((field, format!("请填写{label}")));
    } else if v.chars().count() > max {
        out.push((field, format!("{label}不能超过{max}个字")));
    }
}

fn date(out: &mut Problems, field: &'static str, label: &str, value: &str) -> Option<NaiveDate> {
    if value.trim().is_empty() {
        out.push((field, format!("请选择{label}")));
        return None;
    }
    match NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            out.push((field, format!("{label}格式应为 年-月-日")));
            None
        }
    }
}

/// 交办: measure, unit, leader, person and a deadline not before `today` (Asia/Shanghai).
pub fn check_assign(
    measure: &str,
    unit: &str,
    leader: &str,
    person: &str,
    deadline: &str,
    today: NaiveDate,
) -> Problems {
    let mut out = Problems::new();
    required(&mut out, "measure", "整改措施", measure, 2000);
    required(&mut out, "responsible_unit", "责任单位", unit, 200);
    required(&mut out, "leader", "责任领导", leader, 64);
    required(&mut out, "person", "责任人", person, 64);
    if let Some(d) = date(&mut out, "deadline", "整改时限", deadline)
        && d < today
    {
        out.push(("deadline", "整改时限不能早于今天".into()));
    }
    out
}

/// A reason or message (退回, 撤销, 催办, 延期).
pub fn check_text(field: &'static str, label: &str, value: &str) -> Problems {
    let mut out = Problems::new();
    required(&mut out, field, label, value, 200);
    out
}

/// 延期: a reason and a new deadline later than the current one. (The server also refuses a date
/// before today; that answer is shown next to the field.)
pub fn check_extend(new_deadline: &str, reason: &str, current: Option<NaiveDate>) -> Problems {
    let mut out = Problems::new();
    if let Some(d) = date(&mut out, "new_deadline", "新的整改时限", new_deadline)
        && let Some(c) = current
        && d <= c
    {
        out.push(("new_deadline", format!("新的整改时限须晚于原整改时限{c}")));
    }
    required(&mut out, "reason", "延期理由", reason, 200);
    out
}

/// 报送进展: the text (evidence is optional).
pub fn check_progress(text: &str) -> Problems {
    let mut out = Problems::new();
    required(&mut out, "text", "整改进展", text, 2000);
    out
}

/// Whether the user may manage rectifications (交办, 销号, 退回, 延期, 催办, 撤销) in `tenant`: a
/// sub-district admin of it.
pub fn can_manage(grants: &[GrantView], tenant: &str) -> bool {
    grants.iter().any(|g| g.role == "subdistrict_admin" && g.scope.tenant_id.as_deref() == Some(tenant))
}

/// Whether the user may report progress and submit on a finding of `community` (None: 全街道) in
/// `tenant`: a sub-district admin, or the community's officer.
pub fn can_report(grants: &[GrantView], tenant: &str, community: Option<&str>) -> bool {
    can_manage(grants, tenant)
        || grants.iter().any(|g| {
            g.role == "community_officer"
                && g.scope.tenant_id.as_deref() == Some(tenant)
                && community.is_some()
                && g.scope.community_id.as_deref() == community
        })
}

/// The Chinese name of a follow-up event in a finding's history.
pub fn event_name(event_type: &str) -> &str {
    match event_type {
        "FindingRecorded" => "记录问题",
        "RectificationAssigned" => "交办整改",
        "ProgressReported" => "报送进展",
        "RectificationSubmitted" => "提交销号",
        "RectificationVerified" => "销号",
        "RectificationReturned" => "退回",
        "DeadlineExtended" => "延期",
        "ReminderIssued" => "催办",
        "FindingDismissed" => "撤销",
        other => other,
    }
}

/// The one line worth showing from an event's payload (progress text, reason, comment, …).
pub fn event_summary(data: &serde_json::Value) -> String {
    let s = |k: &str| data.get(k).and_then(|v| v.as_str()).filter(|v| !v.is_empty()).map(str::to_owned);
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = s("measure") {
        parts.push(format!("整改措施：{m}"));
    }
    if let Some(d) = s("deadline") {
        parts.push(format!("整改时限：{d}"));
    }
    for k in ["text", "summary", "comment", "reason", "message"] {
        if let Some(v) = s(k) {
            parts.push(v);
        }
    }
    if let Some(d) = s("new_deadline") {
        parts.push(format!("新的整改时限：{d}"));
    }
    if let Some(files) = data.get("evidence").and_then(|e| e.as_array()).filter(|a| !a.is_empty()) {
        let names: Vec<&str> = files.iter().filter_map(|f| f.get("filename").and_then(|n| n.as_str())).collect();
        parts.push(format!("佐证材料：{}", names.join("、")));
    }
    parts.join("；")
}

/// `1.5 KB`, `2.0 MB`.
pub fn file_size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ducha_events::api::ScopeView;

    #[test]
    fn the_ledger_view_round_trips_through_the_address() {
        let q = LedgerQuery {
            community: "dongfeng".into(),
            category: "舆情 研判".into(),
            status: "returned".into(),
            warning: "red".into(),
            sort: "deadline".into(),
            page: 3,
            page_size: 100,
        };
        let search = q.search();
        assert_eq!(
            search,
            "community=dongfeng&category=%E8%88%86%E6%83%85%20%E7%A0%94%E5%88%A4&status=returned&warning=red&sort=deadline&page=3&page_size=100"
        );
        assert_eq!(LedgerQuery::from_search(&format!("?{search}")), q);
        // The default view has an empty address; junk is ignored, numbers are bounded.
        assert_eq!(LedgerQuery::default().search(), "");
        assert_eq!(LedgerQuery::from_search(""), LedgerQuery::default());
        let odd = LedgerQuery::from_search("?page=0&page_size=99999&x=1&status&category=a+b&community=%E4%");
        assert_eq!((odd.page, odd.page_size, odd.status.as_str()), (1, MAX_PAGE_SIZE, ""));
        assert_eq!((odd.category.as_str(), odd.community.as_str()), ("a b", "\u{FFFD}%"));
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn grant(role: &str, tenant: &str, community: Option<&str>) -> GrantView {
        GrantView {
            role: role.into(),
            role_name: String::new(),
            scope: ScopeView {
                kind: String::new(),
                district_id: Some("xxq".into()),
                tenant_id: Some(tenant.into()),
                community_id: community.map(Into::into),
                name: String::new(),
            },
        }
    }

    #[test]
    fn the_ledger_query_carries_filters_sort_and_a_capped_page() {
        let q = LedgerQuery::default();
        assert_eq!(q.query(), "page=1&page_size=50");
        assert_eq!(q.filters(), "");
        let q = LedgerQuery {
            community: "dongfeng".into(),
            status: "returned".into(),
            warning: "red".into(),
            category: "理论".into(),
            sort: "deadline".into(),
            page: 3,
            page_size: 10_000,
        };
        assert_eq!(
            q.filters(),
            "community=dongfeng&category=%E7%90%86%E8%AE%BA&status=returned&warning=red&sort=deadline"
        );
        assert!(q.query().ends_with("&page=3&page_size=500"));
        assert_eq!(q.pages(10_000), 20);
        assert_eq!(LedgerQuery::default().pages(0), 1);
        assert_eq!(LedgerQuery::default().pages(51), 2);
    }

    #[test]
    fn forms_are_checked_before_sending() {
        let today = d("2026-01-10");
        assert!(check_assign("措施", "党政办", "张书记", "刘干事", "2026-01-10", today).is_empty());
        let p = check_assign(" ", "党政办", "", "刘干事", "2026-01-09", today);
        let fields: Vec<_> = p.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["measure", "leader", "deadline"]);
        assert_eq!(p[2].1, "整改时限不能早于今天");
        assert_eq!(check_assign("a", "b", "c", "d", "", today)[0], ("deadline", "请选择整改时限".to_owned()));
        assert_eq!(check_text("reason", "退回理由", "")[0], ("reason", "请填写退回理由".to_owned()));
        assert_eq!(check_text("reason", "退回理由", &"字".repeat(201))[0].1, "退回理由不能超过200个字");
        // 延期: later than the current deadline; "before today" is left to the server.
        assert!(check_extend("2024-06-01", "疫情影响", Some(d("2024-05-31"))).is_empty());
        let p = check_extend("2024-05-31", "", Some(d("2024-05-31")));
        assert_eq!(p[0], ("new_deadline", "新的整改时限须晚于原整改时限2024-05-31".to_owned()));
        assert_eq!(p[1].0, "reason");
        assert_eq!(check_extend("31/05/2024", "x", None)[0].1, "新的整改时限格式应为 年-月-日");
        assert!(check_progress("已组织学习").is_empty());
        assert_eq!(check_progress("")[0].0, "text");
    }

    #[test]
    fn roles_decide_which_forms_are_shown() {
        let admin = [grant("subdistrict_admin", "xxjd", None)];
        let officer = [grant("community_officer", "xxjd", Some("dongfeng"))];
        let inspector = [grant("inspector", "xxjd", None)];
        assert!(can_manage(&admin, "xxjd") && !can_manage(&admin, "yyjd"));
        assert!(!can_manage(&officer, "xxjd") && !can_manage(&inspector, "xxjd"));
        assert!(can_report(&admin, "xxjd", None));
        assert!(can_report(&officer, "xxjd", Some("dongfeng")));
        assert!(!can_report(&officer, "xxjd", Some("xiangyang")));
        assert!(!can_report(&officer, "xxjd", None), "全街道 findings are the sub-district's");
        assert!(!can_report(&inspector, "xxjd", Some("dongfeng")));
    }

    #[test]
    fn history_reads_in_chinese() {
        assert_eq!(event_name("RectificationReturned"), "退回");
        assert_eq!(event_name("Unknown"), "Unknown");
        let data = serde_json::json!({"text": "已学习", "evidence": [{"filename": "a.pdf"}, {"filename": "b.png"}]});
        assert_eq!(event_summary(&data), "已学习；佐证材料：a.pdf、b.png");
        let data = serde_json::json!({"new_deadline": "2024-09-30", "reason": "需协调"});
        assert_eq!(event_summary(&data), "需协调；新的整改时限：2024-09-30");
        assert_eq!(file_size(1056), "1.0 KB");
        assert_eq!(file_size(12), "12 B");
        assert_eq!(file_size(3 * 1024 * 1024), "3.0 MB");
    }
}
