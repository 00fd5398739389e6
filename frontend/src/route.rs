//! The app's routes: one [`Route`] per screen, parsed from and printed to the browser's path
//! (history API; the server answers every non-API path with `index.html`), and the navigation each
//! role gets. Pure, so the mapping is tested on the host.
//!
//! Adding a page: add a variant here (with its path in [`Route::parse`] and [`Route::path`], its
//! title and `page_id`), a nav entry in [`nav_for`] if it belongs in the menu, and a match arm in
//! `app.rs` that renders the page component.

use ducha_events::api::GrantView;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/`: goes on to the first page of the user's menu.
    Home,
    /// `/login`
    Login,
    /// `/tenants/{t}`: the 街道 dashboard.
    TenantDashboard {
        tenant: String,
    },
    /// `/tenants/{t}/inspections`
    Inspections {
        tenant: String,
    },
    /// `/tenants/{t}/inspections/{i}`: one inspection, its commands and its report.
    Inspection {
        tenant: String,
        inspection: String,
    },
    /// `/tenants/{t}/ledger`: 整改台账.
    Ledger {
        tenant: String,
    },
    /// `/tenants/{t}/ledger-import`: importing an existing 整改台账 (sub-district admins).
    LedgerImport {
        tenant: String,
    },
    /// `/tenants/{t}/inspections/{i}/findings/{f}`: one finding and its rectification (整改).
    Finding {
        tenant: String,
        inspection: String,
        finding: String,
    },
    /// `/tenants/{t}/communities`
    Communities {
        tenant: String,
    },
    /// `/tenants/{t}/checklists`
    Checklists {
        tenant: String,
    },
    /// `/tenants/{t}/users`
    Users {
        tenant: String,
    },
    /// `/tenants/{t}/my-findings`: a community officer's findings.
    MyFindings {
        tenant: String,
    },
    /// `/tenants/{t}/self-inspections`: 自查报告 (community officers write theirs; the sub-district reads all).
    SelfInspections {
        tenant: String,
    },
    /// `/districts/{d}`: the district dashboard.
    District {
        district: String,
    },
    /// `/audit`: the auditor's event timeline and chain verification.
    Audit,
    /// `/audit/tenants/{t}`: one sub-district's event timeline (`?stream=` filters it), chain and diff.
    AuditTenant {
        tenant: String,
    },
    /// `/platform`: districts and sub-districts (platform admin).
    Platform,
    /// `/account`: one's own password and second factor (everyone).
    Account,
    /// `/accounts`: the platform's accounts and the way to every other (system and security
    /// administrators).
    Accounts,
    /// `/accounts/districts/{d}`: a district's accounts.
    DistrictUsers {
        district: String,
    },
    /// `/security/audit`: the security audit log (audit administrator).
    SecurityAudit,
    /// `/security/policy`: the security policy (security administrator).
    SecurityPolicy,
    /// `/security/personal-data`: personal data and its erasure (security administrator).
    PersonalData,
    /// `/notifications`: one's own notifications (消息中心; the bell in the header leads here).
    Notifications,
    /// `/tenants/{t}/notify`: reminder settings, outbound channels and the delivery log (sub-district admins).
    NotifySettings {
        tenant: String,
    },
    NotFound {
        path: String,
    },
}

fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Route {
    /// The route of a path (query and fragment ignored, a trailing slash tolerated).
    pub fn parse(path: &str) -> Route {
        let path = path.split(['?', '#']).next().unwrap_or("");
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let t = |s: &str| s.to_owned();
        match parts.as_slice() {
            [] => Route::Home,
            ["login"] => Route::Login,
            ["audit"] => Route::Audit,
            ["audit", "tenants", id] if is_id(id) => Route::AuditTenant { tenant: t(id) },
            ["platform"] => Route::Platform,
            ["account"] => Route::Account,
            ["accounts"] => Route::Accounts,
            ["accounts", "districts", id] if is_id(id) => Route::DistrictUsers { district: t(id) },
            ["security", "audit"] => Route::SecurityAudit,
            ["security", "policy"] => Route::SecurityPolicy,
            ["security", "personal-data"] => Route::PersonalData,
            ["notifications"] => Route::Notifications,
            ["tenants", id] if is_id(id) => Route::TenantDashboard { tenant: t(id) },
            ["tenants", id, page] if is_id(id) => match *page {
                "inspections" => Route::Inspections { tenant: t(id) },
                "ledger" => Route::Ledger { tenant: t(id) },
                "ledger-import" => Route::LedgerImport { tenant: t(id) },
                "communities" => Route::Communities { tenant: t(id) },
                "checklists" => Route::Checklists { tenant: t(id) },
                "users" => Route::Users { tenant: t(id) },
                "my-findings" => Route::MyFindings { tenant: t(id) },
                "self-inspections" => Route::SelfInspections { tenant: t(id) },
                "notify" => Route::NotifySettings { tenant: t(id) },
                _ => Route::NotFound { path: path.to_owned() },
            },
            ["tenants", id, "inspections", i] if is_id(id) && is_id(i) => {
                Route::Inspection { tenant: t(id), inspection: t(i) }
            }
            ["tenants", id, "inspections", i, "findings", f] if is_id(id) && is_id(i) && is_id(f) => {
                Route::Finding { tenant: t(id), inspection: t(i), finding: t(f) }
            }
            ["districts", id] if is_id(id) => Route::District { district: t(id) },
            _ => Route::NotFound { path: path.to_owned() },
        }
    }

    pub fn path(&self) -> String {
        match self {
            Route::Home => "/".into(),
            Route::Login => "/login".into(),
            Route::TenantDashboard { tenant } => format!("/tenants/{tenant}"),
            Route::Inspections { tenant } => format!("/tenants/{tenant}/inspections"),
            Route::Inspection { tenant, inspection } => format!("/tenants/{tenant}/inspections/{inspection}"),
            Route::Ledger { tenant } => format!("/tenants/{tenant}/ledger"),
            Route::LedgerImport { tenant } => format!("/tenants/{tenant}/ledger-import"),
            Route::Finding { tenant, inspection, finding } => {
                format!("/tenants/{tenant}/inspections/{inspection}/findings/{finding}")
            }
            Route::Communities { tenant } => format!("/tenants/{tenant}/communities"),
            Route::Checklists { tenant } => format!("/tenants/{tenant}/checklists"),
            Route::Users { tenant } => format!("/tenants/{tenant}/users"),
            Route::MyFindings { tenant } => format!("/tenants/{tenant}/my-findings"),
            Route::SelfInspections { tenant } => format!("/tenants/{tenant}/self-inspections"),
            Route::District { district } => format!("/districts/{district}"),
            Route::Audit => "/audit".into(),
            Route::AuditTenant { tenant } => format!("/audit/tenants/{tenant}"),
            Route::Platform => "/platform".into(),
            Route::Account => "/account".into(),
            Route::Accounts => "/accounts".into(),
            Route::DistrictUsers { district } => format!("/accounts/districts/{district}"),
            Route::SecurityAudit => "/security/audit".into(),
            Route::SecurityPolicy => "/security/policy".into(),
            Route::PersonalData => "/security/personal-data".into(),
            Route::Notifications => "/notifications".into(),
            Route::NotifySettings { tenant } => format!("/tenants/{tenant}/notify"),
            Route::NotFound { path } => path.clone(),
        }
    }

    /// The page's name in the menu, the `<title>` and the heading.
    pub fn title(&self) -> &'static str {
        match self {
            Route::Home => "首页",
            Route::Login => "登录",
            Route::TenantDashboard { .. } => "街道首页",
            Route::Inspections { .. } => "督查",
            Route::Inspection { .. } => "督查详情",
            Route::Ledger { .. } => "整改台账",
            Route::LedgerImport { .. } => "导入整改台账",
            Route::Finding { .. } => "问题整改",
            Route::Communities { .. } => "社区",
            Route::Checklists { .. } => "考核细则",
            Route::Users { .. } => "用户与角色",
            Route::MyFindings { .. } => "我的问题",
            Route::SelfInspections { .. } => "自查报告",
            Route::District { .. } => "全区概览",
            Route::Audit | Route::AuditTenant { .. } => "审计",
            Route::Platform => "平台管理",
            Route::Account => "账号安全",
            Route::Accounts => "账号管理",
            Route::DistrictUsers { .. } => "区级账号",
            Route::SecurityAudit => "安全审计",
            Route::SecurityPolicy => "安全策略",
            Route::PersonalData => "个人信息保护",
            Route::Notifications => "消息中心",
            Route::NotifySettings { .. } => "提醒与推送",
            Route::NotFound { .. } => "页面不存在",
        }
    }

    /// The `page_id` of the menu entry this page belongs to (a detail page lights up its list's
    /// entry: 督查详情 → 督查).
    pub fn nav_id(&self) -> &'static str {
        match self {
            Route::Inspection { .. } => "inspections",
            Route::LedgerImport { .. } => "ledger",
            other => other.page_id(),
        }
    }

    /// The stable short name used in `data-testid="nav-…"` and `data-page="…"`.
    pub fn page_id(&self) -> &'static str {
        match self {
            Route::Home => "home",
            Route::Login => "login",
            Route::TenantDashboard { .. } => "dashboard",
            Route::Inspections { .. } => "inspections",
            Route::Inspection { .. } => "inspection",
            Route::Ledger { .. } => "ledger",
            Route::LedgerImport { .. } => "ledger-import",
            Route::Finding { .. } => "finding",
            Route::Communities { .. } => "communities",
            Route::Checklists { .. } => "checklists",
            Route::Users { .. } => "users",
            Route::MyFindings { .. } => "my-findings",
            Route::SelfInspections { .. } => "self-inspections",
            Route::District { .. } => "district",
            Route::Audit | Route::AuditTenant { .. } => "audit",
            Route::Platform => "platform",
            Route::Account => "account",
            Route::Accounts | Route::DistrictUsers { .. } => "accounts",
            Route::SecurityAudit => "security-audit",
            Route::SecurityPolicy => "security-policy",
            Route::PersonalData => "personal-data",
            Route::Notifications => "notifications",
            Route::NotifySettings { .. } => "notify",
            Route::NotFound { .. } => "not-found",
        }
    }
}

/// The menu of a user: the pages of each of their grants, in grant order, without duplicates.
pub fn nav_for(grants: &[GrantView]) -> Vec<Route> {
    let mut out: Vec<Route> = Vec::new();
    for g in grants {
        let tenant = g.scope.tenant_id.clone();
        let district = g.scope.district_id.clone();
        let pages: Vec<Route> = match (g.role.as_str(), tenant, district) {
            ("platform_admin", _, _) => vec![Route::Platform],
            ("system_admin", _, _) => vec![Route::Accounts],
            ("security_admin", _, _) => vec![Route::Accounts, Route::SecurityPolicy, Route::PersonalData],
            ("audit_admin", _, _) => vec![Route::SecurityAudit],
            ("subdistrict_admin", Some(t), _) => vec![
                Route::TenantDashboard { tenant: t.clone() },
                Route::Inspections { tenant: t.clone() },
                Route::Ledger { tenant: t.clone() },
                Route::SelfInspections { tenant: t.clone() },
                Route::Communities { tenant: t.clone() },
                Route::Checklists { tenant: t.clone() },
                Route::Users { tenant: t.clone() },
                Route::NotifySettings { tenant: t },
            ],
            ("inspector", Some(t), _) => vec![
                Route::TenantDashboard { tenant: t.clone() },
                Route::Inspections { tenant: t.clone() },
                Route::Ledger { tenant: t.clone() },
                Route::SelfInspections { tenant: t },
            ],
            ("community_officer", Some(t), _) => {
                vec![Route::MyFindings { tenant: t.clone() }, Route::SelfInspections { tenant: t }]
            }
            ("district_officer", _, Some(d)) => vec![Route::District { district: d }],
            ("auditor", Some(t), _) => vec![Route::TenantDashboard { tenant: t }, Route::Audit],
            ("auditor", None, Some(d)) => vec![Route::District { district: d }, Route::Audit],
            _ => vec![],
        };
        for p in pages {
            if !out.iter().any(|o| o.page_id() == p.page_id()) {
                out.push(p);
            }
        }
    }
    out
}

/// The district dashboard a user with a district-wide role (district officer, auditor) came from
/// when they look at one sub-district's pages (`/tenants/{t}…`, drill-down): the "back" link.
pub fn district_back_for(grants: &[GrantView], route: &Route) -> Option<Route> {
    let tenant_page = matches!(
        route,
        Route::TenantDashboard { .. }
            | Route::Inspections { .. }
            | Route::Inspection { .. }
            | Route::Ledger { .. }
            | Route::SelfInspections { .. }
            | Route::Communities { .. }
            | Route::Checklists { .. }
            | Route::Users { .. }
    );
    if !tenant_page {
        return None;
    }
    grants.iter().find_map(|g| match (g.role.as_str(), &g.scope.tenant_id, &g.scope.district_id) {
        ("district_officer" | "auditor", None, Some(d)) => Some(Route::District { district: d.clone() }),
        _ => None,
    })
}

/// Where `/` leads a user: the first page of their menu (or a page that says they have no role).
pub fn home_for(grants: &[GrantView]) -> Option<Route> {
    nav_for(grants).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ducha_events::api::ScopeView;

    fn grant(role: &str, kind: &str, district: Option<&str>, tenant: Option<&str>) -> GrantView {
        GrantView {
            role: role.into(),
            role_name: String::new(),
            scope: ScopeView {
                kind: kind.into(),
                district_id: district.map(Into::into),
                tenant_id: tenant.map(Into::into),
                community_id: None,
                name: String::new(),
            },
        }
    }

    #[test]
    fn every_route_parses_back_from_its_path() {
        let t = || "xxjd".to_owned();
        let routes = [
            Route::Home,
            Route::Login,
            Route::TenantDashboard { tenant: t() },
            Route::Inspections { tenant: t() },
            Route::Inspection { tenant: t(), inspection: "2023-ideology".into() },
            Route::Ledger { tenant: t() },
            Route::Finding { tenant: t(), inspection: "2023-ideology".into(), finding: "xx-2023-f2".into() },
            Route::Communities { tenant: t() },
            Route::Checklists { tenant: t() },
            Route::Users { tenant: t() },
            Route::MyFindings { tenant: t() },
            Route::SelfInspections { tenant: t() },
            Route::District { district: "xxq".into() },
            Route::Audit,
            Route::AuditTenant { tenant: t() },
            Route::Platform,
            Route::Notifications,
            Route::NotifySettings { tenant: t() },
        ];
        for r in routes {
            assert_eq!(Route::parse(&r.path()), r, "{}", r.path());
        }
        assert_eq!(Route::parse("/tenants/xxjd/"), Route::TenantDashboard { tenant: t() });
        assert_eq!(Route::parse("/tenants/xxjd/ledger?page=2#top"), Route::Ledger { tenant: t() });
    }

    #[test]
    fn an_inspection_belongs_to_the_inspections_menu_entry() {
        let r = Route::parse("/tenants/xxjd/inspections/2023-ideology");
        assert_eq!(r, Route::Inspection { tenant: "xxjd".into(), inspection: "2023-ideology".into() });
        assert_eq!((r.page_id(), r.nav_id()), ("inspection", "inspections"));
        assert_eq!(Route::Ledger { tenant: "xxjd".into() }.nav_id(), "ledger");
        assert!(matches!(Route::parse("/tenants/xxjd/inspections/a%20b"), Route::NotFound { .. }));
    }

    #[test]
    fn unknown_paths_and_bad_ids_are_not_found() {
        for p in ["/nope", "/tenants/xxjd/nope", "/tenants/a%20b", "/tenants/x/y/z"] {
            assert!(matches!(Route::parse(p), Route::NotFound { .. }), "{p}");
        }
    }

    #[test]
    fn each_role_gets_its_own_menu() {
        let ids = |g: &[GrantView]| nav_for(g).iter().map(Route::page_id).collect::<Vec<_>>();
        let admin = [grant("subdistrict_admin", "tenant", Some("xxq"), Some("xxjd"))];
        assert_eq!(
            ids(&admin),
            ["dashboard", "inspections", "ledger", "self-inspections", "communities", "checklists", "users", "notify"]
        );
        assert_eq!(home_for(&admin), Some(Route::TenantDashboard { tenant: "xxjd".into() }));
        let officer = [grant("district_officer", "district", Some("xxq"), None)];
        assert_eq!(nav_for(&officer), [Route::District { district: "xxq".into() }]);
        let auditor = [grant("auditor", "district", Some("xxq"), None)];
        assert_eq!(ids(&auditor), ["district", "audit"]);
        let community = [grant("community_officer", "community", Some("xxq"), Some("xxjd"))];
        assert_eq!(ids(&community), ["my-findings", "self-inspections"]);
        assert_eq!(ids(&[grant("platform_admin", "platform", None, None)]), ["platform"]);
        // Two grants: no page twice.
        let both = [admin[0].clone(), grant("inspector", "tenant", Some("xxq"), Some("xxjd"))];
        assert_eq!(ids(&both).len(), 8);
        assert_eq!(home_for(&[]), None);
    }

    #[test]
    fn district_users_get_back_from_a_sub_district() {
        let xxjd = Route::TenantDashboard { tenant: "xxjd".into() };
        let back = Some(Route::District { district: "xxq".into() });
        assert_eq!(district_back_for(&[grant("district_officer", "district", Some("xxq"), None)], &xxjd), back);
        assert_eq!(district_back_for(&[grant("auditor", "district", Some("xxq"), None)], &xxjd), back);
        let admin = [grant("subdistrict_admin", "tenant", Some("xxq"), Some("xxjd"))];
        assert_eq!(district_back_for(&admin, &xxjd), None);
        let officer = [grant("district_officer", "district", Some("xxq"), None)];
        assert_eq!(district_back_for(&officer, &Route::District { district: "xxq".into() }), None);
        assert_eq!(Route::parse("/audit/tenants/xxjd?stream=tenant").page_id(), "audit");
    }
}
