//! Administration: a sub-district's 社区 (`/tenants/{t}/communities`), 问题类别 and 考核细则
//! (`/tenants/{t}/checklists`), 用户与角色 (`/tenants/{t}/users`), and the platform's 区 and 街道
//! (`/platform`). Lists with empty states; every write form is checked in the browser first
//! ([`crate::validate`]), sends `If-Match` with the list's `ETag` (the tenant, sub-district or
//! district aggregate's version), shows the server's `detail` next to the field it names, and is
//! wrapped in `<Writable>`.

use crate::components::{Empty, ErrorBox, Link, Loading, Writable, loaded};
use crate::problem::ApiError;
use crate::state::use_app;
use crate::validate;
use ducha_events::api::GrantView;
use ducha_events::projection::{ChecklistEntry, CommunityEntry, TermEntry};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Deserialize;
use serde_json::{Value, json};

/// `UserView` of `GET /tenants/{t}/users`.
#[derive(Debug, Clone, Deserialize)]
struct UserView {
    user_id: String,
    username: String,
    display_name: String,
    disabled: bool,
    grants: Vec<GrantView>,
}

/// `DistrictView` of `GET /districts`.
#[derive(Debug, Clone, Deserialize)]
struct DistrictView {
    district_id: String,
    name: String,
    tenants: u64,
}

/// `TenantSummary` of `GET /districts/{d}/tenants`.
#[derive(Debug, Clone, Deserialize)]
struct TenantSummary {
    tenant_id: String,
    name: String,
    communities: u64,
}

/// The roles a sub-district admin hands out, with their Chinese names.
const TENANT_ROLES: [(&str, &str); 4] = [
    ("inspector", "督查组成员"),
    ("community_officer", "社区联络员"),
    ("subdistrict_admin", "街道管理员"),
    ("auditor", "审计（纪检）"),
];

/// A form's error: from the browser's own checks (status 0) or the server's problem.
type FormError = RwSignal<Option<ApiError>>;

fn local_error(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::local(field, message)
}

/// A labelled input named like the API's field (`field-<name>`), with the error for that field
/// under it.
#[component]
fn Field(
    label: &'static str,
    name: &'static str,
    value: RwSignal<String>,
    err: FormError,
    #[prop(default = "text")] kind: &'static str,
    #[prop(default = "")] placeholder: &'static str,
) -> impl IntoView {
    let mine = move || err.get().filter(|e| e.field.as_deref() == Some(name));
    view! {
        <label class="field">
            <span>{label}</span>
            <input type=kind name=name data-testid=format!("field-{name}") required=true placeholder=placeholder
                autocomplete="off" aria-invalid=move || mine().is_some().to_string()
                prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))/>
            {move || mine().map(|e| view! { <small class="field-error" data-testid="field-error" data-field=name>{e.detail}</small> })}
        </label>
    }
}

/// The form's error when it names none of the form's fields (or no field at all).
fn form_error(err: FormError, fields: &'static [&'static str]) -> impl IntoView {
    move || {
        err.get()
            .filter(|e| !e.field.as_deref().is_some_and(|f| fields.contains(&f)))
            .map(|e| view! { <ErrorBox error=e/> })
    }
}

/// Sends a write with `If-Match`; on success clears the error and calls `done`. On 412 (someone
/// changed it since the list was read) the server's message shows and the list reloads, so the
/// next try carries the new version.
fn submit(
    path: String,
    body: Value,
    version: Option<u64>,
    err: FormError,
    busy: RwSignal<bool>,
    reload: RwSignal<u32>,
    done: impl FnOnce() + 'static,
) {
    let st = use_app();
    busy.set(true);
    spawn_local(async move {
        let res = st.api.post_if_match::<Value, Value>(&path, &body, version).await;
        busy.set(false);
        match res {
            Ok(_) => {
                err.set(None);
                done();
            }
            Err(e) => {
                if e.status == 412 {
                    reload.update(|r| *r += 1);
                }
                err.set(Some(e));
            }
        }
    });
}

fn submit_button(testid: &'static str, label: &'static str, busy: RwSignal<bool>) -> impl IntoView {
    view! {
        <button type="submit" class="primary" data-testid=testid disabled=move || busy.get()>
            {move || if busy.get() { "提交中…" } else { label }}
        </button>
    }
}

/// Whether these grants administer the tenant (`Some`: its sub-district admin or the platform
/// admin) or the platform (`None`: the platform admin).
fn may_administer(grants: &[GrantView], tenant: Option<&str>) -> bool {
    grants.iter().any(|g| {
        g.role == "platform_admin"
            || (tenant.is_some() && g.role == "subdistrict_admin" && g.scope.tenant_id.as_deref() == tenant)
    })
}

/// Draws its children only for those who administer the page's tenant (or the platform); others
/// who open the page by its address get a plain "no permission" message (the API would refuse
/// their writes anyway, and most reads are open to them).
#[component]
fn AdminGuard(tenant: Option<String>, children: ChildrenFn) -> impl IntoView {
    let st = use_app();
    move || match st.me.get() {
        None => view! { <Loading/> }.into_any(),
        Some(me) if may_administer(&me.grants, tenant.as_deref()) => children().into_any(),
        Some(_) => {
            let page = st.router.route().title();
            view! {
                <section class="page" data-page="forbidden">
                    <div class="state state-error" role="alert" data-testid="error" data-code="forbidden">
                        <strong>"您没有访问此页面的权限"</strong>
                        <p>{format!("“{page}”仅限管理员使用。请从顶部菜单进入您有权使用的页面，如需权限请联系管理员。")}</p>
                        <small>"错误代码：forbidden"</small>
                    </div>
                </section>
            }
            .into_any()
        }
    }
}

