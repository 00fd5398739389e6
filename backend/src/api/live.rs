//! `GET /tenants/{tenant_id}/live`: server-sent events of a tenant's new events, for the web app to
//! refresh what it shows. Each frame is
//!
//! ```text
//! id: 1234
//! event: ProgressReported
//! data: {"position":1234,"stream":"xxjd/finding-xx-2023-f2","event_type":"ProgressReported",…}
//! ```
//!
//! (no payloads: the client reads what changed through the ordinary endpoints). The stream follows
//! the store's head notifications and reads the tenant's log after the last position sent, so
//! nothing is skipped; `Last-Event-ID` resumes after a reconnect. A comment every 15 s keeps proxies
//! from closing an idle connection; on SIGTERM/SIGINT the stream sends `event: shutdown` and ends, so
//! a graceful shutdown does not wait for it.
//!
//! Scope is that of every read: readers of the tenant get all its events; community officers only
//! those of their own community's findings and self-inspections.

use crate::api::auth::Authenticated;
use crate::api::dashboard::TenantPath;
use crate::api::error::ApiError;
use crate::api::state::{AppState, LiveModel};
use crate::store::{EventStore, Upto};
use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, get, web};
use ducha_events::Event;
use ducha_events::authz::{Action, Actor, Role, Scope, Target, authorize};
use ducha_events::envelope::RecordedEvent;
use ducha_events::ids::{CommunityId, FindingId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(live);
}

/// Seconds between keep-alive comments.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Events read from the store at a time.
const PAGE: usize = 500;

/// The `data` of one frame.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LiveEvent {
    /// Global log position (also the frame's `id`).
    pub position: u64,
    /// e.g. `xxjd/finding-xx-2023-f2`.
    pub stream: String,
    /// e.g. `ProgressReported` (also the frame's `event`).
    pub event_type: String,
    /// RFC 3339, UTC.
    pub occurred_at: String,
    pub actor: LiveActor,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LiveActor {
    pub user_id: UserId,
    pub role: Role,
}

/// Which of the tenant's events the caller may see.
#[derive(Debug, Clone)]
enum Visibility {
    All,
    Communities(Vec<CommunityId>),
}

impl Visibility {
    fn of(actor: &Actor, tenant: &TenantId, tenant_target: &Target) -> Result<Visibility, ApiError> {
        let whole = match authorize(actor, Action::Read, tenant_target) {
            Ok(_) => return Ok(Visibility::All),
            Err(e) => e,
        };
        let communities: Vec<CommunityId> = actor
            .grants
            .iter()
            .filter_map(|g| match &g.scope {
                Scope::Community { tenant_id, community_id, .. } if tenant_id == tenant => {
                    let t = Target { community_id: Some(community_id.clone()), ..tenant_target.clone() };
                    authorize(actor, Action::Read, &t).is_ok().then(|| community_id.clone())
                }
                _ => None,
            })
            .collect();
        if communities.is_empty() {
            return Err(whole.into());
        }
        Ok(Visibility::Communities(communities))
    }

    /// Whether an event of the tenant may be sent.
    fn allows(&self, e: &RecordedEvent, model: &LiveModel) -> bool {
        let communities = match self {
            Visibility::All => return true,
            Visibility::Communities(c) => c,
        };
        let Some((_, rest)) = e.stream.split_once('/') else { return false };
        if let Some(id) = rest.strip_prefix("finding-") {
            let Ok(id) = FindingId::parse(id) else { return false };
            let model = model.read();
            let community =
                model.tenant_facts(&e.tenant).and_then(|f| f.finding(&id)).and_then(|f| f.community_id.clone());
            return community.is_some_and(|c| communities.contains(&c));
        }
        if rest.starts_with("self-inspection-") {
            return matches!(e.decode(), Ok(Event::SelfInspectionSubmitted(s)) if communities.contains(&s.community_id));
        }
        false
    }
}

/// One SSE frame.
fn frame(e: &RecordedEvent) -> Bytes {
    let data = LiveEvent {
        position: e.position,
        stream: e.stream.clone(),
        event_type: e.event_type.clone(),
        occurred_at: e.occurred_at.clone(),
        actor: LiveActor { user_id: e.actor.user_id.clone(), role: e.actor.role },
    };
    let json = serde_json::to_string(&data).unwrap_or_else(|_| "{}".into());
    // Event type names are identifiers (no line breaks), so they are safe in the `event:` field.
    Bytes::from(format!("id: {}\nevent: {}\ndata: {json}\n\n", e.position, e.event_type))
}

/// The response body: frames as the pump sends them; ends when the pump stops.
struct EventStream(mpsc::Receiver<Bytes>);

impl MessageBody for EventStream {
    type Error = std::convert::Infallible;
    fn size(&self) -> BodySize {
        BodySize::Stream
    }
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.get_mut().0.poll_recv(cx).map(|frame| frame.map(Ok))
    }
}

