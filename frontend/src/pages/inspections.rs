//! 督查: `GET /tenants/{t}/inspections` as a table (year, title, status, communities in scope,
//! findings), its empty state, and the 制定督查计划 form (`POST /tenants/{t}/inspections`) for the
//! sub-district admin. Also the form helpers the inspection detail page shares: field errors next
//! to the field the problem names, browser-side errors in the same place, the write runner.

use crate::components::{Empty, ErrorBox, Link, Loading, Writable, loaded};
use crate::format;
use crate::inspection_form::{self as check, FieldError};
use crate::problem::ApiError;
use crate::route::Route;
use crate::state::{AppState, use_app};
use chrono::NaiveDate;
use ducha_events::api::{CommandAccepted, GrantView, PlanInspectionRequest};
use ducha_events::event::{InspectionMethod, TeamMember};
use ducha_events::inspection::InspectionStatus;
use ducha_events::projection::{CategoryEntry, ChecklistEntry, CommunityEntry, TermEntry};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;

// ------------------------------------------------------------------ shared with the detail page

/// `GET /tenants/{t}`: the sub-district's communities, categories and checklists.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TenantView {
    pub name: String,
    pub communities: Vec<CommunityEntry>,
    pub categories: Vec<CategoryEntry>,
    #[serde(default)]
    pub methods: Vec<TermEntry>,
    pub checklists: Vec<ChecklistEntry>,
}

/// One user of `GET /tenants/{t}/users` (only what the team picker needs).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UserView {
    pub user_id: String,
    pub display_name: String,
    pub disabled: bool,
    pub grants: Vec<GrantView>,
}

impl UserView {
    /// May be on a team here: an enabled inspector or sub-district admin of `tenant`.
    pub fn eligible(&self, tenant: &str) -> bool {
        !self.disabled
            && self.grants.iter().any(|g| {
                matches!(g.role.as_str(), "inspector" | "subdistrict_admin")
                    && g.scope.tenant_id.as_deref() == Some(tenant)
            })
    }
}

/// Whether the logged-in user holds `role` in `tenant` (tracked: `/me` may arrive after the page).
pub fn has_role(st: AppState, role: &str, tenant: &str) -> bool {
    st.me.with(|m| {
        m.as_ref()
            .is_some_and(|m| m.grants.iter().any(|g| g.role == role && g.scope.tenant_id.as_deref() == Some(tenant)))
    })
}

/// Today in Asia/Shanghai.
pub fn today() -> NaiveDate {
    format::from_epoch_millis(js_sys::Date::now()).map(|t| t.date()).unwrap_or_default()
}

/// A form's state: the error to show (from the browser's checks or the server) and whether a
/// request is under way.
#[derive(Clone, Copy)]
pub struct FormState {
    pub error: RwSignal<Option<ApiError>>,
    pub busy: RwSignal<bool>,
}

impl FormState {
    pub fn new() -> FormState {
        FormState { error: RwSignal::new(None), busy: RwSignal::new(false) }
    }

    /// A browser-side check failed: shown next to its field like the server's error would be.
    pub fn invalid(&self, (field, detail): FieldError) {
        self.error.set(Some(ApiError {
            status: 0,
            code: "client_validation".into(),
            title: "请检查填写的内容".into(),
            detail,
            field: Some(field.to_owned()),
        }));
    }

