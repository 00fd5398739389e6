//! The notification centre and outbound channels (issue 14):
//!
//! - `GET /me/notifications`, `GET /me/notifications/unread-count`, `POST /me/notifications/{id}/read`,
//!   `POST /me/notifications/read-all`: one's own notifications (anyone signed in);
//! - `GET|PUT /tenants/{t}/notification-settings`, `GET|POST /tenants/{t}/notification-channels`,
//!   `PUT|DELETE /tenants/{t}/notification-channels/{id}`, `GET /tenants/{t}/deliveries`,
//!   `POST /tenants/{t}/deliveries/{id}/retry`: the tenant's settings, channels and delivery log
//!   (whoever may `ManageTenant` there: its sub-district admin, the platform admin).
//!
//! All of it is server state (`server_state::notify`), not events: no `If-Match`, no idempotency
//! key (marking read twice, saving the same settings twice, are the same). Channel changes are
//! written to the security audit log (without the URL's query or the secret).

use crate::api::auth::Authenticated;
use crate::api::dashboard::TenantPath;
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::notify::Message;
use crate::notify::channels::{ChannelKind, check_url};
use crate::security_log::{self, Entry, SUCCESS};
use crate::server_state::notify::{Channel, Delivery, DeliveryStatus, Notification, NotifySettings};
use crate::server_state::now_ms;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use ducha_events::api::{
    ChannelRequest, ChannelView, DeliveryLog, DeliveryView, NotificationList, NotificationSettings, NotificationView,
    UnreadCount,
};
use ducha_events::authz::{Action, authorize};
use ducha_events::ids::{FindingId, TenantId};
use ducha_events::projection::reminders::{ReminderKind, ReminderPolicy};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_notifications)
        .service(unread_count)
        .service(read_all)
        .service(mark_read)
        .service(get_settings)
        .service(put_settings)
        .service(list_channels)
        .service(add_channel)
        .service(change_channel)
        .service(remove_channel)
        .service(delivery_log)
        .service(retry_delivery);
}

const PAGE_MAX: u32 = 200;
const PAGE_DEFAULT: u32 = 50;

fn invalid(field: &str, detail: impl Into<String>, detail_en: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", detail, detail_en).with_field(field)
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| ducha_events::time::format(&t)).unwrap_or_default()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only unread ones.
    #[serde(default)]
    pub unread: Option<bool>,
    /// Older than this id (the previous page's `next_before`).
    #[serde(default)]
    pub before: Option<i64>,
    /// 1–200 (default 50).
    #[serde(default)]
    pub limit: Option<u32>,
}

fn limit_of(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(PAGE_DEFAULT),
        Some(n) if (1..=PAGE_MAX).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("limit 应在 1 至 {PAGE_MAX} 之间"),
            format!("limit must be 1 to {PAGE_MAX}"),
        )
        .with_field("limit")),
    }
}

/// The inspection of a finding (for the link to its page), from the live model.
fn inspection_of(state: &AppState, tenant: &str, finding: Option<&str>) -> Option<String> {
    let tenant = TenantId::parse(tenant).ok()?;
    let finding = FindingId::parse(finding?).ok()?;
    let model = state.live.read();
    let i = model.tenant_facts(&tenant)?.finding(&finding)?.inspection_id.clone()?;
    Some(i.as_str().to_owned())
}

fn view(state: &AppState, n: Notification) -> NotificationView {
    let kind_name = ReminderKind::from_code(&n.kind).map_or(n.kind.as_str(), |k| k.name_zh()).to_owned();
    let inspection_id = inspection_of(state, &n.tenant, n.finding_id.as_deref());
    let link = match (&inspection_id, &n.finding_id) {
        (Some(i), Some(f)) => Some(format!("/tenants/{}/inspections/{i}/findings/{f}", n.tenant)),
        _ => None,
    };
    NotificationView {
        id: n.id,
        tenant_id: n.tenant,
        kind: n.kind,
        kind_name,
        text: n.text,
        finding_id: n.finding_id,
        inspection_id,
        link,
        created_at: rfc3339(n.created_ms),
        read_at: n.read_ms.map(rfc3339),
    }
}