// ---------------------------------------------------------------------------------- 社区

/// `CommunitiesPage`, for the sub-district's admin (and the platform admin) only.
#[component]
pub fn CommunitiesPage(tenant: String) -> impl IntoView {
    let t = tenant.clone();
    view! { <AdminGuard tenant=Some(tenant)><Communities tenant=t.clone()/></AdminGuard> }
}

#[component]
fn Communities(tenant: String) -> impl IntoView {
    let st = use_app();
    crate::live::use_live(&tenant);
    let reload = RwSignal::new(0u32);
    let list_path = format!("/tenants/{tenant}/communities");
    let path = StoredValue::new(list_path.clone());
    let data = LocalResource::new(move || {
        let _ = reload.get();
        let _ = st.live.revision.get();
        st.api.get_versioned::<Vec<CommunityEntry>>(&list_path)
    });
    let version = move || data.get().and_then(|r| r.ok()).and_then(|(_, v)| v);
    let (id, name, err, busy) =
        (RwSignal::new(String::new()), RwSignal::new(String::new()), RwSignal::new(None), RwSignal::new(false));
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (i, n) = (id.get_untracked().trim().to_owned(), name.get_untracked().trim().to_owned());
        if let Some(m) = validate::id(&i) {
            return err.set(Some(local_error("community_id", m)));
        }
        if let Some(m) = validate::name(&n) {
            return err.set(Some(local_error("name", m)));
        }
        submit(path.get_value(), json!({ "community_id": i, "name": n }), version(), err, busy, reload, move || {
            id.set(String::new());
            name.set(String::new());
            reload.update(|r| *r += 1);
        });
    };
    view! {
        <section class="page admin" data-page="communities">
            <header class="page-head"><h1>"社区"</h1><span class="muted">"本街道的社区；督查问题按社区落实整改。"</span></header>
            {move || loaded(data.get(), |(list, _)| {
                if list.is_empty() {
                    view! { <Empty message="还没有社区" hint="请在下方填写社区编号和名称，新增本街道的第一个社区。"/> }.into_any()
                } else {
                    let rows = list.into_iter().map(|c| view! {
                        <tr data-testid="communities-row" data-id=c.community_id.as_str().to_owned()><td>{c.community_id.as_str().to_owned()}</td><td>{c.name}</td></tr>
                    }).collect_view();
                    view! {
                        <table class="table" data-testid="communities-table">
                            <thead><tr><th>"编号"</th><th>"社区名称"</th></tr></thead>
                            <tbody>{rows}</tbody>
                        </table>
                    }.into_any()
                }
            })}
            <Writable>
                <form class="admin-form" data-testid="communities-form" novalidate=true on:submit=on_submit>
                    <h2>"新增社区"</h2>
                    <div class="form-row">
                        <Field label="社区编号" name="community_id" value=id err=err placeholder="如 dongfeng"/>
                        <Field label="社区名称" name="name" value=name err=err placeholder="如 东风社区"/>
                    </div>
                    {form_error(err, &["community_id", "name"])}
                    {submit_button("action-add-community", "新增社区", busy)}
                </form>
            </Writable>
        </section>
    }
}

// ---------------------------------------------------------------------- 督查方式 · 问题类别 · 考核细则

/// Which of a tenant's vocabularies a [`Vocabulary`] edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VocabularyKind {
    Methods,
    Categories,
}

impl VocabularyKind {
    fn path(self) -> &'static str {
        match self {
            VocabularyKind::Methods => "methods",
            VocabularyKind::Categories => "categories",
        }
    }
    fn noun(self) -> &'static str {
        match self {
            VocabularyKind::Methods => "督查方式",
            VocabularyKind::Categories => "问题类别",
        }
    }
    fn placeholders(self) -> (&'static str, &'static str) {
        match self {
            VocabularyKind::Methods => ("如 letters_visits", "如 受理来信来访"),
            VocabularyKind::Categories => ("如 theory", "如 理论学习"),
        }
    }
}

