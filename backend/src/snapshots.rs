//! Per-tenant snapshots of the read model for "as of" views (issue 11).
//!
//! An "as of" view of one sub-district folds the platform's and that tenant's events up to a
//! position. For a sub-district with many events that fold is the cost of every past-state request,
//! so the first fold of a large tenant leaves snapshots behind: the model as it stood every
//! [`Snapshots::every`] of the tenant's events. A later request starts from the nearest snapshot at
//! or before its position and folds only what lies between.
//!
//! Snapshots are a cache: in memory, per process, least recently used tenants evicted first within a
//! budget of events held; never saved, so never of an older schema. A snapshot cannot change an
//! answer: it *is* the same fold stopped earlier (`ReadModel::apply` is the only way in, and a
//! model at position `s` folded on over `(s, p]` equals the fold of `[1, p]`; tested against the
//! full fold at many points). An erasure of personal data clears them all (they hold what was
//! folded while the key existed), as it rebuilds the live model.

use crate::commands::CommandError;
use crate::store::{EventStore, StoreError, Upto};
use ducha_events::envelope::RecordedEvent;
use ducha_events::ids::TenantId;
use ducha_events::projection::ReadModel;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Tenants with fewer events than this are folded whole (it takes tens of milliseconds).
pub const MIN_EVENTS: u64 = 20_000;
/// Events of a tenant between two of its snapshots: the most an "as of" view folds on top.
pub const EVERY: u64 = 10_000;
/// The events all snapshots together may hold (a snapshot of a model of `n` events counts `n`).
pub const BUDGET: u64 = 2_000_000;
const PAGE: usize = 5_000;

#[derive(Debug)]
pub struct Snapshots {
    inner: Mutex<Inner>,
    every: u64,
    min_events: u64,
    budget: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Bumped by [`Snapshots::clear`]: a fold that began before cannot add what it folded.
    epoch: u64,
    clock: u64,
    tenants: HashMap<TenantId, Entry>,
}

#[derive(Debug, Default)]
struct Entry {
    /// By position; each with the number of the tenant's events folded into it.
    snaps: Vec<(Arc<ReadModel>, u64)>,
    used: u64,
}

impl Entry {
    fn held(&self) -> u64 {
        self.snaps.iter().map(|(_, n)| n).sum()
    }
}

impl Default for Snapshots {
    fn default() -> Self {
        Snapshots::new(EVERY, MIN_EVENTS, BUDGET)
    }
}

impl Snapshots {
    pub fn new(every: u64, min_events: u64, budget: u64) -> Snapshots {
        Snapshots { inner: Mutex::new(Inner::default()), every: every.max(1), min_events, budget }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets every snapshot (after an erasure of personal data).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.epoch += 1;
        inner.tenants.clear();
    }

    /// How many snapshots are held, and how many events they hold together.
    pub fn held(&self) -> (usize, u64) {
        let inner = self.lock();
        (inner.tenants.values().map(|e| e.snaps.len()).sum(), inner.tenants.values().map(Entry::held).sum())
    }

    /// The nearest snapshot of `tenant` at or before `position`, with the tenant's events in it.
    fn nearest(&self, tenant: &TenantId, position: u64) -> (u64, Option<(Arc<ReadModel>, u64)>) {
        let mut inner = self.lock();
        inner.clock += 1;
        let (epoch, now) = (inner.epoch, inner.clock);
        let Some(entry) = inner.tenants.get_mut(tenant) else { return (epoch, None) };
        entry.used = now;
        let best = entry.snaps.iter().rev().find(|(m, _)| m.position() <= position).cloned();
        (epoch, best)
    }

    /// Keeps `model` (with `events` of the tenant's events in it) unless the snapshots were cleared
    /// since `epoch` or it is already held; then evicts least recently used tenants over budget.
    fn offer(&self, epoch: u64, tenant: &TenantId, model: ReadModel, events: u64) {
        let mut inner = self.lock();
        if inner.epoch != epoch {
            return;
        }
        inner.clock += 1;
        let now = inner.clock;
        let entry = inner.tenants.entry(tenant.clone()).or_default();
        entry.used = now;
        let at = model.position();
        match entry.snaps.binary_search_by_key(&at, |(m, _)| m.position()) {
            Ok(_) => return,
            Err(i) => entry.snaps.insert(i, (Arc::new(model), events)),
        }
        while inner.tenants.values().map(Entry::held).sum::<u64>() > self.budget {
            // The least recently used tenant goes first; the one just used keeps at least this one.
            let Some(victim) =
                inner.tenants.iter().filter(|(t, _)| *t != tenant).min_by_key(|(_, e)| e.used).map(|(t, _)| t.clone())
            else {
                let entry = inner.tenants.get_mut(tenant).expect("just inserted");
                if entry.snaps.len() <= 1 {
                    break;
                }
                // Alone and over budget: drop its largest snapshots but the newest offered.
                let newest = entry.snaps.iter().position(|(m, _)| m.position() == at).unwrap_or(0);
                let drop_at = if newest + 1 == entry.snaps.len() { newest - 1 } else { entry.snaps.len() - 1 };
                entry.snaps.remove(drop_at);
                continue;
            };
            inner.tenants.remove(&victim);
        }
    }
}

