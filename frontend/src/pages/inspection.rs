//! 督查详情: `GET /tenants/{t}/inspections/{i}` (team, scope, fieldwork per community, checklist
//! scores, achievements, findings, conclusion, issued reports) and a form for every inspection
//! command (scope, team, start, fieldwork, deduction, achievement, finding, conclusion), each sent
//! with `If-Match` = the detail's `ETag`; the 督查报告 (DOCX download, HTML preview, 签发).
//! Commands are shown only to the roles that may issue them (GUIDE §1): the sub-district admin
//! manages the inspection; team members (and the admin) record while it is under way.

use crate::components::{Empty, ErrorBox, Link, Loading, Writable};
use crate::format;
use crate::inspection_form::{self as check, FieldError};
use crate::pages::inspections::{
    FormState, TenantView, UserView, checkbox_group, eligible_users, field_error, form_error, has_role, in_order,
    submit_button, team_of, team_picker, today,
};
use crate::problem::ApiError;
use crate::route::Route;
use crate::state::{AppState, use_app};
use chrono::NaiveDate;
use ducha_events::api::{
    ChangeScopeRequest, ChangeTeamRequest, CommandAccepted, ConcludeInspectionRequest, RecordAchievementRequest,
    RecordDeductionRequest, RecordFieldworkRequest, RecordFindingRequest, StartInspectionRequest,
};
use ducha_events::event::{Figure, InspectionMethod, Points, Severity};
use ducha_events::inspection::InspectionStatus;
use ducha_events::projection::InspectionDetail;
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Deserialize;

/// What 签发报告 answers.
#[derive(Debug, Clone, Deserialize)]
struct IssuedReport {
    sha256: String,
    log_position: u64,
    recorded_at_position: u64,
    #[serde(default)]
    as_of: Option<String>,
}

/// Everything a section or form of the page needs; `Copy`, so forms can be rebuilt freely.
#[derive(Clone, Copy)]
struct Ctx {
    st: AppState,
    tenant: StoredValue<String>,
    id: StoredValue<String>,
    d: StoredValue<InspectionDetail>,
    /// The detail's `ETag`: sent as `If-Match` with every command.
    version: Option<u64>,
    tv: StoredValue<TenantView>,
    users: StoredValue<Vec<UserView>>,
    /// Bumped after a write: the detail is loaded again.
    rev: RwSignal<u64>,
    /// Manages the inspection (plan, scope, team, start, conclude, issue the report).
    admin: bool,
    /// Records fieldwork, deductions, achievements and findings (admin or a team member).
    recorder: bool,
    today: NaiveDate,
    /// The last report issued from this page (kept across reloads of the detail).
    issued: RwSignal<Option<IssuedReport>>,
}

impl Ctx {
    fn path(&self, cmd: &str) -> String {
        format!("/tenants/{}/inspections/{}/{cmd}", self.tenant.get_value(), self.id.get_value())
    }
    fn reload(&self) {
        self.rev.update(|r| *r += 1);
    }
    /// The communities in scope as (id, name).
    fn scope(&self) -> Vec<(String, String)> {
        self.d.with_value(|d| {
            d.scope.iter().filter_map(|c| c.community_id.as_ref().map(|id| (id.to_string(), c.name.clone()))).collect()
        })
    }
    /// Sends a command with `If-Match` and reloads the detail when it is accepted.
    fn send<B: serde::Serialize + 'static>(self, form: FormState, cmd: &str, body: B) {
        form.submit(self.st, self.path(cmd), body, self.version, move |_: CommandAccepted| self.reload());
    }
}

#[component]
pub fn InspectionPage(tenant: String, inspection: String) -> impl IntoView {
    let st = use_app();
    let rev = RwSignal::new(0u64);
    let issued = RwSignal::new(None::<IssuedReport>);
    let detail_path = format!("/tenants/{tenant}/inspections/{inspection}");
    let data = LocalResource::new(move || {
        rev.track();
        st.api.get_versioned::<InspectionDetail>(&detail_path)
    });
    let tv = LocalResource::new({
        let p = format!("/tenants/{tenant}");
        move || st.api.get::<TenantView>(&p)
    });
    let users = LocalResource::new({
        let (p, tenant) = (format!("/tenants/{tenant}/users"), tenant.clone());
        move || {
            let admin = has_role(st, "subdistrict_admin", &tenant);
            let fut = st.api.get_current::<Vec<UserView>>(&p);
            // Only the admin changes the team (and may list the users).
            async move { if admin { fut.await.unwrap_or_default() } else { Vec::new() } }
        }
    });
    let t = StoredValue::new(tenant);
    let i = StoredValue::new(inspection);
    let back = Route::Inspections { tenant: t.get_value() }.path();
    view! {
        <section class="page" data-page="inspection">
            <p class="crumbs"><Link to=back testid="inspection-back">"← 督查列表"</Link></p>
            {move || match (data.get(), tv.get(), users.get()) {
                (Some(Err(e)), _, _) | (_, Some(Err(e)), _) => view! { <ErrorBox error=e/> }.into_any(),
                (Some(Ok((d, version))), Some(Ok(tv)), Some(users)) => {
                    let admin = has_role(st, "subdistrict_admin", &t.get_value());
                    let inspector = has_role(st, "inspector", &t.get_value());
                    let me = st.me.with_untracked(|m| m.as_ref().map(|m| m.user_id.clone())).unwrap_or_default();
                    let on_team = d.team.iter().any(|m| m.user_id.as_str() == me);
                    let ctx = Ctx {
                        st,
                        tenant: t,
                        id: i,
                        d: StoredValue::new(d),
                        version,
                        tv: StoredValue::new(tv),
                        users: StoredValue::new(users),
                        rev,
                        admin,
                        recorder: admin || (inspector && on_team),
                        today: today(),
                        issued,
                    };
                    detail(ctx).into_any()
                }
                _ => view! { <Loading/> }.into_any(),
            }}
        </section>
    }
}

