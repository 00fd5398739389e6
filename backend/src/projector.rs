//! Runs the projections: keeps the live read model, checkpoints it, rebuilds it from the log, and
//! folds a prefix of the log for "as of" views. The folds themselves live in
//! `ducha_events::projection`; this module only feeds them events.

use crate::commands::CommandError;
use crate::store::{EventStore, StoreError, Upto};
use ducha_events::envelope::RecordedEvent;
use ducha_events::ids::TenantId;
use ducha_events::projection::{ReadModel, TenantShare};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// The checkpoint's name carries the read model's shape version: bump it when `ReadModel` changes
/// shape and every store rebuilds on next start instead of loading an incompatible snapshot.
pub const CHECKPOINT: &str = "read_model.v5";
const PAGE: usize = 5_000;
/// Pages read and decoded at once during a catch-up.
const PARALLEL: usize = 2;

/// Applies one stored event to the model.
pub fn apply(model: &mut ReadModel, e: &RecordedEvent) -> Result<(), CommandError> {
    let event = e.decode()?;
    model.apply(e, &event);
    Ok(())
}

/// Folds events after the model's position up to `upto` (optionally only one tenant's), calling
/// `progress` with the number applied after each page.
///
/// Positions are dense in every store, so the log up to the head as it is now is cut into ranges of
/// `PAGE` positions that are read and decoded `PARALLEL` at a time (on the store's read connections
/// and the blocking threads) while this task folds them in order; whatever is appended meanwhile is
/// then read page by page. On two cores this keeps both busy.
pub async fn catch_up<S: EventStore + ?Sized>(
    store: &S,
    model: &mut ReadModel,
    upto: Upto,
    tenant: Option<&TenantId>,
    progress: impl FnMut(u64),
) -> Result<u64, CommandError> {
    let start = model.position();
    feed(store, start, upto, tenant, progress, |e, event| model.apply(e, event)).await
}

/// What [`catch_up`] does, with `apply` for each event after `start` (decoded, in order).
pub(crate) async fn feed<S: EventStore + ?Sized>(
    store: &S,
    start: u64,
    upto: Upto,
    tenant: Option<&TenantId>,
    mut progress: impl FnMut(u64),
    mut apply: impl FnMut(&RecordedEvent, &ducha_events::Event),
) -> Result<u64, CommandError> {
    use futures_util::StreamExt;
    type Decoded = Vec<(RecordedEvent, ducha_events::Event)>;
    let read = move |after: u64, end: Upto| async move {
        let page = store.read_for_fold(tenant, after, PAGE, end).await?;
        let decoded = tokio::task::spawn_blocking(move || {
            // Sized up front: collecting into a `Result` would grow (and copy) the page as it goes.
            let mut decoded = Decoded::with_capacity(page.len());
            for e in page {
                let event = e.decode()?;
                decoded.push((e, event));
            }
            Ok::<Decoded, CommandError>(decoded)
        })
        .await
        .unwrap_or_else(|e| Err(StoreError::Io(format!("decoder stopped: {e}")).into()))?;
        Ok::<Decoded, CommandError>(decoded)
    };
    let mut applied = 0u64;
    let mut fold = |batch: Decoded, applied: &mut u64| {
        for (e, event) in &batch {
            apply(e, event);
        }
        *applied += batch.len() as u64;
        progress(*applied);
    };
    // The log up to its present end, in parallel ranges.
    // (A position past the head — anyone may ask for one — reads up to the head.)
    let head = store.head().await?;
    let end = match upto {
        Upto::Position(p) => p.min(head),
        Upto::Head => head,
    };
    let ranges = (start..end).step_by(PAGE).map(|a| (a, (a + PAGE as u64).min(end)));
    let mut pages = futures_util::stream::iter(ranges).map(|(a, b)| read(a, Upto::Position(b))).buffered(PARALLEL);
    let mut after = start;
    while let Some(batch) = pages.next().await {
        let batch = batch?;
        after = batch.last().map_or(after, |(e, _)| e.position).max(after);
        fold(batch, &mut applied);
    }
    drop(pages);
    // What came after (only when following the head), page by page.
    let mut after = after.max(end);
    if upto == Upto::Head {
        loop {
            let batch = read(after, Upto::Head).await?;
            let Some((last, _)) = batch.last() else { break };
            after = last.position;
            fold(batch, &mut applied);
        }
    }
    Ok(applied)
}

/// Rebuilds the whole read model from the first event.
pub async fn rebuild<S: EventStore + ?Sized>(store: &S, progress: impl FnMut(u64)) -> Result<ReadModel, CommandError> {
    let mut model = ReadModel::default();
    catch_up(store, &mut model, Upto::Head, None, progress).await?;
    Ok(model)
}

