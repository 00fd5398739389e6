//! 审计 (auditors): pick a sub-district of the auditor's scope, then its hash-chained event timeline
//! (`GET /tenants/{t}/events`, or one stream's `GET /tenants/{t}/streams/{s}/events` with
//! `?stream=`), paged; the chain verification (`GET /tenants/{t}/chain`); what changed between two
//! points (`GET /tenants/{t}/diff`). Everything reads as of the global "as of" when it is set.

use crate::audit_text::{
    as_of_after, before_after, diff_in_order, diff_point, event_type_zh, short_hash, status_zh, stream_label,
    stream_name, warning_zh,
};
use crate::components::{Empty, ErrorBox, Link, Loading, loaded};
use crate::format;
use crate::pages::district::forbidden_or_error;
use crate::problem::{ApiError, with_query};
use crate::route::Route;
use crate::state::use_app;
use ducha_events::api::MeResponse;
use ducha_events::projection::{ActorView, AuditSummary, CommunityRef};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Deserialize;

const PAGE: u32 = 50;

#[derive(Debug, Clone, Deserialize)]
struct TenantItem {
    tenant_id: String,
    name: String,
}

#[derive(Debug, Clone, Deserialize)]
struct DistrictItem {
    district_id: String,
}

#[derive(Debug, Clone, Deserialize)]
struct EventView {
    position: u64,
    tenant_seq: u64,
    stream: String,
    stream_version: u64,
    event_type: String,
    occurred_at: String,
    actor: ActorView,
    payload_text: String,
    prev_hash: String,
    hash: String,
}

#[derive(Debug, Clone, Deserialize)]
struct EventPage {
    events: Vec<EventView>,
    next_after: Option<u64>,
    upto_position: u64,
}

#[derive(Debug, Clone, Deserialize)]
struct ChainBreakView {
    position: u64,
    message: String,
}

#[derive(Debug, Clone, Deserialize)]
struct ChainReport {
    ok: bool,
    events: u64,
    head_hash: String,
    upto_position: u64,
    first_bad_event: Option<ChainBreakView>,
}