/// A tenant's inspection methods or finding categories: the list (retired ones marked), add,
/// rename and retire; adding a retired code again brings it back.
/// `reload` is shared with the page: every list of the tenant aggregate reloads after a write, so
/// each keeps the current version for `If-Match`.
#[component]
fn Vocabulary(tenant: String, kind: VocabularyKind, reload: RwSignal<u32>) -> impl IntoView {
    let st = use_app();
    let base = format!("/tenants/{tenant}/{}", kind.path());
    let b = base.clone();
    let base = StoredValue::new(base);
    let list = LocalResource::new(move || {
        let _ = reload.get();
        st.api.get_versioned::<Vec<TermEntry>>(&b)
    });
    let version = move || list.get().and_then(|r| r.ok()).and_then(|(_, v)| v);
    let (code, name, err, busy) =
        (RwSignal::new(String::new()), RwSignal::new(String::new()), RwSignal::new(None), RwSignal::new(false));
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (c, n) = (code.get_untracked().trim().to_owned(), name.get_untracked().trim().to_owned());
        if let Some(m) = validate::term_code(&c) {
            return err.set(Some(local_error("code", m)));
        }
        if let Some(m) = validate::name(&n) {
            return err.set(Some(local_error("name", m)));
        }
        submit(base.get_value(), json!({ "code": c, "name": n }), version(), err, busy, reload, move || {
            code.set(String::new());
            name.set(String::new());
            reload.update(|r| *r += 1);
        });
    };
    let (row_err, row_busy) = (RwSignal::new(None), RwSignal::new(false));
    let rename = move |c: String, n: String| {
        if let Some(m) = validate::name(&n) {
            return row_err.set(Some(local_error("name", m)));
        }
        let path = format!("{}/{c}/rename", base.get_value());
        submit(path, json!({ "name": n }), version(), row_err, row_busy, reload, move || reload.update(|r| *r += 1));
    };
    let retire = move |c: String| {
        let path = format!("{}/{c}/retire", base.get_value());
        submit(path, json!({}), version(), row_err, row_busy, reload, move || reload.update(|r| *r += 1));
    };
    let restore = move |c: String, n: String| {
        submit(base.get_value(), json!({ "code": c, "name": n }), version(), row_err, row_busy, reload, move || {
            reload.update(|r| *r += 1)
        });
    };
    let noun = kind.noun();
    let can_write = crate::state::writable();
    let (code_hint, name_hint) = kind.placeholders();
    let testid = kind.path();
    view! {
        <h2>{noun}</h2>
        {move || loaded(list.get(), move |(items, _)| {
            if items.is_empty() {
                view! { <Empty message="还没有条目" hint="请在下方新增。"/> }.into_any()
            } else {
                let rows = items.into_iter().map(|t| {
                    let new_name = RwSignal::new(t.name.clone());
                    let (c1, c2, c3) = (t.code.clone(), t.code.clone(), t.code.clone());
                    let old = t.name.clone();
                    let status = if t.retired { "已停用" } else { "在用" };
                    let retired = t.retired;
                    view! {
                        <tr data-testid=format!("{testid}-row") data-code=t.code.clone() class:retired=t.retired>
                            <td>{t.code.clone()}</td>
                            <td>{t.name.clone()}</td>
                            <td data-testid="term-status">{status}</td>
                            <td class="row-actions">
                                <Show when=move || can_write.get()>
                                    <input type="text" data-testid="term-new-name" prop:value=move || new_name.get()
                                        on:input=move |ev| new_name.set(event_target_value(&ev))/>
                                    <button type="button" data-testid="action-rename" disabled=move || row_busy.get()
                                        on:click={
                                            let c = c1.clone();
                                            move |_| rename(c.clone(), new_name.get_untracked().trim().to_owned())
                                        }>"更名"</button>
                                    {
                                        let (c2, c3, old) = (c2.clone(), c3.clone(), old.clone());
                                        if retired {
                                            view! { <button type="button" data-testid="action-restore" disabled=move || row_busy.get()
                                                on:click=move |_| restore(c3.clone(), old.clone())>"恢复"</button> }.into_any()
                                        } else {
                                            view! { <button type="button" data-testid="action-retire" disabled=move || row_busy.get()
                                                on:click=move |_| retire(c2.clone())>"停用"</button> }.into_any()
                                        }
                                    }
                                </Show>
                            </td>
                        </tr>
                    }
                }).collect_view();
                view! {
                    <table class="table" data-testid=format!("{testid}-table")>
                        <thead><tr><th>"代码"</th><th>"名称"</th><th>"状态"</th><th></th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                }.into_any()
            }
        })}
        {form_error(row_err, &[])}
        <Writable>
            <form class="admin-form" data-testid=format!("{testid}-form") novalidate=true on:submit=add>
                <h3>{format!("新增{noun}")}</h3>
                <div class="form-row">
                    <Field label="代码" name="code" value=code err=err placeholder=code_hint/>
                    <Field label="名称" name="name" value=name err=err placeholder=name_hint/>
                </div>
                {form_error(err, &["code", "name"])}
                {submit_button(if kind == VocabularyKind::Methods { "action-add-method" } else { "action-add-category" }, "新增", busy)}
            </form>
        </Writable>
    }
}

/// `ChecklistsPage`, for the sub-district's admin (and the platform admin) only.
#[component]
pub fn ChecklistsPage(tenant: String) -> impl IntoView {
    let t = tenant.clone();
    view! { <AdminGuard tenant=Some(tenant)><Checklists tenant=t.clone()/></AdminGuard> }
}