/// The read model as it stood at `upto`, computed by the same fold over a prefix of the log.
/// With `tenant`, only that tenant's events are folded (the platform's directory of districts is
/// folded too, so district names resolve).
pub async fn as_of<S: EventStore + ?Sized>(
    store: &S,
    upto: Upto,
    tenant: Option<&TenantId>,
) -> Result<ReadModel, CommandError> {
    let mut model = ReadModel::default();
    match tenant {
        None => {
            catch_up(store, &mut model, upto, None, |_| {}).await?;
        }
        Some(t) => {
            // Merge the platform's and the tenant's events in position order.
            let platform = collect(store, &TenantId::platform(), upto).await?;
            let own = collect(store, t, upto).await?;
            let mut merged: Vec<&RecordedEvent> = platform.iter().chain(own.iter()).collect();
            merged.sort_by_key(|e| e.position);
            for e in merged {
                apply(&mut model, e)?;
            }
        }
    }
    Ok(model)
}

async fn collect<S: EventStore + ?Sized>(
    store: &S,
    tenant: &TenantId,
    upto: Upto,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = store.read_for_fold(Some(tenant), after, PAGE * 4, upto).await?;
        match page.last() {
            None => return Ok(out),
            Some(last) => after = last.position,
        }
        out.extend(page);
    }
}

/// Loads the live model: the last checkpoint if there is a usable one, then the events after it
/// (every tenant unpacked: for the commands that read the model once).
pub async fn load_live<S: EventStore + ?Sized>(store: &S) -> Result<ReadModel, CommandError> {
    load_live_within(store, usize::MAX, &Arc::new(AtomicBool::new(false))).await
}

/// [`load_live`] for the server: the tenants beyond `budget` bytes of JSON are left packed (also
/// when there is no usable checkpoint and the log is folded: `budget_fold`), and a part that fails
/// to unpack later raises `unreadable`.
pub async fn load_live_within<S: EventStore + ?Sized>(
    store: &S,
    budget: usize,
    unreadable: &Arc<AtomicBool>,
) -> Result<ReadModel, CommandError> {
    let started = std::time::Instant::now();
    let mut model = match store.load_checkpoint(CHECKPOINT).await? {
        // A checkpoint ahead of the log (a restored older database) is useless: start over. So is
        // one taken before an erasure: it holds what was erased (folded while the key existed).
        // Both are known from its position, before the bytes are decoded.
        Some((at, bytes)) if at <= store.head().await? && !erased_since(store, at).await? => {
            decode_checkpoint(at, bytes, budget, unreadable, started).await?
        }
        _ => ReadModel::default(),
    };
    if model.position() == 0 {
        model = crate::budget_fold::fold(store, Upto::Head, budget, unreadable).await?;
    }
    catch_up(store, &mut model, Upto::Head, None, |_| {}).await?;
    Ok(model)
}

/// The model in a checkpoint saved at `at`, decoded on a blocking thread; an empty model (the log
/// is folded instead) when the bytes are not a checkpoint of that position.
async fn decode_checkpoint(
    at: u64,
    bytes: Vec<u8>,
    budget: usize,
    unreadable: &Arc<AtomicBool>,
    started: std::time::Instant,
) -> Result<ReadModel, StoreError> {
    let len = bytes.len();
    let flag = Arc::clone(unreadable);
    let model = tokio::task::spawn_blocking(move || crate::model_checkpoint::decode(&bytes, budget, &flag))
        .await
        .map_err(|e| StoreError::Io(format!("checkpoint decoder stopped: {e}")))?;
    Ok(match model.filter(|m| m.position() == at) {
        Some(m) => {
            let ms = started.elapsed().as_millis() as u64;
            let (mut unpacked, mut packed) = (0usize, 0usize);
            for (_, share) in m.shares() {
                *if share.is_resident() { &mut unpacked } else { &mut packed } += share.weight();
            }
            tracing::info!(position = at, bytes = len, ms, unpacked, packed, "read-model checkpoint loaded");
            m
        }
        None => {
            tracing::warn!(bytes = len, "read-model checkpoint unreadable: folding the log instead");
            ReadModel::default()
        }
    })
}

/// Whether personal data was erased after `position`: the erasures' own stream (a few events), not
/// the whole security log.
async fn erased_since<S: EventStore + ?Sized>(store: &S, position: u64) -> Result<bool, StoreError> {
    if position == 0 {
        return Ok(false);
    }
    let stream = ducha_events::ids::stream::personal_data();
    let version = store.stream_version(&stream).await?;
    if version == 0 {
        return Ok(false);
    }
    let last = store.read_stream(&stream, version - 1, 1, Upto::Head).await?;
    Ok(last.first().is_some_and(|e| e.position > position))
}

