//! 等保 screens: the second factor's enrolment (a QR code for the authenticator app, then a code,
//! then the recovery codes shown once), 账号安全 (`/account`: one's own password and second factor),
//! 安全审计 (`/security/audit`: the audit administrator's search and XLSX export) and 安全策略
//! (`/security/policy`: the security administrator's password, lockout, session and second-factor
//! rules).

use crate::api::Api;
use crate::components::{Empty, ErrorBox, Loading, loaded};
use crate::problem::ApiError;
use crate::state::use_app;
use ducha_events::api::{
    ChangePasswordRequest, LoginResponse, SecondFactorCodeRequest, SecondFactorEnrolled, SecondFactorEnrolment,
    SecondFactorStatus,
};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Deserialize;
use serde_json::{Value, json};

/// A POST with the login step's token when there is one, else with the session's. `api` is taken
/// from the context before the task is spawned: a spawned task has no reactive owner to read it from.
async fn post_as<B: serde::Serialize, T: serde::de::DeserializeOwned>(
    api: Api,
    step: Option<String>,
    path: &str,
    body: &B,
) -> Result<T, ApiError> {
    match step {
        Some(token) => api.post_step(&token, path, body).await,
        None => api.post(path, body).await,
    }
}

/// An SVG document as an `<img>` source (the CSP allows `data:` images only, never inline markup).
fn svg_data_uri(svg: &str) -> String {
    let b64 = window().btoa(svg).unwrap_or_default();
    format!("data:image/svg+xml;base64,{b64}")
}

fn field_error(err: RwSignal<Option<ApiError>>, name: &'static str) -> impl IntoView {
    move || {
        err.get()
            .filter(|e| e.field.as_deref() == Some(name))
            .map(|e| view! { <small class="field-error" data-testid="field-error" data-field=name>{e.detail}</small> })
    }
}

fn other_error(err: RwSignal<Option<ApiError>>, fields: &'static [&'static str]) -> impl IntoView {
    move || {
        err.get()
            .filter(|e| !e.field.as_deref().is_some_and(|f| fields.contains(&f)))
            .map(|e| view! { <ErrorBox error=e/> })
    }
}

