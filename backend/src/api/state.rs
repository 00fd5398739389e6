//! What every handler can reach: the store, the live read model, configuration, auth and metrics.

use crate::api::error::ApiError;
use crate::api::extract::AsOf;
use crate::api::metrics::Metrics;
use crate::auth::AuthService;
use crate::commands::CommandError;
use crate::config::Config;
use crate::projector;
use crate::server_state::ServerState;
use crate::store::{EventStore, StoreError, Upto};
use ducha_events::authz::Target;
use ducha_events::envelope::RecordedEvent;
use ducha_events::ids::TenantId;
use ducha_events::projection::{ReadModel, WarningPolicy};
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

/// Shared by every worker (`web::Data<AppState>` in handlers).
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn EventStore>,
    pub live: Arc<LiveModel>,
    pub config: Arc<Config>,
    pub auth: Arc<AuthService>,
    pub metrics: Arc<Metrics>,
    /// What the replicas share besides the log (revocations, idempotent answers, lockouts,
    /// evidence, leases).
    pub server: ServerState,
    /// Warning-level thresholds (红黄蓝绿) for the views.
    pub policy: WarningPolicy,
    /// District roll-ups of the live model, kept until the log moves on.
    pub rollups: Arc<crate::api::districts::RollupCache>,
    /// This replica's id and the leases it holds.
    pub replica: Arc<crate::jobs::Replica>,
    /// The anchors' signing key (None: a shared store without `anchor_key_file`: no anchoring).
    pub anchor_key: Option<Arc<crate::anchors::AnchorKey>>,
    /// The personal-data keyring (`None`: a shared store without a master key: kept in clear).
    pub keys: Option<Arc<crate::personal::Keyring>>,
    /// Turns `true` when the server starts to stop (SIGTERM or SIGINT), before it stops taking
    /// connections: long-lived answers (the live streams) end at once so the graceful stop
    /// does not wait for them.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("position", &self.live.position()).finish_non_exhaustive()
    }
}

/// A read model to answer from: the live one (a read lock, hold it only while computing; never
/// across an `.await`) or one folded "as of" a past point.
pub enum ModelView<'a> {
    Live(RwLockReadGuard<'a, ReadModel>),
    AsOf(Box<ReadModel>),
}

impl Deref for ModelView<'_> {
    type Target = ReadModel;
    fn deref(&self) -> &ReadModel {
        match self {
            ModelView::Live(g) => g,
            ModelView::AsOf(m) => m,
        }
    }
}

impl AppState {
    /// The authorization target of a tenant (its district comes from the directory); 404 for an
    /// unknown tenant.
    pub fn tenant_target(&self, tenant: &TenantId) -> Result<Target, ApiError> {
        let model = self.live.read();
        let entry = model.directory().tenant(tenant).ok_or_else(|| ApiError::not_found("该街道", "tenant"))?;
        let district = entry.district_id.clone().ok_or_else(|| ApiError::not_found("该街道", "tenant"))?;
        Ok(Target::tenant(&district, tenant))
    }

    /// The read model for a request: live for "now", or folded over the log prefix of `as_of`
    /// (only `tenant`'s events and the platform's when a tenant is given: cheaper, same answers for
    /// that tenant).
    pub async fn view(&self, as_of: &AsOf, tenant: Option<&TenantId>) -> Result<ModelView<'_>, ApiError> {
        match (as_of.upto, tenant) {
            (Upto::Head, _) => Ok(ModelView::Live(self.live.read())),
            // One sub-district's past: from the nearest snapshot (crate::snapshots).
            (Upto::Position(p), Some(t)) => {
                Ok(ModelView::AsOf(Box::new(crate::snapshots::as_of(&*self.store, &self.live.snapshots, p, t).await?)))
            }
            (upto, None) => Ok(ModelView::AsOf(Box::new(projector::as_of(&*self.store, upto, None).await?))),
        }
    }
}