#[component]
fn Checklists(tenant: String) -> impl IntoView {
    let st = use_app();
    let reload = RwSignal::new(0u32);
    let cl_path = format!("/tenants/{tenant}/checklists");
    let lp = cl_path.clone();
    let cl_path = StoredValue::new(cl_path);
    let checklists = LocalResource::new(move || {
        let _ = reload.get();
        st.api.get_versioned::<Vec<ChecklistEntry>>(&lp)
    });
    let version = move || checklists.get().and_then(|r| r.ok()).and_then(|(_, v)| v);

    // 定义考核细则
    let (clid, title, items, lerr, lbusy) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(None),
        RwSignal::new(false),
    );
    let add_checklist = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (i, t) = (clid.get_untracked().trim().to_owned(), title.get_untracked().trim().to_owned());
        if let Some(m) = validate::id(&i) {
            return lerr.set(Some(local_error("checklist_id", m)));
        }
        if let Some(m) = validate::name(&t) {
            return lerr.set(Some(local_error("title", m)));
        }
        let lines = match validate::checklist_items(&items.get_untracked()) {
            Ok(l) => l,
            Err(m) => return lerr.set(Some(local_error("items", m))),
        };
        let items_json: Vec<Value> = lines
            .into_iter()
            .map(|(code, title, h)| json!({ "code": code, "title": title, "max_points": h as f64 / 100.0 }))
            .collect();
        submit(
            cl_path.get_value(),
            json!({ "checklist_id": i, "title": t, "items": items_json }),
            version(),
            lerr,
            lbusy,
            reload,
            move || {
                clid.set(String::new());
                title.set(String::new());
                items.set(String::new());
                reload.update(|r| *r += 1);
            },
        );
    };
    let items_error = move || lerr.get().filter(|e| e.field.as_deref().is_some_and(|f| f.starts_with("items")));

    view! {
        <section class="page admin" data-page="checklists">
            <header class="page-head"><h1>"督查方式、问题类别与考核细则"</h1></header>
            <Vocabulary tenant=tenant.clone() kind=VocabularyKind::Methods reload=reload/>
            <Vocabulary tenant=tenant.clone() kind=VocabularyKind::Categories reload=reload/>
            <h2>"检查考核细则"</h2>
            {move || loaded(checklists.get(), |(list, _)| {
                if list.is_empty() {
                    view! { <Empty message="还没有考核细则" hint="请在下方定义考核细则（每行一条：编号 标题 分值），制定督查计划时选用。"/> }.into_any()
                } else {
                    list.into_iter().map(|c| {
                        let total: f64 = c.items.iter().map(|i| i.max_points.0 as f64 / 100.0).sum();
                        let rows = c.items.into_iter().map(|i| view! {
                            <tr><td>{i.code}</td><td>{i.title}</td><td class="num">{format!("{}", i.max_points.0 as f64 / 100.0)}</td></tr>
                        }).collect_view();
                        view! {
                            <details class="checklist" data-testid="checklists-item" data-id=c.checklist_id.as_str().to_owned()>
                                <summary>{format!("{}（{}，满分 {total}）", c.title, c.checklist_id)}</summary>
                                <table class="table"><thead><tr><th>"编号"</th><th>"细则"</th><th class="num">"分值"</th></tr></thead><tbody>{rows}</tbody></table>
                            </details>
                        }
                    }).collect_view().into_any()
                }
            })}
            <Writable>
                <form class="admin-form" data-testid="checklists-form" novalidate=true on:submit=add_checklist>
                    <h3>"定义考核细则"</h3>
                    <p class="muted">"考核细则定义后不能修改；新版本请使用新的编号。"</p>
                    <div class="form-row">
                        <Field label="细则编号" name="checklist_id" value=clid err=lerr placeholder="如 2025"/>
                        <Field label="标题" name="title" value=title err=lerr placeholder="如 2025年意识形态工作检查考核细则"/>
                    </div>
                    <label class="field">
                        <span>"细则条目（每行：编号 标题 分值）"</span>
                        <textarea name="items" data-testid="field-items" rows="5" required=true
                            placeholder="1.1 理论学习中心组学习制度健全 5\n1.2 意识形态工作责任制落实 10"
                            prop:value=move || items.get() on:input=move |ev| items.set(event_target_value(&ev))></textarea>
                        {move || items_error().map(|e| view! { <small class="field-error" data-testid="field-error" data-field="items">{e.detail}</small> })}
                    </label>
                    {move || lerr.get().filter(|e| !e.field.as_deref().is_some_and(|f| f.starts_with("items") || f == "checklist_id" || f == "title")).map(|e| view! { <ErrorBox error=e/> })}
                    {submit_button("action-define-checklist", "保存考核细则", lbusy)}
                </form>
            </Writable>
        </section>
    }
}

// ---------------------------------------------------------------------------- 用户与角色

/// What an actor may do to the accounts of one owner (三员分立): manage the accounts (create,
/// reset, disable, unlock: the system administrator, or a sub-district admin for its staff) and
/// grant roles (the security administrator, or a sub-district admin for its staff).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Powers {
    pub accounts: bool,
    pub grants: bool,
    /// Only the business staff's roles (a sub-district admin).
    pub staff_only: bool,
}

/// The powers of `grants` over the accounts of a tenant (`Some`) or of the district / platform
/// (`None`).
pub fn account_powers(grants: &[GrantView], tenant: Option<&str>) -> Powers {
    let mut p = Powers::default();
    for g in grants {
        match g.role.as_str() {
            "system_admin" => p.accounts = true,
            "security_admin" => p.grants = true,
            "subdistrict_admin" if tenant.is_some() && g.scope.tenant_id.as_deref() == tenant => {
                p.accounts = true;
                p.grants = true;
                p.staff_only = !grants.iter().any(|g| g.role == "security_admin");
            }
            _ => {}
        }
    }
    p
}

/// Draws its children for those with any power over the accounts of the page (a plain "no
/// permission" message for others).
#[component]
fn AccountsGuard(tenant: Option<String>, children: ChildrenFn) -> impl IntoView {
    let st = use_app();
    move || match st.me.get() {
        None => view! { <Loading/> }.into_any(),
        Some(me) if account_powers(&me.grants, tenant.as_deref()) != Powers::default() => children().into_any(),
        Some(_) => view! {
            <section class="page" data-page="forbidden">
                <div class="state state-error" role="alert" data-testid="error" data-code="forbidden">
                    <strong>"您没有访问此页面的权限"</strong>
                    <p>"账号由系统管理员（或街道管理员管理本街道工作人员）管理，角色由安全管理员授予。"</p>
                    <small>"错误代码：forbidden"</small>
                </div>
            </section>
        }
        .into_any(),
    }
}

/// The business staff a sub-district admin hands out.
const STAFF_ROLES: [(&str, &str); 2] = [("inspector", "督查组成员"), ("community_officer", "社区联络员")];
/// A district's roles.
const DISTRICT_ROLES: [(&str, &str); 2] = [("district_officer", "区委宣传部"), ("auditor", "审计（纪检）")];
/// The platform's roles: the platform administrator and the three.
const PLATFORM_ROLES: [(&str, &str); 4] = [
    ("platform_admin", "平台管理员"),
    ("system_admin", "系统管理员"),
    ("security_admin", "安全管理员"),
    ("audit_admin", "审计管理员"),
];