    /// Posts `body` to `path` (with `If-Match` when `version` is known) and hands the answer to
    /// `done`; an error stays on the form.
    pub fn submit<B, T>(self, st: AppState, path: String, body: B, version: Option<u64>, done: impl FnOnce(T) + 'static)
    where
        B: Serialize + 'static,
        T: DeserializeOwned + 'static,
    {
        if self.busy.get_untracked() {
            return;
        }
        self.busy.set(true);
        self.error.set(None);
        spawn_local(async move {
            let answer = st.api.post_if_match::<B, T>(&path, &body, version).await;
            self.busy.set(false);
            match answer {
                Ok(v) => done(v),
                Err(e) => self.error.set(Some(e)),
            }
        });
    }
}

/// The error of `form` when it names `field`: shown under that field.
pub fn field_error(form: FormState, field: &'static str) -> impl IntoView {
    move || {
        form.error.get().filter(|e| e.field.as_deref() == Some(field)).map(|e| {
            view! {
                <p class="field-error" role="alert" data-testid="field-error" data-field=field data-code=e.code.clone()>
                    {e.detail.clone()}
                </p>
            }
        })
    }
}

/// The error of `form` when it names none of `fields`: shown above the submit button. A 403 is
/// said plainly.
pub fn form_error(form: FormState, fields: &'static [&'static str]) -> impl IntoView {
    move || {
        form.error.get().filter(|e| e.field.as_deref().is_none_or(|f| !fields.contains(&f))).map(|mut e| {
            if e.status == 403 && e.code == "forbidden" {
                e.detail = format!("您没有权限执行此操作：{}", e.detail);
            }
            if e.status == 412 {
                e.detail = format!("{}。请载入最新内容，核对后再提交。", e.detail.trim_end_matches('。'));
            }
            view! { <ErrorBox error=e/> }
        })
    }
}

/// A submit button that says so while the request runs.
pub fn submit_button(form: FormState, testid: &'static str, label: &'static str) -> impl IntoView {
    view! {
        <button type="submit" class="button" data-testid=testid disabled=move || form.busy.get()>
            {move || if form.busy.get() { "提交中…" } else { label }}
        </button>
    }
}

/// Checkboxes for a multiple choice of (value, label), bound to `chosen`.
pub fn checkbox_group(
    name: &'static str,
    options: Vec<(String, String)>,
    chosen: RwSignal<Vec<String>>,
) -> impl IntoView {
    options
        .into_iter()
        .map(|(value, label)| {
            let v1 = value.clone();
            let v2 = value.clone();
            view! {
                <label class="check">
                    <input
                        type="checkbox"
                        name=name
                        value=value
                        data-testid=format!("field-{name}")
                        prop:checked=move || chosen.with(|c| c.contains(&v1))
                        on:change=move |ev| {
                            let on = event_target_checked(&ev);
                            chosen.update(|c| {
                                c.retain(|x| x != &v2);
                                if on {
                                    c.push(v2.clone());
                                }
                            });
                        }
                    />
                    <span>{label}</span>
                </label>
            }
        })
        .collect_view()
}

/// The chosen values in the options' order (so the plan keeps the list's order).
pub fn in_order(options: &[(String, String)], chosen: &[String]) -> Vec<String> {
    options.iter().filter(|(v, _)| chosen.contains(v)).map(|(v, _)| v.clone()).collect()
}

/// The team picker: members (checkboxes) and the leader (组长, a radio among them).
pub fn team_picker(
    users: Vec<(String, String)>,
    chosen: RwSignal<Vec<String>>,
    leader: RwSignal<String>,
) -> impl IntoView {
    users
        .into_iter()
        .map(|(id, name)| {
            let (a, b, c, d) = (id.clone(), id.clone(), id.clone(), id.clone());
            view! {
                <div class="team-pick">
                    <label class="check">
                        <input
                            type="checkbox"
                            name="team"
                            value=id.clone()
                            data-testid="field-team"
                            prop:checked=move || chosen.with(|v| v.contains(&a))
                            on:change=move |ev| {
                                let on = event_target_checked(&ev);
                                chosen.update(|v| {
                                    v.retain(|x| x != &b);
                                    if on {
                                        v.push(b.clone());
                                    }
                                });
                            }
                        />
                        <span>{name}</span>
                    </label>
                    <label class="check small">
                        <input
                            type="radio"
                            name="leader"
                            value=id
                            data-testid="field-leader"
                            prop:checked=move || leader.get() == c
                            on:change=move |_| {
                                leader.set(d.clone());
                                chosen.update(|v| {
                                    if !v.contains(&d) {
                                        v.push(d.clone());
                                    }
                                });
                            }
                        />
                        <span>"组长"</span>
                    </label>
                </div>
            }
        })
        .collect_view()
}

