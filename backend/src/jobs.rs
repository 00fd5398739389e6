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
    let mut pace = CheckpointPace::new(state.live.position());
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
                round(&state, &mut pace).await;
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

/// When the maintenance round saves the read-model checkpoint: once the model has moved since the
/// last save, and no sooner after it than [`CheckpointPace::FACTOR`] times what that save took, so
/// saving takes at most a twentieth of the time. A save copies the model and writes it whole (8.9 s
/// at a million events, BENCHMARKS.md "Scale"), and while it runs writes wait longer (the commands'
/// p99 went from 84 to 230 ms with a save every 5 s): at a million events this saves every three
/// minutes or so rather than every minute; small logs still save every round.
struct CheckpointPace {
    saved_at: u64,
    not_before: Option<tokio::time::Instant>,
}

impl CheckpointPace {
    const FACTOR: u32 = 19;

    fn new(position: u64) -> Self {
        CheckpointPace { saved_at: position, not_before: None }
    }

    fn due(&self, position: u64, now: tokio::time::Instant) -> bool {
        position > self.saved_at && self.not_before.is_none_or(|t| now >= t)
    }

    fn saved(&mut self, position: u64, started: tokio::time::Instant, finished: tokio::time::Instant) {
        self.saved_at = position;
        self.not_before = Some(finished + finished.saturating_duration_since(started) * Self::FACTOR);
    }
}

/// One maintenance round. Failures are logged; the next round tries again.
async fn round(state: &AppState, pace: &mut CheckpointPace) {
    let position = state.live.position();
    let started = tokio::time::Instant::now();
    if pace.due(position, started) {
        match state.live.checkpoint(&*state.store).await {
            Ok(()) => {
                let finished = tokio::time::Instant::now();
                tracing::info!(position, seconds = (finished - started).as_secs_f64(), "read-model checkpoint saved");
                pace.saved(position, started, finished);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_waits_nineteen_times_its_own_duration() {
        let t0 = tokio::time::Instant::now();
        let mut pace = CheckpointPace::new(100);
        assert!(!pace.due(100, t0), "the model has not moved");
        assert!(pace.due(101, t0), "moved, never saved: due at once");
        pace.saved(101, t0, t0 + Duration::from_secs(2));
        let done = t0 + Duration::from_secs(2);
        assert!(!pace.due(500, done + Duration::from_secs(37)), "within 19 × 2 s of the end");
        assert!(pace.due(500, done + Duration::from_secs(38)));
        assert!(!pace.due(101, done + Duration::from_secs(3600)), "not moved since");
        // A quick save leaves every round free to save again.
        pace.saved(500, done, done);
        assert!(pace.due(501, done));
    }
}