/// Saves a checkpoint of the model at its position.
pub async fn checkpoint<S: EventStore + ?Sized>(store: &S, model: &ReadModel) -> Result<(), CommandError> {
    let unreadable = Arc::new(AtomicBool::new(false));
    save_taken(store, crate::model_checkpoint::Taken::of(model, &unreadable)).await.map(drop)
}

/// Encodes the parts taken of a model on a blocking thread and saves them; gives the tenants
/// packed for it (to adopt: `LiveModel::checkpoint`).
pub async fn save_taken<S: EventStore + ?Sized>(
    store: &S,
    taken: crate::model_checkpoint::Taken,
) -> Result<Packings, CommandError> {
    let position = taken.position();
    let started = std::time::Instant::now();
    let bytes = tokio::task::spawn_blocking(move || taken.encode())
        .await
        .map_err(|e| StoreError::Io(format!("checkpoint encoder stopped: {e}")))?
        .map_err(StoreError::Io)?;
    let crate::model_checkpoint::Encoded { bytes, packed } = bytes;
    let (len, encoded) = (bytes.len(), started.elapsed());
    store.save_checkpoint(CHECKPOINT, position, bytes).await?;
    tracing::info!(
        position,
        bytes = len,
        packed = packed.len(),
        encode_ms = encoded.as_millis() as u64,
        save_ms = (started.elapsed() - encoded).as_millis() as u64,
        "read-model checkpoint saved"
    );
    Ok(packed)
}

/// Tenants packed for a checkpoint, each with the value it is the packing of.
pub type Packings = Vec<(TenantId, Arc<TenantShare>, Arc<crate::model_checkpoint::Section>)>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{SqliteOptions, SqliteStore, Synchronous};

    /// The checkpoint the server saves is the one it loads: through the personal-data layer
    /// (sealed with SM4-GCM) the bytes decode to the model they were taken of, the layer below
    /// holds no model in clear, and `load_live` starts from it.
    #[tokio::test]
    async fn a_sealed_checkpoint_decodes_to_the_model_it_was_taken_of() {
        use crate::personal::{Keyring, MasterKey, cipher::Cipher, store::SealingStore};
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteOptions { synchronous: Synchronous::Off, read_only: false, ..SqliteOptions::default() };
        let inner: std::sync::Arc<dyn EventStore> =
            std::sync::Arc::new(SqliteStore::open(&dir.path().join("ducha.db"), opts).unwrap());
        let state = crate::server_state::ServerState::sqlite(dir.path(), &dir.path().join("evidence")).unwrap();
        let master = MasterKey::load(None, Some(dir.path())).unwrap().unwrap();
        let keys = std::sync::Arc::new(Keyring::new(master, Cipher::Sm4Gcm, state.person_keys));
        let store = SealingStore::new(inner.clone(), keys);
        crate::demo::load(&store).await.unwrap();
        let model = rebuild(&store, |_| {}).await.unwrap();
        checkpoint(&store, &model).await.unwrap();
        let (position, bytes) = store.load_checkpoint(CHECKPOINT).await.unwrap().unwrap();
        assert_eq!(position, model.position());
        let flag = Arc::new(AtomicBool::new(false));
        assert_eq!(crate::model_checkpoint::decode(&bytes, usize::MAX, &flag).as_ref(), Some(&model));
        let (_, raw) = inner.load_checkpoint(CHECKPOINT).await.unwrap().unwrap();
        assert_eq!(crate::model_checkpoint::decode(&raw, usize::MAX, &flag), None);
        assert!(!raw.windows(8).any(|w| w == b"DUCHARM5"), "sealed, not in clear");
        for budget in [usize::MAX, 0] {
            assert_eq!(load_live_within(&store, budget, &flag).await.unwrap(), model);
        }
    }

    /// schemathesis found it: `at_position=9223372036854775808` cut the log into 10^15 empty ranges.
    #[tokio::test]
    async fn as_of_a_position_past_the_head_is_the_head() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteOptions { synchronous: Synchronous::Off, read_only: false, ..SqliteOptions::default() };
        let store = SqliteStore::open(&dir.path().join("ducha.db"), opts).unwrap();
        crate::demo::load(&store).await.unwrap();
        let head = store.head().await.unwrap();
        for upto in [Upto::Position(1 << 63), Upto::Position(u64::MAX), Upto::Position(head + 1)] {
            let model = tokio::time::timeout(std::time::Duration::from_secs(20), as_of(&store, upto, None))
                .await
                .expect("answers at once")
                .unwrap();
            assert_eq!(model.position(), head);
        }
        let partial = as_of(&store, Upto::Position(head / 2), None).await.unwrap();
        assert_eq!(partial.position(), head / 2, "positions are dense: the fold stops exactly there");
        store.close().await;
    }
}
