//! 全区概览 (district officers, district auditors, the platform admin): `GET /districts/{d}/rollup`
//! as a table per sub-district with totals, charts, `GET /districts/{d}/rankings`, a year
//! selector, drill-down into a sub-district's dashboard, and the 通报 (circular) downloads.

use crate::audit_text::{circular_file_name, score, year_choices};
use crate::chart::Bar;
use crate::components::{BarChart, Empty, ErrorBox, Link, Loading};
use crate::format;
use crate::problem::{ApiError, with_query};
use crate::route::Route;
use crate::state::use_app;
use chrono::Datelike;
use ducha_events::projection::{DistrictRollup, RankEntry, RollupMetrics};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Deserialize;

/// `GET /districts/{d}/rankings` (the backend's `DistrictRankings`).
#[derive(Debug, Clone, Deserialize)]
struct Rankings {
    by_score: Vec<RankEntry>,
    by_completion: Vec<RankEntry>,
}

fn this_year() -> i32 {
    format::from_epoch_millis(js_sys::Date::now()).map_or(2024, |t| t.year())
}

fn year_query(path: &str, year: Option<i32>) -> String {
    match year {
        Some(y) => with_query(path, "year", &y.to_string()),
        None => path.to_owned(),
    }
}

/// The error of a district read; a 403 says plainly that this account may not look here.
pub fn forbidden_or_error(e: ApiError, what: &'static str) -> AnyView {
    if e.status == 403 {
        view! {
            <div class="state state-error" role="alert" data-testid="error" data-code=e.code.clone()>
                <strong>"无权访问"</strong>
                <p>{format!("您的账号没有查看{what}的权限。如需查看，请联系区委宣传部或平台管理员。")}</p>
                <Link to="/">"返回我的首页"</Link>
            </div>
        }
        .into_any()
    } else {
        view! { <ErrorBox error=e/> }.into_any()
    }
}

#[component]
pub fn DistrictPage(district: String) -> impl IntoView {
    let st = use_app();
    let year = RwSignal::new(None::<i32>);
    // Years seen in any answer so far (the all-years answer lists them all in `by_year`).
    let known_years = RwSignal::new(Vec::<i32>::new());
    let d = district.clone();
    let rollup = LocalResource::new(move || {
        st.api.get::<DistrictRollup>(&year_query(&format!("/districts/{d}/rollup"), year.get()))
    });
    let d = district.clone();
    let rankings = LocalResource::new(move || {
        st.api.get::<Rankings>(&year_query(&format!("/districts/{d}/rankings"), year.get()))
    });
    Effect::new(move |_| {
        if let Some(Ok(r)) = rollup.get() {
            known_years.update(|k| {
                for y in r.by_year.iter().map(|y| y.year) {
                    if !k.contains(&y) {
                        k.push(y);
                    }
                }
            });
        }
    });
    let on_year = move |ev: leptos::ev::Event| year.set(event_target_value(&ev).parse::<i32>().ok());
    let options = move || {
        let now = this_year();
        let first = known_years.get().into_iter().min();
        year_choices(now, first)
            .into_iter()
            .map(|y| {
                view! { <option value=y.to_string() selected=move || year.get() == Some(y)>{format!("{y} 年")}</option> }
            })
            .collect_view()
    };
    let name = Signal::derive(move || match rollup.get() {
        Some(Ok(r)) => r.district_name,
        _ => String::new(),
    });
    view! {
        <section class="page" data-page="district">
            <header class="page-head">
                <h1>{move || format!("{} · 全区概览", name.get())}</h1>
                <label class="district-year">
                    <span>"年度"</span>
                    <select data-testid="district-year" on:change=on_year>
                        <option value="" selected=move || year.get().is_none()>"全部年度"</option>
                        {options}
                    </select>
                </label>
                <CircularButtons district=district.clone() year=year name=name/>
            </header>
            {move || match rollup.get() {
                None => view! { <Loading/> }.into_any(),
                Some(Err(e)) => forbidden_or_error(e, "该区全区概览"),
                Some(Ok(r)) => overview(r).into_any(),
            }}
            {move || match (rollup.get(), rankings.get()) {
                (Some(Ok(_)), Some(Ok(k))) => ranking_view(k).into_any(),
                (Some(Ok(_)), Some(Err(e))) => view! { <ErrorBox error=e/> }.into_any(),
                _ => ().into_any(),
            }}
        </section>
    }
}