/// The live read model, kept current by [`LiveModel::follow`] and by writers
/// ([`LiveModel::catch_up_to`] after each command, for read-your-writes).
pub struct LiveModel {
    model: RwLock<ReadModel>,
    /// Serializes catching up (the follower and writers): one reader of the log at a time.
    follow: tokio::sync::Mutex<()>,
    position: AtomicU64,
    /// Bumped each time the model is replaced rather than extended (the rebuild after an
    /// erasure): caches derived from it start over.
    generation: AtomicU64,
    loaded: AtomicBool,
    /// The JSON bytes of tenants kept unpacked ([`LiveModel::trim`]).
    budget: usize,
    /// Raised when a packed tenant does not unpack: the model is folded again from the log.
    unreadable: Arc<AtomicBool>,
    /// Per-tenant snapshots for "as of" views; cleared with the model after an erasure.
    pub snapshots: crate::snapshots::Snapshots,
    /// The live streams' shared reads of each tenant's new events (`api::live`).
    pub live_reads: crate::api::live::SharedReads,
}

const PAGE: usize = 2_000;

impl LiveModel {
    /// Loads the checkpoint (the tenants beyond `budget` bytes of JSON left packed) and folds the
    /// log after it.
    pub async fn load(store: &dyn EventStore, budget: usize) -> Result<LiveModel, CommandError> {
        let unreadable = Arc::new(AtomicBool::new(false));
        let model = projector::load_live_within(store, budget, &unreadable).await?;
        let position = model.position();
        Ok(LiveModel {
            model: RwLock::new(model),
            follow: tokio::sync::Mutex::new(()),
            position: AtomicU64::new(position),
            generation: AtomicU64::new(0),
            loaded: AtomicBool::new(true),
            budget,
            unreadable,
            snapshots: crate::snapshots::Snapshots::default(),
            live_reads: crate::api::live::SharedReads::default(),
        })
    }

    /// Read access. Do not hold the guard across an `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, ReadModel> {
        self.model.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn position(&self) -> u64 {
        self.position.load(Ordering::Acquire)
    }