/// `UsersPage` (`/tenants/{t}/users`): a sub-district's accounts.
#[component]
pub fn UsersPage(tenant: String) -> impl IntoView {
    let t = tenant.clone();
    view! {
        <AccountsGuard tenant=Some(tenant)>
            <Users base=format!("/tenants/{t}/users") tenant=Some(t.clone()) roles=&TENANT_ROLES
                title="用户与角色" hint="本街道的账号；停用后立即不能登录。"/>
        </AccountsGuard>
    }
}

/// `/accounts/districts/{d}`: a district's accounts (the system and security administrators).
#[component]
pub fn DistrictUsersPage(district: String) -> impl IntoView {
    view! {
        <AccountsGuard tenant=None>
            <Users base=format!("/districts/{district}/users") tenant=None roles=&DISTRICT_ROLES
                title="区级账号" hint="区委宣传部、区纪委等区级账号。"/>
        </AccountsGuard>
    }
}

/// `/accounts`: the platform's accounts, and the way to every district's and sub-district's.
#[component]
pub fn AccountsPage() -> impl IntoView {
    let st = use_app();
    let districts = LocalResource::new(move || st.api.get::<Vec<DistrictView>>("/districts"));
    view! {
        <AccountsGuard tenant=None>
          <div data-page="accounts">
            <Users base="/platform/users".to_owned() tenant=None roles=&PLATFORM_ROLES
                title="账号管理" hint="平台级账号：平台管理员与三员（系统管理员、安全管理员、审计管理员）。三员不得兼任。"/>
            <section class="page admin" data-testid="accounts-directory">
                <h2>"区和街道的账号"</h2>
                {move || loaded(districts.get(), |list: Vec<DistrictView>| {
                    list.into_iter().map(|d| view! { <DistrictAccounts district=d/> }).collect_view()
                })}
            </section>
          </div>
        </AccountsGuard>
    }
}

#[component]
fn DistrictAccounts(district: DistrictView) -> impl IntoView {
    let st = use_app();
    let path = format!("/districts/{}/tenants", district.district_id);
    let tenants = LocalResource::new(move || st.api.get::<Vec<TenantSummary>>(&path));
    let d = district.district_id.clone();
    view! {
        <div class="directory" data-testid="accounts-district" data-id=d.clone()>
            <h3><Link to=format!("/accounts/districts/{d}") testid="link-district-users">{format!("{}（区级账号）", district.name)}</Link></h3>
            <ul>
                {move || tenants.get().and_then(|r| r.ok()).unwrap_or_default().into_iter().map(|t| {
                    let to = format!("/tenants/{}/users", t.tenant_id);
                    view! { <li><Link to=to testid="link-tenant-users">{t.name}</Link></li> }
                }).collect_view()}
            </ul>
        </div>
    }
}

