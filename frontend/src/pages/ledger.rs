//! 整改台账: `GET /tenants/{t}/ledger` as a table, one API page at a time (at most 500 rows), with
//! filters (社区, 问题类别, 完成情况, 预警), sorting, paging and the Excel export
//! (`GET /tenants/{t}/ledger.xlsx` with the same filters, fetched with the token as a blob).

use crate::components::{Empty, ErrorBox, Link, Loading};
use crate::format;
use crate::problem::ApiError;
use crate::rectify::LedgerQuery;
use crate::route::Route;
use crate::state::use_app;
use crate::warning;
use ducha_events::projection::{
    CategoryEntry, CommunityEntry, LedgerPage as LedgerData, LedgerRow, RectificationStatus, WarningLevel,
};
use leptos::prelude::*;
use leptos::task::spawn_local;

const SORTS: [(&str, &str); 4] =
    [("recorded", "序号"), ("community", "社区"), ("deadline", "整改时限"), ("warning", "预警")];

#[component]
pub fn LedgerPage(tenant: String) -> impl IntoView {
    let st = use_app();
    // The filters live in the address: a link opens the same view, and every change is written back.
    let q = RwSignal::new(LedgerQuery::from_search(&st.router.search()));
    Effect::new(move |_| st.router.set_query(&q.with(LedgerQuery::search)));
    // Live: refetch the page when the tenant's event stream reports a change.
    crate::live::use_live(&tenant);
    let t = tenant.clone();
    let data = LocalResource::new(move || {
        let _ = st.live.revision.get();
        let query = q.get().query();
        st.api.get::<LedgerData>(&format!("/tenants/{t}/ledger?{query}"))
    });
    let t = tenant.clone();
    let communities =
        LocalResource::new(move || st.api.get::<Vec<CommunityEntry>>(&format!("/tenants/{t}/communities")));
    let t = tenant.clone();
    let categories = LocalResource::new(move || st.api.get::<Vec<CategoryEntry>>(&format!("/tenants/{t}/categories")));

    let set = move |apply: fn(&mut LedgerQuery, String)| {
        move |ev: leptos::ev::Event| {
            let value = event_target_value(&ev);
            q.update(|q| {
                apply(q, value);
                q.page = 1;
            });
        }
    };
    let community_options = move || {
        communities
            .get()
            .and_then(|r| r.ok())
            .unwrap_or_default()
            .into_iter()
            .map(|c| {
                let id = c.community_id.as_str().to_owned();
                let selected = q.with_untracked(|q| q.community == id);
                view! { <option value=id selected=selected>{c.name}</option> }
            })
            .collect_view()
    };
    let category_options = move || {
        categories
            .get()
            .and_then(|r| r.ok())
            .unwrap_or_default()
            .into_iter()
            .map(|c| {
                let selected = q.with_untracked(|q| q.category == c.code);
                view! { <option value=c.code selected=selected>{c.name}</option> }
            })
            .collect_view()
    };
    let initial = q.get_untracked();
    let status_options = RectificationStatus::ALL
        .iter()
        .map(|s| view! { <option value=s.code() selected=initial.status == s.code()>{s.name_zh()}</option> })
        .collect_view();
    let warning_options = WarningLevel::ALL
        .iter()
        .map(|w| {
            view! {
                <option value=w.code() selected=initial.warning == w.code()>{warning::badge_label(Some(*w))}</option>
            }
        })
        .collect_view();
    let size_options = [50u32, 100, 200, 500]
        .map(|n| view! { <option value=n.to_string() selected=initial.page_size == n>{format!("{n} 行")}</option> })
        .into_iter()
        .collect_view();

    let exporting = RwSignal::new(false);
    let export_error = RwSignal::new(None::<ApiError>);
    let t = tenant.clone();
    let export = move |_| {
        let filters = q.get_untracked().filters();
        let path = if filters.is_empty() {
            format!("/tenants/{t}/ledger.xlsx")
        } else {
            format!("/tenants/{t}/ledger.xlsx?{filters}")
        };
        exporting.set(true);
        export_error.set(None);
        spawn_local(async move {
            let result = st.api.download(&path, "整改台账.xlsx").await;
            exporting.set(false);
            export_error.set(result.err());
        });
    };

    let tenant_rows = tenant.clone();
    view! {
        <section class="page" data-page="ledger">
            <div class="page-head">
                <h1>"整改台账" <crate::live::LiveIndicator/></h1>
                {
                    let import = Route::LedgerImport { tenant: tenant.clone() }.path();
                    let t = tenant.clone();
                    let st = use_app();
                    move || {
                        let import = import.clone();
                        crate::pages::inspections::has_role(st, "subdistrict_admin", &t)
                            .then(|| view! { <Link to=import testid="action-import-ledger">"导入台账"</Link> })
                    }
                }
                <button type="button" class="primary" data-testid="action-export-ledger" on:click=export
                    disabled=move || exporting.get() title="按当前筛选条件导出 Excel">
                    {move || if exporting.get() { "正在导出…" } else { "导出Excel" }}
                </button>
            </div>
            {move || export_error.get().map(|e| view! { <ErrorBox error=e/> })}
            <div class="filters" role="search">
                <label>"社区"
                    <select data-testid="ledger-filter-community" on:change=set(|q, v| q.community = v)>
                        <option value="">"全部社区"</option>
                        {community_options}
                    </select>
                </label>
                <label>"问题类别"
                    <select data-testid="ledger-filter-category" on:change=set(|q, v| q.category = v)>
                        <option value="">"全部类别"</option>
                        {category_options}
                    </select>
                </label>
                <label>"完成情况"
                    <select data-testid="ledger-filter-status" on:change=set(|q, v| q.status = v)>
                        <option value="">"全部状态"</option>
                        {status_options}
                    </select>
                </label>
                <label>"预警"
                    <select data-testid="ledger-filter-warning" on:change=set(|q, v| q.warning = v)>
                        <option value="">"全部预警"</option>
                        {warning_options}
                    </select>
                </label>
                <label>"每页"
                    <select data-testid="ledger-page-size"
                        on:change=set(|q, v| q.page_size = v.parse().unwrap_or(50))>
                        {size_options}
                    </select>
                </label>
            </div>
            {move || match data.get() {
                None => view! { <Loading/> }.into_any(),
                Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                Some(Ok(page)) => table(tenant_rows.clone(), page, q).into_any(),
            }}
        </section>
    }
}