/// One's notifications, newest first (临期、逾期、待销号提醒与催办).
#[utoipa::path(
    tag = "notifications",
    params(ListParams),
    responses((status = 200, description = "我的消息 / my notifications", body = NotificationList))
)]
#[get("/me/notifications")]
pub async fn list_notifications(
    state: web::Data<AppState>,
    who: Authenticated,
    query: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let limit = limit_of(q.limit)?;
    let user = who.actor.user_id.as_str();
    let items = state.server.notify.list(user, q.unread.unwrap_or(false), q.before, limit).await?;
    let unread = state.server.notify.unread_count(user).await?;
    let next_before = (items.len() == limit as usize).then(|| items.last().map(|n| n.id)).flatten();
    let items = items.into_iter().map(|n| view(&state, n)).collect();
    Ok(HttpResponse::Ok().json(NotificationList { items, unread, next_before }))
}

/// How many of one's notifications are unread (the bell).
#[utoipa::path(
    tag = "notifications",
    responses((status = 200, description = "未读数 / unread count", body = UnreadCount))
)]
#[get("/me/notifications/unread-count")]
pub async fn unread_count(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    let unread = state.server.notify.unread_count(who.actor.user_id.as_str()).await?;
    Ok(HttpResponse::Ok().json(UnreadCount { unread }))
}

/// Marks all of one's notifications read; answers the new unread count (0).
#[utoipa::path(
    tag = "notifications",
    responses((status = 200, description = "已全部标为已读 / all marked read", body = UnreadCount))
)]
#[post("/me/notifications/read-all")]
pub async fn read_all(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    let user = who.actor.user_id.as_str();
    state.server.notify.mark_all_read(user, now_ms()).await?;
    let unread = state.server.notify.unread_count(user).await?;
    Ok(HttpResponse::Ok().json(UnreadCount { unread }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct NotificationPath {
    /// The notification's id.
    pub notification_id: String,
}

/// Marks one of one's notifications read (again is fine); answers the unread count.
#[utoipa::path(
    tag = "notifications",
    params(NotificationPath),
    responses((status = 200, description = "已标为已读 / marked read", body = UnreadCount))
)]
#[post("/me/notifications/{notification_id}/read")]
pub async fn mark_read(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<NotificationPath>,
) -> Result<HttpResponse, ApiError> {
    let user = who.actor.user_id.as_str();
    let not_found = || ApiError::not_found("该消息", "notification");
    let id: i64 = path.notification_id.parse().map_err(|_| not_found())?;
    if !state.server.notify.mark_read(user, id, now_ms()).await? {
        return Err(not_found());
    }
    let unread = state.server.notify.unread_count(user).await?;
    Ok(HttpResponse::Ok().json(UnreadCount { unread }))
}

/// The tenant's admin (or the platform admin) only.
fn may_manage(state: &AppState, who: &Authenticated, tenant: &TenantId) -> Result<(), ApiError> {
    authorize(&who.actor, Action::ManageTenant, &state.tenant_target(tenant)?)?;
    Ok(())
}

fn settings_view(s: Option<&NotifySettings>) -> NotificationSettings {
    let (policy, digest_hour) = crate::notify::policy_of(s);
    NotificationSettings { due_soon_days: policy.due_soon_days, verify_wait_days: policy.verify_wait_days, digest_hour }
}

/// The tenant's reminder settings (the defaults until its admin sets them).
#[utoipa::path(
    tag = "notifications",
    params(TenantPath),
    responses((status = 200, description = "提醒设置 / reminder settings", body = NotificationSettings))
)]
#[get("/tenants/{tenant_id}/notification-settings")]
pub async fn get_settings(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner().tenant_id;
    may_manage(&state, &who, &tenant)?;
    let s = state.server.notify.settings(tenant.as_str()).await?;
    Ok(HttpResponse::Ok().json(settings_view(s.as_ref())))
}

