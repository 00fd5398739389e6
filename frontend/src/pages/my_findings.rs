//! 我的问题: a community officer's findings (`GET /tenants/{t}/ledger`, which the server confines to
//! their community), the ones needing action first; each opens in place ([`FindingPanel`]) to
//! report progress with evidence (multipart upload, then the report citing the SHA-256) and to
//! submit for verification (提交销号).

use crate::components::{Empty, ErrorBox, Link, Loading};
use crate::format;
use crate::pages::finding::FindingPanel;
use crate::route::Route;
use crate::state::use_app;
use crate::warning;
use ducha_events::projection::{LedgerPage, LedgerRow, RectificationStatus};
use leptos::prelude::*;

/// Needs the officer now: assigned, in progress or returned (then submitted, then closed ones).
fn rank(s: RectificationStatus) -> u8 {
    use RectificationStatus::*;
    match s {
        Returned => 0,
        Assigned | InProgress => 1,
        Submitted => 2,
        Unassigned => 3,
        Verified | Dismissed => 4,
    }
}

#[component]
pub fn MyFindingsPage(tenant: String) -> impl IntoView {
    let st = use_app();
    let reload = RwSignal::new(0u32);
    let t = tenant.clone();
    let data = LocalResource::new(move || {
        reload.track();
        st.api.get::<LedgerPage>(&format!("/tenants/{t}/ledger?sort=deadline&page_size=500"))
    });
    let open = RwSignal::new(None::<String>);
    let changed = Callback::new(move |_: ()| reload.update(|n| *n += 1));
    view! {
        <section class="page" data-page="my-findings">
            <div class="page-head"><h1>"我的问题"</h1></div>
            <p class="muted">"本社区需要整改的问题。点击“办理”报送整改进展（可上传佐证材料），整改完成后提交销号申请，由街道审核。"</p>
            {move || match data.get() {
                None => view! { <Loading/> }.into_any(),
                Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                Some(Ok(page)) if page.rows.is_empty() => view! {
                    <Empty message="本社区暂时没有需要整改的问题" hint="街道督查后交办的问题会出现在这里；如有疑问请联系街道党政办。"/>
                }.into_any(),
                Some(Ok(page)) => {
                    let mut rows = page.rows;
                    rows.sort_by_key(|r| rank(r.status));
                    let tenant = tenant.clone();
                    view! {
                        <ul class="my-findings">
                            {rows.into_iter().map(|r| item(&tenant, r, open, changed)).collect_view()}
                        </ul>
                    }.into_any()
                }
            }}
        </section>
    }
}

fn item(tenant: &str, r: LedgerRow, open: RwSignal<Option<String>>, changed: Callback<()>) -> impl IntoView {
    let id = r.finding_id.as_str().to_owned();
    let inspection = r.source.inspection_id.as_ref().map(|i| i.as_str().to_owned()).unwrap_or_default();
    let detail_path =
        Route::Finding { tenant: tenant.to_owned(), inspection: inspection.clone(), finding: id.clone() }.path();
    let is_open = {
        let id = id.clone();
        move || open.get().as_deref() == Some(id.as_str())
    };
    let toggle = {
        let id = id.clone();
        move |_| open.update(|o| *o = if o.as_deref() == Some(id.as_str()) { None } else { Some(id.clone()) })
    };
    let deadline = r.deadline.map(format::date).unwrap_or_else(|| "未定".into());
    let tenant = tenant.to_owned();
    let open_now = is_open.clone();
    let item_id = id.clone();
    view! {
        <li class="my-finding" data-testid="my-findings-item" data-finding=item_id data-status=r.status.code()>
            <div class="my-finding-head">
                <span class=warning::badge_class(r.warning) data-testid=r.warning.map(|w| format!("warning-{}", w.code()))>
                    {warning::badge_label(r.warning)}
                </span>
                <strong>{r.title.clone()}</strong>
                <span class="badge badge-status" data-testid="my-findings-status">{r.status_name.clone()}</span>
            </div>
            <p class="muted">{format!("{} · 整改时限 {} · {}", r.category_name, deadline, r.measure.clone().unwrap_or_else(|| "待街道交办整改措施".into()))}</p>
            <div class="my-finding-actions">
                <button type="button" class="primary" data-testid="my-findings-open" on:click=toggle>
                    {move || if is_open() { "收起" } else { "办理" }}
                </button>
                <Link to=detail_path testid="my-findings-detail">"详情"</Link>
            </div>
            {move || open_now().then(|| view! {
                <div class="my-finding-panel">
                    <FindingPanel tenant=tenant.clone() inspection=inspection.clone() finding=id.clone() on_change=changed/>
                </div>
            })}
        </li>
    }
}
