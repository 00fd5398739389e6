//! The log folded into a read model that stays within the server's memory budget while it is
//! folded: what a start without a usable checkpoint and the rebuild after an erasure run.
//!
//! The plain fold ([`projector::catch_up`]) takes the log in order and so holds every tenant's
//! share unpacked until its end: 5.5 GiB at ten million events (BENCHMARKS.md, "Scale"), where the
//! budget keeps a replica started from its checkpoint near 1.2 GiB. Packing tenants while folding
//! in log order would pack and unpack the same tenants over and over (sub-districts work at the
//! same time, so a page of the log writes to most of them). So the fold is made in two passes
//! (`ReadModel::apply_head`): the log in order into everything but the shares (the position, the
//! audit log, the directory: small), then each tenant's share from its own events (the store's
//! tenant index), packed as soon as it is folded. The shares that fit the budget stay unpacked, in
//! the order of the tenants; the others are held packed. Each tenant is folded and packed once, two
//! at a time (both cores), and the model holds at most two unpacked shares beyond the budget.
//!
//! The packed bytes are kept with the unpacked shares too: the first checkpoint after the fold
//! copies them instead of encoding the model again.
//!
//! The two passes read the log twice: at a million events (100 sub-districts, all of which fit the
//! default budget) they took 5.1–7.1 s where the plain fold took 2.6–3.6 s. So [`fold`] runs the
//! plain fold when the log is expected to fit the budget ([`EXPECTED_BYTES_PER_EVENT`]) and the
//! fold in two passes only beyond.

use crate::commands::CommandError;
use crate::model_checkpoint::Section;
use crate::projector;
use crate::store::{EventStore, StoreError, Upto};
use ducha_events::ids::TenantId;
use ducha_events::projection::{Held, Packed, ReadModel, Take, TenantShare};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Events read at once for one tenant's share.
const PAGE: usize = 5_000;
/// Tenants folded at once.
const PARALLEL: usize = 2;

/// The expected JSON of the read model per event of the log: 473 bytes were measured at a million
/// events whose findings each have their own texts (BENCHMARKS.md, "Scale"), fewer with short texts.
pub const EXPECTED_BYTES_PER_EVENT: u64 = 512;

/// The model of the log up to `upto`: the plain fold (one pass, everything unpacked) when the log's
/// expected weight fits `budget`, else [`fold_within`]. A log heavier than expected is folded
/// whole, as before the budget, and packed by the server's budget afterwards.
pub async fn fold<S: EventStore + ?Sized>(
    store: &S,
    upto: Upto,
    budget: usize,
    unreadable: &Arc<AtomicBool>,
) -> Result<ReadModel, CommandError> {
    let events = match upto {
        Upto::Head => store.head().await?,
        Upto::Position(at) => at.min(store.head().await?),
    };
    if fits(events, budget) {
        projector::as_of(store, upto, None).await
    } else {
        fold_within(store, upto, budget, unreadable).await
    }
}

/// Whether `events` are expected to fold into no more than `budget` bytes.
fn fits(events: u64, budget: usize) -> bool {
    events.saturating_mul(EXPECTED_BYTES_PER_EVENT) <= budget as u64
}

/// The model of the log up to `upto`, holding at most `budget` bytes of JSON of tenants unpacked
/// (see the module); the packed parts raise `unreadable` if they do not unpack later. A budget of
/// everything is the plain fold (one pass, nothing packed).
pub async fn fold_within<S: EventStore + ?Sized>(
    store: &S,
    upto: Upto,
    budget: usize,
    unreadable: &Arc<AtomicBool>,
) -> Result<ReadModel, CommandError> {
    use futures_util::StreamExt;
    if budget == usize::MAX {
        return projector::as_of(store, upto, None).await;
    }
    let started = std::time::Instant::now();
    let mut model = ReadModel::default();
    projector::feed(
        store,
        0,
        upto,
        None,
        |_| {},
        |e, event| {
            model.apply_head(e, event);
        },
    )
    .await?;
    let end = model.position();
    let head_ms = started.elapsed().as_millis() as u64;
    let tenants: Vec<TenantId> = model.shares().map(|(t, _)| t.clone()).collect();
    let mut shares = futures_util::stream::iter(tenants)
        .map(|tenant| fold_share(store, tenant, end, Arc::clone(unreadable)))
        .buffered(PARALLEL);
    let (mut resident, mut unpacked, mut packed) = (0usize, 0usize, 0usize);
    while let Some(folded) = shares.next().await {
        let (tenant, share, section) = folded?;
        let weight = Packed::<TenantShare>::weight(&section);
        let held = if resident.saturating_add(weight) <= budget {
            resident += weight;
            unpacked += 1;
            let mut held = Held::new(share);
            if let Take::Value(value) = held.take() {
                held.adopt(&value, Arc::new(section), true);
            }
            held
        } else {
            packed += 1;
            Held::packed(Arc::new(section))
        };
        model.set_share(&tenant, held);
    }
    tracing::info!(
        position = end,
        unpacked,
        packed,
        resident,
        head_ms,
        shares_ms = started.elapsed().as_millis() as u64 - head_ms,
        "read model folded within its budget"
    );
    Ok(model)
}