fn detail(ctx: Ctx) -> impl IntoView {
    let d = ctx.d.get_value();
    let status = d.status;
    let managing = ctx.admin && matches!(status, InspectionStatus::Planned | InspectionStatus::InProgress);
    let recording = ctx.recorder && status == InspectionStatus::InProgress;
    let period = format!("{} 至 {}", format::date(d.planned_start), format::date(d.planned_end));
    let started = d.started_on.map(|s| format!("，{} 启动", format::date(s))).unwrap_or_default();
    let concluded = d.concluded_on.map(|s| format!("，{} 结束", format::date(s))).unwrap_or_default();
    view! {
        <header class="page-head">
            <h1 data-testid="inspection-title">{d.title.clone()}</h1>
            <span class=check::status_class(status.code()) data-testid="inspection-status" data-status=status.code()>
                {d.status_name.clone()}
            </span>
        </header>
        <dl class="facts">
            <dt>"年度"</dt><dd>{d.year}</dd>
            <dt>"督查内容"</dt><dd>{d.subject.clone()}</dd>
            <dt>"时间"</dt><dd>{format!("计划 {period}{started}{concluded}")}</dd>
            <dt>"督查方式"</dt><dd>{d.method_names.join("、")}</dd>
            <dt>"评分表"</dt><dd>{d.checklist_title.clone().unwrap_or_else(|| "不评分".into())}</dd>
        </dl>
        {report_bar(ctx)}
        {(ctx.admin && status == InspectionStatus::Planned).then(|| view! { <Writable>{move || start_form(ctx)}</Writable> })}
        <div class="two-col">
            <section class="panel" data-testid="inspection-team">
                <h2>"督查组"</h2>
                <ul class="plain">
                    {d.team.iter().map(|m| view! {
                        <li data-testid="inspection-team-member" data-id=m.user_id.to_string()>
                            {m.display_name.clone()}
                            {m.leader.then(|| view! { <span class="tag">"组长"</span> })}
                        </li>
                    }).collect_view()}
                </ul>
                {managing.then(|| view! { <Writable>{move || team_form(ctx)}</Writable> })}
            </section>
            <section class="panel" data-testid="inspection-scope">
                <h2>{format!("督查范围（{} 个社区）", d.scope.len())}</h2>
                <ul class="inline-list">
                    {d.scope.iter().map(|c| view! { <li data-testid="inspection-scope-community">{c.name.clone()}</li> }).collect_view()}
                </ul>
                {managing.then(|| view! { <Writable>{move || scope_form(ctx)}</Writable> })}
            </section>
        </div>
        {fieldwork_section(ctx)}
        {recording.then(|| view! { <Writable>{move || fieldwork_form(ctx)}</Writable> })}
        {scores_section(ctx)}
        {(recording && d.checklist_id.is_some()).then(|| view! { <Writable>{move || deduction_form(ctx)}</Writable> })}
        {achievements_section(ctx)}
        {recording.then(|| view! { <Writable>{move || achievement_form(ctx)}</Writable> })}
        {findings_section(ctx)}
        {recording.then(|| view! { <Writable>{move || finding_form(ctx)}</Writable> })}
        {conclusion_section(ctx)}
        {(ctx.admin && status == InspectionStatus::InProgress).then(|| view! { <Writable>{move || conclusion_form(ctx)}</Writable> })}
    }
}

// ------------------------------------------------------------------ sections

fn fieldwork_section(ctx: Ctx) -> impl IntoView {
    let groups = ctx.d.with_value(|d| d.fieldwork.clone());
    let any = groups.iter().any(|g| !g.records.is_empty());
    view! {
        <section class="panel" data-testid="inspection-fieldwork">
            <h2>"座谈交流与查阅资料"</h2>
            {if any {
                groups.into_iter().map(|g| view! {
                    <div class="fieldwork-group" data-testid="inspection-fieldwork-community">
                        <h3>{g.community.name.clone()}</h3>
                        {if g.records.is_empty() {
                            view! { <p class="muted">"尚无记录"</p> }.into_any()
                        } else {
                            view! { <ul class="records">{g.records.into_iter().map(|r| view! {
                                <li data-testid="inspection-fieldwork-record">
                                    <span class="tag">{r.method_name}</span>
                                    <span class="muted">{format::date(r.held_on)}</span>
                                    {(!r.participants.is_empty()).then(|| view! { <span class="muted">{format!("参加：{}", r.participants)}</span> })}
                                    <p>{r.notes}</p>
                                </li>
                            }).collect_view()}</ul> }.into_any()
                        }}
                    </div>
                }).collect_view().into_any()
            } else {
                view! { <Empty message="还没有座谈交流或查阅资料的记录" hint="督查启动后，督查组成员可在下方“记录座谈交流、查阅资料”中逐个社区登记。"/> }.into_any()
            }}
        </section>
    }
}

