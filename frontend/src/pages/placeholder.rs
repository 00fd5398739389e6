//! The pages that are not built yet, and the page for an unknown path.

use crate::components::{Empty, Link};
use crate::route::Route;
use leptos::prelude::*;

#[component]
pub fn PlaceholderPage(route: Route) -> impl IntoView {
    view! {
        <section class="page" data-page=route.page_id()>
            <h1>{route.title()}</h1>
            <Empty message="此页面正在建设中" hint="后续版本将在这里提供完整功能；请先使用其他页面。"/>
        </section>
    }
}

#[component]
pub fn NotFoundPage(path: String) -> impl IntoView {
    view! {
        <section class="page" data-page="not-found">
            <h1>"页面不存在"</h1>
            <Empty message=format!("没有找到 {path}") hint="请检查地址，或返回首页。"/>
            <Link to="/">"返回首页"</Link>
        </section>
    }
}
