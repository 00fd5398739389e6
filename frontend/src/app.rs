//! The shell: login or the app (header with the user and role, menu per role, "as of" banner,
//! the page of the current route).

use crate::components::{AsOfBanner, AsOfPicker, ErrorBox, Link, Loading};
use crate::pages::{DistrictPage, LoginPage, NotFoundPage, PlaceholderPage, TenantDashboardPage};
use crate::problem::ApiError;
use crate::route::{Route, home_for, nav_for};
use crate::state::{AppState, use_app};
use ducha_events::api::MeResponse;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos::wasm_split::{SplitLoaderError, wasm_split};
use std::future::Future;

#[component]
pub fn App() -> impl IntoView {
    let st = AppState::new();
    provide_context(st);
    let _ = window_event_listener(leptos::ev::popstate, move |_| st.router.sync());
    Effect::new(move |_| document().set_title(&format!("{} · 督查", st.router.route().title())));
    // Logged in or not: a new token for the same session (after a password change) keeps the page.
    let logged_in = Memo::new(move |_| st.api.token.with(Option::is_some));
    move || if logged_in.get() { view! { <Shell/> }.into_any() } else { view! { <LoginPage/> }.into_any() }
}

/// The logged-in app: loads `/me` once per login (a login draws a new shell), then draws the
/// header and the page.
#[component]
fn Shell() -> impl IntoView {
    let st = use_app();
    let me = LocalResource::new(move || st.api.get_current::<MeResponse>("/me"));
    Effect::new(move |_| {
        if let Some(Ok(m)) = me.get() {
            st.me.set(Some(m));
        }
    });
    move || match me.get() {
        None => view! { <Loading/> }.into_any(),
        Some(Err(e)) => view! { <div class="page"><ErrorBox error=e/></div> }.into_any(),
        Some(Ok(m)) => view! {
            <Header me=m.clone()/>
            <AsOfBanner/>
            <main class="main">
                <DistrictBack me=m.clone()/>
                <Page me=m/>
            </main>
        }
        .into_any(),
    }
}

/// District officers and auditors drilled down into a sub-district: the way back to 全区概览.
#[component]
fn DistrictBack(me: MeResponse) -> impl IntoView {
    let st = use_app();
    move || {
        crate::route::district_back_for(&me.grants, &st.router.route()).map(|r| {
            view! {
                <nav class="breadcrumb" aria-label="返回">
                    <Link to=r.path() testid="back-district">"← 返回全区概览"</Link>
                </nav>
            }
        })
    }
}

#[component]
fn Header(me: MeResponse) -> impl IntoView {
    let st = use_app();
    let nav = nav_for(&me.grants);
    let roles = me.grants.iter().map(|g| format!("{}（{}）", g.role_name, g.scope.name)).collect::<Vec<_>>().join("、");
    let auditor = me.grants.iter().any(|g| g.role == "auditor");
    let logout = move |_| {
        spawn_local(async move {
            // Even if the server cannot be reached, the token is forgotten here.
            let _ = st.api.post_empty("/auth/logout").await;
            // The token first: the pages go before the signals they read change (else they would
            // reload with the ended session).
            st.api.set_token(None);
            st.api.as_of.set(None);
            st.me.set(None);
            st.router.replace("/login");
        });
    };
    let links = nav
        .into_iter()
        .map(|r| {
            let id = r.page_id();
            let path = r.path();
            let active = Signal::derive(move || {
                if st.router.route().nav_id() == id { "nav-link active".to_owned() } else { "nav-link".to_owned() }
            });
            view! { <Link to=path testid=format!("nav-{id}") class=active>{r.title()}</Link> }
        })
        .collect_view();
    view! {
        <header class="topbar">
            <div class="brand">"督查"</div>
            <nav class="nav" aria-label="主菜单">{links}</nav>
            <div class="who">
                {auditor.then(|| view! { <AsOfPicker/> })}
                <crate::pages::Bell/>
                <span class="user" data-testid="current-user" title=me.username.clone()>{me.display_name.clone()}</span>
                <span class="role" data-testid="current-role">{roles}</span>
                <Link to="/account" testid="account-link">"账号安全"</Link>
                <button type="button" class="link" data-testid="logout" on:click=logout>"退出"</button>
            </div>
        </header>
    }
}