fn scores_section(ctx: Ctx) -> impl IntoView {
    let scores = ctx.d.with_value(|d| d.scores.clone());
    if scores.is_empty() {
        return ().into_any();
    }
    let rows = scores
        .into_iter()
        .map(|c| {
            let deductions = c
                .items
                .iter()
                .filter(|i| i.deducted.0 > 0)
                .map(|i| {
                    view! {
                        <li data-testid="inspection-deduction">
                            {format!("{} {}：扣 {} 分（{}）", i.code, i.title, i.deducted, i.reasons.join("；"))}
                        </li>
                    }
                })
                .collect_view();
            view! {
                <tr data-testid="inspection-score" data-community=c.community.community_id.as_ref().map(|x| x.to_string())>
                    <td>{c.community.name.clone()}</td>
                    <td class="num" data-testid="inspection-score-value">{c.score.to_string()}</td>
                    <td class="num">{c.max_points.to_string()}</td>
                    <td><ul class="plain small">{deductions}</ul></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="panel" data-testid="inspection-scores">
            <h2>"考核评分"</h2>
            <div class="table-wrap">
                <table class="table">
                    <thead><tr><th>"社区"</th><th>"得分"</th><th>"满分"</th><th>"扣分情况"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}

fn achievements_section(ctx: Ctx) -> impl IntoView {
    let list = ctx.d.with_value(|d| d.achievements.clone());
    view! {
        <section class="panel" data-testid="inspection-achievements">
            <h2>"主要工作开展情况"</h2>
            {if list.is_empty() {
                view! { <Empty message="还没有记录工作情况" hint="督查过程中，可在下方“记录主要工作开展情况”中填写，并附上数字（如 理论宣讲会 10 场）。"/> }.into_any()
            } else {
                view! { <ul class="records">{list.into_iter().map(|a| view! {
                    <li data-testid="inspection-achievement">
                        <strong>{a.category}</strong>
                        <span class="muted">{format!("（{}）", a.community.name)}</span>
                        <p>{a.text}</p>
                        {(!a.figures.is_empty()).then(|| view! {
                            <div class="figures">{a.figures.into_iter().map(|f| view! {
                                <span class="figure" data-testid="inspection-figure">{format!("{} {}{}", f.label, f.value, f.unit)}</span>
                            }).collect_view()}</div>
                        })}
                    </li>
                }).collect_view()}</ul> }.into_any()
            }}
        </section>
    }
}

fn findings_section(ctx: Ctx) -> impl IntoView {
    let list = ctx.d.with_value(|d| d.findings.clone());
    let (t, i) = (ctx.tenant.get_value(), ctx.id.get_value());
    view! {
        <section class="panel" data-testid="inspection-findings">
            <h2>{format!("存在问题（{} 个）", list.len())}</h2>
            {if list.is_empty() {
                view! { <Empty message="还没有发现问题" hint="督查中发现的问题请在下方“记录存在问题”中登记，之后在整改台账中交办整改。"/> }.into_any()
            } else {
                view! { <div class="table-wrap"><table class="table">
                    <thead><tr><th>"问题"</th><th>"社区"</th><th>"类别"</th><th>"程度"</th><th>"整改状态"</th><th>"整改期限"</th></tr></thead>
                    <tbody>{list.into_iter().map(|f| {
                        let to = format!("/tenants/{t}/inspections/{i}/findings/{}", f.finding_id);
                        view! {
                            <tr data-testid="inspection-finding" data-id=f.finding_id.to_string()>
                                <td><Link to=to testid="inspection-finding-open">{f.title.clone()}</Link></td>
                                <td>{f.community.name.clone()}</td>
                                <td>{f.category_name.clone()}</td>
                                <td>{f.severity_name.clone()}</td>
                                <td><span class=check::finding_status_class(f.status.code()) data-testid="inspection-finding-status">{f.status_name.clone()}</span></td>
                                <td>{f.deadline.map(format::date).unwrap_or_else(|| "—".into())}</td>
                            </tr>
                        }
                    }).collect_view()}</tbody>
                </table></div> }.into_any()
            }}
        </section>
    }
}

fn conclusion_section(ctx: Ctx) -> impl IntoView {
    let d = ctx.d.get_value();
    let reports = d.issued_reports.clone();
    view! {
        <section class="panel" data-testid="inspection-conclusion">
            <h2>"督查结论"</h2>
            {match d.assessment.clone() {
                Some(a) => view! {
                    <p><strong>"总体评价："</strong>{a}</p>
                    {d.summary.clone().filter(|s| !s.is_empty()).map(|s| view! { <p>{s}</p> })}
                    {d.concluded_on.map(|c| view! { <p class="muted">{format!("结束日期：{}", format::date(c))}</p> })}
                }.into_any(),
                None => view! { <p class="muted">"督查尚未结束。督查组完成各社区的座谈和资料查阅后，由街道管理员填写督查结论。"</p> }.into_any(),
            }}
            {(!reports.is_empty()).then(|| view! {
                <h3>"已签发的督查报告"</h3>
                <ul class="plain small" data-testid="inspection-reports">
                    {reports.into_iter().map(|r| view! {
                        <li data-testid="inspection-issued-report">
                            {format!("{} 由 {} 签发（{}，日志位置 {}）", format::rfc3339(&r.issued_at), r.issued_by_name, r.format.code().to_uppercase(), r.log_position)}
                            <br/><code class="hash">{format!("SHA-256 {}", r.sha256)}</code>
                        </li>
                    }).collect_view()}
                </ul>
            })}
        </section>
    }
}

// ------------------------------------------------------------------ 督查报告

fn report_bar(ctx: Ctx) -> impl IntoView {
    let st = ctx.st;
    let report = ctx.path("report");
    let title = ctx.d.with_value(|d| d.title.clone());
    let dl_error = RwSignal::new(None::<ApiError>);
    let downloading = RwSignal::new(false);
    let preview = RwSignal::new(None::<Result<String, ApiError>>);
    let showing = RwSignal::new(false);
    let issued = ctx.issued;
    let issue_form = FormState::new();
    // 报告时点: empty for the report as it stands now, or a past Shanghai wall-clock time that the
    // preview, the download and the issue all use (the API's `as_of`).
    let point = RwSignal::new(None::<chrono::NaiveDateTime>);
    let at = move |path: &str| match point.get_untracked() {
        Some(t) => crate::problem::with_query(path, "as_of", &format::as_of_param(t)),
        None => path.to_owned(),
    };
    let r1 = report.clone();
    let download = move |_| {
        let (path, name) = (at(&r1), format!("{title}.docx"));
        downloading.set(true);
        dl_error.set(None);
        spawn_local(async move {
            let r = st.api.download(&path, &name).await;
            downloading.set(false);
            dl_error.set(r.err());
        });
    };
    let r2 = report.clone();
    let show = move |_| {
        if showing.get_untracked() {
            showing.set(false);
            return;
        }
        showing.set(true);
        preview.set(None);
        let fut = st.api.get_text(&at(&format!("{r2}?format=html")));
        spawn_local(async move { preview.set(Some(fut.await.map(|html| check::preview_html(&html)))) });
    };
    let issue = move |_| {
        let body = match point.get_untracked() {
            Some(t) => serde_json::json!({ "as_of": format::as_of_param(t) }),
            None => serde_json::json!({}),
        };
        issue_form.submit(st, ctx.path("report/issue"), body, ctx.version, move |r: IssuedReport| {
            issued.set(Some(r));
            ctx.reload();
        });
    };
    view! {
        <section class="panel report-bar" data-testid="inspection-report">
            <h2>"督查报告"</h2>
            <div class="actions">
                <button type="button" class="button" data-testid="action-download-report" on:click=download
                    disabled=move || downloading.get()>
                    {move || if downloading.get() { "正在生成…" } else { "下载督查报告（Word）" }}
                </button>
                <button type="button" class="button secondary" data-testid="action-preview-report" on:click=show>
                    {move || if showing.get() { "收起预览" } else { "预览报告" }}
                </button>
                {ctx.admin.then(|| view! {
                    <Writable>
                        <button type="button" class="button secondary" data-testid="action-issue-report" on:click=issue
                            disabled=move || issue_form.busy.get()
                            title="生成报告并记录其 SHA-256 摘要，作为正式签发的依据">
                            "签发报告"
                        </button>
                    </Writable>
                })}
            </div>
            {move || {
                let cited = ctx.d.with_value(|d| d.self_inspections.clone());
                (!cited.is_empty()).then(|| view! {
                    <p class="muted small" data-testid="inspection-self-inspections">
                        "报告引用的自查报告："
                        {cited.into_iter().map(|s| format!("《{}》", s.title)).collect::<Vec<_>>().join("、")}
                        " "
                        <Link to=Route::SelfInspections { tenant: ctx.tenant.get_value() }.path()>"查看"</Link>
                    </p>
                })
            }}
            <label class="report-point" title="生成并签发某一历史时点的报告（北京时间）；不填则为当前状态">
                "报告时点（可选）"
                <input type="datetime-local" data-testid="report-as-of"
                    prop:value=move || point.get().map(format::local_input_value).unwrap_or_default()
                    on:change=move |ev| {
                        point.set(format::parse_local_input(&event_target_value(&ev)));
                        showing.set(false);
                    }/>
            </label>
            {move || point.get().map(|t| view! {
                <p class="muted small" data-testid="report-as-of-note">
                    {format!("预览、下载和签发均为 {} 时的报告。", t.format("%Y-%m-%d %H:%M"))}
                </p>
            })}
            {move || dl_error.get().map(|e| view! { <ErrorBox error=e/> })}
            {form_error(issue_form, &[])}
            {stale(issue_form, ctx)}
            {move || issued.get().map(|r| view! {
                <p class="notice" role="status" data-testid="inspection-report-issued">
                    {format!(
                        "报告已签发（{}依据日志位置 {}，记录于位置 {}）。SHA-256：",
                        r.as_of.as_deref().map(|a| format!("时点 {}，", format::rfc3339(a))).unwrap_or_default(),
                        r.log_position,
                        r.recorded_at_position
                    )}
                    <code class="hash" data-testid="inspection-report-sha256">{r.sha256}</code>
                </p>
            })}
            {move || showing.get().then(|| match preview.get() {
                None => view! { <Loading/> }.into_any(),
                Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                // A sandboxed frame: no scripts run in it; same origin only so that the page can
                // size it and tests can read it.
                Some(Ok(html)) => view! {
                    <iframe class="report-preview" sandbox="allow-same-origin" srcdoc=html title="督查报告预览"
                        data-testid="inspection-report-preview"></iframe>
                }.into_any(),
            })}
        </section>
    }
}

// ------------------------------------------------------------------ the command forms

/// After a 412 (someone else changed the inspection since it was loaded): a button that loads the
/// latest state, so the user can check it and submit again.
fn stale(form: FormState, ctx: Ctx) -> impl IntoView {
    move || {
        form.error.get().filter(|e| e.status == 412).map(|_| {
            view! {
                <button type="button" class="button secondary" data-testid="action-reload-inspection"
                    on:click=move |_| ctx.reload()>
                    "载入最新内容"
                </button>
            }
        })
    }
}

fn start_form(ctx: Ctx) -> impl IntoView {
    let form = FormState::new();
    let on = RwSignal::new(format::date(ctx.today));
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match check::past_date("started_on", "开始日期", &on.get_untracked(), ctx.today) {
            Err(e) => form.invalid(e),
            Ok(started_on) => ctx.send(form, "start", StartInspectionRequest { started_on }),
        }
    };
    view! {
        <form class="form card-form" data-testid="form-start" novalidate on:submit=submit>
            <h2>"启动督查"</h2>
            <p class="muted">"启动后，督查组即可记录座谈交流、查阅资料、扣分、工作情况和存在问题。"</p>
            <label>"开始日期"
                <input type="date" name="started_on" data-testid="field-started_on" bind:value=on/>
                {field_error(form, "started_on")}
            </label>
            {form_error(form, &["started_on"])}
            {stale(form, ctx)}
            <div class="actions">{submit_button(form, "action-start-inspection", "启动督查")}</div>
        </form>
    }
}

fn scope_form(ctx: Ctx) -> impl IntoView {
    let form = FormState::new();
    let options: Vec<(String, String)> =
        ctx.tv.with_value(|t| t.communities.iter().map(|c| (c.community_id.to_string(), c.name.clone())).collect());
    let chosen = RwSignal::new(ctx.scope().into_iter().map(|(id, _)| id).collect::<Vec<_>>());
    let opts = StoredValue::new(options.clone());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let picked = opts.with_value(|o| in_order(o, &chosen.get_untracked()));
        match check::at_least_one("communities", "请至少选择一个社区", &picked) {
            Err(e) => form.invalid(e),
            Ok(cs) => ctx.send(
                form,
                "scope",
                ChangeScopeRequest { communities: cs.into_iter().filter_map(|c| c.try_into().ok()).collect() },
            ),
        }
    };
    view! {
        <details class="form-details">
            <summary data-testid="action-open-scope-form">"调整督查范围"</summary>
            <form class="form" data-testid="form-scope" novalidate on:submit=submit>
                <div class="checks">{checkbox_group("communities", options, chosen)}</div>
                {field_error(form, "communities")}
                {form_error(form, &["communities"])}
                {stale(form, ctx)}
                <div class="actions">{submit_button(form, "action-change-scope", "保存范围")}</div>
            </form>
        </details>
    }
}

fn team_form(ctx: Ctx) -> impl IntoView {
    let form = FormState::new();
    let tenant = ctx.tenant.get_value();
    let options = ctx.users.with_value(|u| eligible_users(u, &tenant));
    let (current, lead) = ctx.d.with_value(|d| {
        (
            d.team.iter().map(|m| m.user_id.to_string()).collect::<Vec<_>>(),
            d.team.iter().find(|m| m.leader).map(|m| m.user_id.to_string()).unwrap_or_default(),
        )
    });
    let chosen = RwSignal::new(current);
    let leader = RwSignal::new(lead);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match check::at_least_one("team", "督查组至少需要一名成员", &chosen.get_untracked()) {
            Err(e) => form.invalid(e),
            Ok(team) => ctx.send(form, "team", ChangeTeamRequest { team: team_of(&team, &leader.get_untracked()) }),
        }
    };
    view! {
        <details class="form-details">
            <summary data-testid="action-open-team-form">"调整督查组"</summary>
            <form class="form" data-testid="form-team" novalidate on:submit=submit>
                {if options.is_empty() {
                    view! { <p class="muted">"本街道还没有可选的督查组成员，请先在“用户与角色”中添加。"</p> }.into_any()
                } else {
                    view! { <div class="checks">{team_picker(options, chosen, leader)}</div> }.into_any()
                }}
                {field_error(form, "team")}
                {form_error(form, &["team"])}
                {stale(form, ctx)}
                <div class="actions">{submit_button(form, "action-change-team", "保存督查组")}</div>
            </form>
        </details>
    }
}

