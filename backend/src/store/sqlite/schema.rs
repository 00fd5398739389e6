//! The file's schema and how connections are opened: migrations, the header checks that refuse
//! foreign files and newer schemas, and the pragmas of the writer and the readers.

use super::read::db_err;
use crate::store::StoreError;
use ducha_events::chain::ChainHash;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::Path;
use std::time::Duration;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub const SCHEMA_VERSION: u32 = 2;
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

/// Version 2: facts about the store itself, such as the chain's hash function (`chain_hash`),
/// fixed when the store is created. A version-1 store's chains are SHA-256.
pub const SCHEMA_V2: &str = "
CREATE TABLE meta (
    key             TEXT    PRIMARY KEY,
    value           TEXT    NOT NULL
) WITHOUT ROWID;
";

pub(super) fn migrations() -> rusqlite_migration::Migrations<'static> {
    rusqlite_migration::Migrations::new(vec![
        rusqlite_migration::M::up(SCHEMA_V1),
        rusqlite_migration::M::up(SCHEMA_V2),
    ])
}

/// The store's chain hash: as recorded; a store without a record is recorded now (`configured`
/// when it has no events yet, else SHA-256, the only hash before the record existed). A configured
/// hash that differs from the recorded one is refused: the chains cannot change their hash.
pub(super) fn settle_chain_hash(conn: &Connection, configured: Option<ChainHash>) -> Result<ChainHash, StoreError> {
    let recorded = read_chain_hash(conn)?;
    let alg = match recorded {
        Some(alg) => alg,
        None => {
            let empty: bool =
                conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM events)", [], |r| r.get(0)).map_err(db_err)?;
            let alg = if empty { configured.unwrap_or_default() } else { ChainHash::Sha256 };
            conn.execute("INSERT INTO meta (key, value) VALUES ('chain_hash', ?1)", [alg.code()]).map_err(db_err)?;
            alg
        }
    };
    match configured {
        Some(c) if c != alg => Err(StoreError::ChainHashMismatch { stored: alg, configured: c }),
        _ => Ok(alg),
    }
}

/// The recorded chain hash (None: not recorded yet, or a version-1 store).
pub(super) fn read_chain_hash(conn: &Connection) -> Result<Option<ChainHash>, StoreError> {
    let has_meta: bool = conn
        .query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')", [], |r| {
            r.get(0)
        })
        .map_err(db_err)?;
    if !has_meta {
        return Ok(None);
    }
    let value: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'chain_hash'", [], |r| r.get(0))
        .optional()
        .map_err(db_err)?;
    match value {
        None => Ok(None),
        Some(v) => ChainHash::parse(&v)
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown chain hash {v:?} recorded in meta"))),
    }
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
    pub(super) fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
            Synchronous::Off => "OFF",
        }
    }
}

pub(super) fn with_path(path: &Path) -> impl Fn(StoreError) -> StoreError + '_ {
    move |e| match e {
        StoreError::Corrupt(msg) => StoreError::Corrupt(format!("{}: {msg}", path.display())),
        StoreError::Io(msg) => StoreError::Io(format!("{}: {msg}", path.display())),
        other => other,
    }
}

pub(super) fn user_version(conn: &Connection) -> Result<u32, StoreError> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db_err)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("invalid schema version {v}")))
}

/// Refuses files that are not SQLite, SQLite files of another application, and newer schemas.
pub(super) fn check_header(conn: &Connection, path: &Path) -> Result<(), StoreError> {
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

/// SQLite's `max_page_count` for the writer (0: SQLite's default, practically unlimited). Set from
/// the `sqlite_max_page_count` setting before the store is opened.
static MAX_PAGE_COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Caps the size of the database file the writer may grow to, in pages (`PRAGMA max_page_count`,
/// pages of 4 KiB by default); SQLite raises a cap below the current size to that size. Appends
/// that need more space fail with [`StoreError::StorageFull`], as on a full disk. For a disk
/// budget, and for tests of a full disk. Applies to stores opened afterwards.
pub fn set_max_page_count(pages: Option<u64>) {
    MAX_PAGE_COUNT.store(pages.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
}

/// The writer's page cache in MiB (`PRAGMA cache_size`); each reader's is a quarter of it (at
/// least 256 KiB). Set from the `sqlite_cache_mb` setting before the store is opened.
static CACHE_MB: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(DEFAULT_CACHE_MB);

/// The default of `sqlite_cache_mb`: 64 MiB for the writer, 16 MiB for each of up to 16 idle readers.
pub const DEFAULT_CACHE_MB: u64 = 64;

/// Sizes SQLite's page caches: `mb` for the writer, a quarter for each reader. The caches fill as
/// pages are touched and stay at their size: with the readers kept for reuse, up to
/// `mb × (1 + 16 / 4)` MiB in all. Applies to connections opened afterwards.
pub fn set_cache_mb(mb: u64) {
    CACHE_MB.store(mb.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// `PRAGMA cache_size` values (negative: KiB) for the writer and for a reader.
fn cache_sizes() -> (i64, i64) {
    let mb = i64::try_from(CACHE_MB.load(std::sync::atomic::Ordering::Relaxed)).unwrap_or(i64::MAX / 2048);
    let writer = mb.saturating_mul(1024);
    (-writer, -(writer / 4).max(256))
}

pub(super) fn open_writer(path: &Path, sync: Synchronous) -> Result<Connection, StoreError> {
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
        "PRAGMA synchronous = {}; PRAGMA foreign_keys = OFF; PRAGMA cache_size = {}; \
         PRAGMA wal_autocheckpoint = 16384; PRAGMA journal_size_limit = 67108864;",
        sync.pragma(),
        cache_sizes().0
    ))
    .map_err(db_err)
    .map_err(&ctx)?;
    migrations().to_latest(&mut conn).map_err(|e| match e {
        rusqlite_migration::Error::RusqliteError { err, .. } => ctx(db_err(err)),
        other => ctx(StoreError::Io(format!("schema migration failed: {other}"))),
    })?;
    let max_pages = MAX_PAGE_COUNT.load(std::sync::atomic::Ordering::Relaxed);
    if max_pages > 0 {
        let pages = i64::try_from(max_pages).unwrap_or(i64::MAX);
        let set: i64 = conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| r.get(0))
            .map_err(db_err)
            .map_err(&ctx)?;
        tracing::info!(requested = pages, effective = set, "SQLite max_page_count");
    }
    Ok(conn)
}

pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db_err).map_err(with_path(path))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    // No memory-mapped I/O: mapped pages count as the process's resident memory, and a full scan
    // would "use" the whole file. The page cache of the OS serves the reads instead.
    let _ = conn.execute_batch(&format!("PRAGMA mmap_size = 0; PRAGMA cache_size = {};", cache_sizes().1));
    Ok(conn)
}