fn table(tenant: String, page: LedgerData, q: RwSignal<LedgerQuery>) -> impl IntoView {
    if page.total == 0 {
        let c = q.get_untracked();
        let filtered =
            !(c.community.is_empty() && c.category.is_empty() && c.status.is_empty() && c.warning.is_empty());
        let hint = if filtered {
            "没有符合筛选条件的问题，请调整或清除筛选条件。"
        } else {
            "督查中记录存在问题后，会在这里列出整改情况。请先在“督查”中记录问题。"
        };
        return view! { <Empty message="暂无整改问题" hint=hint/> }.into_any();
    }
    let current = q.get_untracked();
    let pages = current.pages(page.total);
    let sort_header = move |code: &'static str, label: &'static str| {
        let active = move || q.with(|q| q.sort == code);
        view! {
            <th aria-sort=move || if active() { "ascending" } else { "none" }>
                <button type="button" class="sort" class:active=active data-testid=format!("ledger-sort-{code}")
                    on:click=move |_| q.update(|q| { q.sort = code.to_owned(); q.page = 1; })>
                    {label}{move || if active() { " ▲" } else { "" }}
                </button>
            </th>
        }
    };
    let [s_seq, s_comm, s_dead, s_warn] = SORTS;
    let rows = page.rows.into_iter().map(|r| row(&tenant, r)).collect_view();
    let first = (u64::from(page.page) - 1) * u64::from(page.page_size) + 1;
    let shown = format!(
        "共 {} 条，第 {} / {} 页（第 {}–{} 条）",
        page.total,
        page.page,
        pages,
        first.min(page.total),
        (first + u64::from(page.page_size) - 1).min(page.total)
    );
    view! {
        <div class="table-wrap">
            <table class="ledger" data-testid="ledger-table">
                <thead>
                    <tr>
                        {sort_header(s_seq.0, s_seq.1)}
                        {sort_header(s_comm.0, s_comm.1)}
                        <th>"问题类别"</th>
                        <th>"存在问题"</th>
                        <th>"整改措施"</th>
                        <th>"责任单位/责任人"</th>
                        {sort_header(s_dead.0, s_dead.1)}
                        <th>"状态"</th>
                        {sort_header(s_warn.0, s_warn.1)}
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        <nav class="pager" aria-label="分页">
            <button type="button" data-testid="ledger-page-prev" disabled={current.page <= 1}
                on:click=move |_| q.update(|q| q.page = q.page.saturating_sub(1).max(1))>"上一页"</button>
            <span data-testid="ledger-total" data-total=page.total.to_string()>{shown}</span>
            <button type="button" data-testid="ledger-page-next" disabled={current.page >= pages}
                on:click=move |_| q.update(|q| q.page += 1)>"下一页"</button>
        </nav>
    }
    .into_any()
}

fn row(tenant: &str, r: LedgerRow) -> impl IntoView {
    let link = r.source.inspection_id.as_ref().map(|i| {
        Route::Finding {
            tenant: tenant.to_owned(),
            inspection: i.as_str().to_owned(),
            finding: r.finding_id.as_str().to_owned(),
        }
        .path()
    });
    let unit = match (r.responsible_unit.as_deref(), r.person.as_deref()) {
        (None, None) => "—".to_owned(),
        (u, p) => format!("{} / {}", u.unwrap_or("—"), p.unwrap_or("—")),
    };
    let deadline = r.deadline.map(format::date).unwrap_or_else(|| "—".into());
    let extended = r.original_deadline.map(|o| format!("原 {}", format::date(o)));
    let title = r.title.clone();
    view! {
        <tr data-testid="ledger-row" data-finding=r.finding_id.as_str().to_owned() data-status=r.status.code()>
            <td data-label="序号">{r.seq}</td>
            <td data-label="社区">{r.community.name.clone()}</td>
            <td data-label="问题类别">{r.category_name.clone()}</td>
            <td data-label="存在问题" class="cell-title">
                {match link {
                    Some(to) => view! { <Link to=to testid="ledger-open">{title}</Link> }.into_any(),
                    None => view! { <span>{title}</span> }.into_any(),
                }}
            </td>
            <td data-label="整改措施" class="cell-measure">{r.measure.clone().unwrap_or_else(|| "—".into())}</td>
            <td data-label="责任单位/责任人">{unit}</td>
            <td data-label="整改时限">{deadline}{extended.map(|e| view! { <small class="muted">" （"{e}"）"</small> })}</td>
            <td data-label="状态" data-testid="ledger-status">{r.status_name.clone()}</td>
            <td data-label="预警">
                <span class=warning::badge_class(r.warning) data-testid=r.warning.map(|w| format!("warning-{}", w.code()))>
                    {warning::badge_label(r.warning)}
                </span>
            </td>
        </tr>
    }
}
