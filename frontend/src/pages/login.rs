//! 登录: `POST /auth/login`, then whatever steps the account and the security policy need (等保
//! 2.0 身份鉴别): a second-factor code, a new password (temporary or expired), the enrolment of a
//! second factor. Each step's token stays in this page (it is good for the next step only); the
//! access token of the last step goes into sessionStorage (gone when the tab closes).

use crate::components::ErrorBox;
use crate::pages::security::{ChangePassword, EnrolSecondFactor, RecoveryCodes};
use crate::problem::ApiError;
use crate::state::use_app;
use ducha_events::api::{LoginRequest, LoginResponse, SecondFactorCodeRequest, SecondFactorEnrolled};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// A login step in progress: its token, which step, and why.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    token: String,
    next: String,
    reason: String,
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let st = use_app();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let step = RwSignal::new(None::<Step>);
    // After an enrolment: the recovery codes to show, and the login's answer to go on with.
    let recovery = RwSignal::new(None::<(Vec<String>, LoginResponse)>);

    // The login moves on: the next step, or the session.
    let advance = move |r: LoginResponse| match r.next.clone() {
        Some(next) => step.set(Some(Step { token: r.access_token, next, reason: r.next_reason.unwrap_or_default() })),
        None => {
            step.set(None);
            password.set(String::new());
            st.api.set_token(Some(r.access_token));
            if st.router.path().starts_with("/login") {
                st.router.replace("/");
            }
        }
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let body =
            LoginRequest { username: username.get_untracked().trim().to_owned(), password: password.get_untracked() };
        if body.username.is_empty() || body.password.is_empty() {
            error.set(Some(ApiError {
                status: 0,
                code: "required".into(),
                title: "请填写用户名和密码".into(),
                detail: "用户名和密码均为必填项".into(),
                field: Some(if body.username.is_empty() { "username" } else { "password" }.into()),
            }));
            return;
        }
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            match st.api.post::<_, LoginResponse>("/auth/login", &body).await {
                Ok(r) => advance(r),
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };

    // Step: a second-factor code (or a recovery code).
    let code = RwSignal::new(String::new());
    let send_code = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(s) = step.get_untracked() else { return };
        let c = code.get_untracked().trim().to_owned();
        if c.is_empty() {
            error.set(Some(ApiError {
                status: 0,
                code: "required".into(),
                title: "请输入验证码".into(),
                detail: "请输入身份验证器上的 6 位验证码，或一个恢复码".into(),
                field: Some("code".into()),
            }));
            return;
        }
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let body = SecondFactorCodeRequest { code: c };
            match st.api.post_step::<_, LoginResponse>(&s.token, "/auth/login/second-factor", &body).await {
                Ok(r) => {
                    code.set(String::new());
                    advance(r);
                }
                Err(e) => {
                    // A step token that expired or was refused: back to the password.
                    if e.code.starts_with("token_") {
                        step.set(None);
                    }
                    error.set(Some(e));
                }
            }
            busy.set(false);
        });
    };
    let on_password = Callback::new(move |r: LoginResponse| advance(r));
    let on_enrolled = Callback::new(move |done: SecondFactorEnrolled| match done.login {
        Some(login) => recovery.set(Some((done.recovery_codes, login))),
        None => step.set(None),
    });
    let on_saved = Callback::new(move |_: ()| {
        // On with the login first: clearing the codes while the step is shown would draw a new
        // enrolment (and start one).
        if let Some((_, login)) = recovery.get_untracked() {
            advance(login);
            recovery.set(None);
        }
    });
    let back = move |_| {
        step.set(None);
        recovery.set(None);
        password.set(String::new());
        error.set(None);
    };

    let password_form = move || {
        view! {
            <form class="login-box" on:submit=submit novalidate=true>
                <h1>"督查"</h1>
                <p class="subtitle">"意识形态工作责任制督查平台"</p>
                <label>
                    <span>"用户名"</span>
                    <input type="text" name="username" autocomplete="username" data-testid="login-username"
                        bind:value=username autofocus=true/>
                </label>
                <label>
                    <span>"密码"</span>
                    <input type="password" name="password" autocomplete="current-password" data-testid="login-password"
                        bind:value=password/>
                </label>
                {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
                <button type="submit" class="primary" data-testid="login-submit" disabled=move || busy.get()>
                    {move || if busy.get() { "登录中…" } else { "登录" }}
                </button>
            </form>
        }
    };
    let step_view = move |s: Step| {
        let body = match s.next.as_str() {
            "second_factor" => view! {
                <form novalidate=true on:submit=send_code data-testid="login-second-factor">
                    <label>
                        <span>"动态验证码"</span>
                        <input type="text" name="code" inputmode="numeric" autocomplete="one-time-code" autofocus=true
                            data-testid="login-code" prop:value=move || code.get() on:input=move |ev| code.set(event_target_value(&ev))/>
                    </label>
                    <p class="muted">"打开手机上的身份验证器，输入“督查”的 6 位验证码；手机不在身边时可输入一个恢复码。"</p>
                    {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
                    <button type="submit" class="primary" data-testid="login-code-submit" disabled=move || busy.get()>"验证"</button>
                </form>
            }
            .into_any(),
            "password_change" => {
                view! { <ChangePassword step=Some(s.token.clone()) current=password.get_untracked() on_done=on_password/> }
                    .into_any()
            }
            "second_factor_enrol" => view! {
                {move || match recovery.get() {
                    Some((codes, _)) => view! { <RecoveryCodes codes=codes on_continue=on_saved/> }.into_any(),
                    None => view! { <EnrolSecondFactor step=Some(s.token.clone()) on_done=on_enrolled/> }.into_any(),
                }}
            }
            .into_any(),
            other => view! { <p>{format!("未知的登录步骤：{other}")}</p> }.into_any(),
        };
        view! {
            <div class="login-box login-step" data-testid="login-step" data-step=s.next.clone()>
                <h1>"督查"</h1>
                <p class="subtitle" data-testid="login-step-reason">{s.reason.clone()}</p>
                {body}
                <button type="button" class="link" data-testid="login-back" on:click=back>"返回，重新登录"</button>
            </div>
        }
    };
    view! {
        <div class="login-page">
            {move || match step.get() {
                None => password_form().into_any(),
                Some(s) => step_view(s).into_any(),
            }}
        </div>
    }
}