/// Enrols a second factor: starts the enrolment (a new secret), shows its QR code and the secret
/// for typing by hand, and confirms it with the app's code. `step`: the login step's token (a
/// login that must enrol), or `None` (from 账号安全).
#[component]
pub fn EnrolSecondFactor(step: Option<String>, on_done: Callback<SecondFactorEnrolled>) -> impl IntoView {
    let enrolment = RwSignal::new(None::<SecondFactorEnrolment>);
    let err = RwSignal::new(None::<ApiError>);
    let code = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let step = StoredValue::new(step);
    let api = use_app().api;
    // Values are read before a task is spawned: the component may be gone when the task runs.
    let step_now = step.get_value();
    spawn_local(async move {
        match post_as::<_, SecondFactorEnrolment>(api, step_now, "/auth/second-factor/enrol", &json!({})).await {
            Ok(e) => enrolment.set(Some(e)),
            Err(e) => err.set(Some(e)),
        }
    });
    let confirm = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let c = code.get_untracked().trim().to_owned();
        if c.len() != 6 || !c.bytes().all(|b| b.is_ascii_digit()) {
            err.set(Some(ApiError {
                status: 0,
                code: "invalid_input".into(),
                title: "请检查验证码".into(),
                detail: "验证码为身份验证器上显示的 6 位数字".into(),
                field: Some("code".into()),
            }));
            return;
        }
        busy.set(true);
        let step_now = step.get_value();
        spawn_local(async move {
            let body = SecondFactorCodeRequest { code: c };
            match post_as::<_, SecondFactorEnrolled>(api, step_now, "/auth/second-factor/confirm", &body).await {
                Ok(done) => {
                    code.set(String::new());
                    on_done.run(done);
                }
                Err(e) => err.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <div class="enrol" data-testid="second-factor-enrol">
            <h2>"绑定身份验证器（两步验证）"</h2>
            {move || match enrolment.get() {
                None => err.get().is_none().then(|| view! { <Loading/> }).into_any(),
                Some(e) => view! {
                    <ol class="steps">
                        <li>"用手机上的身份验证器（如 Microsoft Authenticator、Google 身份验证器、FreeOTP）扫描二维码；"</li>
                        <li>"或手工输入密钥："<code data-testid="second-factor-secret">{e.secret.clone()}</code></li>
                        <li>"输入验证器上显示的 6 位验证码完成绑定。"</li>
                    </ol>
                    <img class="qr" data-testid="second-factor-qr" alt="两步验证二维码" src=svg_data_uri(&e.qr_svg)
                        width="200" height="200"/>
                }.into_any(),
            }}
            <form class="form-row" novalidate=true on:submit=confirm>
                <label class="field">
                    <span>"验证码"</span>
                    <input type="text" inputmode="numeric" autocomplete="one-time-code" name="code" data-testid="field-code"
                        maxlength="6" prop:value=move || code.get() on:input=move |ev| code.set(event_target_value(&ev))/>
                    {field_error(err, "code")}
                </label>
                <button type="submit" class="primary" data-testid="action-confirm-second-factor" disabled=move || busy.get()>
                    "完成绑定"
                </button>
            </form>
            {other_error(err, &["code"])}
        </div>
    }
}

/// The recovery codes, shown once after an enrolment, with a button to go on.
#[component]
pub fn RecoveryCodes(codes: Vec<String>, on_continue: Callback<()>) -> impl IntoView {
    view! {
        <div class="recovery" data-testid="recovery-codes">
            <h2>"恢复码"</h2>
            <p>"手机丢失时，可用以下任一恢复码代替验证码登录，每个只能使用一次。"<strong>"此页关闭后不再显示"</strong>"，请抄写或打印后妥善保管（不要存放在手机上）。"</p>
            <ul class="codes">{codes.into_iter().map(|c| view! { <li><code data-testid="recovery-code">{c}</code></li> }).collect_view()}</ul>
            <button type="button" class="primary" data-testid="action-recovery-saved" on:click=move |_| on_continue.run(())>
                "我已妥善保存，继续"
            </button>
        </div>
    }
}

/// Changes a password: the current one and a new one twice. `step`: a login step's token (a
/// temporary or expired password), or `None` (from 账号安全). `current`: filled in already (the
/// password just typed at the login).
#[component]
pub fn ChangePassword(
    step: Option<String>,
    #[prop(optional)] current: Option<String>,
    on_done: Callback<LoginResponse>,
) -> impl IntoView {
    let known = current.is_some();
    let current = RwSignal::new(current.unwrap_or_default());
    let (new, again) = (RwSignal::new(String::new()), RwSignal::new(String::new()));
    let err = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let step = StoredValue::new(step);
    let api = use_app().api;
    let local = |field: &str, detail: &str| ApiError {
        status: 0,
        code: "invalid_input".into(),
        title: "请检查填写的内容".into(),
        detail: detail.into(),
        field: Some(field.into()),
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (c, n, a) = (current.get_untracked(), new.get_untracked(), again.get_untracked());
        if c.is_empty() {
            return err.set(Some(local("current_password", "请填写当前密码")));
        }
        if n.chars().count() < 8 {
            return err.set(Some(local("password", "新密码至少 8 个字符")));
        }
        if n != a {
            return err.set(Some(local("again", "两次输入的新密码不一致")));
        }
        busy.set(true);
        let step_now = step.get_value();
        spawn_local(async move {
            let body = ChangePasswordRequest { current_password: c, new_password: n };
            match post_as::<_, LoginResponse>(api, step_now, "/auth/password", &body).await {
                Ok(r) => {
                    current.set(String::new());
                    new.set(String::new());
                    again.set(String::new());
                    err.set(None);
                    on_done.run(r);
                }
                Err(e) => err.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let input = move |label: &'static str, name: &'static str, sig: RwSignal<String>, auto: &'static str| {
        view! {
            <label class="field">
                <span>{label}</span>
                <input type="password" name=name data-testid=format!("field-{name}") autocomplete=auto
                    prop:value=move || sig.get() on:input=move |ev| sig.set(event_target_value(&ev))/>
                {field_error(err, name)}
            </label>
        }
    };
    view! {
        <form class="admin-form" data-testid="password-form" novalidate=true on:submit=submit>
            <h2>"修改密码"</h2>
            <p class="muted">"至少 8 个字符，含大写字母、小写字母、数字、符号中的至少 3 类，不含用户名，不能与最近使用过的密码相同。"</p>
            {(!known).then(|| input("当前密码", "current_password", current, "current-password"))}
            {input("新密码", "password", new, "new-password")}
            {input("再次输入新密码", "again", again, "new-password")}
            {move || if known { other_error(err, &["password", "again"]).into_any() } else { other_error(err, &["current_password", "password", "again"]).into_any() }}
            <button type="submit" class="primary" data-testid="action-change-password" disabled=move || busy.get()>
                {move || if busy.get() { "提交中…" } else { "修改密码" }}
            </button>
        </form>
    }
}

/// Draws its children only for holders of `role`; others who open the page by its address get a
/// plain "no permission" message (the API refuses them anyway).
#[component]
fn RoleGuard(role: &'static str, children: ChildrenFn) -> impl IntoView {
    let st = use_app();
    move || match st.me.get() {
        None => view! { <Loading/> }.into_any(),
        Some(me) if me.grants.iter().any(|g| g.role == role) => children().into_any(),
        Some(_) => {
            let page = st.router.route().title();
            view! {
                <section class="page" data-page="forbidden">
                    <div class="state state-error" role="alert" data-testid="error" data-code="forbidden">
                        <strong>"您没有访问此页面的权限"</strong>
                        <p>{format!("“{page}”仅限相应的管理员使用（三员分立）。")}</p>
                        <small>"错误代码：forbidden"</small>
                    </div>
                </section>
            }
            .into_any()
        }
    }
}

// ------------------------------------------------------------------------------ 账号安全

/// `/account`: one's own password and second factor.
#[component]
pub fn AccountPage() -> impl IntoView {
    let st = use_app();
    let reload = RwSignal::new(0u32);
    let status = LocalResource::new(move || {
        let _ = reload.get();
        st.api.get_current::<SecondFactorStatus>("/auth/second-factor")
    });
    let changed = RwSignal::new(false);
    let enrolling = RwSignal::new(false);
    let codes = RwSignal::new(None::<Vec<String>>);
    let on_password = Callback::new(move |r: LoginResponse| {
        // Every session of the account ended; this one goes on with the new token.
        st.api.set_token(Some(r.access_token));
        changed.set(true);
    });
    let on_enrolled = Callback::new(move |done: SecondFactorEnrolled| {
        enrolling.set(false);
        codes.set(Some(done.recovery_codes));
    });
    let on_saved = Callback::new(move |_: ()| {
        codes.set(None);
        reload.update(|r| *r += 1);
    });
    view! {
        <section class="page" data-page="account">
            <header class="page-head"><h1>"账号安全"</h1></header>
            <ChangePassword step=None on_done=on_password/>
            {move || changed.get().then(|| view! { <p class="state" data-testid="password-changed">"密码已修改，其他设备上的登录已全部退出。"</p> })}
            <div class="admin-form">
                <h2>"两步验证"</h2>
                {move || loaded(status.get(), |s: SecondFactorStatus| {
                    let text = if s.enrolled {
                        format!("已启用（剩余恢复码 {} 个）。如需更换手机，请联系系统管理员重置。", s.recovery_codes_left)
                    } else if s.required {
                        "未启用：安全策略要求您的账号启用两步验证，下次登录时须先绑定。".to_owned()
                    } else {
                        "未启用。启用后，登录时除密码外还需输入身份验证器上的验证码。".to_owned()
                    };
                    view! {
                        <p data-testid="second-factor-status" data-enrolled=s.enrolled.to_string()>{text}</p>
                        {(!s.enrolled).then(|| view! {
                            <button type="button" class="primary" data-testid="action-enrol-second-factor"
                                on:click=move |_| enrolling.set(true)>"启用两步验证"</button>
                        })}
                    }
                })}
                {move || enrolling.get().then(|| view! { <EnrolSecondFactor step=None on_done=on_enrolled/> })}
                {move || codes.get().map(|c| view! { <RecoveryCodes codes=c on_continue=on_saved/> })}
            </div>
        </section>
    }
}

// ------------------------------------------------------------------------------ 安全审计

/// A record of `GET /security/audit`.
#[derive(Debug, Clone, Deserialize)]
struct AuditRecord {
    position: u64,
    at: String,
    action: String,
    result: String,
    username: Option<String>,
    role_name: Option<String>,
    client_addr: String,
    object: String,
    detail: String,
    request_id: String,
}

#[derive(Debug, Clone, Deserialize)]
struct AuditPage {
    records: Vec<AuditRecord>,
    total: u64,
}

/// The actions of the security audit log, with their Chinese names.
pub const AUDIT_ACTIONS: [(&str, &str); 25] = [
    ("login", "登录"),
    ("login_failed", "登录失败"),
    ("locked_out", "账号锁定"),
    ("unlock", "解除锁定"),
    ("logout", "退出登录"),
    ("password_changed", "修改密码"),
    ("password_reset", "重置密码"),
    ("second_factor_enrolled", "绑定两步验证"),
    ("second_factor_used", "两步验证"),
    ("second_factor_reset", "重置两步验证"),
    ("account_created", "创建账号"),
    ("account_disabled", "停用账号"),
    ("account_enabled", "启用账号"),
    ("role_granted", "授予角色"),
    ("role_revoked", "撤销角色"),
    ("policy_changed", "修改安全策略"),
    ("document_downloaded", "下载报告"),
    ("ledger_exported", "导出台账"),
    ("circular_exported", "导出通报"),
    ("events_exported", "导出事件日志"),
    ("evidence_downloaded", "下载附件"),
    ("access_denied", "拒绝访问"),
    ("audit_searched", "查询审计日志"),
    ("audit_exported", "导出审计日志"),
    ("session_ended", "结束会话"),
];

fn action_name(code: &str) -> String {
    AUDIT_ACTIONS.iter().find(|(c, _)| *c == code).map_or_else(|| code.to_owned(), |(_, n)| (*n).to_owned())
}

fn result_name(code: &str) -> &'static str {
    match code {
        "success" => "成功",
        "failure" => "失败",
        "refused" => "拒绝",
        _ => "其他",
    }
}

/// `2026-11-30T09:00` from a `datetime-local` input (Shanghai time) → RFC 3339 with +08:00.
fn local_to_rfc3339(v: &str) -> Option<String> {
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    let with_seconds = if v.len() == 16 { format!("{v}:00") } else { v.to_owned() };
    Some(format!("{with_seconds}+08:00"))
}

fn query_string(parts: &[(&str, String)]) -> String {
    let q: Vec<String> = parts
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", js_sys::encode_uri_component(v.trim())))
        .collect();
    q.join("&")
}

/// `/security/audit`: the audit administrator's search and export.
#[component]
pub fn SecurityAuditPage() -> impl IntoView {
    view! { <RoleGuard role="audit_admin"><SecurityAudit/></RoleGuard> }
}

#[component]
fn SecurityAudit() -> impl IntoView {
    let st = use_app();
    let (from, to, user, action, result, addr) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    let query = RwSignal::new(String::new());
    let page = LocalResource::new(move || {
        let q = query.get();
        st.api.get_current::<AuditPage>(&format!("/security/audit?limit=200&{q}"))
    });
    let build = move || {
        query_string(&[
            ("from", local_to_rfc3339(&from.get_untracked()).unwrap_or_default()),
            ("to", local_to_rfc3339(&to.get_untracked()).unwrap_or_default()),
            ("user", user.get_untracked()),
            ("action", action.get_untracked()),
            ("result", result.get_untracked()),
            ("addr", addr.get_untracked()),
        ])
    };
    let search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        query.set(build());
    };
    let export_err = RwSignal::new(None::<ApiError>);
    let export = move |_| {
        let q = build();
        spawn_local(async move {
            let today: String =
                js_sys::Date::new_0().to_iso_string().as_string().unwrap_or_default().chars().take(10).collect();
            let name = format!("安全审计日志-{today}.xlsx");
            if let Err(e) = st.api.download(&format!("/security/audit.xlsx?{q}"), &name).await {
                export_err.set(Some(e));
            }
        });
    };
    let text = move |label: &'static str, name: &'static str, sig: RwSignal<String>, kind: &'static str| {
        view! {
            <label class="field"><span>{label}</span>
                <input type=kind name=name data-testid=format!("filter-{name}") prop:value=move || sig.get()
                    on:input=move |ev| sig.set(event_target_value(&ev))/>
            </label>
        }
    };
    view! {
        <section class="page" data-page="security-audit">
            <header class="page-head"><h1>"安全审计"</h1>
                <span class="muted">"登录、账号与授权、安全策略、下载导出、被拒绝的访问：每条记录不可修改、不可删除（独立哈希链）。"</span>
            </header>
            <form class="admin-form filters" data-testid="audit-filters" novalidate=true on:submit=search>
                <div class="form-row">
                    {text("起始时间", "from", from, "datetime-local")}
                    {text("截止时间", "to", to, "datetime-local")}
                    {text("用户", "user", user, "text")}
                    {text("客户端地址", "addr", addr, "text")}
                    <label class="field"><span>"操作"</span>
                        <select name="action" data-testid="filter-action" prop:value=move || action.get()
                            on:change=move |ev| action.set(event_target_value(&ev))>
                            <option value="">"全部"</option>
                            {AUDIT_ACTIONS.map(|(c, n)| view! { <option value=c>{n}</option> })}
                        </select>
                    </label>
                    <label class="field"><span>"结果"</span>
                        <select name="result" data-testid="filter-result" prop:value=move || result.get()
                            on:change=move |ev| result.set(event_target_value(&ev))>
                            <option value="">"全部"</option>
                            <option value="success">"成功"</option>
                            <option value="failure">"失败"</option>
                            <option value="refused">"拒绝"</option>
                        </select>
                    </label>
                </div>
                <div class="form-row">
                    <button type="submit" class="primary" data-testid="action-audit-search">"查询"</button>
                    <button type="button" data-testid="action-audit-export" on:click=export>"导出 Excel"</button>
                </div>
                {move || export_err.get().map(|e| view! { <ErrorBox error=e/> })}
            </form>
            {move || loaded(page.get(), |p: AuditPage| {
                if p.records.is_empty() {
                    return view! { <Empty message="没有符合条件的记录" hint="请调整查询条件。"/> }.into_any();
                }
                let shown = p.records.len();
                let rows = p.records.into_iter().map(|r| view! {
                    <tr data-testid="audit-record" data-action=r.action.clone() data-result=r.result.clone()>
                        <td>{r.position}</td>
                        <td>{crate::format::rfc3339(&r.at)}</td>
                        <td>{r.username.unwrap_or_default()}<br/><small class="muted">{r.role_name.unwrap_or_default()}</small></td>
                        <td>{action_name(&r.action)}</td>
                        <td class=format!("result-{}", r.result)>{result_name(&r.result)}</td>
                        <td>{r.client_addr}</td>
                        <td>{r.object}</td>
                        <td>{r.detail}</td>
                        <td><small class="muted">{r.request_id}</small></td>
                    </tr>
                }).collect_view();
                view! {
                    <p class="muted" data-testid="audit-total">{format!("共 {} 条，显示最新 {} 条", p.total, shown)}</p>
                    <div class="table-wrap">
                        <table class="table" data-testid="audit-table">
                            <thead><tr><th>"序号"</th><th>"时间"</th><th>"用户"</th><th>"操作"</th><th>"结果"</th>
                                <th>"地址"</th><th>"对象"</th><th>"说明"</th><th>"请求"</th></tr></thead>
                            <tbody>{rows}</tbody>
                        </table>
                    </div>
                }.into_any()
            })}
        </section>
    }
}

// ------------------------------------------------------------------------------ 安全策略

#[derive(Debug, Clone, Deserialize)]
struct PolicyView {
    policy: Value,
    set: bool,
}

/// The policy's numbers: (field, label, lower bound, upper bound).
const POLICY_FIELDS: [(&str, &str, u32, u32); 8] = [
    ("min_length", "密码最短长度（字符）", 8, 64),
    ("min_classes", "密码字符类别（大写、小写、数字、符号）至少", 3, 4),
    ("history", "不得与最近几次密码相同", 5, 24),
    ("max_age_days", "密码有效期（天）", 30, 180),
    ("lockout_after", "连续失败几次锁定账号", 3, 10),
    ("lockout_minutes", "锁定时长（分钟）", 10, 1440),
    ("idle_timeout_minutes", "空闲多久结束会话（分钟）", 5, 30),
    ("session_max_hours", "会话最长（小时）", 1, 24),
];

/// `/security/policy`: the security administrator's rules, within the safe bounds.
#[component]
pub fn SecurityPolicyPage() -> impl IntoView {
    view! { <RoleGuard role="security_admin"><SecurityPolicy/></RoleGuard> }
}

#[component]
fn SecurityPolicy() -> impl IntoView {
    let st = use_app();
    let reload = RwSignal::new(0u32);
    let current = LocalResource::new(move || {
        let _ = reload.get();
        st.api.get_current::<PolicyView>("/security/policy")
    });
    let values: Vec<RwSignal<String>> = POLICY_FIELDS.iter().map(|_| RwSignal::new(String::new())).collect();
    let values = StoredValue::new(values);
    let second_factor = RwSignal::new("administrators".to_owned());
    let err = RwSignal::new(None::<ApiError>);
    let saved = RwSignal::new(false);
    let busy = RwSignal::new(false);
    Effect::new(move |_| {
        if let Some(Ok(p)) = current.get() {
            for (i, (f, ..)) in POLICY_FIELDS.iter().enumerate() {
                let v = p.policy[*f].as_u64().map(|n| n.to_string()).unwrap_or_default();
                values.get_value()[i].set(v);
            }
            second_factor.set(p.policy["second_factor"].as_str().unwrap_or("administrators").to_owned());
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut body = serde_json::Map::new();
        for (i, (f, label, lo, hi)) in POLICY_FIELDS.iter().enumerate() {
            let raw = values.get_value()[i].get_untracked();
            match raw.trim().parse::<u32>() {
                Ok(n) if (*lo..=*hi).contains(&n) => {
                    body.insert((*f).to_owned(), json!(n));
                }
                _ => {
                    err.set(Some(ApiError {
                        status: 0,
                        code: "invalid_input".into(),
                        title: "请检查填写的内容".into(),
                        detail: format!("“{label}”须为 {lo} 到 {hi} 之间的整数（安全下限）"),
                        field: Some((*f).to_owned()),
                    }));
                    return;
                }
            }
        }
        body.insert("second_factor".into(), json!(second_factor.get_untracked()));
        busy.set(true);
        saved.set(false);
        spawn_local(async move {
            match st.api.post::<_, Value>("/security/policy", &Value::Object(body)).await {
                Ok(_) => {
                    err.set(None);
                    saved.set(true);
                    reload.update(|r| *r += 1);
                }
                Err(e) => err.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let fields = POLICY_FIELDS
        .iter()
        .enumerate()
        .map(|(i, (f, label, lo, hi))| {
            let sig = values.get_value()[i];
            view! {
                <label class="field">
                    <span>{format!("{label}（{lo}–{hi}）")}</span>
                    <input type="number" name=*f data-testid=format!("field-{f}") min=*lo max=*hi
                        prop:value=move || sig.get() on:input=move |ev| sig.set(event_target_value(&ev))/>
                    {field_error(err, f)}
                </label>
            }
        })
        .collect_view();
    view! {
        <section class="page" data-page="security-policy">
            <header class="page-head"><h1>"安全策略"</h1>
                <span class="muted">"每项均有安全下限，不能设得比等保三级要求更弱；修改记入安全审计日志。"</span>
            </header>
            {move || match current.get() {
                None => view! { <Loading/> }.into_any(),
                Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                Some(Ok(p)) => view! {
                    <p class="muted" data-testid="policy-state">{
                        if p.policy["demo"].as_bool() == Some(true) { "当前为演示数据的宽松策略（无强制改密、无密码过期，两步验证仅在绑定后使用）。保存后即按下方规则执行。" }
                        else if p.set { "当前策略如下。" } else { "尚未设置，以下为默认值（等保三级）。" }
                    }</p>
                }.into_any(),
            }}
            <form class="admin-form" data-testid="policy-form" novalidate=true on:submit=submit>
                <div class="form-grid">{fields}</div>
                <label class="field"><span>"两步验证"</span>
                    <select name="second_factor" data-testid="field-second_factor" prop:value=move || second_factor.get()
                        on:change=move |ev| second_factor.set(event_target_value(&ev))>
                        <option value="administrators">"管理员必须启用（三员与平台管理员）"</option>
                        <option value="everyone">"所有账号必须启用"</option>
                    </select>
                </label>
                {other_error(err, &["min_length", "min_classes", "history", "max_age_days", "lockout_after", "lockout_minutes", "idle_timeout_minutes", "session_max_hours"])}
                {move || saved.get().then(|| view! { <p class="state" data-testid="policy-saved">"已保存。"</p> })}
                <button type="submit" class="primary" data-testid="action-save-policy" disabled=move || busy.get()>"保存"</button>
            </form>
        </section>
    }
}

// ------------------------------------------------------------------------------ 个人信息保护

#[derive(Debug, Clone, Deserialize)]
struct PersonalDataStatus {
    sealed: bool,
    cipher: Option<String>,
    master_key_id: Option<String>,
    person_keys: u64,
    erasures: u64,
}

#[derive(Debug, Clone, Deserialize)]
struct ErasureView {
    position: u64,
    at: String,
    by: String,
    subject_kind: String,
    user_id: Option<String>,
    tenant: Option<String>,
    key_ids: Vec<String>,
    reason: String,
}

/// `/security/personal-data`: how personal data is kept, and erasing a person's data (the security
/// administrator; PIPL art. 47).
#[component]
pub fn PersonalDataPage() -> impl IntoView {
    view! { <RoleGuard role="security_admin"><PersonalData/></RoleGuard> }
}

#[component]
fn PersonalData() -> impl IntoView {
    let st = use_app();
    let reload = RwSignal::new(0u32);
    let status = LocalResource::new(move || {
        let _ = reload.get();
        st.api.get_current::<PersonalDataStatus>("/security/personal-data")
    });
    let erasures = LocalResource::new(move || {
        let _ = reload.get();
        st.api.get_current::<Vec<ErasureView>>("/security/personal-data/erasures")
    });
    let kind = RwSignal::new("user".to_owned());
    let user_id = RwSignal::new(String::new());
    let tenant = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let confirmed = RwSignal::new(false);
    let err = RwSignal::new(None::<ApiError>);
    let done = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let invalid = |field: &str, detail: &str| ApiError {
        status: 0,
        code: "invalid_input".into(),
        title: "请检查填写的内容".into(),
        detail: detail.to_owned(),
        field: Some(field.to_owned()),
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        done.set(None);
        let body = if kind.get_untracked() == "user" {
            let u = user_id.get_untracked().trim().to_owned();
            if u.is_empty() {
                err.set(Some(invalid("user_id", "请填写账号编号")));
                return;
            }
            json!({"user_id": u, "reason": reason.get_untracked().trim()})
        } else {
            let (t, n) = (tenant.get_untracked().trim().to_owned(), name.get_untracked().trim().to_owned());
            if t.is_empty() || n.is_empty() {
                err.set(Some(invalid("name", "请填写街道编号和记录中的姓名")));
                return;
            }
            json!({"tenant_id": t, "name": n, "reason": reason.get_untracked().trim()})
        };
        if reason.get_untracked().trim().is_empty() {
            err.set(Some(invalid("reason", "请填写删除原因（如来函编号），不要填写姓名")));
            return;
        }
        if !confirmed.get_untracked() {
            err.set(Some(invalid("confirm", "删除不可恢复，请勾选确认")));
            return;
        }
        busy.set(true);
        spawn_local(async move {
            match st.api.post::<_, Value>("/security/personal-data/erasures", &body).await {
                Ok(v) => {
                    err.set(None);
                    done.set(Some(format!(
                        "已删除：销毁密钥 {}，记录于日志位置 {}。",
                        v["key_ids"]
                            .as_array()
                            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("、"))
                            .unwrap_or_default(),
                        v["position"]
                    )));
                    user_id.set(String::new());
                    name.set(String::new());
                    reason.set(String::new());
                    confirmed.set(false);
                    reload.update(|r| *r += 1);
                }
                Err(e) => err.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <section class="page" data-page="personal-data">
            <header class="page-head"><h1>"个人信息保护"</h1>
                <span class="muted">"姓名、手机号等个人信息按人加密保存；删除某人的信息即销毁其密钥，其余数据与哈希链不变。"</span>
            </header>
            {move || match status.get() {
                None => view! { <Loading/> }.into_any(),
                Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                Some(Ok(s)) => view! {
                    <p class="state" data-testid="personal-data-status">{
                        if s.sealed {
                            format!("已加密保存（{}，主密钥 {}）：个人密钥 {} 个，已删除 {} 次。",
                                s.cipher.unwrap_or_default(), s.master_key_id.unwrap_or_default(), s.person_keys, s.erasures)
                        } else {
                            "未加密保存：本部署未配置个人信息主密钥（personal_data_key_file），无法按密钥删除。".to_owned()
                        }
                    }</p>
                }.into_any(),
            }}
            <form class="admin-form" data-testid="erasure-form" novalidate=true on:submit=submit>
                <label class="field"><span>"删除对象"</span>
                    <select name="kind" data-testid="field-kind" prop:value=move || kind.get()
                        on:change=move |ev| kind.set(event_target_value(&ev))>
                        <option value="user">"账号（姓名、手机号、登录地址）"</option>
                        <option value="name">"街道记录中的姓名（责任人、参加人员）"</option>
                    </select>
                </label>
                {move || if kind.get() == "user" {
                    view! {
                        <label class="field"><span>"账号编号"</span>
                            <input name="user_id" data-testid="field-user_id" prop:value=move || user_id.get()
                                on:input=move |ev| user_id.set(event_target_value(&ev))/>
                            {field_error(err, "user_id")}
                        </label>
                    }.into_any()
                } else {
                    view! {
                        <div class="form-grid">
                            <label class="field"><span>"街道编号"</span>
                                <input name="tenant_id" data-testid="field-tenant_id" prop:value=move || tenant.get()
                                    on:input=move |ev| tenant.set(event_target_value(&ev))/>
                            </label>
                            <label class="field"><span>"姓名（与记录中一致）"</span>
                                <input name="name" data-testid="field-name" prop:value=move || name.get()
                                    on:input=move |ev| name.set(event_target_value(&ev))/>
                                {field_error(err, "name")}
                            </label>
                        </div>
                    }.into_any()
                }}
                <label class="field"><span>"删除原因（如来函编号，勿填姓名）"</span>
                    <input name="reason" data-testid="field-reason" prop:value=move || reason.get()
                        on:input=move |ev| reason.set(event_target_value(&ev))/>
                    {field_error(err, "reason")}
                </label>
                <label class="check"><input type="checkbox" data-testid="field-confirm" prop:checked=move || confirmed.get()
                    on:change=move |ev| confirmed.set(event_target_checked(&ev))/>
                    <span>"我已核实申请人身份；删除后无法恢复"</span></label>
                {field_error(err, "confirm")}
                {other_error(err, &["user_id", "name", "reason", "confirm"])}
                {move || done.get().map(|d| view! { <p class="state" data-testid="erasure-done">{d}</p> })}
                <button type="submit" class="primary danger" data-testid="action-erase" disabled=move || busy.get()>"删除个人信息"</button>
            </form>
            <h2>"删除记录"</h2>
            {move || match erasures.get() {
                None => view! { <Loading/> }.into_any(),
                Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                Some(Ok(list)) if list.is_empty() => view! { <Empty message="尚无删除记录" hint="删除个人信息后，记录在此列出（不含姓名）。"/> }.into_any(),
                Some(Ok(list)) => view! {
                    <table class="table" data-testid="erasures">
                        <thead><tr><th>"时间"</th><th>"对象"</th><th>"原因"</th><th>"操作人"</th><th>"密钥"</th><th>"日志位置"</th></tr></thead>
                        <tbody>{list.into_iter().map(|e| {
                            let whom = match (e.subject_kind.as_str(), e.user_id, e.tenant) {
                                ("user", Some(u), _) => format!("账号 {u}"),
                                (_, _, Some(t)) => format!("{t} 记录中的一人"),
                                _ => "—".to_owned(),
                            };
                            view! { <tr data-testid="erasure-row">
                                <td>{crate::format::rfc3339(&e.at)}</td><td>{whom}</td><td>{e.reason}</td>
                                <td>{e.by}</td><td>{e.key_ids.join("、")}</td><td>{e.position}</td>
                            </tr> }
                        }).collect_view()}</tbody>
                    </table>
                }.into_any(),
            }}
        </section>
    }
}