#[component]
fn Users(
    base: String,
    tenant: Option<String>,
    roles: &'static [(&'static str, &'static str)],
    title: &'static str,
    hint: &'static str,
) -> impl IntoView {
    let st = use_app();
    let powers =
        Signal::derive(move || st.me.get().map(|m| account_powers(&m.grants, tenant.as_deref())).unwrap_or_default());
    let roles_for = move |p: Powers| -> Vec<(&'static str, &'static str)> {
        if p.staff_only { STAFF_ROLES.to_vec() } else { roles.to_vec() }
    };
    let reload = RwSignal::new(0u32);
    let lp = base.clone();
    let users = LocalResource::new(move || {
        let _ = reload.get();
        st.api.get_versioned::<Vec<UserView>>(&lp)
    });
    let communities_path =
        base.strip_suffix("/users").filter(|b| b.starts_with("/tenants/")).map(|b| format!("{b}/communities"));
    let communities = LocalResource::new(move || {
        let load = communities_path.as_deref().map(|p| st.api.get::<Vec<CommunityEntry>>(p));
        async move {
            match load {
                Some(f) => f.await,
                None => Ok(Vec::new()),
            }
        }
    });
    let community_list = move || communities.get().and_then(|r| r.ok()).unwrap_or_default();
    let version = move || users.get().and_then(|r| r.ok()).and_then(|(_, v)| v);
    let selected = RwSignal::new(None::<String>);

    // 新建用户
    let (username, display, password, role, community) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    let (err, busy) = (RwSignal::new(None), RwSignal::new(false));
    let create_path = StoredValue::new(base.clone());
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (u, d, p, r, c) = (
            username.get_untracked().trim().to_owned(),
            display.get_untracked().trim().to_owned(),
            password.get_untracked(),
            role.get_untracked(),
            community.get_untracked(),
        );
        if let Some(m) = validate::id(&u) {
            return err.set(Some(local_error("username", m)));
        }
        if let Some(m) = validate::name(&d) {
            return err.set(Some(local_error("display_name", m)));
        }
        if let Some(m) = validate::password(&p) {
            return err.set(Some(local_error("password", m)));
        }
        let officer = r == "community_officer";
        if officer && c.is_empty() {
            return err.set(Some(local_error("community_id", "社区联络员须绑定一个社区")));
        }
        let role = (!r.is_empty()).then_some(r);
        let body = json!({ "username": u, "display_name": d, "password": p, "role": role,
                           "community_id": if officer { Some(c) } else { None } });
        submit(create_path.get_value(), body, version(), err, busy, reload, move || {
            username.set(String::new());
            display.set(String::new());
            password.set(String::new());
            reload.update(|r| *r += 1);
        });
    };
    let community_select = move |sig: RwSignal<String>| {
        view! {
            <select name="community_id" data-testid="field-community_id" prop:value=move || sig.get() on:change=move |ev| sig.set(event_target_value(&ev))>
                <option value="">"请选择社区"</option>
                {move || community_list().into_iter().map(|c| view! { <option value=c.community_id.as_str().to_owned()>{c.name}</option> }).collect_view()}
            </select>
        }
    };
    let community_error = move || err.get().filter(|e| e.field.as_deref() == Some("community_id"));
    let role_error = move || err.get().filter(|e| e.field.as_deref() == Some("role"));

    let manage_base = base.clone();
    view! {
        <section class="page admin" data-page="users">
            <header class="page-head"><h1>{title}</h1><span class="muted">{hint}</span></header>
            {move || loaded(users.get(), |(list, _)| {
                if list.is_empty() {
                    view! { <Empty message="还没有用户" hint="请在下方新建账号并分配角色。"/> }.into_any()
                } else {
                    let rows = list.into_iter().map(|u| {
                        let roles = u.grants.iter().map(|g| format!("{}（{}）", g.role_name, g.scope.name)).collect::<Vec<_>>().join("、");
                        let id = u.user_id.clone();
                        view! {
                            <tr data-testid="users-row" data-id=u.user_id.clone() class:disabled=u.disabled>
                                <td>{u.username}</td>
                                <td>{u.display_name}</td>
                                <td>{if roles.is_empty() { "无".to_owned() } else { roles }}</td>
                                <td data-testid="users-status">{if u.disabled { "已停用" } else { "正常" }}</td>
                                <td><button type="button" class="link" data-testid="action-manage-user"
                                    on:click=move |_| selected.set(Some(id.clone()))>"管理"</button></td>
                            </tr>
                        }
                    }).collect_view();
                    view! {
                        <div class="table-wrap">
                            <table class="table" data-testid="users-table">
                                <thead><tr><th>"用户名"</th><th>"姓名"</th><th>"角色"</th><th>"状态"</th><th></th></tr></thead>
                                <tbody>{rows}</tbody>
                            </table>
                        </div>
                    }.into_any()
                }
            })}
            <Writable>
                {
                    let mb = manage_base.clone();
                    move || {
                        let id = selected.get()?;
                        let user = users.get()?.ok()?.0.into_iter().find(|u| u.user_id == id)?;
                        let p = powers.get();
                        Some(view! { <ManageUser base=mb.clone() user=user version=version() reload=reload
                            communities=community_list() close=selected powers=p roles=roles_for(p)/> })
                    }
                }
                {move || powers.get().accounts.then(|| {
                    let p = powers.get();
                    let options = roles_for(p);
                    view! {
                        <form class="admin-form" data-testid="users-form" novalidate=true on:submit=create>
                            <h2>"新建用户"</h2>
                            <div class="form-row">
                                <Field label="用户名（登录用）" name="username" value=username err=err placeholder="如 xx-duchazu3"/>
                                <Field label="姓名" name="display_name" value=display err=err placeholder="如 督查组 王组员"/>
                                <Field label="初始密码（首次登录须修改）" name="password" value=password err=err kind="password"/>
                            </div>
                            {p.grants.then(|| view! {
                                <div class="form-row">
                                    <label class="field"><span>"角色"</span>
                                        <select name="role" data-testid="field-role" prop:value=move || role.get() on:change=move |ev| role.set(event_target_value(&ev))>
                                            <option value="">"暂不分配"</option>
                                            {options.iter().map(|(code, label)| view! { <option value=*code>{*label}</option> }).collect_view()}
                                        </select>
                                        {move || role_error().map(|e| view! { <small class="field-error" data-testid="field-error" data-field="role">{e.detail}</small> })}
                                    </label>
                                    <Show when=move || role.get() == "community_officer">
                                        <label class="field"><span>"绑定社区"</span>{community_select(community)}
                                            {move || community_error().map(|e| view! { <small class="field-error" data-testid="field-error" data-field="community_id">{e.detail}</small> })}
                                        </label>
                                    </Show>
                                </div>
                            })}
                            {(!p.grants).then(|| view! { <p class="muted">"新账号的角色由安全管理员授予。"</p> })}
                            {form_error(err, &["username", "display_name", "password", "role", "community_id"])}
                            {submit_button("action-create-user", "新建用户", busy)}
                        </form>
                    }
                })}
            </Writable>
        </section>
    }
}

