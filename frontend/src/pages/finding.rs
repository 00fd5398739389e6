//! 问题整改: one finding with its rectification (`GET …/inspections/{i}/findings/{f}`): the
//! finding, measure / unit / leader / person / deadline / status, the evidence (downloaded as a
//! blob with the token), the follow-up history, and one form per command the user may issue now
//! (交办, 报送进展, 提交销号, 销号, 退回, 延期, 催办, 撤销), each checked in the browser first and
//! sent with `If-Match` and the version read.
//!
//! [`FindingPanel`] is also embedded by 我的问题 (`my_findings.rs`).

use crate::components::{Empty, ErrorBox, Link, Loading, Writable};
use crate::format;
use crate::problem::ApiError;
use crate::rectify::{self, Problems};
use crate::route::Route;
use crate::state::use_app;
use crate::warning;
use chrono::NaiveDate;
use ducha_events::projection::{LedgerRow, RectificationStatus};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Deserialize;
use std::collections::HashMap;

/// `FindingDetail` of the API (backend/src/api/findings.rs).
#[derive(Debug, Clone, Deserialize)]
pub struct FindingDetail {
    pub finding: LedgerRow,
    pub version: u64,
    pub history: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HistoryEntry {
    pub version: u64,
    pub event_type: String,
    pub occurred_at: String,
    pub actor_name: String,
    #[serde(default)]
    pub data: serde_json::Value,
}

/// Today in Asia/Shanghai, from the browser's clock.
pub fn today() -> NaiveDate {
    format::from_epoch_millis(js_sys::Date::now()).map(|t| t.date()).unwrap_or_default()
}

#[component]
pub fn FindingPage(tenant: String, inspection: String, finding: String) -> impl IntoView {
    let back = Route::Ledger { tenant: tenant.clone() }.path();
    view! {
        <section class="page" data-page="finding">
            <div class="page-head">
                <h1>"问题整改"</h1>
                <Link to=back testid="finding-back">"返回整改台账"</Link>
            </div>
            <FindingPanel tenant=tenant inspection=inspection finding=finding/>
        </section>
    }
}

/// The finding with its rectification, evidence, history and the forms the user may use.
#[component]
pub fn FindingPanel(
    tenant: String,
    inspection: String,
    finding: String,
    /// Called after every accepted command (e.g. to reload a list around the panel).
    #[prop(optional)]
    on_change: Option<Callback<()>>,
) -> impl IntoView {
    let st = use_app();
    let path = format!("/tenants/{tenant}/inspections/{inspection}/findings/{finding}");
    let reload = RwSignal::new(0u32);
    let p = path.clone();
    let data = LocalResource::new(move || {
        reload.track();
        st.api.get_versioned::<FindingDetail>(&p)
    });
    let done = Callback::new(move |_: ()| {
        reload.update(|n| *n += 1);
        if let Some(cb) = on_change {
            cb.run(());
        }
    });
    move || match data.get() {
        None => view! { <Loading/> }.into_any(),
        Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
        Some(Ok((d, etag))) => {
            let version = etag.unwrap_or(d.version);
            detail(tenant.clone(), path.clone(), d, version, done).into_any()
        }
    }
}

fn opt(v: &Option<String>) -> String {
    v.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| "—".into())
}