/// 通报 as Excel or Word: fetched with the bearer token (a plain link cannot carry it), then saved.
#[component]
fn CircularButtons(district: String, year: RwSignal<Option<i32>>, name: Signal<String>) -> impl IntoView {
    let st = use_app();
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<ApiError>);
    let download = move |ext: &'static str| {
        let district = district.clone();
        move |_| {
            if busy.get_untracked() {
                return;
            }
            busy.set(true);
            error.set(None);
            let y = year.get_untracked();
            let path = with_query(&year_query(&format!("/districts/{district}/circular"), y), "format", ext);
            let file = circular_file_name(&name.get_untracked(), y, ext);
            spawn_local(async move {
                // With the bearer token, as of the global "as of"; saved through an object URL.
                if let Err(e) = st.api.download(&path, &file).await {
                    error.set(Some(e));
                }
                busy.set(false);
            });
        }
    };
    view! {
        <div class="actions circular-actions">
            <button type="button" data-testid="action-download-circular-xlsx" disabled=move || busy.get() on:click=download("xlsx")>
                "下载通报（Excel）"
            </button>
            <button type="button" class="secondary" data-testid="action-download-circular-docx" disabled=move || busy.get() on:click=download("docx")>
                "下载通报（Word）"
            </button>
            {move || busy.get().then(|| view! { <span class="muted">"正在生成…"</span> })}
            {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
        </div>
    }
}

fn statuses(m: &RollupMetrics) -> String {
    let parts: Vec<String> =
        m.rectifications_by_status.iter().filter(|s| s.count > 0).map(|s| format!("{} {}", s.name, s.count)).collect();
    if parts.is_empty() { "—".to_owned() } else { parts.join(" · ") }
}

fn cells(m: &RollupMetrics) -> impl IntoView + use<> {
    let overdue_class = if m.overdue > 0 { "num overdue" } else { "num" };
    view! {
        <td class="num" data-col="inspections">{m.inspections}</td>
        <td class="num" data-col="communities_covered">{m.communities_covered}</td>
        <td class="num" data-col="findings">{m.findings}</td>
        <td class="statuses" data-col="statuses">{statuses(m)}</td>
        <td class="num" data-col="completion_rate" title=format!("已销号 {} / 应整改 {}", m.completion_rate.done, m.completion_rate.of)>
            {format::percent(m.completion_rate.percent)}
        </td>
        <td class=overdue_class data-col="overdue">{m.overdue}</td>
        <td class="num" data-col="average_score" title=format!("{} 个社区得分的平均", m.scores_counted)>{score(m.average_score)}</td>
    }
}

