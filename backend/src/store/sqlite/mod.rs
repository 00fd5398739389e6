//! The embedded default backend: one SQLite file in WAL mode.
//!
//! - One **writer thread** owns the only write connection. Appends arrive over a channel; the writer
//!   drains whatever is queued and commits it in one transaction (group commit), each request inside
//!   its own SAVEPOINT so that a failed request never poisons the others, then answers every caller.
//!   It keeps each tenant's chain head, the stream versions it has seen and the last `occurred_at` in
//!   memory, and reloads them from the file whenever a commit fails.
//! - **Reads** run on a small pool of read-only connections inside `spawn_blocking`; WAL lets them run
//!   while the writer commits. [`SqliteStore::for_each_event`] is the fast synchronous path for bulk
//!   work (projection rebuilds, verification, export).
//! - A lock file next to the database keeps a second process (or a second open in this one) from
//!   writing: the writer's in-memory chain heads are only right if it is the only writer.
//!
//! - Read-model **checkpoints** are files beside the database (`checkpoints`), not rows in it: a
//!   large blob written by the writer held every append behind it.
//!
//! Files: [`schema`] (tables, migrations, opening connections), `writer` (the writer thread),
//! `read` (the read pool and row decoding), `lock` (the writer's lock file), `checkpoints`.
//!
//! `docs/AUDIT.md` documents the tables for auditors; keep it in step with [`SCHEMA_V1`].

mod checkpoints;
mod lock;
mod read;
mod schema;
mod writer;

pub use schema::DEFAULT_CACHE_MB;
pub use schema::{APPLICATION_ID, SCHEMA_V1, SCHEMA_V2, SCHEMA_VERSION, Synchronous, set_cache_mb, set_max_page_count};

use super::{AppendOutcome, AppendRequest, EventStore, StoreError, TenantHead, Upto};
use async_trait::async_trait;
use ducha_events::chain::ChainHash;
use ducha_events::envelope::RecordedEvent;
use ducha_events::ids::TenantId;
use ducha_events::time::{self, Timestamp};
use read::{
    COLUMNS, FOLD_COLUMNS, ReadPool, db_err, decode_row, from_sql_int, int, query_events, query_head, sql_int,
    sql_limit, text,
};
use rusqlite::{Connection, OptionalExtension, params};
use schema::{check_header, open_writer, read_chain_hash, settle_chain_hash, user_version};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use tokio::sync::{oneshot, watch};
use writer::{CommitCounts, Job, Writer, WriterState};

/// The schema version this build writes (SQLite `PRAGMA user_version`).
#[derive(Debug, Clone, Default)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    /// Open for reading only: no writer thread, no lock, appends answer [`StoreError::ReadOnly`].
    pub read_only: bool,
    /// The chain hash a new store gets; for an existing one, the hash it must have (else
    /// [`StoreError::ChainHashMismatch`]). None: SHA-256 for a new store, whatever is recorded else.
    pub chain_hash: Option<ChainHash>,
}

/// The writer connection's settings, as SQLite reports them (for tests and `ducha verify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterPragmas {
    pub journal_mode: String,
    /// 0 = OFF, 1 = NORMAL, 2 = FULL, 3 = EXTRA.
    pub synchronous: i64,
    pub busy_timeout_ms: i64,
    /// `PRAGMA cache_size`: negative is KiB, positive pages.
    pub cache_size: i64,
    pub user_version: i64,
}

