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
//! `docs/AUDIT.md` documents the tables for auditors; keep it in step with [`SCHEMA_V1`].

use super::{AppendOutcome, AppendRequest, EventStore, ExpectedVersion, StoreError, TenantHead, Upto};
use async_trait::async_trait;
use ducha_events::authz::Role;
use ducha_events::chain::{ChainFields, GENESIS, parse_hash};
use ducha_events::envelope::{ActorRef, NewEvent, RecordedEvent};
use ducha_events::ids::{TenantId, UserId};
use ducha_events::time::{self, Timestamp};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row, params};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// The schema version this build writes (SQLite `PRAGMA user_version`).
pub const SCHEMA_VERSION: u32 = 1;
/// `PRAGMA application_id` of a Ducha database ("DUCH"), so other SQLite files are not mistaken for one.
pub const APPLICATION_ID: i32 = 0x4455_4348;

/// Version 1 of the schema. Column names are part of the audit contract (docs/AUDIT.md).
pub const SCHEMA_V1: &str = "
PRAGMA application_id = 1146438472;
CREATE TABLE events (
    position        INTEGER PRIMARY KEY,
    tenant          TEXT    NOT NULL,
    tenant_seq      INTEGER NOT NULL,
    event_id        TEXT    NOT NULL UNIQUE,
    stream          TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    occurred_at     TEXT    NOT NULL,
    actor_user      TEXT    NOT NULL,
    actor_role      TEXT    NOT NULL,
    correlation_id  TEXT    NOT NULL,
    causation_id    TEXT,
    payload         TEXT    NOT NULL,
    prev_hash       TEXT    NOT NULL,
    hash            TEXT    NOT NULL,
    UNIQUE (stream, stream_version),
    UNIQUE (tenant, tenant_seq)
);
CREATE INDEX events_tenant_position ON events (tenant, position);
CREATE INDEX events_occurred_at ON events (occurred_at);
CREATE TABLE idempotency (
    tenant          TEXT    NOT NULL,
    key             TEXT    NOT NULL,
    stream          TEXT    NOT NULL,
    first_position  INTEGER NOT NULL,
    last_position   INTEGER NOT NULL,
    stream_version  INTEGER NOT NULL,
    PRIMARY KEY (tenant, key)
) WITHOUT ROWID;
CREATE TABLE checkpoints (
    name            TEXT    PRIMARY KEY,
    position        INTEGER NOT NULL,
    data            BLOB    NOT NULL
);
";

fn migrations() -> rusqlite_migration::Migrations<'static> {
    rusqlite_migration::Migrations::new(vec![rusqlite_migration::M::up(SCHEMA_V1)])
}

/// How hard SQLite works to make a commit durable (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// Every acknowledged append survives power loss (fsync of the WAL on each commit).
    #[default]
    Full,
    /// Survives a crash of the process, may lose the last commits on power loss.
    Normal,
    /// No fsync at all: for tests and throwaway data only.
    Off,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
            Synchronous::Off => "OFF",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    /// Open for reading only: no writer thread, no lock, appends answer [`StoreError::ReadOnly`].
    pub read_only: bool,
}

/// The writer connection's settings, as SQLite reports them (for tests and `ducha verify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterPragmas {
    pub journal_mode: String,
    /// 0 = OFF, 1 = NORMAL, 2 = FULL, 3 = EXTRA.
    pub synchronous: i64,
    pub busy_timeout_ms: i64,
    pub user_version: i64,
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle read connections kept for reuse. Under 64 concurrent API requests a dozen reads overlap;
/// with only 4 kept, the others opened and closed a connection each time (open, pragmas, schema
/// parse: a fifth of the server's CPU in the command benchmark). Each holds little memory until a
/// read touches pages (`cache_size` is an upper bound).
const MAX_IDLE_READERS: usize = 16;
/// A group commit takes at most this many requests / events.
const MAX_BATCH_REQUESTS: usize = 1024;
const MAX_BATCH_EVENTS: usize = 16_384;
/// The writer forgets stream versions past this many streams (it re-reads them on demand).
const MAX_CACHED_STREAMS: usize = 100_000;

