//! The clustered backend: KurrentDB (formerly EventStoreDB), through its official gRPC client, the
//! `kurrentdb` crate (the successor of the `eventstore` crate).
//!
//! **One stream holds the whole log.** Every Ducha event is one event of `{namespace}-log`, and
//! global position N is its revision N − 1. Ducha's streams, tenants, chains and idempotency keys are
//! fields of each record's envelope ([`codec`]), not KurrentDB streams: the client cannot append to
//! two streams atomically, and one stream gives, with one expected revision per append, everything
//! the [`EventStore`] contract needs at once — dense positions, a total order of each tenant's
//! events, times that never go back, atomic multi-event appends, and keys written with their
//! events. `docs/ARCHITECTURE.md` has the argument and the alternatives weighed.
//!
//! - **Appends** go through one writer task per store ([`writer`]): group commit into one append,
//!   whose expected revision makes a stale writer fail and retry instead of forking a chain.
//! - **Index** ([`index`]): each replica folds the log into memory — stream versions, chain heads,
//!   keys, event ids, positions per stream and tenant, times — to decide appends and to find a
//!   stream's or a tenant's events. Built by reading the log at open.
//! - **Reads** ([`read`]) fetch events by position from the leader; `read_all` is a plain range.
//! - **Subscriptions**: a catch-up subscription to the log stream applies every event to the index
//!   and moves the head that [`EventStore::subscribe`] reports.
//! - **Checkpoints** ([`checkpoint`]): chunked into blob streams under a small pointer event.
//!
//! Nothing here has run against a real KurrentDB server yet: there is none where it was written
//! (`backend/tests/store_kurrentdb.rs` runs the conformance suite once `DUCHA_TEST_KURRENTDB_URL`
//! names one).

mod checkpoint;
pub mod codec;
pub mod config;
mod conn;
pub mod diagnose;
pub mod error;
pub mod index;
mod read;
pub mod testing;
mod writer;

pub use config::{KurrentConfig, Names, is_kurrentdb_url, parse_url, redact};

use crate::store::validate::validate;
use crate::store::{AppendOutcome, AppendRequest, EventStore, StoreError, TenantHead, Upto};
use async_trait::async_trait;
use codec::Decoded;
use conn::Conn;
use ducha_events::envelope::RecordedEvent;
use ducha_events::ids::TenantId;
use ducha_events::time::Timestamp;
use index::Index;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// How a KurrentDB store is opened.
#[derive(Debug, Clone, Default)]
pub struct KurrentOptions {
    /// No writer task; appends and checkpoints answer [`StoreError::ReadOnly`].
    pub read_only: bool,
}

/// What the writer, the readers and the follower share.
pub(crate) struct Shared {
    conn: Conn,
    names: Names,
    index: RwLock<Index>,
    head: watch::Sender<u64>,
    /// One catch-up at a time ([`read::catch_up`]).
    catching_up: tokio::sync::Mutex<()>,
    max_append_bytes: usize,
    shown: String,
}

impl Shared {
    fn index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies events in log order (skipping those already known) and moves the head.
    fn apply(&self, events: &[Decoded]) -> Result<(), StoreError> {
        let (result, head) = {
            let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
            let result = events.iter().try_for_each(|d| index.apply(d).map(drop));
            (result, index.head())
        };
        self.head.send_if_modified(|h| {
            let changed = head > *h;
            *h = (*h).max(head);
            changed
        });
        result
    }
}

/// The KurrentDB event store. Share it behind an `Arc`.
pub struct KurrentStore {
    shared: Arc<Shared>,
    read_only: bool,
    jobs: Mutex<Option<mpsc::UnboundedSender<writer::Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    follower: Mutex<Option<JoinHandle<()>>>,
    states: super::states::StateCache,
}

impl std::fmt::Debug for KurrentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KurrentStore").field("url", &self.shared.shown).finish_non_exhaustive()
    }
}

/// How many positions `read_all(after_position, limit, upto)` asks the log for: none past `upto`.
fn read_all_count(after_position: u64, limit: usize, upto: Upto) -> u64 {
    (limit as u64).min(upto.limit().saturating_sub(after_position))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl KurrentStore {
    /// Connects, reads the whole log into the index, and starts the follower and (unless read-only)
    /// the writer. Must run inside the Tokio runtime.
    ///
    /// Errors: [`StoreError::Unavailable`] when no node can be reached (saying whether the port is
    /// closed, the TLS certificate is not trusted or the server has no TLS) or access is denied;
    /// [`StoreError::Corrupt`] for a log that Ducha did not write.
    pub async fn open(url: &str, opts: KurrentOptions) -> Result<KurrentStore, StoreError> {
        let config = parse_url(url)?;
        let shown = config.shown.clone();
        let ctx = |e: StoreError| match e {
            StoreError::Unavailable(m) => StoreError::Unavailable(format!("{shown}: {m}")),
            StoreError::Io(m) => StoreError::Io(format!("{shown}: {m}")),
            StoreError::Corrupt(m) => StoreError::Corrupt(format!("{shown}: {m}")),
            other => other,
        };
        let conn = Conn::new(config.settings.clone()).map_err(ctx)?;
        let (head, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            conn,
            names: config.names.clone(),
            index: RwLock::new(Index::default()),
            head,
            catching_up: tokio::sync::Mutex::new(()),
            max_append_bytes: config.max_append_bytes,
            shown: shown.clone(),
        });
        if let Err(e) = read::catch_up(&shared).await {
            // The client cannot tell a closed port from an untrusted certificate: find out.
            let e = match e {
                StoreError::Unavailable(_) => diagnose::diagnose(&config.settings).await.unwrap_or(e),
                other => other,
            };
            return Err(ctx(e));
        }
        let follower = tokio::spawn(read::follow(shared.clone()));
        let (jobs, writer) = if opts.read_only {
            (None, None)
        } else {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), Some(tokio::spawn(writer::run(shared.clone(), rx))))
        };
        Ok(KurrentStore {
            shared,
            read_only: opts.read_only,
            jobs: Mutex::new(jobs),
            writer: Mutex::new(writer),
            follower: Mutex::new(Some(follower)),
            states: Default::default(),
        })
    }

    /// The names of this store's streams.
    pub fn names(&self) -> &Names {
        &self.shared.names
    }

    fn stop_writer(&self) -> Option<JoinHandle<()>> {
        lock(&self.jobs).take();
        lock(&self.writer).take()
    }
}