/// Sets the tenant's reminder settings.
#[utoipa::path(
    tag = "notifications",
    params(TenantPath),
    request_body = NotificationSettings,
    responses((status = 200, description = "已保存 / saved", body = NotificationSettings))
)]
#[post("/tenants/{tenant_id}/notification-settings")]
pub async fn put_settings(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
    body: web::Json<NotificationSettings>,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner().tenant_id;
    may_manage(&state, &who, &tenant)?;
    let b = body.into_inner();
    let policy = ReminderPolicy { due_soon_days: b.due_soon_days, verify_wait_days: b.verify_wait_days };
    policy.check().map_err(|(field, zh)| invalid(field, zh, format!("{field} is out of range")))?;
    if b.digest_hour > 23 {
        return Err(invalid("digest_hour", "每日汇总的发送时间应在 0 至 23 点之间", "digest_hour must be 0 to 23"));
    }
    let s = NotifySettings {
        due_soon_days: b.due_soon_days,
        verify_wait_days: b.verify_wait_days,
        digest_hour: b.digest_hour,
        updated_ms: now_ms(),
        updated_by: who.actor.user_id.as_str().to_owned(),
    };
    state.server.notify.save_settings(tenant.as_str(), &s).await?;
    Ok(HttpResponse::Ok().json(settings_view(Some(&s))))
}

/// `scheme://host/path?…`: the query carries the robots' keys and tokens.
fn mask(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_owned(),
    }
}

fn channel_view(c: &Channel) -> ChannelView {
    let kind = ChannelKind::from_code(&c.kind);
    ChannelView {
        id: c.id.clone(),
        kind: c.kind.clone(),
        kind_name: kind.map_or(c.kind.as_str(), |k| k.name_zh()).to_owned(),
        name: c.name.clone(),
        url_masked: mask(&c.url),
        has_secret: c.secret.is_some(),
        enabled: c.enabled,
        each_reminder: c.each_reminder,
    }
}

/// The tenant's outbound channels (URLs masked, secrets never shown).
#[utoipa::path(
    tag = "notifications",
    params(TenantPath),
    responses((status = 200, description = "推送渠道 / outbound channels", body = Vec<ChannelView>))
)]
#[get("/tenants/{tenant_id}/notification-channels")]
pub async fn list_channels(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner().tenant_id;
    may_manage(&state, &who, &tenant)?;
    let channels = state.server.notify.channels(Some(tenant.as_str())).await?;
    Ok(HttpResponse::Ok().json(channels.iter().map(channel_view).collect::<Vec<_>>()))
}

/// Checks a channel request; the kind and the secret to store (`keep`: the one stored before).
fn checked(b: &ChannelRequest, keep: Option<&str>) -> Result<(ChannelKind, Option<String>), ApiError> {
    let kind = ChannelKind::from_code(&b.kind).ok_or_else(|| {
        invalid(
            "kind",
            "渠道类型应为 wecom（企业微信）、dingtalk（钉钉）或 webhook",
            "kind must be wecom, dingtalk or webhook",
        )
    })?;
    let name = b.name.trim();
    if name.is_empty() || name.chars().count() > 50 || name.chars().any(char::is_control) {
        return Err(invalid("name", "渠道名称应为 1 至 50 个字符", "name must be 1 to 50 characters"));
    }
    check_url(b.url.trim()).map_err(|zh| invalid("url", zh, "url must be an http(s) URL with a host"))?;
    let secret = match &b.secret {
        None => keep.map(str::to_owned),
        Some(s) if s.trim().is_empty() => None,
        Some(s) => {
            let s = s.trim();
            if s.len() > 256 || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(invalid(
                    "secret",
                    "密钥应为 1 至 256 个可见字符",
                    "secret must be 1 to 256 visible characters",
                ));
            }
            Some(s.to_owned())
        }
    };
    if kind == ChannelKind::Wecom && secret.is_some() {
        return Err(invalid(
            "secret",
            "企业微信群机器人不使用密钥（其密钥即地址中的 key）",
            "a 企业微信 robot takes no secret (its key is in the URL)",
        ));
    }
    Ok((kind, secret))
}

