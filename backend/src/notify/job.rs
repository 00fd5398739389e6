//! The notifier: every `notify_interval_seconds`, on the replica that holds the `notifications`
//! lease, one round:
//!
//! 1. **derive**: each tenant's reminders on today's Shanghai date (the server clock, moved by
//!    `DUCHA_TEST_CLOCK_OFFSET_SECONDS` in tests) with the tenant's settings; each goes into the
//!    notification centre of its recipients (once per person and key) and, for channels that want
//!    each reminder, into the queue (once per channel and key); from the tenant's `digest_hour` on,
//!    the day's digest is queued for every channel (once per channel and day);
//! 2. **recover**: claims older than [`STALE_CLAIM_MS`] (their sender died mid-request) become
//!    `uncertain` — at most once: they are not resent unless the admin requeues them (with one
//!    replica, SQLite, every open claim at start is such);
//! 3. **send**: for each enabled channel, at most `notify_rate_per_minute` attempts in any 60
//!    seconds; a definite failure is retried after `notify_retry_base_seconds × 2^(attempt−1)`
//!    (at most an hour) until `notify_max_attempts`; a timeout (the request may have arrived) is
//!    `uncertain`.

use super::Message;
use super::channels::{self, ChannelKind};
use crate::api::AppState;
use crate::server_state::notify::{Channel, NewDelivery, NewNotification, Outcome};
use crate::server_state::now_ms;
use ducha_events::ids::TenantId;
use ducha_events::projection::reminders::{self, Reminder};
use std::time::Duration;

/// The notifier's lease.
pub const LEASE: &str = "notifications";
/// A claim older than this is a dead sender's (a request times out after [`REQUEST_TIMEOUT`]).
pub const STALE_CLAIM_MS: i64 = 120_000;
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Digest items per kind.
const DIGEST_ITEMS: usize = 10;

/// Runs the notifier until `stop` fires.
pub async fn run(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let interval = Duration::from_secs(state.config.notify_interval_seconds.max(1));
    let ttl = (interval * 3).max(Duration::from_secs(30));
    let client = match reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client: no notifications are sent");
            return;
        }
    };
    // One replica only (SQLite: the data directory's lock): a claim still open now is from a sender
    // that died — `uncertain` at once, not after the stale limit.
    if state.server.kind == "sqlite"
        && let Err(e) = state.server.notify.abandon_stale(now_ms()).await
    {
        tracing::warn!(error = %e, "cannot recover the deliveries in flight at the last stop");
    }
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut derived = Derived::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        match state.server.leases.try_acquire(LEASE, &state.replica.id, ttl).await {
            Ok(true) => {
                if !state.replica.holds(LEASE) {
                    tracing::info!(replica = %state.replica.id, "took the notifications lease");
                }
                state.replica.set(LEASE, true);
                round(&state, &client, &mut derived, &stop).await;
            }
            Ok(false) => state.replica.set(LEASE, false),
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the notifications lease");
                state.replica.set(LEASE, false);
            }
        }
    }
    if state.replica.holds(LEASE) {
        let _ = state.server.leases.release(LEASE, &state.replica.id).await;
    }
}

/// What each tenant's last derivation was made of (see [`derive`]).
pub type Derived = std::collections::HashMap<TenantId, String>;

/// One round; failures are logged and the next round tries again.
pub async fn round(
    state: &AppState,
    client: &reqwest::Client,
    derived: &mut Derived,
    stop: &tokio::sync::watch::Receiver<bool>,
) {
    if let Err(e) = derive(state, derived, stop).await {
        tracing::warn!(error = %e, "cannot derive reminders");
    }
    if let Err(e) = state.server.notify.abandon_stale(now_ms() - STALE_CLAIM_MS).await {
        tracing::warn!(error = %e, "cannot recover stale deliveries");
    }
    if let Err(e) = send(state, client).await {
        tracing::warn!(error = %e, "cannot send notifications");
    }
}

/// What one tenant owes today, computed under the read lock.
struct TenantWork {
    tenant: TenantId,
    notifications: Vec<NewNotification>,
    reminders: Vec<(Reminder, String)>,
    digest: Option<Message>,
}