/// The team as the API takes it: the chosen users, the leader marked.
pub fn team_of(chosen: &[String], leader: &str) -> Vec<TeamMember> {
    chosen
        .iter()
        .filter_map(|id| {
            ducha_events::ids::UserId::try_from(id.clone())
                .ok()
                .map(|user_id| TeamMember { user_id, leader: id == leader })
        })
        .collect()
}

/// The users who may be on a team of `tenant`, as (id, name).
pub fn eligible_users(users: &[UserView], tenant: &str) -> Vec<(String, String)> {
    users.iter().filter(|u| u.eligible(tenant)).map(|u| (u.user_id.clone(), u.display_name.clone())).collect()
}

/// The methods a new plan may choose: the tenant's usable ones, as (code, name).
pub fn usable_methods(tv: &TenantView) -> Vec<(String, String)> {
    tv.methods.iter().filter(|m| !m.retired).map(|m| (m.code.clone(), m.name.clone())).collect()
}

// ------------------------------------------------------------------ the list

/// One inspection of `GET /tenants/{t}/inspections`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InspectionSummary {
    pub inspection_id: String,
    pub year: i32,
    pub title: String,
    pub status: InspectionStatus,
    pub status_name: String,
    pub planned_start: NaiveDate,
    pub planned_end: NaiveDate,
    pub communities: usize,
    pub team: usize,
    pub findings: usize,
    pub findings_closed: usize,
}

#[component]
pub fn InspectionsPage(tenant: String) -> impl IntoView {
    let st = use_app();
    let admin = Memo::new({
        let tenant = tenant.clone();
        move |_| has_role(st, "subdistrict_admin", &tenant)
    });
    let path = format!("/tenants/{tenant}/inspections");
    let data = LocalResource::new(move || st.api.get::<Vec<InspectionSummary>>(&path));
    let open = RwSignal::new(false);
    // Nothing planned yet: the admin sees the form at once.
    Effect::new(move |_| {
        if admin.get() && matches!(data.get(), Some(Ok(ref l)) if l.is_empty()) {
            open.set(true);
        }
    });
    let t = StoredValue::new(tenant);
    view! {
        <section class="page" data-page="inspections">
            <header class="page-head">
                <h1>"督查"</h1>
                {move || admin.get().then(|| view! {
                    <Writable>
                        <button type="button" class="button" data-testid="action-open-plan-form"
                            on:click=move |_| open.update(|o| *o = !*o)>
                            {move || if open.get() { "收起" } else { "制定督查计划" }}
                        </button>
                    </Writable>
                })}
            </header>
            {move || (admin.get() && open.get()).then(|| view! { <Writable><PlanForm tenant=t.get_value()/></Writable> })}
            {move || loaded(data.get(), move |list| inspections_table(t.get_value(), list, admin.get()))}
        </section>
    }
}