async fn audit(
    state: &AppState,
    who: &Authenticated,
    req: &HttpRequest,
    object: String,
    detail: String,
) -> Result<(), ApiError> {
    let origin = crate::api::extract::origin(req, state.config.trust_forwarded_for);
    let entry = Entry::new("notification_channel_changed", SUCCESS, &origin)
        .user(&who.actor.user_id, &who.username)
        .role(who.role())
        .object(object)
        .detail(detail);
    security_log::record(&*state.store, entry).await.map_err(|e| {
        tracing::error!(error = %e, "cannot record a channel change");
        ApiError::audit_unavailable()
    })?;
    Ok(())
}

/// Adds an outbound channel (企业微信群机器人, 钉钉自定义机器人 or a webhook).
#[utoipa::path(
    tag = "notifications",
    params(TenantPath),
    request_body = ChannelRequest,
    responses((status = 201, description = "已添加 / added", body = ChannelView))
)]
#[post("/tenants/{tenant_id}/notification-channels")]
pub async fn add_channel(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
    req: HttpRequest,
    body: web::Json<ChannelRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner().tenant_id;
    may_manage(&state, &who, &tenant)?;
    let b = body.into_inner();
    let (kind, secret) = checked(&b, None)?;
    let channel = Channel {
        id: uuid::Uuid::now_v7().to_string(),
        tenant: tenant.as_str().to_owned(),
        kind: kind.code().to_owned(),
        name: b.name.trim().to_owned(),
        url: b.url.trim().to_owned(),
        secret,
        enabled: b.enabled,
        each_reminder: b.each_reminder,
        created_ms: now_ms(),
        updated_by: who.actor.user_id.as_str().to_owned(),
    };
    let object = format!("{tenant}/notification-channel/{}", channel.id);
    audit(&state, &who, &req, object, format!("added {} {} {}", kind.code(), channel.name, mask(&channel.url))).await?;
    state.server.notify.save_channel(&channel).await?;
    let location = format!("/api/v1/tenants/{tenant}/notification-channels/{}", channel.id);
    Ok(HttpResponse::Created().insert_header(("Location", location)).json(channel_view(&channel)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ChannelPath {
    #[param(value_type = String)]
    pub tenant_id: TenantId,
    pub channel_id: String,
}

async fn find_channel(state: &AppState, tenant: &TenantId, id: &str) -> Result<Channel, ApiError> {
    state
        .server
        .notify
        .channels(Some(tenant.as_str()))
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError::not_found("该推送渠道", "channel"))
}

/// Changes an outbound channel (leave `secret` out to keep the stored one).
#[utoipa::path(
    tag = "notifications",
    params(ChannelPath),
    request_body = ChannelRequest,
    responses((status = 200, description = "已保存 / saved", body = ChannelView))
)]
#[post("/tenants/{tenant_id}/notification-channels/{channel_id}")]
pub async fn change_channel(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<ChannelPath>,
    req: HttpRequest,
    body: web::Json<ChannelRequest>,
) -> Result<HttpResponse, ApiError> {
    let ChannelPath { tenant_id: tenant, channel_id } = path.into_inner();
    may_manage(&state, &who, &tenant)?;
    let old = find_channel(&state, &tenant, &channel_id).await?;
    let b = body.into_inner();
    let (kind, secret) = checked(&b, old.secret.as_deref())?;
    let channel = Channel {
        kind: kind.code().to_owned(),
        name: b.name.trim().to_owned(),
        url: b.url.trim().to_owned(),
        secret,
        enabled: b.enabled,
        each_reminder: b.each_reminder,
        updated_by: who.actor.user_id.as_str().to_owned(),
        ..old
    };
    let object = format!("{tenant}/notification-channel/{}", channel.id);
    let detail = format!("changed {} {} {} enabled={}", kind.code(), channel.name, mask(&channel.url), channel.enabled);
    audit(&state, &who, &req, object, detail).await?;
    state.server.notify.save_channel(&channel).await?;
    Ok(HttpResponse::Ok().json(channel_view(&channel)))
}