/// One user's administration, as the caller's powers allow: grant / revoke roles (security
/// administrator), reset password, unlock, disable / enable (system administrator), reset the
/// second factor (either, as the server decides).
#[component]
fn ManageUser(
    base: String,
    user: UserView,
    version: Option<u64>,
    reload: RwSignal<u32>,
    communities: Vec<CommunityEntry>,
    close: RwSignal<Option<String>>,
    powers: Powers,
    roles: Vec<(&'static str, &'static str)>,
) -> impl IntoView {
    let path = format!("{base}/{}", user.user_id);
    let (err, busy) = (RwSignal::new(None::<ApiError>), RwSignal::new(false));
    let notice = RwSignal::new(None::<&'static str>);
    let done = move || reload.update(|r| *r += 1);
    let password = RwSignal::new(String::new());
    let reason = RwSignal::new("人员调整".to_owned());
    let first = roles.first().map_or("", |r| r.0).to_owned();
    let (role, community) = (RwSignal::new(first), RwSignal::new(String::new()));
    let reset = {
        let path = path.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let p = password.get_untracked();
            if let Some(m) = validate::password(&p) {
                return err.set(Some(local_error("password", m)));
            }
            submit(format!("{path}/password"), json!({ "password": p }), version, err, busy, reload, move || {
                password.set(String::new());
                notice.set(Some("密码已重置：该用户的会话已全部结束，下次登录须修改密码。"));
                done();
            });
        }
    };
    let grant = {
        let path = path.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let (r, c) = (role.get_untracked(), community.get_untracked());
            let officer = r == "community_officer";
            if officer && c.is_empty() {
                return err.set(Some(local_error("community_id", "社区联络员须绑定一个社区")));
            }
            submit(
                format!("{path}/roles"),
                json!({ "role": r, "community_id": if officer { Some(c) } else { None } }),
                version,
                err,
                busy,
                reload,
                done,
            );
        }
    };
    let toggle = {
        let path = path.clone();
        let disabled = user.disabled;
        move |_| {
            if disabled {
                submit(format!("{path}/enable"), json!({}), version, err, busy, reload, done);
            } else {
                let r = reason.get_untracked().trim().to_owned();
                if r.is_empty() {
                    return err.set(Some(local_error("reason", "请填写停用原因")));
                }
                submit(format!("{path}/disable"), json!({ "reason": r }), version, err, busy, reload, done);
            }
        }
    };
    let unlock = {
        let path = path.clone();
        move |_| {
            submit(format!("{path}/unlock"), json!({}), None, err, busy, reload, move || {
                notice.set(Some("已解除锁定。"));
            })
        }
    };
    let reset_second_factor = {
        let path = path.clone();
        move |_| {
            let r = reason.get_untracked().trim().to_owned();
            if r.is_empty() {
                return err.set(Some(local_error("reason", "请填写原因")));
            }
            submit(
                format!("{path}/second-factor/reset"),
                json!({ "reason": r }),
                version,
                err,
                busy,
                reload,
                move || {
                    notice.set(Some("两步验证已重置：下次登录时重新绑定。"));
                    done();
                },
            );
        }
    };
    let grants = user
        .grants
        .iter()
        .map(|g| {
            let body = json!({ "role": g.role, "community_id": g.scope.community_id });
            let p = format!("{path}/roles/revoke");
            view! {
                <li data-testid="users-grant">
                    {format!("{}（{}）", g.role_name, g.scope.name)}
                    {powers.grants.then(|| view! {
                        <button type="button" class="link danger" data-testid="action-revoke-role"
                            on:click=move |_| submit(p.clone(), body.clone(), version, err, busy, reload, done)>"撤销"</button>
                    })}
                </li>
            }
        })
        .collect_view();
    let communities = StoredValue::new(communities);
    let community_options = move || {
        communities
            .get_value()
            .into_iter()
            .map(|c| view! { <option value=c.community_id.as_str().to_owned()>{c.name}</option> })
            .collect_view()
    };
    let disabled = user.disabled;
    view! {
        <div class="admin-form manage-user" data-testid="users-manage" data-id=user.user_id.clone()>
            <header class="page-head">
                <h2>{format!("管理：{}（{}）", user.display_name, user.username)}</h2>
                <button type="button" class="link" data-testid="action-close-user" on:click=move |_| close.set(None)>"关闭"</button>
            </header>
            <h3>"角色"</h3>
            <ul class="grants">{grants}</ul>
            {powers.grants.then(|| view! {
                <form class="form-row" novalidate=true on:submit=grant>
                    <label class="field"><span>"授予角色"</span>
                        <select name="role" data-testid="field-grant-role" prop:value=move || role.get() on:change=move |ev| role.set(event_target_value(&ev))>
                            {roles.iter().map(|(code, label)| view! { <option value=*code>{*label}</option> }).collect_view()}
                        </select>
                    </label>
                    <Show when=move || role.get() == "community_officer">
                        <label class="field"><span>"绑定社区"</span>
                            <select name="community_id" data-testid="field-grant-community_id" prop:value=move || community.get()
                                on:change=move |ev| community.set(event_target_value(&ev))>
                                <option value="">"请选择社区"</option>
                                {community_options}
                            </select>
                        </label>
                    </Show>
                    <button type="submit" class="primary" data-testid="action-grant-role" disabled=move || busy.get()>"授予"</button>
                </form>
            })}
            {powers.accounts.then(|| view! {
                <form class="form-row" novalidate=true on:submit=reset>
                    <Field label="新密码（临时，下次登录须修改）" name="password" value=password err=err kind="password"/>
                    <button type="submit" class="primary" data-testid="action-reset-password" disabled=move || busy.get()>"重置密码"</button>
                </form>
            })}
            <div class="form-row">
                <Field label="原因（停用、重置两步验证）" name="reason" value=reason err=err/>
                {powers.accounts.then(|| view! {
                    <button type="button" class="primary"
                        data-testid=if disabled { "action-enable-user" } else { "action-disable-user" }
                        disabled=move || busy.get() on:click=toggle>
                        {if disabled { "启用账号" } else { "停用账号" }}
                    </button>
                    <button type="button" data-testid="action-unlock-user" disabled=move || busy.get() on:click=unlock>"解除锁定"</button>
                })}
                <button type="button" data-testid="action-reset-second-factor" disabled=move || busy.get() on:click=reset_second_factor>
                    "重置两步验证"
                </button>
            </div>
            {move || notice.get().map(|n| view! { <p class="state" data-testid="users-notice">{n}</p> })}
            {form_error(err, &["password", "reason"])}
        </div>
    }
}

// ---------------------------------------------------------------------------- 平台管理

/// `/platform`, for the platform admin only.
#[component]
pub fn PlatformPage() -> impl IntoView {
    view! { <AdminGuard tenant=None><Platform/></AdminGuard> }
}

