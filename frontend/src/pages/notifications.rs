//! 消息中心 (issue 14): the bell in the header with one's unread count, the list of one's
//! notifications (临期、逾期、待销号提醒与催办; each links to its finding; mark read, mark all read),
//! and, for a sub-district admin, 提醒与推送: the reminder settings, the outbound channels
//! (企业微信 / 钉钉 robots, webhooks) and the delivery log.

use crate::components::{Empty, ErrorBox, Link, Loading};
use crate::format;
use crate::problem::ApiError;
use crate::state::use_app;
use ducha_events::api::{
    ChannelRequest, ChannelView, DeliveryLog, NotificationList, NotificationSettings, NotificationView, UnreadCount,
};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// How often the bell asks for the unread count.
const BELL_POLL_MS: u64 = 60_000;

/// The bell: the unread count, linking to 消息中心. Refreshes every minute and whenever one's
/// notifications change here.
#[component]
pub fn Bell() -> impl IntoView {
    let st = use_app();
    let tick = RwSignal::new(0u32);
    let handle = set_interval_with_handle(
        move || tick.update(|n| *n = n.wrapping_add(1)),
        std::time::Duration::from_millis(BELL_POLL_MS),
    )
    .ok();
    on_cleanup(move || {
        if let Some(h) = handle {
            h.clear();
        }
    });
    let count = LocalResource::new(move || {
        tick.track();
        st.notifications.track();
        st.api.get_current::<UnreadCount>("/me/notifications/unread-count")
    });
    let unread = move || count.get().and_then(Result::ok).map_or(0, |c| c.unread);
    let label = move || match unread() {
        0 => "消息中心：没有未读消息".to_owned(),
        n => format!("消息中心：{n} 条未读消息"),
    };
    view! {
        <a href="/notifications" class="bell" data-testid="bell" aria-label=label title=label
            on:click=move |ev: leptos::ev::MouseEvent| {
                if ev.button() == 0 && !ev.ctrl_key() && !ev.meta_key() {
                    ev.prevent_default();
                    st.router.navigate("/notifications");
                }
            }>
            <span aria-hidden="true">"🔔"</span>
            {move || (unread() > 0).then(|| view! {
                <span class="bell-count" data-testid="bell-count">{unread().min(99).to_string()}</span>
            })}
        </a>
    }
}

fn when(rfc3339: &str) -> String {
    format::rfc3339(rfc3339)
}