fn detail(tenant: String, path: String, d: FindingDetail, version: u64, done: Callback<()>) -> impl IntoView {
    let st = use_app();
    let f = d.finding.clone();
    let grants = st.me.get_untracked().map(|m| m.grants).unwrap_or_default();
    let community = f.community.community_id.as_ref().map(|c| c.as_str().to_owned());
    let manage = rectify::can_manage(&grants, &tenant);
    let report = rectify::can_report(&grants, &tenant, community.as_deref());
    let deadline = match (f.deadline, f.original_deadline) {
        (Some(d), Some(o)) => format!("{}（原时限 {}，已延期）", format::date(d), format::date(o)),
        (Some(d), None) => format::date(d),
        _ => "—".into(),
    };
    let evidence = f
        .evidence
        .iter()
        .map(|e| {
            let download = format!("/tenants/{tenant}/evidence/{}", e.sha256);
            let name = e.filename.clone();
            let error = RwSignal::new(None::<ApiError>);
            let on_click = move |_| {
                let (download, name) = (download.clone(), name.clone());
                spawn_local(async move {
                    error.set(st.api.download(&download, &name).await.err());
                });
            };
            view! {
                <li data-testid="finding-evidence">
                    <button type="button" class="link" data-testid="action-download-evidence" on:click=on_click>
                        {e.filename.clone()}
                    </button>
                    <small>{format!(" {} · SHA-256 {}…", rectify::file_size(e.size), &e.sha256[..12.min(e.sha256.len())])}</small>
                    {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
                </li>
            }
        })
        .collect_view();
    let history = d
        .history
        .iter()
        .rev()
        .map(|h| {
            view! {
                <li data-testid="finding-history-entry" data-event=h.event_type.clone()>
                    <span class="history-when">{format::rfc3339(&h.occurred_at)}</span>
                    <strong>{rectify::event_name(&h.event_type).to_owned()}</strong>
                    <span class="history-who">{h.actor_name.clone()}</span>
                    <p>{rectify::event_summary(&h.data)}</p>
                    <small class="muted">{format!("版本 {}", h.version)}</small>
                </li>
            }
        })
        .collect_view();
    let status = f.status;
    let row = f.clone();
    view! {
        <div class="finding" data-testid="finding-detail" data-status=status.code() data-version=version.to_string()>
            <h2 data-testid="finding-title">{f.title.clone()}</h2>
            <div class="badges">
                <span class="badge badge-status" data-testid="finding-status">{f.status_name.clone()}</span>
                <span class=warning::badge_class(f.warning) data-testid=f.warning.map(|w| format!("warning-{}", w.code()))>
                    {warning::badge_label(f.warning)}
                </span>
            </div>
            <p class="finding-description">{f.description.clone()}</p>
            <dl class="facts">
                <dt>"来源"</dt><dd>{f.source.title.clone()}</dd>
                <dt>"社区"</dt><dd data-testid="finding-community">{f.community.name.clone()}</dd>
                <dt>"问题类别"</dt><dd>{f.category_name.clone()}</dd>
                <dt>"严重程度"</dt><dd>{f.severity_name.clone()}</dd>
                <dt>"整改措施"</dt><dd data-testid="finding-measure">{opt(&f.measure)}</dd>
                <dt>"责任单位"</dt><dd>{opt(&f.responsible_unit)}</dd>
                <dt>"责任领导"</dt><dd>{opt(&f.leader)}</dd>
                <dt>"责任人"</dt><dd>{opt(&f.person)}</dd>
                <dt>"整改时限"</dt><dd data-testid="finding-deadline">{deadline}</dd>
                <dt>"进展情况"</dt><dd>{opt(&f.latest_progress)}</dd>
                <dt>"销号日期"</dt><dd>{f.verified_on.map(format::date).unwrap_or_else(|| "—".into())}</dd>
            </dl>
            <h3>"佐证材料"</h3>
            {if f.evidence.is_empty() {
                view! { <p class="muted" data-testid="finding-no-evidence">"暂无佐证材料。报送整改进展时可上传 PDF、图片、Word、Excel 或文本文件。"</p> }.into_any()
            } else {
                view! { <ul class="evidence">{evidence}</ul> }.into_any()
            }}
            <Writable>
                <div class="command-forms">{forms(&row, status, manage, report, path.clone(), version, done)}</div>
            </Writable>
            <h3>"整改记录"</h3>
            {if d.history.is_empty() {
                view! { <Empty message="还没有整改记录" hint="交办整改后，进展、退回、延期等记录会显示在这里。"/> }.into_any()
            } else {
                view! { <ol class="history">{history}</ol> }.into_any()
            }}
        </div>
    }
}

type Values = HashMap<&'static str, String>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Area,
    Date,
    File,
}

