//! The event store: what the rest of the code needs from any backend, and nothing more.
//!
//! Code above this trait never knows which backend runs. SQLite ([`sqlite`]) is the embedded default,
//! PostgreSQL ([`postgres`]) the shared one, KurrentDB ([`kurrentdb`]) the clustered one; every
//! backend runs the same [`conformance`] suite, applies the same [`validate`] rules and decides its appends
//! with the same [`plan`] (positions, versions, keys, chain links). [`location`]
//! parses a store URL (`sqlite:DIR`, `postgres://…`, `kurrentdb://…`) and opens the backend it names.

pub mod conformance;
pub mod kurrentdb;
pub mod location;
pub mod plan;
pub mod postgres;
pub mod sqlite;
pub mod states;
pub mod validate;

pub use location::{Access, OpenedStore, StoreLocation};

use async_trait::async_trait;
use ducha_events::chain::ChainHash;
use ducha_events::envelope::{NewEvent, RecordedEvent};
use ducha_events::ids::TenantId;
use ducha_events::time::Timestamp;

/// What the appender believes the stream's version is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the version is.
    Any,
    /// The stream must not exist yet (version 0).
    NoStream,
    /// The stream must be at exactly this version (0 = does not exist).
    Exact(u64),
}

/// One atomic append of one or more events to one stream.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub tenant: TenantId,
    /// Must start with `"{tenant}/"`.
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    /// A retry with the same key (within the tenant) returns the first outcome and appends nothing.
    pub idempotency_key: Option<String>,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    pub first_position: u64,
    pub last_position: u64,
    /// The stream's version after the append.
    pub stream_version: u64,
    /// True when an earlier append with the same idempotency key answered instead.
    pub deduplicated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("stream {stream}: expected version {expected:?}, actual {actual}")]
    WrongExpectedVersion { stream: String, expected: ExpectedVersion, actual: u64 },
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    #[error("idempotency key {key:?} was used for a different stream ({stream})")]
    IdempotencyKeyReused { key: String, stream: String },
    #[error("the data store is locked by another process")]
    Locked,
    #[error("the data store is corrupt or not a Ducha database: {0}")]
    Corrupt(String),
    #[error("the data store was written by a newer Ducha (schema {found}, this build knows {known})")]
    NewerSchema { found: u32, known: u32 },
    #[error("the data store is read-only")]
    ReadOnly,
    #[error("storage error: {0}")]
    Io(String),
    /// The storage cannot grow: the disk (or the volume, or the quota, or SQLite's
    /// `max_page_count`) is full. Nothing of the failed append was written; retry once space is
    /// freed. SQLITE_FULL, ENOSPC/EDQUOT, PostgreSQL's 53100 `disk_full`.
    #[error("storage full: {0}")]
    StorageFull(String),
    /// The store cannot be reached right now (a database server down, a connection lost); retrying
    /// later may succeed. An append that failed this way may or may not have been committed.
    #[error("the event store is unavailable: {0}")]
    Unavailable(String),
    #[error("the store is shut down")]
    Closed,
    /// The store's chains are hashed with `stored`; the configuration asks for `configured`. A store
    /// keeps the hash it was created with.
    #[error(
        "事件存储的哈希链使用 {stored}，配置要求 {configured}；已有存储不能更换哈希算法（去掉 chain_hash / \
         DUCHA_CHAIN_HASH 设置，或使用新的存储） / the store's chains use {stored}, the configuration asks for \
         {configured}; a store keeps its chain hash"
    )]
    ChainHashMismatch { stored: ChainHash, configured: ChainHash },
}

/// An upper bound for reads ("as of").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Upto {
    #[default]
    Head,
    /// Up to and including this global position.
    Position(u64),
}

impl Upto {
    pub fn limit(self) -> u64 {
        match self {
            Upto::Head => u64::MAX,
            Upto::Position(p) => p,
        }
    }
}

/// A tenant's chain summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantHead {
    pub tenant: TenantId,
    pub events: u64,
    pub last_position: u64,
    pub head_hash: String,
}