/// `<option>`s of the communities in scope.
fn scope_options(ctx: Ctx) -> impl IntoView {
    ctx.scope().into_iter().map(|(id, name)| view! { <option value=id>{name}</option> }).collect_view()
}

/// The 社区 field of a form: the communities in scope and, where the command allows it, a 全街道
/// choice (value "") shown first or last, with the field's error under it.
fn community_field(
    ctx: Ctx,
    form: FormState,
    community: RwSignal<String>,
    whole: Option<(&'static str, bool)>,
) -> impl IntoView {
    let whole_option = move |first: bool| {
        whole.filter(|(_, f)| *f == first).map(|(label, _)| view! { <option value="">{label}</option> })
    };
    view! {
        <label>"社区"
            <select name="community_id" data-testid="field-community_id" prop:value=move || community.get()
                on:change=move |ev| community.set(event_target_value(&ev))>
                {whole_option(true)}
                {scope_options(ctx)}
                {whole_option(false)}
            </select>
            {field_error(form, "community_id")}
        </label>
    }
}

fn select_signal(initial: String) -> RwSignal<String> {
    RwSignal::new(initial)
}

const FIELDWORK_FIELDS: &[&str] = &["community_id", "method", "held_on", "participants", "notes"];

fn fieldwork_form(ctx: Ctx) -> impl IntoView {
    let form = FormState::new();
    let community = select_signal(ctx.scope().first().map(|c| c.0.clone()).unwrap_or_default());
    let methods: Vec<(String, String)> = ctx
        .d
        .with_value(|d| d.methods.iter().zip(&d.method_names).map(|(m, n)| (m.code().to_owned(), n.clone())).collect());
    let method = select_signal(methods.first().map(|m| m.0.clone()).unwrap_or_default());
    let held_on = RwSignal::new(format::date(ctx.today));
    let participants = RwSignal::new(String::new());
    let notes = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = (|| -> Result<RecordFieldworkRequest, FieldError> {
            let community_id = community_id(&community.get_untracked())?;
            let method = Some(method.get_untracked())
                .filter(|m| !m.is_empty())
                .map(|m| InspectionMethod::new(&m))
                .ok_or(("method", "请选择督查方式".to_owned()))?;
            let held_on = check::past_date("held_on", "日期", &held_on.get_untracked(), ctx.today)?;
            let participants = check::optional("participants", "参加人员", &participants.get_untracked(), 200)?;
            let notes = check::required("notes", "记录内容", &notes.get_untracked(), 2000)?;
            Ok(RecordFieldworkRequest { community_id, method, held_on, participants, notes })
        })();
        match body {
            Err(e) => form.invalid(e),
            Ok(b) => ctx.send(form, "fieldwork", b),
        }
    };
    view! {
        <form class="form card-form" data-testid="form-fieldwork" novalidate on:submit=submit>
            <h2>"记录座谈交流、查阅资料"</h2>
            <div class="form-grid">
                {community_field(ctx, form, community, None)}
                <label>"方式"
                    <select name="method" data-testid="field-method" prop:value=move || method.get()
                        on:change=move |ev| method.set(event_target_value(&ev))>
                        {methods.iter().map(|(code, name)| view! { <option value=code.clone()>{name.clone()}</option> }).collect_view()}
                    </select>
                    {field_error(form, "method")}
                </label>
                <label>"日期"
                    <input type="date" name="held_on" data-testid="field-held_on" bind:value=held_on/>
                    {field_error(form, "held_on")}
                </label>
                <label>"参加人员"
                    <input type="text" name="participants" maxlength="200" placeholder="如：社区党委书记、宣传委员"
                        data-testid="field-participants" bind:value=participants/>
                    {field_error(form, "participants")}
                </label>
                <label class="wide">"记录内容"
                    <textarea name="notes" rows="3" data-testid="field-notes" bind:value=notes></textarea>
                    {field_error(form, "notes")}
                </label>
            </div>
            {form_error(form, FIELDWORK_FIELDS)}
            {stale(form, ctx)}
            <div class="actions">{submit_button(form, "action-record-fieldwork", "保存记录")}</div>
        </form>
    }
}