/// The page of the current route.
#[component]
fn Page(me: MeResponse) -> impl IntoView {
    let st = use_app();
    let home = home_for(&me.grants);
    let target = home.clone();
    // `/` (and `/login` once logged in) lead to the first page of the user's menu.
    Effect::new(move |_| {
        if let (Route::Home | Route::Login, Some(h)) = (st.router.route(), &target) {
            st.router.replace(&h.path());
        }
    });
    move || {
        let route = st.router.route();
        match route {
            Route::Home | Route::Login => match &home {
                Some(_) => view! { <Loading/> }.into_any(),
                None => view! {
                    <section class="page">
                        <crate::components::Empty message="您的账号还没有分配角色" hint="请联系街道或平台管理员为您分配角色后重新登录。"/>
                    </section>
                }
                .into_any(),
            },
            Route::TenantDashboard { tenant } => view! { <TenantDashboardPage tenant=tenant/> }.into_any(),
            Route::District { district } => view! { <DistrictPage district=district/> }.into_any(),
            r @ (Route::Inspections { .. }
            | Route::Inspection { .. }
            | Route::Finding { .. }
            | Route::SelfInspections { .. }
            | Route::MyFindings { .. }) => on_demand(load_inspection_screens, move || inspection_screens(r.clone())),
            r @ (Route::Ledger { .. } | Route::LedgerImport { .. }) => on_demand(load_ledger_screens, move || ledger_screens(r.clone())),
            r @ (Route::Communities { .. }
            | Route::Checklists { .. }
            | Route::Users { .. }
            | Route::Platform
            | Route::Accounts
            | Route::DistrictUsers { .. }) => on_demand(load_admin_screens, move || admin_screens(r.clone())),
            r @ (Route::Account | Route::SecurityAudit | Route::SecurityPolicy | Route::PersonalData) => {
                on_demand(load_security_screens, move || security_screens(r.clone()))
            }
            r @ (Route::Audit | Route::AuditTenant { .. }) => on_demand(load_audit_screens, move || audit_screens(r.clone())),
            r @ (Route::Notifications | Route::NotifySettings { .. }) => {
                on_demand(load_notification_screens, move || notification_screens(r.clone()))
            }
            Route::NotFound { path } => view! { <NotFoundPage path=path/> }.into_any(),
            // Every route has its page now; a new route may use the placeholder until its page exists.
            #[allow(unreachable_patterns)]
            other => view! { <PlaceholderPage route=other/> }.into_any(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Screens loaded on demand. Login, the shell and the two home pages (a sub-district's dashboard,
// the district's overview) are in the first module the browser fetches; every other screen is in
// the module of its group, fetched the first time one of its screens opens. `#[wasm_split]` is
// what Leptos's `#[lazy]` expands to, here with `fallible`, so that a failed fetch is an error on
// the page rather than a panic; `cargo xtask web` cuts the WASM at these functions (wasm-split).
// Code only one group uses goes into its module; code several share, into small shared chunks.
// ---------------------------------------------------------------------------------------------

/// A screen of a group loaded on demand: the loading state until the group's module is there,
/// then the screen, built as any other (synchronously, in the page's own reactive owner: the
/// split function answers at once once its module is loaded). If the module cannot be fetched (a
/// network failure): a clear error and 重试, which fetches again (a failed load is not remembered;
/// the rest of the app keeps running).
fn on_demand<P, S>(preload: fn() -> P, screen: impl Fn() -> S + Send + Sync + 'static) -> AnyView
where
    P: Future<Output = Result<(), SplitLoaderError>> + 'static,
    S: Future<Output = Result<AnyView, ApiError>>,
{
    // Already loaded (the group was opened before): no loading state at all.
    let loaded = ready_now(preload()).and_then(Result::ok);
    let state = RwSignal::new(loaded.map(Ok::<(), ApiError>));
    let load = move || {
        spawn_local(async move {
            let result = preload().await.map_err(ApiError::from);
            // The user may have left the screen meanwhile (its signal is then gone).
            let _ = state.try_set(Some(result));
        })
    };
    if loaded.is_none() {
        load();
    }
    (move || match state.get() {
        None => view! { <Loading/> }.into_any(),
        Some(Err(error)) => view! {
            <section class="page">
                <ErrorBox error=error/>
                <button type="button" data-testid="retry-module" on:click=move |_| { state.set(None); load(); }>
                    "重试"
                </button>
            </section>
        }
        .into_any(),
        Some(Ok(())) => match ready_now(screen()) {
            Some(Ok(view)) => view,
            Some(Err(error)) => view! { <section class="page"><ErrorBox error=error/></section> }.into_any(),
            None => view! { <Loading/> }.into_any(),
        },
    })
    .into_any()
}

/// The output of a future that is ready on its first poll (a split function whose module is
/// loaded), or `None`.
fn ready_now<F: Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

impl From<SplitLoaderError> for ApiError {
    fn from(_: SplitLoaderError) -> Self {
        ApiError::module_unavailable()
    }
}

/// 督查工作: inspections, an inspection, a finding, self-inspections, my findings.
#[wasm_split(inspection_screens, wasm_split_path = ::leptos::wasm_split, fallible, preload(load_inspection_screens))]
fn inspection_screens(route: Route) -> Result<AnyView, ApiError> {
    Ok(match route {
        Route::Inspections { tenant } => view! { <crate::pages::InspectionsPage tenant=tenant/> }.into_any(),
        Route::Inspection { tenant, inspection } => {
            view! { <crate::pages::InspectionPage tenant=tenant inspection=inspection/> }.into_any()
        }
        Route::Finding { tenant, inspection, finding } => {
            view! { <crate::pages::FindingPage tenant=tenant inspection=inspection finding=finding/> }.into_any()
        }
        Route::SelfInspections { tenant } => view! { <crate::pages::SelfInspectionsPage tenant=tenant/> }.into_any(),
        Route::MyFindings { tenant } => view! { <crate::pages::MyFindingsPage tenant=tenant/> }.into_any(),
        other => view! { <PlaceholderPage route=other/> }.into_any(),
    })
}

/// 整改台账 and its import.
#[wasm_split(ledger_screens, wasm_split_path = ::leptos::wasm_split, fallible, preload(load_ledger_screens))]
fn ledger_screens(route: Route) -> Result<AnyView, ApiError> {
    Ok(match route {
        Route::Ledger { tenant } => view! { <crate::pages::LedgerPage tenant=tenant/> }.into_any(),
        Route::LedgerImport { tenant } => view! { <crate::pages::LedgerImportPage tenant=tenant/> }.into_any(),
        other => view! { <PlaceholderPage route=other/> }.into_any(),
    })
}

/// Administration: communities, checklists, users, the platform, accounts, district users.
#[wasm_split(admin_screens, wasm_split_path = ::leptos::wasm_split, fallible, preload(load_admin_screens))]
fn admin_screens(route: Route) -> Result<AnyView, ApiError> {
    Ok(match route {
        Route::Communities { tenant } => view! { <crate::pages::CommunitiesPage tenant=tenant/> }.into_any(),
        Route::Checklists { tenant } => view! { <crate::pages::ChecklistsPage tenant=tenant/> }.into_any(),
        Route::Users { tenant } => view! { <crate::pages::UsersPage tenant=tenant/> }.into_any(),
        Route::Platform => view! { <crate::pages::PlatformPage/> }.into_any(),
        Route::Accounts => view! { <crate::pages::AccountsPage/> }.into_any(),
        Route::DistrictUsers { district } => view! { <crate::pages::DistrictUsersPage district=district/> }.into_any(),
        other => view! { <PlaceholderPage route=other/> }.into_any(),
    })
}

/// 账号安全, the security audit, the security policy, personal data (PIPL).
#[wasm_split(security_screens, wasm_split_path = ::leptos::wasm_split, fallible, preload(load_security_screens))]
fn security_screens(route: Route) -> Result<AnyView, ApiError> {
    Ok(match route {
        Route::Account => view! { <crate::pages::AccountPage/> }.into_any(),
        Route::SecurityAudit => view! { <crate::pages::SecurityAuditPage/> }.into_any(),
        Route::SecurityPolicy => view! { <crate::pages::SecurityPolicyPage/> }.into_any(),
        Route::PersonalData => view! { <crate::pages::PersonalDataPage/> }.into_any(),
        other => view! { <PlaceholderPage route=other/> }.into_any(),
    })
}

/// The auditors' screen: the log, its proofs, "as of".
#[wasm_split(audit_screens, wasm_split_path = ::leptos::wasm_split, fallible, preload(load_audit_screens))]
fn audit_screens(route: Route) -> Result<AnyView, ApiError> {
    Ok(match route {
        Route::Audit => view! { <crate::pages::AuditPage/> }.into_any(),
        Route::AuditTenant { tenant } => view! { <crate::pages::AuditPage tenant=tenant/> }.into_any(),
        other => view! { <PlaceholderPage route=other/> }.into_any(),
    })
}

/// The notification centre and the reminder settings.
#[wasm_split(notification_screens, wasm_split_path = ::leptos::wasm_split, fallible, preload(load_notification_screens))]
fn notification_screens(route: Route) -> Result<AnyView, ApiError> {
    Ok(match route {
        Route::Notifications => view! { <crate::pages::NotificationsPage/> }.into_any(),
        Route::NotifySettings { tenant } => view! { <crate::pages::NotifySettingsPage tenant=tenant/> }.into_any(),
        other => view! { <PlaceholderPage route=other/> }.into_any(),
    })
}