/// Derives each tenant's reminders and digest, skipping a tenant whose inputs are what they were at
/// its last derivation (`derived`): its events and the platform's (the same last positions), the
/// day, whether the digest hour has come, its settings and channels. What a skipped tenant would
/// add is there already (every notification and delivery is once per key), and reading each of a
/// thousand sub-districts every minute would unpack the packed ones every minute.
/// Gives the number of tenants derived; stops early when `stop` fires.
async fn derive(
    state: &AppState,
    derived: &mut Derived,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<usize, crate::server_state::StateError> {
    let now = crate::clock::now();
    let today = ducha_events::time::local_date(&now);
    let hour = chrono::Timelike::hour(&now.with_timezone(&ducha_events::time::shanghai()));
    let tenants: Vec<TenantId> = state.live.read().directory().tenants().map(|(t, _)| t.clone()).collect();
    let mut count = 0;
    for tenant in tenants {
        // A stop does not wait for a round over a thousand sub-districts (the next start derives
        // what is left).
        if *stop.borrow() {
            break;
        }
        let settings = state.server.notify.settings(tenant.as_str()).await?;
        let (policy, digest_hour) = super::policy_of(settings.as_ref());
        let channels: Vec<(String, bool, bool)> = state
            .server
            .notify
            .channels(Some(tenant.as_str()))
            .await?
            .into_iter()
            .map(|c| (c.id, c.enabled, c.each_reminder))
            .collect();
        let inputs = {
            let model = state.live.read();
            let log = model.audit_log();
            let platform = log.last_position(&TenantId::platform());
            let digest_due = hour >= digest_hour;
            let settings = settings.as_ref().map(|s| (s.due_soon_days, s.verify_wait_days, s.digest_hour));
            format!("{}/{platform}/{today}/{digest_due}/{settings:?}/{channels:?}", log.last_position(&tenant))
        };
        if derived.get(&tenant) == Some(&inputs) {
            continue;
        }
        count += 1;
        // Reading a packed sub-district unpacks it (tens of milliseconds at 10,000 events): on the
        // blocking pool, not on a worker of the runtime the follower and the jobs share.
        let work = {
            let live = state.live.clone();
            let t = tenant.clone();
            match tokio::task::spawn_blocking(move || tenant_work(&live, &t, today, hour, digest_hour, &policy)).await {
                Ok(work) => work,
                Err(e) => {
                    // Not marked derived: the next round tries it again.
                    tracing::warn!(tenant = %tenant, error = %e, "cannot derive a sub-district's reminders");
                    continue;
                }
            }
        };
        if let Some(work) = work {
            queue(state, work).await?;
        }
        derived.insert(tenant, inputs);
    }
    Ok(count)
}

/// What `tenant` owes today (`None` if it has no facts), computed under the read lock.
fn tenant_work(
    live: &crate::api::state::LiveModel,
    tenant: &TenantId,
    today: chrono::NaiveDate,
    hour: u32,
    digest_hour: u32,
    policy: &reminders::ReminderPolicy,
) -> Option<TenantWork> {
    let model = live.read();
    // Every tenant in turn: a packed one is read without being kept.
    model.with_tenant_facts(tenant, |facts| {
        let facts = facts?;
        let dir = model.directory();
        let entry = dir.tenant(tenant);
        let name_of = |c: &ducha_events::ids::CommunityId| entry.and_then(|t| t.community_name(c)).map(str::to_owned);
        let mut work =
            TenantWork { tenant: tenant.clone(), notifications: Vec::new(), reminders: Vec::new(), digest: None };
        for r in reminders::reminders(facts, today, policy) {
            let text = r.text(r.community_id.as_ref().and_then(name_of).as_deref());
            for user in reminders::recipients(dir, tenant, facts, &r) {
                work.notifications.push(NewNotification {
                    tenant: tenant.as_str().to_owned(),
                    user_id: user.as_str().to_owned(),
                    key: r.key.clone(),
                    kind: r.kind.code().to_owned(),
                    finding_id: Some(r.finding_id.as_str().to_owned()),
                    text: text.clone(),
                });
            }
            work.reminders.push((r, text));
        }
        if hour >= digest_hour {
            let tenant_name = entry.map_or(tenant.as_str(), |t| t.name.as_str());
            let d = reminders::digest(tenant_name, facts, today, policy);
            if !d.is_empty() {
                let lines = d.lines(&name_of, DIGEST_ITEMS);
                let title = lines.first().cloned().unwrap_or_default();
                let markdown = std::iter::once(format!("### {title}"))
                    .chain(lines.iter().skip(1).map(|l| format!("> {l}")))
                    .collect::<Vec<_>>()
                    .join("\n");
                work.digest = Some(Message {
                    tenant: tenant.as_str().to_owned(),
                    key: format!("digest/{today}"),
                    kind: "digest".to_owned(),
                    title,
                    text: lines.join("\n"),
                    markdown,
                    finding_id: None,
                    lines,
                });
            }
        }
        Some(work)
    })
}

async fn queue(state: &AppState, work: TenantWork) -> Result<(), crate::server_state::StateError> {
    let now = now_ms();
    if !work.notifications.is_empty() {
        let added = state.server.notify.notify(&work.notifications, now).await?;
        if added > 0 {
            tracing::info!(tenant = %work.tenant, added, "notifications added");
        }
    }
    let channels: Vec<Channel> =
        state.server.notify.channels(Some(work.tenant.as_str())).await?.into_iter().filter(|c| c.enabled).collect();
    for ch in &channels {
        if ch.each_reminder {
            for (r, text) in &work.reminders {
                let message = Message {
                    tenant: work.tenant.as_str().to_owned(),
                    key: r.key.clone(),
                    kind: r.kind.code().to_owned(),
                    title: r.kind.name_zh().to_owned(),
                    text: text.clone(),
                    markdown: String::new(),
                    finding_id: Some(r.finding_id.as_str().to_owned()),
                    lines: Vec::new(),
                };
                enqueue(state, ch, &message, now).await?;
            }
        }
        if let Some(d) = &work.digest {
            enqueue(state, ch, d, now).await?;
        }
    }
    Ok(())
}

async fn enqueue(state: &AppState, ch: &Channel, m: &Message, now: i64) -> Result<(), crate::server_state::StateError> {
    let message = serde_json::to_string(m).unwrap_or_default();
    let d = NewDelivery { tenant: ch.tenant.clone(), channel_id: ch.id.clone(), key: m.key.clone(), message };
    state.server.notify.enqueue(&d, now).await.map(drop)
}

async fn send(state: &AppState, client: &reqwest::Client) -> Result<(), crate::server_state::StateError> {
    let limit = u64::from(state.config.notify_rate_per_minute.max(1));
    for ch in state.server.notify.channels(None).await? {
        let Some(kind) = ChannelKind::from_code(&ch.kind) else { continue };
        if !ch.enabled {
            continue;
        }
        let now = now_ms();
        let used = state.server.notify.attempts_since(&ch.id, now - 60_000).await?;
        let budget = limit.saturating_sub(used);
        if budget == 0 {
            continue;
        }
        let claimed = state.server.notify.claim(&ch.id, now, u32::try_from(budget).unwrap_or(u32::MAX)).await?;
        for d in claimed {
            let outcome = match serde_json::from_str::<Message>(&d.message) {
                Ok(message) => {
                    let req = channels::request(kind, &ch.url, ch.secret.as_deref(), d.id, &message, now_ms());
                    attempt(client, kind, &req).await
                }
                Err(e) => Err((format!("无法读取排队的消息 / unreadable queued message: {e}"), false)),
            };
            let outcome = match outcome {
                Ok(()) => Outcome::Sent,
                Err((error, true)) => Outcome::Uncertain { error },
                Err((error, false)) => {
                    let retry = (d.attempts < state.config.notify_max_attempts).then(|| {
                        let base = i64::try_from(state.config.notify_retry_base_seconds).unwrap_or(30) * 1000;
                        let factor = 1i64 << d.attempts.saturating_sub(1).min(20);
                        now_ms() + base.saturating_mul(factor).min(3_600_000)
                    });
                    Outcome::Failed { error, retry_at_ms: retry }
                }
            };
            match &outcome {
                Outcome::Sent => tracing::info!(channel = %ch.id, delivery = d.id, key = %d.key, "notification sent"),
                other => tracing::warn!(channel = %ch.id, delivery = d.id, outcome = ?other, "notification not sent"),
            }
            state.server.notify.finish(d.id, &outcome, now_ms()).await?;
        }
    }
    Ok(())
}

/// Sends one request. `Err((why, uncertain))`: `uncertain` when the request may have arrived (a
/// timeout after it was sent), else it surely did not (or was refused).
async fn attempt(
    client: &reqwest::Client,
    kind: ChannelKind,
    req: &channels::OutboundRequest,
) -> Result<(), (String, bool)> {
    let mut builder = client.post(&req.url).body(req.body.clone());
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    match builder.send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let body = res.text().await.unwrap_or_default();
            channels::accepted(kind, status, &body).map_err(|e| (e, false))
        }
        Err(e) if e.is_timeout() => Err((format!("请求超时，无法确认是否送达 / timed out: {e}"), true)),
        Err(e) => Err((format!("无法连接 / cannot connect: {e}"), false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A round derives every sub-district once; the next derives none until one's events, the
    /// platform's or its channels change, and then only those.
    #[tokio::test]
    async fn unchanged_sub_districts_are_not_derived_again() {
        let dir = tempfile::tempdir().unwrap();
        let demo = crate::api::testkit::Demo::load(dir.path()).await;
        let state = &demo.state;
        let tenants = state.live.read().directory().tenants().count();
        let mut derived = Derived::default();
        let (stopping, stop) = tokio::sync::watch::channel(false);
        assert_eq!(derive(state, &mut derived, &stop).await.unwrap(), tenants);
        let notifications = |t: &str| {
            let db = rusqlite::Connection::open(dir.path().join("api.db")).unwrap();
            db.query_row("SELECT count(*) FROM notifications WHERE tenant = ?1", [t], |r| r.get::<_, i64>(0)).unwrap()
        };
        let before = notifications("xxjd");
        assert!(before > 0, "the demo has reminders due");
        assert_eq!(derive(state, &mut derived, &stop).await.unwrap(), 0);

        let tenant = TenantId::parse("xxjd").unwrap();
        crate::api::testkit::write_to_xxjd(&*state.store).await;
        state.live.catch_up_to(&*state.store, None).await.unwrap();
        assert_eq!(derive(state, &mut derived, &stop).await.unwrap(), 1, "only the sub-district written to");
        assert_eq!(notifications("xxjd"), before, "derived again: nothing twice");
        derived.insert(tenant.clone(), "what it was made of before".into());
        assert_eq!(derive(state, &mut derived, &stop).await.unwrap(), 1);
        assert_eq!(derive(state, &mut derived, &stop).await.unwrap(), 0);
        // A stop ends a round before the next sub-district.
        stopping.send(true).unwrap();
        assert_eq!(derive(state, &mut Derived::default(), &stop).await.unwrap(), 0);
    }
}