fn community_id(value: &str) -> Result<ducha_events::ids::CommunityId, FieldError> {
    value.to_owned().try_into().map_err(|_| ("community_id", "请选择社区".to_owned()))
}

const DEDUCTION_FIELDS: &[&str] = &["community_id", "item_code", "points", "reason"];

fn deduction_form(ctx: Ctx) -> impl IntoView {
    let form = FormState::new();
    let items: Vec<(String, String, u32)> = ctx.d.with_value(|d| {
        let cl = d.checklist_id.as_ref();
        ctx.tv.with_value(|t| {
            t.checklists
                .iter()
                .find(|c| Some(&c.checklist_id) == cl)
                .map(|c| c.items.iter().map(|i| (i.code.clone(), i.title.clone(), i.max_points.0)).collect())
                .unwrap_or_default()
        })
    });
    let community = select_signal(ctx.scope().first().map(|c| c.0.clone()).unwrap_or_default());
    let item = select_signal(items.first().map(|i| i.0.clone()).unwrap_or_default());
    let points = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    // What is left of the item's points for the chosen community (the server checks again).
    let remaining = move || {
        let (c, code) = (community.get(), item.get());
        ctx.d.with_value(|d| {
            d.scores
                .iter()
                .find(|s| s.community.community_id.as_ref().map(|x| x.as_str()) == Some(c.as_str()))
                .and_then(|s| s.items.iter().find(|i| i.code == code))
                .map(|i| i.score.0)
        })
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = (|| -> Result<RecordDeductionRequest, FieldError> {
            let community_id = community_id(&community.get_untracked())?;
            let item_code = item.get_untracked();
            if item_code.is_empty() {
                return Err(("item_code", "请选择评分项".into()));
            }
            let h = check::deduction_points(&points.get_untracked(), None)?;
            let reason = check::required("reason", "扣分理由", &reason.get_untracked(), 200)?;
            Ok(RecordDeductionRequest { community_id, item_code, points: Points(h), reason })
        })();
        match body {
            Err(e) => form.invalid(e),
            Ok(b) => ctx.send(form, "deductions", b),
        }
    };
    view! {
        <form class="form card-form" data-testid="form-deduction" novalidate on:submit=submit>
            <h2>"记录扣分"</h2>
            <div class="form-grid">
                {community_field(ctx, form, community, None)}
                <label class="wide">"评分项"
                    <select name="item_code" data-testid="field-item_code" prop:value=move || item.get()
                        on:change=move |ev| item.set(event_target_value(&ev))>
                        {items.iter().map(|(code, title, max)| view! {
                            <option value=code.clone()>{format!("{code} {title}（{} 分）", check::points_text(*max))}</option>
                        }).collect_view()}
                    </select>
                    {field_error(form, "item_code")}
                </label>
                <label>"扣分"
                    <input type="text" inputmode="decimal" name="points" placeholder="如 1 或 0.5"
                        data-testid="field-points" bind:value=points/>
                    <small class="muted" data-testid="deduction-remaining">
                        {move || remaining().map(|r| format!("该项剩余 {} 分", check::points_text(r))).unwrap_or_default()}
                    </small>
                    {field_error(form, "points")}
                </label>
                <label class="wide">"扣分理由"
                    <input type="text" name="reason" maxlength="200" data-testid="field-reason" bind:value=reason/>
                    {field_error(form, "reason")}
                </label>
            </div>
            {form_error(form, DEDUCTION_FIELDS)}
            {stale(form, ctx)}
            <div class="actions">{submit_button(form, "action-record-deduction", "保存扣分")}</div>
        </form>
    }
}