/// The read model of `tenant` (and the platform's directory) as it stood at `upto`: the same as
/// [`crate::projector::as_of`] with that tenant, started from the nearest snapshot.
pub async fn as_of<S: EventStore + ?Sized>(
    store: &S,
    snapshots: &Snapshots,
    upto: u64,
    tenant: &TenantId,
) -> Result<ReadModel, CommandError> {
    let upto = upto.min(store.head().await?);
    let (epoch, base) = snapshots.nearest(tenant, upto);
    let (mut model, mut folded) = match base {
        Some((m, n)) => (ReadModel::clone(&m), n),
        None => (ReadModel::default(), 0),
    };
    let from = model.position();
    let platform = collect(store, &TenantId::platform(), from, upto).await?;
    let mut own = collect(store, tenant, from, upto).await?;
    // A tenant too small to snapshot: fold it whole, keep nothing.
    let small = folded + (own.len() as u64) < snapshots.min_events;
    let mut platform = platform.into_iter().peekable();
    let mut last_snapshot = folded;
    for e in own.drain(..) {
        while let Some(p) = platform.next_if(|p| p.position < e.position) {
            crate::projector::apply(&mut model, &p)?;
        }
        crate::projector::apply(&mut model, &e)?;
        folded += 1;
        if !small && folded - last_snapshot >= snapshots.every {
            snapshots.offer(epoch, tenant, model.clone(), folded);
            last_snapshot = folded;
        }
    }
    for p in platform {
        crate::projector::apply(&mut model, &p)?;
    }
    Ok(model)
}

/// `tenant`'s events after `after` up to and including `upto`, in order.
async fn collect<S: EventStore + ?Sized>(
    store: &S,
    tenant: &TenantId,
    mut after: u64,
    upto: u64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut out = Vec::new();
    loop {
        let page = store.read_for_fold(Some(tenant), after, PAGE, Upto::Position(upto)).await?;
        match page.last() {
            None => return Ok(out),
            Some(last) => after = last.position,
        }
        out.extend(page);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{SqliteOptions, SqliteStore};

    async fn demo_store(dir: &std::path::Path) -> SqliteStore {
        let store = SqliteStore::open(&dir.join("ducha.db"), SqliteOptions::default()).unwrap();
        crate::demo::load(&store).await.unwrap();
        store
    }

    /// Positions in a scrambled order (so snapshots are made and found in every order), with both
    /// ends and beyond the head.
    fn points(head: u64) -> Vec<u64> {
        let mut p: Vec<u64> = (0..=head + 3).step_by(3).collect();
        p.extend([0, 1, head, head + 10]);
        let n = p.len();
        (0..n).map(|i| p[(i * 7919) % n]).collect()
    }

    #[tokio::test]
    async fn a_view_from_a_snapshot_is_the_full_fold_at_every_point() {
        let dir = tempfile::tempdir().unwrap();
        let store = demo_store(dir.path()).await;
        let head = store.head().await.unwrap();
        let tenant = TenantId::parse("xxjd").unwrap();
        let snaps = Snapshots::new(10, 10, u64::MAX);
        for p in points(head) {
            let full = crate::projector::as_of(&store, Upto::Position(p), Some(&tenant)).await.unwrap();
            let cached = as_of(&store, &snaps, p, &tenant).await.unwrap();
            assert!(cached == full, "as of {p}: the snapshot path differs from the full fold");
        }
        let (count, held) = snaps.held();
        assert!(count >= 5 && held > 0, "snapshots were made: {count}, {held}");
        // Cleared (an erasure): nothing held, answers unchanged.
        snaps.clear();
        assert_eq!(snaps.held(), (0, 0));
        let full = crate::projector::as_of(&store, Upto::Position(head), Some(&tenant)).await.unwrap();
        assert!(as_of(&store, &snaps, head, &tenant).await.unwrap() == full);
    }

    #[tokio::test]
    async fn small_tenants_keep_nothing_and_the_budget_evicts_the_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let store = demo_store(dir.path()).await;
        let head = store.head().await.unwrap();
        let (xx, yy) = (TenantId::parse("xxjd").unwrap(), TenantId::parse("yyjd").unwrap());
        // Below the threshold: folded whole, nothing kept.
        let snaps = Snapshots::new(25, 100_000, u64::MAX);
        as_of(&store, &snaps, head, &xx).await.unwrap();
        assert_eq!(snaps.held(), (0, 0));
        // A budget that holds about one tenant's snapshots.
        let snaps = Snapshots::new(25, 10, 2_000);
        as_of(&store, &snaps, head, &xx).await.unwrap();
        let (_, xx_held) = snaps.held();
        assert!(xx_held > 0 && xx_held <= 2_000);
        as_of(&store, &snaps, head, &yy).await.unwrap();
        let (_, held) = snaps.held();
        assert!(held <= 2_000, "within budget: {held}");
        let kept = snaps.lock().tenants.contains_key(&yy);
        assert!(kept, "the tenant just used is kept");
        // And the answers are still the full fold's.
        for t in [&xx, &yy] {
            let full = crate::projector::as_of(&store, Upto::Position(head / 2), Some(t)).await.unwrap();
            assert!(as_of(&store, &snaps, head / 2, t).await.unwrap() == full);
        }
    }
}