/// The event store contract. All reads return events in global position order.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends atomically with an expected-version check, chaining each event into its tenant's
    /// hash chain. `occurred_at` is raised to the previous event's time if it would go backwards.
    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError>;

    /// The hash function of this store's chains, fixed when the store was created.
    fn chain_hash(&self) -> ChainHash;

    /// The aggregate states commands keep between them ([`states`]); `None`: every command folds
    /// its streams from the start.
    fn states(&self) -> Option<&states::StateCache> {
        None
    }

    /// The stream's current version (0 if it does not exist).
    async fn stream_version(&self, stream: &str) -> Result<u64, StoreError>;

    /// Events of one stream with `stream_version > after_version`, at most `limit`, up to `upto`.
    async fn read_stream(
        &self,
        stream: &str,
        after_version: u64,
        limit: usize,
        upto: Upto,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Events of one tenant with `position > after_position`, at most `limit`, up to `upto`.
    async fn read_tenant(
        &self,
        tenant: &TenantId,
        after_position: u64,
        limit: usize,
        upto: Upto,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The global log: events with `position > after_position`, at most `limit`, up to `upto`.
    async fn read_all(&self, after_position: u64, limit: usize, upto: Upto) -> Result<Vec<RecordedEvent>, StoreError>;

    /// What read models fold: the global log, or with `tenant` that tenant's events, with
    /// `position > after_position`, at most `limit`, up to `upto` — like [`EventStore::read_all`] and
    /// [`EventStore::read_tenant`], except that a backend may leave `prev_hash` and `hash` empty (no
    /// fold reads the chain; verifying it reads with the others), which spares reading and copying
    /// the two widest columns after the payload.
    async fn read_for_fold(
        &self,
        tenant: Option<&TenantId>,
        after_position: u64,
        limit: usize,
        upto: Upto,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        match tenant {
            Some(t) => self.read_tenant(t, after_position, limit, upto).await,
            None => self.read_all(after_position, limit, upto).await,
        }
    }

    /// The last global position (0 when empty).
    async fn head(&self) -> Result<u64, StoreError>;

    /// The last global position whose `occurred_at` is at or before `at` (0 if none): "as of" a time.
    async fn position_at(&self, at: Timestamp) -> Result<u64, StoreError>;

    /// Every tenant with events, with its chain head.
    async fn tenants(&self) -> Result<Vec<TenantHead>, StoreError>;

    /// Be told of new events: the receiver sees the head position after each append.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64>;

    /// Saves a projection checkpoint (replacing the previous one of that name).
    async fn save_checkpoint(&self, name: &str, position: u64, data: Vec<u8>) -> Result<(), StoreError>;

    /// Loads a projection checkpoint: `(position, data)`.
    async fn load_checkpoint(&self, name: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError>;

    /// Stops accepting appends, lets queued ones commit, and waits. Later appends answer
    /// [`StoreError::Closed`]; reads keep working.
    async fn close(&self) {}

    /// Where the store is, for messages and logs (never with a password).
    fn describe(&self) -> String;

    /// The append that used idempotency `key` in `tenant`, if one did: its stream and its outcome
    /// (with `deduplicated: true`). A command with a key asks this before deciding, so that a retry
    /// of a write that happened (its answer lost to a crash) is answered as that write rather than
    /// decided again on the state it produced (which could refuse it, e.g. "already exists").
    /// `None` from a backend that cannot tell; the append itself still deduplicates.
    async fn idempotent(&self, _tenant: &TenantId, _key: &str) -> Result<Option<(String, AppendOutcome)>, StoreError> {
        Ok(None)
    }

    /// Opens sealed personal data (`ducha_events::personal`) in events read with the other methods,
    /// in place, for views that show it (the security log's search, a finding's history). Only a
    /// store that seals ([`crate::personal::store::SealingStore`]) has anything to open.
    async fn open_personal(&self, _events: &mut [RecordedEvent]) -> Result<(), StoreError> {
        Ok(())
    }

    /// Why appends are refused for want of space (the last append failed with
    /// [`StoreError::StorageFull`] and none has succeeded since); `None` otherwise.
    fn storage_full(&self) -> Option<String> {
        None
    }
}