const ACHIEVEMENT_FIELDS: &[&str] = &["category", "text", "figures", "community_id"];

fn achievement_form(ctx: Ctx) -> impl IntoView {
    let form = FormState::new();
    let category = RwSignal::new(String::new());
    let text = RwSignal::new(String::new());
    let figures = RwSignal::new(String::new());
    let community = select_signal(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = (|| -> Result<RecordAchievementRequest, FieldError> {
            let category = check::required("category", "工作类别", &category.get_untracked(), 200)?;
            let text = check::required("text", "工作情况", &text.get_untracked(), 2000)?;
            let figures = check::figures(&figures.get_untracked())?
                .into_iter()
                .map(|(label, value, unit)| Figure { label, value, unit })
                .collect();
            let c = community.get_untracked();
            let community_id = if c.is_empty() { None } else { Some(community_id(&c)?) };
            Ok(RecordAchievementRequest { achievement_id: None, category, text, figures, community_id })
        })();
        match body {
            Err(e) => form.invalid(e),
            Ok(b) => ctx.send(form, "achievements", b),
        }
    };
    view! {
        <form class="form card-form" data-testid="form-achievement" novalidate on:submit=submit>
            <h2>"记录主要工作开展情况"</h2>
            <div class="form-grid">
                <label class="wide">"工作类别"
                    <input type="text" name="category" placeholder="如：加强理论武装，坚定理想信念"
                        data-testid="field-category" bind:value=category/>
                    {field_error(form, "category")}
                </label>
                {community_field(ctx, form, community, Some(("全街道", true)))}
                <label class="wide">"工作情况"
                    <textarea name="text" rows="3" data-testid="field-text" bind:value=text></textarea>
                    {field_error(form, "text")}
                </label>
                <label class="wide">"数字（每行一项：名称 数值 单位）"
                    <textarea name="figures" rows="2" placeholder="理论宣讲会 10 场" data-testid="field-figures"
                        bind:value=figures></textarea>
                    {field_error(form, "figures")}
                </label>
            </div>
            {form_error(form, ACHIEVEMENT_FIELDS)}
            {stale(form, ctx)}
            <div class="actions">{submit_button(form, "action-record-achievement", "保存工作情况")}</div>
        </form>
    }
}