impl Drop for KurrentStore {
    fn drop(&mut self) {
        if let Some(f) = lock(&self.follower).take() {
            f.abort();
        }
        // The writer answers what is queued and ends once the sender is gone.
        self.stop_writer();
    }
}

#[async_trait]
impl EventStore for KurrentStore {
    /// Always SHA-256: nothing in a KurrentDB store records another choice yet (opening one with
    /// SM3 configured is refused in [`crate::store::location::open`]).
    fn chain_hash(&self) -> ducha_events::chain::ChainHash {
        ducha_events::chain::ChainHash::Sha256
    }

    fn states(&self) -> Option<&super::states::StateCache> {
        Some(&self.states)
    }

    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        validate(&req)?;
        let (tx, rx) = oneshot::channel();
        match lock(&self.jobs).as_ref() {
            Some(jobs) => jobs.send((req, tx)).map_err(|_| StoreError::Closed)?,
            None => return Err(StoreError::Closed),
        }
        rx.await.unwrap_or(Err(StoreError::Closed))
    }

    async fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        Ok(self.shared.index().stream_version(stream))
    }

    async fn read_stream(
        &self,
        stream: &str,
        after_version: u64,
        limit: usize,
        upto: Upto,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let positions = self.shared.index().stream_positions(stream, after_version, limit, upto);
        read::fetch(&self.shared, &positions).await
    }

    async fn read_tenant(
        &self,
        tenant: &TenantId,
        after_position: u64,
        limit: usize,
        upto: Upto,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let positions = self.shared.index().tenant_positions(tenant.as_str(), after_position, limit, upto);
        read::fetch(&self.shared, &positions).await
    }

    async fn read_all(&self, after_position: u64, limit: usize, upto: Upto) -> Result<Vec<RecordedEvent>, StoreError> {
        let count = read_all_count(after_position, limit, upto);
        if count == 0 {
            return Ok(Vec::new());
        }
        let events = read::read_range(&self.shared, after_position + 1, count).await?;
        Ok(events.into_iter().map(|d| d.event).collect())
    }

    async fn head(&self) -> Result<u64, StoreError> {
        read::sync_head(&self.shared).await
    }

    async fn position_at(&self, at: Timestamp) -> Result<u64, StoreError> {
        Ok(self.shared.index().position_at(at))
    }

    async fn tenants(&self) -> Result<Vec<TenantHead>, StoreError> {
        Ok(self.shared.index().tenants())
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.head.subscribe()
    }

    async fn save_checkpoint(&self, name: &str, position: u64, data: Vec<u8>) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        checkpoint::save(&self.shared, name, position, &data).await
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        checkpoint::load(&self.shared, name).await
    }

    async fn close(&self) {
        if let Some(handle) = self.stop_writer() {
            let _ = handle.await;
        }
    }

    fn describe(&self) -> String {
        self.shared.shown.clone()
    }

    async fn idempotent(&self, tenant: &TenantId, key: &str) -> Result<Option<(String, AppendOutcome)>, StoreError> {
        Ok(self
            .shared
            .index()
            .key(tenant.as_str(), key)
            .map(|row| (row.stream.clone(), AppendOutcome { deduplicated: true, ..row.outcome })))
    }
}

#[cfg(test)]
mod tests {
    use super::read_all_count;
    use crate::store::Upto;

    #[test]
    fn read_all_asks_for_nothing_past_its_bound() {
        assert_eq!(read_all_count(0, 10, Upto::Head), 10);
        assert_eq!(read_all_count(0, usize::MAX, Upto::Head), usize::MAX as u64);
        assert_eq!(read_all_count(5, usize::MAX, Upto::Position(8)), 3);
        assert_eq!(read_all_count(5, 2, Upto::Position(8)), 2);
        assert_eq!(read_all_count(8, 10, Upto::Position(8)), 0);
        assert_eq!(read_all_count(9, 10, Upto::Position(8)), 0, "an as-of position behind the reader");
        assert_eq!(read_all_count(3, 0, Upto::Head), 0);
        assert_eq!(read_all_count(u64::MAX, 10, Upto::Head), 0);
    }
}