/// Resolves when the process is asked to stop (SIGTERM or SIGINT); never when it cannot listen.
async fn shutdown_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                r = tokio::signal::ctrl_c() => if r.is_err() { std::future::pending::<()>().await },
            }
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Sends the tenant's events after `after` as they come, until the client goes away, the store
/// closes or the process stops.
async fn pump(
    store: Arc<dyn EventStore>,
    model: Arc<LiveModel>,
    tenant: TenantId,
    visibility: Visibility,
    mut after: u64,
    tx: mpsc::Sender<Bytes>,
) {
    let mut heads = store.subscribe();
    let mut keep_alive = tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    let shutdown = shutdown_requested();
    tokio::pin!(shutdown);
    loop {
        // Everything new since the last frame (a notification may stand for many appends).
        loop {
            heads.borrow_and_update();
            let batch = match store.read_tenant(&tenant, after, PAGE, Upto::Head).await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %e, tenant = %tenant, "live stream cannot read the log; ending it");
                    return;
                }
            };
            let Some(last) = batch.last() else { break };
            after = last.position;
            // Announce only what the read models already include: the store's head runs ahead of
            // the live model (the follower folds after the append), and a client refetches as soon
            // as a frame arrives, so it must find the change there.
            if let Err(e) = model.catch_up_to(&*store, Some(after)).await {
                tracing::warn!(error = %e, tenant = %tenant, "live stream cannot catch the read model up; ending it");
                return;
            }
            for e in batch.iter().filter(|e| visibility.allows(e, &model)) {
                if tx.send(frame(e)).await.is_err() {
                    return;
                }
            }
        }
        tokio::select! {
            changed = heads.changed() => if changed.is_err() { return },
            _ = keep_alive.tick() => if tx.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() { return },
            _ = &mut shutdown => {
                let _ = tx.send(Bytes::from_static(b"event: shutdown\ndata: {}\n\n")).await;
                return;
            }
            _ = tx.closed() => return,
        }
    }
}

/// Live updates: a server-sent-events stream (`text/event-stream`) of the tenant's new events.
///
/// Each event is a frame with `id: <position>`, `event: <event_type>` and `data:` a `LiveEvent`
/// (position, stream, event_type, occurred_at, actor — no payload). Starts after the current head,
/// or after `Last-Event-ID` when resuming. A `: keep-alive` comment comes every 15 s; `event:
/// shutdown` ends the stream when the server stops. Community officers receive only the events of
/// their community's findings and self-inspections.
#[utoipa::path(
    tag = "live",
    params(
        TenantPath,
        ("Last-Event-ID" = Option<u64>, Header, description = "resume after this position (the last `id:` received)"),
    ),
    responses(
        (status = 200, description = "事件流 / the event stream: frames of `id`, `event` and `data` (a LiveEvent as JSON)",
         content_type = "text/event-stream", body = String),
    )
)]
#[get("/tenants/{tenant_id}/live")]
pub async fn live(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<TenantPath>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.into_inner().tenant_id;
    let target = state.tenant_target(&tenant)?;
    let visibility = Visibility::of(&who.actor, &tenant, &target)?;
    let after = match req.headers().get("last-event-id") {
        Some(v) => v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_last_event_id",
                "Last-Event-ID 应为事件位置（非负整数）",
                "Last-Event-ID must be an event position (a non-negative integer)",
            )
            .with_field("Last-Event-ID")
        })?,
        None => state.store.head().await?,
    };
    let (tx, rx) = mpsc::channel(64);
    // The first bytes go out at once, so the client knows the stream is open.
    let _ = tx.try_send(Bytes::from(format!("retry: 3000\n: live after {after}\n\n")));
    actix_web::rt::spawn(pump(state.store.clone(), state.live.clone(), tenant, visibility, after, tx));
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .body(EventStream(rx)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::testkit::Demo;
    use crate::commands::{self, Meta};
    use ducha_events::ids::DistrictId;
    use ducha_events::tenant::TenantCommand;

    /// A frame goes out only once the read model includes its event: an event appended straight to
    /// the store (the test kit runs no follower, so nothing else moves the model) is announced
    /// with the model already at its position, and a refetch right then sees it.
    #[actix_web::test]
    async fn frames_wait_for_the_read_model() {
        let dir = tempfile::tempdir().unwrap();
        let demo = Demo::load(dir.path()).await;
        let state = &demo.state;
        let tenant = TenantId::parse("xxjd").unwrap();
        let head = state.store.head().await.unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        actix_web::rt::spawn(pump(state.store.clone(), state.live.clone(), tenant.clone(), Visibility::All, head, tx));

        let admin = state.live.read().directory().user_by_username("xx-admin").unwrap().actor();
        let add = TenantCommand::AddCommunity {
            community_id: CommunityId::parse("xinhua").unwrap(),
            name: "新华社区".into(),
        };
        let meta = Meta::new(admin, chrono::Utc::now());
        let district = DistrictId::parse("xxq").unwrap();
        let done = commands::tenant(&*state.store, &meta, &district, &tenant, add).await.unwrap();
        let position = done.outcome.last_position;
        // The pump itself folds the model up to a frame before sending it (`catch_up_to`), and it
        // may already have done so here; what matters is the order when the frame arrives.

        let frame = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        let text = String::from_utf8_lossy(&frame).into_owned();
        assert!(text.starts_with(&format!("id: {position}\n")), "{text}");
        assert!(state.live.position() >= position, "announced before the read model had it");
        let model = state.live.read();
        let facts = model.directory().tenant(&tenant).unwrap();
        assert!(facts.communities.iter().any(|c| c.community_id.as_str() == "xinhua"));
    }
}
