//! 街道首页: `GET /tenants/{t}/dashboard` as cards and charts, as of the global "as of".

use crate::chart::{self, Bar};
use crate::components::{BarChart, Empty, Link, Writable, loaded};
use crate::format;
use crate::state::use_app;
use crate::warning;
use ducha_events::projection::{CommunityScorecard, TenantDashboard, WarningLevel};
use leptos::prelude::*;

#[component]
pub fn TenantDashboardPage(tenant: String) -> impl IntoView {
    let st = use_app();
    let path = format!("/tenants/{tenant}/dashboard");
    // Live: refetch whenever the tenant's event stream reports a change (not in a historical view).
    crate::live::use_live(&tenant);
    let data = LocalResource::new(move || {
        let _ = st.live.revision.get();
        st.api.get::<TenantDashboard>(&path)
    });
    let cards_path = format!("/tenants/{tenant}/scorecards");
    let scorecards = LocalResource::new(move || {
        let _ = st.live.revision.get();
        st.api.get::<Vec<CommunityScorecard>>(&cards_path)
    });
    // A write action (hidden in a historical view): only for those who plan inspections here.
    let plan_path = crate::route::Route::Inspections { tenant: tenant.clone() }.path();
    let plans = move || {
        st.me.get().is_some_and(|m| {
            m.grants.iter().any(|g| g.role == "subdistrict_admin" && g.scope.tenant_id.as_deref() == Some(&*tenant))
        })
    };
    view! {
        <section class="page" data-page="dashboard">
            {move || {
                let to = plan_path.clone();
                plans().then(move || view! {
                <Writable>
                    <div class="actions">
                        <Link to=to.clone() class=Signal::stored("button".to_owned()) testid="action-plan-inspection">
                            "制定督查计划"
                        </Link>
                    </div>
                </Writable>
                })
            }}
            {move || loaded(data.get(), dashboard)}
            {move || loaded(scorecards.get(), community_progress)}
        </section>
    }
}

fn card(name: &'static str, label: &'static str, value: String, note: String, class: &'static str) -> impl IntoView {
    view! {
        <div class=class data-testid=format!("card-{name}")>
            <div class="card-label">{label}</div>
            <div class="card-value">{value}</div>
            <div class="card-note">{note}</div>
        </div>
    }
}

fn dashboard(d: TenantDashboard) -> impl IntoView {
    let empty = d.inspections_total == 0 && d.findings_total == 0;
    let by_category: Vec<Bar> = d
        .findings_by_category
        .iter()
        .map(|c| Bar {
            label: c.name.clone(),
            value: c.count as f64,
            tooltip: format!("{}：{} 个问题", c.name, c.count),
        })
        .collect();
    let by_status: Vec<Bar> = d
        .rectifications_by_status
        .iter()
        .map(|s| Bar { label: s.name.clone(), value: s.count as f64, tooltip: format!("{}：{} 项", s.name, s.count) })
        .collect();
    let monthly = chart::monthly_bars(&d.monthly);
    let w = d.warnings;
    let badges = [
        (WarningLevel::Red, w.red),
        (WarningLevel::Yellow, w.yellow),
        (WarningLevel::Blue, w.blue),
        (WarningLevel::Green, w.green),
    ]
    .map(|(level, n)| {
        view! {
            <span class=warning::badge_class(Some(level)) data-testid=format!("warning-{}", level.code())>
                {format!("{} {n}", warning::badge_label(Some(level)))}
            </span>
        }
    });
    view! {
        <header class="page-head">
            <h1>{format!("{} · 街道首页", d.tenant_name)}</h1>
            <span class="muted">{format!("统计日期 {}", format::date(d.today))} <crate::live::LiveIndicator/></span>
        </header>
        <div class="cards">
            {card("inspections", "本年度督查", d.inspections_this_year.to_string(), format!("累计 {} 次", d.inspections_total), "card")}
            {card("communities", "覆盖社区", d.communities_covered.to_string(), format!("共 {} 个社区", d.communities_total), "card")}
            {card("findings-open", "未销号问题", d.findings_open.to_string(), format!("共 {} 个问题", d.findings_total), "card")}
            {card("findings-closed", "已销号问题", d.findings_closed.to_string(), format!("整改完成率 {}", format::percent(d.completion_rate.percent)), "card")}
            {card("overdue", "逾期整改", d.overdue.to_string(), "超过整改期限未销号".to_owned(), warning::overdue_class(d.overdue))}
        </div>
        <div class="badges" aria-label="整改预警">{badges}</div>
        {if empty {
            view! { <Empty message="还没有督查记录" hint="请先在“督查”页面制定本年度督查计划，发现的问题和整改情况会在这里汇总。"/> }.into_any()
        } else {
            view! {
                <div class="charts">
                    <BarChart title="问题类别分布" bars=by_category testid="chart-findings-by-category"/>
                    <BarChart title="整改进度" bars=by_status testid="chart-rectifications-by-status"/>
                    <BarChart title="月度趋势（新发现问题）" bars=monthly testid="chart-monthly-trend"/>
                </div>
            }.into_any()
        }}
    }
}

/// 各社区整改进度: the share of each community's findings verified (from the scorecards).
fn community_progress(cards: Vec<CommunityScorecard>) -> impl IntoView {
    (!cards.is_empty()).then(|| {
        let bars = chart::community_progress_bars(&cards);
        view! {
            <div class="charts fill">
                <BarChart title="各社区整改进度（销号率 %）" bars=bars testid="chart-progress-by-community"/>
            </div>
        }
    })
}