/// One tenant's share of the log up to `end`, with its packing.
async fn fold_share<S: EventStore + ?Sized>(
    store: &S,
    tenant: TenantId,
    end: u64,
    unreadable: Arc<AtomicBool>,
) -> Result<(TenantId, TenantShare, Section), CommandError> {
    let stopped = |e: tokio::task::JoinError| StoreError::Io(format!("share folder stopped: {e}"));
    let mut share = TenantShare::default();
    let mut after = 0;
    loop {
        let page = store.read_for_fold(Some(&tenant), after, PAGE, Upto::Position(end)).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        share = tokio::task::spawn_blocking(move || {
            for e in &page {
                share.apply(e, &e.decode()?);
            }
            Ok::<TenantShare, CommandError>(share)
        })
        .await
        .map_err(stopped)??;
    }
    let (share, section) =
        tokio::task::spawn_blocking(move || Section::pack(&share, &unreadable).map(|section| (share, section)))
            .await
            .map_err(stopped)?
            .map_err(StoreError::Io)?;
    Ok((tenant, share, section))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{SqliteOptions, SqliteStore, Synchronous};

    /// The demo loaded into a fresh SQLite store, and its plain fold at the head.
    async fn demo_store() -> (tempfile::TempDir, SqliteStore, ReadModel) {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteOptions { synchronous: Synchronous::Off, read_only: false, ..SqliteOptions::default() };
        let store = SqliteStore::open(&dir.path().join("ducha.db"), opts).unwrap();
        crate::demo::load(&store).await.unwrap();
        let whole = projector::as_of(&store, Upto::Head, None).await.unwrap();
        (dir, store, whole)
    }

    fn resident(model: &ReadModel) -> (usize, usize) {
        let shares = model.shares().filter(|(_, s)| s.is_resident());
        shares.fold((0, 0), |(n, bytes), (_, s)| (n + 1, bytes + s.weight()))
    }

    /// Within any budget the fold is the plain fold, at the head and at points before it; the
    /// tenants held unpacked weigh no more than the budget (none at a budget of nothing, all of
    /// them at a budget of everything).
    #[tokio::test]
    async fn the_fold_within_a_budget_is_the_plain_fold() {
        let (_dir, store, whole) = demo_store().await;
        let head = store.head().await.unwrap();
        let flag = Arc::new(AtomicBool::new(false));
        let tenants = whole.shares().count();
        assert!(tenants >= 3, "the demo has the platform and sub-districts: {tenants}");
        let weights: Vec<usize> = {
            let all = fold_within(&store, Upto::Head, usize::MAX - 1, &flag).await.unwrap();
            assert_eq!(all, whole);
            assert_eq!(resident(&all).0, tenants, "everything fits");
            all.shares().map(|(_, s)| s.weight()).collect()
        };
        let heaviest = *weights.iter().max().unwrap();
        assert!(heaviest > 0);
        for budget in [0, heaviest - 1, heaviest, heaviest + 1, usize::MAX] {
            let model = fold_within(&store, Upto::Head, budget, &flag).await.unwrap();
            let (n, bytes) = resident(&model);
            if budget < usize::MAX {
                assert!(bytes <= budget, "budget {budget}: {bytes} bytes unpacked");
            }
            if budget == 0 {
                assert_eq!(n, 0, "nothing fits a budget of nothing");
            }
            if budget == heaviest {
                assert!(n >= 1, "the heaviest tenant alone fits");
            }
            assert_eq!(model, whole, "budget {budget}");
        }
        for at in [1, head / 3, head / 2, head - 1] {
            let model = fold_within(&store, Upto::Position(at), 0, &flag).await.unwrap();
            assert_eq!(model, projector::as_of(&store, Upto::Position(at), None).await.unwrap(), "at {at}");
        }
        assert!(!flag.load(std::sync::atomic::Ordering::Acquire), "every part unpacked");
        store.close().await;
    }

    /// [`fold`] folds in one pass (every tenant unpacked) exactly when the log's expected weight
    /// fits the budget, and within the budget below it; the model is the plain fold either way.
    #[tokio::test]
    async fn the_plain_fold_when_the_log_is_expected_to_fit() {
        let (_dir, store, whole) = demo_store().await;
        let head = store.head().await.unwrap();
        let flag = Arc::new(AtomicBool::new(false));
        let tenants = whole.shares().count();
        let expected = (head * EXPECTED_BYTES_PER_EVENT) as usize;
        let one_pass = fold(&store, Upto::Head, expected, &flag).await.unwrap();
        assert_eq!(one_pass, whole);
        assert_eq!(resident(&one_pass).0, tenants, "one pass: every tenant unpacked");
        assert!(one_pass.shares().all(|(_, s)| s.packed_len() == 0), "one pass: nothing packed while folding");
        let within = fold(&store, Upto::Head, expected - 1, &flag).await.unwrap();
        assert_eq!(within, whole);
        assert!(within.shares().all(|(_, s)| s.packed_len() > 0), "two passes: every tenant packed as it was folded");
        // The demo's texts are short: its model weighs less than expected, so the budget one byte
        // below the expectation holds it all, and still the fold was made within the budget.
        let total: usize = within.shares().map(|(_, s)| s.weight()).sum();
        assert!(total < expected - 1, "demo model {total} bytes, expected {expected}");
        assert_eq!(resident(&within).0, tenants, "all of it fits");
        // At a position before the head the expectation counts the events up to it.
        let at = head / 2;
        let half = fold(&store, Upto::Position(at), (at * EXPECTED_BYTES_PER_EVENT) as usize, &flag).await.unwrap();
        assert_eq!(half, projector::as_of(&store, Upto::Position(at), None).await.unwrap());
        assert!(half.shares().all(|(_, s)| s.packed_len() == 0), "half the log fits its expectation");
        store.close().await;
    }
}