#[derive(Clone, Copy)]
struct Field {
    name: &'static str,
    label: &'static str,
    kind: Kind,
    hint: &'static str,
}

const fn field(name: &'static str, label: &'static str, kind: Kind, hint: &'static str) -> Field {
    Field { name, label, kind, hint }
}

/// One command form: what it is called, its fields, its checks and its body.
#[derive(Clone)]
struct Spec {
    /// The API's path segment: `assign`, `progress`, …
    command: &'static str,
    title: &'static str,
    button: &'static str,
    /// `action-…` test id of the button.
    testid: &'static str,
    fields: Vec<Field>,
    check: fn(&Values, Option<NaiveDate>) -> Problems,
    body: fn(&Values) -> serde_json::Value,
    danger: bool,
}

fn v<'a>(values: &'a Values, k: &str) -> &'a str {
    values.get(k).map(|s| s.as_str()).unwrap_or("")
}

fn forms(
    f: &LedgerRow,
    status: RectificationStatus,
    manage: bool,
    report: bool,
    path: String,
    version: u64,
    done: Callback<()>,
) -> Vec<AnyView> {
    use RectificationStatus::*;
    let open = |ok: &[RectificationStatus]| ok.contains(&status);
    let mut specs: Vec<Spec> = Vec::new();
    if manage && open(&[Unassigned]) {
        specs.push(Spec {
            command: "assign",
            title: "交办整改",
            button: "交办",
            testid: "action-assign-rectification",
            fields: vec![
                field("title", "整改事项（可选）", Kind::Text, ""),
                field("measure", "整改措施", Kind::Area, "具体、可检查的措施"),
                field("responsible_unit", "责任单位", Kind::Text, "如：街道党政办、东风社区党委"),
                field("leader", "责任领导", Kind::Text, ""),
                field("person", "责任人", Kind::Text, ""),
                field("deadline", "整改时限", Kind::Date, "不能早于今天"),
            ],
            check: |x, _| {
                rectify::check_assign(
                    v(x, "measure"),
                    v(x, "responsible_unit"),
                    v(x, "leader"),
                    v(x, "person"),
                    v(x, "deadline"),
                    today(),
                )
            },
            body: |x| {
                serde_json::json!({"title": v(x, "title").trim(), "measure": v(x, "measure"),
                    "responsible_unit": v(x, "responsible_unit"), "leader": v(x, "leader"),
                    "person": v(x, "person"), "deadline": v(x, "deadline").trim()})
            },
            danger: false,
        });
    }
    if report && open(&[Assigned, InProgress, Returned]) {
        specs.push(Spec {
            command: "progress",
            title: "报送整改进展",
            button: "报送进展",
            testid: "action-report-progress",
            fields: vec![
                field("text", "整改进展", Kind::Area, "已采取的措施和取得的成效"),
                field(
                    "evidence",
                    "佐证材料（可选）",
                    Kind::File,
                    "PDF、JPEG、PNG、Word、Excel 或文本，单个文件不超过 20 MB",
                ),
            ],
            check: |x, _| rectify::check_progress(v(x, "text")),
            body: |x| serde_json::json!({"text": v(x, "text")}),
            danger: false,
        });
    }
    if report && open(&[InProgress]) {
        specs.push(Spec {
            command: "submit",
            title: "提交销号申请",
            button: "提交销号",
            testid: "action-submit-rectification",
            fields: vec![field("summary", "整改情况小结", Kind::Area, "整改完成情况，提交后由街道审核销号")],
            check: |x, _| rectify::check_text("summary", "整改情况小结", v(x, "summary")),
            body: |x| serde_json::json!({"summary": v(x, "summary")}),
            danger: false,
        });
    }
    if manage && open(&[Submitted]) {
        specs.push(Spec {
            command: "verify",
            title: "销号",
            button: "同意销号",
            testid: "action-verify-rectification",
            fields: vec![field("comment", "审核意见（可选）", Kind::Text, "")],
            check: |_, _| Problems::new(),
            body: |x| serde_json::json!({"comment": v(x, "comment").trim()}),
            danger: false,
        });
        specs.push(Spec {
            command: "return",
            title: "退回",
            button: "退回整改",
            testid: "action-return-rectification",
            fields: vec![field("reason", "退回理由", Kind::Text, "说明需要补充或改进的内容")],
            check: |x, _| rectify::check_text("reason", "退回理由", v(x, "reason")),
            body: |x| serde_json::json!({"reason": v(x, "reason")}),
            danger: true,
        });
    }
    if manage && open(&[Assigned, InProgress, Submitted, Returned]) {
        specs.push(Spec {
            command: "extend",
            title: "延期",
            button: "延期",
            testid: "action-extend-deadline",
            fields: vec![
                field("new_deadline", "新的整改时限", Kind::Date, "须晚于原整改时限，且不早于今天"),
                field("reason", "延期理由", Kind::Text, ""),
            ],
            check: |x, current| rectify::check_extend(v(x, "new_deadline"), v(x, "reason"), current),
            body: |x| serde_json::json!({"new_deadline": v(x, "new_deadline").trim(), "reason": v(x, "reason")}),
            danger: false,
        });
    }
    if manage && open(&[Assigned, InProgress, Returned]) {
        specs.push(Spec {
            command: "remind",
            title: "催办",
            button: "催办",
            testid: "action-remind-rectification",
            fields: vec![field("message", "催办内容", Kind::Text, "")],
            check: |x, _| rectify::check_text("message", "催办内容", v(x, "message")),
            body: |x| serde_json::json!({"message": v(x, "message")}),
            danger: false,
        });
    }
    if manage && open(&[Unassigned, Assigned, InProgress, Submitted, Returned]) {
        specs.push(Spec {
            command: "dismiss",
            title: "撤销问题",
            button: "撤销",
            testid: "action-dismiss-finding",
            fields: vec![field("reason", "撤销理由", Kind::Text, "撤销后不再需要整改")],
            check: |x, _| rectify::check_text("reason", "撤销理由", v(x, "reason")),
            body: |x| serde_json::json!({"reason": v(x, "reason")}),
            danger: true,
        });
    }
    let deadline = f.deadline;
    specs
        .into_iter()
        .map(|s| {
            view! { <CommandForm spec=s path=path.clone() version=version deadline=deadline done=done/> }.into_any()
        })
        .collect()
}

