//! Work that runs once per deployment, on whichever replica holds its lease: today the maintenance
//! round (save a read-model checkpoint so the next start is quick; forget old idempotent answers and
//! stale login counters; every `anchor_interval_seconds`, sign an anchor of each moved chain head). Every replica tries to take the lease each interval; the holder renews it,
//! and when it dies another takes over once the lease expires (three intervals).

use crate::api::AppState;
use crate::server_state::now_ms;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

/// The maintenance lease's name.
pub const MAINTENANCE: &str = "maintenance";

/// This replica: its id (for leases and `/readyz`) and the leases it holds now.
#[derive(Debug)]
pub struct Replica {
    pub id: String,
    held: Mutex<BTreeSet<String>>,
}

impl Default for Replica {
    fn default() -> Self {
        Replica::new()
    }
}

impl Replica {
    pub fn new() -> Replica {
        let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
        let host = if host.is_empty() { "replica".to_owned() } else { host };
        let tag = uuid::Uuid::now_v7().simple().to_string();
        let id = format!("{host}-{}-{}", std::process::id(), &tag[tag.len() - 8..]);
        Replica { id, held: Mutex::new(BTreeSet::new()) }
    }

    /// The leases held now, by name.
    pub fn leases(&self) -> Vec<String> {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }

    pub fn holds(&self, name: &str) -> bool {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).contains(name)
    }

    pub(crate) fn set(&self, name: &str, held: bool) {
        let mut set = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held {
            set.insert(name.to_owned());
        } else {
            set.remove(name);
        }
    }
}

/// Runs the maintenance round every `maintenance_interval_seconds` while this replica holds the
/// lease, until `stop` fires; then gives the lease up.
pub async fn maintenance(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let interval = Duration::from_secs(state.config.maintenance_interval_seconds.max(1));
    let ttl = interval * 3;
    let mut saved_at = state.live.position();
    // The first anchors one interval after start, not at once: a restart loop must not anchor
    // (append) on every start, and a fresh server's log stays as it was loaded.
    let mut anchored_at = Some(std::time::Instant::now());
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        match state.server.leases.try_acquire(MAINTENANCE, &state.replica.id, ttl).await {
            Ok(true) => {
                if !state.replica.holds(MAINTENANCE) {
                    tracing::info!(replica = %state.replica.id, "took the maintenance lease");
                }
                state.replica.set(MAINTENANCE, true);
                round(&state, &mut saved_at).await;
                anchor_round(&state, &mut anchored_at).await;
            }
            Ok(false) => state.replica.set(MAINTENANCE, false),
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the maintenance lease");
                state.replica.set(MAINTENANCE, false);
            }
        }
    }
    if state.replica.holds(MAINTENANCE) {
        let _ = state.server.leases.release(MAINTENANCE, &state.replica.id).await;
    }
}

/// Anchors every moved chain head when `anchor_interval_seconds` have passed since the last time
/// (or since start). Failures are logged; the next round tries again.
async fn anchor_round(state: &AppState, anchored_at: &mut Option<std::time::Instant>) {
    let Some(key) = &state.anchor_key else { return };
    let interval = state.config.anchor_interval_seconds;
    if interval == 0 || anchored_at.is_some_and(|t| t.elapsed() < Duration::from_secs(interval)) {
        return;
    }
    match crate::anchors::anchor_all(&*state.store, key).await {
        Ok(made) => {
            *anchored_at = Some(std::time::Instant::now());
            if !made.is_empty() {
                tracing::info!(tenants = made.len(), "chain heads anchored");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot anchor the chain heads"),
    }
}

/// One maintenance round. Failures are logged; the next round tries again.
async fn round(state: &AppState, saved_at: &mut u64) {
    let position = state.live.position();
    if position > *saved_at {
        match state.live.checkpoint(&*state.store).await {
            Ok(()) => {
                tracing::info!(position, "read-model checkpoint saved");
                *saved_at = position;
            }
            Err(e) => tracing::warn!(error = %e, "cannot save the read-model checkpoint"),
        }
    }
    let hours = i64::try_from(state.config.idempotency_retention_hours).unwrap_or(i64::MAX / 7200);
    let before = chrono::Utc::now().timestamp().saturating_sub(hours.saturating_mul(3600));
    if let Err(e) = state.server.replies.prune_replies(before).await {
        tracing::warn!(error = %e, "cannot prune old idempotent answers");
    }
    let window = i64::try_from(state.config.login_window_seconds).unwrap_or(i64::MAX / 1000).saturating_mul(1000);
    if let Err(e) = state.server.logins.prune(now_ms().saturating_sub(window)).await {
        tracing::warn!(error = %e, "cannot prune old login counters");
    }
    // Sessions past their absolute lifetime (a day's grace, so that a late request still learns
    // why its session ended).
    if let Err(e) = state.server.sessions.prune(now_ms().saturating_sub(86_400_000)).await {
        tracing::warn!(error = %e, "cannot prune ended sessions");
    }
}