fn inspections_table(tenant: String, list: Vec<InspectionSummary>, admin: bool) -> AnyView {
    if list.is_empty() {
        let hint = if admin {
            "请在上方填写“制定督查计划”：年度、标题、督查范围、督查组和督查方式，保存后即可启动督查。"
        } else {
            "街道管理员制定督查计划后，督查会列在这里。"
        };
        return view! { <Empty message="还没有督查计划" hint=hint/> }.into_any();
    }
    let rows = list
        .into_iter()
        .map(|i| {
            let to = Route::Inspection { tenant: tenant.clone(), inspection: i.inspection_id.clone() }.path();
            view! {
                <tr data-testid="inspections-row" data-id=i.inspection_id.clone()>
                    <td>{i.year}</td>
                    <td><Link to=to testid="inspections-open">{i.title.clone()}</Link></td>
                    <td><span class=check::status_class(i.status.code()) data-testid="inspections-status">{i.status_name.clone()}</span></td>
                    <td class="num" data-testid="inspections-communities">{i.communities}</td>
                    <td class="num">{i.team}</td>
                    <td class="num" data-testid="inspections-findings">
                        {i.findings}
                        <small class="muted">{format!("（已销号 {}）", i.findings_closed)}</small>
                    </td>
                    <td>{format!("{} 至 {}", format::date(i.planned_start), format::date(i.planned_end))}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="inspections-table">
                <thead>
                    <tr>
                        <th>"年度"</th><th>"督查"</th><th>"状态"</th><th>"督查社区"</th><th>"督查组"</th>
                        <th>"发现问题"</th><th>"计划时间"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

// ------------------------------------------------------------------ 制定督查计划

const PLAN_FIELDS: &[&str] =
    &["year", "title", "subject", "communities", "team", "methods", "checklist_id", "planned_start", "planned_end"];

#[component]
fn PlanForm(tenant: String) -> impl IntoView {
    let st = use_app();
    let tv = LocalResource::new({
        let p = format!("/tenants/{tenant}");
        move || st.api.get_current::<TenantView>(&p)
    });
    let users = LocalResource::new({
        let p = format!("/tenants/{tenant}/users");
        move || st.api.get_current::<Vec<UserView>>(&p)
    });
    let t = StoredValue::new(tenant);
    move || {
        let (Some(tv), Some(users)) = (tv.get(), users.get()) else {
            return view! { <Loading/> }.into_any();
        };
        match (tv, users) {
            (Ok(tv), Ok(users)) => plan_form(st, t.get_value(), tv, users).into_any(),
            (Err(e), _) | (_, Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
        }
    }
}

fn plan_form(st: AppState, tenant: String, tv: TenantView, users: Vec<UserView>) -> impl IntoView {
    let form = FormState::new();
    let now = today();
    let year = RwSignal::new(now.format("%Y").to_string());
    let title = RwSignal::new(String::new());
    let subject = RwSignal::new("意识形态工作责任制落实情况".to_owned());
    let communities: Vec<(String, String)> =
        tv.communities.iter().map(|c| (c.community_id.to_string(), c.name.clone())).collect();
    let chosen_c = RwSignal::new(communities.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>());
    let team_opts = eligible_users(&users, &tenant);
    let chosen_t = RwSignal::new(Vec::<String>::new());
    let leader = RwSignal::new(String::new());
    let methods = usable_methods(&tv);
    // The sample report's two methods when the tenant still has them, else its first one.
    let preferred: Vec<String> = ["meeting", "document_review"]
        .iter()
        .filter(|c| methods.iter().any(|(m, _)| m == *c))
        .map(|c| (*c).to_owned())
        .collect();
    let preferred =
        if preferred.is_empty() { methods.iter().take(1).map(|(c, _)| c.clone()).collect() } else { preferred };
    let chosen_m = RwSignal::new(preferred);
    let checklist = RwSignal::new(tv.checklists.first().map(|c| c.checklist_id.to_string()).unwrap_or_default());
    let start = RwSignal::new(format::date(now));
    let end = RwSignal::new(String::new());
    let c_opts = StoredValue::new(communities.clone());
    let checklist_opts = tv
        .checklists
        .iter()
        .map(|c| {
            let id = c.checklist_id.to_string();
            view! { <option value=id.clone()>{c.title.clone()}</option> }
        })
        .collect_view();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = (|| -> Result<PlanInspectionRequest, FieldError> {
            let year = check::year(&year.get_untracked())?;
            let title = check::required("title", "督查标题", &title.get_untracked(), 100)?;
            let subject = check::required("subject", "督查内容", &subject.get_untracked(), 200)?;
            let cs = check::at_least_one(
                "communities",
                "请至少选择一个社区",
                &c_opts.with_value(|o| in_order(o, &chosen_c.get_untracked())),
            )?;
            let team = check::at_least_one("team", "督查组至少需要一名成员", &chosen_t.get_untracked())?;
            let ms = check::at_least_one("methods", "请至少选择一种督查方式", &chosen_m.get_untracked())?;
            let (planned_start, planned_end) = check::period(&start.get_untracked(), &end.get_untracked())?;
            let checklist_id = checklist.get_untracked();
            Ok(PlanInspectionRequest {
                inspection_id: None,
                year,
                title,
                subject,
                communities: cs.into_iter().filter_map(|c| c.try_into().ok()).collect(),
                team: team_of(&team, &leader.get_untracked()),
                methods: ms.iter().map(|m| InspectionMethod::new(m)).collect(),
                checklist_id: (!checklist_id.is_empty()).then(|| checklist_id.try_into().ok()).flatten(),
                planned_start,
                planned_end,
            })
        })();
        match body {
            Err(e) => form.invalid(e),
            Ok(body) => {
                let tenant = tenant.clone();
                form.submit(st, format!("/tenants/{tenant}/inspections"), body, None, move |a: CommandAccepted| {
                    st.router.navigate(&Route::Inspection { tenant, inspection: a.id }.path());
                });
            }
        }
    };
    view! {
        <form class="form card-form" data-testid="inspections-plan-form" novalidate on:submit=on_submit>
            <h2>"制定督查计划"</h2>
            <div class="form-grid">
                <label>"年度"
                    <input type="number" name="year" min="2000" max="2100" data-testid="field-year" bind:value=year/>
                    {field_error(form, "year")}
                </label>
                <label>"督查标题"
                    <input type="text" name="title" maxlength="100" placeholder="如：2024年度意识形态工作责任制落实情况督查"
                        data-testid="field-title" bind:value=title/>
                    {field_error(form, "title")}
                </label>
                <label class="wide">"督查内容"
                    <input type="text" name="subject" maxlength="200" data-testid="field-subject" bind:value=subject/>
                    {field_error(form, "subject")}
                </label>
                <label>"计划开始"
                    <input type="date" name="planned_start" data-testid="field-planned_start" bind:value=start/>
                    {field_error(form, "planned_start")}
                </label>
                <label>"计划结束"
                    <input type="date" name="planned_end" data-testid="field-planned_end" bind:value=end/>
                    {field_error(form, "planned_end")}
                </label>
                <label>"评分表"
                    <select name="checklist_id" data-testid="field-checklist_id"
                        prop:value=move || checklist.get()
                        on:change=move |ev| checklist.set(event_target_value(&ev))>
                        <option value="">"不评分"</option>
                        {checklist_opts}
                    </select>
                    {field_error(form, "checklist_id")}
                </label>
            </div>
            <fieldset>
                <legend>"督查范围（社区）"</legend>
                <div class="checks">{checkbox_group("communities", communities, chosen_c)}</div>
                {field_error(form, "communities")}
            </fieldset>
            <fieldset>
                <legend>"督查组"</legend>
                {if team_opts.is_empty() {
                    view! { <p class="muted">"本街道还没有督查组成员，请先在“用户与角色”中添加。"</p> }.into_any()
                } else {
                    view! { <div class="checks">{team_picker(team_opts, chosen_t, leader)}</div> }.into_any()
                }}
                {field_error(form, "team")}
            </fieldset>
            <fieldset>
                <legend>"督查方式"</legend>
                <div class="checks">{checkbox_group("methods", methods, chosen_m)}</div>
                {field_error(form, "methods")}
            </fieldset>
            {form_error(form, PLAN_FIELDS)}
            <div class="actions">{submit_button(form, "action-plan-inspection", "保存督查计划")}</div>
        </form>
    }
}
