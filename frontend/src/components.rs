//! Reusable pieces: links for the router, the loading / error / empty states, the "as of" banner
//! and picker, the guard for write actions, and the chart wrapper.

use crate::chart::{self, Bar};
use crate::format;
use crate::problem::ApiError;
use crate::state::{use_app, writable};
use leptos::prelude::*;

/// An in-app link: a real `<a href>` (opens in a new tab with a modifier key) that navigates
/// without reloading on a plain click.
#[component]
pub fn Link(
    #[prop(into)] to: String,
    #[prop(optional, into)] testid: Option<String>,
    #[prop(optional, into)] class: Option<Signal<String>>,
    children: Children,
) -> impl IntoView {
    let router = use_app().router;
    let href = to.clone();
    let on_click = move |ev: leptos::ev::MouseEvent| {
        if ev.button() == 0 && !ev.ctrl_key() && !ev.meta_key() && !ev.shift_key() && !ev.alt_key() {
            ev.prevent_default();
            router.navigate(&to);
        }
    };
    view! {
        <a href=href data-testid=testid class=move || class.map(|c| c.get()).unwrap_or_default() on:click=on_click>
            {children()}
        </a>
    }
}

#[component]
pub fn Loading() -> impl IntoView {
    view! { <div class="state state-loading" data-testid="loading" aria-busy="true">"加载中…"</div> }
}

/// An error from the API, shown to the user in Chinese (with the stable code for support).
#[component]
pub fn ErrorBox(error: ApiError) -> impl IntoView {
    let code = (!error.code.is_empty()).then(|| format!("错误代码：{}", error.code));
    view! {
        <div class="state state-error" role="alert" data-testid="error" data-code=error.code.clone()>
            <strong>{error.title.clone()}</strong>
            <p>{error.detail.clone()}</p>
            <small>{code}</small>
        </div>
    }
}

/// Nothing to show yet, and what to do about it.
#[component]
pub fn Empty(#[prop(into)] message: String, #[prop(into)] hint: String) -> impl IntoView {
    view! {
        <div class="state state-empty" data-testid="empty">
            <strong>{message}</strong>
            <p>{hint}</p>
        </div>
    }
}

/// A resource's three states in one place: loading, error, or the page drawn by `ok`.
pub fn loaded<T: Clone + 'static, V: IntoView + 'static>(
    value: Option<Result<T, ApiError>>,
    ok: impl FnOnce(T) -> V,
) -> AnyView {
    match value {
        None => view! { <Loading/> }.into_any(),
        Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
        Some(Ok(v)) => ok(v).into_any(),
    }
}

/// Shows its children only when writes are allowed (not in a historical view).
#[component]
pub fn Writable(children: ChildrenFn) -> impl IntoView {
    let can = writable();
    view! { <Show when=move || can.get()>{children()}</Show> }
}

/// `历史视图：YYYY-MM-DD HH:mm（只读）` on every page while the global "as of" is set.
#[component]
pub fn AsOfBanner() -> impl IntoView {
    let api = use_app().api;
    move || {
        api.as_of.get().map(|at| {
            view! {
                <div class="asof-banner" role="status" data-testid="asof-banner">
                    <span>{format::as_of_banner(at)}</span>
                    <button type="button" class="link" data-testid="asof-clear" on:click=move |_| api.as_of.set(None)>
                        "回到当前"
                    </button>
                </div>
            }
        })
    }
}

/// The global "as of" time picker (Asia/Shanghai wall-clock time).
#[component]
pub fn AsOfPicker() -> impl IntoView {
    let api = use_app().api;
    let value = move || api.as_of.get().map(format::local_input_value).unwrap_or_default();
    let on_change = move |ev: leptos::ev::Event| {
        api.as_of.set(format::parse_local_input(&event_target_value(&ev)));
    };
    view! {
        <label class="asof-picker" title="查看过去某一时刻的状态（北京时间）">
            <span>"历史时点"</span>
            <input type="datetime-local" data-testid="asof-input" prop:value=value on:change=on_change/>
        </label>
    }
}

/// A horizontal bar chart of our own (see [`chart::bar_chart`]): `<title>` tooltips, Chinese labels.
#[component]
pub fn BarChart(#[prop(into)] title: String, bars: Vec<Bar>, #[prop(into)] testid: String) -> impl IntoView {
    let svg = chart::bar_chart(&title, &bars);
    view! {
        <figure class="chart-box" data-testid=testid>
            <figcaption>{title}</figcaption>
            <div class="chart-svg" inner_html=svg></div>
        </figure>
    }
}