const FINDING_FIELDS: &[&str] = &["community_id", "category", "title", "description", "severity"];

fn severity_code(s: Severity) -> &'static str {
    match s {
        Severity::General => "general",
        Severity::Major => "major",
        Severity::Serious => "serious",
    }
}

fn finding_form(ctx: Ctx) -> impl IntoView {
    let form = FormState::new();
    let categories: Vec<(String, String)> =
        ctx.tv.with_value(|t| t.categories.iter().map(|c| (c.code.clone(), c.name.clone())).collect());
    let community = select_signal(ctx.scope().first().map(|c| c.0.clone()).unwrap_or_default());
    let category = select_signal(categories.first().map(|c| c.0.clone()).unwrap_or_default());
    let title = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let severity = select_signal("general".to_owned());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = (|| -> Result<RecordFindingRequest, FieldError> {
            let c = community.get_untracked();
            let community_id = if c.is_empty() { None } else { Some(community_id(&c)?) };
            let category = category.get_untracked();
            if category.is_empty() {
                return Err(("category", "请选择问题类别".into()));
            }
            let title = check::required("title", "问题标题", &title.get_untracked(), 100)?;
            let description = check::required("description", "问题描述", &description.get_untracked(), 2000)?;
            let severity = [Severity::General, Severity::Major, Severity::Serious]
                .into_iter()
                .find(|s| severity_code(*s) == severity.get_untracked())
                .unwrap_or_default();
            Ok(RecordFindingRequest { finding_id: None, community_id, category, title, description, severity })
        })();
        match body {
            Err(e) => form.invalid(e),
            Ok(b) => ctx.send(form, "findings", b),
        }
    };
    view! {
        <form class="form card-form" data-testid="form-finding" novalidate on:submit=submit>
            <h2>"记录存在问题"</h2>
            <div class="form-grid">
                {community_field(ctx, form, community, Some(("全街道（共性问题）", false)))}
                <label>"问题类别"
                    <select name="category" data-testid="field-category" prop:value=move || category.get()
                        on:change=move |ev| category.set(event_target_value(&ev))>
                        {categories.into_iter().map(|(code, name)| view! { <option value=code>{name}</option> }).collect_view()}
                    </select>
                    {field_error(form, "category")}
                </label>
                <label>"严重程度"
                    <select name="severity" data-testid="field-severity" prop:value=move || severity.get()
                        on:change=move |ev| severity.set(event_target_value(&ev))>
                        {[Severity::General, Severity::Major, Severity::Serious].into_iter().map(|s| view! {
                            <option value=severity_code(s)>{s.name_zh()}</option>
                        }).collect_view()}
                    </select>
                    {field_error(form, "severity")}
                </label>
                <label class="wide">"问题标题"
                    <input type="text" name="title" maxlength="100" data-testid="field-title" bind:value=title/>
                    {field_error(form, "title")}
                </label>
                <label class="wide">"问题描述"
                    <textarea name="description" rows="3" data-testid="field-description" bind:value=description></textarea>
                    {field_error(form, "description")}
                </label>
            </div>
            {form_error(form, FINDING_FIELDS)}
            {stale(form, ctx)}
            <div class="actions">{submit_button(form, "action-record-finding", "保存问题")}</div>
        </form>
    }
}