fn overview(r: DistrictRollup) -> impl IntoView {
    if r.rows.is_empty() {
        return view! {
            <Empty message="本区还没有街道" hint="请平台管理员在“平台管理”中为本区添加街道，添加后这里会汇总各街道的督查和整改情况。"/>
        }
        .into_any();
    }
    let rows = r
        .rows
        .iter()
        .map(|row| {
            let to = Route::TenantDashboard { tenant: row.tenant_id.to_string() }.path();
            let name = row.name.clone();
            view! {
                <tr data-testid="district-row" data-tenant=row.tenant_id.to_string()>
                    <th scope="row">
                        <Link to=to testid=format!("district-drill-{}", row.tenant_id)>{name}</Link>
                    </th>
                    {cells(&row.metrics)}
                </tr>
            }
        })
        .collect_view();
    let completion: Vec<Bar> = r
        .rows
        .iter()
        .map(|row| Bar {
            label: row.name.clone(),
            value: row.metrics.completion_rate.percent.unwrap_or(0.0),
            tooltip: format!(
                "{}：整改完成率 {}（已销号 {} / 应整改 {}）",
                row.name,
                format::percent(row.metrics.completion_rate.percent),
                row.metrics.completion_rate.done,
                row.metrics.completion_rate.of
            ),
        })
        .collect();
    let categories: Vec<Bar> = r
        .by_category
        .iter()
        .map(|c| Bar {
            label: c.name.clone(),
            value: c.findings as f64,
            tooltip: format!(
                "{}：{} 个问题，已销号 {}，未销号 {}，逾期 {}",
                c.name, c.findings, c.verified, c.open, c.overdue
            ),
        })
        .collect();
    let months: Vec<Bar> = r
        .by_month
        .iter()
        .map(|m| Bar {
            label: m.month.clone(),
            value: m.findings_recorded as f64,
            tooltip: format!(
                "{}：新增问题 {} 个，销号整改 {} 项",
                m.month, m.findings_recorded, m.rectifications_verified
            ),
        })
        .collect();
    let verified: Vec<Bar> = r
        .by_month
        .iter()
        .map(|m| Bar {
            label: m.month.clone(),
            value: m.rectifications_verified as f64,
            tooltip: format!("{}：销号整改 {} 项", m.month, m.rectifications_verified),
        })
        .collect();
    let no_findings = r.totals.findings == 0 && r.totals.inspections == 0;
    let year = r.year.map_or_else(|| "全部年度".to_owned(), |y| format!("{y} 年"));
    view! {
        <p class="muted">{format!("{year} · 统计日期 {} · 点击街道名称查看该街道首页", format::date(r.today))}</p>
        <div class="table-wrap">
            <table class="table district-table" data-testid="district-table">
                <thead>
                    <tr>
                        <th scope="col">"街道"</th>
                        <th scope="col" class="num">"督查次数"</th>
                        <th scope="col" class="num">"覆盖社区"</th>
                        <th scope="col" class="num">"发现问题"</th>
                        <th scope="col">"整改状态"</th>
                        <th scope="col" class="num">"完成率"</th>
                        <th scope="col" class="num">"逾期"</th>
                        <th scope="col" class="num">"平均得分"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
                <tfoot>
                    <tr data-testid="district-total">
                        <th scope="row">"全区合计"</th>
                        {cells(&r.totals)}
                    </tr>
                </tfoot>
            </table>
        </div>
        {if no_findings {
            view! { <Empty message="所选年度还没有督查记录" hint="请选择其他年度，或等待各街道制定并开展本年度督查。"/> }.into_any()
        } else {
            view! {
                <div class="charts">
                    <BarChart title="各街道整改完成率（%）" bars=completion testid="chart-completion-by-subdistrict"/>
                    <BarChart title="问题类别分布（全区）" bars=categories testid="chart-findings-by-category"/>
                    <BarChart title="每月新增问题" bars=months testid="chart-monthly-findings"/>
                    <BarChart title="每月销号整改" bars=verified testid="chart-monthly-verified"/>
                </div>
            }.into_any()
        }}
    }
    .into_any()
}

fn ranking_list(
    title: &'static str,
    testid: &'static str,
    entries: Vec<RankEntry>,
    unit: fn(f64) -> String,
) -> impl IntoView {
    let items = entries
        .into_iter()
        .map(|e| {
            let rank = e.rank.map_or_else(|| "—".to_owned(), |r| format!("第 {r} 名"));
            let value = e.value.map_or_else(|| "暂无数据".to_owned(), unit);
            view! {
                <li data-tenant=e.tenant_id.to_string()>
                    <span class="rank">{rank}</span>
                    <span class="rank-name">{e.name}</span>
                    <span class="rank-value">{value}</span>
                </li>
            }
        })
        .collect_view();
    view! {
        <div class="ranking">
            <h2>{title}</h2>
            <ol class="ranking-list" data-testid=testid>{items}</ol>
        </div>
    }
}

fn ranking_view(k: Rankings) -> impl IntoView {
    view! {
        <div class="rankings">
            {ranking_list("考核得分排名", "district-rank-score", k.by_score, |v| format!("{v:.2} 分"))}
            {ranking_list("整改完成率排名", "district-rank-completion", k.by_completion, |v| format!("{v:.1}%"))}
        </div>
    }
}
