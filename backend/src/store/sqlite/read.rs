//! Reading: the pool of read-only connections, row decoding, and the integer conversions and error
//! mapping the writer shares.

use super::schema::open_reader;
use crate::store::StoreError;
use ducha_events::authz::Role;
use ducha_events::envelope::{ActorRef, RecordedEvent};
use ducha_events::ids::{TenantId, UserId};
use rusqlite::{Connection, ErrorCode, Row};
use std::path::PathBuf;
use std::sync::Mutex;

/// Idle read connections kept for reuse. Under 64 concurrent API requests a dozen reads overlap;
/// with only 4 kept, the others opened and closed a connection each time (open, pragmas, schema
/// parse: a fifth of the server's CPU in the command benchmark). Each holds little memory until a
/// read touches pages (`cache_size` is an upper bound).
pub(super) const MAX_IDLE_READERS: usize = 16;

pub(super) const COLUMNS: &str = "position, tenant, tenant_seq, event_id, stream, stream_version, event_type, schema_version, \
     occurred_at, actor_user, actor_role, correlation_id, causation_id, payload, prev_hash, hash";

/// [`COLUMNS`] without the chain (`prev_hash`, `hash`): what folds read.
pub(super) const FOLD_COLUMNS: &str = "position, tenant, tenant_seq, event_id, stream, stream_version, event_type, \
     schema_version, occurred_at, actor_user, actor_role, correlation_id, causation_id, payload";

pub(super) use crate::store::plan::{from_sql_int, sql_int};

pub(super) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Maps a SQLite error to the store's errors.
pub(super) fn db_err(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, _) = &e {
        match failure.code {
            ErrorCode::NotADatabase => return StoreError::Corrupt(format!("file is not a database ({e})")),
            ErrorCode::DatabaseCorrupt => return StoreError::Corrupt(e.to_string()),
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => return StoreError::Locked,
            ErrorCode::ReadOnly => return StoreError::ReadOnly,
            // The database or its WAL cannot grow: the disk (ENOSPC) or `max_page_count`.
            ErrorCode::DiskFull => return StoreError::StorageFull(e.to_string()),
            _ => {}
        }
    }
    StoreError::Io(e.to_string())
}

/// A few read-only connections, reused.
pub(super) struct ReadPool {
    pub(super) path: PathBuf,
    pub(super) idle: Mutex<Vec<Connection>>,
    /// At most [`MAX_IDLE_READERS`] reads at once through the store's async API, so that every
    /// connection goes back to the pool. Without the bound, 64 concurrent requests opened readers
    /// beyond the pool's size and closed them after one read: each such read paid for opening the
    /// file, parsing the schema, preparing its statement and a cold page cache (measured under
    /// `wrk`: most of a command's time went to `sqlite3Init`, the parser and `pread`).
    pub(super) permits: std::sync::Arc<tokio::sync::Semaphore>,
}

impl ReadPool {
    pub(super) fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = super::lock(&self.idle).pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_reader(&self.path)?,
        };
        let out = f(&conn);
        // A connection left inside a transaction by an error is dropped rather than reused.
        if conn.is_autocommit() {
            let mut idle = super::lock(&self.idle);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
        out
    }
}

pub(super) fn query_head(conn: &Connection) -> Result<u64, StoreError> {
    let v: i64 = conn.query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| r.get(0)).map_err(db_err)?;
    from_sql_int(v, "position")
}

pub(super) fn text(row: &Row<'_>, i: usize) -> Result<String, StoreError> {
    row.get::<_, String>(i).map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
}

pub(super) fn int(row: &Row<'_>, i: usize, what: &str) -> Result<u64, StoreError> {
    let v: i64 = row.get(i).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?;
    from_sql_int(v, what)
}

/// Decodes one row selected with [`COLUMNS`] (or [`FOLD_COLUMNS`]: the chain fields are then empty).
pub(super) fn decode_row(row: &Row<'_>) -> Result<RecordedEvent, StoreError> {
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
        prev_hash: if row.as_ref().column_count() > 14 { text(row, 14)? } else { String::new() },
        hash: if row.as_ref().column_count() > 15 { text(row, 15)? } else { String::new() },
    })
}

/// The most envelopes [`query_events`] allocates room for before it has read them.
const MAX_PREALLOCATED: usize = 20_000;

/// Runs a query selecting events; `limit` (the query's own) sizes the result up front, so that a page
/// is not copied as it grows (a page of 5,000 envelopes is ~1.7 MB).
pub(super) fn query_events(
    conn: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let mut rows = stmt.query(params).map_err(db_err)?;
    let mut out = Vec::with_capacity(limit.min(MAX_PREALLOCATED));
    while let Some(row) = rows.next().map_err(db_err)? {
        out.push(decode_row(row)?);
    }
    Ok(out)
}