/// Removes an outbound channel and what is still queued for it (its delivery log stays).
#[utoipa::path(
    tag = "notifications",
    params(ChannelPath),
    responses((status = 204, description = "已删除 / removed"))
)]
#[post("/tenants/{tenant_id}/notification-channels/{channel_id}/remove")]
pub async fn remove_channel(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<ChannelPath>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let ChannelPath { tenant_id: tenant, channel_id } = path.into_inner();
    may_manage(&state, &who, &tenant)?;
    let old = find_channel(&state, &tenant, &channel_id).await?;
    let object = format!("{tenant}/notification-channel/{}", old.id);
    audit(&state, &who, &req, object, format!("removed {} {}", old.kind, old.name)).await?;
    state.server.notify.delete_channel(tenant.as_str(), &channel_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

fn status_name(s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Pending => "待发送",
        DeliveryStatus::Sending => "发送中",
        DeliveryStatus::Sent => "已送达",
        DeliveryStatus::Failed => "发送失败",
        DeliveryStatus::Uncertain => "未能确认",
    }
}

fn delivery_view(d: Delivery, channels: &[Channel]) -> DeliveryView {
    let message: Option<Message> = serde_json::from_str(&d.message).ok();
    DeliveryView {
        id: d.id,
        channel_name: channels.iter().find(|c| c.id == d.channel_id).map(|c| c.name.clone()).unwrap_or_default(),
        channel_id: d.channel_id,
        key: d.key,
        title: message.as_ref().map(|m| m.title.clone()).unwrap_or_default(),
        text: message.map(|m| m.text).unwrap_or_default(),
        status: d.status.code().to_owned(),
        status_name: status_name(d.status).to_owned(),
        attempts: d.attempts,
        last_error: d.last_error,
        created_at: rfc3339(d.created_ms),
        next_attempt_at: (d.status == DeliveryStatus::Pending).then(|| rfc3339(d.next_attempt_ms)),
        sent_at: d.sent_ms.map(rfc3339),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    /// Older than this id (the previous page's `next_before`).
    #[serde(default)]
    pub before: Option<i64>,
    /// 1–200 (default 50).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// The tenant's delivery log, newest first: what was sent on which channel, when, after how many
/// attempts, and why not.
#[utoipa::path(
    tag = "notifications",
    params(TenantPath, LogParams),
    responses((status = 200, description = "推送记录 / the delivery log", body = DeliveryLog))
)]
#[get("/tenants/{tenant_id}/deliveries")]
pub async fn delivery_log(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
    query: web::Query<LogParams>,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner().tenant_id;
    may_manage(&state, &who, &tenant)?;
    let q = query.into_inner();
    let limit = limit_of(q.limit)?;
    let rows = state.server.notify.deliveries(tenant.as_str(), q.before, limit).await?;
    let channels = state.server.notify.channels(Some(tenant.as_str())).await?;
    let next_before = (rows.len() == limit as usize).then(|| rows.last().map(|d| d.id)).flatten();
    let items = rows.into_iter().map(|d| delivery_view(d, &channels)).collect();
    Ok(HttpResponse::Ok().json(DeliveryLog { items, next_before }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DeliveryPath {
    #[param(value_type = String)]
    pub tenant_id: TenantId,
    pub delivery_id: String,
}

/// Sends a `failed` or `uncertain` delivery again (an `uncertain` one may then arrive twice).
#[utoipa::path(
    tag = "notifications",
    params(DeliveryPath),
    responses((status = 204, description = "已重新排队 / queued again"))
)]
#[post("/tenants/{tenant_id}/deliveries/{delivery_id}/retry")]
pub async fn retry_delivery(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<DeliveryPath>,
) -> Result<HttpResponse, ApiError> {
    let DeliveryPath { tenant_id: tenant, delivery_id } = path.into_inner();
    may_manage(&state, &who, &tenant)?;
    let not_found = || ApiError::not_found("该推送记录", "delivery");
    let id: i64 = delivery_id.parse().map_err(|_| not_found())?;
    if !state.server.notify.requeue(tenant.as_str(), id, now_ms()).await? {
        let exists = state.server.notify.deliveries(tenant.as_str(), Some(id + 1), 1).await?;
        if exists.first().is_some_and(|d| d.id == id) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "delivery_state",
                "只有发送失败或未能确认的推送可以重发",
                "only a failed or uncertain delivery can be retried",
            ));
        }
        return Err(not_found());
    }
    Ok(HttpResponse::NoContent().finish())
}