#[component]
pub fn NotificationsPage() -> impl IntoView {
    let st = use_app();
    let only_unread = RwSignal::new(false);
    let data = LocalResource::new(move || {
        st.notifications.track();
        let unread = only_unread.get();
        st.api.get_current::<NotificationList>(&format!("/me/notifications?limit=200&unread={unread}"))
    });
    let error = RwSignal::new(None::<ApiError>);
    let changed = move || st.notifications.update(|n| *n = n.wrapping_add(1));
    let read_all = move |_| {
        spawn_local(async move {
            match st.api.post_empty("/me/notifications/read-all").await {
                Ok(()) => changed(),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    view! {
        <section class="page" data-page="notifications">
            <div class="page-head">
                <h1>"消息中心"</h1>
                <label class="muted">
                    <input type="checkbox" data-testid="notifications-unread-only"
                        prop:checked=move || only_unread.get()
                        on:change=move |ev| only_unread.set(event_target_checked(&ev))/>
                    " 只看未读"
                </label>
                <button type="button" data-testid="notifications-read-all" on:click=read_all>"全部标为已读"</button>
            </div>
            <p class="muted">"临期、逾期、待销号提醒与街道的催办。点击“查看”打开对应问题的整改页面。"</p>
            {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
            {move || match data.get() {
                None => view! { <Loading/> }.into_any(),
                Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                Some(Ok(list)) if list.items.is_empty() => view! {
                    <Empty message="暂无消息" hint="整改期限临近、逾期、等待销号或被催办时，消息会出现在这里。"/>
                }.into_any(),
                Some(Ok(list)) => view! {
                    <p class="muted" data-testid="notifications-unread">{format!("未读 {} 条", list.unread)}</p>
                    <ul class="notifications" data-testid="notifications-list">
                        {list.items.into_iter().map(|n| item(n, error)).collect_view()}
                    </ul>
                }.into_any(),
            }}
        </section>
    }
}

fn item(n: NotificationView, error: RwSignal<Option<ApiError>>) -> impl IntoView {
    let st = use_app();
    let id = n.id;
    let unread = n.read_at.is_none();
    let mark = move || {
        spawn_local(async move {
            match st.api.post_empty(&format!("/me/notifications/{id}/read")).await {
                Ok(()) => st.notifications.update(|c| *c = c.wrapping_add(1)),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let open = n.link.clone().map(|link| {
        let to = link.clone();
        view! {
            <a href=link data-testid="notification-open" on:click=move |ev: leptos::ev::MouseEvent| {
                ev.prevent_default();
                if unread {
                    mark();
                }
                st.router.navigate(&to);
            }>"查看"</a>
        }
    });
    let class = if unread { "notification unread" } else { "notification" };
    view! {
        <li class=class data-testid="notification" data-kind=n.kind.clone() data-unread=unread.to_string()>
            <span class=format!("badge badge-{}", n.kind)>{n.kind_name.clone()}</span>
            <span class="notification-text">{n.text.clone()}</span>
            <small class="muted">{when(&n.created_at)}</small>
            {open}
            {unread.then(|| view! {
                <button type="button" class="link" data-testid="notification-read" on:click=move |_| mark()>"标为已读"</button>
            })}
        </li>
    }
}

/// 提醒与推送 (a sub-district admin): settings, channels, the delivery log.
#[component]
pub fn NotifySettingsPage(tenant: String) -> impl IntoView {
    let base = format!("/tenants/{tenant}");
    view! {
        <section class="page admin" data-page="notify">
            <header class="page-head">
                <h1>"提醒与推送"</h1>
                <span class="muted">"临期、逾期、待销号提醒的规则，企业微信/钉钉群机器人与 Webhook 推送，以及推送记录。"</span>
            </header>
            <Settings base=base.clone()/>
            <Channels base=base.clone()/>
            <Deliveries base=base/>
        </section>
    }
}

#[component]
fn Settings(base: String) -> impl IntoView {
    let st = use_app();
    let path = StoredValue::new(format!("{base}/notification-settings"));
    let data = LocalResource::new(move || st.api.get_current::<NotificationSettings>(&path.get_value()));
    let (due, wait, hour) = (RwSignal::new(String::new()), RwSignal::new(String::new()), RwSignal::new(String::new()));
    Effect::new(move |_| {
        if let Some(Ok(s)) = data.get() {
            due.set(s.due_soon_days.to_string());
            wait.set(s.verify_wait_days.to_string());
            hour.set(s.digest_hour.to_string());
        }
    });
    let error = RwSignal::new(None::<ApiError>);
    let saved = RwSignal::new(false);
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        saved.set(false);
        let num = |s: RwSignal<String>| s.get_untracked().trim().parse::<u32>().unwrap_or(u32::MAX);
        let body =
            NotificationSettings { due_soon_days: num(due), verify_wait_days: num(wait), digest_hour: num(hour) };
        spawn_local(async move {
            match st.api.post::<_, NotificationSettings>(&path.get_value(), &body).await {
                Ok(_) => {
                    error.set(None);
                    saved.set(true);
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let field = |label: &'static str, name: &'static str, sig: RwSignal<String>, hint: &'static str| {
        view! {
            <label class="field">
                <span>{label}</span>
                <input type="number" name=name data-testid=format!("notify-{name}") min="0" max="60"
                    prop:value=move || sig.get() on:input=move |ev| sig.set(event_target_value(&ev))/>
                <small class="muted">{hint}</small>
            </label>
        }
    };
    view! {
        <form class="admin-form" data-testid="notify-settings" novalidate=true on:submit=save>
            <h2>"提醒规则"</h2>
            <div class="form-row">
                {field("临期提醒（到期前天数）", "due_soon_days", due, "0–60 天")}
                {field("待销号提醒（提交后天数）", "verify_wait_days", wait, "1–60 天")}
                {field("每日汇总发送时间（时）", "digest_hour", hour, "0–23 点（北京时间）")}
            </div>
            {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
            {move || saved.get().then(|| view! { <p class="ok" data-testid="notify-saved">"已保存"</p> })}
            <button type="submit" class="primary" data-testid="notify-save">"保存"</button>
        </form>
    }
}

#[component]
fn Channels(base: String) -> impl IntoView {
    let st = use_app();
    let path = StoredValue::new(format!("{base}/notification-channels"));
    let reload = RwSignal::new(0u32);
    let data = LocalResource::new(move || {
        reload.track();
        st.api.get_current::<Vec<ChannelView>>(&path.get_value())
    });
    let (kind, name, url, secret) = (
        RwSignal::new("wecom".to_owned()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    let error = RwSignal::new(None::<ApiError>);
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let s = secret.get_untracked();
        let body = ChannelRequest {
            kind: kind.get_untracked(),
            name: name.get_untracked(),
            url: url.get_untracked(),
            secret: (!s.trim().is_empty()).then_some(s),
            enabled: true,
            each_reminder: true,
        };
        spawn_local(async move {
            match st.api.post::<_, ChannelView>(&path.get_value(), &body).await {
                Ok(_) => {
                    error.set(None);
                    name.set(String::new());
                    url.set(String::new());
                    secret.set(String::new());
                    reload.update(|n| *n += 1);
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let remove = move |id: String| {
        spawn_local(async move {
            match st.api.post_empty(&format!("{}/{id}/remove", path.get_value())).await {
                Ok(()) => reload.update(|n| *n += 1),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    view! {
        <h2>"推送渠道"</h2>
        {move || match data.get() {
            None => view! { <Loading/> }.into_any(),
            Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
            Some(Ok(list)) if list.is_empty() => view! {
                <Empty message="还没有推送渠道" hint="添加企业微信或钉钉群机器人的 Webhook 地址，提醒和每日汇总会推送到群里。"/>
            }.into_any(),
            Some(Ok(list)) => view! {
                <table class="table" data-testid="channels-table">
                    <thead><tr><th>"名称"</th><th>"类型"</th><th>"地址"</th><th>"密钥"</th><th>"状态"</th><th></th></tr></thead>
                    <tbody>
                        {list.into_iter().map(|c| {
                            let id = c.id.clone();
                            view! {
                                <tr data-testid="channels-row" data-id=c.id.clone()>
                                    <td>{c.name}</td>
                                    <td>{c.kind_name}</td>
                                    <td><code>{c.url_masked}</code></td>
                                    <td>{if c.has_secret { "已设置" } else { "—" }}</td>
                                    <td>{if c.enabled { "启用" } else { "停用" }}</td>
                                    <td><button type="button" class="link" data-testid="channel-remove"
                                        on:click=move |_| remove(id.clone())>"删除"</button></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any(),
        }}
        <form class="admin-form" data-testid="channel-form" novalidate=true on:submit=add>
            <h3>"添加渠道"</h3>
            <div class="form-row">
                <label class="field"><span>"类型"</span>
                    <select name="kind" data-testid="channel-kind" prop:value=move || kind.get()
                        on:change=move |ev| kind.set(event_target_value(&ev))>
                        <option value="wecom">"企业微信群机器人"</option>
                        <option value="dingtalk">"钉钉自定义机器人"</option>
                        <option value="webhook">"通用 Webhook"</option>
                    </select>
                </label>
                <label class="field"><span>"名称"</span>
                    <input name="name" data-testid="channel-name" placeholder="如 街道整改工作群"
                        prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/></label>
                <label class="field"><span>"Webhook 地址"</span>
                    <input name="url" data-testid="channel-url" placeholder="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"
                        prop:value=move || url.get() on:input=move |ev| url.set(event_target_value(&ev))/></label>
                <label class="field"><span>"密钥（钉钉加签 / Webhook 签名）"</span>
                    <input name="secret" type="password" data-testid="channel-secret" autocomplete="off"
                        prop:value=move || secret.get() on:input=move |ev| secret.set(event_target_value(&ev))/></label>
            </div>
            {move || error.get().map(|e| view! { <ErrorBox error=e/> })}
            <button type="submit" class="primary" data-testid="channel-add">"添加"</button>
        </form>
    }
}

#[component]
fn Deliveries(base: String) -> impl IntoView {
    let st = use_app();
    let path = StoredValue::new(format!("{base}/deliveries?limit=100"));
    let data = LocalResource::new(move || st.api.get_current::<DeliveryLog>(&path.get_value()));
    view! {
        <h2>"推送记录"</h2>
        {move || match data.get() {
            None => view! { <Loading/> }.into_any(),
            Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
            Some(Ok(log)) if log.items.is_empty() => view! {
                <Empty message="暂无推送记录" hint="添加推送渠道后，提醒与每日汇总的发送情况会记录在这里。"/>
            }.into_any(),
            Some(Ok(log)) => view! {
                <table class="table" data-testid="deliveries-table">
                    <thead><tr><th>"时间"</th><th>"渠道"</th><th>"内容"</th><th>"状态"</th><th>"尝试次数"</th><th>"说明"</th></tr></thead>
                    <tbody>
                        {log.items.into_iter().map(|d| view! {
                            <tr data-testid="deliveries-row" data-status=d.status.clone()>
                                <td>{when(d.sent_at.as_deref().unwrap_or(&d.created_at))}</td>
                                <td>{d.channel_name}</td>
                                <td>{d.text}</td>
                                <td>{d.status_name}</td>
                                <td>{d.attempts}</td>
                                <td>{d.last_error.unwrap_or_default()}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any(),
        }}
        <p class="muted"><Link to="/notifications">"查看我的消息"</Link></p>
    }
}