    /// See the field: equal generations mean the model has only been extended in between.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// As an erasure's rebuild does, for the tests of what depends on the generation.
    #[cfg(test)]
    pub(crate) fn bump_generation(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Folds new events until the model has reached `target` (or the head, when `None`). Events are
    /// read and decoded without the lock; the write lock is held only to apply a page.
    pub async fn catch_up_to(&self, store: &dyn EventStore, target: Option<u64>) -> Result<u64, CommandError> {
        if let Some(t) = target
            && self.position() >= t
        {
            return Ok(self.position());
        }
        let _one_at_a_time = self.follow.lock().await;
        loop {
            let position = self.position();
            if target.is_some_and(|t| position >= t) {
                return Ok(position);
            }
            let unreadable = self.unreadable.load(Ordering::Acquire);
            let page = match unreadable {
                true => Vec::new(),
                false => store.read_for_fold(None, position, PAGE, Upto::Head).await?,
            };
            if page.is_empty() && !unreadable {
                return Ok(position);
            }
            // An erasure: what the model holds of the person was folded with their key. Fold the
            // whole log again (their values now open as 「已删除的个人信息」) and save the checkpoint
            // at once, so that no copy of the plaintext outlives the key. The same when a packed
            // tenant did not unpack (it read as empty meanwhile).
            let erased = page.iter().any(|e| e.event_type == "PersonalDataErased");
            if erased || unreadable {
                if unreadable {
                    tracing::error!("a packed tenant of the read model did not unpack: folding the log again");
                }
                let last = page.last().map_or(position, |e| e.position);
                self.snapshots.clear();
                let rebuilt =
                    crate::budget_fold::fold(store, Upto::Position(last), self.budget, &self.unreadable).await?;
                let at = rebuilt.position();
                {
                    // Under the write lock: no reader sees the new model with the old generation.
                    let mut model = self.model.write().unwrap_or_else(|p| p.into_inner());
                    *model = rebuilt;
                    self.generation.fetch_add(1, Ordering::AcqRel);
                    // Lowered only now: a rebuild that failed is tried again.
                    self.unreadable.store(false, Ordering::Release);
                }
                self.position.store(at, Ordering::Release);
                tracing::info!(position = at, erased, "read model rebuilt");
                if let Err(e) = self.checkpoint(store).await {
                    tracing::warn!(error = %e, "cannot save the read model after an erasure");
                }
                continue;
            }
            let decoded = tokio::task::spawn_blocking(move || {
                page.into_iter()
                    .map(|e| e.decode().map(|ev| (e, ev)))
                    .collect::<Result<Vec<(RecordedEvent, ducha_events::Event)>, _>>()
            })
            .await
            .map_err(|e| StoreError::Io(format!("decoder stopped: {e}")))??;
            // Packed tenants about to be written are unpacked under the read lock, beside the
            // queries, rather than under the write lock that holds them all.
            {
                let model = self.read();
                let mut last: Option<&TenantId> = None;
                for (e, _) in &decoded {
                    if last != Some(&e.tenant) {
                        model.tenant_facts(&e.tenant);
                        last = Some(&e.tenant);
                    }
                }
            }
            let mut model = self.model.write().unwrap_or_else(|p| p.into_inner());
            for (e, ev) in &decoded {
                model.apply(e, ev);
            }
            self.position.store(model.position(), Ordering::Release);
        }
    }

    /// Waits until the model has applied `position`, reading the store directly (a write made through
    /// another replica is there before this replica hears of it). `Ok(false)` when `timeout` passes
    /// first (the position is not in the log yet, or the store is slow).
    pub async fn wait_for(
        &self,
        store: &dyn EventStore,
        position: u64,
        timeout: std::time::Duration,
    ) -> Result<bool, CommandError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = std::time::Duration::from_millis(5);
        loop {
            if self.catch_up_to(store, Some(position)).await? >= position {
                return Ok(true);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(std::time::Duration::from_millis(200));
        }
    }

    /// Follows the store until `stop` fires: catches up after every append notification.
    pub async fn follow(self: Arc<Self>, store: Arc<dyn EventStore>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut heads = store.subscribe();
        loop {
            if let Err(e) = self.catch_up_to(&*store, None).await {
                tracing::error!(error = %e, "read model cannot follow the log; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
            tokio::select! {
                changed = heads.changed() => if changed.is_err() { return },
                _ = stop.changed() => return,
            }
        }
    }

    /// A checkpoint of the model as it is now (saved at shutdown so the next start is quick, and
    /// by the maintenance round).
    ///
    /// The model's parts are taken under the read lock (they share the tenants with the model:
    /// microseconds) and encoded on blocking threads while the fold goes on; a tenant written to
    /// meanwhile is copied once. Serialising under the lock held the follower (and so every write
    /// waiting to read its own result) for as long as the JSON took: 8.9 s at a million events; a
    /// whole copy held the model twice.
    ///
    /// The tenants packed for it keep their bytes (the next checkpoint copies them, and the budget
    /// drops their values without packing them again).
    pub async fn checkpoint(&self, store: &dyn EventStore) -> Result<(), CommandError> {
        let taken = crate::model_checkpoint::Taken::of(&self.read(), &self.unreadable);
        let packed = projector::save_taken(store, taken).await?;
        {
            let mut model = self.model.write().unwrap_or_else(|p| p.into_inner());
            for (tenant, value, section) in &packed {
                if let Some(share) = model.share_mut(tenant) {
                    share.adopt(value, section.clone(), true);
                }
            }
        }
        drop(packed);
        Ok(())
    }

    /// Keeps the unpacked tenants within the budget: when their JSON weighs more, the tenants not
    /// read or written since the last round (then the heaviest) are dropped to four fifths of it,
    /// those written since they were last packed packed first (off the lock). Their values are
    /// freed outside the lock.
    pub async fn trim(&self) -> Result<Trimmed, CommandError> {
        use ducha_events::projection::Take;
        let generation = self.generation();
        let (resident, mut candidates) = {
            let model = self.read();
            let mut resident = 0usize;
            let mut candidates = Vec::new();
            for (tenant, share) in model.shares() {
                if share.is_resident() {
                    resident += share.weight();
                    candidates.push((tenant.clone(), share.weight(), share.take_used(), share.take()));
                }
            }
            (resident, candidates)
        };
        let mut trimmed = Trimmed { resident, ..Trimmed::default() };
        if resident <= self.budget {
            return Ok(trimmed);
        }
        candidates.sort_by_key(|(_, weight, used, _)| (*used, std::cmp::Reverse(*weight)));
        let target = self.budget / 5 * 4;
        let (mut left, mut to_pack) = (resident, PACK_PER_ROUND);
        candidates.retain(|(_, weight, _, held)| {
            // Values written since they were packed are packed first, at most PACK_PER_ROUND of
            // them a round: a whole model folded at start converges over some rounds, and a stop
            // never waits for more than one.
            let written = matches!(held, Take::Value(_));
            let chosen = left > target && (!written || to_pack > 0);
            if chosen {
                left -= weight;
                if written {
                    to_pack = to_pack.saturating_sub(*weight);
                }
            }
            chosen
        });
        let unreadable = self.unreadable.clone();
        let victims = tokio::task::spawn_blocking(move || {
            crate::model_checkpoint::par_map(&candidates, |(tenant, _, _, take)| match take {
                Take::Value(v) => crate::model_checkpoint::Section::pack(&**v, &unreadable)
                    .map(|s| (tenant.clone(), Some((v.clone(), Arc::new(s))))),
                Take::Packed(_) => Ok((tenant.clone(), None)),
            })
            .into_iter()
            .collect::<Result<Vec<_>, String>>()
        })
        .await
        .map_err(|e| StoreError::Io(format!("packer stopped: {e}")))?
        .map_err(StoreError::Io)?;
        let mut freed = Vec::with_capacity(victims.len());
        {
            let mut model = self.model.write().unwrap_or_else(|p| p.into_inner());
            // A model replaced meanwhile (an erasure) is not the one these were taken of.
            if self.generation() != generation {
                return Ok(trimmed);
            }
            for (tenant, packing) in victims {
                let Some(share) = model.share_mut(&tenant) else { continue };
                let weight = share.weight();
                let done = match packing {
                    Some((value, section)) => {
                        let adopted = share.adopt(&value, section, false);
                        freed.push(value);
                        trimmed.packed += usize::from(adopted);
                        adopted
                    }
                    None => share.evict().map(|v| freed.push(v)).is_some(),
                };
                if done {
                    trimmed.dropped += 1;
                    trimmed.resident -= weight;
                }
            }
        }
        drop(freed);
        Ok(trimmed)
    }

    /// What the model holds: the JSON bytes of the unpacked sub-districts (the budget's measure),
    /// the packed bytes held, and the budget.
    pub fn memory(&self) -> ModelMemory {
        let model = self.read();
        let mut m = ModelMemory { budget: self.budget, ..ModelMemory::default() };
        for (_, share) in model.shares() {
            if share.is_resident() {
                m.unpacked += share.weight();
                m.tenants_unpacked += 1;
            }
            m.packed += share.packed_len();
            m.tenants += 1;
        }
        m
    }

    /// Runs [`Self::trim`] every second until `stop` fires.
    pub async fn keep_to_budget(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            match self.trim().await {
                Ok(t) if t.dropped > 0 => tracing::debug!(
                    dropped = t.dropped,
                    packed = t.packed,
                    resident = t.resident,
                    "read model kept to its budget"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot keep the read model to its budget"),
            }
        }
    }
}

/// See [`LiveModel::memory`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ModelMemory {
    pub unpacked: usize,
    pub packed: usize,
    pub budget: usize,
    pub tenants_unpacked: usize,
    pub tenants: usize,
}

/// The JSON bytes of written sub-districts [`LiveModel::trim`] packs in one round, at most (about
/// a second of both cores).
const PACK_PER_ROUND: usize = 256 << 20;

/// What a [`LiveModel::trim`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Trimmed {
    /// Tenants whose values were dropped.
    pub dropped: usize,
    /// Of those, the ones packed first (written since they were last packed).
    pub packed: usize,
    /// The JSON bytes of the tenants still unpacked.
    pub resident: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{SqliteOptions, SqliteStore, Synchronous};
    use ducha_events::ids::DistrictId;

    /// A budget of nothing: every tenant is packed and dropped by a round, unpacked when read or
    /// written, packed again after a write; at every step the model is the fold of the log, a
    /// checkpoint of it loads to the same model with nothing unpacked, and a part that does not
    /// unpack has the model folded again.
    #[tokio::test]
    async fn tenants_packed_by_the_budget_read_and_fold_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteOptions { synchronous: Synchronous::Off, read_only: false, ..SqliteOptions::default() };
        let store = SqliteStore::open(&dir.path().join("ducha.db"), opts).unwrap();
        crate::demo::load(&store).await.unwrap();
        let live = LiveModel::load(&store, 0).await.unwrap();
        let fold = || async { projector::rebuild(&store, |_| {}).await.unwrap() };
        let tenants = live.read().shares().count();
        assert!(tenants > 2);

        // No checkpoint: the log was folded within the budget, every tenant packed as it was folded.
        assert!(live.read().shares().all(|(_, s)| !s.is_resident()), "folded within the budget");
        let t = live.trim().await.unwrap();
        assert_eq!((t.dropped, t.packed, t.resident), (0, 0, 0), "nothing left to pack");
        let memory = live.memory();
        assert_eq!((memory.unpacked, memory.tenants_unpacked, memory.tenants, memory.budget), (0, 0, tenants, 0));
        assert!(memory.packed > 0);
        let folded = fold().await;
        // The roll-up reads every sub-district of the district in turn, keeping none.
        let (district, today) = (DistrictId::parse("xxq").unwrap(), chrono::Utc::now().date_naive());
        let (query, policy) = (Default::default(), WarningPolicy::default());
        let rollup = live.read().rollup(&district, &query, today, &policy);
        assert_eq!(rollup, folded.rollup(&district, &query, today, &policy));
        assert!(rollup.rows.len() > 1);
        assert!(live.read().shares().all(|(_, s)| !s.is_resident()), "read, not kept");
        assert!(*live.read() == folded, "read back from the packed bytes");
        let t = live.trim().await.unwrap();
        assert_eq!((t.dropped, t.packed), (tenants, 0), "unchanged since: dropped without packing again");

        crate::api::testkit::write_to_xxjd(&store).await;
        live.catch_up_to(&store, None).await.unwrap();
        let t = live.trim().await.unwrap();
        assert_eq!((t.dropped, t.packed), (1, 1), "only the tenant written to was unpacked, and packed again");
        let folded = fold().await;
        assert!(*live.read() == folded);

        live.checkpoint(&store).await.unwrap();
        let again = LiveModel::load(&store, 0).await.unwrap();
        assert!(again.read().shares().all(|(_, s)| !s.is_resident()));
        assert!(*again.read() == *live.read());

        let generation = live.generation();
        live.unreadable.store(true, Ordering::Release);
        live.catch_up_to(&store, None).await.unwrap();
        assert_eq!(live.generation(), generation + 1, "folded again");
        assert!(!live.unreadable.load(Ordering::Acquire));
        assert!(live.read().shares().all(|(_, s)| !s.is_resident()), "folded again within the budget");
        let folded = fold().await;
        assert!(*live.read() == folded);
        store.close().await;
    }
}