/// The SQLite event store. Cheap to share behind an `Arc`; dropping it lets the writer finish what is
/// queued (see [`SqliteStore::close`]).
pub struct SqliteStore {
    path: PathBuf,
    read_only: bool,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    readers: Arc<ReadPool>,
    head: watch::Sender<u64>,
    chain_hash: ChainHash,
    /// Set by the writer while appends fail for want of space (see [`EventStore::storage_full`]).
    full: Arc<Mutex<Option<String>>>,
    states: super::states::StateCache,
    /// Counted by the writer (see [`SqliteStore::group_commits`]).
    counts: Arc<CommitCounts>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).field("read_only", &self.read_only).finish()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path`.
    ///
    /// Errors: [`StoreError::Locked`] if another store has it open for writing, [`StoreError::Corrupt`]
    /// if the file is not a Ducha database, [`StoreError::NewerSchema`] if a newer build wrote it.
    pub fn open(path: &Path, opts: SqliteOptions) -> Result<SqliteStore, StoreError> {
        let readers = Arc::new(ReadPool {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(tokio::sync::Semaphore::new(read::MAX_IDLE_READERS)),
        });
        if opts.read_only {
            if !path.exists() {
                return Err(StoreError::Io(format!("{}: no such database", path.display())));
            }
            let (head, chain_hash) = readers.with(|conn| {
                check_header(conn, path)?;
                let version = user_version(conn)?;
                if version < SCHEMA_VERSION {
                    return Err(StoreError::Io(format!(
                        "{}: schema {version} is older than {SCHEMA_VERSION}; open it once read-write to upgrade",
                        path.display()
                    )));
                }
                let alg = read_chain_hash(conn)?.unwrap_or_default();
                if let Some(c) = opts.chain_hash.filter(|c| *c != alg) {
                    return Err(StoreError::ChainHashMismatch { stored: alg, configured: c });
                }
                Ok((query_head(conn)?, alg))
            })?;
            let (head, _) = watch::channel(head);
            return Ok(SqliteStore {
                path: path.to_owned(),
                read_only: true,
                jobs: Mutex::new(None),
                writer: Mutex::new(None),
                readers,
                head,
                chain_hash,
                full: Arc::default(),
                states: Default::default(),
                counts: Arc::default(),
            });
        }

        let lock_file = lock::take_lock(path)?;
        let conn = open_writer(path, opts.synchronous)?;
        let chain_hash = settle_chain_hash(&conn, opts.chain_hash)?;
        let state = WriterState::load(&conn, chain_hash)?;
        let (head, _) = watch::channel(state.last_position);
        let (tx, rx) = mpsc::channel();
        let full: Arc<Mutex<Option<String>>> = Arc::default();
        let counts: Arc<CommitCounts> = Arc::default();
        let writer =
            Writer { conn, state, head: head.clone(), full: full.clone(), counts: counts.clone(), _lock: lock_file };
        let handle = std::thread::Builder::new()
            .name("ducha-sqlite-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Io(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            path: path.to_owned(),
            read_only: false,
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            readers,
            head,
            chain_hash,
            full,
            states: Default::default(),
            counts,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting work, lets the writer commit everything already queued, and waits for it.
    /// Later appends answer [`StoreError::Closed`]. Reads keep working.
    pub async fn close(&self) {
        let handle = self.stop_writer();
        if let Some(handle) = handle {
            // The writer only has queued work left; joining may block for one commit.
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }

    fn stop_writer(&self) -> Option<JoinHandle<()>> {
        lock(&self.jobs).take();
        lock(&self.writer).take()
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        match lock(&self.jobs).as_ref() {
            Some(tx) => tx.send(job).map_err(|_| StoreError::Closed),
            None => Err(StoreError::Closed),
        }
    }

    /// Appends several requests in one group commit. Each is checked on its own exactly as by
    /// [`EventStore::append`] (in order, later ones seeing earlier ones); one failing changes nothing
    /// for the others.
    pub async fn append_many(&self, reqs: Vec<AppendRequest>) -> Vec<Result<AppendOutcome, StoreError>> {
        let mut jobs = Vec::with_capacity(reqs.len());
        let mut waits = Vec::with_capacity(reqs.len());
        for req in reqs {
            let (tx, rx) = oneshot::channel();
            jobs.push((req, tx));
            waits.push(rx);
        }
        if let Err(e) = self.send(Job::Many(jobs)) {
            return waits.iter().map(|_| Err(e.clone())).collect();
        }
        let mut out = Vec::with_capacity(waits.len());
        for rx in waits {
            out.push(rx.await.unwrap_or(Err(StoreError::Closed)));
        }
        out
    }

    /// Group commits so far and the requests they carried (`requests / commits` is the average
    /// group).
    pub fn group_commits(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.counts.commits.load(Relaxed), self.counts.requests.load(Relaxed))
    }

    /// The writer connection's pragmas, as SQLite reports them.
    pub async fn writer_pragmas(&self) -> Result<WriterPragmas, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Pragmas(tx))?;
        rx.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Streams events with `after_position < position <= upto`, optionally of one tenant, in position
    /// order, to `f` — synchronously, on the calling thread, one row at a time (constant memory).
    /// Stops at the first error of `f`. Returns how many events were passed to `f`.
    ///
    /// This is the bulk path (projection rebuilds, verification, export). It reads one consistent
    /// snapshot; appends committed meanwhile are not seen. Call it from a blocking context.
    pub fn for_each_event<E: From<StoreError>>(
        &self,
        after_position: u64,
        upto: Upto,
        tenant: Option<&TenantId>,
        mut f: impl FnMut(RecordedEvent) -> Result<(), E>,
    ) -> Result<u64, E> {
        let mut count = 0u64;
        let mut outcome: Result<(), E> = Ok(());
        let read = self.readers.with(|conn| {
            let (sql, tenant) = match tenant {
                Some(t) => (
                    format!(
                        "SELECT {COLUMNS} FROM events WHERE tenant = ?3 AND position > ?1 AND position <= ?2 \
                         ORDER BY position"
                    ),
                    t.as_str(),
                ),
                None => (
                    format!("SELECT {COLUMNS} FROM events WHERE position > ?1 AND position <= ?2 ORDER BY position"),
                    "",
                ),
            };
            let mut stmt = conn.prepare(&sql).map_err(db_err)?;
            let after = sql_int(after_position);
            let limit = sql_int(upto.limit());
            let mut rows = if tenant.is_empty() {
                stmt.query(params![after, limit])
            } else {
                stmt.query(params![after, limit, tenant])
            }
            .map_err(db_err)?;
            while let Some(row) = rows.next().map_err(db_err)? {
                let event = decode_row(row)?;
                count += 1;
                if let Err(e) = f(event) {
                    outcome = Err(e);
                    break;
                }
            }
            Ok(())
        });
        read?;
        outcome.map(|()| count)
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let pool = self.readers.clone();
        let permit = pool.permits.clone().acquire_owned().await.map_err(|_| StoreError::Closed)?;
        tokio::task::spawn_blocking(move || {
            let _one_of_the_pool = permit;
            pool.with(f)
        })
        .await
        .map_err(|e| StoreError::Io(format!("a read task failed: {e}")))?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Let the writer commit what is queued before the file is released.
        if let Some(handle) = self.stop_writer() {
            let _ = handle.join();
        }
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Append(req, tx))?;
        rx.await.unwrap_or(Err(StoreError::Closed))
    }

    fn chain_hash(&self) -> ChainHash {
        self.chain_hash
    }

    fn states(&self) -> Option<&super::states::StateCache> {
        Some(&self.states)
    }

    async fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        let stream = stream.to_owned();
        self.read(move |conn| {
            let v: i64 = conn
                .prepare_cached("SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream = ?1")
                .and_then(|mut s| s.query_row([&stream], |r| r.get(0)))
                .map_err(db_err)?;
            from_sql_int(v, "stream_version")
        })
        .await
    }

    async fn read_stream(
        &self,
        stream: &str,
        after_version: u64,
        limit: usize,
        upto: Upto,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let stream = stream.to_owned();
        self.read(move |conn| {
            let sql = format!(
                "SELECT {COLUMNS} FROM events WHERE stream = ?1 AND stream_version > ?2 AND position <= ?3 \
                 ORDER BY stream_version LIMIT ?4"
            );
            query_events(
                conn,
                &sql,
                params![stream, sql_int(after_version), sql_int(upto.limit()), sql_limit(limit)],
                limit,
            )
        })
        .await
    }

    async fn read_tenant(
        &self,
        tenant: &TenantId,
        after_position: u64,
        limit: usize,
        upto: Upto,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let tenant = tenant.as_str().to_owned();
        self.read(move |conn| {
            let sql = format!(
                "SELECT {COLUMNS} FROM events WHERE tenant = ?1 AND position > ?2 AND position <= ?3 \
                 ORDER BY position LIMIT ?4"
            );
            query_events(
                conn,
                &sql,
                params![tenant, sql_int(after_position), sql_int(upto.limit()), sql_limit(limit)],
                limit,
            )
        })
        .await
    }

    async fn read_all(&self, after_position: u64, limit: usize, upto: Upto) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.read(move |conn| {
            let sql = format!(
                "SELECT {COLUMNS} FROM events WHERE position > ?1 AND position <= ?2 ORDER BY position LIMIT ?3"
            );
            query_events(conn, &sql, params![sql_int(after_position), sql_int(upto.limit()), sql_limit(limit)], limit)
        })
        .await
    }

    async fn read_for_fold(
        &self,
        tenant: Option<&TenantId>,
        after_position: u64,
        limit: usize,
        upto: Upto,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let tenant = tenant.map(|t| t.as_str().to_owned());
        self.read(move |conn| {
            let (after, upto, sql_lim) = (sql_int(after_position), sql_int(upto.limit()), sql_limit(limit));
            match tenant {
                Some(t) => {
                    let sql = format!(
                        "SELECT {FOLD_COLUMNS} FROM events WHERE tenant = ?1 AND position > ?2 AND position <= ?3 \
                         ORDER BY position LIMIT ?4"
                    );
                    query_events(conn, &sql, params![t, after, upto, sql_lim], limit)
                }
                None => {
                    let sql = format!(
                        "SELECT {FOLD_COLUMNS} FROM events WHERE position > ?1 AND position <= ?2 ORDER BY position \
                         LIMIT ?3"
                    );
                    query_events(conn, &sql, params![after, upto, sql_lim], limit)
                }
            }
        })
        .await
    }

    async fn head(&self) -> Result<u64, StoreError> {
        self.read(query_head).await
    }

    async fn position_at(&self, at: Timestamp) -> Result<u64, StoreError> {
        let at = time::format(&at);
        self.read(move |conn| {
            let v: Option<i64> = conn
                .prepare_cached(
                    "SELECT position FROM events WHERE occurred_at <= ?1 ORDER BY occurred_at DESC, position DESC LIMIT 1",
                )
                .and_then(|mut s| s.query_row([&at], |r| r.get(0)).optional())
                .map_err(db_err)?;
            from_sql_int(v.unwrap_or(0), "position")
        })
        .await
    }

    async fn tenants(&self) -> Result<Vec<TenantHead>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT e.tenant, e.tenant_seq, e.position, e.hash FROM events e \
                     JOIN (SELECT tenant, MAX(tenant_seq) AS seq FROM events GROUP BY tenant) m \
                       ON e.tenant = m.tenant AND e.tenant_seq = m.seq \
                     ORDER BY e.tenant",
                )
                .map_err(db_err)?;
            let mut rows = stmt.query([]).map_err(db_err)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(db_err)? {
                let tenant = text(row, 0)?;
                out.push(TenantHead {
                    tenant: TenantId::parse(tenant).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    events: int(row, 1, "tenant_seq")?,
                    last_position: int(row, 2, "position")?,
                    head_hash: text(row, 3)?,
                });
            }
            Ok(out)
        })
        .await
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    async fn close(&self) {
        SqliteStore::close(self).await;
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    async fn idempotent(&self, tenant: &TenantId, key: &str) -> Result<Option<(String, AppendOutcome)>, StoreError> {
        let (tenant, key) = (tenant.as_str().to_owned(), key.to_owned());
        self.read(move |conn| {
            let row: Option<(String, i64, i64, i64)> = conn
                .prepare_cached(
                    "SELECT stream, first_position, last_position, stream_version FROM idempotency \
                     WHERE tenant = ?1 AND key = ?2",
                )
                .and_then(|mut s| {
                    s.query_row([&tenant, &key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).optional()
                })
                .map_err(db_err)?;
            row.map(|(stream, first, last, version)| {
                let outcome = AppendOutcome {
                    first_position: from_sql_int(first, "first_position")?,
                    last_position: from_sql_int(last, "last_position")?,
                    stream_version: from_sql_int(version, "stream_version")?,
                    deduplicated: true,
                };
                Ok((stream, outcome))
            })
            .transpose()
        })
        .await
    }

    fn storage_full(&self) -> Option<String> {
        lock(&self.full).clone()
    }

    /// A file beside the database ([`checkpoints`]), written without the writer.
    async fn save_checkpoint(&self, name: &str, position: u64, data: Vec<u8>) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        let hash = self.read(move |conn| event_hash_at(conn, position)).await?;
        let (db, name) = (self.path.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || checkpoints::save(&db, &name, position, &hash, &data))
            .await
            .map_err(|e| StoreError::Io(format!("checkpoint writer stopped: {e}")))?
    }

    /// The file, if the database has the event it was taken at; else one older versions saved in
    /// the `checkpoints` table.
    async fn load_checkpoint(&self, name: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let (db, file_name) = (self.path.clone(), name.to_owned());
        let file = tokio::task::spawn_blocking(move || checkpoints::load(&db, &file_name))
            .await
            .map_err(|e| StoreError::Io(format!("checkpoint reader stopped: {e}")))??;
        if let Some((position, hash, data)) = file {
            let here = self.read(move |conn| event_hash_at(conn, position)).await?;
            if here == hash {
                return Ok(Some((position, data)));
            }
            tracing::warn!(position, "a checkpoint file beside the database was taken from another log; ignored");
            return Ok(None);
        }
        let name = name.to_owned();
        self.read(move |conn| {
            let row: Option<(i64, Vec<u8>)> = conn
                .prepare_cached("SELECT position, data FROM checkpoints WHERE name = ?1")
                .and_then(|mut s| s.query_row([&name], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                .map_err(db_err)?;
            row.map(|(p, d)| Ok((from_sql_int(p, "checkpoint position")?, d))).transpose()
        })
        .await
    }
}

/// The stored hash of the event at `position` (empty for position 0 or a position not in the log).
fn event_hash_at(conn: &rusqlite::Connection, position: u64) -> Result<String, StoreError> {
    if position == 0 {
        return Ok(String::new());
    }
    conn.prepare_cached("SELECT hash FROM events WHERE position = ?1")
        .and_then(|mut s| s.query_row([sql_int(position)], |r| r.get::<_, String>(0)).optional())
        .map(Option::unwrap_or_default)
        .map_err(db_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_application_id_matches_the_constant() {
        assert!(SCHEMA_V1.contains(&format!("application_id = {APPLICATION_ID};")));
        assert!(schema::migrations().validate().is_ok());
    }

    /// The group commits are counted: every request once, in fewer commits than requests when
    /// appenders run at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_commits_are_counted() {
        use crate::store::ExpectedVersion;
        use crate::store::conformance::{new_event, request, tenant};
        const APPENDERS: u64 = 8;
        const EACH: u64 = 40;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("group.db"), SqliteOptions::default()).unwrap_or_else(|e| panic!("{e}")),
        );
        let t = tenant("group");
        let at = time::parse("2023-03-01T08:00:00Z").unwrap_or_else(|e| panic!("{e}"));
        let tasks: Vec<_> = (0..APPENDERS)
            .map(|w| {
                let (store, t) = (store.clone(), t.clone());
                tokio::spawn(async move {
                    for n in 0..EACH {
                        let req = request(
                            &t,
                            &format!("s-{w}"),
                            ExpectedVersion::Any,
                            vec![new_event(&format!("{{\"n\":{n}}}"), at)],
                        );
                        store.append(req).await.unwrap_or_else(|e| panic!("append: {e}"));
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap_or_else(|e| panic!("{e}"));
        }
        let (commits, requests) = store.group_commits();
        assert_eq!(requests, APPENDERS * EACH);
        assert!(commits > 0 && commits < requests, "{requests} requests in {commits} commits");
        assert_eq!(store.head().await.unwrap_or_else(|e| panic!("{e}")), APPENDERS * EACH);
    }
}
