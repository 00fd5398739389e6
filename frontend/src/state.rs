//! The app's shared state, provided as one `Copy` context ([`AppState`]): the API client (with
//! the session token and the global "as of"), the current user, and the router.

use crate::api::Api;
use crate::route::Route;
use ducha_events::api::MeResponse;
use leptos::prelude::*;
use wasm_bindgen::JsValue;

#[derive(Debug, Clone, Copy)]
pub struct AppState {
    pub api: Api,
    /// `/me` of the logged-in user, once loaded.
    pub me: RwSignal<Option<MeResponse>>,
    pub router: Router,
    /// Live refresh (`live.rs`): `live.revision` goes up on every server-sent event of the tenant
    /// being followed; read it in a `LocalResource` to refetch when something changed.
    pub live: crate::live::LiveState,
    /// Goes up when one's notifications change here (read, all read): the bell refetches its count.
    pub notifications: RwSignal<u32>,
}

impl AppState {
    pub fn new() -> AppState {
        AppState {
            api: Api::new(),
            me: RwSignal::new(None),
            router: Router::new(),
            live: crate::live::LiveState::new(),
            notifications: RwSignal::new(0),
        }
    }
}

/// The state of the app, from any component.
pub fn use_app() -> AppState {
    expect_context::<AppState>()
}

/// Whether write actions may be shown: not while the global "as of" is set (a past state is
/// read-only). Wrap every write action in `<Writable>` or test this.
pub fn writable() -> Signal<bool> {
    let st = use_app();
    Signal::derive(move || st.api.as_of.get().is_none())
}

/// A tiny router on the history API: the current path as a signal; [`Router::navigate`] pushes a
/// new entry, the browser's back and forward buttons come in through `popstate` (see `app.rs`).
#[derive(Debug, Clone, Copy)]
pub struct Router {
    path: RwSignal<String>,
}

fn location_path() -> String {
    let loc = window().location();
    let path = loc.pathname().unwrap_or_else(|_| "/".into());
    path + &loc.search().unwrap_or_default()
}

impl Router {
    fn new() -> Router {
        Router { path: RwSignal::new(location_path()) }
    }

    pub fn route(&self) -> Route {
        Route::parse(&self.path.get())
    }

    pub fn path(&self) -> String {
        self.path.get()
    }

    /// Goes to `to` (a path of this app), adding a history entry.
    pub fn navigate(&self, to: &str) {
        if self.path.get_untracked() != to {
            let _ = window().history().and_then(|h| h.push_state_with_url(&JsValue::NULL, "", Some(to)));
            self.path.set(to.to_owned());
            window().scroll_to_with_x_and_y(0.0, 0.0);
        }
    }

    /// Goes to `to` in place of the current entry (redirects such as `/` → the user's home).
    pub fn replace(&self, to: &str) {
        let _ = window().history().and_then(|h| h.replace_state_with_url(&JsValue::NULL, "", Some(to)));
        self.path.set(to.to_owned());
    }

    /// Puts a page's own state (a ledger's filters) into the address without leaving the page:
    /// the current history entry's query becomes `search`; the route does not change, so the page
    /// is not drawn again. A copied link then reproduces the view.
    pub fn set_query(&self, search: &str) {
        let loc = window().location();
        let path = loc.pathname().unwrap_or_else(|_| "/".into());
        let to = if search.is_empty() { path } else { format!("{path}?{search}") };
        let _ = window().history().and_then(|h| h.replace_state_with_url(&JsValue::NULL, "", Some(&to)));
    }

    /// The current address's query (`?a=b`, or empty).
    pub fn search(&self) -> String {
        window().location().search().unwrap_or_default()
    }

    /// Follows the browser's back/forward buttons.
    pub fn sync(&self) {
        self.path.set(location_path());
    }
}
