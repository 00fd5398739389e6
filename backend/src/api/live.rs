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

type SharedRead =
    futures_util::future::Shared<futures_util::future::BoxFuture<'static, Result<Arc<Vec<RecordedEvent>>, String>>>;

/// One read of a tenant's log shared by every live stream that needs the same one: an append wakes
/// every stream of the tenant at once (hundreds of open dashboards), and each would otherwise read
/// the same events itself — as many blocking reads, store connections and buffers at a time as
/// there are streams (the soak measured the memory this took). Streams at the same position woken
/// by the same head share one read; a read is keyed by tenant and position and valid for the head
/// it was started at (a later head starts a new one, and drops the tenant's older ones).
#[derive(Default)]
pub struct SharedReads {
    reads: std::sync::Mutex<std::collections::HashMap<(TenantId, u64), (u64, SharedRead)>>,
}

impl SharedReads {
    /// The tenant's events after `after` (up to `PAGE`), read once for everyone asking with the
    /// store's head at `head`.
    async fn read(
        &self,
        store: &Arc<dyn EventStore>,
        tenant: &TenantId,
        after: u64,
        head: u64,
    ) -> Result<Arc<Vec<RecordedEvent>>, String> {
        use futures_util::FutureExt;
        let shared = {
            let mut reads = self.reads.lock().unwrap_or_else(|p| p.into_inner());
            match reads.get(&(tenant.clone(), after)) {
                Some((at, read)) if *at == head => read.clone(),
                _ => {
                    reads.retain(|(t, _), (at, _)| t != tenant || *at >= head);
                    let (store, t) = (store.clone(), tenant.clone());
                    let read = async move {
                        store.read_tenant(&t, after, PAGE, Upto::Head).await.map(Arc::new).map_err(|e| e.to_string())
                    }
                    .boxed()
                    .shared();
                    reads.insert((tenant.clone(), after), (head, read.clone()));
                    read
                }
            }
        };
        shared.await
    }

    /// How many reads are kept (for tests).
    pub fn len(&self) -> usize {
        self.reads.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

/// Sends the tenant's events after `after` as they come, until the client goes away, the store
/// closes or the process stops.
async fn pump(
    store: Arc<dyn EventStore>,
    model: Arc<LiveModel>,
    tenant: TenantId,
    visibility: Visibility,
    mut after: u64,
    tx: mpsc::Sender<Bytes>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let mut heads = store.subscribe();
    let mut keep_alive = tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    // The server's own stop (it has caught the signal); a server that never stops never ends it.
    let shutdown = async move {
        if stopping.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(shutdown);
    loop {
        // Everything new since the last frame (a notification may stand for many appends).
        loop {
            let head = *heads.borrow_and_update();
            let batch = match model.live_reads.read(&store, &tenant, after, head).await {
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
    actix_web::rt::spawn(pump(
        state.store.clone(),
        state.live.clone(),
        tenant,
        visibility,
        after,
        tx,
        state.stopping.clone(),
    ));
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
        actix_web::rt::spawn(pump(
            state.store.clone(),
            state.live.clone(),
            tenant.clone(),
            Visibility::All,
            head,
            tx,
            state.stopping.clone(),
        ));

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

    /// Streams woken by the same append share one read of the log: a hundred concurrent asks at
    /// the same position and head get the very same page; a later head reads again and drops the
    /// tenant's older reads.
    #[actix_web::test]
    async fn streams_at_one_position_share_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let demo = Demo::load(dir.path()).await;
        let state = &demo.state;
        let tenant = TenantId::parse("xxjd").unwrap();
        let head = state.store.head().await.unwrap();
        let after = 0;
        let reads = SharedReads::default();
        let asks = (0..100).map(|_| reads.read(&state.store, &tenant, after, head));
        let pages = futures_util::future::join_all(asks).await;
        let first = pages[0].as_ref().unwrap().clone();
        assert!(!first.is_empty() && first.iter().all(|e| e.tenant == tenant && e.position > after));
        assert!(pages.iter().all(|p| Arc::ptr_eq(p.as_ref().unwrap(), &first)), "one read for all");
        assert_eq!(reads.len(), 1);
        // A new head: a new read, the old one dropped.
        let again = reads.read(&state.store, &tenant, after, head + 1).await.unwrap();
        assert!(!Arc::ptr_eq(&again, &first));
        assert_eq!(reads.len(), 1);
    }
}