#[component]
fn CommandForm(
    spec: Spec,
    path: String,
    version: u64,
    deadline: Option<NaiveDate>,
    done: Callback<()>,
) -> impl IntoView {
    let st = use_app();
    let values = RwSignal::new(Values::new());
    let problems = RwSignal::new(Problems::new());
    let general = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let file_ref = NodeRef::<leptos::html::Input>::new();
    let names: Vec<&'static str> = spec.fields.iter().map(|f| f.name).collect();
    let error_of =
        move |name: &'static str| problems.with(|p| p.iter().find(|(f, _)| *f == name).map(|(_, m)| m.clone()));
    let inputs = spec
        .fields
        .iter()
        .map(|fd| {
            let name = fd.name;
            let set = move |ev: leptos::ev::Event| {
                let val = event_target_value(&ev);
                values.update(|x| {
                    x.insert(name, val);
                });
                problems.update(|p| p.retain(|(f, _)| *f != name));
            };
            let get = move || values.with(|x| x.get(name).cloned().unwrap_or_default());
            let id = format!("{}-{}", spec.command, name);
            let input = match fd.kind {
                Kind::Text => view! {
                    <input id=id.clone() type="text" name=name data-testid=format!("field-{name}") prop:value=get on:input=set/>
                }
                .into_any(),
                Kind::Date => view! {
                    <input id=id.clone() type="date" name=name data-testid=format!("field-{name}") prop:value=get on:input=set on:change=set/>
                }
                .into_any(),
                Kind::Area => view! {
                    <textarea id=id.clone() name=name rows="3" data-testid=format!("field-{name}") prop:value=get on:input=set></textarea>
                }
                .into_any(),
                Kind::File => view! {
                    <input id=id.clone() type="file" name="file" data-testid="field-file" node_ref=file_ref
                        accept=".pdf,.jpg,.jpeg,.png,.docx,.xlsx,.txt,application/pdf,image/jpeg,image/png,text/plain"/>
                }
                .into_any(),
            };
            view! {
                <div class="field" class:field-invalid=move || error_of(name).is_some()>
                    <label for=id>{fd.label}</label>
                    {input}
                    {(!fd.hint.is_empty()).then(|| view! { <small class="hint">{fd.hint}</small> })}
                    {move || error_of(name).map(|m| view! {
                        <p class="field-error" role="alert" data-testid=format!("field-error-{name}")>{m}</p>
                    })}
                </div>
            }
        })
        .collect_view();
    let (check, body, command) = (spec.check, spec.body, spec.command);
    let url = format!("{path}/{command}");
    let tenant_base = path.split("/inspections/").next().unwrap_or_default().to_owned();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let x = values.get_untracked();
        let found = check(&x, deadline);
        general.set(None);
        if !found.is_empty() {
            problems.set(found);
            return;
        }
        problems.set(Problems::new());
        let file = file_ref.get_untracked().and_then(|i| i.files()).and_then(|l| l.get(0));
        let (url, tenant_base, names) = (url.clone(), tenant_base.clone(), names.clone());
        busy.set(true);
        spawn_local(async move {
            let mut b = body(&x);
            let mut result: Result<(), ApiError> = Ok(());
            if let Some(file) = file {
                match st.api.upload::<serde_json::Value>(&format!("{tenant_base}/evidence"), &file).await {
                    Ok(e) => {
                        let evidence = serde_json::json!([{"sha256": e["sha256"], "filename": e["filename"],
                            "content_type": e["content_type"], "size": e["size"]}]);
                        b["evidence"] = evidence;
                    }
                    Err(mut e) => {
                        e.field = Some("evidence".into());
                        result = Err(e);
                    }
                }
            }
            if result.is_ok() {
                result = st.api.post_if_match::<_, serde_json::Value>(&url, &b, Some(version)).await.map(|_| ());
            }
            busy.set(false);
            match result {
                Ok(()) => {
                    values.set(Values::new());
                    done.run(());
                }
                Err(e) => match e.field.clone().and_then(|f| names.iter().find(|n| **n == f).copied()) {
                    Some(name) => problems.set(vec![(name, e.detail.clone())]),
                    None => general.set(Some(e)),
                },
            }
        });
    };
    let class = if spec.danger { "command-form danger" } else { "command-form" };
    view! {
        <form class=class data-testid=format!("form-{command}") novalidate on:submit=on_submit>
            <h4>{spec.title}</h4>
            {inputs}
            {move || general.get().map(|e| {
                // Someone else changed the rectification since it was read: offer the fresh state.
                let stale = e.status == 412 || e.code == "version_mismatch";
                view! {
                    <ErrorBox error=e/>
                    {stale.then(|| view! {
                        <button type="button" class="link" data-testid="action-reload-finding" on:click=move |_| done.run(())>
                            "重新加载最新情况"
                        </button>
                    })}
                }
            })}
            <button type="submit" class="primary" data-testid=spec.testid disabled=move || busy.get()>
                {move || if busy.get() { "提交中…" } else { spec.button }}
            </button>
        </form>
    }
}