#[component]
fn Platform() -> impl IntoView {
    let st = use_app();
    let reload = RwSignal::new(0u32);
    let districts = LocalResource::new(move || {
        let _ = reload.get();
        st.api.get_versioned::<Vec<DistrictView>>("/districts")
    });
    let current = RwSignal::new(None::<String>);
    let district = move || {
        current.get().or_else(|| {
            districts.get().and_then(|r| r.ok()).and_then(|(l, _)| l.first().map(|d| d.district_id.clone()))
        })
    };
    let tenants = LocalResource::new(move || {
        let _ = reload.get();
        let d = district();
        let fut = d.as_ref().map(|d| st.api.get_versioned::<Vec<TenantSummary>>(&format!("/districts/{d}/tenants")));
        async move {
            match fut {
                Some(f) => f.await.map(Some),
                None => Ok(None),
            }
        }
    });
    let dversion = move || districts.get().and_then(|r| r.ok()).and_then(|(_, v)| v);

    let (did, dname, derr, dbusy) =
        (RwSignal::new(String::new()), RwSignal::new(String::new()), RwSignal::new(None), RwSignal::new(false));
    let add_district = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (i, n) = (did.get_untracked().trim().to_owned(), dname.get_untracked().trim().to_owned());
        if let Some(m) = validate::id(&i) {
            return derr.set(Some(local_error("district_id", m)));
        }
        if let Some(m) = validate::name(&n) {
            return derr.set(Some(local_error("name", m)));
        }
        submit(
            "/districts".into(),
            json!({ "district_id": i, "name": n }),
            dversion(),
            derr,
            dbusy,
            reload,
            move || {
                did.set(String::new());
                dname.set(String::new());
                reload.update(|r| *r += 1);
            },
        );
    };
    let (tid, tname, terr, tbusy) =
        (RwSignal::new(String::new()), RwSignal::new(String::new()), RwSignal::new(None), RwSignal::new(false));
    let add_tenant = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(d) = district() else {
            return terr.set(Some(local_error("district_id", "请先新建一个区")));
        };
        let (i, n) = (tid.get_untracked().trim().to_owned(), tname.get_untracked().trim().to_owned());
        if let Some(m) = validate::id(&i) {
            return terr.set(Some(local_error("tenant_id", m)));
        }
        if let Some(m) = validate::name(&n) {
            return terr.set(Some(local_error("name", m)));
        }
        let version = tenants.get_untracked().and_then(|r| r.ok()).flatten().and_then(|(_, v)| v);
        submit(
            format!("/districts/{d}/tenants"),
            json!({ "tenant_id": i, "name": n }),
            version,
            terr,
            tbusy,
            reload,
            move || {
                tid.set(String::new());
                tname.set(String::new());
                reload.update(|r| *r += 1);
            },
        );
    };

    view! {
        <section class="page admin" data-page="platform">
            <header class="page-head"><h1>"平台管理"</h1><span class="muted">"区与街道（租户）"</span></header>
            <h2>"区"</h2>
            {move || loaded(districts.get(), move |(list, _)| {
                if list.is_empty() {
                    view! { <Empty message="还没有区" hint="请在下方新建第一个区，再在区下新建街道。"/> }.into_any()
                } else {
                    let rows = list.into_iter().map(|d| {
                        let id = d.district_id.clone();
                        let id2 = id.clone();
                        let id3 = id.clone();
                        let overview = format!("/districts/{id}");
                        view! {
                            <tr data-testid="platform-district" data-id=id3
                                class:selected=move || district().as_deref() == Some(&*id2)>
                                <td>{d.district_id}</td><td>{d.name}</td><td class="num">{d.tenants}</td>
                                <td><button type="button" class="link" data-testid="action-show-tenants"
                                    on:click=move |_| current.set(Some(id.clone()))>"查看街道"</button>
                                    " "<Link to=overview testid="action-open-district">"全区概览"</Link></td>
                            </tr>
                        }
                    }).collect_view();
                    view! { <table class="table" data-testid="platform-districts"><thead><tr><th>"编号"</th><th>"名称"</th><th class="num">"街道数"</th><th></th></tr></thead><tbody>{rows}</tbody></table> }.into_any()
                }
            })}
            <Writable>
                <form class="admin-form" data-testid="districts-form" novalidate=true on:submit=add_district>
                    <h3>"新建区"</h3>
                    <div class="form-row">
                        <Field label="区编号" name="district_id" value=did err=derr placeholder="如 xxq"/>
                        <Field label="区名称" name="name" value=dname err=derr placeholder="如 XX区"/>
                    </div>
                    {form_error(derr, &["district_id", "name"])}
                    {submit_button("action-create-district", "新建区", dbusy)}
                </form>
            </Writable>
            <h2>{move || format!("街道{}", district().map(|d| format!("（{d}）")).unwrap_or_default())}</h2>
            {move || loaded(tenants.get(), |t| match t {
                None => ().into_any(),
                Some((list, _)) if list.is_empty() => view! { <Empty message="该区还没有街道" hint="请在下方新建街道，再由街道管理员维护社区和用户。"/> }.into_any(),
                Some((list, _)) => {
                    let rows = list.into_iter().map(|t| view! {
                        <tr data-testid="platform-tenant" data-id=t.tenant_id.clone()><td>{t.tenant_id.clone()}</td><td>{t.name}</td><td class="num">{t.communities}</td></tr>
                    }).collect_view();
                    view! { <table class="table" data-testid="platform-tenants"><thead><tr><th>"编号"</th><th>"名称"</th><th class="num">"社区数"</th></tr></thead><tbody>{rows}</tbody></table> }.into_any()
                }
            })}
            <Writable>
                <form class="admin-form" data-testid="tenants-form" novalidate=true on:submit=add_tenant>
                    <h3>"新建街道"</h3>
                    <div class="form-row">
                        <Field label="街道编号" name="tenant_id" value=tid err=terr placeholder="如 xxjd"/>
                        <Field label="街道名称" name="name" value=tname err=terr placeholder="如 XX街道"/>
                    </div>
                    {form_error(terr, &["tenant_id", "name"])}
                    {submit_button("action-create-tenant", "新建街道", tbusy)}
                </form>
            </Writable>
        </section>
    }
}