#[derive(Debug, Clone, Deserialize)]
struct DiffPoint {
    position: u64,
    at: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct DiffEvent {
    position: u64,
    event_type: String,
    stream: String,
    occurred_at: String,
    actor: ActorView,
}

#[derive(Debug, Clone, Deserialize)]
struct MetricChange {
    metric: String,
    name: String,
    before: i64,
    after: i64,
    delta: i64,
}

#[derive(Debug, Clone, Deserialize)]
struct LedgerChange {
    finding_id: String,
    title: String,
    community: CommunityRef,
    change: String,
    status_before: Option<String>,
    status_after: Option<String>,
    warning_before: Option<String>,
    warning_after: Option<String>,
    deadline_before: Option<String>,
    deadline_after: Option<String>,
    progress_count_before: Option<u32>,
    progress_count_after: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
struct TenantDiff {
    from: DiffPoint,
    to: DiffPoint,
    events: Vec<DiffEvent>,
    events_total: u64,
    events_truncated: bool,
    changes: Vec<MetricChange>,
    ledger_changes: Vec<LedgerChange>,
}

/// The sub-districts an auditor may read: their tenant, their district's, or every one.
async fn tenants_in_scope(me: Option<MeResponse>) -> Result<Vec<TenantItem>, ApiError> {
    let st = use_app();
    let mut out: Vec<TenantItem> = Vec::new();
    let grants = me.map(|m| m.grants).unwrap_or_default();
    for g in grants.iter().filter(|g| g.role == "auditor") {
        let found: Vec<TenantItem> = match (&g.scope.tenant_id, &g.scope.district_id) {
            (Some(t), _) => vec![TenantItem { tenant_id: t.clone(), name: g.scope.name.clone() }],
            (None, Some(d)) => st.api.get_current::<Vec<TenantItem>>(&format!("/districts/{d}/tenants")).await?,
            (None, None) => {
                let mut all = Vec::new();
                for d in st.api.get_current::<Vec<DistrictItem>>("/districts").await? {
                    all.extend(
                        st.api.get_current::<Vec<TenantItem>>(&format!("/districts/{}/tenants", d.district_id)).await?,
                    );
                }
                all
            }
        };
        for t in found {
            if !out.iter().any(|o| o.tenant_id == t.tenant_id) {
                out.push(t);
            }
        }
    }
    Ok(out)
}

/// The `?stream=` of the current path.
fn stream_of(path: &str) -> Option<String> {
    let query = path.split_once('?')?.1;
    query.split('&').find_map(|kv| kv.strip_prefix("stream=")).filter(|s| !s.is_empty()).map(str::to_owned)
}

#[component]
pub fn AuditPage(#[prop(optional)] tenant: Option<String>) -> impl IntoView {
    let st = use_app();
    let tenants = LocalResource::new(move || tenants_in_scope(st.me.get()));
    let current = tenant.clone();
    // With one sub-district in scope, `/audit` goes straight to it.
    Effect::new(move |_| {
        if let (None, Some(Ok(list))) = (&current, tenants.get())
            && list.len() == 1
        {
            st.router.replace(&Route::AuditTenant { tenant: list[0].tenant_id.clone() }.path());
        }
    });
    let selected = tenant.clone();
    let picker = move || {
        let selected = selected.clone();
        loaded(tenants.get(), move |list: Vec<TenantItem>| {
            if list.is_empty() {
                return view! { <Empty message="您的审计范围内还没有街道" hint="请联系平台管理员确认您的审计角色和范围。"/> }.into_any();
            }
            let on_change = move |ev: leptos::ev::Event| {
                let t = event_target_value(&ev);
                if !t.is_empty() {
                    st.router.navigate(&Route::AuditTenant { tenant: t }.path());
                }
            };
            let options = list
                .into_iter()
                .map(|t| {
                    let sel = selected.as_deref() == Some(t.tenant_id.as_str());
                    view! { <option value=t.tenant_id.clone() selected=sel>{format!("{}（{}）", t.name, t.tenant_id)}</option> }
                })
                .collect_view();
            view! {
                <label class="audit-tenant">
                    <span>"街道"</span>
                    <select data-testid="audit-tenant-select" on:change=on_change>
                        <option value="" selected=selected.is_none()>"请选择街道"</option>
                        {options}
                    </select>
                </label>
            }
            .into_any()
        })
    };
    view! {
        <section class="page" data-page="audit">
            <header class="page-head">
                <h1>"审计 · 事件记录"</h1>
                {picker}
            </header>
            <p class="muted">"所有时间为北京时间。右上角“历史时点”可查看过去任一时刻的状态；设置后所有页面只读。"</p>
            {match tenant {
                None => view! { <Empty message="请选择一个街道" hint="在上方选择街道后，可查看其事件时间线、哈希链校验结果和两个时点之间的变化。"/> }.into_any(),
                Some(t) => view! { <TenantAudit tenant=t/> }.into_any(),
            }}
        </section>
    }
}

#[component]
fn TenantAudit(tenant: String) -> impl IntoView {
    let st = use_app();
    let stream = Signal::derive(move || stream_of(&st.router.path()));
    // The `after` cursors of the pages before this one (empty: the first page).
    let cursors = RwSignal::new(Vec::<u64>::new());
    Effect::new(move |_| {
        let _ = stream.get();
        let _ = st.api.as_of.get();
        cursors.set(Vec::new());
    });
    let t = tenant.clone();
    let chain = LocalResource::new(move || st.api.get::<ChainReport>(&format!("/tenants/{t}/chain")));
    let t = tenant.clone();
    let summary = LocalResource::new(move || st.api.get::<AuditSummary>(&format!("/tenants/{t}/audit")));
    let t = tenant.clone();
    let events = LocalResource::new(move || {
        let after = cursors.get().last().copied().unwrap_or(0);
        let base = match stream.get() {
            Some(s) => format!("/tenants/{t}/streams/{s}/events"),
            None => format!("/tenants/{t}/events"),
        };
        let path = with_query(&with_query(&base, "after", &after.to_string()), "limit", &PAGE.to_string());
        st.api.get::<EventPage>(&path)
    });
    let t = tenant.clone();
    let stream_filter = move || {
        let t = t.clone();
        loaded(summary.get(), move |s: AuditSummary| {
            let current = stream.get_untracked();
            let on_change = move |ev: leptos::ev::Event| {
                let v = event_target_value(&ev);
                let base = Route::AuditTenant { tenant: t.clone() }.path();
                st.router.navigate(&if v.is_empty() { base } else { with_query(&base, "stream", &v) });
            };
            let options = s
                .streams
                .iter()
                .map(|x| {
                    let name = stream_name(&x.stream).to_owned();
                    let sel = current.as_deref() == Some(name.as_str());
                    view! { <option value=name.clone() selected=sel>{format!("{}（{} 个事件）", stream_label(&x.stream), x.events)}</option> }
                })
                .collect_view();
            view! {
                <label class="audit-stream">
                    <span>"事件流"</span>
                    <select data-testid="audit-stream-filter" on:change=on_change>
                        <option value="" selected=current.is_none()>{format!("全部（{} 个事件）", s.events)}</option>
                        {options}
                    </select>
                </label>
            }
        })
    };
    let tenant_for_rows = tenant.clone();
    view! {
        <div class="audit-bar">
            {move || match chain.get() {
                None => view! { <Loading/> }.into_any(),
                Some(Err(e)) => forbidden_or_error(e, "该街道的审计记录"),
                Some(Ok(c)) => chain_view(c).into_any(),
            }}
            {stream_filter}
        </div>
        <h2>"事件时间线"</h2>
        {move || {
            let tenant = tenant_for_rows.clone();
            match events.get() {
                None => view! { <Loading/> }.into_any(),
                Some(Err(e)) => forbidden_or_error(e, "该街道的审计记录"),
                Some(Ok(p)) => {
                    // The first bad event of a broken chain is marked in the timeline too.
                    let bad = match chain.get() {
                        Some(Ok(c)) => c.first_bad_event.map(|b| b.position),
                        _ => None,
                    };
                    timeline(p, cursors, tenant, bad).into_any()
                }
            }
        }}
        <h2>"两个时点之间的变化"</h2>
        <DiffForm tenant=tenant/>
    }
}

fn chain_view(c: ChainReport) -> impl IntoView {
    if c.ok {
        view! {
            <div class="chain chain-ok" data-testid="audit-chain" data-ok="true" title=format!("末端哈希 {}", c.head_hash)>
                <strong>"链完整"</strong>
                <span>{format!("共 {} 个事件校验通过（至日志位置 {}），末端哈希 {}", c.events, c.upto_position, short_hash(&c.head_hash))}</span>
            </div>
        }
        .into_any()
    } else {
        let why = c.first_bad_event.map(|b| b.message).unwrap_or_default();
        view! {
            <div class="chain chain-bad" role="alert" data-testid="audit-chain" data-ok="false">
                <strong>"链已损坏"</strong>
                <span>{format!("首个异常事件：{why}（此前 {} 个事件校验通过）", c.events)}</span>
            </div>
        }
        .into_any()
    }
}

fn timeline(p: EventPage, cursors: RwSignal<Vec<u64>>, tenant: String, bad: Option<u64>) -> impl IntoView {
    let st = use_app();
    if p.events.is_empty() && cursors.get_untracked().is_empty() {
        return view! { <Empty message="此时点之前还没有事件" hint="选择更晚的历史时点，或清除历史时点查看当前记录。"/> }.into_any();
    }
    let rows = p
        .events
        .into_iter()
        .map(|e| {
            let stream = stream_name(&e.stream).to_owned();
            let stream_href = with_query(&Route::AuditTenant { tenant: tenant.clone() }.path(), "stream", &stream);
            let at = format::rfc3339(&e.occurred_at);
            let as_of_here = as_of_after(&e.occurred_at);
            view! {
                <tr data-testid="audit-event" data-position=e.position data-type=e.event_type.clone()
                    class=if bad == Some(e.position) { "bad" } else { "" } data-bad=(bad == Some(e.position)).then_some("true")
                    title=(bad == Some(e.position)).then_some("哈希链在此事件处断裂")>
                    <td class="num">{e.tenant_seq}</td>
                    <td class="nowrap" title=e.occurred_at.clone()>{at}</td>
                    <td title=e.actor.role_name.clone()>{format!("{}（{}）", e.actor.user_id, e.actor.role_name)}</td>
                    <td title=e.event_type.clone()>
                        <details>
                            <summary>{event_type_zh(&e.event_type).to_owned()}</summary>
                            {crate::audit_text::imported_from(&e.payload_text).map(|note| view! { <small class="imported" data-testid="audit-imported">{note}</small> })}
                            <pre class="payload">{e.payload_text.clone()}</pre>
                        </details>
                    </td>
                    <td>
                        <Link to=stream_href testid="audit-stream-link">{stream_label(&e.stream)}</Link>
                        <small class="muted">{format!(" v{}", e.stream_version)}</small>
                    </td>
                    <td class="num">{e.position}</td>
                    <td class="hash" data-testid="audit-hash" title=format!("哈希 {}\n前序 {}", e.hash, e.prev_hash)>
                        <code>{short_hash(&e.hash)}</code>
                    </td>
                    <td>
                        {as_of_here.map(|t| view! {
                            <button type="button" class="link" data-testid="audit-asof-here" title="在所有页面查看此事件发生后的状态"
                                on:click=move |_| st.api.as_of.set(Some(t))>"查看此刻"</button>
                        })}
                    </td>
                </tr>
            }
        })
        .collect_view();
    let next = p.next_after;
    let has_prev = !cursors.get_untracked().is_empty();
    view! {
        <div class="table-wrap">
            <table class="table audit-table" data-testid="audit-timeline">
                <thead>
                    <tr>
                        <th scope="col" class="num">"序号"</th>
                        <th scope="col">"时间"</th>
                        <th scope="col">"操作人"</th>
                        <th scope="col">"事件"</th>
                        <th scope="col">"事件流"</th>
                        <th scope="col" class="num">"日志位置"</th>
                        <th scope="col">"哈希"</th>
                        <th scope="col"></th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        <div class="pager">
            <button type="button" class="secondary" data-testid="audit-prev" disabled=!has_prev
                on:click=move |_| cursors.update(|c| { c.pop(); })>"上一页"</button>
            <span class="muted">{format!("读至日志位置 {}", p.upto_position)}</span>
            <button type="button" class="secondary" data-testid="audit-next" disabled=next.is_none()
                on:click=move |_| if let Some(n) = next { cursors.update(|c| c.push(n)) }>"下一页"</button>
        </div>
    }
    .into_any()
}

#[component]
fn DiffForm(tenant: String) -> impl IntoView {
    let st = use_app();
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let field_error = RwSignal::new(None::<(String, String)>);
    let error = RwSignal::new(None::<ApiError>);
    let result = RwSignal::new(None::<TenantDiff>);
    let busy = RwSignal::new(false);
    // The two points as Shanghai times (default) or as log positions.
    let by_position = RwSignal::new(false);
    let on_mode = move |ev: leptos::ev::Event| {
        by_position.set(event_target_value(&ev) == "position");
        from.set(String::new());
        to.set(String::new());
        field_error.set(None);
        result.set(None);
    };
    let kind = move || if by_position.get() { "number" } else { "datetime-local" };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        field_error.set(None);
        error.set(None);
        let f = match diff_point(&from.get_untracked()) {
            Ok(f) => f,
            Err(m) => return field_error.set(Some(("from".into(), m))),
        };
        let t_raw = to.get_untracked();
        let t = if t_raw.trim().is_empty() {
            None
        } else {
            match diff_point(&t_raw) {
                Ok(t) => Some(t),
                Err(m) => return field_error.set(Some(("to".into(), m))),
            }
        };
        if !diff_in_order(&from.get_untracked(), &t_raw) {
            return field_error.set(Some(("from".into(), "起点应早于终点".into())));
        }
        let mut path = with_query(&format!("/tenants/{tenant}/diff"), "from", &f);
        if let Some(t) = t {
            path = with_query(&path, "to", &t);
        }
        busy.set(true);
        spawn_local(async move {
            match st.api.get_current::<TenantDiff>(&path).await {
                Ok(d) => result.set(Some(d)),
                Err(e) => match e.field.clone() {
                    Some(f) if f == "from" || f == "to" => field_error.set(Some((f, e.detail))),
                    _ => error.set(Some(e)),
                },
            }
            busy.set(false);
        });
    };
    let err_for = move |name: &'static str| {
        move || {
            field_error.get().filter(|(f, _)| f == name).map(|(_, m)| {
                view! { <span class="field-error" data-testid=format!("error-{name}")>{m}</span> }
            })
        }
    };
    view! {
        <form class="diff-form" on:submit=submit novalidate=true>
            <label>
                <span>"按"</span>
                <select data-testid="audit-diff-mode" on:change=on_mode>
                    <option value="time" selected=true>"时间（北京时间）"</option>
                    <option value="position">"日志位置"</option>
                </select>
            </label>
            <label>
                <span>"起点"</span>
                <input type=kind min="0" name="from" data-testid="field-from" required=true
                    prop:value=move || from.get() on:input=move |ev| from.set(event_target_value(&ev))/>
                {err_for("from")}
            </label>
            <label>
                <span>"终点（留空为当前）"</span>
                <input type=kind min="0" name="to" data-testid="field-to"
                    prop:value=move || to.get() on:input=move |ev| to.set(event_target_value(&ev))/>
                {err_for("to")}
            </label>
            <button type="submit" data-testid="audit-diff-submit" disabled=move || busy.get()>"比较"</button>
        </form>
        {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
        {move || result.get().map(diff_view)}
    }
}

fn diff_view(d: TenantDiff) -> impl IntoView {
    let point = |p: &DiffPoint| match &p.at {
        Some(at) => format!("{}（日志位置 {}）", format::rfc3339(at), p.position),
        None => format!("日志位置 {}", p.position),
    };
    let head = format!(
        "{} → {}：共 {} 个事件{}",
        point(&d.from),
        point(&d.to),
        d.events_total,
        if d.events_truncated { format!("（仅列出前 {} 个）", d.events.len()) } else { String::new() }
    );
    if d.events_total == 0 {
        return view! {
            <div class="diff" data-testid="audit-diff">
                <p>{head}</p>
                <Empty message="两个时点之间没有变化" hint="请把起点调早或把终点调晚后再比较。"/>
            </div>
        }
        .into_any();
    }
    let changes = d
        .changes
        .into_iter()
        .map(|c| {
            let sign = if c.delta > 0 { format!("+{}", c.delta) } else { c.delta.to_string() };
            view! {
                <tr data-testid="audit-diff-change" data-metric=c.metric>
                    <td>{c.name}</td><td class="num">{c.before}</td><td class="num">{c.after}</td><td class="num">{sign}</td>
                </tr>
            }
        })
        .collect_view();
    let ledger = d
        .ledger_changes
        .into_iter()
        .map(|l| {
            let kind = match l.change.as_str() {
                "added" => "新增",
                "removed" => "移除",
                _ => "变化",
            };
            let status =
                before_after(l.status_before.as_deref().map(status_zh), l.status_after.as_deref().map(status_zh));
            let warning =
                before_after(l.warning_before.as_deref().map(warning_zh), l.warning_after.as_deref().map(warning_zh));
            let deadline = before_after(l.deadline_before.as_deref(), l.deadline_after.as_deref());
            let progress = before_after(
                l.progress_count_before.map(|n| n.to_string()).as_deref(),
                l.progress_count_after.map(|n| n.to_string()).as_deref(),
            );
            view! {
                <tr data-testid="audit-diff-ledger" data-finding=l.finding_id.clone()>
                    <td title=l.finding_id.clone()>{l.title}</td>
                    <td>{l.community.name}</td>
                    <td>{kind}</td>
                    <td>{status}</td>
                    <td>{warning}</td>
                    <td>{deadline}</td>
                    <td>{progress}</td>
                </tr>
            }
        })
        .collect_view();
    let events = d
        .events
        .into_iter()
        .map(|e| {
            view! {
                <li data-position=e.position>
                    {format!("{} · {} · {}（{}） · {}", format::rfc3339(&e.occurred_at), event_type_zh(&e.event_type), e.actor.user_id, e.actor.role_name, stream_label(&e.stream))}
                </li>
            }
        })
        .collect_view();
    view! {
        <div class="diff" data-testid="audit-diff">
            <p>{head}</p>
            <h3>"数字变化"</h3>
            <div class="table-wrap">
                <table class="table">
                    <thead><tr><th>"指标"</th><th class="num">"之前"</th><th class="num">"之后"</th><th class="num">"变化"</th></tr></thead>
                    <tbody>{changes}</tbody>
                </table>
            </div>
            <h3>"整改台账变化"</h3>
            <div class="table-wrap">
                <table class="table">
                    <thead><tr><th>"问题"</th><th>"社区"</th><th>"类型"</th><th>"状态"</th><th>"预警"</th><th>"整改期限"</th><th>"进展次数"</th></tr></thead>
                    <tbody>{ledger}</tbody>
                </table>
            </div>
            <h3>"期间事件"</h3>
            <ol class="diff-events">{events}</ol>
        </div>
    }
    .into_any()
}