fn conclusion_form(ctx: Ctx) -> impl IntoView {
    let form = FormState::new();
    let assessment = RwSignal::new(String::new());
    let summary = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = (|| -> Result<ConcludeInspectionRequest, FieldError> {
            let assessment = check::required("assessment", "总体评价", &assessment.get_untracked(), 500)?;
            let summary = check::optional("summary", "结论说明", &summary.get_untracked(), 2000)?;
            Ok(ConcludeInspectionRequest { assessment, summary })
        })();
        match body {
            Err(e) => form.invalid(e),
            Ok(b) => ctx.send(form, "conclusion", b),
        }
    };
    view! {
        <form class="form card-form" data-testid="form-conclusion" novalidate on:submit=submit>
            <h2>"填写督查结论"</h2>
            <p class="muted">"填写结论后督查即结束，不能再记录。"</p>
            <label>"总体评价"
                <input type="text" name="assessment" placeholder="如：总体较好" data-testid="field-assessment" bind:value=assessment/>
                {field_error(form, "assessment")}
            </label>
            <label>"结论说明"
                <textarea name="summary" rows="3" data-testid="field-summary" bind:value=summary></textarea>
                {field_error(form, "summary")}
            </label>
            {form_error(form, &["assessment", "summary"])}
            {stale(form, ctx)}
            <div class="actions">{submit_button(form, "action-conclude-inspection", "结束督查")}</div>
        </form>
    }
}