const COLUMNS: &str = "position, tenant, tenant_seq, event_id, stream, stream_version, event_type, schema_version, \
     occurred_at, actor_user, actor_role, correlation_id, causation_id, payload, prev_hash, hash";

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Job {
    Append(AppendRequest, Reply<AppendOutcome>),
    /// Several requests guaranteed to land in one group commit (each still checked on its own).
    Many(Vec<(AppendRequest, Reply<AppendOutcome>)>),
    Checkpoint {
        name: String,
        position: u64,
        data: Vec<u8>,
        reply: Reply<()>,
    },
    Pragmas(Reply<WriterPragmas>),
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
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).field("read_only", &self.read_only).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path`.
    ///
    /// Errors: [`StoreError::Locked`] if another store has it open for writing, [`StoreError::Corrupt`]
    /// if the file is not a Ducha database, [`StoreError::NewerSchema`] if a newer build wrote it.
    pub fn open(path: &Path, opts: SqliteOptions) -> Result<SqliteStore, StoreError> {
        let readers = Arc::new(ReadPool { path: path.to_owned(), idle: Mutex::new(Vec::new()) });
        if opts.read_only {
            if !path.exists() {
                return Err(StoreError::Io(format!("{}: no such database", path.display())));
            }
            let head = readers.with(|conn| {
                check_header(conn, path)?;
                let version = user_version(conn)?;
                if version < SCHEMA_VERSION {
                    return Err(StoreError::Io(format!(
                        "{}: schema {version} is older than {SCHEMA_VERSION}; open it once read-write to upgrade",
                        path.display()
                    )));
                }
                query_head(conn)
            })?;
            let (head, _) = watch::channel(head);
            return Ok(SqliteStore {
                path: path.to_owned(),
                read_only: true,
                jobs: Mutex::new(None),
                writer: Mutex::new(None),
                readers,
                head,
            });
        }

        let lock_file = take_lock(path)?;
        let conn = open_writer(path, opts.synchronous)?;
        let state = WriterState::load(&conn)?;
        let (head, _) = watch::channel(state.last_position);
        let (tx, rx) = mpsc::channel();
        let writer = Writer { conn, state, head: head.clone(), _lock: lock_file };
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
        tokio::task::spawn_blocking(move || pool.with(f))
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

fn sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn from_sql_int(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}: {v}")))
}

/// Maps a SQLite error to the store's errors.
fn db_err(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, _) = &e {
        match failure.code {
            ErrorCode::NotADatabase => return StoreError::Corrupt(format!("file is not a database ({e})")),
            ErrorCode::DatabaseCorrupt => return StoreError::Corrupt(e.to_string()),
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => return StoreError::Locked,
            ErrorCode::ReadOnly => return StoreError::ReadOnly,
            _ => {}
        }
    }
    StoreError::Io(e.to_string())
}

fn with_path(path: &Path) -> impl Fn(StoreError) -> StoreError + '_ {
    move |e| match e {
        StoreError::Corrupt(msg) => StoreError::Corrupt(format!("{}: {msg}", path.display())),
        StoreError::Io(msg) => StoreError::Io(format!("{}: {msg}", path.display())),
        other => other,
    }
}

fn take_lock(path: &Path) -> Result<File, StoreError> {
    use fs2::FileExt;
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::Io(format!("{}: {e}", PathBuf::from(&lock_path).display())))?;
    match file.try_lock_exclusive() {
        Ok(()) => Ok(file),
        Err(e)
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.raw_os_error() == fs2::lock_contended_error().raw_os_error() =>
        {
            Err(StoreError::Locked)
        }
        Err(e) => Err(StoreError::Io(format!("{}: cannot lock: {e}", PathBuf::from(&lock_path).display()))),
    }
}

fn user_version(conn: &Connection) -> Result<u32, StoreError> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db_err)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("invalid schema version {v}")))
}

/// Refuses files that are not SQLite, SQLite files of another application, and newer schemas.
fn check_header(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let ctx = with_path(path);
    let app: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0)).map_err(db_err).map_err(&ctx)?;
    let version = user_version(conn).map_err(&ctx)?;
    if app != 0 && app != i64::from(APPLICATION_ID) {
        return Err(ctx(StoreError::Corrupt(format!(
            "a SQLite database of another application (application_id {app})"
        ))));
    }
    if app == 0 {
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0))
            .map_err(db_err)
            .map_err(&ctx)?;
        if tables > 0 || version > 0 {
            return Err(ctx(StoreError::Corrupt("a SQLite database that is not a Ducha event store".into())));
        }
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema { found: version, known: SCHEMA_VERSION });
    }
    Ok(())
}

fn open_writer(path: &Path, sync: Synchronous) -> Result<Connection, StoreError> {
    let ctx = with_path(path);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(db_err).map_err(&ctx)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    check_header(&conn, path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(db_err).map_err(&ctx)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(ctx(StoreError::Io(format!("cannot switch to WAL mode (journal_mode is {mode})"))));
    }
    // A larger page cache and fewer, larger WAL checkpoints: random event ids scatter index writes,
    // and each checkpoint costs an extra fsync of the main file.
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {}; PRAGMA foreign_keys = OFF; PRAGMA cache_size = -65536; \
         PRAGMA wal_autocheckpoint = 16384; PRAGMA journal_size_limit = 67108864;",
        sync.pragma()
    ))
    .map_err(db_err)
    .map_err(&ctx)?;
    migrations().to_latest(&mut conn).map_err(|e| match e {
        rusqlite_migration::Error::RusqliteError { err, .. } => ctx(db_err(err)),
        other => ctx(StoreError::Io(format!("schema migration failed: {other}"))),
    })?;
    Ok(conn)
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db_err).map_err(with_path(path))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    // No memory-mapped I/O: mapped pages count as the process's resident memory, and a full scan
    // would "use" the whole file. The page cache of the OS serves the reads instead.
    let _ = conn.execute_batch("PRAGMA mmap_size = 0; PRAGMA cache_size = -16384;");
    Ok(conn)
}

/// A few read-only connections, reused.
struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = lock(&self.idle).pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_reader(&self.path)?,
        };
        let out = f(&conn);
        // A connection left inside a transaction by an error is dropped rather than reused.
        if conn.is_autocommit() {
            let mut idle = lock(&self.idle);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
        out
    }
}

fn query_head(conn: &Connection) -> Result<u64, StoreError> {
    let v: i64 = conn.query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| r.get(0)).map_err(db_err)?;
    from_sql_int(v, "position")
}

fn text(row: &Row<'_>, i: usize) -> Result<String, StoreError> {
    row.get::<_, String>(i).map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
}

fn int(row: &Row<'_>, i: usize, what: &str) -> Result<u64, StoreError> {
    let v: i64 = row.get(i).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?;
    from_sql_int(v, what)
}

/// Decodes one row selected with [`COLUMNS`].
fn decode_row(row: &Row<'_>) -> Result<RecordedEvent, StoreError> {
    let position = int(row, 0, "position")?;
    let bad = |what: &str, value: &str| {
        StoreError::Corrupt(format!("event at position {position}: invalid {what} {value:?}"))
    };
    let tenant_s = text(row, 1)?;
    let tenant = TenantId::parse(tenant_s).map_err(|e| bad("tenant", &e.0))?;
    let schema_version = int(row, 7, "schema_version")?;
    let user = text(row, 9)?;
    let user_id = UserId::parse(user).map_err(|e| bad("actor_user", &e.0))?;
    let role_s = row
        .get_ref(10)
        .and_then(|v| v.as_str().map_err(Into::into))
        .map_err(|e| StoreError::Corrupt(format!("event at position {position}: actor_role: {e}")))?;
    let role = Role::from_code(role_s).ok_or_else(|| bad("actor_role", role_s))?;
    let causation_id: Option<String> =
        row.get(12).map_err(|e| StoreError::Corrupt(format!("event at position {position}: causation_id: {e}")))?;
    Ok(RecordedEvent {
        position,
        tenant_seq: int(row, 2, "tenant_seq")?,
        event_id: text(row, 3)?,
        tenant,
        stream: text(row, 4)?,
        stream_version: int(row, 5, "stream_version")?,
        event_type: text(row, 6)?,
        schema_version: u32::try_from(schema_version)
            .map_err(|_| bad("schema_version", &schema_version.to_string()))?,
        occurred_at: text(row, 8)?,
        actor: ActorRef { user_id, role },
        correlation_id: text(row, 11)?,
        causation_id,
        payload: text(row, 13)?,
        prev_hash: text(row, 14)?,
        hash: text(row, 15)?,
    })
}

fn query_events(
    conn: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let mut rows = stmt.query(params).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db_err)? {
        out.push(decode_row(row)?);
    }
    Ok(out)
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Append(req, tx))?;
        rx.await.unwrap_or(Err(StoreError::Closed))
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
            query_events(conn, &sql, params![stream, sql_int(after_version), sql_int(upto.limit()), sql_limit(limit)])
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
            query_events(conn, &sql, params![tenant, sql_int(after_position), sql_int(upto.limit()), sql_limit(limit)])
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
            query_events(conn, &sql, params![sql_int(after_position), sql_int(upto.limit()), sql_limit(limit)])
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

    async fn save_checkpoint(&self, name: &str, position: u64, data: Vec<u8>) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Checkpoint { name: name.to_owned(), position, data, reply: tx })?;
        rx.await.unwrap_or(Err(StoreError::Closed))
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
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

// ---------------------------------------------------------------------------------------------------
// The writer.

/// What the writer knows without asking the file.
#[derive(Debug, Default)]
struct WriterState {
    last_position: u64,
    /// `occurred_at` of the last event ("" when empty): later events never go below it.
    last_time: String,
    /// Per tenant: (last tenant_seq, last hash).
    chains: HashMap<String, (u64, [u8; 32])>,
    /// Stream versions seen (a cache: a missing stream is looked up).
    streams: HashMap<String, u64>,
}

impl WriterState {
    fn load(conn: &Connection) -> Result<WriterState, StoreError> {
        let mut state = WriterState { last_position: query_head(conn)?, ..WriterState::default() };
        if state.last_position > 0 {
            state.last_time = conn
                .query_row("SELECT occurred_at FROM events WHERE position = ?1", [sql_int(state.last_position)], |r| {
                    r.get(0)
                })
                .map_err(db_err)?;
        }
        let mut stmt = conn
            .prepare(
                "SELECT e.tenant, e.tenant_seq, e.hash FROM events e \
                 JOIN (SELECT tenant, MAX(tenant_seq) AS seq FROM events GROUP BY tenant) m \
                   ON e.tenant = m.tenant AND e.tenant_seq = m.seq",
            )
            .map_err(db_err)?;
        let mut rows = stmt.query([]).map_err(db_err)?;
        while let Some(row) = rows.next().map_err(db_err)? {
            let tenant = text(row, 0)?;
            let seq = int(row, 1, "tenant_seq")?;
            let hash_hex = text(row, 2)?;
            let hash = parse_hash(&hash_hex)
                .ok_or_else(|| StoreError::Corrupt(format!("tenant {tenant}: head hash {hash_hex:?} is not a hash")))?;
            state.chains.insert(tenant, (seq, hash));
        }
        Ok(state)
    }
}

/// What one successful request changes in [`WriterState`], applied once its savepoint is released.
struct Changes {
    last_position: u64,
    last_time: String,
    tenant: String,
    chain: (u64, [u8; 32]),
    stream: String,
    version: u64,
}

struct Writer {
    conn: Connection,
    state: WriterState,
    head: watch::Sender<u64>,
    /// Held while the writer lives; released when it exits.
    _lock: File,
}

enum Pending {
    Append(Reply<AppendOutcome>, Result<AppendOutcome, StoreError>),
    Checkpoint(Reply<()>, Result<(), StoreError>),
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        // Ends when every sender is gone and the queue is drained.
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            let mut events = batch.iter().map(job_events).sum::<usize>();
            while batch.len() < MAX_BATCH_REQUESTS && events < MAX_BATCH_EVENTS {
                match rx.try_recv() {
                    Ok(job) => {
                        events += job_events(&job);
                        batch.push(job);
                    }
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
        // A clean shutdown checkpoints the WAL into the main file (best effort).
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }

    fn commit_batch(&mut self, batch: Vec<Job>) {
        let mut pending = Vec::with_capacity(batch.len());
        let mut fatal: Option<StoreError> = None;
        let begun = self.conn.execute_batch("BEGIN IMMEDIATE").map_err(db_err);
        if let Err(e) = begun {
            fatal = Some(e);
        }
        for job in batch {
            match job {
                Job::Append(req, reply) => {
                    let r = self.append_one(&req, &mut fatal);
                    pending.push(Pending::Append(reply, r));
                }
                Job::Many(reqs) => {
                    for (req, reply) in reqs {
                        let r = self.append_one(&req, &mut fatal);
                        pending.push(Pending::Append(reply, r));
                    }
                }
                Job::Checkpoint { name, position, data, reply } => {
                    let r = self.checkpoint(&name, position, &data, &mut fatal);
                    pending.push(Pending::Checkpoint(reply, r));
                }
                Job::Pragmas(reply) => {
                    // Not part of the transaction: answer at once.
                    let _ = reply.send(self.pragmas());
                }
            }
        }
        if fatal.is_none()
            && let Err(e) = self.conn.execute_batch("COMMIT").map_err(db_err)
        {
            fatal = Some(e);
        }
        if let Some(err) = fatal {
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            // The in-memory heads may describe rows that were rolled back.
            match WriterState::load(&self.conn) {
                Ok(state) => self.state = state,
                Err(_) => self.state.streams.clear(),
            }
            for p in pending {
                match p {
                    Pending::Append(reply, _) => {
                        let _ = reply.send(Err(err.clone()));
                    }
                    Pending::Checkpoint(reply, _) => {
                        let _ = reply.send(Err(err.clone()));
                    }
                }
            }
            return;
        }
        self.head.send_if_modified(|h| {
            let changed = *h != self.state.last_position;
            *h = self.state.last_position;
            changed
        });
        for p in pending {
            match p {
                Pending::Append(reply, r) => {
                    let _ = reply.send(r);
                }
                Pending::Checkpoint(reply, r) => {
                    let _ = reply.send(r);
                }
            }
        }
    }

    fn pragmas(&self) -> Result<WriterPragmas, StoreError> {
        let q = |sql: &str| self.conn.query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0)).map_err(db_err);
        let as_int = |v: rusqlite::types::Value| match v {
            rusqlite::types::Value::Integer(i) => i,
            _ => -1,
        };
        let journal_mode = match q("PRAGMA journal_mode")? {
            rusqlite::types::Value::Text(s) => s,
            other => format!("{other:?}"),
        };
        Ok(WriterPragmas {
            journal_mode,
            synchronous: as_int(q("PRAGMA synchronous")?),
            busy_timeout_ms: as_int(q("PRAGMA busy_timeout")?),
            user_version: as_int(q("PRAGMA user_version")?),
        })
    }

    fn checkpoint(
        &mut self,
        name: &str,
        position: u64,
        data: &[u8],
        fatal: &mut Option<StoreError>,
    ) -> Result<(), StoreError> {
        if let Some(e) = fatal {
            return Err(e.clone());
        }
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO checkpoints (name, position, data) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![name, sql_int(position), data]))
            .map(|_| ())
            .map_err(db_err)
    }

    /// Runs one request inside its own savepoint; on failure only that request is undone.
    fn append_one(&mut self, req: &AppendRequest, fatal: &mut Option<StoreError>) -> Result<AppendOutcome, StoreError> {
        if let Some(e) = fatal {
            return Err(e.clone());
        }
        validate(req)?;
        if let Err(e) = self.conn.execute_batch("SAVEPOINT req").map_err(db_err) {
            *fatal = Some(e.clone());
            return Err(e);
        }
        match self.try_append(req) {
            Ok((outcome, changes)) => {
                if let Err(e) = self.conn.execute_batch("RELEASE req").map_err(db_err) {
                    *fatal = Some(e.clone());
                    return Err(e);
                }
                if let Some(c) = changes {
                    self.apply(c);
                }
                Ok(outcome)
            }
            Err(err) => {
                if let Err(e) = self.conn.execute_batch("ROLLBACK TO req; RELEASE req").map_err(db_err) {
                    *fatal = Some(e.clone());
                    return Err(e);
                }
                Err(err)
            }
        }
    }

    fn apply(&mut self, c: Changes) {
        self.state.last_position = c.last_position;
        self.state.last_time = c.last_time;
        self.state.chains.insert(c.tenant, c.chain);
        if self.state.streams.len() >= MAX_CACHED_STREAMS && !self.state.streams.contains_key(&c.stream) {
            self.state.streams.clear();
        }
        self.state.streams.insert(c.stream, c.version);
    }

    fn stream_version(&mut self, stream: &str) -> Result<u64, StoreError> {
        if let Some(v) = self.state.streams.get(stream) {
            return Ok(*v);
        }
        let v: i64 = self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream = ?1")
            .and_then(|mut s| s.query_row([stream], |r| r.get(0)))
            .map_err(db_err)?;
        from_sql_int(v, "stream_version")
    }

    fn try_append(&mut self, req: &AppendRequest) -> Result<(AppendOutcome, Option<Changes>), StoreError> {
        let tenant = req.tenant.as_str();
        if let Some(key) = &req.idempotency_key {
            let seen: Option<(String, i64, i64, i64)> = self
                .conn
                .prepare_cached(
                    "SELECT stream, first_position, last_position, stream_version FROM idempotency \
                     WHERE tenant = ?1 AND key = ?2",
                )
                .and_then(|mut s| {
                    s.query_row([tenant, key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).optional()
                })
                .map_err(db_err)?;
            if let Some((stream, first, last, version)) = seen {
                if stream != req.stream {
                    return Err(StoreError::IdempotencyKeyReused { key: key.clone(), stream });
                }
                let outcome = AppendOutcome {
                    first_position: from_sql_int(first, "first_position")?,
                    last_position: from_sql_int(last, "last_position")?,
                    stream_version: from_sql_int(version, "stream_version")?,
                    deduplicated: true,
                };
                return Ok((outcome, None));
            }
        }

        let current = self.stream_version(&req.stream)?;
        let ok = match req.expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current == 0,
            ExpectedVersion::Exact(v) => current == v,
        };
        if !ok {
            return Err(StoreError::WrongExpectedVersion {
                stream: req.stream.clone(),
                expected: req.expected,
                actual: current,
            });
        }

        let (mut seq, mut prev) = self.state.chains.get(tenant).copied().unwrap_or((0, GENESIS));
        let mut position = self.state.last_position;
        let mut version = current;
        let mut last_time = self.state.last_time.clone();
        let mut insert = self
            .conn
            .prepare_cached(&format!(
                "INSERT INTO events ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
            ))
            .map_err(db_err)?;
        for e in &req.events {
            position += 1;
            seq += 1;
            version += 1;
            let mut occurred_at = time::format(&e.occurred_at);
            if occurred_at < last_time {
                occurred_at.clone_from(&last_time);
            }
            let causation = e.causation_id.as_deref().filter(|c| !c.is_empty());
            let fields = ChainFields {
                tenant,
                tenant_seq: seq,
                event_id: &e.event_id,
                stream: &req.stream,
                stream_version: version,
                event_type: &e.event_type,
                schema_version: e.schema_version,
                occurred_at: &occurred_at,
                actor_user: e.actor.user_id.as_str(),
                actor_role: e.actor.role.code(),
                correlation_id: &e.correlation_id,
                causation_id: causation.unwrap_or(""),
                payload: &e.payload,
            };
            let hash = fields.hash(&prev);
            let inserted = insert.execute(params![
                sql_int(position),
                tenant,
                sql_int(seq),
                e.event_id,
                req.stream,
                sql_int(version),
                e.event_type,
                i64::from(e.schema_version),
                occurred_at,
                fields.actor_user,
                fields.actor_role,
                e.correlation_id,
                causation,
                e.payload,
                hex::encode(prev),
                hex::encode(hash),
            ]);
            if let Err(err) = inserted {
                return Err(match &err {
                    rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation => {
                        StoreError::InvalidAppend(format!("event id {:?} is already in the store", e.event_id))
                    }
                    _ => db_err(err),
                });
            }
            prev = hash;
            last_time = occurred_at;
        }
        drop(insert);
        let outcome = AppendOutcome {
            first_position: self.state.last_position + 1,
            last_position: position,
            stream_version: version,
            deduplicated: false,
        };
        if let Some(key) = &req.idempotency_key {
            self.conn
                .prepare_cached(
                    "INSERT INTO idempotency (tenant, key, stream, first_position, last_position, stream_version) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        tenant,
                        key,
                        req.stream,
                        sql_int(outcome.first_position),
                        sql_int(outcome.last_position),
                        sql_int(outcome.stream_version)
                    ])
                })
                .map_err(db_err)?;
        }
        let changes = Changes {
            last_position: position,
            last_time,
            tenant: tenant.to_owned(),
            chain: (seq, prev),
            stream: req.stream.clone(),
            version,
        };
        Ok((outcome, Some(changes)))
    }
}

fn job_events(job: &Job) -> usize {
    match job {
        Job::Append(req, _) => req.events.len(),
        Job::Many(reqs) => reqs.iter().map(|(r, _)| r.events.len()).sum(),
        Job::Checkpoint { .. } | Job::Pragmas(_) => 1,
    }
}

/// Event ids, correlation and causation ids: 1..=128 printable ASCII characters without spaces.
fn valid_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic())
}

/// The checks that need no database.
fn validate(req: &AppendRequest) -> Result<(), StoreError> {
    let invalid = |msg: String| Err(StoreError::InvalidAppend(msg));
    let tenant = req.tenant.as_str();
    // TenantId is valid by construction; re-check in case it came from somewhere lax.
    if TenantId::parse(tenant).is_err() {
        return invalid(format!("invalid tenant id {tenant:?}"));
    }
    match req.stream.strip_prefix(tenant).and_then(|rest| rest.strip_prefix('/')) {
        Some(rest) if !rest.is_empty() => {}
        _ => return invalid(format!("stream {:?} does not belong to tenant {tenant}", req.stream)),
    }
    if req.stream.len() > 512 || req.stream.chars().any(char::is_control) {
        return invalid(format!("invalid stream name {:?}", req.stream));
    }
    if req.events.is_empty() {
        return invalid(format!("no events to append to {}", req.stream));
    }
    if let Some(key) = &req.idempotency_key
        && (key.is_empty() || key.len() > 256)
    {
        return invalid("an idempotency key must have 1 to 256 bytes".into());
    }
    for (i, e) in req.events.iter().enumerate() {
        validate_event(e).map_err(|msg| StoreError::InvalidAppend(format!("event {i} of {}: {msg}", req.stream)))?;
        if req.events[..i].iter().any(|o| o.event_id == e.event_id) {
            return invalid(format!("event id {:?} appears twice in one append", e.event_id));
        }
    }
    Ok(())
}

fn validate_event(e: &NewEvent) -> Result<(), String> {
    if !valid_token(&e.event_id) {
        return Err(format!("invalid event id {:?}", e.event_id));
    }
    if e.event_type.is_empty() || e.event_type.len() > 128 || e.event_type.chars().any(char::is_control) {
        return Err(format!("invalid event type {:?}", e.event_type));
    }
    if !valid_token(&e.correlation_id) {
        return Err(format!("invalid correlation id {:?}", e.correlation_id));
    }
    if let Some(c) = &e.causation_id
        && !c.is_empty()
        && !valid_token(c)
    {
        return Err(format!("invalid causation id {c:?}"));
    }
    // The stored text form must sort as time does: four-digit years only.
    let year = chrono::Datelike::year(&e.occurred_at);
    if !(1..=9999).contains(&year) {
        return Err(format!("occurred_at {} is out of range", e.occurred_at));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_application_id_matches_the_constant() {
        assert!(SCHEMA_V1.contains(&format!("application_id = {APPLICATION_ID};")));
        assert!(migrations().validate().is_ok());
    }
}
