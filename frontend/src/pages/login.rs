//! 登录: `POST /auth/login`; the token goes into sessionStorage (gone when the tab closes).

use crate::components::ErrorBox;
use crate::problem::ApiError;
use crate::state::use_app;
use ducha_events::api::{LoginRequest, LoginResponse};
use leptos::prelude::*;
use leptos::task::spawn_local;

#[component]
pub fn LoginPage() -> impl IntoView {
    let st = use_app();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
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
                Ok(r) => {
                    password.set(String::new());
                    st.api.set_token(Some(r.access_token));
                    if st.router.path().starts_with("/login") {
                        st.router.replace("/");
                    }
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <div class="login-page">
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
        </div>
    }
}
